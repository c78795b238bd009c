//! `GET /api/v1/simplify` over loopback: a real tantivy index, a real SQLite rewrite store, a
//! real axum server on 127.0.0.1, and a fake rewriter (`FakeSplittingRewriter`, splits
//! sentences at commas) so no model files are needed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use lotse_core::{Block, CollectionId, DocKind, Page, PageRecord, Visibility};
use lotse_index::SearchIndex;
use lotse_server::Config;
use lotse_simplify::store::Store;
use serde_json::Value;

mod common;
use common::FakeSplittingRewriter;

const CANARY: &str = "GEHEIM-4711-KANARIE";

fn record(url: &str, collection: &str, visibility: Visibility) -> PageRecord {
    PageRecord {
        url: url.into(),
        site: "http://town.test".into(),
        site_name: Some("Gemeinde Testdorf".into()),
        collection: CollectionId(collection.into()),
        visibility,
        kind: DocKind::Html,
        title: "Seite".into(),
        aliases: vec![],
        etag: None,
        last_modified: None,
        content_hash: format!("hash-{url}"),
        links: vec![],
        modified: None,
        indexed: true,
        n_chunks: 0,
        fetched_at: 0,
    }
}

fn page(url: &str, body: &str) -> Page {
    Page {
        url: url.into(),
        title: "Seite".into(),
        kind: DocKind::Html,
        lang: Some("de".into()),
        modified: None,
        blocks: vec![
            Block::Heading { level: 2, text: "Gebühren gem. § 5".into(), anchor: None },
            Block::Paragraph { text: body.into() },
            Block::List { ordered: false, items: vec!["Montag".into(), "Dienstag".into()] },
        ],
    }
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.rewriter.calls.load(Ordering::SeqCst), 0, "nothing was rewritten");
}

#[tokio::test]
async fn pregeneration_rewrites_public_pages_only() {
    let s = start(true).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.store.urls().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "pre-generation did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.store.urls().unwrap(), vec![BUECHEREI.to_string(), HUND.to_string()]);
    let t = Instant::now();
    let (status, _, body) = get(&s, BUECHEREI).await;
    assert_eq!(status, 200, "{body}");
    assert!(t.elapsed() < Duration::from_secs(2));
}
