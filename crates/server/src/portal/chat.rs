//! Search and chat over the chosen collections (and the website).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use lotse_core::{CollectionId, CollectionScope};
use lotse_portal::auth::Action;
use lotse_portal::store::Collection;
use serde::Deserialize;
use lotse_service::staff_chat::Question;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::{PortalHit, PortalChatRequest, PortalChatResponse};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use super::collections::load_collection;
use super::context::{Ctx, blocking, json_body};

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

/// Search the chosen collections (and the website).
#[utoipa::path(get, path = "/portal/api/search", tag = "portal", operation_id = "portal_search", params(SearchParams),
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

/// A cited answer from the chosen collections (and the website), stored in the user's
/// history. External models are refused for private collections and for questions with
/// personal data; the reason is in the error message.
#[utoipa::path(post, path = "/portal/api/chat", tag = "portal", operation_id = "portal_chat", request_body = PortalChatRequest,
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
    c.user()?;
    let (scope, cols) = scope_for(&c, &req.collections, req.website).await?;
    let col_names: Vec<String> = cols.iter().map(|x| x.title.clone()).collect();
    let staff_chat = state.staff_chat().ok_or_else(ApiError::starting)?;
    let q = Question { question: req.question, model: req.model, chat_id: req.chat_id, lang: req.lang };
    let (chat_id, answer) = staff_chat.ask(&c.principal, &scope, col_names, q).await?;
    Ok(Json(PortalChatResponse { chat_id, answer: crate::wire::answer(&answer) }))
}
