//! Benchmark of the default models on this machine's CPU, after warm-up:
//! prompt processing (512-token prompt), generation (128 tokens), time to first token
//! (512-token chat prompt), embedder passages/s (~130-token passages), time to embed every
//! chunk of the konstanz fixture, and peak RSS with both models loaded.
//!
//! ```text
//! cargo bench -p lotse --bench models            # LOTSE_MODEL_CACHE or models/cache
//! LOTSE_BENCH_RUNS=5 RAYON_NUM_THREADS=2 cargo bench -p lotse --bench models
//! cargo bench -p lotse --bench models -- --candle-qwen2   # candle's qwen2 instead of Lotse's
//! ```
//! Fetch the models first with `lotse models fetch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lotse_crawler::{CrawlConfig, NoProgress, crawl};
use lotse_index::{ChunkEmbedder, SearchIndex};
use lotse_inference::embed::E5Embedder;
use lotse_inference::generate::{LoadOptions, LocalGenerator};
use lotse_inference::manifest::{self, ModelRole};
use lotse_inference::{CancelToken, ChatMessage, EmbedKind, Embedder, GenerationParams, Generator};
use lotse_testsite::SiteServer;
use url::Url;

const PARAGRAPH: &str = "Wer in der Gemeinde einen Hund hält, muss ihn innerhalb von zwei Wochen \
nach der Aufnahme beim Steueramt anmelden. Die Hundesteuer wird als Jahressteuer erhoben und \
ist jeweils zum 1. Juli fällig. Für Blindenführhunde und Hunde, die ausschließlich dem Schutz \
von Personen dienen, kann auf Antrag eine Steuerbefreiung gewährt werden. Nach der Anmeldung \
erhalten Sie eine Hundesteuermarke, die der Hund außerhalb des Hauses sichtbar tragen muss. \
Wird der Hund abgegeben oder stirbt er, ist er ebenfalls innerhalb von zwei Wochen abzumelden. ";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).to_owned()
}

/// `VmRSS` and `VmHWM` (peak) of this process in MB (Linux).
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

fn spread(xs: &[f64], digits: usize) -> String {
    let v: Vec<String> = xs.iter().map(|x| format!("{x:.digits$}")).collect();
    v.join(", ")
}

struct Passages(Arc<E5Embedder>);

impl ChunkEmbedder for Passages {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.0
            .embed(&refs, EmbedKind::Passage)
            .map_err(|e| e.to_string())
    }
}

fn main() -> Res<()> {
    let candle_qwen2 = std::env::args().any(|a| a == "--candle-qwen2");
    let runs: usize = std::env::var("LOTSE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let cache = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/cache"));
    let manifests = manifest::load_dir(&root().join("models"))?;
    let default = |role| {
        manifests
            .iter()
            .find(|m| m.role == role && m.default)
            .ok_or("no default model")
    };
    let gen_m = default(ModelRole::Generator)?;
    let emb_m = default(ModelRole::Embedder)?;
    println!(
        "models bench: {} CPU threads for candle, {runs} runs per figure (medians)",
        lotse_inference::cpu_threads()
    );

    // --- load both models
    let t = Instant::now();
    let g = LocalGenerator::load(
        &gen_m.locate(&cache)?.path,
        LoadOptions {
            candle_qwen2,
            model_id: Some(gen_m.id.clone()),
            ..LoadOptions::default()
        },
    )?;
    let gen_load = t.elapsed();
    let emb_a = emb_m.locate(&cache)?;
    let t = Instant::now();
    let e = match emb_a.format.as_str() {
        "e5s1" => E5Embedder::load_e5s1(&emb_a.path)?,
        _ => E5Embedder::load_hub_dir(&emb_a.path)?,
    }
    .with_model_id(emb_m.id.clone());
    let e = Arc::new(e);
    let emb_load = t.elapsed();
    let (rss_loaded, _) = memory_mb();
    println!(
        "generator {} ({}{}): loaded and warmed up in {:.2} s",
        g.info().id,
        g.architecture(),
        if candle_qwen2 {
            ", candle quantized_qwen2"
        } else {
            ""
        },
        gen_load.as_secs_f64()
    );
    println!(
        "embedder {} ({}): loaded in {:.2} s; RSS with both models loaded: {rss_loaded:.0} MB",
        e.model_id(),
        emb_a.format,
        emb_load.as_secs_f64()
    );

    // --- prompt processing: exactly 512 tokens, one pass from an empty cache
    let text = PARAGRAPH.repeat(512 / 60 + 2);
    let mut tokens = g.tokenize(&text)?;
    tokens.truncate(512);
    g.process_prompt(&tokens)?; // warm-up at full size
    let speeds: Vec<f64> = (0..runs)
        .map(|_| {
            g.process_prompt(&tokens)
                .map(|d| tokens.len() as f64 / d.as_secs_f64())
        })
        .collect::<Result<_, _>>()?;
    println!(
        "prompt processing, {}-token prompt: {:.1} tokens/s ({})",
        tokens.len(),
        median(speeds.clone()),
        spread(&speeds, 1)
    );

    // --- time to first token for a chat prompt of 512 tokens (template included)
    let overhead = g.prompt_tokens(&[ChatMessage::user("")])?;
    let content = g.detokenize(&tokens[..512 - overhead])?;
    let messages = vec![ChatMessage::user(content)];
    let n_prompt = g.prompt_tokens(&messages)?;
    let params = GenerationParams {
        max_tokens: 2,
        ..GenerationParams::default()
    };
    let mut ttfts = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut first: Option<Duration> = None;
        g.generate(&messages, &params, &CancelToken::new(), &mut |_| {
            first.get_or_insert_with(|| t.elapsed());
        })?;
        ttfts.push(first.unwrap_or_else(|| t.elapsed()).as_secs_f64());
    }
    println!(
        "time to first token, {n_prompt}-token chat prompt: {:.2} s ({})",
        median(ttfts.clone()),
        spread(&ttfts, 2)
    );

    // --- generation: 128 tokens after the first, greedy, a long answer requested
    let messages = vec![ChatMessage::user(
        "Schreiben Sie einen langen, ausführlichen Bericht über die Geschichte der Hundesteuer \
         in Deutschland, mit vielen Einzelheiten.",
    )];
    let params = GenerationParams {
        max_tokens: 129,
        ..GenerationParams::default()
    };
    let mut speeds = Vec::new();
    let mut n_tokens = 0;
    for _ in 0..runs {
        let mut first: Option<Instant> = None;
        let res = g.generate(&messages, &params, &CancelToken::new(), &mut |_| {
            first.get_or_insert_with(Instant::now);
        })?;
        let after_first = first.map_or(Duration::ZERO, |f| f.elapsed());
        n_tokens = res.completion_tokens.saturating_sub(1);
        speeds.push(n_tokens as f64 / after_first.as_secs_f64().max(1e-9));
    }
    println!(
        "generation, {n_tokens} tokens after the first: {:.1} tokens/s ({})",
        median(speeds.clone()),
        spread(&speeds, 1)
    );

    // --- embedder: 64 passages of about 130 tokens, as the index sends them (one call)
    let words: Vec<&str> = PARAGRAPH.split_whitespace().collect();
    let passages: Vec<String> = (0..64)
        .map(|i| {
            let start = (i * 7) % words.len();
            let mut p: Vec<&str> = words.iter().cycle().skip(start).take(95).copied().collect();
            p.push(if i % 2 == 0 { "Gebühr" } else { "Satzung" });
            p.join(" ")
        })
        .collect();
    let avg_tokens = passages
        .iter()
        .map(|p| e.token_ids(p, EmbedKind::Passage).map(|t| t.len()))
        .sum::<Result<usize, _>>()? as f64
        / passages.len() as f64;
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    e.embed(&refs[..8], EmbedKind::Passage)?; // warm-up
    let mut rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        e.embed(&refs, EmbedKind::Passage)?;
        rates.push(refs.len() as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "embedder, {} passages of {avg_tokens:.0} tokens on average: {:.1} passages/s ({})",
        refs.len(),
        median(rates.clone()),
        spread(&rates, 1)
    );
    let (_, peak_models) = memory_mb();
    println!(
        "peak RSS with both default models loaded and used: {peak_models:.0} MB (target 3072 MB)"
    );

    // --- embed the konstanz fixture: crawl it without vectors, then time embedding every chunk
    let fixtures = root().join("../shared/fixtures/sites/konstanz");
    if fixtures.is_dir() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let server = SiteServer::start(&fixtures)?;
        let dir = tempfile::tempdir()?;
        let index = SearchIndex::open(dir.path())?;
        let mut cfg = CrawlConfig::new(Url::parse(&format!("{}/", server.origin()))?);
        cfg.delay = Duration::ZERO;
        cfg.concurrency = 4;
        let s = rt.block_on(crawl(&cfg, &index, &NoProgress))?;
        let mut writer = index.writer()?;
        writer.set_embedder(Some(Arc::new(Passages(e.clone()))));
        let t = Instant::now();
        writer.embed_missing(&index)?;
        writer.commit()?;
        let took = t.elapsed().as_secs_f64();
        let (chunks, _) = writer.embedding_counts();
        println!(
            "embedding the konstanz fixture: {chunks} chunks of {} documents in {took:.1} s ({:.1} chunks/s)",
            s.pages_total,
            chunks as f64 / took
        );
    } else {
        println!(
            "konstanz fixture not found at {}; skipped",
            fixtures.display()
        );
    }
    let (rss, peak) = memory_mb();
    println!("RSS at the end {rss:.0} MB, peak over the whole run {peak:.0} MB");
    Ok(())
}
