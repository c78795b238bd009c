//! The citizen API: chat (JSON or server-sent events), search, health, readiness, metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use lotse_answer::{Answer, AnswerEvent, AnswerRequest, AnswerRun, Answerer, normalise};
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::policy::{self, Outgoing};

pub use lotse_wire::chat::TokenEvent;
pub use lotse_wire::ops::{Health, Readiness};
pub use lotse_wire::search::{SearchParams, SearchResponse, SearchResult};

/// How an answer was started: from the cache or by the model.
pub(crate) enum Started {
    Cached(Arc<Answer>),
    Running { run: AnswerRun, key: String },
}

/// Validate, look in the cache, else find evidence and queue the generation.
pub(crate) async fn start_answer(
    state: &Arc<AppState>,
    req: AnswerRequest,
) -> Result<Started, ApiError> {
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    let lang = Answerer::validate(&req)?;
    let history: Vec<String> = req
        .history
        .iter()
        .map(|t| format!("{:?}:{}", t.role, normalise(&t.content)))
        .collect();
    let key = format!(
        "{}\u{1}{}\u{1}{}\u{1}{}",
        state.content_version(),
        lang.code(),
        normalise(&req.question),
        history.join("\u{2}")
    );
    if let Some(hit) = state.answers.get(&key).await {
        state.metrics.answer_cache_hits.fetch_add(1, Ordering::Relaxed);
        return Ok(Started::Cached(hit));
    }
    state.metrics.answer_cache_misses.fetch_add(1, Ordering::Relaxed);
    // personal data in a citizen's question never goes to an external engine: the answer
    // is then the source's own words, without the model (`policy`)
    let keep_local = answerer.generation().is_some_and(|g| {
        let scope = lotse_core::CollectionScope::public_website();
        let out = Outgoing::chat(&scope, &req.question, crate::policy::user_turns(&req.history));
        policy::may_send(g.info(), &out).is_err()
    });
    let mut req = req;
    if keep_local {
        // searched without the personal data (no page answers a name); never sent anywhere
        req.question = policy::without_personal_data(&req.question);
        for t in &mut req.history {
            t.content = policy::without_personal_data(&t.content);
        }
    }
    let a2 = answerer.clone();
    let prepared = tokio::task::spawn_blocking(move || a2.prepare(&req))
        .await
        .map_err(|e| ApiError::from(lotse_answer::AnswerError::Model(e.to_string())))??;
    if keep_local {
        let run = answerer.start_without_model(prepared, "personal data kept from the external engine");
        return Ok(Started::Running { run, key });
    }
    let run = answerer.start(prepared).map_err(|e| {
        if e == lotse_answer::AnswerError::Busy {
            state.metrics.busy.fetch_add(1, Ordering::Relaxed);
        }
        ApiError::from(e)
    })?;
    Ok(Started::Running { run, key })
}

/// Record a finished answer: metrics, and the cache (unless it needs a human look).
/// The id of an answer: the same question, text and model give the same id.
fn answer_id(key: &str, answer: &Answer) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [key, answer.model.as_str(), answer.answer.as_str()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Remember an answer that is handed out, for its rating.
pub(crate) async fn remember(state: &Arc<AppState>, answer: &Answer) {
    if !answer.id.is_empty() {
        state
            .answer_records
            .insert(answer.id.clone(), Arc::new(crate::feedback::AnswerRecord::of(answer)))
            .await;
    }
}

/// A new answer is done: give it its id, count it, cache it.
pub(crate) async fn finished(state: &Arc<AppState>, key: &str, answer: &mut Answer) {
    answer.id = answer_id(key, answer);
    remember(state, answer).await;
    let m = &state.metrics;
    m.prompt_tokens
        .fetch_add(answer.timings.prompt_tokens as u64, Ordering::Relaxed);
    m.completion_tokens
        .fetch_add(answer.timings.completion_tokens as u64, Ordering::Relaxed);
    if answer.refused {
        m.refusals.fetch_add(1, Ordering::Relaxed);
    }
    if !answer.flagged {
        state
            .answers
            .insert(key.to_string(), Arc::new(answer.clone()))
            .await;
    }
}

/// Wait for a running answer's result (the JSON responses) and record it.
pub(crate) async fn wait_answer(
    state: &Arc<AppState>,
    run: &mut AnswerRun,
    key: &str,
) -> Result<Answer, ApiError> {
    while let Some(ev) = run.events.recv().await {
        match ev {
            AnswerEvent::Done(mut a) => {
                finished(state, key, &mut a).await;
                return Ok(*a);
            }
            AnswerEvent::Error(e) => return Err(e.into()),
            AnswerEvent::Sources(_) | AnswerEvent::Quotes(_) | AnswerEvent::Token(_) => {}
        }
    }
    Err(lotse_answer::AnswerError::Model("answer ended early".into()).into())
}

/// A cached answer as served now.
pub(crate) fn from_cache(a: &Answer, started: Instant) -> Answer {
    let mut a = a.clone();
    a.timings.cached = true;
    a.timings.first_token_ms = None;
    a.timings.retrieval_ms = 0;
    a.timings.total_ms = started.elapsed().as_millis() as u64;
    a
}

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
    match start_answer(&state, req).await? {
        Started::Cached(a) => {
            let a = from_cache(&a, started);
            remember(&state, &a).await;
            crate::insights::record(&state, &question, &a);
            if stream {
                Ok(sse(cached_events(a)))
            } else {
                Ok(Json(crate::wire::answer(&a)).into_response())
            }
        }
        Started::Running { mut run, key } => {
            if stream {
                return Ok(sse(live_events(state, run, key, question)));
            }
            let a = wait_answer(&state, &mut run, &key).await?;
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
    run: AnswerRun,
    key: String,
    question: String,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream::unfold(Some((state, run, key, question)), |st| async move {
        let (state, mut run, key, question) = st?;
        let ev = run.events.recv().await?;
        let event = match ev {
            AnswerEvent::Sources(s) => json_event("sources", &crate::wire::sources(&s)),
            AnswerEvent::Quotes(q) => json_event("quotes", &crate::wire::quotes(&q)),
            AnswerEvent::Token(t) => json_event("token", &TokenEvent { text: t }),
            AnswerEvent::Done(mut a) => {
                finished(&state, &key, &mut a).await;
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
        Some((Ok(event), Some((state, run, key, question))))
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
    let q = p.q.trim().to_string();
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "empty_query",
            "Bitte geben Sie einen Suchbegriff ein.",
        ));
    }
    if q.chars().count() > lotse_answer::MAX_QUESTION_CHARS {
        return Err(ApiError::bad_request(
            "query_too_long",
            "Der Suchbegriff ist zu lang. Bitte verwenden Sie höchstens 1000 Zeichen.",
        ));
    }
    let limit = p.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "Die Anzahl der Ergebnisse (limit) muss zwischen 1 und 50 liegen.",
        ));
    }
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    let q2 = q.clone();
    let hits = tokio::task::spawn_blocking(move || answerer.search(&q2, limit * 3))
        .await
        .map_err(|e| ApiError::from(lotse_answer::AnswerError::Index(e.to_string())))??;
    let mut seen = std::collections::HashSet::new();
    let results = hits
        .into_iter()
        .filter(|h| seen.insert(h.url.clone()))
        .take(limit)
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
    let pool = state
        .answerer()
        .and_then(|a| a.generation().map(|g| crate::metrics::Pool {
            queue_depth: g.queue_depth(),
            running: g.running(),
            preempted: g.preempted(),
        }))
        .unwrap_or_default();
    let mut body = state.metrics.render(&pool, state.answers.entry_count());
    body.push_str(&format!(
        "# HELP lotse_portal_password_checks_total Portal passwords checked with argon2.\n# TYPE lotse_portal_password_checks_total counter\nlotse_portal_password_checks_total {}\n",
        state.login.password_checks()
    ));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
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

