//! Generator tests on a tiny random-weight Qwen2 written by the test itself, service tests
//! with fake generators, and one end-to-end test with the real model when it is present.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use super::fit::CUT_MARKER;
use super::testutil::{TinyGguf, tiny_generator, tiny_gguf};
use super::{GenerationEvent, GenerationService, Kernels, LoadOptions, LocalGenerator};
use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result, Role, StopReason,
};

fn greedy(max_tokens: usize) -> GenerationParams {
    GenerationParams {
        max_tokens,
        temperature: 0.0,
        ..GenerationParams::default()
    }
}

/// Generate and also collect the streamed pieces.
fn run(
    generator: &dyn Generator,
    messages: &[ChatMessage],
    params: &GenerationParams,
) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let generation = generator
        .generate(messages, params, &CancelToken::new(), &mut |t| {
            pieces.push(t.to_string())
        })
        .unwrap();
    (generation, pieces)
}

fn question() -> Vec<ChatMessage> {
    vec![ChatMessage::user("Wie melde ich meinen Hund an?")]
}

#[test]
fn tiny_model_loads_with_metadata_from_the_file() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    assert_eq!(g.architecture(), "qwen2");
    assert_eq!(
        g.info().context_len,
        128,
        "the file's context, below the 4096 cap"
    );
    assert!(!g.info().external);
    assert_eq!(g.info().id, "tiny-qwen2");
    let im_end = g.tokenize("<|im_end|>").unwrap();
    let endoftext = g.tokenize("<|endoftext|>").unwrap();
    assert_eq!(im_end.len(), 1, "special tokens are single tokens");
    assert!(g.eos_ids().contains(&im_end[0]));
    assert!(g.eos_ids().contains(&endoftext[0]));

    let (_dir, g) = tiny_generator(LoadOptions {
        max_context: 64,
        model_id: Some("tiny".into()),
        ..LoadOptions::default()
    });
    assert_eq!(g.info().context_len, 64);
    assert_eq!(g.info().id, "tiny");
}

#[test]
fn prompt_is_the_rendered_template_without_added_special_tokens() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let rendered = g.template().render(&question()).unwrap();
    assert!(rendered.starts_with("<|im_start|>system\nYou are a helpful assistant."));
    assert!(rendered.ends_with("<|im_start|>assistant\n"));
    let ids = g.tokenize(&rendered).unwrap();
    assert_eq!(g.prompt_tokens(&question()).unwrap(), ids.len());
    let im_start = g.tokenize("<|im_start|>").unwrap()[0];
    assert_eq!(
        ids[0], im_start,
        "no BOS added, template tokens are special tokens"
    );
    assert_eq!(ids.iter().filter(|&&t| t == im_start).count(), 3);

    // Without a template in the file, ChatML is used and no system prompt is invented.
    let (_dir, path) = tiny_gguf(&TinyGguf {
        chat_template: None,
        ..TinyGguf::default()
    });
    let g = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    assert!(g.template().is_fallback());
    assert_eq!(
        g.template().render(&question()).unwrap(),
        "<|im_start|>user\nWie melde ich meinen Hund an?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn greedy_generation_is_deterministic_and_respects_max_tokens() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let (a, pieces) = run(&g, &question(), &greedy(12));
    let (b, _) = run(&g, &question(), &greedy(12));
    // the second run reuses the prompt's keys and values from the cache (all but the last
    // token); the output is the same
    assert_eq!(a.cached_prompt_tokens, 0);
    assert_eq!(b.cached_prompt_tokens, b.prompt_tokens - 1);
    assert_eq!(Generation { cached_prompt_tokens: 0, ..b }, a);
    assert_eq!(a.completion_tokens, 12);
    assert_eq!(a.stop_reason, StopReason::MaxTokens);
    assert!(!a.prompt_truncated);
    assert_eq!(a.prompt_tokens, g.prompt_tokens(&question()).unwrap());
    assert!(!a.text.is_empty());
    assert_eq!(pieces.concat(), a.text, "streamed pieces make up the text");
    assert!(pieces.iter().all(|p| !p.is_empty()));

    let (short, _) = run(&g, &question(), &greedy(3));
    assert_eq!(short.completion_tokens, 3);
    assert!(a.text.starts_with(&short.text) || short.text.ends_with('\u{FFFD}'));

    let (none, pieces) = run(&g, &question(), &greedy(0));
    assert_eq!((none.completion_tokens, none.text.as_str()), (0, ""));
    assert!(pieces.is_empty());
}

#[test]
fn sampling_is_reproducible_per_seed() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let params = |seed| GenerationParams {
        max_tokens: 10,
        temperature: 1.0,
        top_p: 0.95,
        seed,
        stop: vec![],
        background: false,
    };
    let first = run(&g, &question(), &params(1)).0;
    let again = run(&g, &question(), &params(1)).0;
    assert_eq!(first, Generation { cached_prompt_tokens: first.cached_prompt_tokens, ..again });
    let texts: std::collections::HashSet<String> = (1..6)
        .map(|s| run(&g, &question(), &params(s)).0.text)
        .collect();
    assert!(texts.len() > 1, "different seeds give different samples");
}

#[test]
fn stop_sequence_cuts_the_output_before_it() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let (full, _) = run(&g, &question(), &greedy(40));
    // A stop string taken from the middle of the unstopped output.
    let chars: Vec<(usize, char)> = full.text.char_indices().collect();
    assert!(chars.len() >= 10, "{:?}", full.text);
    let (start, _) = chars[chars.len() / 2];
    let end = chars
        .get(chars.len() / 2 + 2)
        .map_or(full.text.len(), |c| c.0);
    let stop = full.text[start..end].to_string();
    let expected = &full.text[..full.text.find(&stop).unwrap()];

    let params = GenerationParams {
        stop: vec!["never in the output".into(), stop.clone()],
        ..greedy(40)
    };
    let (stopped, pieces) = run(&g, &question(), &params);
    assert_eq!(stopped.stop_reason, StopReason::StopSequence);
    assert_eq!(stopped.text, expected, "stop {stop:?}");
    assert_eq!(pieces.concat(), stopped.text);
    assert!(stopped.completion_tokens < 40);
}

#[test]
fn cancellation_stops_generation() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let cancel = CancelToken::new();
    cancel.cancel();
    let res = g
        .generate(&question(), &greedy(20), &cancel, &mut |_| {})
        .unwrap();
    assert_eq!(res.stop_reason, StopReason::Cancelled);
    assert_eq!(res.completion_tokens, 0);

    let cancel = CancelToken::new();
    let mut n = 0;
    let res = g
        .generate(&question(), &greedy(60), &cancel, &mut |_| {
            n += 1;
            if n == 3 {
                cancel.cancel();
            }
        })
        .unwrap();
    assert_eq!(res.stop_reason, StopReason::Cancelled);
    assert!(res.completion_tokens < 60);
}

fn long_text(words: usize) -> String {
    (0..words)
        .map(|i| format!("Wort{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn long_history_is_dropped_oldest_first_keeping_system_and_last_user() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let messages = vec![
        ChatMessage::system("Sei knapp."),
        ChatMessage::user("erste Frage"),
        ChatMessage {
            role: Role::Assistant,
            content: long_text(30),
        },
        ChatMessage::user("zweite Frage"),
        ChatMessage {
            role: Role::Assistant,
            content: "kurze Antwort".into(),
        },
        ChatMessage::user("letzte Frage"),
    ];
    assert!(g.prompt_tokens(&messages).unwrap() > 128);
    let fitted = g.fit(&messages, 16).unwrap();
    assert!(fitted.truncated);
    assert!(fitted.tokens.len() + fitted.max_tokens <= 128);
    assert_eq!(fitted.max_tokens, 16, "the completion budget is kept");
    assert_eq!(
        fitted.messages.first(),
        messages.first(),
        "system message kept"
    );
    assert_eq!(
        fitted.messages.last(),
        messages.last(),
        "last user message kept"
    );
    assert!(!fitted.messages.iter().any(|m| m.content == "erste Frage"));
    // Newer history survives when there is room for it.
    assert!(fitted.messages.iter().any(|m| m.content == "kurze Antwort"));

    let (res, _) = run(&g, &messages, &greedy(16));
    assert!(res.prompt_truncated);
    assert_eq!(res.prompt_tokens, fitted.tokens.len());
    assert_eq!(res.completion_tokens, 16);
}

#[test]
fn longest_message_loses_its_middle_when_dropping_history_is_not_enough() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let question = format!("ANFANG {} ENDE?", long_text(60));
    let messages = vec![ChatMessage::user(question)];
    let fitted = g.fit(&messages, 20).unwrap();
    assert!(fitted.truncated);
    assert!(fitted.tokens.len() + fitted.max_tokens <= 128);
    assert_eq!(fitted.max_tokens, 20);
    let cut = &fitted.messages[0].content;
    assert!(cut.starts_with("ANFANG "), "{cut}");
    assert!(cut.ends_with(" ENDE?"), "{cut}");
    assert!(cut.contains(CUT_MARKER));

    let (res, pieces) = run(&g, &messages, &greedy(20));
    assert!(res.prompt_truncated);
    assert_eq!(res.completion_tokens, 20);
    assert_eq!(pieces.concat(), res.text);
}

#[test]
fn max_tokens_shrink_and_tiny_contexts_never_fail() {
    // The completion budget is protected only up to half the context: a prompt shorter
    // than that stays whole and the completion gets the rest.
    let (_dir, path) = tiny_gguf(&TinyGguf {
        context_length: 256,
        ..TinyGguf::default()
    });
    let g = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    let fitted = g.fit(&question(), 1000).unwrap();
    assert!(!fitted.truncated);
    assert!(fitted.tokens.len() < 128);
    assert_eq!(fitted.max_tokens, 256 - fitted.tokens.len());
    let (res, _) = run(&g, &question(), &greedy(1000));
    assert_eq!(res.prompt_tokens + res.completion_tokens, 256);

    // A context smaller than the template's own text: only the prompt's end is kept.
    let (_dir, g) = tiny_generator(LoadOptions {
        max_context: 16,
        ..LoadOptions::default()
    });
    let messages = vec![
        ChatMessage::system(long_text(50)),
        ChatMessage::user(long_text(50)),
    ];
    let (res, _) = run(&g, &messages, &greedy(50));
    assert!(res.prompt_truncated);
    assert_eq!(res.prompt_tokens, 15);
    assert_eq!(res.completion_tokens, 1);
}

/// Logits agree up to activation-quantization noise: candle quantizes activations to 8 bits
/// per matmul, so float differences of a few ULPs (from other matrix shapes) can flip a
/// rounding step. A real error (wrong position, wrong cache) is far larger.
fn assert_logits_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max);
    assert!(
        max <= 5e-3 * scale,
        "{what}: max logit difference {max} (largest logit {scale})"
    );
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
    assert_eq!(argmax(a), argmax(b), "{what}: greedy choice differs");
}

#[test]
fn own_qwen2_matches_candle_quantized_qwen2() {
    let (_dir, path) = tiny_gguf(&TinyGguf::default());
    let ours = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    let candle = LocalGenerator::load(
        &path,
        LoadOptions {
            candle_qwen2: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tokens = ours
        .tokenize(&ours.template().render(&question()).unwrap())
        .unwrap();
    let close = |a: &[f32], b: &[f32]| assert_logits_close(a, b, "qwen2");
    let reference = candle.logits_after(&tokens, tokens.len()).unwrap();
    close(
        &ours.logits_after(&tokens, tokens.len()).unwrap(),
        &reference,
    );
    // Chunked prompt processing and single-token decode steps agree with one pass.
    close(&ours.logits_after(&tokens, 7).unwrap(), &reference);
    close(&ours.logits_after(&tokens, 1).unwrap(), &reference);
    close(&candle.logits_after(&tokens, 5).unwrap(), &reference);

    let (a, _) = run(&ours, &question(), &greedy(16));
    let (b, _) = run(&candle, &question(), &greedy(16));
    assert_eq!(a.text, b.text);
}

/// Lotse's own Q4_K/Q6_K kernels, on every instruction-set path (AVX2 forced on AVX-512
/// machines, and the scalar reference), against candle's quantized Qwen2 on the same file:
/// logits of a prompt pass and of single-token steps, and the greedy output.
#[test]
fn own_kernels_match_candle_on_k_quant_weights_on_every_path() {
    let spec = TinyGguf {
        k_quants: true,
        ..TinyGguf::default()
    };
    let (_dir, path) = tiny_gguf(&spec);
    let candle = LocalGenerator::load(
        &path,
        LoadOptions {
            candle_qwen2: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tokens = candle
        .tokenize(&candle.template().render(&question()).unwrap())
        .unwrap();
    let reference = candle.logits_after(&tokens, tokens.len()).unwrap();
    // random weights leave near-ties that float rounding decides: the greedy text is the
    // same on every path of ours, and its first tokens are candle's
    let (theirs, _) = run(&candle, &question(), &greedy(4));
    let mut want = None;
    for kernels in [Kernels::Auto, Kernels::Avx2, Kernels::Scalar] {
        let ours = LocalGenerator::load(
            &path,
            LoadOptions {
                kernels,
                ..LoadOptions::default()
            },
        )
        .unwrap();
        let what = format!("{kernels:?}");
        assert_logits_close(&ours.logits_after(&tokens, tokens.len()).unwrap(), &reference, &what);
        assert_logits_close(&ours.logits_after(&tokens, 1).unwrap(), &reference, &what);
        let (first, _) = run(&ours, &question(), &greedy(4));
        assert_eq!(first.text, theirs.text, "{what}");
        let (got, _) = run(&ours, &question(), &greedy(16));
        assert_eq!(&got.text, want.get_or_insert_with(|| got.text.clone()), "{what}");
    }
}

#[test]
fn a_prompt_prefix_shared_with_the_previous_one_is_reused_and_changes_nothing() {
    let (_dir, path) = tiny_gguf(&TinyGguf::default());
    let warm = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    let cold = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    let rules = ChatMessage::system("Sie beantworten Fragen nur mit den Quellen. Kurz, Sie-Form.");
    let first = vec![
        rules.clone(),
        ChatMessage::user("Wie melde ich meinen Hund an?"),
    ];
    let second = vec![rules, ChatMessage::user("Was kostet ein Parkausweis?")];

    let (a, _) = run(&warm, &first, &greedy(8));
    assert_eq!(
        warm.cached_tokens(),
        a.prompt_tokens + a.completion_tokens - 1,
        "prompt and generated tokens stay cached (the last sample never ran)"
    );
    let (reused, _) = run(&warm, &second, &greedy(16));
    let (fresh, _) = run(&cold, &second, &greedy(16));
    assert_eq!(reused.text, fresh.text);
    assert_eq!(reused.completion_tokens, fresh.completion_tokens);

    // the same prompt again: all but its last token come from the cache
    let (again, _) = run(&warm, &second, &greedy(16));
    assert_eq!(again.text, fresh.text);
    // a prompt with nothing in common, and then a cancelled one, start over cleanly
    let other = vec![ChatMessage::user("Öffnungszeiten?")];
    let (o1, _) = run(&warm, &other, &greedy(6));
    let (o2, _) = run(&cold, &other, &greedy(6));
    assert_eq!(o1.text, o2.text);
    let cancel = CancelToken::new();
    cancel.cancel();
    warm.generate(&second, &greedy(16), &cancel, &mut |_| {})
        .unwrap();
    let (after_cancel, _) = run(&warm, &second, &greedy(16));
    assert_eq!(after_cancel.text, fresh.text);

    // background work keeps its own cache (and runs its prompt in short passes): the answers'
    // prefix survives it, and both give the same text as a fresh model
    let answers = warm.cached_tokens_in(false);
    assert!(answers > 0);
    let long = vec![ChatMessage::user(long_text(60))];
    let background = GenerationParams {
        background: true,
        ..greedy(6)
    };
    let (b1, _) = run(&warm, &long, &background);
    let (b2, _) = run(&cold, &long, &greedy(6));
    assert!(
        b1.prompt_tokens > 48,
        "the prompt needs several background passes"
    );
    assert_eq!(b1.text, b2.text);
    assert_eq!(
        warm.cached_tokens_in(false),
        answers,
        "the answers' cache is untouched"
    );
    assert_eq!(
        warm.cached_tokens_in(true),
        b1.prompt_tokens + b1.completion_tokens - 1
    );
    let (after_background, _) = run(&warm, &second, &greedy(16));
    assert_eq!(after_background.text, fresh.text);
}

#[test]
fn candle_backends_for_qwen3_llama_and_gemma3_generate() {
    for architecture in ["qwen3", "gemma3", "llama"] {
        let (_dir, path) = tiny_gguf(&TinyGguf {
            architecture,
            ..TinyGguf::default()
        });
        let g = LocalGenerator::load(&path, LoadOptions::default())
            .unwrap_or_else(|e| panic!("{architecture}: {e}"));
        assert_eq!(g.architecture(), architecture);
        let (a, pieces) = run(&g, &question(), &greedy(8));
        let (b, _) = run(&g, &question(), &greedy(8));
        assert_eq!(
            a, b,
            "{architecture}: a new generation starts from an empty cache"
        );
        assert_eq!(a.completion_tokens, 8, "{architecture}");
        assert_eq!(pieces.concat(), a.text);
        // Chunked prompt processing (positions offset by the cache) matches one pass
        // (Gemma 3 always takes the prompt in one pass, see `Backend::prefill_chunk`).
        let tokens = g
            .tokenize(&g.template().render(&question()).unwrap())
            .unwrap();
        let full = g.logits_after(&tokens, tokens.len()).unwrap();
        let chunked = g.logits_after(&tokens, 9).unwrap();
        assert_logits_close(&chunked, &full, architecture);
    }
}

#[test]
fn damaged_or_foreign_files_are_clean_errors() {
    let (dir, path) = tiny_gguf(&TinyGguf::default());
    let bytes = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("half", bytes[..bytes.len() / 2].to_vec()),
        ("header only", bytes[..64].to_vec()),
        ("metadata cut", bytes[..3000].to_vec()),
        ("empty", vec![]),
        ("text", b"this is not a model\n".repeat(100)),
        ("garbage after magic", {
            let mut b = b"GGUF\x03\x00\x00\x00".to_vec();
            b.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
            b
        }),
    ];
    for (name, data) in cases {
        let p = dir.path().join(format!("{}.gguf", name.replace(' ', "-")));
        std::fs::write(&p, data).unwrap();
        match LocalGenerator::load(&p, LoadOptions::default()) {
            Err(InferenceError::Format(_) | InferenceError::Tokenizer(_)) => {}
            other => panic!("{name}: expected a format error, got {other:?}"),
        }
    }
    let err =
        LocalGenerator::load(&dir.path().join("absent.gguf"), LoadOptions::default()).unwrap_err();
    assert!(matches!(err, InferenceError::ModelMissing { .. }), "{err}");
    assert!(err.to_string().contains("lotse models fetch"));

    let (_dir, path) = tiny_gguf(&TinyGguf {
        architecture: "mamba",
        ..TinyGguf::default()
    });
    let err = LocalGenerator::load(&path, LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, InferenceError::Architecture(ref a) if a == "mamba"),
        "{err}"
    );
}

// ---- the service -------------------------------------------------------------------------

fn fake_info() -> ModelInfo {
    ModelInfo {
        id: "fake".into(),
        external: false,
        context_len: 100,
    }
}

/// Fake generator that blocks until released, for filling the queue deterministically.
struct FakeGeneratorBlocking {
    info: ModelInfo,
    started: Arc<Barrier>,
    release: Arc<Barrier>,
}

impl Generator for FakeGeneratorBlocking {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(
        &self,
        _: &[ChatMessage],
        _: &GenerationParams,
        _: &CancelToken,
        _: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        self.started.wait();
        self.release.wait();
        Ok(done("", 0, StopReason::Eos))
    }
}

fn done(text: &str, tokens: usize, stop_reason: StopReason) -> Generation {
    Generation {
        text: text.into(),
        prompt_tokens: 1,
        completion_tokens: tokens,
        stop_reason,
        prompt_truncated: false,
        cached_prompt_tokens: 0,
    }
}

/// Fake generator emitting a token every few milliseconds until cancelled or `limit`.
struct FakeGeneratorTicking {
    info: ModelInfo,
    limit: usize,
    cancelled: Arc<AtomicBool>,
}

impl Generator for FakeGeneratorTicking {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(
        &self,
        _: &[ChatMessage],
        _: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut text = String::new();
        for i in 0..self.limit {
            if cancel.is_cancelled() {
                self.cancelled.store(true, Ordering::SeqCst);
                return Ok(done(&text, i, StopReason::Cancelled));
            }
            let piece = format!("t{i} ");
            on_token(&piece);
            text += &piece;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(done(&text, self.limit, StopReason::MaxTokens))
    }
}

#[test]
fn full_queue_is_refused_immediately() {
    let started = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let fake = FakeGeneratorBlocking {
        info: fake_info(),
        started: started.clone(),
        release: release.clone(),
    };
    let service = GenerationService::new(Arc::new(fake), 1, 1);
    let _running = service.submit(question(), greedy(1)).unwrap();
    started.wait(); // the worker is busy now
    let _queued = service.submit(question(), greedy(1)).unwrap();
    assert_eq!(service.queue_depth(), 1);
    let t = Instant::now();
    let err = service.submit(question(), greedy(1)).unwrap_err();
    assert!(matches!(err, InferenceError::Busy));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "refused without waiting"
    );
    assert_eq!(service.queue_depth(), 1);
    release.wait(); // first job done
    started.wait(); // second job running
    assert_eq!(service.queue_depth(), 0);
    release.wait();
}

#[test]
fn events_arrive_in_order_and_cancel_stops_the_generation() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let fake = FakeGeneratorTicking {
        info: fake_info(),
        limit: 5,
        cancelled: cancelled.clone(),
    };
    let service = GenerationService::new(Arc::new(fake), 1, 4);
    let mut handle = service.submit(question(), greedy(5)).unwrap();
    let mut events = Vec::new();
    while let Some(e) = handle.events.blocking_recv() {
        events.push(e);
    }
    let expected: Vec<GenerationEvent> = (0..5)
        .map(|i| GenerationEvent::Token(format!("t{i} ")))
        .chain([GenerationEvent::Done(done(
            "t0 t1 t2 t3 t4 ",
            5,
            StopReason::MaxTokens,
        ))])
        .collect();
    assert_eq!(events, expected);

    let fake = FakeGeneratorTicking {
        info: fake_info(),
        limit: 10_000,
        cancelled: cancelled.clone(),
    };
    let service = GenerationService::new(Arc::new(fake), 1, 4);
    let mut handle = service.submit(question(), greedy(5)).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            handle.events.blocking_recv(),
            Some(GenerationEvent::Token(_))
        ));
    }
    handle.cancel.cancel();
    let last = loop {
        match handle.events.blocking_recv() {
            Some(GenerationEvent::Token(_)) => continue,
            other => break other,
        }
    };
    match last {
        Some(GenerationEvent::Done(g)) => assert_eq!(g.stop_reason, StopReason::Cancelled),
        other => panic!("expected Done, got {other:?}"),
    }
}

#[test]
fn dropping_the_receiver_cancels_the_generation() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let fake = FakeGeneratorTicking {
        info: fake_info(),
        limit: 100_000,
        cancelled: cancelled.clone(),
    };
    let service = GenerationService::new(Arc::new(fake), 1, 4);
    let mut handle = service.submit(question(), greedy(5)).unwrap();
    assert!(matches!(
        handle.events.blocking_recv(),
        Some(GenerationEvent::Token(_))
    ));
    drop(handle);
    let t = Instant::now();
    while !cancelled.load(Ordering::SeqCst) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "generation was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Fake generator that ticks like `FakeGeneratorTicking` and records its calls and whether
/// each was background work.
struct FakeGeneratorCounting {
    info: ModelInfo,
    limit: usize,
    calls: AtomicUsize,
    chunks: Mutex<Vec<bool>>,
}

impl Generator for FakeGeneratorCounting {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(
        &self,
        _: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.chunks.lock().unwrap().push(params.background);
        let mut text = String::new();
        for i in 0..self.limit {
            if cancel.is_cancelled() {
                return Ok(done(&text, i, StopReason::Cancelled));
            }
            let piece = format!("t{i} ");
            on_token(&piece);
            text += &piece;
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(done(&text, self.limit, StopReason::MaxTokens))
    }
}

#[test]
fn background_generation_gives_way_to_the_service_and_runs_again() {
    let fake = Arc::new(FakeGeneratorCounting {
        info: fake_info(),
        limit: 150,
        calls: AtomicUsize::new(0),
        chunks: Mutex::new(Vec::new()),
    });
    let service = Arc::new(GenerationService::new(fake.clone(), 1, 4));
    let background = service.yielding();
    let full: String = (0..150).map(|i| format!("t{i} ")).collect();
    let (bg_done, fg_done) = std::thread::scope(|scope| {
        let bg = scope.spawn(|| {
            let mut pieces = Vec::new();
            let g = background
                .generate(&question(), &greedy(150), &CancelToken::new(), &mut |t| {
                    pieces.push(t.to_string())
                })
                .unwrap();
            (g, pieces, Instant::now())
        });
        let t = Instant::now();
        while fake.calls.load(Ordering::SeqCst) == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "background never started"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20)); // a few background tokens
        let mut handle = service.submit(question(), greedy(150)).unwrap();
        let fg = loop {
            match handle.events.blocking_recv() {
                Some(GenerationEvent::Token(_)) => continue,
                Some(GenerationEvent::Done(g)) => break g,
                other => panic!("expected Done, got {other:?}"),
            }
        };
        let fg_at = Instant::now();
        assert_eq!(
            fg.stop_reason,
            StopReason::MaxTokens,
            "the answer ran to its end"
        );
        (bg.join().unwrap(), fg_at)
    });
    let (g, pieces, bg_at) = bg_done;
    assert!(fg_done < bg_at, "the service's generation finished first");
    assert_eq!(service.preempted(), 1);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        3,
        "background, answer, background again"
    );
    assert_eq!(g.stop_reason, StopReason::MaxTokens);
    assert_eq!(g.text, full);
    assert_eq!(
        pieces.concat(),
        full,
        "only the completed attempt's tokens are passed on"
    );
    let kinds = fake.chunks.lock().unwrap().clone();
    assert_eq!(
        kinds,
        [true, false, true],
        "only the rewrite runs as background work"
    );

    // a cancelled background generation stops and is not run again
    let cancel = CancelToken::new();
    cancel.cancel();
    let g = background
        .generate(&question(), &greedy(150), &cancel, &mut |_| {})
        .unwrap();
    assert_eq!(g.stop_reason, StopReason::Cancelled);
    assert_eq!(service.preempted(), 1);

    // a search pauses background work for a second
    service.note_activity();
    assert!(service.gives_way());
    std::thread::sleep(Duration::from_millis(1100));
    assert!(!service.gives_way());
    // ... but searches alone hold it back for ten seconds at most
    service.note_activity();
    assert!(service.must_wait(std::time::Instant::now()));
    assert!(!service.must_wait(std::time::Instant::now() - Duration::from_secs(11)));
}

/// Fake generator that panics, for the worker's panic guard.
struct FakeGeneratorPanicking {
    info: ModelInfo,
    calls: AtomicUsize,
}

impl Generator for FakeGeneratorPanicking {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(
        &self,
        _: &[ChatMessage],
        _: &GenerationParams,
        _: &CancelToken,
        _: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("boom");
        }
        Ok(done("ok", 1, StopReason::Eos))
    }
}

#[test]
fn a_panicking_generation_is_an_error_event_and_the_worker_survives() {
    let fake = FakeGeneratorPanicking {
        info: fake_info(),
        calls: AtomicUsize::new(0),
    };
    let service = GenerationService::new(Arc::new(fake), 1, 2);
    let mut first = service.submit(question(), greedy(1)).unwrap();
    assert!(matches!(
        first.events.blocking_recv(),
        Some(GenerationEvent::Error(_))
    ));
    let mut second = service.submit(question(), greedy(1)).unwrap();
    assert!(matches!(
        second.events.blocking_recv(),
        Some(GenerationEvent::Done(_))
    ));
}

#[test]
fn service_streams_a_real_tiny_model() {
    let (_dir, g) = tiny_generator(LoadOptions::default());
    let expected = run(&g, &question(), &greedy(10)).0;
    let service = GenerationService::new(Arc::new(g), 1, 2);
    assert_eq!(service.info().id, "tiny-qwen2");
    let mut handle = service.submit(question(), greedy(10)).unwrap();
    let mut text = String::new();
    let generation = loop {
        match handle.events.blocking_recv() {
            Some(GenerationEvent::Token(t)) => text += &t,
            Some(GenerationEvent::Done(g)) => break g,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(Generation { cached_prompt_tokens: 0, ..generation.clone() }, Generation { cached_prompt_tokens: 0, ..expected });
    assert_eq!(text, generation.text);
}

// ---- the real model ----------------------------------------------------------------------

const REAL_MODEL: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

fn real_model_path() -> Option<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("LOTSE_MODEL_CACHE") {
        dirs.push(PathBuf::from(dir));
    }
    dirs.push(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/cache"
    )));
    dirs.into_iter()
        .map(|d| d.join(REAL_MODEL))
        .find(|p| p.is_file())
}

/// Serialises tests that load the 1.1 GB model, so they never hold two copies at once.
static REAL_MODEL_LOCK: Mutex<()> = Mutex::new(());

#[test]
fn real_model_answers_in_german_and_honours_stop_strings() {
    let Some(path) = real_model_path() else {
        assert!(
            std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(),
            "LOTSE_REQUIRE_MODELS is set but {REAL_MODEL} is not in the model cache"
        );
        eprintln!("skipped: model file not found, run `lotse models fetch`");
        return;
    };
    let _guard = REAL_MODEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let g = LocalGenerator::load(&path, LoadOptions::default()).unwrap();
    assert_eq!(g.architecture(), "qwen2");
    let messages = vec![ChatMessage::user(
        "Antworte nur mit einem Wort: Was ist die Hauptstadt von Deutschland?",
    )];
    let (answer, pieces) = run(&g, &messages, &greedy(16));
    eprintln!("answer: {:?} ({:?})", answer.text, answer.stop_reason);
    assert!(answer.text.contains("Berlin"), "{answer:?}");
    assert_eq!(answer.stop_reason, StopReason::Eos);
    assert_eq!(pieces.concat(), answer.text);

    let params = GenerationParams {
        stop: vec!["lin".into()],
        ..greedy(16)
    };
    let (stopped, _) = run(&g, &messages, &params);
    assert_eq!(stopped.stop_reason, StopReason::StopSequence);
    assert!(!stopped.text.contains("lin"), "{stopped:?}");
    assert!(answer.text.starts_with(&stopped.text));
}

/// The real model through Lotse's kernels against candle's quantized Qwen2 (candle's own
/// kernels) on a German prompt: the logits of the next token agree within the stated
/// tolerance and name the same token.
#[test]
fn real_model_logits_match_candle_quantized_qwen2() {
    let Some(path) = real_model_path() else {
        assert!(
            std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(),
            "LOTSE_REQUIRE_MODELS is set but {REAL_MODEL} is not in the model cache"
        );
        eprintln!("skipped: model file not found, run `lotse models fetch`");
        return;
    };
    let _guard = REAL_MODEL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let opts = LoadOptions {
        warm_up: false,
        ..LoadOptions::default()
    };
    let ours = LocalGenerator::load(&path, opts.clone()).unwrap();
    let messages = vec![ChatMessage::user(
        "Die Hundesteuer beträgt 96 Euro im Jahr und ist zum 1. Juli fällig. Wann ist sie fällig?",
    )];
    let tokens = ours.chat_tokens(&messages).unwrap();
    let a = ours.logits_after(&tokens, tokens.len()).unwrap();
    let step = ours.logits_after(&tokens, tokens.len() - 1).unwrap();
    drop(ours);
    let candle = LocalGenerator::load(
        &path,
        LoadOptions {
            candle_qwen2: true,
            ..opts
        },
    )
    .unwrap();
    let b = candle.logits_after(&tokens, tokens.len()).unwrap();
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let scale = b.iter().map(|x| x.abs()).fold(0f32, f32::max);
    eprintln!("largest logit difference {max:.4} (largest logit {scale:.2})");
    // 28 layers of 8-bit activations: tiny float differences (attention, sums in another
    // order) flip rounding steps (measured: 0.46 to 0.62 of a largest logit of 20.5), so the
    // tolerance is 5 % of the largest logit, and the next token must be the same
    let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
    for (ours, what) in [(&a, "one pass"), (&step, "last token as a decode step")] {
        let max = ours.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(max <= 0.05 * scale, "{what}: max logit difference {max} (largest logit {scale})");
        assert_eq!(argmax(ours), argmax(&b), "{what}: next token differs");
    }
}

#[test]
fn drafted_tokens_give_the_output_of_plain_greedy_decoding() {
    let (_dir, path) = tiny_gguf(&TinyGguf::default());
    let load = |draft_tokens| {
        LocalGenerator::load(&path, LoadOptions { draft_tokens, ..LoadOptions::default() }).unwrap()
    };
    let (plain, drafting) = (load(0), load(3));
    // a prompt that repeats itself, and a random-weight model that soon repeats itself too
    let messages = vec![ChatMessage::user(
        "Hund Katze Maus Hund Katze Maus Hund Katze Maus Hund",
    )];
    for max_tokens in [1, 5, 40] {
        let (a, pieces_a) = run(&plain, &messages, &greedy(max_tokens));
        let (b, pieces_b) = run(&drafting, &messages, &greedy(max_tokens));
        assert_eq!(a.text, b.text, "max_tokens {max_tokens}");
        assert_eq!(pieces_a.concat(), pieces_b.concat());
        assert_eq!(
            (a.completion_tokens, a.stop_reason),
            (b.completion_tokens, b.stop_reason)
        );
    }
    let (drafted, accepted) = drafting.draft_stats();
    assert!(
        drafted > 0 && accepted > 0,
        "drafts were checked: {drafted} drafted, {accepted} accepted"
    );
    assert_eq!(plain.draft_stats(), (0, 0));
    // the cache holds exactly the tokens run: the next prompt reuses it without a mismatch
    let (c, _) = run(&drafting, &messages, &greedy(40));
    let (d, _) = run(&plain, &messages, &greedy(40));
    assert_eq!(c.text, d.text);
    // sampling (temperature > 0) never drafts
    let before = drafting.draft_stats();
    let _ = run(
        &drafting,
        &messages,
        &GenerationParams {
            temperature: 0.8,
            max_tokens: 20,
            ..GenerationParams::default()
        },
    );
    assert_eq!(drafting.draft_stats(), before);
}
