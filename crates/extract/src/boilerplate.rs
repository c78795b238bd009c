//! Site-wide boilerplate: learns which blocks repeat across the pages of one site and removes
//! the ones that look like site chrome.
//!
//! [`crate::html`] already drops navigation, headers and footers by markup. What is left
//! is chrome inside the content area: "Seite drucken", a contact box, a copyright line, a
//! "Weitere Themen" heading with its link list. These repeat on many pages of a site.
//!
//! The rule is deliberately conservative, because by-laws repeat real content too ("Diese
//! Satzung tritt am Tage nach ihrer öffentlichen Bekanntmachung in Kraft."):
//!
//! - a block is *repeated* when its normalised text occurs on at least
//!   `max(3, 30 % of observed pages)` pages;
//! - a repeated block is removed only if it *looks like chrome*: a link-list-like list (every
//!   item short, no item a sentence), or a short text (< 25 words) that is not a sentence (no
//!   final `.`, `!`, `?` or `:` after several words) and carries no year (a "Stand: Januar 2025"
//!   line is information), or a copyright line;
//! - a repeated heading is removed only together with its whole section: when every block up
//!   to the next heading of the same or a higher level is removed too (so "In diesem Bereich"
//!   goes with its link list, "§ 13 Inkrafttreten" stays with its sentence);
//! - tables are never removed.
//!
//! Observations are kept per page URL, so observing a page again (a re-crawl) replaces its
//! earlier contribution instead of counting it twice. Texts are stored as 64-bit FNV-1a
//! hashes, which are stable across Rust versions, so the state can be persisted.

use std::collections::{BTreeMap, BTreeSet};

use lotse_core::{Block, Page};
use serde::{Deserialize, Serialize};

use crate::html::normalize_space;

/// Blocks shorter than this (in words) may be chrome.
const SHORT_BLOCK_WORDS: usize = 25;
/// List items longer than this (in words) make a list content, not a link list.
const LINK_ITEM_WORDS: usize = 12;
/// A block repeated on this share of observed pages (and at least [`MIN_PAGES`]) is repeated.
const PAGE_SHARE: f64 = 0.3;
const MIN_PAGES: u32 = 3;

/// What has been seen on the pages of one site.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatedText {
    /// Page URL -> hashes of the candidate block texts seen on it.
    pages: BTreeMap<String, Vec<u64>>,
    /// Block text hash -> number of pages it occurs on.
    counts: BTreeMap<u64, u32>,
}

impl RepeatedText {
    pub fn new() -> RepeatedText {
        RepeatedText::default()
    }

    /// Learns the blocks of a page. Observing the same URL again replaces what was learned
    /// from it before.
    pub fn observe(&mut self, page: &Page) {
        self.forget(&page.url);
        let keys: BTreeSet<u64> = page
            .blocks
            .iter()
            .filter(|b| is_candidate(b))
            .map(|b| key(&b.text()))
            .collect();
        for k in &keys {
            *self.counts.entry(*k).or_default() += 1;
        }
        self.pages
            .insert(page.url.clone(), keys.into_iter().collect());
    }

    /// Forgets what was learned from a page (for a page that is gone from the site).
    pub fn forget(&mut self, url: &str) {
        let Some(keys) = self.pages.remove(url) else {
            return;
        };
        for k in keys {
            if let Some(count) = self.counts.get_mut(&k) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.counts.remove(&k);
                }
            }
        }
    }

    /// Number of pages observed.
    pub fn n_pages(&self) -> usize {
        self.pages.len()
    }

    /// On how many pages a block text must occur to count as repeated.
    pub fn threshold(&self) -> u32 {
        let share = (self.pages.len() as f64 * PAGE_SHARE).ceil() as u32;
        share.max(MIN_PAGES)
    }

    /// Whether a block text (as [`Block::text`] gives it) is repeated on enough pages and
    /// looks like chrome. This judges the text alone; [`RepeatedText::strip`] also requires a
    /// heading's whole section to be boilerplate before removing the heading.
    pub fn is_boilerplate(&self, block_text: &str) -> bool {
        looks_like_chrome(block_text) && self.is_repeated(block_text)
    }

    fn is_repeated(&self, text: &str) -> bool {
        self.counts
            .get(&key(text))
            .is_some_and(|&n| n >= self.threshold())
    }

    /// Removes the boilerplate blocks from a page; returns how many were removed.
    pub fn strip(&self, page: &mut Page) -> usize {
        let n = page.blocks.len();
        let mut remove = vec![false; n];
        for (i, block) in page.blocks.iter().enumerate() {
            remove[i] = match block {
                Block::Heading { .. } | Block::Table { .. } => false,
                other => self.is_boilerplate(&other.text()),
            };
        }
        // Headings last to first, so that a sub-heading is decided before its parent.
        for i in (0..n).rev() {
            let Block::Heading { level, text, .. } = &page.blocks[i] else {
                continue;
            };
            if !self.is_boilerplate(text) {
                continue;
            }
            let section_end = page.blocks[i + 1..]
                .iter()
                .position(|b| matches!(b, Block::Heading { level: l, .. } if l <= level))
                .map_or(n, |p| i + 1 + p);
            remove[i] = remove[i + 1..section_end].iter().all(|r| *r);
        }
        let mut i = 0;
        page.blocks.retain(|_| {
            let keep = !remove[i];
            i += 1;
            keep
        });
        n - page.blocks.len()
    }
}

/// Blocks worth counting: those that could ever be removed.
fn is_candidate(block: &Block) -> bool {
    match block {
        Block::Heading { text, .. } => looks_like_chrome(text),
        Block::Table { .. } => false,
        other => looks_like_chrome(&other.text()),
    }
}

/// Whether a block text has the shape of site chrome; see the module docs.
fn looks_like_chrome(text: &str) -> bool {
    let items: Vec<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches("- ").trim())
        .filter(|l| !l.is_empty())
        .collect();
    match items[..] {
        [] => false,
        [single] => {
            let words = single.split_whitespace().count();
            words < SHORT_BLOCK_WORDS
                && (is_copyright(single) || (!is_sentence(single) && !has_year(single)))
        }
        _ => items
            .iter()
            .all(|i| i.split_whitespace().count() <= LINK_ITEM_WORDS && !is_sentence(i)),
    }
}

/// A sentence ends with `.`, `!`, `?` or `:` and has at least four words ("Mehr." or
/// "Tel.: 0711" are not sentences).
fn is_sentence(text: &str) -> bool {
    let trimmed = text.trim_end_matches(['"', '\'', '“', '”', '«', '»', ')']);
    trimmed.ends_with(['.', '!', '?', ':']) && text.split_whitespace().count() >= 4
}

/// A year 1900-2099 as a word of its own: dated lines ("Stand: Januar 2025") are content.
fn has_year(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|n| n.len() == 4 && (n.starts_with("19") || n.starts_with("20")))
}

fn is_copyright(text: &str) -> bool {
    let lower = text.to_lowercase();
    text.contains('©') || lower.contains("copyright") || lower.contains("alle rechte vorbehalten")
}

/// Hash of the normalised, lowercased text (FNV-1a, 64 bit: stable for persisting).
fn key(text: &str) -> u64 {
    let normalised = normalize_space(text).to_lowercase();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in normalised.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::DocKind;

    const IN_FORCE: &str =
        "Diese Satzung tritt am Tage nach ihrer öffentlichen Bekanntmachung in Kraft.";

    fn heading(level: u8, text: &str) -> Block {
        Block::Heading {
            level,
            text: text.into(),
            anchor: None,
        }
    }
    fn para(text: &str) -> Block {
        Block::Paragraph { text: text.into() }
    }
    fn list(items: &[&str]) -> Block {
        Block::List {
            ordered: false,
            items: items.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A by-law page as a CMS renders it, with in-content chrome.
    fn bylaw(n: usize) -> Page {
        Page {
            url: format!("http://x/ortsrecht/satzung-{n}/"),
            title: format!("Satzung {n}"),
            kind: DocKind::Html,
            lang: Some("de".into()),
            modified: None,
            blocks: vec![
                heading(1, &format!("Satzung Nummer {n}")),
                para("Stand: Januar 2025"),
                heading(2, "Inhaltsverzeichnis"),
                list(&[&format!("§ 1 Gegenstand {n}"), "§ 2 Inkrafttreten"]),
                heading(3, &format!("§ 1 Gegenstand {n}")),
                para(&format!(
                    "(1) Die Gemeinde regelt die Sache Nummer {n} durch diese Satzung."
                )),
                Block::Table {
                    rows: vec![vec!["Gebühr".into(), "10 €".into()]],
                },
                heading(3, "§ 2 Inkrafttreten"),
                para(IN_FORCE),
                para("Der Bürgermeister"),
                para("Satzung als PDF herunterladen · Druckversion"),
                heading(2, "In diesem Bereich"),
                list(&["Hundesteuer", "Friedhofsatzung", "Abwassersatzung"]),
                heading(2, "Kontakt"),
                para("Bürgerbüro Telefon 07164 808-0"),
                para("© Gemeinde Bad Boll 2025"),
            ],
        }
    }

    fn learned(n: usize) -> RepeatedText {
        let mut r = RepeatedText::new();
        for i in 0..n {
            r.observe(&bylaw(i));
        }
        r
    }

    #[test]
    fn chrome_is_removed_and_legal_text_kept() {
        let r = learned(10);
        let mut page = bylaw(3);
        let removed = r.strip(&mut page);
        let texts: Vec<String> = page.blocks.iter().map(Block::text).collect();
        assert_eq!(
            texts,
            vec![
                "Satzung Nummer 3",
                "Stand: Januar 2025",
                "Inhaltsverzeichnis",
                "- § 1 Gegenstand 3\n- § 2 Inkrafttreten",
                "§ 1 Gegenstand 3",
                "(1) Die Gemeinde regelt die Sache Nummer 3 durch diese Satzung.",
                "Gebühr | 10 €",
                "§ 2 Inkrafttreten",
                IN_FORCE,
            ]
        );
        assert_eq!(removed, 7);
        assert!(r.is_boilerplate("In diesem Bereich"));
        assert!(r.is_boilerplate("satzung als  PDF herunterladen · Druckversion"));
        assert!(!r.is_boilerplate(IN_FORCE));
    }

    #[test]
    fn nothing_is_removed_below_the_threshold() {
        let r = learned(2);
        let mut page = bylaw(1);
        assert_eq!(r.strip(&mut page), 0);
        assert_eq!(page, bylaw(1));
    }

    #[test]
    fn threshold_grows_with_the_site() {
        assert_eq!(learned(20).threshold(), 6);
        // "Der Bürgermeister" on `with` of 20 pages
        let site = |with: usize| {
            let mut r = RepeatedText::new();
            for i in 0..20 {
                let mut p = bylaw(i);
                if i >= with {
                    p.blocks.retain(|b| b.text() != "Der Bürgermeister");
                }
                r.observe(&p);
            }
            r
        };
        assert!(!site(5).is_boilerplate("Der Bürgermeister"));
        assert!(site(6).is_boilerplate("Der Bürgermeister"));
    }

    #[test]
    fn observing_a_page_again_replaces_it() {
        let mut r = RepeatedText::new();
        for _ in 0..5 {
            r.observe(&bylaw(1));
        }
        assert_eq!(r.n_pages(), 1);
        assert!(!r.is_boilerplate("In diesem Bereich"));
        r.forget("http://x/ortsrecht/satzung-1/");
        assert_eq!(r, RepeatedText::new());
    }

    #[test]
    fn chrome_shapes() {
        assert!(looks_like_chrome("Seite drucken"));
        assert!(looks_like_chrome("- Hundesteuer\n- Friedhof"));
        assert!(looks_like_chrome("© 2025 Gemeinde Bad Boll"));
        assert!(!looks_like_chrome(IN_FORCE));
        assert!(!looks_like_chrome("Stand: Januar 2025"));
        assert!(!looks_like_chrome(
            "Der Gemeinderat hat am 7.12.2023 folgende Satzung beschlossen:"
        ));
        assert!(!looks_like_chrome(
            "- Hunden, die dem Schutz blinder Personen dienen.\n- Rettungshunde"
        ));
        assert!(!looks_like_chrome(&"Wort ".repeat(30)));
    }

    /// All HTML pages of a fixture site, extracted.
    fn fixture_site(site: &str) -> Vec<Page> {
        let root = format!(
            "{}/../../../shared/fixtures/sites/{site}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut pages = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(&root)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().is_some_and(|f| f == "index.html") {
                    let rel = path
                        .parent()
                        .unwrap()
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    let url = url::Url::parse(&format!("http://127.0.0.1:8089/{rel}/")).unwrap();
                    let html = crate::charset::decode_html(&std::fs::read(&path).unwrap(), None);
                    pages.push(crate::html::extract_html(&html, &url).page);
                }
            }
        }
        pages
    }

    #[test]
    fn fixture_site_download_line_goes_and_bylaw_text_stays() {
        let pages = fixture_site("bad-boll");
        let mut r = RepeatedText::new();
        for p in &pages {
            r.observe(p);
        }
        let mut hundesteuer = pages
            .iter()
            .find(|p| p.url.contains("bbo-satzung-erhebung-hundesteuer"))
            .unwrap()
            .clone();
        let before = hundesteuer.clone();
        r.strip(&mut hundesteuer);
        let removed: Vec<String> = before
            .blocks
            .iter()
            .filter(|b| !hundesteuer.blocks.contains(b))
            .map(Block::text)
            .collect();
        assert_eq!(
            removed,
            vec!["Satzung als PDF herunterladen · Druckversion"]
        );
        // every page keeps its headings and its sentences
        for page in &pages {
            let mut stripped = page.clone();
            r.strip(&mut stripped);
            for block in &page.blocks {
                if matches!(block, Block::Heading { .. }) || is_sentence(&block.text()) {
                    assert!(
                        stripped.blocks.contains(block),
                        "{}: lost {block:?}",
                        page.url
                    );
                }
            }
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        let r = learned(4);
        let json = serde_json::to_string(&r).unwrap();
        let back: RepeatedText = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(back.is_boilerplate("In diesem Bereich"));
    }
}
