//! Prometheus metrics through the `prometheus` crate: one registry per server (tests run
//! several servers in one process, so never the crate's global registry), with the process
//! collector (memory, CPU, file descriptors, threads, start time; Linux). Labels carry route
//! templates, status codes and engine pool members (index and host) only, never request
//! content.

use std::sync::Mutex;

use lotse_inference::pool::{MemberState, MemberStatus};
use lotse_service::answers::AnswerStats;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The generation pool's figures at the time of a scrape.
#[derive(Debug, Default)]
pub struct Pool {
    pub queue_depth: usize,
    pub running: usize,
    pub preempted: usize,
}

/// What other parts of the server count, read at the time of a scrape.
#[derive(Debug, Default)]
pub struct Scrape {
    pub pool: Pool,
    /// Counted by `lotse_service::answers::Answers`.
    pub answers: AnswerStats,
    /// Portal passwords checked with argon2 (`LoginGuard::password_checks`).
    pub password_checks: u64,
    /// The engine pool's members (`[[engine.pool]]`), empty for a single engine.
    pub engines: Vec<MemberStatus>,
}

/// Figures that are read from elsewhere at each scrape and set just before the registry is
/// gathered.
struct Scraped {
    queue_depth: IntGauge,
    running: IntGauge,
    preempted: IntCounter,
    cache_entries: IntGauge,
    tokens: IntCounterVec,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    refusals: IntCounter,
    busy: IntCounter,
    password_checks: IntCounter,
    engine_state: IntGaugeVec,
    engine_in_flight: IntGaugeVec,
    engine_slots: IntGaugeVec,
    engine_consecutive_failures: IntGaugeVec,
    engine_requests: IntCounterVec,
    engine_failures: IntCounterVec,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    rate_limited: IntCounter,
    feedback: IntCounterVec,
    /// Held while the scraped figures are set and the registry is gathered, so that two
    /// scrapes at once do not mix.
    scraped: Mutex<Scraped>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A collector registered under its name; the names are fixed, so a failure is a bug here.
fn registered<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry.register(Box::new(c.clone())).expect("metric names are unique and valid");
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help).expect("valid metric"))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid metric"))
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(registry, IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"))
}

/// Set a counter to a total counted elsewhere (only under the `scraped` lock).
fn set_total(c: &IntCounter, v: u64) {
    c.reset();
    c.inc_by(v);
}

/// The host (and port) of an engine's base URL: never its path, query or user info, which
/// may hold a secret. Empty when it is not a URL.
fn engine_host(name: &str) -> String {
    match url::Url::parse(name) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

const ENGINE_STATES: [(MemberState, &str); 4] = [
    (MemberState::Up, "up"),
    (MemberState::Unhealthy, "unhealthy"),
    (MemberState::Open, "open"),
    (MemberState::HalfOpen, "half_open"),
];

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process metric names are unique");
        let requests = counter_vec(&r, "lotse_requests_total", "HTTP requests by route and status.", &["route", "status"]);
        let latency = registered(
            &r,
            HistogramVec::new(
                HistogramOpts::new(
                    "lotse_request_duration_seconds",
                    "Time to the response headers (streams: to the first byte).",
                )
                .buckets(BUCKETS.to_vec()),
                &["route"],
            )
            .expect("valid metric"),
        );
        let rate_limited = counter(&r, "lotse_rate_limited_total", "Requests refused with 429.");
        let feedback = counter_vec(&r, "lotse_feedback_total", "Ratings of answers by citizens.", &["helpful"]);
        for helpful in ["true", "false"] {
            feedback.with_label_values(&[helpful]);
        }
        let engine_labels = ["engine", "host"];
        let scraped = Scraped {
            queue_depth: gauge(&r, "lotse_generation_queue_depth", "Answers waiting for the model."),
            running: gauge(&r, "lotse_generation_running", "Answers being generated."),
            preempted: counter(
                &r,
                "lotse_background_preempted_total",
                "Background rewrites stopped to let an answer run first.",
            ),
            cache_entries: gauge(&r, "lotse_answer_cache_entries", "Answers in the cache."),
            tokens: counter_vec(&r, "lotse_tokens_total", "Tokens processed by the generator.", &["kind"]),
            cache_hits: counter(&r, "lotse_answer_cache_hits_total", "Answers served from the cache."),
            cache_misses: counter(&r, "lotse_answer_cache_misses_total", "Answers not in the cache."),
            refusals: counter(
                &r,
                "lotse_refusals_total",
                "Answers that said the website does not answer the question.",
            ),
            busy: counter(&r, "lotse_busy_total", "Requests refused with 503 because the queue was full."),
            password_checks: counter(
                &r,
                "lotse_portal_password_checks_total",
                "Portal passwords checked with argon2.",
            ),
            engine_state: gauge_vec(
                &r,
                "lotse_engine_state",
                "State of each engine of the pool ([[engine.pool]], in configuration order): 1 for its current state.",
                &["engine", "host", "state"],
            ),
            engine_in_flight: gauge_vec(&r, "lotse_engine_in_flight", "Requests an engine of the pool runs now.", &engine_labels),
            engine_slots: gauge_vec(&r, "lotse_engine_slots", "Requests an engine of the pool may run at once.", &engine_labels),
            engine_consecutive_failures: gauge_vec(
                &r,
                "lotse_engine_consecutive_failures",
                "Failures of an engine of the pool in a row (the breaker opens at 3).",
                &engine_labels,
            ),
            engine_requests: counter_vec(&r, "lotse_engine_requests_total", "Requests sent to an engine of the pool.", &engine_labels),
            engine_failures: counter_vec(&r, "lotse_engine_failures_total", "Requests an engine of the pool failed.", &engine_labels),
        };
        Metrics {
            registry: r,
            requests,
            latency,
            rate_limited,
            feedback,
            scraped: Mutex::new(scraped),
        }
    }

    /// Count a finished request of `route` (a template like `/api/v1/chat`).
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests.with_label_values(&[route, &status.to_string()]).inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// Count a request refused with 429.
    pub fn count_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// Count a rating of an answer.
    pub fn count_feedback(&self, helpful: bool) {
        self.feedback.with_label_values(&[if helpful { "true" } else { "false" }]).inc();
    }

    /// The text exposition format, with the figures of `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let families = {
            let s = self.scraped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.queue_depth.set(scrape.pool.queue_depth as i64);
            s.running.set(scrape.pool.running as i64);
            set_total(&s.preempted, scrape.pool.preempted as u64);
            let a = &scrape.answers;
            s.cache_entries.set(a.cache_entries as i64);
            s.tokens.reset();
            s.tokens.with_label_values(&["prompt"]).inc_by(a.prompt_tokens);
            s.tokens.with_label_values(&["completion"]).inc_by(a.completion_tokens);
            set_total(&s.cache_hits, a.cache_hits);
            set_total(&s.cache_misses, a.cache_misses);
            set_total(&s.refusals, a.refusals);
            set_total(&s.busy, a.busy);
            set_total(&s.password_checks, scrape.password_checks);
            // the pool can change with the answerer: only the members of now
            for v in [&s.engine_state, &s.engine_in_flight, &s.engine_slots, &s.engine_consecutive_failures] {
                v.reset();
            }
            s.engine_requests.reset();
            s.engine_failures.reset();
            for (i, m) in scrape.engines.iter().enumerate() {
                let index = i.to_string();
                let host = engine_host(&m.name);
                let labels = [index.as_str(), host.as_str()];
                for (state, name) in ENGINE_STATES {
                    s.engine_state
                        .with_label_values(&[index.as_str(), host.as_str(), name])
                        .set(i64::from(m.state == state));
                }
                s.engine_in_flight.with_label_values(&labels).set(m.busy as i64);
                s.engine_slots.with_label_values(&labels).set(m.concurrency as i64);
                s.engine_consecutive_failures.with_label_values(&labels).set(i64::from(m.consecutive_failures));
                s.engine_requests.with_label_values(&labels).inc_by(m.dispatched);
                s.engine_failures.with_label_values(&labels).inc_by(m.failed);
            }
            self.registry.gather()
        };
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_host_keeps_no_path_or_user() {
        assert_eq!(engine_host("http://10.0.0.5:8000/v1"), "10.0.0.5:8000");
        assert_eq!(engine_host("https://user:secret@llm.example/v1/key/abc"), "llm.example");
        assert_eq!(engine_host("not a url"), "");
    }

    #[test]
    fn renders_every_family_with_the_scraped_figures() {
        let m = Metrics::new();
        m.observe("/api/v1/search", 200, 0.02);
        m.count_rate_limited();
        let mut scrape = Scrape {
            answers: AnswerStats { busy: 2, prompt_tokens: 7, ..AnswerStats::default() },
            engines: vec![MemberStatus {
                name: "http://10.0.0.5:8000/v1".into(),
                model: "m".into(),
                external: false,
                state: MemberState::Open,
                busy: 1,
                concurrency: 4,
                consecutive_failures: 3,
                dispatched: 9,
                failed: 3,
            }],
            ..Scrape::default()
        };
        let text = m.render(&scrape);
        for line in [
            "lotse_requests_total{route=\"/api/v1/search\",status=\"200\"} 1",
            "lotse_request_duration_seconds_bucket{route=\"/api/v1/search\",le=\"0.025\"} 1",
            "lotse_rate_limited_total 1",
            "lotse_busy_total 2",
            "lotse_tokens_total{kind=\"prompt\"} 7",
            "lotse_feedback_total{helpful=\"false\"} 0",
            "lotse_engine_state{engine=\"0\",host=\"10.0.0.5:8000\",state=\"open\"} 1",
            "lotse_engine_state{engine=\"0\",host=\"10.0.0.5:8000\",state=\"up\"} 0",
            "lotse_engine_in_flight{engine=\"0\",host=\"10.0.0.5:8000\"} 1",
            "lotse_engine_requests_total{engine=\"0\",host=\"10.0.0.5:8000\"} 9",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        // totals counted elsewhere are set, not added, at each scrape; a pool that is gone
        // leaves no series
        scrape.answers.busy = 3;
        scrape.engines.clear();
        let text = m.render(&scrape);
        assert!(text.contains("lotse_busy_total 3"), "{text}");
        assert!(!text.contains("lotse_engine_"), "{text}");
    }
}
