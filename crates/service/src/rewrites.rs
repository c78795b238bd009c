//! Rewrites into Einfache Sprache as a service: the on-demand queue, the background worker
//! and the review policy for legal texts (moved here from the HTTP crate; `lotse-server`'s
//! `simplify` module parses the request and maps [`Lookup`] to a response).
//!
//! Invariants:
//! - Only pages of the index's own sites, in the public collection, are rewritten; nothing is
//!   fetched here.
//! - The worker yields to citizens' chats: before each model call it waits while the
//!   [`ChatBusy`] signal says an answer is waiting for or using the model.
//! - A page's rewrite is keyed by its content hash, model and rules version, so a re-crawl
//!   that changes the page makes the old rewrite unreachable and the worker writes a new one.
//! - With `[simplify] legal_texts = "review"` citizens never see the model's rewrite of a
//!   legal text before a member of staff approved that very rewrite (same key); until then
//!   they get the deterministic pass, with a note.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lotse_core::{CollectionScope, DocKind, Page, PageRecord};
use lotse_index::SearchIndex;
use lotse_inference::CancelToken;
use lotse_inference::generate::GenerationService;
use crate::rewrite_store::RewriteStore as Store;
use lotse_simplify::{
    BlockCorrection, LegalTexts, Progress, ReviewDecision, ReviewNote, ReviewStatus, SimplifiedPage, Simplifier,
    is_legal_text,
};

/// "Is a citizen's chat waiting for or using the model?" The rewrite worker asks before each
/// model call and waits while the answer is yes.
pub trait ChatBusy: Send + Sync {
    /// Whether to hold back work that started waiting at `since`.
    fn must_wait(&self, since: Instant) -> bool;
}

/// The generation service answers from its queue (and holds rewrites back briefly while
/// searches come in, see `GenerationService::must_wait`).
impl ChatBusy for GenerationService {
    fn must_wait(&self, since: Instant) -> bool {
        GenerationService::must_wait(self, since)
    }
}

/// How often the worker looks for pages without a current rewrite when it has nothing to do.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(30);
/// The backlog is worked through by one replica at a time: the holder of this lease in the
/// shared database (renewed before every page, and every [`LEASE_RENEW_EVERY`] within a
/// long page; a replica that died hands it on after [`BACKLOG_LEASE_SECS`]). Pages citizens
/// ask for are rewritten by the replica they asked.
const BACKLOG_LEASE: &str = "simplify-backlog";
const BACKLOG_LEASE_SECS: i64 = 600;
/// A page can take longer than the lease on a CPU (a long statute, or units held back by
/// citizens' chats): renew well before it runs out, so no other replica starts the same page.
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(120);

/// This process's name for leases: one per process, so a service built again (another
/// answerer) keeps the lease its predecessor held.
fn process_holder() -> String {
    static HOLDER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOLDER
        .get_or_init(|| format!("{}-{}", std::process::id(), &lotse_portal::auth::random_token("")[..16]))
        .clone()
}
/// Seconds per unit a client is told to wait (Retry-After), roughly one model call.
const SECS_PER_UNIT: u64 = 10;

/// Where a requested rewrite stands and the body of a 202: wire types (`lotse-wire`).
pub use lotse_wire::simplify::{JobState, Pending};

/// Why a rewrite under review was not read or a decision not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No legal rewrite is stored under the key.
    #[error("no legal rewrite under this key")]
    NotFound,
    /// The rewrite or its page changed since staff read it.
    #[error("the rewrite or its page changed")]
    Changed,
    /// The corrections cannot be taken (a German message for the reviewer).
    #[error("corrections refused: {0}")]
    Invalid(String),
    /// The store failed (English, for the log).
    #[error("rewrite store: {0}")]
    Store(String),
    /// A decision must approve or reject; "pending" is no decision.
    #[error("a decision must approve or reject")]
    NoDecision,
    /// Corrections belong to an approval (citizens never see a rejected rewrite).
    #[error("corrections on a rejection")]
    CorrectionsOnRejection,
}

/// The answer to a lookup.
#[derive(Debug)]
pub enum Lookup {
    Ready(Arc<SimplifiedPage>),
    Pending(Pending),
    /// The page is not in the index (or not public).
    Unknown,
    /// The on-demand queue is full.
    Full,
}

#[derive(Debug, Clone)]
struct Job {
    state: JobState,
    done: usize,
    total: usize,
    key: String,
    /// Text the CMS sent (jobs keyed `cms:<content hash>`); index pages are read when run.
    page: Option<Arc<Page>>,
}

/// Job keys of text the CMS sent start with this (index pages are keyed by their URL).
const CMS_PREFIX: &str = "cms:";
/// How long a server trusts the staff decision it read (see `SimplifyService::decisions`).
const DECISION_TTL: Duration = Duration::from_secs(10);
/// Key and slot prefix of the stored rules pass of a legal text (shown until a review).
const RULES_PREFIX: &str = "rules:";

/// Store key and slot of the rules pass of the legal text whose rewrite has cache key `key`
/// and whose URL is `url` (what the worker stores beside the model's rewrite).
pub fn rules_pass_slot(key: &str, url: &str) -> (String, String) {
    (format!("{RULES_PREFIX}{key}"), format!("{RULES_PREFIX}{url}"))
}

/// The status URL of a CMS rewrite.
pub fn job_url(id: &str) -> String {
    format!("/api/v1/simplify/jobs/{id}")
}

/// Where the rewrite of the page at `url` is asked for (`GET /api/v1/simplify?url=`).
pub fn status_url(url: &str) -> String {
    format!(
        "/api/v1/simplify?url={}",
        url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
    )
}

#[derive(Default)]
struct Jobs {
    queue: VecDeque<String>,
    by_url: HashMap<String, Job>,
}

/// The rewrite service of a running server.
pub struct SimplifyService {
    index: Arc<SearchIndex>,
    /// Whether citizens' chats need the model now (the worker waits while they do).
    busy: Option<Arc<dyn ChatBusy>>,
    simplifier: Arc<Simplifier>,
    store: Arc<Store>,
    cache: moka::sync::Cache<String, Arc<SimplifiedPage>>,
    /// Staff decisions on legal rewrites by cache key (`None`: none yet), read on every click
    /// on a legal text. [`SimplifyService::decide`] writes through; a decision made on
    /// another server sharing the database shows within [`DECISION_TTL`].
    decisions: moka::sync::Cache<String, Option<ReviewDecision>>,
    /// Bumped by every write of a decision or rewrite: a read that began before one is not
    /// cached (it may hold what the write replaced).
    decision_epoch: Mutex<u64>,
    jobs: Mutex<Jobs>,
    wake: Condvar,
    queue_limit: usize,
    pregenerate: bool,
    /// Cancelled when the service stops: the running rewrite ends at its next unit.
    cancel: CancelToken,
    /// This process's name for the backlog lease ([`process_holder`]).
    holder: String,
}

impl std::fmt::Debug for SimplifyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimplifyService").finish_non_exhaustive()
    }
}

impl SimplifyService {
    /// The engine the rewrites go to.
    pub fn engine(&self) -> &lotse_inference::ModelInfo {
        self.simplifier.engine()
    }

    /// The service; call [`SimplifyService::start_worker`] to begin rewriting.
    pub fn new(
        index: Arc<SearchIndex>,
        busy: Option<Arc<dyn ChatBusy>>,
        simplifier: Arc<Simplifier>,
        store: Arc<Store>,
        queue_limit: usize,
        pregenerate: bool,
    ) -> Arc<SimplifyService> {
        Arc::new(SimplifyService {
            index,
            busy,
            simplifier,
            store,
            cache: moka::sync::Cache::builder()
                .max_capacity(512)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            decisions: moka::sync::Cache::builder()
                .max_capacity(4096)
                .time_to_live(DECISION_TTL)
                .build(),
            decision_epoch: Mutex::new(0),
            jobs: Mutex::new(Jobs::default()),
            wake: Condvar::new(),
            queue_limit: queue_limit.max(1),
            pregenerate,
            cancel: CancelToken::new(),
            holder: process_holder(),
        })
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The public page at `url` from the index.
    fn page(&self, url: &str) -> Option<(PageRecord, Page)> {
        match self.index.page(url, &CollectionScope::public_website()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a page from the index");
                None
            }
        }
    }

    /// Site origins of the index: the only hosts whose pages are rewritten.
    pub fn sites(&self) -> Vec<String> {
        self.index.sites().unwrap_or_default()
    }

    /// The rewrite of `url` if ready; else queue it. Blocking (index and SQLite reads). A
    /// legal text under review is answered at once with the deterministic pass (or the
    /// approved rewrite); its model rewrite is queued for staff.
    pub fn lookup(&self, url: &str, status_url: &str) -> Lookup {
        let Some((record, page)) = self.page(url) else {
            return Lookup::Unknown;
        };
        let key = self.simplifier.cache_key(&record.content_hash);
        let legal = self.simplifier.legal_texts() == LegalTexts::Review && is_legal_text(&page);
        if legal {
            self.prefetch_legal(&key);
        }
        if let Some(ready) = self.cached(&key) {
            // staff review a legal text's model rewrite (a rewrite implies units to review)
            if legal && ready.has_model_rewrite() {
                return self.reviewed(&key, &page, &record.content_hash, &ready);
            }
            return Lookup::Ready(ready);
        }
        // not on the cached path: counting units runs the deterministic pass over the page
        let total = self.simplifier.units_of(&page);
        if legal && total > 0 {
            // the citizen is answered now; the model's rewrite for staff comes from the
            // background pass, or (without one) is queued here
            if !self.pregenerate {
                let _ = self.enqueue(url, key.clone(), total, None, status_url);
            }
            return self.rules_view(&key, &page, &record.content_hash, ReviewStatus::Pending);
        }
        self.enqueue(url, key, total, None, status_url)
    }

    /// What citizens see of a legal text's model rewrite: the rewrite once approved, else the
    /// deterministic pass.
    fn reviewed(&self, key: &str, page: &Page, hash: &str, ready: &Arc<SimplifiedPage>) -> Lookup {
        match self.decision(key) {
            Some(d) if d.status == ReviewStatus::Approved => {
                // two decisions may fall in one second: the view goes with what was decided
                let view_key = format!("approved:{}:{}:{key}", d.decided_at, d.corrections_digest());
                if let Some(hit) = self.cache.get(&view_key) {
                    return Lookup::Ready(hit);
                }
                let approved = if d.corrections.is_empty() {
                    ready.as_ref().clone()
                } else {
                    // staff's corrections over the model's rewrite (checked when they were made;
                    // a rewrite they no longer fit is shown as the rules pass, never half)
                    match self.rules_pass(key, page, hash).map(|r| lotse_simplify::apply_corrections(ready, &r, &d.corrections)) {
                        Some(Ok(p)) => p,
                        failed => {
                            if let Some(Err(e)) = failed {
                                tracing::error!(error = %e, "approved corrections do not fit the rewrite; showing the rules pass");
                            }
                            // the same answer for the next clicks, without trying again
                            let fallback = self.rules_view(key, page, hash, ReviewStatus::Pending);
                            if let Lookup::Ready(v) = &fallback {
                                self.cache.insert(view_key, v.clone());
                            }
                            return fallback;
                        }
                    }
                };
                let note = ReviewNote::approved_with(d.corrections.len());
                let view = Arc::new(approved.with_review(note));
                self.cache.insert(view_key, view.clone());
                Lookup::Ready(view)
            }
            Some(d) => self.rules_view(key, page, hash, d.status),
            None => self.rules_view(key, page, hash, ReviewStatus::Pending),
        }
    }

    /// On a legal text's first click since a start: its rewrite, its rules pass and the
    /// decision in one read, into moka (instead of three).
    fn prefetch_legal(&self, key: &str) {
        if self.cache.contains_key(key) {
            return;
        }
        let rules_key = format!("{RULES_PREFIX}{key}");
        let epoch = self.epoch();
        match self.store.get_with_reviews(&[key, &rules_key]) {
            Ok(found) => {
                for (k, page, decision) in found {
                    if k == key {
                        self.cache_decision(epoch, &k, decision);
                    }
                    self.cache.insert(k, Arc::new(page));
                }
            }
            // the reads one by one will say what is wrong
            Err(e) => tracing::debug!(error = %e, "cannot prefetch a legal rewrite"),
        }
    }

    /// The staff decision on the rewrite under `key`: from moka, else from the store. A failed
    /// read counts as "no decision" (citizens see the rules pass) and is not cached.
    fn decision(&self, key: &str) -> Option<ReviewDecision> {
        if let Some(hit) = self.decisions.get(key) {
            return hit;
        }
        let epoch = self.epoch();
        match self.store.review(key) {
            Ok(d) => {
                self.cache_decision(epoch, key, d.clone());
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a review decision; showing the rules pass");
                None
            }
        }
    }

    fn epoch(&self) -> u64 {
        *self.decision_epoch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cache a decision read at `epoch`, unless a write came in between.
    fn cache_decision(&self, epoch: u64, key: &str, d: Option<ReviewDecision>) {
        let current = self.decision_epoch.lock().unwrap_or_else(PoisonError::into_inner);
        if *current == epoch {
            self.decisions.insert(key.to_string(), d);
        }
    }

    /// A decision or rewrite under `key` was written: forget what was read before.
    fn decision_written(&self, key: &str, d: Option<ReviewDecision>) {
        let mut current = self.decision_epoch.lock().unwrap_or_else(PoisonError::into_inner);
        *current += 1;
        match d {
            Some(d) => self.decisions.insert(key.to_string(), Some(d)),
            None => self.decisions.invalidate(key),
        }
    }

    /// The deterministic pass of `page` with the note for `status`: from moka, else from the
    /// store (the worker stores it beside the model's rewrite), else made now (milliseconds
    /// to tens of milliseconds for a long statute) and stored.
    fn rules_view(&self, key: &str, page: &Page, hash: &str, status: ReviewStatus) -> Lookup {
        let view_key = format!("{RULES_PREFIX}{}:{key}", status.key());
        if let Some(hit) = self.cache.get(&view_key) {
            return Lookup::Ready(hit);
        }
        let Some(base) = self.rules_pass(key, page, hash) else {
            return Lookup::Unknown;
        };
        let view = Arc::new(base.as_ref().clone().with_review(ReviewNote::rules_only(status)));
        self.cache.insert(view_key, view.clone());
        Lookup::Ready(view)
    }

    /// The rules pass of a legal text: from moka or the store, else made now and stored.
    fn rules_pass(&self, key: &str, page: &Page, hash: &str) -> Option<Arc<SimplifiedPage>> {
        self.cached(&format!("{RULES_PREFIX}{key}"))
            .or_else(|| self.store_rules_pass(key, page, hash))
    }

    /// Make and store the rules pass of a legal text (key `rules:<key>`, slot `rules:<url>`),
    /// so that a click after a restart reads it instead of making it.
    fn store_rules_pass(&self, key: &str, page: &Page, hash: &str) -> Option<Arc<SimplifiedPage>> {
        match self.simplifier.simplify_rules_only(page, hash) {
            Ok(p) => {
                let (rules_key, slot) = rules_pass_slot(key, &page.url);
                if let Err(e) = self.store.put_in(&rules_key, &slot, &p) {
                    tracing::warn!(error = %e, "cannot store the rules pass of a legal text");
                }
                let p = Arc::new(p);
                self.cache.insert(rules_key, p.clone());
                Some(p)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the rules pass failed");
                None
            }
        }
    }

    /// The model's rewrites of legal texts with their review state, newest first (for staff).
    pub fn reviews(&self) -> Result<Vec<(String, SimplifiedPage, Option<ReviewDecision>)>, DecideError> {
        self.store
            .legal_rewrites(self.simplifier.rules_version())
            .map_err(|e| DecideError::Store(e.to_string()))
    }

    /// The model's rewrite of a legal text under `key`, for the review (`NotFound` for any
    /// other key).
    pub fn review(&self, key: &str) -> Result<SimplifiedPage, DecideError> {
        self.stored(key).map_err(DecideError::Store)?.ok_or(DecideError::NotFound)
    }

    /// The model's rewrite of a legal text stored under `key` (a cache key: 64 hex digits),
    /// for staff to read; `Ok(None)` for any other key.
    pub fn stored(&self, key: &str) -> Result<Option<SimplifiedPage>, String> {
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let page = self.store.get(key).map_err(|e| e.to_string())?;
        Ok(page.filter(|p| p.legal_text && p.has_model_rewrite()))
    }

    /// Record a staff decision on the legal rewrite stored under `key`, with the blocks they
    /// corrected (checked here against the rewrite and the page's rules pass); citizens see
    /// it at the next click.
    pub fn decide(
        &self,
        key: &str,
        status: ReviewStatus,
        reviewer: &str,
        corrections: &[BlockCorrection],
        read: Option<u64>,
    ) -> Result<ReviewDecision, DecideError> {
        if status == ReviewStatus::Pending {
            return Err(DecideError::NoDecision);
        }
        if status == ReviewStatus::Rejected && !corrections.is_empty() {
            return Err(DecideError::CorrectionsOnRejection);
        }
        let rewrite = self
            .stored(key)
            .map_err(DecideError::Store)?
            .ok_or(DecideError::NotFound)?;
        // the decision is on the text staff read (`generated_at` of what the portal showed)
        if read.is_some_and(|t| t != rewrite.generated_at) {
            return Err(DecideError::Changed);
        }
        if !corrections.is_empty() {
            let rules = self
                .rules_pass_for(key, &rewrite)
                .ok_or(DecideError::Changed)?;
            lotse_simplify::apply_corrections(&rewrite, &rules, corrections)
                .map_err(|e| DecideError::Invalid(e.0))?;
        }
        let decision = self
            .store
            .set_review(key, status, reviewer, corrections)
            .map_err(|e| DecideError::Store(e.to_string()))?;
        // citizens get the text decided on, even if this server's memory still held an older
        // rewrite under the key (one made again from the command line meanwhile)
        self.cache.insert(key.to_string(), Arc::new(rewrite));
        self.decision_written(key, Some(decision.clone()));
        Ok(decision)
    }

    /// The rules pass beside a stored legal rewrite: stored, or made now while the index
    /// still holds the text that was rewritten.
    fn rules_pass_for(&self, key: &str, rewrite: &SimplifiedPage) -> Option<Arc<SimplifiedPage>> {
        if let Some(p) = self.cached(&format!("{RULES_PREFIX}{key}")) {
            return Some(p);
        }
        let (record, page) = self.page(&rewrite.url)?;
        (record.content_hash == rewrite.content_hash)
            .then(|| self.store_rules_pass(key, &page, &record.content_hash))
            .flatten()
    }

    /// The rewrite of text the CMS sent, if ready; else queue it. Returns the job id (the
    /// content hash) for [`SimplifyService::job_status`]. Blocking (SQLite reads).
    pub fn lookup_content(&self, page: Page) -> (String, Lookup) {
        let hash = lotse_simplify::sha256_hex(&serde_json::to_string(&page).unwrap_or_default());
        let key = self.simplifier.cache_key(&hash);
        if let Some(ready) = self.cached(&key) {
            return (hash, Lookup::Ready(ready));
        }
        let total = self.simplifier.units_of(&page);
        let job_id = format!("{CMS_PREFIX}{hash}");
        let lookup = self.enqueue(&job_id, key, total, Some(Arc::new(page)), &job_url(&hash));
        (hash, lookup)
    }

    /// Where the CMS rewrite `id` (from [`SimplifyService::lookup_content`]) stands.
    pub fn job_status(&self, id: &str) -> Lookup {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Lookup::Unknown;
        }
        if let Some(ready) = self.cached(&self.simplifier.cache_key(id)) {
            return Lookup::Ready(ready);
        }
        let job_id = format!("{CMS_PREFIX}{id}");
        let jobs = self.jobs();
        if let Some(job) = jobs.by_url.get(&job_id) {
            return Lookup::Pending(self.pending(&jobs, &job_id, job, &job_url(id)));
        }
        drop(jobs);
        // finished between the first look and this one (the worker stores the rewrite, then
        // drops the job): ready now
        match self.cached(&self.simplifier.cache_key(id)) {
            Some(ready) => Lookup::Ready(ready),
            None => Lookup::Unknown,
        }
    }

    /// A stored rewrite, from moka or else SQLite.
    fn cached(&self, key: &str) -> Option<Arc<SimplifiedPage>> {
        if let Some(hit) = self.cache.get(key) {
            return Some(hit);
        }
        match self.store.get(key) {
            Ok(Some(p)) => {
                let p = Arc::new(p);
                self.cache.insert(key.to_string(), p.clone());
                Some(p)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "rewrite store read failed");
                None
            }
        }
    }

    /// Queue job `id` unless it is queued or running already; its progress.
    fn enqueue(
        &self,
        id: &str,
        key: String,
        total: usize,
        page: Option<Arc<Page>>,
        status_url: &str,
    ) -> Lookup {
        let mut jobs = self.jobs();
        let job = match jobs.by_url.get(id) {
            Some(j) if j.key == key && j.state != JobState::Failed => j.clone(),
            _ => {
                if jobs.queue.len() >= self.queue_limit {
                    return Lookup::Full;
                }
                let j = Job {
                    state: JobState::Queued,
                    done: 0,
                    total,
                    key,
                    page,
                };
                jobs.by_url.insert(id.to_string(), j.clone());
                jobs.queue.push_back(id.to_string());
                self.wake.notify_one();
                j
            }
        };
        Lookup::Pending(self.pending(&jobs, id, &job, status_url))
    }

    /// The 202 body for `job`: its progress and how long to wait.
    fn pending(&self, jobs: &Jobs, id: &str, job: &Job, status_url: &str) -> Pending {
        let ahead: usize = match job.state {
            JobState::Queued => jobs
                .queue
                .iter()
                .take_while(|u| u.as_str() != id)
                .filter_map(|u| jobs.by_url.get(u))
                .map(|j| j.total)
                .sum(),
            _ => 0,
        };
        let left = job.total.saturating_sub(job.done) + ahead;
        let retry_after = (left as u64 * SECS_PER_UNIT).clamp(5, 300);
        let message = match job.state {
            JobState::Failed => "Die Übertragung in Einfache Sprache ist leider fehlgeschlagen. Bitte versuchen Sie es später noch einmal.",
            _ => "Die Seite wird gerade in Einfache Sprache übertragen. Das dauert einen Moment.",
        };
        Pending {
            status: job.state,
            done: job.done,
            total: job.total,
            status_url: status_url.to_string(),
            retry_after,
            message: message.into(),
        }
    }

    /// Run the worker on its own thread until the service is dropped or stopped.
    pub fn start_worker(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("lotse-simplify".into())
            .spawn(move || {
                let mut last_scan: Option<Instant> = None;
                loop {
                    let Some(svc) = me.upgrade() else { return };
                    if svc.cancel.is_cancelled() {
                        return;
                    }
                    let next = svc.next_job(&mut last_scan);
                    match next {
                        Some(url) => svc.run_job(&url),
                        None => {
                            let jobs = svc.jobs();
                            let _ = svc
                                .wake
                                .wait_timeout(jobs, Duration::from_secs(2))
                                .unwrap_or_else(PoisonError::into_inner);
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the simplify worker");
        }
    }

    /// Stop the worker after its current unit.
    pub fn stop(&self) {
        self.cancel.cancel();
        self.wake.notify_all();
        if self.pregenerate
            && let Err(e) = self.store.database().release_lease(BACKLOG_LEASE, &self.holder)
        {
            tracing::warn!(error = %e, "cannot give up the rewrite backlog's lease");
        }
    }

    /// Whether this process works through the backlog now (it holds or took the lease).
    fn backlog_lease(&self) -> bool {
        match self.store.database().try_lease(BACKLOG_LEASE, &self.holder, BACKLOG_LEASE_SECS) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the rewrite backlog's lease");
                false
            }
        }
    }

    /// The next URL to rewrite: requested pages first, then (pre-generation) the backlog.
    fn next_job(&self, last_scan: &mut Option<Instant>) -> Option<String> {
        if let Some(url) = self.jobs().queue.pop_front() {
            return Some(url);
        }
        if !self.pregenerate || last_scan.is_some_and(|t| t.elapsed() < BACKLOG_INTERVAL) {
            return None;
        }
        *last_scan = Some(Instant::now());
        if !self.backlog_lease() {
            // another replica works through it
            return None;
        }
        let next = self.backlog().into_iter().next();
        if next.is_none() {
            return None;
        }
        // something left: look again right after this page
        *last_scan = None;
        next
    }

    /// Indexed HTML pages without a current rewrite, in URL order. Rewrites of pages that
    /// are gone from the index are deleted on the way.
    fn backlog(&self) -> Vec<String> {
        let index = &self.index;
        let mut out = Vec::new();
        let mut live = std::collections::HashSet::new();
        let mut complete = true;
        for site in self.sites() {
            let Ok(records) = index.page_records(&site) else {
                complete = false;
                continue;
            };
            for r in records {
                if r.indexed && r.collection == lotse_core::CollectionId::website() {
                    live.insert(r.url.clone());
                }
                if !r.indexed || r.kind != DocKind::Html || r.n_chunks == 0 {
                    continue;
                }
                if r.collection != lotse_core::CollectionId::website() {
                    continue;
                }
                let key = self.simplifier.cache_key(&r.content_hash);
                if self.failed(&r.url, &key) {
                    continue;
                }
                if !self.store.contains(&key).unwrap_or(true) {
                    out.push(r.url);
                }
            }
        }
        if complete {
            for url in self.store.urls().unwrap_or_default() {
                let page_url = url.strip_prefix(RULES_PREFIX).unwrap_or(&url);
                if !url.starts_with(CMS_PREFIX) && !live.contains(page_url) {
                    match self.store.remove_url(&url) {
                        Ok(_) => tracing::info!(%url, "rewrite of a page that is gone deleted"),
                        Err(e) => tracing::warn!(error = %e, "cannot delete a stale rewrite"),
                    }
                }
            }
        }
        out
    }

    fn failed(&self, url: &str, key: &str) -> bool {
        self.jobs()
            .by_url
            .get(url)
            .is_some_and(|j| j.key == key && j.state == JobState::Failed)
    }

    fn set_job(&self, url: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs().by_url.get_mut(url) {
            f(j);
        }
    }

    /// The page of job `id`, its content hash and its store slot.
    fn job_page(&self, id: &str) -> Option<(Page, String, String)> {
        if let Some(hash) = id.strip_prefix(CMS_PREFIX) {
            let page = self.jobs().by_url.get(id).and_then(|j| j.page.clone())?;
            let slot = if page.url.is_empty() { id.to_string() } else { format!("{CMS_PREFIX}{}", page.url) };
            return Some((page.as_ref().clone(), hash.to_string(), slot));
        }
        let (record, page) = self.page(id)?;
        Some((page, record.content_hash, id.to_string()))
    }

    fn run_job(&self, url: &str) {
        let Some((page, hash, slot)) = self.job_page(url) else {
            self.jobs().by_url.remove(url);
            return;
        };
        let key = self.simplifier.cache_key(&hash);
        if self.store.contains(&key).unwrap_or(false) {
            self.jobs().by_url.remove(url);
            return;
        }
        {
            let mut jobs = self.jobs();
            let total = self.simplifier.units_of(&page);
            let job = jobs.by_url.entry(url.to_string()).or_insert(Job {
                state: JobState::Running,
                done: 0,
                total,
                key: key.clone(),
                page: None,
            });
            job.state = JobState::Running;
            job.key = key.clone();
        }
        let progress = WorkerProgress {
            svc: self,
            url,
            lease_renewed: Mutex::new(Instant::now()),
        };
        let started = Instant::now();
        // a failed job keeps its state (for the status URL) but not the CMS's text
        let failed = |j: &mut Job| {
            j.state = JobState::Failed;
            j.page = None;
        };
        match self.simplifier.simplify(&page, &hash, &self.cancel, &progress) {
            Ok(result) => {
                if let Err(e) = self.store.put_in(&key, &slot, &result) {
                    tracing::warn!(error = %e, "cannot store a rewrite");
                    self.set_job(url, failed);
                    return;
                }
                tracing::info!(
                    url = if url.starts_with(CMS_PREFIX) { "<cms text>" } else { url },
                    blocks = result.summary.blocks,
                    simplified = result.summary.simplified,
                    not_simplified = result.summary.not_simplified,
                    secs = started.elapsed().as_secs(),
                    "page rewritten in Einfache Sprache"
                );
                let legal = result.legal_text && result.has_model_rewrite() && !url.starts_with(CMS_PREFIX);
                self.cache.insert(key.clone(), Arc::new(result));
                // writing a rewrite drops the decisions on its key (they were on another text)
                self.decision_written(&key, None);
                if legal && self.simplifier.legal_texts() == LegalTexts::Review {
                    // what citizens see until a review: ready before anyone clicks
                    self.store_rules_pass(&key, &page, &hash);
                }
                self.jobs().by_url.remove(url);
            }
            Err(e) => {
                tracing::warn!(error = %e, "rewrite failed");
                self.set_job(url, failed);
            }
        }
    }

    /// Whether citizens' answers are waiting for or using the model, or searches are coming in
    /// (those hold a rewrite back for a few seconds at most, see `GenerationService::must_wait`).
    fn chat_busy(&self, since: std::time::Instant) -> bool {
        self.busy.as_ref().is_some_and(|b| b.must_wait(since))
    }
}

struct WorkerProgress<'a> {
    svc: &'a SimplifyService,
    url: &'a str,
    /// When this process last renewed the backlog lease during this page.
    lease_renewed: Mutex<Instant>,
}

impl WorkerProgress<'_> {
    /// Keep the backlog lease while a long page runs (see [`LEASE_RENEW_EVERY`]). Only a
    /// holder renews: a process that does not hold it takes it only if it is free or lapsed,
    /// which is what `next_job` would do anyway.
    fn renew_lease_if_due(&self) {
        // a stopping worker gave the lease up in `stop`: it must not take it back
        if !self.svc.pregenerate || self.svc.cancel.is_cancelled() {
            return;
        }
        let mut renewed = self.lease_renewed.lock().unwrap_or_else(PoisonError::into_inner);
        if renewed.elapsed() >= LEASE_RENEW_EVERY {
            *renewed = Instant::now();
            drop(renewed);
            self.svc.backlog_lease();
        }
    }
}

impl Progress for WorkerProgress<'_> {
    fn before_unit(&self, done: usize, total: usize) {
        self.svc.set_job(self.url, |j| {
            j.done = done;
            j.total = total;
        });
        self.renew_lease_if_due();
        // citizens' chats first
        let since = std::time::Instant::now();
        while self.svc.chat_busy(since) && !self.svc.cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(200));
            self.renew_lease_if_due();
        }
    }
}
