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

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use lotse_answer::Answerer;
use lotse_service::answers::{AnswerSettings, Answers};
use lotse_service::documents::Documents;
use lotse_service::refresh::PageRefresh;
use lotse_service::staff_chat::StaffChat;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use config::Config;
pub use serving::{serve, serve_split, shutdown_signal};

/// Shared state of the running server.
pub struct AppState {
    pub config: Config,
    /// The citizens' answers: the answerer in use, the answer cache, the records for ratings.
    answers: Answers,
    /// The services built from the answerer, the rewrite service and the portal; rebuilt
    /// whenever one of them is set, so none keeps an answerer that was swapped out.
    services: RwLock<Services>,
    pub metrics: metrics::Metrics,
    pub(crate) limits: limit::RateLimits,
    /// One page refresh (CMS webhook), upload or delete at a time.
    pub(crate) refresh_lock: Arc<tokio::sync::Mutex<()>>,
    pub started: Instant,
    /// The citizens' widget files (`/widget/*`).
    pub(crate) widget: widget::WidgetAssets,
    feedback: RwLock<Option<Arc<feedback::FeedbackStore>>>,
    /// The portal's sign-in guard (rate, failure tallies, argon2 slots).
    pub login: login::LoginGuard,
}

/// What is set while the server starts, and the services built from it.
#[derive(Default)]
struct Services {
    simplify: Option<Arc<simplify::SimplifyService>>,
    portal: Option<Arc<portal::Portal>>,
    /// Always there (while starting it answers "starting").
    page_refresh: Option<Arc<PageRefresh>>,
    /// There once the portal is.
    documents: Option<Arc<Documents>>,
    /// There once the portal is.
    staff_chat: Option<Arc<StaffChat>>,
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
        let answers = Answers::new(AnswerSettings {
            cache_entries: config.limits.answer_cache_entries,
            cache_ttl_secs: config.limits.answer_cache_ttl_secs,
        });
        let limits = limit::RateLimits::new(&config.limits);
        let login = login::LoginGuard::new(&config.portal);
        let widget = widget::WidgetAssets::from_config(&config);
        let state = AppState {
            config,
            answers,
            services: RwLock::new(Services::default()),
            metrics: metrics::Metrics::default(),
            limits,
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
            started: Instant::now(),
            widget,
            feedback: RwLock::new(None),
            login,
        };
        state.update(|_| {});
        Arc::new(state)
    }

    /// Change what is set (under the write lock) and build the services again from it, so
    /// that two setters at once cannot leave a service with an old part.
    fn update(&self, change: impl FnOnce(&mut Services)) {
        let mut s = self.services.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut s);
        let answerer = self.answers.answerer();
        s.page_refresh = Some(Arc::new(PageRefresh::new(
            answerer.clone(),
            s.simplify.clone(),
            self.refresh_lock.clone(),
            std::env::var("LOTSE_CONTACT_URL").ok(),
        )));
        s.documents = s.portal.as_ref().map(|p| {
            Arc::new(Documents {
                store: p.store.clone(),
                answerer: answerer.clone(),
                max_upload_bytes: self.config.portal.max_upload_bytes,
                writer: self.refresh_lock.clone(),
            })
        });
        s.staff_chat = s.portal.as_ref().map(|p| {
            Arc::new(StaffChat {
                store: p.store.clone(),
                answerer: answerer.clone(),
                externals: p.externals.clone(),
                rules: p.rules.clone(),
                audit_content: self.config.portal.audit_content,
            })
        });
    }

    fn services(&self) -> std::sync::RwLockReadGuard<'_, Services> {
        self.services.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Models are loaded and the index is open: start answering.
    pub fn set_answerer(&self, answerer: Arc<Answerer>) {
        if let Some(note) = answerer.generation().and_then(|g| policy::main_engine_note(g.info())) {
            tracing::warn!("{note}");
        }
        self.update(|_| self.answers.set_answerer(answerer));
    }

    /// The answerer, when ready.
    pub fn answerer(&self) -> Option<Arc<Answerer>> {
        self.answers.answerer()
    }

    /// The citizens' answers (cache, ids, records for ratings).
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// Plain-language rewrites are available (and their worker runs).
    pub fn set_simplify(&self, service: Arc<simplify::SimplifyService>) {
        self.update(|s| s.simplify = Some(service));
    }

    /// The rewrite service, when ready.
    pub fn simplify(&self) -> Option<Arc<simplify::SimplifyService>> {
        self.services().simplify.clone()
    }

    /// The CMS's page refresh, sharing the one-writer lock with uploads.
    pub fn page_refresh(&self) -> Arc<PageRefresh> {
        // built in `new`; the fallback is never taken (and runs without the services lock)
        let built = self.services().page_refresh.clone();
        built.unwrap_or_else(|| {
            Arc::new(PageRefresh::new(self.answerer(), self.simplify(), self.refresh_lock.clone(), None))
        })
    }

    /// Uploads and deletes of staff documents, when the portal is set up.
    pub fn documents(&self) -> Option<Arc<Documents>> {
        self.services().documents.clone()
    }

    /// The staff chat, when the portal is set up.
    pub fn staff_chat(&self) -> Option<Arc<StaffChat>> {
        self.services().staff_chat.clone()
    }

    /// Store citizens' ratings of answers (`POST /api/v1/feedback`).
    pub fn set_feedback(&self, store: Arc<feedback::FeedbackStore>) {
        // replicas share PostgreSQL: the records that ratings look up go there too, so a
        // rating sent to another replica finds its answer (one process on SQLite keeps them
        // in memory and writes nothing per answer)
        let db = store.database();
        if db.backend() == lotse_portal::store::Backend::Postgres {
            self.answers.share_records(db);
        }
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
        self.update(|s| s.portal = Some(p));
    }

    /// The staff portal, when it is set up and switched on.
    pub fn portal(&self) -> Option<Arc<portal::Portal>> {
        if !self.config.portal.enabled {
            return None;
        }
        self.services().portal.clone()
    }

    /// Whether `/widget/lotse.js` is there to serve.
    pub fn widget_built(&self) -> bool {
        self.widget.is_built()
    }

    /// See new crawls: reload the index; when its content changed, drop cached answers.
    pub async fn refresh_index(&self) {
        self.answers.refresh_index().await;
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
        lotse_wire::openai::RequestMessage,
        lotse_wire::openai::MessageContent,
        lotse_wire::openai::ContentPart,
        lotse_wire::openai::StreamOptions,
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

/// The routes of staff and operations, kept off the public listener when
/// `[server] internal_addr` gives them their own.
const INTERNAL_PREFIXES: [&str; 4] = ["/portal", "/v1/", "/metrics", "/openapi.json"];

/// The citizens' routes only (`/api/v1`, `/widget`, `/health`, `/ready`): [`app`] with the
/// staff and operations routes answering 404, for the public listener when they have a
/// listener of their own.
pub fn public_app(state: Arc<AppState>) -> Router {
    app(state).layer(middleware::from_fn(public_only))
}

async fn public_only(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if INTERNAL_PREFIXES.iter().any(|p| path == p.trim_end_matches('/') || path.starts_with(p)) {
        return axum::response::IntoResponse::into_response(api::not_found().await);
    }
    next.run(req).await
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
