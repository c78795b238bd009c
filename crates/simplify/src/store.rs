//! The persistent rewrite cache: one SQLite file (`simplify.sqlite` in the data directory),
//! one row per page and content version, and the unit cache (one row per unit outcome, see
//! [`crate::UnitCache`]).
//!
//! Staff decisions on the rewrites of legal texts (`reviews`) are keyed like the rewrites, by
//! content, model and rules version, and deleted whenever their rewrite is written again or
//! replaced: a decision only ever covers the text staff read.
//!
//! Invariants: a row is written in one transaction that also removes the page's older rows,
//! so a re-crawl that changes a page replaces its rewrite and a crash leaves either the old
//! or the new row; readers never see half a result. Unit rows of another `UNIT_VERSION` can
//! never be hit again and are deleted when the store opens.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{BlockCorrection, Result, ReviewDecision, ReviewStatus, SimplifiedPage, SimplifyError};

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
             CREATE TABLE IF NOT EXISTS reviews (
                 key TEXT PRIMARY KEY,
                 url TEXT NOT NULL,
                 status TEXT NOT NULL,
                 reviewer TEXT NOT NULL,
                 decided_at INTEGER NOT NULL,
                 corrections TEXT NOT NULL DEFAULT '[]'
             );
             CREATE TABLE IF NOT EXISTS units (
                 key TEXT PRIMARY KEY,
                 unit_version INTEGER NOT NULL,
                 created_at INTEGER NOT NULL,
                 outcome TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        // a store made before reviews took corrections
        let has_corrections: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('reviews') WHERE name = 'corrections'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if !has_corrections
            && let Err(e) = conn.execute(
                "ALTER TABLE reviews ADD COLUMN corrections TEXT NOT NULL DEFAULT '[]'",
                [],
            )
            // another process (server and CLI) may have added it a moment ago
            && !e.to_string().contains("duplicate column")
        {
            return Err(err(e));
        }
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
        // a decision holds for the text staff read: a new or newly written text has none
        tx.execute(
            "DELETE FROM reviews WHERE url = ?1 OR key = ?2",
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
        let conn = self.conn();
        conn.execute("DELETE FROM reviews WHERE url = ?1", [url])
            .map_err(|e| self.err(e))?;
        conn.execute("DELETE FROM rewrites WHERE url = ?1", [url])
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

    /// Record a staff decision on the rewrite stored under `key` (replacing an earlier one),
    /// with the blocks corrected on approval (checked by the caller: [`crate::apply_corrections`]).
    /// Fails when no rewrite is stored under `key`: a decision is always on a text staff saw.
    pub fn set_review(
        &self,
        key: &str,
        status: ReviewStatus,
        reviewer: &str,
        corrections: &[BlockCorrection],
    ) -> Result<ReviewDecision> {
        let corrections_json = serde_json::to_string(corrections).map_err(|e| self.err(e))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let url: Option<String> = tx
            .query_row("SELECT url FROM rewrites WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(url) = url else {
            return Err(self.err(format!("no rewrite is stored under {key}")));
        };
        tx.execute(
            "INSERT OR REPLACE INTO reviews (key, url, status, reviewer, decided_at, corrections) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key, url, status.key(), reviewer, now as i64, corrections_json],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ReviewDecision {
            key: key.to_string(),
            url,
            status,
            reviewer: reviewer.to_string(),
            decided_at: now,
            corrections: corrections.to_vec(),
        })
    }

    /// The staff decision on the rewrite stored under `key`, if any.
    pub fn review(&self, key: &str) -> Result<Option<ReviewDecision>> {
        let row: Option<(String, String, String, i64, String)> = self
            .conn()
            .query_row(
                "SELECT url, status, reviewer, decided_at, corrections FROM reviews WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((url, status, reviewer, at, corrections)) = row else {
            return Ok(None);
        };
        let Some(status) = ReviewStatus::parse(&status) else {
            return Ok(None);
        };
        // unreadable corrections (a damaged row, a newer binary's format): never an approval of
        // a text other than the one staff approved; the rewrite waits for a review again
        let (status, corrections) = match serde_json::from_str(&corrections) {
            Ok(c) => (status, c),
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable corrections of a review; treating it as pending");
                (ReviewStatus::Pending, Vec::new())
            }
        };
        Ok(Some(ReviewDecision {
            key: key.to_string(),
            url,
            status,
            reviewer,
            decided_at: at as u64,
            corrections,
        }))
    }

    /// Stored rewrites of legal texts by the model, with their cache keys and the decisions
    /// on them, newest first: what staff review. Only rows of `rules_version` (the current
    /// rules) count. (A decision goes with its rewrite: `put_in` and `remove_url` delete it;
    /// the sweep here catches rows of older versions.)
    pub fn legal_rewrites(
        &self,
        rules_version: &str,
    ) -> Result<Vec<(String, SimplifiedPage, Option<ReviewDecision>)>> {
        let rows: Vec<(String, String)> = {
            let conn = self.conn();
            conn.execute(
                "DELETE FROM reviews WHERE key NOT IN (SELECT key FROM rewrites)",
                [],
            )
            .map_err(|e| self.err(e))?;
            let mut stmt = conn
                .prepare(
                    "SELECT key, result FROM rewrites WHERE rules_version = ?1 \
                     AND url NOT LIKE 'cms:%' AND url NOT LIKE 'rules:%' ORDER BY created_at DESC",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([rules_version], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.err(e))?;
            rows.collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| self.err(e))?
        };
        let mut out = Vec::new();
        for (key, json) in rows {
            let Ok(page) = serde_json::from_str::<SimplifiedPage>(&json) else {
                continue;
            };
            if page.legal_text && page.has_model_rewrite() {
                let decision = self.review(&key)?;
                out.push((key, page, decision));
            }
        }
        Ok(out)
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
