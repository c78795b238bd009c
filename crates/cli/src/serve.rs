//! `lotse serve`, `lotse ask` and `lotse up`: the answerer with its models, behind HTTP or
//! on the command line.
//!
//! Settings come from `lotse.toml` (or `--config`), `LOTSE__SECTION__KEY` environment
//! variables, and flags, in increasing priority.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use lotse_answer::{AnswerRequest, Answerer};
use lotse_inference::Generator;
use lotse_inference::generate::GenerationService;
use lotse_server::simplify::{ChatBusy, SimplifyService};
use lotse_server::{AppState, Config};
use lotse_simplify::Simplifier;

use crate::runtime::{self, EngineArgs, EngineKind, ModelArgs};

/// Where the settings come from.
#[derive(clap::Args, Clone)]
pub struct ConfigArgs {
    /// Configuration file (TOML). Default: `lotse.toml` in the current directory, if present.
    #[arg(long, env = "LOTSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (index and state). Default: `data`, or `data` of the configuration.
    #[arg(long, env = "LOTSE_DATA")]
    pub data: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from("lotse.toml"), false),
        };
        Config::load(Some(&path), required, std::env::vars())
            .context("cannot load the configuration")
    }

    pub fn data_dir(&self, config: &Config) -> PathBuf {
        self.data
            .clone()
            .or_else(|| config.data.clone())
            .unwrap_or_else(|| PathBuf::from("data"))
    }
}

/// Take model and engine settings from the configuration file where no flag or environment
/// variable set them (clap's defaults are recognised by value).
pub fn apply_config(models: &mut ModelArgs, engine: &mut EngineArgs, c: &Config) {
    if models.manifests == PathBuf::from("models") {
        if let Some(m) = &c.models.manifests {
            models.manifests = m.clone();
        }
    }
    if models.cache == PathBuf::from("models/cache") {
        if let Some(m) = &c.models.cache {
            models.cache = m.clone();
        }
    }
    if engine.engine == EngineKind::Local && c.engine.kind.as_deref() == Some("openai") {
        engine.engine = EngineKind::Openai;
    }
    if engine.engine_pool.is_empty() && !c.engine.pool.is_empty() {
        engine.engine = EngineKind::Openai;
        engine.engine_pool = c
            .engine
            .pool
            .iter()
            .map(|e| lotse_inference::pool::PoolMemberConfig {
                remote: lotse_inference::remote::RemoteConfig {
                    base_url: e.url.clone(),
                    model: e.model.clone(),
                    api_key_env: e.api_key_env.clone(),
                    external: e.external,
                    context_len: e.context.unwrap_or(8192),
                    timeout_secs: 120,
                },
                concurrency: e.concurrency,
            })
            .collect();
        let f = &c.engine.failover;
        engine.engine_pool_options = lotse_inference::pool::PoolOptions {
            failure_threshold: f.failures,
            open_for: std::time::Duration::from_secs(f.open_secs),
            slot_wait: std::time::Duration::from_secs(f.slot_wait_secs),
            health_interval: std::time::Duration::from_secs(f.health_secs),
            health_timeout: std::time::Duration::from_secs(f.health_timeout_secs),
        };
    }
    if engine.engine_url.is_none() {
        engine.engine_url = c.engine.url.clone();
    }
    if engine.engine_model.is_none() {
        engine.engine_model = c.engine.model.clone();
    }
    if engine.engine_api_key_env.is_none() {
        engine.engine_api_key_env = c.engine.api_key_env.clone();
    }
    if !engine.engine_external {
        // unset: an engine at a public address is a hosted service (fail closed); one on this
        // machine or in the administration's network is its own
        engine.engine_external = c.engine.external.unwrap_or_else(|| {
            engine.engine == EngineKind::Openai && engine.engine_url.as_deref().is_some_and(public_address)
        });
    }
    if engine.engine_context == 4096 {
        if let Some(n) = c.engine.context {
            engine.engine_context = n;
        }
    }
}

/// Whether an engine URL points outside this machine and the local network: not loopback,
/// not a private or link-local address, not a single-label or `.local`/`.lan`/`.internal`
/// host name (a container or intranet name). Unparsable URLs count as public.
fn public_address(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else { return true };
    match u.host() {
        Some(url::Host::Ipv4(ip)) => !(ip.is_loopback() || ip.is_private() || ip.is_link_local()),
        Some(url::Host::Ipv6(ip)) => {
            let seg = ip.segments()[0];
            !(ip.is_loopback() || (seg & 0xfe00) == 0xfc00 || (seg & 0xffc0) == 0xfe80)
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            !(d == "localhost"
                || !d.contains('.')
                || [".localhost", ".local", ".lan", ".internal", ".home.arpa"].iter().any(|s| d.ends_with(s)))
        }
        None => true,
    }
}

/// Open the index and load the models: the answerer (with `generate`, also the generator).
pub fn build_answerer(
    config: &Config,
    data: &std::path::Path,
    models: &ModelArgs,
    engine: &EngineArgs,
    generate: bool,
) -> Result<Arc<Answerer>> {
    Ok(build(config, data, models, engine, generate)?.0)
}

/// The answerer and, with `generate`, the generator it shares with the rewrite service.
fn build(
    config: &Config,
    data: &std::path::Path,
    models: &ModelArgs,
    engine: &EngineArgs,
    generate: bool,
) -> Result<(Arc<Answerer>, Option<Arc<dyn Generator>>)> {
    let index = Arc::new(crate::open_index(data)?);
    let stats = index.stats()?;
    anyhow::ensure!(
        stats.pages > 0,
        "the index in {} is empty: crawl the town's website first (`lotse crawl <URL> --data {}`)",
        data.display(),
        data.display()
    );
    let embedder = if index.embedding_model()?.is_some() {
        match runtime::load_embedder(models)? {
            Ok(e) => Some(e),
            Err(why) => {
                tracing::warn!("{why}; answering with BM25 retrieval only");
                None
            }
        }
    } else {
        None
    };
    let generator = if generate {
        Some(runtime::load_generator(models, engine)?)
    } else {
        None
    };
    let generation = generator.as_ref().map(|g| {
        let workers = if !engine.engine_pool.is_empty() {
            // one worker per slot of the pool: each waits in the pool for its engine
            engine.engine_pool.iter().map(|e| e.concurrency).sum::<usize>().max(1)
        } else if engine.engine == EngineKind::Local {
            1
        } else {
            4
        };
        Arc::new(GenerationService::new(g.clone(), workers, config.limits.queue))
    });
    let answerer = Arc::new(Answerer::new(
        index,
        embedder,
        generation,
        config.answer_config(),
    ));
    Ok((answerer, generator))
}

/// The rewrite store in the database of a data directory (or `[portal] database`).
pub fn open_rewrite_store(config: &Config, data: &std::path::Path) -> Result<lotse_server::rewrites::RewriteStore> {
    let db = lotse_server::database::open(config.portal.database.as_deref(), data)
        .map_err(anyhow::Error::msg)
        .context("cannot open the database")?;
    lotse_server::rewrites::RewriteStore::new(db).context("cannot open the rewrite store")
}

/// The Einfache-Sprache service over the same index and generator, its worker started.
fn build_simplify(
    config: &Config,
    data: &std::path::Path,
    answerer: &Arc<Answerer>,
    generator: Arc<dyn Generator>,
) -> Result<Arc<SimplifyService>> {
    let glossary = config.simplify.glossary().map_err(anyhow::Error::msg)?;
    let store = Arc::new(open_rewrite_store(config, data)?);
    // unchanged units of a re-crawled page come from the unit cache in the same database
    let rules_only = config.simplify.rules_only().map_err(anyhow::Error::msg)?;
    let simplifier = Arc::new(
        Simplifier::new(generator, glossary)
            .with_rules_only(rules_only)
            .with_legal_texts(config.simplify.legal_texts)
            .with_unit_cache(store.clone()),
    );
    let busy = answerer.generation().map(|g| g.clone() as Arc<dyn ChatBusy>);
    let svc = SimplifyService::new(
        answerer.shared_index(),
        busy,
        simplifier,
        store,
        config.simplify.queue,
        config.simplify.pregenerate,
    );
    svc.start_worker();
    Ok(svc)
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:8080, or `[server] addr`).
    #[arg(long, env = "LOTSE_ADDR")]
    pub addr: Option<SocketAddr>,
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn serve(mut args: ServeArgs) -> Result<()> {
    let mut config = args.config.load()?;
    if let Some(a) = args.addr {
        config.server.addr = a;
    }
    apply_config(&mut args.models, &mut args.engine, &config);
    let data = args.config.data_dir(&config);
    let rt = runtime()?;
    rt.block_on(async move {
        let addr = config.server.addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let internal = match config.server.internal_addr {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("cannot listen on {a} ([server] internal_addr)"))?,
            ),
            None => None,
        };
        let state = AppState::new(config.clone());
        if config.feedback.enabled {
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create the data directory {}", data.display()))?;
            let db = lotse_server::database::open(config.portal.database.as_deref(), &data)
                .map_err(anyhow::Error::msg)
                .context("cannot open the database of the ratings")?;
            state.set_feedback(Arc::new(lotse_server::feedback::FeedbackStore::new(db)));
        }
        if config.portal.enabled {
            let portal = lotse_server::portal::open(&config, &data)
                .map_err(anyhow::Error::msg)
                .context("cannot open the staff portal ([portal] enabled = false switches it off)")?;
            state.set_portal(Arc::new(portal));
        }
        if !state.widget_built() {
            tracing::info!("no widget at /widget/lotse.js: build it with scripts/build-widget.sh (or set [widget] dir)");
        }
        if let Some(i) = &internal {
            tracing::info!(
                "staff and operations routes (/portal, /v1, /metrics, /openapi.json) on http://{}; http://{local} serves the citizens' routes only",
                i.local_addr()?
            );
        }
        let server = tokio::spawn(lotse_server::serve_split(
            listener,
            internal,
            state.clone(),
            lotse_server::shutdown_signal(),
        ));
        tracing::info!("listening on http://{local} (GET /ready says when the models are loaded)");
        let (models, engine) = (args.models.clone(), args.engine.clone());
        let portal = state.portal();
        let loaded = tokio::task::spawn_blocking(move || {
            let (a, g) = build(&config, &data, &models, &engine, true)?;
            if let Some(p) = &portal {
                // before the first upload can arrive (uploads wait for the answerer)
                // a failure (the index locked by a crawl, one damaged original) is logged and
                // the server runs on: the citizens' chat does not depend on it
                if let Err(e) = lotse_server::portal::reconcile(p, &a) {
                    tracing::error!(error = %e, "cannot reconcile the index with the portal's uploads; run `lotse serve` again when the index is free");
                }
            }
            let s = match g {
                Some(g) if config.simplify.enabled => {
                    // a local model runs one generation at a time: rewrites give way to
                    // citizens' and staff answers at the next token (a remote engine runs
                    // several at once and needs no such priority)
                    let g = match a.generation() {
                        Some(service) if engine.engine == EngineKind::Local => service.yielding(),
                        _ => g,
                    };
                    Some(build_simplify(&config, &data, &a, g)?)
                }
                _ => None,
            };
            Ok::<_, anyhow::Error>((a, s))
        })
        .await?;
        match loaded {
            Ok((a, s)) => {
                tracing::info!(model = %a.model_id(), town = %a.town(), "ready: answering at http://{local}/api/v1/chat");
                if let (Some(p), Some(g)) = (state.portal(), a.generation()) {
                    let provider = args.engine.engine_url.as_deref().filter(|_| g.info().external);
                    if let Err(e) = lotse_server::portal::seed_register(&p, g.info(), provider, &state.config.portal.responsible) {
                        tracing::warn!(error = %e, "cannot seed the AI register");
                    }
                }
                state.set_answerer(a);
                if let Some(s) = s {
                    state.set_simplify(s);
                }
            }
            Err(e) => {
                server.abort();
                return Err(e);
            }
        }
        server.await??;
        // a graceful stop hands the rewrite backlog on at once (its lease), not after it expires
        if let Some(s) = state.simplify() {
            s.stop();
        }
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct AskArgs {
    /// The question, as a citizen would ask it.
    pub question: String,
    /// Answer language (de, en, tr, uk, ar); detected when absent.
    #[arg(long)]
    pub lang: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print the answer as JSON, as the API returns it.
    #[arg(long)]
    pub json: bool,
    /// Also print the evidence (passages given to the model) and the gate's figures to stderr.
    #[arg(long)]
    pub explain: bool,
}

pub fn ask(mut args: AskArgs) -> Result<()> {
    let config = args.config.load()?;
    apply_config(&mut args.models, &mut args.engine, &config);
    let data = args.config.data_dir(&config);
    let answerer = build_answerer(&config, &data, &args.models, &args.engine, true)?;
    let req = AnswerRequest {
        question: args.question.clone(),
        history: Vec::new(),
        lang: args.lang.clone(),
    };
    if args.explain {
        let p = answerer.prepare(&req).map_err(|e| anyhow::anyhow!("{e}"))?;
        eprintln!(
            "language {}, coverage {:.2} of {} content words, best cosine {}, gate: {}",
            p.lang.code(),
            p.strength.coverage,
            p.strength.content_words,
            p.strength.dense.map_or("-".into(), |d| format!("{d:.3}")),
            if p.weak_evidence { "refuse" } else { "answer" }
        );
        for m in lotse_answer::prompt::messages(&p, answerer.town()) {
            eprintln!("--- {:?}\n{}", m.role, m.content);
        }
        eprintln!("---");
    }
    let answer = runtime()?
        .block_on(answerer.answer(&req))
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.message_de()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!("{}", answer.answer);
    let cited: Vec<_> = answer.sources.iter().filter(|s| s.cited).collect();
    if !cited.is_empty() {
        println!("\nQuellen:");
        for s in cited {
            println!("[{}] {}: {}", s.n, s.title, s.deep_link);
        }
    }
    println!("\n({} mit {}) {}", answer.label, answer.model, answer.hint);
    if answer.flagged {
        println!("Hinweis: Nicht jede Aussage ließ sich einer Quelle zuordnen.");
    }
    eprintln!(
        "retrieval {} ms, first token {} ms, total {} ms, {} prompt + {} completion tokens",
        answer.timings.retrieval_ms,
        answer
            .timings
            .first_token_ms
            .map_or("-".to_string(), |t| t.to_string()),
        answer.timings.total_ms,
        answer.timings.prompt_tokens,
        answer.timings.completion_tokens
    );
    Ok(())
}

#[cfg(test)]
mod external_tests {
    use super::public_address;

    #[test]
    fn hosted_engines_count_as_external_unless_configured() {
        for url in ["https://api.openai.com/v1", "http://203.0.113.7:8000/v1", "https://llm.example.org/v1"] {
            assert!(public_address(url), "{url}");
        }
        for url in ["http://127.0.0.1:8080/v1", "http://localhost:11434/v1", "http://10.1.2.3/v1", "http://192.168.0.5/v1", "http://vllm:8000/v1", "http://gpu.rathaus.internal/v1", "http://[::1]:8000/v1", "http://[fd00::5]/v1"] {
            assert!(!public_address(url), "{url}");
        }
    }
}

#[cfg(test)]
mod pool_tests {
    use super::*;
    use lotse_server::config::PoolEngine;

    fn entry(port: u16, external: bool) -> PoolEngine {
        PoolEngine {
            url: format!("http://127.0.0.1:{port}/v1"),
            model: "qwen2.5-7b-instruct".into(),
            api_key_env: None,
            external,
            concurrency: 2,
            context: Some(4096),
        }
    }

    fn args() -> (ModelArgs, EngineArgs) {
        let models = ModelArgs { manifests: "models".into(), cache: "models/cache".into() };
        let engine = EngineArgs {
            engine: EngineKind::Local,
            engine_url: None,
            engine_model: None,
            engine_api_key_env: None,
            engine_external: false,
            engine_context: 4096,
            engine_pool: Vec::new(),
            engine_pool_options: Default::default(),
        };
        (models, engine)
    }

    #[test]
    fn pool_entries_of_the_configuration_become_the_generator() {
        let mut c = Config::default();
        c.engine.pool = vec![entry(9, false), entry(10, false)];
        let (mut models, mut engine) = args();
        apply_config(&mut models, &mut engine, &c);
        assert_eq!(engine.engine, EngineKind::Openai);
        assert_eq!(engine.engine_pool.len(), 2);
        assert_eq!(engine.engine_pool[1].concurrency, 2);
        let g = runtime::load_generator(&models, &engine).unwrap();
        assert!(!g.info().external);
        assert_eq!(g.info().context_len, 4096);

        // an external flag over internal entries, a URL besides the pool: refused
        let mut e = engine.clone();
        e.engine_external = true;
        let err = runtime::load_generator(&models, &e).err().unwrap().to_string();
        assert!(err.contains("external"), "{err}");
        let mut e = engine.clone();
        e.engine_url = Some("http://127.0.0.1:11/v1".into());
        let err = runtime::load_generator(&models, &e).err().unwrap().to_string();
        assert!(err.contains("not both"), "{err}");
        // mixed flags (past the configuration check): the pool refuses them too
        let mut e = engine.clone();
        e.engine_pool[1].remote.external = true;
        let err = format!("{:#}", runtime::load_generator(&models, &e).err().unwrap());
        assert!(err.contains("all be internal or all be external"), "{err}");
    }
}
