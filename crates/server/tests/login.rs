//! Sign-in and the KI-Kompass under attack, over loopback (issue 31): a real axum server on
//! 127.0.0.1 and a real SQLite store. The server trusts 127.0.0.1 as a reverse proxy, so each
//! request names its client address in `X-Forwarded-For` (an attacker's and the owner's).
//!
//! Memory is measured in this process (`/proc/self/status`); the tests take one lock so that
//! none of them runs beside the burst. That is why this file stays a test binary of its own
//! (`--test login`) and is no module of `tests/it`: other tests in the process would move its
//! peak.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::StreamExt;
use lotse_portal::auth::{self, Level, Role};
use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
use lotse_server::portal::Portal;
use lotse_server::{AppState, Config};
use serde_json::{Value, json};

const PASSWORD: &str = "richtig-langes-Passwort";
const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.20";

/// One test at a time: the burst measures the whole process's memory.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Users `bob` and `carl` (staff, not yet trained), `dora` (staff).
async fn start(config: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.server.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1])];
    config(&mut c);
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let hash = auth::hash_password(PASSWORD).unwrap();
    for name in ["bob", "carl", "dora"] {
        let id = store.create_user(name, name, Some(&hash), Role::Staff, &["bauamt".to_string()]).unwrap();
        store.set_level(id, Level::None).unwrap();
    }
    let portal = Portal::new(store, Check::parse(DEFAULT_CHECK).unwrap(), DEFAULT_TEXT.to_string(), Default::default(), vec![]);
    let state = AppState::new(c);
    state.set_portal(Arc::new(portal));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lotse_server::serve(listener, state.clone(), std::future::pending()));
    Server { addr, state, http: reqwest::Client::new(), _dir: dir }
}

struct Resp {
    status: u16,
    retry_after: Option<u64>,
    cookie: Option<String>,
    json: Value,
}

impl Server {
    async fn post(&self, path: &str, from: &str, cookie: Option<(&str, &str)>, body: Value) -> Resp {
        let mut r = self.http.post(format!("http://{}{path}", self.addr)).header("x-forwarded-for", from).json(&body);
        if let Some((session, csrf)) = cookie {
            r = r.header("cookie", session).header("x-csrf-token", csrf);
        }
        let resp = r.send().await.unwrap();
        let h = resp.headers().clone();
        Resp {
            status: resp.status().as_u16(),
            retry_after: h.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()),
            cookie: h.get("set-cookie").and_then(|v| Some(v.to_str().ok()?.split(';').next()?.to_string())),
            json: resp.json().await.unwrap_or(Value::Null),
        }
    }

    async fn login(&self, name: &str, password: &str, from: &str) -> Resp {
        self.post("/portal/api/login", from, None, json!({"name": name, "password": password})).await
    }

    /// `n` wrong-password sign-ins for `name` from `from`, `parallel` at a time: the statuses.
    async fn burst(&self, name: &str, from: &str, n: usize, parallel: usize) -> Vec<u16> {
        futures_util::stream::iter(0..n)
            .map(|i| async move { self.login(name, &format!("falsch-falsch-{i}"), from).await })
            .buffer_unordered(parallel)
            .map(|r| {
                if matches!(r.status, 429 | 503) {
                    assert!(r.retry_after.is_some_and(|s| s >= 1), "429/503 need Retry-After");
                    assert!(r.json["error"]["message"].as_str().is_some_and(|m| m.contains("Bitte")), "{}", r.json);
                }
                r.status
            })
            .collect()
            .await
    }
}

/// (VmRSS, VmHWM) of this process, in kB.
fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_passwords_checks_few_and_keeps_memory_flat() {
    let _one = ONE_AT_A_TIME.lock().await;
    // the default sign-in rate per address first, then none, so the failure tallies and the
    // argon2 slots meet the whole burst
    for per_minute in [None, Some(0)] {
        let s = start(|c| {
            if let Some(n) = per_minute {
                c.portal.login_per_minute = n;
            }
        })
        .await;
        let limit = s.state.config.portal.login_attempts as u64;
        // warm up: one real check, so the slots' memory exists before the baseline
        assert_eq!(s.login("dora", PASSWORD, "192.0.2.1").await.status, 200);
        let before_checks = s.state.login.password_checks();
        let (rss_before, _) = memory_kb();

        let statuses = s.burst("bob", ATTACKER, 300, 50).await;
        let (rss_after, hwm) = memory_kb();
        let checked = s.state.login.password_checks() - before_checks;
        eprintln!(
            "login_per_minute {per_minute:?}: 401 {}, 429 {}, 503 {}; argon2 checks {checked}; RSS {rss_before} -> {rss_after} kB, peak {hwm} kB",
            count(&statuses, 401),
            count(&statuses, 429),
            count(&statuses, 503)
        );
        assert_eq!(statuses.len(), 300);
        assert_eq!(count(&statuses, 401) + count(&statuses, 429) + count(&statuses, 503), 300, "{statuses:?}");
        assert!(checked <= limit, "{checked} passwords checked, the limit is {limit}");
        assert_eq!(count(&statuses, 401) as u64, checked);
        assert!(hwm.saturating_sub(rss_before) < 100 * 1024, "peak RSS grew by {} kB", hwm - rss_before);

        // a busy refusal (503) is no attempt; going on one at a time, the attacker's address
        // is throttled for bob after the configured number of failures in all ...
        let more = s.burst("bob", ATTACKER, 2 * limit as usize, 1).await;
        let failed = (count(&statuses, 401) + count(&more, 401)) as u64;
        assert_eq!(s.state.login.password_checks() - before_checks, failed);
        if per_minute.is_some() {
            assert_eq!(failed, limit, "{more:?}");
        } else {
            assert!(failed <= limit, "the address's sign-in rate ends it sooner: {more:?}");
        }
        // ... even with the right password ...
        let r = s.login("bob", PASSWORD, ATTACKER).await;
        assert_eq!(r.status, 429);
        assert!(r.retry_after.is_some_and(|w| w >= 1));
        // ... but bob signs in from his own address
        let r = s.login("bob", PASSWORD, OWNER).await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert!(r.cookie.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_addresses_reach_the_account_ceiling_but_not_other_accounts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start(|c| c.portal.login_per_minute = 0).await;
    let limit = s.state.config.portal.login_attempts as usize;
    // 4x the pair limit from four addresses: the account pauses
    for i in 0..4 {
        let statuses = s.burst("bob", &format!("192.0.2.{}", 10 + i), limit * 2, 1).await;
        assert_eq!(count(&statuses, 401), limit, "{statuses:?}");
    }
    let r = s.login("bob", PASSWORD, OWNER).await;
    assert_eq!(r.status, 429, "the account's ceiling: {}", r.json);
    // names are hashed keys: a 32 KiB name (near the body limit) is just one more failure
    let long = "x".repeat(32 * 1024);
    assert_eq!(s.login(&long, "falsch-falsch", "192.0.2.99").await.status, 401);
    // other accounts are not affected
    assert_eq!(s.login("carl", PASSWORD, OWNER).await.status, 200);
}

/// The right answers of the built-in check, read from its file (the crate never hands them out).
fn right_answers() -> Vec<usize> {
    let v: toml::Value = toml::from_str(DEFAULT_CHECK).unwrap();
    v["question"].as_array().unwrap().iter().map(|q| q["correct"].as_integer().unwrap() as usize).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ki_kompass_check_has_an_attempt_limit_and_keeps_its_answers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start(|_| {}).await;
    let max = s.state.config.portal.kompass_attempts as usize;
    let right = right_answers();
    let wrong: Vec<usize> = right.iter().map(|c| (c + 1) % 3).collect();
    let mut almost = right.clone();
    almost[0] = (almost[0] + 1) % 3;
    almost[1] = (almost[1] + 1) % 3;

    let session = |r: &Resp| (r.cookie.clone().unwrap(), r.json["csrf"].as_str().unwrap().to_string());
    let carl = session(&s.login("carl", PASSWORD, OWNER).await);
    let carl = (carl.0.as_str(), carl.1.as_str());
    // a failed attempt says how many were right, not which
    let r = s.post("/portal/api/kompass", OWNER, Some(carl), json!({"answers": almost})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["passed"], false);
    assert_eq!(r.json["right"], right.len() - 2);
    assert_eq!(r.json["wrong"], json!([]), "which answers were wrong stays on the server");
    // an incomplete hand-in is no attempt
    assert_eq!(s.post("/portal/api/kompass", OWNER, Some(carl), json!({"answers": [0]})).await.status, 400);
    for _ in 1..max {
        let r = s.post("/portal/api/kompass", OWNER, Some(carl), json!({"answers": wrong})).await;
        assert_eq!(r.status, 200);
    }
    // the limit holds, even for the right answers
    let r = s.post("/portal/api/kompass", OWNER, Some(carl), json!({"answers": right})).await;
    assert_eq!(r.status, 429, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "kompass_attempts");
    assert!(r.retry_after.is_some_and(|w| (1..=24 * 3600).contains(&w)));

    // and for attempts in parallel
    let dora = session(&s.login("dora", PASSWORD, OWNER).await);
    let statuses: Vec<u16> = futures_util::stream::iter(0..3 * max)
        .map(|_| {
            let (c, x) = (dora.0.clone(), dora.1.clone());
            let wrong = wrong.clone();
            let s = &s;
            async move { s.post("/portal/api/kompass", OWNER, Some((&c, &x)), json!({"answers": wrong})).await.status }
        })
        .buffer_unordered(3 * max)
        .collect()
        .await;
    assert_eq!((count(&statuses, 200), count(&statuses, 429)), (max, 2 * max), "{statuses:?}");

    // a pass names what was wrong, so staff can learn from it
    let bob = session(&s.login("bob", PASSWORD, OWNER).await);
    let mut one_wrong = right.clone();
    one_wrong[2] = (one_wrong[2] + 1) % 3;
    let r = s.post("/portal/api/kompass", OWNER, Some((&bob.0, &bob.1)), json!({"answers": one_wrong})).await;
    assert_eq!((r.json["passed"].clone(), r.json["wrong"].clone()), (json!(true), json!([2])), "{}", r.json);
}
