//! PDF decompression bombs (issue 31, item 3): refused by the extractor, skipped with a reason
//! by crawls and by the single-page refresh the CMS uses, and the process's memory stays flat.
//!
//! The tests of this file measure the peak memory of the process, so they run one at a time
//! (each test binary is its own process).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use lotse_extract::pdf::{PdfError, PdfLimit, extract_pdf};
use lotse_extract::pdf_limits::testing;
use lotse_crawler::{CrawlConfig, CrawlSummary, NoProgress, crawl};
use lotse_index::SearchIndex;
use lotse_testsite::{Body, Route, ServerOptions, SiteServer};
use url::Url;

const GIB: u64 = 1 << 30;
const MB: u64 = 1_000_000;
/// Allowed peak memory growth while reading a bomb.
const MAX_GROWTH: u64 = 200 * MB;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The bomb of the issue: about 1 MB of PDF, one page of 1 GiB of zeros (FlateDecode).
fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| testing::zero_bomb(GIB))
}

fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `f` and returns its result and the growth of the process's peak resident memory in
/// bytes: the peak is reset through /proc/self/clear_refs where the kernel allows it, else
/// the resident size is sampled every millisecond.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = status_kb("VmRSS:").expect("VmRSS") * 1024;
    if std::fs::write("/proc/self/clear_refs", "5").is_ok()
        && status_kb("VmHWM:").is_some_and(|hwm| hwm * 1024 <= before + 4 * MB)
    {
        let out = f();
        let peak = status_kb("VmHWM:").expect("VmHWM") * 1024;
        return (out, peak.saturating_sub(before));
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(status_kb("VmRSS:").unwrap_or(0) * 1024);
            std::thread::sleep(Duration::from_millis(1));
        }
        peak
    });
    let out = f();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    (out, peak.saturating_sub(before))
}

fn run(cfg: &CrawlConfig, index: &SearchIndex) -> CrawlSummary {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(crawl(cfg, index, &NoProgress)).unwrap()
}

#[test]
fn the_extractor_refuses_the_bomb_and_memory_stays_flat() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // the measurement sees memory that is touched
    let (_, seen) = peak_growth(|| std::hint::black_box(vec![1u8; 64 << 20]).len());
    assert!(seen > 60 * MB, "measured {seen} bytes for 64 MiB");

    let bomb = bomb();
    assert!(bomb.len() < 2 * MB as usize, "{} bytes", bomb.len());
    let u = Url::parse("http://127.0.0.1/bombe.pdf").unwrap();
    let started = Instant::now();
    let (res, growth) = peak_growth(|| extract_pdf(bomb, &u, None));
    let took = started.elapsed();
    eprintln!(
        "bomb of {} bytes: {res:?}, peak growth {} MB in {took:?}",
        bomb.len(),
        growth / MB
    );
    match res {
        Err(PdfError::TooLarge { what, detail }) => {
            assert_eq!(what, PdfLimit::StreamSize, "{detail}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(
        growth < MAX_GROWTH,
        "peak memory grew by {} MB",
        growth / MB
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // the same page with a little real text reads fine under the same limits
    let fine = testing::one_page(
        "5 0 R",
        "",
        vec![testing::stream(
            "/Filter /FlateDecode",
            &testing::zlib(&testing::text_content(
                "Die Hundesteuer betraegt 120 Euro im Jahr.",
            )),
        )],
    );
    let page = extract_pdf(&fine, &u, None).unwrap();
    assert!(
        page.text().contains("Hundesteuer betraegt 120 Euro"),
        "{}",
        page.text()
    );
}

/// A site with a start page that links a bomb and a normal page.
fn bomb_site(tmp: &std::path::Path) -> SiteServer {
    let site = tmp.join("site");
    std::fs::create_dir_all(site.join("satzung")).unwrap();
    std::fs::write(
        site.join("site.json"),
        br#"{"name":"bombe","charset":"utf-8","base":"http://127.0.0.1:8089"}"#,
    )
    .unwrap();
    std::fs::write(
        site.join("index.html"),
        "<!DOCTYPE html><html lang=de><head><title>Start</title></head><body><main>\
         <h1>Startseite der Testgemeinde</h1><p>Hier finden Sie die Satzungen der Gemeinde und alle Formulare.</p>\
         <a href=/satzung/>Satzung</a> <a href=/bombe.pdf>Haushaltsplan (PDF)</a></main></body></html>",
    )
    .unwrap();
    std::fs::write(
        site.join("satzung/index.html"),
        "<!DOCTYPE html><html lang=de><head><title>Satzung</title></head><body><main>\
         <h1>Hundesteuersatzung</h1><p>Die Steuer beträgt für jeden Hund 120 Euro im Kalenderjahr.</p></main></body></html>",
    )
    .unwrap();
    SiteServer::start_with(
        &site,
        ServerOptions {
            routes: vec![(
                "/bombe.pdf".into(),
                Route {
                    status: 200,
                    headers: vec![("Content-Type".into(), "application/pdf".into())],
                    body: Body::Bytes(bomb().to_vec()),
                    times: None,
                },
            )],
            ..ServerOptions::default()
        },
    )
    .unwrap()
}

fn assert_skipped_with_reason(summary: &CrawlSummary, url: &str) {
    assert_eq!(summary.skipped.get("pdf_limits"), Some(&1), "{summary:#?}");
    let failure = summary
        .failures
        .iter()
        .find(|f| f.url == url)
        .unwrap_or_else(|| panic!("no reason for {url}: {summary:#?}"));
    assert!(
        failure
            .reason
            .starts_with("pdf_limits: pdf exceeds the stream_size limit"),
        "{}",
        failure.reason
    );
}

#[test]
fn a_crawl_and_the_cms_refresh_skip_the_bomb_with_a_reason() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    bomb();
    let tmp = tempfile::tempdir().unwrap();
    let server = bomb_site(tmp.path());
    let origin = server.origin();
    let index = SearchIndex::open(&tmp.path().join("index")).unwrap();
    let bomb_url = format!("{origin}/bombe.pdf");

    // a crawl
    let mut cfg = CrawlConfig::new(Url::parse(&format!("{origin}/")).unwrap());
    cfg.delay = Duration::ZERO;
    cfg.request_timeout = Duration::from_secs(10);
    let (summary, growth) = peak_growth(|| run(&cfg, &index));
    eprintln!(
        "crawl: peak growth {} MB; {:?}",
        growth / MB,
        summary.failures
    );
    assert!(summary.complete);
    assert_skipped_with_reason(&summary, &bomb_url);
    assert!(
        growth < MAX_GROWTH,
        "crawl: peak memory grew by {} MB",
        growth / MB
    );
    let urls: Vec<String> = index
        .page_records(&origin)
        .unwrap()
        .into_iter()
        .map(|r| r.url)
        .collect();
    assert!(urls.contains(&format!("{origin}/satzung/")), "{urls:?}");
    assert!(!urls.contains(&bomb_url), "{urls:?}");

    // the CMS's publish webhook refreshes the PDF: a single-page crawl of it
    let mut cfg = CrawlConfig::page(Url::parse(&bomb_url).unwrap());
    cfg.request_timeout = Duration::from_secs(10);
    let (summary, growth) = peak_growth(|| run(&cfg, &index));
    eprintln!(
        "refresh: peak growth {} MB; {:?}",
        growth / MB,
        summary.failures
    );
    assert_skipped_with_reason(&summary, &bomb_url);
    assert_eq!(summary.pages_indexed, 0);
    assert!(
        growth < MAX_GROWTH,
        "refresh: peak memory grew by {} MB",
        growth / MB
    );
    assert_eq!(index.page_records(&origin).unwrap().len(), urls.len());
}
