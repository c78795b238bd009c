//! The request context of the portal (who is asking, with which session) and the helpers
//! every handler uses: error mapping, blocking store calls, the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, Method, StatusCode, header};
use lotse_portal::auth::{self, Action, Denied, Principal, UserInfo};
use lotse_portal::store::AuditEntry;
use lotse_portal::Store;
use lotse_service::accounts::{AccountError, Accounts};

use crate::AppState;
use crate::error::ApiError;
pub(crate) use crate::error::{denied, not_found, store_error};
use super::{COOKIE, CSRF_HEADER, PLAIN_COOKIE, Portal};

// ---- errors ------------------------------------------------------------------------------

pub(super) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(ApiError::from)
}

pub(super) fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "portal_disabled",
        "Das Mitarbeiterportal ist nicht eingerichtet.",
    )
}

/// Run a blocking store or service call off the async threads; its error maps to HTTP through
/// its `From` impl in `crate::error` (`run_blocking(move || store.chats(uid)).await?`).
pub(crate) async fn run_blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(move || f().map_err(Into::into)).await
}

/// Run a blocking store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "portal task failed");
        ApiError::internal()
    })?
}

// ---- who is asking -----------------------------------------------------------------------

/// A request's portal, principal and settings.
pub struct Ctx {
    pub portal: Arc<Portal>,
    pub principal: Principal,
    /// The session's CSRF token (cookie sessions only).
    pub(super) csrf: Option<String>,
}

impl Ctx {
    /// Decide `action` for this request's principal.
    pub(crate) fn allow(&self, action: &Action<'_>) -> Result<(), ApiError> {
        auth::authorize(&self.principal, action, &self.portal.rules).map_err(denied)
    }
    /// The signed-in user (after a successful `allow`).
    pub(crate) fn user(&self) -> Result<&UserInfo, ApiError> {
        self.principal.user().ok_or_else(|| denied(Denied::Unauthenticated))
    }
    pub(crate) fn store(&self) -> Arc<Store> {
        self.portal.store.clone()
    }
    /// One call of the account service for this request's principal, off the async threads;
    /// its error maps through `From<AccountError>` in `crate::error`.
    pub(crate) async fn accounts<T: Send + 'static>(
        &self,
        f: impl FnOnce(Accounts<'_>, &Principal) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (portal, principal) = (self.portal.clone(), self.principal.clone());
        run_blocking(move || f(portal.accounts(), &principal)).await
    }
}

/// The session cookie's name under this configuration ([`COOKIE`] or [`PLAIN_COOKIE`]).
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.portal.secure_cookie { COOKIE } else { PLAIN_COOKIE }
}

pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether a bearer token is a portal API token (the CMS's configured token is not).
pub fn is_portal_token(t: &str) -> bool {
    t.starts_with("lotse_")
}

/// The request context as an extractor: every portal handler takes a `Ctx` instead of
/// opening it from the method and headers itself (no portal: 404, a revoked token: 401, a
/// cookie request without its CSRF token: 403).
impl axum::extract::FromRequestParts<Arc<AppState>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &Arc<AppState>) -> Result<Ctx, ApiError> {
        ctx(state, &parts.method, &parts.headers).await
    }
}

/// The principal of a request: an API token, a session cookie, or nobody. Cookie requests
/// that change something must carry the session's CSRF token.
pub async fn ctx(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<Ctx, ApiError> {
    let portal = state.portal().ok_or_else(disabled)?;
    let store = portal.store.clone();
    if let Some(t) = bearer(headers).filter(|t| is_portal_token(t)) {
        let found = run_blocking(move || store.token(&t)).await?;
        return match found {
            Some((owner, scopes)) => Ok(Ctx { portal, principal: Principal::Token { owner, scopes }, csrf: None }),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Dieser Zugangsschlüssel ist ungültig oder wurde widerrufen.",
            )),
        };
    }
    let Some(token) = cookie_value(headers, cookie_name(state)).filter(|t| !t.is_empty()) else {
        return Ok(Ctx { portal, principal: Principal::Anonymous, csrf: None });
    };
    let found = run_blocking(move || store.session(&token)).await?;
    let Some((user, csrf)) = found else {
        return Ok(Ctx { portal, principal: Principal::Anonymous, csrf: None });
    };
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !auth::constant_time_eq(given, &csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "Die Anfrage kam nicht aus dem Portal (CSRF-Schutz). Bitte laden Sie die Seite neu.",
            ));
        }
    }
    Ok(Ctx { portal, principal: Principal::User(user), csrf: Some(csrf) })
}

pub(super) async fn audit(c: &Ctx, action: &str, model: Option<String>, external: bool, collections: Vec<String>, outcome: &str) {
    audit_full(
        c,
        AuditEntry {
            action: action.into(),
            model,
            external,
            collections,
            outcome: outcome.into(),
            ..AuditEntry::default()
        },
    )
    .await;
}

/// Write an audit entry for the request's user; a failure is logged, not shown.
pub(crate) async fn audit_full(c: &Ctx, e: AuditEntry) {
    lotse_service::staff_chat::audit(c.store(), &c.principal, e).await;
}
