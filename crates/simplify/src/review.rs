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

use crate::{BlockStatus, SimplifiedPage, facts, pattern as re};

/// How the model treats legal texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// The note of an approved rewrite in which staff corrected `corrected` blocks (their own
    /// wording, or the model's wording not taken).
    pub fn approved_with(corrected: usize) -> ReviewNote {
        let message = match corrected {
            0 => "Die Verwaltung hat diese vereinfachte Fassung geprüft.".to_string(),
            1 => "Die Verwaltung hat diese vereinfachte Fassung geprüft und einen Abschnitt \
                  korrigiert."
                .to_string(),
            n => format!(
                "Die Verwaltung hat diese vereinfachte Fassung geprüft und {n} Abschnitte korrigiert."
            ),
        };
        ReviewNote {
            status: ReviewStatus::Approved,
            message,
        }
    }
}

/// A reviewer's change to one block of a model rewrite, made when approving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCorrection {
    /// The block's index on the page (`BlockResult::index`).
    pub index: usize,
    /// The reviewer's wording (a list: one item a line). Without it the block is shown as the
    /// deterministic pass made it: the model's wording is not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// How a block of an approved rewrite was corrected in the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Staff wrote the block themselves.
    Edited,
    /// Staff did not take the model's wording: the deterministic pass is shown.
    Rules,
}

/// Why corrections cannot be taken: a message for the reviewer (German).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionError(pub String);

impl std::fmt::Display for CorrectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Told when the page changed since staff opened its rewrite.
pub const PAGE_CHANGED: &str =
    "Die Seite hat sich inzwischen geändert. Bitte laden Sie die Liste neu und prüfen Sie die neue Umschreibung.";

/// Longest corrected text, as a multiple of the original's length (plus a margin): room for
/// explanations, not for a second page.
const MAX_CORRECTION_GROWTH: usize = 4;

/// `rewrite` with the reviewer's `corrections` applied: a block with a text shows that text
/// (it must keep every fact of the original and invent none, and a list keeps its number of
/// items), a block without one shows what the deterministic pass `rules` made of it. Only
/// blocks the model rewrote can be corrected; each at most once. Readability, block counts,
/// HTML and text are computed again.
pub fn apply_corrections(
    rewrite: &SimplifiedPage,
    rules: &SimplifiedPage,
    corrections: &[BlockCorrection],
) -> Result<SimplifiedPage, CorrectionError> {
    let mut out = rewrite.clone();
    let mut seen = std::collections::HashSet::new();
    for c in corrections {
        let n = c.index + 1;
        if !seen.insert(c.index) {
            return Err(CorrectionError(format!(
                "Abschnitt {n} ist zweimal korrigiert. Bitte geben Sie jeden Abschnitt nur einmal an."
            )));
        }
        let Some(block) = out.blocks.get_mut(c.index) else {
            return Err(CorrectionError(format!(
                "Abschnitt {n} gibt es auf dieser Seite nicht."
            )));
        };
        if !matches!(block.status, BlockStatus::Simplified | BlockStatus::Partial) {
            return Err(CorrectionError(format!(
                "Abschnitt {n} hat das Modell nicht umgeschrieben. Er lässt sich hier nicht ändern."
            )));
        }
        match &c.text {
            None => {
                let Some(base) = rules
                    .blocks
                    .get(c.index)
                    .filter(|b| b.original == block.original)
                else {
                    return Err(CorrectionError(PAGE_CHANGED.into()));
                };
                block.simplified = base.simplified.clone();
                block.status = base.status;
                block.correction = Some(Correction::Rules);
            }
            Some(text) => {
                let text = text.replace("\r\n", "\n");
                let text = text.trim();
                if text.is_empty() {
                    return Err(CorrectionError(format!(
                        "Abschnitt {n} ist leer. Schreiben Sie einen Text oder wählen Sie \
                         „Nicht übernehmen“."
                    )));
                }
                let original = block.original.text();
                if text.chars().count()
                    > MAX_CORRECTION_GROWTH * original.chars().count() + 400
                {
                    return Err(CorrectionError(format!(
                        "Abschnitt {n} ist viel länger als das Original. Bitte fassen Sie sich kürzer."
                    )));
                }
                let simplified = match &block.original {
                    Block::Paragraph { .. } => Block::Paragraph { text: text.to_string() },
                    Block::List { ordered, items } => {
                        // one item a line; a leading dash typed as a bullet is no part of it
                        let lines: Vec<String> = text
                            .lines()
                            .map(|l| l.trim().trim_start_matches(['-', '–', '•']).trim())
                            .filter(|l| !l.is_empty())
                            .map(String::from)
                            .collect();
                        if lines.len() != items.len() {
                            return Err(CorrectionError(format!(
                                "Abschnitt {n} ist eine Liste mit {} Punkten. Bitte schreiben Sie \
                                 jeden Punkt in eine eigene Zeile ({} Zeilen).",
                                items.len(),
                                items.len()
                            )));
                        }
                        Block::List {
                            ordered: *ordered,
                            items: lines,
                        }
                    }
                    _ => {
                        return Err(CorrectionError(format!(
                            "Abschnitt {n} lässt sich hier nicht ändern."
                        )));
                    }
                };
                let check = facts::check(&original, &simplified.text());
                if !check.missing.is_empty() {
                    return Err(CorrectionError(format!(
                        "Abschnitt {n}: Ihre Fassung lässt Angaben des Originals weg: {}. \
                         Beträge, Daten, Fristen und Verweise müssen erhalten bleiben.",
                        check.missing.join(", ")
                    )));
                }
                if !check.ok() {
                    return Err(CorrectionError(format!(
                        "Abschnitt {n}: Ihre Fassung nennt Angaben, die das Original nicht hat: {}.",
                        check.invented.join(", ")
                    )));
                }
                block.simplified = simplified;
                block.status = BlockStatus::Simplified;
                block.correction = Some(Correction::Edited);
            }
        }
    }
    out.refresh();
    Ok(out)
}

/// A staff decision on one rewrite (its cache key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewDecision {
    pub key: String,
    pub url: String,
    pub status: ReviewStatus,
    /// The account that decided (its login name).
    pub reviewer: String,
    /// Unix time of the decision.
    pub decided_at: u64,
    /// Blocks the reviewer corrected before approving (applied to what citizens see).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<BlockCorrection>,
}

impl ReviewDecision {
    /// A short digest of the corrections (16 hex digits): names the approved wording in the
    /// audit log and in cache keys.
    pub fn corrections_digest(&self) -> String {
        let json = serde_json::to_string(&self.corrections).unwrap_or_default();
        crate::sha256_hex(&json)[..16].to_string()
    }
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
