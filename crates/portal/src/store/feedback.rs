//! Citizens' thumbs up/down under answers (`POST /api/v1/feedback`; formerly
//! `feedback.sqlite`). What is stored about the answer comes from the server's own record of
//! it; the question's text only when the town switches `[feedback] store_question` on.

use serde::Serialize;
use sqlx::Row;

use super::{Result, Store};

/// One stored rating.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub answer_id: String,
    pub helpful: bool,
    pub model: String,
    pub refused: bool,
    pub cited: Vec<String>,
    pub question: Option<String>,
    /// Unix time.
    pub at: u64,
}

impl Store {
    /// Store a rating.
    pub fn add_rating(&self, r: &Rating) -> Result<()> {
        let cited = serde_json::to_string(&r.cited).unwrap_or_else(|_| "[]".into());
        self.run(async {
            sqlx::query(
                "INSERT INTO ratings (answer_id, helpful, model, refused, cited, question, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.answer_id.as_str())
            .bind(i64::from(r.helpful))
            .bind(r.model.as_str())
            .bind(i64::from(r.refused))
            .bind(cited.as_str())
            .bind(r.question.as_deref())
            .bind(r.at as i64)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// All ratings, oldest first.
    pub fn ratings(&self) -> Result<Vec<Rating>> {
        self.run(async {
            let rows = sqlx::query("SELECT answer_id, helpful, model, refused, cited, question, at FROM ratings ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
            super::rows(rows, |row| {
                let cited: String = row.try_get(4)?;
                Ok(Rating {
                    answer_id: row.try_get(0)?,
                    helpful: row.try_get::<i64, _>(1)? != 0,
                    model: row.try_get(2)?,
                    refused: row.try_get::<i64, _>(3)? != 0,
                    cited: serde_json::from_str(&cited).unwrap_or_default(),
                    question: row.try_get(5)?,
                    at: row.try_get::<i64, _>(6)?.max(0) as u64,
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;

    #[test]
    fn ratings_are_kept_in_order() {
        let d = tempfile::tempdir().unwrap();
        let s = testing::open(d.path());
        let r = |id: &str, helpful: bool, q: Option<&str>| Rating {
            answer_id: id.into(),
            helpful,
            model: "m".into(),
            refused: !helpful,
            cited: vec!["http://t/a/".into()],
            question: q.map(str::to_string),
            at: 1_700_000_000,
        };
        s.add_rating(&r("a1", true, None)).unwrap();
        s.add_rating(&r("a2", false, Some("Wann?"))).unwrap();
        assert_eq!(s.ratings().unwrap(), vec![r("a1", true, None), r("a2", false, Some("Wann?"))]);
    }
}
