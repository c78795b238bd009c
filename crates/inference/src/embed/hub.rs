//! The hub layout of an embedder (`config.json`, `model.safetensors`, `tokenizer.json`):
//! f32 weights in candle-transformers' `BertModel`, the tokenizer from `tokenizers`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::{InferenceError, Result};

pub(crate) struct HubBert {
    pub tokenizer: Tokenizer,
    pub model: BertModel,
    pub config: Config,
}

impl HubBert {
    pub(crate) fn load(dir: &Path) -> Result<HubBert> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| InferenceError::Io { path, source })
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(|e| {
            InferenceError::Format(format!("{}: {e}", dir.join("config.json").display()))
        })?;
        if config.hidden_size == 0
            || config.num_attention_heads == 0
            || config.max_position_embeddings < 3
        {
            return Err(InferenceError::Format(format!(
                "{}: hidden size, heads or positions are empty",
                dir.join("config.json").display()
            )));
        }

        let weights =
            candle_core::safetensors::load_buffer(&read("model.safetensors")?, &Device::Cpu)
                .map_err(|e| {
                    InferenceError::Format(format!(
                        "{}: {e}",
                        dir.join("model.safetensors").display()
                    ))
                })?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| InferenceError::Tokenizer(format!("{}: {e}", tokenizer_path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_position_embeddings,
                ..TruncationParams::default()
            }))
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(HubBert {
            tokenizer,
            model,
            config,
        })
    }

    /// Token ids with the tokenizer's special tokens, cut to the model's positions.
    pub(crate) fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| InferenceError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let token_types = ids.zeros_like()?;
        Ok(self.model.forward(ids, &token_types, Some(mask))?)
    }
}
