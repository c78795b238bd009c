//! Einfache Sprache: a page rewritten into plain German, block by block, without changing a
//! single fee, date or deadline.
//!
//! Pipeline per page: the page's blocks in order (headings, paragraphs, lists, tables) ->
//! the deterministic pass ([`rules::expand`]: abbreviations, symbols, amounts, semicolons) ->
//! paragraphs and long list items cut into units of whole sentences and rewritten by the
//! model ([`prompt`]) -> every unit checked ([`facts::check`], added terms
//! ([`content`]), negations and limits ([`polarity`]), length, Sie-Form), retried
//! once with a stricter prompt naming the facts, else shown after the deterministic pass
//! only (a block none of whose units passed is shown in its original wording) -> the
//! town's glossary explains hard terms at their first use -> HTML, plain text, per-block
//! status and readability before and after ([`readability`]).
//!
//! Invariants:
//! - One output block per input block, same order, same kind, same number of list items and
//!   table rows: nothing is lost or reordered.
//! - A block reported as simplified keeps every fact of its original; a block whose units all
//!   fail their checks twice is shown in its original wording and says so.
//! - Every result carries [`LABEL`] and a link to the original.
//! - Nothing here logs page text.
//!
//! Results are cached by content hash, model and rules version; this crate does no IO: the
//! rewrite store lives in the server's one database (`lotse_server::rewrites`), the unit
//! cache is whatever implements [`UnitCache`].

pub mod content;
pub mod facts;
pub mod formula;
pub mod polarity;
pub mod prompt;
pub mod readability;
pub mod render;
pub mod review;
pub mod rules;
pub mod sari;

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lotse_core::{Block, Page};
use lotse_inference::{CancelToken, GenerationParams, Generator, InferenceError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use readability::Readability;
pub use review::{
    BlockCorrection, Correction, CorrectionError, LegalTexts, ReviewDecision, ReviewNote,
    ReviewStatus, apply_corrections, is_legal_text,
};
pub use rules::{Glossary, GlossaryEntry};

/// The label of every rewrite.
pub const LABEL: &str =
    "KI-generiert – in Einfache Sprache übertragen. Verbindlich ist der Originaltext.";

/// Version of the rules, prompt, checks and rendering: part of every page cache key, so a
/// change here rewrites the pages again (units come from the unit cache where
/// `UNIT_VERSION` is unchanged).
pub const RULES_VERSION: u32 = 14;

/// Version of what decides one unit's rewrite: the deterministic pass, how text is cut into
/// units, the prompt, the generation parameters and the checks a candidate must pass. Part
/// of the unit cache key. Raise it (and `RULES_VERSION`) with any such change; a change that
/// only touches what happens after the units (the glossary, rendering) raises
/// `RULES_VERSION` alone. A cached rewrite goes through today's citation filter and checks
/// again before it is shown (and back to the model when it fails them), so a stricter filter
/// or check needs `RULES_VERSION` alone: only the units it refuses are rewritten again. A
/// looser check needs it alone too, but then a unit that failed before keeps its cached
/// failure (the cache holds no failed candidates) until `UNIT_VERSION` is raised.
pub const UNIT_VERSION: u32 = 9;

/// A built-in regular expression. A bad one is a bug in this crate, found by the first test
/// that uses it, so it panics.
pub(crate) fn pattern(p: &str) -> regex::Regex {
    regex::Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {p}: {e}"))
}

/// Texts shorter than this many words get the deterministic pass only, unless they are a
/// short hard sentence (see [`for_model`]).
const MIN_MODEL_WORDS: usize = 8;
/// Fewest words of a short sentence the model rewrites ("Keine Veranstaltungen eingetragen.").
const MIN_SENTENCE_WORDS: usize = 3;
/// A short sentence reading below this Flesch (Amstad) goes to the model; above it (60 is
/// where "mittelschwer" begins) there is little to gain and a model call to save.
const HARD_SHORT_FLESCH: f64 = 60.0;
/// Longest unit given to the model, in words (whole sentences; a longer sentence is a unit
/// of its own).
const MAX_UNIT_WORDS: usize = 30;

/// A paragraph's enumerator ("(1)", "2.", "1.1", "2.3.1.", "a)", "IV."): structure, kept as
/// it is and not given to the model (which tends to drop it).
static ENUMERATOR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"^\s*(\(\d{1,3}[a-z]?\)|\d{1,3}(?:\.\d{1,3})*[a-z]?\.|\d{1,3}(?:\.\d{1,3})+[a-z]?|[a-z]\)|[IVX]{1,5}\.)\s+",
    )
        .unwrap_or_else(|e| panic!("enumerator pattern: {e}"))
});

/// Errors of the simplify crate.
#[derive(Debug, thiserror::Error)]
pub enum SimplifyError {
    #[error("rewrite store at {path}: {message}")]
    Store { path: String, message: String },
    #[error("model: {0}")]
    Model(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<InferenceError> for SimplifyError {
    fn from(e: InferenceError) -> Self {
        match e {
            InferenceError::Cancelled => SimplifyError::Cancelled,
            e => SimplifyError::Model(e.to_string()),
        }
    }
}

pub type Result<T, E = SimplifyError> = std::result::Result<T, E>;

/// The structural kind of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Heading,
    Paragraph,
    List,
    Table,
}

impl BlockKind {
    pub fn of(block: &Block) -> BlockKind {
        match block {
            Block::Heading { .. } => BlockKind::Heading,
            Block::Paragraph { .. } => BlockKind::Paragraph,
            Block::List { .. } => BlockKind::List,
            Block::Table { .. } => BlockKind::Table,
        }
    }
}

/// What happened to a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockStatus {
    /// Rewritten by the model; every unit passed the checks and reads easier.
    Simplified,
    /// Some units rewritten; the others failed their checks or read no easier and are shown
    /// after the deterministic pass only (abbreviations written out, facts unchanged).
    Partial,
    /// Short or structural (headings, tables, short items), on a rules-only path, or no
    /// candidate read easier:
    /// abbreviations and symbols written out, no model rewrite.
    RulesOnly,
    /// The rewrite failed the checks twice: the original wording is shown.
    NotSimplified,
}

/// One block of the result, beside its original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockResult {
    pub index: usize,
    pub kind: BlockKind,
    pub status: BlockStatus,
    pub original: Block,
    pub simplified: Block,
    /// Why units were kept in the original wording (English, for the town's editors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Set when staff corrected this block in the review of a legal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
}

/// Readability of the original and the rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadabilityChange {
    pub before: Readability,
    pub after: Readability,
    /// `after.flesch_amstad - before.flesch_amstad`.
    pub flesch_gain: f64,
}

/// Block counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub blocks: usize,
    pub simplified: usize,
    pub partial: usize,
    pub rules_only: usize,
    pub not_simplified: usize,
    /// Units the model rewrote / units given to it.
    pub units_rewritten: usize,
    pub units: usize,
    pub retries: usize,
    /// Units whose outcome came from the unit cache (no model call).
    #[serde(default)]
    pub units_cached: usize,
}

/// A page in Einfache Sprache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimplifiedPage {
    pub url: String,
    pub title: String,
    /// "KI-generiert – in Einfache Sprache übertragen. Verbindlich ist der Originaltext."
    pub label: String,
    /// The binding original.
    pub original_url: String,
    /// HTML fragment with the page's structure, the label and the link to the original.
    pub html: String,
    /// Plain text, one sentence per line.
    pub text: String,
    pub blocks: Vec<BlockResult>,
    pub readability: ReadabilityChange,
    pub summary: Summary,
    /// Terms the glossary explained.
    pub explained_terms: Vec<String>,
    pub model: String,
    pub rules_version: String,
    pub content_hash: String,
    /// Unix time of the rewrite.
    pub generated_at: u64,
    pub duration_ms: u64,
    /// Whether the page is a legal text ([`is_legal_text`]), whose model rewrite a town may
    /// show only after a staff review ([`LegalTexts`]).
    #[serde(default)]
    pub legal_text: bool,
    /// Set when what is shown depends on a staff review: the deterministic pass while the
    /// model's rewrite awaits review or was rejected, or the approved rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewNote>,
}

impl SimplifiedPage {
    /// Whether this result has exactly the blocks of `page`: same number, order and kinds,
    /// heading levels, list items and table shape (the "nothing lost or reordered" rule).
    pub fn keeps_structure_of(&self, page: &Page) -> bool {
        page.blocks.len() == self.blocks.len()
            && page
                .blocks
                .iter()
                .zip(&self.blocks)
                .enumerate()
                .all(|(i, (a, r))| {
                    r.index == i
                        && &r.original == a
                        && match (a, &r.simplified) {
                            (Block::Heading { level: x, .. }, Block::Heading { level: y, .. }) => {
                                x == y
                            }
                            (Block::Paragraph { .. }, Block::Paragraph { .. }) => true,
                            (
                                Block::List {
                                    items: x,
                                    ordered: o1,
                                },
                                Block::List {
                                    items: y,
                                    ordered: o2,
                                },
                            ) => x.len() == y.len() && o1 == o2,
                            (Block::Table { rows: x }, Block::Table { rows: y }) => {
                                x.len() == y.len()
                                    && x.iter().zip(y).all(|(a, b)| a.len() == b.len())
                            }
                            _ => false,
                        }
                })
    }

    /// Block counts, readability after, HTML and text computed again from the blocks (after
    /// a block changed, as in a review's corrections).
    pub(crate) fn refresh(&mut self) {
        let count = |s: BlockStatus| self.blocks.iter().filter(|b| b.status == s).count();
        self.summary.simplified = count(BlockStatus::Simplified);
        self.summary.partial = count(BlockStatus::Partial);
        self.summary.rules_only = count(BlockStatus::RulesOnly);
        self.summary.not_simplified = count(BlockStatus::NotSimplified);
        self.readability.after = readability::readability(
            &self
                .blocks
                .iter()
                .map(|b| b.simplified.text())
                .collect::<Vec<_>>()
                .join("\n\n"),
        );
        self.readability.flesch_gain =
            self.readability.after.flesch_amstad - self.readability.before.flesch_amstad;
        self.html = render::html(self);
        self.text = render::text(self);
    }

    /// This result with `note` shown under the label (HTML and text rendered again).
    pub fn with_review(mut self, note: ReviewNote) -> SimplifiedPage {
        self.review = Some(note);
        self.html = render::html(&self);
        self.text = render::text(&self);
        self
    }

    /// Whether the model rewrote any of this page (what a staff review would look at).
    pub fn has_model_rewrite(&self) -> bool {
        self.summary.units_rewritten > 0
    }

    /// Blocks shown as rewritten whose facts differ from their original (must be none).
    pub fn fact_violations(&self) -> Vec<String> {
        self.blocks
            .iter()
            .filter(|b| b.status != BlockStatus::NotSimplified)
            .filter_map(|b| {
                let c = facts::check(&b.original.text(), &b.simplified.text());
                (!c.ok()).then(|| format!("block {}: {c:?}", b.index))
            })
            .collect()
    }
}

/// Told before each model call; the server waits there while citizens' chats run, and
/// counts progress.
pub trait Progress: Sync {
    fn before_unit(&self, _done: usize, _total: usize) {}
}

/// No progress reporting.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Outcomes of single units, kept across pages and runs: a page whose text changed in one
/// paragraph, or a new glossary, then costs model time only for the units that changed.
/// Values are opaque to the cache. A cache that fails to read or write acts as a miss (and
/// logs why); it never fails a rewrite.
pub trait UnitCache: Send + Sync {
    fn get_unit(&self, key: &str) -> Option<String>;
    fn put_unit(&self, key: &str, value: &str);
}

/// The rewriter: the model, the glossary and the checks.
pub struct Simplifier {
    generator: Arc<dyn Generator>,
    glossary: Glossary,
    rules_version: String,
    unit_cache: Option<Arc<dyn UnitCache>>,
    /// URL path prefixes whose pages the model does not rewrite (see `with_rules_only`).
    rules_only: Vec<String>,
    /// How the model treats legal texts (see `with_legal_texts`).
    legal_texts: LegalTexts,
}

impl std::fmt::Debug for Simplifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simplifier")
            .field("model", &self.generator.info().id)
            .field("rules_version", &self.rules_version)
            .finish_non_exhaustive()
    }
}

/// sha256 hex of a text.
pub fn sha256_hex(text: &str) -> String {
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// A unit of text for the model, or the deterministic pass alone.
struct UnitOutcome {
    text: String,
    /// Units the model rewrote (of those given to it).
    rewritten: usize,
    /// Units whose every candidate failed a check (shown in original wording when all did).
    failed: usize,
    problem: Option<String>,
    retried: bool,
    /// Units whose outcome came from the unit cache.
    cached: usize,
}

impl UnitOutcome {
    /// A text that no model saw: the deterministic pass (or the original wording, with the
    /// `problem` of the pass).
    fn without_model(text: String, problem: Option<String>) -> UnitOutcome {
        UnitOutcome {
            text,
            rewritten: 0,
            failed: 0,
            problem,
            retried: false,
            cached: 0,
        }
    }
}

/// What became of one unit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum UnitResult {
    /// A candidate kept every fact and reads easier.
    Rewritten { text: String },
    /// The candidates kept the facts but read no easier (or copied the text): the unit keeps
    /// the deterministic pass. Not a failure.
    NotSimpler,
    /// No candidate passed the checks; the reason.
    Failed { problem: String },
}

/// A unit's result and whether a second attempt ran, as the unit cache keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct CachedUnit {
    #[serde(flatten)]
    result: UnitResult,
    retried: bool,
    /// The model's candidates for a unit that found no rewrite: checked again on every hit,
    /// so a check made fairer later takes effect without a model call (and without raising
    /// `UNIT_VERSION`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<String>,
}

/// A rewrite must gain at least this much Flesch (Amstad) over its unit to be shown.
const MIN_UNIT_GAIN: f64 = 1.0;
/// A first candidate that gains this much is kept; one that gains less is compared with the
/// stricter second attempt (split sentences), and the easier of the two that pass wins.
const GOOD_UNIT_GAIN: f64 = 10.0;

/// Whether the model may rewrite the page at `url`: not when its path (with the query) begins
/// with one of `rules_only`.
pub fn model_allowed(rules_only: &[String], url: &str) -> bool {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    !rules_only.iter().any(|p| path.starts_with(p.as_str()))
}

/// Whether the model may rewrite `page`: its path allows it and it is not a legal text kept
/// from the model ([`LegalTexts::Rules`]).
pub fn model_allowed_for(rules_only: &[String], legal_texts: LegalTexts, page: &Page) -> bool {
    model_allowed(rules_only, &page.url)
        && !(legal_texts == LegalTexts::Rules && is_legal_text(page))
}

/// Units the model would rewrite for `page` with these rules-only paths (before a
/// `Simplifier` exists, e.g. for an estimate while the model still loads).
pub fn model_units(rules_only: &[String], legal_texts: LegalTexts, page: &Page) -> usize {
    if model_allowed_for(rules_only, legal_texts, page) {
        Simplifier::count_units(page)
    } else {
        0
    }
}

/// Whether `text` may be shown as the rewrite of `unit`: it passes every check and reads
/// easier by at least `MIN_UNIT_GAIN`.
fn shown_as_rewrite(unit: &str, text: &str) -> bool {
    let gain = readability::readability(text).flesch_amstad
        - readability::readability(unit).flesch_amstad;
    gain >= MIN_UNIT_GAIN && unit_problem(unit, text).is_none()
}

impl Simplifier {
    pub fn new(generator: Arc<dyn Generator>, glossary: Glossary) -> Simplifier {
        let terms: Vec<String> = glossary
            .entries()
            .map(|e| format!("{}={}", e.term, e.explanation))
            .collect();
        let rules_version = format!("{RULES_VERSION}-{}", &sha256_hex(&terms.join("\n"))[..8]);
        Simplifier {
            generator,
            glossary,
            rules_version,
            unit_cache: None,
            rules_only: Vec::new(),
            legal_texts: LegalTexts::default(),
        }
    }

    /// How the model treats legal texts. [`LegalTexts::Rules`] is part of the rules version
    /// (it changes what is generated); `Model` and `Review` generate the same and differ only
    /// in what is served.
    pub fn with_legal_texts(mut self, mode: LegalTexts) -> Simplifier {
        if mode == LegalTexts::Rules && self.legal_texts != LegalTexts::Rules {
            self.rules_version = format!("{}-legal-rules", self.rules_version);
        }
        self.legal_texts = mode;
        self
    }

    pub fn legal_texts(&self) -> LegalTexts {
        self.legal_texts
    }

    /// Pages whose URL path begins with one of `paths` ("/ortsrecht/") get the deterministic
    /// pass and the glossary only, no model rewrite: for a town that wants its statutes in
    /// plainer words without a model's paraphrase. Part of the rules version, so a change
    /// rewrites those pages again.
    pub fn with_rules_only(mut self, paths: Vec<String>) -> Simplifier {
        if !paths.is_empty() {
            let hash = sha256_hex(&paths.join("\n"));
            self.rules_version = format!("{}-{}", self.rules_version, &hash[..8]);
        }
        self.rules_only = paths;
        self
    }

    /// Whether the model may rewrite the page at `url` (see `with_rules_only`).
    pub fn model_allowed(&self, url: &str) -> bool {
        model_allowed(&self.rules_only, url)
    }

    /// Units the model would rewrite for `page` under this simplifier's settings.
    pub fn units_of(&self, page: &Page) -> usize {
        model_units(&self.rules_only, self.legal_texts, page)
    }

    /// Keep unit outcomes in `cache` and take them from it.
    pub fn with_unit_cache(mut self, cache: Arc<dyn UnitCache>) -> Simplifier {
        self.unit_cache = Some(cache);
        self
    }

    /// The unit cache key of an (expanded) unit: model, `UNIT_VERSION` and the text.
    fn unit_key(&self, unit: &str) -> String {
        sha256_hex(&format!("{}\u{1}{UNIT_VERSION}\u{1}{unit}", self.model()))
    }

    pub fn model(&self) -> &str {
        &self.generator.info().id
    }

    /// Rules, prompt and glossary version, as stored with every result.
    pub fn rules_version(&self) -> &str {
        &self.rules_version
    }

    /// The engine that rewrites (its id and whether it is external).
    pub fn engine(&self) -> &lotse_inference::ModelInfo {
        self.generator.info()
    }

    /// Whether the model runs outside the town's servers (see `ModelInfo::external`).
    pub fn external(&self) -> bool {
        self.generator.info().external
    }

    /// The cache key of a page with this content hash.
    pub fn cache_key(&self, content_hash: &str) -> String {
        sha256_hex(&format!(
            "{content_hash}\u{1}{}\u{1}{}",
            self.model(),
            self.rules_version
        ))
    }

    /// Units the model would rewrite for `page` (for progress and planning).
    pub fn count_units(page: &Page) -> usize {
        page.blocks
            .iter()
            .map(|b| match b {
                Block::Paragraph { text } => model_units_of(&rules::expand(text)).len(),
                Block::List { items, .. } => items
                    .iter()
                    .filter(|i| lotse_text::words(i).len() >= MIN_MODEL_WORDS + 4)
                    .map(|i| model_units_of(&rules::expand(i)).len())
                    .sum(),
                _ => 0,
            })
            .sum()
    }

    /// Rewrite `page`. Blocking: it calls the model once or twice per unit.
    pub fn simplify(
        &self,
        page: &Page,
        content_hash: &str,
        cancel: &CancelToken,
        progress: &dyn Progress,
    ) -> Result<SimplifiedPage> {
        let model = model_allowed_for(&self.rules_only, self.legal_texts, page);
        self.run(page, content_hash, model, cancel, progress)
    }

    /// The deterministic pass alone over `page` (no model call, milliseconds): what citizens
    /// see of a legal text while its model rewrite awaits review.
    pub fn simplify_rules_only(&self, page: &Page, content_hash: &str) -> Result<SimplifiedPage> {
        self.run(page, content_hash, false, &CancelToken::new(), &NoProgress)
    }

    fn run(
        &self,
        page: &Page,
        content_hash: &str,
        model: bool,
        cancel: &CancelToken,
        progress: &dyn Progress,
    ) -> Result<SimplifiedPage> {
        let start = Instant::now();
        let total = if model { Simplifier::count_units(page) } else { 0 };
        let mut done = 0usize;
        let mut summary = Summary {
            blocks: page.blocks.len(),
            ..Summary::default()
        };
        let mut results = Vec::with_capacity(page.blocks.len());
        for (index, block) in page.blocks.iter().enumerate() {
            let mut problems = Vec::new();
            let mut unit_stats = (0usize, 0usize, 0usize); // (rewritten, given, failed)
            let mut rewrite = |text: &str, model: bool| -> Result<String> {
                let out = self.rewrite_text(text, model, cancel, progress, &mut done, total)?;
                if let Some(p) = out.1.problem.clone() {
                    problems.push(p);
                }
                unit_stats.0 += out.1.rewritten;
                unit_stats.1 += out.0;
                unit_stats.2 += out.1.failed;
                summary.retries += out.1.retried as usize;
                summary.units_cached += out.1.cached;
                Ok(out.1.text)
            };
            let simplified = match block {
                Block::Heading {
                    level,
                    text,
                    anchor,
                } => Block::Heading {
                    level: *level,
                    text: rewrite(text, false)?,
                    anchor: anchor.clone(),
                },
                Block::Paragraph { text } => Block::Paragraph {
                    text: rewrite(text, model)?,
                },
                Block::List { ordered, items } => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let long = lotse_text::words(item).len() >= MIN_MODEL_WORDS + 4;
                        out.push(rewrite(item, long && model)?);
                    }
                    Block::List {
                        ordered: *ordered,
                        items: out,
                    }
                }
                Block::Table { rows } => {
                    let mut out = Vec::with_capacity(rows.len());
                    for row in rows {
                        let mut cells = Vec::with_capacity(row.len());
                        for cell in row {
                            cells.push(rewrite(cell, false)?);
                        }
                        out.push(cells);
                    }
                    Block::Table { rows: out }
                }
            };
            let (rewritten, given, failed) = unit_stats;
            summary.units += given;
            summary.units_rewritten += rewritten;
            let status = if given > 0 && failed == given {
                BlockStatus::NotSimplified
            } else if given == 0 && !problems.is_empty() {
                // a rule changed a fact: the original wording
                BlockStatus::NotSimplified
            } else if rewritten == 0 {
                BlockStatus::RulesOnly
            } else if rewritten == given {
                BlockStatus::Simplified
            } else {
                BlockStatus::Partial
            };
            // the invariant by construction: a block whose facts changed shows its original
            let (status, simplified) = if status == BlockStatus::NotSimplified {
                (status, block.clone())
            } else {
                let c = facts::check(&block.text(), &simplified.text());
                if c.ok() {
                    (status, simplified)
                } else {
                    problems.push(format!("block facts changed: {c:?}"));
                    (BlockStatus::NotSimplified, block.clone())
                }
            };
            match status {
                BlockStatus::Simplified => summary.simplified += 1,
                BlockStatus::Partial => summary.partial += 1,
                BlockStatus::RulesOnly => summary.rules_only += 1,
                BlockStatus::NotSimplified => summary.not_simplified += 1,
            }
            results.push(BlockResult {
                index,
                kind: BlockKind::of(block),
                status,
                original: block.clone(),
                simplified,
                problems,
                correction: None,
            });
        }
        let explained_terms = self.explain_terms(&mut results);
        let before = readability::readability(&page.text());
        let mut out = SimplifiedPage {
            url: page.url.clone(),
            title: page.title.clone(),
            label: LABEL.to_string(),
            original_url: page.url.clone(),
            html: String::new(),
            text: String::new(),
            blocks: results,
            // `after` and the gain: `refresh` below
            readability: ReadabilityChange {
                before,
                ..ReadabilityChange::default()
            },
            summary,
            explained_terms,
            model: self.model().to_string(),
            rules_version: self.rules_version.clone(),
            content_hash: content_hash.to_string(),
            generated_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_ms: start.elapsed().as_millis() as u64,
            legal_text: is_legal_text(page),
            review: None,
        };
        out.refresh();
        Ok(out)
    }

    /// The glossary over the rewritten blocks, in page order (original wording untouched).
    fn explain_terms(&self, results: &mut [BlockResult]) -> Vec<String> {
        let mut texts: Vec<String> = Vec::new();
        let mut slots: Vec<(usize, usize)> = Vec::new(); // (block, piece)
        for (b, r) in results.iter().enumerate() {
            if r.status == BlockStatus::NotSimplified || r.kind == BlockKind::Heading {
                continue;
            }
            for (p, t) in pieces(&r.simplified).into_iter().enumerate() {
                texts.push(t);
                slots.push((b, p));
            }
        }
        let explained = self.glossary.explain_first_use(&mut texts);
        for ((b, p), t) in slots.into_iter().zip(texts) {
            set_piece(&mut results[b].simplified, p, t);
        }
        explained
    }

    /// Deterministic pass, then (if `model` and long enough) the model per unit. Returns the
    /// number of units given to the model and the outcome.
    fn rewrite_text(
        &self,
        original: &str,
        model: bool,
        cancel: &CancelToken,
        progress: &dyn Progress,
        done: &mut usize,
        total: usize,
    ) -> Result<(usize, UnitOutcome)> {
        let expanded = rules::expand(original);
        let check = facts::check(original, &expanded);
        if !check.ok() {
            // a rule changed a fact (a bug to report): keep the original wording
            let problem = format!("rules changed facts: {check:?}");
            return Ok((0, UnitOutcome::without_model(original.to_string(), Some(problem))));
        }
        if let Some(text) = statute_formula(&expanded) {
            // a statute's formula: rewritten by rule, model or not
            return Ok((0, UnitOutcome::without_model(text, None)));
        }
        // no formula (just tried): length and difficulty decide
        if !model || !long_or_hard(&expanded) {
            return Ok((0, UnitOutcome::without_model(expanded, None)));
        }
        let (enumerator, body) = split_enumerator(&expanded);
        let pieces = units(&body);
        let mut out = Vec::with_capacity(pieces.len());
        let (mut rewritten, mut failed) = (0, 0);
        let mut problems = Vec::new();
        let mut retried = false;
        let mut cached = 0;
        for unit in &pieces {
            progress.before_unit(*done, total);
            if cancel.is_cancelled() {
                return Err(SimplifyError::Cancelled);
            }
            *done += 1;
            let (result, again, hit) = self.unit_outcome(unit, cancel)?;
            cached += usize::from(hit);
            let (text, again) = match (result, again) {
                (UnitResult::Rewritten { text }, again) => {
                    rewritten += 1;
                    (text, again)
                }
                (UnitResult::NotSimpler, again) => (unit.clone(), again),
                (UnitResult::Failed { problem }, again) => {
                    failed += 1;
                    problems.push(problem);
                    (unit.clone(), again)
                }
            };
            retried |= again;
            out.push(text);
        }
        Ok((
            pieces.len(),
            UnitOutcome {
                // every unit failed: the block shows its original wording
                text: if failed == pieces.len() {
                    original.to_string()
                } else {
                    format!("{enumerator}{}", out.join("\n"))
                },
                rewritten,
                failed,
                problem: (!problems.is_empty()).then(|| problems.join("; ")),
                retried,
                cached,
            },
        ))
    }

    /// One unit's outcome, from the unit cache or the model; the flags say whether a second
    /// attempt ran and whether it came from the cache.
    fn unit_outcome(&self, unit: &str, cancel: &CancelToken) -> Result<(UnitResult, bool, bool)> {
        let cached = self.unit_cache.as_ref().map(|c| (c, self.unit_key(unit)));
        if let Some((cache, key)) = &cached
            && let Some(hit) = cache
                .get_unit(key)
                .and_then(|json| serde_json::from_str::<CachedUnit>(&json).ok())
        {
            // nothing from the cache is shown without passing today's cleaning and checks: a
            // stricter check added without raising UNIT_VERSION, or a damaged row, costs a
            // model call, never a wrong rewrite
            let result = match hit.result {
                UnitResult::Rewritten { text } => {
                    let text = content::without_unfounded_citations(unit, &text);
                    shown_as_rewrite(unit, &text).then_some(UnitResult::Rewritten { text })
                }
                // a candidate that failed yesterday's checks may pass today's
                other => Some(match best_candidate(unit, &hit.candidates) {
                    Some(text) => UnitResult::Rewritten { text },
                    None => other,
                }),
            };
            if let Some(result) = result {
                return Ok((result, hit.retried, true));
            }
        }
        // each unit is checked against its own expanded text: the pass keeps the facts of the
        // whole text, and the units partition it
        let (mut result, mut again, candidates) = self.rewrite_unit(unit, cancel)?;
        let mut kept = Vec::new();
        if !matches!(result, UnitResult::Rewritten { .. }) {
            kept = candidates;
            // a unit of several sentences that failed or read no easier: each sentence alone
            // carries fewer facts for the model to lose
            if let Some(text) = self.rewrite_sentences(unit, cancel)? {
                result = UnitResult::Rewritten { text };
                again = true;
                kept.clear();
            }
        }
        let entry = CachedUnit {
            result,
            retried: again,
            candidates: kept,
        };
        if let Some((cache, key)) = &cached
            && let Ok(json) = serde_json::to_string(&entry)
        {
            cache.put_unit(key, &json);
        }
        Ok((entry.result, entry.retried, false))
    }

    /// The fallback for a unit of two or more sentences that found no rewrite: each sentence
    /// that [`for_model`] takes rewritten on its own (the others and those that
    /// find no rewrite stay as they are). `None` unless at least one sentence was rewritten and
    /// the whole reads easier and passes every check against the unit.
    fn rewrite_sentences(&self, unit: &str, cancel: &CancelToken) -> Result<Option<String>> {
        let sentences = lotse_text::sentences(unit);
        if sentences.len() < 2 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(sentences.len());
        let mut any = false;
        for sentence in sentences {
            if cancel.is_cancelled() {
                return Err(SimplifyError::Cancelled);
            }
            if !for_model(&sentence) {
                out.push(sentence);
                continue;
            }
            match self.rewrite_unit(&sentence, cancel)?.0 {
                UnitResult::Rewritten { text } => {
                    any = true;
                    out.push(text);
                }
                UnitResult::NotSimpler | UnitResult::Failed { .. } => out.push(sentence),
            }
        }
        if !any {
            return Ok(None);
        }
        let joined = out.join("\n");
        Ok(shown_as_rewrite(unit, &joined).then_some(joined))
    }

    /// One unit: rewrite and check; when the candidate fails a check or gains less than
    /// `GOOD_UNIT_GAIN`, once more with a stricter prompt (split sentences, the unit's facts
    /// named). The easiest candidate that passes wins. The flag says whether the second
    /// attempt ran; the candidates (cleaned) come last.
    fn rewrite_unit(
        &self,
        unit: &str,
        cancel: &CancelToken,
    ) -> Result<(UnitResult, bool, Vec<String>)> {
        let keep: Vec<String> = facts::facts(unit).into_iter().map(|f| f.text).collect();
        let base = readability::readability(unit).flesch_amstad;
        let mut problem = None;
        let mut best: Option<(f64, String)> = None;
        let mut passed = false;
        let mut attempts = 0;
        let mut candidates = Vec::new();
        for attempt in 0..2 {
            attempts += 1;
            let messages = prompt::messages(unit, attempt > 0, &keep);
            let approx_tokens = unit.chars().count() / 3 + 1;
            let params = GenerationParams {
                max_tokens: (approx_tokens * 2 + 60).min(600),
                temperature: 0.0,
                stop: vec!["\nText:".into(), "</text>".into()],
                ..GenerationParams::default()
            };
            let generation = self
                .generator
                .generate(&messages, &params, cancel, &mut |_| {})?;
            let candidate =
                content::without_unfounded_citations(unit, &prompt::clean(&generation.text));
            candidates.push(candidate.clone());
            match unit_problem(unit, &candidate) {
                None => {
                    passed = true;
                    let gain = readability::readability(&candidate).flesch_amstad - base;
                    if best.as_ref().is_none_or(|(g, _)| gain > *g) {
                        best = Some((gain, candidate));
                    }
                    if best.as_ref().is_some_and(|(g, _)| *g >= GOOD_UNIT_GAIN) {
                        break;
                    }
                }
                Some(p) => problem = Some(p),
            }
        }
        let retried = attempts > 1;
        Ok(match best {
            Some((gain, text)) if gain >= MIN_UNIT_GAIN => {
                (UnitResult::Rewritten { text }, retried, candidates)
            }
            _ if passed => (UnitResult::NotSimpler, retried, candidates),
            _ => (
                UnitResult::Failed {
                    problem: problem.unwrap_or_default(),
                },
                retried,
                candidates,
            ),
        })
    }
}

/// The easiest of `candidates` (as cleaned when they were made, then through today's citation
/// filter) that passes today's checks on `unit` and gains at least `MIN_UNIT_GAIN`.
fn best_candidate(unit: &str, candidates: &[String]) -> Option<String> {
    let base = readability::readability(unit).flesch_amstad;
    candidates
        .iter()
        .map(|c| content::without_unfounded_citations(unit, c))
        .filter(|c| unit_problem(unit, c).is_none())
        .map(|c| (readability::readability(&c).flesch_amstad - base, c))
        .filter(|(gain, _)| *gain >= MIN_UNIT_GAIN)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Why a candidate rewrite of `original` cannot be shown, if it cannot.
pub fn unit_problem(original: &str, candidate: &str) -> Option<String> {
    if candidate.trim().is_empty() {
        return Some("empty rewrite".into());
    }
    let (a, b) = (original.chars().count().max(1), candidate.chars().count());
    let ratio = b as f64 / a as f64;
    if !(0.4..=2.5).contains(&ratio) {
        return Some(format!("length ratio {ratio:.2} outside 0.4..2.5"));
    }
    if prompt::uses_du(candidate) && !prompt::uses_du(original) {
        return Some("informal address (du)".into());
    }
    if prompt::uses_first_person(candidate) && !prompt::uses_first_person(original) {
        return Some("first person (wir/ich) the original does not use".into());
    }
    if prompt::copies_example(original, candidate) {
        return Some("repeats a worked example of the prompt".into());
    }
    if let Some(s) = content::repeated_sentence(original, candidate) {
        return Some(format!("says a sentence again and again: {s:?}"));
    }
    let added = content::unsupported_nouns(original, candidate);
    if !added.is_empty() {
        return Some(format!("adds terms the original does not have: {added:?}"));
    }
    let check = facts::check(original, candidate);
    if !check.ok() {
        return Some(format!(
            "facts: missing {:?}, invented {:?}",
            check.missing, check.invented
        ));
    }
    polarity::problem(original, candidate)
}

/// A leading enumerator and the rest. "1." counts only before a capitalised word that is not
/// a month ("1. Januar" is a date).
fn split_enumerator(text: &str) -> (String, String) {
    let Some(m) = ENUMERATOR.find(text) else {
        return (String::new(), text.to_string());
    };
    let (head, rest) = text.split_at(m.end());
    // "1.1" or "2." could also start a date or a sum: only before a capitalised word
    if head.trim_end().ends_with('.') || head.trim().contains('.') {
        let next = rest.split_whitespace().next().unwrap_or("");
        let month = facts::is_month(next);
        if month || !next.chars().next().is_some_and(char::is_uppercase) {
            return (String::new(), text.to_string());
        }
    }
    (head.to_string(), rest.to_string())
}

/// Whether the model rewrites this (expanded) text: one of `MIN_MODEL_WORDS` words or more,
/// or a short whole sentence (or two) of prose that reads hard, such as "Keine
/// Veranstaltungen eingetragen." Kept as they are:
/// - labels without a final stop ("Nächster Monat", "Stand: Januar 2022"): navigation and
///   dates;
/// - a short numbered clause ("(1) Die Gemeinderäte sind ehrenamtlich tätig."): a rule of a
///   statute, short already, where every word counts and the default model was seen to drop
///   one ("sind tätig") or invent one ("ist entsprechend anzuwenden" -> "ist für Sie
///   geeignet"); the glossary explains its terms;
/// - a fragment that begins in lower case (the rest of a sentence cut by the page's markup);
/// - a statute's formula, which the rules rewrite ([`statute_formula`]).
fn for_model(expanded: &str) -> bool {
    statute_formula(expanded).is_none() && long_or_hard(expanded)
}

/// The length and difficulty part of [`for_model`], for a text known to be no formula.
fn long_or_hard(expanded: &str) -> bool {
    let n = lotse_text::words(expanded).len();
    if n >= MIN_MODEL_WORDS {
        return true;
    }
    let spans = lotse_text::sentence_spans(expanded);
    n >= MIN_SENTENCE_WORDS
        && split_enumerator(expanded).0.is_empty()
        && expanded.trim_start().chars().next().is_some_and(char::is_uppercase)
        && !spans.is_empty()
        && spans.iter().all(|s| s.terminated)
        && readability::readability(expanded).flesch_amstad < HARD_SHORT_FLESCH
}

/// The (expanded) text as one of a statute's formulas rewritten by rule ([`formula::rewrite`]:
/// the enacting formula, when it takes effect and what it repeals), its enumerator kept, when
/// it is one and the rewrite keeps its facts.
fn statute_formula(expanded: &str) -> Option<String> {
    let (enumerator, body) = split_enumerator(expanded);
    formula::rewrite(&body)
        .map(|t| format!("{enumerator}{t}"))
        .filter(|t| facts::check(expanded, t).ok())
}

/// The units the model gets for an (expanded) text: none unless [`for_model`] takes it, else
/// the text without its enumerator in whole sentences.
fn model_units_of(expanded: &str) -> Vec<String> {
    if for_model(expanded) {
        units(&split_enumerator(expanded).1)
    } else {
        Vec::new()
    }
}

/// Whole sentences grouped into units of at most `MAX_UNIT_WORDS` words.
fn units(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut words = 0;
    for s in lotse_text::sentences(text) {
        let n = lotse_text::words(&s).len();
        if words > 0 && words + n > MAX_UNIT_WORDS {
            out.push(std::mem::take(&mut current));
            words = 0;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&s);
        words += n;
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The text pieces of a block (items, cells) in order.
fn pieces(block: &Block) -> Vec<String> {
    match block {
        Block::Heading { text, .. } | Block::Paragraph { text } => vec![text.clone()],
        Block::List { items, .. } => items.clone(),
        Block::Table { rows } => rows.iter().flatten().cloned().collect(),
    }
}

fn set_piece(block: &mut Block, index: usize, value: String) {
    match block {
        Block::Heading { text, .. } | Block::Paragraph { text } => *text = value,
        Block::List { items, .. } => {
            if let Some(i) = items.get_mut(index) {
                *i = value;
            }
        }
        Block::Table { rows } => {
            if let Some(c) = rows.iter_mut().flatten().nth(index) {
                *c = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enumerators_are_structure_but_dates_are_not() {
        assert_eq!(
            split_enumerator("(2) Die Steuer"),
            ("(2) ".into(), "Die Steuer".into())
        );
        assert_eq!(split_enumerator("a) Hunde"), ("a) ".into(), "Hunde".into()));
        assert_eq!(
            split_enumerator("3. Die Gebühr"),
            ("3. ".into(), "Die Gebühr".into())
        );
        assert_eq!(split_enumerator("1. Januar 2025 beginnt").0, "");
        assert_eq!(split_enumerator("Die Steuer (1)").0, "");
        assert_eq!(
            split_enumerator("1.1 Die Gemeinde"),
            ("1.1 ".into(), "Die Gemeinde".into())
        );
        assert_eq!(split_enumerator("2.3.1. Anträge").0, "2.3.1. ");
        assert_eq!(split_enumerator("IV. Verfahren").0, "IV. ");
        assert_eq!(split_enumerator("1.1 2025 beginnt").0, "");
    }

    /// A fake model: answers each unit with `rewrite(unit)`.
    struct FakeRewriter(lotse_inference::ModelInfo, fn(&str) -> String);

    impl Generator for FakeRewriter {
        fn info(&self) -> &lotse_inference::ModelInfo {
            &self.0
        }
        fn generate(
            &self,
            m: &[lotse_inference::ChatMessage],
            _: &GenerationParams,
            _: &CancelToken,
            _: &mut dyn FnMut(&str),
        ) -> lotse_inference::Result<lotse_inference::Generation> {
            let user = &m.last().map(|m| m.content.clone()).unwrap_or_default();
            let unit = user
                .rsplit_once("\nText:\n")
                .map(|(_, t)| t.trim())
                .unwrap_or("");
            Ok(lotse_inference::Generation {
                text: (self.1)(unit),
                prompt_tokens: 1,
                completion_tokens: 1,
                stop_reason: lotse_inference::StopReason::Eos,
                prompt_truncated: false,
                cached_prompt_tokens: 0,
            })
        }
    }

    /// `text` as the one paragraph of a page, rewritten with a fake model `id` that answers
    /// each unit with `rewrite(unit)`.
    fn simplify_paragraph_with(id: &str, rewrite: fn(&str) -> String, text: &str) -> SimplifiedPage {
        let info = lotse_inference::ModelInfo {
            id: id.into(),
            external: false,
            context_len: 4096,
        };
        let s = Simplifier::new(
            Arc::new(FakeRewriter(info, rewrite)),
            Glossary::new(vec![]).unwrap(),
        );
        let page = page_of("http://town.test/a/", &[text]);
        s.simplify(&page, "h", &CancelToken::new(), &NoProgress)
            .unwrap()
    }

    #[test]
    fn a_copy_is_not_a_simplification() {
        let out = simplify_paragraph_with(
            "fake-copying",
            |u| u.to_string(),
            "Die Steuer wird gem. § 3 Abs 2 der Satzung jährlich zum 1. Juli erhoben und ist sofort fällig.",
        );
        let b = &out.blocks[0];
        assert_eq!(b.status, BlockStatus::RulesOnly, "{b:?}");
        assert_eq!(out.summary.units, 1);
        assert_eq!(out.summary.units_rewritten, 0);
        assert_eq!(out.summary.retries, 1, "a second, stricter attempt ran");
        assert_eq!(
            b.simplified.text(),
            "Die Steuer wird gemäß Paragraf 3 Absatz 2 der Satzung jährlich zum 1. Juli erhoben und ist sofort fällig."
        );
        assert!(
            b.problems.is_empty(),
            "not simpler is no failure: {:?}",
            b.problems
        );
    }

    /// Given several sentences, answers with the first one only (it loses facts); given one
    /// sentence, makes each clause after a comma a sentence of its own.
    fn fake_clause_splitter(unit: &str) -> String {
        let sentences = lotse_text::sentences(unit);
        if sentences.len() > 1 {
            sentences[0].clone()
        } else {
            unit.replace(", ", ".\n")
        }
    }

    #[test]
    fn a_unit_that_fails_whole_is_rewritten_sentence_by_sentence() {
        let text = "Die Steuer beträgt 120 Euro für jeden Hund, Hunde von Jägern sind frei. \
            Die Steuer wird am 1. Juli fällig, Sie zahlen an die Kasse.";
        let out = simplify_paragraph_with("fake-clause-splitter", fake_clause_splitter, text);
        let b = &out.blocks[0];
        assert_eq!(b.status, BlockStatus::Simplified, "{b:?}");
        assert_eq!(out.summary.units, 1);
        assert_eq!(out.summary.units_rewritten, 1);
        assert_eq!(
            b.simplified.text(),
            "Die Steuer beträgt 120 Euro für jeden Hund.\nHunde von Jägern sind frei.\n\
             Die Steuer wird am 1. Juli fällig.\nSie zahlen an die Kasse."
        );
        assert!(out.fact_violations().is_empty());
        assert!(out.readability.flesch_gain > 3.0, "{:?}", out.readability);
    }

    #[test]
    fn a_reviewer_corrects_blocks_but_keeps_every_fact_and_the_structure() {
        let s = Simplifier::new(counting_splitter(), Glossary::new(vec![]).unwrap());
        let mut page = two_paragraphs(
            "Die Steuer wird am 1. Juli fällig, Sie zahlen an die Kasse im Rathaus.",
        );
        page.blocks.push(Block::List {
            ordered: false,
            items: vec![
                "Hunde von Jägern und Förstern sind frei, wenn sie im Dienst gebraucht werden."
                    .into(),
                "Blindenhunde".into(),
            ],
        });
        let rewrite = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
        let rules = s.simplify_rules_only(&page, "h").unwrap();
        assert_eq!(rewrite.blocks[0].status, BlockStatus::Simplified);
        assert_eq!(rewrite.blocks[1].status, BlockStatus::Simplified);
        assert_eq!(rewrite.blocks[2].status, BlockStatus::Simplified);
        assert_eq!(rewrite.summary.simplified, 3);
        let fix = |index: usize, text: Option<&str>| BlockCorrection {
            index,
            text: text.map(String::from),
        };

        let out = apply_corrections(
            &rewrite,
            &rules,
            &[
                fix(0, Some("Die Satzung gilt für jeden Hund im Ort.\r\nDie Steuer beträgt 120 Euro im Jahr.")),
                fix(1, None),
                fix(2, Some("- Hunde von Jägern und Förstern im Dienst sind frei.\n– Blindenhunde")),
            ],
        )
        .unwrap();
        assert!(out.keeps_structure_of(&page));
        assert!(out.fact_violations().is_empty());
        assert_eq!(
            out.blocks[0].simplified.text(),
            "Die Satzung gilt für jeden Hund im Ort.\nDie Steuer beträgt 120 Euro im Jahr."
        );
        assert_eq!(out.blocks[0].correction, Some(Correction::Edited));
        assert_eq!(out.blocks[1].simplified, rules.blocks[1].simplified);
        assert_eq!(out.blocks[1].status, rules.blocks[1].status);
        assert_eq!(out.blocks[1].correction, Some(Correction::Rules));
        assert_eq!(out.blocks[2].status, BlockStatus::Simplified);
        let Block::List { items, .. } = &out.blocks[2].simplified else { panic!() };
        assert_eq!(items[1], "Blindenhunde", "a dash typed as a bullet is no part of the item");
        assert_eq!(
            (out.summary.simplified, out.summary.rules_only),
            (2, 1),
            "counts follow the blocks"
        );
        assert!(out.html.contains("data-corrected=\"edited\""), "{}", out.html);
        assert!(out.text.contains("Förstern im Dienst"), "{}", out.text);
        assert_ne!(out.readability.after, rewrite.readability.after);

        let refused = |c: &[BlockCorrection]| apply_corrections(&rewrite, &rules, c).unwrap_err().0;
        // a fee lost or invented, a number of items changed, an empty text, a block the model
        // did not rewrite, the same block twice: each refused with a German reason
        assert!(refused(&[fix(0, Some("Die Satzung gilt für jeden Hund."))]).contains("120 Euro"));
        assert!(
            refused(&[fix(0, Some("Jeder Hund kostet 120 Euro, Welpen 60 Euro."))])
                .contains("60 Euro")
        );
        assert!(refused(&[fix(2, Some("Jäger und Blindenhunde sind frei."))]).contains("2 Punkten"));
        assert!(refused(&[fix(1, Some("  "))]).contains("leer"));
        let mut heading = page.clone();
        heading.blocks.insert(0, Block::Heading { level: 1, text: "Hundesteuer".into(), anchor: None });
        let rw = s.simplify(&heading, "h2", &CancelToken::new(), &NoProgress).unwrap();
        let ru = s.simplify_rules_only(&heading, "h2").unwrap();
        let e = apply_corrections(&rw, &ru, &[fix(0, Some("Steuer"))]).unwrap_err().0;
        assert!(e.contains("nicht umgeschrieben"), "{e}");
        assert!(refused(&[fix(1, None), fix(1, None)]).contains("zweimal"));
        assert!(refused(&[fix(9, None)]).contains("gibt es"));
    }

    /// `fake_clause_splitter` that counts its calls.
    struct CountingSplitter(lotse_inference::ModelInfo, std::sync::atomic::AtomicUsize);

    impl Generator for CountingSplitter {
        fn info(&self) -> &lotse_inference::ModelInfo {
            &self.0
        }
        fn generate(
            &self,
            m: &[lotse_inference::ChatMessage],
            p: &GenerationParams,
            c: &CancelToken,
            t: &mut dyn FnMut(&str),
        ) -> lotse_inference::Result<lotse_inference::Generation> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            FakeRewriter(self.0.clone(), fake_clause_splitter).generate(m, p, c, t)
        }
    }

    fn counting_splitter() -> Arc<CountingSplitter> {
        Arc::new(CountingSplitter(
            lotse_inference::ModelInfo {
                id: "fake-counting-splitter".into(),
                external: false,
                context_len: 4096,
            },
            std::sync::atomic::AtomicUsize::new(0),
        ))
    }

    /// A German HTML page of paragraphs at `url`.
    fn page_of(url: &str, paragraphs: &[&str]) -> Page {
        Page {
            url: url.into(),
            title: "A".into(),
            kind: lotse_core::DocKind::Html,
            lang: Some("de".into()),
            modified: None,
            blocks: paragraphs
                .iter()
                .map(|t| Block::Paragraph { text: (*t).into() })
                .collect(),
        }
    }

    fn two_paragraphs(second: &str) -> Page {
        page_of(
            "http://town.test/b/",
            &[
                "Die Satzung gilt für jeden Hund im Ort, die Steuer beträgt 120 Euro im Jahr.",
                second,
            ],
        )
    }

    #[test]
    fn unchanged_units_come_from_the_unit_cache() {
        use std::sync::atomic::Ordering::SeqCst;
        let store = Arc::new(MemoryUnits::default());
        let model = counting_splitter();
        let s = Simplifier::new(model.clone(), Glossary::default_terms()).with_unit_cache(store.clone());
        let first = two_paragraphs("Die Steuer wird am 1. Juli fällig, Sie zahlen an die Gemeindekasse.");
        let a = s.simplify(&first, "h1", &CancelToken::new(), &NoProgress).unwrap();
        let calls = model.1.load(SeqCst);
        assert!(calls >= 2, "{calls}");
        assert_eq!(a.summary.units_cached, 0);
        assert_eq!(store.unit_count().unwrap(), 2);

        // the CMS changes the second paragraph: only its unit goes to the model
        let changed = two_paragraphs("Die Steuer wird am 1. August fällig, Sie zahlen an die Gemeindekasse.");
        let b = s.simplify(&changed, "h2", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(b.summary.units_cached, 1);
        // the calls the changed paragraph alone costs without a cache
        let alone = counting_splitter();
        let mut only = changed.clone();
        only.blocks.remove(0);
        Simplifier::new(alone.clone(), Glossary::default_terms())
            .simplify(&only, "h3", &CancelToken::new(), &NoProgress)
            .unwrap();
        assert_eq!(model.1.load(SeqCst) - calls, alone.1.load(SeqCst), "model calls for the changed unit only");
        assert_eq!(a.blocks[0].simplified, b.blocks[0].simplified);
        assert!(b.blocks[1].simplified.text().contains("1. August"));
        assert_eq!(b.summary.units_rewritten, 2);

        // a new glossary re-renders the page without the model
        let calls = model.1.load(SeqCst);
        let glossary = Glossary::new(vec![GlossaryEntry {
            term: "Gemeindekasse".into(),
            explanation: "die Kasse im Rathaus".into(),
        }])
        .unwrap();
        let other = Simplifier::new(model.clone(), glossary).with_unit_cache(store.clone());
        assert_ne!(other.cache_key("h2"), s.cache_key("h2"));
        let c = other.simplify(&changed, "h2", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(model.1.load(SeqCst), calls);
        assert_eq!(c.summary.units_cached, 2);
        assert!(c.text.contains("Gemeindekasse bedeutet: die Kasse im Rathaus."), "{}", c.text);
        assert!(!c.text.contains("Satzung bedeutet"));
    }

    /// A unit cache in memory.
    #[derive(Default)]
    struct MemoryUnits(std::sync::Mutex<std::collections::HashMap<String, String>>);
    impl MemoryUnits {
        fn unit_count(&self) -> Result<usize> {
            Ok(self.0.lock().unwrap().len())
        }
    }
    impl UnitCache for MemoryUnits {
        fn get_unit(&self, key: &str) -> Option<String> {
            self.0.lock().unwrap().get(key).cloned()
        }
        fn put_unit(&self, key: &str, value: &str) {
            self.0.lock().unwrap().insert(key.to_string(), value.to_string());
        }
    }

    /// A unit cache that hands out one stored value for every key.
    struct OneValueCache(String);
    impl UnitCache for OneValueCache {
        fn get_unit(&self, _: &str) -> Option<String> {
            Some(self.0.clone())
        }
        fn put_unit(&self, _: &str, _: &str) {}
    }

    #[test]
    fn a_cached_rewrite_that_fails_the_checks_is_not_shown() {
        // a row that claims a rewrite with another amount (a stale or damaged cache)
        let row = serde_json::to_string(&CachedUnit {
            result: UnitResult::Rewritten {
                text: "Die Steuer beträgt 999 Euro.".into(),
            },
            retried: false,
            candidates: Vec::new(),
        })
        .unwrap();
        let model = counting_splitter();
        let s = Simplifier::new(model.clone(), Glossary::default_terms())
            .with_unit_cache(Arc::new(OneValueCache(row)));
        let page = two_paragraphs("Die Steuer wird am 1. Juli fällig, Sie zahlen an die Gemeindekasse.");
        let out = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(out.summary.units_cached, 0);
        assert!(!out.text.contains("999"), "{}", out.text);
        assert!(out.fact_violations().is_empty());
        assert!(model.1.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }

    #[test]
    fn a_cached_failure_is_checked_again_with_its_candidates() {
        let failed = |candidate: &str| {
            serde_json::to_string(&CachedUnit {
                result: UnitResult::Failed {
                    problem: "a check since made fairer".into(),
                },
                retried: true,
                candidates: vec![candidate.into()],
            })
            .unwrap()
        };
        let page = page_of(
            "http://town.test/c/",
            &["Die Steuer wird am 1. Juli fällig, Sie zahlen an die Gemeindekasse im Rathaus."],
        );
        let run = |row: String| {
            let model = counting_splitter();
            let s = Simplifier::new(model.clone(), Glossary::new(vec![]).unwrap())
                .with_unit_cache(Arc::new(OneValueCache(row)));
            let out = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
            (out, model.1.load(std::sync::atomic::Ordering::SeqCst))
        };
        // the candidate passes today's checks: shown, no model call
        let (out, calls) = run(failed(
            "Die Steuer wird am 1. Juli fällig.\nSie zahlen an die Gemeindekasse im Rathaus.",
        ));
        assert_eq!((out.blocks[0].status, out.summary.units_cached, calls), (BlockStatus::Simplified, 1, 0));
        assert!(out.text.contains("Sie zahlen an die Gemeindekasse"), "{}", out.text);
        // one that still fails stays a failure (the original wording), still without a call
        let (out, calls) = run(failed("Die Steuer beträgt 999 Euro."));
        assert_eq!((out.blocks[0].status, calls), (BlockStatus::NotSimplified, 0));
        assert!(!out.text.contains("999"));
    }

    #[test]
    fn a_cached_rewrite_loses_a_citation_its_original_does_not_make() {
        // a row stored before the citation filter: the model added "So steht es in der Regel."
        let row = serde_json::to_string(&CachedUnit {
            result: UnitResult::Rewritten {
                text: "Die Satzung gilt für jeden Hund im Ort. Die Steuer beträgt 120 Euro im Jahr. So steht es in der Regel.".into(),
            },
            retried: false,
            candidates: Vec::new(),
        })
        .unwrap();
        let model = counting_splitter();
        let s = Simplifier::new(model.clone(), Glossary::default_terms())
            .with_unit_cache(Arc::new(OneValueCache(row)));
        let page = two_paragraphs("Die Satzung gilt für jeden Hund im Ort, die Steuer beträgt 120 Euro im Jahr.");
        let out = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(out.summary.units_cached, 2);
        assert_eq!(out.summary.units_rewritten, 2);
        assert!(!out.text.contains("in der Regel"), "{}", out.text);
        assert!(out.text.contains("Die Steuer beträgt 120 Euro im Jahr."), "{}", out.text);
        assert_eq!(model.1.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn pages_under_a_rules_only_path_get_no_model_rewrite() {
        let model = counting_splitter();
        let plain = Simplifier::new(model.clone(), Glossary::default_terms());
        let s = Simplifier::new(model.clone(), Glossary::default_terms())
            .with_rules_only(vec!["/b/".into()]);
        assert_ne!(s.rules_version(), plain.rules_version());
        assert_eq!(
            Simplifier::new(model.clone(), Glossary::default_terms())
                .with_rules_only(Vec::new())
                .rules_version(),
            plain.rules_version()
        );
        let page = two_paragraphs("Die Steuer wird gem. § 3 Abs. 2 am 1. Juli fällig, Sie zahlen an die Gemeindekasse.");
        assert_eq!(s.units_of(&page), 0);
        assert_eq!(plain.units_of(&page), Simplifier::count_units(&page));
        let out = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(model.1.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(out.summary.units, 0);
        assert!(out.blocks.iter().all(|b| b.status == BlockStatus::RulesOnly));
        // the deterministic pass and the glossary still apply
        assert!(out.text.contains("gemäß Paragraf 3 Absatz 2"), "{}", out.text);
        assert!(out.text.contains("Satzung bedeutet:"), "{}", out.text);
        // another path of the same site is rewritten as before
        assert!(s.model_allowed("http://town.test/rathaus/"));
        assert!(!s.model_allowed("http://town.test/b/satzung?x=1"));
        assert!(!model_allowed(&["/".into()], "http://town.test"));
    }

    /// A unit cache whose every value is unreadable.
    struct GarbageCache;
    impl UnitCache for GarbageCache {
        fn get_unit(&self, _: &str) -> Option<String> {
            Some("{not json".into())
        }
        fn put_unit(&self, _: &str, _: &str) {}
    }

    #[test]
    fn an_unreadable_unit_cache_entry_is_a_miss() {
        let model = counting_splitter();
        let s = Simplifier::new(model.clone(), Glossary::default_terms()).with_unit_cache(Arc::new(GarbageCache));
        let page = two_paragraphs("Die Steuer wird am 1. Juli fällig, Sie zahlen an die Gemeindekasse.");
        let out = s.simplify(&page, "h", &CancelToken::new(), &NoProgress).unwrap();
        assert_eq!(out.summary.units_cached, 0);
        assert_eq!(out.summary.units_rewritten, 2);
        assert!(model.1.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }

    #[test]
    fn a_short_hard_sentence_goes_to_the_model_but_a_label_does_not() {
        assert!(for_model("Keine Veranstaltungen eingetragen."));
        assert!(for_model("Vorstehende Satzung wird genehmigt."));
        // labels and dates, numbered clauses, fragments, too short, or already easy: the
        // deterministic pass only
        assert!(!for_model("(2) Die Gebührenschuld entsteht mit der Bekanntgabe."));
        assert!(!for_model("4.2 Abschnitt I ist entsprechend anzuwenden."));
        assert!(!for_model("keine Erschließungsbeiträge nach den Vorschriften des Gesetzes."));
        assert!(!for_model("Nächster Monat"));
        assert!(!for_model("Stand: Januar 2022"));
        assert!(!for_model("Veranstaltungskalender."));
        assert!(!for_model("Die Verwaltung ist für Sie da."));
        let out = simplify_paragraph_with(
            "fake-short",
            |u| u.replace("Keine Veranstaltungen eingetragen.", "Es gibt keine Veranstaltungen."),
            "Keine Veranstaltungen eingetragen.",
        );
        let b = &out.blocks[0];
        assert_eq!(b.status, BlockStatus::Simplified, "{b:?}");
        assert_eq!(b.simplified.text(), "Es gibt keine Veranstaltungen.");
        assert_eq!(out.summary.units, 1);
        let page = page_of(
            "http://town.test/k/",
            &["Keine Veranstaltungen eingetragen.", "Nächster Monat"],
        );
        assert_eq!(Simplifier::count_units(&page), 1, "the label is no unit");
    }

    #[test]
    fn units_are_whole_sentences() {
        let text = "Eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf. ".repeat(4);
        let u = units(&text);
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u.iter().all(|x| x.ends_with('.')));
    }
}
