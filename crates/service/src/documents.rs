//! Staff documents in the index: an upload (extract, hash, reserve the id, index, then the
//! row with the original file) and a delete, each as one transaction.
//!
//! Invariants:
//! - An upload is extracted completely before anything is written; the index is committed
//!   before the document row is; a failure leaves the old state (a new document's id and
//!   chunks are removed again, a replaced document keeps its old row and original).
//! - Writing and deleting run under the one-writer lock the service holds (the server's
//!   refresh lock, shared with the page refresh) and under the index's writer lock, held
//!   from before the collection is read until the row is written: replicas that share the
//!   index directory take the same file lock, so no process writes a chunk into a collection
//!   deleted meanwhile or sees chunks whose row is not written yet.
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

/// How long an upload or delete waits for the index writer that another holds (an upload
/// on another replica, a page refresh, a crawl) before it answers "busy".
const WRITER_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The index's one writer, waited for up to [`WRITER_WAIT`]. Whoever holds it first clears
/// what an upload that died halfway left (a reserved row, chunks without a row: see
/// `lotse_portal::documents::clear_abandoned`), so that is never found for long.
fn index_writer(answerer: &Answerer, store: &Store) -> Result<lotse_index::IndexWriter, DocumentError> {
    let mut w = answerer.index().writer_waiting(WRITER_WAIT).map_err(|e| {
        tracing::warn!(error = %e, "cannot open the index writer");
        DocumentError::IndexBusy
    })?;
    if documents::clear_abandoned(store, &mut w)? > 0 {
        w.commit().map_err(|e| {
            tracing::error!(error = %e, "index commit failed");
            DocumentError::Index(e.to_string())
        })?;
    }
    Ok(w)
}

/// Remove from the index, commit, and rewrite the segments that held what was removed (so
/// the text is gone from disk too). Returns the writer, still held, so the caller can change
/// the database before another process may write. This blocks.
fn remove_from_index(
    answerer: &Answerer,
    store: &Store,
    remove: impl FnOnce(&mut lotse_index::IndexWriter),
) -> Result<lotse_index::IndexWriter, DocumentError> {
    let mut w = index_writer(answerer, store)?;
    remove(&mut w);
    w.commit().map_err(|e| {
        tracing::error!(error = %e, "index commit failed");
        DocumentError::Index(e.to_string())
    })?;
    if let Err(e) = w.purge_deleted() {
        // removed from search already; the bytes go at the next merge
        tracing::warn!(error = %e, "cannot rewrite the segments of deleted documents");
    }
    Ok(w)
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
        // 2.-4. under the one-writer lock, which deletes take too, and holding the index's own
        // writer lock (tantivy's lock file, which replicas sharing the index directory take
        // too) until the row is written: no other process sees the chunks without the row
        // (its start-up reconcile would take them for orphans) or deletes the collection
        // between the check and the write
        let _one_at_a_time = self.writer.lock().await;
        let store = self.store.clone();
        let name = name.to_string();
        let (col, is_new, document) = blocking(move || {
            let mut w = index_writer(&answerer, &store)?;
            let col = store.collection(collection_id)?.ok_or(DocumentError::NotFound("collection"))?;
            let existing = store.document_by_name(collection_id, &name)?;
            let doc_id = match &existing {
                Some(d) => d.id,
                None => store.reserve_document(collection_id, &name, kind.key(), &title, Some(uploaded_by))?,
            };
            let is_new = existing.is_none();
            // 3. the index; on failure the old state stays
            let embedder = answerer
                .embedder()
                .cloned()
                .map(|e| Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>);
            w.set_embedder(embedder);
            let indexed = documents::write(&mut w, &col, doc_id, &mut page, &sha)
                .and_then(|n| w.commit().map(|_| n).map_err(StoreError::from));
            let n_chunks = match indexed {
                Ok(n) => {
                    // a replaced version's chunks are gone from disk too
                    let _ = w.purge_deleted();
                    n
                }
                Err(e) => {
                    let _ = w.rollback();
                    tracing::error!(error = %e, "indexing an upload failed");
                    if is_new {
                        let _ = store.delete_document(doc_id);
                    }
                    return Err(DocumentError::Index(e.to_string()));
                }
            };
            // 4. the row: new metadata, chunk count and the original file, in one transaction
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
                    w.remove(&store::document_url(doc_id));
                    if w.commit().is_ok() {
                        let _ = w.purge_deleted();
                    }
                    let _ = store.delete_document(doc_id);
                }
                return Err(DocumentError::Store(e));
            }
            drop(w);
            let document = store.document(doc_id)?.ok_or(DocumentError::NotFound("document"))?;
            Ok((col, is_new, document))
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
            let w = remove_from_index(&answerer, &store, |w| w.remove(&url))?;
            store.delete_document(id)?;
            drop(w);
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
            let w = remove_from_index(&answerer, &store, |w| w.remove_collection(&store::index_collection(id)))?;
            store.delete_collection(id)?;
            drop(w);
            Ok(())
        })
        .await
    }
}
