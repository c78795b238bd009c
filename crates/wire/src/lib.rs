//! Lotse's wire types: the JSON bodies of the public API (`/api/v1/*`, the OpenAI-compatible
//! `/v1/*`, health and readiness), of the staff portal's API (`/portal/api/*`) and the
//! payloads of the chat's server-sent events. The server converts its domain types into
//! these; the widget (wasm32) reads and writes the same types.
//!
//! Invariants:
//! - Builds for `wasm32-unknown-unknown`: serde only, no domain crates, no tokio.
//! - `utoipa` derives (`ToSchema`, `IntoParams`) only behind the `openapi` feature, which
//!   the server enables and the widget does not (it would cost the widget bytes).
//! - A type here is the contract: changing a field changes the API (and `openapi/openapi.json`).

pub mod chat;
pub mod error;
pub mod insights;
pub mod openai;
pub mod ops;
pub mod portal;
pub mod reviews;
pub mod search;
pub mod simplify;

pub use chat::{Answer, AnswerRequest, AskedKind, Lang, Quote, Source, Speaker, Timings, TokenEvent, Turn};
pub use error::{ErrorBody, ErrorDetail};
