//! Configuration: a TOML file (`lotse.toml`), overridden by `LOTSE__SECTION__KEY` environment
//! variables, overridden by command-line flags (applied by the CLI). Every setting has a
//! working default, so a town can start with none.
//!
//! ```toml
//! [site]
//! url = "https://www.bad-boll.de/"
//! town = "Gemeinde Bad Boll"
//!
//! [contact]
//! name = "das Bürgerbüro im Rathaus"
//! phone = "07164 808-0"
//! email = "info@bad-boll.de"
//! hours_url = "https://www.bad-boll.de/rathaus/"
//!
//! [server]
//! addr = "127.0.0.1:8080"
//! cors_origins = ["https://www.bad-boll.de"]
//! trusted_proxies = ["127.0.0.1"]
//!
//! [limits]
//! chat_per_minute = 10
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use lotse_answer::{Contact, Gate};
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (index, state).
    pub data: Option<PathBuf>,
    pub site: SiteConfig,
    pub contact: Contact,
    pub answer: AnswerSettings,
    pub server: ServerSettings,
    pub limits: Limits,
    pub models: ModelSettings,
    pub engine: EngineSettings,
    pub simplify: SimplifySettings,
    pub cms: CmsSettings,
    pub widget: WidgetSettings,
    pub feedback: FeedbackSettings,
    pub insights: InsightsSettings,
    pub portal: PortalSettings,
}

/// The staff portal (`/portal`): accounts, private collections, the KI-Kompass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalSettings {
    pub enabled: bool,
    /// How long a sign-in lasts, in hours.
    pub session_hours: u32,
    /// Mark the session cookie `Secure` (HTTPS only). Browsers also accept it on
    /// `http://localhost`; switch off only for plain-HTTP tests on other hosts.
    pub secure_cookie: bool,
    /// Largest upload, in bytes.
    pub max_upload_bytes: usize,
    /// Chats are deleted after this many days without a new message.
    pub chat_retention_days: u32,
    /// Keep the text of questions in the audit log (personal data redacted). Off by default.
    pub audit_content: bool,
    /// The town's KI-Kompass (Markdown). Default: the built-in text.
    pub kompass_text: Option<PathBuf>,
    /// The KI-Seepferdchen check (TOML). Default: the built-in check.
    pub kompass_check: Option<PathBuf>,
    /// Which KI-Kompass level unlocks what.
    pub levels: lotse_portal::auth::LevelRules,
    /// Failed sign-ins per account and client address before that pair must pause (1 minute,
    /// doubling with each further failure, at most 15); the account from all addresses, and
    /// the address over all accounts, pause after 4x as many. No hard lock-out.
    pub login_attempts: u32,
    /// Sign-in requests per client address and minute (0: no limit).
    pub login_per_minute: u32,
    /// Passwords checked (argon2, 19 MiB each) at once; more sign-ins at the same moment get
    /// 503 with Retry-After.
    pub login_concurrency: u32,
    /// KI-Kompass check attempts per account in 24 hours (0: no limit).
    pub kompass_attempts: u32,
    /// API tokens expire after this many days.
    pub token_days: u32,
    /// External OpenAI-compatible services staff may choose for questions without private
    /// collections and without personal data.
    pub external: Vec<ExternalModel>,
    /// Who answers for the AI systems, as the AI register names them ("Fachbereich IT,
    /// Frau Beispiel"). Entries can be changed in the register afterwards.
    pub responsible: String,
    /// Where the portal's records live: a `postgres://USER:PASSWORD@HOST/DB` URL for larger
    /// installations. Default: the SQLite file `portal.sqlite` in the data directory.
    pub database: Option<String>,
    /// Sign-in with the town's identity provider (OpenID Connect), beside local accounts.
    pub oidc: Option<OidcSettings>,
}

/// OpenID Connect sign-in (`[portal.oidc]`): Keycloak, ADFS, Entra ID and the like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer URL (its `/.well-known/openid-configuration` is read).
    pub issuer: String,
    pub client_id: String,
    /// Environment variable with the client secret (confidential clients).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// This server's callback as registered at the provider:
    /// `https://HOST/portal/api/oidc/callback`.
    pub redirect_url: String,
    /// The claim with the account's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Members of these groups are portal admins: full paths as the provider sends them
    /// (`/IT/lotse-admins`; a top-level group with or without its `/`, any case).
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Members of these groups are editors (manage collections); full paths as above.
    #[serde(default)]
    pub editor_groups: Vec<String>,
    /// Provider group (full path) -> portal group. When set, only these groups count;
    /// when empty, each group becomes the portal group of its full path (`/FB1/intern` ->
    /// `fb1_intern`).
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, String>,
    /// The sign-in button's text.
    #[serde(default = "default_oidc_label")]
    pub label: String,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_oidc_label() -> String {
    "Mit dem Dienstkonto anmelden".into()
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            enabled: true,
            session_hours: 8,
            secure_cookie: true,
            max_upload_bytes: 20 * 1024 * 1024,
            chat_retention_days: 30,
            audit_content: false,
            kompass_text: None,
            kompass_check: None,
            levels: lotse_portal::auth::LevelRules::default(),
            login_attempts: 5,
            login_per_minute: 10,
            login_concurrency: 2,
            kompass_attempts: 5,
            token_days: 90,
            external: Vec::new(),
            responsible: "Bitte eintragen ([portal] responsible)".into(),
            database: None,
            oidc: None,
        }
    }
}

/// An external model for the portal (`[[portal.external]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalModel {
    /// Short name used in the API (`model` of a portal chat request).
    pub name: String,
    /// What staff see ("GPT-4o (Rechenzentrum)").
    pub label: String,
    /// Base URL of the OpenAI-compatible API.
    pub url: String,
    pub model: String,
    /// Environment variable with the API key.
    pub api_key_env: Option<String>,
    /// Provider, for the AI register.
    #[serde(default)]
    pub provider: Option<String>,
    /// The service runs outside the town's own servers (default). Set `false` only for an
    /// engine on the administration's own hardware: only then may private collections and
    /// personal data go to it.
    #[serde(default = "default_true")]
    pub external: bool,
}

fn default_true() -> bool {
    true
}

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
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
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
}

/// A configuration problem, with the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// Prefix of environment variables that override file settings: `LOTSE__LIMITS__QUEUE=4`.
pub const ENV_PREFIX: &str = "LOTSE__";

impl Config {
    /// Load `path` (a missing file is an error only when `required`), then apply environment
    /// overrides from `vars` (pass `std::env::vars()`).
    pub fn load(
        path: Option<&Path>,
        required: bool,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        let shown = path.map(Path::to_path_buf).unwrap_or_else(|| "lotse.toml".into());
        if let Some(p) = path {
            match std::fs::read_to_string(p) {
                Ok(text) => {
                    table = text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
                        path: p.to_path_buf(),
                        message: e.to_string(),
                    })?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: p.to_path_buf(),
                        source,
                    });
                }
            }
        }
        for (var, value) in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            if keys.iter().any(String::is_empty) {
                return Err(ConfigError::Env {
                    var,
                    message: "expected LOTSE__SECTION__KEY".into(),
                });
            }
            // a TOML value (number, bool, array) or else a plain string
            let parsed: toml::Value = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value.clone()));
            let mut t = &mut table;
            for k in &keys[..keys.len() - 1] {
                let entry = t
                    .entry(k.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                let Some(inner) = entry.as_table_mut() else {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("{k} is not a section"),
                    });
                };
                t = inner;
            }
            t.insert(keys[keys.len() - 1].clone(), parsed);
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: shown,
                message: e.to_string(),
            })?;
        Ok(config)
    }

    /// The settings the answer crate needs.
    pub fn answer_config(&self) -> lotse_answer::AnswerConfig {
        lotse_answer::AnswerConfig {
            town: self.site.town.clone(),
            site: self.site.url.as_deref().map(origin_of),
            contact: self.contact.clone(),
            passages: self.answer.passages,
            words_per_passage: self.answer.words_per_passage,
            max_answer_tokens: self.answer.max_answer_tokens,
            gate: self.answer.gate.clone(),
        }
    }
}

/// `https://www.example.de/path` -> `https://www.example.de` (the index's site key).
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lotse.toml");
        std::fs::write(
            &p,
            "[contact]\nphone = \"07164 808-0\"\n[limits]\nqueue = 3\n[server]\naddr = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&p),
            true,
            [
                ("LOTSE__LIMITS__QUEUE".to_string(), "5".to_string()),
                ("LOTSE__CONTACT__EMAIL".to_string(), "info@example.de".to_string()),
                ("LOTSE__SERVER__CORS_ORIGINS".to_string(), "[\"https://a.de\"]".to_string()),
                ("OTHER".to_string(), "x".to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.limits.queue, 5);
        assert_eq!(c.limits.chat_per_minute, 10, "defaults stay");
        assert_eq!(c.contact.phone.as_deref(), Some("07164 808-0"));
        assert_eq!(c.contact.email.as_deref(), Some("info@example.de"));
        assert_eq!(c.server.addr.port(), 9000);
        assert_eq!(c.server.cors_origins, vec!["https://a.de".to_string()]);
    }

    #[test]
    fn mistakes_are_reported_with_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lotse.toml");
        std::fs::write(&p, "[limits]\nqueu = 3\n").unwrap();
        let e = Config::load(Some(&p), true, []).unwrap_err().to_string();
        assert!(e.contains("queu"), "{e}");
        let e = Config::load(Some(&dir.path().join("missing.toml")), true, [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
        assert!(Config::load(Some(&dir.path().join("missing.toml")), false, []).is_ok());
        let e = Config::load(None, false, [("LOTSE__LIMITS__QUEUE".into(), "viele".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue"), "{e}");
    }

    #[test]
    fn a_rules_only_entry_must_be_a_path() {
        let mut s = SimplifySettings::default();
        assert_eq!(s.rules_only().unwrap(), Vec::<String>::new());
        s.rules_only = vec!["/ortsrecht/".into(), "/satzungen".into()];
        assert_eq!(s.rules_only().unwrap().len(), 2);
        for bad in ["ortsrecht", "https://town.example/ortsrecht/", "/orts recht/"] {
            s.rules_only = vec![bad.into()];
            let e = s.rules_only().unwrap_err();
            assert!(e.contains("rules_only") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn the_example_file_documents_valid_keys() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../lotse.example.toml")).unwrap();
        // switch every commented-out setting on
        let on: String = text
            .lines()
            .map(|l| {
                let t = l.trim_start_matches("# ");
                let setting = t.contains(" = ") || t.starts_with('[');
                if setting && l.starts_with("# ") { t.split("  #").next().unwrap_or(t).to_string() } else { l.to_string() }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lotse.toml");
        std::fs::write(&p, on).unwrap();
        let c = Config::load(Some(&p), true, []).unwrap();
        assert_eq!(c.contact.phone.as_deref(), Some("07164 808-0"));
        assert_eq!(c.engine.kind.as_deref(), Some("openai"));
        assert_eq!(c.server.trusted_proxies.len(), 1);
        assert_eq!(c.answer.gate.dense, 0.84);
        assert_eq!(c.simplify.glossary.len(), 1);
        assert!(c.simplify.glossary().is_ok());
        assert_eq!(c.simplify.rules_only().unwrap(), vec!["/ortsrecht/".to_string()]);
        assert!(c.cms.token.is_some());
        assert_eq!(c.widget.dir.as_deref(), Some(std::path::Path::new("widget/dist")));
        assert!(c.feedback.enabled && !c.feedback.store_question);
        assert_eq!((c.insights.enabled, c.insights.retention_days, c.insights.min_questions), (true, 90, 3));
        assert!(!format!("{c:?}").contains(c.cms.token.as_deref().unwrap()), "token not in Debug");
        assert_eq!(c.portal.external.len(), 1);
        assert!(c.portal.external[0].external, "external unless set to false");
        assert_eq!(c.portal.responsible, "Fachbereich IT");
        assert!(c.portal.database.as_deref().is_some_and(|d| d.starts_with("postgres://")));
        assert_eq!(c.portal.oidc.as_ref().map(|o| o.editor_groups.len()), Some(1));
    }
}
