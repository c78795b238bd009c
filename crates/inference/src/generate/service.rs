//! The generation pool: a few dedicated OS threads running a blocking [`Generator`] behind a
//! bounded queue, streaming events to async callers over tokio channels.
//!
//! `submit` never waits: when the queue is full it returns [`InferenceError::Busy`] at once,
//! so overload is refused early. A generation stops at the next token when its
//! [`CancelToken`] is cancelled or when its event receiver is dropped (a disconnected client);
//! a watchdog thread notices dropped receivers during long prompt processing too.
//!
//! Background work (Einfache-Sprache pre-generation) uses [`GenerationService::yielding`]: a
//! generator over the same model that gives way to the service's generations, so that a
//! citizen's answer never waits for a page rewrite.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver as JobReceiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result, StopReason,
};

/// Events per generation that may wait for a slow reader before the worker blocks.
const EVENT_BUFFER: usize = 256;
/// How often the watchdog looks for dropped receivers.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Background work waits until no interactive request (a search) came for this long.
const QUIET_AFTER_ACTIVITY: Duration = Duration::from_millis(1000);
/// The longest that searches alone hold background work back: a search every second must not
/// keep the rewrites waiting forever (a search costs milliseconds, a rewrite's prompt seconds).
const MAX_WAIT_FOR_SEARCHES: Duration = Duration::from_secs(10);

/// What a running generation reports, in order: any number of `Token`s, then one `Done` or
/// one `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// New text (the concatenation of all tokens is `Generation::text`).
    Token(String),
    Done(Generation),
    Error(String),
}

/// A submitted generation: its events and a way to stop it. Dropping `events` cancels it too.
#[derive(Debug)]
pub struct GenerationHandle {
    pub events: mpsc::Receiver<GenerationEvent>,
    pub cancel: CancelToken,
}

struct Job {
    messages: Vec<ChatMessage>,
    params: GenerationParams,
    cancel: CancelToken,
    events: mpsc::Sender<GenerationEvent>,
}

/// Running jobs, one slot per worker, for the watchdog.
type Running = Arc<Mutex<Vec<Option<(mpsc::Sender<GenerationEvent>, CancelToken)>>>>;

/// A bounded queue in front of worker threads sharing one generator.
pub struct GenerationService {
    info: ModelInfo,
    generator: Arc<dyn Generator>,
    /// Background generations stopped to let a generation of the service run first.
    preempted: AtomicUsize,
    /// When the last interactive request came, in ms after `epoch` (0: never).
    last_activity_ms: AtomicU64,
    epoch: Instant,
    jobs: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    running: Running,
    shutdown: Arc<AtomicBool>,
}

impl std::fmt::Debug for GenerationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerationService")
            .field("model", &self.info.id)
            .field("queued", &self.queue_depth())
            .finish_non_exhaustive()
    }
}

impl GenerationService {
    /// Start `workers` threads (at least 1) taking jobs from a queue of `queue_capacity`
    /// waiting generations (0: accept only when a worker is idle).
    ///
    /// With a local model, one worker is right: the model runs one generation at a time and
    /// uses all cores for it. More workers suit remote engines.
    pub fn new(
        generator: Arc<dyn Generator>,
        workers: usize,
        queue_capacity: usize,
    ) -> GenerationService {
        let workers = workers.max(1);
        let (jobs, job_rx) = sync_channel::<Job>(queue_capacity);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let queued = Arc::new(AtomicUsize::new(0));
        let running: Running = Arc::new(Mutex::new(vec![None; workers]));
        let shutdown = Arc::new(AtomicBool::new(false));
        for slot in 0..workers {
            let generator = generator.clone();
            let job_rx = job_rx.clone();
            let queued = queued.clone();
            let running = running.clone();
            let spawned = thread::Builder::new()
                .name(format!("lotse-generate-{slot}"))
                .spawn(move || worker(generator, job_rx, queued, running, slot));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a generation worker");
            }
        }
        {
            let running = running.clone();
            let shutdown = shutdown.clone();
            let spawned = thread::Builder::new()
                .name("lotse-generate-watch".into())
                .spawn(move || watchdog(running, shutdown));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the generation watchdog");
            }
        }
        GenerationService {
            info: generator.info().clone(),
            generator,
            preempted: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            jobs,
            queued,
            running,
            shutdown,
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Queue a generation; returns at once, with [`InferenceError::Busy`] when the queue is
    /// full.
    pub fn submit(
        &self,
        messages: Vec<ChatMessage>,
        params: GenerationParams,
    ) -> Result<GenerationHandle> {
        let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
        let cancel = CancelToken::new();
        let job = Job {
            messages,
            params,
            cancel: cancel.clone(),
            events,
        };
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(GenerationHandle {
                events: events_rx,
                cancel,
            }),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(InferenceError::Busy)
            }
        }
    }

    /// Generations waiting for a worker (not counting running ones).
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Generations running now.
    pub fn running(&self) -> usize {
        lock(&self.running).iter().flatten().count()
    }

    /// Whether generations are queued or running.
    pub fn busy(&self) -> bool {
        self.queue_depth() > 0 || self.running() > 0
    }

    /// An interactive request (a search) was served: background generations pause until
    /// things have been quiet for a second, so that they do not take the CPU from citizens.
    pub fn note_activity(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_activity_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Whether background work that has waited since `since` should go on waiting:
    /// generations are queued or running, or a search came less than a second ago and the
    /// wait is shorter than [`MAX_WAIT_FOR_SEARCHES`].
    pub fn must_wait(&self, since: Instant) -> bool {
        self.busy() || (self.gives_way() && since.elapsed() < MAX_WAIT_FOR_SEARCHES)
    }

    /// Whether background work should wait: generations are queued or running, or an
    /// interactive request came less than a second ago.
    pub fn gives_way(&self) -> bool {
        let last = self.last_activity_ms.load(Ordering::Relaxed);
        self.busy()
            || (last > 0
                && self.epoch.elapsed().as_millis() as u64 + 1
                    < last + QUIET_AFTER_ACTIVITY.as_millis() as u64)
    }

    /// How often a background generation was stopped so that one of the service's ran first.
    pub fn preempted(&self) -> usize {
        self.preempted.load(Ordering::SeqCst)
    }

    /// The engine pool's members and their state (`None` unless the generator is a pool).
    pub fn pool_members(&self) -> Option<Vec<crate::pool::MemberStatus>> {
        self.generator.pool_members()
    }

    /// The same model for background work that gives way to this service's generations (see
    /// [`Yielding`]).
    pub fn yielding(self: &Arc<Self>) -> Arc<dyn Generator> {
        Arc::new(Yielding {
            service: self.clone(),
        })
    }
}

/// A generator for background work that gives way to a [`GenerationService`]: it starts only
/// while the service is idle and no search came for a second
/// ([`GenerationService::gives_way`]); a generation submitted to the service (or a search)
/// while it runs stops it at the next prompt pass (a local model runs background prompts in
/// passes of 48 tokens) or token, and it starts again from the beginning once the service is
/// idle. Its tokens reach `on_token` only from the attempt that completes, so a caller sees
/// one uninterrupted generation, later.
pub struct Yielding {
    service: Arc<GenerationService>,
}

impl Generator for Yielding {
    fn info(&self) -> &ModelInfo {
        &self.service.info
    }

    fn pool_members(&self) -> Option<Vec<crate::pool::MemberStatus>> {
        self.service.pool_members()
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut params = params.clone();
        params.background = true;
        loop {
            let since = Instant::now();
            while self.service.must_wait(since) {
                if cancel.is_cancelled() {
                    return Ok(Generation {
                        text: String::new(),
                        prompt_tokens: 0,
                        completion_tokens: 0,
                        stop_reason: StopReason::Cancelled,
                        prompt_truncated: false,
                        cached_prompt_tokens: 0,
                    });
                }
                thread::sleep(WATCH_INTERVAL);
            }
            let attempt = CancelToken::new();
            let finished = AtomicBool::new(false);
            let mut pieces: Vec<String> = Vec::new();
            let result = thread::scope(|scope| {
                scope.spawn(|| {
                    while !finished.load(Ordering::SeqCst) {
                        // a running rewrite stops for a citizen's generation, not for a search
                        if cancel.is_cancelled() || self.service.busy() {
                            attempt.cancel();
                            return;
                        }
                        thread::sleep(WATCH_INTERVAL / 5);
                    }
                });
                let r = self
                    .service
                    .generator
                    .generate(messages, &params, &attempt, &mut |t| {
                        pieces.push(t.to_string())
                    });
                finished.store(true, Ordering::SeqCst);
                r
            });
            match result {
                Ok(g) if g.stop_reason == StopReason::Cancelled && !cancel.is_cancelled() => {
                    self.service.preempted.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(
                        "a background generation gave way to an answer; it runs again later"
                    );
                }
                Ok(g) => {
                    for p in &pieces {
                        on_token(p);
                    }
                    return Ok(g);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for GenerationService {
    /// Stops the watchdog and cancels running generations; workers end when the queue is
    /// empty (queued jobs whose receivers are gone are skipped).
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for (_, cancel) in lock(&self.running).iter().flatten() {
            cancel.cancel();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn worker(
    generator: Arc<dyn Generator>,
    jobs: Arc<Mutex<JobReceiver<Job>>>,
    queued: Arc<AtomicUsize>,
    running: Running,
    slot: usize,
) {
    loop {
        // Hold the receiver lock only while waiting for the next job.
        let job = lock(&jobs).recv();
        let Ok(job) = job else {
            return; // the service is gone
        };
        if job.cancel.is_cancelled() || job.events.is_closed() {
            queued.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        // running before no longer queued: `busy` never reads false in between
        lock(&running)[slot] = Some((job.events.clone(), job.cancel.clone()));
        queued.fetch_sub(1, Ordering::SeqCst);
        run_job(generator.as_ref(), &job);
        lock(&running)[slot] = None;
    }
}

fn run_job(generator: &dyn Generator, job: &Job) {
    let events = &job.events;
    let cancel = &job.cancel;
    let mut on_token = |text: &str| {
        if events
            .blocking_send(GenerationEvent::Token(text.to_string()))
            .is_err()
        {
            cancel.cancel();
        }
    };
    let res = catch_unwind(AssertUnwindSafe(|| {
        generator.generate(&job.messages, &job.params, cancel, &mut on_token)
    }));
    let last = match res {
        Ok(Ok(generation)) => GenerationEvent::Done(generation),
        Ok(Err(e)) => GenerationEvent::Error(e.to_string()),
        Err(_) => {
            tracing::error!("generation panicked");
            GenerationEvent::Error("internal error in the generator".to_string())
        }
    };
    // The receiver may be gone; nothing to report then.
    let _ = events.blocking_send(last);
}

fn watchdog(running: Running, shutdown: Arc<AtomicBool>) {
    while !shutdown.load(Ordering::SeqCst) {
        thread::sleep(WATCH_INTERVAL);
        for (events, cancel) in lock(&running).iter().flatten() {
            if events.is_closed() {
                cancel.cancel();
            }
        }
    }
}
