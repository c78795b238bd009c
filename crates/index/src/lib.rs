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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lotse_core::{Chunk, CollectionScope, DocKind, Page, PageRecord};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, Term};

/// Bumped whenever the schema or the analysis changes; an index of another version is refused
/// with a clear message instead of returning wrong results.
pub const SCHEMA_VERSION: u32 = 1;

/// Weight of the compound n-gram field relative to the word field. Chosen on the dev
/// questions: recall@5 and MRR sit on a plateau from 0.4 to 1.0 (see ARCHITECTURE.md).
const GRAMS_WEIGHT: f32 = 0.6;

const KIND_CHUNK: &str = "chunk";
const KIND_PAGE: &str = "page";
const KIND_SITE: &str = "site";

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

/// A search request. `scope` is mandatory: it names the collections the caller may see.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub scope: &'a CollectionScope,
    pub limit: usize,
    /// Restrict to one site (origin); `None` searches every site in scope.
    pub site: Option<&'a str>,
    pub options: MatchOptions,
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
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start writing. Only one writer may exist per index (tantivy holds a lock file).
    pub fn writer(&self) -> Result<IndexWriter> {
        let inner = self
            .index
            .writer_with_num_threads(1, 64 * 1024 * 1024)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => IndexError::Locked {
                    path: self.dir.clone(),
                },
                e => IndexError::Tantivy(e),
            })?;
        Ok(IndexWriter {
            inner,
            fields: self.fields,
        })
    }

    /// See the latest commit.
    pub fn reload(&self) -> Result<()> {
        Ok(self.reader.reload()?)
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
        let searcher = self.reader.searcher();
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

    /// The one site whose town the query names, if exactly one is named.
    fn named_site(&self, query: &str) -> Result<Option<String>> {
        let sites = self.site_names()?;
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

    /// BM25 search over chunks in the given scope, best first.
    pub fn search(&self, req: &SearchRequest<'_>) -> Result<Vec<Hit>> {
        if req.scope.collections().is_empty() || req.limit == 0 {
            return Ok(Vec::new());
        }
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
        let named = if req.site.is_none() && req.options.town_filter {
            self.named_site(req.query)?
        } else {
            None
        };
        if let Some(site) = req.site.or(named.as_deref()) {
            must.push((Occur::Must, term_query(f.site, site)));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(req.limit).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            hits.push(self.hit(&doc, score, req.query));
        }
        Ok(hits)
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
            kind: if s(f.doc_kind) == "pdf" {
                DocKind::Pdf
            } else {
                DocKind::Html
            },
            site: s(f.site),
            collection: s(f.collection),
        }
    }
}

const HEADING_SEP: &str = " › ";

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
pub struct IndexWriter {
    inner: tantivy::IndexWriter,
    fields: Fields,
}

impl IndexWriter {
    /// Replace everything stored for `record.url`: its record and, when `page` is given, its
    /// chunks. With `page = None` only the record is replaced and existing chunks stay.
    /// Returns the number of chunks written.
    pub fn upsert(&mut self, record: &PageRecord, page: Option<&Page>) -> Result<u32> {
        let f = self.fields;
        self.inner.delete_term(Term::from_field_text(
            f.key,
            &format!("{KIND_PAGE}:{}", record.url),
        ));
        let mut record = record.clone();
        if let Some(page) = page {
            self.delete_chunks(&record.url);
            let chunks = if record.indexed {
                chunk::chunk_page(page)
            } else {
                Vec::new()
            };
            record.n_chunks = chunks.len() as u32;
            for c in &chunks {
                self.add_chunk(&record, c)?;
            }
        }
        let mut doc = TantivyDocument::new();
        doc.add_text(f.kind, KIND_PAGE);
        doc.add_text(f.key, format!("{KIND_PAGE}:{}", record.url));
        doc.add_text(f.url, &record.url);
        doc.add_text(f.site, &record.site);
        doc.add_text(f.collection, &record.collection.0);
        doc.add_text(f.record, serde_json::to_string(&record)?);
        self.inner.add_document(doc)?;
        Ok(record.n_chunks)
    }

    fn delete_chunks(&mut self, url: &str) {
        // chunk keys are "chunk:<url>"; all chunks of a page share it
        self.inner.delete_term(Term::from_field_text(
            self.fields.key,
            &format!("{KIND_CHUNK}:{url}"),
        ));
    }

    fn add_chunk(&mut self, record: &PageRecord, c: &Chunk) -> Result<()> {
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
        self.inner.add_document(doc)?;
        Ok(())
    }

    /// Remove a page: its record and its chunks.
    pub fn remove(&mut self, url: &str) {
        self.inner.delete_term(Term::from_field_text(
            self.fields.key,
            &format!("{KIND_PAGE}:{url}"),
        ));
        self.delete_chunks(url);
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
        self.inner.delete_term(Term::from_field_text(f.key, &key));
        let mut doc = TantivyDocument::new();
        doc.add_text(f.kind, KIND_SITE);
        doc.add_text(f.key, &key);
        doc.add_text(f.site, site);
        if let Some(name) = site_name {
            doc.add_text(f.town, name);
        }
        doc.add_text(f.record, serde_json::to_string(state)?);
        self.inner.add_document(doc)?;
        Ok(())
    }

    /// Make all changes since the last commit durable and visible, atomically.
    pub fn commit(&mut self) -> Result<()> {
        self.inner.commit()?;
        Ok(())
    }

    /// Drop all changes since the last commit.
    pub fn rollback(&mut self) -> Result<()> {
        self.inner.rollback()?;
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
