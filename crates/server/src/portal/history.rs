//! The signed-in user's chat history.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use lotse_portal::auth::Action;
use lotse_wire::portal::ChatSummary;

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::ChatDetail;
use crate::error::{ApiError, ErrorBody};
use crate::wire::portal as wire;
use super::context::{Ctx, blocking, run_blocking, not_found, store_error};

// ---- chat history ------------------------------------------------------------------------

#[utoipa::path(get, path = "/portal/api/chats", tag = "portal",
    responses((status = 200, body = [ChatSummary]), (status = 401, body = ErrorBody)))]
pub async fn chats(c: Ctx) -> Result<Json<Vec<ChatSummary>>, ApiError> {
    c.allow(&Action::Chat)?;
    let (store, uid) = (c.store(), c.user()?.id);
    let chats = blocking(move || store.chats(uid).map_err(store_error)).await?;
    Ok(Json(chats.into_iter().map(wire::chat_summary).collect()))
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
pub async fn chat_detail(Path(id): Path<i64>, c: Ctx) -> Result<Json<ChatDetail>, ApiError> {
    c.allow(&Action::Chat)?;
    own_chat(&c, id).await?;
    let store = c.store();
    let messages = blocking(move || store.messages(id).map_err(store_error)).await?;
    Ok(Json(ChatDetail { id, messages: messages.into_iter().map(wire::chat_message).collect() }))
}

#[utoipa::path(delete, path = "/portal/api/chats/{id}", tag = "portal", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_chat(Path(id): Path<i64>, c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    own_chat(&c, id).await?;
    let store = c.store();
    run_blocking(move || store.delete_chat(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the whole history of the signed-in user.
#[utoipa::path(delete, path = "/portal/api/chats", tag = "portal",
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn delete_chats(c: Ctx) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    let (store, uid) = (c.store(), c.user()?.id);
    run_blocking(move || store.delete_chats_of(uid).map(|_| ())).await?;
    Ok(StatusCode::NO_CONTENT)
}
