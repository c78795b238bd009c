//! Test helpers: a tiny random-weight Qwen2 GGUF written on the fly (byte-level BPE vocabulary,
//! ChatML template, Q8_0 weights), so generator tests need no download.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::{LoadOptions, LocalGenerator};

/// A Qwen-style ChatML template with a stock system prompt.
pub(crate) const QWEN_LIKE_TEMPLATE: &str = r#"{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

pub(crate) const HIDDEN: usize = 256;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 512;
const LAYERS: usize = 2;
/// Merges on top of the 256 byte tokens (a few German pieces).
const MERGES: [(&str, &str); 8] = [
    ("e", "n"),
    ("e", "r"),
    ("c", "h"),
    ("Ġ", "d"),
    ("i", "e"),
    ("Ġd", "ie"),
    ("s", "t"),
    ("Ġ", "B"),
];
pub(crate) const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// What to put into the tiny GGUF.
#[derive(Debug, Clone)]
pub(crate) struct TinyGguf {
    pub(crate) architecture: &'static str,
    pub(crate) context_length: u32,
    pub(crate) chat_template: Option<&'static str>,
    pub(crate) seed: u64,
    /// Weights as in a Q4_K_M file (Q4_K, with Q6_K for v, down and the output) instead of
    /// Q8_0: Lotse's own kernels run them.
    pub(crate) k_quants: bool,
}

impl Default for TinyGguf {
    fn default() -> Self {
        TinyGguf {
            architecture: "qwen2",
            context_length: 128,
            chat_template: Some(QWEN_LIKE_TEMPLATE),
            seed: 7,
            k_quants: false,
        }
    }
}

/// GPT-2's byte-to-unicode table: printable bytes stand for themselves, the others map to
/// U+0100 onwards.
pub(crate) fn byte_char(b: u8) -> char {
    let printable = |b: u8| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    if printable(b) {
        char::from(b)
    } else {
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap_or('?')
    }
}

/// splitmix64: reproducible weights without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn matrix(&mut self, rows: usize, cols: usize, scale: f32) -> Vec<f32> {
        (0..rows * cols).map(|_| self.next_f32() * scale).collect()
    }
}

fn qtensor(data: Vec<f32>, dims: &[usize], dtype: GgmlDType) -> QTensor {
    let t = Tensor::from_vec(data, dims, &Device::Cpu).unwrap();
    QTensor::quantize(&t, dtype).unwrap()
}

impl TinyGguf {
    pub(crate) fn vocab(&self) -> Vec<String> {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
        tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
        tokens.extend(SPECIAL_TOKENS.iter().map(|s| s.to_string()));
        tokens
    }

    pub(crate) fn write(&self, path: &Path) {
        let tokens = self.vocab();
        let vocab = tokens.len();
        let n_special = SPECIAL_TOKENS.len();
        let token_types: Vec<Value> = (0..vocab)
            .map(|i| Value::I32(if i >= vocab - n_special { 3 } else { 1 }))
            .collect();
        let id_of = |t: &str| tokens.iter().position(|x| x == t).unwrap() as u32;
        // Hyper-parameters under the architecture's prefix (qwen2's for unknown ones).
        let arch = self.architecture;
        let px = match arch {
            "qwen3" | "llama" | "gemma3" => arch,
            _ => "qwen2",
        };
        let head_dim = HIDDEN / HEADS;
        let mut metadata: Vec<(String, Value)> = vec![
            (
                "general.architecture".into(),
                Value::String(self.architecture.into()),
            ),
            (
                "general.name".into(),
                Value::String("tiny test model".into()),
            ),
            (format!("{px}.block_count"), Value::U32(LAYERS as u32)),
            (
                format!("{px}.context_length"),
                Value::U32(self.context_length),
            ),
            (format!("{px}.embedding_length"), Value::U32(HIDDEN as u32)),
            (format!("{px}.feed_forward_length"), Value::U32(FFN as u32)),
            (
                format!("{px}.attention.head_count"),
                Value::U32(HEADS as u32),
            ),
            (
                format!("{px}.attention.head_count_kv"),
                Value::U32(KV_HEADS as u32),
            ),
            (format!("{px}.rope.freq_base"), Value::F32(10_000.0)),
            (
                format!("{px}.attention.layer_norm_rms_epsilon"),
                Value::F32(1e-6),
            ),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("qwen2".into())),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(token_types),
            ),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(
                    MERGES
                        .iter()
                        .map(|(a, b)| Value::String(format!("{a} {b}")))
                        .collect(),
                ),
            ),
            (
                "tokenizer.ggml.bos_token_id".into(),
                Value::U32(id_of("<|endoftext|>")),
            ),
            (
                "tokenizer.ggml.eos_token_id".into(),
                Value::U32(id_of("<|im_end|>")),
            ),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ];
        if matches!(arch, "qwen3" | "gemma3") {
            metadata.push((
                format!("{px}.attention.key_length"),
                Value::U32(head_dim as u32),
            ));
            metadata.push((
                format!("{px}.attention.value_length"),
                Value::U32(head_dim as u32),
            ));
        }
        if arch == "llama" {
            metadata.push((
                format!("{px}.rope.dimension_count"),
                Value::U32(head_dim as u32),
            ));
        }
        if arch == "gemma3" {
            metadata.push((format!("{px}.attention.sliding_window"), Value::U32(64)));
        }
        if let Some(t) = self.chat_template {
            metadata.push(("tokenizer.chat_template".into(), Value::String(t.into())));
        }

        let mut rng = Rng(self.seed);
        let kv_dim = KV_HEADS * head_dim;
        let q8 = GgmlDType::Q8_0;
        let f32_ = GgmlDType::F32;
        let (q4, q6) = if self.k_quants {
            (GgmlDType::Q4K, GgmlDType::Q6K)
        } else {
            (q8, q8)
        };
        let proj_as = |rng: &mut Rng, rows: usize, cols: usize, dtype: GgmlDType| {
            qtensor(
                rng.matrix(rows, cols, 1.0 / (cols as f32).sqrt()),
                &[rows, cols],
                dtype,
            )
        };
        let proj = |rng: &mut Rng, rows: usize, cols: usize| proj_as(rng, rows, cols, q4);
        // Dimension 0 of every embedding is a large constant that survives the layers; the
        // output rows of special tokens weigh it strongly negative, so random weights never
        // end a generation early (tests can rely on reaching max_tokens).
        let mut embed = rng.matrix(vocab, HIDDEN, 1.7);
        for row in embed.chunks_mut(HIDDEN) {
            row[0] = 6.0;
        }
        let mut output = rng.matrix(vocab, HIDDEN, 0.5);
        for (i, row) in output.chunks_mut(HIDDEN).enumerate() {
            row[0] = if i >= vocab - n_special { -10.0 } else { 0.0 };
        }
        let mut tensors: Vec<(String, QTensor)> = vec![
            (
                "token_embd.weight".into(),
                qtensor(embed, &[vocab, HIDDEN], q8),
            ),
            (
                "output.weight".into(),
                qtensor(output, &[vocab, HIDDEN], q6),
            ),
            (
                "output_norm.weight".into(),
                qtensor(vec![1.0; HIDDEN], &[HIDDEN], f32_),
            ),
        ];
        for i in 0..LAYERS {
            let p = |s: &str| format!("blk.{i}.{s}");
            let norm = |rng: &mut Rng| {
                let w: Vec<f32> = (0..HIDDEN).map(|_| 1.0 + 0.1 * rng.next_f32()).collect();
                qtensor(w, &[HIDDEN], f32_)
            };
            let bias = |rng: &mut Rng, n: usize| qtensor(rng.matrix(1, n, 0.1), &[n], f32_);
            tensors.push((p("attn_norm.weight"), norm(&mut rng)));
            tensors.push((p("attn_q.weight"), proj(&mut rng, HIDDEN, HIDDEN)));
            tensors.push((p("attn_k.weight"), proj(&mut rng, kv_dim, HIDDEN)));
            tensors.push((p("attn_v.weight"), proj_as(&mut rng, kv_dim, HIDDEN, q6)));
            if px == "qwen2" {
                tensors.push((p("attn_q.bias"), bias(&mut rng, HIDDEN)));
                tensors.push((p("attn_k.bias"), bias(&mut rng, kv_dim)));
                tensors.push((p("attn_v.bias"), bias(&mut rng, kv_dim)));
            }
            if matches!(arch, "qwen3" | "gemma3") {
                let head_norm = |rng: &mut Rng| {
                    let w: Vec<f32> = (0..head_dim).map(|_| 1.0 + 0.1 * rng.next_f32()).collect();
                    qtensor(w, &[head_dim], f32_)
                };
                tensors.push((p("attn_q_norm.weight"), head_norm(&mut rng)));
                tensors.push((p("attn_k_norm.weight"), head_norm(&mut rng)));
            }
            if arch == "gemma3" {
                tensors.push((p("post_attention_norm.weight"), norm(&mut rng)));
                tensors.push((p("post_ffw_norm.weight"), norm(&mut rng)));
            }
            tensors.push((p("attn_output.weight"), proj(&mut rng, HIDDEN, HIDDEN)));
            tensors.push((p("ffn_norm.weight"), norm(&mut rng)));
            tensors.push((p("ffn_gate.weight"), proj(&mut rng, FFN, HIDDEN)));
            tensors.push((p("ffn_up.weight"), proj(&mut rng, FFN, HIDDEN)));
            tensors.push((p("ffn_down.weight"), proj_as(&mut rng, HIDDEN, FFN, q6)));
        }

        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut file = std::fs::File::create(path).unwrap();
        gguf_file::write(&mut file, &md, &ts).unwrap();
    }
}

/// A temp dir holding a tiny GGUF written from `spec`.
pub(crate) fn tiny_gguf(spec: &TinyGguf) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("tiny-{}.gguf", spec.architecture));
    spec.write(&path);
    (dir, path)
}

/// The default tiny model, loaded.
pub(crate) fn tiny_generator(opts: LoadOptions) -> (tempfile::TempDir, LocalGenerator) {
    let (dir, path) = tiny_gguf(&TinyGguf::default());
    let generator = LocalGenerator::load(&path, opts).unwrap();
    (dir, generator)
}
