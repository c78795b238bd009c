//! `lotse bench generate`: the local generator side by side with llama.cpp's `llama-bench`
//! on the same GGUF file and the same threads, in interleaved rounds.
//!
//! Figures, as llama-bench defines them:
//! - `ppN`: prompt processing, N tokens from an empty cache in passes of 512 (llama-bench's
//!   default batch; tokens/s). The prompt is a German paragraph repeated and cut to exactly
//!   N tokens.
//! - `tg128`: 128 greedy tokens (tokens/s after the first), drafts off, from a one-token
//!   context as llama-bench does.
//! - Lotse after a short chat prompt (a question about the paragraph, ~110 tokens), drafts
//!   off and with prompt-lookup drafts, against llama-bench's tg128 at that depth (`-d`):
//!   drafts pay off when the answer copies from its sources (the chat bench measures real
//!   answers); the drafts row is Lotse's speculative decoding against plain decoding.
//! - Both run on the same number of threads (candle's pool decides Lotse's; `--threads`
//!   must agree with it).
//! - Peak RSS: this process after loading and all rounds (`VmHWM`), and llama-bench's
//!   highest `VmHWM` read while it runs.
//!
//! Medians over the rounds; ratios are Lotse / llama.cpp (speed: higher is better for Lotse;
//! memory: lower is better).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lotse_inference::ChatMessage;
use lotse_inference::generate::{LoadOptions, LocalGenerator};
use lotse_inference::manifest::ModelRole;

use crate::runtime::{self, ModelArgs};

const PARAGRAPH: &str = "Wer in der Gemeinde einen Hund hält, muss ihn innerhalb von zwei Wochen \
nach der Aufnahme beim Steueramt anmelden. Die Hundesteuer wird als Jahressteuer erhoben und \
ist jeweils zum 1. Juli fällig. Für Blindenführhunde und Hunde, die ausschließlich dem Schutz \
von Personen dienen, kann auf Antrag eine Steuerbefreiung gewährt werden. Nach der Anmeldung \
erhalten Sie eine Hundesteuermarke, die der Hund außerhalb des Hauses sichtbar tragen muss. \
Wird der Hund abgegeben oder stirbt er, ist er ebenfalls innerhalb von zwei Wochen abzumelden. \
Die Steuer beträgt für den ersten Hund 96,00 Euro im Jahr, für jeden weiteren Hund 150,00 Euro. ";

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Prompt processing and generation of the local generator, and of llama.cpp's
    /// llama-bench on the same file when `--llama-bench` (or `LLAMA_BENCH`) names it.
    Generate(GenerateBenchArgs),
}

#[derive(clap::Args)]
pub struct GenerateBenchArgs {
    /// Prompt lengths in tokens (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "300,800")]
    prompt_tokens: Vec<usize>,
    /// Tokens generated per run.
    #[arg(long, default_value_t = 128)]
    gen_tokens: usize,
    /// Interleaved rounds (medians over them).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Drafted tokens per pass for the drafts-on run (0 skips it).
    #[arg(long, default_value_t = lotse_inference::generate::DEFAULT_DRAFT_TOKENS)]
    draft_tokens: usize,
    /// llama.cpp's `llama-bench` binary (built as ../shared/MODELS.md says).
    #[arg(long, env = "LLAMA_BENCH")]
    llama_bench: Option<PathBuf>,
    /// Threads for both; must equal candle's count (`CANDLE_NUM_THREADS`, else
    /// `RAYON_NUM_THREADS`, else the cores), which is the default.
    #[arg(long)]
    threads: Option<usize>,
    /// Print the rounds as JSON lines on stdout as well.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    models: ModelArgs,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Generate(args) => generate(args),
    }
}

/// One figure of one engine over the rounds.
#[derive(Default)]
struct Series(Vec<f64>);

impl Series {
    fn median(&self) -> Option<f64> {
        let mut v = self.0.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        })
    }
}

/// `VmHWM` (peak resident set) of a process in MB, from `/proc/PID/status`.
fn peak_rss_mb(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()?;
    Some(kb / 1024.0)
}

/// The CPU's vector features that matter to the kernels (from `/proc/cpuinfo`).
fn cpu_summary() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let wanted = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"];
    let have: Vec<&str> = wanted.iter().copied().filter(|w| flags.contains(w)).collect();
    format!("{model}; {}", have.join(" "))
}

/// Exactly `n` tokens of the repeated paragraph.
fn fixed_prompt(generator: &LocalGenerator, n: usize) -> Result<Vec<u32>> {
    let once = generator.tokenize(PARAGRAPH)?;
    if once.is_empty() {
        bail!("the tokenizer returned no tokens");
    }
    Ok(once.iter().copied().cycle().take(n).collect())
}

/// What one llama-bench run reported: (prompt tokens, generated tokens) -> tokens/s, and its
/// peak RSS.
struct LlamaRun {
    rates: Vec<(usize, usize, f64)>,
    peak_mb: f64,
}

/// How long one llama-bench run may take before it is stopped.
const LLAMA_TIMEOUT: Duration = Duration::from_secs(900);

/// One llama-bench run with `extra` arguments; its JSON rows and peak RSS.
fn llama_bench(bin: &PathBuf, model: &PathBuf, threads: usize, extra: &[String]) -> Result<LlamaRun> {
    let mut child = Command::new(bin)
        .arg("-m")
        .arg(model)
        .args(["-t", &threads.to_string(), "-r", "1", "-o", "json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let pid = child.id().to_string();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = read(Box::new(child.stdout.take().context("no stdout")?));
    let stderr = read(Box::new(child.stderr.take().context("no stderr")?));
    let started = Instant::now();
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(mb) = peak_rss_mb(&pid) {
            peak = peak.max(mb);
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > LLAMA_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    match status {
        None => bail!("{} took longer than {} s and was stopped", bin.display(), LLAMA_TIMEOUT.as_secs()),
        Some(s) if !s.success() => bail!("{} failed ({s}): {tail}", bin.display()),
        Some(_) => {}
    }
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).with_context(|| format!("llama-bench printed no JSON: {tail}"))?;
    let rates = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("n_prompt")?.as_u64()? as usize,
                r.get("n_gen")?.as_u64()? as usize,
                r.get("avg_ts")?.as_f64()?,
            ))
        })
        .collect();
    Ok(LlamaRun { rates, peak_mb: peak })
}

fn generate(args: GenerateBenchArgs) -> Result<()> {
    let (threads, kernels) = lotse_inference::generate::compute_threads();
    if let Some(t) = args.threads.filter(|&t| t != threads) {
        bail!("Lotse runs on {threads} threads here; set CANDLE_NUM_THREADS={t} to compare both at {t}");
    }
    let m = runtime::default_model(&args.models, ModelRole::Generator)?;
    let located = m.locate(&args.models.cache)?;
    eprintln!("CPU: {}", cpu_summary());
    eprintln!("model: {} ({})", m.id, located.path.display());
    eprintln!("threads: {threads} for both; Lotse's kernels: {kernels}");
    let started = Instant::now();
    let generator = LocalGenerator::load(
        &located.path,
        LoadOptions {
            model_id: Some(m.id.clone()),
            draft_tokens: 0,
            ..LoadOptions::default()
        },
    )
    .with_context(|| format!("cannot load {}", m.id))?;
    eprintln!("Lotse loaded in {:.1} s (warm-up included)", started.elapsed().as_secs_f64());
    let prompts: Vec<(usize, Vec<u32>)> = args
        .prompt_tokens
        .iter()
        .map(|&n| Ok((n, fixed_prompt(&generator, n)?)))
        .collect::<Result<_>>()?;
    let chat = generator.chat_tokens(&[
        ChatMessage::system("Sie beantworten Fragen von Bürgerinnen und Bürgern aus den Texten der Gemeinde."),
        ChatMessage::user(format!(
            "Text:\n{PARAGRAPH}\n\nFrage: Was muss ich bei der Hundesteuer beachten? Antworten Sie ausführlich und zitieren Sie den Text."
        )),
    ])?;

    let mut lotse_pp: Vec<Series> = prompts.iter().map(|_| Series::default()).collect();
    let mut lotse_tg = Series::default();
    let mut lotse_chat = Series::default();
    let mut lotse_draft = Series::default();
    let mut accepted = (0usize, 0usize);
    let mut llama_pp: Vec<Series> = prompts.iter().map(|_| Series::default()).collect();
    let mut llama_tg = Series::default();
    let mut llama_tg_depth = Series::default();
    let mut llama_peak: f64 = 0.0;
    let mut llama_failed = 0;
    for round in 1..=args.rounds.max(1) {
        for (i, (n, tokens)) in prompts.iter().enumerate() {
            let took = generator.process_prompt(tokens)?;
            let rate = *n as f64 / took.as_secs_f64();
            lotse_pp[i].0.push(rate);
            if args.json {
                println!("{}", serde_json::json!({"round": round, "engine": "lotse", "test": format!("pp{n}"), "tokens_per_s": rate}));
            }
        }
        let run = generator.bench_decode(&chat[..1], args.gen_tokens, 0)?;
        lotse_tg.0.push(run.tokens_per_s());
        if args.json {
            println!("{}", serde_json::json!({"round": round, "engine": "lotse", "test": format!("tg{}", args.gen_tokens), "tokens_per_s": run.tokens_per_s()}));
        }
        let run = generator.bench_decode(&chat, args.gen_tokens, 0)?;
        lotse_chat.0.push(run.tokens_per_s());
        if args.json {
            println!("{}", serde_json::json!({"round": round, "engine": "lotse", "test": format!("tg{} after the chat prompt", args.gen_tokens), "tokens_per_s": run.tokens_per_s()}));
        }
        if args.draft_tokens > 0 {
            let run = generator.bench_decode(&chat, args.gen_tokens, args.draft_tokens)?;
            lotse_draft.0.push(run.tokens_per_s());
            accepted.0 += run.drafted;
            accepted.1 += run.accepted;
            if args.json {
                println!("{}", serde_json::json!({"round": round, "engine": "lotse", "test": format!("tg{} after the chat prompt, drafts {}", args.gen_tokens, args.draft_tokens), "tokens_per_s": run.tokens_per_s(), "drafted": run.drafted, "accepted": run.accepted}));
            }
        }
        if let Some(bin) = &args.llama_bench {
            let p: Vec<String> = args.prompt_tokens.iter().map(|n| n.to_string()).collect();
            let plain = vec!["-p".to_string(), p.join(","), "-n".into(), args.gen_tokens.to_string()];
            // generation at the chat prompt's depth, for the rows after it
            let deep = vec![
                "-p".to_string(),
                "0".into(),
                "-n".into(),
                args.gen_tokens.to_string(),
                "-d".into(),
                chat.len().to_string(),
            ];
            for (extra, at_depth) in [(plain, false), (deep, true)] {
                let run = match llama_bench(bin, &located.path, threads, &extra) {
                    Ok(run) => run,
                    Err(e) => {
                        // keep what was measured; the round's llama.cpp figures are missing
                        eprintln!("llama-bench: {e:#}");
                        llama_failed += 1;
                        continue;
                    }
                };
                llama_peak = llama_peak.max(run.peak_mb);
                for (p, g, rate) in run.rates {
                    let test = match (g, at_depth) {
                        (0, _) => format!("pp{p}"),
                        (_, false) => format!("tg{g}"),
                        (_, true) => format!("tg{g} at depth {}", chat.len()),
                    };
                    if args.json {
                        println!("{}", serde_json::json!({"round": round, "engine": "llama.cpp", "test": test, "tokens_per_s": rate}));
                    }
                    if g == 0 {
                        if let Some(i) = args.prompt_tokens.iter().position(|&n| n == p) {
                            llama_pp[i].0.push(rate);
                        }
                    } else if at_depth {
                        llama_tg_depth.0.push(rate);
                    } else {
                        llama_tg.0.push(rate);
                    }
                }
            }
        }
        eprintln!("round {round} of {} done", args.rounds.max(1));
    }
    let lotse_peak = peak_rss_mb("self").unwrap_or(0.0);

    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_string(),
    };
    println!("{:<28} {:>12} {:>12} {:>14}", "figure (median)", "Lotse", "llama.cpp", "Lotse/llama");
    println!("(tokens/s; tg from an empty context, and after the chat prompt: llama-bench -d)");
    for (i, (n, _)) in prompts.iter().enumerate() {
        let (a, b) = (lotse_pp[i].median(), llama_pp[i].median());
        println!("{:<28} {:>12} {:>12} {:>14}", format!("pp{n} tokens/s"), fmt(a), fmt(b), ratio(a, b));
    }
    let (a, b) = (lotse_tg.median(), llama_tg.median());
    println!("{:<28} {:>12} {:>12} {:>14}", format!("tg{} tokens/s", args.gen_tokens), fmt(a), fmt(b), ratio(a, b));
    let (a, b) = (lotse_chat.median(), llama_tg_depth.median());
    println!("{:<28} {:>12} {:>12} {:>14}", format!("  after chat prompt ({})", chat.len()), fmt(a), fmt(b), ratio(a, b));
    if args.draft_tokens > 0 {
        let a = lotse_draft.median();
        println!(
            "{:<28} {:>12} {:>12} {:>14}   ({} of {} drafted tokens accepted)",
            format!("  after chat prompt, drafts {}", args.draft_tokens),
            fmt(a),
            fmt(b),
            ratio(a, b),
            accepted.1,
            accepted.0
        );
    }
    let b = (llama_peak > 0.0).then_some(llama_peak);
    println!(
        "{:<28} {:>12} {:>12} {:>14}",
        "peak RSS MB",
        format!("{lotse_peak:.0}"),
        b.map_or("-".to_string(), |b| format!("{b:.0}")),
        ratio(Some(lotse_peak), b)
    );
    if llama_failed > 0 {
        eprintln!("{llama_failed} llama-bench run(s) failed: their figures are missing from the medians");
    }
    if args.llama_bench.is_none() {
        eprintln!("(set LLAMA_BENCH to llama.cpp's llama-bench for the side-by-side figures; ../shared/MODELS.md says how to build it)");
    }
    Ok(())
}
