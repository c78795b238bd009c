//! The KI-Kompass: its text, its check and the attempt that raises a level.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use lotse_portal::auth::Action;
use lotse_wire::portal::Graded;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::{Kompass, KompassAnswers};
use crate::AppState;
use crate::wire::portal as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, json_body};

// ---- KI-Kompass --------------------------------------------------------------------------

#[utoipa::path(get, path = "/portal/api/kompass", tag = "portal",
    responses((status = 200, body = Kompass), (status = 401, body = ErrorBody)))]
pub async fn kompass(c: Ctx) -> Result<Json<Kompass>, ApiError> {
    c.allow(&Action::TakeCheck)?;
    Ok(Json(Kompass {
        text: c.portal.kompass_text.clone(),
        check: wire::public_check(c.portal.check.public()),
    }))
}

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
    let max = i64::from(state.config.portal.kompass_attempts);
    let portal = c.portal.clone();
    let graded = c
        .accounts(move |a, p| a.take_check(p, &portal.check, &portal.kompass_attempt, &req.answers, max))
        .await?;
    Ok(Json(wire::graded(graded)))
}
