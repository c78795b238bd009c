//! "Fragen ohne Antwort" without HTTP: recording a citizen's question and how it went, for
//! the web team.
//!
//! Invariants:
//! - Nothing is recorded when `[insights]` is off, without the portal's store, or for a blank
//!   question.
//! - Only the question as [`pii::redact_de`] left it is stored, with the vector of that
//!   redacted text (when there is an embedder), never of the original.
//! - The stored record is linked to the answer's id (in memory, and with replicas in the
//!   shared database: [`Answers::link_insight`]), for a later thumbs-down.

use std::sync::Arc;

use lotse_answer::Answer;
use lotse_portal::Store;
use lotse_portal::insights::{self, NewQuestion, Outcome};
use lotse_portal::{pii, store};

use crate::answers::Answers;

/// The outcome of an answer as the web team sees it.
pub fn outcome(a: &Answer) -> Outcome {
    if a.refused {
        Outcome::Refused
    } else if a.fallback || a.flagged {
        Outcome::Hedged
    } else {
        Outcome::Answered
    }
}

/// Today's day number (days since 1970-01-01, UTC).
pub fn today() -> i64 {
    insights::day_of(store::now())
}

/// Record a citizen's question and how it went: redact it, embed the redacted text, store it
/// and link the record to the answer's id. `enabled` is `[insights] enabled`; `store` the
/// portal's store, if any. Failures are logged (never the question's text), not returned.
pub async fn record(enabled: bool, store: Option<Arc<Store>>, answers: &Answers, question: &str, answer: &Answer) {
    if !enabled {
        return;
    }
    let Some(store) = store else { return };
    let question = question.trim().to_string();
    if question.is_empty() {
        return;
    }
    let answerer = answers.answerer();
    let outcome = outcome(answer);
    let lang = answer.lang.code().to_string();
    let cited: Vec<String> = answer.sources.iter().filter(|s| s.cited).map(|s| s.url.clone()).collect();
    let answer_id = answer.id.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let redacted = pii::redact_de(&question);
        // the vector of what is stored, never of the original text
        let embedding = answerer.as_ref().and_then(|a| {
            let model = a.embedder()?.model_id().to_string();
            let v = a.query_vector(&redacted).ok().flatten()?;
            Some((model, v.to_vec()))
        });
        let q = NewQuestion { day: today(), lang, outcome, cited, question: redacted, embedding };
        store.add_insight(&q)
    })
    .await;
    match stored {
        Ok(Ok(id)) => answers.link_insight(answer_id, id).await,
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a question for the web team"),
        Err(e) => tracing::warn!(error = %e, "question recording task failed"),
    }
}

/// A citizen rated an answer down: its latest record says so (when `[insights]` is on and
/// the portal's store is there).
pub async fn rated_down(enabled: bool, store: Option<Arc<Store>>, answers: &Answers, answer_id: &str) {
    let (true, Some(store)) = (enabled, store) else { return };
    // the question may still be on its way to the store (recorded after the answer was sent)
    let Some(id) = answers.insight_row_when_recorded(answer_id, std::time::Duration::from_secs(10)).await else { return };
    let r = tokio::task::spawn_blocking(move || store.insight_rated_down(id)).await;
    if !matches!(r, Ok(Ok(()))) {
        tracing::warn!("cannot mark a question as rated down");
    }
}
