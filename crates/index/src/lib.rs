//! The Lotse search index: tantivy on disk, German analysis, structure-aware chunks.
//!
//! Design decision: the index is the single source of derived state. Besides one document per
//! chunk it holds one *record* document per fetched page (validators, links, content hash) and
//! one *site state* document per site (learned crawl hints). They change in the same tantivy
//! commit as the chunks, so a crawl killed at any moment leaves records and chunks consistent,
//! and the next crawl resumes from the last commit with conditional requests.
//!
//! Every chunk carries a collection and a visibility. [`SearchIndex::search`] takes a
//! [`CollectionScope`]; there is no way to search all collections at once.

pub mod analysis;
pub mod chunk;
pub mod dense;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use dense::ChunkEmbedder;

use lotse_core::{Chunk, CollectionScope, DocKind, Page, PageRecord};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

/// Bumped whenever the schema or the analysis changes; an index of another version is refused
/// with a clear message instead of returning wrong results.
pub const SCHEMA_VERSION: u32 = 2;

/// Weight of the compound n-gram field relative to the word field. Chosen on the dev
/// questions: recall@5 and MRR sit on a plateau from 0.4 to 1.0 (see ARCHITECTURE.md).
const GRAMS_WEIGHT: f32 = 0.6;

/// Candidates per list for hybrid fusion, and the RRF constant (k = 60 as in the paper;
/// chosen by measurement, see ARCHITECTURE.md).
const FUSION_DEPTH: usize = 100;
const RRF_K: f32 = 60.0;

const KIND_CHUNK: &str = "chunk";
const KIND_PAGE: &str = "page";
const KIND_SITE: &str = "site";
const KIND_META: &str = "meta";
/// The page's extracted structure (`Page` as JSON), for plain-language rewrites.
const KIND_CONTENT: &str = "content";
const KEY_EMBEDDING: &str = "meta:embedding";

/// Errors of the index crate.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "index at {path} has schema version {found}, this lotse needs {expected}; remove the directory and crawl again"
    )]
    SchemaVersion {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("index at {path} is locked by another writer (is a crawl running?)")]
    Locked { path: PathBuf },
    #[error("index io at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("dense search needs a query vector")]
    NoQueryVector,
    #[error(
        "the index holds no chunk vectors yet; build them with `lotse index embed` (or crawl with the embedder available)"
    )]
    NoVectors,
    #[error(
        "the index vectors were made by {index}, the query by {query}; rebuild them with `lotse index embed`"
    )]
    VectorModel { index: String, query: String },
    #[error("embedding failed: {0}")]
    Embedding(String),
    #[error("stored record is not valid json: {0}")]
    Record(#[from] serde_json::Error),
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

#[derive(Clone, Copy)]
struct Fields {
    kind: Field,
    key: Field,
    url: Field,
    site: Field,
    collection: Field,
    visibility: Field,
    doc_kind: Field,
    title: Field,
    heading: Field,
    town: Field,
    body: Field,
    plain: Field,
    all: Field,
    grams: Field,
    fragment: Field,
    ordinal: Field,
    record: Field,
    vec: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |name: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(name)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let fields = Fields {
        kind: b.add_text_field("kind", STRING | STORED),
        // unique key per document: "chunk:<url>#<ordinal>", "page:<url>", "site:<origin>"
        key: b.add_text_field("key", STRING),
        url: b.add_text_field("url", STRING | STORED),
        site: b.add_text_field("site", STRING | STORED),
        collection: b.add_text_field("collection", STRING | STORED),
        visibility: b.add_text_field("visibility", STRING | STORED),
        doc_kind: b.add_text_field("doc_kind", STRING | STORED),
        // display fields; matching happens on `all`, `plain` and `grams`
        title: b.add_text_field("title", STORED),
        heading: b.add_text_field("heading", STORED),
        // the town the chunk's site belongs to, so a question naming its town finds it
        town: b.add_text_field("town", text(analysis::STEM) | STORED),
        body: b.add_text_field("body", STORED),
        plain: b.add_text_field("plain", text(analysis::PLAIN)),
        // title, headings and text in one stemmed field (BM25 over the whole chunk)
        all: b.add_text_field("all", text(analysis::STEM)),
        grams: b.add_text_field("grams", text(analysis::GRAMS)),
        fragment: b.add_text_field("fragment", STORED),
        ordinal: b.add_u64_field("ordinal", STORED),
        record: b.add_text_field("record", STORED),
        // the chunk's embedding (little-endian f32), when an embedder was configured
        vec: b.add_bytes_field("vec", STORED),
    };
    (b.build(), fields)
}

/// How a query is matched; the defaults are the measured best. The switches exist so that
/// `lotse eval retrieval` can report the effect of stemming and compound handling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchOptions {
    /// Snowball German stems (true) or plain folded words (false).
    pub stem: bool,
    /// Add character n-grams for compounds.
    pub compounds: bool,
    /// When the query names exactly one town of the index ("... in Bad Boll?"), search only
    /// that town's site. Matters for regional installations with several towns.
    pub town_filter: bool,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            stem: true,
            compounds: true,
            town_filter: true,
        }
    }
}

/// Which retrieval runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Words only (BM25 over German-analysed text).
    #[default]
    Bm25,
    /// Meaning only (embedding dot products).
    Dense,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

/// A query embedding and the model that made it.
#[derive(Debug, Clone, Copy)]
pub struct QueryVector<'a> {
    pub model_id: &'a str,
    pub vector: &'a [f32],
}

/// A search request. `scope` is mandatory: it names the collections the caller may see.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub scope: &'a CollectionScope,
    pub limit: usize,
    /// Restrict to one site (origin); `None` searches every site in scope.
    pub site: Option<&'a str>,
    pub options: MatchOptions,
    pub mode: SearchMode,
    /// Needed for `Dense` and `Hybrid`.
    pub query_vector: Option<QueryVector<'a>>,
}

impl<'a> SearchRequest<'a> {
    /// BM25, 10 hits, default matching, all sites in scope.
    pub fn new(query: &'a str, scope: &'a CollectionScope) -> SearchRequest<'a> {
        SearchRequest {
            query,
            scope,
            limit: 10,
            site: None,
            options: MatchOptions::default(),
            mode: SearchMode::Bm25,
            query_vector: None,
        }
    }
}

/// One search hit: a chunk with its score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hit {
    pub url: String,
    pub title: String,
    pub heading: String,
    pub heading_path: Vec<String>,
    pub deep_link: String,
    pub snippet: String,
    pub text: String,
    pub score: f32,
    pub kind: DocKind,
    pub site: String,
    pub collection: String,
}

/// Counts of what the index holds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct IndexStats {
    pub pages: u64,
    pub chunks: u64,
}

/// An open index directory.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    vectors: dense::VectorCache,
    /// `(searcher generation, site names)`: the town filter needs them for every query, and
    /// reading them means loading each site's stored state (its crawl hints), which cost
    /// tens of milliseconds per query at 100 towns.
    site_names: std::sync::Mutex<Option<(u64, Arc<Vec<(String, String)>>)>>,
}

impl SearchIndex {
    /// Open the index in `dir`, creating it if the directory is empty or missing.
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let version_file = dir.join("LOTSE_SCHEMA_VERSION");
        let (schema, fields) = schema();
        let has_index = dir.join("meta.json").exists();
        if has_index {
            let found = std::fs::read_to_string(&version_file).unwrap_or_default();
            if found.trim() != SCHEMA_VERSION.to_string() {
                return Err(IndexError::SchemaVersion {
                    path: dir.to_owned(),
                    found: if found.trim().is_empty() {
                        "unknown".to_owned()
                    } else {
                        found.trim().to_owned()
                    },
                    expected: SCHEMA_VERSION,
                });
            }
        }
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Tantivy(e.into()))?;
        let index = Index::open_or_create(directory, schema)?;
        if !has_index {
            std::fs::write(&version_file, SCHEMA_VERSION.to_string()).map_err(|source| {
                IndexError::Io {
                    path: version_file.clone(),
                    source,
                }
            })?;
        }
        analysis::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            dir: dir.to_owned(),
            vectors: dense::VectorCache::default(),
            site_names: std::sync::Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start writing. Only one writer may exist per index directory, across processes
    /// (tantivy holds a lock file).
    ///
    /// Every writer works on a freshly opened `Index`: tantivy reads its list of the files it
    /// manages (`.managed.json`) when an index is opened, and a writer deletes obsolete files
    /// by that list. Processes sharing the directory (replicas, a crawl beside the server)
    /// each add segments; a writer of an index opened long ago would not know theirs and would
    /// leave them on disk, deleted text included. The list is read again until it is the
    /// one on disk once the lock is held (only the lock holder changes it).
    pub fn writer(&self) -> Result<IndexWriter> {
        let locked = |e: tantivy::TantivyError| match e {
            tantivy::TantivyError::LockFailure(..) => IndexError::Locked {
                path: self.dir.clone(),
            },
            e => IndexError::Tantivy(e),
        };
        let managed = || std::fs::read(self.dir.join(".managed.json")).ok();
        let mut inner = None;
        for _ in 0..3 {
            let before = managed();
            let directory = tantivy::directory::MmapDirectory::open(&self.dir)
                .map_err(|e| IndexError::Tantivy(e.into()))?;
            let fresh = Index::open(directory)?;
            analysis::register(&fresh);
            let w = fresh.writer_with_num_threads(1, 64 * 1024 * 1024).map_err(locked)?;
            if managed() == before {
                inner = Some(w);
                break;
            }
            // another process committed between reading the list and taking the lock
            drop(w);
        }
        let inner = match inner {
            Some(w) => w,
            None => self.index.writer_with_num_threads(1, 64 * 1024 * 1024).map_err(locked)?,
        };
        Ok(IndexWriter {
            inner: Some(inner),
            dirty: false,
            fields: self.fields,
            reader: self.reader.clone(),
            embedder: None,
            embedded: 0,
            reused: 0,
        })
    }

    /// Start writing, waiting up to `wait` while another writer (a crawl, an upload in this
    /// or another process sharing the directory) holds the lock. The lock is tantivy's file
    /// lock, so replicas that share one index directory take turns here.
    pub fn writer_waiting(&self, wait: std::time::Duration) -> Result<IndexWriter> {
        let deadline = std::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_millis(20);
        loop {
            match self.writer() {
                Err(IndexError::Locked { .. }) if std::time::Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
                other => return other,
            }
        }
    }

    /// See the latest commit.
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
    }

    /// A number that changes exactly when the searchable content changes (segments or their
    /// deletes), not on every reload: caches of answers key on it.
    pub fn content_version(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let searcher = self.reader.searcher();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (id, del) in searcher.generation().segments() {
            id.uuid_string().hash(&mut h);
            del.hash(&mut h);
        }
        h.finish()
    }

    pub fn stats(&self) -> Result<IndexStats> {
        let searcher = self.reader.searcher();
        let count = |kind: &str| {
            searcher.search(
                &TermQuery::new(
                    Term::from_field_text(self.fields.kind, kind),
                    IndexRecordOption::Basic,
                ),
                &tantivy::collector::Count,
            )
        };
        Ok(IndexStats {
            pages: count(KIND_PAGE)? as u64,
            chunks: count(KIND_CHUNK)? as u64,
        })
    }

    /// Deleted documents still on disk (until [`IndexWriter::purge_deleted`] or a merge).
    pub fn deleted_docs(&self) -> Result<u64> {
        Ok(self
            .index
            .searchable_segment_metas()?
            .iter()
            .map(|m| u64::from(m.num_deleted_docs()))
            .sum())
    }

    /// The collection ids that at least one live document of the index carries.
    pub fn collections(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut seen = std::collections::BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.collection)?;
            let mut terms = inverted.terms().stream().map_err(tantivy::TantivyError::from)?;
            while terms.advance() {
                if let Ok(s) = std::str::from_utf8(terms.key()) {
                    seen.insert(s.to_owned());
                }
            }
        }
        let mut out = Vec::new();
        for c in seen {
            // the term dictionary still lists terms of deleted documents until a merge
            if searcher.search(&*term_query(self.fields.collection, &c), &tantivy::collector::Count)? > 0 {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// All page records of one site.
    pub fn page_records(&self, site: &str) -> Result<Vec<PageRecord>> {
        let searcher = self.reader.searcher();
        let q = BooleanQuery::new(vec![
            (Occur::Must, term_query(self.fields.kind, KIND_PAGE)),
            (Occur::Must, term_query(self.fields.site, site)),
        ]);
        let n = searcher.search(&q, &tantivy::collector::Count)?;
        let top = searcher.search(&q, &TopDocs::with_limit(n.max(1)).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(json) = doc.get_first(self.fields.record).and_then(|v| v.as_str()) {
                out.push(serde_json::from_str(json)?);
            }
        }
        out.sort_by(|a: &PageRecord, b| a.url.cmp(&b.url));
        Ok(out)
    }

    /// The stored state of a site (learned crawl hints), if any.
    pub fn site_state<T: for<'de> Deserialize<'de>>(&self, site: &str) -> Result<Option<T>> {
        let searcher = self.reader.searcher();
        let q = term_query(self.fields.key, &format!("{KIND_SITE}:{site}"));
        let top = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, addr)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(*addr)?;
        match doc.get_first(self.fields.record).and_then(|v| v.as_str()) {
            Some(json) => Ok(Some(serde_json::from_str(json)?)),
            None => Ok(None),
        }
    }

    /// Sites in the index with the town name each presents itself under: `(origin, name)`.
    pub fn site_names(&self) -> Result<Vec<(String, String)>> {
        Ok(self.site_names_cached()?.as_ref().clone())
    }

    /// [`SearchIndex::site_names`], read once per searcher generation (every commit or
    /// reload makes a new one).
    fn site_names_cached(&self) -> Result<Arc<Vec<(String, String)>>> {
        let searcher = self.reader.searcher();
        let generation = searcher.generation().generation_id();
        let mut cached = self.site_names.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((g, names)) = cached.as_ref()
            && *g == generation
        {
            return Ok(names.clone());
        }
        let names = Arc::new(self.read_site_names(&searcher)?);
        *cached = Some((generation, names.clone()));
        Ok(names)
    }

    fn read_site_names(&self, searcher: &tantivy::Searcher) -> Result<Vec<(String, String)>> {
        let q = term_query(self.fields.kind, KIND_SITE);
        let top = searcher.search(&q, &TopDocs::with_limit(10_000).order_by_score())?;
        let mut out = Vec::new();
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get = |f: Field| doc.get_first(f).and_then(|v| v.as_str()).map(str::to_owned);
            if let (Some(site), Some(name)) = (get(self.fields.site), get(self.fields.town)) {
                out.push((site, name));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Origins of all sites in the index.
    pub fn sites(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let q = term_query(self.fields.kind, KIND_SITE);
        let top = searcher.search(&q, &TopDocs::with_limit(10_000).order_by_score())?;
        let mut out = Vec::new();
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(site) = doc.get_first(self.fields.site).and_then(|v| v.as_str()) {
                out.push(site.to_owned());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The one site whose town the query names, if exactly one is named.
    fn named_site(&self, query: &str) -> Result<Option<String>> {
        let sites = self.site_names_cached()?;
        if sites.len() < 2 {
            return Ok(None);
        }
        let mut stem = analysis::stemmed_analyzer();
        let query_terms: std::collections::HashSet<String> =
            analysis::tokens(&mut stem, query).into_iter().collect();
        let generic: std::collections::HashSet<String> =
            analysis::tokens(&mut stem, analysis::GENERIC_PLACE_WORDS)
                .into_iter()
                .collect();
        let mut named: Vec<&str> = sites
            .iter()
            .filter(|(_, name)| {
                let distinctive: Vec<String> = analysis::tokens(&mut stem, name)
                    .into_iter()
                    .filter(|t| !generic.contains(t))
                    .collect();
                !distinctive.is_empty() && distinctive.iter().all(|t| query_terms.contains(t))
            })
            .map(|(site, _)| site.as_str())
            .collect();
        named.dedup();
        Ok(match named.as_slice() {
            [one] => Some((*one).to_owned()),
            _ => None,
        })
    }

    /// One indexed page: its record and its extracted structure, if the page belongs to a
    /// collection of `scope`. Pages tracked only for revalidation (noindex) have no content.
    pub fn page(&self, url: &str, scope: &CollectionScope) -> Result<Option<(PageRecord, Page)>> {
        let searcher = self.reader.searcher();
        let get = |kind: &str| -> Result<Option<TantivyDocument>> {
            let q = term_query(self.fields.key, &format!("{kind}:{url}"));
            let top = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
            match top.first() {
                Some((_, addr)) => Ok(Some(searcher.doc(*addr)?)),
                None => Ok(None),
            }
        };
        let (Some(record), Some(content)) = (get(KIND_PAGE)?, get(KIND_CONTENT)?) else {
            return Ok(None);
        };
        let json = |d: &TantivyDocument| {
            d.get_first(self.fields.record)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let record: PageRecord = serde_json::from_str(&json(&record))?;
        if !scope.collections().contains(&record.collection) {
            return Ok(None);
        }
        let page: Page = serde_json::from_str(&json(&content))?;
        Ok(Some((record, page)))
    }

    /// The chunks of one page, in order (for tests and inspection).
    pub fn page_chunks(&self, url: &str) -> Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let q = BooleanQuery::new(vec![
            (Occur::Must, term_query(self.fields.kind, KIND_CHUNK)),
            (Occur::Must, term_query(self.fields.url, url)),
        ]);
        let top = searcher.search(&q, &TopDocs::with_limit(10_000).order_by_score())?;
        let mut hits = Vec::new();
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            hits.push((self.ordinal(&doc), self.hit(&doc, score, "")));
        }
        hits.sort_by_key(|(o, _)| *o);
        Ok(hits.into_iter().map(|(_, h)| h).collect())
    }

    fn ordinal(&self, doc: &TantivyDocument) -> u64 {
        doc.get_first(self.fields.ordinal)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }

    /// Search chunks in the given scope, best first, by words, meaning or both.
    pub fn search(&self, req: &SearchRequest<'_>) -> Result<Vec<Hit>> {
        if req.scope.collections().is_empty() || req.limit == 0 {
            return Ok(Vec::new());
        }
        let named = if req.site.is_none() && req.options.town_filter {
            self.named_site(req.query)?
        } else {
            None
        };
        let site = req.site.or(named.as_deref());
        let searcher = self.reader.searcher();
        let ranked: Vec<(f32, DocAddress)> = match req.mode {
            SearchMode::Bm25 => self.bm25(&searcher, req, site, req.limit)?,
            SearchMode::Dense => self.dense(&searcher, req, site, req.limit)?,
            SearchMode::Hybrid => {
                // fuse deep candidate lists; RRF needs more than the final few
                let depth = req.limit.max(FUSION_DEPTH);
                let bm25: Vec<DocAddress> = self
                    .bm25(&searcher, req, site, depth)?
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect();
                let dense: Vec<DocAddress> = self
                    .dense(&searcher, req, site, depth)?
                    .into_iter()
                    .map(|(_, a)| a)
                    .collect();
                dense::reciprocal_rank_fusion(&[&bm25, &dense], RRF_K)
                    .into_iter()
                    .take(req.limit)
                    .map(|(a, s)| (s, a))
                    .collect()
            }
        };
        let mut hits = Vec::with_capacity(ranked.len());
        for (score, addr) in ranked {
            let doc: TantivyDocument = searcher.doc(addr)?;
            hits.push(self.hit(&doc, score, req.query));
        }
        Ok(hits)
    }

    /// The embedding model the index's vectors were made with, and their dimension.
    pub fn embedding_model(&self) -> Result<Option<(String, usize)>> {
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &term_query(self.fields.key, KEY_EMBEDDING),
            &TopDocs::with_limit(1).order_by_score(),
        )?;
        let Some((_, addr)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(*addr)?;
        Ok(doc
            .get_first(self.fields.record)
            .and_then(|v| v.as_str())
            .and_then(|j| serde_json::from_str(j).ok()))
    }

    fn dense(
        &self,
        searcher: &tantivy::Searcher,
        req: &SearchRequest<'_>,
        site: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(f32, DocAddress)>> {
        let qv = req.query_vector.ok_or(IndexError::NoQueryVector)?;
        match self.embedding_model()? {
            None => return Err(IndexError::NoVectors),
            Some((model, _)) if model != qv.model_id => {
                return Err(IndexError::VectorModel {
                    index: model,
                    query: qv.model_id.to_owned(),
                });
            }
            Some(_) => {}
        }
        let collections: Vec<&str> = req
            .scope
            .collections()
            .iter()
            .map(|c| c.0.as_str())
            .collect();
        let f = dense::DenseFields {
            kind: self.fields.kind,
            vec: self.fields.vec,
            collection: self.fields.collection,
            site: self.fields.site,
        };
        Ok(self
            .vectors
            .search(searcher, &f, qv.vector, &collections, site, limit)?)
    }

    fn bm25(
        &self,
        searcher: &tantivy::Searcher,
        req: &SearchRequest<'_>,
        site: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(f32, DocAddress)>> {
        let f = self.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add_terms = |field: Field, analyzer: &str, boost: f32| {
            let mut analyzer = self
                .index
                .tokenizers()
                .get(analyzer)
                .expect("analyzers are registered at open");
            let mut terms = analysis::tokens(&mut analyzer, req.query);
            terms.sort();
            terms.dedup();
            for t in terms {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(field, &t),
                    IndexRecordOption::WithFreqs,
                ));
                should.push((Occur::Should, Box::new(BoostQuery::new(q, boost))));
            }
        };
        if req.options.stem {
            add_terms(f.all, analysis::STEM, 1.0);
        } else {
            add_terms(f.plain, analysis::PLAIN, 1.0);
        }
        if req.options.compounds {
            add_terms(f.grams, analysis::GRAMS, GRAMS_WEIGHT);
        }
        if should.is_empty() {
            return Ok(Vec::new());
        }
        let scope: Vec<(Occur, Box<dyn Query>)> = req
            .scope
            .collections()
            .iter()
            .map(|c| (Occur::Should, term_query(f.collection, &c.0)))
            .collect();
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, term_query(f.kind, KIND_CHUNK)),
            (Occur::Must, Box::new(BooleanQuery::new(scope))),
            (Occur::Must, Box::new(BooleanQuery::new(should))),
        ];
        if let Some(site) = site {
            must.push((Occur::Must, term_query(f.site, site)));
        }
        let query = BooleanQuery::new(must);
        Ok(searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?)
    }

    fn hit(&self, doc: &TantivyDocument, score: f32, query: &str) -> Hit {
        let f = self.fields;
        let s = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let url = s(f.url);
        let title = s(f.title);
        let heading_path: Vec<String> = s(f.heading)
            .split(HEADING_SEP)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        let fragment = s(f.fragment);
        let text = s(f.body);
        Hit {
            deep_link: if fragment.is_empty() {
                url.clone()
            } else {
                format!("{url}#{fragment}")
            },
            heading: heading_path
                .last()
                .cloned()
                .unwrap_or_else(|| title.clone()),
            snippet: snippet(&text, query, 240),
            url,
            title,
            heading_path,
            text,
            score,
            kind: match s(f.doc_kind).as_str() {
                "pdf" => DocKind::Pdf,
                "docx" => DocKind::Docx,
                "odt" => DocKind::Odt,
                "text" => DocKind::Text,
                _ => DocKind::Html,
            },
            site: s(f.site),
            collection: s(f.collection),
        }
    }
}

const HEADING_SEP: &str = " › ";

/// The text a chunk is embedded as: its page title and headings give it context.
fn passage_text(c: &Chunk) -> String {
    format!(
        "{}\n{}\n{}",
        c.page_title,
        c.heading_path.join(HEADING_SEP),
        c.text
    )
}

/// Rebuild a chunk from its stored fields.
fn stored_chunk(f: &Fields, doc: &TantivyDocument) -> Chunk {
    let s = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let fragment = s(f.fragment);
    Chunk {
        url: s(f.url),
        page_title: s(f.title),
        heading_path: s(f.heading)
            .split(HEADING_SEP)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        fragment: (!fragment.is_empty()).then_some(fragment),
        text: s(f.body),
        ordinal: doc
            .get_first(f.ordinal)
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32,
    }
}

fn term_query(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// A window of the text around the first query word found, else the start.
fn snippet(text: &str, query: &str, max_chars: usize) -> String {
    let lower = text.to_lowercase();
    let start_byte = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 4)
        .filter_map(|w| {
            let w = w.to_lowercase();
            // match on a prefix so inflected forms are found too
            let stem: String = w.chars().take(5).collect();
            lower.find(&stem)
        })
        .min()
        .unwrap_or(0);
    // lowercasing can shift byte offsets for a few characters; fall back to the start
    let start_byte = if text.is_char_boundary(start_byte) && lower.len() == text.len() {
        start_byte
    } else {
        0
    };
    let chars_before = text[..start_byte].chars().count();
    let skip = chars_before.saturating_sub(60);
    let window: String = text.chars().skip(skip).take(max_chars).collect();
    let mut out = window.split_whitespace().collect::<Vec<_>>().join(" ");
    if skip > 0 {
        out.insert_str(0, "… ");
    }
    if text.chars().count() > skip + max_chars {
        out.push_str(" …");
    }
    out
}

/// The single writer. Changes become visible (and durable) at [`IndexWriter::commit`].
///
/// Dropping it waits for the segment merges its commits started, before the lock is given
/// up. tantivy's own writer cancels them on drop, but a merge already running goes on in the
/// background, unowned: its CPU time is spent for nothing and its output files stay on disk.
/// Writers here are short (one per crawl, upload or refresh), so that happened at almost
/// every drop: a bulk load of 100 towns left 21 GB of such files beside a 1 GB index and
/// slowed down quadratically. Merges of a small town's index take milliseconds; a large
/// county index can make one write in many wait seconds for the merge it triggered. A
/// writer dropped with uncommitted changes discards them without waiting.
pub struct IndexWriter {
    /// `None` only while dropping.
    inner: Option<tantivy::IndexWriter>,
    /// Changes since the last commit or rollback.
    dirty: bool,
    fields: Fields,
    reader: IndexReader,
    embedder: Option<Arc<dyn ChunkEmbedder>>,
    embedded: u64,
    reused: u64,
}

impl Drop for IndexWriter {
    fn drop(&mut self) {
        let Some(w) = self.inner.take() else { return };
        if self.dirty {
            // uncommitted changes are dropped: tantivy's own drop discards them, whereas
            // waiting would first write them into a segment nobody keeps
            drop(w);
        } else if let Err(e) = w.wait_merging_threads() {
            // the index stays as the last commit left it; a later writer merges again
            tracing::warn!(error = %e, "a segment merge of the index failed");
        }
    }
}

impl IndexWriter {
    fn tantivy(&mut self) -> &mut tantivy::IndexWriter {
        self.inner.as_mut().expect("the tantivy writer is only taken when dropping")
    }

    /// The tantivy writer, for a change that the next commit makes durable.
    fn changing(&mut self) -> &mut tantivy::IndexWriter {
        self.dirty = true;
        self.tantivy()
    }

    /// Replace everything stored for `record.url`: its record and, when `page` is given, its
    /// chunks. With `page = None` only the record is replaced and existing chunks stay.
    /// Returns the number of chunks written.
    pub fn upsert(&mut self, record: &PageRecord, page: Option<&Page>) -> Result<u32> {
        let f = self.fields;
        self.changing().delete_term(Term::from_field_text(
            f.key,
            &format!("{KIND_PAGE}:{}", record.url),
        ));
        let mut record = record.clone();
        if let Some(page) = page {
            let chunks = if record.indexed {
                chunk::chunk_page(page)
            } else {
                Vec::new()
            };
            let vectors = self.vectors_for(&record.url, &chunks)?;
            self.delete_chunks(&record.url);
            record.n_chunks = chunks.len() as u32;
            for (i, c) in chunks.iter().enumerate() {
                self.add_chunk(&record, c, vectors.as_ref().map(|v| v[i].as_slice()))?;
            }
            self.delete_content(&record.url);
            if record.indexed {
                self.add_content(&record, page)?;
            }
        }
        self.add_record(&record)?;
        Ok(record.n_chunks)
    }

    fn add_record(&mut self, record: &PageRecord) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.kind, KIND_PAGE);
        doc.add_text(f.key, format!("{KIND_PAGE}:{}", record.url));
        doc.add_text(f.url, &record.url);
        doc.add_text(f.site, &record.site);
        doc.add_text(f.collection, &record.collection.0);
        doc.add_text(f.record, serde_json::to_string(record)?);
        self.changing().add_document(doc)?;
        Ok(())
    }

    fn delete_content(&mut self, url: &str) {
        let term = Term::from_field_text(self.fields.key, &format!("{KIND_CONTENT}:{url}"));
        self.changing().delete_term(term);
    }

    fn add_content(&mut self, record: &PageRecord, page: &Page) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.kind, KIND_CONTENT);
        doc.add_text(f.key, format!("{KIND_CONTENT}:{}", record.url));
        doc.add_text(f.url, &record.url);
        doc.add_text(f.site, &record.site);
        doc.add_text(f.collection, &record.collection.0);
        doc.add_text(f.visibility, record.visibility.as_key());
        doc.add_text(f.record, serde_json::to_string(page)?);
        self.changing().add_document(doc)?;
        Ok(())
    }

    /// Use this embedder for chunks written from now on (None: no vectors).
    pub fn set_embedder(&mut self, embedder: Option<Arc<dyn ChunkEmbedder>>) {
        self.embedder = embedder;
    }

    /// Chunks embedded by the model / vectors reused from unchanged chunks, so far.
    pub fn embedding_counts(&self) -> (u64, u64) {
        (self.embedded, self.reused)
    }

    /// Vectors for `chunks` of `url`: reused from the committed index where a chunk's text is
    /// unchanged, computed by the embedder for the rest. None without an embedder.
    fn vectors_for(&mut self, url: &str, chunks: &[Chunk]) -> Result<Option<Vec<Vec<f32>>>> {
        let Some(embedder) = self.embedder.clone() else {
            return Ok(None);
        };
        if chunks.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let texts: Vec<String> = chunks.iter().map(passage_text).collect();
        let mut known = self.existing_vectors(url, embedder.dim())?;
        let mut missing: Vec<usize> = Vec::new();
        let mut out: Vec<Option<Vec<f32>>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let v = known.remove(t);
                if v.is_none() {
                    missing.push(i);
                }
                v
            })
            .collect();
        self.reused += (texts.len() - missing.len()) as u64;
        if !missing.is_empty() {
            let batch: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let vecs = embedder
                .embed_passages(&batch)
                .map_err(IndexError::Embedding)?;
            if vecs.len() != batch.len() {
                return Err(IndexError::Embedding(format!(
                    "asked for {} vectors, got {}",
                    batch.len(),
                    vecs.len()
                )));
            }
            self.embedded += vecs.len() as u64;
            for (i, v) in missing.into_iter().zip(vecs) {
                out[i] = Some(v);
            }
        }
        Ok(Some(
            out.into_iter().map(|v| v.unwrap_or_default()).collect(),
        ))
    }

    /// Committed vectors of a page's chunks, by passage text.
    fn existing_vectors(&self, url: &str, dim: usize) -> Result<HashMap<String, Vec<f32>>> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let q = BooleanQuery::new(vec![
            (Occur::Must, term_query(f.kind, KIND_CHUNK)),
            (Occur::Must, term_query(f.url, url)),
        ]);
        let mut out = HashMap::new();
        for (_, addr) in searcher.search(&q, &TopDocs::with_limit(10_000).order_by_score())? {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let Some(bytes) = doc.get_first(f.vec).and_then(|v| v.as_bytes()) else {
                continue;
            };
            let v = dense::decode(bytes);
            if v.len() != dim {
                continue;
            }
            let c = stored_chunk(&f, &doc);
            out.insert(passage_text(&c), v);
        }
        Ok(out)
    }

    /// Give every chunk that has no vector (or one of another model) a vector, rewriting only
    /// those pages. For indexes built before the embedder was available. Returns the number
    /// of pages rewritten; commit afterwards.
    pub fn embed_missing(&mut self, index: &SearchIndex) -> Result<usize> {
        let Some(embedder) = self.embedder.clone() else {
            return Ok(0);
        };
        let same_model = index
            .embedding_model()?
            .is_some_and(|(m, d)| m == embedder.model_id() && d == embedder.dim());
        let f = self.fields;
        let searcher = self.reader.searcher();
        let pages = searcher.search(
            &term_query(f.kind, KIND_PAGE),
            &TopDocs::with_limit(searcher.num_docs().max(1) as usize).order_by_score(),
        )?;
        let mut rewritten = 0;
        for (_, addr) in pages {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let Some(record) = doc.get_first(f.record).and_then(|v| v.as_str()) else {
                continue;
            };
            let record: PageRecord = serde_json::from_str(record)?;
            if record.n_chunks == 0 {
                continue;
            }
            let q = BooleanQuery::new(vec![
                (Occur::Must, term_query(f.kind, KIND_CHUNK)),
                (Occur::Must, term_query(f.url, &record.url)),
            ]);
            let mut chunks: Vec<(Chunk, bool)> = Vec::new();
            for (_, a) in searcher.search(&q, &TopDocs::with_limit(10_000).order_by_score())? {
                let d: TantivyDocument = searcher.doc(a)?;
                let has = same_model
                    && d.get_first(f.vec)
                        .and_then(|v| v.as_bytes())
                        .is_some_and(|b| b.len() == embedder.dim() * 4);
                chunks.push((stored_chunk(&f, &d), has));
            }
            if chunks.iter().all(|(_, has)| *has) {
                continue;
            }
            chunks.sort_by_key(|(c, _)| c.ordinal);
            let chunks: Vec<Chunk> = chunks.into_iter().map(|(c, _)| c).collect();
            let texts: Vec<String> = chunks.iter().map(passage_text).collect();
            let vecs = embedder
                .embed_passages(&texts)
                .map_err(IndexError::Embedding)?;
            self.embedded += vecs.len() as u64;
            self.delete_chunks(&record.url);
            for (c, v) in chunks.iter().zip(&vecs) {
                self.add_chunk(&record, c, Some(v))?;
            }
            rewritten += 1;
        }
        Ok(rewritten)
    }

    fn delete_chunks(&mut self, url: &str) {
        // chunk keys are "chunk:<url>"; all chunks of a page share it
        let term = Term::from_field_text(self.fields.key, &format!("{KIND_CHUNK}:{url}"));
        self.changing().delete_term(term);
    }

    fn add_chunk(&mut self, record: &PageRecord, c: &Chunk, vector: Option<&[f32]>) -> Result<()> {
        let f = self.fields;
        let mut doc = TantivyDocument::new();
        let heading = c.heading_path.join(HEADING_SEP);
        doc.add_text(f.kind, KIND_CHUNK);
        doc.add_text(f.key, format!("{KIND_CHUNK}:{}", c.url));
        doc.add_text(f.url, &c.url);
        doc.add_text(f.site, &record.site);
        doc.add_text(f.collection, &record.collection.0);
        doc.add_text(f.visibility, record.visibility.as_key());
        doc.add_text(
            f.doc_kind,
            match record.kind {
                DocKind::Html => "html",
                DocKind::Pdf => "pdf",
                DocKind::Docx => "docx",
                DocKind::Odt => "odt",
                DocKind::Text => "text",
            },
        );
        doc.add_text(f.title, &c.page_title);
        doc.add_text(f.heading, &heading);
        if let Some(town) = &record.site_name {
            doc.add_text(f.town, town);
        }
        doc.add_text(f.body, &c.text);
        let all = format!("{}\n{}\n{}", c.page_title, heading, c.text);
        doc.add_text(f.plain, &all);
        doc.add_text(f.all, &all);
        doc.add_text(f.grams, &all);
        if let Some(fr) = &c.fragment {
            doc.add_text(f.fragment, fr);
        }
        doc.add_u64(f.ordinal, u64::from(c.ordinal));
        if let Some(v) = vector.filter(|v| !v.is_empty()) {
            doc.add_bytes(f.vec, &dense::encode(v));
        }
        self.changing().add_document(doc)?;
        Ok(())
    }

    /// Remove a page: its record, its chunks and its stored structure.
    pub fn remove(&mut self, url: &str) {
        let term = Term::from_field_text(self.fields.key, &format!("{KIND_PAGE}:{url}"));
        self.changing().delete_term(term);
        self.delete_chunks(url);
        self.delete_content(url);
    }

    /// Remove everything of one collection: chunks, records and stored structure (a portal
    /// collection that was deleted). Never call it with the website's collection by accident:
    /// it removes exactly what carries this collection id.
    pub fn remove_collection(&mut self, collection: &lotse_core::CollectionId) {
        let term = Term::from_field_text(self.fields.collection, &collection.0);
        self.changing().delete_term(term);
    }

    /// After a commit that deleted documents: rewrite the segments holding deleted documents
    /// so their text is gone from disk, not only from search (tantivy otherwise keeps it until
    /// a merge happens to pick the segment). Returns the number of segments rewritten.
    pub fn purge_deleted(&mut self) -> Result<usize> {
        let segments: Vec<tantivy::index::SegmentId> = self
            .tantivy()
            .index()
            .searchable_segment_metas()?
            .into_iter()
            .filter(|m| m.has_deletes())
            .map(|m| m.id())
            .collect();
        if segments.is_empty() {
            return Ok(0);
        }
        self.tantivy().merge(&segments).wait()?;
        // old segment files go now, not at the next commit
        self.tantivy().garbage_collect_files().wait()?;
        self.reader.reload()?;
        Ok(segments.len())
    }

    /// Store a site's state (learned crawl hints).
    pub fn put_site_state<T: Serialize>(
        &mut self,
        site: &str,
        site_name: Option<&str>,
        state: &T,
    ) -> Result<()> {
        let f = self.fields;
        let key = format!("{KIND_SITE}:{site}");
        self.changing().delete_term(Term::from_field_text(f.key, &key));
        let mut doc = TantivyDocument::new();
        doc.add_text(f.kind, KIND_SITE);
        doc.add_text(f.key, &key);
        doc.add_text(f.site, site);
        if let Some(name) = site_name {
            doc.add_text(f.town, name);
        }
        doc.add_text(f.record, serde_json::to_string(state)?);
        self.changing().add_document(doc)?;
        Ok(())
    }

    /// Make all changes since the last commit durable and visible, atomically.
    pub fn commit(&mut self) -> Result<()> {
        if let Some(e) = self.embedder.clone() {
            let f = self.fields;
            self.tantivy()
                .delete_term(Term::from_field_text(f.key, KEY_EMBEDDING));
            let mut doc = TantivyDocument::new();
            doc.add_text(f.kind, KIND_META);
            doc.add_text(f.key, KEY_EMBEDDING);
            doc.add_text(f.record, serde_json::to_string(&(e.model_id(), e.dim()))?);
            self.changing().add_document(doc)?;
        }
        self.tantivy().commit()?;
        self.dirty = false;
        self.reader.reload()?;
        Ok(())
    }

    /// Drop all changes since the last commit.
    pub fn rollback(&mut self) -> Result<()> {
        // a clean writer has nothing to drop; tantivy's rollback would also replace its
        // writer and so leave the merges of earlier commits without an owner
        if self.dirty {
            self.tantivy().rollback()?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Group hits by URL in rank order, keeping each URL's best hit: what "distinct source URLs"
/// means for evaluation and for citing.
pub fn distinct_urls(hits: &[Hit]) -> Vec<&Hit> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    hits.iter()
        .filter(|h| seen.insert(h.url.as_str(), ()).is_none())
        .collect()
}
