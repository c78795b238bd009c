//! PDF to [`Page`]: text extraction with `pdf-extract`, then structure recovered from the lines.
//!
//! Many by-laws of small towns exist only as PDF. `pdf-extract` gives plain text per page; this
//! module turns it into blocks:
//!
//! - running headers and footers (a line repeated at the top or bottom of most pages) and page
//!   numbers ("Seite 3 von 7", "- 3 -") are dropped;
//! - lines that look like headings become [`Block::Heading`]: `§ 5 Steuersatz`, `Artikel 3`,
//!   and short stand-alone lines without final punctuation at the section level; `Abschnitt 2`,
//!   `Teil 1`, `Anlage 1` and `I. Allgemeines` at the level above when the document has them;
//!   the document title at level 1;
//! - other lines are joined into paragraphs. A blank line or a numbering such as `(1)`, `1.`,
//!   `a)` starts a new paragraph. A hyphenated line break is joined (`Hunde-` + `steuer` ->
//!   `Hundesteuer`) only when the next part starts in lowercase and is not a conjunction
//!   (`Grün- und`), otherwise the hyphen stays (`Baden-` + `Württemberg`);
//! - bullet lines (`- `, `• `) become lists, indented lines with columns become tables.
//!
//! `pdf-extract` can panic on unusual files; extraction runs under
//! [`std::panic::catch_unwind`] and a panic becomes [`PdfError::Panicked`]. The panic message is
//! still printed by the process's panic hook.
//!
//! Every PDF is read under [`PdfLimits`] (decoded bytes, objects, pages, content, text, time;
//! see [`crate::pdf_limits`]): a decompression bomb is refused with [`PdfError::TooLarge`]
//! before it is decoded, for crawls, the CMS refresh and uploads alike.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use lotse_core::{Block, DocKind, Page};
use pdf_extract::{Document, Object, PlainTextOutput};

use crate::html::normalize_space;
use crate::pdf_limits::{self, Clock, GuardedOutput};
pub use crate::pdf_limits::{PdfLimit, PdfLimits};

/// Why a PDF could not be turned into a page.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("not a pdf file")]
    NotPdf,
    #[error("unreadable pdf: {0}")]
    Unreadable(String),
    #[error("pdf is encrypted")]
    Encrypted,
    #[error("pdf has no text layer (scanned image?)")]
    NoText,
    #[error("pdf extraction panicked: {0}")]
    Panicked(String),
    /// A decompression bomb, or a file too large or complex to read safely.
    #[error("pdf exceeds the {what} limit: {detail}")]
    TooLarge { what: PdfLimit, detail: String },
}

/// Extracts a PDF into a page: title, then the text structured into headings, paragraphs,
/// lists and tables.
///
/// The title is the document's `/Title` if it is meaningful (not a file name or "Untitled"),
/// else `link_text` (the text of the link that led here) unless it is generic ("PDF
/// herunterladen"), else the first paragraph of the text, else the file name. A link text that
/// was cut off (a prefix of the first paragraph) gives way to the full first paragraph.
pub fn extract_pdf(
    bytes: &[u8],
    url: &url::Url,
    link_text: Option<&str>,
) -> Result<Page, PdfError> {
    extract_pdf_with_limits(bytes, url, link_text, &PdfLimits::default())
}

/// [`extract_pdf`] with other limits.
pub fn extract_pdf_with_limits(
    bytes: &[u8],
    url: &url::Url,
    link_text: Option<&str>,
    limits: &PdfLimits,
) -> Result<Page, PdfError> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let raw = catch_unwind(AssertUnwindSafe(|| read_pdf(bytes, limits)))
        .map_err(|panic| PdfError::Panicked(panic_message(panic.as_ref())))??;

    let mut blocks = structure_pages(&raw.pages);
    if raw.left_out > 0 {
        tracing::warn!(%url, pages = raw.left_out, "pdf pages left out: too much content");
    }
    if blocks.is_empty() && raw.left_out > 0 {
        return Err(PdfError::TooLarge {
            what: PdfLimit::PageContent,
            detail: format!(
                "{} pages with more than {} KiB of content each, and no text elsewhere",
                raw.left_out,
                limits.max_content_bytes / 1024
            ),
        });
    }
    if blocks.is_empty() {
        return Err(PdfError::NoText);
    }

    let first_paragraph = match blocks.first() {
        Some(Block::Paragraph { text }) if text.chars().count() <= 250 => Some(text.clone()),
        _ => None,
    };
    let first_line = raw
        .pages
        .iter()
        .flat_map(|p| p.lines())
        .map(normalize_space)
        .find(|l| !l.is_empty());
    let link_text = link_text
        .map(clean_link_text)
        .filter(|t| is_meaningful_link_text(t));
    let title = raw
        .info_title
        .filter(|t| is_meaningful_info_title(t))
        .or_else(|| match (link_text, &first_paragraph) {
            // a cut-off link text ("... der Gem") gives way to the full first paragraph
            (Some(link), Some(first)) if is_truncation_of(&link, first) => Some(first.clone()),
            (link, _) => link,
        })
        .or_else(|| first_paragraph.clone())
        .or(first_line)
        .unwrap_or_else(|| title_from_file_name(url));

    // The title heads the page; a first paragraph that only repeats it goes.
    if first_paragraph
        .as_deref()
        .is_some_and(|p| same_text(p, &title))
    {
        blocks.remove(0);
    }
    blocks.insert(
        0,
        Block::Heading {
            level: 1,
            text: title.clone(),
            anchor: None,
        },
    );

    Ok(Page {
        url: url.to_string(),
        title,
        kind: DocKind::Pdf,
        lang: None,
        modified: raw.modified,
        blocks,
    })
}

/// What `pdf-extract` and the document info dictionary give us.
struct RawPdf {
    info_title: Option<String>,
    /// `/ModDate` as an ISO 8601 date.
    modified: Option<String>,
    /// Plain text of each page in order.
    pages: Vec<String>,
    /// Pages left out: too much content to parse (see [`PdfLimits::max_content_bytes`]).
    left_out: usize,
}

fn read_pdf(bytes: &[u8], limits: &PdfLimits) -> Result<RawPdf, PdfError> {
    let clock = Clock::start(limits.max_time);
    // every stream decoded into a counting sink before lopdf sees the file
    let checked = pdf_limits::preflight(bytes, limits, &clock)?;
    let (mut doc, mut loaded) = pdf_limits::load(&checked, bytes.len(), limits, &clock)?;
    drop(checked);
    // Many PDFs are "encrypted" with an empty user password only to forbid editing.
    pdf_limits::restore_encryption(&mut doc)?;
    pdf_limits::expand_object_streams(&mut doc, &mut loaded, bytes.len(), limits, &clock)?;
    let too_much_content = pdf_limits::check_document(&mut doc, bytes.len(), limits, &clock)?;
    let info_title = info_string(&doc, b"Title");
    let modified = info_string(&doc, b"ModDate").and_then(|d| pdf_date(&d));

    let mut pages = Vec::new();
    let mut last_error = None;
    let mut text_bytes = 0;
    for page_number in doc.get_pages().keys() {
        clock.check()?;
        if too_much_content.contains(page_number) {
            continue;
        }
        let mut text = String::new();
        let res = {
            let mut output = GuardedOutput::new(
                PlainTextOutput::new(&mut text),
                &clock,
                text_bytes,
                limits.max_text_bytes,
            );
            let res = pdf_extract::output_doc_page(&doc, &mut output, *page_number);
            if let Some(limit) = output.hit.take() {
                return Err(limit);
            }
            text_bytes = output.text;
            res
        };
        match res {
            Ok(()) => pages.push(text),
            // One broken page should not cost the whole document.
            Err(e) => last_error = Some(e.to_string()),
        }
    }
    match last_error {
        Some(e) if pages.is_empty() => Err(PdfError::Unreadable(e)),
        _ => Ok(RawPdf {
            info_title,
            modified,
            pages,
            left_out: too_much_content.len(),
        }),
    }
}

/// A text string from the document info dictionary, decoded (UTF-16BE with BOM, UTF-8 with
/// BOM, else PDFDocEncoding, read as windows-1252 which agrees on all letters).
fn info_string(doc: &Document, key: &[u8]) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let value = info.as_dict().ok()?.get(key).ok()?;
    let (_, value) = doc.dereference(value).ok()?;
    let Object::String(bytes, _) = value else {
        return None;
    };
    let text = if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        encoding_rs::UTF_16BE.decode_without_bom_handling(rest).0
    } else if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        String::from_utf8_lossy(rest)
    } else {
        encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
    };
    let text = normalize_space(&text);
    (!text.is_empty()).then_some(text)
}

/// `D:20240131120000+01'00'` -> `2024-01-31`.
fn pdf_date(raw: &str) -> Option<String> {
    let digits = raw.strip_prefix("D:").unwrap_or(raw);
    let date = digits.get(..8)?;
    if !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (&date[..4], &date[4..6], &date[6..8]);
    let month: u32 = m.parse().ok()?;
    let day: u32 = d.parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then(|| format!("{y}-{m}-{d}"))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Titles

fn is_meaningful_info_title(title: &str) -> bool {
    let lower = title.to_lowercase();
    let letters = title.chars().filter(|c| c.is_alphabetic()).count();
    const GENERIC: &[&str] = &[
        "untitled",
        "unbenannt",
        "ohne titel",
        "titel",
        "title",
        "dokument",
        "document",
        "dokument1",
        "document1",
        "vorlage",
        "pdf",
        "präsentation",
        "presentation",
    ];
    const FILE_ENDINGS: &[&str] = &[
        ".doc", ".docx", ".pdf", ".odt", ".rtf", ".indd", ".tmp", ".txt", ".xls", ".xlsx", ".ppt",
    ];
    letters >= 3
        && !GENERIC.contains(&lower.as_str())
        && !FILE_ENDINGS.iter().any(|e| lower.ends_with(e))
        && !lower.starts_with("microsoft word")
        && !title.contains('\\')
        && !title.contains('/')
        // identifiers like "bbo_satzung_2023" are file names, not titles
        && (!title.contains('_') || title.contains(' '))
}

/// Removes a trailing "(PDF, 123 KB)" or "[PDF]" from a link text.
fn clean_link_text(text: &str) -> String {
    let mut text = normalize_space(text);
    loop {
        let trimmed = text.trim_end();
        let cut = if trimmed.ends_with(')') {
            trimmed.rfind('(')
        } else if trimmed.ends_with(']') {
            trimmed.rfind('[')
        } else {
            None
        };
        match cut {
            Some(at) if is_file_info(&trimmed[at..]) => text = trimmed[..at].trim_end().to_owned(),
            _ => break,
        }
    }
    text
}

/// "(PDF, 120 KB)", "[pdf]", "(1,2 MB)"; not "(Umbau)".
fn is_file_info(s: &str) -> bool {
    let lower = s.to_lowercase();
    let size = lower.chars().any(|c| c.is_ascii_digit())
        && ["kb", "mb", "byte"].iter().any(|u| lower.contains(u));
    lower.contains("pdf") || size
}

/// Link texts that say what the link does, not what the document is.
fn is_meaningful_link_text(text: &str) -> bool {
    let lower = text.to_lowercase();
    const GENERIC: &[&str] = &[
        "herunterladen",
        "download",
        "druckversion",
        "drucken",
        "öffnen",
        "ansehen",
        "anzeigen",
        "hier",
        "mehr",
        "weiterlesen",
        "link",
        "datei",
        "dokument",
    ];
    let words: Vec<&str> = lower.split_whitespace().collect();
    text.chars().filter(|c| c.is_alphabetic()).count() >= 4
        && !words
            .iter()
            .any(|w| GENERIC.contains(&w.trim_matches(|c: char| !c.is_alphanumeric())))
        && lower != "pdf"
}

/// Whether `short` is `full` cut off (at least 20 characters, and shorter).
fn is_truncation_of(short: &str, full: &str) -> bool {
    let short = normalize_space(short).to_lowercase();
    let full = normalize_space(full).to_lowercase();
    short.chars().count() >= 20 && short.len() < full.len() && full.starts_with(&short)
}

fn same_text(a: &str, b: &str) -> bool {
    normalize_space(a).to_lowercase() == normalize_space(b).to_lowercase()
}

/// `.../bbo-satzung-hundesteuer.pdf` -> `bbo satzung hundesteuer`.
fn title_from_file_name(url: &url::Url) -> String {
    let segment = url
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .unwrap_or("");
    let decoded: String = url::form_urlencoded::parse(segment.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    let stem = decoded
        .strip_suffix(".pdf")
        .or_else(|| decoded.strip_suffix(".PDF"))
        .unwrap_or(&decoded);
    let title = normalize_space(&stem.replace(['-', '_'], " "));
    if title.is_empty() {
        url.to_string()
    } else {
        title
    }
}

// ---------------------------------------------------------------------------------------------
// Lines to blocks

/// One line of page text, with what we know about it.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Text { text: String, indent: usize },
    Blank,
    PageBreak,
}

/// Turns the pages' text into blocks. Public within the crate for tests on synthetic text.
pub(crate) fn structure_pages(pages: &[String]) -> Vec<Block> {
    let lines = clean_lines(pages);
    let levels = HeadingLevels::for_lines(&lines);
    let mut builder = BlockBuilder::default();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1);
        builder.push(line, next, &levels);
    }
    builder.finish()
}

/// Splits pages into lines and removes running headers/footers and page numbers.
fn clean_lines(pages: &[String]) -> Vec<Line> {
    let page_lines: Vec<Vec<&str>> = pages.iter().map(|p| p.lines().collect()).collect();
    let repeated = running_lines(&page_lines);
    let mut out = Vec::new();
    for (n, lines) in page_lines.iter().enumerate() {
        if n > 0 {
            out.push(Line::PageBreak);
        }
        let non_empty: Vec<usize> = (0..lines.len())
            .filter(|&i| !lines[i].trim().is_empty())
            .collect();
        let edge = |i: usize| {
            let pos = non_empty.iter().position(|&j| j == i);
            pos.is_some_and(|p| p < EDGE_LINES || p + EDGE_LINES >= non_empty.len())
        };
        let mut page = Vec::new();
        for (i, raw) in lines.iter().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                page.push(Line::Blank);
                continue;
            }
            // "Seite 3 von 7" is a page number anywhere, a bare "3" only at the page's edge
            let page_label = is_page_number(trimmed) && trimmed.to_lowercase().starts_with("seite");
            if page_label
                || (edge(i)
                    && (is_page_number(trimmed) || repeated.contains(&running_key(trimmed))))
            {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            page.push(Line::Text {
                text: raw.trim_end().to_owned(),
                indent,
            });
        }
        // Blank lines collapse, and none at the page's edges: what a page break means is
        // decided by the paragraph logic.
        page.dedup_by(|a, b| *a == Line::Blank && *b == Line::Blank);
        while page.last() == Some(&Line::Blank) {
            page.pop();
        }
        let start = page
            .iter()
            .position(|l| *l != Line::Blank)
            .unwrap_or(page.len());
        out.extend(page.drain(start..));
    }
    out
}

/// How many non-empty lines at the top and bottom of a page can be running headers/footers.
const EDGE_LINES: usize = 2;

/// Keys of lines that appear at the top or bottom of at least half the pages (and two).
fn running_lines(pages: &[Vec<&str>]) -> Vec<String> {
    if pages.len() < 2 {
        return Vec::new();
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for lines in pages {
        let non_empty: Vec<&str> = lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        let mut keys: Vec<String> = non_empty
            .iter()
            .take(EDGE_LINES)
            .chain(non_empty.iter().rev().take(EDGE_LINES))
            .map(|l| running_key(l))
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            *counts.entry(k).or_default() += 1;
        }
    }
    let threshold = pages.len().div_ceil(2).max(2);
    counts
        .into_iter()
        .filter(|(_, c)| *c >= threshold)
        .map(|(k, _)| k)
        .collect()
}

/// Digits masked so that "Seite 2" and "Seite 3" are the same running line.
fn running_key(line: &str) -> String {
    normalize_space(line)
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

/// "3", "- 3 -", "3/7", "Seite 3", "Seite 3 von 7", "Seite: P1 - 3".
fn is_page_number(line: &str) -> bool {
    let lower = line.to_lowercase();
    let (prefixed, rest) = match lower
        .strip_prefix("seite")
        .or_else(|| lower.strip_prefix("page"))
    {
        Some(rest) => (true, rest.trim_start_matches([':', ' ', '.'])),
        None => (false, lower.as_str()),
    };
    let rest = rest.trim();
    if rest.is_empty() || rest.chars().count() > 16 || !rest.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let rest = rest.replace("von", "/").replace("of", "/");
    if prefixed {
        rest.chars()
            .all(|c| c.is_ascii_alphanumeric() || " -–/.".contains(c))
    } else {
        rest.chars()
            .all(|c| c.is_ascii_digit() || " -–/".contains(c))
    }
}

/// Heading levels for this document: with grouping headings (Abschnitt, Teil, I.) those are
/// level 2 and § / Artikel level 3; without them § / Artikel are level 2.
struct HeadingLevels {
    group: u8,
    section: u8,
}

impl HeadingLevels {
    fn for_lines(lines: &[Line]) -> HeadingLevels {
        let has_groups = lines.iter().any(|l| match l {
            Line::Text { text, .. } => {
                heading_kind(&normalize_space(text)) == Some(HeadingKind::Group)
            }
            _ => false,
        });
        if has_groups {
            HeadingLevels {
                group: 2,
                section: 3,
            }
        } else {
            HeadingLevels {
                group: 2,
                section: 2,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadingKind {
    /// Abschnitt, Teil, Kapitel, Anlage, roman numerals: groups of sections.
    Group,
    /// § and Artikel.
    Section,
}

/// Whether a (whitespace-normalised) line is a structural heading of a legal text.
fn heading_kind(line: &str) -> Option<HeadingKind> {
    if line.chars().count() > 120 || line.ends_with([',', ';']) {
        return None;
    }
    if let Some(rest) = line.strip_prefix('§') {
        // "§§ 2, 8" is a reference in running text, never a heading
        return numbered_title(rest, false).then_some(HeadingKind::Section);
    }
    for word in ["Artikel", "Art."] {
        if let Some(rest) = line.strip_prefix(word) {
            return numbered_title(rest, true).then_some(HeadingKind::Section);
        }
    }
    for word in ["Abschnitt", "Teil", "Kapitel", "Anlage", "Anhang"] {
        if let Some(rest) = line.strip_prefix(word) {
            if rest.is_empty() && (word == "Anlage" || word == "Anhang") {
                return Some(HeadingKind::Group);
            }
            return numbered_title(rest, true).then_some(HeadingKind::Group);
        }
    }
    // "2. Abschnitt", "1. Teil: Allgemeines"
    if let Some((number, rest)) = line.split_once(". ")
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
        && ["Abschnitt", "Teil", "Kapitel"].contains(&rest.split([' ', ':']).next().unwrap_or(""))
    {
        return Some(HeadingKind::Group);
    }
    // "I. Allgemeines", "IV - Gebühren", "A. Erstattungsvoraussetzungen"
    for separator in [". ", " - ", " – "] {
        if let Some((number, rest)) = line.split_once(separator) {
            let roman = !number.is_empty()
                && number.len() <= 5
                && number.chars().all(|c| "IVX".contains(c));
            let letter = separator == ". "
                && number.len() == 1
                && number.chars().all(|c| c.is_ascii_uppercase());
            let titled = rest.chars().next().is_some_and(char::is_uppercase);
            if (roman || letter)
                && titled
                && rest.split_whitespace().count() <= 10
                && !rest.ends_with('.')
            {
                return Some(HeadingKind::Group);
            }
        }
    }
    None
}

/// After "§": ` 5 Steuersatz`, ` 12a`, `5. Inkrafttreten`; the number is followed by nothing
/// or by a capitalised title that is not a citation (`§ 4 Abs. 4 GemO ...`).
fn numbered_title(rest: &str, roman_allowed: bool) -> bool {
    // "Artikelgesetz" is a word, not "Artikel" + number
    if rest.starts_with(|c: char| c.is_alphabetic()) {
        return false;
    }
    let rest = rest.trim_start();
    let number_len = rest
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric()))
        .map_or(rest.len(), |(i, _)| i);
    let number = &rest[..number_len];
    let digits = number.trim_end_matches(|c: char| c.is_ascii_lowercase());
    let is_number =
        (!digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()))
            || (roman_allowed
                && !number.is_empty()
                && number.len() <= 5
                && number.chars().all(|c| "IVX".contains(c)));
    if !is_number {
        return false;
    }
    let title = rest[number_len..]
        .trim_start_matches(['.', ':', '-', '–'])
        .trim();
    if title.is_empty() {
        return true;
    }
    const CITATION_WORDS: &[&str] = &["Abs", "Absatz", "Satz", "Nr", "Ziff", "bis", "und", "ff"];
    let first_word = title
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    title
        .chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c == '(')
        && !CITATION_WORDS.contains(&first_word)
        && title.split_whitespace().count() <= 16
}

/// A short stand-alone line that reads like a title: "Inhaltsverzeichnis", "Präambel",
/// "Allgemeine Bestimmungen". It must stand alone between blank lines (checked by the caller).
fn is_plain_heading(line: &str) -> bool {
    let words = line.split_whitespace().count();
    // titles end with a noun; "Dazu gehören" is a lead-in
    let last_word = line.rsplit(' ').next().unwrap_or("");
    let ends_lowercase =
        last_word.chars().count() >= 3 && last_word.chars().all(char::is_lowercase);
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    words <= 8
        && line.chars().count() <= 80
        && letters >= 3
        && line.chars().next().is_some_and(char::is_uppercase)
        && !line.ends_with(['.', '!', '?', ':', ';', ','])
        && !line.contains([',', ':', '|'])
        && !ends_lowercase
        && !is_page_number(line)
}

/// Accumulates lines into blocks.
#[derive(Default)]
struct BlockBuilder {
    blocks: Vec<Block>,
    paragraph: Vec<String>,
    list: Vec<String>,
    table: Option<TableBuilder>,
    /// The previous line was blank (or this is the start).
    after_blank: bool,
    /// The previous line was blank but the paragraph before it did not end.
    soft_break: bool,
    started: bool,
}

#[derive(Default)]
struct TableBuilder {
    /// Raw text of each row; wrapped continuation lines are appended.
    rows: Vec<String>,
}

impl BlockBuilder {
    fn push(&mut self, line: &Line, next: Option<&Line>, levels: &HeadingLevels) {
        if !self.started {
            self.started = true;
            self.after_blank = true;
        }
        let (raw, indent) = match line {
            Line::Blank => {
                // A blank line ends the paragraph, unless the paragraph obviously goes on
                // (large fonts, as in titles, put blank lines between wrapped lines).
                let next_text = match next {
                    Some(Line::Text { text, .. }) => Some(normalize_space(text)),
                    _ => None,
                };
                let at_title = self.blocks.is_empty();
                let first_word = self
                    .paragraph
                    .first()
                    .and_then(|l| l.split_whitespace().next());
                let goes_on = self.list.is_empty()
                    && self.table.is_none()
                    && self.paragraph.last().is_some_and(|l| {
                        !ends_clause(l)
                            && (is_dangling(l)
                                || next_text.as_deref().is_some_and(continues_line)
                                || (at_title
                                    && l.chars().count() >= TITLE_LINE_CHARS
                                    && !l.ends_with(')')
                                    && next_text.as_deref().is_some_and(|n| {
                                        continues_title(n)
                                            && n.split_whitespace().next() != first_word
                                    })))
                    });
                if goes_on {
                    self.soft_break = true;
                } else {
                    self.flush();
                }
                self.after_blank = true;
                return;
            }
            Line::PageBreak => {
                // A paragraph runs on over a page break unless it ended a sentence.
                if self.paragraph.last().is_some_and(|l| ends_sentence(l)) {
                    self.flush();
                    self.after_blank = true;
                }
                return;
            }
            Line::Text { text, indent } => (text.as_str(), *indent),
        };
        let after_blank = std::mem::replace(&mut self.after_blank, false);
        let soft_break = std::mem::replace(&mut self.soft_break, false);
        let text = normalize_space(raw);

        // Tables: indented lines with columns, and the lines wrapped from a row. A separator
        // line under the header row (`---  ---`) is dropped; the header stays the first row.
        if is_separator_row(&text) {
            return;
        }
        if indent >= 2 && (self.table.is_some() || split_cells(raw).len() >= 2) {
            self.flush_paragraph();
            self.flush_list();
            self.table
                .get_or_insert_with(TableBuilder::default)
                .rows
                .push(raw.trim().to_owned());
            return;
        }
        if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
            row.push(' ');
            row.push_str(raw.trim());
            return;
        }

        let at_paragraph_start = self.paragraph.is_empty()
            || soft_break
            || self
                .paragraph
                .last()
                .is_some_and(|l| ends_sentence(l) || l.ends_with(':'));
        // a page break is no evidence: the line may go on on the next page
        let next_is_break = matches!(next, None | Some(Line::Blank));

        // Headings start a paragraph; "§ 4 Abs. 4 GemO ..." inside running text does not.
        // A short stand-alone line is a heading only between blocks, never the first block
        // (that is the document's title) and never after a paragraph that goes on.
        if at_paragraph_start {
            let plain = self.paragraph.is_empty()
                && !self.blocks.is_empty()
                && after_blank
                && next_is_break
                && is_plain_heading(&text);
            let kind = heading_kind(&text).or(plain.then_some(HeadingKind::Section));
            if let Some(kind) = kind {
                self.flush();
                let level = match kind {
                    HeadingKind::Group => levels.group,
                    HeadingKind::Section => levels.section,
                };
                self.blocks.push(Block::Heading {
                    level,
                    text,
                    anchor: None,
                });
                return;
            }
        }

        if let Some((bullet, item)) = strip_bullet(&text) {
            // "- " and "• " are unambiguous; a dash may also continue a sentence
            if at_paragraph_start || !self.list.is_empty() || bullet != "– " {
                self.flush_paragraph();
                self.list.push(item.to_owned());
                return;
            }
        }
        if !self.list.is_empty() {
            // continuation of the last item
            if let Some(last) = self.list.last_mut() {
                *last = join_lines(last, &text);
            }
            return;
        }
        if !self.paragraph.is_empty() && starts_numbered_paragraph(&text, self.paragraph.last()) {
            self.flush_paragraph();
        }
        self.paragraph.push(text);
    }

    fn flush_paragraph(&mut self) {
        let lines = std::mem::take(&mut self.paragraph);
        let text = lines.iter().fold(String::new(), |acc, l| {
            if acc.is_empty() {
                l.clone()
            } else {
                join_lines(&acc, l)
            }
        });
        let text = normalize_space(&text);
        if !text.is_empty() {
            self.blocks.push(Block::Paragraph { text });
        }
    }

    fn flush_list(&mut self) {
        let items: Vec<String> = std::mem::take(&mut self.list)
            .into_iter()
            .map(|i| normalize_space(&i))
            .filter(|i| !i.is_empty())
            .collect();
        if !items.is_empty() {
            self.blocks.push(Block::List {
                ordered: false,
                items,
            });
        }
    }

    fn flush_table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let mut rows: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|r| {
                split_cells(r)
                    .into_iter()
                    .map(|c| normalize_space(&c))
                    .collect()
            })
            .filter(|r: &Vec<String>| r.iter().any(|c| !c.is_empty()))
            .collect();
        if rows.len() == 1 && rows[0].len() < 2 {
            // a lone indented line is a paragraph, not a table
            if let Some(row) = rows.pop() {
                self.blocks.push(Block::Paragraph {
                    text: row.join(" "),
                });
            }
        } else if !rows.is_empty() {
            self.blocks.push(Block::Table { rows });
        }
    }

    fn flush(&mut self) {
        self.flush_paragraph();
        self.flush_list();
        self.flush_table();
    }

    fn finish(mut self) -> Vec<Block> {
        self.flush();
        self.blocks
    }
}

/// Cells of a table row: text separated by three or more spaces (justified text has two).
fn split_cells(row: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut spaces = 0;
    for c in row.trim().chars() {
        if c == ' ' {
            spaces += 1;
            continue;
        }
        if spaces >= 3 {
            cells.push(std::mem::take(&mut cell));
        } else if spaces > 0 {
            cell.push(' ');
        }
        spaces = 0;
        cell.push(c);
    }
    if !cell.is_empty() {
        cells.push(cell);
    }
    cells
}

/// `---  ---  ---`, `|---|---|`.
fn is_separator_row(line: &str) -> bool {
    line.contains("---") && line.chars().all(|c| "-|: –".contains(c))
}

/// `- item` -> `("- ", "item")`.
fn strip_bullet(line: &str) -> Option<(&'static str, &str)> {
    ["- ", "• ", "· ", "▪ ", "– ", "* ", "● ", "◦ ", "\u{f0b7} "]
        .iter()
        .find_map(|b| line.strip_prefix(b).map(|rest| (*b, rest.trim())))
        .filter(|(_, rest)| !rest.is_empty())
}

/// A line this long at the start of a document is a wrapped title line (titles are set in a
/// large font, so about 60-75 characters fill a line).
const TITLE_LINE_CHARS: usize = 60;

/// Whether a line can be the next line of a wrapped title: not a letterhead in capitals,
/// not the start of the table of contents.
fn continues_title(line: &str) -> bool {
    const SECTION_WORDS: &[&str] = &[
        "Inhaltsverzeichnis",
        "Inhalt",
        "Inhaltsübersicht",
        "Präambel",
        "Vorwort",
    ];
    line.to_uppercase() != line && !SECTION_WORDS.contains(&line)
}

/// Whether a line after a blank line continues the paragraph before: it starts in lowercase
/// or with a parenthesis, and is not a numbered item (`a)`, `(1)`).
fn continues_line(line: &str) -> bool {
    let numbered = starts_numbered_paragraph(line, Some(&".".to_owned()));
    !numbered && line.starts_with(|c: char| c.is_lowercase() || c == '(')
}

/// Words a paragraph cannot end with: articles, prepositions, conjunctions.
const FUNCTION_WORDS: &[&str] = &[
    "der", "die", "das", "des", "dem", "den", "ein", "eine", "einer", "eines", "einem", "einen",
    "und", "oder", "sowie", "bzw.", "für", "über", "von", "vom", "zur", "zum", "zu", "im", "in",
    "an", "am", "auf", "aus", "bei", "mit", "nach", "gegen", "ohne", "durch", "um", "unter", "vor",
    "zwischen", "als", "wie", "gem.", "gemäß", "i.V.m.", "nach",
];

/// Whether a paragraph line obviously continues: it ends with a function word, a lowercase
/// word (in German a sentence or title ends with a noun, a verb and a full stop, or a
/// parenthesis; "der Gemeinde und schulischen" goes on), a hyphen, a comma or a dash, a
/// month name (a date goes on with its year), or leaves a parenthesis open.
fn is_dangling(line: &str) -> bool {
    let line = line.trim_end();
    let last_word = line.rsplit(' ').next().unwrap_or("");
    let open = line.matches('(').count() > line.matches(')').count();
    FUNCTION_WORDS.contains(&last_word)
        || (last_word.chars().count() >= 3 && last_word.chars().all(char::is_lowercase))
        || lotse_text::is_month(last_word)
        || line.ends_with(['-', ',', '–'])
        || open
}

/// Ends with punctuation that closes a clause.
fn ends_clause(line: &str) -> bool {
    line.trim_end().ends_with(['.', '!', '?', ';', ':'])
}

fn ends_sentence(line: &str) -> bool {
    line.trim_end().ends_with(['.', '!', '?', ';'])
}

/// Whether `line` opens a new numbered paragraph: `(1)`, `(2a)` always; `1.`, `1.2`, `a)`,
/// `aa)` when the previous line ended a clause (otherwise "bis zum\n31. März" would split),
/// `1.` and `a)` also when they are not a date.
fn starts_numbered_paragraph(line: &str, previous: Option<&String>) -> bool {
    let Some((marker, _)) = line.split_once(' ') else {
        return false;
    };
    if let Some(inner) = marker.strip_prefix('(').and_then(|m| m.strip_suffix(')')) {
        let digits = inner.trim_end_matches(|c: char| c.is_ascii_lowercase());
        return !digits.is_empty()
            && digits.len() <= 2
            && digits.bytes().all(|b| b.is_ascii_digit());
    }
    let previous_closed = previous.is_some_and(|p| p.trim_end().ends_with(['.', ':', ';', ',']));
    let is_marker = if let Some(letters) = marker.strip_suffix(')') {
        !letters.is_empty() && letters.len() <= 2 && letters.chars().all(|c| c.is_ascii_lowercase())
    } else if let Some(number) = marker.strip_suffix('.') {
        let numbered = !number.is_empty()
            && number
                .split('.')
                .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
        // "a." items, only after a closed clause
        let lettered =
            number.len() == 1 && number.bytes().all(|b| b.is_ascii_lowercase()) && previous_closed;
        numbered || lettered
    } else {
        false
    };
    if !is_marker {
        return false;
    }
    // The first item of an enumeration may follow a lead-in without colon ("für das Halten
    // von" / "1. Hunden, die ..."), unless it is a date ("am" / "1. Januar").
    let first_item = marker == "1." || marker == "a)";
    let next_word = line[marker.len()..].split_whitespace().next().unwrap_or("");
    previous_closed || (first_item && !lotse_text::is_month(next_word))
}


/// Joins two lines of one paragraph, undoing hyphenation at the line break.
fn join_lines(first: &str, second: &str) -> String {
    let first = first.trim_end();
    let second = second.trim_start();
    let hyphenated = first
        .strip_suffix('-')
        .filter(|stem| stem.chars().last().is_some_and(char::is_alphabetic));
    match hyphenated {
        Some(stem) => {
            let next_word = second.split_whitespace().next().unwrap_or("");
            let lowercase = next_word.chars().next().is_some_and(char::is_lowercase);
            const CONJUNCTIONS: &[&str] = &[
                "und", "oder", "bzw.", "sowie", "bis", "als", "u.", "und/oder",
            ];
            if lowercase && !CONJUNCTIONS.contains(&next_word) {
                format!("{stem}{second}") // Hunde-|steuer -> Hundesteuer
            } else if lowercase {
                format!("{first} {second}") // Grün-|und -> Grün- und
            } else {
                format!("{first}{second}") // Baden-|Württemberg
            }
        }
        None => format!("{first} {second}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let full = format!(
            "{}/../../../shared/fixtures/sites/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    fn headings(page: &Page) -> Vec<(u8, String)> {
        page.blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading { level, text, .. } => Some((*level, text.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn feuerwehr_entschaedigung_pdf_is_structured() {
        let bytes = fixture("bad-boll/ortsrecht/bbo-satzung-feuerwehrentschaedigungssatzung.pdf");
        let u =
            url("http://127.0.0.1:8089/ortsrecht/bbo-satzung-feuerwehrentschaedigungssatzung.pdf");
        let page = extract_pdf(&bytes, &u, Some("Satzung als PDF herunterladen")).unwrap();
        assert_eq!(page.kind, DocKind::Pdf);
        assert_eq!(page.url, u.as_str());
        assert_eq!(
            page.title,
            "Satzung über die Entschädigung der ehrenamtlich tätigen Angehörigen der \
             Gemeindefeuerwehr (Feuerwehrentschädigungssatzung)"
        );
        let h = headings(&page);
        assert_eq!(h[0], (1, page.title.clone()));
        for expected in [
            "§ 1 Entschädigung für Einsätze",
            "§ 2 Entschädigung für Aus- und Fortbildungslehrgänge",
            "§ 3 Zusätzliche Entschädigung",
            "§ 5 Inkrafttreten",
        ] {
            assert!(
                h.contains(&(2, expected.to_owned())),
                "missing {expected}: {h:#?}"
            );
        }
        // "§ 4 Abs. 4 GemO unbeachtlich, ..." continues a sentence: not a heading
        assert!(!h.iter().any(|(_, t)| t.contains("unbeachtlich")), "{h:#?}");

        let text = page.text();
        assert!(text.contains("dieser beträgt 15,00 € je Stunde."), "{text}");
        assert!(text.contains(
            "Fortbildungslehrgängen mit einer Dauer von bis zu zwei aufeinanderfolgenden Tagen"
        ));
        // numbered paragraphs are separate blocks, double spaces of justified text are gone
        assert!(
            page.blocks
                .iter()
                .any(|b| matches!(b, Block::Paragraph { text }
            if text.starts_with("(2) Der Berechnung der Zeit ist die Dauer des Einsatzes")))
        );
        assert!(!text.contains("  "));
        // the fee table
        let table = page.blocks.iter().find_map(|b| match b {
            Block::Table { rows } => Some(rows),
            _ => None,
        });
        let rows = table.expect("a table");
        assert_eq!(rows[0], vec!["Funktion", "Entschädigung"]);
        assert!(rows.contains(&vec!["Kommandant".to_owned(), "1.000,00 €/Jahr".to_owned()]));
    }

    #[test]
    fn hundesteuer_pdf_has_rates_and_headings() {
        let bytes = fixture("bad-boll/ortsrecht/bbo-satzung-erhebung-hundesteuer.pdf");
        let u = url("http://127.0.0.1:8089/ortsrecht/bbo-satzung-erhebung-hundesteuer.pdf");
        // a link text cut off by the site's navigation gives way to the full title
        let page = extract_pdf(
            &bytes,
            &u,
            Some("Satzung über die Erhebung der Hundesteuer (Hundesteuersatzung) der Gem"),
        )
        .unwrap();
        assert_eq!(
            page.title,
            "Satzung über die Erhebung der Hundesteuer (Hundesteuersatzung) der Gemeinde Bad Boll"
        );
        let h = headings(&page);
        assert!(h.contains(&(2, "§ 5 Steuersatz".to_owned())), "{h:#?}");
        assert!(h.contains(&(2, "§ 13 Inkrafttreten".to_owned())), "{h:#?}");
        let text = page.text();
        assert!(text.contains("Die Steuer beträgt im Kalenderjahr für jeden Hund 165,00 €."));
        // a paragraph running over a page break stays one paragraph
        assert!(
            text.contains("entsprechenden Bruchteil der Jahressteuer."),
            "{text}"
        );
    }

    #[test]
    fn all_fixture_pdfs_extract_without_error() {
        for site in ["bad-boll", "konstanz"] {
            let dir = format!(
                "{}/../../../shared/fixtures/sites/{site}/ortsrecht",
                env!("CARGO_MANIFEST_DIR")
            );
            let entries = std::fs::read_dir(&dir).unwrap();
            let mut n = 0;
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "pdf") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                let u = url(&format!(
                    "http://127.0.0.1:8089/ortsrecht/{}",
                    path.file_name().unwrap().to_string_lossy()
                ));
                let page =
                    extract_pdf(&bytes, &u, None).unwrap_or_else(|e| panic!("{path:?}: {e}"));
                assert!(page.title.len() > 5, "{path:?}: {}", page.title);
                assert!(page.text().split_whitespace().count() > 30, "{path:?}");
                n += 1;
            }
            assert!(n > 5, "{site}: only {n} pdfs");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let u = url("http://x/a.pdf");
        assert!(matches!(
            extract_pdf(b"<html>nope</html>", &u, None),
            Err(PdfError::NotPdf)
        ));
        let broken = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF";
        assert!(extract_pdf(broken, &u, None).is_err());
        // truncated real file
        let bytes = fixture("bad-boll/ortsrecht/bbo-satzung-erhebung-hundesteuer.pdf");
        let _ = extract_pdf(&bytes[..bytes.len() / 2], &u, None);
        let _ = extract_pdf(&bytes[..600], &u, None);
    }

    fn blocks_of(text: &str) -> Vec<Block> {
        structure_pages(&[text.to_owned()])
    }

    #[test]
    fn hyphenation_is_undone_only_before_lowercase() {
        let blocks = blocks_of(
            "Die Hunde-\nsteuer gilt in Baden-\nWürttemberg für Grün-\nund Erholungsanlagen.\n",
        );
        assert_eq!(
            blocks,
            vec![Block::Paragraph {
                text: "Die Hundesteuer gilt in Baden-Württemberg für Grün- und Erholungsanlagen."
                    .into()
            }]
        );
    }

    #[test]
    fn numbering_starts_paragraphs_and_dates_do_not() {
        let blocks = blocks_of(
            "§ 3 Fälligkeit\n\n(1) Die Steuer ist bis zum\n31. März fällig.\n(2) Sie wird erhoben:\n\
             1. für Hunde,\n2. für Katzen.\n",
        );
        let texts: Vec<String> = blocks.iter().map(Block::text).collect();
        assert_eq!(
            texts,
            vec![
                "§ 3 Fälligkeit",
                "(1) Die Steuer ist bis zum 31. März fällig.",
                "(2) Sie wird erhoben:",
                "1. für Hunde,",
                "2. für Katzen.",
            ]
        );
        assert!(matches!(blocks[0], Block::Heading { level: 2, .. }));
    }

    #[test]
    fn heading_patterns() {
        assert_eq!(heading_kind("§ 5 Steuersatz"), Some(HeadingKind::Section));
        assert_eq!(
            heading_kind("§ 12a Inkrafttreten"),
            Some(HeadingKind::Section)
        );
        assert_eq!(heading_kind("§ 1"), Some(HeadingKind::Section));
        assert_eq!(heading_kind("Artikel 3"), Some(HeadingKind::Section));
        assert_eq!(
            heading_kind("Art. 2 Änderung der Satzung"),
            Some(HeadingKind::Section)
        );
        assert_eq!(heading_kind("I. Allgemeines"), Some(HeadingKind::Group));
        assert_eq!(
            heading_kind("Abschnitt 1: Allgemeine Regelungen"),
            Some(HeadingKind::Group)
        );
        assert_eq!(
            heading_kind("2. Abschnitt Gebühren"),
            Some(HeadingKind::Group)
        );
        assert_eq!(
            heading_kind("II - Anschluss und Benutzung"),
            Some(HeadingKind::Group)
        );
        assert_eq!(
            heading_kind("A. Erstattungsvoraussetzungen"),
            Some(HeadingKind::Group)
        );
        assert_eq!(
            heading_kind("§ 4 Abs. 4 GemO unbeachtlich, wenn sie nicht"),
            None
        );
        assert_eq!(heading_kind("§§ 2, 8 Abs. 2 KAG"), None);
        assert_eq!(heading_kind("§ 10 gilt entsprechend."), None);
        assert_eq!(heading_kind("Artikelgesetz vom 1. Mai"), None);
        assert!(is_plain_heading("Inhaltsverzeichnis"));
        assert!(!is_plain_heading("Stand: Januar 2025"));
        assert!(!is_plain_heading("Bad Boll, den 7. November 2013"));
        assert!(!is_plain_heading("Satzung beschlossen."));
        assert!(!is_plain_heading(
            "Zu den Grundstücksentwässerungsanlagen gehören"
        ));
    }

    #[test]
    fn groups_push_sections_down_a_level() {
        let blocks = blocks_of("Abschnitt 1: Allgemeines\n\n§ 1 Geltungsbereich\n\nText hier.\n");
        assert!(matches!(&blocks[0], Block::Heading { level: 2, .. }));
        assert!(matches!(&blocks[1], Block::Heading { level: 3, .. }));
    }

    #[test]
    fn lists_and_tables() {
        let blocks = blocks_of(
            "Benutzungsordnung\n\nInhaltsverzeichnis\n\n- § 1 Zweck\n- § 2 Gebühren für die Benutzung\nder Halle\n\n\
             \x20  Raum    Gebühr   \n  ---  ---  \n   Saal    50 €   \n   Foyer mit\nKüche    20 €   \n",
        );
        assert_eq!(
            blocks,
            vec![
                Block::Paragraph {
                    text: "Benutzungsordnung".into()
                },
                Block::Heading {
                    level: 2,
                    text: "Inhaltsverzeichnis".into(),
                    anchor: None
                },
                Block::List {
                    ordered: false,
                    items: vec![
                        "§ 1 Zweck".into(),
                        "§ 2 Gebühren für die Benutzung der Halle".into()
                    ]
                },
                Block::Table {
                    rows: vec![
                        vec!["Raum".into(), "Gebühr".into()],
                        vec!["Saal".into(), "50 €".into()],
                        vec!["Foyer mit Küche".into(), "20 €".into()],
                    ]
                },
            ]
        );
    }

    #[test]
    fn running_headers_and_page_numbers_are_dropped() {
        let pages = vec![
            "Stadt Musterhausen - Gebührensatzung\n\n§ 1 Gebühren\n\nDie Gebühr beträgt\n\nSeite 1 von 2\n".to_owned(),
            "Stadt Musterhausen - Gebührensatzung\n\n10 Euro.\n\nSeite 2 von 2\n".to_owned(),
        ];
        let text: Vec<String> = structure_pages(&pages).iter().map(Block::text).collect();
        assert_eq!(text, vec!["§ 1 Gebühren", "Die Gebühr beträgt 10 Euro."]);
        assert!(is_page_number("- 3 -"));
        assert!(is_page_number("Seite: P1 - 1"));
        assert!(!is_page_number("§ 3"));
        assert!(!is_page_number("Seite an Seite"));
    }

    #[test]
    fn titles() {
        assert!(!is_meaningful_info_title("Microsoft Word - satzung.docx"));
        assert!(!is_meaningful_info_title("Untitled"));
        assert!(!is_meaningful_info_title("bbo_satzung_2023"));
        assert!(is_meaningful_info_title("Hundesteuersatzung"));
        assert_eq!(
            clean_link_text("Hundesteuersatzung (PDF, 120 KB)"),
            "Hundesteuersatzung"
        );
        assert!(!is_meaningful_link_text("Satzung als PDF herunterladen"));
        assert!(!is_meaningful_link_text("PDF"));
        assert!(is_meaningful_link_text(
            "Feuerwehrsatzung der Gemeinde Bad Boll"
        ));
        assert_eq!(
            title_from_file_name(&url("http://x/ortsrecht/bbo-satzung-hunde%20steuer.pdf")),
            "bbo satzung hunde steuer"
        );
        assert_eq!(
            pdf_date("D:20240131120000+01'00'").as_deref(),
            Some("2024-01-31")
        );
        assert_eq!(pdf_date("D:2024"), None);
    }
}
