//! Prompt templates, own and shared with the group.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::Path;
use axum::http::StatusCode;
use lotse_portal::auth::{Action, Owner};
use lotse_wire::portal::Prompt;
use lotse_portal::pii;
use serde::Deserialize;

use crate::error::{ApiError, ErrorBody};
use crate::wire::portal as wire;
use super::context::{Ctx, blocking, run_blocking, json_body, not_found, store_error};

// ---- prompts -----------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrompt {
    pub title: String,
    /// The text, with `{variables}`.
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Share with this group (needs the level for sharing); absent: your own.
    pub group: Option<String>,
}

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
    if let Some(g) = &req.group {
        c.allow(&Action::SharePrompt(g))?;
    }
    if pii::contains_pii(&req.body) {
        return Err(ApiError::bad_request(
            "prompt_pii",
            "Die Vorlage enthält personenbezogene Daten. Bitte ersetzen Sie diese durch {Platzhalter}.",
        ));
    }
    let (store, uid) = (c.store(), c.user()?.id);
    let p = blocking(move || {
        let id = store.create_prompt(&req.title, &req.body, &req.tags, req.group.as_deref(), uid).map_err(store_error)?;
        store.prompt(id).map_err(store_error)?.map(|(p, _)| p).ok_or_else(|| not_found("prompt"))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(wire::prompt(p))))
}

#[utoipa::path(delete, path = "/portal/api/prompts/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_prompt(Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    let store = c.store();
    let (p, owner) = blocking(move || store.prompt(id).map_err(store_error)?.ok_or_else(|| not_found("prompt"))).await?;
    let user = c.user()?;
    let own = owner == Some(user.id);
    if !own {
        // a shared prompt: the group's editors and admins may remove it
        let g = p.group.clone().unwrap_or_default();
        c.allow(&Action::ManageCollection(&Owner::Group(g)))?;
    }
    let store = c.store();
    run_blocking(move || store.delete_prompt(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
