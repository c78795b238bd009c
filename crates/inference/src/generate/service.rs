//! The generation pool: a few dedicated OS threads running a blocking [`Generator`] behind a
//! bounded queue, streaming events to async callers over tokio channels.
//!
//! `submit` never waits: when the queue is full it returns [`InferenceError::Busy`] at once,
//! so overload is refused early. A generation stops at the next token when its
//! [`CancelToken`] is cancelled or when its event receiver is dropped (a disconnected client);
//! a watchdog thread notices dropped receivers during long prompt processing too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver as JobReceiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result,
};

/// Events per generation that may wait for a slow reader before the worker blocks.
const EVENT_BUFFER: usize = 256;
/// How often the watchdog looks for dropped receivers.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

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
        queued.fetch_sub(1, Ordering::SeqCst);
        if job.cancel.is_cancelled() || job.events.is_closed() {
            continue;
        }
        lock(&running)[slot] = Some((job.events.clone(), job.cancel.clone()));
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
