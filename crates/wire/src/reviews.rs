//! The staff review of the model's rewrites of legal texts (`/portal/api/simplify/reviews*`).
//! The rewrite itself is a [`crate::simplify::SimplifiedPage`].

use serde::{Deserialize, Serialize};

use crate::simplify::ReviewStatus;

/// How the model treats legal texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A reviewer's change to one block of a model rewrite, made when approving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockCorrection {
    /// The block's index on the page (`BlockResult::index`).
    pub index: usize,
    /// The reviewer's wording (a list: one item a line). Without it the block is shown as the
    /// deterministic pass made it: the model's wording is not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A staff decision on one rewrite (its cache key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A model rewrite of a legal text (Einfache Sprache) and where its review stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewriteReview {
    /// The rewrite's cache key: the id for reading and deciding.
    pub key: String,
    pub url: String,
    pub title: String,
    /// Unix time of the rewrite.
    pub generated_at: u64,
    /// Units the model rewrote / units given to it.
    pub units_rewritten: usize,
    pub units: usize,
    /// Flesch reading ease (Amstad) of the original and of the rewrite.
    pub flesch_before: f64,
    pub flesch_after: f64,
    pub status: ReviewStatus,
    pub reviewer: Option<String>,
    pub decided_at: Option<u64>,
    /// The blocks corrected in the approval (to show them again when the rewrite is opened).
    pub corrections: Vec<BlockCorrection>,
}

/// A decision: `approved` (citizens see the rewrite) or `rejected` (they keep the rules pass).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewRequest {
    pub status: ReviewStatus,
    /// With `approved` only: blocks corrected before approval, each with the reviewer's
    /// wording (it must keep every amount, date, deadline and reference of the original) or
    /// without a text to show the block as the rules pass made it.
    #[serde(default)]
    pub corrections: Vec<BlockCorrection>,
    /// `generated_at` of the rewrite the reviewer read: a rewrite made again since is not
    /// decided on unseen (409).
    #[serde(default)]
    pub generated_at: Option<u64>,
}
