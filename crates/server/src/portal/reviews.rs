//! Staff reviews of the model's rewrites of legal texts (Einfache Sprache).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::Action;
use lotse_portal::store::AuditEntry;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, audit_full, blocking, json_body};

// ---- reviews of simplified legal texts ----------------------------------------------------

/// A model rewrite of a legal text (Einfache Sprache) and where its review stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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
    pub status: lotse_simplify::ReviewStatus,
    pub reviewer: Option<String>,
    pub decided_at: Option<u64>,
    /// The blocks corrected in the approval (to show them again when the rewrite is opened).
    pub corrections: Vec<lotse_simplify::BlockCorrection>,
}

/// A decision: `approved` (citizens see the rewrite) or `rejected` (they keep the rules pass).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReviewRequest {
    pub status: lotse_simplify::ReviewStatus,
    /// With `approved` only: blocks corrected before approval, each with the reviewer's
    /// wording (it must keep every amount, date, deadline and reference of the original) or
    /// without a text to show the block as the rules pass made it.
    #[serde(default)]
    pub corrections: Vec<lotse_simplify::BlockCorrection>,
    /// `generated_at` of the rewrite the reviewer read: a rewrite made again since is not
    /// decided on unseen (409).
    #[serde(default)]
    pub generated_at: Option<u64>,
}

/// The model's rewrites of legal texts, newest first, with their review state (editors and
/// admins). Citizens see a rewrite only once it is approved (`[simplify] legal_texts =
/// "review"`).
#[utoipa::path(get, path = "/portal/api/simplify/reviews", tag = "portal",
    responses((status = 200, body = [RewriteReview]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn rewrite_reviews(State(state): State<Arc<AppState>>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ReviewRewrites)?;
    let svc = crate::simplify::service(&state)?;
    let rows = blocking(move || svc.reviews().map_err(ApiError::from)).await?;
    let list: Vec<RewriteReview> = rows
        .into_iter()
            .map(|(key, p, d)| RewriteReview {
                key,
                url: p.url,
                title: p.title,
                generated_at: p.generated_at,
                units_rewritten: p.summary.units_rewritten,
                units: p.summary.units,
                flesch_before: p.readability.before.flesch_amstad,
                flesch_after: p.readability.after.flesch_amstad,
                status: d.as_ref().map_or(lotse_simplify::ReviewStatus::Pending, |d| d.status),
                reviewer: d.as_ref().map(|d| d.reviewer.clone()),
                decided_at: d.as_ref().map(|d| d.decided_at),
                corrections: d.map(|d| d.corrections).unwrap_or_default(),
            })
        .collect();
    let mut r = Json(list).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One rewrite as the model made it, block by block beside the original (for the review).
#[utoipa::path(get, path = "/portal/api/simplify/reviews/{key}", tag = "portal", params(("key" = String, Path)),
    responses((status = 200, body = lotse_simplify::SimplifiedPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rewrite_review(State(state): State<Arc<AppState>>, Path(key): Path<String>, c: Ctx) -> Result<Response, ApiError> {
    c.allow(&Action::ReviewRewrites)?;
    let svc = crate::simplify::service(&state)?;
    let page = blocking(move || svc.review(&key).map_err(ApiError::from)).await?;
    let mut r = Json(page).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Approve or reject a rewrite of a legal text; citizens see the decision at their next click.
#[utoipa::path(post, path = "/portal/api/simplify/reviews/{key}", tag = "portal", params(("key" = String, Path)), request_body = ReviewRequest,
    responses((status = 200, body = lotse_simplify::ReviewDecision), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn decide_review(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    c: Ctx,
    body: Result<Json<ReviewRequest>, JsonRejection>,
) -> Result<Json<lotse_simplify::ReviewDecision>, ApiError> {
    c.allow(&Action::ReviewRewrites)?;
    let req = json_body(body)?;
    let reviewer = c.user()?.name.clone();
    let svc = crate::simplify::service(&state)?;
    let d = blocking(move || {
        svc.decide(&key, req.status, &reviewer, &req.corrections, req.generated_at).map_err(ApiError::from)
    })
    .await?;
    // which page and which text: the page's address, the rewrite's key and how many blocks
    // staff corrected (their wording is public text of the town, kept with the decision)
    // the count and a digest of the corrections: which wording was approved stays traceable
    // after a later decision replaces this one
    let corrected = match d.corrections.len() {
        0 => String::new(),
        n => format!(", {n} corrected, sha256 {}", d.corrections_digest()),
    };
    audit_full(
        &c,
        AuditEntry {
            action: "review_rewrite".into(),
            outcome: d.status.key().into(),
            content: Some(format!("{} ({}){corrected}", d.url, d.key)),
            ..AuditEntry::default()
        },
    )
    .await;
    Ok(Json(d))
}
