//! Thumbs up/down under answers without HTTP: the ratings, kept in the one database
//! (`lotse_portal::store`, table `ratings`).
//!
//! Invariants:
//! - A rating names a known answer by its id (1..=64 characters after trimming, still in
//!   [`Answers::record`]); what is stored about the answer (model, refusal, cited pages)
//!   comes from the server's own record of it, never from the client.
//! - The question's text is stored only when `[feedback] store_question` is on (at most
//!   1000 characters); otherwise it is dropped unread.
//! - A stored thumbs-down marks the answer's recorded question `rated_down` ("Fragen ohne
//!   Antwort", [`crate::insights::rated_down`]).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lotse_portal::store::{Rating, Store, StoreError};

use crate::answers::Answers;

/// The ratings, in the one database.
#[derive(Debug, Clone)]
pub struct FeedbackStore {
    db: Arc<Store>,
}

impl FeedbackStore {
    pub fn new(db: Arc<Store>) -> FeedbackStore {
        FeedbackStore { db }
    }

    /// A SQLite database of its own at `path` (tests).
    pub fn open(path: &std::path::Path) -> Result<FeedbackStore, StoreError> {
        Ok(FeedbackStore::new(Arc::new(Store::open(path)?)))
    }

    /// The database the ratings are in (the one all state is in).
    pub fn database(&self) -> Arc<Store> {
        self.db.clone()
    }

    pub fn add(&self, r: &Rating) -> Result<(), StoreError> {
        self.db.add_rating(r)
    }

    /// All ratings, oldest first.
    pub fn all(&self) -> Result<Vec<Rating>, StoreError> {
        self.db.ratings()
    }
}

/// Why a rating was not stored.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    /// Ratings are switched off (no store).
    #[error("ratings are switched off")]
    Disabled,
    /// No such answer (or too old to rate).
    #[error("unknown answer")]
    UnknownAnswer,
    #[error("cannot store a rating: {0}")]
    Store(#[from] StoreError),
    #[error("rating task failed: {0}")]
    Task(String),
}

/// A citizen's rating of an answer, as parsed from the request.
#[derive(Debug, Clone)]
pub struct NewRating {
    pub answer_id: String,
    pub helpful: bool,
    pub question: Option<String>,
}

/// Where the ratings go and what is kept.
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// `[feedback] store_question`.
    pub store_question: bool,
    /// `[insights] enabled`.
    pub insights: bool,
}

/// Store a rating of a known answer (see the module's invariants). `store` is `None` when
/// ratings are off; `portal` the portal's store for "Fragen ohne Antwort", if any.
pub async fn rate(
    store: Option<Arc<FeedbackStore>>,
    portal: Option<Arc<Store>>,
    answers: &Answers,
    settings: RateSettings,
    req: NewRating,
) -> Result<(), RateError> {
    let store = store.ok_or(RateError::Disabled)?;
    let id = req.answer_id.trim();
    let known = if id.len() <= 64 && !id.is_empty() { answers.record(id).await } else { None };
    let record = known.ok_or(RateError::UnknownAnswer)?;
    let question = req
        .question
        .filter(|_| settings.store_question)
        .map(|q| q.chars().take(1000).collect::<String>());
    let rating = Rating {
        answer_id: id.to_string(),
        helpful: req.helpful,
        model: record.model,
        refused: record.refused,
        cited: record.cited,
        question,
        at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    tokio::task::spawn_blocking(move || store.add(&rating))
        .await
        .map_err(|e| RateError::Task(e.to_string()))??;
    if !req.helpful {
        crate::insights::rated_down(settings.insights, portal, answers, id).await;
    }
    Ok(())
}
