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
//! - The OpenAPI document is generated from the handlers (`ApiDoc`); `openapi/openapi.json`
//!   is checked against it by a test.

pub mod api;
pub mod cms;
pub mod config;
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
mod serving;
pub mod simplify;
pub mod widget;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::handler::Handler;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use lotse_answer::{Answer, Answerer};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;

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

/// The OpenAPI description of the whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lotse API",
        description = "Cited answers from the town's website, search, pages in Einfache Sprache, and an OpenAI-compatible face. All answers and rewrites are labelled \"KI-generiert\".",
        license(name = "Apache-2.0")
    ),
    paths(
        api::chat,
        api::search,
        simplify::simplify,
        cms::simplify_content,
        cms::simplify_job,
        cms::refresh_page,
        feedback::feedback,
        api::health,
        api::ready,
        api::metrics,
        openai::chat_completions,
        openai::models,
        portal::page,
        portal::login,
        portal::logout,
        portal::whoami,
        portal::login_options,
        portal::oidc_login,
        portal::oidc_callback,
        portal::kompass,
        portal::kompass_check,
        portal::collections,
        portal::create_collection,
        portal::delete_collection,
        portal::documents,
        portal::upload,
        portal::delete_document,
        portal::document_page,
        portal::search,
        portal::chat,
        portal::chats,
        portal::chat_detail,
        portal::delete_chat,
        portal::delete_chats,
        portal::prompts,
        portal::create_prompt,
        portal::delete_prompt,
        portal::models,
        portal::users,
        portal::create_user,
        portal::change_user,
        portal::tokens,
        portal::create_token,
        portal::revoke_token,
        portal::audit_log,
        portal::usage,
        portal::register,
        portal::put_register,
        portal::rewrite_reviews,
        portal::rewrite_review,
        portal::decide_review,
        insights::topics,
        insights::mark_done,
        insights::unmark_done,
        insights::delete_question,
        insights::delete_all,
    ),
    components(schemas(
        lotse_answer::AnswerRequest,
        lotse_answer::Answer,
        lotse_answer::Source,
        lotse_answer::Quote,
        lotse_answer::AskedKind,
        lotse_answer::Timings,
        lotse_answer::Turn,
        lotse_answer::Speaker,
        lotse_answer::Lang,
        lotse_simplify::SimplifiedPage,
        lotse_simplify::BlockResult,
        lotse_simplify::BlockKind,
        lotse_simplify::BlockStatus,
        lotse_simplify::ReadabilityChange,
        lotse_simplify::Readability,
        lotse_simplify::Summary,
        lotse_simplify::ReviewNote,
        lotse_simplify::ReviewStatus,
        lotse_simplify::ReviewDecision,
        lotse_simplify::BlockCorrection,
        lotse_simplify::Correction,
        lotse_simplify::LegalTexts,
        simplify::Pending,
        simplify::JobState,
        cms::ContentRequest,
        cms::RefreshRequest,
        cms::RefreshResponse,
        cms::RefreshStatus,
        feedback::FeedbackRequest,
        api::SearchResponse,
        api::SearchResult,
        api::Health,
        api::Readiness,
        api::TokenEvent,
        error::ErrorBody,
        error::ErrorDetail,
        openai::CompletionRequest,
        openai::CompletionMessage,
        openai::Completion,
        openai::CompletionChoice,
        openai::Usage,
        openai::ModelList,
        openai::ModelEntry,
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
        portal::RewriteReview,
        portal::ReviewRequest,
        lotse_portal::auth::Role,
        lotse_portal::auth::Level,
        lotse_portal::auth::Scope,
        lotse_portal::auth::Owner,
        lotse_portal::auth::UserInfo,
        lotse_portal::store::Collection,
        lotse_portal::store::Document,
        lotse_portal::store::TokenInfo,
        lotse_portal::store::ChatSummary,
        lotse_portal::store::ChatMessage,
        lotse_portal::store::Prompt,
        lotse_portal::store::AuditRecord,
        lotse_portal::store::Usage,
        lotse_portal::store::RegisterEntry,
        lotse_portal::kompass::PublicCheck,
        lotse_portal::kompass::PublicQuestion,
        lotse_portal::kompass::Graded,
        insights::InsightsResponse,
        lotse_portal::insights::Topic,
        lotse_portal::insights::Sample,
        lotse_portal::insights::Outcome,
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

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        + "\n"
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
    let api = Router::new()
        .route("/api/v1/chat", post(api::chat))
        .route("/api/v1/feedback", post(feedback::feedback))
        .route("/api/v1/search", get(api::search))
        .route(
            "/api/v1/simplify",
            get(simplify::simplify)
                // a whole CMS page as HTML is larger than a question
                .post(cms::simplify_content.layer(DefaultBodyLimit::max(cms::MAX_BODY_BYTES))),
        )
        .route("/api/v1/simplify/jobs/{id}", get(cms::simplify_job))
        .route("/api/v1/pages/refresh", post(cms::refresh_page))
        .route("/health", get(api::health))
        .route("/ready", get(api::ready))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
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
    let portal_routes = Router::new()
        .route("/portal/", get(portal::page))
        .route("/portal", get(|| async { axum::response::Redirect::permanent("/portal/") }))
        .route("/portal/api/login", post(portal::login))
        .route("/portal/api/logout", post(portal::logout))
        .route("/portal/api/me", get(portal::whoami))
        .route("/portal/api/login-options", get(portal::login_options))
        .route("/portal/api/oidc/login", get(portal::oidc_login))
        .route("/portal/api/oidc/callback", get(portal::oidc_callback))
        .route("/portal/api/kompass", get(portal::kompass).post(portal::kompass_check))
        .route("/portal/api/collections", get(portal::collections).post(portal::create_collection))
        .route("/portal/api/collections/{id}", delete(portal::delete_collection))
        .route("/portal/api/collections/{id}/documents", get(portal::documents))
        .route(
            "/portal/api/collections/{id}/documents/{name}",
            put(portal::upload.layer(DefaultBodyLimit::max(upload_limit))),
        )
        .route("/portal/api/documents/{id}", delete(portal::delete_document))
        .route("/portal/dokumente/{id}", get(portal::document_page))
        .route("/portal/api/search", get(portal::search))
        .route("/portal/api/chat", post(portal::chat))
        .route("/portal/api/chats", get(portal::chats).delete(portal::delete_chats))
        .route("/portal/api/chats/{id}", get(portal::chat_detail).delete(portal::delete_chat))
        .route("/portal/api/prompts", get(portal::prompts).post(portal::create_prompt))
        .route("/portal/api/prompts/{id}", delete(portal::delete_prompt))
        .route("/portal/api/models", get(portal::models))
        .route("/portal/api/admin/users", get(portal::users).post(portal::create_user))
        .route("/portal/api/admin/users/{id}", patch(portal::change_user))
        .route("/portal/api/admin/tokens", get(portal::tokens).post(portal::create_token))
        .route("/portal/api/admin/tokens/{id}", delete(portal::revoke_token))
        .route("/portal/api/admin/audit", get(portal::audit_log))
        .route("/portal/api/admin/usage", get(portal::usage))
        .route("/portal/api/register", get(portal::register).put(portal::put_register))
        .route("/portal/api/simplify/reviews", get(portal::rewrite_reviews))
        .route("/portal/api/simplify/reviews/{key}", get(portal::rewrite_review).post(portal::decide_review))
        .route("/portal/api/insights", delete(insights::delete_all))
        .route("/portal/api/insights/topics", get(insights::topics))
        .route("/portal/api/insights/topics/{id}/done", post(insights::mark_done).delete(insights::unmark_done))
        .route("/portal/api/insights/questions/{id}", delete(insights::delete_question))
        .layer(DefaultBodyLimit::max(limits.body_bytes.max(64 * 1024)))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(limits.request_timeout_secs.max(1)),
        ));
    let api = api.merge(portal_routes);
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
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .observe(&route, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}
