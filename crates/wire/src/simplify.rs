//! Einfache Sprache: `GET /api/v1/simplify?url=`, the CMS's `POST /api/v1/simplify` and
//! `GET /api/v1/simplify/jobs/{id}`, and the publish webhook `POST /api/v1/pages/refresh`.

use serde::{Deserialize, Serialize};

/// Query of `GET /api/v1/simplify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SimplifyQuery {
    /// Address of a page of the town's website, as the browser shows it.
    pub url: String,
}

/// One structural block of a page, in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Block {
    /// A heading; `level` 1..=6. `anchor` is the element id when the source has one.
    Heading {
        level: u8,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor: Option<String>,
    },
    Paragraph { text: String },
    List { ordered: bool, items: Vec<String> },
    /// Table rows; the first row is the header row when the source marks one.
    Table { rows: Vec<Vec<String>> },
}

/// The structural kind of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Heading,
    Paragraph,
    List,
    Table,
}

/// What happened to a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockStatus {
    /// Rewritten by the model; every unit passed the checks and reads easier.
    Simplified,
    /// Some units rewritten; the others failed their checks or read no easier and are shown
    /// after the deterministic pass only (abbreviations written out, facts unchanged).
    Partial,
    /// Short or structural (headings, tables, short items), on a rules-only path, or no
    /// candidate read easier: abbreviations and symbols written out, no model rewrite.
    RulesOnly,
    /// The rewrite failed the checks twice: the original wording is shown.
    NotSimplified,
}

/// How a block of an approved rewrite was corrected in the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Staff wrote the block themselves.
    Edited,
    /// Staff did not take the model's wording: the deterministic pass is shown.
    Rules,
}

/// One block of the result, beside its original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockResult {
    pub index: usize,
    pub kind: BlockKind,
    pub status: BlockStatus,
    pub original: Block,
    pub simplified: Block,
    /// Why units were kept in the original wording (English, for the town's editors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Set when staff corrected this block in the review of a legal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
}

/// Readability figures of one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readability {
    /// Flesch reading ease for German (Amstad): higher is easier.
    pub flesch_amstad: f64,
    /// Wiener Sachtextformel 1: roughly the school grade needed; lower is easier.
    pub wstf1: f64,
    /// LIX: lower is easier.
    pub lix: f64,
    pub sentences: usize,
    pub words: usize,
}

/// Readability of the original and the rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadabilityChange {
    pub before: Readability,
    pub after: Readability,
    /// `after.flesch_amstad - before.flesch_amstad`.
    pub flesch_gain: f64,
}

/// Block counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    pub blocks: usize,
    pub simplified: usize,
    pub partial: usize,
    pub rules_only: usize,
    pub not_simplified: usize,
    /// Units the model rewrote / units given to it.
    pub units_rewritten: usize,
    pub units: usize,
    pub retries: usize,
    /// Units whose outcome came from the unit cache (no model call).
    #[serde(default)]
    pub units_cached: usize,
}

/// Where the staff review of a legal text's rewrite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Nobody has decided yet.
    Pending,
    /// Staff read the rewrite and let citizens see it.
    Approved,
    /// Staff found it wrong: citizens keep getting the deterministic pass.
    Rejected,
}

/// What citizens are told about the review of the text they see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewNote {
    pub status: ReviewStatus,
    /// German, for citizens.
    pub message: String,
}

/// A page in Einfache Sprache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimplifiedPage {
    pub url: String,
    pub title: String,
    /// "KI-generiert – in Einfache Sprache übertragen. Verbindlich ist der Originaltext."
    pub label: String,
    /// The binding original.
    pub original_url: String,
    /// HTML fragment with the page's structure, the label and the link to the original.
    pub html: String,
    /// Plain text, one sentence per line.
    pub text: String,
    pub blocks: Vec<BlockResult>,
    pub readability: ReadabilityChange,
    pub summary: Summary,
    /// Terms the glossary explained.
    pub explained_terms: Vec<String>,
    pub model: String,
    pub rules_version: String,
    pub content_hash: String,
    /// Unix time of the rewrite.
    pub generated_at: u64,
    pub duration_ms: u64,
    /// Whether the page is a legal text, whose model rewrite a town may show only after a
    /// staff review.
    #[serde(default)]
    pub legal_text: bool,
    /// Set when what is shown depends on a staff review: the deterministic pass while the
    /// model's rewrite awaits review or was rejected, or the approved rewrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewNote>,
}

/// The parts of [`SimplifiedPage`] the widget reads: it deserialises only these (unknown
/// fields are skipped), which keeps its WebAssembly small.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimplifiedHtml {
    /// HTML fragment with the page's structure, the label and the link to the original.
    pub html: String,
}

/// Where a requested rewrite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Failed,
}

/// Progress of a rewrite that is not ready yet (the body of a 202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pending {
    pub status: JobState,
    /// Parts of the page rewritten so far, of `total`.
    pub done: usize,
    pub total: usize,
    /// Poll this URL (the same request) until it answers 200.
    pub status_url: String,
    /// Seconds until it is worth asking again.
    pub retry_after: u64,
    /// A German message for the reader.
    pub message: String,
}

/// Text of the CMS to put into Einfache Sprache: `html` or `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    /// The page (or its main part) as HTML; navigation and footers are left out as in a crawl.
    pub html: Option<String>,
    /// Plain text: blocks separated by blank lines, `# ` headings, `- ` and `1. ` lists.
    pub text: Option<String>,
    /// Where the page is (or will be) published: the link to the binding original.
    pub url: Option<String>,
    pub title: Option<String>,
}

/// The publish webhook's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The page that was published, changed or deleted.
    pub url: String,
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefreshStatus {
    /// New or changed content was indexed.
    Updated,
    /// The page is as it was (or answered 304).
    Unchanged,
    /// The page answered 404/410 and was removed from the index.
    Removed,
    /// The page has too little text, says noindex, redirects elsewhere or is disallowed.
    NotIndexed,
}

/// The answer to a refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshResponse {
    pub url: String,
    pub status: RefreshStatus,
    /// Where its rewrite in Einfache Sprache can be fetched (being written when not ready).
    pub simplify_url: Option<String>,
    /// The rewrite is ready already.
    pub simplified: bool,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_tagged_by_type_and_the_widget_reads_the_html() {
        let b = Block::Heading { level: 2, text: "Gebühren".into(), anchor: None };
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"type":"heading","level":2,"text":"Gebühren"}"#);
        let page = r#"{"url":"u","title":"t","html":"<p>Hallo</p>","blocks":[]}"#;
        assert_eq!(serde_json::from_str::<SimplifiedHtml>(page).unwrap().html, "<p>Hallo</p>");
    }
}
