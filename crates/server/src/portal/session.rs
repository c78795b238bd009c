//! Sign-in with name and password, sign-out and the signed-in user (`/portal/api/{login,logout,me}`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::{self, Action, Principal, UserInfo};
use lotse_portal::store::AuditEntry;
use lotse_portal::Store;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::login::Refused;
use super::context::{Ctx, blocking, run_blocking, cookie_name, cookie_value, disabled, json_body, store_error};

// ---- sign-in -----------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "m.muster")]
    pub name: String,
    pub password: String,
}

/// The signed-in user and what is unlocked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: lotse_wire::portal::UserInfo,
    /// Send this in `X-CSRF-Token` with every request that changes something.
    pub csrf: Option<String>,
    /// The KI-Kompass check is passed: the chat is open.
    pub chat: bool,
    /// External models may be chosen.
    pub external_models: bool,
    /// Prompts may be shared with the group.
    pub share_prompts: bool,
    /// Rewrites of legal texts may be reviewed (editors and admins, when the server reviews
    /// them: `[simplify] legal_texts = "review"`).
    #[serde(default)]
    pub review_rewrites: bool,
    /// "Fragen ohne Antwort" may be read (editors and admins, when `[insights]` is on).
    #[serde(default)]
    pub insights: bool,
}

/// Whether staff review the rewrites of legal texts on this server (`[simplify]` enabled with
/// `legal_texts = "review"`).
fn reviews_on(state: &AppState) -> bool {
    state.config.simplify.enabled && state.config.simplify.legal_texts == lotse_simplify::LegalTexts::Review
}

fn me(ctx: &Ctx, user: UserInfo, csrf: Option<String>, state: &AppState) -> Me {
    let p = Principal::User(user.clone());
    let rules = &ctx.portal.rules;
    Me {
        chat: auth::authorize(&p, &Action::Chat, rules).is_ok(),
        external_models: auth::authorize(&p, &Action::ExternalModel, rules).is_ok(),
        share_prompts: user.level >= rules.share_prompts,
        review_rewrites: reviews_on(state) && auth::authorize(&p, &Action::ReviewRewrites, rules).is_ok(),
        insights: state.config.insights.enabled && auth::authorize(&p, &Action::ViewInsights, rules).is_ok(),
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

/// A new session for a signed-in user, audited as a login with `outcome` ("ok" for a
/// password, "oidc"). Returns (cookie token, CSRF token).
pub(super) fn start_session(store: &Store, user: &UserInfo, ttl: i64, outcome: &str) -> Result<(String, String), ApiError> {
    let session = store.create_session(user.id, ttl).map_err(store_error)?;
    store
        .audit(&AuditEntry {
            user_id: Some(user.id),
            user_name: user.name.clone(),
            groups: user.groups.clone(),
            action: "login".into(),
            outcome: outcome.into(),
            ..AuditEntry::default()
        })
        .map_err(store_error)?;
    Ok(session)
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
    let store = portal.store.clone();
    let ttl = i64::from(state.config.portal.session_hours.max(1)) * 3600;
    let name = req.name.clone();
    let signed_in = blocking(move || {
        let found = store.password_hash(&name).map_err(store_error)?;
        // an unknown name costs a check too, so names cannot be probed
        let right = slot.verify(&req.password, found.as_ref().map(|(_, h)| h.as_str()));
        drop(slot);
        let Some((uid, _)) = found.filter(|_| right) else { return Ok(None) };
        let Some(user) = store.user(uid).map_err(store_error)? else { return Ok(None) };
        let (token, csrf) = start_session(&store, &user, ttl, "ok")?;
        Ok(Some((user, token, csrf)))
    })
    .await?;
    let Some((user, token, csrf)) = signed_in else {
        tracing::info!("portal sign-in failed");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "Benutzername oder Passwort ist falsch.",
        ));
    };
    state.login.succeeded(&ticket);
    let ctx = Ctx { portal, principal: Principal::User(user.clone()), csrf: None };
    let mut resp = Json(me(&ctx, user, Some(csrf), &state)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, &token, ttl));
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
    Ok(Json(me(&c, user, csrf, &state)))
}
