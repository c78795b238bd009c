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

use std::path::{Path, PathBuf};

use lotse_answer::Contact;
use serde::{Deserialize, Serialize};

mod portal;
mod sections;

pub use portal::{ExternalModel, OidcSettings, PortalSettings};
pub use sections::{
    AnswerSettings, CmsSettings, EngineSettings, FeedbackSettings, InsightsSettings, Limits,
    ModelSettings, PoolEngine, ServerSettings, SimplifySettings, SiteConfig, WidgetSettings,
};

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
                path: shown.clone(),
                message: e.to_string(),
            })?;
        config.engine.check_pool().map_err(|message| ConfigError::Parse { path: shown, message })?;
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
    fn an_engine_pool_is_a_list_with_one_external_flag() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lotse.toml");
        let entry = |url: &str, external: bool| {
            format!("[[engine.pool]]\nurl = \"{url}\"\nmodel = \"qwen2.5-7b-instruct\"\nexternal = {external}\n")
        };
        std::fs::write(
            &p,
            format!("[engine]\nkind = \"openai\"\n{}concurrency = 4\napi_key_env = \"VLLM_KEY\"\n{}", entry("http://10.0.0.5:8000/v1", false), entry("http://10.0.0.6:8000/v1", false)),
        )
        .unwrap();
        let c = Config::load(Some(&p), true, []).unwrap();
        assert_eq!(c.engine.pool.len(), 2);
        assert_eq!(c.engine.pool[0].concurrency, 4);
        assert_eq!(c.engine.pool[0].api_key_env.as_deref(), Some("VLLM_KEY"));
        assert_eq!((c.engine.pool[1].concurrency, c.engine.pool[1].context), (1, None));
        assert!(c.engine.url.is_none());
        assert_eq!(c.engine.failover, super::sections::FailoverSettings::default());

        // the breaker's timing, set and checked
        let pool = format!("{}{}", entry("http://10.0.0.5:8000/v1", false), entry("http://10.0.0.6:8000/v1", false));
        std::fs::write(&p, format!("[engine.failover]\nfailures = 5\nopen_secs = 60\nhealth_secs = 0\n{pool}")).unwrap();
        let c = Config::load(Some(&p), true, []).unwrap();
        let f = &c.engine.failover;
        assert_eq!((f.failures, f.open_secs, f.slot_wait_secs, f.health_secs), (5, 60, 10, 0));
        std::fs::write(&p, format!("[engine.failover]\nfailures = 0\n{pool}")).unwrap();
        let e = Config::load(Some(&p), true, []).unwrap_err().to_string();
        assert!(e.contains("failures must be at least 1"), "{e}");
        std::fs::write(&p, format!("[engine.failover]\nopen_sec = 60\n{pool}")).unwrap();
        assert!(Config::load(Some(&p), true, []).is_err(), "a misspelt key is an error");

        // internal and external mixed: refused, naming both
        std::fs::write(&p, format!("{}{}", entry("http://10.0.0.5:8000/v1", false), entry("https://api.example.com/v1", true))).unwrap();
        let e = Config::load(Some(&p), true, []).unwrap_err().to_string();
        assert!(e.contains("all be internal or all be external"), "{e}");
        assert!(e.contains("https://api.example.com/v1 is external and http://10.0.0.5:8000/v1 is not"), "{e}");
        // the flag is required, concurrency at least 1
        std::fs::write(&p, "[[engine.pool]]\nurl = \"http://10.0.0.5:8000/v1\"\nmodel = \"m\"\n").unwrap();
        let e = Config::load(Some(&p), true, []).unwrap_err().to_string();
        assert!(e.contains("external"), "{e}");
        std::fs::write(&p, format!("{}concurrency = 0\n", entry("http://10.0.0.5:8000/v1", false))).unwrap();
        let e = Config::load(Some(&p), true, []).unwrap_err().to_string();
        assert!(e.contains("concurrency must be at least 1"), "{e}");
        // no pool: the single [engine] as before
        assert!(Config::load(None, false, []).unwrap().engine.pool.is_empty());
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
        assert_eq!(c.engine.pool.len(), 2);
        assert_eq!(c.engine.pool[0].concurrency, 4);
        assert_eq!((c.engine.failover.failures, c.engine.failover.health_secs), (3, 5));
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
