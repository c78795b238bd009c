//! The portal's records: users, groups, sessions, API tokens, collections, documents, chats,
//! prompts, the audit log and the AI system register.
//!
//! Design decision: one code path for both databases. The store speaks SQL through sqlx's
//! `AnyPool`: SQLite by default (one file, `data/portal.sqlite`, WAL mode, foreign keys on),
//! PostgreSQL for larger installations (`[portal] database = "postgres://…"`). The SQL is the
//! common subset of both (`$n` parameters, `ON CONFLICT`, `RETURNING`, `BIGINT` columns);
//! the schema's few differences (row ids, case-insensitive names) are rewritten per backend
//! in [`ddl`]. Names are stored lowercase, so lookups are case-insensitive on both.
//!
//! The API is synchronous (handlers call it from blocking tasks, the CLI from `main`): the
//! store owns a small runtime for its connections and waits on it ([`Store::run`]).
//!
//! Schema migrations are numbered; `lotse_schema` holds the version, each step runs in one
//! transaction. [`Store::backup`] writes a consistent SQLite snapshot with `VACUUM INTO`
//! while the server keeps running (PostgreSQL: `pg_dump`).
//!
//! The same database holds all of a server's state (issue 33.4): beside the portal's records
//! the rewrite cache of Einfache Sprache with the staff decisions ([`rewrites`]) and the
//! citizens' ratings ([`feedback`]); the SQLite files those had of their own before are
//! imported once ([`legacy`]).

use std::future::Future;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::auth::{self, Level, Owner, Role, Scope, UserInfo};

pub mod feedback;
pub mod legacy;
pub mod rewrites;
pub mod shared;

pub use feedback::Rating;
pub use legacy::{Imported, LEGACY_FILES};
pub use rewrites::{NewRewrite, StoredReview};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("portal store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Exists(&'static str),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The search index failed while uploads were written or reconciled.
    #[error("index: {0}")]
    Index(String),
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
    // 2: ids that are never given out twice (issue 31.5). SQLite reuses the highest rowid of a
    // deleted row, so a new collection could inherit a deleted one's index entries; the last
    // id given out per table is kept here, on both backends alike.
    "CREATE TABLE lotse_ids (
        name TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    );
    INSERT INTO lotse_ids (name, last_id) SELECT 'collections', COALESCE(MAX(id), 0) FROM collections;
    INSERT INTO lotse_ids (name, last_id) SELECT 'documents', COALESCE(MAX(id), 0) FROM documents;",
    // 3: the originals of uploaded documents (issue 31.6), so the index can be rebuilt from them
    "CREATE TABLE document_files (
        document_id BIGINT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
        content BLOB NOT NULL
    );",
    // 4: API tokens expire (tokens made before get 90 days from the migration); the audit
    // log names whom an admin change was about (issue 31). `{now}` is the migration's time.
    "ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
    UPDATE api_tokens SET expires_at = {now} + 7776000;
    ALTER TABLE audit ADD COLUMN target TEXT;",
    // 5: what citizens asked and how it went, for the web team (issue 35): the day (a day
    // number since 1970, not the time), the language, the outcome, the cited pages and the
    // question as the PII guard left it; never an address, a session or a user. The question's
    // embedding (little-endian f32) groups questions into topics; `done_day` is the editors'
    // "erledigt" mark.
    "CREATE TABLE insights (
        id INTEGER PRIMARY KEY,
        day INTEGER NOT NULL,
        lang TEXT NOT NULL,
        outcome TEXT NOT NULL,
        cited TEXT NOT NULL DEFAULT '',
        question TEXT NOT NULL,
        embed_model TEXT,
        embedding BLOB,
        done_day INTEGER
    );
    CREATE INDEX insights_day ON insights(day);",
    // 6: one database for all state (issue 33.4): the rewrite cache of Einfache Sprache, its
    // unit cache and the staff decisions on rewrites (formerly `simplify.sqlite`), the
    // citizens' ratings (formerly `feedback.sqlite`), and the marks of imported legacy files
    // (by SHA-256, so a file is never imported twice)
    "CREATE TABLE rewrites (
        key TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        model TEXT NOT NULL,
        rules_version TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        result TEXT NOT NULL
    );
    CREATE INDEX rewrites_url ON rewrites(url);
    CREATE TABLE rewrite_reviews (
        key TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        status TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        decided_at INTEGER NOT NULL,
        corrections TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX rewrite_reviews_url ON rewrite_reviews(url);
    CREATE TABLE rewrite_units (
        key TEXT PRIMARY KEY,
        unit_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        answer_id TEXT NOT NULL,
        helpful INTEGER NOT NULL,
        model TEXT NOT NULL,
        refused INTEGER NOT NULL,
        cited TEXT NOT NULL,
        question TEXT,
        at INTEGER NOT NULL
    );
    CREATE INDEX ratings_answer ON ratings(answer_id);
    CREATE TABLE lotse_imports (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        at INTEGER NOT NULL,
        row_count INTEGER NOT NULL
    );",
    // 7: replicas (issue 34.2): what a server remembers of an answer for its rating (model,
    // refusal, cited pages and the recorded question's row; never the question or the
    // answer), so a rating sent to another replica finds it; and leases, so background work
    // that needs doing once (the rewrite backlog) runs on one replica at a time
    "CREATE TABLE answer_records (
        answer_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        refused INTEGER NOT NULL,
        cited TEXT NOT NULL,
        insight_id INTEGER,
        at INTEGER NOT NULL
    );
    CREATE INDEX answer_records_at ON answer_records(at);
    CREATE TABLE lotse_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );",
];

/// The PostgreSQL advisory lock that serialises migrations of replicas starting at once
/// (an arbitrary constant: "lotse" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c6f747365;

/// How long an API token lasts unless the caller says otherwise (`[portal] token_days`).
pub const DEFAULT_TOKEN_DAYS: u32 = 90;

/// A collection as the portal shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatSummary {
    pub id: i64,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    pub sources: serde_json::Value,
    pub model: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Whom an admin change was about (an account's name).
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub group: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// One entry of the AI system register (EU AI Act inventory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migration's SQL for `backend`: SQLite takes it as written; PostgreSQL gets `BIGSERIAL`
/// row ids, `BIGINT` integers, `BYTEA` for `BLOB` and no `COLLATE NOCASE` (names are stored
/// lowercase).
pub fn ddl(sql: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => sql.to_string(),
        Backend::Postgres => sql
            .replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
            .replace("INTEGER", "BIGINT")
            .replace(" BLOB", " BYTEA")
            .replace(" COLLATE NOCASE", ""),
    }
}

/// The store. Cheap to share behind an `Arc`; SQLite calls are serialised on one connection.
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Drives the pool's connections; `None` only while dropping.
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let pool = self.pool.clone();
        let _ = self.run(async move {
            pool.close().await;
            Ok(())
        });
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
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

/// Account names are case-insensitive: stored and looked up lowercase.
fn account_name(name: &str) -> String {
    name.trim().to_lowercase()
}

fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Exists(what),
        _ => StoreError::Sql(e),
    }
}

fn not_found_if_none(n: u64, what: &'static str) -> Result<()> {
    if n == 0 { Err(StoreError::NotFound(what)) } else { Ok(()) }
}

/// The SQLite URL of a file (`%`, `?` and `#` escaped), created when missing.
fn sqlite_url(path: &Path) -> String {
    let p = path.to_string_lossy().replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    format!("sqlite://{p}?mode=rwc")
}

fn collection_row(r: &AnyRow) -> sqlx::Result<Collection> {
    Ok(Collection {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        owner: owner_from(&r.try_get::<String, _>(2)?, r.try_get(3)?),
        created_at: r.try_get(4)?,
        documents: r.try_get(5)?,
    })
}

fn document_row(r: &AnyRow) -> sqlx::Result<Document> {
    let id: i64 = r.try_get(0)?;
    Ok(Document {
        id,
        collection_id: r.try_get(1)?,
        file_name: r.try_get(2)?,
        kind: r.try_get(3)?,
        title: r.try_get(4)?,
        sha256: r.try_get(5)?,
        bytes: r.try_get(6)?,
        n_chunks: r.try_get(7)?,
        uploaded_at: r.try_get(8)?,
        url: document_url(id),
    })
}

fn prompt_row(r: &AnyRow) -> sqlx::Result<(Prompt, Option<i64>)> {
    let body: String = r.try_get(2)?;
    let tags: String = r.try_get(3)?;
    Ok((
        Prompt {
            id: r.try_get(0)?,
            title: r.try_get(1)?,
            variables: prompt_variables(&body),
            body,
            tags: tags.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
            group: r.try_get(4)?,
            owner: r.try_get(6)?,
        },
        r.try_get(5)?,
    ))
}

fn rows<T>(rows: Vec<AnyRow>, f: impl Fn(&AnyRow) -> sqlx::Result<T>) -> Result<Vec<T>> {
    Ok(rows.iter().map(f).collect::<sqlx::Result<Vec<T>>>()?)
}

/// An uploaded file as it is kept: what [`Store::finish_document`] writes.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub kind: &'a str,
    pub title: &'a str,
    /// Hex SHA-256 of `original`.
    pub sha256: &'a str,
    pub original: &'a [u8],
    pub uploaded_by: Option<i64>,
}

/// The next id of `table` from `lotse_ids`, inside the caller's transaction: ids are never
/// given out twice, whatever was deleted.
async fn next_id(tx: &mut sqlx::Transaction<'_, sqlx::Any>, table: &str) -> Result<i64> {
    Ok(sqlx::query("UPDATE lotse_ids SET last_id = last_id + 1 WHERE name = $1 RETURNING last_id")
        .bind(table)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?)
}

const COLLECTION_SELECT: &str = "SELECT c.id, c.title, c.owner_kind, c.owner_id, c.created_at, (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id AND d.sha256 <> '') FROM collections c";
const DOCUMENT_SELECT: &str =
    "SELECT id, collection_id, file_name, kind, title, sha256, bytes, n_chunks, uploaded_at FROM documents";
const PROMPT_SELECT: &str = "SELECT p.id, p.title, p.body, p.tags, p.group_name, p.owner_id, u.name FROM prompts p LEFT JOIN users u ON u.id = p.owner_id";

/// Replace the groups of `user_id`, inside the caller's transaction.
async fn replace_groups(conn: &mut sqlx::AnyConnection, user_id: i64, groups: &[String]) -> Result<()> {
    sqlx::query("DELETE FROM user_groups WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
    for g in groups {
        sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(user_id)
            .bind(g.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The user `id` (enabled accounts only), read on `conn`.
async fn user_row(conn: &mut sqlx::AnyConnection, id: i64) -> Result<Option<UserInfo>> {
    let row = sqlx::query("SELECT id, name, display_name, role, level FROM users WHERE id = $1 AND disabled = 0")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let groups: Vec<String> = sqlx::query("SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<sqlx::Result<_>>()?;
    let role: String = row.try_get(3)?;
    let level: String = row.try_get(4)?;
    Ok(Some(UserInfo {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        display_name: row.try_get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Staff),
        level: Level::parse(&level).unwrap_or(Level::None),
        groups,
    }))
}

impl Store {
    /// Open (and create or migrate) the SQLite store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        Self::connect(&sqlite_url(path))
    }

    /// Open (and create or migrate) the store at a database URL: `sqlite://PATH` or
    /// `postgres://USER:PASSWORD@HOST/DB`.
    pub fn connect(url: &str) -> Result<Store> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Invalid("the portal database must be a sqlite:// or postgres:// URL".into()));
        };
        sqlx::any::install_default_drivers();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lotse-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Invalid(format!("store runtime: {e}")))?;
        let options = match backend {
            // one connection: writes are serialised as SQLite does anyway, and a transaction
            // that reads before it writes never meets a second writer
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // secure_delete: a deleted upload's bytes are overwritten, not left in free pages
                        sqlx::raw_sql("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON")
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        let url = url.to_string();
        let pool = std::thread::scope(|s| {
            s.spawn(|| rt.block_on(options.connect(&url)))
                .join()
                .unwrap_or_else(|_| Err(sqlx::Error::PoolClosed))
        })?;
        let store = Store { pool, backend, rt: Some(rt) };
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set once, kept
            store.run(async { Ok(sqlx::raw_sql("PRAGMA journal_mode = WAL").execute(&store.pool).await.map(|_| ())?) })?;
        }
        store.migrate()?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Wait for `fut` on the store's runtime. A runtime cannot block within another: on a
    /// multi-threaded runtime (the server: handlers and `spawn_blocking`) the wait steps out
    /// of it with `block_in_place`; on a current-thread runtime (a test) it waits on a scoped
    /// thread.
    fn run<T: Send>(&self, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
        let Some(rt) = self.rt.as_ref() else {
            return Err(StoreError::Invalid("the store is closed".into()));
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => return rt.block_on(fut),
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                return tokio::task::block_in_place(|| rt.block_on(fut));
            }
            Ok(_) => {}
        }
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(fut))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Invalid("a store call panicked".into())))
        })
    }

    fn migrate(&self) -> Result<()> {
        let backend = self.backend;
        self.run(async {
            let mut c = self.pool.acquire().await?;
            if backend == Backend::Postgres {
                // replicas starting at once: one migrates, the others wait here and then find
                // the schema current (the lock is the session's, released with `c`'s session
                // below or when the process dies)
                sqlx::raw_sql(AssertSqlSafe(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))).execute(&mut *c).await?;
            }
            let result = self.migrate_on(&mut c, backend).await;
            if backend == Backend::Postgres {
                let unlocked = sqlx::raw_sql(AssertSqlSafe(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))).execute(&mut *c).await;
                if unlocked.is_err() {
                    // never hand a connection that may still hold the lock back to the pool
                    drop(c.detach());
                }
            }
            result
        })
    }

    async fn migrate_on(&self, c: &mut sqlx::pool::PoolConnection<sqlx::Any>, backend: Backend) -> Result<()> {
        {
            sqlx::raw_sql("CREATE TABLE IF NOT EXISTS lotse_schema (version BIGINT NOT NULL)").execute(&mut **c).await?;
            let mut version: Option<i64> =
                sqlx::query("SELECT version FROM lotse_schema").fetch_optional(&mut **c).await?.map(|r| r.try_get(0)).transpose()?;
            if version.is_none() {
                // stores made before `lotse_schema` kept their version in SQLite's user_version
                let v = match backend {
                    Backend::Sqlite => sqlx::query("PRAGMA user_version").fetch_one(&mut **c).await?.try_get(0)?,
                    Backend::Postgres => 0,
                };
                sqlx::query("INSERT INTO lotse_schema (version) VALUES ($1)").bind(v).execute(&mut **c).await?;
                version = Some(v);
            }
            let version = version.unwrap_or(0).max(0) as usize;
            // a newer binary migrated it: running on would read and write tables this one
            // does not know (an upgrade rolled back without its backup, an older replica)
            if version > MIGRATIONS.len() {
                return Err(StoreError::Invalid(format!(
                    "the database has schema version {version}, written by a newer Lotse; this binary knows up to {}: \
                     run the newer binary, or restore the backup made before the upgrade",
                    MIGRATIONS.len()
                )));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
                // on the locked connection itself (SQLite's pool has only the one)
                let mut tx = sqlx::Connection::begin(&mut **c).await?;
                let sql = ddl(sql, backend).replace("{now}", &now().to_string());
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
                sqlx::query("UPDATE lotse_schema SET version = $1").bind((i + 1) as i64).execute(&mut *tx).await?;
                tx.commit().await?;
                tracing::info!(version = i + 1, "portal store migrated");
            }
            Ok(())
        }
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64> {
        self.run(async { Ok(sqlx::query("SELECT version FROM lotse_schema").fetch_one(&self.pool).await?.try_get(0)?) })
    }

    /// Write a consistent copy of the whole store to `dest` (which must not exist). SQLite
    /// only; PostgreSQL installations back up with `pg_dump`.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        if self.backend == Backend::Postgres {
            return Err(StoreError::Invalid("the portal database is PostgreSQL: back it up with pg_dump".into()));
        }
        if dest.exists() {
            return Err(StoreError::Exists("backup file"));
        }
        let d = dest.to_string_lossy().to_string();
        self.run(async { Ok(sqlx::query("VACUUM INTO $1").bind(d).execute(&self.pool).await.map(|_| ())?) })
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
        let name = account_name(name);
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
            return Err(StoreError::Invalid("user name must be 1-128 characters without spaces".into()));
        }
        if let Some(g) = groups.iter().find(|g| !valid_group(g)) {
            return Err(StoreError::Invalid(format!("invalid group name {g:?}")));
        }
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let id: i64 = sqlx::query(
                "INSERT INTO users (name, display_name, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&name)
            .bind(display_name)
            .bind(password_hash)
            .bind(role.key())
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, "user"))?
            .try_get(0)?;
            replace_groups(&mut tx, id, groups).await?;
            tx.commit().await?;
            Ok(id)
        })
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
        let name = account_name(name);
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let existing: Option<i64> = sqlx::query("SELECT id FROM users WHERE oidc_subject = $1")
                .bind(subject)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let id = match existing {
                Some(id) => {
                    sqlx::query("UPDATE users SET display_name = $1, role = $2 WHERE id = $3")
                        .bind(display_name)
                        .bind(role.key())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    id
                }
                None => sqlx::query(
                    "INSERT INTO users (name, display_name, oidc_subject, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(&name)
                .bind(display_name)
                .bind(subject)
                .bind(role.key())
                .bind(now())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| unique_violation(e, "user"))?
                .try_get(0)?,
            };
            let valid: Vec<String> = groups.iter().filter(|g| valid_group(g)).cloned().collect();
            replace_groups(&mut tx, id, &valid).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub fn user(&self, id: i64) -> Result<Option<UserInfo>> {
        self.run(async {
            let mut c = self.pool.acquire().await?;
            user_row(&mut c, id).await
        })
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserInfo>> {
        let name = account_name(name);
        self.run(async {
            let mut c = self.pool.acquire().await?;
            let id: Option<i64> = sqlx::query("SELECT id FROM users WHERE name = $1")
                .bind(&name)
                .fetch_optional(&mut *c)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            match id {
                Some(id) => user_row(&mut c, id).await,
                None => Ok(None),
            }
        })
    }

    /// The password hash of an enabled local account.
    pub fn password_hash(&self, name: &str) -> Result<Option<(i64, String)>> {
        let name = account_name(name);
        self.run(async {
            let row = sqlx::query(
                "SELECT id, password_hash FROM users WHERE name = $1 AND disabled = 0 AND password_hash IS NOT NULL",
            )
            .bind(&name)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?))).transpose()?)
        })
    }

    pub fn set_password(&self, user_id: i64, hash: &str) -> Result<()> {
        self.run(async {
            let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
            not_found_if_none(n, "user")
        })
    }

    pub fn users(&self) -> Result<Vec<UserInfo>> {
        self.run(async {
            let mut c = self.pool.acquire().await?;
            let ids: Vec<i64> = sqlx::query("SELECT id FROM users WHERE disabled = 0 ORDER BY name")
                .fetch_all(&mut *c)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<sqlx::Result<_>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(u) = user_row(&mut c, id).await? {
                    out.push(u);
                }
            }
            Ok(out)
        })
    }

    pub fn set_level(&self, user_id: i64, level: Level) -> Result<()> {
        self.run(async {
            let n = sqlx::query("UPDATE users SET level = $1 WHERE id = $2")
                .bind(level.key())
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
            not_found_if_none(n, "user")
        })
    }

    pub fn set_role_and_groups(&self, user_id: i64, role: Role, groups: &[String]) -> Result<()> {
        if let Some(g) = groups.iter().find(|g| !valid_group(g)) {
            return Err(StoreError::Invalid(format!("invalid group name {g:?}")));
        }
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.key())
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            not_found_if_none(n, "user")?;
            replace_groups(&mut tx, user_id, groups).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Disable an account and end its sessions and tokens (its records stay for the audit).
    pub fn disable_user(&self, user_id: i64) -> Result<()> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1").bind(user_id).execute(&mut *tx).await?.rows_affected();
            not_found_if_none(n, "user")?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM api_tokens WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Record a KI-Kompass attempt; a pass raises the level to `level` (never lowers it).
    pub fn record_attempt(&self, user_id: i64, right: usize, total: usize, passed: bool, level: Level) -> Result<Level> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("INSERT INTO kompass_attempts (user_id, at, right_answers, total, passed) VALUES ($1, $2, $3, $4, $5)")
                .bind(user_id)
                .bind(now())
                .bind(right as i64)
                .bind(total as i64)
                .bind(i64::from(passed))
                .execute(&mut *tx)
                .await?;
            let current: String = sqlx::query("SELECT level FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound("user"))?
                .try_get(0)?;
            let current = Level::parse(&current).unwrap_or(Level::None);
            let new = if passed && level > current { level } else { current };
            sqlx::query("UPDATE users SET level = $1 WHERE id = $2").bind(new.key()).bind(user_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(new)
        })
    }

    /// How many KI-Kompass attempts `user_id` handed in since `since` (Unix time), and when
    /// the earliest of them was.
    pub fn attempts_since(&self, user_id: i64, since: i64) -> Result<(i64, Option<i64>)> {
        self.run(async {
            let r = sqlx::query("SELECT COUNT(*), MIN(at) FROM kompass_attempts WHERE user_id = $1 AND at >= $2")
                .bind(user_id)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }

    // ---- sessions and tokens -----------------------------------------------------------

    /// A new session: returns (cookie token, CSRF token). Only the token's hash is stored.
    pub fn create_session(&self, user_id: i64, ttl_secs: i64) -> Result<(String, String)> {
        let token = auth::random_token("");
        let csrf = auth::random_token("");
        let t = now();
        self.run(async {
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(t).execute(&self.pool).await?;
            sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(auth::token_hash(&token))
                .bind(user_id)
                .bind(csrf.as_str())
                .bind(t)
                .bind(t + ttl_secs)
                .execute(&self.pool)
                .await?;
            Ok(())
        })?;
        Ok((token, csrf))
    }

    /// The user and CSRF token of a live session.
    pub fn session(&self, token: &str) -> Result<Option<(UserInfo, String)>> {
        let h = auth::token_hash(token);
        self.run(async {
            let mut c = self.pool.acquire().await?;
            let row = sqlx::query("SELECT user_id, csrf FROM sessions WHERE token_hash = $1 AND expires_at >= $2")
                .bind(h)
                .bind(now())
                .fetch_optional(&mut *c)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let (uid, csrf): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
            Ok(user_row(&mut c, uid).await?.map(|u| (u, csrf)))
        })
    }

    pub fn delete_session(&self, token: &str) -> Result<()> {
        let h = auth::token_hash(token);
        self.run(async {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(h).execute(&self.pool).await?;
            Ok(())
        })
    }

    /// A new API token for `user_id`, valid for [`DEFAULT_TOKEN_DAYS`]; the token is shown
    /// once and stored as a hash.
    pub fn create_token(&self, user_id: i64, name: &str, scopes: &[Scope]) -> Result<String> {
        self.create_token_for(user_id, name, scopes, DEFAULT_TOKEN_DAYS)
    }

    /// A new API token for `user_id`, valid for `days` days (at least one).
    pub fn create_token_for(&self, user_id: i64, name: &str, scopes: &[Scope], days: u32) -> Result<String> {
        if scopes.is_empty() {
            return Err(StoreError::Invalid("a token needs at least one scope".into()));
        }
        let token = auth::random_token("lotse_");
        let s: Vec<&str> = scopes.iter().map(|s| s.key()).collect();
        self.run(async {
            let t = now();
            sqlx::query("INSERT INTO api_tokens (token_hash, name, user_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(auth::token_hash(&token))
                .bind(name)
                .bind(user_id)
                .bind(s.join(","))
                .bind(t)
                .bind(t + i64::from(days.max(1)) * 86_400)
                .execute(&self.pool)
                .await?;
            Ok(())
        })?;
        Ok(token)
    }

    /// The owner and scopes of a token that has not expired.
    pub fn token(&self, token: &str) -> Result<Option<(UserInfo, Vec<Scope>)>> {
        let h = auth::token_hash(token);
        self.run(async {
            let mut c = self.pool.acquire().await?;
            let row = sqlx::query("SELECT user_id, scopes FROM api_tokens WHERE token_hash = $1 AND expires_at >= $2")
                .bind(h.as_str())
                .bind(now())
                .fetch_optional(&mut *c)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let (uid, scopes): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                .bind(now())
                .bind(h.as_str())
                .execute(&mut *c)
                .await?;
            let scopes = scopes.split(',').filter_map(Scope::parse).collect();
            Ok(user_row(&mut c, uid).await?.map(|u| (u, scopes)))
        })
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.run(async {
            let r = sqlx::query(
                "SELECT t.id, t.name, u.name, t.scopes, t.created_at, t.last_used_at, t.expires_at FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows(r, |r| {
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    user: r.try_get(2)?,
                    scopes: r.try_get::<String, _>(3)?.split(',').filter_map(Scope::parse).collect(),
                    created_at: r.try_get(4)?,
                    last_used_at: r.try_get(5)?,
                    expires_at: r.try_get::<Option<i64>, _>(6)?.unwrap_or(0),
                })
            })
        })
    }

    pub fn revoke_token(&self, id: i64) -> Result<()> {
        self.run(async {
            let n = sqlx::query("DELETE FROM api_tokens WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected();
            not_found_if_none(n, "token")
        })
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
        let cid: i64 = self.run(async {
            let mut tx = self.pool.begin().await?;
            let cid = next_id(&mut tx, "collections").await?;
            sqlx::query(
                "INSERT INTO collections (id, title, owner_kind, owner_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(cid)
            .bind(title)
            .bind(kind)
            .bind(id.as_str())
            .bind(created_by)
            .bind(now())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(cid)
        })?;
        self.collection(cid)?.ok_or(StoreError::NotFound("collection"))
    }

    pub fn collection(&self, id: i64) -> Result<Option<Collection>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{COLLECTION_SELECT} WHERE c.id = $1")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(r.as_ref().map(collection_row).transpose()?)
        })
    }

    /// All collections (the caller filters with `authorize`).
    pub fn collections(&self) -> Result<Vec<Collection>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{COLLECTION_SELECT} ORDER BY c.title, c.id"))).fetch_all(&self.pool).await?;
            rows(r, collection_row)
        })
    }

    /// Delete a collection's row (its documents go with it); returns the document ids, whose
    /// index entries the caller removes.
    pub fn delete_collection(&self, id: i64) -> Result<Vec<i64>> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let docs = sqlx::query("SELECT id FROM documents WHERE collection_id = $1").bind(id).fetch_all(&mut *tx).await?;
            let docs = rows(docs, |r| r.try_get(0))?;
            let n = sqlx::query("DELETE FROM collections WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            not_found_if_none(n, "collection")?;
            tx.commit().await?;
            self.forget_deleted().await?;
            Ok(docs)
        })
    }

    /// Every document of every collection (for reconciling the index).
    pub fn all_documents(&self) -> Result<Vec<Document>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{DOCUMENT_SELECT} ORDER BY id"))).fetch_all(&self.pool).await?;
            rows(r, document_row)
        })
    }

    /// The ids of documents whose original file is kept.
    pub fn documents_with_original(&self) -> Result<std::collections::HashSet<i64>> {
        self.run(async {
            let r = sqlx::query("SELECT document_id FROM document_files").fetch_all(&self.pool).await?;
            Ok(rows(r, |r| r.try_get(0))?.into_iter().collect())
        })
    }

    /// The original file of a document, as uploaded.
    pub fn document_original(&self, id: i64) -> Result<Option<Vec<u8>>> {
        self.run(async {
            let r = sqlx::query("SELECT content FROM document_files WHERE document_id = $1").bind(id).fetch_optional(&self.pool).await?;
            Ok(r.map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Make sure ids up to `id` are never given out for `table` (`collections` or
    /// `documents`): the index may hold entries of ids the database no longer knows.
    pub fn reserve_ids_through(&self, table: &'static str, id: i64) -> Result<()> {
        if !matches!(table, "collections" | "documents") {
            return Err(StoreError::Invalid(format!("no id sequence {table:?}")));
        }
        self.run(async {
            sqlx::query("UPDATE lotse_ids SET last_id = $1 WHERE name = $2 AND last_id < $1")
                .bind(id)
                .bind(table)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    /// After a delete: with SQLite, move the WAL into the database file and truncate it, so
    /// that (with `secure_delete`) the deleted bytes are gone from disk, not only unreachable.
    /// PostgreSQL frees them at its next (auto)vacuum.
    async fn forget_deleted(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Uploads that reserved an id but never wrote their row (no hash, no original): while
    /// the caller holds the index writer, which uploads hold from reserving the id until the
    /// row is written, these belong to an upload that died halfway.
    pub fn abandoned_documents(&self) -> Result<Vec<i64>> {
        self.run(async {
            let r = sqlx::query(
                "SELECT d.id FROM documents d WHERE d.sha256 = '' AND NOT EXISTS (SELECT 1 FROM document_files f WHERE f.document_id = d.id) ORDER BY d.id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows(r, |r| r.try_get(0))
        })
    }

    /// The finished documents of a collection (an upload still writing, or one that died
    /// halfway, has no hash yet and is not listed).
    pub fn documents(&self, collection_id: i64) -> Result<Vec<Document>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{DOCUMENT_SELECT} WHERE collection_id = $1 AND sha256 <> '' ORDER BY file_name")))
                .bind(collection_id)
                .fetch_all(&self.pool)
                .await?;
            rows(r, document_row)
        })
    }

    pub fn document(&self, id: i64) -> Result<Option<Document>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{DOCUMENT_SELECT} WHERE id = $1"))).bind(id).fetch_optional(&self.pool).await?;
            Ok(r.as_ref().map(document_row).transpose()?)
        })
    }

    /// The document of this name in the collection, if any (an upload of the same name
    /// replaces it).
    pub fn document_by_name(&self, collection_id: i64, file_name: &str) -> Result<Option<Document>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{DOCUMENT_SELECT} WHERE collection_id = $1 AND file_name = $2")))
                .bind(collection_id)
                .bind(file_name)
                .fetch_optional(&self.pool)
                .await?;
            Ok(r.as_ref().map(document_row).transpose()?)
        })
    }

    /// Reserve a new document's id before indexing (the row is completed by
    /// [`Store::finish_document`] or removed by [`Store::delete_document`]). The collection must
    /// exist; the name must be free in it.
    pub fn reserve_document(&self, collection_id: i64, file_name: &str, kind: &str, title: &str, uploaded_by: Option<i64>) -> Result<i64> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let exists = sqlx::query("SELECT id FROM collections WHERE id = $1").bind(collection_id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Err(StoreError::NotFound("collection"));
            }
            let id = next_id(&mut tx, "documents").await?;
            sqlx::query(
                "INSERT INTO documents (id, collection_id, file_name, kind, title, sha256, bytes, n_chunks, uploaded_by, uploaded_at)
                 VALUES ($1, $2, $3, $4, $5, '', 0, 0, $6, $7)",
            )
            .bind(id)
            .bind(collection_id)
            .bind(file_name)
            .bind(kind)
            .bind(title)
            .bind(uploaded_by)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, "document"))?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Complete (or replace) a document once its chunks are committed: metadata, chunk count
    /// and the original file, in one transaction.
    pub fn finish_document(&self, id: i64, upload: &Upload<'_>, n_chunks: u32) -> Result<()> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let n = sqlx::query(
                "UPDATE documents SET kind = $1, title = $2, sha256 = $3, bytes = $4, n_chunks = $5, uploaded_by = $6, uploaded_at = $7 WHERE id = $8",
            )
            .bind(upload.kind)
            .bind(upload.title)
            .bind(upload.sha256)
            .bind(upload.original.len() as i64)
            .bind(i64::from(n_chunks))
            .bind(upload.uploaded_by)
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            not_found_if_none(n, "document")?;
            sqlx::query(
                "INSERT INTO document_files (document_id, content) VALUES ($1, $2)
                 ON CONFLICT (document_id) DO UPDATE SET content = excluded.content",
            )
            .bind(id)
            .bind(upload.original)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Set a document's chunk count (after its chunks were written again from the original).
    pub fn set_chunks(&self, id: i64, n_chunks: u32) -> Result<()> {
        self.run(async {
            sqlx::query("UPDATE documents SET n_chunks = $1 WHERE id = $2").bind(i64::from(n_chunks)).bind(id).execute(&self.pool).await?;
            Ok(())
        })
    }

    /// Delete a document's row and its original.
    pub fn delete_document(&self, id: i64) -> Result<()> {
        self.run(async {
            let n = sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected();
            not_found_if_none(n, "document")?;
            self.forget_deleted().await
        })
    }

    // ---- chats --------------------------------------------------------------------------

    pub fn create_chat(&self, user_id: i64, title: &str) -> Result<i64> {
        let t = now();
        let title: String = title.chars().take(80).collect();
        self.run(async {
            Ok(sqlx::query("INSERT INTO chats (user_id, title, created_at, updated_at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(user_id)
                .bind(title.as_str())
                .bind(t)
                .bind(t)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?)
        })
    }

    /// Whether the chat belongs to the user.
    pub fn chat_owner(&self, chat_id: i64) -> Result<Option<i64>> {
        self.run(async {
            let r = sqlx::query("SELECT user_id FROM chats WHERE id = $1").bind(chat_id).fetch_optional(&self.pool).await?;
            Ok(r.map(|r| r.try_get(0)).transpose()?)
        })
    }

    pub fn add_message(&self, chat_id: i64, m: &ChatMessage) -> Result<()> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("INSERT INTO chat_messages (chat_id, role, content, sources, model, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(chat_id)
                .bind(m.role.as_str())
                .bind(m.content.as_str())
                .bind(m.sources.to_string())
                .bind(m.model.as_deref())
                .bind(m.at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE chats SET updated_at = $1 WHERE id = $2").bind(m.at).bind(chat_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub fn chats(&self, user_id: i64) -> Result<Vec<ChatSummary>> {
        self.run(async {
            let r = sqlx::query("SELECT id, title, created_at, updated_at FROM chats WHERE user_id = $1 ORDER BY updated_at DESC, id DESC")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
            rows(r, |r| {
                Ok(ChatSummary {
                    id: r.try_get(0)?,
                    title: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    updated_at: r.try_get(3)?,
                })
            })
        })
    }

    pub fn messages(&self, chat_id: i64) -> Result<Vec<ChatMessage>> {
        self.run(async {
            let r = sqlx::query("SELECT role, content, sources, model, at FROM chat_messages WHERE chat_id = $1 ORDER BY id")
                .bind(chat_id)
                .fetch_all(&self.pool)
                .await?;
            rows(r, |r| {
                Ok(ChatMessage {
                    role: r.try_get(0)?,
                    content: r.try_get(1)?,
                    sources: serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or(serde_json::Value::Null),
                    model: r.try_get(3)?,
                    at: r.try_get(4)?,
                })
            })
        })
    }

    pub fn delete_chat(&self, chat_id: i64) -> Result<()> {
        self.run(async {
            sqlx::query("DELETE FROM chats WHERE id = $1").bind(chat_id).execute(&self.pool).await?;
            Ok(())
        })
    }

    pub fn delete_chats_of(&self, user_id: i64) -> Result<usize> {
        self.run(async {
            Ok(sqlx::query("DELETE FROM chats WHERE user_id = $1").bind(user_id).execute(&self.pool).await?.rows_affected() as usize)
        })
    }

    /// Delete chats not touched for `days` days; returns how many.
    pub fn expire_chats(&self, days: u32) -> Result<usize> {
        let cutoff = now() - i64::from(days) * 86_400;
        self.run(async {
            Ok(sqlx::query("DELETE FROM chats WHERE updated_at < $1").bind(cutoff).execute(&self.pool).await?.rows_affected() as usize)
        })
    }

    // ---- prompts ------------------------------------------------------------------------

    pub fn create_prompt(&self, title: &str, body: &str, tags: &[String], group: Option<&str>, owner: i64) -> Result<i64> {
        if title.trim().is_empty() || body.trim().is_empty() {
            return Err(StoreError::Invalid("title and text are required".into()));
        }
        if body.chars().count() > 8000 || title.chars().count() > 200 {
            return Err(StoreError::Invalid("prompt too long".into()));
        }
        self.run(async {
            Ok(sqlx::query(
                "INSERT INTO prompts (title, body, tags, group_name, owner_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(title.trim())
            .bind(body)
            .bind(tags.join(","))
            .bind(group)
            .bind(owner)
            .bind(now())
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
        })
    }

    /// Prompts a user may use: their own and their groups'.
    pub fn prompts_for(&self, user: &UserInfo) -> Result<Vec<Prompt>> {
        let all = self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{PROMPT_SELECT} ORDER BY p.title"))).fetch_all(&self.pool).await?;
            rows(r, prompt_row)
        })?;
        Ok(all
            .into_iter()
            .filter(|(p, owner)| match &p.group {
                Some(g) => user.groups.contains(g),
                None => *owner == Some(user.id),
            })
            .map(|(p, _)| p)
            .collect())
    }

    /// A prompt with its owner id.
    pub fn prompt(&self, id: i64) -> Result<Option<(Prompt, Option<i64>)>> {
        self.run(async {
            let r = sqlx::query(AssertSqlSafe(format!("{PROMPT_SELECT} WHERE p.id = $1"))).bind(id).fetch_optional(&self.pool).await?;
            Ok(r.as_ref().map(prompt_row).transpose()?)
        })
    }

    pub fn delete_prompt(&self, id: i64) -> Result<()> {
        self.run(async {
            let n = sqlx::query("DELETE FROM prompts WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected();
            not_found_if_none(n, "prompt")
        })
    }

    // ---- audit --------------------------------------------------------------------------

    pub fn audit(&self, e: &AuditEntry) -> Result<()> {
        self.run(async {
            sqlx::query(
                "INSERT INTO audit (at, user_id, user_name, groups, action, model, external, collections, prompt_tokens, completion_tokens, outcome, content, target)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(now())
            .bind(e.user_id)
            .bind(e.user_name.as_str())
            .bind(e.groups.join(","))
            .bind(e.action.as_str())
            .bind(e.model.as_deref())
            .bind(i64::from(e.external))
            .bind(e.collections.join(","))
            .bind(e.prompt_tokens)
            .bind(e.completion_tokens)
            .bind(if e.outcome.is_empty() { "ok" } else { e.outcome.as_str() })
            .bind(e.content.as_deref())
            .bind(e.target.as_deref())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// Audit records since `since` (Unix time), newest first, at most `limit`.
    pub fn audit_log(&self, since: i64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.run(async {
            let r = sqlx::query(
                "SELECT id, at, user_name, groups, action, model, external, collections, prompt_tokens, completion_tokens, outcome, content, target
                 FROM audit WHERE at >= $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(since)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            rows(r, |r| {
                Ok(AuditRecord {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    user: r.try_get(2)?,
                    groups: r.try_get(3)?,
                    action: r.try_get(4)?,
                    model: r.try_get(5)?,
                    external: r.try_get::<i64, _>(6)? != 0,
                    collections: r.try_get(7)?,
                    prompt_tokens: r.try_get(8)?,
                    completion_tokens: r.try_get(9)?,
                    outcome: r.try_get(10)?,
                    content: r.try_get(11)?,
                    target: r.try_get(12)?,
                })
            })
        })
    }

    /// Requests and tokens per group and model since `since` (chat requests only). A user in
    /// two groups counts for both; users without a group count under "-".
    pub fn usage(&self, since: i64) -> Result<Vec<Usage>> {
        let counted: Vec<(String, String, i64, i64, i64)> = self.run(async {
            let r = sqlx::query(
                "SELECT groups, COALESCE(model, ''), COUNT(*), CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT)
                 FROM audit WHERE at >= $1 AND action = 'chat' GROUP BY groups, model",
            )
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
            rows(r, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))
        })?;
        let mut map: std::collections::BTreeMap<(String, String), Usage> = Default::default();
        for (groups, model, n, p, comp) in counted {
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

    // ---- what citizens asked (issue 35) -------------------------------------------------

    /// Keep one citizen question (already redacted by the caller); returns its id.
    pub fn add_insight(&self, q: &crate::insights::NewQuestion) -> Result<i64> {
        let question: String = q.question.chars().take(1000).collect();
        let cited = q.cited.join("\n");
        let blob = q.embedding.as_ref().map(|(_, v)| crate::insights::vector_bytes(v));
        let model = q.embedding.as_ref().map(|(m, _)| m.clone());
        self.run(async {
            Ok(sqlx::query(
                "INSERT INTO insights (day, lang, outcome, cited, question, embed_model, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(q.day)
            .bind(q.lang.as_str())
            .bind(q.outcome.key())
            .bind(cited.as_str())
            .bind(question.as_str())
            .bind(model.as_deref())
            .bind(blob)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
        })
    }

    /// A citizen rated the answer to this question down.
    pub fn insight_rated_down(&self, id: i64) -> Result<()> {
        self.run(async {
            sqlx::query("UPDATE insights SET outcome = 'rated_down' WHERE id = $1").bind(id).execute(&self.pool).await?;
            Ok(())
        })
    }

    /// The questions of day `from` on (day numbers), oldest first, at most `limit` (the newest).
    pub fn insights_since(&self, from: i64, limit: usize) -> Result<Vec<crate::insights::StoredQuestion>> {
        self.run(async {
            let r = sqlx::query(
                "SELECT id, day, lang, outcome, cited, question, embed_model, embedding, done_day FROM insights WHERE day >= $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(from)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
            let mut out = rows(r, |r| {
                let cited: String = r.try_get(4)?;
                let blob: Option<Vec<u8>> = r.try_get(7)?;
                let model: Option<String> = r.try_get(6)?;
                Ok(crate::insights::StoredQuestion {
                    id: r.try_get(0)?,
                    day: r.try_get(1)?,
                    lang: r.try_get(2)?,
                    outcome: crate::insights::Outcome::from_key(&r.try_get::<String, _>(3)?),
                    cited: cited.lines().filter(|l| !l.is_empty()).map(str::to_string).collect(),
                    question: r.try_get(5)?,
                    embedding: model.zip(blob.map(|b| crate::insights::bytes_vector(&b))),
                    done_day: r.try_get(8)?,
                })
            })?;
            out.reverse();
            Ok(out)
        })
    }

    /// Mark questions as dealt with on `day` (the website was changed), or clear the mark.
    pub fn mark_insights_done(&self, ids: &[i64], day: Option<i64>) -> Result<()> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            for id in ids {
                sqlx::query("UPDATE insights SET done_day = $1 WHERE id = $2").bind(day).bind(*id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Delete one question.
    pub fn delete_insight(&self, id: i64) -> Result<()> {
        self.run(async {
            let n = sqlx::query("DELETE FROM insights WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected();
            not_found_if_none(n, "question")?;
            self.forget_deleted().await
        })
    }

    /// Delete every question; returns how many.
    pub fn delete_all_insights(&self) -> Result<usize> {
        self.run(async {
            let n = sqlx::query("DELETE FROM insights").execute(&self.pool).await?.rows_affected();
            self.forget_deleted().await?;
            Ok(n as usize)
        })
    }

    /// Delete questions asked before day `before` (retention); returns how many.
    pub fn expire_insights(&self, before: i64) -> Result<usize> {
        self.run(async {
            let n = sqlx::query("DELETE FROM insights WHERE day < $1").bind(before).execute(&self.pool).await?.rows_affected();
            if n > 0 {
                self.forget_deleted().await?;
            }
            Ok(n as usize)
        })
    }

    // ---- AI register --------------------------------------------------------------------

    /// Add or replace the register entry of this name.
    pub fn put_register(&self, e: &RegisterEntry) -> Result<()> {
        for (field, v) in [("name", &e.name), ("model", &e.model), ("purpose", &e.purpose), ("provider", &e.provider), ("risk_class", &e.risk_class), ("responsible", &e.responsible)] {
            if v.trim().is_empty() {
                return Err(StoreError::Invalid(format!("{field} is required")));
            }
        }
        self.run(async {
            sqlx::query(
                "INSERT INTO ai_register (name, model, purpose, provider, risk_class, responsible, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE SET model = excluded.model, purpose = excluded.purpose, provider = excluded.provider,
                   risk_class = excluded.risk_class, responsible = excluded.responsible, updated_at = excluded.updated_at",
            )
            .bind(e.name.trim())
            .bind(e.model.as_str())
            .bind(e.purpose.as_str())
            .bind(e.provider.as_str())
            .bind(e.risk_class.as_str())
            .bind(e.responsible.as_str())
            .bind(now())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// Add the entry only if there is none of this name (start-up seeding keeps edits).
    pub fn seed_register(&self, e: &RegisterEntry) -> Result<()> {
        let exists = self.run(async {
            Ok(sqlx::query("SELECT id FROM ai_register WHERE name = $1").bind(e.name.as_str()).fetch_optional(&self.pool).await?.is_some())
        })?;
        if !exists {
            self.put_register(e)?;
        }
        Ok(())
    }

    pub fn register(&self) -> Result<Vec<RegisterEntry>> {
        self.run(async {
            let r = sqlx::query("SELECT name, model, purpose, provider, risk_class, responsible, updated_at FROM ai_register ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
            rows(r, |r| {
                Ok(RegisterEntry {
                    name: r.try_get(0)?,
                    model: r.try_get(1)?,
                    purpose: r.try_get(2)?,
                    provider: r.try_get(3)?,
                    risk_class: r.try_get(4)?,
                    responsible: r.try_get(5)?,
                    updated_at: r.try_get(6)?,
                })
            })
        })
    }

    pub fn delete_register(&self, name: &str) -> Result<()> {
        self.run(async {
            let n = sqlx::query("DELETE FROM ai_register WHERE name = $1").bind(name).execute(&self.pool).await?.rows_affected();
            not_found_if_none(n, "register entry")
        })
    }
}

/// Run `fut` on a small runtime of its own, on a thread of its own (callers may be inside a
/// runtime).
fn on_own_runtime<T: Send>(fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Invalid(format!("runtime: {e}")))?;
            rt.block_on(fut)
        })
        .join()
        .unwrap_or(Err(StoreError::Invalid("a database task panicked".into())))
    })
}

/// Write a consistent copy of the SQLite file `src` (the database, or a legacy rewrite or
/// feedback file not imported yet) to `dest`, which must not exist, with `VACUUM INTO`: safe while a server writes.
pub fn snapshot_sqlite(src: &Path, dest: &Path) -> Result<()> {
    if !src.is_file() {
        return Err(StoreError::NotFound("database file"));
    }
    if dest.exists() {
        return Err(StoreError::Exists("backup file"));
    }
    sqlx::any::install_default_drivers();
    let url = sqlite_url(src).replace("mode=rwc", "mode=rw");
    let d = dest.to_string_lossy().to_string();
    on_own_runtime(async move {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&url).await?;
        sqlx::query("VACUUM INTO $1").bind(d).execute(&mut c).await?;
        c.close().await?;
        Ok(())
    })
}

/// Check a SQLite file with `PRAGMA integrity_check` (a restore verifies each file first).
pub fn check_sqlite(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(StoreError::NotFound("database file"));
    }
    sqlx::any::install_default_drivers();
    // read-write (never created): a copy in WAL mode cannot be opened read-only without its
    // shared-memory file; the check itself writes nothing
    let url = sqlite_url(path).replace("mode=rwc", "mode=rw");
    on_own_runtime(async move {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&url).await?;
        let r: String = sqlx::query("PRAGMA integrity_check").fetch_one(&mut c).await?.try_get(0)?;
        c.close().await?;
        if r == "ok" { Ok(()) } else { Err(StoreError::Invalid(format!("integrity check: {r}"))) }
    })
}

/// Stores for tests: SQLite in a directory, or, when `LOTSE_TEST_POSTGRES` names a
/// PostgreSQL server (`postgres://USER:PASSWORD@127.0.0.1/postgres`), a fresh database of its
/// own there, so that the same tests run against both backends (`.ci/run` does both).
pub mod testing {
    use super::*;

    /// The environment variable naming the PostgreSQL server for tests.
    pub const POSTGRES_ENV: &str = "LOTSE_TEST_POSTGRES";

    /// A new, empty store for one test.
    pub fn open(dir: &Path) -> Store {
        match std::env::var(POSTGRES_ENV) {
            Ok(server) if !server.trim().is_empty() => {
                let url = fresh_database(server.trim()).expect("a fresh PostgreSQL test database");
                Store::connect(&url).expect("the PostgreSQL test store")
            }
            _ => Store::open(&dir.join("portal.sqlite")).expect("the SQLite test store"),
        }
    }

    /// Create a database with a random name on `server`; returns its URL.
    pub fn fresh_database(server: &str) -> Result<String> {
        let name = format!("lotse_test_{}", &auth::random_token("")[..16]);
        let mut url = url::Url::parse(server).map_err(|e| StoreError::Invalid(format!("{POSTGRES_ENV}: {e}")))?;
        sqlx::any::install_default_drivers();
        let create = async {
            use sqlx::Connection;
            let mut c = sqlx::AnyConnection::connect(server).await?;
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await?;
            c.close().await
        };
        // a runtime of its own, on a thread of its own: callers may be inside a runtime
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Invalid(format!("runtime: {e}")))?;
                Ok::<_, StoreError>(rt.block_on(create)?)
            })
            .join()
            .unwrap_or(Err(StoreError::Invalid("database creation panicked".into())))
        })?;
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }
}

/// Rows as CSV (RFC 4180 quoting), header first. A cell that a spreadsheet would read as a
/// formula (`=HYPERLINK(...)`, `+`, `-`, `@`, a tab or carriage return first) gets a leading
/// `'`, so a name or purpose typed by a user can never run in the admin's spreadsheet
/// (OWASP "CSV injection").
pub fn to_csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let quote = |s: &str| {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            std::borrow::Cow::Owned(format!("'{s}"))
        } else {
            std::borrow::Cow::Borrowed(s)
        };
        let s = s.as_ref();
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
        let s = testing::open(d.path());
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
    fn a_database_of_a_newer_version_is_refused_not_used() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("portal.sqlite");
        let s = Store::open(&p).unwrap();
        let newer = MIGRATIONS.len() as i64 + 1;
        s.run(async { Ok(sqlx::query("UPDATE lotse_schema SET version = $1").bind(newer).execute(&s.pool).await.map(|_| ())?) })
            .unwrap();
        drop(s);
        let e = Store::open(&p).unwrap_err().to_string();
        assert!(e.contains(&format!("schema version {newer}")) && e.contains("newer Lotse"), "{e}");
        // nothing was changed: a second start is refused the same way
        assert!(Store::open(&p).unwrap_err().to_string().contains(&format!("schema version {newer}")));
    }

    #[test]
    fn tokens_expire_and_old_ones_get_days_from_the_migration() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("portal.sqlite");
        let s = Store::open(&p).unwrap();
        let id = s.create_user("cms", "CMS", None, Role::Staff, &[]).unwrap();
        let t = s.create_token_for(id, "cms", &[Scope::Simplify], 7).unwrap();
        let listed = &s.tokens().unwrap()[0];
        assert!((listed.expires_at - now() - 7 * 86_400).abs() < 60, "{listed:?}");
        assert!(s.token(&t).unwrap().is_some());
        s.run(async { Ok(sqlx::query("UPDATE api_tokens SET expires_at = $1").bind(now() - 1).execute(&s.pool).await?) }).unwrap();
        assert!(s.token(&t).unwrap().is_none(), "an expired token no longer works");
        // a store of schema 3 (tokens without expiry): migration 4 gives them 90 days
        s.run(async {
            sqlx::raw_sql("ALTER TABLE api_tokens DROP COLUMN expires_at; ALTER TABLE audit DROP COLUMN target; DROP TABLE insights; \
                 DROP TABLE rewrites; DROP TABLE rewrite_reviews; DROP TABLE rewrite_units; DROP TABLE ratings; DROP TABLE lotse_imports; \
                 DROP TABLE answer_records; DROP TABLE lotse_leases; UPDATE lotse_schema SET version = 3")
                .execute(&s.pool)
                .await?;
            Ok(())
        })
        .unwrap();
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert!(s.token(&t).unwrap().is_some());
        assert!((s.tokens().unwrap()[0].expires_at - now() - 90 * 86_400).abs() < 60);
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
        // SQLite's VACUUM INTO (PostgreSQL is backed up with pg_dump)
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("portal.sqlite")).unwrap();
        s.create_user("c", "C", None, Role::Admin, &[]).unwrap();
        // the rewrites, the decisions on them and the ratings are in the same database
        let page = NewRewrite { key: "k", slot: "http://t/a/", content_hash: "h", model: "m", rules_version: "r", created_at: 1, result: "{}" };
        s.put_rewrite(&page).unwrap();
        let decision = s.set_rewrite_review("k", "approved", "c", "[]", 2).unwrap();
        s.put_unit("u", 9, "x").unwrap();
        let rating = Rating { answer_id: "a".into(), helpful: false, model: "m".into(), refused: false, cited: vec![], question: None, at: 3 };
        s.add_rating(&rating).unwrap();
        let b = d.path().join("backup.sqlite");
        s.backup(&b).unwrap();
        let copy = Store::open(&b).unwrap();
        assert!(copy.user_by_name("c").unwrap().is_some());
        assert_eq!(copy.rewrite("k").unwrap().as_deref(), Some("{}"));
        assert_eq!(copy.rewrite_review("k").unwrap(), Some(decision));
        assert_eq!(copy.unit("u").unwrap().as_deref(), Some("x"));
        assert_eq!(copy.ratings().unwrap(), vec![rating]);
        assert!(s.backup(&b).is_err(), "never overwrites");
    }

    #[test]
    fn ids_are_never_given_out_twice_and_originals_go_with_their_document() {
        let (_d, s) = store();
        let owner = Owner::Group("bauamt".into());
        let a = s.create_collection("A", &owner, None).unwrap();
        let d1 = s.reserve_document(a.id, "x.txt", "text", "x", None).unwrap();
        let up = Upload { kind: "text", title: "x", sha256: "00", original: b"Originaltext \x00\xff bytes", uploaded_by: None };
        s.finish_document(d1, &up, 3).unwrap();
        assert_eq!(s.document_original(d1).unwrap().unwrap(), up.original);
        assert_eq!(s.document(d1).unwrap().unwrap().bytes, up.original.len() as i64);
        assert!(matches!(s.reserve_document(a.id, "x.txt", "text", "x", None), Err(StoreError::Exists(_))));
        s.delete_collection(a.id).unwrap();
        assert!(s.document_original(d1).unwrap().is_none(), "the original goes with its collection");
        assert!(matches!(s.reserve_document(a.id, "y.txt", "text", "y", None), Err(StoreError::NotFound(_))));
        let b = s.create_collection("B", &owner, None).unwrap();
        assert!(b.id > a.id, "{} after {}", b.id, a.id);
        let d2 = s.reserve_document(b.id, "x.txt", "text", "x", None).unwrap();
        assert!(d2 > d1);
        s.delete_document(d2).unwrap();
        let d3 = s.reserve_document(b.id, "x.txt", "text", "x", None).unwrap();
        assert!(d3 > d2);
        s.reserve_ids_through("collections", b.id + 10).unwrap();
        assert!(s.create_collection("C", &owner, None).unwrap().id > b.id + 10);
        assert!(s.reserve_ids_through("users", 5).is_err());
    }

    #[test]
    fn a_store_of_schema_1_migrates_and_keeps_its_data() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("portal.sqlite");
        {
            // a database as the first release left it: migration 1 only
            sqlx::any::install_default_drivers();
            let url = sqlite_url(&p);
            on_own_runtime(async move {
                use sqlx::Connection;
                let mut c = sqlx::AnyConnection::connect(&url).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "{} CREATE TABLE lotse_schema (version BIGINT NOT NULL); INSERT INTO lotse_schema VALUES (1);
                     INSERT INTO collections (id, title, owner_kind, owner_id, created_at) VALUES (4, 'Alt', 'group', 'bauamt', 0);
                     INSERT INTO documents (id, collection_id, file_name, kind, title, sha256, bytes, n_chunks, uploaded_at)
                       VALUES (9, 4, 'a.txt', 'text', 'A', 'ff', 3, 1, 0);",
                    MIGRATIONS[0]
                )))
                .execute(&mut c)
                .await?;
                c.close().await?;
                Ok(())
            })
            .unwrap();
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(s.collection(4).unwrap().unwrap().title, "Alt");
        assert_eq!(s.document(9).unwrap().unwrap().file_name, "a.txt");
        assert!(s.document_original(9).unwrap().is_none(), "no original was kept before");
        assert!(s.create_collection("Neu", &Owner::Group("bauamt".into()), None).unwrap().id > 4);
        assert!(s.reserve_document(4, "b.txt", "text", "b", None).unwrap() > 9);
    }

    #[test]
    fn insights_are_kept_marked_deleted_and_expire() {
        use crate::insights::{NewQuestion, Outcome};
        let (_d, s) = store();
        let add = |day: i64, outcome: Outcome, text: &str, emb: Option<(String, Vec<f32>)>| {
            s.add_insight(&NewQuestion { day, lang: "de".into(), outcome, cited: vec!["http://town.test/a/".into()], question: text.into(), embedding: emb })
                .unwrap()
        };
        let old = add(100, Outcome::Refused, "Sperrmüll anmelden?", None);
        let a = add(200, Outcome::Answered, "Hundesteuer?", Some(("e5".into(), vec![0.25, -1.0])));
        let b = add(201, Outcome::Hedged, "Bücherei?", None);
        s.insight_rated_down(a).unwrap();
        let all = s.insights_since(0, 100).unwrap();
        assert_eq!(all.iter().map(|q| q.id).collect::<Vec<_>>(), vec![old, a, b], "oldest first");
        assert_eq!(all[1].outcome, Outcome::RatedDown);
        assert_eq!(all[1].embedding, Some(("e5".into(), vec![0.25, -1.0])));
        assert_eq!(all[0].cited, vec!["http://town.test/a/".to_string()]);
        s.mark_insights_done(&[b], Some(202)).unwrap();
        assert_eq!(s.insights_since(201, 100).unwrap()[0].done_day, Some(202));
        // retention: everything before day 150 goes
        assert_eq!(s.expire_insights(150).unwrap(), 1);
        assert_eq!(s.insights_since(0, 100).unwrap().len(), 2);
        s.delete_insight(a).unwrap();
        assert!(matches!(s.delete_insight(a), Err(StoreError::NotFound(_))));
        assert_eq!(s.delete_all_insights().unwrap(), 1);
        assert!(s.insights_since(0, 100).unwrap().is_empty());
    }

    #[test]
    fn prompt_variables_are_found() {
        assert_eq!(prompt_variables("Schreibe an {empfaenger} zum {thema}, {thema}! {} {a b}"), vec!["empfaenger", "thema"]);
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(to_csv(&["a", "b"], &[vec!["x,y".into(), "q\"".into()]]), "a,b\r\n\"x,y\",\"q\"\"\"\r\n");
        // formulas are defused
        assert_eq!(
            to_csv(&["a"], &[vec!["=HYPERLINK(\"http://x\",\"y\")".into()], vec!["@SUM(1)".into()], vec!["-2+3".into()], vec!["Frau Meier".into()]]),
            "a\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\n'@SUM(1)\r\n'-2+3\r\nFrau Meier\r\n"
        );
    }
}
