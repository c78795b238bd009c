//! Staff documents in the index: an upload (extract, hash, reserve the id, index, then the
//! row with the original file) and a delete, each as one transaction.
//!
//! Invariants:
//! - An upload is extracted completely before anything is written; the index is committed
//!   before the document row is; a failure leaves the old state (a new document's id and
//!   chunks are removed again, a replaced document keeps its old row and original).
//! - Writing and deleting run under the one-writer lock the service holds (the server's
//!   refresh lock, shared with the page refresh), and the collection is read again under it, so no chunk is written into a
//!   collection deleted meanwhile.
//! - Deletes remove from the index first and rewrite the segments that held the text, so it
//!   is gone from disk too.
//! - Authorisation is the caller's (`auth::authorize` before calling); audit entries too.

use std::sync::Arc;

use lotse_answer::Answerer;
use lotse_portal::store::{self, Collection, Document};
use lotse_extract::upload as extract;
use lotse_portal::{Store, StoreError, documents};
use sha2::{Digest, Sha256};

/// Why an upload or delete did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The server is starting (no index yet).
    #[error("the index is not open yet")]
    Starting,
    /// `what` ("collection", "document") does not exist (any more).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The file is larger than `max` bytes.
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: usize },
    /// Empty, longer than 200 characters, a path or hidden.
    #[error("invalid file name")]
    FileName,
    /// The file cannot be read (wrong type, damaged, encrypted, empty, a bomb).
    #[error("upload refused: {0}")]
    Extract(#[from] extract::ExtractError),
    /// Another writer holds the index.
    #[error("the index writer is busy")]
    IndexBusy,
    /// Indexing or committing failed (logged where it happened).
    #[error("index: {0}")]
    Index(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking task panicked or was cancelled.
    #[error("task failed: {0}")]
    Task(String),
}

/// A finished upload.
#[derive(Debug)]
pub struct Uploaded {
    pub document: Document,
    /// The collection as it was under the writer lock.
    pub collection: Collection,
    /// The same name was there before and is replaced.
    pub replaced: bool,
}

/// Uploads and deletes over the portal's store and the index.
pub struct Documents {
    pub store: Arc<Store>,
    /// `None` while the server starts (uploads answer [`DocumentError::Starting`]).
    pub answerer: Option<Arc<Answerer>>,
    /// `[portal] max_upload_bytes`.
    pub max_upload_bytes: usize,
    /// The one-writer lock, shared with the page refresh.
    pub writer: Arc<tokio::sync::Mutex<()>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DocumentError> + Send + 'static,
) -> Result<T, DocumentError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "portal task failed");
        DocumentError::Task(e.to_string())
    })?
}

/// Whether `name` may be a document's file name.
pub fn valid_file_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 200 && !name.contains(['/', '\\', '\0']) && !name.starts_with('.')
}

/// Remove from the index, commit, and rewrite the segments that held what was removed (so
/// the text is gone from disk too). The caller holds the writer lock; this blocks.
fn remove_from_index(answerer: &Answerer, remove: impl FnOnce(&mut lotse_index::IndexWriter)) -> Result<(), DocumentError> {
    let mut w = answerer.index().writer().map_err(|e| {
        tracing::warn!(error = %e, "cannot open the index writer");
        DocumentError::IndexBusy
    })?;
    remove(&mut w);
    w.commit().map_err(|e| {
        tracing::error!(error = %e, "index commit failed");
        DocumentError::Index(e.to_string())
    })?;
    if let Err(e) = w.purge_deleted() {
        // removed from search already; the bytes go at the next merge
        tracing::warn!(error = %e, "cannot rewrite the segments of deleted documents");
    }
    Ok(())
}

impl Documents {
    fn answerer(&self) -> Result<Arc<Answerer>, DocumentError> {
        self.answerer.clone().ok_or(DocumentError::Starting)
    }

    /// Upload `bytes` as `name` into collection `collection_id` (the same name again
    /// replaces the document), for the user `uploaded_by`.
    pub async fn upload(
        &self,
        collection_id: i64,
        name: &str,
        bytes: Vec<u8>,
        uploaded_by: i64,
    ) -> Result<Uploaded, DocumentError> {
        if bytes.len() > self.max_upload_bytes {
            return Err(DocumentError::TooLarge { max: self.max_upload_bytes });
        }
        if !valid_file_name(name) {
            return Err(DocumentError::FileName);
        }
        let answerer = self.answerer()?;
        let bytes = Arc::new(bytes);
        // 1. extract everything before writing anything
        let (n2, b2) = (name.to_string(), bytes.clone());
        let (kind, mut page) = blocking(move || {
            extract::extract(&b2, &n2, "").map_err(|e| {
                tracing::info!(code = e.code(), "upload refused");
                DocumentError::Extract(e)
            })
        })
        .await?;
        let sha = hex::encode(Sha256::digest(bytes.as_slice()));
        let title = page.title.clone();
        // 2.-4. under the one-writer lock, which deletes take too: the collection is checked
        // again there, so no chunk is written into a collection deleted meanwhile
        let _one_at_a_time = self.writer.lock().await;
        let store = self.store.clone();
        let (n2, t2) = (name.to_string(), title.clone());
        let (col, doc_id, existing) = blocking(move || {
            let col = store.collection(collection_id)?.ok_or(DocumentError::NotFound("collection"))?;
            if let Some(d) = store.document_by_name(collection_id, &n2)? {
                return Ok((col, d.id, Some(d)));
            }
            let doc_id = store.reserve_document(collection_id, &n2, kind.key(), &t2, Some(uploaded_by))?;
            Ok((col, doc_id, None))
        })
        .await?;
        // 3. the index; on failure the old state stays
        let (col2, sha2, a2) = (col.clone(), sha.clone(), answerer.clone());
        let indexed = blocking(move || {
            let mut w = a2.index().writer().map_err(|e| {
                tracing::warn!(error = %e, "cannot open the index writer");
                DocumentError::IndexBusy
            })?;
            let embedder = a2
                .embedder()
                .cloned()
                .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
            w.set_embedder(embedder);
            let result = documents::write(&mut w, &col2, doc_id, &mut page, &sha2)
                .and_then(|n| w.commit().map(|_| n).map_err(StoreError::from));
            match result {
                Ok(n) => {
                    // a replaced version's chunks are gone from disk too
                    let _ = w.purge_deleted();
                    Ok(n)
                }
                Err(e) => {
                    let _ = w.rollback();
                    tracing::error!(error = %e, "indexing an upload failed");
                    Err(DocumentError::Index(e.to_string()))
                }
            }
        })
        .await;
        let n_chunks = match indexed {
            Ok(n) => n,
            Err(e) => {
                if existing.is_none() {
                    let store = self.store.clone();
                    let _ = blocking(move || Ok(store.delete_document(doc_id)?)).await;
                }
                return Err(e);
            }
        };
        // 4. the row: new metadata, chunk count and the original file, in one transaction
        let is_new = existing.is_none();
        let store = self.store.clone();
        let document = blocking(move || {
            let upload = store::Upload {
                kind: kind.key(),
                title: &title,
                sha256: &sha,
                original: &bytes,
                uploaded_by: Some(uploaded_by),
            };
            if let Err(e) = store.finish_document(doc_id, &upload, n_chunks) {
                // the chunks must not outlive a row that was never completed (a replaced
                // document's old original stays; start-up writes its chunks again from it)
                if is_new {
                    let _ = remove_from_index(&answerer, |w| w.remove(&store::document_url(doc_id)));
                    let _ = store.delete_document(doc_id);
                }
                return Err(DocumentError::Store(e));
            }
            store.document(doc_id)?.ok_or(DocumentError::NotFound("document"))
        })
        .await?;
        Ok(Uploaded { document, collection: col, replaced: !is_new })
    }

    /// Delete `doc`: from the index first, then its row.
    pub async fn delete(&self, doc: &Document) -> Result<(), DocumentError> {
        let answerer = self.answerer()?;
        let _one_at_a_time = self.writer.lock().await;
        let (store, id, url) = (self.store.clone(), doc.id, doc.url.clone());
        blocking(move || {
            remove_from_index(&answerer, |w| w.remove(&url))?;
            store.delete_document(id)?;
            Ok(())
        })
        .await
    }

    /// Delete a collection with all its documents: every index entry carrying its
    /// collection id first, then the rows.
    pub async fn delete_collection(&self, id: i64) -> Result<(), DocumentError> {
        let answerer = self.answerer()?;
        // under the one-writer lock, as uploads: none can add chunks between the index and the row
        let _one_at_a_time = self.writer.lock().await;
        let store = self.store.clone();
        blocking(move || {
            // the collection's every chunk, record and structure, whichever upload wrote them
            remove_from_index(&answerer, |w| w.remove_collection(&store::index_collection(id)))?;
            store.delete_collection(id)?;
            Ok(())
        })
        .await
    }
}
