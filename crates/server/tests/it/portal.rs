//! The staff portal over loopback: a real tantivy index and a real SQLite file in a temp dir,
//! a real axum server on 127.0.0.1, real documents of each type made here, and fake
//! generators (`FakeCitingGenerator` locally, `FakeExternalGenerator` for the external
//! service, which counts its calls) so these tests need no model files.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use lotse_answer::{AnswerConfig, Answerer};
use lotse_core::{Block, DocKind, Page};
use lotse_index::SearchIndex;
use lotse_inference::ModelInfo;
use lotse_inference::generate::GenerationService;
use lotse_portal::auth::{self, Level, Role, Scope};
use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
use lotse_portal::Store;
use lotse_server::portal::{External, Portal};
use lotse_server::{AppState, Config};
use lotse_test_support::{FakeCitingGenerator, town_index};
use reqwest::Method;
use serde_json::{Value, json};

const CANARY: &str = "Kanarienvogel-Weisung-8812";
const PASSWORD: &str = "richtig-langes-Passwort";

/// The external service: the same behaviour, counted separately.
type FakeExternalGenerator = FakeCitingGenerator;

struct Server {
    addr: SocketAddr,
    index: Arc<SearchIndex>,
    external: Arc<FakeExternalGenerator>,
    store: Arc<Store>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A signed-in client: its cookie and CSRF token (or an API token).
#[derive(Clone, Default)]
struct Who {
    cookie: Option<String>,
    csrf: Option<String>,
    bearer: Option<String>,
}

const ANON: Who = Who { cookie: None, csrf: None, bearer: None };

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
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

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn send(&self, who: &Who, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut r = self.client.request(method, self.url(path));
        if let Some(c) = &who.cookie {
            r = r.header("cookie", c);
        }
        if let Some(c) = &who.csrf {
            r = r.header("x-csrf-token", c);
        }
        if let Some(b) = &who.bearer {
            r = r.bearer_auth(b);
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
    async fn post(&self, who: &Who, path: &str, body: Value) -> Resp {
        self.send(who, Method::POST, path, Some(body)).await
    }

    async fn upload(&self, who: &Who, collection: i64, name: &str, bytes: Vec<u8>) -> Resp {
        let mut r = self
            .client
            .put(self.url(&format!("/portal/api/collections/{collection}/documents/{name}")))
            .body(bytes);
        if let Some(c) = &who.cookie {
            r = r.header("cookie", c);
        }
        if let Some(c) = &who.csrf {
            r = r.header("x-csrf-token", c);
        }
        let resp = r.send().await.unwrap();
        Resp { status: resp.status().as_u16(), headers: resp.headers().clone(), text: resp.text().await.unwrap_or_default() }
    }

    async fn login(&self, name: &str) -> Who {
        let r = self.post(&ANON, "/portal/api/login", json!({"name": name, "password": PASSWORD})).await;
        assert_eq!(r.status, 200, "login {name}: {}", r.text);
        let set = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        // the default (`secure_cookie`): a `__Host-` cookie for the whole host, over https
        assert!(set.starts_with("__Host-lotse_session=") && set.contains("; Secure") && set.contains("Path=/;"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();
        Who { cookie: Some(cookie), csrf: r.json()["csrf"].as_str().map(String::from), bearer: None }
    }

    /// Search the portal and return every text the hits show.
    async fn portal_search(&self, who: &Who, q: &str, collections: &str, website: bool) -> Resp {
        self.get(who, &format!("/portal/api/search?q={}&collections={collections}&website={website}", urlencode(q))).await
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Users: `admin` (admin, gold), `alice` (editor of bauamt, bronze), `bob` (staff of
/// kaemmerei, seepferdchen), `carl` (staff of bauamt, not yet trained).
async fn start() -> Server {
    start_with(|_| {}).await
}

async fn start_with(configure: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.limits.chat_per_minute = 0;
    config.limits.search_per_second = 0;
    config.portal.max_upload_bytes = 2 * 1024 * 1024;
    config.portal.login_per_minute = 0; // every test signs in from 127.0.0.1
    configure(&mut config);
    let index = town_index(&dir.path().join("index"));
    let local = Arc::new(FakeCitingGenerator::new("fake-local", false));
    let external = Arc::new(FakeExternalGenerator::new("fake-external", true));
    let answerer = Arc::new(Answerer::new(
        index.clone(),
        None,
        Some(Arc::new(GenerationService::new(local, 1, 8))),
        AnswerConfig { ..config.answer_config() },
    ));
    // SQLite, or PostgreSQL when LOTSE_TEST_POSTGRES names a server (.ci/run does both)
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let hash = auth::hash_password(PASSWORD).unwrap();
    for (name, role, groups, level) in [
        ("admin", Role::Admin, vec![], Level::Gold),
        ("alice", Role::Editor, vec!["bauamt".to_string()], Level::Bronze),
        ("bob", Role::Staff, vec!["kaemmerei".to_string()], Level::Seepferdchen),
        ("carl", Role::Staff, vec!["bauamt".to_string()], Level::None),
    ] {
        let id = store.create_user(name, name, Some(&hash), role, &groups).unwrap();
        store.set_level(id, level).unwrap();
    }
    let portal = Portal::new(
        store.clone(),
        Check::parse(DEFAULT_CHECK).unwrap(),
        DEFAULT_TEXT.to_string(),
        config.portal.levels.clone(),
        vec![External {
            name: "extern".into(),
            label: "Externer Dienst".into(),
            provider: "Test GmbH".into(),
            service: Arc::new(GenerationService::new(external.clone(), 1, 8)),
        }],
    );
    lotse_server::portal::seed_register(&portal, &ModelInfo { id: "fake-local".into(), external: false, context_len: 4096 }, None, "Fachbereich IT").unwrap();
    let state = AppState::new(config);
    state.set_answerer(answerer);
    state.set_portal(Arc::new(portal));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lotse_server::serve(listener, state, std::future::pending()));
    Server { addr, index, external, store, client: reqwest::Client::new(), _dir: dir }
}

async fn group_collection(s: &Server, who: &Who, title: &str, group: &str) -> i64 {
    let r = s.post(who, "/portal/api/collections", json!({"title": title, "owner": {"kind": "group", "id": group}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_i64().unwrap()
}

// ---- documents made by the tests ----------------------------------------------------------

/// A one-page PDF with the lines in Helvetica (ASCII text).
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
    for l in lines {
        content.push_str(&format!("({}) Tj T*\n", l.replace('(', "\\(").replace(')', "\\)")));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes());
    out
}

fn zip_of(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (name, data, stored) in entries {
            let method = if *stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
            let opts = zip::write::SimpleFileOptions::default().compression_method(method);
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

fn docx_xml(heading: &str, paragraph: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>{heading}</w:t></w:r></w:p><w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p></w:body></w:document>"#
    )
}

fn docx(heading: &str, paragraph: &str) -> Vec<u8> {
    let types = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    zip_of(&[("[Content_Types].xml", types.as_bytes(), false), ("word/document.xml", docx_xml(heading, paragraph).as_bytes(), false)])
}

fn odt(heading: &str, paragraph: &str) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:h text:outline-level="1">{heading}</text:h><text:p>{paragraph}</text:p></office:text></office:body></office:document-content>"#
    );
    zip_of(&[
        ("mimetype", b"application/vnd.oasis.opendocument.text", true),
        ("content.xml", content.as_bytes(), false),
    ])
}

/// A DOCX whose document.xml unpacks to 30 MB from a few kilobytes.
fn docx_bomb() -> Vec<u8> {
    let mut xml = docx_xml("Bombe", "Harmlos").into_bytes();
    let pad = vec![b' '; 30 * 1024 * 1024];
    let at = xml.len() - "</w:body></w:document>".len();
    xml.splice(at..at, pad);
    zip_of(&[("word/document.xml", &xml, false)])
}

// ---- tests ---------------------------------------------------------------------------------

/// A matcher for an OpenAPI path template (`/a/{id}/b`): each `{…}` is one path segment.
fn template_matcher(template: &str) -> impl Fn(&str) -> bool + '_ {
    move |path: &str| {
        let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
    }
}

#[tokio::test]
async fn every_route_needs_a_session_and_the_right_role() {
    let s = start().await;
    let admin = s.login("admin").await;
    let alice = s.login("alice").await;
    let bob = s.login("bob").await;
    let a_coll = group_collection(&s, &alice, "Bauamt intern", "bauamt").await;
    let up = s.upload(&alice, a_coll, "weisung.md", b"# Weisung\n\nDas Bauamt prueft Bauantraege binnen zehn Tagen.".to_vec()).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let doc = up.json()["id"].as_i64().unwrap();
    let chat = s.post(&alice, "/portal/api/chat", json!({"question": "Wie schnell prüft das Bauamt?", "collections": [a_coll]})).await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    let chat_id = chat.json()["chat_id"].as_i64().unwrap();

    // (method, path, body, who may not: 403 for this user)
    let routes: Vec<(Method, String, Option<Value>, Option<&Who>)> = vec![
        (Method::GET, "/portal/api/me".into(), None, None),
        (Method::POST, "/portal/api/logout".into(), Some(json!({})), None),
        (Method::GET, "/portal/api/kompass".into(), None, None),
        (Method::POST, "/portal/api/kompass".into(), Some(json!({"answers": [0, 0, 0, 0, 0]})), None),
        (Method::GET, "/portal/api/collections".into(), None, None),
        (Method::POST, "/portal/api/collections".into(), Some(json!({"title": "X", "owner": {"kind": "group", "id": "bauamt"}})), Some(&bob)),
        (Method::DELETE, format!("/portal/api/collections/{a_coll}"), None, Some(&bob)),
        (Method::GET, format!("/portal/api/collections/{a_coll}/documents"), None, Some(&bob)),
        (Method::PUT, format!("/portal/api/collections/{a_coll}/documents/x.txt"), Some(json!("Text")), Some(&bob)),
        (Method::DELETE, format!("/portal/api/documents/{doc}"), None, Some(&bob)),
        (Method::GET, format!("/portal/dokumente/{doc}"), None, Some(&bob)),
        (Method::GET, format!("/portal/api/search?q=Bauamt&collections={a_coll}"), None, Some(&bob)),
        (Method::POST, "/portal/api/chat".into(), Some(json!({"question": "Bauamt?", "collections": [a_coll]})), Some(&bob)),
        (Method::GET, "/portal/api/chats".into(), None, None),
        (Method::GET, format!("/portal/api/chats/{chat_id}"), None, None),
        (Method::DELETE, format!("/portal/api/chats/{chat_id}"), None, None),
        (Method::DELETE, "/portal/api/chats".into(), None, None),
        (Method::GET, "/portal/api/prompts".into(), None, None),
        (Method::POST, "/portal/api/prompts".into(), Some(json!({"title": "T", "body": "Fasse {text} zusammen", "group": "bauamt"})), Some(&bob)),
        (Method::DELETE, "/portal/api/prompts/1".into(), None, None),
        (Method::GET, "/portal/api/models".into(), None, None),
        (Method::GET, "/portal/api/admin/users".into(), None, Some(&alice)),
        (Method::POST, "/portal/api/admin/users".into(), Some(json!({"name": "x", "password": PASSWORD, "role": "staff"})), Some(&alice)),
        (Method::PATCH, "/portal/api/admin/users/2".into(), Some(json!({"level": "gold"})), Some(&alice)),
        (Method::GET, "/portal/api/admin/tokens".into(), None, Some(&bob)),
        (Method::POST, "/portal/api/admin/tokens".into(), Some(json!({"name": "cms", "scopes": ["simplify"]})), Some(&bob)),
        (Method::DELETE, "/portal/api/admin/tokens/1".into(), None, Some(&bob)),
        (Method::GET, "/portal/api/admin/audit".into(), None, Some(&alice)),
        (Method::GET, "/portal/api/admin/usage".into(), None, Some(&bob)),
        (Method::GET, "/portal/api/register".into(), None, None),
        (Method::GET, "/portal/api/simplify/reviews".into(), None, Some(&bob)),
        (Method::GET, format!("/portal/api/simplify/reviews/{}", "0".repeat(64)), None, Some(&bob)),
        (Method::POST, format!("/portal/api/simplify/reviews/{}", "0".repeat(64)), Some(json!({"status": "approved"})), Some(&bob)),
        (Method::PUT, "/portal/api/register".into(), Some(json!({"name": "X", "model": "m", "purpose": "p", "provider": "p", "risk_class": "minimal", "responsible": "r"})), Some(&bob)),
        (Method::GET, "/portal/api/insights/topics".into(), None, Some(&bob)),
        (Method::POST, "/portal/api/insights/topics/1/done".into(), None, Some(&bob)),
        (Method::DELETE, "/portal/api/insights/topics/1/done".into(), None, Some(&bob)),
        (Method::DELETE, "/portal/api/insights/questions/1".into(), None, Some(&bob)),
        (Method::DELETE, "/portal/api/insights".into(), None, Some(&bob)),
    ];
    // the list is complete: every portal route of the OpenAPI document is in it, or is one of
    // the routes that serve people before they sign in
    const BEFORE_SIGN_IN: &[&str] = &["/portal/", "/portal/api/login", "/portal/api/login-options", "/portal/api/oidc/login", "/portal/api/oidc/callback"];
    let spec: Value = serde_json::from_str(&lotse_server::openapi_json()).unwrap();
    for (template, ops) in spec["paths"].as_object().unwrap() {
        if !template.starts_with("/portal") || BEFORE_SIGN_IN.contains(&template.as_str()) {
            continue;
        }
        let pattern = template_matcher(template);
        for m in ops.as_object().unwrap().keys() {
            let covered = routes.iter().any(|(method, path, _, _)| {
                method.as_str().eq_ignore_ascii_case(m) && pattern(path.split('?').next().unwrap_or(path))
            });
            assert!(covered, "{m} {template} has no authorisation check in this test");
        }
    }
    for (method, path, body, forbidden) in &routes {
        let r = if method == Method::PUT && path.contains("/documents/") {
            s.upload(&ANON, a_coll, "x.txt", b"Text".to_vec()).await
        } else {
            s.send(&ANON, method.clone(), path, body.clone()).await
        };
        assert_eq!(r.status, 401, "{method} {path} without a session: {}", r.text);
        if let Some(who) = forbidden {
            let r = if method == Method::PUT && path.contains("/documents/") {
                s.upload(who, a_coll, "x.txt", b"Text".to_vec()).await
            } else {
                s.send(who, method.clone(), path, body.clone()).await
            };
            assert_eq!(r.status, 403, "{method} {path} with the wrong role or group: {}", r.text);
            assert!(!r.message().is_empty() || path.starts_with("/portal/dokumente"), "{method} {path}: a German reason");
        }
    }
    // a session without its CSRF token cannot change anything
    let no_csrf = Who { csrf: None, ..alice.clone() };
    let r = s.post(&no_csrf, "/portal/api/collections", json!({"title": "Y", "owner": {"kind": "group", "id": "bauamt"}})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    // another user's chat is not found
    let r = s.get(&bob, &format!("/portal/api/chats/{chat_id}")).await;
    assert_eq!(r.status, 404);
    // the admin sees everything
    assert_eq!(s.get(&admin, "/portal/api/admin/users").await.status, 200);
    let r = s.get(&admin, "/portal/api/admin/audit?format=csv").await;
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with("id,at,user"), "{}", r.text);
    assert!(r.text.contains(",chat,"), "chat requests are audited: {}", r.text);
    assert!(!r.text.contains("Wie schnell"), "no question text in the audit log by default");
    // API tokens act within their scopes only
    let r = s.post(&admin, "/portal/api/admin/tokens", json!({"name": "CMS", "scopes": ["refresh"]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let cms = Who { bearer: r.json()["token"].as_str().map(String::from), ..Who::default() };
    assert_eq!(s.get(&cms, "/portal/api/collections").await.status, 403, "no chat scope");
    let r = s.post(&cms, "/api/v1/simplify", json!({"text": "Ein Text."})).await;
    assert_eq!(r.status, 403, "no simplify scope: {}", r.text);
    let r = s.post(&cms, "/api/v1/pages/refresh", json!({"url": "http://elsewhere.test/x"})).await;
    assert!(r.status != 401 && r.status != 403, "refresh scope lets the webhook in: {} {}", r.status, r.text);
    let bad = Who { bearer: Some("lotse_not-a-token".into()), ..Who::default() };
    assert_eq!(s.get(&bad, "/portal/api/me").await.status, 401);
    // tokens expire ([portal] token_days, 90 by default), and the list says when
    let list = s.get(&admin, "/portal/api/admin/tokens").await.json();
    let expires = list[0]["expires_at"].as_i64().unwrap();
    assert!((expires - lotse_portal::store::now() - 90 * 86_400).abs() < 120, "{list}");
    // admin changes name whom they were about
    let carl_id = s.store.user_by_name("carl").unwrap().unwrap().id;
    let r = s.send(&admin, Method::PATCH, &format!("/portal/api/admin/users/{carl_id}"), Some(json!({"level": "bronze"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let log = s.store.audit_log(0, 100).unwrap();
    let change = log.iter().find(|a| a.action == "change_user").expect("audited");
    assert_eq!((change.user.as_str(), change.target.as_deref()), ("admin", Some("carl")));
    let created = log.iter().find(|a| a.action == "create_token").expect("audited");
    assert_eq!(created.target.as_deref(), Some("admin"));
    let csv = s.get(&admin, "/portal/api/admin/audit?format=csv").await.text;
    assert!(csv.starts_with("id,at,user,groups,action,target,") && csv.contains(",change_user,carl,"), "{csv}");
}

#[tokio::test]
async fn a_canary_in_group_a_never_reaches_group_b_citizens_or_the_openai_api() {
    let s = start().await;
    let alice = s.login("alice").await;
    let bob = s.login("bob").await;
    let carl_id = s.store.user_by_name("carl").unwrap().unwrap().id;
    s.store.set_level(carl_id, Level::Seepferdchen).unwrap();
    let a = group_collection(&s, &alice, "Bauamt intern", "bauamt").await;
    let text = format!("# Dienstanweisung Hundesteuer\n\nDie Hundesteuer wird intern nach der {CANARY} erhoben. Hundesteuer Hund Steuer Jahr Erlass.\n");
    let up = s.upload(&alice, a, "dienstanweisung.md", text.into_bytes()).await;
    assert_eq!(up.status, 201, "{}", up.text);
    let doc = up.json();
    assert!(doc["n_chunks"].as_i64().unwrap() >= 1);

    // positive control: group A finds it, cited with a link to the document's section
    let r = s.post(&alice, "/portal/api/chat", json!({"question": "Wie wird die Hundesteuer intern erhoben?", "collections": [a]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = &r.json()["answer"];
    assert!(answer["answer"].as_str().unwrap().contains(CANARY), "{answer}");
    assert_eq!(answer["label"], "KI-generiert");
    let src = &answer["sources"][0];
    assert!(src["deep_link"].as_str().unwrap().starts_with(&format!("/portal/dokumente/{}#abschnitt-", doc["id"])), "{src}");
    let page = s.get(&alice, &format!("/portal/dokumente/{}", doc["id"])).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(CANARY) && page.text.contains("id=\"abschnitt-1\""));
    // a document page runs no script and cannot be framed; nothing is sniffed
    let csp = page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(page.headers.get("x-frame-options").unwrap(), "DENY");
    let search = s.portal_search(&alice, CANARY, &a.to_string(), false).await;
    assert_eq!(search.headers.get("x-content-type-options").unwrap(), "nosniff");
    let carl = s.login("carl").await;
    let r = s.portal_search(&carl, CANARY, &a.to_string(), false).await;
    assert!(r.text.contains(CANARY), "another member of the group finds it: {}", r.text);

    // group B: not through search, chat or the document page, with or without the website
    for r in [
        s.portal_search(&bob, CANARY, "", true).await,
        s.portal_search(&bob, "Hundesteuer intern", "", true).await,
        s.post(&bob, "/portal/api/chat", json!({"question": format!("Was steht in der {CANARY}?"), "website": true})).await,
        s.post(&bob, "/portal/api/chat", json!({"question": "Wie wird die Hundesteuer intern erhoben?", "website": true})).await,
    ] {
        assert!(!r.text.contains(CANARY), "group B: {}", r.text);
    }
    for r in [
        s.portal_search(&bob, CANARY, &a.to_string(), true).await,
        s.post(&bob, "/portal/api/chat", json!({"question": "Hundesteuer?", "collections": [a]})).await,
        s.get(&bob, &format!("/portal/dokumente/{}", doc["id"])).await,
        s.get(&bob, &format!("/portal/api/collections/{a}/documents")).await,
    ] {
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(!r.text.contains(CANARY));
    }
    let listed = s.get(&bob, "/portal/api/collections").await;
    assert!(!listed.text.contains("Bauamt intern"), "{}", listed.text);

    // anonymous citizens: search, chat, Einfache Sprache, the OpenAI-compatible API
    let q = urlencode(CANARY);
    let doc_url = urlencode(&format!("/portal/dokumente/{}", doc["id"]));
    for r in [
        s.get(&ANON, &format!("/api/v1/search?q={q}")).await,
        s.get(&ANON, "/api/v1/search?q=Hundesteuer%20intern%20Erlass").await,
        s.post(&ANON, "/api/v1/chat", json!({"question": "Wie wird die Hundesteuer intern erhoben?"})).await,
        s.post(&ANON, "/api/v1/chat", json!({"question": format!("Was steht in der {CANARY}?")})).await,
        s.get(&ANON, &format!("/api/v1/simplify?url={doc_url}")).await,
        s.post(&ANON, "/v1/chat/completions", json!({"model": "lotse", "messages": [{"role": "user", "content": "Wie wird die Hundesteuer intern erhoben?"}]})).await,
        s.get(&ANON, &format!("/portal/dokumente/{}", doc["id"])).await,
    ] {
        // the search echoes its query: look at what was found
        let shown = if r.json()["query"].is_string() { r.json()["results"].to_string() } else { r.text.clone() };
        assert!(!shown.contains(CANARY), "citizens: {}", r.text);
        assert!(!r.text.contains("/portal/dokumente/"), "citizens see no portal link: {}", r.text);
    }
}

/// `/v1` for Open WebUI or n8n: one address serves many people, so a portal API token with
/// the `chat` scope has its own quota; a wrong token is refused, not counted as anonymous;
/// `[server] v1_requires_token` closes `/v1` to requests without one.
#[tokio::test]
async fn the_openai_api_counts_quotas_per_token() {
    for requires_token in [false, true] {
        let s = start_with(|c| {
            c.limits.chat_per_minute = 1;
            c.limits.chat_burst = if requires_token { 4 } else { 3 };
            c.limits.v1_token_per_minute = 1;
            c.limits.v1_token_burst = 3;
            c.server.v1_requires_token = requires_token;
        })
        .await;
        let admin = s.login("admin").await;
        let mut tokens = Vec::new();
        for (name, scopes) in [("owui", json!(["chat"])), ("n8n", json!(["chat"])), ("cms", json!(["simplify"]))] {
            let r = s.post(&admin, "/portal/api/admin/tokens", json!({"name": name, "scopes": scopes})).await;
            assert_eq!(r.status, 201, "{}", r.text);
            tokens.push(Who { bearer: r.json()["token"].as_str().map(String::from), ..Who::default() });
        }
        let (owui, n8n, cms) = (&tokens[0], &tokens[1], &tokens[2]);
        let server = &s;
        let ask = |who: &Who| {
            let body = json!({"model": "lotse", "messages": [{"role": "user", "content": "Wie hoch ist die Hundesteuer?"}]});
            let who = who.clone();
            async move { server.post(&who, "/v1/chat/completions", body).await }
        };
        // the token's quota (3 at once), not the address's
        for i in 0..3 {
            let r = ask(owui).await;
            assert_eq!(r.status, 200, "request {i} with the token: {}", r.text);
        }
        let r = ask(owui).await;
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.headers.contains_key("retry-after"));
        // another token has a quota of its own
        assert_eq!(ask(n8n).await.status, 200);
        // a token of another scope, or an unknown one: 401, not an anonymous request; each
        // refusal costs the address's quota (no free guessing)
        assert_eq!(ask(cms).await.status, 401);
        assert_eq!(ask(&Who { bearer: Some("lotse_not-a-token".into()), ..Who::default() }).await.status, 401);
        // without a portal token (Open WebUI's placeholder key counts as none)
        let placeholder = Who { bearer: Some("sk-placeholder".into()), ..Who::default() };
        if requires_token {
            assert_eq!(s.get(&ANON, "/v1/models").await.status, 401, "all of /v1 needs the token");
            assert_eq!(s.get(owui, "/v1/models").await.status, 200);
            let r = ask(&placeholder).await;
            assert_eq!(r.status, 401, "{}", r.text);
            assert!(r.json()["error"]["message"].as_str().unwrap().contains("Zugangsschlüssel"), "{}", r.text);
        } else {
            assert_eq!(ask(&placeholder).await.status, 200);
        }
        assert_eq!(ask(&ANON).await.status, 429, "the address's quota is used up");
    }
}

#[tokio::test]
async fn uploads_of_each_type_are_indexed_and_bad_ones_leave_nothing_behind() {
    let s = start().await;
    let alice = s.login("alice").await;
    let a = group_collection(&s, &alice, "Bauamt intern", "bauamt").await;
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("satzung.pdf", pdf(&["Satzung ueber Sondernutzungen", "Paragraf 1 Gebuehren", "(1) Die Gebuehr fuer Pdfwortzwei betraegt 12 Euro je Quadratmeter.", "(2) Sie wird mit der Erlaubnis faellig."]), "Pdfwortzwei"),
        ("vorlage.docx", docx("Vorlage Sitzung", "Die Sitzungsvorlage Docxwortdrei wird eine Woche vorher verschickt."), "Docxwortdrei"),
        ("entwurf.odt", odt("Entwurf Satzung", "Der Entwurf Odtwortvier liegt dem Rat zur Beratung vor."), "Odtwortvier"),
        ("notiz.txt", "Die Notiz Txtwortfuenf beschreibt die Urlaubsvertretung im Bauamt.".into(), "Txtwortfuenf"),
        ("handbuch.md", "# Handbuch\n\n## Fristen\n\nDas Handbuch Mdwortsechs nennt eine Frist von vier Wochen.".into(), "Mdwortsechs"),
        ("seite.html", "<!doctype html><html><head><title>Intranet</title></head><body><main><h1>Intranet</h1><p>Die Intranetseite Htmlwortsieben erklärt die Zeiterfassung der Verwaltung.</p></main></body></html>".into(), "Htmlwortsieben"),
    ];
    for (name, bytes, word) in &files {
        let r = s.upload(&alice, a, name, bytes.clone()).await;
        assert_eq!(r.status, 201, "{name}: {}", r.text);
        let found = s.portal_search(&alice, word, &a.to_string(), false).await;
        assert_eq!(found.status, 200);
        let hits = found.json();
        assert!(
            hits.as_array().unwrap().iter().any(|h| h["snippet"].as_str().unwrap_or("").contains(word)),
            "{name}: {word} is searchable: {}",
            found.text
        );
    }
    let before = s.get(&alice, &format!("/portal/api/collections/{a}/documents")).await.json();
    assert_eq!(before.as_array().unwrap().len(), files.len());

    // bad uploads: a clear 4xx with a German reason, nothing written
    let mut corrupt = pdf(&["Kaputtwort steht hier."]);
    corrupt.truncate(corrupt.len() / 2);
    let exe = [b"MZ\x90\x00".to_vec(), vec![0u8; 64]].concat();
    let oversize = vec![b'a'; 2 * 1024 * 1024 + 10];
    // a PDF decompression bomb: 1 MB of file, one page of 1 GiB of zeros (issue 31)
    let pdf_bomb = lotse_extract::pdf_limits::testing::zero_bomb(1 << 30);
    for (name, bytes, status) in [
        ("kaputt.pdf", corrupt, 422),
        ("bombe.docx", docx_bomb(), 422),
        ("haushalt.pdf", pdf_bomb, 422),
        ("programm.txt", exe, 415),
        ("luege.docx", pdf(&["Luegenwort"]), 415),
        ("gross.txt", oversize, 413),
        ("leer.txt", Vec::new(), 422),
    ] {
        let r = s.upload(&alice, a, name, bytes).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert!(!r.message().is_empty(), "{name}: a German message");
        if name == "haushalt.pdf" {
            assert_eq!(r.code(), "pdf_too_large", "{}", r.text);
            assert!(r.message().contains("unplausibel großen Datenmenge"), "{}", r.text);
        }
    }
    let after = s.get(&alice, &format!("/portal/api/collections/{a}/documents")).await.json();
    assert_eq!(after, before, "failed uploads leave no rows");
    for w in ["Kaputtwort", "Luegenwort", "Harmlos"] {
        let r = s.portal_search(&alice, w, &a.to_string(), false).await;
        // (compound splitting may still match other documents on "wort")
        assert!(!r.text.contains(w), "{w} is not indexed: {}", r.text);
    }

    // uploading the same name again replaces it; deleting removes it from the index
    let r = s.upload(&alice, a, "notiz.txt", "Die neue Notiz Ersatzwortacht gilt ab Montag.".into()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_i64().unwrap();
    assert!(!s.portal_search(&alice, "Txtwortfuenf", &a.to_string(), false).await.text.contains("Txtwortfuenf"));
    assert!(s.portal_search(&alice, "Ersatzwortacht", &a.to_string(), false).await.text.contains("Ersatzwortacht"));
    let r = s.send(&alice, Method::DELETE, &format!("/portal/api/documents/{id}"), None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!s.portal_search(&alice, "Ersatzwortacht", &a.to_string(), false).await.text.contains("Ersatzwortacht"));
    assert_eq!(s.get(&alice, &format!("/portal/dokumente/{id}")).await.status, 404);
}

#[tokio::test]
async fn external_models_get_no_private_collection_and_no_personal_data() {
    let s = start().await;
    let alice = s.login("alice").await; // bronze: external models unlocked
    let bob = s.login("bob").await; // seepferdchen: not yet
    let a = group_collection(&s, &alice, "Bauamt intern", "bauamt").await;
    let up = s.upload(&alice, a, "weisung.txt", b"Die Hundesteuer wird intern nach Weisung erhoben.".to_vec()).await;
    assert_eq!(up.status, 201);

    let r = s.post(&alice, "/portal/api/chat", json!({"question": "Wie hoch ist die Hundesteuer?", "collections": [a], "model": "extern"})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "external_private"), "{}", r.text);
    assert!(r.message().contains("extern"), "{}", r.message());
    for q in [
        "Frau Petra Hoffmann fragt, wie hoch die Hundesteuer ist.",
        "Wie hoch ist die Hundesteuer? Antwort bitte an hoffmann@web.de",
        "Die Hundesteuer von DE89 3704 0044 0532 0130 00 abbuchen?",
    ] {
        let r = s.post(&alice, "/portal/api/chat", json!({"question": q, "website": true, "model": "extern"})).await;
        assert_eq!((r.status, r.code().as_str()), (403, "external_pii"), "{q}: {}", r.text);
        assert!(r.message().contains("personenbezogene"), "{}", r.message());
    }
    let r = s.post(&bob, "/portal/api/chat", json!({"question": "Wie hoch ist die Hundesteuer?", "website": true, "model": "extern"})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "level"), "{}", r.text);
    assert_eq!(s.external.calls(), 0, "nothing reached the external service");

    // positive control: a clean question over the website goes out
    let r = s.post(&alice, "/portal/api/chat", json!({"question": "Wie hoch ist die Hundesteuer?", "website": true, "model": "extern"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.external.calls(), 1);
    assert_eq!(r.json()["answer"]["model"], "fake-external");
    // the same private question stays with the local model
    let r = s.post(&alice, "/portal/api/chat", json!({"question": "Frau Petra Hoffmann fragt nach der Hundesteuer.", "collections": [a]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.external.calls(), 1);
    let models = s.get(&bob, "/portal/api/models").await.json();
    assert_eq!(models[1]["allowed"], false, "{models}");
}

#[tokio::test]
async fn the_ki_kompass_opens_the_chat_and_history_can_be_deleted() {
    let s = start().await;
    let carl = s.login("carl").await;
    let me = s.get(&carl, "/portal/api/me").await.json();
    assert_eq!(me["chat"], false);
    let r = s.post(&carl, "/portal/api/chat", json!({"question": "Wann ist die Bücherei geöffnet?", "website": true})).await;
    assert_eq!((r.status, r.code().as_str()), (403, "level"));
    assert!(r.message().contains("Seepferdchen"), "{}", r.message());

    let k = s.get(&carl, "/portal/api/kompass").await;
    assert!(k.json()["text"].as_str().unwrap().contains("KI"));
    assert!(!k.text.contains("correct"), "the answers stay on the server");
    // the right answers from the check's file (the portal crate never hands them out)
    let check: toml::Value = toml::from_str(DEFAULT_CHECK).unwrap();
    let right: Vec<usize> =
        check["question"].as_array().unwrap().iter().map(|q| q["correct"].as_integer().unwrap() as usize).collect();
    let wrong: Vec<usize> = right.iter().map(|c| (c + 1) % 3).collect();
    let r = s.post(&carl, "/portal/api/kompass", json!({"answers": wrong})).await;
    assert_eq!(r.json()["passed"], false, "{}", r.text);
    let r = s.post(&carl, "/portal/api/kompass", json!({"answers": [0]})).await;
    assert_eq!(r.status, 400);
    let r = s.post(&carl, "/portal/api/kompass", json!({"answers": right})).await;
    assert_eq!((r.json()["passed"].clone(), r.json()["level"].clone()), (json!(true), json!("seepferdchen")), "{}", r.text);

    let r = s.post(&carl, "/portal/api/chat", json!({"question": "Wann ist die Bücherei geöffnet?", "website": true})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chat_id = r.json()["chat_id"].as_i64().unwrap();
    let r = s.post(&carl, "/portal/api/chat", json!({"question": "Und samstags?", "website": true, "chat_id": chat_id})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["chat_id"].as_i64(), Some(chat_id));
    let detail = s.get(&carl, &format!("/portal/api/chats/{chat_id}")).await.json();
    assert_eq!(detail["messages"].as_array().unwrap().len(), 4);
    assert_eq!(s.get(&carl, "/portal/api/chats").await.json().as_array().unwrap().len(), 1);
    assert_eq!(s.send(&carl, Method::DELETE, "/portal/api/chats", None).await.status, 204);
    assert_eq!(s.get(&carl, "/portal/api/chats").await.json().as_array().unwrap().len(), 0);

    // the register is seeded and exportable
    let reg = s.get(&carl, "/portal/api/register?format=csv").await;
    assert!(reg.text.starts_with("name,model,purpose"), "{}", reg.text);
    assert!(reg.text.contains("Bürger-Chat") && reg.text.contains("Externer Dienst"), "{}", reg.text);
    let admin = s.login("admin").await;
    let usage = s.get(&admin, "/portal/api/admin/usage").await.json();
    assert!(usage.as_array().unwrap().iter().any(|u| u["group"] == "bauamt" && u["requests"] == 2), "{usage}");

    // sign-in throttling: after 5 failures the account pauses, even with the right password
    for _ in 0..5 {
        let r = s.post(&ANON, "/portal/api/login", json!({"name": "bob", "password": "falsch-falsch"})).await;
        assert_eq!(r.status, 401);
    }
    let r = s.post(&ANON, "/portal/api/login", json!({"name": "bob", "password": PASSWORD})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.headers.get("retry-after").is_some());
    // signing out ends the session on the server
    assert_eq!(s.post(&carl, "/portal/api/logout", json!({})).await.status, 204);
    assert_eq!(s.get(&carl, "/portal/api/me").await.status, 401);
    let _ = Scope::ALL;
}

// ---- issue 31.5: ids never reused, deletes race no upload, the index follows the database --

/// Index collections of the portal and uploads' page records, as the index holds them now.
fn portal_entries(index: &SearchIndex) -> (Vec<String>, Vec<String>) {
    index.reload().unwrap();
    let cols = index.collections().unwrap().into_iter().filter(|c| c.starts_with("portal-")).collect();
    let urls = index.page_records(lotse_portal::documents::INDEX_SITE).unwrap().into_iter().map(|r| r.url).collect();
    (cols, urls)
}

#[tokio::test]
async fn delete_while_uploading_leaves_no_chunk_behind_and_no_id_is_reused() {
    let s = start().await;
    let alice = s.login("alice").await;
    let mut last_collection = 0;
    let mut last_document = 0;
    for round in 0..6 {
        let a = group_collection(&s, &alice, &format!("Runde {round}"), "bauamt").await;
        assert!(a > last_collection, "collection ids only grow: {a} after {last_collection}");
        last_collection = a;
        let first = s.upload(&alice, a, "erst.txt", format!("Die erste Notiz Rundewort{round} steht hier.").into()).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let d = first.json()["id"].as_i64().unwrap();
        assert!(d > last_document, "document ids only grow: {d} after {last_document}");
        last_document = d;
        // an upload and the collection's delete at the same moment (the upload of a larger
        // file is still being read while the delete arrives)
        let body: String = (0..400).map(|i| format!("Absatz {i}: Die Geheimnotiz {CANARY} gilt im Bauamt.\n\n")).collect();
        let del_path = format!("/portal/api/collections/{a}");
        let (up, del) = tokio::join!(
            s.upload(&alice, a, "geheim.txt", body.into_bytes()),
            async {
                if round % 2 == 1 {
                    tokio::time::sleep(std::time::Duration::from_millis(5 * round as u64)).await;
                }
                s.send(&alice, Method::DELETE, &del_path, None).await
            }
        );
        assert_eq!(del.status, 204, "{}", del.text);
        assert!(matches!(up.status, 201 | 404), "the upload either finished first or found no collection: {} {}", up.status, up.text);
        if up.status == 201 {
            last_document = last_document.max(up.json()["id"].as_i64().unwrap());
        }
        let (cols, urls) = portal_entries(&s.index);
        assert!(!cols.contains(&format!("portal-{a}")), "round {round}: no entry of the deleted collection: {cols:?} {urls:?}");
        assert_eq!(s.index.deleted_docs().unwrap(), 0, "deleted chunks are gone from disk too");
        // the next collection gets a new id and sees nothing of the old one
        let b = group_collection(&s, &alice, &format!("Danach {round}"), "bauamt").await;
        assert!(b > a, "a new collection never reuses {a}: {b}");
        last_collection = b;
        let r = s.portal_search(&alice, CANARY, &b.to_string(), false).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.text.contains(CANARY), "{}", r.text);
        assert!(s.store.collection(a).unwrap().is_none());
    }
    // documents: a deleted document's id is not given out again either
    let c = group_collection(&s, &alice, "Ids", "bauamt").await;
    let one = s.upload(&alice, c, "eins.txt", "Die Notiz Idwort eins.".into()).await.json()["id"].as_i64().unwrap();
    assert_eq!(s.send(&alice, Method::DELETE, &format!("/portal/api/documents/{one}"), None).await.status, 204);
    let two = s.upload(&alice, c, "eins.txt", "Die Notiz Idwort zwei.".into()).await.json()["id"].as_i64().unwrap();
    assert!(two > one && one > last_document, "{one} {two} {last_document}");
    // with SQLite the deleted text is gone from the database file and its WAL too
    if std::env::var(lotse_portal::store::testing::POSTGRES_ENV).map(|v| v.trim().is_empty()).unwrap_or(true) {
        for f in ["portal.sqlite", "portal.sqlite-wal"] {
            let raw = std::fs::read(s._dir.path().join(f)).unwrap_or_default();
            assert!(!raw.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()), "{f} holds no deleted text");
        }
    }
}

#[tokio::test]
async fn start_up_reconciles_the_index_with_the_database() {
    let s = start().await;
    let alice = s.login("alice").await;
    let a = group_collection(&s, &alice, "Bauamt intern", "bauamt").await;
    let r = s.upload(&alice, a, "weisung.txt", format!("Die Dienstanweisung {CANARY} regelt die Vertretung.").into()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let doc = r.json()["id"].as_i64().unwrap();
    // orphans as a crash or an old version could leave them: a collection and a document
    // the database does not know (with ids beyond its own)
    let orphan_col = lotse_portal::store::Collection {
        id: a + 50,
        title: "weg".into(),
        owner: lotse_portal::auth::Owner::Group("kaemmerei".into()),
        created_at: 0,
        documents: 0,
    };
    let real_col = s.store.collection(a).unwrap().unwrap();
    {
        let mut w = s.index.writer().unwrap();
        let mut page = Page {
            url: String::new(),
            title: "Alt".into(),
            kind: DocKind::Text,
            lang: None,
            modified: None,
            blocks: vec![Block::Paragraph { text: "Die alte Waisennotiz Orphanwort bleibt nicht.".into() }],
        };
        lotse_portal::documents::write(&mut w, &orphan_col, doc + 70, &mut page.clone(), "x").unwrap();
        lotse_portal::documents::write(&mut w, &real_col, doc + 80, &mut page, "y").unwrap();
        // and the real upload's chunks lost
        w.remove(&lotse_portal::store::document_url(doc));
        w.commit().unwrap();
    }
    let (cols, urls) = portal_entries(&s.index);
    assert_eq!(cols.len(), 2, "{cols:?}");
    assert_eq!(urls.len(), 2, "{urls:?}");
    let done = lotse_portal::documents::reconcile(&s.store, &s.index, None).unwrap();
    assert_eq!((done.orphan_collections, done.orphan_documents, done.reindexed, done.without_original), (1, 1, 1, 0), "{done:?}");
    let (cols, urls) = portal_entries(&s.index);
    assert_eq!(cols, vec![format!("portal-{a}")]);
    assert_eq!(urls, vec![lotse_portal::store::document_url(doc)]);
    // the lost upload is found again, written from its original
    let r = s.portal_search(&alice, CANARY, &a.to_string(), false).await;
    assert!(r.text.contains(CANARY), "{}", r.text);
    // ids the index has seen are not given out again
    let b = group_collection(&s, &alice, "Neu", "bauamt").await;
    assert!(b > a + 50, "{b}");
    let next = s.upload(&alice, b, "neu.txt", "Die Notiz Neuwort.".into()).await.json()["id"].as_i64().unwrap();
    assert!(next > doc + 80, "{next}");
    // a second run finds nothing to do
    let again = lotse_portal::documents::reconcile(&s.store, &s.index, None).unwrap();
    assert_eq!((again.orphan_collections, again.orphan_documents, again.reindexed), (0, 0, 0), "{again:?}");
}

/// The services the state holds are built again when the answerer is swapped: none keeps
/// the old one (uploads and the staff chat answer from the new index).
#[tokio::test]
async fn services_follow_a_swapped_answerer() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::default();
    let state = AppState::new(config.clone());
    assert!(state.documents().is_none() && state.staff_chat().is_none(), "no portal yet");
    let store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let portal = Portal::new(store, Check::parse(DEFAULT_CHECK).unwrap(), DEFAULT_TEXT.to_string(), config.portal.levels.clone(), Vec::new());
    state.set_portal(Arc::new(portal));
    assert!(state.documents().unwrap().answerer.is_none(), "starting");
    let index = town_index(&dir.path().join("index"));
    let answerer = |name: &str| {
        let g = Arc::new(FakeCitingGenerator::new(name, false));
        Arc::new(Answerer::new(index.clone(), None, Some(Arc::new(GenerationService::new(g, 1, 8))), AnswerConfig::default()))
    };
    let (first, second) = (answerer("first"), answerer("second"));
    state.set_answerer(first.clone());
    assert!(Arc::ptr_eq(state.documents().unwrap().answerer.as_ref().unwrap(), &first));
    state.set_answerer(second.clone());
    assert!(Arc::ptr_eq(&state.answerer().unwrap(), &second));
    assert!(Arc::ptr_eq(state.documents().unwrap().answerer.as_ref().unwrap(), &second));
    assert!(Arc::ptr_eq(state.staff_chat().unwrap().answerer.as_ref().unwrap(), &second));
}
