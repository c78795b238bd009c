//! Qwen2 forward pass over GGUF weights, leaner than `candle_transformers`'
//! `quantized_qwen2` (which stays available as a backend for comparison).
//!
//! Same maths, three differences that matter on a small CPU server:
//! - the token embedding stays quantized and rows are dequantized per token
//!   (`QTensor::embedding`), instead of a dequantized f32 copy of the whole table
//!   (151,936 x 1,536 x 4 bytes = 0.93 GB for Qwen2.5-1.5B); tied output weights share it;
//! - attention runs candle's CPU flash-attention kernels (causal prefill, grouped-query decode
//!   over an interleaved K/V cache) instead of repeating K/V per head and materialising a mask;
//! - decode steps fuse the projections that share an input (gate/up, and q/k/v when they have
//!   one dtype) into one parallel matrix-vector pass;
//! - the K/V cache remembers which tokens it holds, so a prompt that starts like the previous
//!   one (the same system prompt and rules) only runs its new part ([`Qwen2::reuse_prefix`]).

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::attention::cpu_flash::causal::causal_decode_f32_interleaved;
use candle_nn::attention::{AttnMask, flash_attn};
use candle_transformers::quantized_nn::RmsNorm;

use crate::{InferenceError, Result};

/// Qwen2 hyper-parameters from GGUF metadata (`qwen2.*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Qwen2Config {
    pub(crate) n_layer: usize,
    pub(crate) hidden: usize,
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) rms_eps: f64,
    pub(crate) rope_theta: f32,
}

impl Qwen2Config {
    pub(crate) fn head_dim(&self) -> usize {
        self.hidden / self.n_head
    }
}

/// A linear layer kept both as a `QMatMul` (general path) and as its `QTensor` (fused gemv).
#[derive(Debug)]
struct Linear {
    weight: Arc<QTensor>,
    matmul: QMatMul,
}

impl Linear {
    fn new(weight: QTensor) -> Result<Linear> {
        let weight = Arc::new(weight);
        let matmul = QMatMul::from_arc(weight.clone())?;
        Ok(Linear { weight, matmul })
    }
}

/// `xs` through several linear layers sharing that input: one fused pass when candle has a
/// kernel for it (single-row input, same dtype), separate matmuls otherwise.
fn project(xs: &Tensor, layers: &[&Linear]) -> Result<Vec<Tensor>> {
    let (_, seq_len, _) = xs.dims3()?;
    if seq_len == 1 {
        let weights: Vec<&QTensor> = layers.iter().map(|l| l.weight.as_ref()).collect();
        if let Some(outs) = QTensor::gemv_fused_shared_lhs(&weights, xs)? {
            return Ok(outs);
        }
    }
    layers
        .iter()
        .map(|l| l.matmul.forward(xs).map_err(InferenceError::from))
        .collect()
}

#[derive(Debug)]
struct Layer {
    attn_norm: RmsNorm,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    /// K and V per position, interleaved per head: `[h0 K, h0 V, h1 K, h1 V, ...]`.
    cache: KvCache,
}

/// K/V of the positions seen so far, interleaved per head (`[h0 K, h0 V, h1 K, ...]` per
/// position, the layout candle's decode kernel reads). Unlike candle's
/// `RawInterleavedKvCache` it can be cut back to a prefix.
#[derive(Debug)]
struct KvCache {
    buf: Vec<f32>,
    h_kv: usize,
    d: usize,
    len: usize,
}

impl KvCache {
    fn new(h_kv: usize, d: usize, positions: usize) -> KvCache {
        KvCache {
            buf: Vec::with_capacity(positions * h_kv * 2 * d),
            h_kv,
            d,
            len: 0,
        }
    }

    fn stride(&self) -> usize {
        self.h_kv * 2 * self.d
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Append `seq_len` positions; `k` and `v` are `(seq_len, h_kv * d)` row-major.
    fn append(&mut self, k: &[f32], v: &[f32], seq_len: usize) {
        let d = self.d;
        let row = self.h_kv * d;
        self.buf.truncate(self.len * self.stride());
        self.buf.reserve(seq_len * self.stride());
        for s in 0..seq_len {
            for h in 0..self.h_kv {
                let at = s * row + h * d;
                self.buf.extend_from_slice(&k[at..at + d]);
                self.buf.extend_from_slice(&v[at..at + d]);
            }
        }
        self.len += seq_len;
    }

    fn data(&self) -> &[f32] {
        &self.buf[..self.len * self.stride()]
    }

    /// Keep the first `len` positions.
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.buf.truncate(self.len * self.stride());
    }
}

/// The model and its K/V cache. `forward` is not reentrant: the owner serialises calls.
#[derive(Debug)]
pub(crate) struct Qwen2 {
    cfg: Qwen2Config,
    embed: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    cos: Tensor,
    sin: Tensor,
    max_positions: usize,
    device: Device,
    /// The tokens whose K/V the layers' caches hold, in order.
    cached: Vec<u32>,
    /// The other sequence's caches (one per layer) and tokens: answers and background work
    /// each keep their own, so a page rewrite does not evict the prefix answers share.
    other: (Vec<KvCache>, Vec<u32>),
    /// Which sequence the layers' caches belong to now.
    slot: KvSlot,
}

/// Whose K/V cache a generation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvSlot {
    Foreground,
    Background,
}

fn tensor<R: Read + Seek>(
    ct: &gguf_file::Content,
    reader: &mut R,
    name: &str,
    dims: &[usize],
    device: &Device,
) -> Result<QTensor> {
    let t = ct
        .tensor(reader, name, device)
        .map_err(|e| InferenceError::Format(format!("tensor {name}: {e}")))?;
    if t.shape().dims() != dims {
        return Err(InferenceError::Format(format!(
            "tensor {name} has shape {:?}, expected {dims:?}",
            t.shape().dims()
        )));
    }
    Ok(t)
}

impl Qwen2 {
    /// Load the weights; `max_positions` bounds positions (and sizes the RoPE tables).
    pub(crate) fn load<R: Read + Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        cfg: Qwen2Config,
        max_positions: usize,
        device: &Device,
    ) -> Result<Qwen2> {
        let hidden = cfg.hidden;
        let head_dim = cfg.head_dim();
        let kv_dim = cfg.n_kv_head * head_dim;
        let embed = ct
            .tensor(reader, "token_embd.weight", device)
            .map_err(|e| InferenceError::Format(format!("tensor token_embd.weight: {e}")))?;
        let vocab = match embed.shape().dims() {
            [vocab, h] if *h == hidden && *vocab > 0 => *vocab,
            dims => {
                return Err(InferenceError::Format(format!(
                    "tensor token_embd.weight has shape {dims:?}, expected [vocab, {hidden}]"
                )));
            }
        };
        let embed = Arc::new(embed);
        let output = if ct.tensor_infos.contains_key("output.weight") {
            QMatMul::from_qtensor(tensor(
                ct,
                reader,
                "output.weight",
                &[vocab, hidden],
                device,
            )?)?
        } else {
            // Tied embeddings: the output projection reads the same quantized table.
            QMatMul::from_arc(embed.clone())?
        };
        let norm = RmsNorm::from_qtensor(
            tensor(ct, reader, "output_norm.weight", &[hidden], device)?,
            cfg.rms_eps,
        )?;
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let mut t = |suffix: &str, dims: &[usize]| {
                tensor(ct, reader, &format!("blk.{i}.{suffix}"), dims, device)
            };
            let ffn = match ct.tensor_infos.get(&format!("blk.{i}.ffn_up.weight")) {
                Some(info) => info.shape.dims().first().copied().unwrap_or(0),
                None => 0,
            };
            if ffn == 0 {
                return Err(InferenceError::Format(format!(
                    "layer {i}: missing or empty ffn_up.weight"
                )));
            }
            let layer = Layer {
                attn_norm: RmsNorm::from_qtensor(t("attn_norm.weight", &[hidden])?, cfg.rms_eps)?,
                wq: Linear::new(t("attn_q.weight", &[hidden, hidden])?)?,
                wk: Linear::new(t("attn_k.weight", &[kv_dim, hidden])?)?,
                wv: Linear::new(t("attn_v.weight", &[kv_dim, hidden])?)?,
                bq: t("attn_q.bias", &[hidden])?.dequantize(device)?,
                bk: t("attn_k.bias", &[kv_dim])?.dequantize(device)?,
                bv: t("attn_v.bias", &[kv_dim])?.dequantize(device)?,
                wo: Linear::new(t("attn_output.weight", &[hidden, hidden])?)?,
                ffn_norm: RmsNorm::from_qtensor(t("ffn_norm.weight", &[hidden])?, cfg.rms_eps)?,
                gate: Linear::new(t("ffn_gate.weight", &[ffn, hidden])?)?,
                up: Linear::new(t("ffn_up.weight", &[ffn, hidden])?)?,
                down: Linear::new(t("ffn_down.weight", &[hidden, ffn])?)?,
                // Grows on demand (doubling); a small start keeps short chats small.
                cache: KvCache::new(cfg.n_kv_head, head_dim, max_positions.min(512)),
            };
            layers.push(layer);
        }
        let (cos, sin) = rope_tables(head_dim, cfg.rope_theta, max_positions, device)?;
        Ok(Qwen2 {
            cfg,
            embed,
            layers,
            norm,
            output,
            cos,
            sin,
            max_positions,
            device: device.clone(),
            cached: Vec::new(),
            other: (Vec::new(), Vec::new()),
            slot: KvSlot::Foreground,
        })
    }

    /// Switch the layers' caches to `slot`'s sequence (an O(1) swap; the other sequence's
    /// cache is kept for its next generation).
    pub(crate) fn select(&mut self, slot: KvSlot) {
        if slot == self.slot {
            return;
        }
        let (caches, tokens) = &mut self.other;
        if caches.is_empty() {
            *caches = self
                .layers
                .iter()
                .map(|l| KvCache::new(l.cache.h_kv, l.cache.d, 512.min(self.max_positions)))
                .collect();
            tokens.clear();
        }
        for (layer, cache) in self.layers.iter_mut().zip(caches.iter_mut()) {
            std::mem::swap(&mut layer.cache, cache);
        }
        std::mem::swap(&mut self.cached, tokens);
        self.slot = slot;
    }

    /// Forget the K/V caches of both sequences (the next forward starts at position 0).
    pub(crate) fn clear_kv_cache(&mut self) {
        for layer in &mut self.layers {
            layer.cache.truncate(0);
        }
        self.cached.clear();
        for cache in &mut self.other.0 {
            cache.truncate(0);
        }
        self.other.1.clear();
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens_in(&self, slot: KvSlot) -> usize {
        if slot == self.slot {
            self.cached.len()
        } else {
            self.other.1.len()
        }
    }

    /// Prepare the cache for `prompt`: keep the longest prefix it shares with the tokens
    /// already cached (at most `prompt.len() - 1`, so the last prompt token still runs and
    /// yields logits) and drop the rest. Returns the position to continue from.
    pub(crate) fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        let shared = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len().saturating_sub(1));
        for layer in &mut self.layers {
            layer.cache.truncate(shared);
        }
        self.cached.truncate(shared);
        shared
    }

    /// Run `tokens` at positions `pos..pos + tokens.len()` (the cache must hold exactly `pos`
    /// positions) and return the logits of the last one, shape `(vocab,)`.
    /// A failed pass leaves the cache empty (never half-written).
    pub(crate) fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        self.forward_checked(tokens, pos, false)
    }

    /// Like [`Qwen2::forward`], but the logits of every one of `tokens`, shape
    /// `(tokens.len(), vocab)`: row `i` predicts the token after `tokens[i]` (for checking
    /// several drafted tokens in one pass).
    pub(crate) fn forward_all(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        self.forward_checked(tokens, pos, true)
    }

    /// Keep the K/V of the first `len` positions (drop drafted tokens that were rejected).
    pub(crate) fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.cache.truncate(len);
        }
        self.cached.truncate(len);
    }

    fn forward_checked(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<Tensor> {
        match self.forward_inner(tokens, pos, all) {
            Ok(logits) => {
                self.cached.extend_from_slice(tokens);
                Ok(logits)
            }
            Err(e) => {
                self.clear_kv_cache();
                Err(e)
            }
        }
    }

    fn forward_inner(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<Tensor> {
        let seq_len = tokens.len();
        if seq_len == 0 {
            return Err(InferenceError::Candle("forward with no tokens".into()));
        }
        if pos + seq_len > self.max_positions {
            return Err(InferenceError::Candle(format!(
                "positions up to {} exceed the context of {}",
                pos + seq_len,
                self.max_positions
            )));
        }
        if self.cached.len() != pos || self.layers.iter().any(|l| l.cache.len() != pos) {
            return Err(InferenceError::Candle("k/v cache out of step".into()));
        }
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let mut xs = self.embed.embedding(&ids)?;
        let cos = self.cos.narrow(0, pos, seq_len)?;
        let sin = self.sin.narrow(0, pos, seq_len)?;
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&xs)?;
            let h = attention(layer, &self.cfg, &h, pos, &cos, &sin)?;
            xs = (xs + h)?;
            let h = layer.ffn_norm.forward(&xs)?;
            let gate_up = project(&h, &[&layer.gate, &layer.up])?;
            let h = (candle_nn::ops::silu(&gate_up[0])? * &gate_up[1])?;
            let h = layer.down.matmul.forward(&h)?;
            xs = (xs + h)?;
        }
        if all {
            let xs = self.norm.forward(&xs)?;
            let logits = self.output.forward(&xs)?;
            return Ok(logits.squeeze(0)?.to_dtype(DType::F32)?);
        }
        let last = xs.narrow(1, seq_len - 1, 1)?;
        let last = self.norm.forward(&last)?;
        let logits = self.output.forward(&last)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

/// Up to this many query rows per pass run the decode kernel row by row (a token and its
/// drafted successors); longer prompt passes use flash attention over a copy of the cache.
const DECODE_ROWS: usize = 8;

fn attention(
    layer: &mut Layer,
    cfg: &Qwen2Config,
    xs: &Tensor,
    pos: usize,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let (_, seq_len, _) = xs.dims3()?;
    let (n_head, n_kv, head_dim) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim());
    let qkv = project(xs, &[&layer.wq, &layer.wk, &layer.wv])?;
    let q = qkv[0].broadcast_add(&layer.bq)?;
    let k = qkv[1].broadcast_add(&layer.bk)?;
    let v = qkv[2].broadcast_add(&layer.bv)?;
    let q = q
        .reshape((1, seq_len, n_head, head_dim))?
        .transpose(1, 2)?
        .contiguous()?;
    let k = k
        .reshape((1, seq_len, n_kv, head_dim))?
        .transpose(1, 2)?
        .contiguous()?;
    let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
    let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
    let scale = 1.0 / (head_dim as f32).sqrt();

    // K rows (seq, n_kv * head_dim) as the cache stores them; V already has that layout.
    let k_rows = rows_of(&k)?;
    let v_rows = v.flatten_all()?.to_vec1::<f32>()?;
    layer.cache.append(&k_rows, &v_rows, seq_len);
    let kv_len = layer.cache.len();

    let ctx = if seq_len <= DECODE_ROWS {
        // a token or a few drafted ones: each query row against the cache up to its own
        // position, with the decode kernel (no copy of the cache)
        let q = rows_of(&q)?;
        let row = n_head * head_dim;
        let stride = layer.cache.stride();
        let mut rows = Vec::with_capacity(seq_len);
        for i in 0..seq_len {
            let len = kv_len - seq_len + i + 1;
            rows.push(
                causal_decode_f32_interleaved(
                    &q[i * row..(i + 1) * row],
                    &layer.cache.data()[..len * stride],
                    n_head,
                    n_kv,
                    head_dim,
                    len,
                    scale,
                )?
                .reshape((1, 1, row))?,
            );
        }
        if rows.len() == 1 {
            rows.pop()
                .ok_or_else(|| InferenceError::Candle("no rows".into()))?
        } else {
            Tensor::cat(&rows, 1)?
        }
    } else {
        let kv = Tensor::from_slice(
            layer.cache.data(),
            (kv_len, n_kv, 2 * head_dim),
            xs.device(),
        )?;
        let k_all = kv
            .narrow(D::Minus1, 0, head_dim)?
            .unsqueeze(0)?
            .contiguous()?;
        let v_all = kv
            .narrow(D::Minus1, head_dim, head_dim)?
            .unsqueeze(0)?
            .contiguous()?;
        let q = q.transpose(1, 2)?.contiguous()?;
        flash_attn::<f32>(
            &q,
            &k_all,
            &v_all,
            scale,
            AttnMask::causal_with_offset(pos),
            None,
            None,
        )?
        .transpose(1, 2)?
        .reshape((1, seq_len, n_head * head_dim))?
    };
    Ok(layer.wo.matmul.forward(&ctx)?)
}

/// A `(1, heads, seq, d)` tensor as `seq` rows of `heads * d` values, row-major.
fn rows_of(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.squeeze(0)?
        .transpose(0, 1)?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// RoPE cos/sin tables `(positions, head_dim / 2)` (the rotate-half layout of Qwen2).
fn rope_tables(
    head_dim: usize,
    theta: f32,
    positions: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / theta.powf(i as f32 / head_dim as f32))
        .collect();
    let n = inv_freq.len();
    let inv_freq = Tensor::from_vec(inv_freq, (1, n), device)?;
    let t = Tensor::arange(0u32, positions as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((positions, 1))?;
    let freqs = t.matmul(&inv_freq)?;
    Ok((freqs.cos()?, freqs.sin()?))
}
