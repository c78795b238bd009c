//! Lotse's domain types: what a page is, how it is split into chunks, who may see it.
//!
//! Design decision: this crate does no IO and depends on nothing but `serde`, so every other
//! crate (and later the WASM widget) can share these types. Crawling, indexing, inference and
//! HTTP live elsewhere and convert into and out of these types.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod tracking;

/// Who may see a document. Every indexed document carries one from the start; a query always
/// names the collections it may see (see [`CollectionScope`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Visibility {
    /// Anyone, including citizens on the public website.
    Public,
    /// Members of one staff group.
    Group(String),
    /// One staff member only.
    User(String),
}

impl Visibility {
    /// Stable string form stored in the index: `public`, `group:<id>`, `user:<id>`.
    pub fn as_key(&self) -> String {
        match self {
            Visibility::Public => "public".to_owned(),
            Visibility::Group(g) => format!("group:{g}"),
            Visibility::User(u) => format!("user:{u}"),
        }
    }

    /// Inverse of [`Visibility::as_key`].
    pub fn from_key(key: &str) -> Option<Visibility> {
        match key.split_once(':') {
            None if key == "public" => Some(Visibility::Public),
            Some(("group", g)) if !g.is_empty() => Some(Visibility::Group(g.to_owned())),
            Some(("user", u)) if !u.is_empty() => Some(Visibility::User(u.to_owned())),
            _ => None,
        }
    }
}

/// Name of a collection of documents, e.g. `website` for the public town website.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CollectionId(pub String);

impl CollectionId {
    /// The collection that crawled public website pages go into by default.
    pub fn website() -> CollectionId {
        CollectionId("website".to_owned())
    }
}

impl fmt::Display for CollectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The set of collections a query may see. There is deliberately no "everything" value:
/// a public query names the public collections, a staff query names the staff member's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionScope {
    collections: Vec<CollectionId>,
}

impl CollectionScope {
    /// A scope over exactly these collections. An empty scope matches nothing.
    pub fn new(collections: impl IntoIterator<Item = CollectionId>) -> CollectionScope {
        let mut collections: Vec<CollectionId> = collections.into_iter().collect();
        collections.sort();
        collections.dedup();
        CollectionScope { collections }
    }

    /// The public website collection only: what citizens' queries see.
    pub fn public_website() -> CollectionScope {
        CollectionScope::new([CollectionId::website()])
    }

    pub fn collections(&self) -> &[CollectionId] {
        &self.collections
    }
}

/// Where a document came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Html,
    Pdf,
    /// A Word document (staff uploads).
    Docx,
    /// An OpenDocument text (staff uploads).
    Odt,
    /// Plain text or Markdown (staff uploads).
    Text,
}

/// One structural block of a document's main content, in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Block {
    /// A heading; `level` 1..=6. `anchor` is the element id when the source has one.
    Heading {
        level: u8,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anchor: Option<String>,
    },
    Paragraph {
        text: String,
    },
    List {
        ordered: bool,
        items: Vec<String>,
    },
    /// Table rows; the first row is the header row when the source marks one.
    Table {
        rows: Vec<Vec<String>>,
    },
}

impl Block {
    /// Plain text of the block, items and cells joined readably.
    pub fn text(&self) -> String {
        match self {
            Block::Heading { text, .. } | Block::Paragraph { text } => text.clone(),
            Block::List { items, .. } => items
                .iter()
                .map(|i| format!("- {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Table { rows } => rows
                .iter()
                .map(|r| r.join(" | "))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// A fetched and cleaned document: the main content of an HTML page or the text of a PDF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Canonical absolute URL: the one the page is indexed and cited under.
    pub url: String,
    pub title: String,
    pub kind: DocKind,
    /// BCP 47 language tag from the document, if it declares one (`de`, `en`, ...).
    pub lang: Option<String>,
    /// Last modification date as the site states it (ISO 8601 date or date-time).
    pub modified: Option<String>,
    pub blocks: Vec<Block>,
}

impl Page {
    /// All text of the page, blocks separated by blank lines.
    pub fn text(&self) -> String {
        self.blocks
            .iter()
            .map(Block::text)
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

/// A retrievable piece of a page: one section (or part of one) with its place in the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub url: String,
    pub page_title: String,
    /// Headings from the top of the page down to this chunk's section.
    pub heading_path: Vec<String>,
    /// Fragment for a deep link, without `#`: an element id or a `:~:text=` directive.
    pub fragment: Option<String>,
    pub text: String,
    /// Position of the chunk within its page, from 0.
    pub ordinal: u32,
}

impl Chunk {
    /// The innermost heading, or the page title when the chunk sits above any heading.
    pub fn heading(&self) -> &str {
        self.heading_path
            .last()
            .map(String::as_str)
            .unwrap_or(&self.page_title)
    }

    /// URL with the fragment, for a link that scrolls to the passage.
    pub fn deep_link(&self) -> String {
        match &self.fragment {
            Some(f) => format!("{}#{}", self.url, f),
            None => self.url.clone(),
        }
    }
}

/// What the index remembers about a fetched URL between crawls: how to revalidate it, what it
/// linked to (so a `304 Not Modified` page still leads the crawler on), and whether it has chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageRecord {
    /// Canonical URL, the key of the page.
    pub url: String,
    /// Origin of the site the page belongs to, e.g. `https://www.bad-boll.de`.
    pub site: String,
    /// Name of the site's town as the site presents itself ("Gemeinde Bad Boll"), if known.
    #[serde(default)]
    pub site_name: Option<String>,
    pub collection: CollectionId,
    pub visibility: Visibility,
    pub kind: DocKind,
    pub title: String,
    /// Other URLs that led to this page (redirects, print versions, duplicates).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Hash of the extracted content: a changed hash means re-chunking.
    pub content_hash: String,
    /// Absolute URLs the page links to, replayed when the page answers 304.
    #[serde(default)]
    pub links: Vec<String>,
    /// Modification date the site states for the page.
    pub modified: Option<String>,
    /// False for pages tracked only for revalidation and links (noindex, no content).
    pub indexed: bool,
    pub n_chunks: u32,
    /// Unix time of the last successful fetch (200 or 304).
    pub fetched_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_keys_round_trip() {
        for v in [
            Visibility::Public,
            Visibility::Group("bauamt".into()),
            Visibility::User("u17".into()),
        ] {
            assert_eq!(Visibility::from_key(&v.as_key()), Some(v));
        }
        assert_eq!(Visibility::from_key("group:"), None);
        assert_eq!(Visibility::from_key("everyone"), None);
    }

    #[test]
    fn scope_is_sorted_and_deduplicated() {
        let s = CollectionScope::new([
            CollectionId("b".into()),
            CollectionId("a".into()),
            CollectionId("b".into()),
        ]);
        assert_eq!(s.collections().len(), 2);
        assert_eq!(s.collections()[0].0, "a");
    }
}
