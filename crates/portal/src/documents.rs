//! Uploaded documents in the search index: written from their extracted pages, removed by
//! collection, and reconciled with the portal database (at start-up and by `lotse index
//! rebuild`), which keeps every original file.
//!
//! The database is the truth for uploads: an index entry of a collection or document the
//! database does not know is an orphan and goes; a document whose entry is missing or stale
//! is written again from its original.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use lotse_core::{Page, PageRecord};
use lotse_extract::upload;
use lotse_index::{ChunkEmbedder, IndexWriter, SearchIndex};
use serde::Serialize;

use crate::store::{self, Collection, Document, Result, Store, StoreError};

/// The index "site" of all uploads (their page records are listed under it).
pub const INDEX_SITE: &str = "lotse-portal";

const COLLECTION_PREFIX: &str = "portal-";
const URL_PREFIX: &str = "/portal/dokumente/";

/// The document id of an upload's URL (`/portal/dokumente/{id}`).
pub fn document_id(url: &str) -> Option<i64> {
    url.strip_prefix(URL_PREFIX)?.parse().ok().filter(|id| *id > 0)
}

/// The portal collection id of an index collection (`portal-{id}`).
pub fn collection_id(index_collection: &str) -> Option<i64> {
    index_collection.strip_prefix(COLLECTION_PREFIX)?.parse().ok().filter(|id| *id > 0)
}

/// The page record an upload is indexed under.
pub fn record(col: &Collection, doc_id: i64, page: &Page, sha256: &str) -> PageRecord {
    PageRecord {
        url: store::document_url(doc_id),
        site: INDEX_SITE.to_string(),
        site_name: None,
        collection: col.index_id(),
        visibility: col.visibility(),
        kind: page.kind,
        title: page.title.clone(),
        aliases: Vec::new(),
        etag: None,
        last_modified: None,
        content_hash: sha256.to_string(),
        links: Vec::new(),
        modified: None,
        indexed: true,
        n_chunks: 0,
        fetched_at: store::now().max(0) as u64,
    }
}

/// Write (or replace) an upload's chunks in `w` (not committed). Returns the chunk count.
pub fn write(w: &mut IndexWriter, col: &Collection, doc_id: i64, page: &mut Page, sha256: &str) -> Result<u32> {
    page.url = store::document_url(doc_id);
    Ok(w.upsert(&record(col, doc_id, page, sha256), Some(page))?)
}

/// What [`reconcile`] did (counts only: nothing here names or quotes a document).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Index collections of portal collections the database does not have, removed.
    pub orphan_collections: usize,
    /// Index entries of documents the database does not have (in that collection), removed.
    pub orphan_documents: usize,
    /// Documents written again from their originals (missing or stale in the index).
    pub reindexed: usize,
    /// Documents in the index and the database, unchanged.
    pub current: usize,
    /// Documents missing from the index whose original is not kept (uploaded before
    /// originals were kept): upload them again.
    pub without_original: usize,
    /// Originals that could not be read again (a newer extractor refuses them).
    pub failed: usize,
    /// Rows of uploads that never finished (the server stopped between reserving the id and
    /// writing the row), deleted.
    pub abandoned: usize,
}

/// Bring the index in line with the portal database: remove orphans, write missing or stale
/// uploads from their originals, and make sure no id the index has seen is given out again.
/// The index's one writer is taken first (waiting up to two minutes while another process,
/// a crawl or a replica sharing the index directory, holds it) and held until the end, so the
/// database is read while no upload or delete can be halfway between the index and its row.
pub fn reconcile(store: &Store, index: &SearchIndex, embedder: Option<Arc<dyn ChunkEmbedder>>) -> Result<Reconciled> {
    reconcile_waiting(store, index, embedder, std::time::Duration::from_secs(120))
}

/// [`reconcile`], waiting at most `wait` for the index writer (`IndexError::Locked` after).
pub fn reconcile_waiting(
    store: &Store,
    index: &SearchIndex,
    embedder: Option<Arc<dyn ChunkEmbedder>>,
    wait: std::time::Duration,
) -> Result<Reconciled> {
    reconcile_with(store, index, embedder, wait, true)
}

/// [`reconcile`] into a new index beside the one in use (`lotse index rebuild`): its writer
/// says nothing about uploads in progress on a running server, so reserved rows are left
/// alone (they are not written into it either).
pub fn reconcile_new_index(store: &Store, index: &SearchIndex, embedder: Option<Arc<dyn ChunkEmbedder>>) -> Result<Reconciled> {
    reconcile_with(store, index, embedder, std::time::Duration::from_secs(120), false)
}

/// Remove the rows of uploads that died halfway, and their chunks from `w` (not committed).
/// The caller holds the index writer of the index in use. Returns how many.
pub fn clear_abandoned(store: &Store, w: &mut IndexWriter) -> Result<usize> {
    let ids = store.abandoned_documents()?;
    for id in &ids {
        w.remove(&store::document_url(*id));
        store.delete_document(*id)?;
    }
    if !ids.is_empty() {
        tracing::warn!(uploads = ids.len(), "uploads that stopped halfway (the server was stopped) removed");
    }
    Ok(ids.len())
}

fn reconcile_with(
    store: &Store,
    index: &SearchIndex,
    embedder: Option<Arc<dyn ChunkEmbedder>>,
    wait: std::time::Duration,
    in_use: bool,
) -> Result<Reconciled> {
    let mut out = Reconciled::default();
    let mut w = index.writer_waiting(wait)?;
    // the index as the last writer left it
    index.reload()?;
    // an upload holds the writer from reserving its id until its row is written: a row still
    // without its file's hash and original now belongs to an upload that died halfway (its
    // chunks, if any, go with it)
    let mut changed = false;
    if in_use {
        out.abandoned = clear_abandoned(store, &mut w)?;
        changed = out.abandoned > 0;
    }
    let collections: HashMap<i64, Collection> = store.collections()?.into_iter().map(|c| (c.id, c)).collect();
    let mut documents: Vec<Document> = store.all_documents()?;
    let originals = store.documents_with_original()?;
    // reserved rows of uploads in progress elsewhere (rebuild): not ours to write
    documents.retain(|d| !(d.sha256.is_empty() && !originals.contains(&d.id)));
    let by_id: HashMap<i64, &Document> = documents.iter().map(|d| (d.id, d)).collect();

    w.set_embedder(embedder);

    // 1. collections of the index that the database does not know
    let mut max_collection = 0;
    for c in index.collections()? {
        let Some(id) = collection_id(&c) else { continue };
        max_collection = max_collection.max(id);
        if !collections.contains_key(&id) {
            w.remove_collection(&lotse_core::CollectionId(c));
            out.orphan_collections += 1;
            changed = true;
        }
    }
    // 2. documents: orphans out, current ones noted
    let mut max_document = 0;
    let mut current: HashSet<i64> = HashSet::new();
    for r in index.page_records(INDEX_SITE)? {
        let Some(id) = document_id(&r.url) else {
            w.remove(&r.url);
            out.orphan_documents += 1;
            changed = true;
            continue;
        };
        max_document = max_document.max(id);
        let expected = by_id.get(&id).and_then(|d| collections.get(&d.collection_id).map(|c| (d, c)));
        match expected {
            Some((d, c)) if c.index_id() == r.collection => {
                if r.content_hash == d.sha256 && r.visibility == c.visibility() {
                    current.insert(id);
                }
            }
            _ => {
                // not in the database, or indexed under another collection
                if collection_id(&r.collection.0).is_none_or(|cid| collections.contains_key(&cid)) {
                    out.orphan_documents += 1;
                }
                w.remove(&r.url);
                changed = true;
            }
        }
    }
    out.current = current.len();
    // 3. documents the index lacks (or holds stale): from their originals
    let mut chunk_counts = Vec::new();
    for d in &documents {
        if current.contains(&d.id) {
            continue;
        }
        let Some(col) = collections.get(&d.collection_id) else { continue };
        if !originals.contains(&d.id) {
            out.without_original += 1;
            continue;
        }
        let Some(bytes) = store.document_original(d.id)? else {
            out.without_original += 1;
            continue;
        };
        match upload::extract(&bytes, &d.file_name, "") {
            Ok((_, mut page)) => {
                let n = write(&mut w, col, d.id, &mut page, &d.sha256)?;
                chunk_counts.push((d.id, n));
                out.reindexed += 1;
                changed = true;
            }
            Err(e) => {
                tracing::warn!(document = d.id, code = e.code(), "an upload's original cannot be read again");
                out.failed += 1;
            }
        }
    }
    if changed {
        if let Err(e) = w.commit() {
            let _ = w.rollback();
            return Err(e.into());
        }
        w.purge_deleted()?;
        for (id, n) in chunk_counts {
            store.set_chunks(id, n)?;
        }
    }
    index.reload()?;
    store.reserve_ids_through("collections", max_collection)?;
    store.reserve_ids_through("documents", max_document)?;
    drop(w);
    if out.orphan_collections + out.orphan_documents + out.reindexed + out.without_original + out.failed + out.abandoned > 0 {
        tracing::info!(
            orphan_collections = out.orphan_collections,
            orphan_documents = out.orphan_documents,
            reindexed = out.reindexed,
            current = out.current,
            without_original = out.without_original,
            failed = out.failed,
            abandoned = out.abandoned,
            "portal uploads reconciled with the index"
        );
    }
    if out.without_original > 0 {
        tracing::warn!(
            documents = out.without_original,
            "uploads missing from the index have no kept original (uploaded before Lotse kept originals): upload them again"
        );
    }
    Ok(out)
}

impl From<lotse_index::IndexError> for StoreError {
    fn from(e: lotse_index::IndexError) -> StoreError {
        StoreError::Index(e.to_string())
    }
}
