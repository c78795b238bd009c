//! Uploads -> pages: find out what a file really is (by its bytes, not its name), then
//! extract its text into headings, paragraphs, lists and tables.
//!
//! Supported: PDF, DOCX, ODT, plain text, Markdown, HTML. Nothing in a file is ever executed:
//! DOCX and ODT are read as XML (macros are ignored), HTML is parsed, never rendered. Zip
//! containers are read with a budget for the unpacked size and the number of entries, so a
//! zip bomb is refused instead of filling the memory. PDFs are read under the
//! [`crate::pdf::PdfLimits`] (decoded bytes, objects, pages, content, time): a PDF
//! decompression bomb is [`ExtractError::PdfTooLarge`] (422) before it is decoded.

use std::io::{Cursor, Read};

use lotse_core::{Block, DocKind, Page};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

/// Most bytes unpacked from one zip entry (document.xml, content.xml).
pub const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;
/// Most unpacked bytes per packed byte a document may have (text XML packs 10-30 fold).
pub const MAX_RATIO: u64 = 200;
/// Most entries in a zip container.
pub const MAX_ZIP_ENTRIES: usize = 5000;

/// The file types the portal takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Pdf,
    Docx,
    Odt,
    Text,
    Markdown,
    Html,
}

impl FileKind {
    pub fn key(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Docx => "docx",
            FileKind::Odt => "odt",
            FileKind::Text => "text",
            FileKind::Markdown => "markdown",
            FileKind::Html => "html",
        }
    }
    pub fn parse(s: &str) -> Option<FileKind> {
        [FileKind::Pdf, FileKind::Docx, FileKind::Odt, FileKind::Text, FileKind::Markdown, FileKind::Html]
            .into_iter()
            .find(|k| k.key() == s)
    }
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            FileKind::Odt => "application/vnd.oasis.opendocument.text",
            FileKind::Text => "text/plain; charset=utf-8",
            FileKind::Markdown => "text/markdown; charset=utf-8",
            FileKind::Html => "text/html; charset=utf-8",
        }
    }
    fn doc_kind(self) -> DocKind {
        match self {
            FileKind::Pdf => DocKind::Pdf,
            FileKind::Docx => DocKind::Docx,
            FileKind::Odt => DocKind::Odt,
            FileKind::Text | FileKind::Markdown => DocKind::Text,
            FileKind::Html => DocKind::Html,
        }
    }
}

/// Why an upload cannot be taken. Each maps to a 4xx with a German message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("empty file")]
    Empty,
    #[error("unsupported file type ({0})")]
    Unsupported(String),
    #[error("file name says {claimed} but the content is {found}")]
    Mismatch { claimed: String, found: String },
    #[error("corrupt {kind} file: {reason}")]
    Corrupt { kind: &'static str, reason: String },
    #[error("zip container unpacks to too much data")]
    ZipBomb,
    /// A PDF over the limits of [`crate::pdf::PdfLimits`] (a decompression bomb, or
    /// too large or complex to read safely).
    #[error("{0}")]
    PdfTooLarge(String),
    #[error("encrypted document")]
    Encrypted,
    #[error("no text in the document")]
    NoText,
}

impl ExtractError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Empty => "empty_file",
            ExtractError::Unsupported(_) => "unsupported_type",
            ExtractError::Mismatch { .. } => "type_mismatch",
            ExtractError::Corrupt { .. } => "corrupt_file",
            ExtractError::ZipBomb => "zip_bomb",
            ExtractError::PdfTooLarge(_) => "pdf_too_large",
            ExtractError::Encrypted => "encrypted",
            ExtractError::NoText => "no_text",
        }
    }
    /// Whether the file type itself is the problem (415) rather than its content (422).
    pub fn is_type_error(&self) -> bool {
        matches!(self, ExtractError::Unsupported(_) | ExtractError::Mismatch { .. })
    }
    pub fn message_de(&self) -> String {
        match self {
            ExtractError::Empty => "Die Datei ist leer.".into(),
            ExtractError::Unsupported(_) => {
                "Dieser Dateityp wird nicht unterstützt. Möglich sind PDF, DOCX, ODT, TXT, Markdown und HTML.".into()
            }
            ExtractError::Mismatch { claimed, found } => format!(
                "Die Datei heißt wie eine {claimed}-Datei, ist aber eine {found}-Datei. Bitte prüfen Sie die Datei."
            ),
            ExtractError::Corrupt { kind, .. } => format!(
                "Die {}-Datei ist beschädigt und kann nicht gelesen werden.",
                kind.to_uppercase()
            ),
            ExtractError::ZipBomb => {
                "Die Datei entpackt sich zu einer unplausibel großen Datenmenge und wurde abgelehnt.".into()
            }
            ExtractError::PdfTooLarge(_) => {
                "Die PDF-Datei entpackt sich zu einer unplausibel großen Datenmenge oder ist zu umfangreich, um sie sicher zu lesen, und wurde abgelehnt.".into()
            }
            ExtractError::Encrypted => {
                "Die Datei ist verschlüsselt oder kennwortgeschützt. Bitte laden Sie eine ungeschützte Fassung hoch.".into()
            }
            ExtractError::NoText => {
                "In der Datei wurde kein Text gefunden (vielleicht ein eingescanntes Bild ohne Texterkennung).".into()
            }
        }
    }
}

fn extension(name: &str) -> Option<String> {
    let n = name.rsplit(['/', '\\']).next().unwrap_or(name);
    n.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

fn claimed_kind(name: &str) -> Option<FileKind> {
    match extension(name)?.as_str() {
        "pdf" => Some(FileKind::Pdf),
        "docx" => Some(FileKind::Docx),
        "odt" => Some(FileKind::Odt),
        "txt" | "text" => Some(FileKind::Text),
        "md" | "markdown" => Some(FileKind::Markdown),
        "html" | "htm" => Some(FileKind::Html),
        _ => None,
    }
}

fn open_zip(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, ExtractError> {
    let z = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::Corrupt {
        kind: "zip",
        reason: e.to_string(),
    })?;
    if z.len() > MAX_ZIP_ENTRIES {
        return Err(ExtractError::ZipBomb);
    }
    Ok(z)
}

/// What the bytes are. `name` only breaks ties between text formats and catches a file whose
/// name claims another type.
pub fn sniff(bytes: &[u8], name: &str) -> Result<FileKind, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    let claimed = claimed_kind(name);
    let head = &bytes[..bytes.len().min(1024)];
    let found = if head.windows(5).any(|w| w == b"%PDF-") {
        FileKind::Pdf
    } else if head.starts_with(b"PK\x03\x04") {
        let mut z = open_zip(bytes)?;
        let odt = z
            .by_name("mimetype")
            .ok()
            .and_then(|mut f| {
                let mut s = String::new();
                (&mut f).take(100).read_to_string(&mut s).ok().map(|_| s)
            })
            .map(|s| s.trim().to_string());
        match odt.as_deref() {
            Some("application/vnd.oasis.opendocument.text") => FileKind::Odt,
            Some(other) => return Err(ExtractError::Unsupported(other.to_string())),
            None if z.by_name("word/document.xml").is_ok() => FileKind::Docx,
            None if z.by_name("EncryptedPackage").is_ok() => return Err(ExtractError::Encrypted),
            None => return Err(ExtractError::Unsupported("zip".into())),
        }
    } else if head.starts_with(b"\xd0\xcf\x11\xe0") {
        // OLE2: old .doc, or an encrypted OOXML document
        return Err(if matches!(claimed, Some(FileKind::Docx)) {
            ExtractError::Encrypted
        } else {
            ExtractError::Unsupported("ole2 (doc, xls)".into())
        });
    } else if head.starts_with(b"MZ") || head.starts_with(b"\x7fELF") || head.contains(&0) {
        return Err(ExtractError::Unsupported("binary".into()));
    } else {
        let text = String::from_utf8_lossy(head).to_ascii_lowercase();
        let t = text.trim_start_matches('\u{feff}').trim_start();
        let looks_html = t.starts_with("<!doctype html")
            || t.starts_with("<html")
            || (t.starts_with('<') && (t.contains("<body") || t.contains("<head") || t.contains("<p>") || t.contains("<h1")));
        match claimed {
            _ if looks_html => FileKind::Html,
            Some(FileKind::Markdown) => FileKind::Markdown,
            _ => FileKind::Text,
        }
    };
    match claimed {
        Some(c) if c != found && !(is_text(c) && is_text(found)) => Err(ExtractError::Mismatch {
            claimed: c.key().to_uppercase(),
            found: found.key().to_uppercase(),
        }),
        _ => Ok(found),
    }
}

fn is_text(k: FileKind) -> bool {
    matches!(k, FileKind::Text | FileKind::Markdown | FileKind::Html)
}

/// Sniff and extract. `url` is where the document will be shown (its citation target);
/// headings get anchors `abschnitt-N` for deep links.
pub fn extract(bytes: &[u8], name: &str, url: &str) -> Result<(FileKind, Page), ExtractError> {
    let kind = sniff(bytes, name)?;
    let stem = file_title(name);
    let base = url::Url::parse("https://portal.invalid/").expect("static url");
    let mut page = match kind {
        FileKind::Pdf => {
            let u = base.join(&sanitize_name(name)).unwrap_or_else(|_| base.clone());
            crate::pdf::extract_pdf(bytes, &u, None).map_err(|e| match e {
                crate::pdf::PdfError::Encrypted => ExtractError::Encrypted,
                crate::pdf::PdfError::NoText => ExtractError::NoText,
                e @ crate::pdf::PdfError::TooLarge { .. } => ExtractError::PdfTooLarge(e.to_string()),
                other => ExtractError::Corrupt {
                    kind: "pdf",
                    reason: other.to_string(),
                },
            })?
        }
        FileKind::Docx => office(bytes, "word/document.xml", Dialect::Word, &stem)?,
        FileKind::Odt => office(bytes, "content.xml", Dialect::Odf, &stem)?,
        FileKind::Html => {
            let html = crate::charset::decode_html(bytes, None);
            let ex = crate::html::extract_html(&html, &base);
            let mut p = ex.page;
            if p.title.trim().is_empty() {
                p.title = stem.clone();
            }
            p
        }
        FileKind::Markdown => text_page(&crate::charset::decode_text(bytes, None), true, &stem),
        FileKind::Text => text_page(&crate::charset::decode_text(bytes, None), false, &stem),
    };
    page.blocks.retain(|b| !b.text().trim().is_empty());
    if page.blocks.iter().all(|b| matches!(b, Block::Heading { .. })) {
        return Err(ExtractError::NoText);
    }
    let mut n = 0;
    for b in &mut page.blocks {
        if let Block::Heading { anchor, .. } = b {
            n += 1;
            *anchor = Some(format!("abschnitt-{n}"));
        }
    }
    page.url = url.to_string();
    page.kind = kind.doc_kind();
    if page.title.trim().is_empty() {
        page.title = stem;
    }
    Ok((kind, page))
}

fn sanitize_name(name: &str) -> String {
    let n = name.rsplit(['/', '\\']).next().unwrap_or(name);
    n.chars()
        .map(|c| if c.is_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

/// "Dienstanweisung_Homeoffice_2025.docx" -> "Dienstanweisung Homeoffice 2025".
pub fn file_title(name: &str) -> String {
    let n = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = n.rsplit_once('.').map(|(s, _)| s).unwrap_or(n);
    let t = stem.replace(['_', '-'], " ");
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() { "Dokument".into() } else { t }
}

fn paragraph(text: &str) -> Option<Block> {
    let t = crate::html::normalize_space(text);
    (!t.is_empty()).then_some(Block::Paragraph { text: t })
}

/// Plain text or Markdown: blank lines separate paragraphs; in Markdown, `#` lines are
/// headings, `-`/`*`/`1.` lines list items, `|` lines table rows.
fn text_page(text: &str, markdown: bool, stem: &str) -> Page {
    let mut blocks = Vec::new();
    let mut para = String::new();
    let mut list: Option<(bool, Vec<String>)> = None;
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush = |para: &mut String, list: &mut Option<(bool, Vec<String>)>, table: &mut Vec<Vec<String>>, blocks: &mut Vec<Block>| {
        if let Some(b) = paragraph(para) {
            blocks.push(b);
        }
        para.clear();
        if let Some((ordered, items)) = list.take() {
            blocks.push(Block::List { ordered, items });
        }
        if !table.is_empty() {
            blocks.push(Block::Table { rows: std::mem::take(table) });
        }
    };
    for line in text.trim_start_matches('\u{feff}').lines() {
        let l = line.trim();
        if l.is_empty() {
            flush(&mut para, &mut list, &mut table, &mut blocks);
            continue;
        }
        if markdown {
            if let Some(rest) = l.strip_prefix('#') {
                flush(&mut para, &mut list, &mut table, &mut blocks);
                let level = 1 + rest.chars().take_while(|c| *c == '#').count();
                let text = rest.trim_start_matches('#').trim().trim_end_matches('#').trim();
                blocks.push(Block::Heading {
                    level: level.min(6) as u8,
                    text: strip_md(text),
                    anchor: None,
                });
                continue;
            }
            let bullet = l.strip_prefix("- ").or_else(|| l.strip_prefix("* ")).or_else(|| l.strip_prefix("+ "));
            let numbered = l
                .split_once(". ")
                .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                .map(|(_, r)| r);
            if let Some(item) = bullet.or(numbered) {
                if !para.is_empty() || !table.is_empty() {
                    let keep = list.take();
                    flush(&mut para, &mut None, &mut table, &mut blocks);
                    list = keep;
                }
                let ordered = numbered.is_some() && bullet.is_none();
                list.get_or_insert((ordered, Vec::new())).1.push(strip_md(item));
                continue;
            }
            if l.starts_with('|') {
                let cells: Vec<String> = l.trim_matches('|').split('|').map(|c| strip_md(c.trim())).collect();
                if !cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':' || ch == ' ')) {
                    table.push(cells);
                }
                continue;
            }
        }
        if list.is_some() || !table.is_empty() {
            flush(&mut para, &mut list, &mut table, &mut blocks);
        }
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(&if markdown { strip_md(l) } else { l.to_string() });
    }
    flush(&mut para, &mut list, &mut table, &mut blocks);
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Heading { text, .. } => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_else(|| stem.to_string());
    untitled_page(title, blocks)
}

/// Markdown emphasis and links to plain text: `**a**` -> `a`, `[t](u)` -> `t`.
fn strip_md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find("](").and_then(|j| after[j..].find(')').map(|k| (j, j + k))) {
            Some((j, end)) => {
                out.push_str(&after[..j]);
                rest = &after[end + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace("__", "").replace('`', "")
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Word,
    Odf,
}

fn read_entry(z: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, packed_total: u64) -> Result<Option<Vec<u8>>, ExtractError> {
    let f = match z.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(zip::result::ZipError::UnsupportedArchive(m)) if m.contains("ncrypt") || m.contains("assword") => {
            return Err(ExtractError::Encrypted);
        }
        Err(e) => {
            return Err(ExtractError::Corrupt {
                kind: "zip",
                reason: e.to_string(),
            });
        }
    };
    if f.encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let budget = MAX_UNPACKED_BYTES.min(packed_total.max(1).saturating_mul(MAX_RATIO));
    let mut out = Vec::new();
    f.take(budget + 1).read_to_end(&mut out).map_err(|e| ExtractError::Corrupt {
        kind: "zip",
        reason: e.to_string(),
    })?;
    if out.len() as u64 > budget {
        return Err(ExtractError::ZipBomb);
    }
    Ok(Some(out))
}

fn office(bytes: &[u8], entry: &str, dialect: Dialect, stem: &str) -> Result<Page, ExtractError> {
    let kind = if dialect == Dialect::Word { "docx" } else { "odt" };
    let mut z = open_zip(bytes)?;
    // the declared sizes can lie; they still catch the plain bombs before any unpacking
    let declared: u64 = (0..z.len())
        .filter_map(|i| z.by_index_raw(i).ok().map(|f| f.size()))
        .fold(0u64, |a, b| a.saturating_add(b));
    if declared > MAX_UNPACKED_BYTES.saturating_mul(4) {
        return Err(ExtractError::ZipBomb);
    }
    let xml = read_entry(&mut z, entry, bytes.len() as u64)?.ok_or_else(|| ExtractError::Corrupt {
        kind,
        reason: format!("{entry} missing"),
    })?;
    let meta_name = if dialect == Dialect::Word { "docProps/core.xml" } else { "meta.xml" };
    let title = read_entry(&mut z, meta_name, bytes.len() as u64)
        .ok()
        .flatten()
        .and_then(|m| meta_title(&m))
        .filter(|t| !t.trim().is_empty());
    let blocks = office_blocks(&xml, dialect).map_err(|reason| ExtractError::Corrupt { kind, reason })?;
    let title = title
        .or_else(|| {
            blocks.iter().find_map(|b| match b {
                Block::Heading { text, .. } => Some(text.clone()),
                _ => None,
            })
        })
        .unwrap_or_else(|| stem.to_string());
    Ok(untitled_page(title, blocks))
}

fn meta_title(xml: &[u8]) -> Option<String> {
    let mut r = Reader::from_reader(xml);
    let mut in_title = false;
    let mut out = String::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => in_title = e.local_name().as_ref() == b"title",
            Ok(Event::Text(t)) if in_title => out.push_str(&t.decode().ok()?),
            Ok(Event::End(_)) if in_title => return Some(out),
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

fn attr(e: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let key = a.key.local_name();
        (key.as_ref() == local).then(|| String::from_utf8_lossy(&a.value).into_owned())
    })
}

/// Heading level of a Word paragraph style id ("Heading2", "berschrift2" in German Word,
/// "Title"/"Titel").
fn word_heading_level(style: &str) -> Option<u8> {
    let s = style.to_ascii_lowercase();
    if s == "title" || s == "titel" {
        return Some(1);
    }
    for prefix in ["heading", "berschrift", "überschrift", "uberschrift"] {
        if let Some(n) = s.strip_prefix(prefix) {
            return n.trim().parse::<u8>().ok().map(|n| n.clamp(1, 6));
        }
    }
    None
}

/// Walk the document XML of DOCX (`w:`) or ODT (`text:`/`table:`) into blocks.
fn office_blocks(xml: &[u8], dialect: Dialect) -> Result<Vec<Block>, String> {
    let mut r = Reader::from_reader(xml);
    r.config_mut().trim_text(false);
    let mut blocks: Vec<Block> = Vec::new();
    let mut text = String::new();
    // paragraph state
    let mut in_para = false;
    let mut heading: Option<u8> = None;
    let mut list_item = false;
    let mut in_text_run = dialect == Dialect::Odf;
    // tables: rows of cells; nesting depth
    let mut table_depth = 0usize;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut cell: Option<String> = None;
    let mut list_depth = 0usize;
    let mut items: Vec<String> = Vec::new();
    let mut skip_depth = 0usize;

    let (p_tag, t_tag): (&[u8], &[u8]) = match dialect {
        Dialect::Word => (b"p", b"t"),
        Dialect::Odf => (b"p", b""),
    };
    let finish_para = |text: &mut String,
                       heading: Option<u8>,
                       list_item: bool,
                       cell: &mut Option<String>,
                       items: &mut Vec<String>,
                       blocks: &mut Vec<Block>| {
        let t = crate::html::normalize_space(text);
        text.clear();
        if t.is_empty() {
            return;
        }
        if let Some(c) = cell.as_mut() {
            if !c.is_empty() {
                c.push(' ');
            }
            c.push_str(&t);
        } else if let Some(level) = heading {
            if !items.is_empty() {
                blocks.push(Block::List { ordered: false, items: std::mem::take(items) });
            }
            blocks.push(Block::Heading { level, text: t, anchor: None });
        } else if list_item {
            items.push(t);
        } else {
            if !items.is_empty() {
                blocks.push(Block::List { ordered: false, items: std::mem::take(items) });
            }
            blocks.push(Block::Paragraph { text: t });
        }
    };
    loop {
        let ev = r.read_event().map_err(|e| e.to_string())?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name();
                let n = name.as_ref();
                if skip_depth > 0 {
                    skip_depth += 1;
                    continue;
                }
                match (dialect, n) {
                    // deleted text in tracked changes, field instructions, footnote refs
                    (Dialect::Word, b"del" | b"instrText" | b"delText") => skip_depth = 1,
                    (Dialect::Odf, b"note" | b"tracked-changes" | b"annotation") => skip_depth = 1,
                    (_, x) if x == p_tag || (dialect == Dialect::Odf && x == b"h") => {
                        in_para = true;
                        heading = None;
                        list_item = list_depth > 0;
                        if dialect == Dialect::Odf && x == b"h" {
                            let level = attr(&e, b"outline-level").and_then(|l| l.parse::<u8>().ok()).unwrap_or(1);
                            heading = Some(level.clamp(1, 6));
                        }
                    }
                    (Dialect::Word, b"pStyle") => {}
                    (Dialect::Word, b"r") => {}
                    (Dialect::Word, x) if x == t_tag => in_text_run = true,
                    (_, b"tbl" | b"table") => {
                        table_depth += 1;
                        if table_depth == 1 {
                            rows.clear();
                        }
                    }
                    (_, b"tr" | b"table-row") if table_depth == 1 => rows.push(Vec::new()),
                    (_, b"tc" | b"table-cell") if table_depth == 1 => cell = Some(String::new()),
                    (Dialect::Odf, b"list") => list_depth += 1,
                    (Dialect::Odf, b"list-item") => {}
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if skip_depth > 0 {
                    continue;
                }
                let name = e.local_name();
                match (dialect, name.as_ref()) {
                    (Dialect::Word, b"pStyle") => {
                        if let Some(v) = attr(&e, b"val") {
                            heading = word_heading_level(&v);
                            if v.to_ascii_lowercase().contains("list") || v.starts_with("Aufz") {
                                list_item = true;
                            }
                        }
                    }
                    (Dialect::Word, b"numPr") => list_item = true,
                    (Dialect::Word, b"ilvl" | b"numId") => list_item = true,
                    (Dialect::Word, b"tab") | (Dialect::Odf, b"tab") => text.push('\t'),
                    (Dialect::Word, b"br" | b"cr") | (Dialect::Odf, b"line-break") => text.push(' '),
                    (Dialect::Odf, b"s") => {
                        let c = attr(&e, b"c").and_then(|c| c.parse::<usize>().ok()).unwrap_or(1);
                        text.push_str(&" ".repeat(c.min(8)));
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if skip_depth == 0 && in_para && in_text_run {
                    text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(g) => {
                if skip_depth == 0 && in_para && in_text_run {
                    let s = match g.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match g.decode().as_deref() {
                            Ok("amp") => "&".into(),
                            Ok("lt") => "<".into(),
                            Ok("gt") => ">".into(),
                            Ok("quot") => "\"".into(),
                            Ok("apos") => "'".into(),
                            _ => String::new(),
                        },
                    };
                    text.push_str(&s);
                }
            }
            Event::End(e) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                let name = e.local_name();
                let n = name.as_ref();
                match (dialect, n) {
                    (_, x) if x == p_tag || (dialect == Dialect::Odf && x == b"h") => {
                        finish_para(&mut text, heading, list_item, &mut cell, &mut items, &mut blocks);
                        in_para = false;
                        heading = None;
                        list_item = false;
                    }
                    (Dialect::Word, x) if x == t_tag => in_text_run = false,
                    (_, b"tc" | b"table-cell") if table_depth == 1 => {
                        if let (Some(c), Some(row)) = (cell.take(), rows.last_mut()) {
                            row.push(c);
                        }
                    }
                    (_, b"tbl" | b"table") => {
                        table_depth = table_depth.saturating_sub(1);
                        if table_depth == 0 {
                            if !items.is_empty() {
                                blocks.push(Block::List { ordered: false, items: std::mem::take(&mut items) });
                            }
                            let rows: Vec<Vec<String>> =
                                std::mem::take(&mut rows).into_iter().filter(|r| r.iter().any(|c| !c.is_empty())).collect();
                            if !rows.is_empty() {
                                blocks.push(Block::Table { rows });
                            }
                        }
                    }
                    (Dialect::Odf, b"list") => {
                        list_depth = list_depth.saturating_sub(1);
                        if list_depth == 0 && !items.is_empty() {
                            blocks.push(Block::List { ordered: false, items: std::mem::take(&mut items) });
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !items.is_empty() {
        blocks.push(Block::List { ordered: false, items });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_structure() {
        let p = text_page("# Titel\n\nEin **wichtiger** Absatz\nüber zwei Zeilen.\n\n- eins\n- [zwei](http://x)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n", true, "x");
        assert_eq!(p.title, "Titel");
        assert_eq!(p.blocks[1], Block::Paragraph { text: "Ein wichtiger Absatz über zwei Zeilen.".into() });
        assert_eq!(p.blocks[2], Block::List { ordered: false, items: vec!["eins".into(), "zwei".into()] });
        assert_eq!(p.blocks[3], Block::Table { rows: vec![vec!["a".into(), "b".into()], vec!["1".into(), "2".into()]] });
    }

    #[test]
    fn names_that_lie_are_caught() {
        assert!(matches!(sniff(b"%PDF-1.4 ...", "brief.docx"), Err(ExtractError::Mismatch { .. })));
        assert!(matches!(sniff(b"MZ\x90\x00", "tool.txt"), Err(ExtractError::Unsupported(_))));
        assert_eq!(sniff(b"<!DOCTYPE html><html>", "seite.txt").unwrap(), FileKind::Html);
        assert_eq!(sniff(b"# Hallo", "notiz.md").unwrap(), FileKind::Markdown);
        assert_eq!(sniff(b"Hallo", "notiz").unwrap(), FileKind::Text);
        assert_eq!(sniff(b"", "x.txt"), Err(ExtractError::Empty));
    }

    #[test]
    fn a_pdf_bomb_is_refused_with_a_german_message() {
        // one page of 64 MiB of zeros (FlateDecode), 65 KB of file; 1 GiB: tests/pdf_bomb.rs
        let bomb = crate::pdf_limits::testing::zero_bomb(64 << 20);
        let err = extract(&bomb, "haushaltsplan.pdf", "").unwrap_err();
        assert!(matches!(err, ExtractError::PdfTooLarge(_)), "{err:?}");
        assert_eq!(err.code(), "pdf_too_large");
        assert!(!err.is_type_error(), "422, not 415");
        assert!(err.message_de().starts_with("Die PDF-Datei entpackt sich"), "{}", err.message_de());
        assert!(err.to_string().contains("stream_size"), "{err}");
    }

    #[test]
    fn word_styles() {
        assert_eq!(word_heading_level("Heading2"), Some(2));
        assert_eq!(word_heading_level("berschrift1"), Some(1));
        assert_eq!(word_heading_level("Standard"), None);
    }
}

/// A page of extracted blocks; `extract` sets its URL and kind.
fn untitled_page(title: String, blocks: Vec<Block>) -> Page {
    Page {
        url: String::new(),
        title,
        kind: DocKind::Text,
        lang: None,
        modified: None,
        blocks,
    }
}
