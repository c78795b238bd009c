//! "Fragen ohne Antwort" (issue 35): what citizens asked and the website could not answer,
//! for the web team.
//!
//! Every answer of the citizen chat (`POST /api/v1/chat`) is recorded after it was handed
//! out, off the request's path: the day, the language, the outcome, the cited pages and the
//! question as [`lotse_portal::pii::redact_de`] left it (names, addresses, phone numbers, e-mail addresses,
//! IBANs, file numbers ... replaced by placeholders), with the redacted question's embedding
//! when the server has an embedder. Never the client's address, a session or a user id; no
//! question text in logs. A thumbs-down on the answer (`POST /api/v1/feedback`) turns its
//! record's outcome into `rated_down` (the link from answer id to record lives in memory for a
//! day, and with PostgreSQL in the database too, so another replica finds it). The records are kept in the portal's database (no portal, nothing recorded)
//! and deleted after `[insights] retention_days`.
//!
//! Outcomes: `refused` (the website does not answer; the town's contact was named),
//! `hedged` (a pointer to the best page only, or statements without a source: `fallback` or
//! `flagged`), `answered` (anything else, extractive answers included), `rated_down`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_answer::Answer;
use lotse_portal::auth::Action;
use lotse_portal::insights::{self, Topic, TopicSettings};
use lotse_portal::store::AuditEntry;
use serde::Deserialize;

pub use lotse_wire::insights::InsightsResponse;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::portal::{Ctx, audit_full, blocking, run_blocking, csv_response, not_found, store_error};

/// At most this many questions of a window are grouped (the newest): grouping compares each
/// question with every topic so far, so this bounds a request to a few seconds.
const MAX_QUESTIONS: usize = 5_000;

pub use lotse_service::insights::outcome;
use lotse_service::insights::today;

/// Record a citizen's question and how it went (when `[insights]` is on and the portal is
/// there). Returns at once; the work runs on the blocking pool.
pub fn record(state: &Arc<AppState>, question: &str, answer: &Answer) {
    if !state.config.insights.enabled || state.portal().is_none() {
        return;
    }
    // announced before the answer goes out: a thumbs-down waits for the record
    state.answers().insight_recording(&answer.id);
    let (state, question, answer) = (state.clone(), question.to_string(), answer.clone());
    tokio::spawn(async move {
        let store = state.portal().map(|p| p.store.clone());
        lotse_service::insights::record(state.config.insights.enabled, store, state.answers(), &question, &answer).await;
        state.answers().insight_recorded(&answer.id);
    });
}

/// Delete questions past their retention (hourly).
pub async fn expire(state: &AppState) {
    let Some(portal) = state.portal() else { return };
    let days = i64::from(state.config.insights.retention_days.max(1));
    let before = today() - days + 1;
    match tokio::task::spawn_blocking(move || portal.store.expire_insights(before)).await {
        Ok(Ok(n)) if n > 0 => tracing::info!(questions = n, "expired citizen questions deleted"),
        Ok(Ok(_)) => {}
        _ => tracing::warn!("cannot expire citizen questions"),
    }
}

// ---- the portal's API ---------------------------------------------------------------------

fn switched_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "insights_disabled",
        "Die Auswertung der Fragen ist auf diesem Server ausgeschaltet ([insights] enabled = false).",
    )
}

/// Which topics.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TopicParams {
    /// Days looked at, ending today: 1 to 366 (default 30).
    pub days: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

fn settings(state: &AppState, days: i64) -> TopicSettings {
    let c = &state.config.insights;
    let town = state.answerer().map(|a| a.town().to_string()).unwrap_or_default();
    TopicSettings { similarity: c.similarity, min_questions: c.min_questions.max(2) as usize, days, town }
}

async fn load_topics(state: &AppState, c: &crate::portal::Ctx, days: i64) -> Result<Vec<Topic>, ApiError> {
    let s = settings(state, days);
    let store = c.store();
    blocking(move || {
        let today = today();
        let qs = store.insights_since(today - days + 1, MAX_QUESTIONS).map_err(store_error)?;
        Ok(insights::topics(&qs, &s, today))
    })
    .await
}

/// "Fragen ohne Antwort": topics of what citizens asked and the website did not answer
/// (editors and admins). With `format=csv` a spreadsheet (formulas defused; audited).
#[utoipa::path(get, path = "/portal/api/insights/topics", tag = "portal", params(TopicParams),
    responses((status = 200, body = InsightsResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "Switched off", body = ErrorBody)))]
pub async fn topics(State(state): State<Arc<AppState>>, Query(p): Query<TopicParams>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ViewInsights)?;
    if !state.config.insights.enabled {
        return Err(switched_off());
    }
    let days = p.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request("days", "Bitte wählen Sie einen Zeitraum von 1 bis 366 Tagen."));
    }
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::bad_request("format", "Als Format gibt es „json“ und „csv“.")),
    };
    let topics = load_topics(&state, &c, days).await?;
    if csv {
        audit_full(&c, AuditEntry { action: "insights_export".into(), outcome: "ok".into(), content: Some(format!("{} topics, {days} days", topics.len())), ..AuditEntry::default() }).await;
        let mut r = csv_response("fragen-ohne-antwort.csv", insights::topics_csv(&topics));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(r);
    }
    let body = InsightsResponse {
        days,
        min_questions: settings(&state, days).min_questions as i64,
        retention_days: i64::from(state.config.insights.retention_days.max(1)),
        topics: topics.into_iter().map(crate::wire::portal::topic).collect(),
    };
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Which topic list a mark refers to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MarkParams {
    /// The days of the list the topic was shown in (default 30).
    pub days: Option<i64>,
}

async fn mark(state: Arc<AppState>, c: Ctx, id: i64, days: Option<i64>, done: bool) -> Result<StatusCode, ApiError> {
    c.allow(&Action::ViewInsights)?;
    if !state.config.insights.enabled {
        return Err(switched_off());
    }
    let days = days.unwrap_or(30).clamp(1, 366);
    let topic = load_topics(&state, &c, days).await?.into_iter().find(|t| t.id == id);
    let Some(topic) = topic else { return Err(not_found("topic")) };
    let store = c.store();
    let members = topic.members.clone();
    run_blocking(move || store.mark_insights_done(&members, done.then(today))).await?;
    let action = if done { "insights_done" } else { "insights_undone" };
    audit_full(&c, AuditEntry { action: action.into(), outcome: "ok".into(), content: Some(format!("topic {}, {} questions", topic.id, topic.members.len())), ..AuditEntry::default() }).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark a topic "erledigt": the website was changed. Questions asked from today on show
/// whether the topic now gets answers.
#[utoipa::path(post, path = "/portal/api/insights/topics/{id}/done", tag = "portal", params(("id" = i64, Path, description = "The topic's id"), MarkParams),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mark_done(State(state): State<Arc<AppState>>, Path(id): Path<i64>, Query(p): Query<MarkParams>, c: Ctx) -> Result<StatusCode, ApiError> {
    mark(state, c, id, p.days, true).await
}

/// Take the "erledigt" mark off a topic.
#[utoipa::path(delete, path = "/portal/api/insights/topics/{id}/done", tag = "portal", params(("id" = i64, Path, description = "The topic's id"), MarkParams),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unmark_done(State(state): State<Arc<AppState>>, Path(id): Path<i64>, Query(p): Query<MarkParams>, c: Ctx) -> Result<StatusCode, ApiError> {
    mark(state, c, id, p.days, false).await
}

/// Delete one question (audited).
#[utoipa::path(delete, path = "/portal/api/insights/questions/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_question(State(state): State<Arc<AppState>>, Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::ViewInsights)?;
    let store = c.store();
    run_blocking(move || store.delete_insight(id)).await?;
    // a later thumbs-down must not reach a row that reuses the id
    state.answers().forget_insight_row(id).await;
    audit_full(&c, AuditEntry { action: "insights_delete".into(), outcome: "ok".into(), content: Some(format!("question {id}")), ..AuditEntry::default() }).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete every recorded question (audited). Works also when `[insights]` is switched off.
#[utoipa::path(delete, path = "/portal/api/insights", tag = "portal",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_all(State(state): State<Arc<AppState>>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::ViewInsights)?;
    let store = c.store();
    let n = run_blocking(move || store.delete_all_insights()).await?;
    // ids start again after an empty table: forget which answer had which row
    state.answers().forget_insight_rows().await;
    audit_full(&c, AuditEntry { action: "insights_delete_all".into(), outcome: "ok".into(), content: Some(format!("{n} questions")), ..AuditEntry::default() }).await;
    Ok(StatusCode::NO_CONTENT)
}
