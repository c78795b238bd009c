//! Collections and their documents: list, create, delete, upload.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lotse_answer::Answerer;
use lotse_portal::auth::{self, Action, Owner};
use lotse_portal::store::{self, Collection, Document};
use lotse_portal::{StoreError, documents, extract};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, audit, blocking, json_body, not_found, store_error};

// ---- collections and documents -----------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    #[schema(example = "Dienstanweisungen Bauamt")]
    pub title: String,
    /// A group (`{"kind": "group", "id": "bauamt"}`) or one person (`{"kind": "user", "id": 7}`).
    pub owner: Owner,
}

/// Collections the caller may read (admins: all).
#[utoipa::path(get, path = "/portal/api/collections", tag = "portal",
    responses((status = 200, body = [Collection]), (status = 401, body = ErrorBody)))]
pub async fn collections(c: Ctx) -> Result<Json<Vec<Collection>>, ApiError> {
    c.allow(&Action::Portal)?;
    let store = c.store();
    let all = blocking(move || store.collections().map_err(store_error)).await?;
    Ok(Json(
        all.into_iter()
            .filter(|col| c.allow(&Action::ReadCollection(&col.owner)).is_ok())
            .collect(),
    ))
}

#[utoipa::path(post, path = "/portal/api/collections", tag = "portal", request_body = NewCollection,
    responses((status = 201, body = Collection), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_collection(
    c: Ctx,
    body: Result<Json<NewCollection>, JsonRejection>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    c.allow(&Action::Portal)?;
    let req = json_body(body)?;
    c.allow(&Action::CreateCollection(&req.owner))?;
    let uid = c.user()?.id;
    let store = c.store();
    let col = blocking(move || store.create_collection(&req.title, &req.owner, Some(uid)).map_err(store_error)).await?;
    Ok((StatusCode::CREATED, Json(col)))
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
    // under the one-writer lock, as uploads: none can add chunks between the index and the row
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    {
        let _one_at_a_time = state.refresh_lock.lock().await;
        let store = c.store();
        blocking(move || {
            // the collection's every chunk, record and structure, whichever upload wrote them
            remove_from_index(&answerer, |w| w.remove_collection(&store::index_collection(id)))?;
            store.delete_collection(id).map(|_| ()).map_err(store_error)
        })
        .await?;
    }
    state.refresh_index().await;
    audit(&c, "delete_collection", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/portal/api/collections/{id}/documents", tag = "portal",
    params(("id" = i64, Path)),
    responses((status = 200, body = [Document]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn documents(
    Path(id): Path<i64>,
    c: Ctx,
) -> Result<Json<Vec<Document>>, ApiError> {
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ReadCollection(&col.owner))?;
    let store = c.store();
    Ok(Json(blocking(move || store.documents(id).map_err(store_error)).await?))
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "index_busy",
        "Der Suchindex wird gerade aktualisiert. Bitte versuchen Sie es gleich noch einmal.",
    )
    .retry_after(10)
}

/// Remove from the index, commit, and rewrite the segments that held what was removed (so
/// the text is gone from disk too). The caller holds `refresh_lock`; this blocks.
fn remove_from_index(answerer: &Answerer, remove: impl FnOnce(&mut lotse_index::IndexWriter)) -> Result<(), ApiError> {
    let mut w = answerer.index().writer().map_err(|e| {
        tracing::warn!(error = %e, "cannot open the index writer");
        busy()
    })?;
    remove(&mut w);
    w.commit().map_err(|e| {
        tracing::error!(error = %e, "index commit failed");
        ApiError::internal()
    })?;
    if let Err(e) = w.purge_deleted() {
        // removed from search already; the bytes go at the next merge
        tracing::warn!(error = %e, "cannot rewrite the segments of deleted documents");
    }
    Ok(())
}

fn valid_file_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 200
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
}

/// Upload a document (the request body is the file). The same name again replaces it.
#[utoipa::path(put, path = "/portal/api/collections/{id}/documents/{name}", tag = "portal",
    params(("id" = i64, Path), ("name" = String, Path, description = "File name, e.g. `Dienstanweisung.pdf`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Indexed", body = Document),
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
) -> Result<(StatusCode, Json<Document>), ApiError> {
    c.allow(&Action::Portal)?;
    let col = load_collection(&c, id).await?;
    c.allow(&Action::ManageCollection(&col.owner))?;
    let max = state.config.portal.max_upload_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("Die Datei ist zu groß. Erlaubt sind höchstens {} MB.", max / (1024 * 1024)),
        )
    };
    let bytes = body.map_err(|_| too_large())?;
    if bytes.len() > max {
        return Err(too_large());
    }
    if !valid_file_name(&name) {
        return Err(ApiError::bad_request(
            "file_name",
            "Der Dateiname ist ungültig (keine Schrägstriche, höchstens 200 Zeichen).",
        ));
    }
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    // 1. extract everything before writing anything
    let (n2, b2) = (name.clone(), bytes.clone());
    let (kind, mut page) = blocking(move || {
        extract::extract(&b2, &n2, "").map_err(|e| {
            tracing::info!(code = e.code(), "upload refused");
            let status = if e.is_type_error() { StatusCode::UNSUPPORTED_MEDIA_TYPE } else { StatusCode::UNPROCESSABLE_ENTITY };
            ApiError::new(status, e.code(), e.message_de())
        })
    })
    .await?;
    let sha = auth::hex(&Sha256::digest(&bytes));
    let title = page.title.clone();
    // 2.-4. under the one-writer lock, which deletes take too: the collection is checked
    // again there, so no chunk is written into a collection deleted meanwhile
    let _one_at_a_time = state.refresh_lock.lock().await;
    let store = c.store();
    let uid = c.user()?.id;
    let (n2, t2) = (name.clone(), title.clone());
    let (col, doc_id, existing) = blocking(move || {
        let col = store.collection(id).map_err(store_error)?.ok_or_else(|| not_found("collection"))?;
        if let Some(d) = store.document_by_name(id, &n2).map_err(store_error)? {
            return Ok((col, d.id, Some(d)));
        }
        let doc_id = store.reserve_document(id, &n2, kind.key(), &t2, Some(uid)).map_err(store_error)?;
        Ok((col, doc_id, None))
    })
    .await?;
    // 3. the index; on failure the old state stays
    let store = c.store();
    let (col2, sha2) = (col.clone(), sha.clone());
    let indexed = blocking(move || {
        let mut w = answerer.index().writer().map_err(|e| {
            tracing::warn!(error = %e, "cannot open the index writer");
            busy()
        })?;
        let embedder = answerer
            .embedder()
            .cloned()
            .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
        w.set_embedder(embedder);
        let result = documents::write(&mut w, &col2, doc_id, &mut page, &sha2).and_then(|n| w.commit().map(|_| n).map_err(StoreError::from));
        match result {
            Ok(n) => {
                // a replaced version's chunks are gone from disk too
                let _ = w.purge_deleted();
                Ok(n)
            }
            Err(e) => {
                let _ = w.rollback();
                tracing::error!(error = %e, "indexing an upload failed");
                Err(ApiError::internal())
            }
        }
    })
    .await;
    let n_chunks = match indexed {
        Ok(n) => n,
        Err(e) => {
            if existing.is_none() {
                let _ = blocking(move || store.delete_document(doc_id).map_err(store_error)).await;
            }
            return Err(e);
        }
    };
    // 4. the row: new metadata, chunk count and the original file, in one transaction
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    let is_new = existing.is_none();
    let doc = blocking(move || {
        let upload = store::Upload { kind: kind.key(), title: &title, sha256: &sha, original: &bytes, uploaded_by: Some(uid) };
        if let Err(e) = store.finish_document(doc_id, &upload, n_chunks) {
            // the chunks must not outlive a row that was never completed (a replaced
            // document's old original stays; start-up writes its chunks again from it)
            if is_new {
                let _ = remove_from_index(&answerer, |w| w.remove(&store::document_url(doc_id)));
                let _ = store.delete_document(doc_id);
            }
            return Err(store_error(e));
        }
        store.document(doc_id).map_err(store_error)?.ok_or_else(|| not_found("document"))
    })
    .await;
    drop(_one_at_a_time);
    state.refresh_index().await;
    let doc = doc?;
    audit(&c, if existing.is_some() { "replace_document" } else { "upload_document" }, None, false, vec![col.title.clone()], "ok").await;
    Ok((if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED }, Json(doc)))
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
    let answerer = state.answerer().ok_or_else(ApiError::starting)?;
    {
        let _one_at_a_time = state.refresh_lock.lock().await;
        let store = c.store();
        blocking(move || {
            remove_from_index(&answerer, |w| w.remove(&doc.url))?;
            store.delete_document(id).map_err(store_error)
        })
        .await?;
    }
    state.refresh_index().await;
    audit(&c, "delete_document", None, false, vec![col.title.clone()], "ok").await;
    Ok(StatusCode::NO_CONTENT)
}
