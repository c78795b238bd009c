//! Two `lotse serve` replicas of the real binary behind a small HTTP proxy, sharing one
//! PostgreSQL database and one index directory (issue 34.2): what is made through one replica
//! is served by the other (a session, a collection with an upload, a staff approval of a
//! legal text's rewrite, the record a rating needs), and a replica killed (SIGKILL) during a
//! load run costs nothing but the proxy's designed 503s: every acknowledged upload is there
//! afterwards, listed and found, and none that was not attempted.
//!
//! Needs PostgreSQL: `LOTSE_TEST_POSTGRES` (set by `scripts/test-postgres.sh`); without it
//! the test says so and passes. The engine is a fake OpenAI-compatible server on 127.0.0.1
//! (`FakeSplittingEngine`: it splits the text to rewrite at every ", "), so no model is needed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "ein-richtig-langes-Passwort";
/// A statute of the fixture site (a legal text: its model rewrite waits for a staff review).
const LEGAL_PATH: &str = "/ortsrecht/bbo-satzung-freibad/";

fn fixture_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/sites/bad-boll")
}

fn lotse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lotse"));
    c.env_remove("LOTSE_ENGINE").env_remove("LOTSE_CONFIG").env("RUST_LOG", "warn,lotse=info");
    c
}

// ---- a fake engine: the splitting rewriter over the OpenAI chat API -------------------------

/// An OpenAI-compatible engine on 127.0.0.1 without a model: asked to rewrite a text (the
/// last user turn's part after "Text:"), it splits it at every ", " into capitalised
/// sentences; anything else it answers with "KEINE ANTWORT". Streams the reply in one piece.
struct FakeSplittingEngine {
    port: u16,
    stop: Arc<AtomicBool>,
    chats: Arc<AtomicUsize>,
}

impl FakeSplittingEngine {
    fn start() -> FakeSplittingEngine {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let chats = Arc::new(AtomicUsize::new(0));
        let (s2, c2) = (stop.clone(), chats.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let c2 = c2.clone();
                std::thread::spawn(move || fake_engine_serve(stream, &c2));
            }
        });
        FakeSplittingEngine { port, stop, chats }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for FakeSplittingEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn fake_engine_serve(stream: TcpStream, chats: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = stream;
    if request_line.starts_with("GET ") {
        let body = r#"{"object":"list","data":[{"id":"fake-splitting","object":"model"}]}"#;
        let _ = write!(out, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        return;
    }
    chats.fetch_add(1, Ordering::SeqCst);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let last = request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
    let reply = match last.rsplit_once("\nText:\n") {
        Some((_, unit)) => unit.trim().split(", ").map(capitalised).collect::<Vec<_>>().join(".\n"),
        None => {
            // a citizen's question: as slow as a small model, so a replica killed during the
            // load run has answers in flight
            std::thread::sleep(Duration::from_millis(300));
            "KEINE ANTWORT".to_string()
        }
    };
    let _ = write!(out, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
    let event = json!({"choices": [{"index": 0, "delta": {"content": reply}, "finish_reason": null}]});
    let _ = out.write_all(format!("data: {event}\n\ndata: [DONE]\n\n").as_bytes());
    let _ = out.flush();
}

// ---- the replicas ---------------------------------------------------------------------------

struct Replica {
    name: &'static str,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn start(name: &'static str, data: &Path, database: &str, engine: &str) -> Replica {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = data.parent().unwrap().join(format!("{name}.log"));
        let child = lotse()
            .args(["serve", "--data"])
            .arg(data)
            .args(["--addr", &format!("127.0.0.1:{port}"), "--engine", "openai", "--engine-url", engine, "--engine-model", "fake-splitting"])
            .env("LOTSE__PORTAL__DATABASE", database)
            .env("LOTSE__SIMPLIFY__PREGENERATE", "false")
            .env("LOTSE__LIMITS__SEARCH_PER_SECOND", "0")
            .env("LOTSE__LIMITS__CHAT_PER_MINUTE", "0")
            .env("LOTSE__PORTAL__LOGIN_PER_MINUTE", "0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica { name, port, child, log }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("http://{}/ready", self.addr())).send().await
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("replica {} exited ({status}): {}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "replica {} not ready: {}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no graceful shutdown, no cleanup
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- a small proxy: round robin, the next replica when one refuses the connection ----------

/// An HTTP proxy as nginx or Caddy would be set up in front of replicas: each request goes
/// to the next replica in turn; a replica that refuses the connection is skipped (nothing
/// was sent); a replica that fails after the request was sent gives the client a 503 with
/// Retry-After (the request may or may not have been done: the designed answer).
struct Proxy {
    addr: SocketAddr,
    designed_503: Arc<AtomicUsize>,
}

async fn start_proxy(backends: Vec<String>) -> Proxy {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    struct P {
        backends: Vec<String>,
        next: AtomicUsize,
        client: reqwest::Client,
        designed_503: Arc<AtomicUsize>,
    }
    fn unavailable(p: &P) -> Response {
        p.designed_503.fetch_add(1, Ordering::SeqCst);
        Response::builder().status(503).header("retry-after", "1").body(Body::from("replica failed")).unwrap()
    }
    async fn forward(State(p): State<Arc<P>>, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else { return unavailable(&p) };
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
        let first = p.next.fetch_add(1, Ordering::SeqCst);
        for k in 0..p.backends.len() {
            let backend = &p.backends[(first + k) % p.backends.len()];
            let mut r = p.client.request(parts.method.clone(), format!("http://{backend}{path}"));
            for (name, value) in &parts.headers {
                if name != "host" && name != "content-length" && name != "connection" {
                    r = r.header(name, value);
                }
            }
            match r.body(bytes.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let Ok(body) = resp.bytes().await else { return unavailable(&p) };
                    let mut out = Response::builder().status(status);
                    for (name, value) in &headers {
                        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                            out = out.header(name, value);
                        }
                    }
                    return out.body(Body::from(body)).unwrap();
                }
                Err(e) if e.is_connect() => continue,
                Err(_) => return unavailable(&p),
            }
        }
        unavailable(&p)
    }
    let designed_503 = Arc::new(AtomicUsize::new(0));
    let p = Arc::new(P {
        backends,
        next: AtomicUsize::new(0),
        client: reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(60)).build().unwrap(),
        designed_503: designed_503.clone(),
    });
    let app = axum::Router::new().fallback(forward).with_state(p);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Proxy { addr, designed_503 }
}

// ---- a staff member's requests --------------------------------------------------------------

#[derive(Clone)]
struct Staff {
    cookie: String,
    csrf: String,
}

async fn login(client: &reqwest::Client, at: &str, name: &str) -> Staff {
    let r = client.post(format!("http://{at}/portal/api/login")).json(&json!({"name": name, "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 200, "login at {at}");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    Staff { cookie, csrf: body["csrf"].as_str().unwrap().to_string() }
}

async fn send(client: &reqwest::Client, who: &Staff, method: reqwest::Method, url: String, body: Option<Vec<u8>>) -> (u16, Value) {
    let mut r = client.request(method, url).header("cookie", &who.cookie).header("x-csrf-token", &who.csrf);
    if let Some(b) = body {
        // JSON bodies say so; uploads are the file's bytes
        if b.first() == Some(&b'{') {
            r = r.header("content-type", "application/json");
        }
        r = r.body(b);
    }
    match r.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(e) => panic!("request failed below HTTP: {e}"),
    }
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn documents(client: &reqwest::Client, at: &str, who: &Staff, collection: i64) -> BTreeSet<String> {
    let (status, body) = send(client, who, reqwest::Method::GET, format!("http://{at}/portal/api/collections/{collection}/documents"), None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().iter().map(|d| d["file_name"].as_str().unwrap().to_string()).collect()
}

async fn found(client: &reqwest::Client, at: &str, who: &Staff, collection: i64, word: &str) -> bool {
    let (status, body) = send(client, who, reqwest::Method::GET, format!("http://{at}/portal/api/search?q={word}&collections={collection}"), None).await;
    status == 200 && body.to_string().contains(word)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_state_and_a_killed_one_loses_nothing() {
    let Ok(server) = std::env::var(lotse_portal::store::testing::POSTGRES_ENV) else {
        eprintln!("replica test skipped: set LOTSE_TEST_POSTGRES (scripts/test-postgres.sh runs it)");
        return;
    };
    let database = lotse_portal::store::testing::fresh_database(server.trim()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // the town's site, crawled once into the shared index directory; two accounts
    let site = lotse_testsite::SiteServer::start(fixture_site()).unwrap();
    let out = lotse().args(["crawl", &site.url("/"), "--no-embed", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "crawl: {}", String::from_utf8_lossy(&out.stderr));
    for (name, role) in [("anna", "admin"), ("bert", "staff")] {
        let out = lotse()
            .args(["admin", "create-user", "--name", name, "--role", role, "--groups", "bauamt", "--database", &database, "--data"])
            .arg(&data)
            .env("LOTSE_ADMIN_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(out.status.success(), "create-user: {}", String::from_utf8_lossy(&out.stderr));
        let out = lotse().args(["admin", "set-level", "--name", name, "--level", "gold", "--database", &database, "--data"]).arg(&data).output().unwrap();
        assert!(out.status.success(), "set-level: {}", String::from_utf8_lossy(&out.stderr));
    }

    let engine = FakeSplittingEngine::start();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(60)).build().unwrap();
    // both start at once: they migrate the same database (one waits for the other)
    let mut a = Replica::start("a", &data, &database, &engine.url());
    let mut b = Replica::start("b", &data, &database, &engine.url());
    a.wait_ready(&client).await;
    b.wait_ready(&client).await;
    let (at_a, at_b) = (a.addr(), b.addr());

    // 1. a session made on A is valid on B
    let anna = login(&client, &at_a, "anna").await;
    let (status, me) = send(&client, &anna, reqwest::Method::GET, format!("http://{at_b}/portal/api/me"), None).await;
    assert_eq!((status, me["user"]["name"].as_str()), (200, Some("anna")), "{me}");

    // 2. a collection and an upload made on A are listed and searchable on B
    let (status, col) = send(
        &client,
        &anna,
        reqwest::Method::POST,
        format!("http://{at_a}/portal/api/collections"),
        Some(serde_json::to_vec(&json!({"title": "Bauamt intern", "owner": {"kind": "group", "id": "bauamt"}})).unwrap()),
    )
    .await;
    assert_eq!(status, 201, "{col}");
    let collection = col["id"].as_i64().unwrap();
    let text = "Die Bearbeitungszeit für Bauanträge beträgt im Bauamt Zauberwald siebzehn Werktage.";
    let (status, up) = send(&client, &anna, reqwest::Method::PUT, format!("http://{at_a}/portal/api/collections/{collection}/documents/merkblatt.txt"), Some(text.as_bytes().to_vec())).await;
    assert_eq!(status, 201, "{up}");
    let (status, cols) = send(&client, &anna, reqwest::Method::GET, format!("http://{at_b}/portal/api/collections"), None).await;
    assert!(status == 200 && cols.as_array().unwrap().iter().any(|c| c["id"] == collection), "{cols}");
    assert!(documents(&client, &at_b, &anna, collection).await.contains("merkblatt.txt"));
    wait_for("B finds the upload made on A", Duration::from_secs(20), || found(&client, &at_b, &anna, collection, "Zauberwald")).await;

    // 3. a staff approval made on A: citizens asking B get the approved rewrite
    let legal = site.url(LEGAL_PATH);
    let simplify = |at: String| {
        let (client, legal) = (client.clone(), legal.clone());
        async move {
            let r = client.get(format!("http://{at}/api/v1/simplify")).query(&[("url", legal.as_str())]).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, page) = simplify(at_a.clone()).await;
    assert!(status == 200 || status == 202, "{status} {page}");
    let reviews = format!("http://{at_a}/portal/api/simplify/reviews");
    let end = Instant::now() + Duration::from_secs(60);
    let key = loop {
        let (status, list) = send(&client, &anna, reqwest::Method::GET, reviews.clone(), None).await;
        assert_eq!(status, 200, "{list}");
        let entry = list.as_array().and_then(|l| l.iter().find(|e| e["url"].as_str().is_some_and(|u| u.ends_with(LEGAL_PATH))).cloned());
        if let Some(e) = entry {
            break e["key"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < end, "A did not make the model's rewrite of the statute: {list}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (_, page) = simplify(at_b.clone()).await;
    assert_eq!(page["review"]["status"], "pending", "not approved yet: {page}");
    let (status, d) = send(
        &client,
        &anna,
        reqwest::Method::POST,
        format!("{reviews}/{key}"),
        Some(serde_json::to_vec(&json!({"status": "approved"})).unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    // B caches decisions for at most 10 s
    wait_for("B serves the approved rewrite", Duration::from_secs(20), || {
        let s = simplify(at_b.clone());
        async move { s.await.1["review"]["status"] == "approved" }
    })
    .await;

    // 4. an answer given by A is rated through B
    let r = client.post(format!("http://{at_a}/api/v1/chat")).json(&json!({"question": "Wann hat das Freibad geöffnet?"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let id = answer["id"].as_str().unwrap().to_string();
    let r = client.post(format!("http://{at_b}/api/v1/feedback")).json(&json!({"answer_id": id, "helpful": false})).send().await.unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "a rating through B of A's answer {id:?}: {status} {}; A's log: {}",
        r.text().await.unwrap_or_default(),
        std::fs::read_to_string(&a.log).unwrap_or_default()
    );

    // 5. a load run through the proxy; A is killed in the middle of it
    let proxy = start_proxy(vec![at_a.clone(), at_b.clone()]).await;
    let via = proxy.addr.to_string();
    let started = Instant::now();
    let run_for = Duration::from_secs(12);
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (client, anna, via) = (client.clone(), anna.clone(), via.clone());
        tasks.push(tokio::spawn(async move {
            // (file name, word, status) of every upload; statuses of every search and question
            let mut uploads = Vec::new();
            let mut searches: BTreeMap<u16, usize> = BTreeMap::new();
            let mut questions: BTreeMap<u16, usize> = BTreeMap::new();
            let mut i = 0;
            while started.elapsed() < run_for {
                let name = format!("last-{t}-{i}.txt");
                let word = format!("Prüfwort{t}x{i}q");
                let body = format!("Vermerk {i} der Gruppe {t}: das {word} gehört zu diesem Dokument.");
                let url = format!("http://{via}/portal/api/collections/{collection}/documents/{name}");
                let (status, _) = send(&client, &anna, reqwest::Method::PUT, url, Some(body.into_bytes())).await;
                uploads.push((name, word, status));
                let r = client.get(format!("http://{via}/api/v1/search?q=Freibad%20Eintritt")).send().await.expect("the proxy always answers");
                *searches.entry(r.status().as_u16()).or_default() += 1;
                let q = json!({"question": format!("Was kostet der Eintritt ins Freibad für Gruppe {t}?")});
                let r = client.post(format!("http://{via}/api/v1/chat")).json(&q).send().await.expect("the proxy always answers");
                *questions.entry(r.status().as_u16()).or_default() += 1;
                i += 1;
            }
            (uploads, searches, questions)
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.kill();
    let killed_at = started.elapsed();
    let mut uploads = Vec::new();
    let mut searches: BTreeMap<u16, usize> = BTreeMap::new();
    let mut questions: BTreeMap<u16, usize> = BTreeMap::new();
    for t in tasks {
        let (u, s, q) = t.await.unwrap();
        uploads.extend(u);
        for (k, v) in s {
            *searches.entry(k).or_default() += v;
        }
        for (k, v) in q {
            *questions.entry(k).or_default() += v;
        }
    }
    let mut upload_statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, _, s) in &uploads {
        *upload_statuses.entry(*s).or_default() += 1;
    }
    eprintln!(
        "load run: {} uploads {upload_statuses:?}, searches {searches:?}, questions {questions:?}, A killed after {:.1} s, proxy 503s {}",
        uploads.len(),
        killed_at.as_secs_f64(),
        proxy.designed_503.load(Ordering::SeqCst)
    );
    // nothing but success and the designed 503 (the proxy's, or a replica's busy index)
    for (status, n) in upload_statuses.iter().chain(searches.iter()).chain(questions.iter()) {
        assert!(*status == 201 || *status == 200 || *status == 503, "{n} requests answered {status}");
    }
    assert!(upload_statuses.get(&201).copied().unwrap_or(0) >= 8, "too few uploads succeeded: {upload_statuses:?}");
    assert!(searches.get(&200).copied().unwrap_or(0) >= 8, "{searches:?}");
    assert!(questions.get(&200).copied().unwrap_or(0) >= 8, "{questions:?}");

    // 6. nothing lost: every acknowledged upload is listed and found through B, and nothing
    // is listed that was not attempted
    let attempted: BTreeSet<String> = uploads.iter().map(|(n, _, _)| n.clone()).chain(["merkblatt.txt".to_string()]).collect();
    let listed = documents(&client, &at_b, &anna, collection).await;
    for (name, word, status) in &uploads {
        if *status == 201 {
            assert!(listed.contains(name), "{name} was acknowledged but is not listed");
            wait_for(&format!("B finds {word}"), Duration::from_secs(20), || found(&client, &at_b, &anna, collection, word)).await;
        }
    }
    assert!(listed.is_subset(&attempted), "listed but never uploaded: {:?}", listed.difference(&attempted).collect::<Vec<_>>());

    // 7. A comes back on the same data: its start-up reconcile clears what the kill left, and it
    // serves the uploads made on B while it was down
    let mut a = Replica::start("a", &data, &database, &engine.url());
    a.wait_ready(&client).await;
    let listed_after = documents(&client, &a.addr(), &anna, collection).await;
    assert_eq!(listed_after, documents(&client, &at_b, &anna, collection).await);
    let last_ok = uploads.iter().rev().find(|(_, _, s)| *s == 201).unwrap();
    let at_a = a.addr();
    wait_for("the restarted A finds an upload made on B", Duration::from_secs(20), || found(&client, &at_a, &anna, collection, &last_ok.1)).await;
    // every listed document has its chunks (none is an upload that died halfway)
    let (_, docs) = send(&client, &anna, reqwest::Method::GET, format!("http://{}/portal/api/collections/{collection}/documents", a.addr()), None).await;
    for d in docs.as_array().unwrap() {
        assert!(d["n_chunks"].as_i64().unwrap_or(0) > 0, "a listed document without chunks: {d}");
    }
    assert!(engine.chats.load(Ordering::SeqCst) > 0, "the rewrite went to the engine");
    drop(b);
}
