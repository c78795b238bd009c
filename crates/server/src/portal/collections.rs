//! Collections and their documents: list, create, delete, upload.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lotse_portal::auth::Action;
use lotse_portal::store::{Collection, Document};
use lotse_service::documents::{DocumentError, Documents};

// the bodies of these routes (lotse_wire: shared with the portal page)
pub use lotse_wire::portal::NewCollection;
use crate::AppState;
use crate::wire::portal as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, audit, blocking, run_blocking, json_body, not_found, store_error};

// ---- collections and documents -----------------------------------------------------------

/// Collections the caller may read (admins: all).
#[utoipa::path(get, path = "/portal/api/collections", tag = "portal",
    responses((status = 200, body = [lotse_wire::portal::Collection]), (status = 401, body = ErrorBody)))]
pub async fn collections(c: Ctx) -> Result<Json<Vec<lotse_wire::portal::Collection>>, ApiError> {
    c.allow(&Action::Portal)?;
    let store = c.store();
    let all = run_blocking(move || store.collections()).await?;
    Ok(Json(
        all.into_iter()
            .filter(|col| c.allow(&Action::ReadCollection(&col.owner)).is_ok())
            .map(wire::collection)
            .collect(),
    ))
}

#[utoipa::path(post, path = "/portal/api/collections", tag = "portal", request_body = NewCollection,
    responses((status = 201, body = lotse_wire::portal::Collection), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_collection(
    c: Ctx,
    body: Result<Json<NewCollection>, JsonRejection>,
) -> Result<(StatusCode, Json<lotse_wire::portal::Collection>), ApiError> {
    c.allow(&Action::Portal)?;
    let req = json_body(body)?;
    let owner = wire::owner_in(req.owner);
    c.allow(&Action::CreateCollection(&owner))?;
    let uid = c.user()?.id;
    let store = c.store();
    let col = blocking(move || store.create_collection(&req.title, &owner, Some(uid)).map_err(store_error)).await?;
    Ok((StatusCode::CREATED, Json(wire::collection(col))))
}

pub(super) async fn load_collection(c: &Ctx, id: i64) -> Result<Collection, ApiError> {
    let store = c.store();
    blocking(move || store.collection(id).map_err(store_error)?.ok_or_else(|| not_found("collection"))).await
}

/// Delete a collection with all its documents (from the index first).
#[utoipa::path(delete, path = "/portal/api/collections/{id}", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_collection(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    c: Ctx,
) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let deleted = document_service(&state)?.delete_collection(id).await;
    state.refresh_index().await;
    deleted?;
    audit(&c, "delete_collection", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/portal/api/collections/{id}/documents", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 200, body = [lotse_wire::portal::Document]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn documents(
    Path(id): Path<i64>,
    c: Ctx,
) -> Result<Json<Vec<lotse_wire::portal::Document>>, ApiError> {
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ReadCollection(&col.owner))?;
    let store = c.store();
    let docs = blocking(move || store.documents(id).map_err(store_error)).await?;
    Ok(Json(docs.into_iter().map(wire::document).collect()))
}

/// The document service (the server may still be starting: then uploads answer 503).
fn document_service(state: &AppState) -> Result<Arc<Documents>, ApiError> {
    state.documents().ok_or_else(ApiError::starting)
}

/// Upload a document (the request body is the file). The same name again replaces it.
#[utoipa::path(put, path = "/portal/api/collections/{id}/documents/{name}", tag = "portal",
    params(("id" = i64, Path), ("name" = String, Path, description = "File name, e.g. `Dienstanweisung.pdf`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Indexed", body = lotse_wire::portal::Document),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "Larger than `[portal] max_upload_bytes`", body = ErrorBody),
        (status = 415, description = "Not PDF, DOCX, ODT, text, Markdown or HTML", body = ErrorBody),
        (status = 422, description = "Damaged, encrypted, empty or a zip bomb", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Path((id, name)): Path<(i64, String)>,
    c: Ctx,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<lotse_wire::portal::Document>), ApiError> {
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let max = state.config.portal.max_upload_bytes;
    let bytes = body.map_err(|_| DocumentError::TooLarge { max })?;
    let uid = c.user()?.id;
    let uploaded = document_service(&state)?.upload(id, &name, Vec::from(bytes), uid).await;
    state.refresh_index().await;
    let up = uploaded?;
    audit(&c, if up.replaced { "replace_document" } else { "upload_document" }, None, false, vec![up.collection.title.clone()], "ok").await;
    Ok((if up.replaced { StatusCode::OK } else { StatusCode::CREATED }, Json(wire::document(up.document))))
}

/// A document with its collection, when the caller may read it.
pub(super) async fn readable_document(c: &Ctx, id: i64) -> Result<(Document, Collection), ApiError> {
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
    Path(id): Path<i64>,
    c: Ctx,
) -> Result<StatusCode, ApiError> {
    c.allow(&Action::Portal)?;
    let (doc, col) = readable_document(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let deleted = document_service(&state)?.delete(&doc).await;
    state.refresh_index().await;
    deleted?;
    audit(&c, "delete_document", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}
