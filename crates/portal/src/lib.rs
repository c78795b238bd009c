//! Lotse's staff portal: who may do what, and what staff bring with them.
//!
//! Design decision: authorisation is decided in one function, [`auth::authorize`], from a
//! [`auth::Principal`] (a signed-in user, or an API token acting for one with its scopes) and an
//! [`auth::Action`]. Handlers ask it and never compare roles themselves.
//!
//! Invariants:
//! - A private collection is visible to its group's members (or its one owner) only; its
//!   documents are indexed with that collection's id and [`lotse_core::Visibility`], so public
//!   queries (which name only the website collection) cannot reach them.
//! - Passwords are stored as argon2id hashes; session and API tokens only as SHA-256 hashes.
//! - An upload is extracted completely before anything is written: a bad file leaves the store
//!   and the index as they were.
//! - The audit log holds who, when, which model, which collections and token counts; text only
//!   when the town switches `[portal] audit_content` on, and then with personal data redacted.
//! - Nothing here logs document or chat text.

pub mod auth;
pub mod documents;
pub mod insights;
pub mod kompass;
pub mod pii;
pub mod store;

pub use auth::{Action, Denied, Level, Principal, Role, Scope};
pub use store::{Store, StoreError};
