//! What citizens asked and the website could not answer (issue 35): the records the web team
//! sees, and their grouping into topics.
//!
//! Design decision: topics are computed on read, not stored. A question is kept with its
//! embedding (of the redacted text, when the server has an embedder); at read time the
//! questions of the window are grouped greedily, oldest first: a question joins the topic
//! whose centroid is nearest when the cosine reaches `similarity` (0.9 by default: with
//! multilingual-e5-small, measured on eight town questions in the server's test
//! `the_embedder_groups_paraphrases_and_keeps_other_questions_apart`, paraphrases scored
//! 0.906 to 0.944 ("Schlittschuh laufen" / "Eisbahn", "Sperrmüll anmelden" / "Abholung von
//! Sperrmüll bestellen") and different questions 0.74 to 0.83), or when its German
//! content words (stemmed, stop and question words dropped; a word contained in another of
//! four letters or more counts as the same, "meld" in "anmeld") overlap the topic's first
//! question's by at least half (Jaccard). Without an embedder (or across models) the words
//! alone decide. So a change of model or threshold regroups everything at once, and nothing
//! about a topic has to be migrated.
//!
//! Invariant: a topic with fewer than `min_questions` questions is never shown, so no single
//! person's question is singled out.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

/// How an answer went for the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A cited answer.
    Answered,
    /// Only a pointer to the best page, or statements without a source: the page that should
    /// say it does not say it plainly.
    Hedged,
    /// The website does not answer it; the citizen was given the town's contact.
    Refused,
    /// The citizen rated the answer down.
    RatedDown,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Hedged => "hedged",
            Outcome::Refused => "refused",
            Outcome::RatedDown => "rated_down",
        }
    }

    /// Unknown keys read as answered (never shown as a gap that was not one).
    pub fn from_key(k: &str) -> Outcome {
        match k {
            "hedged" => Outcome::Hedged,
            "refused" => Outcome::Refused,
            "rated_down" => Outcome::RatedDown,
            _ => Outcome::Answered,
        }
    }

    pub fn label_de(self) -> &'static str {
        match self {
            Outcome::Answered => "beantwortet",
            Outcome::Hedged => "unsicher",
            Outcome::Refused => "keine Antwort",
            Outcome::RatedDown => "schlecht bewertet",
        }
    }
}

/// A question to keep. `question` must already be redacted ([`crate::pii::redact_de`]).
#[derive(Debug, Clone)]
pub struct NewQuestion {
    /// Day number (days since 1970-01-01, UTC).
    pub day: i64,
    pub lang: String,
    pub outcome: Outcome,
    pub cited: Vec<String>,
    pub question: String,
    /// The embedder's id and the redacted question's vector.
    pub embedding: Option<(String, Vec<f32>)>,
}

/// A kept question as read back.
#[derive(Debug, Clone)]
pub struct StoredQuestion {
    pub id: i64,
    pub day: i64,
    pub lang: String,
    pub outcome: Outcome,
    pub cited: Vec<String>,
    pub question: String,
    pub embedding: Option<(String, Vec<f32>)>,
    pub done_day: Option<i64>,
}

/// A sample question of a topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Delete it with `DELETE /portal/api/insights/questions/{id}`.
    pub id: i64,
    /// The day it was asked (`YYYY-MM-DD`).
    pub day: String,
    pub question: String,
    pub outcome: Outcome,
}

/// Questions that belong together, with how they went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topic {
    /// The id of its first question: names the topic for the "erledigt" mark (computed on
    /// read; it changes when that question is deleted or expires).
    pub id: i64,
    /// The question asked most often in it (in its shortest wording).
    pub label: String,
    pub questions: i64,
    pub answered: i64,
    pub hedged: i64,
    pub refused: i64,
    pub rated_down: i64,
    /// Questions per week, oldest first; the last is the current week (the last 7 days).
    pub weeks: Vec<i64>,
    /// Up to five questions, newest first.
    pub samples: Vec<Sample>,
    /// The page cited most often when the answer was hedged: the page that should say it
    /// but does not.
    pub hedged_page: Option<String>,
    /// The day the web team marked the topic "erledigt" (`YYYY-MM-DD`).
    pub done: Option<String>,
    /// Questions asked since that day, and how many of them were answered.
    pub asked_since_done: i64,
    pub answered_since_done: i64,
    /// Every question id of the topic (for the "erledigt" mark).
    #[serde(skip)]
    pub members: Vec<i64>,
}

/// How topics are made and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    /// Cosine of question embeddings from which two questions are one topic.
    pub similarity: f32,
    /// Topics with fewer questions are not shown.
    pub min_questions: usize,
    /// Days looked at, ending today.
    pub days: i64,
    /// The town's name: its words say nothing about a topic ("in Bad Boll").
    pub town: String,
}

/// Days since 1970-01-01 (UTC) of a Unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

/// `YYYY-MM-DD` of a day number (proleptic Gregorian calendar; clamped to the years
/// -9999..=9999).
pub fn date(day: i64) -> String {
    let d = time::OffsetDateTime::from_unix_timestamp(day.saturating_mul(86_400))
        .map_or(if day < 0 { time::Date::MIN } else { time::Date::MAX }, |t| t.date());
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A vector as stored (little-endian f32).
pub fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector read back.
pub fn bytes_vector(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Words that say nothing about what was asked (stems).
const GENERIC: &[&str] = &[
    "gemei", "gemeind", "stadt", "gibt", "welch", "wann", "wiev", "viel", "bekomm", "darf", "muss",
    "kann", "konn", "geb", "erhalt", "mocht", "brauch", "werd", "wurd", "hab", "hat", "bitt", "dort",
    "hier", "imm", "beim", "lass", "frag", "geht", "gern", "wer", "wie", "was", "wo", "wohin", "woh",
    "dafur", "dazu", "mein", "ihr", "info", "informatio",
];

/// The content stems of each text (German analysis: stop words dropped, stemmed, folded),
/// without the words of `town`. One analyzer for all.
pub fn content_stems_all(texts: &[&str], town: &str) -> Vec<Vec<String>> {
    let mut a = lotse_index::analysis::stemmed_analyzer();
    let town: HashSet<String> = lotse_index::analysis::tokens(&mut a, town).into_iter().collect();
    texts
        .iter()
        .map(|text| {
            let mut seen = town.clone();
            lotse_index::analysis::tokens(&mut a, text)
                .into_iter()
                .filter(|t| t.chars().count() > 2 && !t.chars().all(|c| c.is_ascii_digit()))
                .filter(|t| !GENERIC.contains(&t.as_str()))
                // placeholders of the PII guard ("[Name]") say nothing about the topic
                .filter(|t| !matches!(t.as_str(), "nam" | "telefon" | "iban" | "mail" | "adress" | "aktenzeich"))
                .filter(|t| seen.insert(t.clone()))
                .collect()
        })
        .collect()
}

/// The content stems of one text ([`content_stems_all`]).
pub fn content_stems(text: &str, town: &str) -> Vec<String> {
    content_stems_all(&[text], town).pop().unwrap_or_default()
}

fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.chars().count() >= 4 && long.contains(short)
}

/// Overlap of two stem sets (0..1), Jaccard with compound-aware matching.
pub fn word_similarity(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let matched = a.iter().filter(|x| b.iter().any(|y| same_word(x, y))).count();
    let union = (a.len() + b.len()).saturating_sub(matched).max(1);
    (matched as f32 / union as f32).min(1.0)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// Word overlap from which two questions are one topic.
pub const WORD_SIMILARITY: f32 = 0.5;

struct Group {
    seed: Vec<String>,
    model: Option<String>,
    sum: Vec<f32>,
    members: Vec<usize>,
}

/// Group questions (given oldest first) into topics: indexes into `qs`, per topic. `town`:
/// the town's name, whose words do not count.
pub fn group(qs: &[StoredQuestion], similarity: f32, town: &str) -> Vec<Vec<usize>> {
    let mut groups: Vec<Group> = Vec::new();
    let texts: Vec<&str> = qs.iter().map(|q| q.question.as_str()).collect();
    for (i, (q, stems)) in qs.iter().zip(content_stems_all(&texts, town)).enumerate() {
        let mut best: Option<(usize, f32)> = None;
        for (g, group) in groups.iter().enumerate() {
            let mut score = word_similarity(&stems, &group.seed);
            if score < WORD_SIMILARITY {
                score = 0.0;
            }
            if let (Some((m, v)), Some(gm)) = (&q.embedding, &group.model)
                && m == gm
            {
                let c = cosine(v, &group.sum);
                if c >= similarity {
                    score = score.max(c);
                }
            }
            if score > 0.0 && best.is_none_or(|(_, s)| score > s) {
                best = Some((g, score));
            }
        }
        match best {
            Some((g, _)) => {
                let group = &mut groups[g];
                if let Some((_, v)) = &q.embedding
                    && group.sum.len() == v.len()
                {
                    for (s, x) in group.sum.iter_mut().zip(v) {
                        *s += x;
                    }
                }
                group.members.push(i);
            }
            None => groups.push(Group {
                seed: stems,
                model: q.embedding.as_ref().map(|(m, _)| m.clone()),
                sum: q.embedding.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
                members: vec![i],
            }),
        }
    }
    groups.into_iter().map(|g| g.members).collect()
}

/// The topics of `qs` (oldest first) as the web team sees them on day `today`: only topics
/// with at least `min_questions` questions and at least one not answered (or marked
/// "erledigt"), the most asked first.
pub fn topics(qs: &[StoredQuestion], s: &TopicSettings, today: i64) -> Vec<Topic> {
    let from = today - s.days.max(1) + 1;
    let qs: Vec<StoredQuestion> = qs.iter().filter(|q| q.day >= from && q.day <= today).cloned().collect();
    let n_weeks = ((s.days.max(1) + 6) / 7) as usize;
    let mut out = Vec::new();
    for members in group(&qs, s.similarity, &s.town) {
        if members.len() < s.min_questions.max(1) {
            continue;
        }
        let m: Vec<&StoredQuestion> = members.iter().map(|&i| &qs[i]).collect();
        let count = |o: Outcome| m.iter().filter(|q| q.outcome == o).count() as i64;
        let mut weeks = vec![0i64; n_weeks];
        for q in &m {
            let ago = ((today - q.day) / 7) as usize;
            if ago < n_weeks {
                weeks[n_weeks - 1 - ago] += 1;
            }
        }
        // the label: the wording asked most often, the shortest among equals
        let mut wordings: HashMap<String, (usize, &str)> = HashMap::new();
        for q in &m {
            let e = wordings.entry(q.question.trim().to_lowercase()).or_insert((0, q.question.trim()));
            e.0 += 1;
        }
        let label = wordings
            .values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.len().cmp(&a.1.len())).then(b.1.cmp(a.1)))
            .map(|(_, t)| t.to_string())
            .unwrap_or_default();
        let mut pages: BTreeMap<&str, usize> = BTreeMap::new();
        for q in m.iter().filter(|q| q.outcome == Outcome::Hedged) {
            for url in &q.cited {
                *pages.entry(url.as_str()).or_default() += 1;
            }
        }
        let hedged_page = pages.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(u, _)| u.to_string());
        let mut seen = HashSet::new();
        let samples: Vec<Sample> = m
            .iter()
            .rev()
            .filter(|q| seen.insert(q.question.trim().to_lowercase()))
            .take(5)
            .map(|q| Sample { id: q.id, day: date(q.day), question: q.question.clone(), outcome: q.outcome })
            .collect();
        let done = m.iter().filter_map(|q| q.done_day).max();
        let since: Vec<&&StoredQuestion> = match done {
            Some(d) => m.iter().filter(|q| q.done_day.is_none() && q.day >= d).collect(),
            None => Vec::new(),
        };
        let answered = count(Outcome::Answered);
        if answered == m.len() as i64 && done.is_none() {
            continue;
        }
        out.push(Topic {
            id: m.iter().map(|q| q.id).min().unwrap_or(0),
            label,
            questions: m.len() as i64,
            answered,
            hedged: count(Outcome::Hedged),
            refused: count(Outcome::Refused),
            rated_down: count(Outcome::RatedDown),
            weeks,
            samples,
            hedged_page,
            done: done.map(date),
            asked_since_done: since.len() as i64,
            answered_since_done: since.iter().filter(|q| q.outcome == Outcome::Answered).count() as i64,
            members: m.iter().map(|q| q.id).collect(),
        });
    }
    out.sort_by(|a, b| b.questions.cmp(&a.questions).then(a.id.cmp(&b.id)));
    out
}

/// The topics as CSV (formulas defused, [`crate::store::to_csv`]).
pub fn topics_csv(topics: &[Topic]) -> String {
    let header = [
        "thema", "fragen", "beantwortet", "unsicher", "keine_antwort", "schlecht_bewertet", "wochen", "seite_unsicher", "erledigt",
        "beispiele",
    ];
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.label.clone(),
                t.questions.to_string(),
                t.answered.to_string(),
                t.hedged.to_string(),
                t.refused.to_string(),
                t.rated_down.to_string(),
                t.weeks.iter().map(i64::to_string).collect::<Vec<_>>().join(" "),
                t.hedged_page.clone().unwrap_or_default(),
                t.done.clone().unwrap_or_default(),
                t.samples.iter().map(|s| s.question.as_str()).collect::<Vec<_>>().join(" | "),
            ]
        })
        .collect();
    crate::store::to_csv(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min_questions: usize) -> TopicSettings {
        TopicSettings { similarity: 0.9, min_questions, days: 30, town: "Gemeinde Bad Boll".into() }
    }

    fn q(id: i64, day: i64, outcome: Outcome, text: &str) -> StoredQuestion {
        StoredQuestion { id, day, lang: "de".into(), outcome, cited: vec![], question: text.into(), embedding: None, done_day: None }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(day_of(1_796_515_200 + 3600)), "2026-12-06");
        assert_eq!(date(day_of(951_782_400)), "2000-02-29");
    }

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0];
        assert_eq!(bytes_vector(&vector_bytes(&v)), v);
    }

    #[test]
    fn a_refused_question_and_its_paraphrase_are_one_topic_without_embeddings() {
        let qs = vec![
            q(1, 100, Outcome::Refused, "Wo kann ich Sperrmüll anmelden?"),
            q(2, 100, Outcome::Refused, "Wie melde ich meinen Sperrmüll an?"),
            q(3, 100, Outcome::Answered, "Wann ist die Bücherei geöffnet?"),
            q(4, 101, Outcome::Hedged, "Sperrmüll anmelden, wie geht das?"),
            q(5, 101, Outcome::Answered, "Wann ist das Rathaus geöffnet?"),
            q(6, 101, Outcome::Refused, "Hundesteuer Bad Boll"),
            q(7, 101, Outcome::Refused, "Eisbahn Bad Boll"),
        ];
        let g = group(&qs, 0.9, "Gemeinde Bad Boll");
        assert!(g.contains(&vec![0, 1, 3]), "{g:?}");
        assert!(!g.iter().any(|m| m.contains(&2) && m.contains(&4)), "Bücherei and Rathaus are not one topic: {g:?}");
        assert!(!g.iter().any(|m| m.contains(&5) && m.contains(&6)), "the town's name makes no topic: {g:?}");
        let t = topics(&qs, &settings(3), 101);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!((t[0].questions, t[0].refused, t[0].hedged), (3, 2, 1));
        assert_eq!(t[0].weeks.last(), Some(&3));
        let t = topics(&qs, &settings(4), 101);
        assert!(t.is_empty(), "under the threshold nothing is shown");
    }

    #[test]
    fn embeddings_group_what_words_do_not() {
        let mut a = q(1, 5, Outcome::Refused, "Wohin mit dem alten Sofa?");
        a.embedding = Some(("e5".into(), vec![1.0, 0.1, 0.0]));
        let mut b = q(2, 5, Outcome::Refused, "Sperrmüll abholen lassen");
        b.embedding = Some(("e5".into(), vec![0.98, 0.12, 0.01]));
        let mut c = q(3, 5, Outcome::Refused, "Hundesteuer abmelden");
        c.embedding = Some(("e5".into(), vec![0.0, 0.2, 1.0]));
        assert_eq!(group(&[a, b, c], 0.9, ""), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn csv_is_formula_safe() {
        let qs: Vec<StoredQuestion> = (1..=3).map(|i| q(i, 10, Outcome::Refused, "=HYPERLINK(\"http://x\") Sperrmüll")).collect();
        let t = topics(&qs, &settings(3), 10);
        let csv = topics_csv(&t);
        assert!(csv.contains("\"'=HYPERLINK"), "{csv}");
    }
}
