//! Sign-in with name and password, sign-out and the signed-in user (`/portal/api/{login,logout,me}`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::{Action, UserInfo};

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::{LoginRequest, Me};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::login::Refused;
use super::Portal;
use super::context::{Ctx, run_blocking, cookie_name, cookie_value, disabled, json_body};

// ---- sign-in -----------------------------------------------------------------------------

/// Whether staff review the rewrites of legal texts on this server (`[simplify]` enabled with
/// `legal_texts = "review"`).
fn reviews_on(state: &AppState) -> bool {
    state.config.simplify.enabled && state.config.simplify.legal_texts == lotse_simplify::LegalTexts::Review
}

fn me(portal: &Portal, user: UserInfo, csrf: Option<String>, state: &AppState) -> Me {
    let u = portal.accounts().unlocked(&user, reviews_on(state), state.config.insights.enabled);
    Me {
        chat: u.chat,
        external_models: u.external_models,
        share_prompts: u.share_prompts,
        review_rewrites: u.review_rewrites,
        insights: u.insights,
        user: crate::wire::portal::user_info(user),
        csrf,
    }
}

pub(super) fn session_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let attrs = if state.config.portal.secure_cookie { "Path=/; Secure" } else { "Path=/portal" };
    HeaderValue::from_str(&format!(
        "{}={token}; HttpOnly; SameSite=Strict; {attrs}; Max-Age={max_age}",
        cookie_name(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lotse_session=; Max-Age=0"))
}

/// Sign in with name and password. Sets the session cookie.
#[utoipa::path(post, path = "/portal/api/login", tag = "portal", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = Me),
        (status = 401, description = "Wrong name or password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address or for this account; see Retry-After", body = ErrorBody),
        (status = 503, description = "Every password check is busy; see Retry-After", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let portal = state.portal().ok_or_else(disabled)?;
    let req = json_body(body)?;
    let ip: IpAddr = crate::limit::client_ip(peer.ip(), &headers, &state.config.server.trusted_proxies);
    // counted before the password is checked; refused at once, nothing waits (crate::login)
    let (ticket, mut slot) = match state.login.admit(&req.name, ip) {
        Ok(admitted) => admitted,
        Err(Refused::Throttled(wait)) => {
            tracing::debug!("portal sign-in throttled");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                "Zu viele Anmeldeversuche. Bitte warten Sie einen Moment und versuchen Sie es dann erneut.",
            )
            .retry_after(wait));
        }
        Err(Refused::Busy) => {
            tracing::debug!("portal sign-in refused: every password check is busy");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "login_busy",
                "Gerade melden sich sehr viele Personen an. Bitte versuchen Sie es in einem Moment noch einmal.",
            )
            .retry_after(1));
        }
    };
    let ttl = i64::from(state.config.portal.session_hours.max(1)) * 3600;
    let p = portal.clone();
    // an unknown name costs a check too, so names cannot be probed
    let verify = move |hash: Option<&str>| slot.verify(&req.password, hash);
    let session = run_blocking(move || p.accounts().sign_in(&req.name, verify, ttl)).await?;
    state.login.succeeded(&ticket);
    let mut resp = Json(me(&portal, session.user, Some(session.csrf), &state)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &session.token, ttl));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Sign out: the session ends on the server and the cookie is cleared.
#[utoipa::path(post, path = "/portal/api/logout", tag = "portal",
    responses((status = 204, description = "Signed out")))]
pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::Portal)?;
    if let Some(token) = cookie_value(&headers, cookie_name(&state)) {
        let store = c.store();
        run_blocking(move || store.delete_session(&token)).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

/// The signed-in user, the CSRF token and what the KI-Kompass level unlocks.
#[utoipa::path(get, path = "/portal/api/me", tag = "portal",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(state): State<Arc<AppState>>, c: Ctx) -> Result<Json<Me>, ApiError> {
    c.allow(&Action::Portal)?;
    let user = c.user()?.clone();
    let csrf = c.csrf.clone();
    Ok(Json(me(&c.portal, user, csrf, &state)))
}
