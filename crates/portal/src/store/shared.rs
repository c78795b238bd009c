//! State that replicas of `lotse serve` share through the one database (issue 34.2): the
//! records of given answers that ratings look up (so a thumbs-down sent to another replica
//! than the one that answered still finds its answer) and leases for background work that
//! should run on one replica at a time.
//!
//! An answer record holds the model, whether it was a refusal, the cited URLs and the row of
//! the recorded question: never the question or the answer. Records are kept for a day.

use sqlx::Row;

use super::{Result, Store};

/// What a server remembers of an answer it gave (for its rating).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRecordRow {
    pub model: String,
    pub refused: bool,
    pub cited: Vec<String>,
    /// The recorded question (`insights`), once linked.
    pub insight_id: Option<i64>,
    /// Unix time of the (last) answer with this id.
    pub at: i64,
}

impl Store {
    /// Remember an answer. The same answer given again (a cached one: the same id) is a new
    /// citizen's: the link to the earlier citizen's question is dropped, the new one follows.
    pub fn put_answer_record(&self, answer_id: &str, model: &str, refused: bool, cited: &[String]) -> Result<()> {
        let cited = serde_json::to_string(cited).unwrap_or_else(|_| "[]".into());
        self.run(async {
            sqlx::query(
                "INSERT INTO answer_records (answer_id, model, refused, cited, at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (answer_id) DO UPDATE SET model = excluded.model, refused = excluded.refused,
                 cited = excluded.cited, at = excluded.at, insight_id = NULL",
            )
            .bind(answer_id)
            .bind(model)
            .bind(i64::from(refused))
            .bind(cited.as_str())
            .bind(super::now())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// The record of `answer_id`, if remembered within the day.
    pub fn answer_record(&self, answer_id: &str) -> Result<Option<AnswerRecordRow>> {
        self.run(async {
            let row = sqlx::query("SELECT model, refused, cited, insight_id, at FROM answer_records WHERE answer_id = $1 AND at >= $2")
                .bind(answer_id)
                .bind(super::now() - RECORD_SECS)
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let cited: String = row.try_get(2)?;
            Ok(Some(AnswerRecordRow {
                model: row.try_get(0)?,
                refused: row.try_get::<i64, _>(1)? != 0,
                cited: serde_json::from_str(&cited).unwrap_or_default(),
                insight_id: row.try_get(3)?,
                at: row.try_get(4)?,
            }))
        })
    }

    /// The question of `answer_id` was recorded as insights row `insight_id`.
    pub fn link_answer_insight(&self, answer_id: &str, insight_id: i64) -> Result<()> {
        self.run(async {
            sqlx::query("UPDATE answer_records SET insight_id = $1 WHERE answer_id = $2")
                .bind(insight_id)
                .bind(answer_id)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    /// Insights row `insight_id` was deleted (`None`: all of them): no record may lead a
    /// later rating to a row that reuses the id.
    pub fn unlink_answer_insights(&self, insight_id: Option<i64>) -> Result<()> {
        self.run(async {
            match insight_id {
                Some(id) => sqlx::query("UPDATE answer_records SET insight_id = NULL WHERE insight_id = $1").bind(id).execute(&self.pool).await?,
                None => sqlx::query("UPDATE answer_records SET insight_id = NULL WHERE insight_id IS NOT NULL").execute(&self.pool).await?,
            };
            Ok(())
        })
    }

    /// Forget answer records older than a day. Returns how many went.
    pub fn expire_answer_records(&self) -> Result<u64> {
        self.run(async {
            let n = sqlx::query("DELETE FROM answer_records WHERE at < $1")
                .bind(super::now() - RECORD_SECS)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n)
        })
    }

    /// Take or renew the lease `name` for `holder` for `secs` seconds. True when `holder`
    /// holds it now: it held it already, nobody did, or the last holder let it expire (a
    /// replica that died gives up its leases after at most `secs`).
    pub fn try_lease(&self, name: &str, holder: &str, secs: i64) -> Result<bool> {
        self.run(async {
            let now = super::now();
            sqlx::query("INSERT INTO lotse_leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(holder)
                .bind(now + secs)
                .execute(&self.pool)
                .await?;
            let n = sqlx::query("UPDATE lotse_leases SET holder = $1, expires_at = $2 WHERE name = $3 AND (holder = $1 OR expires_at < $4)")
                .bind(holder)
                .bind(now + secs)
                .bind(name)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Give the lease `name` up, if `holder` holds it.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.run(async {
            sqlx::query("DELETE FROM lotse_leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }
}

/// How long answer records are kept: ratings come minutes after the answer, a day is plenty.
pub const RECORD_SECS: i64 = 24 * 3600;

#[cfg(test)]
mod tests {
    use crate::store::testing;

    #[test]
    fn answer_records_are_shared_and_keep_their_question_row() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::open(dir.path());
        let what = "answer records";
        {
            assert_eq!(s.answer_record("a1").unwrap(), None, "{what}");
            s.put_answer_record("a1", "m", false, &["https://x.de/a".to_string()]).unwrap();
            s.link_answer_insight("a1", 7).unwrap();
            let r = s.answer_record("a1").unwrap().expect(what);
            assert_eq!((r.model.as_str(), r.refused, r.cited.clone(), r.insight_id), ("m", false, vec!["https://x.de/a".to_string()], Some(7)), "{what}");
            // the same answer given again (the same id, another citizen): no longer the
            // earlier citizen's question
            s.put_answer_record("a1", "m", false, &["https://x.de/a".to_string()]).unwrap();
            assert_eq!(s.answer_record("a1").unwrap().unwrap().insight_id, None, "{what}");
            s.link_answer_insight("a1", 7).unwrap();
            s.unlink_answer_insights(Some(7)).unwrap();
            assert_eq!(s.answer_record("a1").unwrap().unwrap().insight_id, None, "{what}");
            assert_eq!(s.expire_answer_records().unwrap(), 0, "{what}");
        }
    }

    #[test]
    fn a_lease_has_one_holder_until_it_expires_or_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let s = testing::open(dir.path());
        let what = "leases";
        {
            assert!(s.try_lease("work", "a", 60).unwrap(), "{what}");
            assert!(s.try_lease("work", "a", 60).unwrap(), "{what}: renewed");
            assert!(!s.try_lease("work", "b", 60).unwrap(), "{what}: held by a");
            s.release_lease("work", "b").unwrap();
            assert!(!s.try_lease("work", "b", 60).unwrap(), "{what}: only the holder releases");
            s.release_lease("work", "a").unwrap();
            assert!(s.try_lease("work", "b", 60).unwrap(), "{what}: released");
            // an expired lease goes to whoever asks
            assert!(s.try_lease("short", "a", -1).unwrap(), "{what}");
            assert!(s.try_lease("short", "b", 60).unwrap(), "{what}: expired");
        }
    }
}
