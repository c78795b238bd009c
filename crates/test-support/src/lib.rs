//! Test fixtures and fakes shared by the workspace's integration tests (a dev-dependency only,
//! never published): generator fakes that say so in their names (`fakes`), small builders of
//! index records, pages and indexes ([`fixtures`]), and [`wait_until`] / [`wait_until_async`],
//! which poll a condition with a deadline instead of sleeping a fixed time.
//!
//! It depends on `lotse-core`, `lotse-index` and, for the fakes (feature `fakes`),
//! `lotse-inference` only, so the crates below the server can use it without building the
//! server (the index's tests do without the fakes, so without candle); the server's own
//! harness (`serve`) lives in `crates/server/tests/it/common.rs`.

#[cfg(feature = "fakes")]
pub mod fakes;
pub mod fixtures;
mod wait;

#[cfg(feature = "fakes")]
pub use fakes::{
    FakeChattySplittingRewriter, FakeCitingGenerator, FakeNumberChangingRewriter,
    FakeRecordingExternalEngine, FakeSplittingRewriter,
};
pub use fixtures::{build_index, page, record, town_index};
pub use wait::{wait_until, wait_until_async};
