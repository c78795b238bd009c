//! End-to-end crawl tests over loopback against the fixture sites (real server, real index).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lotse_crawler::{CrawlConfig, CrawlError, CrawlSummary, NoProgress, crawl};
use lotse_index::SearchIndex;
use lotse_testsite::{Body, Route, ServerOptions, SiteServer};
use url::Url;

fn fixtures() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures"
    ))
    .to_owned()
}

fn config(origin: &str) -> CrawlConfig {
    let mut cfg = CrawlConfig::new(Url::parse(&format!("{origin}/")).unwrap());
    cfg.delay = Duration::ZERO;
    cfg.concurrency = 4;
    cfg.request_timeout = Duration::from_secs(10);
    cfg.commit_every = 10;
    cfg
}

fn run(cfg: &CrawlConfig, index: &SearchIndex) -> CrawlSummary {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(crawl(cfg, index, &NoProgress)).unwrap()
}

/// All chunk texts of the index for a site, with their URL.
fn all_chunks(index: &SearchIndex, site: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in index.page_records(site).unwrap() {
        for h in index.page_chunks(&r.url).unwrap() {
            out.push((
                h.url.clone(),
                format!("{}\n{}\n{}", h.title, h.heading_path.join(" / "), h.text),
            ));
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn bad_boll_is_crawled_completely_politely_and_cleanly() {
    let site_dir = fixtures().join("sites/bad-boll");
    let server = SiteServer::start(&site_dir).unwrap();
    let origin = server.origin();
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let summary = run(&config(&origin), &index);
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert!(summary.complete);

    // every source document is indexed under at least one of its URLs (HTML or PDF)
    let records = index.page_records(&origin).unwrap();
    let indexed: HashSet<String> = records
        .iter()
        .filter(|r| r.indexed && r.n_chunks > 0)
        .map(|r| r.url.clone())
        .collect();
    let docs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("sites/bad-boll.docs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(docs.len(), 38);
    let mut missing = Vec::new();
    for (doc, urls) in &docs {
        let urls: Vec<String> = urls
            .as_array()
            .unwrap()
            .iter()
            .map(|u| format!("{origin}{}", u.as_str().unwrap()))
            .collect();
        // every listed URL of a document (HTML page and PDF) is indexed
        for u in &urls {
            if !indexed.contains(u) {
                missing.push(format!("{doc}: {u}"));
            }
        }
    }
    assert!(missing.is_empty(), "not indexed: {missing:#?}");
    assert!(summary.pdfs >= 38 - 27, "pdfs: {}", summary.pdfs);

    let requests = server.requests();
    // robots.txt is honoured: not a single request to the disallowed paths
    for r in &requests {
        assert!(!r.path.starts_with("/intern/"), "fetched {}", r.path);
        assert!(!r.path.starts_with("/suche"), "fetched {}", r.path);
        assert!(
            r.user_agent.starts_with("lotse/"),
            "user agent {}",
            r.user_agent
        );
    }
    assert!(summary.skipped_robots >= 1);
    // the endless calendar is stopped after a bounded number of requests
    let calendar = requests
        .iter()
        .filter(|r| r.path.starts_with("/veranstaltungen/kalender/"))
        .count();
    assert!(
        (1..=12).contains(&calendar),
        "calendar requests: {calendar}"
    );
    // the redirect is followed
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/alt/satzungen.html" && r.status == 301)
    );
    // 404 and 503 are recorded without aborting
    let failed: Vec<&str> = summary.failures.iter().map(|f| f.reason.as_str()).collect();
    assert!(
        failed.iter().any(|f| f.starts_with("http_404")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|f| f.starts_with("http_503")),
        "{failed:?}"
    );
    // print versions are not indexed twice
    assert!(records.iter().all(|r| !r.url.contains("print=")));
    let hundesteuer = format!("{origin}/ortsrecht/bbo-satzung-erhebung-hundesteuer/");
    assert_eq!(records.iter().filter(|r| r.url == hundesteuer).count(), 1);

    // no canary, no chrome in any chunk
    let chunks = all_chunks(&index, &origin);
    assert!(chunks.len() > 200, "chunks: {}", chunks.len());
    for (url, text) in &chunks {
        for bad in [
            "INTERN-7f3a9c-KANARIE",
            "Wir verwenden Cookies",
            "Alle akzeptieren",
            "Zum Inhalt springen",
            "Hauptnavigation",
            "In diesem Bereich",
            "Erklärung zur Barrierefreiheit",
            "© Gemeinde",
        ] {
            // the accessibility statement may of course name itself
            if bad.contains("Barrierefreiheit") && url.ends_with("/barrierefreiheit/") {
                continue;
            }
            assert!(!text.contains(bad), "{url} contains {bad:?}:\n{text}");
        }
    }
    // German analysis end to end: the question from the issue finds the by-law
    let scope = lotse_core::CollectionScope::public_website();
    let hits = index
        .search(&lotse_index::SearchRequest {
            query: "Was kostet ein zweiter Hund?",
            scope: &scope,
            limit: 30,
            site: None,
            options: Default::default(),
            mode: lotse_index::SearchMode::Bm25,
            query_vector: None,
        })
        .unwrap();
    let top: Vec<&str> = lotse_index::distinct_urls(&hits)
        .iter()
        .take(3)
        .map(|h| h.url.as_str())
        .collect();
    assert!(
        top.iter().any(|u| u.contains("hundesteuer")),
        "top: {top:?}"
    );
}

#[test]
fn recrawl_downloads_nothing_unchanged_and_removes_deleted_pages() {
    let tmp = tempfile::tempdir().unwrap();
    let site_dir = tmp.path().join("site");
    copy_dir(&fixtures().join("sites/bad-boll"), &site_dir);
    let server = SiteServer::start(&site_dir).unwrap();
    let origin = server.origin();
    let dir = tmp.path().join("index");
    let index = SearchIndex::open(&dir).unwrap();
    let first = run(&config(&origin), &index);
    let before = index.page_records(&origin).unwrap();
    let stats_before = index.stats().unwrap();
    assert!(first.pages_indexed > 60);

    server.clear_requests();
    let second = run(&config(&origin), &index);
    eprintln!("{}", serde_json::to_string_pretty(&second).unwrap());
    assert_eq!(second.pages_indexed, 0);
    assert_eq!(second.removed, 0);
    let with_validators = before.iter().filter(|r| r.etag.is_some()).count();
    assert!(with_validators >= 70);
    assert!(
        second.not_modified as usize >= with_validators,
        "{with_validators}"
    );
    // every document that has validators was revalidated, not downloaded
    for r in server.requests() {
        let is_doc = before
            .iter()
            .any(|b| b.url == format!("{origin}{}", r.path) && b.etag.is_some());
        if is_doc {
            assert!(r.conditional, "{} without validators", r.path);
            assert_eq!(r.status, 304, "{} downloaded again", r.path);
        }
    }
    let after = index.page_records(&origin).unwrap();
    let strip = |rs: &[lotse_core::PageRecord]| {
        rs.iter()
            .map(|r| {
                (
                    r.url.clone(),
                    r.content_hash.clone(),
                    r.n_chunks,
                    r.etag.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&before), strip(&after));
    assert_eq!(stats_before, index.stats().unwrap());

    // delete a page from the copy: the next crawl removes it from the index
    let gone = format!("{origin}/ortsrecht/bbo-satzung-freibad/");
    std::fs::remove_dir_all(site_dir.join("ortsrecht/bbo-satzung-freibad")).unwrap();
    let third = run(&config(&origin), &index);
    assert!(third.removed >= 1, "{third:?}");
    let records = index.page_records(&origin).unwrap();
    assert!(records.iter().all(|r| r.url != gone));
    assert!(index.page_chunks(&gone).unwrap().is_empty());
    // its PDF was linked only from that page: no longer linked, not in the sitemap, so gone too
    assert!(
        records
            .iter()
            .all(|r| r.url != format!("{origin}/ortsrecht/bbo-satzung-freibad.pdf"))
    );
    assert_eq!(third.removed, 2, "{third:?}");
    // everything else stays
    assert_eq!(records.len(), before.len() - 2);
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn bad_input_is_skipped_with_reasons_and_never_corrupts_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write(
        &site.join("site.json"),
        br#"{"name":"bad","charset":"utf-8","base":"http://127.0.0.1:8089"}"#,
    );
    write(
        &site.join("index.html"),
        "<!DOCTYPE html><html lang=de><head><title>Start</title></head><body><main>\
         <h1>Startseite der Testgemeinde</h1><p>Hier finden Sie alle Seiten der Gemeinde und ihre Satzungen.</p>\
         <a href=/kaputt/>kaputt</a> <a href=/gross/>gross</a> <a href=/binaer/>binaer</a> \
         <a href=/alt/>alt</a> <a href=/langsam/>langsam</a> <a href=/falsch.pdf>falsch</a> \
         <a href='http://[::1'>invalid</a> <a href='javascript:alert(1)'>js</a></main></body></html>"
            .as_bytes(),
    );
    // broken HTML: unclosed tags, stray bytes
    write(
        &site.join("kaputt/index.html"),
        b"<html><body><main><h1>Kaputt<p>Ein Absatz ohne Ende <b>fett <i>und \xff\xfe kursiv<table><tr><td>Zelle mit Text zur Sicherheit des Parsers",
    );
    // legacy encoding without any charset declaration: 'Gebühr für Straßenreinigung' in windows-1252
    let mut latin = b"<html><head><title>Geb\xfchren</title></head><body><main><h1>Geb\xfchr f\xfcr Stra\xdfenreinigung</h1><p>Die Geb\xfchr f\xfcr die Stra\xdfenreinigung betr\xe4gt 12 Euro im Jahr und wird j\xe4hrlich erhoben.</p></main></body></html>".to_vec();
    latin.extend_from_slice(b"");
    let server = SiteServer::start_with(
        &site,
        ServerOptions {
            routes: vec![
                (
                    "/alt/".into(),
                    Route {
                        status: 200,
                        headers: vec![("Content-Type".into(), "text/html".into())],
                        body: Body::Bytes(latin.clone()),
                        times: None,
                    },
                ),
                (
                    "/gross/".into(),
                    Route {
                        status: 200,
                        headers: vec![("Content-Type".into(), "text/html".into())],
                        body: Body::Zeros(50 * 1024 * 1024),
                        times: None,
                    },
                ),
                (
                    "/binaer/".into(),
                    Route {
                        status: 200,
                        headers: vec![("Content-Type".into(), "application/zip".into())],
                        body: Body::Bytes(b"PK\x03\x04 not a page".to_vec()),
                        times: None,
                    },
                ),
                (
                    "/falsch.pdf".into(),
                    Route {
                        status: 200,
                        headers: vec![("Content-Type".into(), "application/pdf".into())],
                        body: Body::Bytes(b"%PDF-1.4 this is not really a pdf".to_vec()),
                        times: None,
                    },
                ),
                (
                    "/langsam/".into(),
                    Route {
                        status: 429,
                        headers: vec![("Retry-After".into(), "1".into())],
                        body: Body::Bytes(b"zu schnell".to_vec()),
                        times: Some(1),
                    },
                ),
                // the "langsam" page itself, served after the 429
            ],
            ..ServerOptions::default()
        },
    )
    .unwrap();
    write(
        &site.join("langsam/index.html"),
        "<html><body><main><h1>Langsam</h1><p>Diese Seite kam nach einer Wartezeit, die der Server verlangt hat.</p></main></body></html>".as_bytes(),
    );
    let origin = server.origin();
    let dir = tmp.path().join("index");
    let index = SearchIndex::open(&dir).unwrap();
    let mut cfg = config(&origin);
    cfg.max_response_bytes = 5 * 1024 * 1024;
    let started = std::time::Instant::now();
    let summary = run(&cfg, &index);
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert!(summary.complete);
    assert_eq!(summary.skipped.get("too_large"), Some(&1));
    assert_eq!(summary.skipped.get("content_type"), Some(&1));
    assert!(
        summary
            .failures
            .iter()
            .any(|f| f.url.ends_with("/falsch.pdf") && f.reason.starts_with("pdf"))
    );
    // 429 with Retry-After: 1 was honoured and the page came on the second try
    assert!(started.elapsed() >= Duration::from_secs(1));
    let urls: Vec<String> = index
        .page_records(&origin)
        .unwrap()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(urls.contains(&format!("{origin}/langsam/")), "{urls:?}");
    assert!(urls.contains(&format!("{origin}/kaputt/")), "{urls:?}");
    // the legacy page was decoded correctly
    let chunks = index.page_chunks(&format!("{origin}/alt/")).unwrap();
    assert!(
        chunks
            .iter()
            .any(|c| c.text.contains("Straßenreinigung beträgt 12 Euro")),
        "{chunks:?}"
    );
    // the index opens cleanly again
    drop(index);
    let index = SearchIndex::open(&dir).unwrap();
    assert!(index.stats().unwrap().chunks >= 3);
}

#[test]
fn unreachable_host_and_invalid_url_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // port 9 on loopback: nothing listens there
    let mut cfg = config("http://127.0.0.1:9");
    cfg.request_timeout = Duration::from_secs(2);
    let err = rt.block_on(crawl(&cfg, &index, &NoProgress)).unwrap_err();
    assert!(matches!(err, CrawlError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    let cfg = CrawlConfig::new(Url::parse("ftp://example.org/").unwrap());
    let err = rt.block_on(crawl(&cfg, &index, &NoProgress)).unwrap_err();
    assert!(matches!(err, CrawlError::InvalidUrl(_)));
    // nothing was written
    index.reload().unwrap();
    assert_eq!(index.stats().unwrap().pages, 0);
}

#[test]
fn a_crawl_stopped_by_max_pages_removes_nothing_it_did_not_see() {
    let server = SiteServer::start(fixtures().join("sites/bad-boll")).unwrap();
    let origin = server.origin();
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    run(&config(&origin), &index);
    let n = index.page_records(&origin).unwrap().len();
    let mut cfg = config(&origin);
    cfg.max_pages = 5;
    server.clear_requests();
    let s = run(&cfg, &index);
    assert!(!s.complete);
    assert_eq!(s.removed, 0);
    assert_eq!(index.page_records(&origin).unwrap().len(), n);
    let page_requests = server
        .requests()
        .iter()
        .filter(|r| r.path != "/robots.txt" && r.path != "/sitemap.xml")
        .count();
    assert_eq!(page_requests, 5);
}

#[test]
fn a_single_page_refresh_reindexes_that_page_only() {
    let tmp = tempfile::tempdir().unwrap();
    let site_dir = tmp.path().join("site");
    copy_dir(&fixtures().join("sites/bad-boll"), &site_dir);
    let server = SiteServer::start(&site_dir).unwrap();
    let origin = server.origin();
    let index = SearchIndex::open(&tmp.path().join("index")).unwrap();
    run(&config(&origin), &index);
    let before = index.page_records(&origin).unwrap();

    // the CMS publishes a change to one page, and another page was deleted meanwhile
    let changed = format!("{origin}/ortsrecht/bbo-satzung-erhebung-hundesteuer/");
    let file = site_dir.join("ortsrecht/bbo-satzung-erhebung-hundesteuer/index.html");
    let html = std::fs::read_to_string(&file).unwrap();
    let news = "Neu beschlossen: Die Steuer für Assistenzhunde entfällt ab dem kommenden Jahr vollständig.";
    std::fs::write(&file, html.replacen("</h1>", &format!("</h1><p>{news}</p>"), 1)).unwrap();
    std::fs::remove_dir_all(site_dir.join("ortsrecht/bbo-satzung-freibad")).unwrap();

    server.clear_requests();
    let mut cfg = CrawlConfig::page(Url::parse(&changed).unwrap());
    cfg.request_timeout = Duration::from_secs(10);
    let summary = run(&cfg, &index);
    assert_eq!(summary.pages_indexed, 1, "{summary:?}");
    assert_eq!(summary.removed, 0, "{summary:?}");
    assert!(!summary.complete);
    // nothing but robots.txt and the page itself was requested: no sitemap, no links
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().all(|p| p == "/robots.txt" || p == "/ortsrecht/bbo-satzung-erhebung-hundesteuer/"),
        "{paths:?}"
    );
    let after = index.page_records(&origin).unwrap();
    assert_eq!(after.len(), before.len(), "a refresh removes no other page");
    for b in &before {
        let a = after.iter().find(|a| a.url == b.url).unwrap();
        if b.url == changed {
            assert_ne!(a.content_hash, b.content_hash);
        } else {
            assert_eq!(a.content_hash, b.content_hash, "{}", b.url);
        }
    }
    let chunks = index.page_chunks(&changed).unwrap();
    assert!(chunks.iter().any(|c| c.text.contains("Assistenzhunde")), "new text indexed");

    // refreshing the deleted page removes it (404), and only it
    let gone = format!("{origin}/ortsrecht/bbo-satzung-freibad/");
    let summary = run(&CrawlConfig::page(Url::parse(&gone).unwrap()), &index);
    assert_eq!(summary.removed, 1, "{summary:?}");
    let records = index.page_records(&origin).unwrap();
    assert!(records.iter().all(|r| r.url != gone));
    assert_eq!(records.len(), before.len() - 1);
}
