//! Benchmark of the citizen chat over loopback with the real default models and the real
//! `lotse serve` binary (bad-boll fixture, crawled with embeddings into
//! `target/bench-data/chat`, incremental on later runs):
//!
//! 1. the 50 dev questions with answer facts (`bad-boll.dev.facts.jsonl`) as server-sent
//!    events: time to the `sources` and `quotes` events, to the first token, to the checked
//!    answer (median, p90), prompt tokens and those reused from the model's prefix cache;
//! 2. a repeated question from the answer cache (p50 over 20);
//! 3. `/api/v1/search` under load: 32 concurrent clients for 10 s (throughput, p50, p99),
//!    after warming the query-embedding cache with the dev questions;
//! 4. 50 concurrent chat clients from 5 addresses (X-Forwarded-For through a trusted proxy):
//!    status counts (200, the designed 429 and 503, nothing else) and the server's memory.
//!
//! ```text
//! cargo bench -p lotse --bench chat          # LOTSE_MODEL_CACHE or models/cache
//! ```
//!
//! Side-by-side runs of two builds (e.g. before and after a refactoring) without the model's
//! noise: `LOTSE_BENCH_FAKE_ENGINE=1` points the server at an instant OpenAI-compatible
//! engine on loopback (`FakeInstantEngine` below; the embedder stays real), `LOTSE_BIN` runs
//! another `lotse` binary, `LOTSE_BENCH_DATA` keeps its data directory apart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lotse_testsite::SiteServer;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_owned()
}

fn fixtures() -> PathBuf {
    let p = root().join("../shared/fixtures");
    if p.exists() { p } else { root().join("fixtures") }
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// An OpenAI-compatible engine on loopback that answers every chat request at once with a
/// short streamed answer citing source 1 (and `/models` with one model): it takes the model
/// out of the figures, so the server's own overhead can be compared between two builds.
struct FakeInstantEngine {
    base: String,
}

impl FakeInstantEngine {
    fn start() -> FakeInstantEngine {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let mut out = stream;
                    if request_line.starts_with("GET") {
                        let json = r#"{"object":"list","data":[{"id":"fake-instant","object":"model"}]}"#;
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                            json.len()
                        );
                        return;
                    }
                    let _ = out.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
                    for piece in ["Die Angaben ", "dazu stehen ", "in der Quelle ", "[1]."] {
                        let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                        let _ = write!(out, "data: {chunk}\n\n");
                    }
                    let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                    let usage = json!({"choices": [], "usage": {"prompt_tokens": 400, "completion_tokens": 4}});
                    let _ = write!(out, "data: {end}\n\ndata: {usage}\n\ndata: [DONE]\n\n");
                });
            }
        });
        FakeInstantEngine { base }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn questions() -> Vec<String> {
    read_questions("questions/bad-boll.dev.jsonl")
}

fn read_questions(file: &str) -> Vec<String> {
    std::fs::read_to_string(fixtures().join(file))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["question"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/cache"));
    let lotse = std::env::var("LOTSE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lotse").to_string());
    let lotse = lotse.as_str();
    let site = SiteServer::start(fixtures().join("sites/bad-boll")).unwrap();
    let data = std::env::var_os("LOTSE_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/bench-data/chat"));
    let fake = std::env::var_os("LOTSE_BENCH_FAKE_ENGINE").map(|_| FakeInstantEngine::start());
    let t = Instant::now();
    let out = Command::new(lotse)
        .args(["crawl", &format!("{}/", site.origin()), "--delay-ms", "0", "--concurrency", "4", "--json", "--data"])
        .arg(&data)
        .env("LOTSE_MODEL_CACHE", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("crawl (incremental) {:.1} s", t.elapsed().as_secs_f64());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = Command::new(lotse);
    serve
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("LOTSE_MODEL_CACHE", &cache)
        .env("LOTSE__SERVER__TRUSTED_PROXIES", "[\"127.0.0.1\"]")
        .env("LOTSE__LIMITS__SEARCH_PER_SECOND", "1000")
        .env("LOTSE__LIMITS__SEARCH_BURST", "1000")
        .env("RUST_LOG", "warn");
    if let Some(engine) = &fake {
        eprintln!("engine: FakeInstantEngine at {}", engine.base);
        serve
            .env("LOTSE__ENGINE__KIND", "openai")
            .env("LOTSE__ENGINE__URL", &engine.base)
            .env("LOTSE__ENGINE__MODEL", "fake-instant")
            .env("LOTSE__ENGINE__EXTERNAL", "false");
    }
    let child = serve.spawn().unwrap();
    let pid = child.id();
    let _child = Killed(child);
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let t = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(300), "server not ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("server ready after {:.1} s; RSS {:.0} MB", t.elapsed().as_secs_f64(), rss_mb(pid).0);
    let qs = questions();

    // 1. streamed answers
    let (mut to_sources, mut to_token, mut to_done) = (Vec::new(), Vec::new(), Vec::new());
    let (mut to_quotes, mut prompt_tokens, mut cached_tokens) = (Vec::new(), Vec::new(), Vec::new());
    // generated tokens per second after the first (prompt-lookup drafts on, as served)
    let mut gen_rates = Vec::new();
    let mut refused = 0;
    let fact_qs = read_questions("questions/bad-boll.dev.facts.jsonl");
    for (i, q) in fact_qs.iter().enumerate() {
        let start = Instant::now();
        let resp = client
            .post(format!("{base}/api/v1/chat"))
            .header("accept", "text/event-stream")
            .header("x-forwarded-for", format!("10.1.0.{i}"))
            .json(&json!({"question": q}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut stream = resp.bytes_stream();
        let mut text = String::new();
        let (mut s, mut f, mut qt) = (None, None, None);
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            let now = start.elapsed().as_secs_f64() * 1000.0;
            if s.is_none() && text.contains("event: sources") {
                s = Some(now);
            }
            if qt.is_none() && text.contains("event: quotes") {
                qt = Some(now);
            }
            if f.is_none() && text.contains("event: token") {
                f = Some(now);
            }
        }
        let done = start.elapsed().as_secs_f64() * 1000.0;
        if text.contains("\"refused\":true") {
            refused += 1;
        }
        if let Some(d) = text.lines().rev().find_map(|l| l.strip_prefix("data: ")) {
            if let Ok(a) = serde_json::from_str::<Value>(d) {
                let t = &a["timings"];
                if let (Some(first), Some(total), Some(n)) = (t["first_token_ms"].as_f64(), t["total_ms"].as_f64(), t["completion_tokens"].as_f64()) {
                    if n > 1.0 && total > first {
                        gen_rates.push((n - 1.0) / ((total - first) / 1000.0));
                    }
                }
                if let (Some(p), Some(c)) = (a["timings"]["prompt_tokens"].as_f64(), a["timings"]["cached_prompt_tokens"].as_f64()) {
                    if p > 0.0 {
                        prompt_tokens.push(p);
                        cached_tokens.push(c);
                    }
                }
            }
        }
        to_sources.push(s.unwrap_or(done));
        to_quotes.push(qt.unwrap_or(done));
        if let Some(f) = f {
            to_token.push(f);
        }
        to_done.push(done);
        eprintln!("  q{i:>2}: sources {:>6.0} ms, first token {:>6.0} ms, done {:>6.0} ms", s.unwrap_or(0.0), f.unwrap_or(0.0), done);
    }
    println!("streamed answers over {} dev questions with answer facts ({refused} refused):", fact_qs.len());
    let line = |name: &str, v: &[f64]| {
        println!("  {name:<22} median {:>7.0} ms, p90 {:>7.0} ms", percentile(v, 0.5), percentile(v, 0.9));
    };
    line("time to sources event", &to_sources);
    line("time to quotes event", &to_quotes);
    line("time to first token", &to_token);
    line("full answer", &to_done);
    println!(
        "  prompt tokens median {:.0}, of them from the prefix cache median {:.0} ({} answers with tokens)",
        percentile(&prompt_tokens, 0.5),
        percentile(&cached_tokens, 0.5),
        to_token.len()
    );
    println!(
        "  generation median {:.1} tokens/s, p10 {:.1} (after the first token until the checked answer, drafts on; {} answers)",
        percentile(&gen_rates, 0.5),
        percentile(&gen_rates, 0.1),
        gen_rates.len()
    );

    // 2. the answer cache
    let mut cached = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        let r: Value = client
            .post(format!("{base}/api/v1/chat"))
            .header("x-forwarded-for", format!("10.2.0.{i}"))
            .json(&json!({"question": qs[0]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cached.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(r["timings"]["cached"], true, "{r}");
    }
    println!("repeated question from cache p50 {:.2} ms, p99 {:.2} ms", percentile(&cached, 0.5), percentile(&cached, 0.99));

    // 3. search under load
    for q in &qs {
        let _ = client.get(format!("{base}/api/v1/search")).query(&[("q", q.as_str())]).send().await;
    }
    // closed-loop clients: latency depends on how many share the 2 cores with the server, so
    // the figures are printed for several client counts
    let qs = Arc::new(qs);
    for clients in [4, 8, 16, 32] {
        search_load(&client, &base, &qs, clients, Duration::from_secs(10)).await;
    }

    // 4. 50 concurrent chat clients from 5 addresses
    let before = rss_mb(pid);
    let mut tasks = Vec::new();
    for c in 0..50usize {
        let client = client.clone();
        let base = base.clone();
        let q = format!("{} ({})", qs[(c * 11) % qs.len()], c);
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}/api/v1/chat"))
                .header("x-forwarded-for", format!("10.4.0.{}", c % 5))
                .json(&json!({"question": q}))
                .send()
                .await;
            match r {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry = r.headers().contains_key("retry-after");
                    let _ = r.bytes().await;
                    (status, retry)
                }
                Err(_) => (0, false),
            }
        }));
    }
    let mut counts = std::collections::BTreeMap::new();
    let mut retry_ok = true;
    for t in tasks {
        let (s, retry) = t.await.unwrap();
        *counts.entry(s).or_insert(0) += 1;
        if (s == 429 || s == 503) && !retry {
            retry_ok = false;
        }
    }
    let after = rss_mb(pid);
    println!("50 concurrent chat clients: status counts {counts:?}; Retry-After on every 429/503: {retry_ok}");
    println!("server RSS before {:.0} MB, after {:.0} MB, peak {:.0} MB", before.0, after.0, after.1);
    let unexpected: Vec<_> = counts.keys().filter(|s| ![200u16, 429, 503].contains(s)).collect();
    assert!(unexpected.is_empty(), "unexpected statuses {unexpected:?}");
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    for l in metrics.lines().filter(|l| l.starts_with("lotse_") && !l.contains("_bucket")) {
        println!("  {l}");
    }
}

/// `clients` closed-loop clients query `/api/v1/search` for `run_for`; prints throughput, p50
/// and p99.
async fn search_load(client: &reqwest::Client, base: &str, qs: &Arc<Vec<String>>, clients: usize, run_for: Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let base = base.to_string();
        let qs = qs.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = c;
            while started.elapsed() < run_for {
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/api/v1/search"))
                    .header("x-forwarded-for", format!("10.3.{}.{}", c / 250, c % 250))
                    .query(&[("q", qs[i % qs.len()].as_str()), ("limit", "5")])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
                i += 7;
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "search load: {clients:>2} clients, {:>5.0} req/s, p50 {:>6.2} ms, p99 {:>6.2} ms, {errors} errors",
        lat.len() as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}
