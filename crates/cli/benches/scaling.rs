//! Benchmark: one index per replica at 10, 100 and 300 towns (issue 34, part 7; written up in
//! `docs/scaling.md`). Run with
//!
//! ```text
//! LOTSE_MODEL_CACHE=$HOME/.cache/lotse/models cargo bench -p lotse --bench scaling
//! ```
//!
//! Towns are made from the two fixture sites (even towns from bad-boll, odd ones from
//! konstanz): the town name is replaced by a made-up one ("Ahornbach", "Birkenfeld", ...)
//! and every number in the text is shifted by a per-town seed (four-digit years stay), so no
//! two towns are byte-identical. PDFs are served unchanged. Each town has its own origin
//! (`http://127.0.0.1:<41000 + town>`; `LOTSE_SCALING_PORT_BASE` moves it).
//!
//! Per size:
//! - the smallest size (`LOTSE_SCALING_EMBED_TOWNS`, default 10) is crawled over loopback by
//!   the real crawler with the real embedder (multilingual-e5-small), towns one after the
//!   other, each on its own server; the embedder's time and chunk count are measured;
//! - each larger size starts from a copy of the previous size's index and adds the missing
//!   towns without the embedder: towns below `LOTSE_SCALING_HTTP_TOWNS` (default 10) are
//!   crawled over loopback, the rest are written straight into the index from the extracted
//!   pages of a crawled town of the same base (town `i % LOTSE_SCALING_HTTP_TOWNS`),
//!   renamed and shifted again (no HTTP, no PDF parsing). Their chunks get synthetic
//!   vectors: random unit vectors of 384 dimensions, seeded by the chunk's text and stored
//!   under the real model's id, so dense search scans exactly as many vectors as it would
//!   with real ones. Crawl time without the embedder = crawl wall time - embedder time;
//! - search latency in a fresh child process that opens the index and nothing else (BM25
//!   and hybrid, the dev questions with "Bad Boll" replaced by town 0's name; the query
//!   vectors are computed once beforehand), with its RSS after the searches;
//! - the memory of a real `lotse serve` on that index answering `/api/v1/search` (engine: a
//!   stub OpenAI-compatible server on loopback, so no generator is loaded; background
//!   rewrites off), unless `LOTSE_SCALING_SERVE=0`.
//!
//! `LOTSE_SCALING_REUSE=1` builds nothing where a size's index exists: it measures search
//! and memory again on it (after a change to search) and keeps the build figures of the
//! earlier run's `results.json`.
//!
//! Sizes: `LOTSE_SCALING_TOWNS` (default `10,100,300`). Data: `LOTSE_SCALING_DATA` (default
//! `target/scaling-data`), one directory per size (`towns-N/index`), kept for inspection.
//! Results also go to `results.json` there; the build figures of a size include those of
//! the towns it copied.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lotse_core::{Block, CollectionScope, Page};
use lotse_crawler::{CrawlConfig, NoProgress, crawl_with_embedder};
use lotse_index::{ChunkEmbedder, QueryVector, SearchIndex, SearchMode, SearchRequest};
use lotse_inference::{EmbedKind, Embedder};
use lotse_testsite::{ServerOptions, SiteServer};
use serde_json::{Value, json};
use url::Url;

const DIM: usize = 384;
/// Town `i` is served on port `port_base() + i` (`LOTSE_SCALING_PORT_BASE`, default 41000).
fn port_base() -> u16 {
    static BASE: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| env_or("LOTSE_SCALING_PORT_BASE", 41000))
}
/// How often each query runs (after one warm-up pass) for the latency percentiles
/// (`LOTSE_SCALING_ROUNDS`, default 3).
fn rounds() -> usize {
    env_or("LOTSE_SCALING_ROUNDS", 3)
}

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_owned()
}

fn fixtures() -> PathBuf {
    root().join("../shared/fixtures")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Towns: names, renaming and number shifting

const ROOTS: [&str; 40] = [
    "Ahorn", "Birken", "Buchen", "Eichen", "Erlen", "Eschen", "Fichten", "Linden", "Tannen",
    "Weiden", "Ulmen", "Hasel", "Holder", "Kirsch", "Apfel", "Rosen", "Lilien", "Wiesen",
    "Moos", "Stein", "Felsen", "Kiesel", "Sand", "Lehm", "Brunnen", "Quell", "Mühl", "Schmid",
    "Wolfs", "Fuchs", "Hirsch", "Reh", "Falken", "Adler", "Raben", "Finken", "Lerchen",
    "Schwalben", "Bären", "Otter",
];
const SUFFIXES: [&str; 10] = [
    "bach", "feld", "hausen", "heim", "dorf", "weiler", "au", "berg", "stetten", "ingen",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Base {
    BadBoll,
    Konstanz,
}

impl Base {
    fn dir(self) -> &'static str {
        match self {
            Base::BadBoll => "bad-boll",
            Base::Konstanz => "konstanz",
        }
    }
    /// The fixture's own town names, longest first.
    fn names(self) -> &'static [&'static str] {
        match self {
            Base::BadBoll => &["Bad Boll", "BAD BOLL", "BOLL", "Boll"],
            Base::Konstanz => &["Konstanz", "KONSTANZ"],
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Base::BadBoll => "Gemeinde",
            Base::Konstanz => "Stadt",
        }
    }
}

#[derive(Clone, Debug)]
struct Town {
    idx: usize,
    /// One compound word, unique among 400 towns (so a question names exactly one town).
    name: String,
    base: Base,
}

impl Town {
    fn new(idx: usize) -> Town {
        assert!(idx < ROOTS.len() * SUFFIXES.len(), "at most 400 town names");
        let (r, q) = (idx % ROOTS.len(), idx / ROOTS.len());
        // for a fixed root, q = 0..9 gives ten different suffixes
        let name = format!("{}{}", ROOTS[r], SUFFIXES[(q + r) % SUFFIXES.len()]);
        let base = if idx % 2 == 0 { Base::BadBoll } else { Base::Konstanz };
        Town { idx, name, base }
    }
    fn full_name(&self) -> String {
        format!("{} {}", self.base.kind(), self.name)
    }
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", port_base() + self.idx as u16)
    }
    fn seed(&self) -> u64 {
        self.idx as u64 * 7919 + 17
    }
    /// Replace the fixture's town names by this town's.
    fn rename_from_fixture(&self, text: &str) -> String {
        let mut s = text.to_owned();
        for n in self.base.names() {
            let to = if n.chars().all(|c| !c.is_lowercase()) {
                self.name.to_uppercase()
            } else {
                self.name.clone()
            };
            s = s.replace(n, &to);
        }
        s
    }
}

/// Shift every run of digits by a per-town amount (same length; years 19xx/20xx stay).
fn shift_numbers(text: &str, seed: u64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut nth = 0u64;
    let flush = |run: &mut String, out: &mut String, nth: &mut u64| {
        if run.is_empty() {
            return;
        }
        let year = run.len() == 4 && (run.starts_with("19") || run.starts_with("20"));
        if year {
            out.push_str(run);
        } else {
            let k = 1 + (seed.wrapping_add(*nth)) % 9;
            for (p, c) in run.chars().enumerate() {
                let d = c.to_digit(10).unwrap_or(0) as u64;
                let mut n = (d + k + p as u64) % 10;
                if p == 0 && n == 0 && run.len() > 1 {
                    n = 1;
                }
                out.push(char::from_digit(n as u32, 10).unwrap_or('1'));
            }
        }
        *nth += 1;
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out, &mut nth);
            out.push(c);
        }
    }
    flush(&mut run, &mut out, &mut nth);
    out
}

/// An HTML file of a fixture site for `town`: names replaced everywhere, numbers shifted in
/// the text between tags only (URLs, attributes and the served `base` stay intact).
fn town_html(html: &str, town: &Town, base_origin: &str) -> String {
    let html = town.rename_from_fixture(html);
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        out.push_str(&shift_text(text, town.seed(), base_origin));
        let close = rest[open..].find('>').map_or(rest.len(), |c| open + c + 1);
        out.push_str(&rest[open..close]);
        rest = &rest[close..];
    }
    out.push_str(&shift_text(rest, town.seed(), base_origin));
    out
}

fn shift_text(text: &str, seed: u64, keep: &str) -> String {
    if keep.is_empty() {
        return shift_numbers(text, seed);
    }
    text.split(keep)
        .map(|t| shift_numbers(t, seed))
        .collect::<Vec<_>>()
        .join(keep)
}

/// Write `town`'s site under `dir` (HTML rewritten, everything else hard-linked or copied).
fn make_site(town: &Town, dir: &Path) {
    let src = fixtures().join("sites").join(town.base.dir());
    let site: Value =
        serde_json::from_slice(&std::fs::read(src.join("site.json")).unwrap()).unwrap();
    let base_origin = site["base"].as_str().unwrap_or("http://127.0.0.1:8089").to_owned();
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(&src).unwrap();
            let to = dir.join(rel);
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name == "site.json" {
                let mut s = site.clone();
                s["name"] = json!(format!("town-{:03}", town.idx));
                s["town"] = json!(town.full_name());
                std::fs::write(&to, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
            } else if name.ends_with(".html") {
                match String::from_utf8(std::fs::read(&p).unwrap()) {
                    Ok(html) => std::fs::write(&to, town_html(&html, town, &base_origin)).unwrap(),
                    Err(_) => {
                        std::fs::copy(&p, &to).unwrap();
                    }
                }
            } else if std::fs::hard_link(&p, &to).is_err() {
                std::fs::copy(&p, &to).unwrap();
            }
        }
    }
}

/// A page of `from` (a crawled town) as the page of `town`: URL, names and numbers changed.
fn town_page(page: &Page, from: &Town, town: &Town) -> Page {
    let (from_upper, upper) = (from.name.to_uppercase(), town.name.to_uppercase());
    let text = |s: &str| {
        let s = s.replace(&from.name, &town.name).replace(&from_upper, &upper);
        shift_numbers(&s, town.seed())
    };
    let mut p = page.clone();
    p.url = page.url.replacen(&from.origin(), &town.origin(), 1);
    p.title = text(&page.title);
    for b in &mut p.blocks {
        match b {
            Block::Heading { text: t, .. } | Block::Paragraph { text: t } => *t = text(t),
            Block::List { items, .. } => items.iter_mut().for_each(|i| *i = text(i)),
            Block::Table { rows } => rows
                .iter_mut()
                .flatten()
                .for_each(|c| *c = text(c)),
        }
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Embedders

/// Random unit vectors seeded by the text, under the real model's id: dense search costs the
/// same as with real vectors, the ranking of the dense list is meaningless.
struct SyntheticEmbedder {
    model_id: String,
}

fn random_unit(seed: u64) -> Vec<f32> {
    let mut x = seed | 1;
    let mut next = || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            // Box-Muller: normal components give a uniform direction
            let (u1, u2) = (next().max(1e-12), next());
            ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl ChunkEmbedder for SyntheticEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn dim(&self) -> usize {
        DIM
    }
    fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| random_unit(hash(t))).collect())
    }
}

/// Counts the chunks an embedder embeds and the time it takes.
struct Timed {
    inner: Arc<dyn ChunkEmbedder>,
    nanos: AtomicU64,
    chunks: AtomicU64,
}

impl ChunkEmbedder for Timed {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let t = Instant::now();
        let out = self.inner.embed_passages(texts);
        self.nanos
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.chunks.fetch_add(texts.len() as u64, Ordering::Relaxed);
        out
    }
}

/// The default embedder from the model cache, as `lotse` loads it.
fn load_embedder() -> Option<Arc<dyn Embedder>> {
    let cache = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/cache"));
    let ms = lotse_inference::manifest::load_dir_or_builtin(&root().join("models")).ok()?;
    let m = ms
        .into_iter()
        .find(|m| m.role == lotse_inference::manifest::ModelRole::Embedder && m.default)?;
    let a = m.locate(&cache).ok()?;
    let e = match a.format.as_str() {
        "e5s1" => lotse_inference::embed::E5Embedder::load_e5s1(&a.path),
        _ => lotse_inference::embed::E5Embedder::load_hub_dir(&a.path),
    }
    .ok()?
    .with_model_id(m.id.clone());
    Some(Arc::new(e))
}

// ---------------------------------------------------------------------------------------------
// Building an index

#[derive(Default, Clone, Copy)]
struct Build {
    pages_http: u64,
    http_secs: f64,
    pages_direct: u64,
    direct_secs: f64,
    embed_chunks: u64,
    embed_secs: f64,
}

fn crawl_config(town: &Town) -> CrawlConfig {
    let mut cfg = CrawlConfig::new(Url::parse(&format!("{}/", town.origin())).unwrap());
    cfg.delay = Duration::ZERO;
    cfg.concurrency = 4;
    cfg.site_name = Some(town.full_name());
    cfg
}

/// Crawl `town` over loopback from its generated site.
fn crawl_town(
    rt: &tokio::runtime::Runtime,
    index: &SearchIndex,
    town: &Town,
    sites: &Path,
    embedder: Arc<dyn ChunkEmbedder>,
) -> u64 {
    let dir = sites.join(format!("town-{:03}", town.idx));
    if !dir.join("site.json").exists() {
        make_site(town, &dir);
    }
    let port = port_base() + town.idx as u16;
    let server = SiteServer::start_with(&dir, ServerOptions { port, ..Default::default() })
        .unwrap_or_else(|e| panic!("cannot serve town {} on port {port}: {e}", town.idx));
    let s = rt
        .block_on(crawl_with_embedder(
            &crawl_config(town),
            index,
            &NoProgress,
            Some(embedder),
        ))
        .unwrap();
    drop(server);
    s.pages_indexed
}

/// Write `town` into the index from the pages of the crawled town `from`.
fn copy_town(index: &SearchIndex, from: &Town, town: &Town, embedder: Arc<dyn ChunkEmbedder>) -> u64 {
    let scope = CollectionScope::public_website();
    let (from_origin, origin) = (from.origin(), town.origin());
    let map = |u: &str| u.replacen(&from_origin, &origin, 1);
    let mut w = index.writer().unwrap();
    w.set_embedder(Some(embedder));
    let mut pages = 0;
    for r in index.page_records(&from_origin).unwrap() {
        let page = if r.indexed {
            index.page(&r.url, &scope).unwrap().map(|(_, p)| town_page(&p, from, town))
        } else {
            None
        };
        let mut rec = r.clone();
        rec.url = map(&r.url);
        rec.site = origin.clone();
        rec.site_name = Some(town.full_name());
        rec.title = page.as_ref().map_or(r.title.clone(), |p| p.title.clone());
        rec.aliases = r.aliases.iter().map(|a| map(a)).collect();
        rec.links = r.links.iter().map(|a| map(a)).collect();
        rec.content_hash = format!("{:016x}", hash(&format!("{}{}", r.content_hash, town.idx)));
        if page.is_some() {
            pages += 1;
        }
        w.upsert(&rec, page.as_ref()).unwrap();
    }
    if let Some(state) = index.site_state::<Value>(&from_origin).unwrap() {
        w.put_site_state(&origin, Some(&town.full_name()), &state).unwrap();
    }
    w.commit().unwrap();
    pages
}

/// Bytes of the segments the last commit names (`meta.json`): merge outputs still being
/// written in the background are not part of the index yet.
fn live_index_bytes(p: &Path) -> u64 {
    let meta: Value = std::fs::read(p.join("meta.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let ids: std::collections::HashSet<String> = meta["segments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["segment_id"].as_str().map(|id| id.replace('-', "")))
        .collect();
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if ids.contains(name.split('.').next().unwrap_or("")) {
            n += e.metadata().map_or(0, |m| m.len());
        }
    }
    n
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { dir_bytes(&e.path()) } else { m.len() };
        }
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Search in a child process (its memory is the index's alone)

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

/// The child: open the index, search every query in every mode, print JSON.
fn search_child(index_dir: &Path, queries_file: &Path) {
    let queries: Vec<(String, Vec<f32>)> =
        serde_json::from_slice(&std::fs::read(queries_file).unwrap()).unwrap();
    let t = Instant::now();
    let index = SearchIndex::open(index_dir).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    let model = index.embedding_model().unwrap().map(|(m, _)| m).unwrap_or_default();
    let scope = CollectionScope::public_website();
    let stats = index.stats().unwrap();
    let site0 = Town::new(0).origin();
    // (label, mode, town filter, explicit site)
    let modes: [(&str, SearchMode, bool, Option<&str>); 4] = [
        ("hybrid", SearchMode::Hybrid, true, None),
        ("bm25", SearchMode::Bm25, true, None),
        ("hybrid_all_towns", SearchMode::Hybrid, false, None),
        ("hybrid_site", SearchMode::Hybrid, false, Some(site0.as_str())),
    ];
    let run = |(q, v): &(String, Vec<f32>), mode: SearchMode, town_filter: bool, site: Option<&str>| {
        let mut req = SearchRequest::new(q, &scope);
        req.limit = 10;
        req.mode = mode;
        req.site = site;
        req.options.town_filter = town_filter;
        req.query_vector = Some(QueryVector {
            model_id: &model,
            vector: v,
        });
        index.search(&req).unwrap()
    };
    let t = Instant::now();
    run(&queries[0], SearchMode::Hybrid, true, None);
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut out = json!({
        "pages": stats.pages, "chunks": stats.chunks,
        "open_ms": open_ms, "first_query_ms": first_ms,
    });
    for (label, mode, tf, site) in modes {
        for q in &queries {
            std::hint::black_box(run(q, mode, tf, site));
        }
        let mut lat = Vec::new();
        for _ in 0..rounds() {
            for q in &queries {
                let t = Instant::now();
                std::hint::black_box(run(q, mode, tf, site));
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        out[label] = json!({"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "n": lat.len()});
    }
    let (rss, hwm) = rss_mb(std::process::id());
    out["rss_mb"] = json!(rss);
    out["hwm_mb"] = json!(hwm);
    println!("{out}");
}

fn search_in_child(index_dir: &Path, queries_file: &Path) -> Value {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .env("LOTSE_SCALING_CHILD", index_dir)
        .env("LOTSE_SCALING_QUERIES", queries_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(String::from_utf8_lossy(&out.stdout).trim().as_bytes()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// `lotse serve` on the index

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An OpenAI-compatible engine that only lists one model: enough for `serve` to start
/// without a local generator (searches never call it).
fn stub_engine() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let json = r#"{"object":"list","data":[{"id":"stub","object":"model"}]}"#;
            let resp = if buf[..n].starts_with(b"GET") {
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}", json.len())
            } else {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    base
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let status = body.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body))
}

fn serve_memory(data: &Path, queries: &[String]) -> Option<Value> {
    let lotse = std::env::var("LOTSE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lotse").to_owned());
    let engine = stub_engine();
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let t = Instant::now();
    let child = Command::new(&lotse)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .env("LOTSE__ENGINE__KIND", "openai")
        .env("LOTSE__ENGINE__URL", &engine)
        .env("LOTSE__ENGINE__MODEL", "stub")
        .env("LOTSE__ENGINE__EXTERNAL", "false")
        .env("LOTSE__SIMPLIFY__PREGENERATE", "false")
        .env("LOTSE__LIMITS__SEARCH_PER_SECOND", "1000")
        .env("LOTSE__LIMITS__SEARCH_BURST", "1000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id();
    let _child = Killed(child);
    loop {
        if matches!(http_get(port, "/ready"), Some((200, _))) {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            eprintln!("serve not ready after 600 s");
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ready_s = t.elapsed().as_secs_f64();
    let (rss_ready, _) = rss_mb(pid);
    let path = |q: &str| {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("/api/v1/search?q={q}&limit=10")
    };
    // first pass: loads the vectors and fills the query-embedding cache
    let t = Instant::now();
    let first = http_get(port, &path(&queries[0]));
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    if !matches!(first, Some((200, _))) {
        eprintln!("serve search failed: {:?}", first.map(|f| f.1.chars().take(300).collect::<String>()));
        return None;
    }
    for q in queries {
        http_get(port, &path(q));
    }
    let mut lat = Vec::new();
    for q in queries {
        let t = Instant::now();
        http_get(port, &path(q));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (rss, hwm) = rss_mb(pid);
    Some(json!({
        "ready_s": ready_s, "rss_ready_mb": rss_ready, "first_search_ms": first_ms,
        "rss_mb": rss, "hwm_mb": hwm,
        "http_p50": percentile(&lat, 0.5), "http_p99": percentile(&lat, 0.99),
    }))
}

// ---------------------------------------------------------------------------------------------

fn questions(town: &Town) -> Vec<String> {
    std::fs::read_to_string(fixtures().join("questions/bad-boll.dev.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["question"].as_str().map(|q| q.replace("Bad Boll", &town.name)))
        .collect()
}

fn main() {
    if let Some(dir) = std::env::var_os("LOTSE_SCALING_CHILD") {
        let q = std::env::var_os("LOTSE_SCALING_QUERIES").unwrap();
        search_child(Path::new(&dir), Path::new(&q));
        return;
    }
    let sizes: Vec<usize> = std::env::var("LOTSE_SCALING_TOWNS")
        .unwrap_or_else(|_| "10,100,300".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let embed_towns: usize = env_or("LOTSE_SCALING_EMBED_TOWNS", 10);
    // even, so a crawled template of each base is among them
    let http_towns: usize = env_or("LOTSE_SCALING_HTTP_TOWNS", 10usize).max(2).div_ceil(2) * 2;
    let with_serve = env_or("LOTSE_SCALING_SERVE", 1) != 0;
    let data = std::env::var_os("LOTSE_SCALING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/scaling-data"));
    let sites = data.join("sites");
    if sites.exists() {
        std::fs::remove_dir_all(&sites).unwrap();
    }
    std::fs::create_dir_all(&sites).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // the generator's promises: unique names, towns differ from the fixture and each other
    let names: std::collections::HashSet<String> = (0..400).map(|i| Town::new(i).name).collect();
    assert_eq!(names.len(), 400);
    let (t0, t2) = (Town::new(0), Town::new(2));
    let html = std::fs::read_to_string(fixtures().join("sites/bad-boll/index.html")).unwrap();
    assert_ne!(town_html(&html, &t0, ""), town_html(&html, &t2, ""));

    let real = load_embedder();
    let model_id = real
        .as_ref()
        .map_or("multilingual-e5-small".to_owned(), |e| e.model_id().to_owned());
    if real.is_none() {
        eprintln!("warning: the embedder is not in LOTSE_MODEL_CACHE; every size gets synthetic vectors");
    }
    let target = Town::new(0);
    let qs = questions(&target);
    let t = Instant::now();
    let qvecs: Vec<(String, Vec<f32>)> = qs
        .iter()
        .map(|q| {
            let v = match &real {
                Some(e) => e.embed(&[q.as_str()], EmbedKind::Query).unwrap().remove(0),
                None => random_unit(hash(q)),
            };
            (q.clone(), v)
        })
        .collect();
    let query_embed_ms = t.elapsed().as_secs_f64() * 1000.0 / qs.len() as f64;
    let queries_file = data.join("queries.json");
    std::fs::write(&queries_file, serde_json::to_vec(&qvecs).unwrap()).unwrap();
    eprintln!("{} queries about {}, {:.1} ms per query embedding", qs.len(), target.name, query_embed_ms);

    let synthetic: Arc<dyn ChunkEmbedder> = Arc::new(SyntheticEmbedder { model_id: model_id.clone() });
    // measure again on the indexes of an earlier run (after a change to search), keeping
    // that run's build figures
    let reuse = env_or("LOTSE_SCALING_REUSE", 0) != 0;
    let earlier: Vec<Value> = if reuse {
        std::fs::read(data.join("results.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut results = Vec::new();
    // the previous size: towns, directory, its build figures
    let mut previous: Option<(usize, PathBuf, Build)> = None;
    for &n in &sizes {
        let dir = data.join(format!("towns-{n}"));
        let index_dir = dir.join("index");
        if reuse && index_dir.join("meta.json").exists() {
            let mut row = earlier
                .iter()
                .find(|r| r["towns"] == json!(n))
                .cloned()
                .unwrap_or_else(|| json!({ "towns": n }));
            row["index_bytes"] = json!(dir_bytes(&index_dir));
            row["live_index_bytes"] = json!(live_index_bytes(&index_dir));
            row["search"] = search_in_child(&index_dir, &queries_file);
            row["serve"] = if with_serve { json!(serve_memory(&dir, &qs)) } else { Value::Null };
            row["query_embed_ms"] = json!(query_embed_ms);
            row["measured_again"] = json!(true);
            println!("{row}");
            // a larger size built after this one adds these figures to its own
            let f = |k: &str| row[k].as_f64().unwrap_or(0.0);
            let built = Build {
                pages_http: f("pages_http") as u64,
                http_secs: f("http_secs"),
                pages_direct: f("pages_direct") as u64,
                direct_secs: f("direct_secs"),
                embed_chunks: f("embedded_chunks") as u64,
                embed_secs: f("embed_secs"),
            };
            results.push(row);
            std::fs::write(data.join("results.json"), serde_json::to_vec_pretty(&results).unwrap()).unwrap();
            previous = Some((n, dir, built));
            continue;
        }
        let embed = n <= embed_towns && real.is_some();
        let mut b = Build::default();
        let mut first_town = 0;
        let mut before = Build::default();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        if let Some((pn, pdir, pb)) = &previous {
            // start from the previous size (its towns keep their vectors, real or synthetic)
            let ok = Command::new("cp").arg("-a").arg(pdir.join("index")).arg(&dir).status().unwrap();
            assert!(ok.success());
            first_town = *pn;
            before = *pb;
        }
        let index = SearchIndex::open(&index_dir).unwrap();
        let timed = Arc::new(Timed {
            inner: if embed {
                Arc::new(lotse_answer::PassageEmbedder(real.clone().unwrap())) as Arc<dyn ChunkEmbedder>
            } else {
                synthetic.clone()
            },
            nanos: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
        });
        for i in first_town..n {
            let town = Town::new(i);
            if embed || i < http_towns {
                let t = Instant::now();
                b.pages_http += crawl_town(&rt, &index, &town, &sites, timed.clone());
                b.http_secs += t.elapsed().as_secs_f64();
            } else {
                let from = Town::new(i % http_towns);
                let t = Instant::now();
                b.pages_direct += copy_town(&index, &from, &town, timed.clone());
                b.direct_secs += t.elapsed().as_secs_f64();
            }
            eprintln!(
                "towns-{n}: town {i} written; http {} pages in {:.0} s, direct {} pages in {:.0} s, embedder {} chunks in {:.0} s",
                b.pages_http,
                b.http_secs,
                b.pages_direct,
                b.direct_secs,
                timed.chunks.load(Ordering::Relaxed),
                timed.nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
        }
        if embed {
            b.embed_chunks = timed.chunks.load(Ordering::Relaxed);
            b.embed_secs = timed.nanos.load(Ordering::Relaxed) as f64 / 1e9;
        }
        // figures of the towns copied from the previous size count too
        b.pages_http += before.pages_http;
        b.http_secs += before.http_secs;
        b.pages_direct += before.pages_direct;
        b.direct_secs += before.direct_secs;
        b.embed_chunks += before.embed_chunks;
        b.embed_secs += before.embed_secs;
        drop(index);
        let bytes = dir_bytes(&index_dir);
        let live_bytes = live_index_bytes(&index_dir);
        let search = search_in_child(&index_dir, &queries_file);
        let serve = if with_serve { serve_memory(&dir, &qs) } else { None };
        let row = json!({
            "towns": n, "real_embeddings": embed, "from_towns": first_town,
            "pages_http": b.pages_http, "http_secs": b.http_secs,
            "pages_direct": b.pages_direct, "direct_secs": b.direct_secs,
            "embedded_chunks": b.embed_chunks, "embed_secs": b.embed_secs,
            "index_bytes": bytes, "live_index_bytes": live_bytes, "search": search, "serve": serve,
            "query_embed_ms": query_embed_ms,
        });
        println!("{row}");
        results.push(row);
        std::fs::write(data.join("results.json"), serde_json::to_vec_pretty(&results).unwrap()).unwrap();
        previous = Some((n, dir, b));
    }
}
