//! Thumbs up/down under answers: `POST /api/v1/feedback`, kept in the one database
//! (`lotse_portal::store`, table `ratings`).
//!
//! A rating names the answer by its id. What is stored about the answer (model, refusal,
//! cited pages) comes from the server's own record of it, not from the client; the
//! question's text only when the town switches `[feedback] store_question` on.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub use lotse_wire::chat::FeedbackRequest;

/// What the server remembers of an answer it gave (kept by the answers service).
pub use lotse_service::answers::AnswerRecord;

pub use lotse_portal::store::Rating;

/// The ratings, in the one database.
#[derive(Debug, Clone)]
pub struct FeedbackStore {
    db: Arc<lotse_portal::store::Store>,
}

pub type StoreError = lotse_portal::store::StoreError;

impl FeedbackStore {
    pub fn new(db: Arc<lotse_portal::store::Store>) -> FeedbackStore {
        FeedbackStore { db }
    }

    /// A SQLite database of its own at `path` (tests).
    pub fn open(path: &std::path::Path) -> Result<FeedbackStore, StoreError> {
        Ok(FeedbackStore::new(Arc::new(lotse_portal::store::Store::open(path)?)))
    }

    pub fn add(&self, r: &Rating) -> Result<(), StoreError> {
        self.db.add_rating(r)
    }

    /// All ratings, oldest first.
    pub fn all(&self) -> Result<Vec<Rating>, StoreError> {
        self.db.ratings()
    }
}

/// Rate an answer (thumbs up or down).
///
/// The rating is stored with the answer's id, model and cited pages. The question's text is
/// stored only when the town has switched that on; otherwise it is dropped unread.
#[utoipa::path(
    post,
    path = "/api/v1/feedback",
    tag = "citizens",
    request_body = FeedbackRequest,
    responses(
        (status = 204, description = "Thank you: the rating is stored"),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a rating (missing or mistyped fields)", body = ErrorBody),
        (status = 404, description = "No such answer (or too old to rate)", body = ErrorBody),
        (status = 503, description = "Ratings are switched off", body = ErrorBody),
    )
)]
pub async fn feedback(
    State(state): State<Arc<AppState>>,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let store = state.feedback().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "feedback_disabled",
            "Rückmeldungen sind hier leider nicht möglich.",
        )
    })?;
    let id = req.answer_id.trim();
    let known = if id.len() <= 64 && !id.is_empty() { state.answers().record(id).await } else { None };
    let Some(record) = known else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_answer",
            "Diese Antwort ist uns nicht mehr bekannt. Bitte stellen Sie Ihre Frage noch einmal.",
        ));
    };
    let question = req
        .question
        .filter(|_| state.config.feedback.store_question)
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
    let written = tokio::task::spawn_blocking(move || store.add(&rating)).await;
    match written {
        Ok(Ok(())) => {
            state.metrics.count_feedback(req.helpful);
            if !req.helpful {
                crate::insights::rated_down(&state, id).await;
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot store a rating");
            Err(ApiError::internal())
        }
        Err(e) => {
            tracing::error!(error = %e, "rating task failed");
            Err(ApiError::internal())
        }
    }
}
