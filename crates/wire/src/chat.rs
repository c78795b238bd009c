//! `POST /api/v1/chat`: the question, the answer, and the events of its stream
//! (`sources`, `quotes`, `token`, `done`, `error`).

use serde::{Deserialize, Serialize};

/// Who said a history turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    User,
    Assistant,
}

/// An earlier turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Turn {
    pub role: Speaker,
    pub content: String,
}

/// A citizen's question.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnswerRequest {
    /// The question, at most 1000 characters.
    #[cfg_attr(feature = "openapi", schema(example = "Wie hoch ist die Hundesteuer?"))]
    pub question: String,
    /// Earlier turns, oldest first; follow-up questions are read in their light.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// Answer language (`de`, `en`, `tr`, `uk`, `ar`); detected from the question when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

/// A language Lotse answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    De,
    En,
    Tr,
    Uk,
    Ar,
}

/// The kind of fact a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AskedKind {
    /// An amount of money, a rate or a percentage ("Was kostet ...", "Wie hoch ...").
    Amount,
    /// A date, a time of day or a weekday ("Wann ...", "Bis wann ...").
    DateTime,
    /// A duration, a deadline in days or an age ("Wie lange ...", "Ab welchem Alter ...").
    Period,
    /// Who decides or where something happens ("Wer ...", "Wo ...", "An wen ...").
    Office,
    /// A yes or no, with its condition ("Darf ich ...", "Muss ich ...", "Gibt es ...").
    YesNo,
    /// Anything else ("Wie beantrage ich ...", "Was ist ...").
    Other,
}

/// A numbered source of an answer (also the `sources` event, as a list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
/// verbatim (German, whatever the answer's language: it is the binding wording). Also the
/// `quotes` event, as a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    /// The number of the source it comes from (as in `[n]`).
    pub n: usize,
    /// Verbatim text of the page: a sentence, a list item, or a table row (cells joined by
    /// " | "). Plain text, never HTML.
    #[cfg_attr(feature = "openapi", schema(example = "Erwachsene | 5,00 €"))]
    pub text: String,
    /// Link to that place of the page (a `#:~:text=` fragment or the section's anchor; the
    /// page's address for PDFs).
    pub url: String,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A checked answer: the JSON response, and the `done` event of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Answer {
    /// Names this answer for its rating (`POST /api/v1/feedback`); set by the server.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "3f2a9c0b1d4e5f60"))]
    pub id: String,
    /// The answer with `[n]` markers, or the refusal with the town's contact.
    pub answer: String,
    pub sources: Vec<Source>,
    /// True when the website does not answer the question (the text names the contact).
    pub refused: bool,
    /// Always "KI-generiert".
    #[cfg_attr(feature = "openapi", schema(example = "KI-generiert"))]
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
}

/// The parts of an [`Answer`] that the citizens' widget shows: the same JSON (the server
/// sends `Answer`; the other fields are skipped when read). Reading the whole `Answer` would
/// cost the widget about 4 kB of its 150 kB gzip budget.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerView {
    #[serde(default)]
    pub id: String,
    pub answer: String,
    #[serde(default)]
    pub sources: Vec<Source>,
    #[serde(default)]
    pub refused: bool,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub hint: String,
    #[serde(default)]
    pub flagged: bool,
    #[serde(default)]
    pub quotes: Vec<Quote>,
}

fn asked_other() -> AskedKind {
    AskedKind::Other
}

/// A streamed piece of the answer (`token` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenEvent {
    pub text: String,
}

/// A citizen's rating of an answer (`POST /api/v1/feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The `id` of the answer.
    #[cfg_attr(feature = "openapi", schema(example = "3f2a9c0b1d4e5f60"))]
    pub answer_id: String,
    /// Thumbs up (`true`) or down (`false`).
    pub helpful: bool,
    /// The question; kept only when the town has switched `[feedback] store_question` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widget_reads_what_the_server_sends() {
        let a = Answer {
            id: "3f2a".into(),
            answer: "Die Steuer beträgt 96 € [1].".into(),
            sources: vec![Source { n: 1, url: "u".into(), title: "t".into(), heading: "h".into(), deep_link: "u#h".into(), cited: true }],
            refused: false,
            label: "KI-generiert".into(),
            hint: "Bitte prüfen Sie die Quelle.".into(),
            lang: Lang::De,
            model: "m".into(),
            flagged: true,
            fallback: false,
            extractive: false,
            quotes: vec![Quote { n: 1, text: "96 €".into(), url: "u#q".into() }],
            asked: AskedKind::Amount,
            timings: Timings::default(),
        };
        let json = serde_json::to_string(&a).unwrap();
        let v: AnswerView = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (v.id, v.answer, v.sources, v.refused, v.label, v.hint, v.flagged, v.quotes),
            (a.id, a.answer, a.sources, a.refused, a.label, a.hint, a.flagged, a.quotes)
        );
        assert_eq!(serde_json::from_str::<Answer>(&json).unwrap().asked, AskedKind::Amount);
    }
}
