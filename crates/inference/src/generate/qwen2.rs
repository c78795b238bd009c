//! Qwen2 forward pass over GGUF weights, leaner than `candle_transformers`'
//! `quantized_qwen2` (which stays available as a backend for comparison).
//!
//! Same maths; what differs matters on a small CPU server:
//! - Q4_K/Q6_K layers run through Lotse's kernels ([`crate::kernels`]): each weight held
//!   once, in tiles about the size of the file's blocks;
//! - projections that share an input (q/k/v, gate/up) are stacked into one matrix (one pass,
//!   activations quantized once), and `silu(gate) * up` is fused over the stacked output;
//! - the token embedding stays quantized and rows are dequantized per token
//!   (`QTensor::embedding`), instead of a dequantized f32 copy of the whole table
//!   (151,936 x 1,536 x 4 bytes = 0.93 GB for Qwen2.5-1.5B); tied output weights share it;
//! - attention never repeats K/V per head: prompt passes take two matrix products per K/V
//!   head with the query heads of its group stacked, decode steps read each K/V head's
//!   history front to back ([`crate::kernels::attend_one`]);
//! - the K/V cache remembers which tokens it holds, so a prompt that starts like the previous
//!   one (the same system prompt and rules) only runs its new part ([`Qwen2::reuse_prefix`]).

use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use crate::kernels::{Isa, QActs, QMatrix, attend_one, silu_mul};
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

/// Linear layers that share one input (q/k/v, gate/up, or a single one), run in as few
/// passes as their weights allow: Q4_K and Q6_K weights through Lotse's kernels (stacked
/// into one matrix when they have one type), others through candle's `QMatMul`. Each
/// weight is held once: the GGUF tensor is dropped after packing.
#[derive(Debug)]
struct Projection {
    groups: Vec<Group>,
}

#[derive(Debug)]
enum Group {
    /// One matrix of stacked parts; the widths of the parts' outputs.
    Own(QMatrix, Vec<usize>),
    Candle(QMatMul),
}

impl Projection {
    fn new(weights: Vec<QTensor>) -> Result<Projection> {
        let mut groups: Vec<Group> = Vec::new();
        let mut pending: Vec<QMatrix> = Vec::new();
        let flush = |pending: &mut Vec<QMatrix>, groups: &mut Vec<Group>| {
            match pending.len() {
                0 => {}
                1 => {
                    let m = pending.remove(0);
                    let width = m.rows();
                    groups.push(Group::Own(m, vec![width]));
                }
                _ => {
                    let widths: Vec<usize> = pending.iter().map(QMatrix::rows).collect();
                    let parts = std::mem::take(pending);
                    groups.push(Group::Own(QMatrix::stack(parts), widths));
                }
            }
        };
        for w in weights {
            match QMatrix::from_qtensor(&w)? {
                Some(m) => {
                    drop(w); // the only copy is the tiles now
                    if pending.last().is_some_and(|p| !p.stacks_with(&m)) {
                        flush(&mut pending, &mut groups);
                    }
                    pending.push(m);
                }
                None => {
                    flush(&mut pending, &mut groups);
                    groups.push(Group::Candle(QMatMul::from_qtensor(w)?));
                }
            }
        }
        flush(&mut pending, &mut groups);
        Ok(Projection { groups })
    }

    /// `xs` `(1, seq, k)` through every layer: one `(1, seq, width)` tensor each, in order.
    fn forward(&self, xs: &Tensor, isa: Isa) -> Result<Vec<Tensor>> {
        let (_, seq_len, k) = xs.dims3()?;
        let xs = xs.contiguous()?;
        let mut acts = None;
        let mut outs = Vec::new();
        for group in &self.groups {
            match group {
                Group::Candle(mm) => outs.push(mm.forward(&xs)?),
                Group::Own(m, widths) => {
                    if acts.is_none() {
                        acts = Some(with_rows(&xs, |x| QActs::quantize(x, seq_len, k))?);
                    }
                    let Some(acts) = &acts else { unreachable!() };
                    let n = m.rows();
                    let out = m.matmul_vec(isa, acts);
                    let all = Tensor::from_vec(out, (1, seq_len, n), xs.device())?;
                    if widths.len() == 1 {
                        outs.push(all);
                    } else {
                        let mut at = 0;
                        for &w in widths {
                            outs.push(all.narrow(2, at, w)?);
                            at += w;
                        }
                    }
                }
            }
        }
        Ok(outs)
    }

    /// `silu(gate) * up` for a gate/up projection: fused over the stacked output when the
    /// two are one matrix of ours, with candle's ops otherwise.
    fn forward_silu_mul(&self, xs: &Tensor, isa: Isa) -> Result<Tensor> {
        if let [Group::Own(m, widths)] = self.groups.as_slice()
            && let [gate, up] = widths.as_slice()
            && gate == up
        {
            let (_, seq_len, k) = xs.dims3()?;
            let xs = xs.contiguous()?;
            let acts = with_rows(&xs, |x| QActs::quantize(x, seq_len, k))?;
            let gate_up = m.matmul_vec(isa, &acts);
            let mut out = vec![0f32; seq_len * gate];
            silu_mul(isa, &gate_up, *gate, &mut out);
            return Ok(Tensor::from_vec(out, (1, seq_len, *gate), xs.device())?);
        }
        let gate_up = self.forward(xs, isa)?;
        Ok((candle_nn::ops::silu(&gate_up[0])? * &gate_up[1])?)
    }

    /// The single layer's output (for projections of one layer).
    fn forward1(&self, xs: &Tensor, isa: Isa) -> Result<Tensor> {
        self.forward(xs, isa)?
            .pop()
            .ok_or_else(|| InferenceError::Candle("projection without layers".into()))
    }
}

/// Call `f` with the f32 values of a contiguous CPU tensor, without copying them.
fn with_rows<T>(xs: &Tensor, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
    let (storage, layout) = xs.storage_and_layout();
    let data = match &*storage {
        candle_core::Storage::Cpu(cpu) => cpu.as_slice::<f32>()?,
        _ => return Err(InferenceError::Candle("activations are not f32 on the CPU".into())),
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| InferenceError::Candle("activations are not contiguous".into()))?;
    Ok(f(&data[start..end]))
}

#[derive(Debug)]
struct Layer {
    attn_norm: RmsNorm,
    /// q, k and v.
    qkv: Projection,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: Projection,
    ffn_norm: RmsNorm,
    /// gate and up.
    gate_up: Projection,
    down: Projection,
    /// K and V of the positions seen so far.
    cache: KvCache,
}

/// K/V of the positions seen so far: per K/V head one buffer of `[K (d), V (d)]` per
/// position, so attention reads each head's history front to back. Unlike candle's
/// `RawInterleavedKvCache` it can be cut back to a prefix.
#[derive(Debug)]
struct KvCache {
    heads: Vec<Vec<f32>>,
    h_kv: usize,
    d: usize,
    len: usize,
}

impl KvCache {
    fn new(h_kv: usize, d: usize, positions: usize) -> KvCache {
        KvCache {
            heads: (0..h_kv).map(|_| Vec::with_capacity(positions * 2 * d)).collect(),
            h_kv,
            d,
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Append `seq_len` positions; `k` and `v` are `(seq_len, h_kv * d)` row-major.
    fn append(&mut self, k: &[f32], v: &[f32], seq_len: usize) {
        let d = self.d;
        let row = self.h_kv * d;
        for (h, buf) in self.heads.iter_mut().enumerate() {
            buf.truncate(self.len * 2 * d);
            buf.reserve(seq_len * 2 * d);
            for s in 0..seq_len {
                let at = s * row + h * d;
                buf.extend_from_slice(&k[at..at + d]);
                buf.extend_from_slice(&v[at..at + d]);
            }
        }
        self.len += seq_len;
    }

    /// The first `len` positions of each head.
    fn heads(&self, len: usize) -> Vec<&[f32]> {
        let len = len.min(self.len);
        self.heads.iter().map(|b| &b[..len * 2 * self.d]).collect()
    }

    /// Keep the first `len` positions.
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        for b in &mut self.heads {
            b.truncate(self.len * 2 * self.d);
        }
    }
}

/// The model and its K/V cache. `forward` is not reentrant: the owner serialises calls.
#[derive(Debug)]
pub(crate) struct Qwen2 {
    cfg: Qwen2Config,
    embed: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Projection,
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
    /// The instruction set of the matrix kernels.
    isa: Isa,
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
        isa: Isa,
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
            Projection::new(vec![tensor(ct, reader, "output.weight", &[vocab, hidden], device)?])?
        } else {
            // Tied embeddings: the output projection reads the same quantized table.
            Projection {
                groups: vec![Group::Candle(QMatMul::from_arc(embed.clone())?)],
            }
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
                qkv: Projection::new(vec![
                    t("attn_q.weight", &[hidden, hidden])?,
                    t("attn_k.weight", &[kv_dim, hidden])?,
                    t("attn_v.weight", &[kv_dim, hidden])?,
                ])?,
                bq: t("attn_q.bias", &[hidden])?.dequantize(device)?,
                bk: t("attn_k.bias", &[kv_dim])?.dequantize(device)?,
                bv: t("attn_v.bias", &[kv_dim])?.dequantize(device)?,
                wo: Projection::new(vec![t("attn_output.weight", &[hidden, hidden])?])?,
                ffn_norm: RmsNorm::from_qtensor(t("ffn_norm.weight", &[hidden])?, cfg.rms_eps)?,
                gate_up: Projection::new(vec![
                    t("ffn_gate.weight", &[ffn, hidden])?,
                    t("ffn_up.weight", &[ffn, hidden])?,
                ])?,
                down: Projection::new(vec![t("ffn_down.weight", &[hidden, ffn])?])?,
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
            isa,
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
            let h = attention(layer, &self.cfg, &h, pos, &cos, &sin, self.isa)?;
            xs = (xs + h)?;
            let h = layer.ffn_norm.forward(&xs)?;
            let h = layer.gate_up.forward_silu_mul(&h, self.isa)?;
            let h = layer.down.forward1(&h, self.isa)?;
            xs = (xs + h)?;
        }
        if all {
            let xs = self.norm.forward(&xs)?;
            let logits = self.output.forward1(&xs, self.isa)?;
            return Ok(logits.squeeze(0)?.to_dtype(DType::F32)?);
        }
        let last = xs.narrow(1, seq_len - 1, 1)?;
        let last = self.norm.forward(&last)?;
        let logits = self.output.forward1(&last, self.isa)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

/// Up to this many query rows per pass run the decode kernel row by row (a token and its
/// drafted successors); longer prompt passes use [`prefill_attention`].
const DECODE_ROWS: usize = 8;

fn attention(
    layer: &mut Layer,
    cfg: &Qwen2Config,
    xs: &Tensor,
    pos: usize,
    cos: &Tensor,
    sin: &Tensor,
    isa: Isa,
) -> Result<Tensor> {
    let (_, seq_len, _) = xs.dims3()?;
    let (n_head, n_kv, head_dim) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim());
    let qkv = layer.qkv.forward(xs, isa)?;
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
        let mut ctx = vec![0f32; seq_len * row];
        for (i, out) in ctx.chunks_mut(row).enumerate() {
            let len = kv_len - seq_len + i + 1;
            attend_one(
                isa,
                &q[i * row..(i + 1) * row],
                &layer.cache.heads(len),
                n_head,
                head_dim,
                len,
                scale,
                out,
            );
        }
        Tensor::from_vec(ctx, (1, seq_len, row), xs.device())?
    } else {
        prefill_attention(&q, &layer.cache.heads(kv_len), kv_len, pos, cfg, scale)?
    };
    layer.wo.forward1(&ctx, isa)
}

/// Query rows per block of [`prefill_attention`]: bounds the score matrices (a block's is
/// `groups x rows x positions` f32: 12.6 MB at 4,096 positions for Qwen2.5-1.5B).
const ATTENTION_ROWS: usize = 128;

/// Attention of a prompt piece (`q`: `(1, heads, seq, d)`, at positions `pos..`) over the
/// cached K/V (`kv_len` positions, one buffer per K/V head), as two matrix products per K/V
/// head and block of query rows: the query heads that share a K/V head (grouped-query
/// attention) are stacked into one matrix, so K and V are read as they are, never repeated
/// per head. Returns `(1, seq, heads * d)`.
fn prefill_attention(
    q: &Tensor,
    heads: &[&[f32]],
    kv_len: usize,
    pos: usize,
    cfg: &Qwen2Config,
    scale: f32,
) -> Result<Tensor> {
    let (_, n_head, seq_len, head_dim) = q.dims4()?;
    let n_kv = cfg.n_kv_head;
    let groups = n_head / n_kv;
    let device = q.device();
    let q = (q * f64::from(scale))?;
    let mut per_kv = Vec::with_capacity(n_kv);
    for (h, cache) in heads.iter().enumerate() {
        let kv = Tensor::from_slice(cache, (kv_len, 2 * head_dim), device)?;
        let k = kv.narrow(1, 0, head_dim)?; // (kv_len, d), strided
        let v = kv.narrow(1, head_dim, head_dim)?.contiguous()?;
        let kt = k.t()?;
        let qh = q.narrow(1, h * groups, groups)?; // (1, groups, seq, d)
        let mut blocks = Vec::with_capacity(seq_len.div_ceil(ATTENTION_ROWS));
        for r0 in (0..seq_len).step_by(ATTENTION_ROWS) {
            let rows = ATTENTION_ROWS.min(seq_len - r0);
            let qb = qh
                .narrow(2, r0, rows)?
                .contiguous()?
                .reshape((groups * rows, head_dim))?;
            let mut scores = qb.matmul(&kt)?.reshape((groups, rows, kv_len))?;
            // causal: query r0 + i (position pos + r0 + i) sees keys 0..=pos + r0 + i
            let first_hidden = pos + r0 + 1;
            if first_hidden < kv_len {
                let mask: Vec<f32> = (0..rows)
                    .flat_map(|i| {
                        (0..kv_len).map(move |j| if j <= pos + r0 + i { 0.0 } else { f32::NEG_INFINITY })
                    })
                    .collect();
                scores = scores.broadcast_add(&Tensor::from_vec(mask, (rows, kv_len), device)?)?;
            }
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((groups * rows, kv_len))?;
            drop(scores);
            blocks.push(probs.matmul(&v)?.reshape((groups, rows, head_dim))?);
        }
        per_kv.push(Tensor::cat(&blocks, 1)?); // (groups, seq, d)
    }
    let out = Tensor::cat(&per_kv, 0)?; // (heads, seq, d)
    Ok(out
        .transpose(0, 1)?
        .contiguous()?
        .reshape((1, seq_len, n_head * head_dim))?)
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
