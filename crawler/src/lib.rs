//! The Lotse crawler: fetches a town website politely and turns it into structured pages in the
//! search index.
//!
//! Design decision: the fetch loop is our own (tokio + reqwest, the HTTP stack `spider` itself
//! uses) rather than `spider`'s crawl loop, because the crawl must revalidate each URL with the
//! validators stored in the index (ETag / Last-Modified), replay a 304 page's stored links,
//! pause a host on `Retry-After`, and commit index batches atomically; see ARCHITECTURE.md.
//! Extraction (HTML, PDF, charsets, boilerplate) lives in `lotse-extract`.

mod crawl;
pub mod fetch;
pub mod robots;
pub mod sitemap;
pub mod urls;

pub use crawl::{
    CrawlConfig, CrawlSummary, Failure, NoProgress, Progress, crawl, crawl_with_embedder,
};

/// Errors that stop a crawl. Per-URL problems are not errors: they are counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("invalid site url {0}: expected an absolute http(s) url")]
    InvalidUrl(String),
    #[error("http client: {0}")]
    Client(String),
    #[error("site {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(transparent)]
    Index(#[from] lotse_index::IndexError),
}
