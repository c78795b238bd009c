//! A pool of OpenAI-compatible engines behind one [`Generator`]: the way a town's IT runs a
//! service on several machines.
//!
//! Each member has its own [`ModelInfo`], a concurrency limit (slots), a circuit breaker and a
//! health check:
//!
//! - **Selection**: among the members that are healthy, whose circuit is closed (or half-open
//!   with no trial running) and that have a free slot, the least busy one (relative to its
//!   slots; ties go to the one used longest ago, so sequential requests take turns). When
//!   every usable member is full the request waits for a slot, at most
//!   [`PoolOptions::slot_wait`]; then it fails with [`InferenceError::Busy`] (the callers'
//!   "busy, 503" path). When no member is usable at all (all unhealthy or open) it fails at
//!   once.
//! - **Failover**: a member that fails before it produced any text (connection refused, an
//!   error status, a timeout before the first piece) is left for this request and the next
//!   usable member is tried. Once text has streamed to the caller nothing is replayed: the
//!   error is returned. A request the engine rejects as such ([`InferenceError::Rejected`],
//!   e.g. 400 "context length exceeded") is tried on the next member too (engines may differ
//!   in context length or limits) but never counts against a member's circuit, nor clears
//!   its earlier failures: a burst of bad requests cannot open every circuit.
//! - **Circuit breaker**: after [`PoolOptions::failure_threshold`] consecutive failures a
//!   member's circuit opens for [`PoolOptions::open_for`]; then it is half-open: one trial
//!   request; success closes it, failure opens it again.
//! - **Health checks**: a background thread asks each member `GET {base_url}/models` every
//!   [`PoolOptions::health_interval`]. A member that does not answer 2xx is skipped; when it
//!   answers again it is used again (an open circuit becomes half-open at once). The thread
//!   ends when the pool is dropped.
//!
//! # The `external` flag (KI-Kompass)
//!
//! Policy code (`lotse_service::policy::may_send`) decides by the engine's
//! `ModelInfo::external` whether private collections and personal data may go to it, and it
//! sees only the pool's [`EnginePool::info`]. A pool that mixed internal and external members
//! could pass that check as "internal" and then, by failover, send the text to an external
//! member. So this design makes mixing impossible rather than guarding it per request:
//!
//! 1. [`EnginePool::new`] refuses members whose `external` flags differ (an error naming
//!    both); the configuration check refuses such a `[[engine.pool]]` the same way.
//! 2. The pool's `info().external` is that one shared value, so the policy sees exactly the
//!    flag of every engine a request can reach.
//! 3. Defence in depth: selection also skips any member whose `info().external` differs from
//!    the pool's at the moment of dispatch (it cannot happen with the generators of this
//!    crate, whose info is fixed).
//!
//! A hosted service belongs in `[[portal.external]]`, where staff choose it explicitly and the
//! policy checks each request against it, never in the failover chain of an internal engine.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::remote::{RemoteConfig, RemoteGenerator};
use crate::{
    CancelToken, ChatMessage, Generation, GenerationParams, Generator, InferenceError, ModelInfo,
    Result, StopReason,
};

/// Timing of the breaker, the slot wait and the health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Consecutive failures that open a member's circuit.
    pub failure_threshold: u32,
    /// How long an open circuit stays open before one trial request.
    pub open_for: Duration,
    /// The longest a request waits for a free slot before it is refused as busy.
    pub slot_wait: Duration,
    /// Time between two health checks of a member (zero: no health checks).
    pub health_interval: Duration,
    /// Time a health check may take.
    pub health_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            failure_threshold: 3,
            open_for: Duration::from_secs(30),
            slot_wait: Duration::from_secs(10),
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
        }
    }
}

/// One engine of a pool, from the configuration (`[[engine.pool]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMemberConfig {
    pub remote: RemoteConfig,
    /// Requests this engine runs at once (at least 1).
    pub concurrency: usize,
}

/// How a member's health is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Answers 2xx while the engine is usable, e.g. `http://10.0.0.5:8000/v1/models`.
    pub url: String,
    /// Sent as `Authorization: Bearer` (vLLM with `--api-key` wants it on `/models` too).
    pub bearer: Option<String>,
}

/// One engine of a pool.
pub struct PoolMember {
    /// For logs and status: the base URL (never a key).
    pub name: String,
    pub generator: Arc<dyn Generator>,
    /// Requests this member runs at once (at least 1).
    pub concurrency: usize,
    /// None: no health checks, only the circuit breaker.
    pub health: Option<HealthCheck>,
}

impl std::fmt::Debug for PoolMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMember")
            .field("name", &self.name)
            .field("info", self.generator.info())
            .field("concurrency", &self.concurrency)
            .field("health_url", &self.health.as_ref().map(|h| &h.url))
            .finish()
    }
}

impl PoolMember {
    /// An OpenAI-compatible engine, health-checked at `{base_url}/models`.
    pub fn remote(config: &PoolMemberConfig) -> Result<PoolMember> {
        let generator = RemoteGenerator::new(&config.remote)?;
        let bearer = match &config.remote.api_key_env {
            // RemoteGenerator::new has checked that it is set
            Some(var) => std::env::var(var).ok().filter(|k| !k.is_empty()),
            None => None,
        };
        let base = config.remote.base_url.trim_end_matches('/');
        Ok(PoolMember {
            name: base.to_string(),
            generator: Arc::new(generator),
            concurrency: config.concurrency,
            health: Some(HealthCheck {
                url: format!("{base}/models"),
                bearer,
            }),
        })
    }
}

/// A member's state as selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Healthy, circuit closed.
    Up,
    /// The last health check failed.
    Unhealthy,
    /// The circuit is open (too many consecutive failures).
    Open,
    /// The circuit was open; the next request is a trial.
    HalfOpen,
}

/// A member's status, for `/ready` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    pub name: String,
    pub model: String,
    pub external: bool,
    pub state: MemberState,
    pub busy: usize,
    pub concurrency: usize,
    pub consecutive_failures: u32,
    /// Requests sent to this member.
    pub dispatched: u64,
    /// Of those, failed.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Slot {
    busy: usize,
    failures: u32,
    open_until: Option<Instant>,
    /// A half-open trial is running.
    trial: bool,
    unhealthy: bool,
    /// Ticket of the last dispatch (ties go to the smallest).
    last_used: u64,
    dispatched: u64,
    failed: u64,
}

struct Shared {
    members: Vec<PoolMember>,
    external: bool,
    options: PoolOptions,
    slots: Mutex<(Vec<Slot>, u64)>,
    freed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, (Vec<Slot>, u64)> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, i: usize, outcome: Outcome) {
        let mut g = self.lock();
        let s = &mut g.0[i];
        s.busy = s.busy.saturating_sub(1);
        if outcome == Outcome::Neutral {
            // says nothing about the engine: strikes so far stay, none is added
        } else if outcome == Outcome::Success {
            s.failures = 0;
            s.open_until = None;
        } else {
            s.failed += 1;
            s.failures = s.failures.saturating_add(1);
            if s.trial || s.failures >= self.options.failure_threshold.max(1) {
                if s.open_until.is_none() || s.trial {
                    tracing::warn!(
                        engine = %self.members[i].name,
                        failures = s.failures,
                        "engine pool: circuit opened"
                    );
                }
                s.open_until = Some(Instant::now() + self.options.open_for);
            }
        }
        s.trial = false;
        drop(g);
        self.freed.notify_all();
    }

    fn set_health(&self, i: usize, healthy: bool) {
        let mut g = self.lock();
        let s = &mut g.0[i];
        if healthy {
            let was_down = s.unhealthy;
            s.unhealthy = false;
            if was_down {
                tracing::info!(engine = %self.members[i].name, "engine pool: engine healthy again");
                // an engine that was down and answers again gets its trial now instead of after
                // the cool-down; one that stayed up (its /models answers while completions fail)
                // rests the full time
                let now = Instant::now();
                if s.open_until.is_some_and(|t| t > now) {
                    s.open_until = Some(now);
                }
            }
        } else {
            if !s.unhealthy {
                tracing::warn!(engine = %self.members[i].name, "engine pool: health check failed");
            }
            s.unhealthy = true;
        }
        drop(g);
        self.freed.notify_all();
    }
}

enum Unavailable {
    /// Every usable member is full; waited `slot_wait`.
    Busy,
    /// No member can take the request (unhealthy, open, already tried).
    Down,
}

/// Engines behind one [`Generator`]; see the module documentation.
pub struct EnginePool {
    info: ModelInfo,
    shared: Arc<Shared>,
    /// Dropping it ends the health thread.
    _stop_health: Option<mpsc::Sender<()>>,
}

impl std::fmt::Debug for EnginePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePool")
            .field("info", &self.info)
            .field("members", &self.shared.members)
            .finish()
    }
}

impl EnginePool {
    /// A pool over `members`. Refuses an empty pool, a member with no slot, and members that
    /// differ in `external` (see the module documentation).
    pub fn new(members: Vec<PoolMember>, options: PoolOptions) -> Result<EnginePool> {
        let Some(first) = members.first() else {
            return Err(InferenceError::Remote(
                "an engine pool needs at least one engine".into(),
            ));
        };
        let external = first.generator.info().external;
        for m in &members {
            if m.concurrency == 0 {
                return Err(InferenceError::Remote(format!(
                    "engine {} of the pool: concurrency must be at least 1",
                    m.name
                )));
            }
            if m.generator.info().external != external {
                let (ext, int) = if external {
                    (&first.name, &m.name)
                } else {
                    (&m.name, &first.name)
                };
                return Err(InferenceError::Remote(format!(
                    "the engines of a pool must all be internal or all be external, but {ext} is external and {int} is not: failover could send private text to the external one; put a hosted service in [[portal.external]] instead"
                )));
            }
        }
        let mut ids: Vec<&str> = Vec::new();
        for m in &members {
            let id = m.generator.info().id.as_str();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let info = ModelInfo {
            id: ids.join(","),
            external,
            context_len: members
                .iter()
                .map(|m| m.generator.info().context_len)
                .min()
                .unwrap_or(2),
        };
        let slots = members.iter().map(|_| Slot::default()).collect();
        let shared = Arc::new(Shared {
            members,
            external,
            options,
            slots: Mutex::new((slots, 0)),
            freed: Condvar::new(),
        });
        let stop = if !shared.options.health_interval.is_zero()
            && shared.members.iter().any(|m| m.health.is_some())
        {
            let (tx, rx) = mpsc::channel();
            let weak = Arc::downgrade(&shared);
            thread::Builder::new()
                .name("lotse-engine-health".into())
                .spawn(move || health_loop(weak, rx))
                .map_err(|e| InferenceError::Remote(format!("health-check thread: {e}")))?;
            Some(tx)
        } else {
            None
        };
        Ok(EnginePool {
            info,
            shared,
            _stop_health: stop,
        })
    }

    /// A pool of OpenAI-compatible engines as configured.
    pub fn remote(configs: &[PoolMemberConfig], options: PoolOptions) -> Result<EnginePool> {
        let members = configs
            .iter()
            .map(PoolMember::remote)
            .collect::<Result<Vec<_>>>()?;
        EnginePool::new(members, options)
    }

    /// Requests the pool runs at once (the sum of its members' slots).
    pub fn capacity(&self) -> usize {
        self.shared.members.iter().map(|m| m.concurrency).sum()
    }

    /// Each member's state, in configuration order.
    pub fn members(&self) -> Vec<MemberStatus> {
        let g = self.shared.lock();
        let now = Instant::now();
        self.shared
            .members
            .iter()
            .zip(&g.0)
            .map(|(m, s)| MemberStatus {
                name: m.name.clone(),
                model: m.generator.info().id.clone(),
                external: m.generator.info().external,
                state: if s.unhealthy {
                    MemberState::Unhealthy
                } else {
                    match s.open_until {
                        Some(t) if t > now => MemberState::Open,
                        Some(_) => MemberState::HalfOpen,
                        None => MemberState::Up,
                    }
                },
                busy: s.busy,
                concurrency: m.concurrency,
                consecutive_failures: s.failures,
                dispatched: s.dispatched,
                failed: s.failed,
            })
            .collect()
    }

    /// Take a slot of the best usable member not yet `tried`.
    fn acquire(&self, tried: &[bool], deadline: Instant) -> std::result::Result<usize, Unavailable> {
        let shared = &self.shared;
        let mut g = shared.lock();
        loop {
            let now = Instant::now();
            let mut best: Option<(usize, (usize, u64), bool)> = None;
            let mut may_free = false;
            for (i, (m, s)) in shared.members.iter().zip(&g.0).enumerate() {
                // the safety property: never a member whose flag differs from the pool's
                if tried[i] || s.unhealthy || m.generator.info().external != shared.external {
                    continue;
                }
                let half_open = match s.open_until {
                    Some(t) if t > now => continue,
                    Some(_) => true,
                    None => false,
                };
                if (half_open && s.trial) || s.busy >= m.concurrency {
                    may_free = true;
                    continue;
                }
                // least busy relative to the slots, then the one used longest ago
                let key = (s.busy * 1024 / m.concurrency, s.last_used);
                if best.as_ref().is_none_or(|(_, k, _)| key < *k) {
                    best = Some((i, key, half_open));
                }
            }
            if let Some((i, _, half_open)) = best {
                g.1 += 1;
                let ticket = g.1;
                let s = &mut g.0[i];
                s.busy += 1;
                s.trial |= half_open;
                s.last_used = ticket;
                s.dispatched += 1;
                return Ok(i);
            }
            if !may_free {
                return Err(Unavailable::Down);
            }
            if now >= deadline {
                return Err(Unavailable::Busy);
            }
            // woken by a release or a health change; the cap notices circuits turning half-open
            let wait = (deadline - now).min(Duration::from_millis(100));
            g = shared
                .freed
                .wait_timeout(g, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Gives the slot back (as a failure unless marked a success), also when the generator panics.
/// How a request ended, for the member's circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    /// The engine refused the request itself ([`InferenceError::Rejected`]): neither a
    /// strike nor proof of health.
    Neutral,
}

struct Taken<'a> {
    shared: &'a Shared,
    index: usize,
    outcome: Outcome,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.shared.release(self.index, self.outcome);
    }
}

impl Generator for EnginePool {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn pool_members(&self) -> Option<Vec<MemberStatus>> {
        Some(self.members())
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        cancel: &CancelToken,
        on_token: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let mut tried = vec![false; self.shared.members.len()];
        let deadline = Instant::now() + self.shared.options.slot_wait;
        let mut last_error: Option<InferenceError> = None;
        loop {
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
            let index = match self.acquire(&tried, deadline) {
                Ok(i) => i,
                Err(Unavailable::Busy) => return Err(last_error.unwrap_or(InferenceError::Busy)),
                Err(Unavailable::Down) => {
                    return Err(last_error.unwrap_or_else(|| {
                        InferenceError::Remote(
                            "no engine of the pool is available (all are unhealthy or their circuit is open)"
                                .into(),
                        )
                    }));
                }
            };
            tried[index] = true;
            let member = &self.shared.members[index];
            let mut taken = Taken {
                shared: &self.shared,
                index,
                outcome: Outcome::Failure,
            };
            let mut emitted = false;
            let result = member.generator.generate(messages, params, cancel, &mut |t| {
                emitted = true;
                on_token(t);
            });
            match result {
                Ok(generation) => {
                    taken.outcome = Outcome::Success;
                    return Ok(generation);
                }
                Err(e) => {
                    if matches!(e, InferenceError::Rejected(_) | InferenceError::Cancelled) {
                        // the request's fault, not the engine's: no strike against its
                        // circuit (a burst of such requests must not open every member's
                        // circuit); another engine with a longer context may still take it
                        taken.outcome = Outcome::Neutral;
                    }
                    drop(taken);
                    tracing::warn!(
                        engine = %member.name,
                        streamed = emitted,
                        "engine pool: generation failed: {e}"
                    );
                    // text already reached the caller: replaying would repeat or contradict it
                    if emitted || matches!(e, InferenceError::Cancelled) {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
    }
}

fn health_loop(shared: Weak<Shared>, stop: mpsc::Receiver<()>) {
    let Some(timeout) = shared.upgrade().map(|s| s.options.health_timeout) else {
        return;
    };
    let client = match reqwest::blocking::Client::builder()
        .timeout(timeout.max(Duration::from_millis(100)))
        .user_agent(concat!("lotse/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("engine pool: no health checks: {e}");
            return;
        }
    };
    loop {
        let Some(pool) = shared.upgrade() else { return };
        for (i, m) in pool.members.iter().enumerate() {
            let Some(check) = &m.health else { continue };
            let mut request = client.get(&check.url);
            if let Some(key) = &check.bearer {
                request = request.bearer_auth(key);
            }
            let healthy = request.send().is_ok_and(|r| r.status().is_success());
            pool.set_health(i, healthy);
        }
        let interval = pool.options.health_interval;
        drop(pool);
        match stop.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests;
