//! Loading the configured models for CLI commands: which manifest, which file in the cache,
//! and the adapter that lets the index call the embedder.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use lotse_index::{SearchIndex, SearchMode};
use lotse_inference::generate::{LoadOptions, LocalGenerator};
use lotse_inference::manifest::{self, ModelRole};
use lotse_inference::pool::{EnginePool, PoolMemberConfig, PoolOptions};
use lotse_inference::remote::{RemoteConfig, RemoteGenerator};
use lotse_inference::{EmbedKind, Embedder, Generator, InferenceError};

/// Where models are described and stored (`--models`, `--model-cache`, or `LOTSE_*`).
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Directory with the model manifests (*.toml); the built-in manifests when it does not exist.
    #[arg(long = "models", env = "LOTSE_MODELS_DIR", default_value = "models")]
    pub manifests: PathBuf,
    /// Model cache directory.
    #[arg(
        long = "model-cache",
        env = "LOTSE_MODEL_CACHE",
        default_value = "models/cache"
    )]
    pub cache: PathBuf,
}

/// The default model of a role.
pub fn default_model(args: &ModelArgs, role: ModelRole) -> Result<manifest::Manifest> {
    let ms = manifest::load_dir_or_builtin(&args.manifests).with_context(|| {
        format!(
            "cannot read model manifests in {}",
            args.manifests.display()
        )
    })?;
    ms.into_iter()
        .find(|m| m.role == role && m.default)
        .with_context(|| format!("no default {role:?} model in {}", args.manifests.display()))
}

/// Load the default embedder, or `Ok(Err(reason))` when it is not in the cache (callers fall
/// back to BM25). A damaged model file is an error.
pub fn load_embedder(args: &ModelArgs) -> Result<Result<Arc<dyn Embedder>, String>> {
    let m = default_model(args, ModelRole::Embedder)?;
    let a = match m.locate(&args.cache) {
        Ok(a) => a,
        Err(InferenceError::ModelMissing { .. }) => {
            return Ok(Err(format!(
                "embedding model {} is not in {}; fetch it with `{}`",
                m.id,
                args.cache.display(),
                m.fetch_command()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let e = match a.format.as_str() {
        "e5s1" => lotse_inference::embed::E5Embedder::load_e5s1(&a.path),
        "hub-dir" => lotse_inference::embed::E5Embedder::load_hub_dir(&a.path),
        other => bail!("embedding model {} has unsupported format {other:?}", m.id),
    }
    .with_context(|| format!("cannot load embedding model {}", m.id))?
    // one model id for both forms: their vectors agree (cosine > 0.99)
    .with_model_id(m.id.clone());
    Ok(Ok(Arc::new(e)))
}

/// Which engine generates text: the local GGUF model (default) or an OpenAI-compatible
/// server. Flags or `LOTSE_ENGINE*` environment variables.
#[derive(clap::Args, Clone)]
pub struct EngineArgs {
    /// `local` (the default generator from the model cache) or `openai` (a chat-completions
    /// server such as vLLM, llama.cpp's server or Ollama).
    #[arg(long, env = "LOTSE_ENGINE", value_enum, default_value = "local")]
    pub engine: EngineKind,
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.
    #[arg(long, env = "LOTSE_ENGINE_URL")]
    pub engine_url: Option<String>,
    /// Model name on that server.
    #[arg(long, env = "LOTSE_ENGINE_MODEL")]
    pub engine_model: Option<String>,
    /// Name of the environment variable that holds the API key.
    #[arg(long, env = "LOTSE_ENGINE_API_KEY_ENV")]
    pub engine_api_key_env: Option<String>,
    /// The server is outside the town's own infrastructure (a hosted service).
    #[arg(long, env = "LOTSE_ENGINE_EXTERNAL")]
    pub engine_external: bool,
    /// Context length of the engine in tokens.
    #[arg(long, env = "LOTSE_ENGINE_CONTEXT", default_value_t = 4096)]
    pub engine_context: usize,
    /// Several OpenAI-compatible engines as one (`[[engine.pool]]` of the configuration).
    #[arg(skip)]
    pub engine_pool: Vec<PoolMemberConfig>,
    /// The pool's breaker, slot wait and health checks (`[engine.failover]`).
    #[arg(skip)]
    pub engine_pool_options: PoolOptions,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Local,
    Openai,
}

/// Load the configured generator: the local default model (warmed up) or a remote engine.
pub fn load_generator(models: &ModelArgs, engine: &EngineArgs) -> Result<Arc<dyn Generator>> {
    load_generator_with(models, engine, None)
}

/// [`load_generator`] with `draft_tokens` drafted tokens per pass for the local model (its
/// default when `None`).
pub fn load_generator_with(
    models: &ModelArgs,
    engine: &EngineArgs,
    draft_tokens: Option<usize>,
) -> Result<Arc<dyn Generator>> {
    if !engine.engine_pool.is_empty() {
        if engine.engine_url.is_some() {
            bail!("set either [engine] url (or --engine-url) or [[engine.pool]] entries, not both");
        }
        if engine.engine_external && engine.engine_pool.iter().any(|e| !e.remote.external) {
            bail!("the engine is set to external (--engine-external, LOTSE_ENGINE_EXTERNAL or [engine] external = true) but [[engine.pool]] has engines with external = false; set each engine's external flag in [[engine.pool]]");
        }
        let pool = EnginePool::remote(&engine.engine_pool, engine.engine_pool_options.clone())
            .context("cannot set up the engine pool")?;
        return Ok(Arc::new(pool));
    }
    match engine.engine {
        EngineKind::Local => {
            let m = default_model(models, ModelRole::Generator)?;
            let a = m.locate(&models.cache)?;
            let g = LocalGenerator::load(
                &a.path,
                LoadOptions {
                    max_context: engine.engine_context,
                    model_id: Some(m.id.clone()),
                    draft_tokens: draft_tokens
                        .unwrap_or(lotse_inference::generate::DEFAULT_DRAFT_TOKENS),
                    ..LoadOptions::default()
                },
            )
            .with_context(|| format!("cannot load generator {}", m.id))?;
            Ok(Arc::new(g))
        }
        EngineKind::Openai => {
            let config = RemoteConfig {
                base_url: engine
                    .engine_url
                    .clone()
                    .context("--engine openai needs --engine-url (or LOTSE_ENGINE_URL)")?,
                model: engine
                    .engine_model
                    .clone()
                    .context("--engine openai needs --engine-model (or LOTSE_ENGINE_MODEL)")?,
                api_key_env: engine.engine_api_key_env.clone(),
                external: engine.engine_external,
                context_len: engine.engine_context,
                timeout_secs: 120,
            };
            Ok(Arc::new(RemoteGenerator::new(&config)?))
        }
    }
}

/// The index's view of an embedder: passages with the `passage: ` prefix.
pub use lotse_answer::PassageEmbedder as IndexEmbedder;

/// `--mode` of search and eval; unset means hybrid when the index has vectors and the
/// embedder is available, else BM25.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    Bm25,
    Dense,
    Hybrid,
}

/// A ready-to-search mode: the mode and, when needed, the query embedder.
pub struct Retrieval {
    pub mode: SearchMode,
    pub embedder: Option<Arc<dyn Embedder>>,
}

impl Retrieval {
    pub fn choose(
        index: &SearchIndex,
        mode: Option<ModeArg>,
        models: &ModelArgs,
    ) -> Result<Retrieval> {
        let mode = match mode {
            Some(ModeArg::Bm25) => SearchMode::Bm25,
            Some(ModeArg::Dense) => SearchMode::Dense,
            Some(ModeArg::Hybrid) => SearchMode::Hybrid,
            None => {
                if index.embedding_model()?.is_none() {
                    SearchMode::Bm25
                } else {
                    match load_embedder(models)? {
                        Ok(e) => {
                            return Ok(Retrieval {
                                mode: SearchMode::Hybrid,
                                embedder: Some(e),
                            });
                        }
                        Err(why) => {
                            tracing::warn!("{why}; searching with BM25 only");
                            SearchMode::Bm25
                        }
                    }
                }
            }
        };
        let embedder = if mode == SearchMode::Bm25 {
            None
        } else {
            Some(load_embedder(models)?.map_err(anyhow::Error::msg)?)
        };
        Ok(Retrieval { mode, embedder })
    }

    /// Embed the query when the mode needs it.
    pub fn query_vector(&self, query: &str) -> Result<Option<Vec<f32>>> {
        match &self.embedder {
            Some(e) if self.mode != SearchMode::Bm25 => {
                let mut v = e.embed(&[query], EmbedKind::Query)?;
                Ok(v.pop())
            }
            _ => Ok(None),
        }
    }

    pub fn model_id(&self) -> &str {
        self.embedder.as_ref().map_or("", |e| e.model_id())
    }
}
