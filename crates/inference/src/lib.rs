//! Lotse's models: a local generator and embedder on the CPU with candle, OpenAI-compatible
//! remote engines behind the same trait, and the model manifests with their download sources.
//!
//! Design decision: the model traits are synchronous and run on a dedicated thread pool
//! (`generate::GenerationService`) behind a bounded queue. Async callers never block on model
//! maths, and overload is refused early instead of queuing without limit. This is the only
//! crate that imports candle.

pub mod embed;
pub mod generate;
mod kernels;
pub mod manifest;
pub mod pool;
pub mod remote;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// Errors of the inference crate.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("model file {path} is missing; fetch it with `{fetch_command}`")]
    ModelMissing {
        path: PathBuf,
        fetch_command: String,
    },
    #[error(
        "model file {file} has sha256 {actual}, expected {expected}: the file is damaged or altered; delete it and fetch it again"
    )]
    HashMismatch {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model format: {0}")]
    Format(String),
    #[error("unsupported model architecture {0:?}")]
    Architecture(String),
    #[error("candle: {0}")]
    Candle(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("the model is busy; try again shortly")]
    Busy,
    #[error("generation was cancelled")]
    Cancelled,
    #[error("remote engine: {0}")]
    Remote(String),
    /// The engine answered but refused this request as malformed or too large (a 4xx other
    /// than 401/403/404/408/429, e.g. 400 "context length exceeded"): the same request
    /// would fail on any engine, and the engine itself is healthy.
    #[error("remote engine rejected the request: {0}")]
    Rejected(String),
    #[error("io at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<candle_core::Error> for InferenceError {
    fn from(e: candle_core::Error) -> Self {
        InferenceError::Candle(e.to_string())
    }
}

pub type Result<T, E = InferenceError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Sampling and stopping. `temperature == 0` means greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    /// Generation stops before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// Background work (set by [`generate::Yielding`]): a local model runs its prompt in
    /// short passes, so that a cancellation takes effect soon, and keeps its K/V cache apart
    /// from the answers' one, so that the prefix answers share stays cached.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
}

impl Default for GenerationParams {
    fn default() -> Self {
        GenerationParams {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 0.9,
            seed: 42,
            stop: Vec::new(),
            background: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn.
    Eos,
    StopSequence,
    MaxTokens,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub stop_reason: StopReason,
    /// The prompt was longer than the context allows and was cut (see the generator's policy).
    pub prompt_truncated: bool,
    /// Prompt tokens whose keys and values came from the cache (the prefix shared with the
    /// previous prompt: the rules every answer starts with); 0 where the engine does not say.
    #[serde(default)]
    pub cached_prompt_tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// True when text leaves the town's servers (a remote service). Policy code keeps private
    /// collections and personal data away from external models.
    pub external: bool,
    /// Context length in tokens (prompt plus completion).
    pub context_len: usize,
}

/// Shared flag to stop a running generation from another thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A text generator: a local GGUF model or a remote OpenAI-compatible engine.
pub trait Generator: Send + Sync {
    fn info(&self) -> &ModelInfo;
    /// Generate a reply to `messages`, calling `on_token` with each new piece of text as it is
    /// produced. Blocking: run it on the generation pool, not on an async executor.
    fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation>;
    /// The members of an engine pool and their state, in configuration order (read-only, for
    /// metrics); `None` for a single engine.
    fn pool_members(&self) -> Option<Vec<pool::MemberStatus>> {
        None
    }
}

/// What a text is, for embedders that embed questions and passages differently (E5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedKind {
    Query,
    Passage,
}

/// A sentence embedder producing L2-normalised vectors.
pub trait Embedder: Send + Sync {
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    /// Embed a batch; one vector per text, in order. Blocking.
    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>>;
}

/// Threads candle uses for CPU maths (one per core unless `RAYON_NUM_THREADS` is set).
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads()
}
