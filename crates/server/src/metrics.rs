//! Prometheus metrics, kept by hand (a few counters and histograms; no metrics crate).
//! Labels carry route templates and status codes only, never request content.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lotse_service::answers::AnswerStats;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The generation pool's figures at the time of a scrape.
#[derive(Debug, Default)]
pub struct Pool {
    pub queue_depth: usize,
    pub running: usize,
    pub preempted: usize,
}

/// The server's metrics (the answers' own figures are counted by
/// `lotse_service::answers::Answers` and passed to [`Metrics::render`]).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub rate_limited: AtomicU64,
    pub feedback_helpful: AtomicU64,
    pub feedback_unhelpful: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Count a finished request of `route` (a template like `/api/v1/chat`).
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        *lock(&self.requests).entry((route.to_string(), status)).or_default() += 1;
        let mut lat = lock(&self.latency);
        let h = lat.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Count a rating of an answer.
    pub fn count_feedback(&self, helpful: bool) {
        let c = if helpful { &self.feedback_helpful } else { &self.feedback_unhelpful };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self, pool: &Pool, answers: &AnswerStats) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# HELP lotse_requests_total HTTP requests by route and status.");
        let _ = writeln!(s, "# TYPE lotse_requests_total counter");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(s, "lotse_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(s, "# HELP lotse_request_duration_seconds Time to the response headers (streams: to the first byte).");
        let _ = writeln!(s, "# TYPE lotse_request_duration_seconds histogram");
        for (route, h) in lock(&self.latency).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "lotse_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(s, "lotse_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "lotse_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(s, "lotse_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        let gauge = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        gauge(&mut s, "lotse_generation_queue_depth", "Answers waiting for the model.", pool.queue_depth as u64);
        gauge(&mut s, "lotse_generation_running", "Answers being generated.", pool.running as u64);
        let _ = writeln!(
            s,
            "# HELP lotse_background_preempted_total Background rewrites stopped to let an answer run first.\n# TYPE lotse_background_preempted_total counter\nlotse_background_preempted_total {}",
            pool.preempted
        );
        gauge(&mut s, "lotse_answer_cache_entries", "Answers in the cache.", answers.cache_entries);
        let _ = writeln!(s, "# HELP lotse_tokens_total Tokens processed by the generator.\n# TYPE lotse_tokens_total counter");
        let _ = writeln!(s, "lotse_tokens_total{{kind=\"prompt\"}} {}", answers.prompt_tokens);
        let _ = writeln!(s, "lotse_tokens_total{{kind=\"completion\"}} {}", answers.completion_tokens);
        counter(&mut s, "lotse_answer_cache_hits_total", "Answers served from the cache.", answers.cache_hits);
        counter(&mut s, "lotse_answer_cache_misses_total", "Answers not in the cache.", answers.cache_misses);
        counter(&mut s, "lotse_refusals_total", "Answers that said the website does not answer the question.", answers.refusals);
        counter(&mut s, "lotse_rate_limited_total", "Requests refused with 429.", self.rate_limited.load(Ordering::Relaxed));
        counter(&mut s, "lotse_busy_total", "Requests refused with 503 because the queue was full.", answers.busy);
        let _ = writeln!(s, "# HELP lotse_feedback_total Ratings of answers by citizens.\n# TYPE lotse_feedback_total counter");
        let _ = writeln!(s, "lotse_feedback_total{{helpful=\"true\"}} {}", self.feedback_helpful.load(Ordering::Relaxed));
        let _ = writeln!(s, "lotse_feedback_total{{helpful=\"false\"}} {}", self.feedback_unhelpful.load(Ordering::Relaxed));
        s
    }
}
