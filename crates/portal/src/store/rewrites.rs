//! The rewrite cache of Einfache Sprache (one row per page slot and content version), the
//! unit cache (one row per rewritten unit) and staff decisions on the rewrites of legal texts,
//! as rows: the typed layer (`SimplifiedPage`, `ReviewStatus`) is the server's
//! (`lotse_server::rewrites`), so this crate needs nothing of `lotse-simplify`.
//!
//! Invariants (formerly `simplify.sqlite`'s):
//! - a rewrite is written in one transaction that also removes the older rows of its slot
//!   (a page URL, or `cms:<url>` for text the CMS sent), so a re-crawl that changes a page
//!   replaces its rewrite and a crash leaves either the old or the new row;
//! - a decision holds for the text staff read: writing a rewrite (again) deletes the decisions
//!   on its slot and its key, removing a page deletes its decisions, and listing the rewrites
//!   for review sweeps decisions whose rewrite is gone;
//! - a decision is only ever recorded on a stored rewrite;
//! - unit rows of another unit version can never be hit again: [`Store::purge_units`]
//!   deletes them (the server calls it when it opens the rewrite store).

use sqlx::Row;

use super::{Result, Store, StoreError};

/// A rewrite to store: the page's JSON and the columns it is found by.
#[derive(Debug, Clone, Copy)]
pub struct NewRewrite<'a> {
    /// The cache key (content hash, model and rules version).
    pub key: &'a str,
    /// The page URL, or `cms:<url>` for text the CMS sent.
    pub slot: &'a str,
    pub content_hash: &'a str,
    pub model: &'a str,
    pub rules_version: &'a str,
    /// Unix time.
    pub created_at: i64,
    /// The rewritten page as JSON.
    pub result: &'a str,
}

/// A staff decision on a stored rewrite, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReview {
    pub key: String,
    /// The rewrite's slot.
    pub url: String,
    /// `approved`, `rejected`, … (the simplify crate's `ReviewStatus::key`).
    pub status: String,
    pub reviewer: String,
    /// Unix time.
    pub decided_at: i64,
    /// The blocks corrected on approval, as JSON.
    pub corrections: String,
}

fn review_row(r: &sqlx::any::AnyRow) -> sqlx::Result<StoredReview> {
    Ok(StoredReview {
        key: r.try_get(0)?,
        url: r.try_get(1)?,
        status: r.try_get(2)?,
        reviewer: r.try_get(3)?,
        decided_at: r.try_get(4)?,
        corrections: r.try_get(5)?,
    })
}

/// A row of `rewrites w LEFT JOIN rewrite_reviews r`: `w.key, w.result, r.key, r.url,
/// r.status, r.reviewer, r.decided_at, r.corrections`.
fn joined_review_row(r: &sqlx::any::AnyRow) -> sqlx::Result<(String, String, Option<StoredReview>)> {
    let review = match r.try_get::<Option<String>, _>(2)? {
        Some(key) => Some(StoredReview {
            key,
            url: r.try_get(3)?,
            status: r.try_get(4)?,
            reviewer: r.try_get(5)?,
            decided_at: r.try_get(6)?,
            corrections: r.try_get(7)?,
        }),
        None => None,
    };
    Ok((r.try_get(0)?, r.try_get(1)?, review))
}

const REVIEW_SELECT: &str = "SELECT key, url, status, reviewer, decided_at, corrections FROM rewrite_reviews";

impl Store {
    /// The page JSON stored under `key`.
    pub fn rewrite(&self, key: &str) -> Result<Option<String>> {
        self.run(async {
            let row = sqlx::query("SELECT result FROM rewrites WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Whether a rewrite is stored under `key`.
    pub fn has_rewrite(&self, key: &str) -> Result<bool> {
        self.run(async {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM rewrites WHERE key = $1").bind(key).fetch_one(&self.pool).await?.try_get(0)?;
            Ok(n > 0)
        })
    }

    /// Store a rewrite, in one transaction that replaces every older rewrite of its slot and
    /// deletes the decisions on its slot and its key.
    pub fn put_rewrite(&self, w: &NewRewrite<'_>) -> Result<()> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM rewrites WHERE url = $1 AND key <> $2").bind(w.slot).bind(w.key).execute(&mut *tx).await?;
            // a decision holds for the text staff read: a new or newly written text has none
            sqlx::query("DELETE FROM rewrite_reviews WHERE url = $1 OR key = $2").bind(w.slot).bind(w.key).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO rewrites (key, url, content_hash, model, rules_version, created_at, result)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (key) DO UPDATE SET url = excluded.url, content_hash = excluded.content_hash,
                     model = excluded.model, rules_version = excluded.rules_version,
                     created_at = excluded.created_at, result = excluded.result",
            )
            .bind(w.key)
            .bind(w.slot)
            .bind(w.content_hash)
            .bind(w.model)
            .bind(w.rules_version)
            .bind(w.created_at)
            .bind(w.result)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Forget the rewrites of a slot (the page is gone from the site) and the decisions on
    /// them; returns the rewrites deleted.
    pub fn remove_rewrites(&self, slot: &str) -> Result<usize> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM rewrite_reviews WHERE url = $1").bind(slot).execute(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM rewrites WHERE url = $1").bind(slot).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(n as usize)
        })
    }

    /// The slots with a stored rewrite, sorted.
    pub fn rewrite_urls(&self) -> Result<Vec<String>> {
        self.run(async {
            let rows = sqlx::query("SELECT DISTINCT url FROM rewrites ORDER BY url").fetch_all(&self.pool).await?;
            super::rows(rows, |r| r.try_get(0))
        })
    }

    /// Record a staff decision on the rewrite stored under `key` (replacing an earlier one).
    /// [`StoreError::NotFound`] when no rewrite is stored under `key`: a decision is always on
    /// a text staff saw.
    pub fn set_rewrite_review(&self, key: &str, status: &str, reviewer: &str, corrections: &str, decided_at: i64) -> Result<StoredReview> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let url: Option<String> = sqlx::query("SELECT url FROM rewrites WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
            let Some(url) = url else { return Err(StoreError::NotFound("rewrite")) };
            sqlx::query(
                "INSERT INTO rewrite_reviews (key, url, status, reviewer, decided_at, corrections) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key) DO UPDATE SET url = excluded.url, status = excluded.status, reviewer = excluded.reviewer,
                     decided_at = excluded.decided_at, corrections = excluded.corrections",
            )
            .bind(key)
            .bind(url.as_str())
            .bind(status)
            .bind(reviewer)
            .bind(decided_at)
            .bind(corrections)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(StoredReview {
                key: key.to_string(),
                url,
                status: status.to_string(),
                reviewer: reviewer.to_string(),
                decided_at,
                corrections: corrections.to_string(),
            })
        })
    }

    /// The decision on the rewrite stored under `key`, if any.
    pub fn rewrite_review(&self, key: &str) -> Result<Option<StoredReview>> {
        self.run(async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("{REVIEW_SELECT} WHERE key = $1"))).bind(key).fetch_optional(&self.pool).await?;
            Ok(row.as_ref().map(review_row).transpose()?)
        })
    }

    /// The rewrites stored under `keys` (those found, in no order), each with its page JSON
    /// and decision: one query for what a click on a legal text reads.
    pub fn rewrites_with_reviews(&self, keys: &[&str]) -> Result<Vec<(String, String, Option<StoredReview>)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT w.key, w.result, r.key, r.url, r.status, r.reviewer, r.decided_at, r.corrections
             FROM rewrites w LEFT JOIN rewrite_reviews r ON r.key = w.key
             WHERE w.key IN ({})",
            marks.join(", ")
        );
        self.run(async {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in keys {
                q = q.bind(*k);
            }
            let rows = q.fetch_all(&self.pool).await?;
            super::rows(rows, joined_review_row)
        })
    }

    /// The rewrites of `rules_version` in page slots (not `cms:` or `rules:`), newest first,
    /// with their keys and decisions: what staff may review (the caller keeps the legal texts
    /// with a model rewrite). Decisions whose rewrite is gone are swept first.
    pub fn rewrites_for_review(&self, rules_version: &str) -> Result<Vec<(String, String, Option<StoredReview>)>> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM rewrite_reviews WHERE key NOT IN (SELECT key FROM rewrites)").execute(&mut *tx).await?;
            let rows = sqlx::query(
                "SELECT w.key, w.result, r.key, r.url, r.status, r.reviewer, r.decided_at, r.corrections
                 FROM rewrites w LEFT JOIN rewrite_reviews r ON r.key = w.key
                 WHERE w.rules_version = $1 AND w.url NOT LIKE 'cms:%' AND w.url NOT LIKE 'rules:%'
                 ORDER BY w.created_at DESC, w.key",
            )
            .bind(rules_version)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            super::rows(rows, joined_review_row)
        })
    }

    // ---- unit cache ----------------------------------------------------------------------

    /// The outcome stored for a unit.
    pub fn unit(&self, key: &str) -> Result<Option<String>> {
        self.run(async {
            let row = sqlx::query("SELECT outcome FROM rewrite_units WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
            Ok(row.map(|r| r.try_get(0)).transpose()?)
        })
    }

    /// Store a unit's outcome (replacing an earlier one).
    pub fn put_unit(&self, key: &str, unit_version: i64, outcome: &str) -> Result<()> {
        self.run(async {
            sqlx::query(
                "INSERT INTO rewrite_units (key, unit_version, created_at, outcome) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET unit_version = excluded.unit_version,
                     created_at = excluded.created_at, outcome = excluded.outcome",
            )
            .bind(key)
            .bind(unit_version)
            .bind(super::now())
            .bind(outcome)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// Delete the unit rows of every other unit version; returns how many.
    pub fn purge_units(&self, unit_version: i64) -> Result<usize> {
        self.run(async {
            let n = sqlx::query("DELETE FROM rewrite_units WHERE unit_version <> $1").bind(unit_version).execute(&self.pool).await?;
            Ok(n.rows_affected() as usize)
        })
    }

    /// Unit outcomes stored (for reports and tests).
    pub fn unit_count(&self) -> Result<usize> {
        self.run(async {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM rewrite_units").fetch_one(&self.pool).await?.try_get(0)?;
            Ok(n as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    fn put(s: &Store, key: &str, slot: &str, rules: &str, at: i64) {
        let result = format!("{{\"key\":\"{key}\"}}");
        s.put_rewrite(&NewRewrite { key, slot, content_hash: "h", model: "m", rules_version: rules, created_at: at, result: &result }).unwrap();
    }

    #[test]
    fn a_rewrite_replaces_its_slot_and_takes_the_decisions_with_it() {
        let d = tempfile::tempdir().unwrap();
        let s = testing::open(d.path());
        assert!(matches!(s.set_rewrite_review("k1", "approved", "anna", "[]", 1), Err(StoreError::NotFound(_))), "no decision on a text nobody saw");
        put(&s, "k1", "http://t/a/", "r1", 10);
        put(&s, "c1", "cms:http://t/a/", "r1", 11);
        assert!(s.has_rewrite("k1").unwrap());
        assert_eq!(s.rewrite("k1").unwrap().as_deref(), Some("{\"key\":\"k1\"}"));
        let d1 = s.set_rewrite_review("k1", "approved", "anna", "[{\"index\":0}]", 5).unwrap();
        assert_eq!(s.rewrite_review("k1").unwrap(), Some(d1.clone()));
        let listed = s.rewrites_for_review("r1").unwrap();
        assert_eq!(listed, vec![("k1".to_string(), "{\"key\":\"k1\"}".to_string(), Some(d1))], "cms: slots are not reviewed");
        assert!(s.rewrites_for_review("r0").unwrap().is_empty(), "other rules versions do not count");

        // a changed page: the new row replaces the old one and its decision, in one transaction
        put(&s, "k2", "http://t/a/", "r1", 20);
        assert_eq!(s.rewrite("k1").unwrap(), None);
        assert_eq!(s.rewrite_review("k1").unwrap(), None);
        assert!(s.has_rewrite("c1").unwrap(), "the CMS slot is kept apart");
        // the same key written again: the decision goes
        s.set_rewrite_review("k2", "rejected", "ben", "[]", 6).unwrap();
        put(&s, "k2", "http://t/a/", "r1", 21);
        assert_eq!(s.rewrite_review("k2").unwrap(), None);
        s.set_rewrite_review("k2", "approved", "ben", "[]", 7).unwrap();
        assert_eq!(s.rewrite_urls().unwrap(), vec!["cms:http://t/a/".to_string(), "http://t/a/".to_string()]);
        assert_eq!(s.remove_rewrites("http://t/a/").unwrap(), 1);
        assert_eq!(s.rewrite_review("k2").unwrap(), None, "a page that is gone takes its decision");
        assert_eq!(s.rewrite_urls().unwrap(), vec!["cms:http://t/a/".to_string()]);
    }

    #[test]
    fn units_of_another_version_are_purged() {
        let d = tempfile::tempdir().unwrap();
        let s = testing::open(d.path());
        s.put_unit("u1", 8, "old").unwrap();
        s.put_unit("u2", 9, "new").unwrap();
        s.put_unit("u2", 9, "newer").unwrap();
        assert_eq!(s.unit_count().unwrap(), 2);
        assert_eq!(s.purge_units(9).unwrap(), 1);
        assert_eq!((s.unit("u1").unwrap(), s.unit("u2").unwrap().as_deref()), (None, Some("newer")));
    }
}
