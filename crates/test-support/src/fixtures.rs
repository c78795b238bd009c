//! Small builders of index records, pages and indexes ("Gemeinde Testdorf", `http://town.test`).

use std::path::Path;
use std::sync::Arc;

use lotse_core::{Block, CollectionId, DocKind, Page, PageRecord, Visibility};
use lotse_index::SearchIndex;

/// An indexed HTML page of `http://town.test` ("Gemeinde Testdorf"), its URL as content hash.
pub fn record(url: &str, title: &str, collection: &str, visibility: Visibility) -> PageRecord {
    PageRecord {
        url: url.into(),
        site: "http://town.test".into(),
        site_name: Some("Gemeinde Testdorf".into()),
        collection: CollectionId(collection.into()),
        visibility,
        kind: DocKind::Html,
        title: title.into(),
        aliases: vec![],
        etag: None,
        last_modified: None,
        content_hash: url.into(),
        links: vec![],
        modified: None,
        indexed: true,
        n_chunks: 0,
        fetched_at: 0,
    }
}

/// A German HTML page: a level-2 heading (with `anchor`) and one paragraph.
pub fn page(url: &str, title: &str, heading: &str, anchor: Option<&str>, body: &str) -> Page {
    Page {
        url: url.into(),
        title: title.into(),
        kind: DocKind::Html,
        lang: Some("de".into()),
        modified: None,
        blocks: vec![
            Block::Heading { level: 2, text: heading.into(), anchor: anchor.map(String::from) },
            Block::Paragraph { text: body.into() },
        ],
    }
}

/// An index at `dir` holding `pages`, committed and reloaded.
pub fn build_index(dir: &Path, pages: impl IntoIterator<Item = (PageRecord, Page)>) -> Arc<SearchIndex> {
    let index = SearchIndex::open(dir).unwrap();
    let mut w = index.writer().unwrap();
    for (record, page) in pages {
        w.upsert(&record, Some(&page)).unwrap();
    }
    w.commit().unwrap();
    index.reload().unwrap();
    Arc::new(index)
}

/// The small town of the portal tests: two public pages of the website, "Hundesteuer" (108
/// Euro, due on 1 July) and "Bücherei" (open Tuesdays 15 to 18, free lending).
pub fn town_index(dir: &Path) -> Arc<SearchIndex> {
    build_index(
        dir,
        [
            ("http://town.test/hundesteuer/", "Hundesteuer", "Die Hundesteuer beträgt für den ersten Hund 108 Euro im Jahr. Sie wird am 1. Juli fällig."),
            ("http://town.test/buecherei/", "Bücherei", "Die Bücherei ist dienstags von 15 bis 18 Uhr geöffnet. Die Ausleihe ist kostenlos."),
        ]
        .map(|(url, title, body)| (record(url, title, "website", Visibility::Public), page(url, title, title, None, body))),
    )
}
