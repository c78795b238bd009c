//! Legal texts and the staff review of their rewrites (KI-Kompass: people stay responsible).
//!
//! With the default small model a rewrite of a statute often says something else than the
//! statute: in a blind review of 50 rewritten statute paragraphs (RULES_VERSION 12) 30 said
//! something different and 12 left out something that matters, although every one kept its
//! facts. So a town chooses per [`LegalTexts`] how the model treats legal texts; the default
//! ([`LegalTexts::Review`]) shows citizens the deterministic pass (abbreviations written out,
//! terms explained, the fixed formulas said plainly) until a member of staff has read the
//! model's rewrite in the portal and approved it.
//!
//! A legal text ([`is_legal_text`]) is a page whose title names a statute, ordinance, rules
//! of procedure or guideline ("Abwassersatzung", "Polizeiverordnung", "Marktordnung",
//! "Richtlinie"), or that has two or more numbered sections ("§ 1", "Art. 2") as headings or
//! paragraph openings.

use std::sync::LazyLock;

use lotse_core::{Block, Page};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::pattern as re;

/// How the model treats legal texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalTexts {
    /// The model's rewrite is shown at once, like that of any other page.
    Model,
    /// The model's rewrite is shown once staff approved it; until then (and after a
    /// rejection) citizens get the deterministic pass.
    #[default]
    Review,
    /// The deterministic pass only: the model never rewrites a legal text.
    Rules,
}

/// Where the staff review of a legal text's rewrite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Nobody has decided yet.
    Pending,
    /// Staff read the rewrite and let citizens see it.
    Approved,
    /// Staff found it wrong: citizens keep getting the deterministic pass.
    Rejected,
}

impl ReviewStatus {
    pub fn key(self) -> &'static str {
        match self {
            ReviewStatus::Pending => "pending",
            ReviewStatus::Approved => "approved",
            ReviewStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewStatus> {
        match s {
            "pending" => Some(ReviewStatus::Pending),
            "approved" => Some(ReviewStatus::Approved),
            "rejected" => Some(ReviewStatus::Rejected),
            _ => None,
        }
    }
}

/// What citizens are told about the review of the text they see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewNote {
    pub status: ReviewStatus,
    /// German, for citizens.
    pub message: String,
}

impl ReviewNote {
    /// The note over the deterministic pass of a legal text whose model rewrite is not (or
    /// not yet) approved.
    pub fn rules_only(status: ReviewStatus) -> ReviewNote {
        ReviewNote {
            status,
            message: "Dies ist eine Rechtsvorschrift. Hier sind Abkürzungen ausgeschrieben und \
                      Fachwörter erklärt; der Text ist sonst unverändert. Eine vereinfachte \
                      Fassung zeigen wir erst, wenn die Verwaltung sie geprüft hat."
                .into(),
        }
    }

    /// The note over an approved rewrite; `date` as "5. Dezember 2026".
    pub fn approved(date: &str) -> ReviewNote {
        ReviewNote {
            status: ReviewStatus::Approved,
            message: format!("Die Verwaltung hat diese vereinfachte Fassung am {date} geprüft."),
        }
    }
}

/// A staff decision on one rewrite (its cache key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewDecision {
    pub key: String,
    pub url: String,
    pub status: ReviewStatus,
    /// The account that decided (its login name).
    pub reviewer: String,
    /// Unix time of the decision.
    pub decided_at: u64,
}

/// Title words that name a legal text: "-satzung", "-verordnung", "-ordnung" (Marktordnung,
/// Geschäftsordnung), "Richtlinie(n)", "Statut", "Gesetz".
static LEGAL_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b\p{L}*(?:satzung|ordnung|richtlinien?|statut|gesetz)(?:en)?\b")
});

/// A numbered section at the start of a heading or paragraph: "§ 3", "§§ 4", "Art. 2",
/// "Artikel 1".
static SECTION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:§{1,2}\s*\d|Art\.\s*\d|Artikel\s+\d)"));

/// Whether `page` is a legal text (see the module documentation).
pub fn is_legal_text(page: &Page) -> bool {
    if LEGAL_TITLE.is_match(&page.title) {
        return true;
    }
    let sections = page
        .blocks
        .iter()
        .filter(|b| match b {
            Block::Heading { text, .. } | Block::Paragraph { text } => SECTION.is_match(text),
            _ => false,
        })
        .count();
    sections >= 2
}

/// "5. Dezember 2026" for a Unix time (UTC).
pub fn german_date(unix: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
        "Oktober", "November", "Dezember",
    ];
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{day}. {} {year}", MONTHS[(month - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(title: &str, blocks: Vec<Block>) -> Page {
        Page {
            url: "http://town.test/x/".into(),
            title: title.into(),
            kind: lotse_core::DocKind::Html,
            lang: Some("de".into()),
            modified: None,
            blocks,
        }
    }

    fn heading(text: &str) -> Block {
        Block::Heading {
            level: 2,
            text: text.into(),
            anchor: None,
        }
    }

    fn para(text: &str) -> Block {
        Block::Paragraph { text: text.into() }
    }

    #[test]
    fn statutes_and_ordinances_are_legal_texts() {
        for t in [
            "Satzung über die Erhebung der Hundesteuer",
            "Abwassersatzung der Gemeinde",
            "Polizeiverordnung gegen umweltschädliches Verhalten",
            "Marktordnung",
            "Richtlinie für den Bauernmarkt",
            "Benutzungsordnung für die Sporthallen",
        ] {
            assert!(is_legal_text(&page(t, vec![para("Text.")])), "{t}");
        }
        // no such title, but numbered sections
        let p = page(
            "Ehrungen",
            vec![heading("§ 1 Zweck"), para("Text."), heading("§ 2 Ehrennadel")],
        );
        assert!(is_legal_text(&p));
        let p = page("Bauernmarkt", vec![para("Art. 1 Zweck"), para("Art. 2 Ort")]);
        assert!(is_legal_text(&p));
    }

    #[test]
    fn other_pages_are_not() {
        for t in [
            "Ortsrecht",
            "Ordnungsamt",
            "Rathaus & Verwaltung",
            "Veranstaltungskalender",
            "Erklärung zur Barrierefreiheit",
        ] {
            let p = page(t, vec![para("Die Hundesteuer regelt § 3 der Satzung.")]);
            assert!(!is_legal_text(&p), "{t}");
        }
        // one citation of a section is no statute
        let p = page("Hunde", vec![para("§ 3 der Hundesteuersatzung gilt.")]);
        assert!(!is_legal_text(&p));
    }

    #[test]
    fn dates_in_german() {
        assert_eq!(german_date(0), "1. Januar 1970");
        assert_eq!(german_date(1_796_428_800), "5. Dezember 2026");
        assert_eq!(german_date(951_782_400), "29. Februar 2000");
    }
}
