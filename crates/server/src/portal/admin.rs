//! Administration: accounts, API tokens, the audit log, usage and the AI system register.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::Action;
use lotse_service::accounts;
use lotse_portal::store;
use lotse_wire::portal::{AuditRecord, RegisterEntry, TokenInfo, Usage, UserInfo};
use serde::Deserialize;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::{NewUser, UserChange, NewToken, CreatedToken};
use crate::AppState;
use crate::wire::portal as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, blocking, run_blocking, json_body, store_error};

// ---- administration ----------------------------------------------------------------------

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
    let new = accounts::NewUser {
        name: req.name,
        display_name: req.display_name,
        password: req.password,
        role: wire::role_in(req.role),
        groups: req.groups,
    };
    let u = c.accounts(move |a, p| a.create_user(p, new)).await?;
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
    let change = accounts::UserChange {
        level: req.level.map(wire::level_in),
        role: req.role.map(wire::role_in),
        groups: req.groups,
        disabled: req.disabled,
    };
    let u = c.accounts(move |a, p| a.change_user(p, id, change)).await?;
    Ok(Json(wire::user_info(u)))
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
    let days = state.config.portal.token_days;
    let new = accounts::NewToken { name: req.name, user_id: req.user_id, scopes: req.scopes.into_iter().map(wire::scope_in).collect() };
    let token = c.accounts(move |a, p| a.create_token(p, new, days)).await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token })))
}

#[utoipa::path(delete, path = "/portal/api/admin/tokens/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::ManageUsers)?;
    c.accounts(move |a, p| a.revoke_token(p, id)).await?;
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
    let entry = wire::register_entry_in(e.clone());
    c.accounts(move |a, p| a.put_register(p, &entry)).await?;
    Ok(Json(e))
}
