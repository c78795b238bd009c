//! Local text generation: a GGUF chat model on the CPU ([`LocalGenerator`]), its chat
//! template ([`ChatTemplate`]), and the thread pool with a bounded queue that serves any
//! [`Generator`](crate::Generator) to async code ([`GenerationService`]).
//!
//! - `gguf`: loading, the generation loop (sampling, streaming, stop strings, cancellation).
//! - `fit`: the prompt-too-long policy.
//! - `qwen2`: Lotse's Qwen2 forward pass (its own kernels, quantized embedding); the other
//!   architectures use `candle_transformers`' quantized models.
//! - `stream`: incremental detokenisation and stop-string hold-back.
//! - `template`: chat templates with minijinja.
//! - `service`: the worker threads and the queue.

mod fit;
mod gguf;
mod lookup;
mod qwen2;
mod service;
pub(crate) mod stream;
mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use gguf::{DEFAULT_DRAFT_TOKENS, DecodeRun, LoadOptions, LocalGenerator};
pub use service::{GenerationEvent, GenerationHandle, GenerationService};
pub use template::{CHATML_TEMPLATE, ChatTemplate};
pub use crate::kernels::Kernels;

/// Threads the local generator's kernels run on (candle's pool: `CANDLE_NUM_THREADS`, else
/// `RAYON_NUM_THREADS`, else the cores), and the instruction set they use.
pub fn compute_threads() -> (usize, &'static str) {
    let isa = match crate::kernels::Isa::detect() {
        crate::kernels::Isa::Avx512Vnni => "AVX-512 VNNI",
        crate::kernels::Isa::Avx2 => "AVX2",
        crate::kernels::Isa::Scalar => "scalar",
    };
    (candle_core::utils::barrier_pool().n_workers() + 1, isa)
}
