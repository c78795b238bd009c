//! Lotse's HTTP server: the citizen chat (JSON and server-sent events), public search, an
//! OpenAI-compatible face of the same cited answers, health, readiness, Prometheus metrics and
//! the OpenAPI description.
//!
//! Invariants:
//! - Every route that costs model time is rate limited per client IP; X-Forwarded-For is only
//!   believed from configured proxies. Overload is refused early (429, 503 with Retry-After);
//!   queues and caches are bounded.
//! - Errors are JSON with a stable code and a German message (`error::ApiError`); logs are
//!   English and never contain questions, answers or client addresses.
//! - Answers come only from the public collection (the `answer` crate searches nothing else).
//! - What may go to an external engine is decided in one place, `policy::may_send`: no text of
//!   a private collection, no personal data in what the asker wrote.
//! - The OpenAPI document is generated from the handlers: every documented route is listed
//!   once, in `public_routes` or `portal_routes` (utoipa-axum), which give both the router
//!   and the paths; `openapi/openapi.json` is checked against it, and validated, by tests.

pub mod api;
pub mod cms;
pub mod config;
pub mod database;
pub mod error;
pub mod feedback;
pub mod insights;
pub mod limit;
pub mod login;
pub mod metrics;
pub mod oidc;
pub mod openai;
pub use lotse_service::policy;
pub mod portal;
pub use lotse_service::rewrite_store as rewrites;
mod serving;
pub mod simplify;
pub mod widget;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use lotse_answer::{Answer, Answerer};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use config::Config;
pub use serving::{serve, shutdown_signal};

/// Shared state of the running server.
pub struct AppState {
    pub config: Config,
    answerer: RwLock<Option<Arc<Answerer>>>,
    simplify: RwLock<Option<Arc<simplify::SimplifyService>>>,
    pub metrics: metrics::Metrics,
    pub(crate) answers: moka::future::Cache<String, Arc<Answer>>,
    pub(crate) limits: limit::RateLimits,
    content_version: AtomicU64,
    /// One page refresh (CMS webhook) at a time.
    pub(crate) refresh_lock: tokio::sync::Mutex<()>,
    pub started: Instant,
    /// The citizens' widget files (`/widget/*`).
    pub(crate) widget: widget::WidgetAssets,
    feedback: RwLock<Option<Arc<feedback::FeedbackStore>>>,
    /// Answers given lately, by id, for their ratings.
    pub(crate) answer_records: moka::future::Cache<String, Arc<feedback::AnswerRecord>>,
    /// The latest recorded question (`insights`) of an answer id, for a thumbs-down. In
    /// memory only, for a day.
    pub(crate) insight_rows: moka::future::Cache<String, i64>,
    portal: RwLock<Option<Arc<portal::Portal>>>,
    /// The portal's sign-in guard (rate, failure tallies, argon2 slots).
    pub login: login::LoginGuard,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// A server that is starting: it answers `/health`, and `/ready` says 503 until
    /// [`AppState::set_answerer`] is called.
    pub fn new(config: Config) -> Arc<AppState> {
        let answers = moka::future::Cache::builder()
            .max_capacity(config.limits.answer_cache_entries)
            .time_to_live(Duration::from_secs(config.limits.answer_cache_ttl_secs.max(1)))
            .build();
        let limits = limit::RateLimits::new(&config.limits);
        let login = login::LoginGuard::new(&config.portal);
        let widget = widget::WidgetAssets::from_config(&config);
        // ratings come minutes after the answer; a day is plenty
        let answer_records = moka::future::Cache::builder()
            .max_capacity(config.limits.answer_cache_entries.max(1000) * 4)
            .time_to_live(Duration::from_secs(24 * 3600))
            .build();
        let insight_rows = moka::future::Cache::builder()
            .max_capacity(config.limits.answer_cache_entries.max(1000) * 4)
            .time_to_live(Duration::from_secs(24 * 3600))
            .build();
        Arc::new(AppState {
            config,
            answerer: RwLock::new(None),
            simplify: RwLock::new(None),
            metrics: metrics::Metrics::default(),
            answers,
            limits,
            content_version: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            widget,
            feedback: RwLock::new(None),
            answer_records,
            insight_rows,
            portal: RwLock::new(None),
            login,
        })
    }

    /// Models are loaded and the index is open: start answering.
    pub fn set_answerer(&self, answerer: Arc<Answerer>) {
        if let Some(note) = answerer.generation().and_then(|g| policy::main_engine_note(g.info())) {
            tracing::warn!("{note}");
        }
        self.content_version
            .store(answerer.index().content_version(), Ordering::SeqCst);
        *self.answerer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answerer);
    }

    /// The answerer, when ready.
    pub fn answerer(&self) -> Option<Arc<Answerer>> {
        self.answerer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Plain-language rewrites are available (and their worker runs).
    pub fn set_simplify(&self, service: Arc<simplify::SimplifyService>) {
        *self.simplify.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(service);
    }

    /// The rewrite service, when ready.
    pub fn simplify(&self) -> Option<Arc<simplify::SimplifyService>> {
        self.simplify
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The CMS's page refresh, sharing the one-writer lock with uploads.
    pub fn page_refresh(&self) -> lotse_service::refresh::PageRefresh<'_> {
        lotse_service::refresh::PageRefresh::new(
            self.answerer(),
            self.simplify(),
            &self.refresh_lock,
            std::env::var("LOTSE_CONTACT_URL").ok(),
        )
    }

    /// Store citizens' ratings of answers (`POST /api/v1/feedback`).
    pub fn set_feedback(&self, store: Arc<feedback::FeedbackStore>) {
        *self.feedback.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(store);
    }

    /// The rating store, when ratings are on.
    pub fn feedback(&self) -> Option<Arc<feedback::FeedbackStore>> {
        if !self.config.feedback.enabled {
            return None;
        }
        self.feedback
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Open the staff portal (`/portal`).
    pub fn set_portal(&self, p: Arc<portal::Portal>) {
        *self.portal.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p);
    }

    /// The staff portal, when it is set up and switched on.
    pub fn portal(&self) -> Option<Arc<portal::Portal>> {
        if !self.config.portal.enabled {
            return None;
        }
        self.portal
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What the server knows of an answer it gave lately.
    pub async fn answer_record(&self, id: &str) -> Option<feedback::AnswerRecord> {
        self.answer_records.get(id).await.map(|r| (*r).clone())
    }

    /// Whether `/widget/lotse.js` is there to serve.
    pub fn widget_built(&self) -> bool {
        self.widget.is_built()
    }

    /// The index's content version, for answer-cache keys.
    pub fn content_version(&self) -> u64 {
        self.content_version.load(Ordering::SeqCst)
    }

    /// See new crawls: reload the index; when its content changed, drop cached answers.
    pub async fn refresh_index(&self) {
        let Some(a) = self.answerer() else { return };
        let a2 = a.clone();
        let reloaded = tokio::task::spawn_blocking(move || {
            a2.index().reload().map(|_| a2.index().content_version())
        })
        .await;
        match reloaded {
            Ok(Ok(v)) => {
                if self.content_version.swap(v, Ordering::SeqCst) != v {
                    tracing::info!("index content changed; answer cache cleared");
                    self.answers.invalidate_all();
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload the index"),
            Err(e) => tracing::warn!(error = %e, "index reload task failed"),
        }
    }
}

/// The OpenAPI description's frame: info, extra schemas, tags, security schemes. The paths
/// come from the routers ([`public_routes`], [`portal_routes`]): one list for both.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lotse API",
        description = "Cited answers from the town's website, search, pages in Einfache Sprache, and an OpenAI-compatible face. All answers and rewrites are labelled \"KI-generiert\".",
        license(name = "Apache-2.0")
    ),
    components(schemas(
        lotse_wire::AnswerRequest,
        lotse_wire::Answer,
        lotse_wire::Source,
        lotse_wire::Quote,
        lotse_wire::AskedKind,
        lotse_wire::Timings,
        lotse_wire::Turn,
        lotse_wire::Speaker,
        lotse_wire::Lang,
        lotse_wire::TokenEvent,
        lotse_wire::ErrorBody,
        lotse_wire::ErrorDetail,
        lotse_wire::chat::FeedbackRequest,
        lotse_wire::search::SearchResponse,
        lotse_wire::search::SearchResult,
        lotse_wire::ops::Health,
        lotse_wire::ops::Readiness,
        lotse_wire::simplify::SimplifiedPage,
        lotse_wire::simplify::Block,
        lotse_wire::simplify::BlockResult,
        lotse_wire::simplify::BlockKind,
        lotse_wire::simplify::BlockStatus,
        lotse_wire::simplify::ReadabilityChange,
        lotse_wire::simplify::Readability,
        lotse_wire::simplify::Summary,
        lotse_wire::simplify::ReviewNote,
        lotse_wire::simplify::ReviewStatus,
        lotse_wire::simplify::Correction,
        lotse_wire::simplify::Pending,
        lotse_wire::simplify::JobState,
        lotse_wire::simplify::ContentRequest,
        lotse_wire::simplify::RefreshRequest,
        lotse_wire::simplify::RefreshResponse,
        lotse_wire::simplify::RefreshStatus,
        lotse_wire::openai::CompletionRequest,
        lotse_wire::openai::CompletionMessage,
        lotse_wire::openai::Completion,
        lotse_wire::openai::CompletionChoice,
        lotse_wire::openai::Usage,
        lotse_wire::openai::ModelList,
        lotse_wire::openai::ModelEntry,
        lotse_wire::reviews::ReviewDecision,
        lotse_wire::reviews::BlockCorrection,
        lotse_wire::reviews::LegalTexts,
        portal::LoginRequest,
        portal::Me,
        portal::LoginOptions,
        portal::OidcOption,
        portal::Kompass,
        portal::KompassAnswers,
        portal::NewCollection,
        portal::PortalHit,
        portal::PortalChatRequest,
        portal::PortalChatResponse,
        portal::ChatDetail,
        portal::NewPrompt,
        portal::PortalModel,
        portal::NewUser,
        portal::UserChange,
        portal::NewToken,
        portal::CreatedToken,
        lotse_wire::reviews::RewriteReview,
        lotse_wire::reviews::ReviewRequest,
        lotse_wire::portal::Role,
        lotse_wire::portal::Level,
        lotse_wire::portal::Scope,
        lotse_wire::portal::Owner,
        lotse_wire::portal::UserInfo,
        lotse_wire::portal::Collection,
        lotse_wire::portal::Document,
        lotse_wire::portal::TokenInfo,
        lotse_wire::portal::ChatSummary,
        lotse_wire::portal::ChatMessage,
        lotse_wire::portal::Prompt,
        lotse_wire::portal::AuditRecord,
        lotse_wire::portal::Usage,
        lotse_wire::portal::RegisterEntry,
        lotse_wire::portal::PublicCheck,
        lotse_wire::portal::PublicQuestion,
        lotse_wire::portal::Graded,
        insights::InsightsResponse,
        lotse_wire::insights::Topic,
        lotse_wire::insights::Sample,
        lotse_wire::insights::Outcome,
    )),
    tags(
        (name = "citizens", description = "Chat, search and Einfache Sprache for the town's website"),
        (name = "cms", description = "For the town's CMS, with its token: its own text in Einfache Sprache, and the publish webhook"),
        (name = "openai", description = "OpenAI-compatible API for Open WebUI, n8n and the like"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "portal", description = "The staff portal: sign-in (session cookie with X-CSRF-Token, or an API token `Bearer lotse_…`), KI-Kompass, private collections and uploads, cited chat, prompts, audit log, usage, the AI system register, the review of simplified legal texts, and the questions citizens asked that the website could not answer")
    ),
    modifiers(&CmsToken)
)]
pub struct ApiDoc;

/// The bearer token of the CMS routes (`[cms] token`).
struct CmsToken;

impl utoipa::Modify for CmsToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("cms_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("portal_token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "portal_session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(portal::COOKIE),
            )),
        );
    }
}

/// The OpenAPI document: [`ApiDoc`] with the paths of every documented route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(public_routes())
        .merge(portal_routes(0))
        .into_openapi()
}

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
}

/// The documented routes of the public API, each handler once: the router and the OpenAPI
/// paths both come from here. [`app`] adds the undocumented ones and the layers (rate limits,
/// body limit, timeout, CORS).
fn public_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(api::chat))
        .routes(routes!(feedback::feedback))
        .routes(routes!(api::search))
        .routes(routes!(simplify::simplify))
        // a whole CMS page as HTML is larger than a question
        .routes(routes!(cms::simplify_content).layer(DefaultBodyLimit::max(cms::MAX_BODY_BYTES)))
        .routes(routes!(cms::simplify_job))
        .routes(routes!(cms::refresh_page))
        .routes(routes!(api::health))
        .routes(routes!(api::ready))
        .routes(routes!(api::metrics))
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::models))
}

/// The documented routes of the staff portal (same-origin only, no CORS); uploads may be up
/// to `upload_limit` bytes.
fn portal_routes(upload_limit: usize) -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(portal::page))
        .routes(routes!(portal::login))
        .routes(routes!(portal::logout))
        .routes(routes!(portal::whoami))
        .routes(routes!(portal::login_options))
        .routes(routes!(portal::oidc_login))
        .routes(routes!(portal::oidc_callback))
        .routes(routes!(portal::kompass, portal::kompass_check))
        .routes(routes!(portal::collections, portal::create_collection))
        .routes(routes!(portal::delete_collection))
        .routes(routes!(portal::documents))
        .routes(routes!(portal::upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(portal::delete_document))
        .routes(routes!(portal::document_page))
        .routes(routes!(portal::search))
        .routes(routes!(portal::chat))
        .routes(routes!(portal::chats, portal::delete_chats))
        .routes(routes!(portal::chat_detail, portal::delete_chat))
        .routes(routes!(portal::prompts, portal::create_prompt))
        .routes(routes!(portal::delete_prompt))
        .routes(routes!(portal::models))
        .routes(routes!(portal::users, portal::create_user))
        .routes(routes!(portal::change_user))
        .routes(routes!(portal::tokens, portal::create_token))
        .routes(routes!(portal::revoke_token))
        .routes(routes!(portal::audit_log))
        .routes(routes!(portal::usage))
        .routes(routes!(portal::register, portal::put_register))
        .routes(routes!(portal::rewrite_reviews))
        .routes(routes!(portal::rewrite_review, portal::decide_review))
        .routes(routes!(insights::delete_all))
        .routes(routes!(insights::topics))
        .routes(routes!(insights::mark_done, insights::unmark_done))
        .routes(routes!(insights::delete_question))
}

/// The router with all routes and layers.
pub fn app(state: Arc<AppState>) -> Router {
    let limits = &state.config.limits;
    let cors = if state.config.server.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<HeaderValue> = state
            .config
            .server
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION])
            // the widget reads when to ask again (429, 202) and where (202)
            .expose_headers([header::RETRY_AFTER, header::LOCATION])
            .max_age(Duration::from_secs(3600))
    };
    let (api, _) = public_routes().split_for_parts();
    let api = api
        .route("/openapi.json", get(api::openapi))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), limit::rate_limit))
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs.max(1)),
        ))
        .layer(cors);
    // the staff portal: same-origin only (no CORS), uploads up to their own limit
    let upload_limit = state.config.portal.max_upload_bytes.saturating_add(1024);
    let (portal, _) = portal_routes(upload_limit).split_for_parts();
    let portal = portal
        .route("/portal", get(|| async { axum::response::Redirect::permanent("/portal/") }))
        .layer(DefaultBodyLimit::max(limits.body_bytes.max(64 * 1024)))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs.max(1)),
        ));
    let api = api.merge(portal);
    // the widget's files are public and static: any origin may load them, unthrottled
    let widget = Router::new().route("/widget/{file}", get(widget::asset));
    api.merge(widget)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The content security policy of Lotse's own HTML pages (documents, error pages): no
/// scripts, no frames, nothing from elsewhere. The portal's shell sets its own.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Headers every response carries unless its handler set them: `nosniff` everywhere, and for
/// HTML a strict content security policy, no framing and a same-origin referrer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = res.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    if html {
        h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(PAGE_CSP));
        h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
        h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    }
    res
}

/// Count every request in the metrics, by route template and status.
/// Metrics and the access log of every request. The log names the route's template, never
/// the address, query or body (a question is personal data until shown otherwise); the
/// time is to the response's head (a stream goes on after it). Off with
/// `RUST_LOG=...,lotse::access=off`.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let method = req.method().clone();
    let start = Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state.metrics.observe(&route, status, secs);
    tracing::info!(target: "lotse::access", %method, %route, status, ms = (secs * 1000.0).round() as u64, "request");
    resp
}
