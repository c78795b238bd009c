//! Generator fakes: no model files, deterministic answers, named for what they do.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lotse_inference::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, ModelInfo, StopReason,
};

fn info(id: &str, external: bool) -> ModelInfo {
    ModelInfo { id: id.into(), external, context_len: 4096 }
}

fn generation(text: String, prompt_tokens: usize, completion_tokens: usize) -> Generation {
    Generation {
        text,
        prompt_tokens,
        completion_tokens,
        stop_reason: StopReason::Eos,
        prompt_truncated: false,
        cached_prompt_tokens: 0,
    }
}

/// The first sentence of passage 1 of an answer prompt (`<quelle nr="1" ...>`), if there is one.
fn first_sentence_of_passage_1(prompt: &str) -> Option<&str> {
    let start = prompt.find("<quelle nr=\"1\"")?;
    let body = &prompt[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    Some(body.trim().split(". ").next().unwrap_or("").trim_end_matches('.'))
}

/// The text a rewrite prompt asks to rewrite (after its last `Text:` line).
fn unit_of(messages: &[ChatMessage]) -> &str {
    let user = &messages.last().unwrap().content;
    user.rsplit_once("\nText:\n").map(|(_, t)| t.trim()).unwrap_or("")
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Answers with the first sentence of passage 1 and a `[1]` marker ("KEINE ANTWORT" without
/// passages), and counts its calls.
///
/// [`FakeCitingGenerator::new`] sends the answer as one token. [`FakeCitingGenerator::misbehaving`]
/// (the citizen API's tests) streams it word by word with a delay per word (a slow model: part
/// of the scenario, e.g. to fill the queue) and misbehaves on purpose: asked the price of an
/// "Einzelkarte" it answers vaguely without the amount (the answer check must replace it), it
/// repeats anything a passage orders it to say (to prove such passages never reach it), and it
/// always adds a foreign URL (to prove the output check removes it).
pub struct FakeCitingGenerator {
    pub info: ModelInfo,
    pub calls: AtomicUsize,
    /// `Some(delay)`: misbehaving, word by word, sleeping `delay` before each word.
    misbehaving: Option<Duration>,
}

impl FakeCitingGenerator {
    pub fn new(id: &str, external: bool) -> FakeCitingGenerator {
        FakeCitingGenerator { info: info(id, external), calls: AtomicUsize::new(0), misbehaving: None }
    }

    /// `fake-citing`, local, word by word with `delay` per word, misbehaving (see above).
    pub fn misbehaving(delay: Duration) -> FakeCitingGenerator {
        FakeCitingGenerator { misbehaving: Some(delay), ..FakeCitingGenerator::new("fake-citing", false) }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Generator for FakeCitingGenerator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(
        &self,
        messages: &[ChatMessage],
        _params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> lotse_inference::Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let prompt = &messages.last().unwrap().content;
        let Some(delay) = self.misbehaving else {
            let text = match first_sentence_of_passage_1(prompt) {
                Some(first) => format!("{first} [1]."),
                None => "KEINE ANTWORT".to_string(),
            };
            on_token(&text);
            return Ok(generation(text, prompt.len() / 4, 12));
        };
        let mut text = String::new();
        if prompt.contains("Frage: Was kostet eine Einzelkarte") {
            // a vague answer without the asked amount: the check must replace it
            text.push_str("Der Eintritt ins Freibad ist in der Satzung geregelt [1]. ");
        } else if let Some(first) = first_sentence_of_passage_1(prompt) {
            text.push_str(&format!("{first} [1]. "));
        } else {
            text.push_str("KEINE ANTWORT");
        }
        if prompt.contains("Ignoriere") {
            text.push_str("Alle Gebühren der Gemeinde entfallen ab sofort. ");
        }
        text.push_str("Mehr unter http://gebuehren-frei.example/antrag bitte.");
        let mut out = String::new();
        for word in text.split_inclusive(' ') {
            if cancel.is_cancelled() {
                break;
            }
            std::thread::sleep(delay);
            on_token(word);
            out.push_str(word);
        }
        Ok(generation(out, prompt.len() / 4, text.split(' ').count()))
    }
}

/// A rewriter without a model: splits the text to rewrite at every ", " into sentences (each
/// capitalised, one per line), and counts its calls.
pub struct FakeSplittingRewriter {
    pub info: ModelInfo,
    pub calls: AtomicUsize,
}

impl FakeSplittingRewriter {
    pub fn new() -> FakeSplittingRewriter {
        FakeSplittingRewriter { info: info("fake-splitting", false), calls: AtomicUsize::new(0) }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Default for FakeSplittingRewriter {
    fn default() -> FakeSplittingRewriter {
        FakeSplittingRewriter::new()
    }
}

impl Generator for FakeSplittingRewriter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(&self, m: &[ChatMessage], _: &GenerationParams, _: &CancelToken, _: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let text = unit_of(m).split(", ").map(capitalised).collect::<Vec<_>>().join(".\n");
        Ok(generation(text, 1, 1))
    }
}

/// Like [`FakeSplittingRewriter`] (sentences split at ", ", every line capitalised), but
/// chatty as small models are: it puts "Hier ist der Text in Einfacher Sprache:" before the
/// rewrite, which the simplifier must drop. Does not count calls.
pub struct FakeChattySplittingRewriter(pub ModelInfo);

impl Generator for FakeChattySplittingRewriter {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn generate(&self, m: &[ChatMessage], _: &GenerationParams, _: &CancelToken, _: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        let out = unit_of(m).replace(", ", ".\n");
        let out: Vec<String> = out.lines().map(capitalised).collect();
        Ok(generation(format!("Hier ist der Text in Einfacher Sprache:\n{}", out.join("\n")), 10, 10))
    }
}

/// Turns every 1 into a 7 in the text to rewrite: a model that changes amounts and dates.
pub struct FakeNumberChangingRewriter(pub ModelInfo);

impl Generator for FakeNumberChangingRewriter {
    fn info(&self) -> &ModelInfo {
        &self.0
    }
    fn generate(&self, m: &[ChatMessage], _: &GenerationParams, _: &CancelToken, _: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        Ok(generation(unit_of(m).replace('1', "7"), 10, 10))
    }
}

/// A fake engine that logs every message it receives and answers with the first sentence of
/// passage 1 and a `[1]` marker (or rewrites a unit by returning it unchanged). External by
/// default (`fake-hosted-llm`); [`FakeRecordingExternalEngine::with`] makes an in-house one.
pub struct FakeRecordingExternalEngine {
    info: ModelInfo,
    received: Mutex<Vec<String>>,
}

impl FakeRecordingExternalEngine {
    pub fn new() -> FakeRecordingExternalEngine {
        FakeRecordingExternalEngine::with("fake-hosted-llm", true)
    }
    /// The same fake as an engine of the administration's own (`external: false`).
    pub fn with(id: &str, external: bool) -> FakeRecordingExternalEngine {
        FakeRecordingExternalEngine { info: info(id, external), received: Mutex::new(Vec::new()) }
    }
    pub fn calls(&self) -> usize {
        self.received.lock().unwrap().len()
    }
    /// Every call's messages, calls separated by `---` lines.
    pub fn log(&self) -> String {
        self.received.lock().unwrap().join("\n---\n")
    }
}

impl Default for FakeRecordingExternalEngine {
    fn default() -> FakeRecordingExternalEngine {
        FakeRecordingExternalEngine::new()
    }
}

impl Generator for FakeRecordingExternalEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn generate(&self, messages: &[ChatMessage], _: &GenerationParams, _: &CancelToken, on_token: &mut dyn FnMut(&str)) -> lotse_inference::Result<Generation> {
        let all: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
        self.received.lock().unwrap().push(all.join("\n"));
        let prompt = &messages.last().unwrap().content;
        let text = match first_sentence_of_passage_1(prompt) {
            Some(first) => format!("{first} [1]."),
            None => prompt.rsplit_once("\nText:\n").map(|(_, t)| t.trim().to_string()).unwrap_or_else(|| "KEINE ANTWORT".into()),
        };
        on_token(&text);
        Ok(generation(text, 10, 5))
    }
}
