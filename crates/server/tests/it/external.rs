//! Issue 31.1: with the main engine external (the only engine), no private text and no
//! personal data reach it, wherever the call starts: the portal chat over a group collection,
//! a staff question with personal data, the citizen chat (JSON and SSE), the
//! OpenAI-compatible `/v1` face and the CMS's text to simplify. The engine is a fake that
//! logs every message it receives (`FakeRecordingExternalEngine`); real tantivy index, real
//! SQLite portal, real axum server on 127.0.0.1. Also: the models list, the audit log, the
//! AI register and `/ready` call that engine external.

use std::net::SocketAddr;
use std::sync::Arc;

use lotse_answer::{AnswerConfig, Answerer};
use lotse_inference::generate::GenerationService;
use lotse_inference::{Generator, ModelInfo};
use lotse_portal::auth::{self, Level, Role};
use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
use lotse_server::portal::{External, Portal};
use lotse_server::simplify::SimplifyService;
use lotse_server::{AppState, Config};
use lotse_simplify::{Glossary, Simplifier};
use lotse_test_support::{FakeRecordingExternalEngine, town_index};
use serde_json::{Value, json};

const PASSWORD: &str = "richtig-langes-Passwort";
const CMS_TOKEN: &str = "cms-test-token-0123456789";

/// Private text and personal data that must never reach the external engine.
const DOC_CANARY: &str = "Kanarienvogel-Weisung-8812";
const CANARIES: [&str; 7] = [
    DOC_CANARY,
    "Hoffmann",
    "hoffmann@web.de",
    "DE89 3704 0044 0532 0130 00",
    "Yilmazbey",
    "0171 2345678",
    "Lindenweg 17",
];

struct Server {
    addr: SocketAddr,
    engine: Arc<FakeRecordingExternalEngine>,
    /// The in-house portal model (`intern`), when the server has one.
    in_house: Option<Arc<FakeRecordingExternalEngine>>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_string()
    }
    fn message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap_or("").to_string()
    }
}

/// A signed-in staff member: cookie and CSRF token.
#[derive(Clone)]
struct Who {
    cookie: String,
    csrf: String,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    async fn send(&self, who: Option<&Who>, method: reqwest::Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
        let mut r = self.client.request(method, self.url(path));
        if let Some(w) = who {
            r = r.header("cookie", &w.cookie).header("x-csrf-token", &w.csrf);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        Resp { status: resp.status().as_u16(), text: resp.text().await.unwrap_or_default() }
    }
    async fn post(&self, who: Option<&Who>, path: &str, body: Value) -> Resp {
        self.send(who, reqwest::Method::POST, path, Some(body), &[]).await
    }
    async fn get(&self, who: Option<&Who>, path: &str) -> Resp {
        self.send(who, reqwest::Method::GET, path, None, &[]).await
    }
    async fn login(&self, name: &str) -> Who {
        let resp = self
            .client
            .post(self.url("/portal/api/login"))
            .json(&json!({"name": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "login {name}");
        let set = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
        // the whole "name=value" pair (the name is "__Host-lotse_session" with secure cookies)
        let cookie = set.split(';').next().unwrap().to_string();
        let body: Value = resp.json().await.unwrap();
        Who { cookie, csrf: body["csrf"].as_str().unwrap().to_string() }
    }
}

/// The server with one engine, external: `admin` (gold), `alice` (editor of bauamt,
/// bronze: may use external engines), `bob` (staff of bauamt, seepferdchen: may not).
async fn start() -> Server {
    start_with(false).await
}

/// [`start`]; with `in_house`, also a portal model `intern` on the administration's own
/// hardware (`[[portal.external]] external = false`).
async fn start_with(in_house: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.limits.chat_per_minute = 0;
    config.limits.search_per_second = 0;
    config.cms.token = Some(CMS_TOKEN.into());
    let index = town_index(&dir.path().join("index"));
    let engine = Arc::new(FakeRecordingExternalEngine::new());
    let generation = Arc::new(GenerationService::new(engine.clone(), 1, 8));
    let answerer = Arc::new(Answerer::new(index, None, Some(generation.clone()), AnswerConfig { ..config.answer_config() }));
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let hash = auth::hash_password(PASSWORD).unwrap();
    for (name, role, level) in [("admin", Role::Admin, Level::Gold), ("alice", Role::Editor, Level::Bronze), ("bob", Role::Staff, Level::Seepferdchen)] {
        let groups = if role == Role::Admin { vec![] } else { vec!["bauamt".to_string()] };
        let id = store.create_user(name, name, Some(&hash), role, &groups).unwrap();
        store.set_level(id, level).unwrap();
    }
    let in_house = in_house.then(|| Arc::new(FakeRecordingExternalEngine::with("fake-in-house", false)));
    let models = in_house
        .iter()
        .map(|g| External {
            name: "intern".into(),
            label: "Großes Modell (eigener Server)".into(),
            provider: "Fachbereich IT".into(),
            service: Arc::new(GenerationService::new(g.clone(), 1, 8)),
        })
        .collect();
    let portal = Portal::new(store.clone(), Check::parse(DEFAULT_CHECK).unwrap(), DEFAULT_TEXT.to_string(), config.portal.levels.clone(), models);
    // the register was seeded when this server still ran a local model; now the engine is
    // external and the entries must say so
    let was_local = ModelInfo { id: "qwen-local".into(), external: false, context_len: 4096 };
    lotse_server::portal::seed_register(&portal, &was_local, None, "Fachbereich IT").unwrap();
    lotse_server::portal::seed_register(&portal, engine.info(), Some("https://ki.anbieter.example/v1"), "Fachbereich IT").unwrap();
    let simplify_store = Arc::new(lotse_server::rewrites::RewriteStore::open(&dir.path().join("simplify.sqlite")).unwrap());
    let simplifier = Arc::new(Simplifier::new(engine.clone(), Glossary::default_terms()));
    // no worker: only the CMS route's decision is tested here (public pages may go)
    let svc = SimplifyService::new(answerer.shared_index(), None, simplifier, simplify_store, 8, false);
    let state = AppState::new(config);
    state.set_answerer(answerer);
    state.set_simplify(svc);
    state.set_portal(Arc::new(portal));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lotse_server::serve(listener, state, std::future::pending()));
    Server { addr, engine, in_house, client: reqwest::Client::new(), _dir: dir }
}

fn assert_no_canary(s: &Server) {
    let log = s.engine.log();
    let leaked: Vec<&str> = CANARIES.iter().copied().filter(|c| log.contains(c)).collect();
    assert!(leaked.is_empty(), "{} of {} canaries reached the external engine: {leaked:?}", leaked.len(), CANARIES.len());
}

#[tokio::test]
async fn an_external_main_engine_gets_no_private_text_and_no_personal_data() {
    let s = start().await;
    let alice = s.login("alice").await;
    let bob = s.login("bob").await;

    // a group collection with the canary
    let r = s.post(Some(&alice), "/portal/api/collections", json!({"title": "Bauamt intern", "owner": {"kind": "group", "id": "bauamt"}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let col = r.json()["id"].as_i64().unwrap();
    let up = s
        .client
        .put(s.url(&format!("/portal/api/collections/{col}/documents/weisung.txt")))
        .header("cookie", &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .body(format!("Die Hundesteuer wird intern nach {DOC_CANARY} erhoben. Die Hundesteuer beträgt intern 99 Euro."))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 201);

    // 1. staff chat over the group collection (alone and with the website): refused, in German
    for body in [
        json!({"question": "Wie hoch ist die Hundesteuer?", "collections": [col]}),
        json!({"question": "Wie hoch ist die Hundesteuer?", "collections": [col], "website": true, "model": "lokal"}),
    ] {
        let r = s.post(Some(&alice), "/portal/api/chat", body).await;
        assert_eq!((r.status, r.code().as_str()), (403, "external_private"), "{}", r.text);
        let m = r.message();
        assert!(m.contains("Interne Sammlungen") && m.contains("nur ein externes Modell") && m.contains("Sie "), "{m}");
    }
    // 2. staff questions with personal data, over the website only: refused
    for q in [
        "Frau Petra Hoffmann fragt, wie hoch die Hundesteuer ist.",
        "Wie hoch ist die Hundesteuer? Antwort bitte an hoffmann@web.de",
        "Die Hundesteuer von DE89 3704 0044 0532 0130 00 abbuchen?",
    ] {
        let r = s.post(Some(&alice), "/portal/api/chat", json!({"question": q, "website": true})).await;
        assert_eq!((r.status, r.code().as_str()), (403, "external_pii"), "{q}: {}", r.text);
        assert!(r.message().contains("personenbezogene") && !r.message().contains("lokales Modell"), "{}", r.message());
    }
    // a staff member without the KI-Kompass level for external services may not use it at all
    let r = s.post(Some(&bob), "/portal/api/chat", json!({"question": "Wie hoch ist die Hundesteuer?", "website": true})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "level"), "{}", r.text);
    assert_eq!(s.engine.calls(), 0, "nothing reached the external engine");

    // 3. citizens: a question with personal data is answered without the engine
    let r = s.post(None, "/api/v1/chat", json!({"question": "Ich bin Frau Hoffmann, Lindenweg 17. Wie hoch ist die Hundesteuer?"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = r.json();
    assert!(a["answer"].as_str().unwrap().contains("108 Euro"), "{a}");
    assert_eq!(a["extractive"], true, "{a}");
    assert_eq!(a["model"], "", "no model answered: {a}");
    // ... also streamed, and with the personal data in the history only
    let r = s
        .send(
            None,
            reqwest::Method::POST,
            "/api/v1/chat",
            Some(json!({"question": "Und wann ist sie fällig?", "history": [{"role": "user", "content": "Herr Yilmazbey, Tel. 0171 2345678, hat einen Hund."}, {"role": "assistant", "content": "Die Hundesteuer beträgt 108 Euro [1]."}]})),
            &[("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("event: done"), "{}", r.text);
    // 4. the OpenAI-compatible face, which answers from the public website like the citizen chat
    for messages in [
        json!([{"role": "user", "content": "Was kostet die Hundesteuer? Mein Konto: DE89 3704 0044 0532 0130 00"}]),
        json!([{"role": "user", "content": "Ich bin Frau Hoffmann (hoffmann@web.de)."}, {"role": "assistant", "content": "Guten Tag."}, {"role": "user", "content": "Wann hat die Bücherei geöffnet?"}]),
    ] {
        let r = s.post(None, "/v1/chat/completions", json!({"model": "lotse", "messages": messages})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.json()["choices"][0]["message"]["content"].as_str().unwrap().is_empty());
    }
    // 5. the CMS's text to put into Einfache Sprache
    let r = s
        .send(None, reqwest::Method::POST, "/api/v1/simplify", Some(json!({"text": "Ansprechpartnerin ist Frau Petra Hoffmann, Telefon 0171 2345678."})), &[("authorization", &format!("Bearer {CMS_TOKEN}"))])
        .await;
    assert_eq!((r.status, r.code().as_str()), (422, "external_pii"), "{}", r.text);
    assert!(r.message().contains("personenbezogene"), "{}", r.message());
    assert_eq!(s.engine.calls(), 0, "nothing reached the external engine");
    assert_no_canary(&s);

    // positive controls: public text without personal data does go out
    let r = s.post(None, "/api/v1/chat", json!({"question": "Wie hoch ist die Hundesteuer?"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "fake-hosted-llm");
    assert_eq!(s.engine.calls(), 1);
    let r = s.post(None, "/v1/chat/completions", json!({"messages": [{"role": "user", "content": "Wann hat die Bücherei geöffnet?"}]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.engine.calls(), 2);
    let r = s.post(Some(&alice), "/portal/api/chat", json!({"question": "Wann ist die Hundesteuer fällig?", "website": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.engine.calls(), 3);
    let r = s
        .send(None, reqwest::Method::POST, "/api/v1/simplify", Some(json!({"text": "Die Bücherei ist dienstags geöffnet, die Ausleihe kostet nichts."})), &[("authorization", &format!("Bearer {CMS_TOKEN}"))])
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_no_canary(&s);
}

#[tokio::test]
async fn models_audit_register_and_ready_call_the_external_main_engine_external() {
    let s = start().await;
    let admin = s.login("admin").await;

    let models = s.get(Some(&admin), "/portal/api/models").await.json();
    assert_eq!(models[0]["name"], "lokal", "{models}");
    assert_eq!(models[0]["external"], true, "{models}");
    assert!(models[0]["label"].as_str().unwrap().contains("extern"), "{models}");
    assert!(!models[0]["label"].as_str().unwrap().contains("Lokal"), "{models}");

    let r = s.post(Some(&admin), "/portal/api/chat", json!({"question": "Wann hat die Bücherei geöffnet?", "website": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.post(Some(&admin), "/portal/api/chat", json!({"question": "Frau Petra Hoffmann fragt nach der Bücherei.", "website": true})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let audit = s.get(Some(&admin), "/portal/api/admin/audit").await.json();
    let chats: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["action"] == "chat").collect();
    assert_eq!(chats.len(), 2, "{audit}");
    for e in &chats {
        assert_eq!(e["external"], true, "{e}");
        assert_eq!(e["model"], "fake-hosted-llm", "{e}");
    }
    assert!(chats.iter().any(|e| e["outcome"] == "blocked_pii"), "{audit}");

    let register = s.get(Some(&admin), "/portal/api/register").await.json();
    let entries = register.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{register}");
    for e in entries {
        let provider = e["provider"].as_str().unwrap();
        assert!(provider.contains("Externer KI-Dienst") && provider.contains("ki.anbieter.example"), "{e}");
        assert!(!provider.contains("Eigener Server"), "{e}");
        assert_eq!(e["model"], "fake-hosted-llm", "{e}");
    }

    let ready = s.get(None, "/ready").await.json();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["engine_external"], true, "{ready}");
    let notes = ready["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("external")), "{ready}");
}

#[tokio::test]
async fn an_in_house_portal_model_may_read_private_collections_the_external_main_engine_may_not() {
    let s = start_with(true).await;
    let bob = s.login("bob").await; // seepferdchen: no external services, but the in-house model
    let alice = s.login("alice").await;
    let r = s.post(Some(&alice), "/portal/api/collections", json!({"title": "Bauamt intern", "owner": {"kind": "group", "id": "bauamt"}})).await;
    let col = r.json()["id"].as_i64().unwrap();
    let up = s
        .client
        .put(s.url(&format!("/portal/api/collections/{col}/documents/weisung.txt")))
        .header("cookie", &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .body(format!("Die Hundesteuer wird intern nach {DOC_CANARY} erhoben."))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 201);

    let models = s.get(Some(&bob), "/portal/api/models").await.json();
    assert_eq!((models[0]["external"].clone(), models[0]["allowed"].clone()), (json!(true), json!(false)), "{models}");
    assert_eq!((models[1]["name"].clone(), models[1]["external"].clone(), models[1]["allowed"].clone()), (json!("intern"), json!(false), json!(true)), "{models}");

    // the main engine: refused, and pointed to the model of the administration's own
    let r = s.post(Some(&alice), "/portal/api/chat", json!({"question": "Wie wird die Hundesteuer erhoben?", "collections": [col]})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "external_private"), "{}", r.text);
    assert!(r.message().contains("Modell der eigenen Verwaltung"), "{}", r.message());
    // the in-house model: answered from the collection, personal data and all
    let r = s
        .post(Some(&bob), "/portal/api/chat", json!({"question": "Wie wird die Hundesteuer intern erhoben? Antwort an hoffmann@web.de", "collections": [col], "model": "intern"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["answer"]["model"], "fake-in-house");
    let in_house = s.in_house.as_ref().unwrap();
    assert_eq!(in_house.calls(), 1, "{}", r.text);
    assert!(in_house.log().contains(DOC_CANARY));
    assert_eq!(s.engine.calls(), 0, "nothing reached the external main engine");
    let admin = s.login("admin").await;
    let audit = s.get(Some(&admin), "/portal/api/admin/audit").await.json();
    let answered: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["outcome"] == "answered").collect();
    assert_eq!(answered.len(), 1, "{audit}");
    assert_eq!((answered[0]["model"].clone(), answered[0]["external"].clone()), (json!("intern"), json!(false)), "{audit}");
    let register = s.get(Some(&admin), "/portal/api/register").await.json();
    let entry = register.as_array().unwrap().iter().find(|e| e["model"] == "intern").cloned().unwrap();
    assert!(entry["provider"].as_str().unwrap().contains("Eigener Server"), "{entry}");
}
