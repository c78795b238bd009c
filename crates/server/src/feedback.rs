//! Thumbs up/down under answers: `POST /api/v1/feedback`, kept in SQLite
//! (`data/feedback.sqlite`).
//!
//! A rating names the answer by its id. What is stored about the answer (model, refusal,
//! cited pages) comes from the server's own record of it, not from the client; the
//! question's text only when the town switches `[feedback] store_question` on.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lotse_answer::Answer;
use rusqlite::{Connection, params};
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub use lotse_wire::chat::FeedbackRequest;

/// What the server remembers of an answer it gave, for its ratings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    pub model: String,
    pub refused: bool,
    pub cited: Vec<String>,
}

impl AnswerRecord {
    pub fn of(a: &Answer) -> AnswerRecord {
        AnswerRecord {
            model: a.model.clone(),
            refused: a.refused,
            cited: a.sources.iter().filter(|s| s.cited).map(|s| s.url.clone()).collect(),
        }
    }
}

/// One stored rating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub answer_id: String,
    pub helpful: bool,
    pub model: String,
    pub refused: bool,
    pub cited: Vec<String>,
    pub question: Option<String>,
    /// Unix time.
    pub at: u64,
}

/// The ratings, in SQLite.
#[derive(Debug)]
pub struct FeedbackStore {
    conn: Mutex<Connection>,
}

#[derive(Debug, thiserror::Error)]
#[error("feedback store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

impl FeedbackStore {
    pub fn open(path: &Path) -> Result<FeedbackStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ratings (
                id INTEGER PRIMARY KEY,
                answer_id TEXT NOT NULL,
                helpful INTEGER NOT NULL,
                model TEXT NOT NULL,
                refused INTEGER NOT NULL,
                cited TEXT NOT NULL,
                question TEXT,
                at INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS ratings_answer ON ratings (answer_id);",
        )?;
        Ok(FeedbackStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, r: &Rating) -> Result<(), StoreError> {
        let cited = serde_json::to_string(&r.cited).unwrap_or_else(|_| "[]".into());
        self.conn().execute(
            "INSERT INTO ratings (answer_id, helpful, model, refused, cited, question, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![r.answer_id, r.helpful, r.model, r.refused, cited, r.question, r.at as i64],
        )?;
        Ok(())
    }

    /// All ratings, oldest first.
    pub fn all(&self) -> Result<Vec<Rating>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT answer_id, helpful, model, refused, cited, question, at FROM ratings ORDER BY id",
        )?;
        let rows = st.query_map([], |row| {
            let cited: String = row.get(4)?;
            Ok(Rating {
                answer_id: row.get(0)?,
                helpful: row.get(1)?,
                model: row.get(2)?,
                refused: row.get(3)?,
                cited: serde_json::from_str(&cited).unwrap_or_default(),
                question: row.get(5)?,
                at: row.get::<_, i64>(6)?.max(0) as u64,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
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
    let known = if id.len() <= 64 && !id.is_empty() { state.answer_record(id).await } else { None };
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
