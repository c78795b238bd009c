//! Staff reviews of the model's rewrites of legal texts (Einfache Sprache).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lotse_portal::auth::Action;
use lotse_portal::store::AuditEntry;
use lotse_wire::reviews::{ReviewDecision, ReviewRequest, RewriteReview};

use crate::AppState;
use crate::wire::reviews as wire;
use crate::error::{ApiError, ErrorBody};
use super::context::{Ctx, audit_full, blocking, json_body};

// ---- reviews of simplified legal texts ----------------------------------------------------

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
                status: wire::status(d.as_ref().map_or(lotse_simplify::ReviewStatus::Pending, |d| d.status)),
                reviewer: d.as_ref().map(|d| d.reviewer.clone()),
                decided_at: d.as_ref().map(|d| d.decided_at),
                corrections: d.map(|d| d.corrections).unwrap_or_default().into_iter().map(wire::correction).collect(),
            })
        .collect();
    let mut r = Json(list).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One rewrite as the model made it, block by block beside the original (for the review).
#[utoipa::path(get, path = "/portal/api/simplify/reviews/{key}", tag = "portal", params(("key" = String, Path)),
    responses((status = 200, body = lotse_wire::simplify::SimplifiedPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
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
    responses((status = 200, body = ReviewDecision), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn decide_review(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    c: Ctx,
    body: Result<Json<ReviewRequest>, JsonRejection>,
) -> Result<Json<ReviewDecision>, ApiError> {
    c.allow(&Action::ReviewRewrites)?;
    let req = json_body(body)?;
    let reviewer = c.user()?.name.clone();
    let svc = crate::simplify::service(&state)?;
    let d = blocking(move || {
        let corrections: Vec<lotse_simplify::BlockCorrection> = req.corrections.into_iter().map(wire::correction_in).collect();
        svc.decide(&key, wire::status_in(req.status), &reviewer, &corrections, req.generated_at).map_err(ApiError::from)
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
    Ok(Json(wire::decision(d)))
}
