//! The CMS's publish webhook without HTTP: re-fetch one page of an indexed site (robots.txt
//! obeyed, same-site redirects only), re-index it, reload the index (which clears the answer
//! cache when the content changed) and queue its new rewrite.
//!
//! Invariants:
//! - Only addresses of the index's own sites are fetched (`check_url`); nothing else is.
//! - One refresh (or upload/delete) at a time: it holds the one-writer lock it is given; a held
//!   lock is `Busy` at once. An index locked by another process (a crawl, a replica sharing
//!   the index directory) is waited for up to 10 s (`CrawlConfig::page`), then `Busy`.
//! - A redirect to another host is not followed and is an error, after the reload.

use std::future::Future;
use std::sync::Arc;

use lotse_answer::Answerer;
use lotse_core::CollectionScope;
use lotse_crawler::{CrawlConfig, CrawlError, NoProgress};

use crate::rewrites::{Lookup, SimplifyService, status_url};

/// Why an address is refused before anything is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No address given.
    #[error("missing url")]
    Missing,
    /// Not an absolute URL.
    #[error("invalid url")]
    Invalid,
    /// Another scheme, host or port than the index's sites, or credentials in it.
    #[error("not a page of the indexed sites")]
    Foreign,
}

impl UrlError {
    /// The German message for the user.
    pub fn message(self) -> &'static str {
        match self {
            UrlError::Missing => "Bitte geben Sie die Adresse der Seite an (url).",
            UrlError::Invalid => {
                "Die Adresse ist ungültig. Bitte geben Sie die vollständige Adresse der Seite an, zum Beispiel https://www.gemeinde.de/seite/."
            }
            UrlError::Foreign => {
                "Es können nur Seiten der Website der Gemeinde in Einfache Sprache übertragen werden."
            }
        }
    }
}

/// The page address as the index keys it, if it belongs to one of `sites`: http(s) only, no
/// credentials, no fragment, no tracking parameters. Nothing is fetched.
pub fn check_url(raw: &str, sites: &[String]) -> Result<String, UrlError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlError::Missing);
    }
    let mut url = url::Url::parse(raw).map_err(|_| UrlError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(UrlError::Foreign);
    }
    let origin = url.origin().ascii_serialization();
    if !sites.iter().any(|s| s.trim_end_matches('/') == origin) {
        return Err(UrlError::Foreign);
    }
    url.set_fragment(None);
    if url.query().is_some() {
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !lotse_core::tracking::is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        pairs.sort();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    Ok(url.to_string())
}

/// Why a refresh did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The server is starting (no index yet).
    #[error("the index is not open yet")]
    Starting,
    /// The address is not one of the index's pages.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// Another refresh, upload or crawl holds the index.
    #[error("another refresh or crawl is running")]
    Busy,
    /// The page did not answer (logged with the reason).
    #[error("the page did not answer")]
    Unreachable,
    /// The page redirects to another site; not followed.
    #[error("the page redirects to another site")]
    RedirectElsewhere,
    /// The crawl failed otherwise, or a task did.
    #[error("refresh failed: {0}")]
    Internal(String),
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStatus {
    /// Fetched, changed and indexed again.
    Updated,
    /// Fetched; the same text as before.
    Unchanged,
    /// Gone (404/410): removed from the index.
    Removed,
    /// Not indexed: too little text, noindex, a redirect or robots.txt.
    NotIndexed,
}

impl PageStatus {
    /// The German message for the CMS.
    pub fn message(self) -> &'static str {
        match self {
            PageStatus::Updated => "Die Seite wurde neu aufgenommen.",
            PageStatus::Unchanged => "Die Seite ist unverändert.",
            PageStatus::Removed => "Die Seite gibt es nicht mehr; sie wurde entfernt.",
            PageStatus::NotIndexed => {
                "Die Seite wird nicht aufgenommen (zu wenig Text, noindex, Weiterleitung oder durch robots.txt ausgeschlossen)."
            }
        }
    }
}

/// A finished refresh.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The address as the index keys it.
    pub url: String,
    pub status: PageStatus,
    /// Where its rewrite is (or will be), when the page is indexed and rewrites are on.
    pub simplify_url: Option<String>,
    /// The rewrite is ready already.
    pub simplified: bool,
}

/// The page refresh: the answerer (index, embedder), the rewrite service if running, and the
/// one-writer lock shared with uploads.
pub struct PageRefresh {
    answerer: Option<Arc<Answerer>>,
    rewrites: Option<Arc<SimplifyService>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    contact_url: Option<String>,
}

impl PageRefresh {
    /// `answerer` is `None` while the server starts; `contact_url` goes into the crawler's
    /// user agent (`LOTSE_CONTACT_URL`).
    pub fn new(
        answerer: Option<Arc<Answerer>>,
        rewrites: Option<Arc<SimplifyService>>,
        lock: Arc<tokio::sync::Mutex<()>>,
        contact_url: Option<String>,
    ) -> PageRefresh {
        PageRefresh {
            answerer,
            rewrites,
            lock,
            contact_url,
        }
    }

    /// Re-fetch `raw_url`, re-index it, run `reload_index` (the server's index reload, which
    /// clears the answer cache when the content changed), then look up its rewrite (queued
    /// when not ready). The crawl of the one page runs on this task (its fetch is async; its
    /// index write is short).
    pub async fn refresh(
        &self,
        raw_url: &str,
        reload_index: impl Future<Output = ()>,
    ) -> Result<Refreshed, RefreshError> {
        let answerer = self.answerer.clone().ok_or(RefreshError::Starting)?;
        let a = answerer.clone();
        let sites = tokio::task::spawn_blocking(move || a.index().sites().unwrap_or_default())
            .await
            .map_err(task)?;
        let url = check_url(raw_url, &sites)?;
        let _one_at_a_time = self.lock.try_lock().map_err(|_| RefreshError::Busy)?;
        let before = page_hash(&answerer, &url).await;

        let mut cfg = CrawlConfig::page(
            url::Url::parse(&url).map_err(|e| RefreshError::Internal(e.to_string()))?,
        );
        if let Some(contact) = &self.contact_url {
            cfg.contact_url = contact.clone();
        }
        let embedder = answerer.embedder().cloned().map(|e| {
            Arc::new(lotse_answer::PassageEmbedder(e)) as Arc<dyn lotse_index::ChunkEmbedder>
        });
        let summary =
            match lotse_crawler::crawl_with_embedder(&cfg, answerer.index(), &NoProgress, embedder)
                .await
            {
                Ok(s) => s,
                Err(CrawlError::Unreachable { reason, .. }) => {
                    tracing::warn!(%url, %reason, "refresh: the page did not answer");
                    return Err(RefreshError::Unreachable);
                }
                Err(CrawlError::Index(lotse_index::IndexError::Locked { .. })) => {
                    return Err(RefreshError::Busy);
                }
                Err(e) => return Err(RefreshError::Internal(e.to_string())),
            };
        reload_index.await;
        if summary.skipped.contains_key("redirect_out_of_scope") {
            tracing::warn!(%url, "refresh: the page redirects to another site; not followed");
            return Err(RefreshError::RedirectElsewhere);
        }
        let after = page_hash(&answerer, &url).await;
        let status = if summary.removed > 0 {
            PageStatus::Removed
        } else if after.is_none() {
            PageStatus::NotIndexed
        } else if summary.pages_indexed > 0 && before != after {
            PageStatus::Updated
        } else {
            PageStatus::Unchanged
        };
        tracing::info!(%url, ?status, "page refreshed");
        let (mut simplify_url, mut simplified) = (None, false);
        if after.is_some()
            && let Some(svc) = self.rewrites.clone()
        {
            let status_url = status_url(&url);
            let (u, s) = (url.clone(), status_url.clone());
            let lookup = tokio::task::spawn_blocking(move || svc.lookup(&u, &s))
                .await
                .map_err(task)?;
            simplified = matches!(lookup, Lookup::Ready(_));
            simplify_url = Some(status_url);
        }
        Ok(Refreshed {
            url,
            status,
            simplify_url,
            simplified,
        })
    }
}

fn task(e: tokio::task::JoinError) -> RefreshError {
    RefreshError::Internal(e.to_string())
}

/// The content hash of the indexed page at `url`, if indexed and public.
async fn page_hash(answerer: &Arc<Answerer>, url: &str) -> Option<String> {
    let (a, u) = (answerer.clone(), url.to_string());
    tokio::task::spawn_blocking(move || {
        a.index()
            .page(&u, &CollectionScope::public_website())
            .ok()
            .flatten()
            .map(|(r, _)| r.content_hash)
    })
    .await
    .ok()
    .flatten()
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
        assert_eq!(check_url(" ", &sites), Err(UrlError::Missing));
        assert_eq!(
            check_url("nicht eine adresse", &sites),
            Err(UrlError::Invalid)
        );
        assert_eq!(
            check_url("http://10.0.0.1/", &sites),
            Err(UrlError::Foreign)
        );
    }
}
