//! The other sections: `[site]`, `[answer]`, `[server]`, `[limits]`, models and engines,
//! `[simplify]`, `[cms]`, `[widget]`, `[feedback]`, `[insights]`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use lotse_answer::Gate;
use serde::{Deserialize, Serialize};

/// The citizens' widget (`/widget/lotse.js` and its module and WebAssembly).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetSettings {
    /// The built widget (`scripts/build-widget.sh` writes `widget/dist`). Default:
    /// `widget/dist` when it exists.
    pub dir: Option<PathBuf>,
}

/// Thumbs up/down under answers (`POST /api/v1/feedback`), stored in the one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSettings {
    pub enabled: bool,
    /// Also keep the question's text with a rating. Off by default: questions can hold
    /// personal data; switch it on only when the town's privacy notice says so.
    pub store_question: bool,
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        FeedbackSettings { enabled: true, store_question: false }
    }
}

/// What citizens asked and the website could not answer (issue 35), for the web team in the
/// portal ("Fragen ohne Antwort"). Kept in the portal's database: the day, the language, the
/// outcome, the cited pages and the question with personal data replaced by placeholders;
/// never an address, a session or a user. Needs the portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsSettings {
    pub enabled: bool,
    /// Questions older than this many days are deleted (at least 1).
    pub retention_days: u32,
    /// A topic is shown only with at least this many questions (at least 2), so that no
    /// single person's question is singled out.
    pub min_questions: u32,
    /// Cosine of two questions' embeddings from which they are one topic.
    pub similarity: f32,
}

impl Default for InsightsSettings {
    fn default() -> Self {
        InsightsSettings { enabled: true, retention_days: 90, min_questions: 3, similarity: 0.9 }
    }
}

/// The town's CMS: `POST /api/v1/simplify` (its own text) and `POST /api/v1/pages/refresh`
/// (its publish webhook) need this token as `Authorization: Bearer <token>`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmsSettings {
    /// Unset: the CMS routes answer 403. Use a long random string (`openssl rand -hex 32`),
    /// best from the environment (`LOTSE__CMS__TOKEN`).
    pub token: Option<String>,
}

impl std::fmt::Debug for CmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the token never reaches a log
        f.debug_struct("CmsSettings")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Einfache Sprache: background rewrites and the town's glossary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimplifySettings {
    /// Serve `GET /api/v1/simplify` and run the rewrite worker.
    pub enabled: bool,
    /// Rewrite every indexed page without a current rewrite in the background (when no
    /// citizen is waiting for an answer), so that a click is served from the cache.
    pub pregenerate: bool,
    /// Pages waiting for an on-demand rewrite; more get 503 with Retry-After.
    pub queue: usize,
    /// Terms explained at their first use on a page, added to the built-in ones.
    pub glossary: Vec<lotse_simplify::GlossaryEntry>,
    /// Use only the configured glossary, not the built-in terms.
    pub replace_glossary: bool,
    /// URL paths ("/ortsrecht/") whose pages get the deterministic pass and the glossary
    /// only, no model rewrite: for legal texts the model may paraphrase wrongly.
    pub rules_only: Vec<String>,
    /// Legal texts (statutes, ordinances; recognised by title or numbered sections):
    /// "review" (default) shows citizens the model's rewrite only after staff approved it in
    /// the portal, the deterministic pass until then; "model" shows it at once; "rules" never
    /// lets the model rewrite them.
    pub legal_texts: lotse_simplify::LegalTexts,
}

impl Default for SimplifySettings {
    fn default() -> Self {
        SimplifySettings {
            enabled: true,
            pregenerate: true,
            queue: 32,
            glossary: Vec::new(),
            replace_glossary: false,
            rules_only: Vec::new(),
            legal_texts: lotse_simplify::LegalTexts::default(),
        }
    }
}

impl SimplifySettings {
    /// The rules-only paths, checked: each one a URL path that begins with "/".
    pub fn rules_only(&self) -> Result<Vec<String>, String> {
        for p in &self.rules_only {
            if !p.starts_with('/') || p.chars().any(char::is_whitespace) {
                return Err(format!(
                    "[simplify] rules_only: {p:?} is not a URL path (it must begin with \"/\", e.g. \"/ortsrecht/\")"
                ));
            }
        }
        Ok(self.rules_only.clone())
    }

    /// The glossary: built-in terms (unless replaced) plus the town's, the town's winning.
    pub fn glossary(&self) -> Result<lotse_simplify::Glossary, String> {
        let mut entries: Vec<lotse_simplify::GlossaryEntry> = if self.replace_glossary {
            Vec::new()
        } else {
            lotse_simplify::rules::DEFAULT_GLOSSARY
                .iter()
                .filter(|(t, _)| !self.glossary.iter().any(|g| g.term == *t))
                .map(|(t, e)| lotse_simplify::GlossaryEntry {
                    term: (*t).into(),
                    explanation: (*e).into(),
                })
                .collect()
        };
        entries.extend(self.glossary.iter().cloned());
        lotse_simplify::Glossary::new(entries)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The town's website (crawled by `lotse up`; answers come only from it when set).
    pub url: Option<String>,
    /// The town's name as citizens know it; learned from the site when unset.
    pub town: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerSettings {
    pub passages: usize,
    pub words_per_passage: usize,
    pub max_answer_tokens: usize,
    pub gate: Gate,
}

impl Default for AnswerSettings {
    fn default() -> Self {
        let d = lotse_answer::AnswerConfig::default();
        AnswerSettings {
            passages: d.passages,
            words_per_passage: d.words_per_passage,
            max_answer_tokens: d.max_answer_tokens,
            gate: d.gate,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    /// Origins (scheme://host[:port]) of the town's CMS pages allowed to call the API.
    pub cors_origins: Vec<String>,
    /// Reverse proxies whose X-Forwarded-For is believed; other peers are the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// A second listener for the staff and operations routes (`/portal`, `/v1`,
    /// `/metrics`, `/openapi.json`); when set, `addr` serves only the citizens' routes
    /// (`/api/v1`, `/widget`, `/health`, `/ready`). Unset: `addr` serves everything.
    pub internal_addr: Option<SocketAddr>,
    /// `/v1` (the OpenAI-compatible API) only with a portal API token of scope `chat`
    /// (`Authorization: Bearer lotse_…`); by default it also answers without one.
    pub v1_requires_token: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            internal_addr: None,
            v1_requires_token: false,
        }
    }
}

/// Limits that keep one client or a crowd from exhausting the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Chat questions per client IP and minute (0: unlimited) ...
    pub chat_per_minute: u32,
    /// ... with this many at once.
    pub chat_burst: u32,
    /// Searches per client IP and second (0: unlimited) ...
    pub search_per_second: u32,
    pub search_burst: u32,
    /// Answers waiting for the model; more get 503 with Retry-After.
    pub queue: usize,
    /// Largest request body in bytes.
    pub body_bytes: usize,
    /// Time to produce a response's headers, in seconds.
    pub request_timeout_secs: u64,
    /// Cached answers (entries) and how long they live.
    pub answer_cache_entries: u64,
    pub answer_cache_ttl_secs: u64,
    /// `/v1/chat/completions` with a portal API token: questions per token and minute (one
    /// Open WebUI or n8n serves many people from one address; 0: unlimited) ...
    pub v1_token_per_minute: u32,
    /// ... with this many at once.
    pub v1_token_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            chat_per_minute: 10,
            chat_burst: 5,
            search_per_second: 20,
            search_burst: 40,
            queue: 4,
            body_bytes: 64 * 1024,
            request_timeout_secs: 120,
            answer_cache_entries: 10_000,
            answer_cache_ttl_secs: 3600,
            v1_token_per_minute: 60,
            v1_token_burst: 20,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// Directory with model manifests.
    pub manifests: Option<PathBuf>,
    /// Model cache directory.
    pub cache: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// `local` or `openai`.
    pub kind: Option<String>,
    pub url: Option<String>,
    pub model: Option<String>,
    pub api_key_env: Option<String>,
    pub external: Option<bool>,
    pub context: Option<usize>,
    /// Several OpenAI-compatible engines as one (`[[engine.pool]]`): health checks, slots per
    /// engine, failover and a circuit breaker (`lotse_inference::pool`). Instead of `url`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pool: Vec<PoolEngine>,
    /// Timing of the pool's failover (`[engine.failover]`): circuit breaker, slot wait and
    /// health checks.
    pub failover: FailoverSettings,
}

/// `[engine.failover]`: how the pool treats failing engines (`lotse_inference::pool::PoolOptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverSettings {
    /// Consecutive failures that open an engine's circuit (default 3).
    pub failures: u32,
    /// Seconds an open circuit stays open before one trial request (default 30).
    pub open_secs: u64,
    /// Seconds a request waits for a free slot before it gets "busy" (503) (default 10).
    pub slot_wait_secs: u64,
    /// Seconds between health checks (`GET {url}/models`) of each engine; 0: none (default 5).
    pub health_secs: u64,
    /// Seconds a health check may take (default 2).
    pub health_timeout_secs: u64,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        FailoverSettings {
            failures: 3,
            open_secs: 30,
            slot_wait_secs: 10,
            health_secs: 5,
            health_timeout_secs: 2,
        }
    }
}

/// One engine of `[[engine.pool]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEngine {
    /// Base URL of the OpenAI-compatible API, e.g. `http://10.0.0.5:8000/v1`.
    pub url: String,
    /// Model name on that server.
    pub model: String,
    /// Name of the environment variable that holds the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Required: whether the engine is outside the town's servers. All engines of a pool must
    /// agree (failover must never carry private text to an external engine).
    pub external: bool,
    /// Requests this engine runs at once.
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Context length in tokens (default 8192).
    #[serde(default)]
    pub context: Option<usize>,
}

fn one() -> usize {
    1
}

impl EngineSettings {
    /// The pool's entries, checked: URL and model set, at least one slot each, one
    /// `external` value for all of them.
    pub fn check_pool(&self) -> Result<(), String> {
        for (i, e) in self.pool.iter().enumerate() {
            let n = i + 1;
            if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
                return Err(format!("[[engine.pool]] entry {n}: url {:?} must start with http:// or https://", e.url));
            }
            if e.model.trim().is_empty() {
                return Err(format!("[[engine.pool]] entry {n} ({}): the model is empty", e.url));
            }
            if e.concurrency == 0 {
                return Err(format!("[[engine.pool]] entry {n} ({}): concurrency must be at least 1", e.url));
            }
        }
        let f = &self.failover;
        if f.failures == 0 {
            return Err("[engine.failover] failures must be at least 1".into());
        }
        if f.health_secs > 0 && f.health_timeout_secs == 0 {
            return Err("[engine.failover] health_timeout_secs must be at least 1 when health checks run".into());
        }
        if let Some(first) = self.pool.first()
            && let Some(other) = self.pool.iter().find(|e| e.external != first.external)
        {
            let (ext, int) = if first.external { (first, other) } else { (other, first) };
            return Err(format!(
                "[[engine.pool]]: the engines of a pool must all be internal or all be external, but {} is external and {} is not (failover could send private text to the external one); put a hosted service in [[portal.external]] instead",
                ext.url, int.url
            ));
        }
        Ok(())
    }
}
