//! The `lotse` command: crawl a town website, search it, answer from it (CLI and HTTP), and
//! measure retrieval and answer quality.
//!
//! Contract: results go to stdout (JSON with `--json`), logs and progress to stderr, exit code
//! 0 only on success.

mod admin;
mod backup;
mod bench;
mod eval;
mod eval_answers;
mod models;
mod runtime;
mod serve;
mod simplify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lotse_core::CollectionScope;
use lotse_crawler::{CrawlConfig, CrawlSummary, Progress};
use lotse_index::{MatchOptions, SearchIndex, SearchRequest};
use serde::Serialize;
use url::Url;

#[derive(Parser)]
#[command(name = "lotse", version, about = "Lotse: the town's own AI assistant")]
struct Cli {
    /// Log format on stderr: `text` (colours only on a terminal) or `json` (one object per
    /// line, for journald, Loki or Elasticsearch).
    #[arg(long, global = true, value_enum, env = "LOTSE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Crawl a website into the index (incremental: run it again to pick up changes).
    Crawl(CrawlArgs),
    /// Search the index (BM25 over German-analysed chunks).
    Search(SearchArgs),
    /// Measure quality against question sets.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Model manifests and the model cache.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Maintain the index.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Stream a completion of a prompt to stdout, for a quick check of the generator.
    Generate(GenerateArgs),
    /// Benchmarks: the local generator beside llama.cpp on the same model file.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Answer a citizen's question from the index, with sources (the API's answer).
    Ask(serve::AskArgs),
    /// Serve the chat, search and OpenAI-compatible API over HTTP.
    Serve(serve::ServeArgs),
    /// Rewrite a page (or every page) into Einfache Sprache and store the result.
    Simplify(simplify::SimplifyArgs),
    /// Fetch the models if missing, crawl the site, then serve: one command to get going.
    Up(UpArgs),
    /// Print the OpenAPI description (what `openapi/openapi.json` holds).
    Openapi,
    /// Citizens' ratings of answers (thumbs up/down from the widget): a summary, or every
    /// rating as CSV or JSON.
    Feedback(FeedbackArgs),
    /// The staff portal: accounts, KI-Kompass levels, API tokens, backups, the AI register.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
}

#[derive(clap::Args)]
struct FeedbackArgs {
    #[arg(long, default_value = "data", env = "LOTSE_DATA")]
    data: PathBuf,
    /// The PostgreSQL database instead of portal.sqlite (as `[portal] database`).
    #[arg(long, env = "LOTSE__PORTAL__DATABASE")]
    database: Option<String>,
    /// Every rating as CSV (answer_id, helpful, model, refused, cited, at, question).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// Every rating as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct UpArgs {
    #[command(flatten)]
    crawl: CrawlArgs,
    /// Configuration file (TOML). Default: `lotse.toml` in the current directory, if present.
    #[arg(long, env = "LOTSE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "LOTSE_ADDR")]
    addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    engine: runtime::EngineArgs,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// The user message.
    prompt: String,
    /// A system message before it.
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 means greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    #[arg(long, default_value_t = 0.9)]
    top_p: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Tokens drafted from the prompt and checked per pass in greedy decoding (0: one token
    /// a pass); the generator's default when not given.
    #[arg(long)]
    draft_tokens: Option<usize>,
    #[command(flatten)]
    models: runtime::ModelArgs,
    #[command(flatten)]
    engine: runtime::EngineArgs,
}

#[derive(clap::Args)]
struct CrawlArgs {
    /// Start URL of the site, e.g. https://www.nettetal.de/
    site_url: String,
    #[arg(long, default_value = "data", env = "LOTSE_DATA")]
    data: PathBuf,
    #[arg(long, default_value_t = 5000)]
    max_pages: usize,
    #[arg(long, default_value_t = 12)]
    max_depth: u32,
    /// Pause between requests to one host, in milliseconds (robots.txt Crawl-delay wins if larger).
    #[arg(long, default_value_t = 250)]
    delay_ms: u64,
    /// Requests in flight per host.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Per-response size limit in bytes.
    #[arg(long, default_value_t = 20 * 1024 * 1024)]
    max_bytes: u64,
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Contact URL for the User-Agent (`lotse/<version> (+URL)`).
    #[arg(
        long,
        env = "LOTSE_CONTACT_URL",
        default_value = "https://github.com/lotse"
    )]
    contact: String,
    /// The town's name as citizens say it, e.g. "Stadt Nettetal" (learned from the site if unset).
    #[arg(long)]
    site_name: Option<String>,
    /// Further URL prefixes that belong to the site (repeatable).
    #[arg(long = "extra-prefix")]
    extra_prefixes: Vec<String>,
    /// Do not compute chunk embeddings (BM25 only; `lotse index embed` can add them later).
    #[arg(long)]
    no_embed: bool,
    #[command(flatten)]
    models: runtime::ModelArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SearchArgs {
    query: String,
    #[arg(long, default_value = "data", env = "LOTSE_DATA")]
    data: PathBuf,
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Only this site (origin, e.g. http://127.0.0.1:8089).
    #[arg(long)]
    site: Option<String>,
    #[command(flatten)]
    matching: MatchArgs,
    /// bm25, dense or hybrid (default: hybrid when the index has vectors and the model is there).
    #[arg(long, value_enum)]
    mode: Option<runtime::ModeArg>,
    #[command(flatten)]
    models: runtime::ModelArgs,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone, Copy)]
struct MatchArgs {
    /// Match plain words instead of German stems (to measure stemming).
    #[arg(long)]
    no_stem: bool,
    /// Do not use compound n-grams (to measure compound handling).
    #[arg(long)]
    no_compounds: bool,
    /// Do not restrict a query that names one town of the index to that town's site.
    #[arg(long)]
    no_town_filter: bool,
}

impl MatchArgs {
    fn options(self) -> MatchOptions {
        MatchOptions {
            stem: !self.no_stem,
            compounds: !self.no_compounds,
            town_filter: !self.no_town_filter,
        }
    }
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Compute embeddings for chunks that have none (e.g. crawled before the model was fetched).
    Embed {
        #[arg(long, default_value = "data", env = "LOTSE_DATA")]
        data: PathBuf,
        #[command(flatten)]
        models: runtime::ModelArgs,
    },
    /// Build a new index (after a schema change, or when it was lost): every uploaded document
    /// from its original in the portal database; then crawl the website again with `lotse
    /// crawl`. The old index directory is kept as `index.old-*`. Stop the server first.
    Rebuild {
        #[command(flatten)]
        portal: admin::DataArg,
        #[command(flatten)]
        models: runtime::ModelArgs,
        /// BM25 only: no chunk vectors (add them later with `lotse index embed`).
        #[arg(long)]
        no_embed: bool,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// recall@k over distinct source URLs and MRR for a JSONL question file.
    Retrieval(eval::RetrievalArgs),
    /// Answer a question set with the models: correct sources, refusals, safety checks.
    Answers(eval_answers::AnswersArgs),
    /// Rewrite original/simplification pairs: SARI, readability gain, fact preservation.
    Simplify(simplify::EvalSimplifyArgs),
    /// Spearman correlation of the readability formulas with human ratings.
    Readability(simplify::ReadabilityArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings, and Lotse's own info lines).
/// Colour codes only when stderr is a terminal and `NO_COLOR` is unset, so a log file or the
/// journal gets plain text.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "warn,lotse=info,lotse_crawler=info".into());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(false).init(),
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(ansi).with_target(false).init()
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Crawl(args) => crawl(args),
        Command::Search(args) => search(args),
        Command::Eval(EvalCommand::Retrieval(args)) => eval::retrieval(args),
        Command::Models(cmd) => models::run(cmd),
        Command::Index(IndexCommand::Embed { data, models }) => index_embed(&data, &models),
        Command::Index(IndexCommand::Rebuild { portal, models, no_embed }) => index_rebuild(&portal, &models, no_embed),
        Command::Generate(args) => generate(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Eval(EvalCommand::Answers(args)) => eval_answers::run(args),
        Command::Ask(args) => serve::ask(args),
        Command::Simplify(args) => simplify::run(args),
        Command::Eval(EvalCommand::Simplify(args)) => simplify::eval_simplify(args),
        Command::Eval(EvalCommand::Readability(args)) => simplify::eval_readability(args),
        Command::Serve(args) => serve::serve(args),
        Command::Up(args) => up(args),
        Command::Openapi => {
            print!("{}", lotse_server::openapi_json());
            Ok(())
        }
        Command::Feedback(args) => feedback(args),
        Command::Admin(cmd) => admin::run(cmd),
    }
}

/// `lotse up`: models, crawl, serve.
fn up(args: UpArgs) -> Result<()> {
    let config_args = serve::ConfigArgs {
        config: args.config,
        data: Some(args.crawl.data.clone()),
    };
    let config = config_args.load()?;
    let mut models = args.crawl.models.clone();
    let mut engine = args.engine;
    serve::apply_config(&mut models, &mut engine, &config);
    // a remote engine generates text: only the embedder is needed locally
    let only: Vec<String> = if engine.engine == runtime::EngineKind::Local {
        Vec::new()
    } else {
        lotse_inference::manifest::load_dir_or_builtin(&models.manifests)?
            .into_iter()
            .filter(|m| m.default && m.role == lotse_inference::manifest::ModelRole::Embedder)
            .map(|m| m.id)
            .collect()
    };
    eprintln!("1/3 models: fetching what is missing into {}", models.cache.display());
    models::fetch(&models::FetchArgs {
        common: models::ModelsArgs {
            dirs: models.clone(),
            json: false,
        },
        models: only,
    })?;
    eprintln!("2/3 crawl: {}", args.crawl.site_url);
    let mut crawl_args = args.crawl;
    crawl_args.models = models.clone();
    crawl(crawl_args)?;
    eprintln!("3/3 serve");
    serve::serve(serve::ServeArgs {
        config: config_args,
        addr: args.addr,
        models,
        engine,
    })
}

pub(crate) fn open_index(data: &Path) -> Result<SearchIndex> {
    SearchIndex::open(&data.join("index"))
        .with_context(|| format!("cannot open the index in {}", data.display()))
}

fn parse_site_url(s: &str) -> Result<Url> {
    let url = Url::parse(s).with_context(|| format!("invalid site url {s:?}"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some(),
        "invalid site url {s:?}: expected an absolute http(s) url such as https://www.example.de/"
    );
    Ok(url)
}

/// Progress bar on a terminal; nothing otherwise.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn update(&self, done: u64, total: u64, _current: &str) {
        self.0.set_length(total);
        self.0.set_position(done);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn crawl(args: CrawlArgs) -> Result<()> {
    let start = parse_site_url(&args.site_url)?;
    let mut cfg = CrawlConfig::new(start);
    cfg.max_pages = args.max_pages;
    cfg.max_depth = args.max_depth;
    cfg.delay = Duration::from_millis(args.delay_ms);
    cfg.concurrency = args.concurrency.max(1);
    cfg.max_response_bytes = args.max_bytes;
    cfg.request_timeout = Duration::from_secs(args.timeout_s.max(1));
    cfg.contact_url = args.contact;
    cfg.site_name = args.site_name;
    cfg.extra_prefixes = args
        .extra_prefixes
        .iter()
        .map(|p| parse_site_url(p))
        .collect::<Result<_>>()?;
    let index = open_index(&args.data)?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} requests {wide_bar} {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = Bar(bar);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let embedder = if args.no_embed {
        None
    } else {
        match runtime::load_embedder(&args.models)? {
            Ok(e) => {
                Some(Arc::new(runtime::IndexEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>)
            }
            Err(why) => {
                tracing::warn!(
                    "{why}; indexing for BM25 only (add vectors later with `lotse index embed`)"
                );
                None
            }
        }
    };
    let summary = rt.block_on(lotse_crawler::crawl_with_embedder(
        &cfg, &index, &progress, embedder,
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn index_embed(data: &Path, models: &runtime::ModelArgs) -> Result<()> {
    let index = open_index(data)?;
    let embedder = runtime::load_embedder(models)?.map_err(anyhow::Error::msg)?;
    let mut writer = index.writer()?;
    writer.set_embedder(Some(Arc::new(runtime::IndexEmbedder(embedder))));
    let pages = writer.embed_missing(&index)?;
    writer.commit()?;
    let (embedded, _) = writer.embedding_counts();
    println!("embedded {embedded} chunks of {pages} pages");
    Ok(())
}

/// `lotse index rebuild`: a new index beside the old one, uploads from their originals, then
/// swapped into place (the old directory is kept).
fn index_rebuild(portal: &admin::DataArg, models: &runtime::ModelArgs, no_embed: bool) -> Result<()> {
    let data = &portal.data;
    let store = portal.open()?;
    let fresh = data.join("index.rebuild");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).with_context(|| format!("cannot remove {}", fresh.display()))?;
    }
    let embedder = if no_embed {
        None
    } else {
        match runtime::load_embedder(models)? {
            Ok(e) => Some(Arc::new(runtime::IndexEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>),
            Err(why) => {
                tracing::warn!("{why}; indexing for BM25 only (add vectors later with `lotse index embed`)");
                None
            }
        }
    };
    let done = {
        let index = SearchIndex::open(&fresh).with_context(|| format!("cannot create {}", fresh.display()))?;
        lotse_portal::documents::reconcile_new_index(&store, &index, embedder).context("cannot write the uploads into the new index")?
    };
    let old = data.join("index");
    let mut kept = None;
    if old.exists() {
        let aside = data.join(format!("index.old-{}", lotse_portal::store::now()));
        std::fs::rename(&old, &aside).with_context(|| format!("cannot move {} aside", old.display()))?;
        kept = Some(aside);
    }
    if let Err(e) = std::fs::rename(&fresh, &old) {
        if let Some(aside) = &kept {
            let _ = std::fs::rename(aside, &old);
        }
        return Err(e).with_context(|| format!("cannot move the new index to {}", old.display()));
    }
    println!(
        "rebuilt {}: {} uploads written from their originals{}",
        old.display(),
        done.reindexed,
        if done.failed + done.without_original > 0 {
            format!(", {} without a kept original, {} unreadable", done.without_original, done.failed)
        } else {
            String::new()
        }
    );
    if let Some(aside) = kept {
        println!("the old index is kept in {} (delete it when the new one serves)", aside.display());
    }
    println!("now crawl the website again: lotse crawl URL --data {}", data.display());
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    use lotse_inference::{CancelToken, ChatMessage, GenerationParams, StopReason};
    use std::io::Write;

    let generator = runtime::load_generator_with(&args.models, &args.engine, args.draft_tokens)?;
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(ChatMessage::system(system));
    }
    messages.push(ChatMessage::user(args.prompt));
    let params = GenerationParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        stop: args.stop,
        background: false,
    };
    let started = std::time::Instant::now();
    let mut first = None;
    let mut out = std::io::stdout().lock();
    let generation = generator.generate(&messages, &params, &CancelToken::new(), &mut |piece| {
        first.get_or_insert_with(|| started.elapsed());
        let _ = out.write_all(piece.as_bytes());
        let _ = out.flush();
    })?;
    let info = generator.info();
    // every AI-generated text carries the label
    writeln!(out, "\n\n(KI-generiert mit {})", info.id)?;
    let total = started.elapsed().as_secs_f64();
    let ttft = first.unwrap_or_default().as_secs_f64();
    let gen_rate = if total > ttft && generation.completion_tokens > 1 {
        (generation.completion_tokens - 1) as f64 / (total - ttft)
    } else {
        0.0
    };
    eprintln!(
        "{} prompt tokens{}, {} completion tokens ({}), first token after {ttft:.2} s, {gen_rate:.1} tokens/s{}",
        generation.prompt_tokens,
        if generation.prompt_truncated {
            " (cut to fit the context)"
        } else {
            ""
        },
        generation.completion_tokens,
        match generation.stop_reason {
            StopReason::Eos => "end of turn",
            StopReason::StopSequence => "stop string",
            StopReason::MaxTokens => "--max-tokens reached",
            StopReason::Cancelled => "cancelled",
        },
        if info.external {
            ", external engine"
        } else {
            ""
        },
    );
    Ok(())
}

fn print_summary(s: &CrawlSummary) {
    println!(
        "Crawl of {} finished in {:.1} s",
        s.site,
        s.duration_ms as f64 / 1000.0
    );
    println!(
        "  indexed (new or changed): {} ({} PDFs)",
        s.pages_indexed, s.pdfs
    );
    println!("  not modified (304):       {}", s.not_modified);
    println!("  unchanged content:        {}", s.unchanged);
    println!("  skipped by robots.txt:    {}", s.skipped_robots);
    for (reason, n) in &s.skipped {
        println!("  skipped ({reason}): {n}");
    }
    println!("  failed:                   {}", s.failed);
    for (reason, n) in &s.failed_by_reason {
        println!("    {reason}: {n}");
    }
    println!("  removed:                  {}", s.removed);
    println!(
        "  chunk embeddings:         {} computed, {} reused",
        s.chunks_embedded, s.embeddings_reused
    );
    println!("  requests:                 {}", s.requests);
    println!(
        "  in the index now:         {} documents, {} chunks{}",
        s.pages_total,
        s.chunks_total,
        if s.complete {
            ""
        } else {
            " (crawl stopped at --max-pages; nothing removed)"
        }
    );
}

#[derive(Serialize)]
struct SearchHitOut<'a> {
    url: &'a str,
    title: &'a str,
    heading: &'a str,
    deep_link: &'a str,
    snippet: &'a str,
    score: f32,
}

fn search(args: SearchArgs) -> Result<()> {
    let index = open_index(&args.data)?;
    let scope = CollectionScope::public_website();
    let retrieval = runtime::Retrieval::choose(&index, args.mode, &args.models)?;
    let qv = retrieval.query_vector(&args.query)?;
    let mut req = SearchRequest::new(&args.query, &scope);
    req.limit = args.limit;
    req.site = args.site.as_deref();
    req.options = args.matching.options();
    req.mode = retrieval.mode;
    req.query_vector = qv.as_deref().map(|vector| lotse_index::QueryVector {
        model_id: retrieval.model_id(),
        vector,
    });
    let hits = index.search(&req)?;
    if args.json {
        let out: Vec<SearchHitOut> = hits
            .iter()
            .map(|h| SearchHitOut {
                url: &h.url,
                title: &h.title,
                heading: &h.heading,
                deep_link: &h.deep_link,
                snippet: &h.snippet,
                score: h.score,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if hits.is_empty() {
        println!("no hits");
    } else {
        for (i, h) in hits.iter().enumerate() {
            println!(
                "{}. {} [{:.2}]\n   {} › {}\n   {}\n   {}\n",
                i + 1,
                h.title,
                h.score,
                h.title,
                h.heading,
                h.deep_link,
                h.snippet
            );
        }
    }
    Ok(())
}

fn feedback(args: FeedbackArgs) -> Result<()> {
    let db = lotse_server::database::open_without_import(args.database.as_deref(), &args.data)
        .map_err(anyhow::Error::msg)
        .context("cannot open the database")?;
    let all = lotse_server::feedback::FeedbackStore::new(db).all()?;
    if all.is_empty() && !args.json && !args.csv {
        anyhow::bail!("no ratings yet");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if args.csv {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        w.write_record(["answer_id", "helpful", "model", "refused", "cited", "at", "question"])?;
        for r in &all {
            w.write_record([
                r.answer_id.as_str(),
                if r.helpful { "1" } else { "0" },
                r.model.as_str(),
                if r.refused { "1" } else { "0" },
                r.cited.join(" ").as_str(),
                r.at.to_string().as_str(),
                r.question.as_deref().unwrap_or(""),
            ])?;
        }
        w.flush()?;
    } else {
        let up = all.iter().filter(|r| r.helpful).count();
        let refused = all.iter().filter(|r| r.refused).count();
        println!("ratings:       {}", all.len());
        println!("helpful:       {up} ({:.0} %)", 100.0 * up as f64 / all.len().max(1) as f64);
        println!("not helpful:   {}", all.len() - up);
        println!("on refusals:   {refused}");
        let mut pages: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for r in &all {
            for u in &r.cited {
                let e = pages.entry(u.as_str()).or_default();
                if r.helpful { e.0 += 1 } else { e.1 += 1 }
            }
        }
        let mut worst: Vec<_> = pages.into_iter().filter(|(_, (_, down))| *down > 0).collect();
        worst.sort_by(|a, b| b.1.1.cmp(&a.1.1));
        if !worst.is_empty() {
            println!("pages cited in unhelpful answers (down/up):");
            for (u, (up, down)) in worst.iter().take(10) {
                println!("  {down}/{up}  {u}");
            }
        }
    }
    Ok(())
}
