//! Thumbs up/down under answers: `POST /api/v1/feedback`, kept in the one database
//! (`lotse_portal::store`, table `ratings`).
//!
//! A rating names the answer by its id. What is stored about the answer (model, refusal,
//! cited pages) comes from the server's own record of it, not from the client; the
//! question's text only when the town switches `[feedback] store_question` on.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use lotse_service::feedback::{self, NewRating, RateSettings};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub use lotse_wire::chat::FeedbackRequest;

/// What the server remembers of an answer it gave (kept by the answers service).
pub use lotse_service::answers::AnswerRecord;

pub use lotse_portal::store::Rating;

/// The ratings, in the one database (kept by the feedback service).
pub use lotse_service::feedback::FeedbackStore;

pub type StoreError = lotse_portal::store::StoreError;

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
    let settings = RateSettings {
        store_question: state.config.feedback.store_question,
        insights: state.config.insights.enabled,
    };
    let helpful = req.helpful;
    let rating = NewRating { answer_id: req.answer_id, helpful, question: req.question };
    let portal = state.portal().map(|p| p.store.clone());
    feedback::rate(state.feedback(), portal, state.answers(), settings, rating).await?;
    state.metrics.count_feedback(helpful);
    Ok(StatusCode::NO_CONTENT.into_response())
}
