//! Dense retrieval: chunk embeddings stored in the tantivy index beside their chunk, an
//! in-memory matrix per segment for exact dot-product search, and rank fusion with BM25.
//!
//! Vectors live in the chunk documents themselves, so they are committed, deleted and rolled
//! back together with the chunks: the index and its vectors cannot disagree. Search is exact
//! (a full scan of the in-scope vectors): about 10 ms per 100k chunks of 384 dimensions on
//! this machine's cores, the stated limit before an approximate index would be needed.

use std::collections::HashMap;
use std::sync::Mutex;

use tantivy::index::SegmentId;
use tantivy::schema::{Field, Value};
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

/// Computes embeddings for the index. Implemented outside this crate (by the model layer),
/// so the index does not depend on any model code.
pub trait ChunkEmbedder: Send + Sync {
    /// Identifies the model: vectors of different models are never compared.
    fn model_id(&self) -> &str;
    fn dim(&self) -> usize;
    /// Embed passages (chunk texts with their title and headings), one vector each, in order.
    fn embed_passages(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String>;
}

/// Little-endian f32 bytes, the stored form of a vector.
pub fn encode(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The vectors of one immutable segment, read once.
struct SegmentVectors {
    doc_ids: Vec<DocId>,
    collections: Vec<u32>,
    sites: Vec<u32>,
    matrix: Vec<f32>,
}

/// Per-segment vector matrices, keyed by segment id (segments never change; deleted documents
/// are skipped with the segment's alive bitset at search time).
#[derive(Default)]
pub(crate) struct VectorCache {
    inner: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    segments: HashMap<SegmentId, std::sync::Arc<SegmentVectors>>,
    /// interned collection and site names
    names: Vec<String>,
}

pub(crate) struct DenseFields {
    pub kind: Field,
    pub vec: Field,
    pub collection: Field,
    pub site: Field,
}

impl CacheState {
    fn intern(&mut self, s: &str) -> u32 {
        match self.names.iter().position(|n| n == s) {
            Some(i) => i as u32,
            None => {
                self.names.push(s.to_owned());
                (self.names.len() - 1) as u32
            }
        }
    }
}

impl VectorCache {
    /// Exact top-`limit` chunks by dot product within the allowed collections (and site).
    pub(crate) fn search(
        &self,
        searcher: &Searcher,
        f: &DenseFields,
        query: &[f32],
        collections: &[&str],
        site: Option<&str>,
        limit: usize,
    ) -> tantivy::Result<Vec<(f32, DocAddress)>> {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        state.segments.retain(|id, _| live.contains(id));
        let mut scored: Vec<(f32, DocAddress)> = Vec::new();
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let id = reader.segment_id();
            let seg = match state.segments.get(&id) {
                Some(s) => s.clone(),
                None => {
                    let s = std::sync::Arc::new(load_segment(
                        searcher,
                        ord as u32,
                        reader.max_doc(),
                        f,
                        &mut state,
                    )?);
                    state.segments.insert(id, s.clone());
                    s
                }
            };
            let allowed: Vec<u32> = collections
                .iter()
                .filter_map(|c| state.names.iter().position(|n| n == c).map(|i| i as u32))
                .collect();
            let site_id = match site {
                Some(s) => match state.names.iter().position(|n| n == s) {
                    Some(i) => Some(i as u32),
                    None => continue,
                },
                None => None,
            };
            let alive = reader.alive_bitset();
            let dim = query.len();
            if seg.doc_ids.is_empty() || seg.matrix.len() != seg.doc_ids.len() * dim {
                continue;
            }
            for (i, &doc) in seg.doc_ids.iter().enumerate() {
                if !allowed.contains(&seg.collections[i])
                    || site_id.is_some_and(|s| s != seg.sites[i])
                    || alive.is_some_and(|a| !a.is_alive(doc))
                {
                    continue;
                }
                let row = &seg.matrix[i * dim..(i + 1) * dim];
                let score: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                scored.push((score, DocAddress::new(ord as u32, doc)));
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.truncate(limit);
        Ok(scored)
    }
}

fn load_segment(
    searcher: &Searcher,
    ord: u32,
    max_doc: DocId,
    f: &DenseFields,
    state: &mut CacheState,
) -> tantivy::Result<SegmentVectors> {
    let mut out = SegmentVectors {
        doc_ids: Vec::new(),
        collections: Vec::new(),
        sites: Vec::new(),
        matrix: Vec::new(),
    };
    let mut dim = None;
    for doc_id in 0..max_doc {
        let doc: TantivyDocument = searcher.doc(DocAddress::new(ord, doc_id))?;
        if doc.get_first(f.kind).and_then(|v| v.as_str()) != Some("chunk") {
            continue;
        }
        let Some(bytes) = doc.get_first(f.vec).and_then(|v| v.as_bytes()) else {
            continue;
        };
        let v = decode(bytes);
        if *dim.get_or_insert(v.len()) != v.len() || v.is_empty() {
            continue;
        }
        let c = doc
            .get_first(f.collection)
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let s = doc.get_first(f.site).and_then(|v| v.as_str()).unwrap_or("");
        let (ci, si) = (state.intern(c), state.intern(s));
        out.doc_ids.push(doc_id);
        out.collections.push(ci);
        out.sites.push(si);
        out.matrix.extend_from_slice(&v);
    }
    Ok(out)
}

/// Reciprocal rank fusion of ranked lists (Cormack et al. 2009): score = sum 1 / (k + rank).
pub fn reciprocal_rank_fusion<K: std::hash::Hash + Eq + Clone>(
    lists: &[&[K]],
    k: f32,
) -> Vec<(K, f32)> {
    let mut scores: HashMap<K, f32> = HashMap::new();
    let mut first_seen: HashMap<K, usize> = HashMap::new();
    let mut n = 0;
    for list in lists {
        for (rank, key) in list.iter().enumerate() {
            *scores.entry(key.clone()).or_default() += 1.0 / (k + rank as f32 + 1.0);
            first_seen.entry(key.clone()).or_insert_with(|| {
                n += 1;
                n
            });
        }
    }
    let mut out: Vec<(K, f32)> = scores.into_iter().collect();
    out.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| first_seen[&a.0].cmp(&first_seen[&b.0]))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.5, -1.25, 3.0];
        assert_eq!(decode(&encode(&v)), v);
    }

    #[test]
    fn rrf_rewards_agreement() {
        let a = ["x", "y", "z"];
        let b = ["y", "w", "x"];
        let fused = reciprocal_rank_fusion(&[&a, &b], 60.0);
        assert_eq!(fused[0].0, "y");
        assert_eq!(fused[1].0, "x");
        assert_eq!(fused.len(), 4);
    }
}
