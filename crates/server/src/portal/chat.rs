//! Search and chat over the chosen collections (and the website).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use lotse_answer::{Answer, AnswerRequest, Answerer, Turn};
use lotse_core::{CollectionId, CollectionScope};
use lotse_portal::auth::{self, Action};
use lotse_portal::store::{self, AuditEntry, ChatMessage, Collection};
use lotse_portal::pii;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::policy::{self, Outgoing, user_turns};
use super::collections::load_collection;
use super::context::{Ctx, audit, audit_full, blocking, json_body, not_found, store_error};
use super::LOCAL_MODEL;
use super::models::main_label;

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
    Query(q): Query<SearchParams>,
    c: Ctx,
) -> Result<Json<Vec<PortalHit>>, ApiError> {
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
    c: Ctx,
    body: Result<Json<PortalChatRequest>, JsonRejection>,
) -> Result<Json<PortalChatResponse>, ApiError> {
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
