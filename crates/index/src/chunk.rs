//! Structure-aware chunking: a page's blocks become chunks along its headings.
//!
//! Rules:
//! - every heading opens a section; a chunk never spans two sections, so a chunk's heading
//!   path says exactly where it stands (by-law `§` headings are sections like any other);
//! - a list stays with the paragraph that leads into it ("... für das Halten von: 1. ... 2. ...");
//!   when a list must be split, each part repeats the lead-in;
//! - a section longer than [`MAX_WORDS`] is split at block boundaries (a single over-long block
//!   at sentence boundaries);
//! - each chunk gets a deep-link fragment: the heading's element id when the page has one,
//!   else a `:~:text=` directive naming the heading's first words.

use lotse_core::{Block, Chunk, Page};

/// Upper bound of words per chunk: small enough for a 512-token embedder with room for the
/// heading path, large enough to keep a by-law paragraph whole.
pub const MAX_WORDS: usize = 220;

/// A unit that should not be torn apart: a block, or a lead-in paragraph with its list.
struct Unit {
    text: String,
    words: usize,
    /// For a lead-in + list unit that is too long: the lead-in and the items, to split.
    parts: Option<(String, Vec<String>)>,
}

fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Split a page into chunks.
pub fn chunk_page(page: &Page) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    // (level, text, anchor) of the open headings
    let mut path: Vec<(u8, String, Option<String>)> = Vec::new();
    let mut units: Vec<Unit> = Vec::new();

    let flush =
        |path: &[(u8, String, Option<String>)], units: &mut Vec<Unit>, chunks: &mut Vec<Chunk>| {
            if units.is_empty() {
                return;
            }
            let heading_path: Vec<String> = path.iter().map(|(_, t, _)| t.clone()).collect();
            let fragment = path.last().map(|(_, text, anchor)| match anchor {
                Some(id) => id.clone(),
                None => text_fragment(text),
            });
            for text in pack(std::mem::take(units)) {
                chunks.push(Chunk {
                    url: page.url.clone(),
                    page_title: page.title.clone(),
                    heading_path: heading_path.clone(),
                    fragment: fragment.clone(),
                    text,
                    ordinal: chunks.len() as u32,
                });
            }
        };

    let mut i = 0;
    while i < page.blocks.len() {
        match &page.blocks[i] {
            Block::Heading {
                level,
                text,
                anchor,
                ..
            } => {
                flush(&path, &mut units, &mut chunks);
                while path.last().is_some_and(|(l, _, _)| *l >= *level) {
                    path.pop();
                }
                path.push((*level, text.clone(), anchor.clone()));
            }
            Block::Paragraph { text } => {
                // a paragraph directly followed by a list leads into it
                if let Some(Block::List { items, ordered }) = page.blocks.get(i + 1) {
                    let list = Block::List {
                        ordered: *ordered,
                        items: items.clone(),
                    };
                    let joined = format!("{text}\n{}", list.text());
                    units.push(Unit {
                        words: word_count(&joined),
                        text: joined,
                        parts: Some((text.clone(), items.clone())),
                    });
                    i += 2;
                    continue;
                }
                units.push(Unit {
                    words: word_count(text),
                    text: text.clone(),
                    parts: None,
                });
            }
            block @ (Block::List { .. } | Block::Table { .. }) => {
                let text = block.text();
                let items = match block {
                    Block::List { items, .. } => items.clone(),
                    Block::Table { rows } => rows.iter().map(|r| r.join(" | ")).collect(),
                    _ => Vec::new(),
                };
                units.push(Unit {
                    words: word_count(&text),
                    text,
                    parts: Some((String::new(), items)),
                });
            }
        }
        i += 1;
    }
    flush(&path, &mut units, &mut chunks);

    // A page with headings only (or nothing) still gets one chunk, so it can be found by its
    // title and headings.
    if chunks.is_empty() {
        let text = page
            .blocks
            .iter()
            .map(Block::text)
            .collect::<Vec<_>>()
            .join("\n");
        chunks.push(Chunk {
            url: page.url.clone(),
            page_title: page.title.clone(),
            heading_path: Vec::new(),
            fragment: None,
            text,
            ordinal: 0,
        });
    }
    chunks
}

/// Pack units into chunk texts of at most [`MAX_WORDS`] words.
fn pack(units: Vec<Unit>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_words = 0;
    let mut push = |text: String, words: usize, out: &mut Vec<String>| {
        if current_words > 0 && current_words + words > MAX_WORDS {
            out.push(std::mem::take(&mut current));
            current_words = 0;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&text);
        current_words += words;
    };
    for unit in units {
        if unit.words <= MAX_WORDS {
            push(unit.text, unit.words, &mut out);
            continue;
        }
        match unit.parts {
            Some((lead, items)) => {
                // split the list, each part repeating the lead-in
                let lead_words = word_count(&lead);
                let mut part = lead.clone();
                let mut part_words = lead_words;
                for item in items {
                    let line = format!("- {item}");
                    let w = word_count(&line);
                    if part_words > lead_words && part_words + w > MAX_WORDS {
                        push(std::mem::take(&mut part), part_words, &mut out);
                        part = lead.clone();
                        part_words = lead_words;
                    }
                    for piece in split_long(&line) {
                        if !part.is_empty() {
                            part.push('\n');
                        }
                        part_words += word_count(&piece);
                        part.push_str(&piece);
                    }
                }
                push(part, part_words, &mut out);
            }
            None => {
                for piece in split_long(&unit.text) {
                    let w = word_count(&piece);
                    push(piece, w, &mut out);
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Split one over-long text at sentence ends into pieces of at most [`MAX_WORDS`] words
/// (a sentence longer than that is cut by words).
fn split_long(text: &str) -> Vec<String> {
    if word_count(text) <= MAX_WORDS {
        return vec![text.to_owned()];
    }
    let mut pieces = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        current.push(word);
        let sentence_end = word.ends_with(['.', '!', '?', ';'])
            && !word
                .trim_end_matches('.')
                .chars()
                .all(|c| c.is_ascii_digit());
        if current.len() >= MAX_WORDS || (sentence_end && current.len() >= MAX_WORDS * 3 / 4) {
            pieces.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        pieces.push(current.join(" "));
    }
    pieces
}

/// A `:~:text=` fragment directive for a heading (its first words, percent-encoded as the
/// Text Fragments spec requires, including `-`, `,` and `&`).
pub fn text_fragment(heading: &str) -> String {
    let start: Vec<&str> = heading.split_whitespace().take(8).collect();
    let mut enc = String::from(":~:text=");
    for (i, w) in start.iter().enumerate() {
        if i > 0 {
            enc.push_str("%20");
        }
        for b in w.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'(' | b')' | b'!') {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
    }
    enc
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotse_core::DocKind;

    fn page(blocks: Vec<Block>) -> Page {
        Page {
            url: "http://x/satzung/".into(),
            title: "Hundesteuersatzung".into(),
            kind: DocKind::Html,
            lang: Some("de".into()),
            modified: None,
            blocks,
        }
    }

    fn h(level: u8, t: &str) -> Block {
        Block::Heading {
            level,
            text: t.into(),
            anchor: None,
        }
    }

    fn p(t: &str) -> Block {
        Block::Paragraph { text: t.into() }
    }

    #[test]
    fn sections_follow_headings_with_paths() {
        let chunks = chunk_page(&page(vec![
            h(1, "Hundesteuersatzung"),
            p("Präambel."),
            h(3, "§ 5 Steuersatz"),
            p("Die Steuer beträgt 165,00 €."),
            h(3, "§ 6 Steuerbefreiungen"),
            p("Befreit sind:"),
            Block::List {
                ordered: true,
                items: vec!["Blindenhunde".into(), "Rettungshunde".into()],
            },
        ]));
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[1].heading_path,
            ["Hundesteuersatzung", "§ 5 Steuersatz"]
        );
        assert_eq!(chunks[1].heading(), "§ 5 Steuersatz");
        assert!(chunks[2].text.starts_with("Befreit sind:\n- Blindenhunde"));
        assert_eq!(
            chunks[1].fragment.as_deref(),
            Some(":~:text=%C2%A7%205%20Steuersatz")
        );
        assert_eq!(chunks[2].ordinal, 2);
    }

    #[test]
    fn long_lists_repeat_their_lead_in() {
        let items: Vec<String> = (0..100)
            .map(|i| format!("Punkt {i} mit etwas Text dazu"))
            .collect();
        let chunks = chunk_page(&page(vec![
            h(2, "Liste"),
            p("Folgendes gilt:"),
            Block::List {
                ordered: false,
                items,
            },
        ]));
        assert!(chunks.len() >= 2);
        for c in &chunks {
            assert!(c.text.starts_with("Folgendes gilt:"), "{}", c.text);
            assert!(word_count(&c.text) <= MAX_WORDS + 10);
        }
    }

    #[test]
    fn over_long_paragraph_is_split_and_nothing_is_lost() {
        let sentence = "Das ist ein Satz mit acht Wörtern hier. ";
        let text = sentence.repeat(100);
        let chunks = chunk_page(&page(vec![p(&text)]));
        assert!(chunks.len() >= 4);
        let total: usize = chunks.iter().map(|c| word_count(&c.text)).sum();
        assert_eq!(total, word_count(&text));
    }

    #[test]
    fn heading_ids_become_fragments() {
        let chunks = chunk_page(&page(vec![
            Block::Heading {
                level: 2,
                text: "Gebühren".into(),
                anchor: Some("c123".into()),
            },
            p("Text."),
        ]));
        assert_eq!(chunks[0].deep_link(), "http://x/satzung/#c123");
    }
}
