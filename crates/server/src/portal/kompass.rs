//! The KI-Kompass: its text, its check and the attempt that raises a level.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use lotse_portal::auth::Action;
use lotse_wire::portal::{Graded, PublicCheck};
use lotse_portal::store;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::wire::portal as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, blocking, json_body, store_error};

// ---- KI-Kompass --------------------------------------------------------------------------

/// The town's KI-Kompass and its check (without the answers).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Kompass {
    /// The usage policy, Markdown.
    pub text: String,
    pub check: PublicCheck,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KompassAnswers {
    /// For each question, the index of the chosen option.
    pub answers: Vec<usize>,
}

#[utoipa::path(get, path = "/portal/api/kompass", tag = "portal",
    responses((status = 200, body = Kompass), (status = 401, body = ErrorBody)))]
pub async fn kompass(c: Ctx) -> Result<Json<Kompass>, ApiError> {
    c.allow(&Action::TakeCheck)?;
    Ok(Json(Kompass {
        text: c.portal.kompass_text.clone(),
        check: wire::public_check(c.portal.check.public()),
    }))
}

/// The window of the KI-Kompass attempt limit (`[portal] kompass_attempts`), in seconds.
const KOMPASS_WINDOW: i64 = 24 * 3600;

/// Hand in the check ("KI-Seepferdchen"); a pass raises the level. A failed attempt says how
/// many answers were right, not which; `[portal] kompass_attempts` attempts per 24 hours.
#[utoipa::path(post, path = "/portal/api/kompass", tag = "portal", request_body = KompassAnswers,
    responses((status = 200, body = Graded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, description = "Too many attempts in 24 hours; see Retry-After", body = ErrorBody)))]
pub async fn kompass_check(
    State(state): State<Arc<AppState>>,
    c: Ctx,
    body: Result<Json<KompassAnswers>, JsonRejection>,
) -> Result<Json<Graded>, ApiError> {
    c.allow(&Action::TakeCheck)?;
    let req = json_body(body)?;
    let n = c.portal.check.questions.len();
    if req.answers.len() != n {
        return Err(ApiError::bad_request(
            "answers",
            format!("Bitte beantworten Sie alle {n} Fragen."),
        ));
    }
    let uid = c.user()?.id;
    let portal = c.portal.clone();
    let max = i64::from(state.config.portal.kompass_attempts);
    let graded = blocking(move || {
        // count, grade and record as one step, so parallel attempts cannot pass the limit
        let _one = portal.kompass_attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = store::now();
        let st = &portal.store;
        if max > 0 {
            let (n, earliest) = st.attempts_since(uid, now - KOMPASS_WINDOW).map_err(store_error)?;
            if n >= max {
                let wait = earliest.map_or(KOMPASS_WINDOW, |t| t + KOMPASS_WINDOW - now).max(1);
                tracing::info!("KI-Kompass attempt limit reached");
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "kompass_attempts",
                    format!(
                        "Sie haben den KI-Kompass-Test heute schon {max}-mal abgegeben. Bitte lesen Sie die Regeln in Ruhe noch einmal; morgen können Sie es erneut versuchen."
                    ),
                )
                .retry_after(wait as u64));
            }
        }
        let mut graded = portal.check.grade(&req.answers);
        graded.level = st
            .record_attempt(uid, graded.right, graded.total, graded.passed, portal.check.level)
            .map_err(store_error)?;
        Ok(graded)
    })
    .await?;
    Ok(Json(wire::graded(graded)))
}
