//! The citizen API: chat (JSON or server-sent events), search, health, readiness, metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use lotse_answer::{Answer, AnswerEvent};
use lotse_service::answers::{Running, Started};
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::policy;

pub use lotse_wire::chat::TokenEvent;
pub use lotse_wire::ops::{Health, Readiness};
pub use lotse_wire::search::{SearchParams, SearchResponse, SearchResult};

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Ask a question about the town.
///
/// Returns a cited answer from the town's website, or a refusal with the town's contact when
/// the website does not answer it. With `Accept: text/event-stream` the answer streams as
/// server-sent events: `sources` (the numbered sources, first), `quotes` (the best source's
/// own words that hold the answer, `[{n, text, url}]`, before generation starts), `token`
/// (`{"text": ...}`, repeatedly), then `done` (the checked answer, as in the JSON response; show this text
/// in the end) or `error`.
#[utoipa::path(
    post,
    path = "/api/v1/chat",
    tag = "citizens",
    operation_id = "chat",
    request_body = lotse_wire::AnswerRequest,
    responses(
        (status = 200, description = "The answer (JSON), or with `Accept: text/event-stream` a stream of server-sent events: `sources` (a list of `Source`), `quotes` (a list of `Quote`), `token` (`TokenEvent`, repeatedly), then `done` (the `Answer`) or `error` (`ErrorBody`)", content(
            (lotse_wire::Answer = "application/json"),
            (String = "text/event-stream", example = json!("event: sources\ndata: [{\"n\":1,\"url\":\"https://www.example.de/hund\",\"title\":\"Hundesteuer\",\"heading\":\"\",\"deep_link\":\"https://www.example.de/hund\",\"cited\":false}]\n\nevent: token\ndata: {\"text\":\"Die Hundesteuer \"}\n\nevent: done\ndata: {\"id\":\"3f2a9c0b1d4e5f60\",\"answer\":\"Die Hundesteuer beträgt 96 € im Jahr [1].\",\"...\":\"...\"}\n\n")),
        )),
        (status = 400, description = "Empty or too long question, unknown language, malformed JSON", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 422, description = "Missing or mistyped fields", body = ErrorBody),
        (status = 429, description = "Too many questions from this client; see Retry-After", body = ErrorBody),
        (status = 503, description = "Busy or starting; see Retry-After", body = ErrorBody),
    )
)]
pub async fn chat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<lotse_wire::AnswerRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let Json(req) = body?;
    let req = crate::wire::answer_request(req);
    let stream = wants_stream(&headers);
    // for the web team's "Fragen ohne Antwort" (redacted before it is stored: `insights`)
    let question = req.question.clone();
    match state.answers().start(req, started).await? {
        Started::Cached(a) => {
            // a cached answer can be rated too
            state.answers().remember(&a).await;
            crate::insights::record(&state, &question, &a);
            if stream {
                Ok(sse(cached_events(a)))
            } else {
                Ok(Json(crate::wire::answer(&a)).into_response())
            }
        }
        Started::Running(run) => {
            if stream {
                return Ok(sse(live_events(state, run, question)));
            }
            let a = run.wait(state.answers()).await?;
            crate::insights::record(&state, &question, &a);
            Ok(Json(crate::wire::answer(&a)).into_response())
        }
    }
}

fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

fn json_event(name: &str, value: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

fn cached_events(a: Answer) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let events = vec![
        Ok(json_event("sources", &crate::wire::sources(&a.sources))),
        Ok(json_event("quotes", &crate::wire::quotes(&a.quotes))),
        Ok(json_event("token", &TokenEvent { text: a.answer.clone() })),
        Ok(json_event("done", &crate::wire::answer(&a))),
    ];
    stream::iter(events)
}

fn live_events(
    state: Arc<AppState>,
    run: Running,
    question: String,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream::unfold(Some((state, run, question)), |st| async move {
        let (state, mut run, question) = st?;
        let ev = run.next(state.answers()).await?;
        let event = match ev {
            AnswerEvent::Sources(s) => json_event("sources", &crate::wire::sources(&s)),
            AnswerEvent::Quotes(q) => json_event("quotes", &crate::wire::quotes(&q)),
            AnswerEvent::Token(t) => json_event("token", &TokenEvent { text: t }),
            AnswerEvent::Done(a) => {
                crate::insights::record(&state, &question, &a);
                return Some((Ok(json_event("done", &crate::wire::answer(&a))), None));
            }
            AnswerEvent::Error(e) => {
                let err = ApiError::from(e);
                let body = ErrorBody {
                    error: crate::error::ErrorDetail {
                        code: err.code.to_string(),
                        message: err.message,
                    },
                };
                return Some((Ok(json_event("error", &body)), None));
            }
        };
        Some((Ok(event), Some((state, run, question))))
    })
}

/// Search the town's public pages (words and meaning), best sections first, one per page.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "citizens",
    params(SearchParams),
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, description = "Missing or empty q, limit out of range", body = ErrorBody),
        (status = 429, description = "Too many searches from this client", body = ErrorBody),
        (status = 503, description = "Starting", body = ErrorBody),
    )
)]
pub async fn search(
    State(state): State<Arc<AppState>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let Query(p) = params?;
    let hits = state.answers().search(&p.q, p.limit).await?;
    let q = p.q.trim().to_string();
    let results = hits
        .into_iter()
        .map(|h| SearchResult {
            url: h.url,
            title: h.title,
            heading: h.heading,
            deep_link: h.deep_link,
            snippet: h.snippet,
            score: h.score,
        })
        .collect();
    Ok(Json(SearchResponse { query: q, results }))
}

/// The process is alive (not necessarily ready).
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        uptime_secs: state.started.elapsed().as_secs(),
    })
}

/// 200 when the models are loaded and the index is open, else 503.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Readiness>) {
    let Some(a) = state.answerer().filter(|a| a.generation().is_some()) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "starting".into(),
                model: None,
                embedder: None,
                pages: None,
                chunks: None,
                engine_external: None,
                notes: Vec::new(),
            }),
        );
    };
    let stats = a.index().stats().ok();
    let engine = a.generation().map(|g| g.info().clone());
    (
        StatusCode::OK,
        Json(Readiness {
            status: "ready".into(),
            model: Some(a.model_id()),
            embedder: a.embedder().map(|e| e.model_id().to_string()),
            pages: stats.as_ref().map(|s| s.pages),
            chunks: stats.as_ref().map(|s| s.chunks),
            engine_external: engine.as_ref().map(|e| e.external),
            notes: engine.as_ref().and_then(policy::main_engine_note).into_iter().collect(),
        }),
    )
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let generation = state.answerer().and_then(|a| a.generation().cloned());
    let scrape = crate::metrics::Scrape {
        pool: generation
            .as_ref()
            .map(|g| crate::metrics::Pool {
                queue_depth: g.queue_depth(),
                running: g.running(),
                preempted: g.preempted(),
            })
            .unwrap_or_default(),
        answers: state.answers().stats(),
        password_checks: state.login.password_checks(),
        engines: generation.and_then(|g| g.pool_members()).unwrap_or_default(),
    };
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(&scrape),
    )
        .into_response()
}

/// The OpenAPI document.
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi_json(),
    )
        .into_response()
}

/// Unknown paths: 404 in German.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Diese Adresse gibt es nicht. Die Schnittstelle ist unter /openapi.json beschrieben.",
    )
}

