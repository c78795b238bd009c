//! Lotse's application layer: what the server does, without HTTP. Each service owns its
//! business rules (queues, transactions, policies, audit entries) and returns its own error
//! enum; `lotse-server` parses a request, calls one method and maps the error to a status in
//! one place (`server::error`).
//!
//! Invariants:
//! - No HTTP types here (no axum, no status codes); German messages for users are part of the
//!   errors where the rule that refuses owns the wording.
//! - The engines (`index`, `answer`, `simplify`, `portal`) stay below: a service combines
//!   them, it does not reach into their internals.

pub mod accounts;
pub mod answers;
pub mod documents;
pub mod feedback;
pub mod insights;
pub mod policy;
pub mod rewrite_store;
pub mod refresh;
pub mod rewrites;
pub mod staff_chat;
