//! Citizens' answers without HTTP: the answerer in use, the answer cache (keyed with the
//! index's content version), answer ids, the records kept for ratings, the link from an
//! answer to its recorded question ("Fragen ohne Antwort"), and the counters the metrics show.
//!
//! Invariants:
//! - Cache key: content version, language, normalised question, normalised history. A new
//!   content version from a reload that changed the index clears the cache; another
//!   answerer keys new entries with its index's version.
//! - A flagged answer (it needs a human look) is never cached.
//! - The id of an answer is a hash of its cache key, model and text: the same question, text
//!   and model give the same id.
//! - Personal data in a citizen's question never goes to an external engine: the answer is
//!   then the source's own words, without the model (`policy`).
//! - Everything here is bounded: the caches by entries and time (`AnswerSettings`).
//! - With a database shared ([`Answers::share_records`]), the records for ratings and the
//!   links to recorded questions are written through to it before the answer goes out, so a
//!   rating sent to another replica finds them (`lotse_portal::store::shared`); memory stays
//!   the first place looked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use lotse_answer::{Answer, AnswerError, AnswerEvent, AnswerRequest, AnswerRun, Answerer, normalise};

use crate::policy::{self, Outgoing};

/// How long an answer waits for the shared database (records for ratings) at most.
const SHARED_WAIT: Duration = Duration::from_secs(2);

/// The sizes and lifetimes of the caches.
#[derive(Debug, Clone, Copy)]
pub struct AnswerSettings {
    /// `[limits] answer_cache_entries`.
    pub cache_entries: u64,
    /// `[limits] answer_cache_ttl_secs`.
    pub cache_ttl_secs: u64,
}

/// What the server remembers of an answer it gave, for its ratings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecord {
    pub model: String,
    pub refused: bool,
    pub cited: Vec<String>,
}

impl AnswerRecord {
    pub fn of(a: &Answer) -> AnswerRecord {
        AnswerRecord {
            model: a.model.clone(),
            refused: a.refused,
            cited: a.sources.iter().filter(|s| s.cited).map(|s| s.url.clone()).collect(),
        }
    }
}

/// Why an answer did not start (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The server is starting (no answerer yet).
    #[error("the answerer is not ready")]
    Starting,
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// Why a search of the public pages gave no hits.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// Nothing to search for (only blanks).
    #[error("empty search query")]
    EmptyQuery,
    /// More than [`lotse_answer::MAX_QUESTION_CHARS`] characters.
    #[error("search query too long")]
    QueryTooLong,
    /// `limit` outside 1..=50.
    #[error("search limit out of range")]
    InvalidLimit,
    /// The server is starting (no answerer yet).
    #[error("the answerer is not ready")]
    Starting,
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// The most hits a search returns (`limit`), and the default.
pub const SEARCH_LIMIT_MAX: usize = 50;
pub const SEARCH_LIMIT_DEFAULT: usize = 10;

/// The answers' figures at the time of a scrape (Prometheus).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerStats {
    pub cache_entries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub refusals: u64,
    /// Answers refused because the generation queue was full.
    pub busy: u64,
}

#[derive(Debug, Default)]
struct Counters {
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    refusals: AtomicU64,
    busy: AtomicU64,
}

/// How an answer was started: from the cache or by the model.
pub enum Started {
    /// A cached answer as served now (`timings.cached`, the total time since `started`).
    Cached(Answer),
    /// Read its events with [`Running::next`] or wait for it with [`Running::wait`].
    Running(Running),
}

/// An answer being generated.
pub struct Running {
    run: AnswerRun,
    key: String,
}

impl Running {
    /// The next event of the answer; `Done` comes with its id, counted and cached
    /// ([`Answers::finished`]). `None` when the answer ended.
    pub async fn next(&mut self, answers: &Answers) -> Option<AnswerEvent> {
        match self.run.events.recv().await? {
            AnswerEvent::Done(mut a) => {
                answers.finished(&self.key, &mut a).await;
                Some(AnswerEvent::Done(a))
            }
            ev => Some(ev),
        }
    }

    /// Wait for the answer (the JSON responses); it is recorded like in [`Running::next`].
    pub async fn wait(mut self, answers: &Answers) -> Result<Answer, AnswerError> {
        while let Some(ev) = self.next(answers).await {
            match ev {
                AnswerEvent::Done(a) => return Ok(*a),
                AnswerEvent::Error(e) => return Err(e),
                AnswerEvent::Sources(_) | AnswerEvent::Quotes(_) | AnswerEvent::Token(_) => {}
            }
        }
        Err(AnswerError::Model("answer ended early".into()))
    }
}

/// The citizens' answers: the answerer in use and what is kept of its answers.
pub struct Answers {
    answerer: RwLock<Option<Arc<Answerer>>>,
    cache: moka::future::Cache<String, Arc<Answer>>,
    content_version: AtomicU64,
    /// Answers given lately, by id, for their ratings.
    records: moka::future::Cache<String, Arc<AnswerRecord>>,
    /// The latest recorded question (`insights`) of an answer id, for a thumbs-down. In
    /// memory for a day (and in the shared database, with replicas).
    insight_rows: moka::future::Cache<String, i64>,
    /// Answer ids whose question is being recorded right now (`insights`): a thumbs-down that
    /// arrives before the record waits for it instead of missing it.
    insight_pending: std::sync::Mutex<HashMap<String, usize>>,
    insight_done: tokio::sync::Notify,
    counters: Counters,
    /// The database replicas share, when ratings are on: records and links go there too.
    shared: RwLock<Option<Arc<lotse_portal::Store>>>,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers").finish_non_exhaustive()
    }
}

/// The id of an answer: the same question, text and model give the same id.
fn answer_id(key: &str, answer: &Answer) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [key, answer.model.as_str(), answer.answer.as_str()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// A cached answer as served now.
fn from_cache(a: &Answer, started: Instant) -> Answer {
    let mut a = a.clone();
    a.timings.cached = true;
    a.timings.first_token_ms = None;
    a.timings.retrieval_ms = 0;
    a.timings.total_ms = started.elapsed().as_millis() as u64;
    a
}

impl Answers {
    /// No answerer yet: every question is [`AskError::Starting`] until
    /// [`Answers::set_answerer`].
    pub fn new(settings: AnswerSettings) -> Answers {
        let cache = moka::future::Cache::builder()
            .max_capacity(settings.cache_entries)
            .time_to_live(Duration::from_secs(settings.cache_ttl_secs.max(1)))
            .build();
        // ratings come minutes after the answer; a day is plenty
        let records = moka::future::Cache::builder()
            .max_capacity(settings.cache_entries.max(1000) * 4)
            .time_to_live(Duration::from_secs(24 * 3600))
            .build();
        let insight_rows = moka::future::Cache::builder()
            .max_capacity(settings.cache_entries.max(1000) * 4)
            .time_to_live(Duration::from_secs(24 * 3600))
            .build();
        Answers {
            answerer: RwLock::new(None),
            cache,
            content_version: AtomicU64::new(0),
            records,
            insight_rows,
            insight_pending: std::sync::Mutex::new(HashMap::new()),
            insight_done: tokio::sync::Notify::new(),
            counters: Counters::default(),
            shared: RwLock::new(None),
        }
    }

    /// Answer with `answerer` from now on; its index's content version keys the cache.
    pub fn set_answerer(&self, answerer: Arc<Answerer>) {
        self.content_version
            .store(answerer.index().content_version(), Ordering::SeqCst);
        *self.answerer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answerer);
    }

    /// Keep the records for ratings in `store` too (the database replicas share: the server
    /// calls this for PostgreSQL; one process on SQLite keeps them in memory only).
    pub fn share_records(&self, store: Arc<lotse_portal::Store>) {
        *self.shared.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(store);
    }

    fn shared(&self) -> Option<Arc<lotse_portal::Store>> {
        self.shared.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Run `f` on the shared database, if there is one, on the blocking pool; failures are
    /// logged (without content) and give `None`.
    async fn on_shared<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&lotse_portal::Store) -> Result<T, lotse_portal::StoreError> + Send + 'static,
    ) -> Option<T> {
        let store = self.shared()?;
        // an answer never waits long for the database (down, or its pool exhausted): the
        // write goes on in the background, the caller goes on without it
        match tokio::time::timeout(SHARED_WAIT, tokio::task::spawn_blocking(move || f(&store))).await {
            Ok(Ok(Ok(v))) => Some(v),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "{what}");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "{what}: task failed");
                None
            }
            Err(_) => {
                tracing::warn!("{what}: the database did not answer within {} s", SHARED_WAIT.as_secs());
                None
            }
        }
    }

    /// Forget the shared records older than a day (housekeeping).
    pub async fn expire_records(&self) {
        if let Some(n) = self.on_shared("cannot expire answer records", |s| s.expire_answer_records()).await
            && n > 0
        {
            tracing::debug!(records = n, "old answer records expired");
        }
    }

    /// The answerer, when ready.
    pub fn answerer(&self) -> Option<Arc<Answerer>> {
        self.answerer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The index's content version, for answer-cache keys.
    pub fn content_version(&self) -> u64 {
        self.content_version.load(Ordering::SeqCst)
    }

    /// See new crawls: reload the index; when its content changed, drop cached answers.
    pub async fn refresh_index(&self) {
        let Some(a) = self.answerer() else { return };
        let a2 = a.clone();
        let reloaded = tokio::task::spawn_blocking(move || {
            a2.index().reload().map(|_| a2.index().content_version())
        })
        .await;
        match reloaded {
            Ok(Ok(v)) => {
                if self.content_version.swap(v, Ordering::SeqCst) != v {
                    tracing::info!("index content changed; answer cache cleared");
                    self.cache.invalidate_all();
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot reload the index"),
            Err(e) => tracing::warn!(error = %e, "index reload task failed"),
        }
    }

    /// Search the public pages (words and meaning): the query trimmed, at most
    /// [`lotse_answer::MAX_QUESTION_CHARS`] characters; `limit` 1..=50 (default 10); best
    /// sections first, one per page (the first hit of each URL).
    pub async fn search(&self, q: &str, limit: Option<usize>) -> Result<Vec<lotse_index::Hit>, SearchError> {
        let q = q.trim().to_string();
        if q.is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        if q.chars().count() > lotse_answer::MAX_QUESTION_CHARS {
            return Err(SearchError::QueryTooLong);
        }
        let limit = limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
        if !(1..=SEARCH_LIMIT_MAX).contains(&limit) {
            return Err(SearchError::InvalidLimit);
        }
        let answerer = self.answerer().ok_or(SearchError::Starting)?;
        let hits = tokio::task::spawn_blocking(move || answerer.search(&q, limit * 3))
            .await
            .map_err(|e| AnswerError::Index(e.to_string()))??;
        let mut seen = std::collections::HashSet::new();
        Ok(hits.into_iter().filter(|h| seen.insert(h.url.clone())).take(limit).collect())
    }

    /// Validate, look in the cache, else find evidence and queue the generation. `started`
    /// is when the request came in (a cached answer's total time).
    pub async fn start(&self, req: AnswerRequest, started: Instant) -> Result<Started, AskError> {
        let answerer = self.answerer().ok_or(AskError::Starting)?;
        let lang = Answerer::validate(&req)?;
        let history: Vec<String> = req
            .history
            .iter()
            .map(|t| format!("{:?}:{}", t.role, normalise(&t.content)))
            .collect();
        let key = format!(
            "{}\u{1}{}\u{1}{}\u{1}{}",
            self.content_version(),
            lang.code(),
            normalise(&req.question),
            history.join("\u{2}")
        );
        if let Some(hit) = self.cache.get(&key).await {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Started::Cached(from_cache(&hit, started)));
        }
        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        // personal data in a citizen's question never goes to an external engine: the answer
        // is then the source's own words, without the model (`policy`)
        let keep_local = answerer.generation().is_some_and(|g| {
            let scope = lotse_core::CollectionScope::public_website();
            let out = Outgoing::chat(&scope, &req.question, policy::user_turns(&req.history));
            policy::may_send(g.info(), &out).is_err()
        });
        let mut req = req;
        if keep_local {
            // searched without the personal data (no page answers a name); never sent anywhere
            req.question = policy::without_personal_data(&req.question);
            for t in &mut req.history {
                t.content = policy::without_personal_data(&t.content);
            }
        }
        let a2 = answerer.clone();
        let prepared = tokio::task::spawn_blocking(move || a2.prepare(&req))
            .await
            .map_err(|e| AnswerError::Model(e.to_string()))??;
        if keep_local {
            let run = answerer.start_without_model(prepared, "personal data kept from the external engine");
            return Ok(Started::Running(Running { run, key }));
        }
        let run = answerer.start(prepared).inspect_err(|e| {
            if *e == AnswerError::Busy {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        Ok(Started::Running(Running { run, key }))
    }

    /// Remember an answer that is handed out, for its rating.
    pub async fn remember(&self, answer: &Answer) {
        if !answer.id.is_empty() {
            let record = AnswerRecord::of(answer);
            let (id, r) = (answer.id.clone(), record.clone());
            self.on_shared("cannot store an answer record", move |s| s.put_answer_record(&id, &r.model, r.refused, &r.cited))
                .await;
            self.records.insert(answer.id.clone(), Arc::new(record)).await;
        }
    }

    /// A new answer is done: give it its id, remember it, count it, cache it (unless it
    /// needs a human look).
    async fn finished(&self, key: &str, answer: &mut Answer) {
        answer.id = answer_id(key, answer);
        self.remember(answer).await;
        let m = &self.counters;
        m.prompt_tokens
            .fetch_add(answer.timings.prompt_tokens as u64, Ordering::Relaxed);
        m.completion_tokens
            .fetch_add(answer.timings.completion_tokens as u64, Ordering::Relaxed);
        if answer.refused {
            m.refusals.fetch_add(1, Ordering::Relaxed);
        }
        if !answer.flagged {
            self.cache
                .insert(key.to_string(), Arc::new(answer.clone()))
                .await;
        }
    }

    /// What is known of an answer given lately (for its rating).
    pub async fn record(&self, id: &str) -> Option<AnswerRecord> {
        if let Some(r) = self.records.get(id).await {
            return Some((*r).clone());
        }
        // given by another replica (or before a restart)
        let id2 = id.to_string();
        let row = self.on_shared("cannot read an answer record", move |s| s.answer_record(&id2)).await??;
        let record = AnswerRecord { model: row.model, refused: row.refused, cited: row.cited };
        self.records.insert(id.to_string(), Arc::new(record.clone())).await;
        Some(record)
    }

    /// The question of `answer_id` is about to be recorded (`insights`); call
    /// [`Answers::insight_recorded`] when that is over, stored or not. Called before the
    /// answer reaches the citizen, so a rating can never overtake it unnoticed.
    pub fn insight_recording(&self, answer_id: &str) {
        *self.pending().entry(answer_id.to_string()).or_default() += 1;
    }

    /// The recording announced by [`Answers::insight_recording`] is over.
    pub fn insight_recorded(&self, answer_id: &str) {
        let mut pending = self.pending();
        if let Some(n) = pending.get_mut(answer_id) {
            *n -= 1;
            if *n == 0 {
                pending.remove(answer_id);
            }
        }
        drop(pending);
        self.insight_done.notify_waiters();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.insight_pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The recorded question of `answer_id`, waiting up to `wait` while it is still being
    /// recorded.
    pub async fn insight_row_when_recorded(&self, answer_id: &str, wait: Duration) -> Option<i64> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.insight_done.notified();
            tokio::pin!(notified);
            // registered before the check: a recording that ends in between still wakes us
            notified.as_mut().enable();
            if !self.pending().contains_key(answer_id) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        if let Some(row) = self.insight_rows.get(answer_id).await {
            return Some(row);
        }
        // answered by another replica: its link is in the shared database, or on its way
        // there while the answer is fresh (it is written right after the answer went out)
        loop {
            let id = answer_id.to_string();
            let row = self.on_shared("cannot read an answer record", move |s| s.answer_record(&id)).await?;
            let row = row?;
            if let Some(id) = row.insight_id {
                return Some(id);
            }
            let fresh = lotse_portal::store::now() - row.at <= 15;
            if !fresh || tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The answer `answer_id`'s question was recorded as row `row` (`insights`).
    pub async fn link_insight(&self, answer_id: String, row: i64) {
        if !answer_id.is_empty() {
            let id = answer_id.clone();
            self.on_shared("cannot link an answer to its question", move |s| s.link_answer_insight(&id, row))
                .await;
            self.insight_rows.insert(answer_id, row).await;
        }
    }

    /// The recorded question of an answer, if recorded within the day.
    pub async fn insight_row(&self, answer_id: &str) -> Option<i64> {
        self.insight_rows.get(answer_id).await
    }

    /// Row `row` was deleted: a later thumbs-down must not reach a row that reuses the id.
    pub async fn forget_insight_row(&self, row: i64) {
        let stale: Vec<Arc<String>> = self.insight_rows.iter().filter(|(_, r)| *r == row).map(|(k, _)| k).collect();
        for k in stale {
            self.insight_rows.invalidate(k.as_str()).await;
        }
        self.on_shared("cannot unlink a deleted question", move |s| s.unlink_answer_insights(Some(row)))
            .await;
    }

    /// Every row was deleted: ids start again after an empty table.
    pub async fn forget_insight_rows(&self) {
        self.insight_rows.invalidate_all();
        self.on_shared("cannot unlink the deleted questions", |s| s.unlink_answer_insights(None))
            .await;
    }

    /// The figures for the metrics.
    pub fn stats(&self) -> AnswerStats {
        let c = &self.counters;
        AnswerStats {
            cache_entries: self.cache.entry_count(),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: c.completion_tokens.load(Ordering::Relaxed),
            refusals: c.refusals.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starting_without_an_answerer() {
        let answers = Answers::new(AnswerSettings { cache_entries: 10, cache_ttl_secs: 60 });
        let req = AnswerRequest { question: "Wo ist das Rathaus?".into(), history: Vec::new(), lang: None };
        assert!(matches!(answers.start(req, Instant::now()).await, Err(AskError::Starting)));
        assert_eq!(answers.stats(), AnswerStats::default());
    }

    #[tokio::test]
    async fn insight_rows_are_forgotten_with_their_row() {
        let answers = Answers::new(AnswerSettings { cache_entries: 10, cache_ttl_secs: 60 });
        answers.link_insight("a".into(), 1).await;
        answers.link_insight("b".into(), 2).await;
        answers.link_insight(String::new(), 3).await;
        assert_eq!(answers.insight_row("a").await, Some(1));
        assert_eq!(answers.insight_row("").await, None);
        answers.forget_insight_row(1).await;
        assert_eq!(answers.insight_row("a").await, None);
        assert_eq!(answers.insight_row("b").await, Some(2));
        answers.forget_insight_rows().await;
        assert_eq!(answers.insight_row("b").await, None);
    }
}
