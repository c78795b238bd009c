//! `GET /api/v1/search`.

use serde::{Deserialize, Serialize};

/// Search parameters (the query string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SearchParams {
    /// The search words.
    pub q: String,
    /// Number of results, 1 to 50 (default 10).
    pub limit: Option<usize>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResult {
    pub url: String,
    pub title: String,
    pub heading: String,
    pub deep_link: String,
    pub snippet: String,
    pub score: f32,
}

/// Search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    pub query: String,
    pub results: Vec<SearchResult>,
}
