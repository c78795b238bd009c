//! Administration: accounts, API tokens, the audit log, usage and the AI system register.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::{self, Action};
use lotse_portal::store;
use lotse_wire::portal::{AuditRecord, Level, RegisterEntry, Role, Scope, TokenInfo, Usage, UserInfo};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::wire::portal as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, audit, audit_about, blocking, run_blocking, json_body, not_found, store_error};

// ---- administration ----------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub display_name: Option<String>,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub level: Option<Level>,
    pub role: Option<Role>,
    pub groups: Option<Vec<String>>,
    /// Lock the account (its sessions end).
    #[serde(default)]
    pub disabled: bool,
}

#[utoipa::path(get, path = "/portal/api/admin/users", tag = "portal",
    responses((status = 200, body = [UserInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn users(c: Ctx) -> Result<Json<Vec<UserInfo>>, ApiError> {
    c.allow(&Action::ManageUsers)?;
    let store = c.store();
    let users = blocking(move || store.users().map_err(store_error)).await?;
    Ok(Json(users.into_iter().map(wire::user_info).collect()))
}

#[utoipa::path(post, path = "/portal/api/admin/users", tag = "portal", request_body = NewUser,
    responses((status = 201, body = UserInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    c: Ctx,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    c.allow(&Action::ManageUsers)?;
    let req = json_body(body)?;
    let store = c.store();
    let u = blocking(move || {
        let hash = auth::hash_password(&req.password).map_err(|e| {
            ApiError::bad_request("password", format!("Das Passwort ist zu schwach: mindestens {} Zeichen. ({e})", auth::MIN_PASSWORD_CHARS))
        })?;
        let display = req.display_name.clone().unwrap_or_else(|| req.name.clone());
        let id = store.create_user(&req.name, &display, Some(&hash), wire::role_in(req.role), &req.groups).map_err(store_error)?;
        store.user(id).map_err(store_error)?.ok_or_else(|| not_found("user"))
    })
    .await?;
    audit_about(&c, "create_user", &u.name).await;
    Ok((StatusCode::CREATED, Json(wire::user_info(u))))
}

/// Change a user's KI-Kompass level, role or groups, or lock the account.
#[utoipa::path(patch, path = "/portal/api/admin/users/{id}", tag = "portal", params(("id" = i64, Path)), request_body = UserChange,
    responses((status = 200, body = UserInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_user(
    Path(id): Path<i64>,
    c: Ctx,
    body: Result<Json<UserChange>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    c.allow(&Action::ManageUsers)?;
    let req = json_body(body)?;
    let req_disabled = req.disabled;
    let store = c.store();
    let u = blocking(move || {
        let u = store.user(id).map_err(store_error)?.ok_or_else(|| not_found("user"))?;
        if req.disabled {
            store.disable_user(id).map_err(store_error)?;
            return Ok(u);
        }
        if let Some(l) = req.level {
            store.set_level(id, wire::level_in(l)).map_err(store_error)?;
        }
        if req.role.is_some() || req.groups.is_some() {
            let role = req.role.map(wire::role_in).unwrap_or(u.role);
            let groups = req.groups.clone().unwrap_or(u.groups.clone());
            store.set_role_and_groups(id, role, &groups).map_err(store_error)?;
        }
        store.user(id).map_err(store_error)?.ok_or_else(|| not_found("user"))
    })
    .await?;
    audit_about(&c, if req_disabled { "disable_user" } else { "change_user" }, &u.name).await;
    Ok(Json(wire::user_info(u)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for ("CMS", "n8n").
    pub name: String,
    /// The user it acts for (default: yourself).
    pub user_id: Option<i64>,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// Shown once: keep it in the CMS's configuration.
    pub token: String,
}

#[utoipa::path(get, path = "/portal/api/admin/tokens", tag = "portal",
    responses((status = 200, body = [TokenInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn tokens(c: Ctx) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    c.allow(&Action::ManageUsers)?;
    let store = c.store();
    let tokens = blocking(move || store.tokens().map_err(store_error)).await?;
    Ok(Json(tokens.into_iter().map(wire::token_info).collect()))
}

#[utoipa::path(post, path = "/portal/api/admin/tokens", tag = "portal", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    c: Ctx,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    c.allow(&Action::ManageUsers)?;
    let req = json_body(body)?;
    let (store, me_id) = (c.store(), c.user()?.id);
    let days = state.config.portal.token_days;
    let (token, owner) = blocking(move || {
        let uid = req.user_id.unwrap_or(me_id);
        let owner = store.user(uid).map_err(store_error)?.ok_or_else(|| not_found("user"))?;
        let scopes: Vec<auth::Scope> = req.scopes.iter().copied().map(wire::scope_in).collect();
        let token = store.create_token_for(uid, &req.name, &scopes, days).map_err(store_error)?;
        Ok((token, owner.name))
    })
    .await?;
    audit_about(&c, "create_token", &owner).await;
    Ok((StatusCode::CREATED, Json(CreatedToken { token })))
}

#[utoipa::path(delete, path = "/portal/api/admin/tokens/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::ManageUsers)?;
    let store = c.store();
    let owner = blocking(move || {
        let owner = store.tokens().map_err(store_error)?.into_iter().find(|t| t.id == id).map(|t| t.user);
        store.revoke_token(id).map_err(store_error)?;
        Ok(owner)
    })
    .await?;
    audit_about(&c, "revoke_token", owner.as_deref().unwrap_or("-")).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Unix time: entries from then on (default: the last 90 days).
    pub since: Option<i64>,
}

pub(crate) fn csv_response(name: &str, body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn want_csv(p: &ExportParams) -> Result<bool, ApiError> {
    match p.format.as_deref() {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(ApiError::bad_request("format", "Als Format gibt es „json“ und „csv“.")),
    }
}

fn since(p: &ExportParams) -> i64 {
    p.since.unwrap_or_else(|| store::now() - 90 * 86_400)
}

/// The audit log: who, when, which model, which collections, token counts.
#[utoipa::path(get, path = "/portal/api/admin/audit", tag = "portal", params(ExportParams),
    responses((status = 200, body = [AuditRecord]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_log(Query(p): Query<ExportParams>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ViewAudit)?;
    let csv = want_csv(&p)?;
    let (store, from) = (c.store(), since(&p));
    let rows = run_blocking(move || store.audit_log(from, 100_000)).await?;
    if !csv {
        return Ok(Json(rows.into_iter().map(wire::audit_record).collect::<Vec<_>>()).into_response());
    }
    let header = ["id", "at", "user", "groups", "action", "target", "model", "external", "collections", "prompt_tokens", "completion_tokens", "outcome", "content"];
    let data: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            vec![
                r.id.to_string(), r.at.to_string(), r.user, r.groups, r.action, r.target.unwrap_or_default(), r.model.unwrap_or_default(),
                r.external.to_string(), r.collections, r.prompt_tokens.to_string(), r.completion_tokens.to_string(),
                r.outcome, r.content.unwrap_or_default(),
            ]
        })
        .collect();
    Ok(csv_response("lotse-audit.csv", store::to_csv(&header, &data)))
}

/// Requests and tokens per group and model.
#[utoipa::path(get, path = "/portal/api/admin/usage", tag = "portal", params(ExportParams),
    responses((status = 200, body = [Usage]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usage(Query(p): Query<ExportParams>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ViewAudit)?;
    let csv = want_csv(&p)?;
    let (store, from) = (c.store(), since(&p));
    let rows = run_blocking(move || store.usage(from)).await?;
    if !csv {
        return Ok(Json(rows.into_iter().map(wire::usage).collect::<Vec<_>>()).into_response());
    }
    let data: Vec<Vec<String>> = rows
        .into_iter()
        .map(|u| vec![u.group, u.model, u.requests.to_string(), u.prompt_tokens.to_string(), u.completion_tokens.to_string()])
        .collect();
    Ok(csv_response("lotse-usage.csv", store::to_csv(&["group", "model", "requests", "prompt_tokens", "completion_tokens"], &data)))
}

/// The AI system register (EU AI Act inventory): each model and use.
#[utoipa::path(get, path = "/portal/api/register", tag = "portal", params(ExportParams),
    responses((status = 200, body = [RegisterEntry]), (status = 401, body = ErrorBody)))]
pub async fn register(Query(p): Query<ExportParams>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ViewRegister)?;
    let csv = want_csv(&p)?;
    let store = c.store();
    let rows = run_blocking(move || store.register()).await?;
    if !csv {
        return Ok(Json(rows.into_iter().map(wire::register_entry).collect::<Vec<_>>()).into_response());
    }
    let data: Vec<Vec<String>> = rows
        .into_iter()
        .map(|e| vec![e.name, e.model, e.purpose, e.provider, e.risk_class, e.responsible, e.updated_at.to_string()])
        .collect();
    Ok(csv_response(
        "lotse-ki-register.csv",
        store::to_csv(&["name", "model", "purpose", "provider", "risk_class", "responsible", "updated_at"], &data),
    ))
}

/// Add or change a register entry (by `name`).
#[utoipa::path(put, path = "/portal/api/register", tag = "portal", request_body = RegisterEntry,
    responses((status = 200, body = RegisterEntry), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn put_register(
    c: Ctx,
    body: Result<Json<RegisterEntry>, JsonRejection>,
) -> Result<Json<RegisterEntry>, ApiError> {
    c.allow(&Action::ManageRegister)?;
    let e = json_body(body)?;
    if e.name.trim().is_empty() || e.responsible.trim().is_empty() {
        return Err(ApiError::bad_request("register", "Bitte geben Sie die Anwendung und die verantwortliche Person an."));
    }
    let store = c.store();
    let e2 = wire::register_entry_in(e.clone());
    blocking(move || store.put_register(&e2).map_err(store_error)).await?;
    audit(&c, "put_register", None, false, Vec::new(), "ok").await;
    Ok(Json(e))
}
