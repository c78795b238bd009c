//! "Fragen ohne Antwort" (issue 35) over loopback: a real tantivy index and a real SQLite
//! portal store in a temp dir (or PostgreSQL with LOTSE_TEST_POSTGRES), a real axum server on
//! 127.0.0.1, and a fake generator (`FakeCitingGenerator`), no embedder: topics come from the
//! German word analysis here (the embedder's grouping is `lotse_portal::insights`' unit test).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lotse_answer::Answerer;
use lotse_inference::generate::GenerationService;
use lotse_portal::Store;
use lotse_portal::auth::{self, Level, Role};
use lotse_portal::insights::{NewQuestion, Outcome, day_of};
use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
use lotse_server::portal::Portal;
use lotse_server::{AppState, Config};
use lotse_test_support::{FakeCitingGenerator, town_index, wait_until_async};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "richtig-langes-Passwort";

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    store: Arc<Store>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Default)]
struct Who {
    cookie: Option<String>,
    csrf: Option<String>,
}

const ANON: Who = Who { cookie: None, csrf: None };

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl Server {
    async fn send(&self, who: &Who, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut r = self.client.request(method, format!("http://{}{path}", self.addr));
        if let Some(c) = &who.cookie {
            r = r.header("cookie", c);
        }
        if let Some(c) = &who.csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        Resp { status: resp.status().as_u16(), headers: resp.headers().clone(), text: resp.text().await.unwrap_or_default() }
    }

    async fn get(&self, who: &Who, path: &str) -> Resp {
        self.send(who, Method::GET, path, None).await
    }

    async fn login(&self, name: &str) -> Who {
        let r = self.send(&ANON, Method::POST, "/portal/api/login", Some(json!({"name": name, "password": PASSWORD}))).await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text);
        let set = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
        Who { cookie: Some(set.split(';').next().unwrap().to_string()), csrf: r.json()["csrf"].as_str().map(String::from) }
    }

    /// Ask the citizen chat (JSON) and wait until the question is recorded (or 3 s passed).
    async fn ask(&self, question: &str) -> Value {
        let before = self.store.insights_since(0, 100_000).unwrap().len();
        let r = self.send(&ANON, Method::POST, "/api/v1/chat", Some(json!({"question": question}))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if self.state.config.insights.enabled {
            wait_until_async(Duration::from_secs(3), || async { self.store.insights_since(0, 100_000).unwrap().len() > before }).await;
        }
        r.json()
    }
}

/// Users: `admin` (admin), `alice` (editor of bauamt), `bob` (staff of kaemmerei, gold).
async fn start(config: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.limits.chat_per_minute = 0;
    c.limits.search_per_second = 0;
    c.portal.login_per_minute = 0;
    config(&mut c);
    let index = town_index(&dir.path().join("index"));
    let local = Arc::new(FakeCitingGenerator::new("fake-local", false));
    let answerer = Arc::new(Answerer::new(index, None, Some(Arc::new(GenerationService::new(local, 1, 8))), c.answer_config()));
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let hash = auth::hash_password(PASSWORD).unwrap();
    for (name, role, groups, level) in [
        ("admin", Role::Admin, vec![], Level::Gold),
        ("alice", Role::Editor, vec!["bauamt".to_string()], Level::None),
        ("bob", Role::Staff, vec!["kaemmerei".to_string()], Level::Gold),
    ] {
        let id = store.create_user(name, name, Some(&hash), role, &groups).unwrap();
        store.set_level(id, level).unwrap();
    }
    let portal = Portal::new(store.clone(), Check::parse(DEFAULT_CHECK).unwrap(), DEFAULT_TEXT.to_string(), c.portal.levels.clone(), vec![]);
    let state = AppState::new(c);
    state.set_answerer(answerer);
    state.set_portal(Arc::new(portal));
    state.set_feedback(Arc::new(lotse_server::feedback::FeedbackStore::open(&dir.path().join("feedback.sqlite")).unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lotse_server::serve(listener, state.clone(), std::future::pending()));
    Server { addr, state, store, client: reqwest::Client::new(), _dir: dir }
}

fn today() -> i64 {
    day_of(lotse_portal::store::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_with_a_name_a_phone_number_and_an_iban_is_stored_without_them() {
    let s = start(|_| {}).await;
    let q = "Ich bin Frau Petra Hoffmann, Tel. 0171 2345678, IBAN DE89 3704 0044 0532 0130 00. Wie hoch ist die Hundesteuer?";
    let a = s.ask(q).await;
    let stored = s.store.insights_since(0, 100).unwrap();
    assert_eq!(stored.len(), 1, "one question recorded");
    let r = &stored[0];
    for secret in ["Petra", "Hoffmann", "0171", "2345678", "DE89", "3704", "0130"] {
        assert!(!r.question.contains(secret), "{secret} stored: {}", r.question);
    }
    assert!(r.question.contains("[Name]") && r.question.contains("[Telefon]") && r.question.contains("[IBAN]"), "{}", r.question);
    assert!(r.question.ends_with("Wie hoch ist die Hundesteuer?"), "{}", r.question);
    let outcome = if a["refused"] == true { Outcome::Refused } else { Outcome::Answered };
    assert_eq!((r.day, r.lang.as_str(), r.outcome), (today(), "de", outcome));
    // an answered question with its cited page; a thumbs-down turns the record's outcome
    let a = s.ask("Wie hoch ist die Hundesteuer?").await;
    let r = s.store.insights_since(0, 100).unwrap()[1].clone();
    assert_eq!((r.outcome, r.cited.clone()), (Outcome::Answered, vec!["http://town.test/hundesteuer/".to_string()]), "{a}");
    let id = a["id"].as_str().unwrap();
    let f = s.send(&ANON, Method::POST, "/api/v1/feedback", Some(json!({"answer_id": id, "helpful": false}))).await;
    assert_eq!(f.status, 204, "{}", f.text);
    // the rating reaches the record after the answer to it: wait for it
    wait_until_async(Duration::from_secs(5), || async { s.store.insights_since(0, 100).unwrap()[1].outcome == Outcome::RatedDown }).await;
    assert_eq!(s.store.insights_since(0, 100).unwrap()[1].outcome, Outcome::RatedDown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_question_and_its_paraphrases_land_in_one_topic() {
    let s = start(|_| {}).await;
    for q in ["Wo kann ich Sperrmüll anmelden?", "Wie melde ich meinen Sperrmüll an?", "Sperrmüll anmelden, wie geht das?", "Wann ist die Bücherei geöffnet?"] {
        s.ask(q).await;
    }
    let alice = s.login("alice").await;
    let r = s.get(&alice, "/portal/api/insights/topics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["min_questions"], 3);
    let topics = v["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "{v}");
    let t = &topics[0];
    assert_eq!((t["questions"].as_i64(), t["refused"].as_i64(), t["answered"].as_i64()), (Some(3), Some(3), Some(0)), "{t}");
    assert_eq!(t["weeks"].as_array().unwrap().last().unwrap(), 3);
    assert_eq!(t["samples"].as_array().unwrap().len(), 3);
    assert!(t["label"].as_str().unwrap().contains("Sperrmüll"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_under_the_threshold_are_not_shown() {
    let s = start(|_| {}).await;
    for q in ["Wo kann ich Sperrmüll anmelden?", "Wie melde ich meinen Sperrmüll an?"] {
        s.ask(q).await;
    }
    assert_eq!(s.store.insights_since(0, 100).unwrap().len(), 2);
    let admin = s.login("admin").await;
    let r = s.get(&admin, "/portal/api/insights/topics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["topics"], json!([]), "two questions are no topic yet");
    let csv = s.get(&admin, "/portal/api/insights/topics?format=csv").await;
    assert!(!csv.text.contains("Sperrmüll"), "{}", csv.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_without_editor_rights_get_403() {
    let s = start(|_| {}).await;
    let bob = s.login("bob").await;
    for (method, path) in [
        (Method::GET, "/portal/api/insights/topics"),
        (Method::GET, "/portal/api/insights/topics?format=csv"),
        (Method::POST, "/portal/api/insights/topics/1/done"),
        (Method::DELETE, "/portal/api/insights/questions/1"),
        (Method::DELETE, "/portal/api/insights"),
    ] {
        let r = s.send(&bob, method.clone(), path, None).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("Redakteurinnen"), "{}", r.text);
        let r = s.send(&ANON, method.clone(), path, None).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text);
    }
    let me = s.get(&bob, "/portal/api/me").await.json();
    assert_eq!(me["insights"], false);
    let alice = s.login("alice").await;
    assert_eq!(s.get(&alice, "/portal/api/me").await.json()["insights"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_entries() {
    let s = start(|c| c.insights.retention_days = 90).await;
    for day in [today() - 120, today() - 90, today() - 89, today()] {
        s.store
            .add_insight(&NewQuestion { day, lang: "de".into(), outcome: Outcome::Refused, cited: vec![], question: "Sperrmüll?".into(), embedding: None })
            .unwrap();
    }
    lotse_server::insights::expire(&s.state).await;
    let days: Vec<i64> = s.store.insights_since(0, 100).unwrap().iter().map(|q| today() - q.day).collect();
    assert_eq!(days, vec![89, 0], "kept are the last 90 days");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_insights_disabled_nothing_is_stored() {
    let s = start(|c| c.insights.enabled = false).await;
    s.ask("Wo kann ich Sperrmüll anmelden?").await;
    s.ask("Wie hoch ist die Hundesteuer?").await;
    // nothing may appear: watch the store for 300 ms (a recording would start with the answer)
    wait_until_async(Duration::from_millis(300), || async { !s.store.insights_since(0, 100).unwrap().is_empty() }).await;
    assert!(s.store.insights_since(0, 100).unwrap().is_empty());
    let alice = s.login("alice").await;
    let r = s.get(&alice, "/portal/api/insights/topics").await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("insights_disabled")), "{}", r.text);
    assert_eq!(s.get(&alice, "/portal/api/me").await.json()["insights"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_mark_and_delete_are_audited() {
    let s = start(|_| {}).await;
    for q in ["=1+1 Sperrmüll anmelden", "Wo kann ich Sperrmüll anmelden?", "Wie melde ich meinen Sperrmüll an?"] {
        s.ask(q).await;
    }
    let alice = s.login("alice").await;
    let csv = s.get(&alice, "/portal/api/insights/topics?format=csv").await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(csv.text.starts_with("thema,fragen,"), "{}", csv.text);
    // the label (the shortest wording) is a formula: defused with a leading '
    assert!(csv.text.contains("\n'=1+1 Sperrmüll anmelden,3,"), "{}", csv.text);
    let topics = s.get(&alice, "/portal/api/insights/topics").await.json();
    let t = &topics["topics"][0];
    let id = t["id"].as_i64().unwrap();
    // erledigt: the mark shows, and later questions count as asked since
    let r = s.send(&alice, Method::POST, &format!("/portal/api/insights/topics/{id}/done"), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    s.ask("Sperrmüll anmelden, wie geht das?").await;
    let t = s.get(&alice, "/portal/api/insights/topics").await.json()["topics"][0].clone();
    assert_eq!((t["done"].is_string(), t["asked_since_done"].as_i64(), t["answered_since_done"].as_i64()), (true, Some(1), Some(0)), "{t}");
    assert_eq!(s.send(&alice, Method::POST, "/portal/api/insights/topics/999999/done", None).await.status, 404);
    // delete one question, then everything
    let sample = t["samples"][0]["id"].as_i64().unwrap();
    assert_eq!(s.send(&alice, Method::DELETE, &format!("/portal/api/insights/questions/{sample}"), None).await.status, 204);
    assert_eq!(s.send(&alice, Method::DELETE, &format!("/portal/api/insights/questions/{sample}"), None).await.status, 404);
    assert_eq!(s.store.insights_since(0, 100).unwrap().len(), 3);
    assert_eq!(s.send(&alice, Method::DELETE, "/portal/api/insights", None).await.status, 204);
    assert!(s.store.insights_since(0, 100).unwrap().is_empty());
    // who exported and who deleted, without a question's text
    let audit = s.store.audit_log(0, 100).unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|a| (a.action.as_str(), a.user.as_str())).collect();
    for action in ["insights_export", "insights_done", "insights_delete", "insights_delete_all"] {
        assert!(actions.contains(&(action, "alice")), "{action}: {actions:?}");
    }
    assert!(!audit.iter().any(|a| a.content.as_deref().unwrap_or("").contains("Sperrmüll")));
}

/// The real embedder's file, or `None` ("skipped"; a failure with LOTSE_REQUIRE_MODELS).
fn real_embedder() -> Option<lotse_inference::embed::E5Embedder> {
    let dir = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/cache")));
    let path = dir.join("e5-small-q4.bin");
    if !path.is_file() {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "LOTSE_REQUIRE_MODELS is set but {} is missing", path.display());
        println!("skipped: model file not found at {}, run `lotse models fetch`", path.display());
        return None;
    }
    Some(lotse_inference::embed::E5Embedder::load_e5s1(&path).expect("load e5-small-q4.bin"))
}

/// With the real embedder and the default threshold: paraphrases are one topic, other
/// questions about the town are not.
#[test]
fn the_embedder_groups_paraphrases_and_keeps_other_questions_apart() {
    use lotse_inference::{EmbedKind, Embedder};
    let Some(e) = real_embedder() else { return };
    let texts = [
        "Wo kann ich Sperrmüll anmelden?",
        "Wie bestelle ich die Abholung von Sperrmüll?",
        "Wann hat das Bürgerbüro geöffnet?",
        "Öffnungszeiten des Bürgerbüros",
        "Wie hoch ist die Hundesteuer?",
        "Wo kann ich in Bad Boll Schlittschuh laufen?",
        "Gibt es eine Eisbahn in Bad Boll?",
        "Wann ist der nächste Gemeinderat?",
    ];
    let vs = e.embed(&texts, EmbedKind::Query).unwrap();
    for (i, a) in vs.iter().enumerate() {
        let row: Vec<String> = vs.iter().map(|b| format!("{:.3}", a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>())).collect();
        println!("{:<50} {}", texts[i], row.join(" "));
    }
    let qs: Vec<lotse_portal::insights::StoredQuestion> = texts
        .iter()
        .zip(vs)
        .enumerate()
        .map(|(i, (t, v))| lotse_portal::insights::StoredQuestion {
            id: i as i64,
            day: 1,
            lang: "de".into(),
            outcome: Outcome::Refused,
            cited: vec![],
            question: t.to_string(),
            embedding: Some(("e5".into(), v)),
            done_day: None,
        })
        .collect();
    let g = lotse_portal::insights::group(&qs, Config::default().insights.similarity, "Gemeinde Bad Boll");
    println!("{g:?}");
    let together = |a: usize, b: usize| g.iter().any(|m| m.contains(&a) && m.contains(&b));
    assert!(together(0, 1) && together(2, 3) && together(5, 6), "{g:?}");
    for (a, b) in [(0, 2), (0, 4), (2, 4), (4, 7), (0, 7), (5, 7)] {
        assert!(!together(a, b), "{} / {}: {g:?}", texts[a], texts[b]);
    }
}
