//! The staff portal's API (`/portal/api/*`): sign-in, KI-Kompass, collections and uploads,
//! chat history, prompts, admin and exports. The server converts the portal crate's domain
//! types into these (`crates/server/src/wire.rs`); the portal UI (`widget`, feature `portal`)
//! reads them.

use serde::{Deserialize, Serialize};

/// What a staff member is in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Uses the portal: chat over the collections of their groups, prompts.
    Staff,
    /// Also manages the collections of their own groups (uploads, deletions).
    Editor,
    /// Manages everything: users, groups, all collections, levels, tokens, the register.
    Admin,
}

/// KI-Kompass training levels. `None` until the first check is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    None,
    Seepferdchen,
    Bronze,
    Silber,
    Gold,
}

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The CMS: its own text in Einfache Sprache.
    Simplify,
    /// The CMS: the publish webhook (re-crawl one page).
    Refresh,
    /// Automation: portal chat and search over the token owner's collections.
    Chat,
    /// Automation: upload and delete documents in collections the owner manages.
    Documents,
}

/// Who owns a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Owner {
    /// A group (department): all its members see the collection.
    Group(String),
    /// One person (user id).
    User(i64),
}

/// The signed-in user (or the user an API token acts for).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub level: Level,
    pub groups: Vec<String>,
}

/// A collection as the portal shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Collection {
    pub id: i64,
    pub title: String,
    pub owner: Owner,
    pub created_at: i64,
    pub documents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: i64,
    pub collection_id: i64,
    pub file_name: String,
    pub kind: String,
    pub title: String,
    pub sha256: String,
    pub bytes: i64,
    pub n_chunks: i64,
    pub uploaded_at: i64,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub user: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Unix time after which the token no longer works.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatSummary {
    pub id: i64,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub sources: serde_json::Value,
    pub model: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prompt {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// The group it is shared with; None: the owner's own.
    pub group: Option<String>,
    pub owner: Option<String>,
    /// The `{name}` placeholders in the body, in order, each once.
    pub variables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub user: String,
    pub groups: String,
    pub action: String,
    pub model: Option<String>,
    pub external: bool,
    pub collections: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub outcome: String,
    pub content: Option<String>,
    /// Whom an admin change was about (an account's name).
    pub target: Option<String>,
}

/// Usage per group and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub group: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// One entry of the AI system register (EU AI Act inventory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterEntry {
    /// The use: "Bürger-Chat", "Einfache Sprache", "Mitarbeiterportal".
    pub name: String,
    pub model: String,
    pub purpose: String,
    pub provider: String,
    /// "minimal", "begrenzt" (transparency duties), "hoch".
    pub risk_class: String,
    pub responsible: String,
    #[serde(default)]
    pub updated_at: i64,
}

/// The check as the client sees it: no answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicCheck {
    pub pass_ratio: f64,
    pub level: Level,
    pub questions: Vec<PublicQuestion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicQuestion {
    pub text: String,
    pub options: Vec<String>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Graded {
    pub passed: bool,
    pub right: usize,
    pub total: usize,
    /// 0-based numbers of the questions answered wrongly; only after a pass (a failed
    /// attempt does not say which answers were wrong).
    pub wrong: Vec<usize>,
    pub level: Level,
}

// ---- request and response bodies of the portal's routes --------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(example = "m.muster"))]
    pub name: String,
    pub password: String,
}

/// The signed-in user and what is unlocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: UserInfo,
    /// Send this in `X-CSRF-Token` with every request that changes something.
    pub csrf: Option<String>,
    /// The KI-Kompass check is passed: the chat is open.
    pub chat: bool,
    /// External models may be chosen.
    pub external_models: bool,
    /// Prompts may be shared with the group.
    pub share_prompts: bool,
    /// Rewrites of legal texts may be reviewed (editors and admins, when the server reviews
    /// them: `[simplify] legal_texts = "review"`).
    #[serde(default)]
    pub review_rewrites: bool,
    /// "Fragen ohne Antwort" may be read (editors and admins, when `[insights]` is on).
    #[serde(default)]
    pub insights: bool,
}

/// How staff can sign in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginOptions {
    /// Name and password (local accounts).
    pub password: bool,
    /// Sign-in with the town's identity provider.
    pub oidc: Option<OidcOption>,
}

/// The identity provider's sign-in button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcOption {
    pub label: String,
    /// Open this address in the browser (a full page navigation).
    pub url: String,
}

/// The town's KI-Kompass and its check (without the answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kompass {
    /// The usage policy, Markdown.
    pub text: String,
    pub check: PublicCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KompassAnswers {
    /// For each question, the index of the chosen option.
    pub answers: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    #[cfg_attr(feature = "openapi", schema(example = "Dienstanweisungen Bauamt"))]
    pub title: String,
    /// A group (`{"kind": "group", "id": "bauamt"}`) or one person (`{"kind": "user", "id": 7}`).
    pub owner: Owner,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalHit {
    pub url: String,
    pub title: String,
    pub heading: String,
    pub deep_link: String,
    pub snippet: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortalChatRequest {
    #[cfg_attr(feature = "openapi", schema(example = "Welche Fristen gelten für die Bauvoranfrage?"))]
    pub question: String,
    /// Collection ids to answer from.
    #[serde(default)]
    pub collections: Vec<i64>,
    /// Also the public website.
    #[serde(default)]
    pub website: bool,
    /// `lokal` (default) or the name of a configured external model.
    pub model: Option<String>,
    /// Continue this chat (its earlier turns are the history).
    pub chat_id: Option<i64>,
    /// Answer language; detected from the question when absent.
    pub lang: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalChatResponse {
    pub chat_id: i64,
    pub answer: crate::chat::Answer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatDetail {
    pub id: i64,
    pub messages: Vec<ChatMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPrompt {
    pub title: String,
    /// The text, with `{variables}`.
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Share with this group (needs the level for sharing); absent: your own.
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PortalModel {
    /// The `model` of a chat request.
    pub name: String,
    pub label: String,
    /// Runs outside the town's hardware: no private collections, no personal data.
    pub external: bool,
    /// The signed-in user may choose it.
    pub allowed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub display_name: Option<String>,
    /// At least 10 characters.
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    pub level: Option<Level>,
    pub role: Option<Role>,
    pub groups: Option<Vec<String>>,
    /// Lock the account (its sessions end).
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for ("CMS", "n8n").
    pub name: String,
    /// The user it acts for (default: yourself).
    pub user_id: Option<i64>,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// Shown once: keep it in the CMS's configuration.
    pub token: String,
}
