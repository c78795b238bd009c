//! Routes for the town's CMS, behind a bearer token (`[cms] token`):
//!
//! - `POST /api/v1/simplify` with `{html | text, url?, title?}`: the CMS's own text in
//!   Einfache Sprache (e.g. for a page being edited). 200 when rewritten before, else 202 with
//!   a status URL `GET /api/v1/simplify/jobs/{id}`.
//! - `POST /api/v1/pages/refresh` with `{url}`: the publish webhook. Re-fetches that one page
//!   of an indexed site (robots.txt obeyed, same-site redirects only), re-indexes it and queues
//!   its new rewrite, so the next click on "Einfache Sprache" finds it ready.
//!
//! Invariants: nothing here runs without the configured token or a portal API token with the
//! `simplify` / `refresh` scope (403 when none is configured,
//! 401 for a wrong one, compared in constant time); only URLs of the index's own sites are
//! fetched (`simplify::check_url`); one refresh at a time; the CMS's text is never logged.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotse_service::refresh::PageStatus;
use lotse_portal::Action;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::simplify::{self, Lookup, Pending, accepted};

pub use lotse_wire::simplify::{ContentRequest, RefreshRequest, RefreshResponse, RefreshStatus};

/// Largest request body of `POST /api/v1/simplify` (a whole page as HTML).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Largest page the CMS may send, in blocks (headings, paragraphs, list items, tables).
const MAX_BLOCKS: usize = 400;

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The request carries the CMS token, or a portal API token with the action's scope.
async fn authorize(state: &AppState, headers: &HeaderMap, action: Action<'static>) -> Result<(), ApiError> {
    if let Some(r) = crate::portal::cms_token(state, headers, action).await {
        return r;
    }
    configured_token(state, headers)
}

/// The request carries the configured `[cms] token`.
fn configured_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.cms.token.as_deref().filter(|t| !t.trim().is_empty()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cms_disabled",
            "Der Zugang für das Redaktionssystem ist nicht eingerichtet ([cms] token).",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    let (a, b) = (digest(given), digest(expected.trim()));
    let differ = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if given.is_empty() || differ != 0 {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Bitte melden Sie sich mit dem Zugangsschlüssel des Redaktionssystems an (Authorization: Bearer …).",
        ));
    }
    Ok(())
}

fn json_error(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::BytesRejection(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "Der Text ist zu lang.",
        ),
        _ => ApiError::bad_request(
            "invalid_body",
            "Die Anfrage ist ungültig: erwartet wird JSON mit den beschriebenen Feldern.",
        ),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "CMS request failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Ein interner Fehler ist aufgetreten. Bitte versuchen Sie es später noch einmal.",
    )
}

/// 200 / 202 / 503 for a lookup; 404 for an unknown job.
fn lookup_response(lookup: Lookup) -> Result<Response, ApiError> {
    match lookup {
        Lookup::Ready(page) => Ok(Json(page.as_ref()).into_response()),
        Lookup::Pending(p) => Ok(accepted(p)),
        Lookup::Unknown => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_job",
            "Zu dieser Kennung gibt es keine Übertragung in Einfache Sprache.",
        )),
        Lookup::Full => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Im Moment werden sehr viele Seiten übertragen. Bitte versuchen Sie es in einigen Minuten noch einmal.",
        )
        .retry_after(60)),
    }
}

/// The CMS's own text in Einfache Sprache.
///
/// The same text (and the same model and rules) is rewritten once: sending it again returns
/// the stored result. Poll the status URL of a 202 until it answers 200.
#[utoipa::path(
    post,
    path = "/api/v1/simplify",
    tag = "cms",
    request_body = ContentRequest,
    security(("cms_token" = [])),
    responses(
        (status = 200, description = "The text in Einfache Sprache", body = lotse_wire::simplify::SimplifiedPage),
        (status = 202, description = "Being rewritten; poll `status_url`", body = Pending),
        (status = 400, description = "Neither html nor text, or nothing to rewrite", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "No CMS token configured", body = ErrorBody),
        (status = 413, description = "Too long", body = ErrorBody),
        (status = 503, description = "Too many pages waiting, or starting", body = ErrorBody)
    )
)]
pub async fn simplify_content(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<ContentRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Action::CmsSimplify).await?;
    let Json(req) = body.map_err(json_error)?;
    let url = req.url.as_deref().map(str::trim).unwrap_or("");
    let base = if url.is_empty() {
        url::Url::parse("https://cms.invalid/").map_err(internal)?
    } else {
        url::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
            ApiError::bad_request("invalid_url", "Die Adresse (url) ist ungültig.")
        })?
    };
    let title = req.title.as_deref().unwrap_or("");
    let page = match (req.html.as_deref(), req.text.as_deref()) {
        (Some(html), None) => {
            let mut page = lotse_extract::html::extract_html(html, &base).page;
            page.url = url.to_string();
            if !title.trim().is_empty() {
                page.title = title.trim().to_string();
            }
            page
        }
        (None, Some(text)) => lotse_extract::plain::page_from_text(text, url, title),
        _ => {
            return Err(ApiError::bad_request(
                "html_or_text",
                "Bitte senden Sie den Inhalt entweder als html oder als text.",
            ));
        }
    };
    let n_blocks: usize = page
        .blocks
        .iter()
        .map(|b| match b {
            lotse_core::Block::List { items, .. } => items.len(),
            _ => 1,
        })
        .sum();
    if page.blocks.iter().all(|b| b.text().trim().is_empty()) {
        return Err(ApiError::bad_request(
            "empty_text",
            "Der Inhalt enthält keinen Text, der übertragen werden kann.",
        ));
    }
    if n_blocks > MAX_BLOCKS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("Der Text ist zu lang (höchstens {MAX_BLOCKS} Absätze und Listenpunkte)."),
        ));
    }
    let svc = simplify::service(&state)?;
    // the CMS's text is not published yet: personal data in it never goes to an external
    // engine (`policy`)
    let all = format!("{}\n{}", page.title, page.text());
    if let Err(refusal) = crate::policy::may_send(svc.engine(), &crate::policy::Outgoing::text(&all)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            refusal.code(),
            format!(
                "Der Text enthält vermutlich personenbezogene Daten ({}). Nach dem KI-Kompass dürfen solche Daten nicht an externe KI-Dienste gehen, deshalb wird er nicht in Einfache Sprache übertragen. Bitte entfernen Sie die Angaben.",
                refusal.kinds_de()
            ),
        ));
    }
    let (_, lookup) = tokio::task::spawn_blocking(move || svc.lookup_content(page))
        .await
        .map_err(internal)?;
    lookup_response(lookup)
}

/// Where a rewrite of CMS text stands (the status URL of `POST /api/v1/simplify`).
#[utoipa::path(
    get,
    path = "/api/v1/simplify/jobs/{id}",
    tag = "cms",
    params(("id" = String, Path, description = "The job id from the 202's status URL")),
    security(("cms_token" = [])),
    responses(
        (status = 200, description = "The text in Einfache Sprache", body = lotse_wire::simplify::SimplifiedPage),
        (status = 202, description = "Being rewritten; ask again after Retry-After seconds", body = Pending),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "No CMS token configured", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody)
    )
)]
pub async fn simplify_job(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, Action::CmsSimplify).await?;
    let svc = simplify::service(&state)?;
    let lookup = tokio::task::spawn_blocking(move || svc.job_status(&id))
        .await
        .map_err(internal)?;
    lookup_response(lookup)
}

/// The CMS's publish webhook: re-fetch one page, re-index it, rewrite it.
///
/// Call it after a page was published, changed or deleted. Only pages of the sites in the
/// index are fetched. Answers when the page is indexed; its rewrite in Einfache Sprache
/// follows in the background (`simplify_url`).
#[utoipa::path(
    post,
    path = "/api/v1/pages/refresh",
    tag = "cms",
    request_body = RefreshRequest,
    security(("cms_token" = [])),
    responses(
        (status = 200, description = "The page was fetched again", body = RefreshResponse),
        (status = 400, description = "Not a page of the town's website, or it redirects to another site", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "No CMS token configured", body = ErrorBody),
        (status = 502, description = "The website did not answer", body = ErrorBody),
        (status = 503, description = "Another refresh or crawl is running, or starting", body = ErrorBody)
    )
)]
pub async fn refresh_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<Json<RefreshResponse>, ApiError> {
    authorize(&state, &headers, Action::CmsRefresh).await?;
    let Json(req) = body.map_err(json_error)?;
    let refreshed = state.page_refresh().refresh(&req.url, state.refresh_index()).await?;
    let status = match refreshed.status {
        PageStatus::Updated => RefreshStatus::Updated,
        PageStatus::Unchanged => RefreshStatus::Unchanged,
        PageStatus::Removed => RefreshStatus::Removed,
        PageStatus::NotIndexed => RefreshStatus::NotIndexed,
    };
    Ok(Json(RefreshResponse {
        url: refreshed.url,
        status,
        simplify_url: refreshed.simplify_url,
        simplified: refreshed.simplified,
        message: refreshed.status.message().into(),
    }))
}
