//! The body of every error response (and of the stream's `error` event).

use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `empty_question`.
    #[cfg_attr(feature = "openapi", schema(example = "empty_question"))]
    pub code: String,
    /// A German message that can be shown to citizens.
    #[cfg_attr(feature = "openapi", schema(example = "Bitte geben Sie eine Frage ein."))]
    pub message: String,
}
