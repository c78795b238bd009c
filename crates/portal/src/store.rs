//! The portal's records in SQLite: users, groups, sessions, API tokens, collections,
//! documents, chats, prompts, the audit log and the AI system register.
//!
//! One file (`data/portal.sqlite`), WAL mode, schema migrations by `PRAGMA user_version`
//! (each step in one transaction), foreign keys on. [`Store::backup`] writes a consistent
//! snapshot with `VACUUM INTO` while the server keeps running.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Level, Owner, Role, Scope, UserInfo};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("portal store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Exists(&'static str),
    #[error("invalid input: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const MIGRATIONS: &[&str] = &[
    // 1: the first schema
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        password_hash TEXT,
        oidc_subject TEXT UNIQUE,
        role TEXT NOT NULL,
        level TEXT NOT NULL DEFAULT 'none',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE user_groups (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_name TEXT NOT NULL,
        PRIMARY KEY (user_id, group_name)
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        scopes TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
    );
    CREATE TABLE kompass_attempts (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        right_answers INTEGER NOT NULL,
        total INTEGER NOT NULL,
        passed INTEGER NOT NULL
    );
    CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        owner_kind TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        created_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        file_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        n_chunks INTEGER NOT NULL,
        uploaded_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        uploaded_at INTEGER NOT NULL,
        UNIQUE (collection_id, file_name)
    );
    CREATE TABLE chats (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        sources TEXT NOT NULL DEFAULT '[]',
        model TEXT,
        at INTEGER NOT NULL
    );
    CREATE TABLE prompts (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '',
        group_name TEXT,
        owner_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        user_id INTEGER,
        user_name TEXT NOT NULL,
        groups TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT,
        external INTEGER NOT NULL DEFAULT 0,
        collections TEXT NOT NULL DEFAULT '',
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT 'ok',
        content TEXT
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE TABLE ai_register (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        purpose TEXT NOT NULL,
        provider TEXT NOT NULL,
        risk_class TEXT NOT NULL,
        responsible TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );",
];

/// A collection as the portal shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Collection {
    pub id: i64,
    pub title: String,
    pub owner: Owner,
    pub created_at: i64,
    pub documents: i64,
}

impl Collection {
    /// The collection's name in the search index.
    pub fn index_id(&self) -> lotse_core::CollectionId {
        index_collection(self.id)
    }
    /// Who may see its chunks, as the index stores it.
    pub fn visibility(&self) -> lotse_core::Visibility {
        match &self.owner {
            Owner::Group(g) => lotse_core::Visibility::Group(g.clone()),
            Owner::User(u) => lotse_core::Visibility::User(u.to_string()),
        }
    }
}

/// The index collection of portal collection `id`.
pub fn index_collection(id: i64) -> lotse_core::CollectionId {
    lotse_core::CollectionId(format!("portal-{id}"))
}

/// Where a document is shown (and cited): `/portal/dokumente/{id}`.
pub fn document_url(id: i64) -> String {
    format!("/portal/dokumente/{id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub user: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChatSummary {
    pub id: i64,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub sources: serde_json::Value,
    pub model: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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

/// The `{name}` placeholders of a prompt body.
pub fn prompt_variables(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) if j > 0 && after[..j].chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') => {
                let v = after[..j].to_string();
                if !out.contains(&v) {
                    out.push(v);
                }
                rest = &after[j + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

/// One audit entry to write.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub user_id: Option<i64>,
    pub user_name: String,
    pub groups: Vec<String>,
    pub action: String,
    pub model: Option<String>,
    pub external: bool,
    pub collections: Vec<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub outcome: String,
    pub content: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
}

/// Usage per group and model.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub group: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// One entry of the AI system register (EU AI Act inventory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// The store. Cheap to share behind an `Arc`; calls are short and serialised.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

fn owner_from(kind: &str, id: String) -> Owner {
    if kind == "user" {
        Owner::User(id.parse().unwrap_or(-1))
    } else {
        Owner::Group(id)
    }
}

fn owner_cols(o: &Owner) -> (&'static str, String) {
    match o {
        Owner::Group(g) => ("group", g.clone()),
        Owner::User(u) => ("user", u.to_string()),
    }
}

/// Group names: lowercase letters, digits, `-` and `_`, 1 to 64 characters.
pub fn valid_group(g: &str) -> bool {
    (1..=64).contains(&g.len()) && g.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Store {
    /// Open (and create or migrate) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let store = Store { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn migrate(&self) -> Result<()> {
        let mut c = self.db();
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = c.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "portal store migrated");
        }
        Ok(())
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.db().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Write a consistent copy of the whole store to `dest` (which must not exist).
    pub fn backup(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(StoreError::Exists("backup file"));
        }
        let d = dest.to_string_lossy().to_string();
        self.db().execute("VACUUM INTO ?1", params![d])?;
        Ok(())
    }

    // ---- users -------------------------------------------------------------------------

    pub fn create_user(
        &self,
        name: &str,
        display_name: &str,
        password_hash: Option<&str>,
        role: Role,
        groups: &[String],
    ) -> Result<i64> {
        let name = name.trim();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid("user name must be 1-128 characters without spaces".into()));
        }
        if let Some(g) = groups.iter().find(|g| !valid_group(g)) {
            return Err(StoreError::Invalid(format!("invalid group name {g:?}")));
        }
        let mut c = self.db();
        let tx = c.transaction()?;
        let r = tx.execute(
            "INSERT INTO users (name, display_name, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, display_name, password_hash, role.key(), now()],
        );
        match r {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(StoreError::Exists("user"));
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let id = tx.last_insert_rowid();
        for g in groups {
            tx.execute("INSERT OR IGNORE INTO user_groups (user_id, group_name) VALUES (?1, ?2)", params![id, g])?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// A user signing in with OpenID Connect: found by subject, created on first login, with
    /// role and groups taken from the identity provider's claims every time.
    pub fn upsert_oidc_user(
        &self,
        subject: &str,
        name: &str,
        display_name: &str,
        role: Role,
        groups: &[String],
    ) -> Result<i64> {
        let mut c = self.db();
        let tx = c.transaction()?;
        let existing: Option<i64> = tx
            .query_row("SELECT id FROM users WHERE oidc_subject = ?1", params![subject], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => {
                tx.execute(
                    "UPDATE users SET display_name = ?1, role = ?2 WHERE id = ?3",
                    params![display_name, role.key(), id],
                )?;
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO users (name, display_name, oidc_subject, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name, display_name, subject, role.key(), now()],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                        StoreError::Exists("user")
                    }
                    e => e.into(),
                })?;
                tx.last_insert_rowid()
            }
        };
        tx.execute("DELETE FROM user_groups WHERE user_id = ?1", params![id])?;
        for g in groups.iter().filter(|g| valid_group(g)) {
            tx.execute("INSERT OR IGNORE INTO user_groups (user_id, group_name) VALUES (?1, ?2)", params![id, g])?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn user_row(c: &Connection, id: i64) -> Result<Option<UserInfo>> {
        let row = c
            .query_row(
                "SELECT id, name, display_name, role, level FROM users WHERE id = ?1 AND disabled = 0",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, name, display_name, role, level)) = row else {
            return Ok(None);
        };
        let mut st = c.prepare("SELECT group_name FROM user_groups WHERE user_id = ?1 ORDER BY group_name")?;
        let groups = st.query_map(params![id], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(Some(UserInfo {
            id,
            name,
            display_name,
            role: Role::parse(&role).unwrap_or(Role::Staff),
            level: Level::parse(&level).unwrap_or(Level::None),
            groups,
        }))
    }

    pub fn user(&self, id: i64) -> Result<Option<UserInfo>> {
        Self::user_row(&self.db(), id)
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserInfo>> {
        let c = self.db();
        let id: Option<i64> = c
            .query_row("SELECT id FROM users WHERE name = ?1", params![name.trim()], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) => Self::user_row(&c, id),
            None => Ok(None),
        }
    }

    /// The password hash of an enabled local account.
    pub fn password_hash(&self, name: &str) -> Result<Option<(i64, String)>> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, password_hash FROM users WHERE name = ?1 AND disabled = 0 AND password_hash IS NOT NULL",
                params![name.trim()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn set_password(&self, user_id: i64, hash: &str) -> Result<()> {
        let n = self.db().execute("UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, user_id])?;
        if n == 0 { Err(StoreError::NotFound("user")) } else { Ok(()) }
    }

    pub fn users(&self) -> Result<Vec<UserInfo>> {
        let c = self.db();
        let ids: Vec<i64> = c
            .prepare("SELECT id FROM users WHERE disabled = 0 ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(u) = Self::user_row(&c, id)? {
                out.push(u);
            }
        }
        Ok(out)
    }

    pub fn set_level(&self, user_id: i64, level: Level) -> Result<()> {
        let n = self.db().execute("UPDATE users SET level = ?1 WHERE id = ?2", params![level.key(), user_id])?;
        if n == 0 { Err(StoreError::NotFound("user")) } else { Ok(()) }
    }

    pub fn set_role_and_groups(&self, user_id: i64, role: Role, groups: &[String]) -> Result<()> {
        if let Some(g) = groups.iter().find(|g| !valid_group(g)) {
            return Err(StoreError::Invalid(format!("invalid group name {g:?}")));
        }
        let mut c = self.db();
        let tx = c.transaction()?;
        if tx.execute("UPDATE users SET role = ?1 WHERE id = ?2", params![role.key(), user_id])? == 0 {
            return Err(StoreError::NotFound("user"));
        }
        tx.execute("DELETE FROM user_groups WHERE user_id = ?1", params![user_id])?;
        for g in groups {
            tx.execute("INSERT INTO user_groups (user_id, group_name) VALUES (?1, ?2)", params![user_id, g])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Disable an account and end its sessions and tokens (its records stay for the audit).
    pub fn disable_user(&self, user_id: i64) -> Result<()> {
        let mut c = self.db();
        let tx = c.transaction()?;
        if tx.execute("UPDATE users SET disabled = 1 WHERE id = ?1", params![user_id])? == 0 {
            return Err(StoreError::NotFound("user"));
        }
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?;
        tx.execute("DELETE FROM api_tokens WHERE user_id = ?1", params![user_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Record a KI-Kompass attempt; a pass raises the level to `level` (never lowers it).
    pub fn record_attempt(&self, user_id: i64, right: usize, total: usize, passed: bool, level: Level) -> Result<Level> {
        let mut c = self.db();
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO kompass_attempts (user_id, at, right_answers, total, passed) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, now(), right as i64, total as i64, passed],
        )?;
        let current: String = tx.query_row("SELECT level FROM users WHERE id = ?1", params![user_id], |r| r.get(0))?;
        let current = Level::parse(&current).unwrap_or(Level::None);
        let new = if passed && level > current { level } else { current };
        tx.execute("UPDATE users SET level = ?1 WHERE id = ?2", params![new.key(), user_id])?;
        tx.commit()?;
        Ok(new)
    }

    // ---- sessions and tokens -----------------------------------------------------------

    /// A new session: returns (cookie token, CSRF token). Only the token's hash is stored.
    pub fn create_session(&self, user_id: i64, ttl_secs: i64) -> Result<(String, String)> {
        let token = auth::random_token("");
        let csrf = auth::random_token("");
        let t = now();
        let c = self.db();
        c.execute("DELETE FROM sessions WHERE expires_at < ?1", params![t])?;
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![auth::token_hash(&token), user_id, csrf, t, t + ttl_secs],
        )?;
        Ok((token, csrf))
    }

    /// The user and CSRF token of a live session.
    pub fn session(&self, token: &str) -> Result<Option<(UserInfo, String)>> {
        let c = self.db();
        let row: Option<(i64, String)> = c
            .query_row(
                "SELECT user_id, csrf FROM sessions WHERE token_hash = ?1 AND expires_at >= ?2",
                params![auth::token_hash(token), now()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((uid, csrf)) => Ok(Self::user_row(&c, uid)?.map(|u| (u, csrf))),
            None => Ok(None),
        }
    }

    pub fn delete_session(&self, token: &str) -> Result<()> {
        self.db().execute("DELETE FROM sessions WHERE token_hash = ?1", params![auth::token_hash(token)])?;
        Ok(())
    }

    /// A new API token for `user_id`; the token is shown once and stored as a hash.
    pub fn create_token(&self, user_id: i64, name: &str, scopes: &[Scope]) -> Result<String> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid("a token needs at least one scope".into()));
        }
        let token = auth::random_token("lotse_");
        let s: Vec<&str> = scopes.iter().map(|s| s.key()).collect();
        self.db().execute(
            "INSERT INTO api_tokens (token_hash, name, user_id, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![auth::token_hash(&token), name, user_id, s.join(","), now()],
        )?;
        Ok(token)
    }

    /// The owner and scopes of a token.
    pub fn token(&self, token: &str) -> Result<Option<(UserInfo, Vec<Scope>)>> {
        let c = self.db();
        let h = auth::token_hash(token);
        let row: Option<(i64, String)> = c
            .query_row("SELECT user_id, scopes FROM api_tokens WHERE token_hash = ?1", params![h], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((uid, scopes)) = row else { return Ok(None) };
        c.execute("UPDATE api_tokens SET last_used_at = ?1 WHERE token_hash = ?2", params![now(), h])?;
        let scopes = scopes.split(',').filter_map(Scope::parse).collect();
        Ok(Self::user_row(&c, uid)?.map(|u| (u, scopes)))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let c = self.db();
        let mut st = c.prepare(
            "SELECT t.id, t.name, u.name, t.scopes, t.created_at, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    user: r.get(2)?,
                    scopes: r.get::<_, String>(3)?.split(',').filter_map(Scope::parse).collect(),
                    created_at: r.get(4)?,
                    last_used_at: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn revoke_token(&self, id: i64) -> Result<()> {
        let n = self.db().execute("DELETE FROM api_tokens WHERE id = ?1", params![id])?;
        if n == 0 { Err(StoreError::NotFound("token")) } else { Ok(()) }
    }

    // ---- collections and documents -----------------------------------------------------

    pub fn create_collection(&self, title: &str, owner: &Owner, created_by: Option<i64>) -> Result<Collection> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(StoreError::Invalid("title must be 1-200 characters".into()));
        }
        if let Owner::Group(g) = owner
            && !valid_group(g)
        {
            return Err(StoreError::Invalid(format!("invalid group name {g:?}")));
        }
        let (kind, id) = owner_cols(owner);
        let c = self.db();
        c.execute(
            "INSERT INTO collections (title, owner_kind, owner_id, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![title, kind, id, created_by, now()],
        )?;
        let cid = c.last_insert_rowid();
        drop(c);
        self.collection(cid)?.ok_or(StoreError::NotFound("collection"))
    }

    fn collection_row(r: &Row<'_>) -> rusqlite::Result<Collection> {
        Ok(Collection {
            id: r.get(0)?,
            title: r.get(1)?,
            owner: owner_from(&r.get::<_, String>(2)?, r.get(3)?),
            created_at: r.get(4)?,
            documents: r.get(5)?,
        })
    }

    const COLLECTION_SELECT: &str = "SELECT c.id, c.title, c.owner_kind, c.owner_id, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id) FROM collections c";

    pub fn collection(&self, id: i64) -> Result<Option<Collection>> {
        Ok(self
            .db()
            .query_row(&format!("{} WHERE c.id = ?1", Self::COLLECTION_SELECT), params![id], Self::collection_row)
            .optional()?)
    }

    /// All collections (the caller filters with `authorize`).
    pub fn collections(&self) -> Result<Vec<Collection>> {
        let c = self.db();
        let mut st = c.prepare(&format!("{} ORDER BY c.title, c.id", Self::COLLECTION_SELECT))?;
        let rows = st.query_map([], Self::collection_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Delete a collection's row (its documents go with it); returns the document ids, whose
    /// index entries the caller removes.
    pub fn delete_collection(&self, id: i64) -> Result<Vec<i64>> {
        let mut c = self.db();
        let tx = c.transaction()?;
        let docs: Vec<i64> = tx
            .prepare("SELECT id FROM documents WHERE collection_id = ?1")?
            .query_map(params![id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if tx.execute("DELETE FROM collections WHERE id = ?1", params![id])? == 0 {
            return Err(StoreError::NotFound("collection"));
        }
        tx.commit()?;
        Ok(docs)
    }

    fn document_row(r: &Row<'_>) -> rusqlite::Result<Document> {
        let id: i64 = r.get(0)?;
        Ok(Document {
            id,
            collection_id: r.get(1)?,
            file_name: r.get(2)?,
            kind: r.get(3)?,
            title: r.get(4)?,
            sha256: r.get(5)?,
            bytes: r.get(6)?,
            n_chunks: r.get(7)?,
            uploaded_at: r.get(8)?,
            url: document_url(id),
        })
    }

    const DOCUMENT_SELECT: &str =
        "SELECT id, collection_id, file_name, kind, title, sha256, bytes, n_chunks, uploaded_at FROM documents";

    pub fn documents(&self, collection_id: i64) -> Result<Vec<Document>> {
        let c = self.db();
        let mut st = c.prepare(&format!("{} WHERE collection_id = ?1 ORDER BY file_name", Self::DOCUMENT_SELECT))?;
        let rows = st.query_map(params![collection_id], Self::document_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn document(&self, id: i64) -> Result<Option<Document>> {
        Ok(self
            .db()
            .query_row(&format!("{} WHERE id = ?1", Self::DOCUMENT_SELECT), params![id], Self::document_row)
            .optional()?)
    }

    /// The document of this name in the collection, if any (an upload of the same name
    /// replaces it).
    pub fn document_by_name(&self, collection_id: i64, file_name: &str) -> Result<Option<Document>> {
        Ok(self
            .db()
            .query_row(
                &format!("{} WHERE collection_id = ?1 AND file_name = ?2", Self::DOCUMENT_SELECT),
                params![collection_id, file_name],
                Self::document_row,
            )
            .optional()?)
    }

    /// Reserve a document id before indexing (the row is completed by [`Store::finish_document`]
    /// or removed by [`Store::delete_document`]).
    #[allow(clippy::too_many_arguments)]
    pub fn put_document(
        &self,
        collection_id: i64,
        file_name: &str,
        kind: &str,
        title: &str,
        sha256: &str,
        bytes: i64,
        uploaded_by: Option<i64>,
    ) -> Result<i64> {
        let c = self.db();
        c.execute(
            "INSERT INTO documents (collection_id, file_name, kind, title, sha256, bytes, n_chunks, uploaded_by, uploaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)
             ON CONFLICT (collection_id, file_name) DO UPDATE SET kind = excluded.kind, title = excluded.title,
               sha256 = excluded.sha256, bytes = excluded.bytes, uploaded_by = excluded.uploaded_by, uploaded_at = excluded.uploaded_at",
            params![collection_id, file_name, kind, title, sha256, bytes, uploaded_by, now()],
        )?;
        Ok(c.query_row(
            "SELECT id FROM documents WHERE collection_id = ?1 AND file_name = ?2",
            params![collection_id, file_name],
            |r| r.get(0),
        )?)
    }

    pub fn finish_document(&self, id: i64, n_chunks: u32) -> Result<()> {
        self.db().execute("UPDATE documents SET n_chunks = ?1 WHERE id = ?2", params![n_chunks as i64, id])?;
        Ok(())
    }

    pub fn delete_document(&self, id: i64) -> Result<()> {
        let n = self.db().execute("DELETE FROM documents WHERE id = ?1", params![id])?;
        if n == 0 { Err(StoreError::NotFound("document")) } else { Ok(()) }
    }

    // ---- chats --------------------------------------------------------------------------

    pub fn create_chat(&self, user_id: i64, title: &str) -> Result<i64> {
        let t = now();
        let title: String = title.chars().take(80).collect();
        let c = self.db();
        c.execute(
            "INSERT INTO chats (user_id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![user_id, title, t],
        )?;
        Ok(c.last_insert_rowid())
    }

    /// Whether the chat belongs to the user.
    pub fn chat_owner(&self, chat_id: i64) -> Result<Option<i64>> {
        Ok(self
            .db()
            .query_row("SELECT user_id FROM chats WHERE id = ?1", params![chat_id], |r| r.get(0))
            .optional()?)
    }

    pub fn add_message(&self, chat_id: i64, m: &ChatMessage) -> Result<()> {
        let c = self.db();
        c.execute(
            "INSERT INTO chat_messages (chat_id, role, content, sources, model, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![chat_id, m.role, m.content, m.sources.to_string(), m.model, m.at],
        )?;
        c.execute("UPDATE chats SET updated_at = ?1 WHERE id = ?2", params![m.at, chat_id])?;
        Ok(())
    }

    pub fn chats(&self, user_id: i64) -> Result<Vec<ChatSummary>> {
        let c = self.db();
        let mut st = c.prepare("SELECT id, title, created_at, updated_at FROM chats WHERE user_id = ?1 ORDER BY updated_at DESC, id DESC")?;
        let rows = st
            .query_map(params![user_id], |r| {
                Ok(ChatSummary {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    created_at: r.get(2)?,
                    updated_at: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn messages(&self, chat_id: i64) -> Result<Vec<ChatMessage>> {
        let c = self.db();
        let mut st = c.prepare("SELECT role, content, sources, model, at FROM chat_messages WHERE chat_id = ?1 ORDER BY id")?;
        let rows = st
            .query_map(params![chat_id], |r| {
                Ok(ChatMessage {
                    role: r.get(0)?,
                    content: r.get(1)?,
                    sources: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(serde_json::Value::Null),
                    model: r.get(3)?,
                    at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn delete_chat(&self, chat_id: i64) -> Result<()> {
        self.db().execute("DELETE FROM chats WHERE id = ?1", params![chat_id])?;
        Ok(())
    }

    pub fn delete_chats_of(&self, user_id: i64) -> Result<usize> {
        Ok(self.db().execute("DELETE FROM chats WHERE user_id = ?1", params![user_id])?)
    }

    /// Delete chats not touched for `days` days; returns how many.
    pub fn expire_chats(&self, days: u32) -> Result<usize> {
        let cutoff = now() - i64::from(days) * 86_400;
        Ok(self.db().execute("DELETE FROM chats WHERE updated_at < ?1", params![cutoff])?)
    }

    // ---- prompts ------------------------------------------------------------------------

    pub fn create_prompt(&self, title: &str, body: &str, tags: &[String], group: Option<&str>, owner: i64) -> Result<i64> {
        if title.trim().is_empty() || body.trim().is_empty() {
            return Err(StoreError::Invalid("title and text are required".into()));
        }
        if body.chars().count() > 8000 || title.chars().count() > 200 {
            return Err(StoreError::Invalid("prompt too long".into()));
        }
        let c = self.db();
        c.execute(
            "INSERT INTO prompts (title, body, tags, group_name, owner_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![title.trim(), body, tags.join(","), group, owner, now()],
        )?;
        Ok(c.last_insert_rowid())
    }

    fn prompt_row(r: &Row<'_>) -> rusqlite::Result<(Prompt, Option<i64>)> {
        let body: String = r.get(2)?;
        let tags: String = r.get(3)?;
        Ok((
            Prompt {
                id: r.get(0)?,
                title: r.get(1)?,
                variables: prompt_variables(&body),
                body,
                tags: tags.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
                group: r.get(4)?,
                owner: r.get(6)?,
            },
            r.get(5)?,
        ))
    }

    const PROMPT_SELECT: &str = "SELECT p.id, p.title, p.body, p.tags, p.group_name, p.owner_id, u.name FROM prompts p LEFT JOIN users u ON u.id = p.owner_id";

    /// Prompts a user may use: their own and their groups'.
    pub fn prompts_for(&self, user: &UserInfo) -> Result<Vec<Prompt>> {
        let c = self.db();
        let mut st = c.prepare(&format!("{} ORDER BY p.title", Self::PROMPT_SELECT))?;
        let rows = st
            .query_map([], Self::prompt_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|(p, owner)| match &p.group {
                Some(g) => user.groups.contains(g),
                None => *owner == Some(user.id),
            })
            .map(|(p, _)| p)
            .collect();
        Ok(rows)
    }

    /// A prompt with its owner id.
    pub fn prompt(&self, id: i64) -> Result<Option<(Prompt, Option<i64>)>> {
        Ok(self
            .db()
            .query_row(&format!("{} WHERE p.id = ?1", Self::PROMPT_SELECT), params![id], Self::prompt_row)
            .optional()?)
    }

    pub fn delete_prompt(&self, id: i64) -> Result<()> {
        let n = self.db().execute("DELETE FROM prompts WHERE id = ?1", params![id])?;
        if n == 0 { Err(StoreError::NotFound("prompt")) } else { Ok(()) }
    }

    // ---- audit --------------------------------------------------------------------------

    pub fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.db().execute(
            "INSERT INTO audit (at, user_id, user_name, groups, action, model, external, collections, prompt_tokens, completion_tokens, outcome, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                now(),
                e.user_id,
                e.user_name,
                e.groups.join(","),
                e.action,
                e.model,
                e.external,
                e.collections.join(","),
                e.prompt_tokens,
                e.completion_tokens,
                if e.outcome.is_empty() { "ok" } else { e.outcome.as_str() },
                e.content
            ],
        )?;
        Ok(())
    }

    /// Audit records since `since` (Unix time), newest first, at most `limit`.
    pub fn audit_log(&self, since: i64, limit: usize) -> Result<Vec<AuditRecord>> {
        let c = self.db();
        let mut st = c.prepare(
            "SELECT id, at, user_name, groups, action, model, external, collections, prompt_tokens, completion_tokens, outcome, content
             FROM audit WHERE at >= ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![since, limit as i64], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    user: r.get(2)?,
                    groups: r.get(3)?,
                    action: r.get(4)?,
                    model: r.get(5)?,
                    external: r.get(6)?,
                    collections: r.get(7)?,
                    prompt_tokens: r.get(8)?,
                    completion_tokens: r.get(9)?,
                    outcome: r.get(10)?,
                    content: r.get(11)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Requests and tokens per group and model since `since` (chat requests only). A user in
    /// two groups counts for both; users without a group count under "-".
    pub fn usage(&self, since: i64) -> Result<Vec<Usage>> {
        let c = self.db();
        let mut st = c.prepare(
            "SELECT groups, COALESCE(model, ''), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
             FROM audit WHERE at >= ?1 AND action = 'chat' GROUP BY groups, model",
        )?;
        let rows: Vec<(String, String, i64, i64, i64)> = st
            .query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut map: std::collections::BTreeMap<(String, String), Usage> = Default::default();
        for (groups, model, n, p, comp) in rows {
            let gs: Vec<String> = if groups.is_empty() {
                vec!["-".into()]
            } else {
                groups.split(',').map(str::to_string).collect()
            };
            for g in gs {
                let u = map.entry((g.clone(), model.clone())).or_insert_with(|| Usage {
                    group: g,
                    model: model.clone(),
                    requests: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                });
                u.requests += n;
                u.prompt_tokens += p;
                u.completion_tokens += comp;
            }
        }
        Ok(map.into_values().collect())
    }

    // ---- AI register --------------------------------------------------------------------

    /// Add or replace the register entry of this name.
    pub fn put_register(&self, e: &RegisterEntry) -> Result<()> {
        for (field, v) in [("name", &e.name), ("model", &e.model), ("purpose", &e.purpose), ("provider", &e.provider), ("risk_class", &e.risk_class), ("responsible", &e.responsible)] {
            if v.trim().is_empty() {
                return Err(StoreError::Invalid(format!("{field} is required")));
            }
        }
        self.db().execute(
            "INSERT INTO ai_register (name, model, purpose, provider, risk_class, responsible, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET model = excluded.model, purpose = excluded.purpose, provider = excluded.provider,
               risk_class = excluded.risk_class, responsible = excluded.responsible, updated_at = excluded.updated_at",
            params![e.name.trim(), e.model, e.purpose, e.provider, e.risk_class, e.responsible, now()],
        )?;
        Ok(())
    }

    /// Add the entry only if there is none of this name (start-up seeding keeps edits).
    pub fn seed_register(&self, e: &RegisterEntry) -> Result<()> {
        let exists: Option<i64> = self
            .db()
            .query_row("SELECT id FROM ai_register WHERE name = ?1", params![e.name], |r| r.get(0))
            .optional()?;
        if exists.is_none() {
            self.put_register(e)?;
        }
        Ok(())
    }

    pub fn register(&self) -> Result<Vec<RegisterEntry>> {
        let c = self.db();
        let mut st = c.prepare("SELECT name, model, purpose, provider, risk_class, responsible, updated_at FROM ai_register ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                Ok(RegisterEntry {
                    name: r.get(0)?,
                    model: r.get(1)?,
                    purpose: r.get(2)?,
                    provider: r.get(3)?,
                    risk_class: r.get(4)?,
                    responsible: r.get(5)?,
                    updated_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn delete_register(&self, name: &str) -> Result<()> {
        let n = self.db().execute("DELETE FROM ai_register WHERE name = ?1", params![name])?;
        if n == 0 { Err(StoreError::NotFound("register entry")) } else { Ok(()) }
    }
}

/// Rows as CSV (RFC 4180 quoting), header first.
pub fn to_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = header.iter().map(|h| quote(h)).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("portal.sqlite")).unwrap();
        (d, s)
    }

    #[test]
    fn migrations_run_once_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("portal.sqlite");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        s.create_user("anna", "Anna", None, Role::Staff, &["bauamt".into()]).unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.user_by_name("ANNA").unwrap().unwrap().groups, vec!["bauamt".to_string()]);
    }

    #[test]
    fn sessions_tokens_and_levels() {
        let (_d, s) = store();
        let id = s.create_user("bob", "Bob", Some("x"), Role::Editor, &[]).unwrap();
        assert!(matches!(s.create_user("BOB", "B", None, Role::Staff, &[]), Err(StoreError::Exists(_))));
        let (tok, csrf) = s.create_session(id, 3600).unwrap();
        let (u, c) = s.session(&tok).unwrap().unwrap();
        assert_eq!((u.id, c), (id, csrf));
        assert!(s.session("wrong").unwrap().is_none());
        s.delete_session(&tok).unwrap();
        assert!(s.session(&tok).unwrap().is_none());
        let t = s.create_token(id, "cms", &[Scope::Simplify]).unwrap();
        assert!(t.starts_with("lotse_"));
        assert_eq!(s.token(&t).unwrap().unwrap().1, vec![Scope::Simplify]);
        assert_eq!(s.record_attempt(id, 2, 5, false, Level::Seepferdchen).unwrap(), Level::None);
        assert_eq!(s.record_attempt(id, 5, 5, true, Level::Seepferdchen).unwrap(), Level::Seepferdchen);
        s.set_level(id, Level::Gold).unwrap();
        // passing again never lowers
        assert_eq!(s.record_attempt(id, 5, 5, true, Level::Seepferdchen).unwrap(), Level::Gold);
        s.disable_user(id).unwrap();
        assert!(s.token(&t).unwrap().is_none());
    }

    #[test]
    fn backup_is_a_consistent_copy() {
        let (d, s) = store();
        s.create_user("c", "C", None, Role::Admin, &[]).unwrap();
        let b = d.path().join("backup.sqlite");
        s.backup(&b).unwrap();
        let copy = Store::open(&b).unwrap();
        assert!(copy.user_by_name("c").unwrap().is_some());
        assert!(s.backup(&b).is_err(), "never overwrites");
    }

    #[test]
    fn prompt_variables_are_found() {
        assert_eq!(prompt_variables("Schreibe an {empfaenger} zum {thema}, {thema}! {} {a b}"), vec!["empfaenger", "thema"]);
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(to_csv(&["a", "b"], &[vec!["x,y".into(), "q\"".into()]]), "a,b\r\n\"x,y\",\"q\"\"\"\r\n");
    }
}
