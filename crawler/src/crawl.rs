//! The crawl loop: frontier, politeness, robots.txt, sitemaps, incremental revalidation, and
//! batched, atomic index updates.
//!
//! One scheduler task owns all state (frontier, seen set, records, index writer); fetches run
//! as tasks and report back. Index changes are committed every `commit_every` documents and
//! at the end, so a crawl killed at any moment leaves the index of the last commit, and the
//! next crawl revalidates what it already has (304s) instead of starting over.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lotse_core::{CollectionId, DocKind, Page, PageRecord, Visibility};
use lotse_index::{ChunkEmbedder, IndexWriter, SearchIndex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use url::Url;

use crate::fetch::{self, Outcome, Validators};
use crate::robots::Robots;
use crate::urls::{self, Scope, TrapGuard};
use crate::{CrawlError, sitemap};
use lotse_extract::boilerplate::RepeatedText;
use lotse_extract::{charset, html, pdf};

/// Everything a crawl needs to know. [`CrawlConfig::new`] gives polite defaults.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    pub start: Url,
    /// Further URL prefixes that belong to the site (e.g. a document server).
    pub extra_prefixes: Vec<Url>,
    pub collection: CollectionId,
    pub visibility: Visibility,
    /// At most this many page requests (robots.txt and sitemaps not counted).
    pub max_pages: usize,
    /// Link depth from the start page; sitemap entries count as depth 0.
    pub max_depth: u32,
    pub max_response_bytes: u64,
    pub request_timeout: Duration,
    /// Requests in flight at once per host.
    pub concurrency: usize,
    /// Pause between request starts per host (robots.txt `Crawl-delay` wins when larger).
    pub delay: Duration,
    /// Contact URL in the User-Agent, so site operators can reach the town's IT.
    pub contact_url: String,
    /// Longest `Retry-After` the crawler waits for; longer ones count as failures.
    pub max_retry_after: Duration,
    /// How many URLs of one query family (same path, same parameter names) are crawled.
    pub max_query_variants: usize,
    pub commit_every: usize,
    /// The town's name as citizens say it ("Gemeinde Bad Boll"); learned from the site when unset.
    pub site_name: Option<String>,
    /// Fetch only `start` (and same-site redirects from it), unconditionally: no sitemaps, no
    /// links followed, nothing removed but `start` itself when it answers 404/410. The CMS's
    /// publish webhook.
    pub single_page: bool,
    /// How long to wait for the index's one writer while another holds it (an upload, a
    /// page refresh, or a replica sharing the index directory); then the crawl fails with
    /// `IndexError::Locked`.
    pub writer_wait: Duration,
}

impl CrawlConfig {
    pub fn new(start: Url) -> CrawlConfig {
        CrawlConfig {
            start,
            extra_prefixes: Vec::new(),
            collection: CollectionId::website(),
            visibility: Visibility::Public,
            max_pages: 5000,
            max_depth: 12,
            max_response_bytes: 20 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            concurrency: 2,
            delay: Duration::from_millis(250),
            contact_url: "https://github.com/lotse".to_owned(),
            max_retry_after: Duration::from_secs(30),
            max_query_variants: 10,
            commit_every: 25,
            site_name: None,
            single_page: false,
            writer_wait: Duration::from_secs(120),
        }
    }

    /// Re-fetch and re-index one page of an already crawled site (see
    /// [`CrawlConfig::single_page`]); the site's learned state (boilerplate, ignored query
    /// parameters, duplicates) is reused.
    pub fn page(url: Url) -> CrawlConfig {
        CrawlConfig {
            max_pages: 6, // the page and a short chain of same-site redirects
            max_depth: 0,
            delay: Duration::ZERO,
            single_page: true,
            // the CMS waits for the answer: a busy index is a 503 with Retry-After soon
            writer_wait: Duration::from_secs(10),
            ..CrawlConfig::new(url)
        }
    }

    pub fn user_agent(&self) -> String {
        format!(
            "lotse/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            self.contact_url
        )
    }
}

/// A failed URL and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub url: String,
    pub reason: String,
}

/// What a crawl did. Printed by `lotse crawl --json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CrawlSummary {
    pub site: String,
    /// Documents (HTML pages and PDFs) written to the index in this crawl: new or changed.
    pub pages_indexed: u64,
    /// Of these, PDFs.
    pub pdfs: u64,
    /// Answered 304 Not Modified: nothing downloaded.
    pub not_modified: u64,
    /// Downloaded again but with unchanged content: nothing re-indexed.
    pub unchanged: u64,
    pub skipped_robots: u64,
    /// Other skips by reason: trap, depth, content type, duplicate, noindex, thin content ...
    pub skipped: BTreeMap<String, u64>,
    pub failed: u64,
    pub failed_by_reason: BTreeMap<String, u64>,
    pub failures: Vec<Failure>,
    pub removed: u64,
    pub redirects: u64,
    /// HTTP requests sent, including robots.txt and sitemaps.
    pub requests: u64,
    /// Documents of this site in the index after the crawl.
    pub pages_total: u64,
    pub chunks_total: u64,
    /// False when a bound (max pages) stopped the crawl; then nothing is removed.
    pub complete: bool,
    /// Chunk embeddings computed in this crawl, and reused from unchanged chunks.
    pub chunks_embedded: u64,
    pub embeddings_reused: u64,
    pub duration_ms: u64,
}

impl CrawlSummary {
    fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    fn fail(&mut self, url: &Url, reason: String) {
        self.failed += 1;
        let key = reason.split(':').next().unwrap_or(&reason).to_owned();
        *self.failed_by_reason.entry(key).or_default() += 1;
        self.failures.push(Failure {
            url: url.to_string(),
            reason,
        });
    }
}

/// Progress reports for a terminal or a log.
pub trait Progress: Send + Sync {
    fn update(&self, done: u64, total: u64, current: &str);
    fn finish(&self) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {
    fn update(&self, _: u64, _: u64, _: &str) {}
}

/// Per-site state kept in the index between crawls.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SiteState {
    /// Query parameters learned to not change content (from canonical links).
    ignored_params: BTreeSet<String>,
    boilerplate: RepeatedText,
    /// How often each site name candidate (og:site_name, title suffix) was seen.
    #[serde(default)]
    site_names: BTreeMap<String, u32>,
}

impl SiteState {
    /// The name the site presents itself under: the most frequent candidate, once it has been
    /// seen on at least three pages.
    fn site_name(&self) -> Option<String> {
        self.site_names
            .iter()
            .filter(|(_, n)| **n >= 3)
            .max_by_key(|(name, n)| (**n, std::cmp::Reverse((*name).clone())))
            .map(|(name, _)| name.clone())
    }
}

#[derive(Debug, Clone)]
struct Task {
    url: Url,
    depth: u32,
    link_text: Option<String>,
    attempt: u32,
}

struct Fetched {
    task: Task,
    outcome: Outcome,
}

/// A document ready for the index, kept until the next commit so that boilerplate learned
/// from later pages can still be stripped.
struct Pending {
    record: PageRecord,
    page: Option<Page>,
}

struct Crawler<'a> {
    cfg: &'a CrawlConfig,
    client: reqwest::Client,
    site: String,
    scope: Scope,
    index: &'a SearchIndex,
    writer: IndexWriter,
    progress: &'a dyn Progress,
    summary: CrawlSummary,
    state: SiteState,
    ignored: HashSet<String>,
    robots: HashMap<String, Arc<Robots>>,
    /// Previous records by canonical URL.
    old: HashMap<String, PageRecord>,
    /// Any fetched URL (canonical or alias) -> canonical URL of a previous record.
    old_by_url: HashMap<String, String>,
    frontier: VecDeque<Task>,
    seen: HashSet<String>,
    link_text: HashMap<String, String>,
    trap: TrapGuard,
    /// Canonical URLs confirmed in this crawl (indexed, unchanged, or 304).
    alive: HashSet<String>,
    /// Canonical URLs that failed transiently: not removed even when not alive.
    transient: HashSet<String>,
    /// Canonical URLs that answered 404 or 410.
    gone: HashSet<String>,
    /// content hash -> canonical URL, for duplicates without a canonical link.
    by_hash: HashMap<String, String>,
    aliases: HashMap<String, BTreeSet<String>>,
    pending: Vec<Pending>,
    next_slot: HashMap<String, Instant>,
    page_requests: usize,
    hit_bound: bool,
    successes: u64,
}

/// Crawl `cfg.start` into `index`. Returns the summary; fails only when the crawl cannot
/// start (bad URL, index locked) or when not a single response came back from the site.
pub async fn crawl(
    cfg: &CrawlConfig,
    index: &SearchIndex,
    progress: &dyn Progress,
) -> Result<CrawlSummary, CrawlError> {
    crawl_with_embedder(cfg, index, progress, None).await
}

/// [`crawl`], computing chunk embeddings for new or changed chunks with `embedder`.
pub async fn crawl_with_embedder(
    cfg: &CrawlConfig,
    index: &SearchIndex,
    progress: &dyn Progress,
    embedder: Option<Arc<dyn ChunkEmbedder>>,
) -> Result<CrawlSummary, CrawlError> {
    let started = Instant::now();
    if !matches!(cfg.start.scheme(), "http" | "https") || cfg.start.host_str().is_none() {
        return Err(CrawlError::InvalidUrl(cfg.start.to_string()));
    }
    let client = reqwest::Client::builder()
        .user_agent(cfg.user_agent())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| CrawlError::Client(e.to_string()))?;
    let site = urls::origin(&cfg.start);
    let state: SiteState = index.site_state(&site)?.unwrap_or_default();
    let ignored: HashSet<String> = state.ignored_params.iter().cloned().collect();
    let old: HashMap<String, PageRecord> = index
        .page_records(&site)?
        .into_iter()
        .map(|r| (r.url.clone(), r))
        .collect();
    let mut old_by_url = HashMap::new();
    for r in old.values() {
        old_by_url.insert(r.url.clone(), r.url.clone());
        for a in &r.aliases {
            old_by_url.insert(a.clone(), r.url.clone());
        }
    }
    // Identical content under two URLs keeps the URL already indexed, whichever of the two
    // answers first in this crawl (otherwise concurrency decides, and a re-crawl swaps them).
    let by_hash: HashMap<String, String> = old
        .values()
        .filter(|r| r.indexed)
        .map(|r| (r.content_hash.clone(), r.url.clone()))
        .collect();
    // wait for the index's one writer without blocking the runtime's thread
    let deadline = tokio::time::Instant::now() + cfg.writer_wait;
    let mut pause = Duration::from_millis(20);
    let mut writer = loop {
        match index.writer() {
            Err(lotse_index::IndexError::Locked { .. }) if tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => break other?,
        }
    };
    writer.set_embedder(embedder);
    let mut c = Crawler {
        cfg,
        client,
        scope: Scope::new(&cfg.start, &cfg.extra_prefixes),
        summary: CrawlSummary {
            site: site.clone(),
            ..CrawlSummary::default()
        },
        site,
        index,
        writer,
        progress,
        state,
        ignored,
        robots: HashMap::new(),
        old,
        old_by_url,
        frontier: VecDeque::new(),
        seen: HashSet::new(),
        link_text: HashMap::new(),
        trap: TrapGuard::new(cfg.max_query_variants),
        alive: HashSet::new(),
        transient: HashSet::new(),
        gone: HashSet::new(),
        by_hash,
        aliases: HashMap::new(),
        pending: Vec::new(),
        next_slot: HashMap::new(),
        page_requests: 0,
        hit_bound: false,
        successes: 0,
    };
    let res = c.run().await;
    if res.is_err() {
        // nothing half-done lands: drop uncommitted changes
        let _ = c.writer.rollback();
    }
    // the writer finishes its segment merges when dropped: off the runtime's threads
    let Crawler { writer, summary, .. } = c;
    let _ = tokio::task::spawn_blocking(move || drop(writer)).await;
    let mut summary = summary;
    res?;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    progress.finish();
    Ok(summary)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn content_hash(page: &Page) -> String {
    let json = serde_json::to_vec(&(&page.title, &page.blocks)).unwrap_or_default();
    let digest = Sha256::digest(&json);
    hex::encode(&digest[..16])
}

fn is_pdf(content_type: Option<&str>, bytes: &[u8]) -> bool {
    content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("application/pdf"))
        || bytes.starts_with(b"%PDF-")
}

fn is_html(content_type: Option<&str>, bytes: &[u8]) -> bool {
    match content_type.map(str::to_ascii_lowercase) {
        Some(ct) => ct.contains("text/html") || ct.contains("application/xhtml"),
        None => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
            head.contains("<html") || head.contains("<!doctype html")
        }
    }
}

/// Pages with less main text than this are tracked (for links and revalidation) but not
/// indexed: there is nothing to answer from.
const MIN_WORDS: usize = 8;

impl Crawler<'_> {
    async fn run(&mut self) -> Result<(), CrawlError> {
        let start = urls::normalize(&self.cfg.start, &self.ignored);
        self.robots_for(&start).await;
        if !self.cfg.single_page {
            self.seed_sitemaps(&start).await;
        }
        self.enqueue(start.clone(), 0, None, true);
        // the start page first: it is the most important one
        if let Some(pos) = self.frontier.iter().position(|t| t.url == start)
            && let Some(t) = self.frontier.remove(pos)
        {
            self.frontier.push_front(t);
        }

        let mut in_flight: JoinSet<Fetched> = JoinSet::new();
        loop {
            while in_flight.len() < self.cfg.concurrency.max(1) {
                let Some(task) = self.frontier.pop_front() else {
                    break;
                };
                if self.page_requests >= self.cfg.max_pages {
                    self.hit_bound = true;
                    self.frontier.clear();
                    break;
                }
                self.page_requests += 1;
                self.summary.requests += 1;
                let wait = self.reserve_slot(&task.url);
                let validators = self.validators_for(&task.url);
                let client = self.client.clone();
                let max = self.cfg.max_response_bytes;
                in_flight.spawn(async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let outcome = fetch::fetch(&client, &task.url, validators.as_ref(), max).await;
                    Fetched { task, outcome }
                });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let fetched = match joined {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "fetch task failed");
                    continue;
                }
            };
            self.handle(fetched).await?;
            let done = self.page_requests as u64;
            self.progress
                .update(done, done + self.frontier.len() as u64, "");
            if self.pending.len() >= self.cfg.commit_every {
                self.flush()?;
            }
        }
        if self.successes == 0 {
            return Err(CrawlError::Unreachable {
                url: self.cfg.start.to_string(),
                reason: self
                    .summary
                    .failures
                    .first()
                    .map(|f| f.reason.clone())
                    .unwrap_or_else(|| "no response".to_owned()),
            });
        }
        // one page says nothing about the others: only what answered 404/410 is removed
        self.summary.complete = !self.hit_bound && !self.cfg.single_page;
        {
            // after a complete crawl, everything not found again is gone; after an incomplete
            // one, only what answered 404/410
            let complete = self.summary.complete;
            let gone: Vec<String> = self
                .old
                .keys()
                .filter(|u| !self.alive.contains(*u))
                .filter(|u| self.gone.contains(*u) || (complete && !self.transient.contains(*u)))
                .cloned()
                .collect();
            for url in gone {
                tracing::info!(%url, "removing page that is gone");
                self.writer.remove(&url);
                self.summary.removed += 1;
            }
        }
        if !self.summary.complete && !self.cfg.single_page {
            tracing::warn!(
                max_pages = self.cfg.max_pages,
                "crawl stopped at max pages; pages not seen are kept"
            );
        }
        self.flush()?;
        (self.summary.chunks_embedded, self.summary.embeddings_reused) =
            self.writer.embedding_counts();
        self.index.reload()?;
        let records = self.index.page_records(&self.site)?;
        self.summary.pages_total = records.iter().filter(|r| r.indexed).count() as u64;
        self.summary.chunks_total = records.iter().map(|r| u64::from(r.n_chunks)).sum();
        Ok(())
    }

    /// Strip boilerplate learned so far, write pending documents and commit atomically.
    fn flush(&mut self) -> Result<(), CrawlError> {
        let site_name = self
            .cfg
            .site_name
            .clone()
            .or_else(|| self.state.site_name());
        for mut p in std::mem::take(&mut self.pending) {
            p.record.site_name = site_name.clone();
            if let Some(page) = p.page.as_mut()
                && page.kind == DocKind::Html
            {
                self.state.boilerplate.strip(page);
            }
            if let Some(aliases) = self.aliases.get(&p.record.url) {
                p.record.aliases = aliases.iter().cloned().collect();
            }
            self.writer.upsert(&p.record, p.page.as_ref())?;
        }
        self.state.ignored_params = self.ignored.iter().cloned().collect();
        self.writer
            .put_site_state(&self.site, site_name.as_deref(), &self.state)?;
        self.writer.commit()?;
        Ok(())
    }

    fn validators_for(&self, url: &Url) -> Option<Validators> {
        if self.cfg.single_page {
            // the CMS says the page changed: fetch it whole (validators may lag behind an
            // edit made within the same second)
            return None;
        }
        let canonical = self.old_by_url.get(url.as_str())?;
        let r = self.old.get(canonical)?;
        if r.etag.is_none() && r.last_modified.is_none() {
            return None;
        }
        Some(Validators {
            etag: r.etag.clone(),
            last_modified: r.last_modified.clone(),
        })
    }

    /// Politeness: when may the next request to this host start?
    fn reserve_slot(&mut self, url: &Url) -> Duration {
        let host = urls::origin(url);
        let delay = self
            .robots
            .get(&host)
            .and_then(|r| r.crawl_delay)
            .map_or(self.cfg.delay, |d| d.max(self.cfg.delay));
        let now = Instant::now();
        let slot = self.next_slot.get(&host).copied().unwrap_or(now).max(now);
        self.next_slot.insert(host, slot + delay);
        slot - now
    }

    async fn robots_for(&mut self, url: &Url) -> Arc<Robots> {
        let origin = urls::origin(url);
        if let Some(r) = self.robots.get(&origin) {
            return r.clone();
        }
        let robots_url = match url.join("/robots.txt") {
            Ok(u) => u,
            Err(_) => return Arc::new(Robots::allow_all()),
        };
        self.summary.requests += 1;
        let robots = match fetch::fetch(&self.client, &robots_url, None, 512 * 1024).await {
            Outcome::Body {
                bytes,
                content_type,
                ..
            } => {
                self.successes += 1;
                Robots::parse(
                    &charset::decode_text(&bytes, content_type.as_deref()),
                    "lotse",
                )
            }
            Outcome::Status { status, .. } if status >= 500 => {
                self.successes += 1;
                tracing::warn!(%robots_url, status, "robots.txt unavailable: crawling nothing on this host");
                Robots::disallow_all()
            }
            Outcome::Network { reason, detail } => {
                tracing::warn!(%robots_url, reason, %detail, "robots.txt unreachable");
                self.summary
                    .fail(&robots_url, format!("{reason}: {detail}"));
                Robots::disallow_all()
            }
            _ => {
                self.successes += 1;
                Robots::allow_all()
            }
        };
        let robots = Arc::new(robots);
        self.robots.insert(origin, robots.clone());
        robots
    }

    async fn seed_sitemaps(&mut self, start: &Url) {
        let robots = self.robots_for(start).await;
        let mut queue: VecDeque<Url> = robots
            .sitemaps
            .iter()
            .filter_map(|s| Url::parse(s).ok())
            .collect();
        if let Ok(default) = start.join("/sitemap.xml")
            && !queue.contains(&default)
        {
            queue.push_back(default);
        }
        let mut fetched = HashSet::new();
        let mut entries: Vec<(Url, Option<String>)> = Vec::new();
        while let Some(sm) = queue.pop_front() {
            if fetched.len() >= 50 || !fetched.insert(sm.to_string()) || !self.scope.contains(&sm) {
                continue;
            }
            self.summary.requests += 1;
            match fetch::fetch(&self.client, &sm, None, self.cfg.max_response_bytes).await {
                Outcome::Body {
                    bytes,
                    content_type,
                    ..
                } => {
                    self.successes += 1;
                    let parsed =
                        sitemap::parse(&charset::decode_text(&bytes, content_type.as_deref()));
                    for s in parsed.sitemaps {
                        if let Ok(u) = sm.join(&s) {
                            queue.push_back(u);
                        }
                    }
                    for (loc, lastmod) in parsed.urls {
                        if let Ok(u) = sm.join(&loc) {
                            entries.push((u, lastmod));
                        }
                    }
                }
                Outcome::Network { .. } => {}
                _ => self.successes += 1,
            }
        }
        // most recently modified first: changes reach the index soonest
        entries.sort_by(|a, b| b.1.cmp(&a.1));
        for (u, _) in entries {
            self.enqueue(u, 0, None, false);
        }
    }

    /// Re-normalise queued URLs after a parameter was learned to be irrelevant, dropping
    /// those that now equal a URL already seen.
    fn purge_frontier(&mut self) {
        let mut kept = VecDeque::with_capacity(self.frontier.len());
        for t in std::mem::take(&mut self.frontier) {
            let n = urls::normalize(&t.url, &self.ignored);
            if n == t.url {
                kept.push_back(t);
            } else if self.seen.insert(n.to_string()) {
                kept.push_back(Task { url: n, ..t });
            } else {
                self.summary.skip("duplicate_param");
            }
        }
        self.frontier = kept;
    }

    /// Add a URL to the frontier if it is new, in scope, allowed and not a trap.
    fn enqueue(&mut self, url: Url, depth: u32, link_text: Option<String>, front: bool) {
        let url = urls::normalize(&url, &self.ignored);
        if !self.scope.contains(&url) {
            return;
        }
        let key = url.to_string();
        if let Some(t) = link_text.filter(|t| !t.trim().is_empty()) {
            self.link_text.entry(key.clone()).or_insert(t);
        }
        if !self.seen.insert(key.clone()) {
            return;
        }
        if depth > self.cfg.max_depth {
            self.summary.skip("depth");
            return;
        }
        let origin = urls::origin(&url);
        if let Some(robots) = self.robots.get(&origin) {
            let path = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if !robots.allowed(&path) {
                tracing::debug!(%url, "disallowed by robots.txt");
                self.summary.skipped_robots += 1;
                return;
            }
        }
        if let Err(reason) = self.trap.admit(&url) {
            tracing::debug!(%url, ?reason, "crawler trap");
            self.summary.skip(match reason {
                urls::TrapReason::QueryFamily => "trap_query_family",
                urls::TrapReason::RepeatedSegments => "trap_repeated_path",
                urls::TrapReason::TooLong => "trap_long_url",
            });
            return;
        }
        let task = Task {
            link_text: self.link_text.get(&key).cloned(),
            url,
            depth,
            attempt: 0,
        };
        if front {
            self.frontier.push_front(task);
        } else {
            self.frontier.push_back(task);
        }
    }

    async fn handle(&mut self, f: Fetched) -> Result<(), CrawlError> {
        let Fetched { task, outcome } = f;
        let known = self.old_by_url.get(task.url.as_str()).cloned();
        match outcome {
            Outcome::NotModified => {
                self.successes += 1;
                self.summary.not_modified += 1;
                if let Some(canonical) = known {
                    self.alive.insert(canonical.clone());
                    let links = self
                        .old
                        .get(&canonical)
                        .map(|r| r.links.clone())
                        .unwrap_or_default();
                    for l in links {
                        if let Ok(u) = Url::parse(&l) {
                            self.enqueue(u, task.depth + 1, None, false);
                        }
                    }
                }
            }
            Outcome::Redirect { location, status } => {
                self.successes += 1;
                self.summary.redirects += 1;
                match location {
                    Some(to) if self.scope.contains(&to) => {
                        tracing::debug!(from = %task.url, %to, status, "redirect");
                        self.enqueue(to, task.depth, task.link_text, true);
                    }
                    Some(_) => self.summary.skip("redirect_out_of_scope"),
                    None => self.summary.fail(
                        &task.url,
                        format!("http_{status}: redirect without location"),
                    ),
                }
            }
            Outcome::Status {
                status,
                retry_after,
            } => {
                self.successes += 1;
                let retryable = matches!(status, 429 | 503);
                let wait = retry_after.unwrap_or(Duration::from_secs(5));
                if retryable && task.attempt < 2 && wait <= self.cfg.max_retry_after {
                    // back off the whole host, then try again
                    let host = urls::origin(&task.url);
                    let until = Instant::now() + wait;
                    let slot = self.next_slot.entry(host).or_insert(until);
                    *slot = (*slot).max(until);
                    tracing::info!(url = %task.url, status, wait_s = wait.as_secs_f32(), "backing off");
                    self.frontier.push_back(Task {
                        attempt: task.attempt + 1,
                        ..task
                    });
                    self.page_requests = self.page_requests.saturating_sub(1);
                    return Ok(());
                }
                let reason = match retry_after {
                    Some(w) if retryable => format!("http_{status}: retry-after {}s", w.as_secs()),
                    _ => format!("http_{status}"),
                };
                tracing::warn!(url = %task.url, %reason, "fetch failed");
                if let Some(canonical) = known {
                    if matches!(status, 404 | 410) {
                        // gone: removed at the end (even after an incomplete crawl) unless
                        // another URL of the same page answered
                        self.gone.insert(canonical);
                    } else {
                        self.transient.insert(canonical);
                    }
                }
                self.summary.fail(&task.url, reason);
            }
            Outcome::TooLarge { limit } => {
                self.successes += 1;
                if let Some(canonical) = known {
                    self.transient.insert(canonical);
                }
                self.summary.skip("too_large");
                self.summary.failures.push(Failure {
                    url: task.url.to_string(),
                    reason: format!("too_large: more than {limit} bytes"),
                });
            }
            Outcome::Network { reason, detail } => {
                if let Some(canonical) = known {
                    self.transient.insert(canonical);
                }
                tracing::warn!(url = %task.url, reason, %detail, "fetch failed");
                self.summary.fail(&task.url, format!("{reason}: {detail}"));
            }
            Outcome::Body {
                content_type,
                bytes,
                validators,
            } => {
                self.successes += 1;
                self.handle_body(task, known, content_type, bytes, validators)
                    .await?;
            }
        }
        Ok(())
    }

    async fn handle_body(
        &mut self,
        task: Task,
        known: Option<String>,
        content_type: Option<String>,
        bytes: Vec<u8>,
        validators: Validators,
    ) -> Result<(), CrawlError> {
        let ct = content_type.as_deref();
        let url = task.url.clone();
        let (page, canonical, links, noindex) = if is_pdf(ct, &bytes) {
            let link_text = task.link_text.clone();
            let u = url.clone();
            let res = tokio::task::spawn_blocking(move || {
                pdf::extract_pdf(&bytes, &u, link_text.as_deref())
            })
            .await;
            match res {
                Ok(Ok(page)) => (page, None, Vec::new(), false),
                Ok(Err(e @ pdf::PdfError::TooLarge { .. })) => {
                    // a decompression bomb or a monster: skipped, not retried as transient
                    tracing::warn!(%url, reason = %e, "skipping pdf");
                    self.summary.skip("pdf_limits");
                    self.summary.failures.push(Failure {
                        url: url.to_string(),
                        reason: format!("pdf_limits: {e}"),
                    });
                    return Ok(());
                }
                Ok(Err(e)) => {
                    self.summary.fail(&url, format!("pdf: {e}"));
                    return Ok(());
                }
                Err(e) => {
                    self.summary
                        .fail(&url, format!("pdf: extraction crashed: {e}"));
                    return Ok(());
                }
            }
        } else if is_html(ct, &bytes) {
            let u = url.clone();
            let ct_owned = content_type.clone();
            let res = tokio::task::spawn_blocking(move || {
                let html = charset::decode_html(&bytes, ct_owned.as_deref());
                html::extract_html(&html, &u)
            })
            .await;
            let ex = match res {
                Ok(ex) => ex,
                Err(e) => {
                    self.summary
                        .fail(&url, format!("html: extraction crashed: {e}"));
                    return Ok(());
                }
            };
            let links: Vec<(Url, String)> = if ex.nofollow {
                Vec::new()
            } else {
                ex.links.into_iter().map(|l| (l.url, l.text)).collect()
            };
            if let Some(name) = ex.site_name.filter(|n| n.chars().count() <= 80) {
                *self.state.site_names.entry(name).or_default() += 1;
            }
            (ex.page, ex.canonical, links, ex.noindex)
        } else {
            self.summary.skip("content_type");
            tracing::debug!(%url, content_type = ?ct, "skipping unsupported content type");
            return Ok(());
        };

        // links first: even a duplicate page leads on
        let mut link_urls = Vec::new();
        for (l, text) in links {
            let n = urls::normalize(&l, &self.ignored);
            if self.scope.contains(&n) {
                link_urls.push(n.to_string());
            }
            self.enqueue(l, task.depth + 1, Some(text), false);
        }
        link_urls.sort();
        link_urls.dedup();

        // canonical: index the page once, under its canonical URL
        let mut key_url = url.clone();
        if let Some(c) = canonical {
            let c = urls::normalize(&c, &self.ignored);
            if c != url && self.scope.contains(&c) {
                let dropped = urls::params_dropped_by_canonical(&url, &c);
                let mut learned = false;
                for p in dropped {
                    if self.ignored.insert(p.clone()) {
                        learned = true;
                        tracing::info!(param = %p, "query parameter does not change content; ignoring it from now on");
                    }
                }
                if learned {
                    self.purge_frontier();
                }
                self.aliases
                    .entry(c.to_string())
                    .or_default()
                    .insert(url.to_string());
                self.summary.skip("duplicate_canonical");
                self.enqueue(c, task.depth, task.link_text.clone(), true);
                return Ok(());
            }
            if c == url {
                key_url = c;
            }
        }

        let hash = content_hash(&page);
        let key = key_url.to_string();
        if let Some(first) = self.by_hash.get(&hash)
            && *first != key
        {
            self.aliases.entry(first.clone()).or_default().insert(key);
            self.summary.skip("duplicate_content");
            return Ok(());
        }
        self.by_hash.insert(hash.clone(), key.clone());
        let canonical_key = known.filter(|k| *k == key).unwrap_or(key.clone());
        self.alive.insert(canonical_key.clone());

        let words = page
            .blocks
            .iter()
            .map(|b| b.text().split_whitespace().count())
            .sum::<usize>();
        let indexed = !noindex && words >= MIN_WORDS;
        if noindex {
            self.summary.skip("noindex");
        } else if !indexed {
            self.summary.skip("thin_content");
        }
        if page.kind == DocKind::Html && indexed {
            self.state.boilerplate.observe(&page);
        }
        let mut page = page;
        page.url = canonical_key.clone();
        let record = PageRecord {
            url: canonical_key.clone(),
            site: self.site.clone(),
            site_name: None, // set at flush, when the most names have been seen
            collection: self.cfg.collection.clone(),
            visibility: self.cfg.visibility.clone(),
            kind: page.kind,
            title: page.title.clone(),
            aliases: Vec::new(),
            etag: validators.etag,
            last_modified: validators.last_modified,
            content_hash: hash.clone(),
            links: link_urls,
            modified: page.modified.clone(),
            indexed,
            n_chunks: 0,
            fetched_at: now_secs(),
        };
        match self.old.get(&canonical_key) {
            Some(old) if old.content_hash == hash && old.indexed == indexed => {
                self.summary.unchanged += 1;
                // same content; refresh validators only when they changed
                if old.etag != record.etag || old.last_modified != record.last_modified {
                    let mut r = record;
                    r.n_chunks = old.n_chunks;
                    self.pending.push(Pending {
                        record: r,
                        page: None,
                    });
                }
            }
            _ => {
                if indexed {
                    self.summary.pages_indexed += 1;
                    if page.kind == DocKind::Pdf {
                        self.summary.pdfs += 1;
                    }
                }
                self.pending.push(Pending {
                    record,
                    page: Some(page),
                });
            }
        }
        Ok(())
    }
}
