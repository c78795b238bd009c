//! The local generator: a GGUF model on the CPU with candle, its tokenizer and chat template
//! from the same file, greedy or top-p sampling, streaming with stop strings.
//!
//! One loaded model serves one generation at a time: the K/V cache lives behind a mutex, and
//! a `LocalGenerator` is shared as `Arc<dyn Generator>` (normally by a
//! [`GenerationService`](super::GenerationService)). Tokenising and fitting the prompt happen
//! outside the lock.
//!
//! Prompts longer than the context are fitted by the policy in [`fit`](super::fit): oldest
//! history first, then the middle of the longest message, then fewer new tokens; see
//! [`Generation::prompt_truncated`].

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};
use tokenizers::Tokenizer;

use super::fit::{FittedPrompt, PromptCodec, fit_prompt};
use super::qwen2::{KvSlot, Qwen2, Qwen2Config};
use super::stream::{StopMatcher, TextStream};
use super::template::ChatTemplate;
use crate::kernels::Kernels;
use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result, StopReason,
};

/// Command that fetches the default models (named in "model missing" errors).
const FETCH_COMMAND: &str = "lotse models fetch";

/// Tokens that end a turn in common chat models, besides the file's own EOS id.
const END_OF_TURN_TOKENS: [&str; 4] =
    ["<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>"];

/// Warm-up prompt length: long enough for the prompt-sized code paths (and, for the candle
/// backends, their repacked weights) to be set up at load rather than on the first request.
const WARM_UP_TOKENS: usize = 40;
/// Prompt tokens per forward pass of a background generation: an answer that arrives during
/// its prompt waits for at most one such pass (about 0.5 s for the default model on 2 cores).
const BACKGROUND_PREFILL_CHUNK: usize = 48;

/// How to load a GGUF model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Upper bound for the context in tokens (prompt plus completion). The model's own limit
    /// (`<arch>.context_length`) applies too. The K/V cache grows with use up to this size
    /// (Qwen2.5-1.5B: 56 KB per token in f32).
    pub max_context: usize,
    /// Prompt tokens per forward pass; bounds activation memory for long prompts.
    pub prefill_chunk: usize,
    /// Run a short prompt and one decode step at load, so first-use costs (candle's weight
    /// repacking for the candle backends; page faults) fall at load, not on the first request.
    pub warm_up: bool,
    /// Model id reported in [`ModelInfo`]; the file name without extension when `None`.
    pub model_id: Option<String>,
    /// For `qwen2` files, use `candle_transformers`' `quantized_qwen2` instead of Lotse's own
    /// forward pass (Lotse's kernels, quantized embedding). For comparison and measurement.
    pub candle_qwen2: bool,
    /// Greedy decoding checks up to this many tokens drafted from the prompt in one forward
    /// pass ([`super::lookup`]; Lotse's own Qwen2 forward only). 0 decodes one token a pass.
    pub draft_tokens: usize,
    /// Which matrix kernels Lotse's Qwen2 uses (the best for this CPU by default).
    pub kernels: Kernels,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_context: 4096,
            prefill_chunk: 512,
            warm_up: true,
            model_id: None,
            candle_qwen2: false,
            draft_tokens: DEFAULT_DRAFT_TOKENS,
            kernels: Kernels::Auto,
        }
    }
}

/// Drafted tokens checked per pass by default (measured: see ARCHITECTURE.md).
pub const DEFAULT_DRAFT_TOKENS: usize = 3;

/// What [`LocalGenerator::bench_decode`] measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeRun {
    /// The prompt pass (the first token's logits ready).
    pub prompt: Duration,
    /// Generating the tokens after the first.
    pub decode: Duration,
    /// Tokens generated (the first included).
    pub tokens: usize,
    /// Forward passes the tokens took (fewer than `tokens` when drafts were accepted).
    pub passes: usize,
    /// Tokens drafted, and how many of them the model confirmed.
    pub drafted: usize,
    pub accepted: usize,
}

impl DecodeRun {
    /// Generated tokens per second after the first (llama-bench's `tg` figure).
    pub fn tokens_per_s(&self) -> f64 {
        (self.tokens.saturating_sub(1)) as f64 / self.decode.as_secs_f64().max(1e-9)
    }
}

/// The network behind the generator, by `general.architecture`.
enum Backend {
    Qwen2(Box<Qwen2>),
    CandleQwen2(Box<quantized_qwen2::ModelWeights>),
    Qwen3(Box<quantized_qwen3::ModelWeights>),
    Llama(Box<quantized_llama::ModelWeights>),
    Gemma3(Box<quantized_gemma3::ModelWeights>),
}

impl Backend {
    /// Logits `(vocab,)` of the last of `tokens`, placed at positions `pos..`.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let input = || Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0);
        let logits = match self {
            Backend::Qwen2(m) => return m.forward(tokens, pos),
            Backend::CandleQwen2(m) => m.forward(&input()?, pos)?,
            Backend::Qwen3(m) => m.forward(&input()?, pos)?,
            Backend::Llama(m) => m.forward(&input()?, pos)?,
            Backend::Gemma3(m) => m.forward(&input()?, pos)?,
        };
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }

    /// Logits `(tokens.len(), vocab)` of every one of `tokens`, for backends that can check
    /// drafted tokens (Lotse's Qwen2); `None` for the others.
    fn forward_all(&mut self, tokens: &[u32], pos: usize) -> Option<Result<Tensor>> {
        match self {
            Backend::Qwen2(m) => Some(m.forward_all(tokens, pos)),
            _ => None,
        }
    }

    /// Keep the K/V of the first `len` positions (after rejected drafts; Qwen2 only).
    fn truncate(&mut self, len: usize) {
        if let Backend::Qwen2(m) = self {
            m.truncate(len);
        }
    }

    /// Largest prompt piece per forward pass. candle's Gemma 3 cannot continue a prompt in
    /// a second multi-token pass (its mask concatenation fails on mixed dtypes), so it gets
    /// the whole prompt at once.
    fn prefill_chunk(&self, configured: usize) -> usize {
        match self {
            Backend::Gemma3(_) => usize::MAX,
            _ => configured,
        }
    }

    /// Prepare for `prompt` and return the position to run it from: Lotse's Qwen2 keeps the
    /// K/V of the prefix it shares with the previous sequence; the candle backends start over.
    fn resume(&mut self, prompt: &[u32], background: bool) -> usize {
        match self {
            Backend::Qwen2(m) => {
                m.select(if background {
                    KvSlot::Background
                } else {
                    KvSlot::Foreground
                });
                m.reuse_prefix(prompt)
            }
            _ => {
                self.reset();
                0
            }
        }
    }

    /// Start a new sequence. (Gemma 3 and Llama also reset when a forward starts at 0.)
    fn reset(&mut self) {
        match self {
            Backend::Qwen2(m) => m.clear_kv_cache(),
            Backend::CandleQwen2(m) => m.clear_kv_cache(),
            Backend::Qwen3(m) => m.clear_kv_cache(),
            Backend::Llama(m) => m.clear_kv_cache(),
            Backend::Gemma3(_) => {}
        }
    }
}

/// A GGUF chat model on the CPU.
///
/// Prompt-too-long policy: when the prompt plus the completion budget
/// (`min(max_tokens, context / 2)`) exceeds the context, `generate` (1) drops the oldest
/// messages that are neither system messages nor the last user message (or later), (2) cuts
/// the middle out of the longest remaining message by tokens, marked `[…]` (repeated with the
/// then-longest message if needed), (3) lowers `max_tokens` to what the context has left (at
/// least 1), and (4) as a last resort keeps only the prompt's last `context - 1` tokens.
/// Steps 1, 2 and 4 set [`Generation::prompt_truncated`]; none of them fails.
pub struct LocalGenerator {
    info: ModelInfo,
    architecture: String,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    eos_ids: Vec<u32>,
    prefill_chunk: usize,
    draft_tokens: usize,
    /// Tokens drafted from the prompt and those of them the model confirmed, since load.
    drafted: AtomicUsize,
    accepted: AtomicUsize,
    load_time: Duration,
    backend: Mutex<Backend>,
}

impl std::fmt::Debug for LocalGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalGenerator")
            .field("info", &self.info)
            .field("architecture", &self.architecture)
            .field("eos_ids", &self.eos_ids)
            .finish_non_exhaustive()
    }
}

fn format_err(path: &Path, what: impl std::fmt::Display) -> InferenceError {
    InferenceError::Format(format!("{}: {what}", path.display()))
}

fn md_str<'a>(ct: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    ct.metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

/// A non-negative integer metadata value of any integer type.
fn md_usize(ct: &gguf_file::Content, key: &str) -> Option<usize> {
    match ct.metadata.get(key)? {
        Value::U8(v) => Some(usize::from(*v)),
        Value::U16(v) => Some(usize::from(*v)),
        Value::U32(v) => usize::try_from(*v).ok(),
        Value::U64(v) => usize::try_from(*v).ok(),
        Value::I8(v) => usize::try_from(*v).ok(),
        Value::I16(v) => usize::try_from(*v).ok(),
        Value::I32(v) => usize::try_from(*v).ok(),
        Value::I64(v) => usize::try_from(*v).ok(),
        _ => None,
    }
}

fn md_f32(ct: &gguf_file::Content, key: &str) -> Option<f32> {
    match ct.metadata.get(key)? {
        Value::F32(v) => Some(*v),
        Value::F64(v) => Some(*v as f32),
        _ => None,
    }
}

/// The metadata prefix of the hyper-parameters (`gemma3` files may use older prefixes).
fn md_prefix(ct: &gguf_file::Content, arch: &str) -> String {
    if arch == "gemma3" {
        for p in ["gemma3", "gemma2", "gemma", "gemma-embedding"] {
            if ct
                .metadata
                .contains_key(&format!("{p}.attention.head_count"))
            {
                return p.to_string();
            }
        }
    }
    arch.to_string()
}

/// Checks the hyper-parameters the candle models divide by or allocate from, so a damaged
/// file is an error here instead of a panic inside candle.
fn check_hyper_parameters(ct: &gguf_file::Content, prefix: &str) -> Result<(), String> {
    let get = |k: &str| {
        md_usize(ct, &format!("{prefix}.{k}")).ok_or_else(|| format!("missing {prefix}.{k}"))
    };
    let heads = get("attention.head_count")?;
    let kv_heads = get("attention.head_count_kv").unwrap_or(heads);
    let hidden = get("embedding_length")?;
    let layers = get("block_count")?;
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(format!("bad head counts {heads}/{kv_heads}"));
    }
    if hidden == 0 || hidden % heads != 0 || (hidden / heads) % 2 != 0 {
        return Err(format!(
            "embedding length {hidden} does not fit {heads} heads"
        ));
    }
    if layers == 0 || layers > 1024 {
        return Err(format!("bad block count {layers}"));
    }
    for key in [
        "attention.key_length",
        "attention.value_length",
        "rope.dimension_count",
    ] {
        if md_usize(ct, &format!("{prefix}.{key}")) == Some(0) {
            return Err(format!("{prefix}.{key} is 0"));
        }
    }
    Ok(())
}

fn token_string(tokenizer: &Tokenizer, ct: &gguf_file::Content, key: &str) -> String {
    md_usize(ct, key)
        .and_then(|id| u32::try_from(id).ok())
        .and_then(|id| tokenizer.id_to_token(id))
        .unwrap_or_default()
}

/// Ids that end generation: the file's EOS (and EOT) ids plus the usual end-of-turn tokens
/// present in the vocabulary.
fn end_ids(tokenizer: &Tokenizer, ct: &gguf_file::Content) -> Vec<u32> {
    let vocab = tokenizer.get_vocab_size(true);
    let mut ids: Vec<u32> = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
        .iter()
        .filter_map(|k| md_usize(ct, k))
        .filter(|&id| id < vocab)
        .filter_map(|id| u32::try_from(id).ok())
        .collect();
    ids.extend(
        END_OF_TURN_TOKENS
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t)),
    );
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Runs `f`, turning a panic inside candle (on data it did not validate) into an error.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(res) => res,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(InferenceError::Format(format!("{what}: {msg}")))
        }
    }
}

fn load_backend<R: Read + Seek>(
    ct: gguf_file::Content,
    reader: &mut R,
    arch: &str,
    context_len: usize,
    opts: &LoadOptions,
) -> Result<Backend> {
    let device = Device::Cpu;
    Ok(match arch {
        "qwen2" if !opts.candle_qwen2 => {
            let cfg = Qwen2Config {
                n_layer: md_usize(&ct, "qwen2.block_count").unwrap_or(0),
                hidden: md_usize(&ct, "qwen2.embedding_length").unwrap_or(0),
                n_head: md_usize(&ct, "qwen2.attention.head_count").unwrap_or(0),
                n_kv_head: md_usize(&ct, "qwen2.attention.head_count_kv").unwrap_or(0),
                rms_eps: md_f32(&ct, "qwen2.attention.layer_norm_rms_epsilon")
                    .map(f64::from)
                    .unwrap_or(1e-6),
                rope_theta: md_f32(&ct, "qwen2.rope.freq_base").unwrap_or(10_000.0),
            };
            Backend::Qwen2(Box::new(Qwen2::load(
                &ct,
                reader,
                cfg,
                context_len,
                &device,
                opts.kernels.isa(),
            )?))
        }
        "qwen2" => Backend::CandleQwen2(Box::new(quantized_qwen2::ModelWeights::from_gguf(
            ct, reader, &device,
        )?)),
        "qwen3" => Backend::Qwen3(Box::new(quantized_qwen3::ModelWeights::from_gguf(
            ct, reader, &device,
        )?)),
        "llama" => Backend::Llama(Box::new(quantized_llama::ModelWeights::from_gguf(
            ct, reader, &device,
        )?)),
        "gemma3" => Backend::Gemma3(Box::new(quantized_gemma3::ModelWeights::from_gguf(
            ct, reader, &device,
        )?)),
        other => return Err(InferenceError::Architecture(other.to_string())),
    })
}

impl LocalGenerator {
    /// Load a GGUF chat model (architectures `qwen2`, `qwen3`, `llama`, `gemma3`) with its
    /// tokenizer and chat template, and warm it up (see [`LoadOptions`]).
    pub fn load(path: &Path, opts: LoadOptions) -> Result<LocalGenerator> {
        let started = Instant::now();
        let file = File::open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                InferenceError::ModelMissing {
                    path: path.to_path_buf(),
                    fetch_command: FETCH_COMMAND.to_string(),
                }
            } else {
                InferenceError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let mut reader = BufReader::new(file);
        let ct = gguf_file::Content::read(&mut reader).map_err(|e| format_err(path, e))?;
        let arch = md_str(&ct, "general.architecture")
            .ok_or_else(|| format_err(path, "no general.architecture"))?
            .to_string();
        if !matches!(arch.as_str(), "qwen2" | "qwen3" | "llama" | "gemma3") {
            return Err(InferenceError::Architecture(arch));
        }
        let prefix = md_prefix(&ct, &arch);
        check_hyper_parameters(&ct, &prefix).map_err(|e| format_err(path, e))?;

        let tokenizer = no_panic("tokenizer", || {
            Tokenizer::from_gguf(&ct).map_err(|e| InferenceError::Tokenizer(e.to_string()))
        })?;
        let template = ChatTemplate::new(
            md_str(&ct, "tokenizer.chat_template"),
            token_string(&tokenizer, &ct, "tokenizer.ggml.bos_token_id"),
            token_string(&tokenizer, &ct, "tokenizer.ggml.eos_token_id"),
        )?;
        let eos_ids = end_ids(&tokenizer, &ct);

        let model_context = md_usize(&ct, &format!("{prefix}.context_length")).unwrap_or(2048);
        // candle's llama builds its rotary tables for a fixed maximum.
        let arch_limit = if arch == "llama" {
            quantized_llama::MAX_SEQ_LEN
        } else {
            usize::MAX
        };
        let context_len = model_context.min(opts.max_context).min(arch_limit).max(2);

        let backend = no_panic("model weights", || {
            load_backend(ct, &mut reader, &arch, context_len, &opts)
        })
        .map_err(|e| match e {
            InferenceError::Candle(msg) => format_err(path, msg),
            other => other,
        })?;

        let id = opts.model_id.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local-gguf".to_string())
        });
        let mut generator = LocalGenerator {
            info: ModelInfo {
                id,
                external: false,
                context_len,
            },
            architecture: arch,
            tokenizer,
            template,
            eos_ids,
            prefill_chunk: opts.prefill_chunk.max(1),
            draft_tokens: opts.draft_tokens,
            drafted: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            load_time: Duration::ZERO,
            backend: Mutex::new(backend),
        };
        if opts.warm_up {
            generator.warm_up()?;
        }
        generator.load_time = started.elapsed();
        tracing::info!(
            model = %generator.info.id,
            architecture = %generator.architecture,
            context = context_len,
            load_ms = generator.load_time.as_millis() as u64,
            "generator loaded"
        );
        Ok(generator)
    }

    /// One prompt-sized pass and one decode step, so lazy weight repacking happens now.
    fn warm_up(&self) -> Result<()> {
        let n = WARM_UP_TOKENS.min(self.info.context_len - 1);
        let vocab = self.tokenizer.get_vocab_size(false).max(1) as u32;
        let tokens: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % vocab).collect();
        let mut backend = self.lock();
        let res = no_panic("warm-up", || {
            backend.reset();
            backend.forward(&tokens, 0)?;
            backend.forward(&tokens[..1], n)?;
            Ok(())
        });
        backend.reset();
        res
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backend> {
        // A panic during a forward pass leaves only the K/V cache in doubt: start it over.
        self.backend.lock().unwrap_or_else(|poisoned| {
            self.backend.clear_poison();
            let mut backend = PoisonError::into_inner(poisoned);
            backend.reset();
            backend
        })
    }

    /// `general.architecture` of the file.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Time `load` took, warm-up included.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Token ids that end generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// `text` as tokens (no special tokens added).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_text(text)
    }

    /// Tokens drafted from prompts since load, and how many of them the model confirmed.
    pub fn draft_stats(&self) -> (usize, usize) {
        (
            self.drafted.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
        )
    }

    /// `ids` as text (special tokens included).
    pub fn detokenize(&self, ids: &[u32]) -> Result<String> {
        self.decode_text(ids)
    }

    /// Tokens the prompt for `messages` takes before any truncation.
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize> {
        Ok(self.encode_prompt(messages)?.len())
    }

    /// The prompt `messages` make, as tokens (the chat template applied).
    pub fn chat_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.encode_prompt(messages)
    }

    /// For benchmarks: one forward pass over `tokens` from an empty cache (in chunks of
    /// `prefill_chunk`), the logits discarded. Returns the time the passes took.
    pub fn process_prompt(&self, tokens: &[u32]) -> Result<Duration> {
        if tokens.is_empty() || tokens.len() > self.info.context_len {
            return Err(InferenceError::Candle(format!(
                "prompt of {} tokens for a context of {}",
                tokens.len(),
                self.info.context_len
            )));
        }
        let mut backend = self.lock();
        backend.reset();
        let started = Instant::now();
        let mut pos = 0;
        for chunk in tokens.chunks(backend.prefill_chunk(self.prefill_chunk)) {
            backend.forward(chunk, pos)?;
            pos += chunk.len();
        }
        let took = started.elapsed();
        backend.reset();
        Ok(took)
    }

    /// For benchmarks: `prompt` from an empty cache, then exactly `n` greedy tokens (an
    /// end-of-turn token is fed back like any other), checking up to `draft_tokens` tokens
    /// drafted from the sequence per pass (Lotse's Qwen2 only; 0 decodes one token a pass).
    pub fn bench_decode(&self, prompt: &[u32], n: usize, draft_tokens: usize) -> Result<DecodeRun> {
        if prompt.is_empty() || prompt.len() + n + draft_tokens > self.info.context_len {
            return Err(InferenceError::Candle(format!(
                "{} prompt and {n} new tokens for a context of {}",
                prompt.len(),
                self.info.context_len
            )));
        }
        let argmax = |logits: &Tensor| -> Result<u32> {
            let v = logits.to_vec1::<f32>()?;
            let (best, _) = v
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b });
            Ok(best as u32)
        };
        let mut backend = self.lock();
        backend.reset();
        let started = Instant::now();
        let mut pos = 0;
        let mut logits = None;
        for chunk in prompt.chunks(backend.prefill_chunk(self.prefill_chunk)) {
            logits = Some(backend.forward(chunk, pos)?);
            pos += chunk.len();
        }
        let mut run = DecodeRun {
            prompt: started.elapsed(),
            ..DecodeRun::default()
        };
        let started = Instant::now();
        let mut logits = logits.ok_or_else(|| InferenceError::Candle("no prompt".into()))?;
        let mut history = prompt.to_vec();
        while run.tokens < n {
            let next = argmax(&logits)?;
            history.push(next);
            run.tokens += 1;
            run.passes += 1;
            if run.tokens == n {
                // the last token's logits are not needed
                break;
            }
            let draft = super::lookup::draft(&history, draft_tokens.min(n - run.tokens)).to_vec();
            if !draft.is_empty() {
                let mut input = Vec::with_capacity(draft.len() + 1);
                input.push(next);
                input.extend_from_slice(&draft);
                if let Some(all) = backend.forward_all(&input, pos) {
                    let all = all?;
                    pos += 1;
                    let mut accepted = 0;
                    for (i, &d) in draft.iter().enumerate() {
                        if argmax(&all.get(i)?)? != d {
                            break;
                        }
                        accepted += 1;
                        history.push(d);
                    }
                    pos += accepted;
                    run.tokens += accepted;
                    run.drafted += draft.len();
                    run.accepted += accepted;
                    backend.truncate(pos);
                    logits = all.get(accepted)?;
                    continue;
                }
            }
            logits = backend.forward(&[next], pos)?;
            pos += 1;
        }
        run.decode = started.elapsed();
        backend.reset();
        Ok(run)
    }

    /// Tokens whose K/V the model keeps for the next prompt (Lotse's Qwen2 only).
    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        match &*self.lock() {
            Backend::Qwen2(m) => m.cached_tokens(),
            _ => 0,
        }
    }

    /// Tokens cached for answers (`background == false`) or for background work.
    #[cfg(test)]
    pub(crate) fn cached_tokens_in(&self, background: bool) -> usize {
        match &*self.lock() {
            Backend::Qwen2(m) => m.cached_tokens_in(if background {
                KvSlot::Background
            } else {
                KvSlot::Foreground
            }),
            _ => 0,
        }
    }

    /// Fit `messages` and `max_tokens` into the context (the prompt-too-long policy).
    pub(crate) fn fit(&self, messages: &[ChatMessage], max_tokens: usize) -> Result<FittedPrompt> {
        fit_prompt(self, messages, max_tokens, self.info.context_len)
    }

    /// Logits after `tokens`, run from an empty cache in passes of `chunk` tokens.
    #[cfg(test)]
    pub(crate) fn logits_after(&self, tokens: &[u32], chunk: usize) -> Result<Vec<f32>> {
        let mut backend = self.lock();
        backend.reset();
        let mut pos = 0;
        let mut logits = None;
        for c in tokens.chunks(backend.prefill_chunk(chunk.max(1))) {
            logits = Some(backend.forward(c, pos)?);
            pos += c.len();
        }
        backend.reset();
        let logits = logits.ok_or_else(|| InferenceError::Candle("no tokens".into()))?;
        Ok(logits.to_vec1::<f32>()?)
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))
    }
}

impl PromptCodec for LocalGenerator {
    fn encode_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let prompt = self.template.render(messages)?;
        self.encode_text(&prompt)
    }

    fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode_fast(text, false)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec())
    }

    fn decode_text(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))
    }
}

fn sampling(params: &GenerationParams) -> Sampling {
    let temperature = params.temperature;
    // Zero, negative and NaN temperatures all mean greedy.
    if temperature.is_nan() || temperature <= 0.0 {
        Sampling::ArgMax
    } else if params.top_p > 0.0 && params.top_p < 1.0 {
        Sampling::TopP {
            p: params.top_p,
            temperature,
        }
    } else {
        Sampling::All { temperature }
    }
}

impl Generator for LocalGenerator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let fitted = self.fit(messages, params.max_tokens)?;
        let prompt_tokens = fitted.tokens.len();
        let mut generation = Generation {
            text: String::new(),
            prompt_tokens,
            completion_tokens: 0,
            stop_reason: StopReason::MaxTokens,
            prompt_truncated: fitted.truncated,
            cached_prompt_tokens: 0,
        };
        if params.max_tokens == 0 {
            return Ok(generation);
        }
        if fitted.truncated {
            tracing::info!(
                prompt_tokens,
                messages_kept = fitted.messages.len(),
                max_tokens = fitted.max_tokens,
                "prompt truncated"
            );
        }
        let mut emit = |text: &str, generation: &mut Generation| {
            if !text.is_empty() {
                generation.text.push_str(text);
                on_token(text);
            }
        };
        let decode = |ids: &[u32]| self.decode(ids);
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let mut stream = TextStream::new();
        let mut stops = StopMatcher::new(&params.stop);

        let mut backend = self.lock();
        let mut pos = backend.resume(&fitted.tokens, params.background);
        generation.cached_prompt_tokens = pos;
        tracing::debug!(
            prompt_tokens,
            reused = pos,
            "prompt prefix from the k/v cache"
        );
        let mut logits = None;
        let chunk_len = if params.background {
            BACKGROUND_PREFILL_CHUNK.min(self.prefill_chunk)
        } else {
            self.prefill_chunk
        };
        for chunk in fitted.tokens[pos..].chunks(backend.prefill_chunk(chunk_len)) {
            if cancel.is_cancelled() {
                generation.stop_reason = StopReason::Cancelled;
                return Ok(generation);
            }
            logits = Some(backend.forward(chunk, pos)?);
            pos += chunk.len();
        }
        let Some(mut logits) = logits else {
            return Err(InferenceError::Tokenizer("the prompt has no tokens".into()));
        };

        // greedy decoding checks tokens drafted from the prompt (the same output up to
        // rounding, fewer passes)
        let greedy = matches!(sampling(params), Sampling::ArgMax);
        let max_draft = if greedy { self.draft_tokens } else { 0 };
        let mut history: Vec<u32> = if max_draft > 0 {
            fitted.tokens.clone()
        } else {
            Vec::new()
        };
        // a token the model chose: None to go on, else why generation ends
        let mut take = |next: u32, generation: &mut Generation| -> Result<Option<StopReason>> {
            if self.eos_ids.contains(&next) {
                return Ok(Some(StopReason::Eos));
            }
            generation.completion_tokens += 1;
            let piece = stream.push(next, &decode)?;
            let out = stops.push(&piece);
            emit(&out.emit, generation);
            if out.stopped {
                return Ok(Some(StopReason::StopSequence));
            }
            if generation.completion_tokens >= fitted.max_tokens {
                return Ok(Some(StopReason::MaxTokens));
            }
            Ok(None)
        };
        let stop_reason = 'decode: loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            let next = sampler.sample(&logits)?;
            if let Some(reason) = take(next, &mut generation)? {
                break reason;
            }
            if max_draft > 0 {
                history.push(next);
                let draft = super::lookup::draft(
                    &history,
                    max_draft.min(fitted.max_tokens - generation.completion_tokens),
                )
                .to_vec();
                if !draft.is_empty() {
                    let mut input = Vec::with_capacity(draft.len() + 1);
                    input.push(next);
                    input.extend_from_slice(&draft);
                    if let Some(all) = backend.forward_all(&input, pos) {
                        let all = all?;
                        pos += 1;
                        let mut accepted = 0;
                        for (i, &d) in draft.iter().enumerate() {
                            let row = all.get(i)?;
                            if sampler.sample(&row)? != d {
                                break;
                            }
                            accepted += 1;
                            pos += 1;
                            history.push(d);
                            if let Some(reason) = take(d, &mut generation)? {
                                backend.truncate(pos);
                                break 'decode reason;
                            }
                        }
                        backend.truncate(pos);
                        self.drafted.fetch_add(draft.len(), Ordering::Relaxed);
                        self.accepted.fetch_add(accepted, Ordering::Relaxed);
                        logits = all.get(accepted)?;
                        continue;
                    }
                }
            }
            logits = backend.forward(&[next], pos)?;
            pos += 1;
        };
        drop(backend);
        generation.stop_reason = stop_reason;
        if stop_reason != StopReason::StopSequence {
            // Release what was held back: incomplete characters, partial stop strings.
            let out = stops.push(&stream.finish(&decode)?);
            emit(&out.emit, &mut generation);
            if out.stopped {
                generation.stop_reason = StopReason::StopSequence;
            } else {
                emit(&stops.finish(), &mut generation);
            }
        }
        Ok(generation)
    }
}
