//! The rewrite store of Einfache Sprache in the one database (`lotse_portal::store`): the
//! typed layer over its rows (pages as `SimplifiedPage` JSON, decisions as `ReviewDecision`),
//! so `lotse-simplify` stays free of IO and `lotse-portal` needs nothing of it. The
//! invariants (one transaction replaces a slot's older rows, a decision goes with its text,
//! unit rows of another `UNIT_VERSION` deleted on open) are the store's: see
//! `lotse_portal::store::rewrites`.

use std::path::Path;
use std::sync::Arc;

use lotse_portal::store::{NewRewrite, Store, StoreError, StoredReview};
use lotse_simplify::{BlockCorrection, ReviewDecision, ReviewStatus, SimplifiedPage, SimplifyError, UNIT_VERSION};

type Result<T> = lotse_simplify::Result<T>;

/// The rewrite cache, the unit cache and the staff decisions.
#[derive(Debug, Clone)]
pub struct RewriteStore {
    db: Arc<Store>,
}

fn err(e: impl std::fmt::Display) -> SimplifyError {
    SimplifyError::Store { path: "database".into(), message: e.to_string() }
}

impl RewriteStore {
    /// The rewrite store in `db`; unit rows of another `UNIT_VERSION` are deleted.
    pub fn new(db: Arc<Store>) -> Result<RewriteStore> {
        db.purge_units(i64::from(UNIT_VERSION)).map_err(err)?;
        Ok(RewriteStore { db })
    }

    /// A SQLite database of its own at `path` (tests, benchmarks); created when missing.
    pub fn open(path: &Path) -> Result<RewriteStore> {
        let db = Store::open(path).map_err(|e| SimplifyError::Store { path: path.display().to_string(), message: e.to_string() })?;
        RewriteStore::new(Arc::new(db))
    }

    /// The database it lives in.
    pub fn database(&self) -> &Arc<Store> {
        &self.db
    }

    /// The result stored under `key`.
    pub fn get(&self, key: &str) -> Result<Option<SimplifiedPage>> {
        match self.db.rewrite(key).map_err(err)? {
            Some(j) => serde_json::from_str(&j).map(Some).map_err(err),
            None => Ok(None),
        }
    }

    /// Whether a result is stored under `key`.
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.db.has_rewrite(key).map_err(err)
    }

    /// Store `page` under `key`, replacing every older rewrite of the same URL.
    pub fn put(&self, key: &str, page: &SimplifiedPage) -> Result<()> {
        self.put_in(key, &page.url, page)
    }

    /// Store `page` under `key`, replacing every older rewrite in `slot` (a page URL, or
    /// `cms:<url>` for text the CMS sent, so it never displaces the crawled page's rewrite).
    pub fn put_in(&self, key: &str, slot: &str, page: &SimplifiedPage) -> Result<()> {
        let json = serde_json::to_string(page).map_err(err)?;
        self.db
            .put_rewrite(&NewRewrite {
                key,
                slot,
                content_hash: &page.content_hash,
                model: &page.model,
                rules_version: &page.rules_version,
                created_at: page.generated_at as i64,
                result: &json,
            })
            .map_err(err)
    }

    /// Forget the rewrites of a page (it is gone from the site).
    pub fn remove_url(&self, url: &str) -> Result<usize> {
        self.db.remove_rewrites(url).map_err(err)
    }

    /// Unit outcomes stored (for reports and tests).
    pub fn unit_count(&self) -> Result<usize> {
        self.db.unit_count().map_err(err)
    }

    /// Record a staff decision on the rewrite stored under `key` (replacing an earlier one),
    /// with the blocks corrected on approval (checked by the caller:
    /// [`lotse_simplify::apply_corrections`]). Fails when no rewrite is stored under `key`: a
    /// decision is always on a text staff saw.
    pub fn set_review(&self, key: &str, status: ReviewStatus, reviewer: &str, corrections: &[BlockCorrection]) -> Result<ReviewDecision> {
        let json = serde_json::to_string(corrections).map_err(err)?;
        let now = lotse_portal::store::now();
        let stored = self.db.set_rewrite_review(key, status.key(), reviewer, &json, now).map_err(|e| match e {
            StoreError::NotFound(_) => err(format!("no rewrite is stored under {key}")),
            e => err(e),
        })?;
        Ok(ReviewDecision {
            key: key.to_string(),
            url: stored.url,
            status,
            reviewer: reviewer.to_string(),
            decided_at: now.max(0) as u64,
            corrections: corrections.to_vec(),
        })
    }

    /// The staff decision on the rewrite stored under `key`, if any.
    pub fn review(&self, key: &str) -> Result<Option<ReviewDecision>> {
        Ok(self.db.rewrite_review(key).map_err(err)?.and_then(decision))
    }

    /// The results stored under `keys` (those found, in no order), each with the decision on
    /// it: one database round trip.
    pub fn get_with_reviews(&self, keys: &[&str]) -> Result<Vec<(String, SimplifiedPage, Option<ReviewDecision>)>> {
        let mut out = Vec::new();
        for (key, json, review) in self.db.rewrites_with_reviews(keys).map_err(err)? {
            let page = serde_json::from_str(&json).map_err(err)?;
            out.push((key, page, review.and_then(decision)));
        }
        Ok(out)
    }

    /// Stored rewrites of legal texts by the model, with their cache keys and the decisions
    /// on them, newest first: what staff review. Only rows of `rules_version` (the current
    /// rules) count.
    pub fn legal_rewrites(&self, rules_version: &str) -> Result<Vec<(String, SimplifiedPage, Option<ReviewDecision>)>> {
        let mut out = Vec::new();
        for (key, json, review) in self.db.rewrites_for_review(rules_version).map_err(err)? {
            let Ok(page) = serde_json::from_str::<SimplifiedPage>(&json) else {
                continue;
            };
            if page.legal_text && page.has_model_rewrite() {
                out.push((key, page, review.and_then(decision)));
            }
        }
        Ok(out)
    }

    /// URLs with a stored rewrite.
    pub fn urls(&self) -> Result<Vec<String>> {
        self.db.rewrite_urls().map_err(err)
    }
}

/// A stored decision as the review policy reads it; `None` for a status this binary does not
/// know.
fn decision(r: StoredReview) -> Option<ReviewDecision> {
    let status = ReviewStatus::parse(&r.status)?;
    // unreadable corrections (a damaged row, a newer binary's format): never an approval of
    // a text other than the one staff approved; the rewrite waits for a review again
    let (status, corrections) = match serde_json::from_str(&r.corrections) {
        Ok(c) => (status, c),
        Err(e) => {
            tracing::warn!(key = %r.key, error = %e, "unreadable corrections of a review; treating it as pending");
            (ReviewStatus::Pending, Vec::new())
        }
    };
    Some(ReviewDecision { key: r.key, url: r.url, status, reviewer: r.reviewer, decided_at: r.decided_at.max(0) as u64, corrections })
}

impl lotse_simplify::UnitCache for RewriteStore {
    fn get_unit(&self, key: &str) -> Option<String> {
        self.db.unit(key).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unit cache read failed; rewriting the unit");
            None
        })
    }

    fn put_unit(&self, key: &str, value: &str) {
        if let Err(e) = self.db.put_unit(key, i64::from(UNIT_VERSION), value) {
            tracing::warn!(error = %e, "unit cache write failed");
        }
    }
}
