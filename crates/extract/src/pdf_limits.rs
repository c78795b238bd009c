//! Limits for reading a PDF, so that a small hostile file cannot make `lopdf`/`pdf-extract`
//! allocate gigabytes or run for hours (issue 31, item 3).
//!
//! `lopdf` decodes streams into whole `Vec`s without any bound: xref streams and object
//! streams while loading, page contents, forms, fonts and CMaps while `pdf-extract` walks the
//! pages. A 1 MB FlateDecode stream can hold 1 GiB of zeros. The guard works in three steps,
//! each of which refuses a file with [`PdfError::TooLarge`] before the expensive step happens:
//!
//! 1. **Pre-flight over the raw bytes**, before `lopdf` sees them. Every stream in the file
//!    (every `N G obj << ... >> stream`, and every other `stream` keyword as FlateDecode) is
//!    decoded into a counting sink with its filter chain (FlateDecode with `lopdf`'s raw-deflate
//!    fallback, LZWDecode, ASCII85Decode; other filters are not decoded by `lopdf` either), so
//!    nothing is kept in memory. Limits per stream and for the whole file; field widths of xref
//!    streams and PNG predictor row sizes are checked (both size `lopdf` allocations), and the
//!    index of object streams (`lopdf` parses them while loading to resolve lengths). Image
//!    streams are not decoded (no text in them): their first bytes are blanked in a copy of the
//!    buffer, so no decoder in `lopdf` can expand them, whatever refers to them. `/Encrypt` is
//!    renamed in the copy, so that `lopdf` loads through the path with the object filter below.
//! 2. **Loading** with an object filter: counts objects and their size, keeps the deadline,
//!    empties image streams and renames object streams so that `lopdf` does not expand them.
//!    After loading, the document is decrypted (empty password) and the object streams are
//!    checked (decoded size, number of objects, objects that overlap) and only then expanded.
//! 3. **Post-load checks** on exactly what `pdf-extract` will see: every stream decoded again
//!    into a counting sink (after decryption), pages counted, the content of each page (all its
//!    content streams, as often as listed) and of each form bounded, forms that draw themselves
//!    (which would overflow the stack) and cycles of `/Parent` links (an endless loop) refused,
//!    the total content that `pdf-extract` will parse, forms counted as often as they are
//!    drawn, bounded, and the code ranges of ToUnicode CMaps bounded (the CMap parser puts
//!    every code of a range into a hash map).
//!
//! During extraction, [`GuardedOutput`] keeps the deadline and bounds the extracted text.
//!
//! What this does not do: preempt `pdf-extract` in the middle of one operation. The deadline is
//! checked between objects, decoded chunks, characters and pages; one step between two checks
//! is bounded by the limits above, not by time. A child process with `RLIMIT_AS` would give a
//! hard bound.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pdf_extract::{Dictionary, Document, LoadOptions, Object, ObjectId, ObjectStream, Stream};

use crate::pdf::PdfError;

const MIB: u64 = 1024 * 1024;

/// Bounds for reading one PDF. [`PdfLimits::default`] is what crawls, the CMS refresh and
/// uploads use.
#[derive(Debug, Clone)]
pub struct PdfLimits {
    /// Most bytes one stream may decode to (each filter of its chain).
    pub max_stream_bytes: u64,
    /// Most bytes all streams of the file together may decode to ...
    pub max_decoded_bytes: u64,
    /// ... and at most this many times the file size ...
    pub max_decoded_ratio: u64,
    /// ... where the ratio never limits below this many bytes (small files).
    pub min_decoded_budget: u64,
    /// Most content bytes parsed at once for a page: its content streams (as often as
    /// listed) and the forms it draws, nested. `lopdf` parses content into operations at up to
    /// ~350 bytes of memory per content byte (`[]n[]n...`; ~100 for path drawing), so this
    /// bounds the memory of one page. Pages over it are left out (large vector drawings);
    /// a document with nothing else is refused.
    pub max_content_bytes: u64,
    /// Most content bytes parsed for the whole document: pages, and forms as often as drawn.
    pub max_content_work: u64,
    /// Most objects (including those in object streams).
    pub max_objects: usize,
    pub max_pages: usize,
    /// Deepest nesting of forms drawn by forms.
    pub max_form_depth: usize,
    /// Most character codes all `beginbfrange` ranges of the ToUnicode CMaps map (the CMap
    /// parser puts every code of a range into a hash map, about 140 bytes each).
    pub max_cmap_codes: u64,
    /// Most bytes of extracted text.
    pub max_text_bytes: u64,
    /// Wall time for the whole extraction.
    pub max_time: Duration,
}

impl Default for PdfLimits {
    fn default() -> Self {
        PdfLimits {
            max_stream_bytes: 32 * MIB,
            max_decoded_bytes: 256 * MIB,
            max_decoded_ratio: 100,
            min_decoded_budget: 16 * MIB,
            max_content_bytes: 512 * 1024,
            max_content_work: 256 * MIB,
            max_objects: 250_000,
            max_pages: 3_000,
            max_form_depth: 24,
            max_cmap_codes: 1 << 20,
            max_text_bytes: 32 * MIB,
            max_time: Duration::from_secs(60),
        }
    }
}

impl PdfLimits {
    /// The budget for all decoded bytes of a file of `len` bytes.
    fn decoded_budget(&self, len: usize) -> u64 {
        let ratio = (len as u64).saturating_mul(self.max_decoded_ratio);
        self.max_decoded_bytes
            .min(ratio.max(self.min_decoded_budget))
    }

    /// The budget for the in-memory size of all loaded objects (see [`approx_size`]).
    fn loaded_budget(&self, len: usize) -> u64 {
        (len as u64).saturating_mul(4).saturating_add(64 * MIB)
    }
}

/// Which limit a PDF exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfLimit {
    /// One stream decodes to too much.
    StreamSize,
    /// All streams together decode to too much.
    DecodedSize,
    /// One page or form has too much content.
    PageContent,
    /// All content to parse, forms as often as drawn, is too much.
    ContentWork,
    Objects,
    Pages,
    Text,
    /// A structure that makes the PDF libraries allocate or recurse without bound.
    Structure,
    Time,
}

impl PdfLimit {
    pub fn key(self) -> &'static str {
        match self {
            PdfLimit::StreamSize => "stream_size",
            PdfLimit::DecodedSize => "decoded_size",
            PdfLimit::PageContent => "page_content",
            PdfLimit::ContentWork => "content_work",
            PdfLimit::Objects => "objects",
            PdfLimit::Pages => "pages",
            PdfLimit::Text => "text",
            PdfLimit::Structure => "structure",
            PdfLimit::Time => "time",
        }
    }
}

impl std::fmt::Display for PdfLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

fn too_large(what: PdfLimit, detail: impl Into<String>) -> PdfError {
    PdfError::TooLarge {
        what,
        detail: detail.into(),
    }
}

/// The deadline of one extraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    deadline: Instant,
    max: Duration,
}

impl Clock {
    pub(crate) fn start(max: Duration) -> Clock {
        Clock {
            deadline: Instant::now() + max,
            max,
        }
    }

    pub(crate) fn check(&self) -> Result<(), PdfError> {
        if Instant::now() > self.deadline {
            Err(too_large(
                PdfLimit::Time,
                format!("extraction took longer than {} s", self.max.as_secs()),
            ))
        } else {
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Budgeted decoding

/// A filter as `lopdf` decodes it (`Stream::decompressed_content`). Other filters make `lopdf`
/// fail, and `pdf-extract` then uses the raw bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    Flate,
    Lzw,
    Ascii85,
    Unsupported,
}

impl Filter {
    fn from_name(name: &[u8]) -> Filter {
        match name {
            b"FlateDecode" => Filter::Flate,
            b"LZWDecode" => Filter::Lzw,
            b"ASCII85Decode" => Filter::Ascii85,
            _ => Filter::Unsupported,
        }
    }
}

/// Decoding parameters that matter for memory: the PNG predictor's row (`lopdf` allocates two
/// rows up front) and LZW's early change.
#[derive(Debug, Clone, Copy, Default)]
struct Params {
    predictor_row: Option<u128>,
    /// Bytes per pixel and pixels per row of the PNG predictor.
    predictor: Option<(usize, usize)>,
    early_change: bool,
}

impl Params {
    /// `lopdf`'s reading of `/DecodeParms` values (direct integers only).
    fn new(int: impl Fn(&[u8]) -> Option<i64>) -> Params {
        let predictor = int(b"Predictor").unwrap_or(1);
        let png = (10..=15).contains(&predictor);
        let columns = int(b"Columns").unwrap_or(1).max(1) as u128;
        let colors = int(b"Colors").unwrap_or(1).max(1) as u128;
        let bits = int(b"BitsPerComponent").unwrap_or(8).max(8) as u128;
        let pixel = colors.saturating_mul(bits) / 8;
        let predictor_row = png.then(|| pixel.saturating_mul(columns));
        Params {
            predictor_row,
            predictor: png
                .then(|| Some((usize::try_from(pixel).ok()?, usize::try_from(columns).ok()?)))
                .flatten(),
            early_change: int(b"EarlyChange").map(|v| v != 0).unwrap_or(true),
        }
    }

    fn check(&self) -> Result<(), PdfError> {
        const MAX_ROW: u128 = 4 * MIB as u128;
        match self.predictor_row {
            Some(row) if row > MAX_ROW => Err(too_large(
                PdfLimit::Structure,
                format!("predictor rows of {row} bytes"),
            )),
            _ => Ok(()),
        }
    }
}

/// Where decoded bytes go: counted, or kept (for the next filter of a chain), up to a cap.
struct Sink {
    len: u64,
    cap: u64,
    keep: Option<Vec<u8>>,
}

impl Sink {
    fn counting(cap: u64) -> Sink {
        Sink {
            len: 0,
            cap,
            keep: None,
        }
    }
    fn keeping(cap: u64) -> Sink {
        Sink {
            len: 0,
            cap,
            keep: Some(Vec::new()),
        }
    }
    fn put(&mut self, data: &[u8]) -> Result<(), PdfError> {
        self.len += data.len() as u64;
        if self.len > self.cap {
            return Err(too_large(
                PdfLimit::StreamSize,
                format!("a stream decodes to more than {} MiB", self.cap / MIB),
            ));
        }
        if let Some(v) = &mut self.keep {
            v.extend_from_slice(data);
        }
        Ok(())
    }
}

/// Reads a decoder in chunks into the sink. `Ok(Err(_))` is a decoding error after which
/// `lopdf` keeps what was decoded so far.
fn pump(
    mut reader: impl Read,
    sink: &mut Sink,
    clock: &Clock,
) -> Result<Result<(), std::io::Error>, PdfError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        clock.check()?;
        match reader.read(&mut buf) {
            Ok(0) => return Ok(Ok(())),
            Ok(n) => sink.put(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Ok(Err(e)),
        }
    }
}

/// FlateDecode as `lopdf` does it: zlib, and when that fails before any output, raw deflate
/// after the two header bytes.
fn inflate(input: &[u8], sink: &mut Sink, clock: &Clock) -> Result<(), PdfError> {
    if input.is_empty() {
        return Ok(());
    }
    let before = sink.len;
    let res = pump(flate2::read::ZlibDecoder::new(input), sink, clock)?;
    if res.is_err() && sink.len == before && input.len() > 2 {
        let _ = pump(flate2::read::DeflateDecoder::new(&input[2..]), sink, clock)?;
    }
    Ok(())
}

/// LZWDecode as `lopdf` does it (weezl, MSB, 8 bit symbols).
fn unlzw(input: &[u8], early_change: bool, sink: &mut Sink, clock: &Clock) -> Result<(), PdfError> {
    use weezl::{BitOrder, decode::Decoder};
    struct W<'a> {
        sink: &'a mut Sink,
        clock: &'a Clock,
        err: Option<PdfError>,
    }
    impl std::io::Write for W<'_> {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if let Err(e) = self.clock.check().and_then(|()| self.sink.put(data)) {
                self.err = Some(e);
                return Err(std::io::Error::other("limit"));
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut decoder = if early_change {
        Decoder::with_tiff_size_switch(BitOrder::Msb, 8)
    } else {
        Decoder::new(BitOrder::Msb, 8)
    };
    let mut w = W {
        sink,
        clock,
        err: None,
    };
    let _ = decoder.into_stream(&mut w).decode_all(input);
    match w.err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// ASCII85Decode as `lopdf` does it. `Ok(false)`: `lopdf` fails on this input (and then
/// `pdf-extract` uses the raw bytes).
fn unascii85(input: &[u8], sink: &mut Sink, clock: &Clock) -> Result<bool, PdfError> {
    let input = input.strip_suffix(b"~>").unwrap_or(input);
    let mut out = Vec::with_capacity(4096);
    let (mut buffer, mut count) = (0u32, 0usize);
    for &ch in input {
        if out.len() >= 4000 {
            clock.check()?;
            sink.put(&out)?;
            out.clear();
        }
        if ch == b'z' {
            if count != 0 {
                sink.put(&out)?;
                return Ok(false);
            }
            out.extend_from_slice(&[0, 0, 0, 0]);
            continue;
        }
        if ch.is_ascii_whitespace() {
            continue;
        }
        if !(b'!'..=b'u').contains(&ch) {
            break;
        }
        let Some(b) = buffer.checked_mul(85) else {
            sink.put(&out)?;
            return Ok(false);
        };
        buffer = b + (ch - b'!') as u32;
        count += 1;
        if count == 5 {
            out.extend_from_slice(&buffer.to_be_bytes());
            buffer = 0;
            count = 0;
        }
    }
    if count > 0 {
        out.extend(std::iter::repeat_n(0, count - 1));
    }
    sink.put(&out)?;
    Ok(true)
}

/// What decoding one stream costs.
#[derive(Debug, Clone, Copy, Default)]
struct Decoded {
    /// All bytes the filters produce (each stage is a whole `Vec` in `lopdf`).
    produced: u64,
    /// The bytes a reader of the stream gets (the raw bytes when `lopdf` fails).
    len: u64,
}

/// Decodes `input` with `filters` into counting sinks (the stages before the last are kept,
/// each at most `cap` bytes).
fn decode(
    input: &[u8],
    filters: &[Filter],
    params: &Params,
    cap: u64,
    clock: &Clock,
) -> Result<Decoded, PdfError> {
    decode_keeping(input, filters, params, cap, clock, false).map(|(d, _)| d)
}

/// [`decode`], keeping the output too when `keep_last` (without the PNG predictor, which only
/// removes bytes). `None` when `lopdf` fails on the stream.
fn decode_keeping(
    input: &[u8],
    filters: &[Filter],
    params: &Params,
    cap: u64,
    clock: &Clock,
    keep_last: bool,
) -> Result<(Decoded, Option<Vec<u8>>), PdfError> {
    let mut kept: Option<Vec<u8>> = None;
    let mut produced = 0u64;
    if filters.is_empty() && keep_last {
        let d = Decoded {
            produced: 0,
            len: input.len() as u64,
        };
        return Ok((d, Some(input.to_vec())));
    }
    for (i, filter) in filters.iter().enumerate() {
        let last = i + 1 == filters.len();
        let data: &[u8] = kept.as_deref().unwrap_or(input);
        let mut sink = if last && !keep_last {
            Sink::counting(cap)
        } else {
            Sink::keeping(cap)
        };
        let ok = match filter {
            Filter::Flate => inflate(data, &mut sink, clock).map(|()| true)?,
            Filter::Lzw => unlzw(data, params.early_change, &mut sink, clock).map(|()| true)?,
            Filter::Ascii85 => unascii85(data, &mut sink, clock)?,
            Filter::Unsupported => false,
        };
        produced += sink.len;
        if !ok {
            let d = Decoded {
                produced,
                len: input.len() as u64,
            };
            return Ok((d, None));
        }
        if last {
            let d = Decoded {
                produced,
                len: sink.len,
            };
            return Ok((d, sink.keep));
        }
        kept = sink.keep;
    }
    let d = Decoded {
        produced,
        len: input.len() as u64,
    };
    Ok((d, None))
}

/// A running total of decoded bytes against the file's budget.
struct Total {
    decoded: u64,
    cap: u64,
}

impl Total {
    fn add(&mut self, n: u64) -> Result<(), PdfError> {
        self.decoded = self.decoded.saturating_add(n);
        if self.decoded > self.cap {
            return Err(too_large(
                PdfLimit::DecodedSize,
                format!("the streams decode to more than {} MiB", self.cap / MIB),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A lenient PDF lexer for the pre-flight (it only has to find what `lopdf` would find)

fn is_ws(c: u8) -> bool {
    b" \t\n\r\0\x0C".contains(&c)
}
fn is_delim(c: u8) -> bool {
    b"()<>[]{}/%".contains(&c)
}
fn is_regular(c: u8) -> bool {
    !is_ws(c) && !is_delim(c)
}

/// Whitespace and comments (`lopdf`'s `space`).
fn skip_space(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if i < b.len() && b[i] == b'%' {
            while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                i += 1;
            }
        } else {
            return i;
        }
    }
}

/// The parts of a raw object the guard needs.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Int(i64),
    Name(Vec<u8>),
    Array(Vec<Raw>),
    Dict(Vec<(Vec<u8>, Raw)>),
    /// Strings, reals, references, keywords.
    Other,
}

impl Raw {
    fn get(&self, key: &[u8]) -> Option<&Raw> {
        match self {
            Raw::Dict(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn name(&self) -> Option<&[u8]> {
        match self {
            Raw::Name(n) => Some(n),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            Raw::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// Nesting depth `lopdf` allows.
const MAX_DEPTH: usize = 100;
/// Array elements and dictionary entries kept per container (the rest is skipped).
const MAX_KEPT: usize = 4096;

/// A name token at `i` (`/` included): the decoded name and its end.
fn lex_name(b: &[u8], i: usize) -> (Vec<u8>, usize) {
    let mut j = i + 1;
    let mut out = Vec::new();
    while j < b.len() {
        let c = b[j];
        if c == b'#' {
            match (b.get(j + 1), b.get(j + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    let hex = [*h, *l];
                    let s = std::str::from_utf8(&hex).unwrap_or("00");
                    out.push(u8::from_str_radix(s, 16).unwrap_or(0));
                    j += 3;
                }
                _ => break,
            }
        } else if is_regular(c) {
            out.push(c);
            j += 1;
        } else {
            break;
        }
    }
    (out, j)
}

/// One object starting at `i` (no leading space). `Err(pos)`: no valid object; `pos` is how far
/// the lexer got.
fn lex_object(b: &[u8], i: usize, depth: usize) -> Result<(Raw, usize), usize> {
    if depth == 0 || i >= b.len() {
        return Err(i);
    }
    match b[i] {
        b'<' if b.get(i + 1) == Some(&b'<') => {
            let mut j = skip_space(b, i + 2);
            let mut entries = Vec::new();
            loop {
                if b[j..].starts_with(b">>") {
                    return Ok((Raw::Dict(entries), j + 2));
                }
                if b.get(j) != Some(&b'/') {
                    return Err(j);
                }
                let (key, after) = lex_name(b, j);
                let (value, end) = lex_object(b, skip_space(b, after), depth - 1)?;
                if entries.len() < MAX_KEPT {
                    entries.push((key, value));
                }
                j = skip_space(b, end);
            }
        }
        b'<' => {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'>' {
                if !(b[j].is_ascii_hexdigit() || is_ws(b[j])) {
                    return Err(j);
                }
                j += 1;
            }
            if j < b.len() {
                Ok((Raw::Other, j + 1))
            } else {
                Err(j)
            }
        }
        b'(' => {
            let (mut j, mut level) = (i + 1, 1usize);
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 1,
                    b'(' => level += 1,
                    b')' => {
                        level -= 1;
                        if level == 0 {
                            return Ok((Raw::Other, j + 1));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(b.len())
        }
        b'[' => {
            let mut j = skip_space(b, i + 1);
            let mut items = Vec::new();
            loop {
                if b.get(j) == Some(&b']') {
                    return Ok((Raw::Array(items), j + 1));
                }
                let (item, end) = lex_object(b, j, depth - 1)?;
                if items.len() < MAX_KEPT {
                    items.push(item);
                }
                j = skip_space(b, end);
            }
        }
        b'/' => {
            let (name, end) = lex_name(b, i);
            Ok((Raw::Name(name), end))
        }
        c if c.is_ascii_digit() || c == b'+' || c == b'-' || c == b'.' => {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let token = &b[i..j];
            if token.contains(&b'.') {
                return Ok((Raw::Other, j));
            }
            // a reference: "12 0 R"
            if token.iter().all(u8::is_ascii_digit) {
                let k = skip_space(b, j);
                let mut l = k;
                while l < b.len() && b[l].is_ascii_digit() {
                    l += 1;
                }
                if l > k {
                    let m = skip_space(b, l);
                    if b.get(m) == Some(&b'R') && b.get(m + 1).is_none_or(|c| !is_regular(*c)) {
                        return Ok((Raw::Other, m + 1));
                    }
                }
            }
            match std::str::from_utf8(token)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
            {
                Some(n) => Ok((Raw::Int(n), j)),
                None => Ok((Raw::Other, j)),
            }
        }
        c if is_regular(c) => {
            let mut j = i;
            while j < b.len() && is_regular(b[j]) {
                j += 1;
            }
            Ok((Raw::Other, j))
        }
        _ => Err(i),
    }
}

/// All occurrences of `needle` in `hay`.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let first = needle[0];
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + needle.len() <= hay.len() {
            let at = i + hay[i..].iter().position(|&c| c == first)?;
            i = at + 1;
            if hay[at..].starts_with(needle) {
                return Some(at);
            }
        }
        None
    })
}

/// After a `stream` keyword at `k`: `lopdf`'s `space0 eol`, giving where the data starts.
fn stream_data_start(b: &[u8], k: usize) -> Option<usize> {
    let mut j = k + b"stream".len();
    while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
        j += 1;
    }
    if b[j..].starts_with(b"\r\n") {
        Some(j + 2)
    } else if b.get(j).is_some_and(|c| *c == b'\n' || *c == b'\r') {
        Some(j + 1)
    } else {
        None
    }
}

/// A stream found in the raw bytes.
struct RawStream {
    dict: Option<Raw>,
    data_start: usize,
}

/// Every stream of the raw file: those after an object header (with their dictionary), and
/// every other `stream` keyword (without).
fn raw_streams(b: &[u8], clock: &Clock) -> Result<Vec<RawStream>, PdfError> {
    // lexing work: nested object headers (an object inside a string inside an object ...)
    // would make this quadratic
    let work_cap = (b.len() as u64).saturating_mul(8).saturating_add(MIB);
    let mut work = 0u64;
    let mut streams = Vec::new();
    let mut matched = HashSet::new();
    for (n, p) in find_all(b, b"obj").enumerate() {
        if n % 4096 == 0 {
            clock.check()?;
        }
        // "12 0 obj", not "endobj"
        if p == 0 || !(b[p - 1].is_ascii_digit() || is_ws(b[p - 1])) {
            continue;
        }
        let i = skip_space(b, p + 3);
        if !b[i..].starts_with(b"<<") {
            continue;
        }
        let end = match lex_object(b, i, MAX_DEPTH) {
            Ok((dict, end)) => {
                let k = skip_space(b, end);
                if b[k..].starts_with(b"stream")
                    && let Some(data_start) = stream_data_start(b, k)
                {
                    matched.insert(k);
                    streams.push(RawStream {
                        dict: Some(dict),
                        data_start,
                    });
                }
                end
            }
            Err(end) => end,
        };
        work += (end - i) as u64;
        if work > work_cap {
            return Err(too_large(
                PdfLimit::Structure,
                "objects nested inside other objects",
            ));
        }
    }
    for k in find_all(b, b"stream") {
        if matched.contains(&k) || (k > 0 && b[k - 1].is_ascii_alphanumeric()) {
            continue;
        }
        if let Some(data_start) = stream_data_start(b, k) {
            streams.push(RawStream {
                dict: None,
                data_start,
            });
        }
    }
    Ok(streams)
}

/// The filters of a raw stream dictionary, as `lopdf`'s `Stream::filters` reads them (an
/// indirect `/Filter` or a non-name in the array: no decoding).
fn raw_filters(dict: &Raw) -> Vec<Filter> {
    match dict.get(b"Filter") {
        Some(Raw::Name(n)) => vec![Filter::from_name(n)],
        Some(Raw::Array(items)) if items.iter().all(|i| i.name().is_some()) => items
            .iter()
            .filter_map(Raw::name)
            .map(Filter::from_name)
            .collect(),
        _ => Vec::new(),
    }
}

fn raw_params(dict: &Raw) -> Params {
    match dict.get(b"DecodeParms") {
        Some(p @ Raw::Dict(_)) => Params::new(|k| p.get(k).and_then(Raw::int)),
        _ => Params::new(|_| None),
    }
}

/// Field widths of an xref stream: `lopdf` allocates a buffer of each width and reads entries
/// until the data ends, so all widths zero never ends.
fn check_xref_widths(widths: &Raw) -> Result<u64, PdfError> {
    let Raw::Array(items) = widths else {
        return Ok(0);
    };
    let ints: Vec<i64> = items.iter().filter_map(Raw::int).collect();
    if ints.len() != items.len() || ints.len() < 3 {
        return Ok(0); // lopdf refuses the xref stream
    }
    if ints.iter().any(|w| *w > 8) || ints.iter().take(3).all(|w| *w <= 0) {
        return Err(too_large(
            PdfLimit::Structure,
            format!("xref stream field widths {ints:?}"),
        ));
    }
    Ok(ints.iter().take(3).map(|w| (*w).max(0) as u64).sum())
}

/// Step 1: checks every stream of the raw file and returns the bytes `lopdf` gets: image data
/// blanked, `/Encrypt` renamed to `/EncrypX` (see [`restore_encryption`]).
pub(crate) fn preflight<'a>(
    b: &'a [u8],
    limits: &PdfLimits,
    clock: &Clock,
) -> Result<Cow<'a, [u8]>, PdfError> {
    let mut edits: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut total = Total {
        decoded: 0,
        cap: limits.decoded_budget(b.len()),
    };
    for s in raw_streams(b, clock)? {
        clock.check()?;
        // the data: `/Length` bytes when that is how lopdf reads it, else up to the end of the
        // file (all decoders stop at their own end)
        let mut end = b.len();
        if let Some(len) = s
            .dict
            .as_ref()
            .and_then(|d| d.get(b"Length"))
            .and_then(Raw::int)
            && len >= 0
            && let Some(e) = s
                .data_start
                .checked_add(len as usize)
                .filter(|e| *e <= b.len())
        {
            let after = &b[e..];
            let after = after
                .strip_prefix(b"\r\n")
                .or_else(|| after.strip_prefix(b"\n"))
                .or_else(|| after.strip_prefix(b"\r"))
                .unwrap_or(after);
            if after.starts_with(b"endstream") {
                end = e;
            }
        }
        let data = &b[s.data_start..end];
        let (filters, params) = match &s.dict {
            Some(dict) => {
                if dict.get(b"Subtype").and_then(Raw::name) == Some(b"Image")
                    || dict.get(b"Type").and_then(Raw::name) == Some(b"EmbeddedFile")
                {
                    // no text in images and attached files; their first bytes are blanked, so
                    // that no decoder in lopdf gets anything out of them (only the data: an
                    // unknown /Length may end before 32 bytes)
                    let head = &data[..data.len().min(32 + 11)];
                    let n = find_all(head, b"endstream")
                        .next()
                        .map(|e| {
                            let e = if head[..e].ends_with(b"\r\n") {
                                e - 2
                            } else if head[..e].ends_with(b"\n") || head[..e].ends_with(b"\r") {
                                e - 1
                            } else {
                                e
                            };
                            e.min(32)
                        })
                        .unwrap_or(head.len().min(32));
                    edits.push((s.data_start, vec![0xFF; n]));
                    continue;
                }
                let entries = match dict.get(b"W") {
                    Some(w) => check_xref_widths(w)?,
                    None => 0,
                };
                let params = raw_params(dict);
                params.check()?;
                let filters = raw_filters(dict);
                // lopdf parses object streams while loading (to resolve an indirect /Length,
                // without the object filter): their index is checked here too
                let objstm = dict.get(b"Type").and_then(Raw::name) == Some(b"ObjStm");
                let cap = limits.max_stream_bytes;
                let (decoded, content) =
                    decode_keeping(data, &filters, &params, cap, clock, objstm)?;
                total.add(decoded.produced)?;
                let content = match (content, params.predictor) {
                    // (the row size is checked above)
                    (Some(c), Some((pixel, columns))) => {
                        pdf_extract::filters::png::decode_frame(&c, pixel, columns).ok()
                    }
                    (c, _) => c,
                };
                if let Some(content) = content {
                    let first = dict.get(b"First").and_then(Raw::int);
                    check_object_stream(&content, first, limits, clock)?;
                }
                if entries > 0 && decoded.len / entries > 2 * limits.max_objects as u64 {
                    return Err(too_large(
                        PdfLimit::Objects,
                        format!("an xref stream with {} entries", decoded.len / entries),
                    ));
                }
                continue;
            }
            // a stream whose dictionary the lexer did not find: whatever it is, it must not
            // inflate to more than the limit
            None => (vec![Filter::Flate], Params::default()),
        };
        let decoded = decode(data, &filters, &params, limits.max_stream_bytes, clock)?;
        total.add(decoded.produced)?;
    }
    // lopdf decrypts while loading, where the object filter is not called: it is made to load
    // the document as unencrypted, and decryption follows after loading
    for p in find_all(b, b"/") {
        let (name, end) = lex_name(b, p);
        if name == b"Encrypt" {
            let mut token = b[p..end].to_vec();
            if token == b"/Encrypt" {
                token = b"/EncrypX".to_vec();
            } else {
                // an escaped spelling: renamed to something unknown (the document then stays
                // encrypted, and its text is garbage)
                token[1..].fill(b'X');
            }
            edits.push((p, token));
        }
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(b));
    }
    let mut copy = b.to_vec();
    for (at, bytes) in edits {
        copy[at..at + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(Cow::Owned(copy))
}

// ---------------------------------------------------------------------------------------------
// Step 2: loading

/// The `/Type` object streams get while loading, so that `lopdf` leaves them alone.
const HELD_OBJSTM: &[u8] = b"LotseHeldObjStm";

/// State of the object filter; `lopdf` calls it on the loading thread (its `rayon` feature is
/// off, which [`load`] verifies).
struct LoadState {
    clock: Clock,
    max_objects: usize,
    objects: usize,
    loaded: u64,
    max_loaded: u64,
    calls: u64,
    error: Option<PdfError>,
}

thread_local! {
    static LOADING: RefCell<Option<LoadState>> = const { RefCell::new(None) };
}

/// The panic payload that stops `lopdf` when a limit is hit ([`std::panic::resume_unwind`]
/// does not run the panic hook).
struct LimitHit;

/// Roughly the memory an object takes.
fn approx_size(o: &Object) -> u64 {
    match o {
        Object::String(s, _) => s.len() as u64 + 24,
        Object::Name(n) => n.len() as u64 + 24,
        Object::Array(a) => 24 + a.iter().map(approx_size).sum::<u64>(),
        Object::Dictionary(d) => dict_size(d),
        Object::Stream(s) => s.content.len() as u64 + dict_size(&s.dict),
        _ => 24,
    }
}

fn dict_size(d: &Dictionary) -> u64 {
    24 + d
        .iter()
        .map(|(k, v)| k.len() as u64 + approx_size(v))
        .sum::<u64>()
}

/// Streams without text for us: images, and files attached to the PDF (which can be large
/// and `pdf-extract` never reads).
fn is_image(dict: &Dictionary) -> bool {
    matches!(dict.get(b"Subtype"), Ok(Object::Name(n)) if n == b"Image")
        || dict.has_type(b"EmbeddedFile")
}

/// Images and attached files carry no text: their data goes, so that nothing decodes them.
fn empty_stream(s: &mut Stream) {
    s.dict.remove(b"Filter");
    s.dict.remove(b"DecodeParms");
    s.content = Vec::new();
}

fn load_filter(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    let hit = LOADING.with(|state| {
        let mut state = state.borrow_mut();
        let s = state.as_mut()?;
        s.calls += 1;
        s.objects += 1;
        if let Object::Stream(stream) = object {
            if is_image(&stream.dict) {
                empty_stream(stream);
            } else if stream.dict.has_type(b"ObjStm") {
                stream.dict.set("Type", Object::Name(HELD_OBJSTM.to_vec()));
            }
        }
        s.loaded = s.loaded.saturating_add(approx_size(object));
        let error = if s.objects > s.max_objects {
            Some(too_large(
                PdfLimit::Objects,
                format!("more than {} objects", s.max_objects),
            ))
        } else if s.loaded > s.max_loaded {
            Some(too_large(
                PdfLimit::Structure,
                format!("objects take more than {} MiB", s.max_loaded / MIB),
            ))
        } else {
            s.clock.check().err()
        };
        error.map(|e| s.error = Some(e))
    });
    if hit.is_some() {
        std::panic::resume_unwind(Box::new(LimitHit));
    }
    // lopdf keeps the object it passed (changed in place); the returned one is dropped
    Some((id, Object::Null))
}

/// Step 2: loads the pre-flighted bytes with the object filter. Returns the document and the
/// loaded size so far.
pub(crate) fn load(
    bytes: &[u8],
    file_len: usize,
    limits: &PdfLimits,
    clock: &Clock,
) -> Result<(Document, u64), PdfError> {
    LOADING.with(|s| {
        *s.borrow_mut() = Some(LoadState {
            clock: *clock,
            max_objects: limits.max_objects,
            objects: 0,
            loaded: 0,
            max_loaded: limits.loaded_budget(file_len),
            calls: 0,
            error: None,
        })
    });
    let options = LoadOptions {
        filter: Some(load_filter),
        ..LoadOptions::default()
    };
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Document::load_mem_with_options(bytes, options)
    }));
    let state = LOADING.with(|s| s.borrow_mut().take());
    let state = state.expect("load state");
    match res {
        Err(payload) if payload.is::<LimitHit>() => Err(state
            .error
            .unwrap_or_else(|| too_large(PdfLimit::Structure, "limit hit while loading"))),
        Err(payload) => std::panic::resume_unwind(payload),
        Ok(Err(e)) => Err(PdfError::Unreadable(e.to_string())),
        Ok(Ok(doc)) => {
            if state.calls == 0 && !doc.objects.is_empty() {
                // lopdf loaded without calling the filter (encrypted path, or rayon): the
                // object streams were expanded unchecked
                return Err(PdfError::Unreadable(
                    "pdf loaded without the object filter".into(),
                ));
            }
            Ok((doc, state.loaded))
        }
    }
}

/// Undoes the `/Encrypt` renaming of [`preflight`] and decrypts with the empty password
/// (which is how most "protected" PDFs are protected: against editing, not reading).
pub(crate) fn restore_encryption(doc: &mut Document) -> Result<(), PdfError> {
    if let Some(encrypt) = doc.trailer.remove(b"EncrypX") {
        // lopdf's decrypt() wants a reference (its loader also takes a direct dictionary)
        let encrypt = match encrypt {
            Object::Dictionary(d) => Object::Reference(doc.add_object(d)),
            other => other,
        };
        doc.trailer.set("Encrypt", encrypt);
    }
    if doc.is_encrypted() {
        // object streams are held (renamed), so decrypt() does not expand them
        doc.decrypt("").map_err(|_| PdfError::Encrypted)?;
    }
    Ok(())
}

/// Stream filters and parameters as `lopdf` reads them from a loaded dictionary.
fn stream_filters(s: &Stream) -> (Vec<Filter>, Params) {
    let filters = s
        .filters()
        .map(|f| f.into_iter().map(Filter::from_name).collect())
        .unwrap_or_default();
    let params = match s.dict.get(b"DecodeParms").and_then(Object::as_dict) {
        Ok(p) => Params::new(|k| p.get(k).and_then(Object::as_i64).ok()),
        Err(_) => Params::new(|_| None),
    };
    (filters, params)
}

/// Expands the held object streams after checking them: decoded size, number of objects, and
/// that no object overlaps the next (with overlapping objects `lopdf` parses the same bytes
/// once per object, which is quadratic).
pub(crate) fn expand_object_streams(
    doc: &mut Document,
    loaded: &mut u64,
    file_len: usize,
    limits: &PdfLimits,
    clock: &Clock,
) -> Result<(), PdfError> {
    let held: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter(|(_, o)| matches!(o, Object::Stream(s) if s.dict.has_type(HELD_OBJSTM)))
        .map(|(id, _)| *id)
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let containers: HashMap<u32, u32> = doc
        .reference_table
        .entries
        .iter()
        .filter_map(|(id, e)| match e {
            pdf_extract::xref::XrefEntry::Compressed { container, .. } => Some((*id, *container)),
            _ => None,
        })
        .collect();
    let max_loaded = limits.loaded_budget(file_len);
    let mut objects = doc.objects.len();
    let mut found: Vec<(ObjectId, Object)> = Vec::new();
    for id in held {
        clock.check()?;
        let Some(Object::Stream(stream)) = doc.objects.get_mut(&id) else {
            continue;
        };
        let (filters, params) = stream_filters(stream);
        params.check()?;
        decode(
            &stream.content,
            &filters,
            &params,
            limits.max_stream_bytes,
            clock,
        )?;
        // within the limit: lopdf may decode it now
        let _ = stream.decompress();
        let first = stream.dict.get(b"First").and_then(Object::as_i64).ok();
        let pairs = check_object_stream(&stream.content, first, limits, clock)?;
        objects += pairs;
        if objects > limits.max_objects {
            return Err(too_large(
                PdfLimit::Objects,
                format!("more than {} objects", limits.max_objects),
            ));
        }
        stream.dict.set("Type", Object::Name(b"ObjStm".to_vec()));
        if let Ok(parsed) = ObjectStream::new(stream) {
            for (oid, object) in parsed.objects {
                if containers.get(&oid.0).is_none_or(|c| *c == id.0) {
                    *loaded = loaded.saturating_add(approx_size(&object));
                    found.push((oid, object));
                }
            }
        }
        if *loaded > max_loaded {
            return Err(too_large(
                PdfLimit::Structure,
                format!("objects take more than {} MiB", max_loaded / MIB),
            ));
        }
        // no longer needed
        stream.content = Vec::new();
    }
    for (oid, object) in found {
        doc.objects.entry(oid).or_insert(object);
    }
    Ok(())
}

/// The index of a decoded object stream, read as `lopdf` reads it: pairs of numbers before
/// `/First`. Returns the number of pairs.
fn check_object_stream(
    content: &[u8],
    first: Option<i64>,
    limits: &PdfLimits,
    clock: &Clock,
) -> Result<usize, PdfError> {
    let Some(first) = first
        .and_then(|f| usize::try_from(f).ok())
        .filter(|f| *f <= content.len())
    else {
        return Ok(0); // lopdf refuses it
    };
    let Ok(index) = std::str::from_utf8(&content[..first]) else {
        return Ok(0);
    };
    let numbers: Vec<Option<u32>> = index.split_whitespace().map(|n| n.parse().ok()).collect();
    let pairs = numbers.len() / 2;
    if pairs > limits.max_objects {
        return Err(too_large(
            PdfLimit::Objects,
            format!("an object stream with {pairs} objects"),
        ));
    }
    let mut offsets: Vec<usize> = numbers
        .chunks_exact(2)
        .filter_map(|c| Some(first + c[0].and(c[1])? as usize))
        .filter(|o| *o < content.len())
        .collect();
    offsets.sort_unstable();
    for (n, w) in offsets.windows(2).enumerate() {
        if n % 4096 == 0 {
            clock.check()?;
        }
        let mut start = w[0];
        while start < content.len() && content[start].is_ascii_whitespace() {
            start += 1;
        }
        let end = match lex_object(content, start, MAX_DEPTH) {
            Ok((_, end)) | Err(end) => end,
        };
        if w[0] == w[1] || end > w[1] {
            return Err(too_large(
                PdfLimit::Structure,
                "objects in an object stream overlap",
            ));
        }
    }
    Ok(pairs)
}

// ---------------------------------------------------------------------------------------------
// Step 3: what pdf-extract will read

/// Step 3. Empties images and spent object/xref streams, decodes every other stream into a
/// counting sink, and bounds pages, CMaps, form nesting and the total content. Returns the
/// numbers of the pages to leave out: their content (with the forms they draw, nested) is
/// over [`PdfLimits::max_content_bytes`].
pub(crate) fn check_document(
    doc: &mut Document,
    file_len: usize,
    limits: &PdfLimits,
    clock: &Clock,
) -> Result<HashSet<u32>, PdfError> {
    if doc.objects.len() > limits.max_objects {
        return Err(too_large(
            PdfLimit::Objects,
            format!("more than {} objects", limits.max_objects),
        ));
    }
    let mut total = Total {
        decoded: 0,
        cap: limits.decoded_budget(file_len),
    };
    let mut sizes: HashMap<ObjectId, u64> = HashMap::new();
    for (id, object) in doc.objects.iter_mut() {
        let Object::Stream(stream) = object else {
            continue;
        };
        clock.check()?;
        if is_image(&stream.dict)
            || stream.dict.has_type(b"ObjStm")
            || stream.dict.has_type(b"XRef")
        {
            empty_stream(stream);
            sizes.insert(*id, 0);
            continue;
        }
        let (filters, params) = stream_filters(stream);
        params.check()?;
        let decoded = decode(
            &stream.content,
            &filters,
            &params,
            limits.max_stream_bytes,
            clock,
        )?;
        total.add(decoded.produced)?;
        sizes.insert(*id, decoded.len);
    }
    let doc: &Document = doc;
    check_cmaps(doc, limits, clock)?;
    let pages = doc.get_pages();
    if pages.len() > limits.max_pages {
        return Err(too_large(
            PdfLimit::Pages,
            format!("{} pages, at most {}", pages.len(), limits.max_pages),
        ));
    }
    let mut forms = Forms {
        doc,
        sizes: &sizes,
        limits,
        clock,
        names: HashMap::new(),
        memo: HashMap::new(),
        active: HashSet::new(),
    };
    let mut skip = HashSet::new();
    let mut work = 0u64;
    for (number, page_id) in &pages {
        clock.check()?;
        let Ok(page) = doc.get_dictionary(*page_id) else {
            continue;
        };
        // pdf-extract follows /Parent recursively for these, without a cycle check
        let resources = inherited(doc, page, b"Resources", |o| o.as_dict().is_ok())?
            .and_then(|r| r.as_dict().ok());
        inherited(doc, page, b"MediaBox", |o| o.as_array().is_ok())?;
        let len: u64 = doc
            .get_page_contents(*page_id)
            .iter()
            .map(|id| sizes.get(id).copied().unwrap_or(0) + 1)
            .sum();
        let cost = if len > limits.max_content_bytes {
            Cost {
                work: len,
                nest: len,
            }
        } else {
            let names = if forms.has_forms(resources) {
                drawn_names(&doc.get_page_content(*page_id).unwrap_or_default())
            } else {
                Vec::new()
            };
            forms.cost_of(len, &names, resources, 0)?
        };
        if cost.nest > limits.max_content_bytes {
            skip.insert(*number);
            continue;
        }
        work = work.saturating_add(cost.work);
        if work > limits.max_content_work {
            return Err(too_large(
                PdfLimit::ContentWork,
                format!(
                    "more than {} MiB of content to parse, forms counted as often as drawn",
                    limits.max_content_work / MIB
                ),
            ));
        }
    }
    Ok(skip)
}

/// ToUnicode CMaps: `adobe-cmap-parser` inserts every code of a `beginbfrange` range into a
/// hash map, so `<00000000> <FFFFFFFF> <0000>` (40 bytes) is four billion entries.
fn check_cmaps(doc: &Document, limits: &PdfLimits, clock: &Clock) -> Result<(), PdfError> {
    fn walk(o: &Object, ids: &mut HashSet<ObjectId>) {
        match o {
            Object::Dictionary(d) => walk_dict(d, ids),
            Object::Stream(s) => walk_dict(&s.dict, ids),
            Object::Array(a) => a.iter().for_each(|o| walk(o, ids)),
            _ => {}
        }
    }
    fn walk_dict(d: &Dictionary, ids: &mut HashSet<ObjectId>) {
        for (k, v) in d.iter() {
            match v {
                Object::Reference(id) if k == b"ToUnicode" => {
                    ids.insert(*id);
                }
                v => walk(v, ids),
            }
        }
    }
    let mut ids = HashSet::new();
    for o in doc.objects.values() {
        walk(o, &mut ids);
    }
    let mut codes = 0u64;
    for id in ids {
        clock.check()?;
        let Ok(Object::Stream(cmap)) = doc.get_object(id) else {
            continue;
        };
        // decoded as pdf-extract does (its size is within the stream limit, checked above)
        let content = match cmap.filters() {
            Ok(_) => cmap
                .decompressed_content()
                .unwrap_or_else(|_| cmap.content.clone()),
            Err(_) => cmap.content.clone(),
        };
        codes = codes.saturating_add(cmap_range_codes(&content));
        if codes > limits.max_cmap_codes {
            return Err(too_large(
                PdfLimit::Structure,
                format!(
                    "ToUnicode CMaps with ranges of more than {} codes",
                    limits.max_cmap_codes
                ),
            ));
        }
    }
    Ok(())
}

/// How many codes the `beginbfrange` sections of a CMap map (a superset of what the CMap
/// parser reads: every triple of a section, also in comments).
fn cmap_range_codes(cmap: &[u8]) -> u64 {
    let code = |hex: &[u8]| -> u32 {
        // the bytes of the hex string, as adobe-cmap-parser's as_code reads them
        let digits: Vec<u8> = hex.iter().copied().filter(u8::is_ascii_hexdigit).collect();
        digits.chunks(2).fold(0u32, |code, pair| {
            let byte = pair.iter().fold(0u32, |b, d| {
                (b << 4) | (*d as char).to_digit(16).unwrap_or(0)
            });
            let byte = if pair.len() == 1 { byte << 4 } else { byte };
            (code << 8) | byte
        })
    };
    let mut total = 0u64;
    for start in find_all(cmap, b"beginbfrange") {
        let rest = &cmap[start + b"beginbfrange".len()..];
        let section = match find_all(rest, b"endbfrange").next() {
            Some(end) => &rest[..end],
            None => rest,
        };
        // hex strings (Some) and arrays (None), in order
        let mut tokens: Vec<Option<u32>> = Vec::new();
        let mut i = 0;
        while i < section.len() {
            match section[i] {
                b'<' => {
                    let end = section[i..]
                        .iter()
                        .position(|c| *c == b'>')
                        .map_or(section.len(), |p| i + p);
                    tokens.push(Some(code(&section[i + 1..end])));
                    i = end + 1;
                }
                b'[' => {
                    let end = section[i..]
                        .iter()
                        .position(|c| *c == b']')
                        .map_or(section.len(), |p| i + p);
                    tokens.push(None);
                    i = end + 1;
                }
                _ => i += 1,
            }
        }
        for triple in tokens.chunks(3) {
            if let [Some(lo), Some(hi), ..] = triple
                && hi >= lo
            {
                total = total.saturating_add((hi - lo) as u64 + 1);
            }
        }
    }
    total
}

/// `pdf-extract`'s `get_inherited`: the value of `key` (dereferenced, and accepted by `ok`) in
/// the dictionary or its `/Parent`s. `pdf-extract` recurses without a cycle check, so a cycle
/// is refused.
fn inherited<'d>(
    doc: &'d Document,
    dict: &'d Dictionary,
    key: &[u8],
    ok: impl Fn(&Object) -> bool,
) -> Result<Option<&'d Object>, PdfError> {
    let mut seen = HashSet::new();
    let mut dict = dict;
    loop {
        if let Ok(value) = dict.get(key) {
            let value = match value {
                Object::Reference(id) => doc.get_object(*id).ok(),
                v => Some(v),
            };
            if let Some(v) = value.filter(|v| ok(v)) {
                return Ok(Some(v));
            }
        }
        let Ok(parent) = dict.get(b"Parent").and_then(Object::as_reference) else {
            return Ok(None);
        };
        if !seen.insert(parent) || seen.len() > 256 {
            return Err(too_large(
                PdfLimit::Structure,
                format!(
                    "a cycle of /Parent links looking for /{}",
                    String::from_utf8_lossy(key)
                ),
            ));
        }
        let Ok(next) = doc.get_dictionary(parent) else {
            return Ok(None);
        };
        dict = next;
    }
}

/// The names the `Do` operations of content draw, as `pdf-extract` reads them: the first
/// operand, with `lopdf`'s content parser. Content it cannot parse makes `pdf-extract` panic
/// (caught), so it draws nothing.
fn drawn_names(content: &[u8]) -> Vec<Vec<u8>> {
    if !content.windows(2).any(|w| w == b"Do") {
        return Vec::new();
    }
    match pdf_extract::content::Content::decode(content) {
        Ok(c) => c
            .operations
            .iter()
            .filter(|op| op.operator == "Do")
            .filter_map(|op| op.operands.first()?.as_name().ok().map(<[u8]>::to_vec))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What drawing content costs: `work`, all bytes parsed (forms as often as drawn); `nest`,
/// the most bytes parsed at once (`pdf-extract` keeps a form's parsed content while it draws
/// the forms it draws).
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    work: u64,
    nest: u64,
}

/// The form graph of the document.
struct Forms<'d> {
    doc: &'d Document,
    sizes: &'d HashMap<ObjectId, u64>,
    limits: &'d PdfLimits,
    clock: &'d Clock,
    names: HashMap<ObjectId, Rc<Vec<Vec<u8>>>>,
    memo: HashMap<(ObjectId, usize), Cost>,
    active: HashSet<(ObjectId, usize)>,
}

impl<'d> Forms<'d> {
    fn xobjects(&self, resources: Option<&'d Dictionary>) -> Option<&'d Dictionary> {
        match resources?.get(b"XObject").ok()? {
            Object::Reference(id) => self.doc.get_dictionary(*id).ok(),
            o => o.as_dict().ok(),
        }
    }

    /// Whether `Do` with these resources can draw anything but an image (whose data is gone).
    fn has_forms(&self, resources: Option<&'d Dictionary>) -> bool {
        self.xobjects(resources).is_some_and(|x| {
            x.iter().any(|(_, v)| {
                let v = match v {
                    Object::Reference(id) => self.doc.get_object(*id).ok(),
                    v => Some(v),
                };
                matches!(v, Some(Object::Stream(s)) if !is_image(&s.dict))
            })
        })
    }

    /// Content of `len` bytes that draws `names`, with `resources`.
    fn cost_of(
        &mut self,
        len: u64,
        names: &[Vec<u8>],
        resources: Option<&'d Dictionary>,
        depth: usize,
    ) -> Result<Cost, PdfError> {
        let mut cost = Cost {
            work: len,
            nest: len,
        };
        let Some(xobjects) = self.xobjects(resources) else {
            return Ok(cost); // pdf-extract panics on Do without XObjects
        };
        for name in names {
            let Some(target) = xobjects.get(name).ok().and_then(|o| o.as_reference().ok()) else {
                continue;
            };
            let c = self.form_cost(target, resources, depth + 1)?;
            cost.work = cost.work.saturating_add(c.work);
            cost.nest = cost.nest.max(len.saturating_add(c.nest));
            if cost.work > self.limits.max_content_work {
                break;
            }
        }
        Ok(cost)
    }

    /// Drawing the form `id` (the caller's `resources` apply unless it has its own).
    fn form_cost(
        &mut self,
        id: ObjectId,
        resources: Option<&'d Dictionary>,
        depth: usize,
    ) -> Result<Cost, PdfError> {
        let doc = self.doc;
        let Ok(Object::Stream(form)) = doc.get_object(id) else {
            return Ok(Cost::default());
        };
        if is_image(&form.dict) {
            return Ok(Cost::default());
        }
        let resources = match form.dict.get(b"Resources") {
            Ok(Object::Reference(r)) => doc.get_dictionary(*r).ok().or(resources),
            Ok(Object::Dictionary(d)) => Some(d),
            _ => resources,
        };
        let key = (id, resources.map_or(0, |r| r as *const Dictionary as usize));
        if let Some(c) = self.memo.get(&key) {
            return Ok(*c);
        }
        if depth > self.limits.max_form_depth || !self.active.insert(key) {
            return Err(too_large(
                PdfLimit::Structure,
                "forms that draw themselves, or nested too deep",
            ));
        }
        self.clock.check()?;
        let len = match self.sizes.get(&id) {
            Some(len) => *len,
            None => {
                let (filters, params) = stream_filters(form);
                params.check()?;
                let cap = self.limits.max_stream_bytes;
                decode(&form.content, &filters, &params, cap, self.clock)?.len
            }
        };
        let cost = if len > self.limits.max_content_bytes {
            // not parsed: the page that draws it is left out
            Cost {
                work: len,
                nest: len,
            }
        } else {
            let names = if !self.has_forms(resources) {
                Rc::new(Vec::new())
            } else if let Some(n) = self.names.get(&id) {
                n.clone()
            } else {
                // within the limits: lopdf may decode it (as pdf-extract's get_contents does)
                let content = match form.filters() {
                    Ok(_) => form
                        .decompressed_content()
                        .unwrap_or_else(|_| form.content.clone()),
                    Err(_) => form.content.clone(),
                };
                let n = Rc::new(drawn_names(&content));
                self.names.insert(id, n.clone());
                n
            };
            self.cost_of(len, &names, resources, depth)?
        };
        self.active.remove(&key);
        self.memo.insert(key, cost);
        Ok(cost)
    }
}

// ---------------------------------------------------------------------------------------------
// During extraction

/// Wraps `pdf-extract`'s output: keeps the deadline and bounds the text. When it stops the
/// extraction, [`GuardedOutput::hit`] says why.
pub(crate) struct GuardedOutput<'a, O: pdf_extract::OutputDev> {
    pub(crate) inner: O,
    clock: &'a Clock,
    pub(crate) text: u64,
    max_text: u64,
    pub(crate) hit: Option<PdfError>,
}

impl<'a, O: pdf_extract::OutputDev> GuardedOutput<'a, O> {
    pub(crate) fn new(inner: O, clock: &'a Clock, text_so_far: u64, max_text: u64) -> Self {
        GuardedOutput {
            inner,
            clock,
            text: text_so_far,
            max_text,
            hit: None,
        }
    }

    fn check(&mut self) -> Result<(), pdf_extract::OutputError> {
        let res = self.clock.check().and_then(|()| {
            if self.text > self.max_text {
                Err(too_large(
                    PdfLimit::Text,
                    format!("more than {} MiB of text", self.max_text / MIB),
                ))
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => Ok(()),
            Err(e) => {
                self.hit = Some(e);
                Err(pdf_extract::OutputError::FormatError(std::fmt::Error))
            }
        }
    }
}

impl<O: pdf_extract::OutputDev> pdf_extract::OutputDev for GuardedOutput<'_, O> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &pdf_extract::MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), pdf_extract::OutputError> {
        self.check()?;
        self.inner.begin_page(page_num, media_box, art_box)
    }
    fn end_page(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.check()?;
        self.inner.end_page()
    }
    fn output_character(
        &mut self,
        trm: &pdf_extract::Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), pdf_extract::OutputError> {
        // PlainTextOutput writes the character and at most two separators
        self.text += char.len() as u64 + 2;
        self.check()?;
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }
    fn begin_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.check()?;
        self.inner.begin_word()
    }
    fn end_word(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.check()?;
        self.inner.end_word()
    }
    fn end_line(&mut self) -> Result<(), pdf_extract::OutputError> {
        self.check()?;
        self.inner.end_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
        Clock::start(Duration::from_secs(60))
    }

    #[test]
    fn lexer_reads_stream_dictionaries() {
        let b = b"1 0 obj\n<< /Length 5 /Filter [/FlateDecode /ASCII85Decode] /DecodeParms << /Predictor 12 /Columns 5 >> /W [1 2 1] /S (a(b)c\\)) /R 3 0 R /N#61me 1.5 >>\nstream\r\nabcde\nendstream\nendobj\n";
        let streams = raw_streams(b, &clock()).unwrap();
        assert_eq!(streams.len(), 1);
        let d = streams[0].dict.as_ref().unwrap();
        assert_eq!(d.get(b"Length"), Some(&Raw::Int(5)));
        assert_eq!(raw_filters(d), vec![Filter::Flate, Filter::Ascii85]);
        assert_eq!(raw_params(d).predictor_row, Some(5));
        assert_eq!(check_xref_widths(d.get(b"W").unwrap()).unwrap(), 4);
        assert!(d.get(b"Name").is_some());
        assert_eq!(
            &b[streams[0].data_start..streams[0].data_start + 5],
            b"abcde"
        );
        // "endstream" is not a stream, a stream keyword without a found dictionary is one
        let b = b"garbage >> stream\nxyz\nendstream";
        let streams = raw_streams(b, &clock()).unwrap();
        assert_eq!(streams.len(), 1);
        assert!(streams[0].dict.is_none());
    }

    #[test]
    fn decoders_count_like_lopdf() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[7u8; 100_000]).unwrap();
        let zipped = z.finish().unwrap();
        let p = Params::default();
        let d = decode(&zipped, &[Filter::Flate], &p, 1 << 20, &clock()).unwrap();
        assert_eq!(d.len, 100_000);
        assert!(matches!(
            decode(&zipped, &[Filter::Flate], &p, 50_000, &clock()),
            Err(PdfError::TooLarge {
                what: PdfLimit::StreamSize,
                ..
            })
        ));
        // raw deflate behind a broken zlib header, as lopdf's fallback reads it
        let mut raw = vec![0x00, 0x00];
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"hello hello hello").unwrap();
        raw.extend(z.finish().unwrap());
        assert_eq!(
            decode(&raw, &[Filter::Flate], &p, 1 << 20, &clock())
                .unwrap()
                .len,
            17
        );
        // ASCII85 around Flate
        let a85 = b"z!!*-'~>";
        assert_eq!(
            decode(a85, &[Filter::Ascii85], &p, 1 << 20, &clock())
                .unwrap()
                .len,
            8
        );
        // LZW: "-----A---B" from the PDF reference
        let lzw = [0x80, 0x0B, 0x60, 0x50, 0x22, 0x0C, 0x0C, 0x85, 0x01];
        let p = Params {
            early_change: true,
            ..Params::default()
        };
        assert_eq!(
            decode(&lzw, &[Filter::Lzw], &p, 1 << 20, &clock())
                .unwrap()
                .len,
            10
        );
        // an unsupported filter: lopdf fails, the raw bytes are what a reader gets
        let d = decode(b"abc", &[Filter::Unsupported], &p, 1 << 20, &clock()).unwrap();
        assert_eq!((d.produced, d.len), (0, 3));
    }

    #[test]
    fn drawn_names_are_the_first_operands_of_do() {
        let names = drawn_names(b"q 1 0 0 1 0 0 cm /Fm1 Do Q /Im2 Do (Do., 12. Mai) Tj /A /B Do");
        assert_eq!(names, vec![b"Fm1".to_vec(), b"Im2".to_vec(), b"A".to_vec()]);
        assert!(drawn_names(b"(Do) Tj").is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Whole files (the 1 GiB bomb and memory measurements are in tests/pdf_bomb.rs)

    use super::testing::{one_page, pdf, stream, text_content, zlib, zlib_zeros};
    use crate::pdf::extract_pdf_with_limits;

    fn read(bytes: &[u8], limits: &PdfLimits) -> Result<lotse_core::Page, PdfError> {
        let u = url::Url::parse("http://127.0.0.1/x.pdf").unwrap();
        extract_pdf_with_limits(bytes, &u, None, limits)
    }

    fn limit_of(res: Result<lotse_core::Page, PdfError>) -> PdfLimit {
        match res {
            Err(PdfError::TooLarge { what, .. }) => what,
            other => panic!("expected a limit, got {:?}", other.map(|p| p.text())),
        }
    }

    fn text_page(text: &str) -> Vec<u8> {
        one_page(
            "5 0 R",
            "",
            vec![stream("/Filter /FlateDecode", &zlib(&text_content(text)))],
        )
    }

    fn ascii85(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(4) {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            let mut v = u32::from_be_bytes(b);
            if v == 0 && chunk.len() == 4 {
                out.push(b'z');
                continue;
            }
            let mut digits = [0u8; 5];
            for d in digits.iter_mut().rev() {
                *d = (v % 85) as u8 + b'!';
                v /= 85;
            }
            out.extend_from_slice(&digits[..chunk.len() + 1]);
        }
        out.extend_from_slice(b"~>");
        out
    }

    #[test]
    fn a_small_pdf_reads_and_modern_and_encrypted_ones_too() {
        let limits = PdfLimits::default();
        let plain = text_page("Die Hundesteuer betraegt 120 Euro.");
        assert!(
            read(&plain, &limits)
                .unwrap()
                .text()
                .contains("Hundesteuer betraegt 120 Euro")
        );

        // object streams and an xref stream (lopdf's writer)
        let mut doc = Document::load_mem(&plain).unwrap();
        let mut modern = Vec::new();
        doc.save_modern(&mut modern).unwrap();
        assert!(
            modern.windows(7).any(|w| w == b"/ObjStm"),
            "object streams written"
        );
        let page = read(&modern, &limits).unwrap();
        assert!(
            page.text().contains("Hundesteuer betraegt 120 Euro"),
            "{}",
            page.text()
        );

        // "protected" with an empty user password (lopdf's writer)
        let mut doc = Document::load_mem(&plain).unwrap();
        let state = encryption(&mut doc);
        doc.encrypt(&state).unwrap();
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        assert!(bytes.windows(8).any(|w| w == b"/Encrypt"));
        let page = read(&bytes, &limits).unwrap();
        assert!(
            page.text().contains("Hundesteuer betraegt 120 Euro"),
            "{}",
            page.text()
        );

        // protected, with an object stream and an xref stream (lopdf cannot write that)
        let bytes = encrypted_with_object_stream("Die Hundesteuer betraegt 120 Euro.", &zlib);
        let page = read(&bytes, &limits).unwrap();
        assert!(
            page.text().contains("Hundesteuer betraegt 120 Euro"),
            "{}",
            page.text()
        );
        // ... and its object stream is checked after decryption
        let bomb = encrypted_with_object_stream("x", &|index_and_objects: &[u8]| {
            let mut big = index_and_objects.to_vec();
            big.extend(std::iter::repeat_n(b' ', 8 * MIB as usize));
            zlib(&big)
        });
        let small = PdfLimits {
            max_stream_bytes: 4 * MIB,
            ..PdfLimits::default()
        };
        assert_eq!(limit_of(read(&bomb, &small)), PdfLimit::StreamSize);
    }

    /// RC4 128 bit with an empty user password; sets the document's /ID.
    fn encryption(doc: &mut Document) -> pdf_extract::EncryptionState {
        let id = Object::string_literal(b"0123456789abcdef".to_vec());
        doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
        pdf_extract::EncryptionState::try_from(pdf_extract::EncryptionVersion::V2 {
            document: doc,
            owner_password: "eigentuemer",
            user_password: "",
            key_length: 128,
            permissions: pdf_extract::Permissions::default(),
        })
        .unwrap()
    }

    fn serialize(o: &Object) -> String {
        match o {
            Object::Null => "null".into(),
            Object::Boolean(b) => b.to_string(),
            Object::Integer(i) => i.to_string(),
            Object::Real(r) => r.to_string(),
            Object::Name(n) => format!("/{}", String::from_utf8_lossy(n)),
            Object::String(s, _) => format!(
                "<{}>",
                s.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            Object::Array(a) => format!(
                "[{}]",
                a.iter().map(serialize).collect::<Vec<_>>().join(" ")
            ),
            Object::Dictionary(d) => format!(
                "<< {} >>",
                d.iter()
                    .map(|(k, v)| format!("/{} {}", String::from_utf8_lossy(k), serialize(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Object::Reference((n, g)) => format!("{n} {g} R"),
            other => panic!("{other:?}"),
        }
    }

    /// Catalog, pages, page and font in an object stream (compressed with `pack`), the page
    /// content beside it, both encrypted; an xref stream.
    fn encrypted_with_object_stream(text: &str, pack: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let state = encryption(&mut doc);
        let id = doc.trailer.get(b"ID").unwrap().clone();
        let compressed = [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R /Resources << /Font << /F1 4 0 R >> >> >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        ];
        let (mut index, mut body) = (String::new(), String::new());
        for (i, o) in compressed.iter().enumerate() {
            index.push_str(&format!("{} {} ", i + 1, body.len()));
            body.push_str(o);
            body.push('\n');
        }
        let first = index.len();
        let encrypt = |id: u32, data: Vec<u8>| {
            let mut o = Object::Stream(Stream::new(Dictionary::new(), data));
            pdf_extract::encryption::encrypt_object(&state, (id, 0), &mut o).unwrap();
            o.as_stream().unwrap().content.clone()
        };
        let content = encrypt(5, zlib(&text_content(text)));
        let objstm = encrypt(6, pack(format!("{index}{body}").as_bytes()));

        let mut out = b"%PDF-1.5\n".to_vec();
        let mut offsets = vec![0usize; 9];
        let put = |out: &mut Vec<u8>,
                   offsets: &mut Vec<usize>,
                   n: usize,
                   dict: String,
                   data: Option<&[u8]>| {
            offsets[n] = out.len();
            out.extend_from_slice(format!("{n} 0 obj\n{dict}").as_bytes());
            if let Some(data) = data {
                out.extend_from_slice(b"\nstream\n");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\nendstream");
            }
            out.extend_from_slice(b"\nendobj\n");
        };
        put(
            &mut out,
            &mut offsets,
            5,
            format!("<< /Filter /FlateDecode /Length {} >>", content.len()),
            Some(&content),
        );
        put(
            &mut out,
            &mut offsets,
            6,
            format!(
                "<< /Type /ObjStm /N 4 /First {first} /Filter /FlateDecode /Length {} >>",
                objstm.len()
            ),
            Some(&objstm),
        );
        put(
            &mut out,
            &mut offsets,
            7,
            serialize(&Object::Dictionary(state.encode().unwrap())),
            None,
        );
        let xref_at = out.len();
        let mut entries = vec![0u8, 0, 0, 0, 0, 0xFF, 0xFF];
        for i in 0..4u16 {
            entries.extend([2, 0, 0, 0, 6]);
            entries.extend(i.to_be_bytes());
        }
        for at in offsets[5..8].iter().copied().chain([xref_at]) {
            let at = at as u32;
            entries.push(1);
            entries.extend(at.to_be_bytes());
            entries.extend([0, 0]);
        }
        put(
            &mut out,
            &mut offsets,
            8,
            format!(
                "<< /Type /XRef /Size 9 /W [1 4 2] /Root 1 0 R /Encrypt 7 0 R /ID {} /Length {} >>",
                serialize(&id),
                entries.len()
            ),
            Some(&entries),
        );
        out.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        out
    }

    #[test]
    fn bombs_in_every_filter_chain_are_refused() {
        let limits = PdfLimits {
            max_stream_bytes: 4 * MIB,
            ..PdfLimits::default()
        };
        let zeros = zlib_zeros(8 * MIB);
        let chains: Vec<(&str, Vec<u8>)> = vec![
            ("/Filter /FlateDecode", zeros.clone()),
            ("/Filter [/ASCII85Decode /FlateDecode]", ascii85(&zeros)),
            ("/Filter [/FlateDecode /FlateDecode]", zlib(&zeros)),
            ("/Filter /LZWDecode", {
                let mut e = weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
                e.encode(&vec![0u8; 8 * MIB as usize]).unwrap()
            }),
            ("/Filter /ASCII85Decode", vec![b'z'; 1_200_000]),
        ];
        for (filter, data) in chains {
            let bomb = one_page("5 0 R", "", vec![stream(filter, &data)]);
            assert_eq!(
                limit_of(read(&bomb, &limits)),
                PdfLimit::StreamSize,
                "{filter}"
            );
        }
    }

    #[test]
    fn bombs_where_lopdf_decodes_while_loading_are_refused() {
        let limits = PdfLimits {
            max_stream_bytes: 4 * MIB,
            ..PdfLimits::default()
        };
        let zeros = zlib_zeros(8 * MIB);
        // an object stream
        let bomb = one_page(
            "[]",
            "",
            vec![stream(
                "/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode",
                &zeros,
            )],
        );
        assert_eq!(limit_of(read(&bomb, &limits)), PdfLimit::StreamSize);
        // ... also when the pre-flight did not see it: the held object stream is checked
        let clock = clock();
        let (mut doc, mut loaded) = load(&bomb, bomb.len(), &limits, &clock).unwrap();
        let res = expand_object_streams(&mut doc, &mut loaded, bomb.len(), &limits, &clock);
        assert!(
            matches!(
                res,
                Err(PdfError::TooLarge {
                    what: PdfLimit::StreamSize,
                    ..
                })
            ),
            "{res:?}"
        );

        // an xref stream (startxref points at it)
        let mut xref_bomb = b"%PDF-1.5\n".to_vec();
        let start = xref_bomb.len();
        xref_bomb.extend_from_slice(b"1 0 obj\n");
        xref_bomb.extend_from_slice(&stream(
            "/Type /XRef /Size 2 /W [1 2 1] /Filter /FlateDecode",
            &zeros,
        ));
        xref_bomb.extend_from_slice(format!("\nendobj\nstartxref\n{start}\n%%EOF\n").as_bytes());
        assert_eq!(limit_of(read(&xref_bomb, &limits)), PdfLimit::StreamSize);

        // field widths that make lopdf loop forever or allocate without bound
        for w in ["[0 0 0]", "[1 100000000000 1]"] {
            let mut bad = b"%PDF-1.5\n".to_vec();
            bad.extend_from_slice(b"1 0 obj\n");
            bad.extend_from_slice(&stream(
                &format!("/Type /XRef /Size 100000000 /W {w} /Filter /FlateDecode"),
                &zlib(b"\x01\x00\x00\x00"),
            ));
            bad.extend_from_slice(b"\nendobj\nstartxref\n9\n%%EOF\n");
            assert_eq!(limit_of(read(&bad, &limits)), PdfLimit::Structure, "{w}");
        }
    }

    #[test]
    fn overlapping_objects_in_an_object_stream_are_refused() {
        // each object starts one level deeper inside the same string: lopdf would copy the
        // rest of the string once per object (90 times 90 KiB here)
        let n = 90;
        let pad = "x".repeat(1024);
        let index: String = (0..n)
            .map(|i| format!("{} {} ", 10 + i, i * (1 + pad.len())))
            .collect();
        let mut body = format!("({pad}").repeat(n).into_bytes();
        body.extend(std::iter::repeat_n(b')', n));
        let mut data = index.clone().into_bytes();
        data.extend_from_slice(&body);
        let dict = format!(
            "/Type /ObjStm /N {n} /First {} /Filter /FlateDecode",
            index.len()
        );
        let bomb = one_page("[]", "", vec![stream(&dict, &zlib(&data))]);
        assert_eq!(
            limit_of(read(&bomb, &PdfLimits::default())),
            PdfLimit::Structure
        );
        // also after loading (what lopdf holds)
        let limits = PdfLimits::default();
        let clock = clock();
        let (mut doc, mut loaded) = load(&bomb, bomb.len(), &limits, &clock).unwrap();
        let res = expand_object_streams(&mut doc, &mut loaded, bomb.len(), &limits, &clock);
        assert!(
            matches!(
                res,
                Err(PdfError::TooLarge {
                    what: PdfLimit::Structure,
                    ..
                })
            ),
            "{res:?}"
        );
    }

    #[test]
    fn streams_under_the_stream_limit_add_up() {
        let limits = PdfLimits {
            max_stream_bytes: 4 * MIB,
            max_decoded_bytes: 10 * MIB,
            ..PdfLimits::default()
        };
        let three = zlib_zeros(3 * MIB);
        let more: Vec<Vec<u8>> = (0..5)
            .map(|_| stream("/Filter /FlateDecode", &three))
            .collect();
        let bomb = one_page("[5 0 R 6 0 R 7 0 R 8 0 R 9 0 R]", "", more);
        assert_eq!(limit_of(read(&bomb, &limits)), PdfLimit::DecodedSize);
    }

    #[test]
    fn an_image_stays_undecoded_whatever_refers_to_it() {
        // a 1 GiB bomb labelled as image, used as the page's content
        let bomb = one_page(
            "5 0 R",
            "",
            vec![stream(
                "/Type /XObject /Subtype /Image /Width 1 /Height 1 /Filter /FlateDecode",
                &zlib_zeros(1 << 30),
            )],
        );
        let started = Instant::now();
        assert!(matches!(
            read(&bomb, &PdfLimits::default()),
            Err(PdfError::NoText)
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
        // a page with text and an image reads as before
        let page = one_page(
            "5 0 R",
            "/XObject << /Im1 6 0 R >>",
            vec![
                stream(
                    "/Filter /FlateDecode",
                    &zlib(b"q 100 0 0 100 0 0 cm /Im1 Do Q BT /F1 12 Tf 72 700 Td (Bild und Text) Tj ET"),
                ),
                stream(
                    "/Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray \
                     /BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 /Columns 100000000000 >>",
                    &zlib(&[0u8; 4]),
                ),
            ],
        );
        let page = read(&page, &PdfLimits::default()).unwrap();
        assert!(page.text().contains("Bild und Text"), "{}", page.text());
    }

    #[test]
    fn tiny_images_and_attached_files_are_blanked_without_harm() {
        // a 4 byte image whose /Length is indirect: blanking stops at its end
        let text = text_content("Nach dem Bild");
        let page = one_page(
            "5 0 R",
            "/XObject << /Im1 6 0 R >>",
            vec![
                stream("", &[b"/Im1 Do ".to_vec(), text].concat()),
                b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray /BitsPerComponent 8 /Length 7 0 R >>\nstream\nabcd\nendstream".to_vec(),
                b"4".to_vec(),
                // 64 MiB attached (more than the stream limit)
                stream("/Type /EmbeddedFile /Filter /FlateDecode", &zlib_zeros(64 * MIB)),
            ],
        );
        let page = read(&page, &PdfLimits::default()).unwrap();
        assert!(page.text().contains("Nach dem Bild"), "{}", page.text());
    }

    #[test]
    fn content_listed_many_times_counts_every_time() {
        // 8 KiB of content, listed 2000 times: 16 MiB for one page
        let content = b"0 0 m\n".repeat(8 * 1024 / 6);
        let list = format!("[{}]", "5 0 R ".repeat(2000));
        let bomb = one_page(
            &list,
            "",
            vec![stream("/Filter /FlateDecode", &zlib(&content))],
        );
        assert_eq!(
            limit_of(read(&bomb, &PdfLimits::default())),
            PdfLimit::PageContent
        );
    }

    #[test]
    fn pages_with_too_much_content_are_left_out() {
        // 600 KiB of path drawing, and a page of text
        let drawing = b"10 10 m 20 20 l S\n".repeat(600 * 1024 / 18);
        let two = pdf(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /Contents 6 0 R >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /Contents 7 0 R >>".to_vec(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
            stream("/Filter /FlateDecode", &zlib(&drawing)),
            stream("/Filter /FlateDecode", &zlib(&text_content("Textliche Festsetzungen zum Plan."))),
        ]);
        let page = read(&two, &PdfLimits::default()).unwrap();
        assert!(
            page.text().contains("Textliche Festsetzungen"),
            "{}",
            page.text()
        );
        // the same drawing in a form counts for the page that draws it
        let form = one_page(
            "5 0 R",
            "/XObject << /Fm1 6 0 R >>",
            vec![
                stream("", b"/Fm1 Do"),
                stream(
                    "/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Filter /FlateDecode",
                    &zlib(&drawing),
                ),
            ],
        );
        assert_eq!(
            limit_of(read(&form, &PdfLimits::default())),
            PdfLimit::PageContent
        );
        // a form drawn many times one after the other is parsed one at a time
        let logo = b"10 10 m 20 20 l S\n".repeat(1000);
        let many = one_page(
            "5 0 R",
            "/XObject << /Fm1 6 0 R >>",
            vec![
                stream(
                    "/Filter /FlateDecode",
                    &zlib(&[b"/Fm1 Do\n".repeat(100), text_content("Mit Logo")].concat()),
                ),
                stream(
                    "/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Filter /FlateDecode",
                    &zlib(&logo),
                ),
            ],
        );
        let page = read(&many, &PdfLimits::default()).unwrap();
        assert!(page.text().contains("Mit Logo"), "{}", page.text());
    }

    #[test]
    fn forms_that_draw_themselves_are_refused_instead_of_overflowing_the_stack() {
        // with its own resources
        let own = one_page(
            "5 0 R",
            "/XObject << /Fm1 6 0 R >>",
            vec![
                stream("", b"/Fm1 Do"),
                stream(
                    "/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /Fm1 6 0 R >> >>",
                    b"q /Fm1 Do Q",
                ),
            ],
        );
        assert_eq!(
            limit_of(read(&own, &PdfLimits::default())),
            PdfLimit::Structure
        );
        // inheriting the page's
        let inherited = one_page(
            "5 0 R",
            "/XObject << /Fm1 6 0 R >>",
            vec![
                stream("", b"/Fm1 Do"),
                stream(
                    "/Type /XObject /Subtype /Form /BBox [0 0 10 10]",
                    b"/Fm1 Do",
                ),
            ],
        );
        assert_eq!(
            limit_of(read(&inherited, &PdfLimits::default())),
            PdfLimit::Structure
        );
        // a cycle of /Parent links (pdf-extract looks for /Resources and /MediaBox up the tree)
        let parents = pdf(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 4 0 R /Contents 5 0 R >>".to_vec(),
            b"<< /Type /Pages /Parent 3 0 R >>".to_vec(),
            stream("", &text_content("Kreis")),
        ]);
        assert_eq!(
            limit_of(read(&parents, &PdfLimits::default())),
            PdfLimit::Structure
        );
    }

    #[test]
    fn forms_drawn_many_times_count_every_time() {
        // Fm1 draws Fm2 ten times, ... Fm7 has 1 KiB: 10^6 KiB in all
        let mut more = vec![stream("", b"/Fm1 Do")];
        let mut xobjects = String::new();
        for level in 1..=7 {
            let id = 5 + level;
            xobjects.push_str(&format!("/Fm{level} {id} 0 R "));
            let content = if level < 7 {
                format!("/Fm{} Do\n", level + 1).repeat(10).into_bytes()
            } else {
                b"0 0 m\n".repeat(170)
            };
            more.push(stream(
                "/Type /XObject /Subtype /Form /BBox [0 0 10 10]",
                &content,
            ));
        }
        let bomb = one_page("5 0 R", &format!("/XObject << {xobjects} >>"), more);
        assert_eq!(
            limit_of(read(&bomb, &PdfLimits::default())),
            PdfLimit::ContentWork
        );
    }

    #[test]
    fn cmap_ranges_are_bounded() {
        assert_eq!(
            cmap_range_codes(
                b"2 beginbfrange <0000> <00FF> <0020> <0100> <0101> [<0041> <0042>] endbfrange"
            ),
            258
        );
        assert_eq!(
            cmap_range_codes(b"1 beginbfrange <00000000> <FFFFFFFF> <0000> endbfrange"),
            1 << 32
        );
        // 40 bytes of CMap, four billion map entries
        let font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>";
        let bomb = pdf(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R /Resources << /Font << /F1 4 0 R >> >> >>".to_vec(),
            font.as_bytes().to_vec(),
            stream("", &text_content("x")),
            stream("", b"/CIDInit /ProcSet findresource begin 1 beginbfrange <00000000> <FFFFFFFF> <0000> endbfrange end"),
        ]);
        assert_eq!(
            limit_of(read(&bomb, &PdfLimits::default())),
            PdfLimit::Structure
        );
    }

    #[test]
    fn predictor_rows_are_bounded() {
        let bomb = one_page(
            "5 0 R",
            "",
            vec![stream(
                "/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 1000000000 >>",
                &zlib(&text_content("x")),
            )],
        );
        assert_eq!(
            limit_of(read(&bomb, &PdfLimits::default())),
            PdfLimit::Structure
        );
    }

    #[test]
    fn pages_objects_text_and_time_are_bounded() {
        let fine = text_page("Ein Absatz mit etwas Text.");
        let small = |f: fn(&mut PdfLimits)| {
            let mut l = PdfLimits::default();
            f(&mut l);
            l
        };
        assert_eq!(
            limit_of(read(&fine, &small(|l| l.max_pages = 0))),
            PdfLimit::Pages
        );
        assert_eq!(
            limit_of(read(&fine, &small(|l| l.max_objects = 3))),
            PdfLimit::Objects
        );
        assert_eq!(
            limit_of(read(&fine, &small(|l| l.max_text_bytes = 10))),
            PdfLimit::Text
        );
        assert_eq!(
            limit_of(read(&fine, &small(|l| l.max_time = Duration::ZERO))),
            PdfLimit::Time
        );
        assert!(read(&fine, &PdfLimits::default()).is_ok());
    }
}

/// PDFs for tests of the crates that read PDFs (bombs included). Not for production use.
#[doc(hidden)]
pub mod testing {
    use std::io::Write;

    /// zlib of `n` zero bytes, compressed in a streaming loop (the zeros are never in memory).
    pub fn zlib_zeros(n: u64) -> Vec<u8> {
        let chunk = vec![0u8; 1 << 20];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len() as u64) as usize;
            z.write_all(&chunk[..k]).expect("write to memory");
            left -= k as u64;
        }
        z.finish().expect("write to memory")
    }

    pub fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).expect("write to memory");
        z.finish().expect("write to memory")
    }

    /// A stream object body: `dict` entries (without `<< >>`) plus `/Length`, and the data.
    pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\nendstream");
        out
    }

    /// A PDF whose objects 1, 2, ... have these bodies, with a correct xref table; object 1 is
    /// the catalog.
    pub fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// Catalog, pages and one page (objects 1-3) whose `/Contents` and `/Resources` are given;
    /// font `/F1` is Helvetica (object 4). Further objects start at 5.
    pub fn one_page(contents: &str, resources: &str, more: Vec<Vec<u8>>) -> Vec<u8> {
        let mut objects = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {contents} \
                 /Resources << /Font << /F1 4 0 R >> {resources} >> >>"
            )
            .into_bytes(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec(),
        ];
        objects.extend(more);
        pdf(&objects)
    }

    /// Page content that writes `text` (ASCII).
    pub fn text_content(text: &str) -> Vec<u8> {
        format!("BT /F1 12 Tf 72 700 Td ({text}) Tj ET").into_bytes()
    }

    /// The decompression bomb of issue 31: one page whose content stream is `zeros` zero bytes
    /// (FlateDecode; 1 GiB of zeros make a file of about 1 MB).
    pub fn zero_bomb(zeros: u64) -> Vec<u8> {
        one_page(
            "5 0 R",
            "",
            vec![stream("/Filter /FlateDecode", &zlib_zeros(zeros))],
        )
    }
}
