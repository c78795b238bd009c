//! Each SIMD path against the scalar reference on random blocks (odd row counts, partial
//! tiles, row counts across the work-unit size), and the packing against candle's own
//! dequantisation of the same GGUF blocks.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() % 20_001) as f32 / 10_000.0 - 1.0
    }
    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// A `(n, k)` matrix quantized by candle, and its dequantised f32 values.
fn weights(rng: &mut Rng, dtype: GgmlDType, n: usize, k: usize) -> (QTensor, Vec<f32>) {
    let w = Tensor::from_vec(rng.values(n * k), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (q, deq)
}

fn reference(w: &[f32], x: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for r in 0..m {
        for j in 0..n {
            out[r * n + j] = (0..k).map(|i| x[r * k + i] * w[j * k + i]).sum();
        }
    }
    out
}

fn isas() -> Vec<Isa> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni]
        .into_iter()
        .filter(|i| i.available())
        .collect()
}

fn close(a: &[f32], b: &[f32], rel: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= rel * scale, "{what}: element {i}: {x} vs {y} (scale {scale})");
    }
}

#[test]
fn every_path_matches_the_scalar_reference_and_candles_dequantisation() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
        // odd row counts (a partial last tile), one and several superblocks
        for (n, k) in [(37, 256), (16, 512), (50, 768)] {
            let (q, deq) = weights(&mut rng, dtype, n, k);
            let matrix = QMatrix::from_qtensor(&q).unwrap().expect("packed");
            assert_eq!((matrix.rows(), matrix.cols()), (n, k));
            for m in [1, 2, 3, 5, 8, 11, 70] {
                let x = rng.values(m * k);
                let acts = QActs::quantize(&x, m, k);
                let mut want = vec![0f32; m * n];
                matrix.matmul_with(Isa::Scalar, &acts, &mut want);
                // the quantised product is close to the f32 product of the same weights
                close(&want, &reference(&deq, &x, m, n, k), 0.02, &format!("{dtype:?} scalar vs f32, m={m}"));
                for isa in isas() {
                    let mut got = vec![f32::NAN; m * n];
                    matrix.matmul_with(isa, &acts, &mut got);
                    close(&got, &want, 1e-5, &format!("{dtype:?} {isa:?} vs scalar, n={n} k={k} m={m}"));
                }
            }
        }
    }
}

#[test]
fn extreme_values_do_not_overflow() {
    // weights of one magnitude with mixed signs, activations alternating in sign: the
    // largest sums these shapes allow (the bounds are in avx512.rs)
    let mut rng = Rng(7);
    for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
        let (n, k) = (16, 2048);
        let w: Vec<f32> = (0..n * k).map(|i| if i % 3 == 0 { -1.0 } else { 1.0 }).collect();
        let q = QTensor::quantize(&Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap(), dtype).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let matrix = QMatrix::from_qtensor(&q).unwrap().unwrap();
        let x: Vec<f32> = (0..k).map(|i| if i % 2 == 0 { 3.0 } else { -3.0 } * (1.0 + rng.f32().abs())).collect();
        let acts = QActs::quantize(&x, 1, k);
        for isa in isas() {
            let mut got = vec![0f32; n];
            matrix.matmul_with(isa, &acts, &mut got);
            close(&got, &reference(&deq, &x, 1, n, k), 0.02, &format!("{dtype:?} {isa:?}"));
        }
    }
}

#[test]
fn stacked_matrices_give_their_parts_side_by_side() {
    let mut rng = Rng(42);
    let (qa, _) = weights(&mut rng, GgmlDType::Q4K, 32, 512);
    let (qb, _) = weights(&mut rng, GgmlDType::Q4K, 16, 512);
    let (a, b) = (
        QMatrix::from_qtensor(&qa).unwrap().unwrap(),
        QMatrix::from_qtensor(&qb).unwrap().unwrap(),
    );
    assert!(a.stacks_with(&b));
    let both = QMatrix::stack(vec![a.clone(), b.clone()]);
    let x = rng.values(3 * 512);
    let (mut oa, mut ob, mut o) = (vec![0f32; 3 * 32], vec![0f32; 3 * 16], vec![0f32; 3 * 48]);
    a.matmul(&x, 3, &mut oa);
    b.matmul(&x, 3, &mut ob);
    both.matmul(&x, 3, &mut o);
    for r in 0..3 {
        assert_eq!(&o[r * 48..r * 48 + 32], &oa[r * 32..(r + 1) * 32]);
        assert_eq!(&o[r * 48 + 32..(r + 1) * 48], &ob[r * 16..(r + 1) * 16]);
    }
    // mixed types or a partial tile do not stack
    let (q6, _) = weights(&mut rng, GgmlDType::Q6K, 16, 512);
    assert!(!a.stacks_with(&QMatrix::from_qtensor(&q6).unwrap().unwrap()));
    let (odd, _) = weights(&mut rng, GgmlDType::Q4K, 20, 512);
    assert!(!QMatrix::from_qtensor(&odd).unwrap().unwrap().stacks_with(&a));
    let (wide, _) = weights(&mut rng, GgmlDType::Q4K, 16, 256);
    assert!(!a.stacks_with(&QMatrix::from_qtensor(&wide).unwrap().unwrap()));
}

#[test]
fn other_types_and_widths_stay_with_candle() {
    let mut rng = Rng(3);
    let (q8, _) = weights(&mut rng, GgmlDType::Q8_0, 16, 256);
    assert!(QMatrix::from_qtensor(&q8).unwrap().is_none());
    let (q4, _) = weights(&mut rng, GgmlDType::Q4_0, 16, 96);
    assert!(QMatrix::from_qtensor(&q4).unwrap().is_none());
}

#[test]
fn the_tiles_are_about_as_large_as_the_file() {
    let mut rng = Rng(5);
    let (q4, _) = weights(&mut rng, GgmlDType::Q4K, 64, 1024);
    let (q6, _) = weights(&mut rng, GgmlDType::Q6K, 64, 1024);
    for q in [q4, q6] {
        let file = q.storage_size_in_bytes();
        let ours = QMatrix::from_qtensor(&q).unwrap().unwrap().bytes();
        assert!(ours as f64 <= file as f64 * 1.03, "{ours} bytes for {file} in the file");
    }
}

#[test]
fn zero_activations_give_zero_and_non_finite_ones_nan() {
    let mut rng = Rng(8);
    let (q, _) = weights(&mut rng, GgmlDType::Q4K, 16, 512);
    let matrix = QMatrix::from_qtensor(&q).unwrap().unwrap();
    let mut x = vec![0f32; 512];
    let mut out = vec![1f32; 16];
    matrix.matmul(&x, 1, &mut out);
    assert!(out.iter().all(|&v| v == 0.0));
    x[3] = f32::INFINITY;
    for isa in isas() {
        matrix.matmul_with(isa, &QActs::quantize(&x, 1, 512), &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{isa:?}: {out:?}");
    }
}

/// The real model's tensors (Q4_K and Q6_K, the largest shapes) through every path: the
/// same sums as candle's kernels, and close to the f32 product of the dequantised weights.
#[test]
fn real_model_tensors_match_candles_kernels() {
    use candle_core::Module;
    use candle_core::quantized::{QMatMul, gguf_file};
    let file = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
    let Some(path) = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(|d| std::path::Path::new(&d).join(file))
        .filter(|p| p.is_file())
    else {
        assert!(
            std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(),
            "LOTSE_REQUIRE_MODELS is set but {file} is not in LOTSE_MODEL_CACHE"
        );
        eprintln!("skipped: model file not found");
        return;
    };
    let mut f = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    let mut rng = Rng(11);
    for name in ["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.1.ffn_down.weight", "blk.3.ffn_up.weight"] {
        let q = ct.tensor(&mut f, name, &Device::Cpu).unwrap();
        let (n, k) = q.shape().dims2().unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let matrix = QMatrix::from_qtensor(&q).unwrap().unwrap();
        let candle = QMatMul::from_qtensor(q).unwrap();
        for m in [1, 3] {
            let x = rng.values(m * k);
            let want = candle
                .forward(&Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            // the f32 product on the first rows
            let rows = n.min(2048);
            let exact: Vec<f32> = (0..m)
                .flat_map(|r| (0..rows).map(move |j| (r, j)))
                .map(|(r, j)| (0..k).map(|i| x[r * k + i] * deq[j * k + i]).sum())
                .collect();
            let acts = QActs::quantize(&x, m, k);
            for isa in isas() {
                let mut got = vec![0f32; m * n];
                matrix.matmul_with(isa, &acts, &mut got);
                let what = format!("{name} {isa:?} m={m}");
                close(&got, &want, 1e-5, &format!("{what} vs candle"));
                let head: Vec<f32> = (0..m).flat_map(|r| got[r * n..r * n + rows].to_vec()).collect();
                close(&head, &exact, 0.01, &format!("{what} vs f32"));
            }
        }
    }
}

/// The workspace denies `unsafe`; this module is the one place that allows it.
#[test]
fn unsafe_is_allowed_in_the_kernels_module_alone() {
    fn walk(dir: &std::path::Path, hits: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, hits);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                // the pattern split in two so that this file does not match itself
                if text.contains(concat!("allow(", "unsafe_code)")) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut hits = Vec::new();
    for dir in ["crates", "crawler", "widget", "tests"] {
        if root.join(dir).is_dir() {
            walk(&root.join(dir), &mut hits);
        }
    }
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].ends_with("inference/src/kernels/mod.rs"), "{hits:?}");
}

#[test]
fn decode_attention_matches_a_plain_softmax_on_every_path() {
    let mut rng = Rng(99);
    for (n_head, n_kv, d, len) in [(12, 2, 128, 300), (4, 4, 64, 1), (6, 1, 80, 17), (8, 2, 16, 5)] {
        let q = rng.values(n_head * d);
        let kv: Vec<f32> = rng.values(len * n_kv * 2 * d).iter().map(|x| x * 3.0).collect();
        let scale = 1.0 / (d as f32).sqrt();
        let mut want = vec![0f32; n_head * d];
        for h in 0..n_head {
            let kh = h / (n_head / n_kv);
            let s: Vec<f32> = (0..len)
                .map(|j| (0..d).map(|i| q[h * d + i] * kv[(j * n_kv + kh) * 2 * d + i]).sum::<f32>() * scale)
                .collect();
            let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = s.iter().map(|x| (x - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            for j in 0..len {
                for i in 0..d {
                    want[h * d + i] += e[j] / sum * kv[(j * n_kv + kh) * 2 * d + d + i];
                }
            }
        }
        // the cache per K/V head, as the model keeps it
        let heads: Vec<Vec<f32>> = (0..n_kv)
            .map(|h| (0..len).flat_map(|j| kv[(j * n_kv + h) * 2 * d..][..2 * d].to_vec()).collect())
            .collect();
        let heads: Vec<&[f32]> = heads.iter().map(Vec::as_slice).collect();
        for isa in isas() {
            let mut got = vec![f32::NAN; n_head * d];
            attend_one(isa, &q, &heads, n_head, d, len, scale, &mut got);
            close(&got, &want, 1e-5, &format!("{isa:?} {n_head}/{n_kv} heads, d {d}, {len} positions"));
        }
    }
}
