//! Text the CMS sends (`POST /api/v1/simplify` with `text`): plain text with light markup
//! becomes a [`Page`] with the same structure a crawled page has.
//!
//! Blocks are separated by blank lines. A block whose lines all start with `- `, `* ` or `• `
//! is a bullet list, one whose lines all start with `1. `, `2) ` ... a numbered list; a line
//! starting with `#`, `##` ... is a heading; everything else is a paragraph (its lines joined).

use lotse_core::{Block, DocKind, Page};

/// The page for `text`; `url` and `title` as the CMS names them.
pub fn page_from_text(text: &str, url: &str, title: &str) -> Page {
    let mut blocks = Vec::new();
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for chunk in normalized.split("\n\n") {
        let lines: Vec<&str> = chunk
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        let mut para: Vec<&str> = Vec::new();
        let flush = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
            if !para.is_empty() {
                blocks.push(Block::Paragraph {
                    text: para.join(" "),
                });
                para.clear();
            }
        };
        if lines.iter().all(|l| bullet(l).is_some()) {
            let items = lines
                .iter()
                .filter_map(|l| bullet(l))
                .map(str::to_owned)
                .collect();
            blocks.push(Block::List {
                ordered: false,
                items,
            });
            continue;
        }
        if lines.len() >= 2 && lines.iter().all(|l| numbered(l).is_some()) {
            let items = lines
                .iter()
                .filter_map(|l| numbered(l))
                .map(str::to_owned)
                .collect();
            blocks.push(Block::List {
                ordered: true,
                items,
            });
            continue;
        }
        for l in lines {
            if let Some((level, heading)) = heading(l) {
                flush(&mut para, &mut blocks);
                blocks.push(Block::Heading {
                    level,
                    text: heading.to_owned(),
                    anchor: None,
                });
            } else {
                para.push(l);
            }
        }
        flush(&mut para, &mut blocks);
    }
    let title = if title.trim().is_empty() {
        blocks
            .iter()
            .find_map(|b| match b {
                Block::Heading { text, .. } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default()
    } else {
        title.trim().to_owned()
    };
    Page {
        url: url.to_owned(),
        title,
        kind: DocKind::Html,
        lang: Some("de".into()),
        modified: None,
        blocks,
    }
}

fn bullet(line: &str) -> Option<&str> {
    ["- ", "* ", "• ", "– "]
        .iter()
        .find_map(|p| line.strip_prefix(p))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn numbered(line: &str) -> Option<&str> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let rest = &line[digits..];
    rest.strip_prefix(". ")
        .or_else(|| rest.strip_prefix(") "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        // "1. Juli ..." is a date, not an item
        .filter(|s| {
            !s.split_whitespace()
                .next()
                .is_some_and(lotse_text::is_month)
        })
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    let text = line[hashes..].strip_prefix(' ')?.trim();
    (!text.is_empty()).then_some((hashes as u8, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_markup_becomes_structure() {
        let p = page_from_text(
            "# Hundesteuer\n\nDie Steuer wird gem. § 5 jährlich erhoben.\nSie ist am 1. Juli fällig.\n\n- Ersthund: 108 €\n- Zweithund: 216 €\n\n1. Antrag stellen\n2) Marke abholen\n\n## Kontakt\nRathaus, Zimmer 3",
            "",
            "",
        );
        assert_eq!(p.title, "Hundesteuer");
        assert_eq!(p.blocks.len(), 6, "{:?}", p.blocks);
        assert!(
            matches!(&p.blocks[0], Block::Heading { level: 1, text, .. } if text == "Hundesteuer")
        );
        assert!(
            matches!(&p.blocks[1], Block::Paragraph { text } if text == "Die Steuer wird gem. § 5 jährlich erhoben. Sie ist am 1. Juli fällig.")
        );
        assert!(
            matches!(&p.blocks[2], Block::List { ordered: false, items } if items == &["Ersthund: 108 €", "Zweithund: 216 €"])
        );
        assert!(matches!(&p.blocks[3], Block::List { ordered: true, items } if items.len() == 2));
        assert!(matches!(&p.blocks[4], Block::Heading { level: 2, .. }));
        assert!(matches!(&p.blocks[5], Block::Paragraph { text } if text == "Rathaus, Zimmer 3"));
        // a date at the start of a line, or a single numbered line, is not a list
        let p = page_from_text(
            "1. Juli ist der Stichtag.\n2. August der nächste.",
            "",
            "Titel",
        );
        assert!(
            matches!(&p.blocks[0], Block::Paragraph { .. }),
            "{:?}",
            p.blocks
        );
        let p = page_from_text("3. Der Antrag ist schriftlich zu stellen.", "", "Titel");
        assert!(
            matches!(&p.blocks[0], Block::Paragraph { .. }),
            "{:?}",
            p.blocks
        );
        assert!(page_from_text(" \n\n \r\n", "", "").blocks.is_empty());
    }
}
