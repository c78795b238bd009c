//! Lotse extraction: bytes in, structured [`lotse_core::Page`]s out. Used by the crawler (web
//! pages and PDFs), the CMS routes (HTML sent by the CMS) and the staff portal (uploads).
//!
//! - [`html`]: HTML -> the main content as blocks, plus canonical URL and links.
//! - [`boilerplate`]: text repeated across the pages of one site.
//! - [`charset`]: bytes -> text (BOM, HTTP header, `<meta charset>`, windows-1252 fallback).
//! - [`pdf`]: PDF -> page, read under [`pdf_limits`] (what a PDF may cost).
//! - [`upload`]: an uploaded file (PDF, DOCX, ODT, text, Markdown, HTML) sniffed by its bytes
//!   and extracted.
//! - [`plain`]: the plain text with light markup a CMS sends -> page.
//!
//! Design decision: of our crates this one depends only on `lotse-core` and `lotse-text`
//! (pure functions: month names), besides parsing crates; it does no
//! network IO (fetching, robots.txt and sitemaps stay in the crawler), so the portal can read
//! uploads without pulling in an HTTP client.

pub mod boilerplate;
pub mod charset;
pub mod html;
pub mod pdf;
pub mod pdf_limits;
pub mod plain;
pub mod upload;

#[cfg(test)]
mod tests {
    /// The crate's invariant: of our crates only `lotse-core` and `lotse-text` (no IO),
    /// and no network or index.
    #[test]
    fn depends_only_on_core() {
        let manifest = include_str!("../Cargo.toml");
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
        let deps = deps.split("\n[").next().unwrap_or("");
        for line in deps.lines() {
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            assert!(!name.starts_with("lotse-") || ["lotse-core", "lotse-text"].contains(&name), "{line}");
            assert!(!["reqwest", "hyper", "tokio", "ureq", "tantivy"].contains(&name), "{line}");
        }
    }
}
