//! Benchmark: crawl + index throughput on the konstanz fixture (no politeness delay) and search
//! latency over the dev questions. Prints figures; run with
//! `cargo bench -p lotse --bench crawl_search`.

use std::path::Path;
use std::time::{Duration, Instant};

use lotse_core::CollectionScope;
use lotse_crawler::{CrawlConfig, NoProgress, crawl};
use lotse_index::{SearchIndex, SearchRequest};
use lotse_testsite::SiteServer;
use url::Url;

fn fixtures() -> std::path::PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures"
    ))
    .to_owned()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn config(origin: &str) -> CrawlConfig {
    let mut cfg = CrawlConfig::new(Url::parse(&format!("{origin}/")).unwrap());
    cfg.delay = Duration::ZERO;
    cfg.concurrency = 4;
    cfg
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runs: usize = std::env::var("LOTSE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);

    // crawl + index throughput
    let konstanz = SiteServer::start(fixtures().join("sites/konstanz")).unwrap();
    let mut rates = Vec::new();
    let mut docs = 0;
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        let t = Instant::now();
        let s = rt
            .block_on(crawl(&config(&konstanz.origin()), &index, &NoProgress))
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        docs = s.pages_total;
        rates.push(s.pages_total as f64 / secs);
    }
    println!(
        "crawl+index konstanz: {docs} documents, median {:.1} documents/s over {runs} runs (min {:.1}, max {:.1})",
        median(&mut rates.clone()),
        rates.iter().cloned().fold(f64::INFINITY, f64::min),
        rates.iter().cloned().fold(0.0, f64::max)
    );

    // re-crawl (all 304)
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    rt.block_on(crawl(&config(&konstanz.origin()), &index, &NoProgress))
        .unwrap();
    let t = Instant::now();
    let s = rt
        .block_on(crawl(&config(&konstanz.origin()), &index, &NoProgress))
        .unwrap();
    println!(
        "re-crawl konstanz unchanged: {:.2} s, {} not modified, {} re-indexed",
        t.elapsed().as_secs_f64(),
        s.not_modified,
        s.pages_indexed
    );

    // search latency over the dev questions, both towns in one index
    let bad_boll = SiteServer::start(fixtures().join("sites/bad-boll")).unwrap();
    rt.block_on(crawl(&config(&bad_boll.origin()), &index, &NoProgress))
        .unwrap();
    let questions: Vec<String> =
        std::fs::read_to_string(fixtures().join("questions/bad-boll.dev.jsonl"))
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["question"].as_str().map(str::to_owned))
            .collect();
    let scope = CollectionScope::public_website();
    let search = |q: &str| {
        index
            .search(&SearchRequest {
                query: q,
                scope: &scope,
                limit: 50,
                site: None,
                options: Default::default(),
                mode: lotse_index::SearchMode::Bm25,
                query_vector: None,
            })
            .unwrap()
    };
    for q in &questions {
        search(q); // warm-up
    }
    let mut lat = Vec::new();
    for _ in 0..5 {
        for q in &questions {
            let t = Instant::now();
            std::hint::black_box(search(q));
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let stats = index.stats().unwrap();
    println!(
        "search (top-50 chunks, {} chunks in index, {} queries): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 10 ms)",
        stats.chunks,
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
}
