//! `[portal]`: the staff portal, its sign-in (OIDC) and external models.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
