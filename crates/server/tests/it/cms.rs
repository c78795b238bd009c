//! The CMS routes over loopback: `POST /api/v1/pages/refresh` (the publish webhook) against a
//! copy of the Bad Boll fixture site on 127.0.0.1, `POST /api/v1/simplify` and its status URL,
//! with a real tantivy index, a real SQLite store and `FakeSplittingRewriter` (no model).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lotse_crawler::{CrawlConfig, NoProgress};
use lotse_index::SearchIndex;
use lotse_server::Config;
use lotse_server::rewrites::RewriteStore as Store;
use lotse_testsite::{Route, ServerOptions, SiteServer};
use serde_json::{Value, json};

use crate::common;
use lotse_test_support::FakeSplittingRewriter;

const TOKEN: &str = "test-token-7f3a9c1e5b2d4f60";
const PAGE: &str = "/ortsrecht/bbo-satzung-erhebung-hundesteuer/";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Counts connections and answers nothing: the "other host" a redirect points to.
async fn other_host() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    (origin, hits)
}

struct Env {
    addr: std::net::SocketAddr,
    site: SiteServer,
    rewriter: Arc<FakeSplittingRewriter>,
    store: Arc<Store>,
    other_hits: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn page_url(&self) -> String {
        self.site.url(PAGE)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = reqwest::Client::new().post(format!("http://{}{path}", self.addr)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path_and_query: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new().get(format!("http://{}{path_and_query}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// GET `path` until it answers 200.
    async fn until_ready(&self, path_and_query: &str, token: Option<&str>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(path_and_query, token).await;
            if status == 200 {
                return body;
            }
            assert_eq!(status, 202, "{body}");
            assert!(Instant::now() < deadline, "not ready in time: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn start(token: Option<&str>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let site_dir = dir.path().join("site");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/sites/bad-boll"),
        &site_dir,
    );
    let (other, other_hits) = other_host().await;
    let opts = ServerOptions {
        routes: vec![(
            "/weiter/".into(),
            Route::new(302).header("Location", format!("{other}/ortsrecht/")),
        )],
        ..ServerOptions::default()
    };
    let site = SiteServer::start_with(&site_dir, opts).unwrap();
    let index = SearchIndex::open(&dir.path().join("index")).unwrap();
    // the first "crawl": just the one page, as a webhook would do it on an empty index
    let mut cfg = CrawlConfig::page(url::Url::parse(&site.url(PAGE)).unwrap());
    cfg.request_timeout = Duration::from_secs(10);
    let summary = lotse_crawler::crawl(&cfg, &index, &NoProgress).await.unwrap();
    assert_eq!(summary.pages_indexed, 1, "{summary:?}");
    let mut config = Config::default();
    config.cms.token = token.map(str::to_string);
    // the page is a statute: these tests follow the model's rewrite, not its review
    // (`tests/it/simplify.rs` has that)
    config.simplify.legal_texts = lotse_simplify::LegalTexts::Model;
    let common::Served { addr, rewriter, store } =
        common::serve(Arc::new(index), config, &dir.path().join("simplify.sqlite"), 8, false).await;
    Env { addr, site, rewriter, store, other_hits, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_webhook_reindexes_the_page_and_its_rewrite_follows() {
    let env = start(Some(TOKEN)).await;
    let url = env.page_url();
    let body = json!({ "url": url });

    // no or a wrong token: nothing happens
    env.site.clear_requests();
    for token in [None, Some("falsch")] {
        let (status, _, b) = env.post("/api/v1/pages/refresh", token, body.clone()).await;
        assert_eq!(status, 401, "{b}");
        assert!(b["error"]["message"].as_str().unwrap().contains("Zugangsschlüssel"), "{b}");
    }
    // foreign addresses are refused before anything is fetched
    for bad in [
        "https://evil.example/ortsrecht/".to_string(),
        "file:///etc/passwd".to_string(),
        "http://127.0.0.1:9/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        env.site.url("/").replace("http://", "http://user:pw@"),
    ] {
        let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), json!({ "url": bad })).await;
        assert_eq!(status, 400, "{bad}: {b}");
        assert!(b["error"]["message"].as_str().unwrap().starts_with("Es können nur"), "{b}");
    }
    assert!(env.site.requests().is_empty(), "nothing fetched: {:?}", env.site.requests());

    // unchanged page
    let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), body.clone()).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "unchanged", "{b}");

    // the CMS publishes a change
    let file = env.site.site_dir().join(PAGE.trim_matches('/')).join("index.html");
    let html = std::fs::read_to_string(&file).unwrap();
    let news = "Neu beschlossen: Assistenzhunde sind ab dem nächsten Jahr von der Steuer befreit, der Antrag ist formlos.";
    std::fs::write(&file, html.replacen("</h1>", &format!("</h1><p>{news}</p>"), 1)).unwrap();
    let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), body.clone()).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "updated", "{b}");
    assert_eq!(b["simplified"], false);
    let simplify_url = b["simplify_url"].as_str().unwrap().to_string();
    // the new text is searchable at once
    let (status, hits) = env.get("/api/v1/search?q=Assistenzhunde", None).await;
    assert_eq!(status, 200);
    assert!(hits.to_string().contains("Assistenzhunde"), "{hits}");
    // and its rewrite follows
    let page = env.until_ready(&simplify_url, None).await;
    let text = page["text"].as_str().unwrap();
    assert!(text.contains("Assistenzhunde"), "{text}");
    assert!(text.contains("Der Antrag ist formlos"), "split by the fake rewriter: {text}");
    assert_eq!(env.store.urls().unwrap(), vec![url.clone()]);
    let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!((b["status"].as_str(), b["simplified"].as_bool()), (Some("unchanged"), Some(true)), "{b}");

    // a redirect to another host is not followed
    let (status, _, b) = env
        .post("/api/v1/pages/refresh", Some(TOKEN), json!({ "url": env.site.url("/weiter/") }))
        .await;
    assert_eq!(status, 400, "{b}");
    assert_eq!(b["error"]["code"], "redirect_elsewhere");
    assert_eq!(env.other_hits.load(Ordering::SeqCst), 0, "the other host was not contacted");

    // the page is deleted: the webhook removes it
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), body.clone()).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "removed", "{b}");
    assert!(b["simplify_url"].is_null());
    let (status, _) = env.get(&simplify_url, None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_webhook_skips_a_pdf_bomb() {
    let env = start(Some(TOKEN)).await;
    // 1 MB of PDF whose page is 1 GiB of zeros (issue 31); the crawler's tests measure memory
    let bomb = lotse_extract::pdf_limits::testing::zero_bomb(1 << 30);
    std::fs::write(env.site.site_dir().join("ortsrecht/haushalt.pdf"), bomb).unwrap();
    let url = env.site.url("/ortsrecht/haushalt.pdf");
    let started = Instant::now();
    let (status, _, b) = env.post("/api/v1/pages/refresh", Some(TOKEN), json!({ "url": url })).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["status"], "not_indexed", "{b}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let (status, hits) = env.get("/api/v1/search?q=Haushalt", None).await;
    assert_eq!(status, 200);
    assert!(!hits.to_string().contains("haushalt.pdf"), "{hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cms_gets_its_own_text_in_einfache_sprache() {
    let env = start(Some(TOKEN)).await;
    let text = "# Sperrmüll\n\nDie Abholung erfolgt gem. Abfallsatzung auf Antrag, die Gebühr beträgt 25,00 € je Termin.\n\n- Anmeldung bis Freitag\n- Telefon 07164 808-0";
    let (status, _, b) = env.post("/api/v1/simplify", None, json!({ "text": text })).await;
    assert_eq!(status, 401, "{b}");
    let (status, headers, b) = env
        .post("/api/v1/simplify", Some(TOKEN), json!({ "text": text, "url": "https://www.bad-boll.de/sperrmuell/" }))
        .await;
    assert_eq!(status, 202, "{b}");
    let location = headers.get("location").unwrap().to_str().unwrap().to_string();
    assert_eq!(b["status_url"], location.as_str());
    assert!(location.starts_with("/api/v1/simplify/jobs/"));
    let (status, _) = env.get(&location, None).await;
    assert_eq!(status, 401, "the status URL needs the token too");
    let page = env.until_ready(&location, Some(TOKEN)).await;
    assert_eq!(page["label"], "KI-generiert – in Einfache Sprache übertragen. Verbindlich ist der Originaltext.");
    assert_eq!(page["original_url"], "https://www.bad-boll.de/sperrmuell/");
    assert_eq!(page["blocks"].as_array().unwrap().len(), 3);
    let out = page["text"].as_str().unwrap();
    assert!(out.contains("gemäß") && out.contains("25 Euro") && out.contains("07164 808-0"), "{out}");
    // the same text again: from the store, no model call
    let calls = env.rewriter.calls();
    let (status, _, again) = env
        .post("/api/v1/simplify", Some(TOKEN), json!({ "text": text, "url": "https://www.bad-boll.de/sperrmuell/" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["text"], page["text"]);
    assert_eq!(env.rewriter.calls(), calls);
    // HTML: the main content, without navigation
    let html = "<html><body><nav><a href='/'>Start</a> <a href='/a'>Aktuelles</a></nav><main><h1>Grüngut</h1><p>Die Annahmestelle ist samstags von 9 bis 12 Uhr geöffnet, die Anlieferung ist kostenlos.</p></main></body></html>";
    let (status, headers, b) = env.post("/api/v1/simplify", Some(TOKEN), json!({ "html": html })).await;
    assert_eq!(status, 202, "{b}");
    let page = env
        .until_ready(headers.get("location").unwrap().to_str().unwrap(), Some(TOKEN))
        .await;
    let out = page["text"].as_str().unwrap();
    assert!(out.contains("Grüngut") && out.contains("9 bis 12 Uhr") && !out.contains("Aktuelles"), "{out}");
    // the CMS's rewrites never displace a crawled page's rewrite
    assert!(env.store.urls().unwrap().iter().all(|u| u.starts_with("cms:")));

    // bad input
    for (body, code) in [
        (json!({}), "html_or_text"),
        (json!({ "html": html, "text": text }), "html_or_text"),
        (json!({ "text": " \n\n " }), "empty_text"),
        (json!({ "text": text, "url": "javascript:alert(1)" }), "invalid_url"),
        (json!({ "text": text, "farbe": "blau" }), "invalid_body"),
    ] {
        let (status, _, b) = env.post("/api/v1/simplify", Some(TOKEN), body.clone()).await;
        assert_eq!((status, b["error"]["code"].as_str()), (400, Some(code)), "{body}: {b}");
    }
    let (status, b) = env.get(&format!("/api/v1/simplify/jobs/{}", "0".repeat(64)), Some(TOKEN)).await;
    assert_eq!(status, 404, "{b}");
    let (status, _) = env.get("/api/v1/simplify/jobs/..%2F..%2Fetc", Some(TOKEN)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn without_a_configured_token_the_cms_routes_are_closed() {
    let env = start(None).await;
    let url = env.page_url();
    env.site.clear_requests();
    for token in [None, Some(""), Some("irgendwas")] {
        let (status, _, b) = env.post("/api/v1/pages/refresh", token, json!({ "url": url })).await;
        assert_eq!(status, 403, "{b}");
        assert_eq!(b["error"]["code"], "cms_disabled");
        let (status, _, _) = env.post("/api/v1/simplify", token, json!({ "text": "Ein Text." })).await;
        assert_eq!(status, 403);
    }
    assert!(env.site.requests().is_empty());
    assert_eq!(env.rewriter.calls(), 0);
}
