//! Health and readiness.

use serde::{Deserialize, Serialize};

/// Liveness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
    pub uptime_secs: u64,
}

/// Readiness: models loaded, index open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// `ready` or `starting`.
    pub status: String,
    pub model: Option<String>,
    pub embedder: Option<String>,
    pub pages: Option<u64>,
    pub chunks: Option<u64>,
    /// The main engine runs outside the town's servers (no private collections, no
    /// personal data go to it).
    #[serde(default)]
    pub engine_external: Option<bool>,
    /// What the admin should know about this setup (English), e.g. why staff chat over
    /// private collections is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
