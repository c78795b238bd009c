//! Upgrade in place: before issue 33.4 the rewrite cache with the staff decisions
//! (`simplify.sqlite`) and the ratings (`feedback.sqlite`) were SQLite files of their own in
//! the data directory. [`Store::import_legacy`] copies every row of such a file into this
//! store (SQLite or PostgreSQL) and renames the file to `<name>.imported`.
//!
//! Design decision: each file is imported in one transaction that first records the file's
//! SHA-256 in `lotse_imports`; a file whose digest is recorded is never imported again (a
//! crash between the commit and the rename, a second process, the same file restored from an
//! old backup), so the import is idempotent and ratings are never counted twice. Rewrites,
//! decisions and unit rows already present under the same key are kept (they are newer).
//! The renamed file stays as it was: nothing is deleted.
//!
//! A file with a write-ahead log or shared-memory file beside it (`-wal`, `-shm`) is skipped
//! with a warning: a server of the older version may still be running on it, and rows it
//! writes after the import would be lost. Once that server stopped (it folds its log into the
//! file), the next start imports the file. A file that cannot be read is skipped with an
//! error in the log and left where it is; the server starts all the same (the rewrites are a
//! cache, and nothing of the file is lost).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Result, Store, StoreError, now, sqlite_url};

/// The files of the stores before issue 33.4, in the data directory.
pub const LEGACY_FILES: &[&str] = &["simplify.sqlite", "feedback.sqlite"];

/// What [`Store::import_legacy`] brought in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub rewrites: usize,
    pub reviews: usize,
    pub units: usize,
    pub ratings: usize,
    /// Where the imported files are now (`<name>.imported`).
    pub files: Vec<PathBuf>,
    /// Legacy files left in place (unreadable, or with `-wal`/`-shm` beside them).
    pub skipped: Vec<PathBuf>,
}

/// The rows of one legacy file.
#[derive(Default)]
struct Rows {
    rewrites: Vec<AnyRow>,
    reviews: Vec<AnyRow>,
    units: Vec<AnyRow>,
    ratings: Vec<AnyRow>,
}

async fn read_legacy(path: &Path) -> Result<Rows> {
    use sqlx::Connection;
    let url = sqlite_url(path).replace("mode=rwc", "mode=rw");
    let mut c = sqlx::AnyConnection::connect(&url).await?;
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(&mut c)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<sqlx::Result<_>>()?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    let mut rows = Rows::default();
    if has("rewrites") {
        rows.rewrites = sqlx::query("SELECT key, url, content_hash, model, rules_version, created_at, result FROM rewrites")
            .fetch_all(&mut c)
            .await?;
    }
    if has("reviews") {
        // stores made before reviews took corrections have no such column
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM pragma_table_info('reviews') WHERE name = 'corrections'")
            .fetch_one(&mut c)
            .await?
            .try_get(0)?;
        let corrections = if n > 0 { "corrections" } else { "'[]'" };
        rows.reviews = sqlx::query(AssertSqlSafe(format!(
            "SELECT key, url, status, reviewer, decided_at, {corrections} FROM reviews"
        )))
        .fetch_all(&mut c)
        .await?;
    }
    if has("units") {
        rows.units = sqlx::query("SELECT key, unit_version, created_at, outcome FROM units").fetch_all(&mut c).await?;
    }
    if has("ratings") {
        rows.ratings = sqlx::query("SELECT answer_id, helpful, model, refused, cited, question, at FROM ratings ORDER BY id")
            .fetch_all(&mut c)
            .await?;
    }
    // a clean close folds a write-ahead log into the file (its digest below covers it)
    c.close().await?;
    Ok(rows)
}

fn file_digest(path: &Path) -> Result<String> {
    let unreadable = |e: std::io::Error| StoreError::Invalid(format!("cannot read {}: {e}", path.display()));
    let mut f = std::fs::File::open(path).map_err(unreadable)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(unreadable)?;
    Ok(hex::encode(h.finalize()))
}

impl Store {
    /// Import the legacy files of `data` ([`LEGACY_FILES`]) that are still there, each once,
    /// in one transaction, then rename each to `<name>.imported` (see the module docs).
    pub fn import_legacy(&self, data: &Path) -> Result<Imported> {
        let mut out = Imported::default();
        for name in LEGACY_FILES {
            let path = data.join(name);
            if !path.is_file() {
                continue;
            }
            let sidecars = ["-wal", "-shm"].map(|s| data.join(format!("{name}{s}")));
            if sidecars.iter().any(|p| p.exists()) {
                tracing::warn!(
                    file = %path.display(),
                    "not importing a store of an older version while its -wal/-shm files exist: stop the older server (it folds them into the file), then start again"
                );
                out.skipped.push(path);
                continue;
            }
            let read = self.run(read_legacy(&path)).and_then(|rows| Ok((rows, file_digest(&path)?)));
            let (rows, digest) = match read {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot read a store of an older version; it is left in place and not imported");
                    out.skipped.push(path);
                    continue;
                }
            };
            let total = rows.rewrites.len() + rows.reviews.len() + rows.units.len() + rows.ratings.len();
            let done = self.run(async {
                let mut tx = self.pool.begin().await?;
                // the first write: a second importer waits here and then finds the mark
                let marked = sqlx::query(
                    "INSERT INTO lotse_imports (sha256, name, at, row_count) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
                )
                .bind(digest.as_str())
                .bind(*name)
                .bind(now())
                .bind(total as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let mut n = Imported::default();
                for r in &rows.rewrites {
                    let q = sqlx::query(
                        "INSERT INTO rewrites (key, url, content_hash, model, rules_version, created_at, result)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(r.try_get::<String, _>(0)?)
                    .bind(r.try_get::<String, _>(1)?)
                    .bind(r.try_get::<String, _>(2)?)
                    .bind(r.try_get::<String, _>(3)?)
                    .bind(r.try_get::<String, _>(4)?)
                    .bind(r.try_get::<i64, _>(5)?)
                    .bind(r.try_get::<String, _>(6)?);
                    n.rewrites += q.execute(&mut *tx).await?.rows_affected() as usize;
                }
                for r in &rows.reviews {
                    let q = sqlx::query(
                        "INSERT INTO rewrite_reviews (key, url, status, reviewer, decided_at, corrections)
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(r.try_get::<String, _>(0)?)
                    .bind(r.try_get::<String, _>(1)?)
                    .bind(r.try_get::<String, _>(2)?)
                    .bind(r.try_get::<String, _>(3)?)
                    .bind(r.try_get::<i64, _>(4)?)
                    .bind(r.try_get::<String, _>(5)?);
                    n.reviews += q.execute(&mut *tx).await?.rows_affected() as usize;
                }
                for r in &rows.units {
                    let q = sqlx::query(
                        "INSERT INTO rewrite_units (key, unit_version, created_at, outcome) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(r.try_get::<String, _>(0)?)
                    .bind(r.try_get::<i64, _>(1)?)
                    .bind(r.try_get::<i64, _>(2)?)
                    .bind(r.try_get::<String, _>(3)?);
                    n.units += q.execute(&mut *tx).await?.rows_affected() as usize;
                }
                for r in &rows.ratings {
                    let q = sqlx::query(
                        "INSERT INTO ratings (answer_id, helpful, model, refused, cited, question, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(r.try_get::<String, _>(0)?)
                    .bind(r.try_get::<i64, _>(1)?)
                    .bind(r.try_get::<String, _>(2)?)
                    .bind(r.try_get::<i64, _>(3)?)
                    .bind(r.try_get::<String, _>(4)?)
                    .bind(r.try_get::<Option<String>, _>(5)?)
                    .bind(r.try_get::<i64, _>(6)?);
                    n.ratings += q.execute(&mut *tx).await?.rows_affected() as usize;
                }
                tx.commit().await?;
                Ok(Some(n))
            })?;
            if let Some(n) = done {
                tracing::info!(file = %path.display(), rewrites = n.rewrites, reviews = n.reviews, units = n.units, ratings = n.ratings, "legacy store imported");
                out.rewrites += n.rewrites;
                out.reviews += n.reviews;
                out.units += n.units;
                out.ratings += n.ratings;
            }
            let mut to = data.join(format!("{name}.imported"));
            if to.exists() {
                to = data.join(format!("{name}.imported-{}", now()));
            }
            match std::fs::rename(&path, &to) {
                Ok(()) => out.files.push(to),
                // imported all the same: the mark keeps it from being imported twice
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot rename an imported legacy store"),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy-data");

    /// A copy of the fixture: a data directory written by the code before issue 33.4.
    fn legacy_data() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in ["portal.sqlite", "simplify.sqlite", "feedback.sqlite"] {
            std::fs::copy(Path::new(FIXTURE).join(f), d.path().join(f)).unwrap();
        }
        d
    }

    fn open(data: &Path) -> Store {
        match std::env::var(testing::POSTGRES_ENV) {
            Ok(s) if !s.trim().is_empty() => testing::open(data),
            // the fixture's own portal database, migrated from schema 5
            _ => Store::open(&data.join("portal.sqlite")).unwrap(),
        }
    }

    #[test]
    fn a_data_directory_of_the_old_stores_is_imported_once() {
        let d = legacy_data();
        let s = open(d.path());
        let n = s.import_legacy(d.path()).unwrap();
        assert_eq!((n.rewrites, n.reviews, n.units, n.ratings, n.files.len()), (3, 2, 1, 2, 2), "{n:?}");
        assert!(!d.path().join("simplify.sqlite").exists() && d.path().join("simplify.sqlite.imported").is_file());
        assert!(!d.path().join("feedback.sqlite").exists() && d.path().join("feedback.sqlite.imported").is_file());
        if s.backend() == super::super::Backend::Sqlite {
            assert!(s.user_by_name("anna").unwrap().is_some(), "the portal's own rows stay");
        }

        // every rewrite, approval and rating
        assert_eq!(s.rewrite_urls().unwrap(), vec![
            "cms:http://town.test/news/".to_string(),
            "http://town.test/gebuehren/".to_string(),
            "http://town.test/satzung/".to_string(),
        ]);
        let listed = s.rewrites_for_review(RULES).unwrap();
        assert_eq!(listed.len(), 2, "{listed:?}");
        let by_url = |u: &str| listed.iter().find(|(_, j, _)| j.contains(u)).unwrap().clone();
        let (k1, page, d1) = by_url("http://town.test/satzung/");
        assert!(page.contains("legal_text"), "{page}");
        let d1 = d1.expect("the approval");
        assert_eq!((d1.key.as_str(), d1.status.as_str(), d1.reviewer.as_str()), (k1.as_str(), "approved", "anna"));
        assert!(d1.corrections.contains("Die Steuer ist am 1. Juli fällig."), "{}", d1.corrections);
        let d2 = by_url("http://town.test/gebuehren/").2.expect("the rejection");
        assert_eq!((d2.status.as_str(), d2.reviewer.as_str()), ("rejected", "ben"));
        assert_eq!(s.unit("unit-1").unwrap().as_deref(), Some("{\"fixture\":true}"));
        let ratings = s.ratings().unwrap();
        assert_eq!(ratings.len(), 2);
        assert_eq!((ratings[0].answer_id.as_str(), ratings[0].helpful, ratings[0].refused), ("a1", true, false));
        assert_eq!(ratings[0].cited, vec!["http://town.test/satzung/".to_string()]);
        assert_eq!((ratings[1].answer_id.as_str(), ratings[1].helpful, ratings[1].refused), ("a2", false, true));
        assert_eq!(ratings[1].question.as_deref(), Some("Wann hat das Rathaus offen?"));
        assert_eq!(ratings[1].at, 1_700_000_100);

        // again: nothing left to import; the same file put back (an old backup) is not
        // imported twice
        assert_eq!(s.import_legacy(d.path()).unwrap(), Imported::default());
        std::fs::copy(d.path().join("feedback.sqlite.imported"), d.path().join("feedback.sqlite")).unwrap();
        let again = s.import_legacy(d.path()).unwrap();
        assert_eq!((again.ratings, again.files.len()), (0, 1));
        assert_eq!(s.ratings().unwrap().len(), 2);
        drop(s);
        let s = open(d.path());
        if s.backend() == super::super::Backend::Sqlite {
            assert_eq!(s.ratings().unwrap().len(), 2, "kept across reopening");
        }
    }

    #[test]
    fn a_store_with_a_write_ahead_log_or_unreadable_is_left_in_place_and_nothing_fails() {
        let d = legacy_data();
        let s = open(d.path());
        // an older server still running on the rewrite store: its -wal exists
        std::fs::write(d.path().join("simplify.sqlite-wal"), b"").unwrap();
        // the ratings file damaged
        std::fs::write(d.path().join("feedback.sqlite"), b"this is not a database, just some text that is long enough").unwrap();
        let n = s.import_legacy(d.path()).unwrap();
        assert_eq!((n.rewrites, n.ratings, n.files.len(), n.skipped.len()), (0, 0, 0, 2), "{n:?}");
        assert!(d.path().join("simplify.sqlite").is_file() && d.path().join("feedback.sqlite").is_file());
        assert!(s.rewrite_urls().unwrap().is_empty());
        // the older server stopped (its log folded): the next start imports the rewrites
        std::fs::remove_file(d.path().join("simplify.sqlite-wal")).unwrap();
        let n = s.import_legacy(d.path()).unwrap();
        assert_eq!((n.rewrites, n.reviews, n.files.len(), n.skipped.len()), (3, 2, 1, 1), "{n:?}");
    }

    #[test]
    fn a_rewrite_store_from_before_corrections_is_imported() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("simplify.sqlite");
        on_sqlite(&old, "CREATE TABLE rewrites (key TEXT PRIMARY KEY, url TEXT NOT NULL, content_hash TEXT NOT NULL,
                 model TEXT NOT NULL, rules_version TEXT NOT NULL, created_at INTEGER NOT NULL, result TEXT NOT NULL);
             CREATE TABLE reviews (key TEXT PRIMARY KEY, url TEXT NOT NULL, status TEXT NOT NULL,
                 reviewer TEXT NOT NULL, decided_at INTEGER NOT NULL);
             INSERT INTO rewrites VALUES ('k', 'http://town.test/s/', 'h', 'm', 'r', 1, '{}');
             INSERT INTO reviews VALUES ('k', 'http://town.test/s/', 'approved', 'anna', 1);");
        let s = testing::open(d.path());
        let n = s.import_legacy(d.path()).unwrap();
        assert_eq!((n.rewrites, n.reviews), (1, 1));
        let r = s.rewrite_review("k").unwrap().unwrap();
        assert_eq!((r.status.as_str(), r.corrections.as_str()), ("approved", "[]"));
    }

    fn on_sqlite(path: &Path, sql: &'static str) {
        let url = sqlite_url(path);
        super::super::on_own_runtime(async move {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut c = sqlx::AnyConnection::connect(&url).await?;
            sqlx::raw_sql(sql).execute(&mut c).await?;
            c.close().await?;
            Ok(())
        })
        .unwrap();
    }

    /// The rules version the fixture's rewrites were written with.
    const RULES: &str = "14-62052888";
}
