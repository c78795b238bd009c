//! Sign-in with the town's identity provider (OpenID Connect): the HTTP glue around
//! [`crate::oidc`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::{LoginOptions, OidcOption};
use crate::AppState;
use crate::error::ApiError;
use super::context::{cookie_value, disabled, run_blocking};
use super::document_page::html_error;
use super::session::session_cookie;

// ---- OpenID Connect ----------------------------------------------------------------------

/// How staff can sign in: with name and password, and with the town's identity provider when
/// one is configured.
#[utoipa::path(get, path = "/portal/api/login-options", tag = "portal",
    responses((status = 200, body = LoginOptions)))]
pub async fn login_options(State(state): State<Arc<AppState>>) -> Result<Json<LoginOptions>, ApiError> {
    let portal = state.portal().ok_or_else(disabled)?;
    Ok(Json(LoginOptions {
        password: true,
        oidc: portal.oidc.as_ref().map(|o| OidcOption { label: o.settings.label.clone(), url: "/portal/api/oidc/login".into() }),
    }))
}

fn oidc_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "oidc_disabled",
        "Die Anmeldung mit dem Dienstkonto ist nicht eingerichtet. Bitte melden Sie sich mit Benutzername und Passwort an.",
    )
}

fn oidc_unreachable() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "oidc_unreachable",
        "Der Anmeldedienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten noch einmal.",
    )
}

fn state_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.portal.secure_cookie { "; Secure" } else { "" };
    // Lax: the provider's redirect back is a cross-site top-level navigation
    HeaderValue::from_str(&format!(
        "{}={value}; HttpOnly; SameSite=Lax; Path=/portal/api/oidc; Max-Age={max_age}{secure}",
        crate::oidc::STATE_COOKIE
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lotse_oidc=; Max-Age=0"))
}

/// Start signing in with the identity provider: redirects there (authorisation code flow
/// with PKCE) and sets a short-lived cookie that binds the sign-in to this browser.
#[utoipa::path(get, path = "/portal/api/oidc/login", tag = "portal",
    responses(
        (status = 303, description = "To the identity provider's sign-in page"),
        (status = 404, description = "No identity provider is configured", content_type = "text/html", body = String),
        (status = 502, description = "The identity provider is unreachable", content_type = "text/html", body = String),
    ))]
pub async fn oidc_login(State(state): State<Arc<AppState>>) -> Response {
    let Some(portal) = state.portal() else { return html_error(disabled()) };
    let Some(oidc) = portal.oidc.clone() else { return html_error(oidc_off()) };
    match oidc.start().await {
        Ok(start) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&start.redirect) {
                h.insert(header::LOCATION, v);
            }
            h.insert(header::SET_COOKIE, state_cookie(&state, &start.state, crate::oidc::PENDING_TTL.as_secs() as i64));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "OIDC sign-in could not start");
            html_error(oidc_unreachable())
        }
    }
}

/// The identity provider's answer.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OidcCallback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set when the provider refused or the user cancelled.
    pub error: Option<String>,
}

/// The identity provider sends the browser back here. On success the account is created or
/// updated from the token's claims (role and groups), a session starts and the browser goes
/// to the portal.
#[utoipa::path(get, path = "/portal/api/oidc/callback", tag = "portal", params(OidcCallback),
    responses(
        (status = 303, description = "Signed in; to the portal, with the session cookie"),
        (status = 400, description = "Unknown, expired or foreign sign-in", content_type = "text/html", body = String),
        (status = 401, description = "The provider refused, or the token failed a check", content_type = "text/html", body = String),
        (status = 403, description = "The account is disabled", content_type = "text/html", body = String),
        (status = 502, description = "The identity provider is unreachable", content_type = "text/html", body = String),
    ))]
pub async fn oidc_callback(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<OidcCallback>,
) -> Response {
    use crate::oidc::OidcError;
    let Some(portal) = state.portal() else { return html_error(disabled()) };
    let Some(oidc) = portal.oidc.clone() else { return html_error(oidc_off()) };
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "oidc_refused",
            "Die Anmeldung wurde nicht bestätigt. Bitte versuchen Sie es noch einmal oder wenden Sie sich an die IT.",
        )
    };
    if q.error.is_some() {
        tracing::info!("OIDC sign-in refused or cancelled at the provider");
        return html_error(refused());
    }
    let (Some(code), Some(st)) = (q.code.as_deref(), q.state.as_deref()) else {
        return html_error(ApiError::bad_request("oidc_incomplete", "Die Antwort des Anmeldedienstes ist unvollständig. Bitte melden Sie sich erneut an."));
    };
    let identity = match oidc.finish(st, cookie_value(&headers, crate::oidc::STATE_COOKIE).as_deref(), code).await {
        Ok(i) => i,
        Err(OidcError::State) => {
            tracing::info!("OIDC callback with an unknown, expired or foreign state");
            return html_error(ApiError::bad_request(
                "oidc_state",
                "Diese Anmeldung ist abgelaufen oder wurde in einem anderen Browser begonnen. Bitte melden Sie sich erneut an.",
            ));
        }
        Err(e @ (OidcError::Provider(_) | OidcError::Config(_))) => {
            tracing::warn!(error = %e, "OIDC sign-in failed at the provider");
            return html_error(oidc_unreachable());
        }
        Err(e @ (OidcError::Token(_) | OidcError::Refused(_))) => {
            tracing::warn!(error = %e, "OIDC sign-in rejected");
            return html_error(refused());
        }
    };
    let ttl = i64::from(state.config.portal.session_hours.max(1)) * 3600;
    // the account from the token's claims (created or updated), then a session
    let (p, id) = (portal.clone(), identity);
    let signed_in = run_blocking(move || p.accounts().sign_in_oidc(&id.subject, &id.name, &id.display_name, id.role, &id.groups, ttl)).await;
    let token = match signed_in {
        Ok(session) => session.token,
        Err(e) => return html_error(e),
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/portal/"));
    h.append(header::SET_COOKIE, session_cookie(&state, &token, ttl));
    h.append(header::SET_COOKIE, state_cookie(&state, "", 0));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
