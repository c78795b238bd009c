//! The staff portal's API under `/portal/api` and its document pages under
//! `/portal/dokumente/{id}`.
//!
//! Invariants:
//! - Every handler asks [`lotse_portal::auth::authorize`] (through [`Ctx::allow`]) before it
//!   reads or writes anything; that function is the one place that decides. No session: 401;
//!   wrong role, group, level or token scope: 403.
//! - A session is a random token in an `HttpOnly; SameSite=Strict; Secure` cookie named
//!   `__Host-lotse_session` (only its hash is stored; `lotse_session` on path `/portal`
//!   without `Secure` when `[portal] secure_cookie = false`); requests that change
//!   something with a cookie carry the session's CSRF token in `X-CSRF-Token`. API tokens (`Authorization: Bearer lotse_…`) need no CSRF token
//!   and act only within their scopes.
//! - Private collections are searched only in the scope the caller may read; an external
//!   engine (a `[[portal.external]]`, or the main engine when it is external) gets no private
//!   collection and no question in which the PII guard finds personal data: `policy::may_send`
//!   decides, and choosing an external engine needs the KI-Kompass level for it.
//! - An upload is extracted completely before anything is written; the index is committed
//!   before the document row is; a failure leaves the old state.
//! - Logs name no question, no answer and no document content; the audit log stores content
//!   only when `[portal] audit_content` is on, and then with personal data redacted.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use lotse_answer::{Answer, AnswerRequest, Answerer, Turn};
use lotse_core::{Block, CollectionId, CollectionScope};
use lotse_inference::ModelInfo;
use lotse_inference::generate::GenerationService;
use lotse_portal::auth::{self, Action, Denied, LevelRules, Owner, Principal, Scope, UserInfo};
use lotse_portal::kompass::{Check, Graded, PublicCheck};
use lotse_portal::store::{
    self, AuditEntry, AuditRecord, ChatMessage, ChatSummary, Collection, Document, Prompt,
    RegisterEntry, TokenInfo, Usage,
};
use lotse_portal::{Store, StoreError, documents, extract, pii};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::login::Refused;
use crate::policy::{self, Outgoing, user_turns};

/// The session cookie's name: `__Host-` binds it to this host, `https` and path `/`, so no
/// other subdomain or plain-HTTP page can set or overwrite it (browsers treat
/// `http://localhost` and `http://127.0.0.1` as secure too).
pub const COOKIE: &str = "__Host-lotse_session";
/// The session cookie's name with `[portal] secure_cookie = false` (plain HTTP on another
/// host), where a `__Host-` cookie would be refused by the browser.
pub const PLAIN_COOKIE: &str = "lotse_session";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The site name portal documents have in the index (never a crawled site).
pub use lotse_portal::documents::INDEX_SITE;
/// The model name of the local generator in portal requests.
pub const LOCAL_MODEL: &str = "lokal";

/// A further model staff may choose (`[[portal.external]]`); whether it is external is its
/// generator's `ModelInfo::external`.
pub struct External {
    pub name: String,
    pub label: String,
    pub provider: String,
    pub service: Arc<GenerationService>,
}

/// The portal's state: its store, the KI-Kompass and the external models. (The sign-in
/// guard is [`AppState::login`](crate::AppState), built from the configuration.)
pub struct Portal {
    pub store: Arc<Store>,
    pub check: Check,
    pub kompass_text: String,
    pub rules: LevelRules,
    externals: Vec<External>,
    /// One KI-Kompass attempt at a time is counted and graded (the attempt limit holds for
    /// parallel requests).
    kompass_attempt: Mutex<()>,
    /// Sign-in with the town's identity provider, when configured.
    oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").finish_non_exhaustive()
    }
}

impl Portal {
    pub fn new(
        store: Arc<Store>,
        check: Check,
        kompass_text: String,
        rules: LevelRules,
        externals: Vec<External>,
    ) -> Portal {
        Portal {
            store,
            check,
            kompass_text,
            rules,
            externals,
            kompass_attempt: Mutex::new(()),
            oidc: None,
        }
    }

    /// Offer sign-in with an identity provider beside local accounts.
    pub fn with_oidc(mut self, oidc: crate::oidc::Oidc) -> Portal {
        self.oidc = Some(Arc::new(oidc));
        self
    }

    fn external(&self, name: &str) -> Option<&External> {
        self.externals.iter().find(|e| e.name == name)
    }

    /// Whether some engine of this server is not external: the main one (`main`) or one of
    /// the portal's models.
    fn internal_available(&self, main: Option<&ModelInfo>) -> bool {
        main.is_some_and(|m| !m.external) || self.externals.iter().any(|e| !e.service.info().external)
    }
}

// ---- errors ------------------------------------------------------------------------------

fn denied(d: Denied) -> ApiError {
    match d {
        Denied::Unauthenticated => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Bitte melden Sie sich im Portal an.",
        ),
        Denied::Forbidden { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
    }
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) => not_found(what),
        StoreError::Exists(what) => ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            format!("Das gibt es schon ({what})."),
        ),
        StoreError::Invalid(why) => {
            tracing::debug!(why = %why, "invalid portal input");
            ApiError::bad_request("invalid", format!("Die Eingabe ist ungültig: {why}."))
        }
        StoreError::Sql(e) => {
            tracing::error!(error = %e, "portal store failed");
            ApiError::internal()
        }
        StoreError::Index(e) => {
            tracing::error!(error = %e, "the index failed for the portal");
            ApiError::internal()
        }
    }
}

pub(crate) fn not_found(what: &str) -> ApiError {
    let message = match what {
        "collection" => "Diese Sammlung gibt es nicht.",
        "document" => "Dieses Dokument gibt es nicht.",
        "chat" => "Diesen Chat gibt es nicht.",
        "prompt" => "Diese Vorlage gibt es nicht.",
        "user" => "Dieses Konto gibt es nicht.",
        "token" => "Diesen Zugangsschlüssel gibt es nicht.",
        "question" => "Diese Frage gibt es nicht (mehr).",
        "topic" => "Dieses Thema gibt es nicht (mehr). Bitte laden Sie die Liste neu.",
        _ => "Nicht gefunden.",
    };
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(v)| v).map_err(ApiError::from)
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "portal_disabled",
        "Das Mitarbeiterportal ist nicht eingerichtet.",
    )
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
    csrf: Option<String>,
}

impl Ctx {
    /// Decide `action` for this request's principal.
    pub(crate) fn allow(&self, action: &Action<'_>) -> Result<(), ApiError> {
        auth::authorize(&self.principal, action, &self.portal.rules).map_err(denied)
    }
    /// The signed-in user (after a successful `allow`).
    fn user(&self) -> Result<&UserInfo, ApiError> {
        self.principal.user().ok_or_else(|| denied(Denied::Unauthenticated))
    }
    pub(crate) fn store(&self) -> Arc<Store> {
        self.portal.store.clone()
    }
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
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

/// The principal of a request: an API token, a session cookie, or nobody. Cookie requests
/// that change something must carry the session's CSRF token.
pub async fn ctx(state: &AppState, method: &Method, headers: &HeaderMap) -> Result<Ctx, ApiError> {
    let portal = state.portal().ok_or_else(disabled)?;
    let store = portal.store.clone();
    if let Some(t) = bearer(headers).filter(|t| is_portal_token(t)) {
        let found = blocking(move || store.token(&t).map_err(store_error)).await?;
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
    let found = blocking(move || store.session(&token).map_err(store_error)).await?;
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
    pub user: UserInfo,
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
        user,
        csrf,
    }
}

/// The session cookie's name under this configuration ([`COOKIE`] or [`PLAIN_COOKIE`]).
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.config.portal.secure_cookie { COOKIE } else { PLAIN_COOKIE }
}

fn session_cookie(state: &AppState, token: &str, max_age: i64) -> HeaderValue {
    let attrs = if state.config.portal.secure_cookie { "Path=/; Secure" } else { "Path=/portal" };
    HeaderValue::from_str(&format!(
        "{}={token}; HttpOnly; SameSite=Strict; {attrs}; Max-Age={max_age}",
        cookie_name(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lotse_session=; Max-Age=0"))
}

/// A new session for a signed-in user, audited as a login with `outcome` ("ok" for a
/// password, "oidc"). Returns (cookie token, CSRF token).
fn start_session(store: &Store, user: &UserInfo, ttl: i64, outcome: &str) -> Result<(String, String), ApiError> {
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
pub async fn logout(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    if let Some(token) = cookie_value(&headers, cookie_name(&state)) {
        let store = c.store();
        blocking(move || store.delete_session(&token).map_err(store_error)).await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&state, "", 0));
    Ok(resp)
}

/// The signed-in user, the CSRF token and what the KI-Kompass level unlocks.
#[utoipa::path(get, path = "/portal/api/me", tag = "portal",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let user = c.user()?.clone();
    let csrf = c.csrf.clone();
    Ok(Json(me(&c, user, csrf, &state)))
}

// ---- OpenID Connect ----------------------------------------------------------------------

/// How staff can sign in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOptions {
    /// Name and password (local accounts).
    pub password: bool,
    /// Sign-in with the town's identity provider.
    pub oidc: Option<OidcOption>,
}

/// The identity provider's sign-in button.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OidcOption {
    pub label: String,
    /// Open this address in the browser (a full page navigation).
    pub url: String,
}

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
    let store = portal.store.clone();
    let ttl = i64::from(state.config.portal.session_hours.max(1)) * 3600;
    let signed_in = blocking(move || {
        let id = store
            .upsert_oidc_user(&identity.subject, &identity.name, &identity.display_name, identity.role, &identity.groups)
            .map_err(store_error)?;
        let Some(user) = store.user(id).map_err(store_error)? else { return Ok(None) };
        let (token, _csrf) = start_session(&store, &user, ttl, "oidc")?;
        Ok(Some(token))
    })
    .await;
    let token = match signed_in {
        Ok(Some(t)) => t,
        Ok(None) => {
            return html_error(ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "Ihr Konto ist im Portal gesperrt. Bitte wenden Sie sich an die IT.",
            ));
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            return html_error(ApiError::new(
                StatusCode::CONFLICT,
                "account_exists",
                "Es gibt schon ein Portal-Konto mit Ihrem Benutzernamen. Bitte wenden Sie sich an die IT.",
            ));
        }
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
pub async fn kompass(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Kompass>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::TakeCheck)?;
    Ok(Json(Kompass {
        text: c.portal.kompass_text.clone(),
        check: c.portal.check.public(),
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
    method: Method,
    headers: HeaderMap,
    body: Result<Json<KompassAnswers>, JsonRejection>,
) -> Result<Json<Graded>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
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
    Ok(Json(graded))
}

// ---- collections and documents -----------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    #[schema(example = "Dienstanweisungen Bauamt")]
    pub title: String,
    /// A group (`{"kind": "group", "id": "bauamt"}`) or one person (`{"kind": "user", "id": 7}`).
    pub owner: Owner,
}

/// Collections the caller may read (admins: all).
#[utoipa::path(get, path = "/portal/api/collections", tag = "portal",
    responses((status = 200, body = [Collection]), (status = 401, body = ErrorBody)))]
pub async fn collections(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<Collection>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let store = c.store();
    let all = blocking(move || store.collections().map_err(store_error)).await?;
    Ok(Json(
        all.into_iter()
            .filter(|col| c.allow(&Action::ReadCollection(&col.owner)).is_ok())
            .collect(),
    ))
}

#[utoipa::path(post, path = "/portal/api/collections", tag = "portal", request_body = NewCollection,
    responses((status = 201, body = Collection), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_collection(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<NewCollection>, JsonRejection>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let req = json_body(body)?;
    c.allow(&Action::CreateCollection(&req.owner))?;
    let uid = c.user()?.id;
    let store = c.store();
    let col = blocking(move || store.create_collection(&req.title, &req.owner, Some(uid)).map_err(store_error)).await?;
    Ok((StatusCode::CREATED, Json(col)))
}

async fn load_collection(c: &Ctx, id: i64) -> Result<Collection, ApiError> {
    let store = c.store();
    blocking(move || store.collection(id).map_err(store_error)?.ok_or_else(|| not_found("collection"))).await
}

/// Delete a collection with all its documents (from the index first).
#[utoipa::path(delete, path = "/portal/api/collections/{id}", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_collection(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    // under the one-writer lock, as uploads: none can add chunks between the index and the row
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    {
        let _one_at_a_time = state.refresh_lock.lock().await;
        let store = c.store();
        blocking(move || {
            // the collection's every chunk, record and structure, whichever upload wrote them
            remove_from_index(&answerer, |w| w.remove_collection(&store::index_collection(id)))?;
            store.delete_collection(id).map(|_| ()).map_err(store_error)
        })
        .await?;
    }
    state.refresh_index().await;
    audit(&c, "delete_collection", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/portal/api/collections/{id}/documents", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 200, body = [Document]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn documents(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Document>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ReadCollection(&col.owner))?;
    let store = c.store();
    Ok(Json(blocking(move || store.documents(id).map_err(store_error)).await?))
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "index_busy",
        "Der Suchindex wird gerade aktualisiert. Bitte versuchen Sie es gleich noch einmal.",
    )
    .retry_after(10)
}

/// Remove from the index, commit, and rewrite the segments that held what was removed (so
/// the text is gone from disk too). The caller holds `refresh_lock`; this blocks.
fn remove_from_index(answerer: &Answerer, remove: impl FnOnce(&mut lotse_index::IndexWriter)) -> Result<(), ApiError> {
    let mut w = answerer.index().writer().map_err(|e| {
        tracing::warn!(error = %e, "cannot open the index writer");
        busy()
    })?;
    remove(&mut w);
    w.commit().map_err(|e| {
        tracing::error!(error = %e, "index commit failed");
        ApiError::internal()
    })?;
    if let Err(e) = w.purge_deleted() {
        // removed from search already; the bytes go at the next merge
        tracing::warn!(error = %e, "cannot rewrite the segments of deleted documents");
    }
    Ok(())
}

fn valid_file_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 200
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
}

/// Upload a document (the request body is the file). The same name again replaces it.
#[utoipa::path(put, path = "/portal/api/collections/{id}/documents/{name}", tag = "portal",
    params(("id" = i64, Path), ("name" = String, Path, description = "File name, e.g. `Dienstanweisung.pdf`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Indexed", body = Document),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "Larger than `[portal] max_upload_bytes`", body = ErrorBody),
        (status = 415, description = "Not PDF, DOCX, ODT, text, Markdown or HTML", body = ErrorBody),
        (status = 422, description = "Damaged, encrypted, empty or a zip bomb", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path((id, name)): Path<(i64, String)>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Document>), ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let max = state.config.portal.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("Die Datei ist zu groß. Erlaubt sind höchstens {} MB.", max / (1024 * 1024)),
        )
    };
    let bytes = body.map_err(|_| too_large())?;
    if bytes.len() > max {
        return Err(too_large());
    }
    if !valid_file_name(&name) {
        return Err(ApiError::bad_request(
            "file_name",
            "Der Dateiname ist ungültig (keine Schrägstriche, höchstens 200 Zeichen).",
        ));
    }
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    // 1. extract everything before writing anything
    let (n2, b2) = (name.clone(), bytes.clone());
    let (kind, mut page) = blocking(move || {
        extract::extract(&b2, &n2, "").map_err(|e| {
            tracing::info!(code = e.code(), "upload refused");
            let status = if e.is_type_error() { StatusCode::UNSUPPORTED_MEDIA_TYPE } else { StatusCode::UNPROCESSABLE_ENTITY };
            ApiError::new(status, e.code(), e.message_de())
        })
    })
    .await?;
    let sha = auth::hex(&Sha256::digest(&bytes));
    let title = page.title.clone();
    // 2.-4. under the one-writer lock, which deletes take too: the collection is checked
    // again there, so no chunk is written into a collection deleted meanwhile
    let _one_at_a_time = state.refresh_lock.lock().await;
    let store = c.store();
    let uid = c.user()?.id;
    let (n2, t2) = (name.clone(), title.clone());
    let (col, doc_id, existing) = blocking(move || {
        let col = store.collection(id).map_err(store_error)?.ok_or_else(|| not_found("collection"))?;
        if let Some(d) = store.document_by_name(id, &n2).map_err(store_error)? {
            return Ok((col, d.id, Some(d)));
        }
        let doc_id = store.reserve_document(id, &n2, kind.key(), &t2, Some(uid)).map_err(store_error)?;
        Ok((col, doc_id, None))
    })
    .await?;
    // 3. the index; on failure the old state stays
    let store = c.store();
    let (col2, sha2) = (col.clone(), sha.clone());
    let indexed = blocking(move || {
        let mut w = answerer.index().writer().map_err(|e| {
            tracing::warn!(error = %e, "cannot open the index writer");
            busy()
        })?;
        let embedder = answerer
            .embedder()
            .cloned()
            .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
        w.set_embedder(embedder);
        let result = documents::write(&mut w, &col2, doc_id, &mut page, &sha2).and_then(|n| w.commit().map(|_| n).map_err(StoreError::from));
        match result {
            Ok(n) => {
                // a replaced version's chunks are gone from disk too
                let _ = w.purge_deleted();
                Ok(n)
            }
            Err(e) => {
                let _ = w.rollback();
                tracing::error!(error = %e, "indexing an upload failed");
                Err(ApiError::internal())
            }
        }
    })
    .await;
    let n_chunks = match indexed {
        Ok(n) => n,
        Err(e) => {
            if existing.is_none() {
                let _ = blocking(move || store.delete_document(doc_id).map_err(store_error)).await;
            }
            return Err(e);
        }
    };
    // 4. the row: new metadata, chunk count and the original file, in one transaction
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    let is_new = existing.is_none();
    let doc = blocking(move || {
        let upload = store::Upload { kind: kind.key(), title: &title, sha256: &sha, original: &bytes, uploaded_by: Some(uid) };
        if let Err(e) = store.finish_document(doc_id, &upload, n_chunks) {
            // the chunks must not outlive a row that was never completed (a replaced
            // document's old original stays; start-up writes its chunks again from it)
            if is_new {
                let _ = remove_from_index(&answerer, |w| w.remove(&store::document_url(doc_id)));
                let _ = store.delete_document(doc_id);
            }
            return Err(store_error(e));
        }
        store.document(doc_id).map_err(store_error)?.ok_or_else(|| not_found("document"))
    })
    .await;
    drop(_one_at_a_time);
    state.refresh_index().await;
    let doc = doc?;
    audit(&c, if existing.is_some() { "replace_document" } else { "upload_document" }, None, false, vec![col.title.clone()], "ok").await;
    Ok((if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED }, Json(doc)))
}

/// A document with its collection, when the caller may read it.
async fn readable_document(c: &Ctx, id: i64) -> Result<(Document, Collection), ApiError> {
    let store = c.store();
    let (doc, col) = blocking(move || {
        let d = store.document(id).map_err(store_error)?.ok_or_else(|| not_found("document"))?;
        let col = store.collection(d.collection_id).map_err(store_error)?.ok_or_else(|| not_found("collection"))?;
        Ok((d, col))
    })
    .await?;
    c.allow(&Action::ReadCollection(&col.owner))?;
    Ok((doc, col))
}

/// Delete a document: from the index first, then its row.
#[utoipa::path(delete, path = "/portal/api/documents/{id}", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_document(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let (doc, col) = readable_document(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    {
        let _one_at_a_time = state.refresh_lock.lock().await;
        let store = c.store();
        blocking(move || {
            remove_from_index(&answerer, |w| w.remove(&doc.url))?;
            store.delete_document(id).map_err(store_error)
        })
        .await?;
    }
    state.refresh_index().await;
    audit(&c, "delete_document", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a}}table{{border-collapse:collapse}}td,th{{border:1px solid #888;padding:.25rem .5rem}}:target{{background:#fff3b0}}.meta{{color:#444}}</style></head>\
<body><main>{body}</main></body></html>",
        t = esc(title)
    )
}

fn html_error(e: ApiError) -> Response {
    let body = format!("<h1>{}</h1><p><a href=\"/portal/\">Zum Portal</a></p>", esc(&e.message));
    let mut r = (e.status, Html(html_page("Lotse-Portal", &body))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A document as the portal shows it (and cites it), with section anchors.
#[utoipa::path(get, path = "/portal/dokumente/{id}", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/html", body = String), (status = 401), (status = 403), (status = 404)))]
pub async fn document_page(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let result: Result<String, ApiError> = async {
        let c = ctx(&state, &method, &headers).await?;
        c.allow(&Action::Portal)?;
        let (doc, col) = readable_document(&c, id).await?;
        let answerer = state.answerer().ok_or_else(ApiError::starting)?;
        let url = doc.url.clone();
        let scope = CollectionScope::new([col.index_id()]);
        let found = blocking(move || {
            answerer.index().page(&url, &scope).map_err(|e| {
                tracing::error!(error = %e, "cannot read a document from the index");
                ApiError::internal()
            })
        })
        .await?;
        let Some((_, page)) = found else { return Err(not_found("document")) };
        let mut body = format!(
            "<p class=\"meta\"><a href=\"/portal/\">Portal</a> · Sammlung „{}“ · Datei {}</p><h1>{}</h1>",
            esc(&col.title),
            esc(&doc.file_name),
            esc(&doc.title)
        );
        for b in &page.blocks {
            match b {
                Block::Heading { level, text, anchor } => {
                    let l = (*level).clamp(2, 6);
                    let id = anchor.as_deref().map(|a| format!(" id=\"{}\"", esc(a))).unwrap_or_default();
                    body.push_str(&format!("<h{l}{id}>{}</h{l}>", esc(text)));
                }
                Block::Paragraph { text } => body.push_str(&format!("<p>{}</p>", esc(text))),
                Block::List { ordered, items } => {
                    let t = if *ordered { "ol" } else { "ul" };
                    body.push_str(&format!("<{t}>"));
                    for i in items {
                        body.push_str(&format!("<li>{}</li>", esc(i)));
                    }
                    body.push_str(&format!("</{t}>"));
                }
                Block::Table { rows } => {
                    body.push_str("<table>");
                    for r in rows {
                        body.push_str("<tr>");
                        for cell in r {
                            body.push_str(&format!("<td>{}</td>", esc(cell)));
                        }
                        body.push_str("</tr>");
                    }
                    body.push_str("</table>");
                }
            }
        }
        Ok(html_page(&doc.title, &body))
    }
    .await;
    match result {
        Ok(html) => {
            let mut r = Html(html).into_response();
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            r
        }
        Err(e) => html_error(e),
    }
}

// ---- search and chat ---------------------------------------------------------------------

/// The search scope of a request: the collections (each checked) and the website.
async fn scope_for(c: &Ctx, ids: &[i64], website: bool) -> Result<(CollectionScope, Vec<Collection>), ApiError> {
    let mut cols = Vec::new();
    for id in ids {
        let col = load_collection(c, *id).await?;
        c.allow(&Action::ReadCollection(&col.owner))?;
        cols.push(col);
    }
    let mut ids: Vec<CollectionId> = cols.iter().map(Collection::index_id).collect();
    if website {
        ids.push(CollectionId::website());
    }
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "no_collection",
            "Bitte wählen Sie mindestens eine Sammlung oder die Website.",
        ));
    }
    Ok((CollectionScope::new(ids), cols))
}

fn parse_ids(s: Option<&str>) -> Result<Vec<i64>, ApiError> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ApiError::bad_request("collections", "Die Sammlungen sind als Liste von Nummern anzugeben."))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchParams {
    pub q: String,
    /// Collection ids, comma-separated.
    pub collections: Option<String>,
    /// Also the public website.
    #[serde(default)]
    pub website: bool,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalHit {
    pub url: String,
    pub title: String,
    pub heading: String,
    pub deep_link: String,
    pub snippet: String,
    pub score: f32,
}

/// Search the chosen collections (and the website).
#[utoipa::path(get, path = "/portal/api/search", tag = "portal", params(SearchParams),
    responses((status = 200, body = [PortalHit]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn search(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<SearchParams>,
) -> Result<Json<Vec<PortalHit>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Chat)?;
    let ids = parse_ids(q.collections.as_deref())?;
    let (scope, _) = scope_for(&c, &ids, q.website).await?;
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    let limit = q.limit.unwrap_or(10).clamp(1, 50);
    let query = q.q.clone();
    if query.trim().is_empty() {
        return Err(ApiError::bad_request("empty_query", "Bitte geben Sie einen Suchbegriff ein."));
    }
    let hits = blocking(move || answerer.search_in(&query, limit, &scope).map_err(ApiError::from)).await?;
    Ok(Json(
        hits.into_iter()
            .map(|h| PortalHit {
                deep_link: h.deep_link,
                url: h.url,
                title: h.title,
                heading: h.heading,
                snippet: h.snippet,
                score: h.score,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalChatRequest {
    #[schema(example = "Welche Fristen gelten für die Bauvoranfrage?")]
    pub question: String,
    /// Collection ids to answer from.
    #[serde(default)]
    pub collections: Vec<i64>,
    /// Also the public website.
    #[serde(default)]
    pub website: bool,
    /// `lokal` (default) or the name of a configured external model.
    pub model: Option<String>,
    /// Continue this chat (its earlier turns are the history).
    pub chat_id: Option<i64>,
    /// Answer language; detected from the question when absent.
    pub lang: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalChatResponse {
    pub chat_id: i64,
    pub answer: Answer,
}

fn blocked(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// A cited answer from the chosen collections (and the website), stored in the user's
/// history. External models are refused for private collections and for questions with
/// personal data; the reason is in the error message.
#[utoipa::path(post, path = "/portal/api/chat", tag = "portal", request_body = PortalChatRequest,
    responses(
        (status = 200, body = PortalChatResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "No access, level too low, or an external model refused (`external_private`, `external_pii`)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn chat(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<PortalChatRequest>, JsonRejection>,
) -> Result<Json<PortalChatResponse>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Chat)?;
    let req = json_body(body)?;
    let user = c.user()?.clone();
    let (scope, cols) = scope_for(&c, &req.collections, req.website).await?;
    let col_names: Vec<String> = cols.iter().map(|x| x.title.clone()).collect();
    // the earlier turns of the chat
    let store = c.store();
    let (uid, chat_id) = (user.id, req.chat_id);
    let history: Vec<ChatMessage> = blocking(move || match chat_id {
        None => Ok(Vec::new()),
        Some(id) => match store.chat_owner(id).map_err(store_error)? {
            Some(owner) if owner == uid => store.messages(id).map_err(store_error),
            _ => Err(not_found("chat")),
        },
    })
    .await?;
    let turns: Vec<Turn> = history
        .iter()
        .rev()
        .take(6)
        .rev()
        .filter_map(|m| {
            let speaker = match m.role.as_str() {
                "user" => lotse_answer::Speaker::User,
                "assistant" => lotse_answer::Speaker::Assistant,
                _ => return None,
            };
            Some(Turn { role: speaker, content: m.content.clone() })
        })
        .collect();
    let base = state.answerer().ok_or_else(ApiError::starting)?;
    let model_name = req.model.clone().filter(|m| !m.is_empty() && m != LOCAL_MODEL);
    let (answerer, label): (Arc<Answerer>, String) = match &model_name {
        None => (base.clone(), main_label(&base)),
        Some(name) => {
            let Some(ext) = c.portal.external(name) else {
                return Err(ApiError::bad_request("unknown_model", "Dieses Modell ist nicht eingerichtet."));
            };
            (Arc::new(base.with_generation(ext.service.clone())), ext.label.clone())
        }
    };
    let engine = answerer.generation().map(|g| g.info().clone());
    let external = engine.as_ref().is_some_and(|e| e.external);
    let audit_model = model_name.clone().or_else(|| engine.as_ref().map(|e| e.id.clone()));
    if let Some(engine) = &engine {
        if engine.external {
            c.allow(&Action::ExternalModel)?;
        }
        let out = Outgoing::chat(&scope, &req.question, user_turns(&turns));
        if let Err(refusal) = policy::may_send(engine, &out) {
            audit(&c, "chat", audit_model, true, col_names.clone(), refusal.outcome()).await;
            let internal = c.portal.internal_available(base.generation().map(|g| g.info()));
            return Err(blocked(refusal.code(), refusal.message_de(&label, internal)));
        }
    }
    let areq = AnswerRequest { question: req.question.clone(), history: turns, lang: req.lang.clone() };
    Answerer::validate(&areq)?;
    let mut answer = answerer.answer_in(&areq, &scope).await?;
    answer.id = format!("p{}", auth::random_token("").chars().take(16).collect::<String>());
    // the history
    let store = c.store();
    let (q, a) = (req.question.clone(), answer.clone());
    let model_id = if a.model.is_empty() { None } else { Some(a.model.clone()) };
    let chat_id = blocking(move || {
        let id = match chat_id {
            Some(id) => id,
            None => store.create_chat(uid, &q).map_err(store_error)?,
        };
        let t = store::now();
        store
            .add_message(id, &ChatMessage { role: "user".into(), content: q, sources: serde_json::Value::Null, model: None, at: t })
            .map_err(store_error)?;
        store
            .add_message(
                id,
                &ChatMessage {
                    role: "assistant".into(),
                    content: a.answer.clone(),
                    sources: serde_json::to_value(&a.sources).unwrap_or_default(),
                    model: model_id,
                    at: t,
                },
            )
            .map_err(store_error)?;
        Ok(id)
    })
    .await?;
    let outcome = if answer.refused { "refused" } else { "answered" };
    let content = state.config.portal.audit_content.then(|| pii::redact(&req.question));
    audit_full(
        &c,
        AuditEntry {
            action: "chat".into(),
            model: audit_model.or_else(|| Some(answer.model.clone())),
            external,
            collections: col_names,
            prompt_tokens: answer.timings.prompt_tokens as i64,
            completion_tokens: answer.timings.completion_tokens as i64,
            outcome: outcome.into(),
            content,
            ..AuditEntry::default()
        },
    )
    .await;
    Ok(Json(PortalChatResponse { chat_id, answer }))
}

async fn audit(c: &Ctx, action: &str, model: Option<String>, external: bool, collections: Vec<String>, outcome: &str) {
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

/// Audit an admin change about the account `target`.
async fn audit_about(c: &Ctx, action: &str, target: &str) {
    audit_full(c, AuditEntry { action: action.into(), target: Some(target.into()), outcome: "ok".into(), ..AuditEntry::default() }).await;
}

/// Write an audit entry for the request's user; a failure is logged, not shown.
pub(crate) async fn audit_full(c: &Ctx, mut e: AuditEntry) {
    if let Some(u) = c.principal.user() {
        e.user_id = Some(u.id);
        e.user_name = u.name.clone();
        e.groups = u.groups.clone();
    }
    if matches!(c.principal, Principal::Token { .. }) {
        e.action = format!("{} (token)", e.action);
    }
    let store = c.store();
    let r = blocking(move || store.audit(&e).map_err(store_error)).await;
    if r.is_err() {
        tracing::error!("cannot write the audit log");
    }
}

// ---- chat history ------------------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatDetail {
    pub id: i64,
    pub messages: Vec<ChatMessage>,
}

#[utoipa::path(get, path = "/portal/api/chats", tag = "portal",
    responses((status = 200, body = [ChatSummary]), (status = 401, body = ErrorBody)))]
pub async fn chats(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<ChatSummary>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Chat)?;
    let (store, uid) = (c.store(), c.user()?.id);
    Ok(Json(blocking(move || store.chats(uid).map_err(store_error)).await?))
}

async fn own_chat(c: &Ctx, id: i64) -> Result<(), ApiError> {
    let (store, uid) = (c.store(), c.user()?.id);
    blocking(move || match store.chat_owner(id).map_err(store_error)? {
        Some(o) if o == uid => Ok(()),
        // another user's chat is "not found", not "forbidden": its existence is not shown
        _ => Err(not_found("chat")),
    })
    .await
}

#[utoipa::path(get, path = "/portal/api/chats/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 200, body = ChatDetail), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn chat_detail(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Path(id): Path<i64>) -> Result<Json<ChatDetail>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Chat)?;
    own_chat(&c, id).await?;
    let store = c.store();
    let messages = blocking(move || store.messages(id).map_err(store_error)).await?;
    Ok(Json(ChatDetail { id, messages }))
}

#[utoipa::path(delete, path = "/portal/api/chats/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_chat(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    own_chat(&c, id).await?;
    let store = c.store();
    blocking(move || store.delete_chat(id).map_err(store_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the whole history of the signed-in user.
#[utoipa::path(delete, path = "/portal/api/chats", tag = "portal",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn delete_chats(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let (store, uid) = (c.store(), c.user()?.id);
    blocking(move || store.delete_chats_of(uid).map(|_| ()).map_err(store_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
pub async fn prompts(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<Prompt>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let (store, user) = (c.store(), c.user()?.clone());
    let all = blocking(move || store.prompts_for(&user).map_err(store_error)).await?;
    Ok(Json(all.into_iter().filter(|p| c.allow(&Action::UsePrompt(p.group.as_deref())).is_ok()).collect()))
}

#[utoipa::path(post, path = "/portal/api/prompts", tag = "portal", request_body = NewPrompt,
    responses((status = 201, body = Prompt), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_prompt(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<NewPrompt>, JsonRejection>,
) -> Result<(StatusCode, Json<Prompt>), ApiError> {
    let c = ctx(&state, &method, &headers).await?;
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
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(delete, path = "/portal/api/prompts/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_prompt(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
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
    blocking(move || store.delete_prompt(id).map_err(store_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- models ------------------------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalModel {
    /// The `model` of a chat request.
    pub name: String,
    pub label: String,
    /// Runs outside the town's hardware: no private collections, no personal data.
    pub external: bool,
    /// The signed-in user may choose it.
    pub allowed: bool,
}

#[utoipa::path(get, path = "/portal/api/models", tag = "portal",
    responses((status = 200, body = [PortalModel]), (status = 401, body = ErrorBody)))]
pub async fn models(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<PortalModel>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::Portal)?;
    let chat_ok = c.allow(&Action::Chat).is_ok();
    let ext_ok = chat_ok && c.allow(&Action::ExternalModel).is_ok();
    let main = state.answerer();
    let main_external = main.as_ref().and_then(|a| a.generation()).is_some_and(|g| g.info().external);
    let mut out = vec![PortalModel {
        name: LOCAL_MODEL.into(),
        label: main.as_deref().map_or_else(|| "Lokales Modell".into(), main_label),
        external: main_external,
        allowed: if main_external { ext_ok } else { chat_ok },
    }];
    for e in &c.portal.externals {
        let external = e.service.info().external;
        out.push(PortalModel {
            name: e.name.clone(),
            label: e.label.clone(),
            external,
            allowed: if external { ext_ok } else { chat_ok },
        });
    }
    Ok(Json(out))
}

/// What staff see of the main engine (the model `lokal` of a chat request): local, or an
/// external service, as it is.
fn main_label(a: &Answerer) -> String {
    match a.generation().map(|g| g.info()) {
        Some(i) if i.external => format!("Standardmodell ({}, externer KI-Dienst)", i.id),
        Some(i) if !i.id.is_empty() => format!("Lokales Modell ({})", i.id),
        _ => "Lokales Modell".into(),
    }
}

// ---- administration ----------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub display_name: Option<String>,
    /// At least 10 characters.
    pub password: String,
    pub role: auth::Role,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub level: Option<auth::Level>,
    pub role: Option<auth::Role>,
    pub groups: Option<Vec<String>>,
    /// Lock the account (its sessions end).
    #[serde(default)]
    pub disabled: bool,
}

#[utoipa::path(get, path = "/portal/api/admin/users", tag = "portal",
    responses((status = 200, body = [UserInfo]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn users(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<UserInfo>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ManageUsers)?;
    let store = c.store();
    Ok(Json(blocking(move || store.users().map_err(store_error)).await?))
}

#[utoipa::path(post, path = "/portal/api/admin/users", tag = "portal", request_body = NewUser,
    responses((status = 201, body = UserInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ManageUsers)?;
    let req = json_body(body)?;
    let store = c.store();
    let u = blocking(move || {
        let hash = auth::hash_password(&req.password).map_err(|e| {
            ApiError::bad_request("password", format!("Das Passwort ist zu schwach: mindestens {} Zeichen. ({e})", auth::MIN_PASSWORD_CHARS))
        })?;
        let display = req.display_name.clone().unwrap_or_else(|| req.name.clone());
        let id = store.create_user(&req.name, &display, Some(&hash), req.role, &req.groups).map_err(store_error)?;
        store.user(id).map_err(store_error)?.ok_or_else(|| not_found("user"))
    })
    .await?;
    audit_about(&c, "create_user", &u.name).await;
    Ok((StatusCode::CREATED, Json(u)))
}

/// Change a user's KI-Kompass level, role or groups, or lock the account.
#[utoipa::path(patch, path = "/portal/api/admin/users/{id}", tag = "portal", params(("id" = i64, Path)), request_body = UserChange,
    responses((status = 200, body = UserInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_user(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<UserChange>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
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
            store.set_level(id, l).map_err(store_error)?;
        }
        if req.role.is_some() || req.groups.is_some() {
            let role = req.role.unwrap_or(u.role);
            let groups = req.groups.clone().unwrap_or(u.groups.clone());
            store.set_role_and_groups(id, role, &groups).map_err(store_error)?;
        }
        store.user(id).map_err(store_error)?.ok_or_else(|| not_found("user"))
    })
    .await?;
    audit_about(&c, if req_disabled { "disable_user" } else { "change_user" }, &u.name).await;
    Ok(Json(u))
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
pub async fn tokens(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ManageUsers)?;
    let store = c.store();
    Ok(Json(blocking(move || store.tokens().map_err(store_error)).await?))
}

#[utoipa::path(post, path = "/portal/api/admin/tokens", tag = "portal", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ManageUsers)?;
    let req = json_body(body)?;
    let (store, me_id) = (c.store(), c.user()?.id);
    let days = state.config.portal.token_days;
    let (token, owner) = blocking(move || {
        let uid = req.user_id.unwrap_or(me_id);
        let owner = store.user(uid).map_err(store_error)?.ok_or_else(|| not_found("user"))?;
        let token = store.create_token_for(uid, &req.name, &req.scopes, days).map_err(store_error)?;
        Ok((token, owner.name))
    })
    .await?;
    audit_about(&c, "create_token", &owner).await;
    Ok((StatusCode::CREATED, Json(CreatedToken { token })))
}

#[utoipa::path(delete, path = "/portal/api/admin/tokens/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
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
pub async fn audit_log(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Query(p): Query<ExportParams>) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ViewAudit)?;
    let csv = want_csv(&p)?;
    let (store, from) = (c.store(), since(&p));
    let rows = blocking(move || store.audit_log(from, 100_000).map_err(store_error)).await?;
    if !csv {
        return Ok(Json(rows).into_response());
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
pub async fn usage(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Query(p): Query<ExportParams>) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ViewAudit)?;
    let csv = want_csv(&p)?;
    let (store, from) = (c.store(), since(&p));
    let rows = blocking(move || store.usage(from).map_err(store_error)).await?;
    if !csv {
        return Ok(Json(rows).into_response());
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
pub async fn register(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Query(p): Query<ExportParams>) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ViewRegister)?;
    let csv = want_csv(&p)?;
    let store = c.store();
    let rows = blocking(move || store.register().map_err(store_error)).await?;
    if !csv {
        return Ok(Json(rows).into_response());
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
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Result<Json<RegisterEntry>, JsonRejection>,
) -> Result<Json<RegisterEntry>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ManageRegister)?;
    let e = json_body(body)?;
    if e.name.trim().is_empty() || e.responsible.trim().is_empty() {
        return Err(ApiError::bad_request("register", "Bitte geben Sie die Anwendung und die verantwortliche Person an."));
    }
    let store = c.store();
    let e2 = e.clone();
    blocking(move || store.put_register(&e2).map_err(store_error)).await?;
    audit(&c, "put_register", None, false, Vec::new(), "ok").await;
    Ok(Json(e))
}

// ---- reviews of simplified legal texts ----------------------------------------------------

/// A model rewrite of a legal text (Einfache Sprache) and where its review stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RewriteReview {
    /// The rewrite's cache key: the id for reading and deciding.
    pub key: String,
    pub url: String,
    pub title: String,
    /// Unix time of the rewrite.
    pub generated_at: u64,
    /// Units the model rewrote / units given to it.
    pub units_rewritten: usize,
    pub units: usize,
    /// Flesch reading ease (Amstad) of the original and of the rewrite.
    pub flesch_before: f64,
    pub flesch_after: f64,
    pub status: lotse_simplify::ReviewStatus,
    pub reviewer: Option<String>,
    pub decided_at: Option<u64>,
    /// The blocks corrected in the approval (to show them again when the rewrite is opened).
    pub corrections: Vec<lotse_simplify::BlockCorrection>,
}

/// A decision: `approved` (citizens see the rewrite) or `rejected` (they keep the rules pass).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewRequest {
    pub status: lotse_simplify::ReviewStatus,
    /// With `approved` only: blocks corrected before approval, each with the reviewer's
    /// wording (it must keep every amount, date, deadline and reference of the original) or
    /// without a text to show the block as the rules pass made it.
    #[serde(default)]
    pub corrections: Vec<lotse_simplify::BlockCorrection>,
    /// `generated_at` of the rewrite the reviewer read: a rewrite made again since is not
    /// decided on unseen (409).
    #[serde(default)]
    pub generated_at: Option<u64>,
}

fn no_rewrite() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Diese Umschreibung gibt es nicht (mehr). Vielleicht hat sich die Seite inzwischen geändert.",
    )
}

/// The model's rewrites of legal texts, newest first, with their review state (editors and
/// admins). Citizens see a rewrite only once it is approved (`[simplify] legal_texts =
/// "review"`).
#[utoipa::path(get, path = "/portal/api/simplify/reviews", tag = "portal",
    responses((status = 200, body = [RewriteReview]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn rewrite_reviews(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ReviewRewrites)?;
    let svc = crate::simplify::service(&state)?;
    let rows = blocking(move || svc.reviews().map_err(review_store_error)).await?;
    let list: Vec<RewriteReview> = rows
        .into_iter()
            .map(|(key, p, d)| RewriteReview {
                key,
                url: p.url,
                title: p.title,
                generated_at: p.generated_at,
                units_rewritten: p.summary.units_rewritten,
                units: p.summary.units,
                flesch_before: p.readability.before.flesch_amstad,
                flesch_after: p.readability.after.flesch_amstad,
                status: d.as_ref().map_or(lotse_simplify::ReviewStatus::Pending, |d| d.status),
                reviewer: d.as_ref().map(|d| d.reviewer.clone()),
                decided_at: d.as_ref().map(|d| d.decided_at),
                corrections: d.map(|d| d.corrections).unwrap_or_default(),
            })
        .collect();
    let mut r = Json(list).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One rewrite as the model made it, block by block beside the original (for the review).
#[utoipa::path(get, path = "/portal/api/simplify/reviews/{key}", tag = "portal", params(("key" = String, Path)),
    responses((status = 200, body = lotse_simplify::SimplifiedPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rewrite_review(State(state): State<Arc<AppState>>, method: Method, headers: HeaderMap, Path(key): Path<String>) -> Result<Response, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ReviewRewrites)?;
    let svc = crate::simplify::service(&state)?;
    let page = blocking(move || svc.stored(&key).map_err(review_store_error)).await?.ok_or_else(no_rewrite)?;
    let mut r = Json(page).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn review_store_error(e: String) -> ApiError {
    tracing::warn!(error = %e, "rewrite store failed");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", "Die Umschreibungen lassen sich gerade nicht lesen. Bitte versuchen Sie es später noch einmal.")
}

/// Approve or reject a rewrite of a legal text; citizens see the decision at their next click.
#[utoipa::path(post, path = "/portal/api/simplify/reviews/{key}", tag = "portal", params(("key" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = lotse_simplify::ReviewDecision), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn decide_review(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Result<Json<ReviewRequest>, JsonRejection>,
) -> Result<Json<lotse_simplify::ReviewDecision>, ApiError> {
    let c = ctx(&state, &method, &headers).await?;
    c.allow(&Action::ReviewRewrites)?;
    let req = json_body(body)?;
    if req.status == lotse_simplify::ReviewStatus::Pending {
        return Err(ApiError::bad_request("status", "Bitte geben Sie die Umschreibung frei (approved) oder lehnen Sie sie ab (rejected)."));
    }
    if req.status == lotse_simplify::ReviewStatus::Rejected && !req.corrections.is_empty() {
        return Err(ApiError::bad_request("corrections", "Korrekturen gehören zu einer Freigabe. Eine abgelehnte Umschreibung sehen Bürgerinnen und Bürger nicht."));
    }
    let reviewer = c.user()?.name.clone();
    let svc = crate::simplify::service(&state)?;
    let d = blocking(move || {
        svc.decide(&key, req.status, &reviewer, &req.corrections, req.generated_at).map_err(|e| match e {
            crate::simplify::DecideError::NotFound => no_rewrite(),
            crate::simplify::DecideError::Changed => ApiError::new(StatusCode::CONFLICT, "changed", lotse_simplify::review::PAGE_CHANGED),
            crate::simplify::DecideError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "correction", m),
            crate::simplify::DecideError::Store(m) => review_store_error(m),
        })
    })
    .await?;
    // which page and which text: the page's address, the rewrite's key and how many blocks
    // staff corrected (their wording is public text of the town, kept with the decision)
    // the count and a digest of the corrections: which wording was approved stays traceable
    // after a later decision replaces this one
    let corrected = match d.corrections.len() {
        0 => String::new(),
        n => format!(", {n} corrected, sha256 {}", d.corrections_digest()),
    };
    audit_full(
        &c,
        AuditEntry {
            action: "review_rewrite".into(),
            outcome: d.status.key().into(),
            content: Some(format!("{} ({}){corrected}", d.url, d.key)),
            ..AuditEntry::default()
        },
    )
    .await;
    Ok(Json(d))
}

// ---- the page -----------------------------------------------------------------------------

const PORTAL_CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:1rem;line-height:1.5;color:#1a1a1a;background:#f4f5f7}
.top{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.5rem;padding:.75rem 1.25rem;background:#0b4f8a;color:#fff}
.top p{margin:0}.brand{font-weight:600}
main{max-width:60rem;margin:0 auto;padding:1rem}
.card{background:#fff;border:1px solid #c9ccd1;border-radius:.5rem;padding:1rem 1.25rem;margin:1rem 0}
h2{margin-top:0;font-size:1.3rem}h3{font-size:1.05rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
.option label{display:inline;font-weight:normal;margin-left:.4rem}
.option{margin:.3rem 0}
input[type=text],input:not([type]),input[type=password],select,textarea{width:100%;padding:.5rem;font:inherit;border:1px solid #6b7280;border-radius:.25rem;background:#fff;color:#1a1a1a}
button{font:inherit;margin-top:.75rem;padding:.5rem 1rem;border-radius:.25rem;border:1px solid #0b4f8a;background:#0b4f8a;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#0b4f8a}
a.button{display:inline-block;padding:.5rem 1rem;border-radius:.25rem;background:#0b4f8a;color:#fff;text-decoration:none;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
td select{width:auto}.exports a{color:#0b4f8a}
table.review td.pre{white-space:pre-line;width:45%}
.prompts{margin:.5rem 0}.save-prompt{margin:.75rem 0}.save-prompt summary{cursor:pointer;color:#0b4f8a;font-weight:600}
.top button.secondary{margin:0 0 0 .75rem;padding:.25rem .75rem}
button:disabled{opacity:.6;cursor:wait}
:focus-visible{outline:3px solid #f2a900;outline-offset:2px}
fieldset{border:1px solid #c9ccd1;border-radius:.25rem;margin:.75rem 0;padding:.5rem .75rem}
legend{font-weight:600;padding:0 .25rem}
.buttons{display:flex;flex-wrap:wrap;gap:.5rem}
.error{color:#a4000f}.ok{color:#0b5d1e}.notice{color:#0b5d1e}
.exchange{border-top:1px solid #e5e7eb;padding:.5rem 0}
.question{font-weight:600}
.answer .label{display:inline-block;margin:0;padding:0 .4rem;border-radius:.25rem;background:#e8eef6;color:#0b3a66;font-size:.85rem;font-weight:600}
.answer .hint,.policy{color:#4b5563;font-size:.9rem}
.sources a{color:#0b4f8a}
.kompass-text{max-height:24rem;overflow:auto;border:1px solid #e5e7eb;padding:.5rem 1rem;margin-bottom:1rem}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}
"#;

/// The portal's page: a shell that loads the leptos module (`/widget/lotse_portal.js`).
#[utoipa::path(get, path = "/portal/", tag = "portal",
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn page(State(state): State<Arc<AppState>>) -> Response {
    if state.portal().is_none() {
        return html_error(disabled());
    }
    let body = if state.widget.has("lotse_portal.js") {
        "<div id=\"lotse-portal\"><p>Das Portal wird geladen …</p><noscript><p>Bitte schalten Sie JavaScript ein, um das Portal zu nutzen.</p></noscript></div>\
<script type=\"module\">import init, { mount_portal } from \"/widget/lotse_portal.js\"; await init(); mount_portal();</script>"
            .to_string()
    } else {
        tracing::warn!("portal page not built: run scripts/build-widget.sh");
        "<main><h1>KI-Portal</h1><p>Die Oberfläche des Portals ist auf diesem Server nicht installiert. Bitte wenden Sie sich an die IT.</p></main>".to_string()
    };
    let html = format!(
        "<!doctype html><html lang=\"de\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>KI-Portal</title><style>{PORTAL_CSS}</style></head><body>{body}</body></html>"
    );
    let mut r = Html(html).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // the shell's one inline module script starts the portal's WebAssembly; everything else
    // comes from this server
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    r
}

// ---- the CMS -----------------------------------------------------------------------------

/// Whether a bearer token is a portal token with `action`'s scope (for the CMS routes):
/// `None` when the request carries no portal token.
pub async fn cms_token(state: &AppState, headers: &HeaderMap, action: Action<'static>) -> Option<Result<(), ApiError>> {
    let token = bearer(headers).filter(|t| is_portal_token(t))?;
    let portal = state.portal()?;
    let store = portal.store.clone();
    let found = match blocking(move || store.token(&token).map_err(store_error)).await {
        Ok(f) => f,
        Err(e) => return Some(Err(e)),
    };
    Some(match found {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Dieser Zugangsschlüssel ist ungültig oder wurde widerrufen.",
        )),
        Some((owner, scopes)) => {
            auth::authorize(&Principal::Token { owner, scopes }, &action, &portal.rules).map_err(denied)
        }
    })
}

/// Hourly: chats past their retention are deleted.
pub async fn expire_chats(state: &AppState) {
    let Some(portal) = state.portal() else { return };
    let days = state.config.portal.chat_retention_days;
    if days == 0 {
        return;
    }
    let store = portal.store.clone();
    match blocking(move || store.expire_chats(days).map_err(store_error)).await {
        Ok(n) if n > 0 => tracing::info!(chats = n, "expired chats deleted"),
        Ok(_) => {}
        Err(_) => tracing::warn!("cannot expire chats"),
    }
}

/// Open the portal of a server: `portal.sqlite` in `data`, the KI-Kompass of the
/// configuration and its external models.
pub fn open(config: &crate::Config, data: &std::path::Path) -> Result<Portal, String> {
    let p = &config.portal;
    let store = crate::database::open(p.database.as_deref(), data)?;
    let check = Check::load(p.kompass_check.as_deref()).map_err(|e| e.to_string())?;
    let text = lotse_portal::kompass::load_text(p.kompass_text.as_deref()).map_err(|e| e.to_string())?;
    let mut externals = Vec::new();
    for e in &p.external {
        let rc = lotse_inference::remote::RemoteConfig {
            base_url: e.url.clone(),
            model: e.model.clone(),
            api_key_env: e.api_key_env.clone(),
            external: e.external,
            context_len: 8192,
            timeout_secs: 120,
        };
        let g = lotse_inference::remote::RemoteGenerator::new(&rc)
            .map_err(|err| format!("external model {}: {err}", e.name))?;
        externals.push(External {
            name: e.name.clone(),
            label: e.label.clone(),
            provider: e.provider.clone().unwrap_or_else(|| e.url.clone()),
            service: Arc::new(GenerationService::new(Arc::new(g), 2, config.limits.queue)),
        });
    }
    let portal = Portal::new(store, check, text, p.levels.clone(), externals);
    Ok(match &p.oidc {
        Some(o) => portal.with_oidc(crate::oidc::Oidc::new(o.clone()).map_err(|e| e.to_string())?),
        None => portal,
    })
}

/// The provider the register names for an engine on the administration's own hardware.
const OWN_PROVIDER: &str = "Eigener Server der Verwaltung (Lotse, lokales Modell)";

/// Bring the index in line with the portal database before the first request (orphans
/// removed, uploads missing from the index written again from their originals); logs counts.
pub fn reconcile(portal: &Portal, answerer: &Answerer) -> Result<documents::Reconciled, StoreError> {
    let embedder = answerer
        .embedder()
        .cloned()
        .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
    documents::reconcile(&portal.store, answerer.index(), embedder)
}

/// Seed the AI system register with this installation's uses (entries an admin changed
/// stay as they are). `engine` is the main engine; when it is external the register says
/// so and names `provider` (its service or address). An entry seeded earlier that still
/// names the administration's own server while the engine is external is corrected.
pub fn seed_register(portal: &Portal, engine: &ModelInfo, provider: Option<&str>, responsible: &str) -> Result<(), StoreError> {
    let entry = |name: &str, model: &str, purpose: &str, provider: &str, risk: &str| RegisterEntry {
        name: name.into(),
        model: model.into(),
        purpose: purpose.into(),
        provider: provider.into(),
        risk_class: risk.into(),
        responsible: responsible.into(),
        updated_at: 0,
    };
    let external_provider = format!(
        "Externer KI-Dienst: {} (außerhalb der Verwaltung; keine internen Dokumente, keine personenbezogenen Daten)",
        provider.filter(|p| !p.trim().is_empty()).unwrap_or(&engine.id)
    );
    let main_provider = if engine.external { external_provider.as_str() } else { OWN_PROVIDER };
    let staff_purpose = if engine.external {
        "Beantwortet Fragen von Beschäftigten aus der Website, mit Quellen; interne Sammlungen und personenbezogene Daten gehen nicht an diesen externen Dienst."
    } else {
        "Beantwortet Fragen von Beschäftigten aus internen Sammlungen, mit Quellen; Menschen bleiben verantwortlich."
    };
    let main_uses = [
        entry(
            "Bürger-Chat",
            &engine.id,
            "Beantwortet Fragen von Bürgerinnen und Bürgern aus den Seiten der Website, mit Quellen; gekennzeichnet als KI-generiert.",
            main_provider,
            "begrenzt (Transparenzpflichten)",
        ),
        entry(
            "Einfache Sprache",
            &engine.id,
            "Schreibt Seiten der Website in Einfache Sprache um; das Original bleibt verbindlich.",
            main_provider,
            "begrenzt (Transparenzpflichten)",
        ),
        entry("Mitarbeiterportal", &engine.id, staff_purpose, main_provider, "minimal"),
    ];
    let existing = portal.store.register()?;
    for e in &main_uses {
        match existing.iter().find(|x| x.name == e.name) {
            None => portal.store.seed_register(e)?,
            // seeded for a local engine, which this one is not: the entry would be untrue
            Some(old) if engine.external && old.provider == OWN_PROVIDER => {
                tracing::warn!(entry = %e.name, "AI register named the own server for an external engine; corrected");
                portal.store.put_register(&RegisterEntry {
                    model: e.model.clone(),
                    provider: e.provider.clone(),
                    purpose: e.purpose.clone(),
                    ..old.clone()
                })?;
            }
            Some(_) => {}
        }
    }
    for e in &portal.externals {
        let (purpose, provider) = if e.service.info().external {
            ("Externer KI-Dienst für Fragen ohne interne Dokumente und ohne personenbezogene Daten.", e.provider.clone())
        } else {
            ("Modell auf einem Server der Verwaltung, auch für interne Sammlungen.", format!("Eigener Server der Verwaltung ({})", e.provider))
        };
        portal.store.seed_register(&entry(&format!("Mitarbeiterportal: {}", e.label), &e.name, purpose, &provider, "minimal"))?;
    }
    Ok(())
}
