//! Einfache Sprache over HTTP: `GET /api/v1/simplify?url=` checks the address (only pages of
//! the index's own sites; a URL is never fetched here: another host, scheme or an address
//! outside the sites is a 400 before anything else happens) and answers from the rewrite
//! service (`lotse_service::rewrites`: the cache, the queue, the worker and the review policy
//! for legal texts): 200 with the page, or 202 with Retry-After while it is being rewritten.

use std::sync::Arc;


use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

pub use lotse_service::rewrites::{
    ChatBusy, DecideError, Lookup, SimplifyService, job_url, rules_pass_slot,
};
pub use lotse_wire::simplify::{JobState, Pending, SimplifyQuery};
/// The running rewrite service: 503 while starting, or when switched off in the settings.
pub(crate) fn service(state: &AppState) -> Result<Arc<SimplifyService>, ApiError> {
    if !state.config.simplify.enabled {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "simplify_disabled",
            "Die Übertragung in Einfache Sprache ist auf dieser Website nicht eingeschaltet.",
        ));
    }
    state.simplify().ok_or_else(ApiError::starting)
}

/// A 202 with `Retry-After` and `Location`.
pub(crate) fn accepted(p: Pending) -> Response {
    let retry = p.retry_after;
    let location = p.status_url.clone();
    let mut resp = (StatusCode::ACCEPTED, Json(p)).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The page address as the index keys it, if it belongs to one of `sites`
/// (`lotse_service::refresh::check_url`). Nothing is fetched.
pub fn check_url(raw: &str, sites: &[String]) -> Result<String, ApiError> {
    Ok(lotse_service::refresh::check_url(raw, sites)?)
}

/// A page in Einfache Sprache.
///
/// Served from the cache when the page was rewritten before (normally: pages are rewritten
/// in the background after each crawl). Otherwise the page is queued and the answer is 202
/// with `Retry-After`: ask again until it is 200.
#[utoipa::path(
    get,
    path = "/api/v1/simplify",
    tag = "citizens",
    params(SimplifyQuery),
    responses(
        (status = 200, description = "The page in Einfache Sprache", body = lotse_wire::simplify::SimplifiedPage),
        (status = 202, description = "Being rewritten; ask again after Retry-After seconds", body = Pending),
        (status = 400, description = "Not a page of the town's website", body = ErrorBody),
        (status = 404, description = "The page is not in the index", body = ErrorBody),
        (status = 503, description = "Too many pages waiting, or starting", body = ErrorBody)
    )
)]
pub async fn simplify(
    State(state): State<Arc<AppState>>,
    query: Result<Query<SimplifyQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::bad_request(
            "missing_url",
            "Bitte geben Sie die Adresse der Seite an (url).",
        )
    })?;
    let svc = service(&state)?;
    let svc2 = svc.clone();
    let looked_up = tokio::task::spawn_blocking(move || {
        let url = check_url(&q.url, &svc2.sites())?;
        let status_url = lotse_service::rewrites::status_url(&url);
        Ok::<_, ApiError>((svc2.lookup(&url, &status_url), status_url))
    })
    .await
    .map_err(|e| {
        // a panic or a cancelled task: its text is for the log, never for citizens
        tracing::error!(error = %e, "simplify lookup task failed");
        ApiError::internal()
    })??;
    match looked_up {
        (Lookup::Ready(page), _) => Ok(Json(page.as_ref()).into_response()),
        (Lookup::Pending(p), _) => Ok(accepted(p)),
        (Lookup::Unknown, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_page",
            "Diese Seite ist dem Assistenten nicht bekannt. Vielleicht ist sie neu: Bitte versuchen Sie es später noch einmal.",
        )),
        (Lookup::Full, _) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Im Moment werden sehr viele Seiten übertragen. Bitte versuchen Sie es in einigen Minuten noch einmal.",
        )
        .retry_after(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_the_sites_pass() {
        let sites = vec!["http://127.0.0.1:18089".to_string()];
        assert_eq!(
            check_url("http://127.0.0.1:18089/rathaus/?utm_source=x#top", &sites).unwrap(),
            "http://127.0.0.1:18089/rathaus/"
        );
        // the crawler's tracking list (lotse_core::tracking): a session id keys no other page
        assert_eq!(
            check_url("http://127.0.0.1:18089/rathaus/?sid=7&seite=2&pk_campaign=x", &sites).unwrap(),
            "http://127.0.0.1:18089/rathaus/?seite=2"
        );
        for bad in [
            "https://evil.example/rathaus/",
            "file:///etc/passwd",
            "http://127.0.0.1:22/",
            "http://10.0.0.1/",
            "http://user:pw@127.0.0.1:18089/",
            "ftp://127.0.0.1:18089/",
            "nicht eine adresse",
            "",
        ] {
            let e = check_url(bad, &sites).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(!e.message.is_empty());
        }
    }
}
