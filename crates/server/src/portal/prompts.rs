//! Prompt templates, own and shared with the group.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::Path;
use axum::http::StatusCode;
use lotse_portal::auth::Action;
use lotse_wire::portal::Prompt;
use lotse_service::accounts::NewPrompt as NewPromptIn;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::NewPrompt;
use crate::error::{ApiError, ErrorBody};
use crate::wire::portal as wire;
use super::context::{Ctx, blocking, json_body, store_error};

// ---- prompts -----------------------------------------------------------------------------

#[utoipa::path(get, path = "/portal/api/prompts", tag = "portal",
    responses((status = 200, body = [Prompt]), (status = 401, body = ErrorBody)))]
pub async fn prompts(c: Ctx) -> Result<Json<Vec<Prompt>>, ApiError> {
    c.allow(&Action::Portal)?;
    let (store, user) = (c.store(), c.user()?.clone());
    let all = blocking(move || store.prompts_for(&user).map_err(store_error)).await?;
    Ok(Json(all.into_iter().filter(|p| c.allow(&Action::UsePrompt(p.group.as_deref())).is_ok()).map(wire::prompt).collect()))
}

#[utoipa::path(post, path = "/portal/api/prompts", tag = "portal", request_body = NewPrompt,
    responses((status = 201, body = Prompt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_prompt(
    c: Ctx,
    body: Result<Json<NewPrompt>, JsonRejection>,
) -> Result<(StatusCode, Json<Prompt>), ApiError> {
    c.allow(&Action::Portal)?;
    let req = json_body(body)?;
    let new = NewPromptIn { title: req.title, body: req.body, tags: req.tags, group: req.group };
    let p = c.accounts(move |a, p| a.create_prompt(p, new)).await?;
    Ok((StatusCode::CREATED, Json(wire::prompt(p))))
}

#[utoipa::path(delete, path = "/portal/api/prompts/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_prompt(Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    c.accounts(move |a, p| a.delete_prompt(p, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
