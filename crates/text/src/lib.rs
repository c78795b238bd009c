//! German text for Lotse: sentences, words and syllables, and a small lexicon of the words
//! that carry a rule's meaning without being a fact (negations, limits, prohibitions,
//! conditions, payment), plus informal address.
//!
//! Design decision: rules, not a dictionary or a model. Every function is pure (no IO, no
//! state, no configuration) and knows German only; the regexes are compiled once. The
//! plain-language rewriter (`lotse-simplify`) compares a rewrite with its original through
//! these functions, and the answer checks use the same splitter and lexicon, so both crates
//! agree on what a sentence and a negation are. A change to a word list here changes what
//! `lotse-simplify` accepts: raise its `RULES_VERSION` with it.

mod address;
mod calendar;
mod polarity;
mod segment;

pub use address::du_form;
pub use calendar::{MONTHS, is_month, month_number};
pub use polarity::{
    Limit, backs_denial, circumstances, condition_forms, condition_openings, conditions, denies,
    limits, mentions_payment, negations,
};
pub use segment::{
    SentenceSpan, sentence_slices, sentence_spans, sentences, syllables, words,
};

/// A built-in pattern; a typo in one is a bug, found by the first test that uses it.
fn pattern(p: &str) -> regex::Regex {
    regex::Regex::new(p).unwrap_or_else(|e| panic!("built-in pattern {p}: {e}"))
}
