//! Citizen answers: a question (with optional chat history) -> hybrid retrieval over the public
//! collection only -> evidence (one trimmed passage per page, within a budget) -> a prompt with
//! numbered, delimited passages -> streamed generation -> checked citations. When the
//! evidence is weak, or the model finds no answer in it, the answer is an honest refusal with
//! the town's contact, never a guess.
//!
//! Invariants:
//! - Citizens' entry points ([`Answerer::prepare`], [`Answerer::search`]) search only
//!   [`CollectionScope::public_website`]: private collections can never reach a citizen's
//!   answer through this crate. The `*_in` variants take the scope the portal computed for
//!   a signed-in staff member; nothing here widens a scope.
//! - Page text is data: passages that try to instruct an assistant are not shown to the model,
//!   and the final text is checked (foreign URLs, echoed injected text, unsupported markers).
//! - Every [`Answer`] carries `label: "KI-generiert"` and a hint to check the source.
//! - Nothing here logs question or answer text.
//!
//! Modules: `lang` (detection, fixed texts), `evidence` (selection, injection, strength),
//! `prompt` (messages), `check` (citations, URLs, streaming filter).

pub mod asked;
pub mod check;
pub mod evidence;
pub mod lang;
pub mod prompt;

use std::sync::Arc;
use std::time::Instant;

use lotse_core::CollectionScope;
use lotse_index::{QueryVector, SearchIndex, SearchMode, SearchRequest};
use lotse_inference::generate::{GenerationEvent, GenerationService};
use lotse_inference::{EmbedKind, Embedder, GenerationParams, InferenceError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use asked::AskedKind;
pub use evidence::{KeyQuote, Passage, Strength};

/// The index's view of an embedder (for crawls and re-crawls): passages with the
/// `passage: ` prefix.
pub struct PassageEmbedder(pub Arc<dyn Embedder>);

impl lotse_index::ChunkEmbedder for PassageEmbedder {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.0.embed(&refs, EmbedKind::Passage).map_err(|e| e.to_string())
    }
}
pub use lang::Lang;

/// The label every AI-generated text carries.
pub const LABEL: &str = "KI-generiert";
/// Longest accepted question, in characters.
pub const MAX_QUESTION_CHARS: usize = 1000;
/// Most history turns considered.
pub const MAX_HISTORY_TURNS: usize = 20;
/// Longest accepted history turn, in characters.
pub const MAX_TURN_CHARS: usize = 8000;

/// Who said a history turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
}

/// An earlier turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Turn {
    pub role: Speaker,
    pub content: String,
}

/// A citizen's question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnswerRequest {
    /// The question, at most 1000 characters.
    pub question: String,
    /// Earlier turns, oldest first; follow-up questions are read in their light.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// Answer language (`de`, `en`, `tr`, `uk`, `ar`); detected from the question when absent.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The town's contact, named in every refusal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Who to contact, e.g. "das Bürgerbüro im Rathaus".
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Page with the opening hours.
    pub hours_url: Option<String>,
}

/// A numbered source of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The number used in `[n]` markers.
    pub n: usize,
    pub url: String,
    pub title: String,
    pub heading: String,
    /// Link to the section: an anchor or a `#:~:text=` fragment.
    pub deep_link: String,
    /// Whether the final answer cites this source.
    pub cited: bool,
}

/// The source's own words: the sentence or table row of a cited page that holds the answer,
/// verbatim (German, whatever the answer's language: it is the binding wording).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// The number of the source it comes from (as in `[n]`).
    pub n: usize,
    /// Verbatim text of the page: a sentence, a list item, or a table row (cells joined by
    /// " | "). Plain text, never HTML.
    pub text: String,
    /// Link to that place of the page (a `#:~:text=` fragment or the section's anchor; the
    /// page's address for PDFs).
    pub url: String,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Question embedding and search.
    pub retrieval_ms: u64,
    /// Until the first generated text (absent for refusals and cached answers).
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
    pub prompt_tokens: usize,
    /// Prompt tokens reused from the model's cache (the rules every prompt starts with).
    #[serde(default)]
    pub cached_prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Served from the answer cache.
    pub cached: bool,
}

/// A checked answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Names this answer for its rating (`POST /api/v1/feedback`); set by the server.
    #[serde(default)]
    pub id: String,
    /// The answer with `[n]` markers, or the refusal with the town's contact.
    pub answer: String,
    pub sources: Vec<Source>,
    /// True when the website does not answer the question (the text names the contact).
    pub refused: bool,
    /// Always "KI-generiert".
    pub label: String,
    /// Check the linked source: a short hint in the answer's language.
    pub hint: String,
    /// The language of the answer.
    pub lang: Lang,
    /// The generator that wrote it.
    pub model: String,
    /// Some statements could not be matched to a source; read with care.
    pub flagged: bool,
    /// The model's text could not be shown (not backed by the sources, or one of the defects
    /// that `extractive` names) and no quote matched the question well enough, so it was
    /// replaced by a pointer to the best page found (cited as `[1]`).
    pub fallback: bool,
    /// The model's text was not backed by the sources, missed the asked fact, said "nein"
    /// without a source for it, gave a bare "Ja" against a stated condition, repeated its
    /// rules or addressed the citizen as "du" (or the model found no answer where the best
    /// source states one plainly), so the answer is the source's own words with one framing
    /// sentence.
    #[serde(default)]
    pub extractive: bool,
    /// The source's own words that hold the answer (none for refusals and pointers). In a
    /// stream this final list replaces the `quotes` event sent before generation.
    #[serde(default)]
    pub quotes: Vec<Quote>,
    /// The kind of fact the question asks for, from its wording.
    #[serde(default = "asked_other")]
    pub asked: AskedKind,
    pub timings: Timings,
    /// Why the model's text was not shown (an extractive answer or a pointer), for the
    /// evaluation and logs; not part of the API.
    #[serde(skip)]
    pub replaced: Option<&'static str>,
}

fn asked_other() -> AskedKind {
    AskedKind::Other
}

/// What a running answer reports: `Sources` first, then `Quotes`, then `Token`s, then `Done`
/// (or `Error`).
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerEvent {
    Sources(Vec<Source>),
    /// The key sentence(s) of the best source, before generation starts.
    Quotes(Vec<Quote>),
    Token(String),
    Done(Box<Answer>),
    Error(AnswerError),
}

/// Why no answer could be given. Each has a German message for citizens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("empty question")]
    EmptyQuestion,
    #[error("question longer than {max} characters")]
    QuestionTooLong { max: usize },
    #[error("history too long: at most {max_turns} turns of {max_chars} characters")]
    HistoryTooLong { max_turns: usize, max_chars: usize },
    #[error("unsupported language {0:?}")]
    UnknownLanguage(String),
    #[error("the answer queue is full")]
    Busy,
    #[error("no text model is loaded")]
    NoModel,
    #[error("search index: {0}")]
    Index(String),
    #[error("model: {0}")]
    Model(String),
    #[error("the engine is external and the evidence comes from private collections")]
    External,
}

impl AnswerError {
    /// The message shown to citizens (German, Sie-Form).
    pub fn message_de(&self) -> String {
        match self {
            AnswerError::EmptyQuestion => "Bitte geben Sie eine Frage ein.".into(),
            AnswerError::QuestionTooLong { max } => format!(
                "Ihre Frage ist zu lang. Bitte fassen Sie sie in höchstens {max} Zeichen zusammen."
            ),
            AnswerError::HistoryTooLong { .. } => {
                "Der bisherige Gesprächsverlauf ist zu lang. Bitte beginnen Sie ein neues Gespräch.".into()
            }
            AnswerError::UnknownLanguage(_) => format!(
                "Diese Sprache wird nicht unterstützt. Möglich sind: {}.",
                Lang::ALL.map(Lang::code).join(", ")
            ),
            AnswerError::Busy => {
                "Im Moment stellen sehr viele Menschen Fragen. Bitte versuchen Sie es in einer Minute noch einmal.".into()
            }
            AnswerError::NoModel => {
                "Der Assistent ist gerade nicht bereit. Bitte versuchen Sie es später noch einmal.".into()
            }
            AnswerError::Index(_) | AnswerError::Model(_) => {
                "Leider ist ein Fehler aufgetreten. Bitte versuchen Sie es später noch einmal.".into()
            }
            AnswerError::External => {
                "Interne Sammlungen dürfen nach dem KI-Kompass nicht an externe KI-Dienste gehen. Bitte wählen Sie ein Modell der eigenen Verwaltung oder nur die Website.".into()
            }
        }
    }

    /// Whether the caller's input was wrong (4xx) rather than the service (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            AnswerError::EmptyQuestion
                | AnswerError::QuestionTooLong { .. }
                | AnswerError::HistoryTooLong { .. }
                | AnswerError::UnknownLanguage(_)
        )
    }
}

/// Thresholds of the refusal gate (see `lotse eval answers --gate-only` to calibrate them
/// for a town's site). Cosines are of multilingual-e5-small (query vs passage); another
/// embedder needs its own values.
///
/// Measured on the bad-boll dev sets: in-scope questions have a best cosine of 0.830 to
/// 0.93, general-knowledge questions 0.77 to 0.830; the words decide in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gate {
    /// Enough when the best passage is this close in meaning (cosine) ...
    pub dense: f32,
    /// ... or this share of the question's content words is in one passage and the cosine
    /// reaches `dense_low` ...
    pub coverage_low: f32,
    pub dense_low: f32,
    /// ... or this share of the words is covered and the cosine reaches `dense_floor`.
    pub coverage: f32,
    pub dense_floor: f32,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            dense: 0.84,
            coverage_low: 0.34,
            dense_low: 0.82,
            coverage: 0.75,
            dense_floor: 0.80,
        }
    }
}

impl Gate {
    /// Whether the evidence is strong enough to answer from.
    pub fn passes(&self, s: &Strength, lang: Lang) -> bool {
        let Some(dense) = s.dense else {
            // no vectors (BM25 only): the words decide
            return s.content_words == 0 || s.coverage >= self.coverage_low.max(0.5);
        };
        if lang != Lang::De || s.content_words == 0 {
            // words of another language cannot match German pages: meaning decides
            return dense >= self.dense_low;
        }
        dense >= self.dense
            || (s.coverage >= self.coverage_low && dense >= self.dense_low)
            || (s.coverage >= self.coverage && dense >= self.dense_floor)
    }
}

/// How answers are made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerConfig {
    /// The town's name as citizens know it ("Gemeinde Bad Boll"); from the crawl when unset.
    pub town: Option<String>,
    /// Restrict answers to one site (origin); all public sites when unset.
    pub site: Option<String>,
    pub contact: Contact,
    /// Passages (pages) given to the model.
    pub passages: usize,
    /// Words per passage (the prompt's size drives the time to the first token on a CPU).
    pub words_per_passage: usize,
    /// Longest answer in tokens.
    pub max_answer_tokens: usize,
    pub gate: Gate,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig {
            town: None,
            site: None,
            contact: Contact::default(),
            passages: 2,
            words_per_passage: 70,
            max_answer_tokens: 200,
            gate: Gate::default(),
        }
    }
}

/// A question ready to be answered: language, evidence, and whether to refuse.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub lang: Lang,
    /// The question as searched (follow-ups completed from the history).
    pub standalone: String,
    pub request: AnswerRequest,
    pub passages: Vec<Passage>,
    /// Texts of passages kept away from the model as prompt injection.
    pub injected: Vec<String>,
    pub strength: Strength,
    /// The gate refused: the evidence does not cover the question.
    pub weak_evidence: bool,
    /// The kinds of fact the question wants, its own kind first (see [`asked::wanted`]).
    pub wanted: Vec<AskedKind>,
    pub retrieval_ms: u64,
    /// The scope held a collection other than the public website (staff documents): such
    /// passages never go to an external engine (`start` refuses with `External`).
    pub private: bool,
    started: Instant,
}

impl Prepared {
    /// The sources as sent before the answer (none when refusing).
    pub fn sources(&self) -> Vec<Source> {
        if self.weak_evidence {
            return Vec::new();
        }
        self.passages
            .iter()
            .map(|p| Source {
                n: p.n,
                url: p.url.clone(),
                title: p.title.clone(),
                heading: p.heading.clone(),
                deep_link: p.deep_link.clone(),
                cited: false,
            })
            .collect()
    }

    /// The key quotes of passage `n`.
    pub fn quotes_of(&self, n: usize) -> Vec<Quote> {
        self.passages
            .iter()
            .filter(|p| p.n == n)
            .flat_map(|p| {
                p.quotes.iter().map(move |q| Quote {
                    n: p.n,
                    text: q.text.clone(),
                    url: q.url.clone(),
                })
            })
            .collect()
    }

    /// The quotes sent before the answer: those of the best source (none when refusing).
    pub fn first_quotes(&self) -> Vec<Quote> {
        if self.weak_evidence {
            return Vec::new();
        }
        self.passages.first().map(|p| self.quotes_of(p.n)).unwrap_or_default()
    }

    /// The kind of fact asked for.
    pub fn asked(&self) -> AskedKind {
        self.wanted.first().copied().unwrap_or(AskedKind::Other)
    }
}

/// A running answer: its events, sources first. Dropping it stops the generation.
#[derive(Debug)]
pub struct AnswerRun {
    pub events: mpsc::Receiver<AnswerEvent>,
}

/// Answers citizens' questions from the public website collection.
pub struct Answerer {
    index: Arc<SearchIndex>,
    embedder: Option<Arc<dyn Embedder>>,
    generation: Option<Arc<GenerationService>>,
    config: AnswerConfig,
    town: String,
    query_vectors: moka::sync::Cache<String, Arc<Vec<f32>>>,
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answerer")
            .field("town", &self.town)
            .field("embedder", &self.embedder.as_ref().map(|e| e.model_id().to_string()))
            .finish_non_exhaustive()
    }
}

/// Whether the answer misses the asked fact although passage `n`'s quotes state it: a quoted
/// sentence or row holds facts of the asked kind (for a yes/no question: the amount, time or
/// period its words point to) and the answer states none of them, or, for a sentence with up
/// to four such facts, not all of them.
fn missing_fact(p: &Prepared, n: usize, answer: &str) -> bool {
    let Some(passage) = p.passages.iter().find(|x| x.n == n) else {
        return false;
    };
    let kinds: Vec<AskedKind> = match p.wanted.first() {
        // a yes/no is answered with its figure ("Gibt es eine Saisonkarte?" -> 100,00 €)
        Some(AskedKind::YesNo) if p.wanted.len() == 1 => vec![AskedKind::Amount, AskedKind::DateTime, AskedKind::Period],
        // "Was passiert, wenn ...?" is answered with the measure, its deadline and the fine
        Some(AskedKind::Other) if evidence::asks_consequence(&p.request.question) => {
            vec![AskedKind::Amount, AskedKind::DateTime, AskedKind::Period]
        }
        Some(AskedKind::YesNo) | Some(AskedKind::Other) => p.wanted[1..].to_vec(),
        Some(k) => vec![*k],
        None => Vec::new(),
    };
    // a share of people or votes in the key sentence ("Ein Viertel der Gemeinderäte kann ...")
    // is its condition: an answer that drops it states a different rule
    // (German answers only: an answer in another language says it in its own words)
    let plain = check::strip_markers(answer).to_lowercase();
    let dropped_share = p.lang == Lang::De
        && passage.quotes.iter().filter(|q| q.core).any(|q| {
            shares(&q.text).iter().any(|s| !states_share(&plain, s))
        });
    if dropped_share {
        return true;
    }
    // each quoted sentence or row with facts of the asked kind is answered by one of them
    // (5,00 € for adults and 3,00 € for children); a sentence with a few facts by all of them
    // (a time pair: "von 20.00 bis 7.00 Uhr und von 12.00 bis 14.00 Uhr")
    kinds.iter().any(|k| {
        passage.quotes.iter().any(|q| {
            let facts = asked::facts(*k, &q.text);
            if facts.is_empty() {
                return false;
            }
            if !q.core {
                // context quoted with the key (a lead-in, the next sentence, a fine) need not
                // be repeated
                return false;
            }
            let row = q.text.contains(" | ");
            if !row && facts.len() <= 4 && *k != AskedKind::Office {
                facts.iter().any(|f| !asked::states_any(answer, std::slice::from_ref(f)))
            } else {
                !asked::states_any(answer, &facts)
            }
        })
    })
}

/// The shares a sentence names, lowercased: "viertel", "drittel", "hälfte", "mehrheit" (of the
/// members, the votes, the costs).
fn shares(text: &str) -> Vec<String> {
    const SHARES: &[&str] = &["viertel", "drittel", "fünftel", "zehntel", "hälfte", "mehrheit"];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
    let mut out: Vec<String> = Vec::new();
    for w in words {
        // whole words only ("Vierteljahr" is a period, "Stadtviertel" a place)
        if let Some(s) = SHARES.iter().find(|s| w == **s || (w.starts_with(**s) && w.len() <= s.len() + 1)) {
            if !out.iter().any(|o| o == s) {
                out.push((*s).to_string());
            }
        }
    }
    out
}

/// Whether a lowercased answer states a share, in words or as a figure ("ein Viertel",
/// "25 %", "1/4"; "die Hälfte", "50 %", "halb").
fn states_share(answer: &str, share: &str) -> bool {
    let figures: &[&str] = match share {
        "viertel" => &["1/4", "25 %", "25%", "25 prozent"],
        "drittel" => &["1/3", "2/3"],
        "fünftel" => &["1/5", "20 %", "20%"],
        "zehntel" => &["1/10", "10 %", "10%"],
        "hälfte" => &["1/2", "50 %", "50%", "halb"],
        _ => &[],
    };
    answer.contains(share) || figures.iter().any(|f| answer.contains(f))
}

/// The least key score (question words, the retrieved chunk, the asked kind of fact) for a
/// quote to stand as the whole answer.
const MIN_EXTRACTIVE_SCORE: f32 = 2.0;

/// Whether the answer repeats the rules it was given instead of answering ("die gefragte
/// Angabe in der Quelle").
fn talks_about_the_prompt(answer: &str) -> bool {
    let lower = answer.to_lowercase();
    ["gefragte angabe", "in der quelle", "laut quelle", "die quellen", "nummerierten quellen"]
        .iter()
        .any(|p| lower.contains(p))
}

/// Whether an answer to a question for an amount, a date or time, a period or an office
/// states no such fact at all, while the best passage's quote does.
fn names_no_fact(p: &Prepared, answer: &str) -> bool {
    let Some(kind) = p.wanted.first().copied() else {
        return false;
    };
    if matches!(kind, AskedKind::YesNo | AskedKind::Other) {
        return false;
    }
    let quote: String = p.passages.first().map(|b| b.quotes.iter().map(|q| q.text.as_str()).collect::<Vec<_>>().join("\n")).unwrap_or_default();
    asked::holds(kind, &quote) && !asked::holds(kind, &check::strip_markers(answer))
}

/// Whether a yes/no answer is a bare "Ja" (or next to nothing) while the key quote of
/// passage `n` states a limit, a negation or a condition that the answer leaves out.
fn missing_condition(p: &Prepared, n: usize, answer: &str) -> bool {
    if p.asked() != AskedKind::YesNo {
        return false;
    }
    let plain = check::strip_markers(answer);
    let first = plain
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_lowercase();
    if first != "ja" {
        return false;
    }
    if plain.split_whitespace().count() < 4 {
        return true;
    }
    let Some(passage) = p.passages.iter().find(|x| x.n == n) else {
        return false;
    };
    let quote: String = passage.quotes.iter().map(|q| q.text.as_str()).collect::<Vec<_>>().join("\n");
    !quote.is_empty()
        && (lotse_text::backs_denial(&quote) || lotse_text::conditions(&quote) > 0)
        && !lotse_text::backs_denial(&plain)
        && lotse_text::conditions(&plain) == 0
}

/// A quote as it reads inside an answer: a table row's cells as "Erwachsene: 5,00 €".
fn quote_for_reading(text: &str) -> String {
    let cells: Vec<&str> = text.split(" | ").map(str::trim).filter(|c| !c.is_empty()).collect();
    match cells.as_slice() {
        [] => text.trim().to_string(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first}: {}", rest.join(", ")),
    }
}

/// Normalise a question for cache keys: lowercase, single spaces, no trailing punctuation.
pub fn normalise(question: &str) -> String {
    question
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(['?', '!', '.', ' '])
        .to_string()
}

impl Answerer {
    /// `embedder` enables hybrid retrieval and the meaning part of the gate; `generation`
    /// is needed to answer (search works without it).
    pub fn new(
        index: Arc<SearchIndex>,
        embedder: Option<Arc<dyn Embedder>>,
        generation: Option<Arc<GenerationService>>,
        config: AnswerConfig,
    ) -> Answerer {
        let town = config.town.clone().unwrap_or_else(|| {
            let names = index.site_names().unwrap_or_default();
            names
                .iter()
                .find(|(site, _)| config.site.as_deref().is_none_or(|s| s == site))
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| "Gemeinde".to_string())
        });
        Answerer {
            index,
            embedder,
            generation,
            config,
            town,
            query_vectors: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
        }
    }

    /// The same index, embedder and settings with another generator (an external model
    /// the portal offers); query vectors are shared.
    pub fn with_generation(&self, generation: Arc<GenerationService>) -> Answerer {
        Answerer {
            index: self.index.clone(),
            embedder: self.embedder.clone(),
            generation: Some(generation),
            config: self.config.clone(),
            town: self.town.clone(),
            query_vectors: self.query_vectors.clone(),
        }
    }

    pub fn town(&self) -> &str {
        &self.town
    }
    pub fn config(&self) -> &AnswerConfig {
        &self.config
    }
    pub fn index(&self) -> &SearchIndex {
        &self.index
    }
    /// The index, shared (for services that read it beside the answerer).
    pub fn shared_index(&self) -> Arc<SearchIndex> {
        self.index.clone()
    }
    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref()
    }
    pub fn generation(&self) -> Option<&Arc<GenerationService>> {
        self.generation.as_ref()
    }
    /// The generator's id, or "" without one.
    pub fn model_id(&self) -> String {
        self.generation
            .as_ref()
            .map(|g| g.info().id.clone())
            .unwrap_or_default()
    }
    /// Query-embedding cache statistics: (entries, hits counted by the caller).
    pub fn query_cache_len(&self) -> u64 {
        self.query_vectors.entry_count()
    }

    /// Validate a request (no IO).
    pub fn validate(req: &AnswerRequest) -> Result<Lang, AnswerError> {
        let q = req.question.trim();
        if q.is_empty() {
            return Err(AnswerError::EmptyQuestion);
        }
        if q.chars().count() > MAX_QUESTION_CHARS {
            return Err(AnswerError::QuestionTooLong {
                max: MAX_QUESTION_CHARS,
            });
        }
        if req.history.len() > MAX_HISTORY_TURNS
            || req.history.iter().any(|t| t.content.chars().count() > MAX_TURN_CHARS)
        {
            return Err(AnswerError::HistoryTooLong {
                max_turns: MAX_HISTORY_TURNS,
                max_chars: MAX_TURN_CHARS,
            });
        }
        match req.lang.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => Ok(lang::detect(q)),
            Some(code) => Lang::parse(code).ok_or_else(|| AnswerError::UnknownLanguage(code.to_string())),
        }
    }

    /// The embedding of a query, cached. `Ok(None)` without an embedder. Blocking.
    pub fn query_vector(&self, query: &str) -> Result<Option<Arc<Vec<f32>>>, AnswerError> {
        let Some(e) = &self.embedder else {
            return Ok(None);
        };
        let key = normalise(query);
        if let Some(v) = self.query_vectors.get(&key) {
            return Ok(Some(v));
        }
        let mut v = e
            .embed(&[query], EmbedKind::Query)
            .map_err(|e| AnswerError::Model(e.to_string()))?;
        let v = Arc::new(v.pop().unwrap_or_default());
        self.query_vectors.insert(key, v.clone());
        Ok(Some(v))
    }

    /// Public search (the same retrieval answers use). Blocking.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<lotse_index::Hit>, AnswerError> {
        self.search_in(query, limit, &CollectionScope::public_website())
    }

    /// The site filter applies to the public website only; staff collections have no site.
    fn site_filter(&self, scope: &CollectionScope) -> Option<&str> {
        if *scope == CollectionScope::public_website() {
            self.config.site.as_deref()
        } else {
            None
        }
    }

    /// Search in `scope`: the public website for citizens, or the collections a staff member
    /// may see (the portal decides that; this crate never widens a scope). Blocking.
    pub fn search_in(
        &self,
        query: &str,
        limit: usize,
        scope: &CollectionScope,
    ) -> Result<Vec<lotse_index::Hit>, AnswerError> {
        if let Some(g) = &self.generation {
            g.note_activity(); // background rewrites pause while people search
        }
        let qv = self.query_vector(query)?;
        let mut req = SearchRequest::new(query, scope);
        req.limit = limit;
        req.site = self.site_filter(scope);
        let model = self.embedder.as_ref().map(|e| e.model_id().to_string()).unwrap_or_default();
        let has_vectors = self
            .index
            .embedding_model()
            .map_err(|e| AnswerError::Index(e.to_string()))?
            .is_some_and(|(m, _)| m == model);
        if let (Some(v), true) = (&qv, has_vectors) {
            req.mode = SearchMode::Hybrid;
            req.query_vector = Some(QueryVector {
                model_id: &model,
                vector: v,
            });
        }
        self.index.search(&req).map_err(|e| AnswerError::Index(e.to_string()))
    }

    /// Validate, find evidence and decide whether to refuse. Blocking (embedding, search).
    pub fn prepare(&self, req: &AnswerRequest) -> Result<Prepared, AnswerError> {
        self.prepare_in(req, &CollectionScope::public_website())
    }

    /// [`Answerer::prepare`] over `scope` (the staff portal's chosen collections).
    pub fn prepare_in(&self, req: &AnswerRequest, scope: &CollectionScope) -> Result<Prepared, AnswerError> {
        let started = Instant::now();
        let lang = Self::validate(req)?;
        let standalone = prompt::standalone_question(req.question.trim(), &req.history);
        let hits = self.search_in(&standalone, 24, scope)?;
        // a page's structure (sentences, list items, table rows with their header), only
        // inside the caller's scope
        let load = |url: &str| match self.index.page(url, scope) {
            Ok(found) => found.map(|(_, page)| page),
            Err(e) => {
                tracing::warn!(error = %e, "page structure unreadable; using the chunk's text");
                None
            }
        };
        let (passages, injected) = evidence::select(
            &hits,
            &standalone,
            &self.town,
            self.config.passages,
            self.config.words_per_passage,
            &load,
        );
        let texts: Vec<&str> = passages.iter().map(|p| p.chunk_text.as_str()).collect();
        let (coverage, content_words) = evidence::coverage(&standalone, &texts, &self.town);
        let dense = self.best_cosine(&standalone, scope)?;
        let strength = Strength {
            coverage,
            content_words,
            dense,
        };
        let weak_evidence = passages.is_empty() || !self.config.gate.passes(&strength, lang);
        Ok(Prepared {
            lang,
            wanted: asked::wanted(&standalone),
            standalone,
            request: req.clone(),
            passages,
            injected,
            strength,
            weak_evidence,
            retrieval_ms: started.elapsed().as_millis() as u64,
            private: scope.collections().iter().any(|c| *c != lotse_core::CollectionId::website()),
            started,
        })
    }

    /// Cosine of the closest chunk in scope (dense search, top 1), when vectors exist.
    fn best_cosine(&self, query: &str, scope: &CollectionScope) -> Result<Option<f32>, AnswerError> {
        let Some(v) = self.query_vector(query)? else {
            return Ok(None);
        };
        let Some(e) = &self.embedder else {
            return Ok(None);
        };
        let model = e.model_id().to_string();
        if !self
            .index
            .embedding_model()
            .map_err(|e| AnswerError::Index(e.to_string()))?
            .is_some_and(|(m, _)| m == model)
        {
            return Ok(None);
        }
        let mut req = SearchRequest::new(query, scope);
        req.limit = 1;
        req.site = self.site_filter(scope);
        req.mode = SearchMode::Dense;
        req.query_vector = Some(QueryVector {
            model_id: &model,
            vector: &v,
        });
        let hits = self.index.search(&req).map_err(|e| AnswerError::Index(e.to_string()))?;
        Ok(hits.first().map(|h| h.score))
    }

    /// The refusal for a prepared question: the website does not answer it; the contact.
    pub fn refusal(&self, p: &Prepared) -> Answer {
        Answer {
            id: String::new(),
            answer: prompt::refusal_text(p.lang, &self.town, &self.config.contact),
            sources: Vec::new(),
            refused: true,
            label: LABEL.to_string(),
            hint: p.lang.check_hint().to_string(),
            lang: p.lang,
            model: self.model_id(),
            flagged: false,
            fallback: false,
            extractive: false,
            quotes: Vec::new(),
            replaced: None,
            asked: p.asked(),
            timings: Timings {
                retrieval_ms: p.retrieval_ms,
                first_token_ms: None,
                total_ms: p.started.elapsed().as_millis() as u64,
                ..Timings::default()
            },
        }
    }

    /// Start answering: sends `Sources`, then tokens, then `Done`. Returns
    /// [`AnswerError::Busy`] at once when the generation queue is full. Needs a tokio runtime.
    pub fn start(self: &Arc<Self>, p: Prepared) -> Result<AnswerRun, AnswerError> {
        let (tx, rx) = mpsc::channel(256);
        if p.weak_evidence {
            let answer = self.refusal(&p);
            // capacity 256: these cannot block
            let _ = tx.try_send(AnswerEvent::Sources(Vec::new()));
            let _ = tx.try_send(AnswerEvent::Quotes(Vec::new()));
            let _ = tx.try_send(AnswerEvent::Done(Box::new(answer)));
            return Ok(AnswerRun { events: rx });
        }
        let generation = self.generation.clone().ok_or(AnswerError::NoModel)?;
        if p.private && generation.info().external {
            // the server's policy refuses this before; this is the last line
            tracing::error!(engine = %generation.info().id, "private passages kept from an external engine");
            return Err(AnswerError::External);
        }
        let messages = prompt::messages(&p, &self.town);
        let params = GenerationParams {
            max_tokens: self.config.max_answer_tokens,
            temperature: 0.0,
            stop: vec!["\nFrage:".into(), "<quelle".into(), "\n\n\n".into()],
            ..GenerationParams::default()
        };
        let mut handle = generation.submit(messages, params).map_err(|e| match e {
            InferenceError::Busy => AnswerError::Busy,
            other => AnswerError::Model(other.to_string()),
        })?;
        let _ = tx.try_send(AnswerEvent::Sources(p.sources()));
        let _ = tx.try_send(AnswerEvent::Quotes(p.first_quotes()));
        let this = self.clone();
        tokio::spawn(async move {
            let mut filter = check::StreamFilter::new(&p.passages);
            let mut first_token_ms = None;
            while let Some(ev) = handle.events.recv().await {
                match ev {
                    GenerationEvent::Token(t) => {
                        let shown = filter.push(&t);
                        if !shown.is_empty() {
                            first_token_ms.get_or_insert(p.started.elapsed().as_millis() as u64);
                            if tx.send(AnswerEvent::Token(shown)).await.is_err() {
                                handle.cancel.cancel();
                                return;
                            }
                        }
                    }
                    GenerationEvent::Done(g) => {
                        let rest = filter.finish();
                        if !rest.is_empty() {
                            first_token_ms.get_or_insert(p.started.elapsed().as_millis() as u64);
                            let _ = tx.send(AnswerEvent::Token(rest)).await;
                        }
                        let this2 = this.clone();
                        let answer = tokio::task::spawn_blocking(move || {
                            let mut a = this2.finish(&p, &g.text, first_token_ms, g.prompt_tokens, g.completion_tokens);
                            a.timings.cached_prompt_tokens = g.cached_prompt_tokens;
                            a
                        })
                        .await;
                        let ev = match answer {
                            Ok(a) => AnswerEvent::Done(Box::new(a)),
                            Err(e) => AnswerEvent::Error(AnswerError::Model(e.to_string())),
                        };
                        let _ = tx.send(ev).await;
                        return;
                    }
                    GenerationEvent::Error(e) => {
                        tracing::error!(error = %e, "generation failed");
                        let _ = tx.send(AnswerEvent::Error(AnswerError::Model(e))).await;
                        return;
                    }
                }
            }
        });
        Ok(AnswerRun { events: rx })
    }

    /// Answer without calling the model: the best source's own words, cited `[1]`, when its
    /// quote matches the question well enough; else a pointer to the best page; the refusal
    /// when the evidence is weak. For questions that may not go to the engine (personal data
    /// and an external engine); `reason` says why (English, for the log and `replaced`). The
    /// answer names no model.
    pub fn without_model(&self, p: &Prepared, reason: &'static str) -> Answer {
        let timings = Timings {
            retrieval_ms: p.retrieval_ms,
            first_token_ms: None,
            total_ms: p.started.elapsed().as_millis() as u64,
            ..Timings::default()
        };
        let mut a = match p.passages.first() {
            _ if p.weak_evidence => self.refusal(p),
            Some(best) if !best.quotes.is_empty() && best.key_score >= MIN_EXTRACTIVE_SCORE => {
                self.extractive(p, timings, reason, best.n)
            }
            Some(best) => {
                let mut sources = p.sources();
                for s in &mut sources {
                    s.cited = s.n == best.n;
                }
                Answer {
                    fallback: true,
                    replaced: Some(reason),
                    ..self.answered(p, p.lang.pointer_text(&best.title), sources, Vec::new(), timings)
                }
            }
            None => self.refusal(p),
        };
        a.model = String::new();
        a
    }

    /// [`Answerer::without_model`] as a run: sources, quotes and the answer at once.
    pub fn start_without_model(&self, p: Prepared, reason: &'static str) -> AnswerRun {
        let (tx, rx) = mpsc::channel(4);
        let answer = self.without_model(&p, reason);
        // capacity 4: these cannot block
        let _ = tx.try_send(AnswerEvent::Sources(answer.sources.clone()));
        let _ = tx.try_send(AnswerEvent::Quotes(answer.quotes.clone()));
        let _ = tx.try_send(AnswerEvent::Done(Box::new(answer)));
        AnswerRun { events: rx }
    }

    /// Check the generated text and build the final answer. Blocking (may embed).
    pub fn finish(
        &self,
        p: &Prepared,
        generated: &str,
        first_token_ms: Option<u64>,
        prompt_tokens: usize,
        completion_tokens: usize,
    ) -> Answer {
        let passage_vectors: std::cell::OnceCell<Option<Vec<Vec<f32>>>> = std::cell::OnceCell::new();
        let mut semantic = |sentence: &str, n: usize| -> bool {
            // only for answers in another language than the pages, where words cannot match
            if p.lang == Lang::De {
                return false;
            }
            let Some(e) = &self.embedder else {
                return false;
            };
            let pv = passage_vectors.get_or_init(|| {
                let texts: Vec<&str> = p.passages.iter().map(|x| x.full_text.as_str()).collect();
                e.embed(&texts, EmbedKind::Passage).ok()
            });
            let Some(pv) = pv else { return false };
            let Ok(mut sv) = e.embed(&[sentence], EmbedKind::Query) else {
                return false;
            };
            let sv = sv.pop().unwrap_or_default();
            pv.get(n.wrapping_sub(1))
                .is_some_and(|v| v.iter().zip(&sv).map(|(a, b)| a * b).sum::<f32>() >= 0.80)
        };
        let c = check::check(generated, &p.passages, &p.injected, &mut semantic);
        let total_ms = p.started.elapsed().as_millis() as u64;
        let timings = Timings {
            retrieval_ms: p.retrieval_ms,
            first_token_ms,
            total_ms,
            prompt_tokens,
            cached_prompt_tokens: 0,
            completion_tokens,
            cached: false,
        };
        let best = p.passages.first();
        if c.model_refused {
            // the model found no answer; when the best source states a fact of the asked
            // kind plainly in a sentence that matches the question well, its own words are
            // better than a refusal
            // (a by-law's penalty clause names the duty by its paragraph, "wer ... seine
            // Verpflichtungen aus § 1 nicht erfüllt", so it shares few words with a "Was
            // passiert, wenn ...?": there the fine it states is enough)
            let least = if evidence::asks_consequence(&p.request.question) { 2.5 } else { 3.0 };
            let plain = best.is_some_and(|b| b.key_score >= least && b.settled);
            tracing::debug!(key_score = best.map(|b| b.key_score), settled = best.map(|b| b.settled), "the model found no answer");
            if plain {
                return self.extractive(p, timings, "model found no answer", 1);
            }
            let mut a = self.refusal(p);
            a.timings = timings;
            return a;
        }
        // the passage the answer rests on: the best one when cited, else the first cited
        let basis = if c.cited.contains(&1) { Some(1) } else { c.cited.first().copied() };
        let reason = if c.unsupported() {
            Some("not backed by the sources")
        } else if check::du_form(&c.text) {
            Some("du-form")
        } else if check::denies(&c.text)
            && !p.passages.iter().filter(|x| c.cited.contains(&x.n)).any(|x| check::backs_denial(&x.full_text))
        {
            Some("a denial without a negation in the cited passage")
        } else if check::strip_markers(&c.text).split_whitespace().count() < 3
            && asked::numbers(&check::strip_markers(&c.text)).is_empty()
            && !p.wanted.iter().any(|k| *k != AskedKind::YesNo && asked::holds(*k, &c.text))
        {
            Some("the answer is a word or two without a figure")
        } else if talks_about_the_prompt(&c.text) {
            Some("the model repeated its instructions")
        } else if names_no_fact(p, &c.text) {
            Some("the answer names no fact of the asked kind")
        } else if basis.is_some_and(|n| missing_fact(p, n, &c.text)) {
            Some("the asked fact is missing")
        } else if basis.is_some_and(|n| missing_condition(p, n, &c.text)) {
            Some("a bare yes where the source states a condition or limit")
        } else {
            None
        };
        if let Some(reason) = reason {
            // the quote of the passage the answer rests on replaces it, when that quote
            // matches the question well enough to stand as the answer; else a pointer. An
            // answer resting on a weaker passage than the best gets the best one's quote: the
            // model's choice of source is as doubtful as its text
            let strongest = |n: usize| p.passages.iter().find(|x| x.n == n).map_or(0.0, |x| x.key_score);
            let n = match basis {
                Some(n) if n != 1 && strongest(1) > strongest(n) && p.passages.first().is_some_and(|b| !b.quotes.is_empty()) => 1,
                Some(n) => n,
                None => 1,
            };
            let quotable = p
                .passages
                .iter()
                .find(|x| x.n == n)
                .is_some_and(|x| !x.quotes.is_empty() && x.key_score >= MIN_EXTRACTIVE_SCORE);
            if quotable {
                return self.extractive(p, timings, reason, n);
            }
        }
        let mut sources = p.sources();
        // nothing backed by a passage (an invented fee, say): point to the best page instead
        let fallback = reason.is_some() && !sources.is_empty();
        let text = match sources.first() {
            Some(best) if fallback => p.lang.pointer_text(&best.title),
            _ => c.text.clone(),
        };
        for s in &mut sources {
            s.cited = if fallback { s.n == 1 } else { c.cited.contains(&s.n) };
        }
        if fallback {
            tracing::info!(
                reason,
                removed_unsupported = c.removed_unsupported,
                unsupported_sentences = c.unsupported_sentences,
                "answer not shown; pointing to the best page"
            );
        }
        let quotes = match basis {
            Some(n) if !fallback => p.quotes_of(n),
            _ => Vec::new(),
        };
        Answer {
            flagged: !fallback && c.flagged(),
            fallback,
            replaced: reason.filter(|_| fallback),
            ..self.answered(p, text, sources, quotes, timings)
        }
    }

    /// A (not refused) answer with its label, hint, language and model; no flags set.
    fn answered(&self, p: &Prepared, text: String, sources: Vec<Source>, quotes: Vec<Quote>, timings: Timings) -> Answer {
        Answer {
            id: String::new(),
            answer: text,
            sources,
            refused: false,
            label: LABEL.to_string(),
            hint: p.lang.check_hint().to_string(),
            lang: p.lang,
            model: self.model_id(),
            flagged: false,
            fallback: false,
            extractive: false,
            quotes,
            replaced: None,
            asked: p.asked(),
            timings,
        }
    }

    /// The extractive answer: one framing sentence and the best source's own words, cited.
    fn extractive(&self, p: &Prepared, timings: Timings, reason: &'static str, n: usize) -> Answer {
        tracing::info!(reason, passage = n, "answer replaced by the source's own words");
        let quotes = p.quotes_of(n);
        let title = p.passages.iter().find(|b| b.n == n).map(|b| b.title.clone()).unwrap_or_default();
        // page text is quoted, never read as markup or citations of its own
        let said: Vec<String> = quotes.iter().map(|q| check::strip_markers(&quote_for_reading(&q.text))).collect();
        let text = format!("{} „{}“ [{n}]", p.lang.quote_lead(&title), said.join(" … "));
        let mut sources = p.sources();
        for s in &mut sources {
            s.cited = s.n == n;
        }
        Answer {
            extractive: true,
            replaced: Some(reason),
            ..self.answered(p, text, sources, quotes, timings)
        }
    }

    /// Answer and wait for the whole result.
    pub async fn answer(self: &Arc<Self>, req: &AnswerRequest) -> Result<Answer, AnswerError> {
        self.answer_in(req, &CollectionScope::public_website()).await
    }

    /// Answer from the collections of `scope` (the caller has checked that the asker may read
    /// them) and wait for the whole result.
    pub async fn answer_in(self: &Arc<Self>, req: &AnswerRequest, scope: &CollectionScope) -> Result<Answer, AnswerError> {
        let this = self.clone();
        let req = req.clone();
        let scope = scope.clone();
        let p = tokio::task::spawn_blocking(move || this.prepare_in(&req, &scope))
            .await
            .map_err(|e| AnswerError::Model(e.to_string()))??;
        let mut run = self.start(p)?;
        while let Some(ev) = run.events.recv().await {
            match ev {
                AnswerEvent::Done(a) => return Ok(*a),
                AnswerEvent::Error(e) => return Err(e),
                _ => {}
            }
        }
        Err(AnswerError::Model("the answer ended without a result".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_are_whole_words() {
        assert_eq!(shares("Ein Viertel der Gemeinderäte kann verlangen"), vec!["viertel"]);
        assert_eq!(shares("zur Hälfte, mit der Mehrheit der Stimmen"), vec!["hälfte", "mehrheit"]);
        assert!(shares("im Vierteljahr, im Stadtviertel").is_empty());
    }
}
