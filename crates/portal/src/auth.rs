//! Roles, KI-Kompass levels, API-token scopes, and the one place that decides who may do
//! what ([`authorize`]). Also password hashing (argon2id) and random tokens.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a staff member is in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Uses the portal: chat over the collections of their groups, prompts.
    Staff,
    /// Also manages the collections of their own groups (uploads, deletions).
    Editor,
    /// Manages everything: users, groups, all collections, levels, tokens, the register.
    Admin,
}

impl Role {
    pub fn key(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "staff" => Some(Role::Staff),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// KI-Kompass training levels. `None` until the first check is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    None,
    Seepferdchen,
    Bronze,
    Silber,
    Gold,
}

impl Level {
    pub fn key(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Seepferdchen => "seepferdchen",
            Level::Bronze => "bronze",
            Level::Silber => "silber",
            Level::Gold => "gold",
        }
    }
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Some(Level::None),
            "seepferdchen" => Some(Level::Seepferdchen),
            "bronze" => Some(Level::Bronze),
            "silber" | "silver" => Some(Level::Silber),
            "gold" => Some(Level::Gold),
            _ => None,
        }
    }
    pub fn label_de(self) -> &'static str {
        match self {
            Level::None => "noch keine",
            Level::Seepferdchen => "KI-Seepferdchen",
            Level::Bronze => "Bronze",
            Level::Silber => "Silber",
            Level::Gold => "Gold",
        }
    }
}

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Simplify, Scope::Refresh, Scope::Chat, Scope::Documents];
    pub fn key(self) -> &'static str {
        match self {
            Scope::Simplify => "simplify",
            Scope::Refresh => "refresh",
            Scope::Chat => "chat",
            Scope::Documents => "documents",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|k| k.key() == s.trim())
    }
}

/// Who owns a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Owner {
    /// A group (department): all its members see the collection.
    Group(String),
    /// One person (user id).
    User(i64),
}

/// The signed-in user (or the user an API token acts for).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub level: Level,
    pub groups: Vec<String>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Principal {
    /// Nobody signed in (a citizen, or a missing cookie).
    Anonymous,
    /// A session cookie.
    User(UserInfo),
    /// An API token: acts for its owner, limited to its scopes.
    Token { owner: UserInfo, scopes: Vec<Scope> },
}

impl Principal {
    pub fn user(&self) -> Option<&UserInfo> {
        match self {
            Principal::Anonymous => None,
            Principal::User(u) => Some(u),
            Principal::Token { owner, .. } => Some(owner),
        }
    }
}

/// Which level unlocks what (`[portal.levels]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevelRules {
    /// Using the portal chat at all.
    pub chat: Level,
    /// Sending prompts to external (non-local) models.
    pub external_models: Level,
    /// Sharing prompts with the group.
    pub share_prompts: Level,
}

impl Default for LevelRules {
    fn default() -> LevelRules {
        LevelRules {
            chat: Level::Seepferdchen,
            external_models: Level::Bronze,
            share_prompts: Level::Silber,
        }
    }
}

/// Something a principal wants to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<'a> {
    /// See the portal at all (own profile, KI-Kompass).
    Portal,
    /// Take the KI-Kompass check.
    TakeCheck,
    /// Chat and search over collections.
    Chat,
    /// Use an external model (also needs no private collection and no personal data).
    ExternalModel,
    /// See a collection's documents and answers from it.
    ReadCollection(&'a Owner),
    /// Upload to or delete from a collection, or delete it.
    ManageCollection(&'a Owner),
    /// Create a collection for this owner.
    CreateCollection(&'a Owner),
    /// Use a prompt of this group (None: own prompt) / share one with a group.
    UsePrompt(Option<&'a str>),
    SharePrompt(&'a str),
    /// Users, groups, levels, tokens.
    ManageUsers,
    /// The audit log and usage statistics.
    ViewAudit,
    /// Read the AI system register / change it.
    ViewRegister,
    ManageRegister,
    /// Read the model's rewrites of legal texts (Einfache Sprache) and approve or reject them.
    ReviewRewrites,
    /// What citizens asked and the website could not answer: read, export, mark, delete.
    ViewInsights,
    /// CMS routes.
    CmsSimplify,
    CmsRefresh,
}

impl Action<'_> {
    /// The token scope the action needs when a token asks (None: tokens may not).
    fn scope(&self) -> Option<Scope> {
        match self {
            Action::Chat | Action::ReadCollection(_) | Action::UsePrompt(_) | Action::Portal => Some(Scope::Chat),
            Action::ManageCollection(_) => Some(Scope::Documents),
            Action::CmsSimplify => Some(Scope::Simplify),
            Action::CmsRefresh => Some(Scope::Refresh),
            _ => None,
        }
    }
}

/// Why an action was refused: 401 (nobody signed in) or 403 (not allowed), with a German
/// message for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("not signed in")]
    Unauthenticated,
    #[error("forbidden: {code}")]
    Forbidden { code: &'static str, message: String },
}

impl Denied {
    fn forbidden(code: &'static str, message: impl Into<String>) -> Denied {
        Denied::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn message_de(&self) -> String {
        match self {
            Denied::Unauthenticated => "Bitte melden Sie sich an.".into(),
            Denied::Forbidden { message, .. } => message.clone(),
        }
    }
}

fn member_or_owner(u: &UserInfo, owner: &Owner) -> bool {
    match owner {
        Owner::Group(g) => u.groups.iter().any(|x| x == g),
        Owner::User(id) => *id == u.id,
    }
}

/// The one place that decides. `Ok(())` means allowed.
pub fn authorize(p: &Principal, action: &Action<'_>, rules: &LevelRules) -> Result<(), Denied> {
    let (u, scopes) = match p {
        Principal::Anonymous => return Err(Denied::Unauthenticated),
        Principal::User(u) => (u, None),
        Principal::Token { owner, scopes } => (owner, Some(scopes)),
    };
    if let Some(scopes) = scopes {
        match action.scope() {
            Some(s) if scopes.contains(&s) => {}
            _ => {
                return Err(Denied::forbidden(
                    "scope",
                    "Dieser Zugangsschlüssel ist dafür nicht freigegeben.",
                ));
            }
        }
    }
    let admin = u.role == Role::Admin;
    let needs_level = |need: Level, what: &str| -> Result<(), Denied> {
        if u.level >= need {
            Ok(())
        } else {
            Err(Denied::forbidden(
                "level",
                format!(
                    "Für {what} brauchen Sie die KI-Kompass-Stufe „{}“. Ihre Stufe: {}.",
                    need.label_de(),
                    u.level.label_de()
                ),
            ))
        }
    };
    let admin_only = || -> Result<(), Denied> {
        if admin {
            Ok(())
        } else {
            Err(Denied::forbidden("admin_only", "Das dürfen nur Administratorinnen und Administratoren."))
        }
    };
    match action {
        Action::Portal | Action::TakeCheck | Action::ViewRegister => Ok(()),
        Action::Chat => needs_level(rules.chat, "den KI-Chat"),
        Action::ExternalModel => {
            needs_level(rules.chat, "den KI-Chat")?;
            needs_level(rules.external_models, "externe KI-Dienste")
        }
        Action::ReadCollection(owner) => {
            if member_or_owner(u, owner) {
                Ok(())
            } else {
                Err(Denied::forbidden("collection", "Auf diese Sammlung haben Sie keinen Zugriff."))
            }
        }
        Action::ManageCollection(owner) | Action::CreateCollection(owner) => {
            if admin || (u.role == Role::Editor && member_or_owner(u, owner)) {
                Ok(())
            } else {
                Err(Denied::forbidden(
                    "collection_manage",
                    "Sammlungen verwalten nur Redakteurinnen und Redakteure der Gruppe oder die Administration.",
                ))
            }
        }
        Action::UsePrompt(group) => match group {
            None => Ok(()),
            Some(g) if u.groups.iter().any(|x| x == g) || admin => Ok(()),
            Some(_) => Err(Denied::forbidden("prompt", "Diese Vorlage gehört einer anderen Gruppe.")),
        },
        Action::SharePrompt(g) => {
            needs_level(rules.share_prompts, "das Teilen von Vorlagen")?;
            if u.groups.iter().any(|x| x == g) || admin {
                Ok(())
            } else {
                Err(Denied::forbidden("prompt", "Sie können nur mit Ihren eigenen Gruppen teilen."))
            }
        }
        Action::ManageUsers | Action::ViewAudit | Action::ManageRegister => admin_only(),
        Action::ReviewRewrites => {
            if admin || u.role == Role::Editor {
                Ok(())
            } else {
                Err(Denied::forbidden(
                    "review",
                    "Vereinfachte Rechtstexte prüfen Redakteurinnen und Redakteure oder die Administration.",
                ))
            }
        }
        Action::ViewInsights => {
            if admin || u.role == Role::Editor {
                Ok(())
            } else {
                Err(Denied::forbidden(
                    "insights",
                    "Die Fragen der Bürgerinnen und Bürger sehen Redakteurinnen und Redakteure oder die Administration.",
                ))
            }
        }
        // CMS routes take tokens with the scope (checked above); people use the CMS itself
        Action::CmsSimplify | Action::CmsRefresh => {
            if scopes.is_some() || admin {
                Ok(())
            } else {
                Err(Denied::forbidden("scope", "Diese Schnittstelle ist für das CMS gedacht."))
            }
        }
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP's second recommended set: m = 19 MiB, t = 2, p = 1
    let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a password cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password shorter than {0} characters")]
    TooShort(usize),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub const MIN_PASSWORD_CHARS: usize = 10;

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(MIN_PASSWORD_CHARS));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(h) => argon2().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// The largest argon2 memory a stored hash may ask for (64 MiB; Lotse's own hashes use 19).
const MAX_PASSWORD_KIB: u32 = 64 * 1024;

/// Working memory for argon2, kept and reused between checks ([`verify_password_in`]).
///
/// Each check with [`verify_password`] allocates 19 MiB; when many run on many threads the
/// allocator keeps that memory per thread arena and the process grows by hundreds of MiB
/// (issue 31). A server holds a few of these instead, one per check allowed at once.
#[derive(Default)]
pub struct PasswordMemory(Vec<argon2::Block>);

impl fmt::Debug for PasswordMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordMemory({} KiB)", self.0.len())
    }
}

/// A PHC string that never matches, for unknown names: checking against it costs as much as
/// a real check, so names cannot be probed by timing.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0000000000000000000000000000000000000000000";

/// [`verify_password`] with the caller's working memory, which grows once to the hash's
/// memory cost and is reused afterwards.
pub fn verify_password_in(password: &str, hash: &str, memory: &mut PasswordMemory) -> bool {
    let Ok(h) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else { return false };
    let version = match h.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&h) else { return false };
    if params.m_cost() > MAX_PASSWORD_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let blocks = params.block_count();
    if memory.0.len() < blocks {
        memory.0.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory.0[..blocks]).is_err() {
        return false;
    }
    let want = expected.as_bytes();
    out.len() == want.len() && out.iter().zip(want).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random token (32 bytes, hex), with `prefix` (`lotse_` for API tokens).
pub fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random source");
    format!("{prefix}{}", hex::encode(b))
}

/// SHA-256 of a token, hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, level: Level, groups: &[&str]) -> Principal {
        Principal::User(UserInfo {
            id: 7,
            name: "u".into(),
            display_name: "U".into(),
            role,
            level,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
    }

    #[test]
    fn anonymous_is_401_everywhere() {
        let r = LevelRules::default();
        for a in [Action::Portal, Action::Chat, Action::ManageUsers, Action::CmsRefresh] {
            assert_eq!(authorize(&Principal::Anonymous, &a, &r), Err(Denied::Unauthenticated));
        }
    }

    #[test]
    fn groups_decide_collections() {
        let r = LevelRules::default();
        let a = Owner::Group("bauamt".into());
        let b = Owner::Group("kaemmerei".into());
        let staff = user(Role::Staff, Level::Seepferdchen, &["bauamt"]);
        assert!(authorize(&staff, &Action::ReadCollection(&a), &r).is_ok());
        assert!(authorize(&staff, &Action::ReadCollection(&b), &r).is_err());
        assert!(authorize(&staff, &Action::ManageCollection(&a), &r).is_err());
        let editor = user(Role::Editor, Level::Seepferdchen, &["bauamt"]);
        assert!(authorize(&editor, &Action::ManageCollection(&a), &r).is_ok());
        assert!(authorize(&editor, &Action::ManageCollection(&b), &r).is_err());
        // admins manage every collection but read only their own groups'
        let admin = user(Role::Admin, Level::Gold, &[]);
        assert!(authorize(&admin, &Action::ManageCollection(&b), &r).is_ok());
        assert!(authorize(&admin, &Action::ReadCollection(&b), &r).is_err());
    }

    #[test]
    fn editors_and_admins_review_rewrites_of_legal_texts() {
        let r = LevelRules::default();
        assert!(authorize(&user(Role::Staff, Level::Gold, &["a"]), &Action::ReviewRewrites, &r).is_err());
        assert!(authorize(&user(Role::Editor, Level::None, &["a"]), &Action::ReviewRewrites, &r).is_ok());
        assert!(authorize(&user(Role::Admin, Level::None, &[]), &Action::ReviewRewrites, &r).is_ok());
        assert!(authorize(&user(Role::Staff, Level::Gold, &["a"]), &Action::ViewInsights, &r).is_err());
        assert!(authorize(&user(Role::Editor, Level::None, &["a"]), &Action::ViewInsights, &r).is_ok());
        assert!(authorize(&user(Role::Admin, Level::None, &[]), &Action::ViewInsights, &r).is_ok());
    }

    #[test]
    fn levels_unlock_features() {
        let r = LevelRules::default();
        let fresh = user(Role::Staff, Level::None, &[]);
        assert!(authorize(&fresh, &Action::Chat, &r).is_err());
        assert!(authorize(&fresh, &Action::TakeCheck, &r).is_ok());
        let s = user(Role::Staff, Level::Seepferdchen, &["a"]);
        assert!(authorize(&s, &Action::Chat, &r).is_ok());
        assert!(authorize(&s, &Action::ExternalModel, &r).is_err());
        assert!(authorize(&s, &Action::SharePrompt("a"), &r).is_err());
        let g = user(Role::Staff, Level::Silber, &["a"]);
        assert!(authorize(&g, &Action::ExternalModel, &r).is_ok());
        assert!(authorize(&g, &Action::SharePrompt("a"), &r).is_ok());
        assert!(authorize(&g, &Action::SharePrompt("b"), &r).is_err());
    }

    #[test]
    fn tokens_are_limited_to_their_scopes() {
        let r = LevelRules::default();
        let Principal::User(owner) = user(Role::Admin, Level::Gold, &["a"]) else { unreachable!() };
        let t = Principal::Token {
            owner,
            scopes: vec![Scope::Simplify],
        };
        assert!(authorize(&t, &Action::CmsSimplify, &r).is_ok());
        assert!(authorize(&t, &Action::CmsRefresh, &r).is_err());
        assert!(authorize(&t, &Action::ManageUsers, &r).is_err());
        assert!(authorize(&t, &Action::Chat, &r).is_err());
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("korrekt-pferd-batterie").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("korrekt-pferd-batterie", &h));
        assert!(!verify_password("falsch-pferd-batterie", &h));
        assert_eq!(hash_password("kurz"), Err(PasswordError::TooShort(MIN_PASSWORD_CHARS)));
    }

    #[test]
    fn reused_memory_verifies_like_a_fresh_check() {
        let h = hash_password("korrekt-pferd-batterie").unwrap();
        let mut mem = PasswordMemory::default();
        for _ in 0..2 {
            assert!(verify_password_in("korrekt-pferd-batterie", &h, &mut mem));
            assert!(!verify_password_in("falsch-pferd-batterie", &h, &mut mem));
        }
        assert!(!verify_password_in("x", DUMMY_HASH, &mut mem));
        assert!(!verify_password_in("x", "not a hash", &mut mem));
        // a hash asking for more memory than allowed is refused without allocating it
        let huge = h.replace("m=19456", "m=1048576");
        assert!(!verify_password_in("korrekt-pferd-batterie", &huge, &mut mem));
    }
}
