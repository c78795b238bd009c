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
//! "Richtlinie"; not "Tagesordnung" or "Ordnung" alone), or that has two or more numbered
//! sections ("§ 1", "Art. 2") as headings or paragraph openings.

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
        let what = "Dies ist eine Rechtsvorschrift. Hier sind Abkürzungen ausgeschrieben, \
                    Fachwörter erklärt und feste Formeln (zum Beispiel, ab wann sie gilt) in \
                    einfachen Sätzen gesagt. Sonst steht hier der Originaltext.";
        let then = match status {
            ReviewStatus::Rejected => "Eine vereinfachte Fassung gibt es für diese Seite noch nicht.",
            _ => "Eine vereinfachte Fassung zeigen wir erst, wenn die Verwaltung sie geprüft hat.",
        };
        ReviewNote {
            status,
            message: format!("{what} {then}"),
        }
    }

    /// The note over an approved rewrite.
    pub fn approved() -> ReviewNote {
        ReviewNote {
            status: ReviewStatus::Approved,
            message: "Die Verwaltung hat diese vereinfachte Fassung geprüft.".into(),
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

/// Title words that name a legal text: "Satzung" and "-satzung", "-ordnung" (Marktordnung,
/// Geschäftsordnung, Polizeiverordnung; not "Ordnung" alone), "Richtlinie(n)", "Statut".
static LEGAL_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:\p{L}*satzung|\p{L}+ordnung|richtlinien?|\p{L}*statut)(?:en|s)?\b")
});

/// Words of that shape that name no legal text: a council's agenda, an order, a crew.
const NOT_LEGAL: &[&str] = &[
    "tagesordnung",
    "zuordnung",
    "anordnung",
    "einordnung",
    "unterordnung",
    "beiordnung",
    "besatzung",
];

/// A numbered section at the start of a heading or paragraph: "§ 3", "§§ 4", "Art. 2",
/// "Artikel 1".
static SECTION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:§{1,2}\s*\d|Art\.\s*\d|Artikel\s+\d)"));

/// Whether `page` is a legal text (see the module documentation).
pub fn is_legal_text(page: &Page) -> bool {
    let titled = LEGAL_TITLE.find_iter(&page.title).any(|m| {
        let word = m.as_str().to_lowercase();
        !NOT_LEGAL.iter().any(|n| word.starts_with(n))
    });
    if titled {
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
            "Geschäftsordnung des Gemeinderats",
            "Richtlinien zur Vereinsförderung",
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
            "Sicherheit und Ordnung",
            "Tagesordnung der Gemeinderatssitzung",
            "Anordnung zur Wasserentnahme",
            "Besatzung des Löschfahrzeugs",
            "Neues Gebäudeenergiegesetz: was Sie wissen müssen",
        ] {
            let p = page(t, vec![para("Die Hundesteuer regelt § 3 der Satzung.")]);
            assert!(!is_legal_text(&p), "{t}");
        }
        // one citation of a section is no statute
        let p = page("Hunde", vec![para("§ 3 der Hundesteuersatzung gilt.")]);
        assert!(!is_legal_text(&p));
    }

}
