//! The KI-Kompass: the town's usage policy (Markdown) and its multiple-choice check (the
//! "KI-Seepferdchen"). Passing the check lifts a staff member to the check's level.
//!
//! The correct answers never leave this crate: `Question::correct` is private, [`Check::public`]
//! strips them, and a failed attempt tells only how many answers were right, not which
//! (with the attempt limit in the server, the check cannot be solved by trying; issue 31).
//! A passed attempt names the questions answered wrongly, so staff can learn from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::auth::Level;

/// The built-in policy text, for towns that have not written their own yet.
pub const DEFAULT_TEXT: &str = include_str!("../assets/ki-kompass.md");
/// The built-in check.
pub const DEFAULT_CHECK: &str = include_str!("../assets/ki-kompass-check.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub text: String,
    pub options: Vec<String>,
    /// Index of the right option (never leaves this crate).
    #[serde(skip_serializing)]
    correct: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Share of right answers needed to pass, 0..=1.
    pub pass_ratio: f64,
    /// The level passing gives.
    pub level: Level,
    #[serde(rename = "question")]
    pub questions: Vec<Question>,
}

/// The check as the client sees it: no answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicCheck {
    pub pass_ratio: f64,
    pub level: Level,
    pub questions: Vec<PublicQuestion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicQuestion {
    pub text: String,
    pub options: Vec<String>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graded {
    pub passed: bool,
    pub right: usize,
    pub total: usize,
    /// 0-based numbers of the questions answered wrongly; only after a pass (a failed
    /// attempt does not say which answers were wrong).
    pub wrong: Vec<usize>,
    pub level: Level,
}

#[derive(Debug, thiserror::Error)]
pub enum KompassError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid KI-Kompass check: {0}")]
    Invalid(String),
}

impl Check {
    pub fn parse(toml_text: &str) -> Result<Check, KompassError> {
        let c: Check = toml::from_str(toml_text).map_err(|e| KompassError::Invalid(e.to_string()))?;
        if c.questions.is_empty() {
            return Err(KompassError::Invalid("no questions".into()));
        }
        if !(0.0..=1.0).contains(&c.pass_ratio) {
            return Err(KompassError::Invalid("pass_ratio must be between 0 and 1".into()));
        }
        for (i, q) in c.questions.iter().enumerate() {
            if q.options.len() < 2 || q.correct >= q.options.len() {
                return Err(KompassError::Invalid(format!(
                    "question {}: needs at least two options and a valid `correct`",
                    i + 1
                )));
            }
        }
        if c.level == Level::None {
            return Err(KompassError::Invalid("level must be above none".into()));
        }
        Ok(c)
    }

    /// The configured check, or the built-in one.
    pub fn load(path: Option<&Path>) -> Result<Check, KompassError> {
        match path {
            None => Check::parse(DEFAULT_CHECK),
            Some(p) => Check::parse(&read(p)?),
        }
    }

    pub fn public(&self) -> PublicCheck {
        PublicCheck {
            pass_ratio: self.pass_ratio,
            level: self.level,
            questions: self
                .questions
                .iter()
                .map(|q| PublicQuestion {
                    text: q.text.clone(),
                    options: q.options.clone(),
                })
                .collect(),
        }
    }

    /// Grade one attempt: `answers[i]` is the chosen option of question `i`. Missing answers
    /// count as wrong.
    pub fn grade(&self, answers: &[usize]) -> Graded {
        let wrong: Vec<usize> = self
            .questions
            .iter()
            .enumerate()
            .filter(|(i, q)| answers.get(*i) != Some(&q.correct))
            .map(|(i, _)| i)
            .collect();
        let total = self.questions.len();
        let right = total - wrong.len();
        let passed = right as f64 >= self.pass_ratio * total as f64 - 1e-9;
        Graded {
            passed,
            right,
            total,
            wrong: if passed { wrong } else { Vec::new() },
            level: self.level,
        }
    }
}

/// The configured policy text, or the built-in one.
pub fn load_text(path: Option<&Path>) -> Result<String, KompassError> {
    match path {
        None => Ok(DEFAULT_TEXT.to_string()),
        Some(p) => read(p),
    }
}

fn read(p: &Path) -> Result<String, KompassError> {
    std::fs::read_to_string(p).map_err(|source| KompassError::Read {
        path: p.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_check_parses_and_grades() {
        let c = Check::load(None).unwrap();
        assert_eq!(c.level, Level::Seepferdchen);
        let right: Vec<usize> = c.questions.iter().map(|q| q.correct).collect();
        assert!(c.grade(&right).passed);
        let mut one_wrong = right.clone();
        one_wrong[0] = (one_wrong[0] + 1) % c.questions[0].options.len();
        let g = c.grade(&one_wrong);
        assert_eq!(g.wrong, vec![0]);
        assert!(g.passed, "4 of 5 is 0.8");
        let mut two_wrong = one_wrong;
        two_wrong[1] = (two_wrong[1] + 1) % c.questions[1].options.len();
        let failed = c.grade(&two_wrong);
        assert!(!failed.passed);
        assert_eq!((failed.right, failed.wrong.len()), (3, 0), "a failed attempt does not say which were wrong");
        assert!(!c.grade(&[]).passed);
    }

    #[test]
    fn answers_stay_on_the_server() {
        let c = Check::load(None).unwrap();
        let json = serde_json::to_string(&c.public()).unwrap();
        assert!(!json.contains("correct"));
    }

    #[test]
    fn bad_checks_are_refused() {
        assert!(Check::parse("pass_ratio = 0.8\nlevel = \"bronze\"\nquestion = []").is_err());
        let bad = "pass_ratio = 0.8\nlevel = \"bronze\"\n[[question]]\ntext = \"x\"\noptions = [\"a\", \"b\"]\ncorrect = 5\n";
        assert!(Check::parse(bad).is_err());
    }
}
