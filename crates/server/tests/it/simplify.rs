//! `GET /api/v1/simplify` over loopback: a real tantivy index, a real SQLite rewrite store, a
//! real axum server on 127.0.0.1, and a fake rewriter (`FakeSplittingRewriter`, splits
//! sentences at commas) so no model files are needed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lotse_core::{Block, DocKind, Page, PageRecord, Visibility};
use lotse_index::SearchIndex;
use lotse_server::Config;
use lotse_server::rewrites::RewriteStore as Store;
use serde_json::Value;

use crate::common;
use lotse_test_support::{FakeSplittingRewriter, wait_until_async};

const CANARY: &str = "GEHEIM-4711-KANARIE";

/// A page of the town titled "Seite"; its content hash is not its URL.
fn record(url: &str, collection: &str, visibility: Visibility) -> PageRecord {
    PageRecord { content_hash: format!("hash-{url}"), ..lotse_test_support::record(url, "Seite", collection, visibility) }
}

/// A page with an abbreviation in its heading, a paragraph and a list.
fn page(url: &str, body: &str) -> Page {
    let mut page = lotse_test_support::page(url, "Seite", "Gebühren gem. § 5", None, body);
    page.blocks.push(Block::List { ordered: false, items: vec!["Montag".into(), "Dienstag".into()] });
    page
}

const HUND: &str = "http://town.test/ortsrecht/hundesteuer/";
const BUECHEREI: &str = "http://town.test/leben/buecherei/";
const INTERN: &str = "http://town.test/intern/weisung/";

struct Server {
    addr: std::net::SocketAddr,
    rewriter: Arc<FakeSplittingRewriter>,
    store: Arc<Store>,
    _dir: tempfile::TempDir,
}

async fn start(pregenerate: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    let mut w = index.writer().unwrap();
    for (url, body, coll, vis) in [
        (HUND, "Die Hundesteuer beträgt für den ersten Hund 108,00 € im Jahr, für jeden weiteren Hund 216,00 €, sie wird am 1. Juli fällig.", "website", Visibility::Public),
        (BUECHEREI, "Die Bücherei ist dienstags von 15 bis 18 Uhr geöffnet, die Ausleihe ist kostenlos und die Rückgabe geht auch am Automaten.", "website", Visibility::Public),
        (INTERN, &format!("Die Weisung {CANARY} gilt nur intern, sie wird nicht veröffentlicht und bleibt im Bauamt."), "bauamt", Visibility::Group("bauamt".into())),
    ] {
        w.upsert(&record(url, coll, vis), Some(&page(url, body))).unwrap();
    }
    w.put_site_state("http://town.test", Some("Gemeinde Testdorf"), &serde_json::json!({})).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    let common::Served { addr, rewriter, store } =
        common::serve(Arc::new(index), Config::default(), &dir.path().join("simplify.sqlite"), 4, pregenerate).await;
    Server { addr, rewriter, store, _dir: dir }
}

async fn get(s: &Server, url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/v1/simplify", s.addr))
        .query(&[("url", url)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_page_is_queued_then_served_from_the_cache() {
    let s = start(false).await;
    let (status, headers, body) = get(&s, HUND).await;
    assert_eq!(status, 202, "{body}");
    assert!(headers.get("retry-after").is_some());
    assert!(headers.get("location").unwrap().to_str().unwrap().starts_with("/api/v1/simplify?url="));
    assert!(body["message"].as_str().unwrap().contains("Einfache Sprache"), "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let (status, _, body) = get(&s, &format!("{HUND}#abschnitt")).await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 202, "{body}");
        assert!(Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page["label"], "KI-generiert – in Einfache Sprache übertragen. Verbindlich ist der Originaltext.");
    assert_eq!(page["original_url"], HUND);
    assert_eq!(page["blocks"].as_array().unwrap().len(), 3);
    assert_eq!(page["blocks"][1]["status"], "simplified");
    assert_eq!(page["blocks"][0]["status"], "rules_only");
    assert_eq!(page["blocks"][0]["simplified"]["text"], "Gebühren gemäß Paragraf 5");
    let text = page["text"].as_str().unwrap();
    assert!(text.contains("108 Euro") && text.contains("216 Euro") && text.contains("1. Juli"), "{text}");
    assert!(page["html"].as_str().unwrap().contains(&format!("<a href=\"{HUND}\">Originaltext</a>")));
    assert!(page["readability"]["flesch_gain"].is_f64());

    // a click now: from the cache, no model call
    let calls = s.rewriter.calls.load(Ordering::SeqCst);
    let t = Instant::now();
    let (status, _, again) = get(&s, HUND).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(again["text"], page["text"]);
    assert_eq!(s.rewriter.calls.load(Ordering::SeqCst), calls);
    assert_eq!(s.store.urls().unwrap(), vec![HUND.to_string()]);
}

#[tokio::test]
async fn foreign_addresses_are_refused_and_nothing_is_rewritten() {
    let s = start(false).await;
    for bad in [
        "https://evil.example/ortsrecht/hundesteuer/",
        "file:///etc/passwd",
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://user:pw@town.test/ortsrecht/hundesteuer/",
        "gopher://town.test/",
        "keine adresse",
        "",
    ] {
        let (status, _, body) = get(&s, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("Es können nur") || msg.starts_with("Die Adresse") || msg.starts_with("Bitte"), "{msg}");
    }
    let r = reqwest::get(format!("http://{}/api/v1/simplify", s.addr)).await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "missing url parameter");
    // private collections are not pages of the website
    let (status, _, body) = get(&s, INTERN).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains(CANARY));
    let (status, _, _) = get(&s, "http://town.test/gibt-es-nicht/").await;
    assert_eq!(status, 404);
    // nothing may be rewritten: watch the rewriter for 300 ms
    wait_until_async(Duration::from_millis(300), || async { s.rewriter.calls() > 0 }).await;
    assert_eq!(s.rewriter.calls.load(Ordering::SeqCst), 0, "nothing was rewritten");
}

#[tokio::test]
async fn pregeneration_rewrites_public_pages_only() {
    let s = start(true).await;
    let done = wait_until_async(Duration::from_secs(30), || async { s.store.urls().unwrap().len() >= 2 }).await;
    assert!(done, "pre-generation did not finish");
    // no third page may follow (the private one): watch the store for 300 ms
    wait_until_async(Duration::from_millis(300), || async { s.store.urls().unwrap().len() > 2 }).await;
    assert_eq!(s.store.urls().unwrap(), vec![BUECHEREI.to_string(), HUND.to_string()]);
    let t = Instant::now();
    let (status, _, body) = get(&s, BUECHEREI).await;
    assert_eq!(status, 200, "{body}");
    assert!(t.elapsed() < Duration::from_secs(2));
}

// ---- legal texts: citizens see the model's rewrite only after a staff review ---------------

const MARKT: &str = "http://town.test/ortsrecht/marktordnung/";
const PASSWORD: &str = "richtig-langes-Passwort";

/// A server with a statute in the index, the rewrite worker and the portal (`anna`: editor,
/// `bob`: staff, `admin`).
async fn start_with_portal() -> (Server, tempfile::TempDir) {
    use lotse_portal::auth::{self, Role};
    use lotse_portal::kompass::{Check, DEFAULT_CHECK, DEFAULT_TEXT};
    use lotse_server::portal::Portal;
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    let mut w = index.writer().unwrap();
    let statute = Page {
        url: MARKT.into(),
        title: "Marktordnung".into(),
        kind: DocKind::Html,
        lang: Some("de".into()),
        modified: None,
        blocks: vec![
            Block::Heading { level: 2, text: "§ 1 Markttage".into(), anchor: None },
            Block::Paragraph { text: "(1) Der Wochenmarkt findet jeden Samstag auf dem Rathausplatz statt, er beginnt um 8.00 Uhr und endet um 12.00 Uhr, die Standgebühr beträgt gem. § 2 Abs. 1 je Meter 3,00 €.".into() },
            Block::Heading { level: 2, text: "§ 2 Gebühren".into(), anchor: None },
            Block::Paragraph { text: "(1) Die Gebühr wird vom Marktmeister erhoben, sie ist vor Marktbeginn bar zu entrichten, eine Erstattung ist ausgeschlossen.".into() },
        ],
    };
    let mut rec = record(MARKT, "website", Visibility::Public);
    rec.title = "Marktordnung".into();
    w.upsert(&rec, Some(&statute)).unwrap();
    w.put_site_state("http://town.test", Some("Gemeinde Testdorf"), &serde_json::json!({})).unwrap();
    w.commit().unwrap();
    index.reload().unwrap();
    let portal_store = Arc::new(lotse_portal::store::testing::open(dir.path()));
    let hash = auth::hash_password(PASSWORD).unwrap();
    for (name, role) in [("anna", Role::Editor), ("bob", Role::Staff), ("admin", Role::Admin)] {
        portal_store.create_user(name, name, Some(&hash), role, &[]).unwrap();
    }
    let mut config = Config::default();
    config.limits.chat_per_minute = 0;
    let portal = Portal::new(
        portal_store,
        Check::parse(DEFAULT_CHECK).unwrap(),
        DEFAULT_TEXT.to_string(),
        config.portal.levels.clone(),
        vec![],
    );
    let common::Served { addr, rewriter, store } = common::serve_with(
        Arc::new(index),
        config,
        &dir.path().join("simplify.sqlite"),
        4,
        false,
        |state| state.set_portal(Arc::new(portal)),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    (Server { addr, rewriter, store, _dir: tmp }, dir)
}

/// Sign in `name`: (cookie header, CSRF token).
async fn login(s: &Server, name: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/portal/api/login", s.addr))
        .json(&serde_json::json!({"name": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrf"].as_str().unwrap().to_string())
}

async fn portal(s: &Server, who: Option<&(String, String)>, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("http://{}{path}", s.addr));
    if let Some((cookie, csrf)) = who {
        r = r.header("cookie", cookie).header("x-csrf-token", csrf);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_legal_text_is_shown_in_the_models_words_only_after_review() {
    let (s, _dir) = start_with_portal().await;
    // at once: the deterministic pass with the note, while the model's rewrite is made
    let (status, _, body) = get(&s, MARKT).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["legal_text"].as_bool().unwrap(), "{body}");
    assert_eq!(body["review"]["status"], "pending", "{body}");
    assert!(body["review"]["message"].as_str().unwrap().contains("geprüft"));
    assert!(body["blocks"].as_array().unwrap().iter().all(|b| b["status"] == "rules_only"), "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("Paragraf 2 Absatz 1") && text.contains("KI-generiert"), "{text}");
    assert!(body["html"].as_str().unwrap().contains("data-review=\"pending\""));

    let anna = login(&s, "anna").await;
    let bob = login(&s, "bob").await;
    let list = "/portal/api/simplify/reviews";
    assert_eq!(portal(&s, None, reqwest::Method::GET, list, None).await.0, 401);
    assert_eq!(portal(&s, Some(&bob), reqwest::Method::GET, list, None).await.0, 403);
    let deadline = Instant::now() + Duration::from_secs(20);
    let entry = loop {
        let (status, body) = portal(&s, Some(&anna), reqwest::Method::GET, list, None).await;
        assert_eq!(status, 200, "{body}");
        if let Some(e) = body.as_array().unwrap().first() {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "the model's rewrite was not made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((entry["url"].as_str(), entry["status"].as_str()), (Some(MARKT), Some("pending")));
    assert!(s.rewriter.calls.load(Ordering::SeqCst) > 0);
    // the rules pass is stored beside the model's rewrite: a click after a restart reads it
    let urls = s.store.urls().unwrap();
    assert!(urls.contains(&format!("rules:{MARKT}")) && urls.contains(&MARKT.to_string()), "{urls:?}");
    let key = entry["key"].as_str().unwrap().to_string();
    let one = format!("{list}/{key}");
    let (status, rewrite) = portal(&s, Some(&anna), reqwest::Method::GET, &one, None).await;
    assert_eq!(status, 200);
    assert!(rewrite["blocks"].as_array().unwrap().iter().any(|b| b["status"] == "simplified"), "{rewrite}");
    // made, but not yet approved: citizens still get the rules pass
    let (_, _, body) = get(&s, MARKT).await;
    assert_eq!(body["review"]["status"], "pending");

    // decisions: only approved or rejected, only by editors, only on stored rewrites
    let post = |who, path: String, status: &str| {
        let body = serde_json::json!({ "status": status });
        let s = &s;
        async move { portal(s, who, reqwest::Method::POST, &path, Some(body)).await }
    };
    assert_eq!(post(Some(&anna), one.clone(), "pending").await.0, 400);
    assert_eq!(post(Some(&bob), one.clone(), "approved").await.0, 403);
    assert_eq!(post(Some(&anna), format!("{list}/{}", "0".repeat(64)), "approved").await.0, 404);
    let (status, d) = post(Some(&anna), one.clone(), "approved").await;
    assert_eq!((status, d["reviewer"].as_str()), (200, Some("anna")), "{d}");
    let (_, _, body) = get(&s, MARKT).await;
    assert_eq!(body["review"]["status"], "approved", "{body}");
    assert!(body["review"]["message"].as_str().unwrap().contains("Verwaltung"));
    assert!(body["blocks"].as_array().unwrap().iter().any(|b| b["status"] == "simplified"));

    // a rejection takes it back
    assert_eq!(post(Some(&anna), one.clone(), "rejected").await.0, 200);
    let (_, _, body) = get(&s, MARKT).await;
    assert_eq!(body["review"]["status"], "rejected");
    assert!(body["blocks"].as_array().unwrap().iter().all(|b| b["status"] == "rules_only"));
    let (_, listed) = portal(&s, Some(&anna), reqwest::Method::GET, list, None).await;
    assert_eq!(listed[0]["status"], "rejected");

    // approval with corrections: one paragraph in the reviewer's words, one as the rules
    // pass made it; a correction that loses the amounts is refused with a German reason
    let rewritten: Vec<&Value> = rewrite["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "simplified" && b["original"]["type"] == "paragraph")
        .collect();
    assert!(rewritten.len() >= 2, "{rewrite}");
    let (i1, i2) = (rewritten[0]["index"].as_u64().unwrap(), rewritten[1]["index"].as_u64().unwrap());
    let own = rewritten[0]["original"]["text"].as_str().unwrap().to_string();
    let anna_ref = &anna;
    let decide = |body: Value| {
        let (s, path) = (&s, one.clone());
        async move { portal(s, Some(anna_ref), reqwest::Method::POST, &path, Some(body)).await }
    };
    let invented = serde_json::json!({"status": "approved", "corrections": [{"index": i1, "text": "Das kostet 999 Euro."}]});
    let (status, e) = decide(invented).await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("Angaben des Originals"), "{e}");
    let on_rejection = serde_json::json!({"status": "rejected", "corrections": [{"index": i2}]});
    assert_eq!(decide(on_rejection).await.0, 400);
    // a decision on a rewrite other than the one read (made again since): 409
    let unseen = serde_json::json!({"status": "approved", "generated_at": 1});
    assert_eq!(decide(unseen).await.0, 409);
    let (_, _, body) = get(&s, MARKT).await;
    assert_eq!(body["review"]["status"], "rejected", "a refused correction changes nothing");
    let read = rewrite["generated_at"].as_u64().unwrap();
    let fixes = serde_json::json!({"status": "approved", "generated_at": read, "corrections": [{"index": i1, "text": own}, {"index": i2}]});
    let (status, d) = decide(fixes).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["corrections"].as_array().unwrap().len(), 2, "{d}");
    let (_, _, body) = get(&s, MARKT).await;
    assert_eq!(body["review"]["status"], "approved", "{body}");
    assert!(body["review"]["message"].as_str().unwrap().contains("2 Abschnitte korrigiert"), "{body}");
    let block = |i: u64| body["blocks"].as_array().unwrap().iter().find(|b| b["index"] == i).unwrap().clone();
    assert_eq!(block(i1)["correction"], "edited");
    assert_eq!(block(i1)["simplified"]["text"].as_str(), Some(own.as_str()));
    assert_eq!((block(i2)["correction"].as_str(), block(i2)["status"].as_str()), (Some("rules"), Some("rules_only")));
    assert!(body["html"].as_str().unwrap().contains("data-corrected=\"edited\""));
    // the list gives the corrections back, for the portal to show them when reopened
    let (_, listed) = portal(&s, Some(&anna), reqwest::Method::GET, list, None).await;
    assert_eq!(listed[0]["corrections"].as_array().unwrap().len(), 2, "{listed}");

    // the decisions are in the audit log
    let admin = login(&s, "admin").await;
    let (status, audit) = portal(&s, Some(&admin), reqwest::Method::GET, "/portal/api/admin/audit", None).await;
    assert_eq!(status, 200);
    let n = audit.as_array().unwrap().iter().filter(|e| e["action"] == "review_rewrite").count();
    assert_eq!(n, 3, "{audit}");
    assert!(audit.to_string().contains("2 corrected"), "{audit}");
}

/// The rewrite store in the one database (formerly `lotse_simplify::store`, SQLite of its
/// own): a changed page replaces its rewrite, a decision goes with the text staff read, and
/// everything is there after reopening.
#[test]
fn the_rewrite_store_replaces_a_changed_page_and_keeps_decisions_with_their_text() {
    use lotse_inference::CancelToken;
    use lotse_simplify::{BlockCorrection, Glossary, NoProgress, ReviewStatus, Simplifier};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("portal.sqlite");
    let s = Simplifier::new(Arc::new(FakeSplittingRewriter::new()), Glossary::default_terms());
    let statute = |fee: &str| Page {
        url: "http://127.0.0.1:1/ortsrecht/hundesteuer/".into(),
        title: "Satzung über die Erhebung der Hundesteuer".into(),
        kind: DocKind::Html,
        lang: None,
        modified: None,
        blocks: vec![
            Block::Heading { level: 2, text: "§ 5 Steuersatz".into(), anchor: None },
            Block::Paragraph {
                text: format!(
                    "(1) Die Steuer beträgt im Kalenderjahr für den ersten Hund {fee} €, sie ist gem. § 7 Abs. 2 am 1. Juli fällig, wenn der Hund älter als drei Monate ist."
                ),
            },
        ],
    };
    let full = s.simplify(&statute("120,00"), "h1", &CancelToken::new(), &NoProgress).unwrap();
    assert!(full.legal_text && full.has_model_rewrite());
    let key = s.cache_key("h1");
    {
        let store = Store::open(&path).unwrap();
        assert!(store.set_review(&key, ReviewStatus::Approved, "anna", &[]).is_err(), "no decision on a text nobody could see");
        store.put(&key, &full).unwrap();
        assert_eq!(store.get(&key).unwrap().map(|p| p.text), Some(full.text.clone()));
        let listed = store.legal_rewrites(s.rules_version()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].2.is_none()), (key.as_str(), true));
        let fixes = vec![BlockCorrection { index: 1, text: Some("Die Steuer ist am 1. Juli fällig.".into()) }];
        let d = store.set_review(&key, ReviewStatus::Approved, "anna", &fixes).unwrap();
        assert_eq!((d.status, d.reviewer.as_str()), (ReviewStatus::Approved, "anna"));
    }
    let store = Store::open(&path).unwrap();
    let d = store.review(&key).unwrap().expect("kept across reopening");
    assert_eq!((d.status, d.corrections.len()), (ReviewStatus::Approved, 1));
    assert_eq!(store.legal_rewrites(s.rules_version()).unwrap()[0].2.as_ref().map(|d| d.status), Some(ReviewStatus::Approved));
    // corrections nobody can read: never the uncorrected rewrite, the text waits for a review
    store.database().set_rewrite_review(&key, "approved", "anna", "not json", 1).unwrap();
    assert_eq!(store.review(&key).unwrap().unwrap().status, ReviewStatus::Pending);

    // a changed page: the new rewrite replaces the old one, the old decision goes with it
    let changed = s.simplify(&statute("150,00"), "h2", &CancelToken::new(), &NoProgress).unwrap();
    let key2 = s.cache_key("h2");
    store.put(&key2, &changed).unwrap();
    assert_eq!(store.get(&key).unwrap(), None, "the old rewrite is replaced");
    assert!(store.review(&key).unwrap().is_none(), "the old decision went with its text");
    let listed = store.legal_rewrites(s.rules_version()).unwrap();
    assert_eq!((listed.len(), listed[0].2.is_none()), (1, true), "the new text is not reviewed yet");
    // the same key written again (`lotse simplify --force`): the decision goes
    store.set_review(&key2, ReviewStatus::Approved, "anna", &[]).unwrap();
    store.put(&key2, &changed).unwrap();
    assert!(store.review(&key2).unwrap().is_none());
    store.set_review(&key2, ReviewStatus::Rejected, "anna", &[]).unwrap();
    assert_eq!(store.urls().unwrap(), vec![changed.url.clone()]);
    store.remove_url(&changed.url).unwrap();
    assert!(store.review(&key2).unwrap().is_none(), "a page that is gone takes its decision");
    assert!(store.urls().unwrap().is_empty());

    // a damaged file is an error naming it, not a panic
    std::fs::write(tmp.path().join("broken.sqlite"), b"this is not a database, just some text that is long enough").unwrap();
    let e = Store::open(&tmp.path().join("broken.sqlite")).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("broken.sqlite"), "{e}");
}

/// A data directory written by the code before issue 33.4 (the fixture of `lotse-portal`):
/// opened by the server, every rewrite, approval and rating is read back typed.
#[test]
fn a_data_directory_of_the_old_stores_is_read_through_the_one_database() {
    use lotse_simplify::ReviewStatus;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../portal/tests/fixtures/legacy-data");
    let tmp = tempfile::tempdir().unwrap();
    for f in ["portal.sqlite", "simplify.sqlite", "feedback.sqlite"] {
        std::fs::copy(fixture.join(f), tmp.path().join(f)).unwrap();
    }
    let db = lotse_server::database::open(None, tmp.path()).unwrap();
    assert!(tmp.path().join("simplify.sqlite.imported").is_file() && !tmp.path().join("feedback.sqlite").exists());
    let store = Store::new(db.clone()).unwrap();
    let listed = store.legal_rewrites("14-62052888").unwrap();
    assert_eq!(listed.len(), 2);
    let approved = listed.iter().find(|(_, p, _)| p.url == "http://town.test/satzung/").unwrap();
    let d = approved.2.as_ref().expect("the approval");
    assert_eq!((d.status, d.reviewer.as_str(), d.corrections.len()), (ReviewStatus::Approved, "anna", 1));
    assert_eq!(d.corrections[0].text.as_deref(), Some("Die Steuer ist am 1. Juli fällig."));
    let rejected = listed.iter().find(|(_, p, _)| p.url == "http://town.test/gebuehren/").unwrap();
    assert_eq!(rejected.2.as_ref().map(|d| d.status), Some(ReviewStatus::Rejected));
    assert_eq!(store.get(&approved.0).unwrap().map(|p| p.url), Some("http://town.test/satzung/".to_string()));
    assert_eq!(store.urls().unwrap().len(), 3, "the CMS text too");
    assert_eq!(store.unit_count().unwrap(), 1, "unit rows of today's UNIT_VERSION stay");
    let ratings = lotse_server::feedback::FeedbackStore::new(db.clone()).all().unwrap();
    assert_eq!(ratings.iter().map(|r| (r.answer_id.as_str(), r.helpful)).collect::<Vec<_>>(), vec![("a1", true), ("a2", false)]);
    // the same database, once per process
    assert!(Arc::ptr_eq(&db, &lotse_server::database::open(None, tmp.path()).unwrap()));
}
