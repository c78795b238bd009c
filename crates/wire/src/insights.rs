//! "Fragen ohne Antwort" (`/portal/api/insights/*`): the topics of what citizens asked and
//! how the answers went.

use serde::{Deserialize, Serialize};

/// How an answer went for the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A cited answer.
    Answered,
    /// Only a pointer to the best page, or statements without a source: the page that should
    /// say it does not say it plainly.
    Hedged,
    /// The website does not answer it; the citizen was given the town's contact.
    Refused,
    /// The citizen rated the answer down.
    RatedDown,
}

/// A sample question of a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    /// Delete it with `DELETE /portal/api/insights/questions/{id}`.
    pub id: i64,
    /// The day it was asked (`YYYY-MM-DD`).
    pub day: String,
    pub question: String,
    pub outcome: Outcome,
}

/// Questions that belong together, with how they went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Topic {
    /// The id of its first question: names the topic for the "erledigt" mark (computed on
    /// read; it changes when that question is deleted or expires).
    pub id: i64,
    /// The question asked most often in it (in its shortest wording).
    pub label: String,
    pub questions: i64,
    pub answered: i64,
    pub hedged: i64,
    pub refused: i64,
    pub rated_down: i64,
    /// Questions per week, oldest first; the last is the current week (the last 7 days).
    pub weeks: Vec<i64>,
    /// Up to five questions, newest first.
    pub samples: Vec<Sample>,
    /// The page cited most often when the answer was hedged: the page that should say it
    /// but does not.
    pub hedged_page: Option<String>,
    /// The day the web team marked the topic "erledigt" (`YYYY-MM-DD`).
    pub done: Option<String>,
    /// Questions asked since that day, and how many of them were answered.
    pub asked_since_done: i64,
    pub answered_since_done: i64,
}

/// The topics of the questions citizens asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InsightsResponse {
    /// Days looked at, ending today.
    pub days: i64,
    /// A topic is shown only with at least this many questions.
    pub min_questions: i64,
    /// Questions are kept this many days.
    pub retention_days: i64,
    /// The topics with at least one question the website did not answer (or marked
    /// "erledigt"), the most asked first.
    pub topics: Vec<Topic>,
}
