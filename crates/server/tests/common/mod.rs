//! Test doubles shared by the server's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use lotse_inference::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, ModelInfo, StopReason,
};

/// A rewriter without a model: splits the text to rewrite at every ", " into sentences.
pub struct FakeSplittingRewriter {
    pub info: ModelInfo,
    pub calls: AtomicUsize,
}

impl Generator for FakeSplittingRewriter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(&self, m: &[ChatMessage], _: &GenerationParams, _: &CancelToken, _: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let user = &m.last().unwrap().content;
        let unit = user.rsplit_once("\nText:\n").map(|(_, t)| t.trim()).unwrap_or("");
        let text = unit
            .split(", ")
            .map(|s| {
                let mut c = s.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(".\n");
        Ok(Generation { text, prompt_tokens: 1, completion_tokens: 1, stop_reason: StopReason::Eos, prompt_truncated: false })
    }
}


impl FakeSplittingRewriter {
    pub fn new() -> FakeSplittingRewriter {
        FakeSplittingRewriter {
            info: ModelInfo { id: "fake-splitting".into(), external: false, context_len: 4096 },
            calls: AtomicUsize::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
