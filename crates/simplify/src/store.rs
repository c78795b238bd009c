//! The persistent rewrite cache: one SQLite file (`simplify.sqlite` in the data directory),
//! one row per page and content version, and the unit cache (one row per unit outcome, see
//! [`crate::UnitCache`]).
//!
//! Invariants: a row is written in one transaction that also removes the page's older rows,
//! so a re-crawl that changes a page replaces its rewrite and a crash leaves either the old
//! or the new row; readers never see half a result. Unit rows of another `UNIT_VERSION` can
//! never be hit again and are deleted when the store opens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, SimplifiedPage, SimplifyError};

/// The rewrite cache.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let err = |e: rusqlite::Error| SimplifyError::Store {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SimplifyError::Store {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS rewrites (
                 key TEXT PRIMARY KEY,
                 url TEXT NOT NULL,
                 content_hash TEXT NOT NULL,
                 model TEXT NOT NULL,
                 rules_version TEXT NOT NULL,
                 created_at INTEGER NOT NULL,
                 result TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS rewrites_url ON rewrites(url);
             CREATE TABLE IF NOT EXISTS units (
                 key TEXT PRIMARY KEY,
                 unit_version INTEGER NOT NULL,
                 created_at INTEGER NOT NULL,
                 outcome TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        conn.execute(
            "DELETE FROM units WHERE unit_version <> ?1",
            [crate::UNIT_VERSION],
        )
        .map_err(err)?;
        Ok(Store {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> SimplifyError {
        SimplifyError::Store {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The result stored under `key`.
    pub fn get(&self, key: &str) -> Result<Option<SimplifiedPage>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT result FROM rewrites WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match json {
            Some(j) => serde_json::from_str(&j).map(Some).map_err(|e| self.err(e)),
            None => Ok(None),
        }
    }

    /// Whether a result is stored under `key`.
    pub fn contains(&self, key: &str) -> Result<bool> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM rewrites WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Store `page` under `key`, replacing every older rewrite of the same URL.
    pub fn put(&self, key: &str, page: &SimplifiedPage) -> Result<()> {
        self.put_in(key, &page.url, page)
    }

    /// Store `page` under `key`, replacing every older rewrite in `slot` (a page URL, or
    /// `cms:<url>` for text the CMS sent, so it never displaces the crawled page's rewrite).
    pub fn put_in(&self, key: &str, slot: &str, page: &SimplifiedPage) -> Result<()> {
        let json = serde_json::to_string(page).map_err(|e| self.err(e))?;
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM rewrites WHERE url = ?1 AND key <> ?2",
            params![slot, key],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO rewrites (key, url, content_hash, model, rules_version, created_at, result)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key,
                slot,
                page.content_hash,
                page.model,
                page.rules_version,
                page.generated_at as i64,
                json
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Forget the rewrites of a page (it is gone from the site).
    pub fn remove_url(&self, url: &str) -> Result<usize> {
        self.conn()
            .execute("DELETE FROM rewrites WHERE url = ?1", [url])
            .map_err(|e| self.err(e))
    }

    /// Unit outcomes stored (for reports and tests).
    pub fn unit_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM units", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }

    /// URLs with a stored rewrite.
    pub fn urls(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT DISTINCT url FROM rewrites ORDER BY url")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }
}

impl crate::UnitCache for Store {
    fn get_unit(&self, key: &str) -> Option<String> {
        self.conn()
            .query_row("SELECT outcome FROM units WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "unit cache read failed; rewriting the unit");
                None
            })
    }

    fn put_unit(&self, key: &str, value: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Err(e) = self.conn().execute(
            "INSERT OR REPLACE INTO units (key, unit_version, created_at, outcome) VALUES (?1, ?2, ?3, ?4)",
            params![key, crate::UNIT_VERSION, now, value],
        ) {
            tracing::warn!(path = %self.path.display(), error = %e, "unit cache write failed");
        }
    }
}
