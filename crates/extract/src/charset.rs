//! Bytes to text: finds the character encoding of fetched HTML and plain-text files.
//!
//! Town websites still serve ISO-8859-1 pages, often without saying so anywhere. The order of
//! evidence follows the WHATWG encoding sniffing algorithm, simplified:
//!
//! 1. a byte order mark (it overrides everything, as in browsers);
//! 2. the `charset` parameter of the HTTP `Content-Type` header;
//! 3. for HTML, `<meta charset>` or `<meta http-equiv="Content-Type" content="...; charset=...">`
//!    within the first [`META_PRESCAN_BYTES`] bytes;
//! 4. UTF-8 if the bytes are valid UTF-8;
//! 5. otherwise windows-1252, the WHATWG superset of ISO-8859-1 and the usual legacy encoding
//!    of German pages.
//!
//! Labels are resolved with [`Encoding::for_label`], so `iso-8859-1` and `latin1` mean
//! windows-1252 as in browsers. Decoding never fails: malformed sequences become U+FFFD.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How far into an HTML document a `<meta>` charset declaration is looked for. The HTML
/// standard says 1024 bytes; we look a little further for pages with long comments or
/// scripts in front of it.
pub const META_PRESCAN_BYTES: usize = 2048;

/// Decodes an HTML document: BOM, then the header charset, then a `<meta>` declaration, then
/// UTF-8 if valid, else windows-1252.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> String {
    let encoding = bom_encoding(bytes)
        .or_else(|| content_type.and_then(header_encoding))
        .or_else(|| meta_encoding(&bytes[..bytes.len().min(META_PRESCAN_BYTES)]))
        .unwrap_or_else(|| guess_utf8_or_1252(bytes));
    decode_with(encoding, bytes)
}

/// Decodes a plain-text file such as robots.txt or a sitemap: BOM, then the header charset,
/// then UTF-8 if valid, else windows-1252.
///
/// The BOM comes first (as in the WHATWG `decode` algorithm) so that a UTF-8 BOM is never read
/// as `ï»¿` in front of the first line. An XML declaration's `encoding` is not looked at:
/// sitemaps must be UTF-8 by protocol.
pub fn decode_text(bytes: &[u8], content_type: Option<&str>) -> String {
    let encoding = bom_encoding(bytes)
        .or_else(|| content_type.and_then(header_encoding))
        .unwrap_or_else(|| guess_utf8_or_1252(bytes));
    decode_with(encoding, bytes)
}

/// Decodes with `encoding`; a BOM at the start is removed (and, as in browsers, wins).
fn decode_with(encoding: &'static Encoding, bytes: &[u8]) -> String {
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned()
}

fn bom_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    Encoding::for_bom(bytes).map(|(encoding, _bom_len)| encoding)
}

fn guess_utf8_or_1252(bytes: &[u8]) -> &'static Encoding {
    if std::str::from_utf8(bytes).is_ok() {
        UTF_8
    } else {
        WINDOWS_1252
    }
}

/// The encoding named by the `charset` parameter of a `Content-Type` value, if it is known.
fn header_encoding(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        Encoding::for_label(value.as_bytes())
    })
}

/// The encoding declared by the first `<meta>` tag in `prefix` that declares one.
///
/// A simplified version of the HTML standard's prescan: it looks at `<meta ...>` tags only and
/// does not skip comments. As the standard says, a declared UTF-16 means UTF-8 (the bytes
/// could not have been read as ASCII otherwise) and `x-user-defined` means windows-1252.
fn meta_encoding(prefix: &[u8]) -> Option<&'static Encoding> {
    // ASCII-only lowercase keeps byte offsets; non-ASCII bytes cannot be part of a label.
    let lower = prefix.to_ascii_lowercase();
    let mut rest = lower.as_slice();
    while let Some(start) = find(rest, b"<meta") {
        let tag = &rest[start + b"<meta".len()..];
        let end = tag.iter().position(|&b| b == b'>').unwrap_or(tag.len());
        let attrs = parse_attributes(&tag[..end]);
        let get = |name: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let label = get("charset").map(str::to_owned).or_else(|| {
            let is_content_type = get("http-equiv").is_some_and(|v| v.trim() == "content-type");
            get("content")
                .filter(|_| is_content_type)
                .and_then(charset_from_content)
        });
        if let Some(encoding) = label.and_then(|l| Encoding::for_label(l.trim().as_bytes())) {
            return Some(match encoding.name() {
                "UTF-16LE" | "UTF-16BE" => UTF_8,
                "x-user-defined" => WINDOWS_1252,
                _ => encoding,
            });
        }
        rest = &tag[end..];
    }
    None
}

/// `text/html; charset=iso-8859-1` -> `iso-8859-1`.
fn charset_from_content(content: &str) -> Option<String> {
    let at = content.find("charset")?;
    let value = content[at + "charset".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let value = value.trim_start().trim_start_matches(['"', '\'']);
    let end = value
        .find(|c: char| c == ';' || c == '"' || c == '\'' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    Some(value[..end].to_owned()).filter(|v| !v.is_empty())
}

/// Attributes of a tag body like ` charset="utf-8" http-equiv=x`: (name, value) pairs.
/// Values are decoded lossily; only ASCII matters for encoding labels.
fn parse_attributes(body: &[u8]) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    let mut i = 0;
    let is_space = |b: u8| b.is_ascii_whitespace() || b == b'/';
    while i < body.len() {
        while i < body.len() && is_space(body[i]) {
            i += 1;
        }
        let name_start = i;
        while i < body.len() && !is_space(body[i]) && body[i] != b'=' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&body[name_start..i]).into_owned();
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < body.len() && body[i] == b'=' {
            i += 1;
            while i < body.len() && body[i].is_ascii_whitespace() {
                i += 1;
            }
            let value_start;
            let value_end;
            if i < body.len() && (body[i] == b'"' || body[i] == b'\'') {
                let quote = body[i];
                value_start = i + 1;
                value_end = body[value_start..]
                    .iter()
                    .position(|&b| b == quote)
                    .map_or(body.len(), |p| value_start + p);
                i = (value_end + 1).min(body.len());
            } else {
                value_start = i;
                while i < body.len() && !body[i].is_ascii_whitespace() {
                    i += 1;
                }
                value_end = i;
            }
            value = String::from_utf8_lossy(&body[value_start..value_end]).into_owned();
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
    attrs
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Gebühren für Hunde: 165,00 €" etc. in ISO-8859-1 / windows-1252 bytes.
    fn latin1(text: &str) -> Vec<u8> {
        let (bytes, _, unmappable) = WINDOWS_1252.encode(text);
        assert!(!unmappable);
        bytes.into_owned()
    }

    const UMLAUTS: &str = "Gebühren für Hunde, Straßenreinigung, Ärger, Öffnungszeiten";

    #[test]
    fn latin1_page_without_any_charset_is_read_as_windows_1252() {
        let html = format!(
            "<html><head><title>Ortsrecht</title></head><body><p>{UMLAUTS}</p></body></html>"
        );
        let text = decode_html(&latin1(&html), Some("text/html"));
        assert!(text.contains(UMLAUTS), "{text}");
        let text = decode_html(&latin1(&html), None);
        assert!(text.contains(UMLAUTS), "{text}");
    }

    #[test]
    fn header_charset_iso_8859_1_is_followed() {
        let html = format!("<html><body><p>{UMLAUTS} 100 €</p></body></html>");
        let bytes = latin1(&html);
        let text = decode_html(&bytes, Some("text/html; charset=ISO-8859-1"));
        assert!(text.contains(&format!("{UMLAUTS} 100 €")), "{text}");
        // quoted and with extra parameters
        let text = decode_html(&bytes, Some("text/html;foo=bar; Charset=\"iso-8859-1\""));
        assert!(text.contains(UMLAUTS));
    }

    #[test]
    fn header_wins_over_meta() {
        let html = format!("<meta charset=\"utf-8\"><p>{UMLAUTS}</p>");
        let text = decode_html(&latin1(&html), Some("text/html; charset=iso-8859-1"));
        assert!(text.contains(UMLAUTS));
    }

    #[test]
    fn meta_charset_is_found() {
        let html = format!(
            "<!DOCTYPE html><html><head><META CHARSET='iso-8859-1'></head><p>{UMLAUTS}</p>"
        );
        assert!(decode_html(&latin1(&html), Some("text/html")).contains(UMLAUTS));
    }

    #[test]
    fn meta_http_equiv_content_type_is_found() {
        let html = format!(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">\
             </head><p>{UMLAUTS}</p>"
        );
        assert!(decode_html(&latin1(&html), None).contains(UMLAUTS));
        // content without http-equiv is not a declaration
        assert_eq!(
            meta_encoding(b"<meta content=\"text/html; charset=iso-8859-1\">"),
            None
        );
    }

    #[test]
    fn meta_after_prescan_window_is_ignored_and_utf8_is_sniffed() {
        let padding = " ".repeat(META_PRESCAN_BYTES);
        let html = format!("<html>{padding}<meta charset=\"iso-8859-1\"><p>{UMLAUTS}</p>");
        // valid UTF-8 bytes: the late (wrong) declaration is not seen
        assert!(decode_html(html.as_bytes(), None).contains(UMLAUTS));
    }

    #[test]
    fn meta_utf16_means_utf8() {
        let html = format!("<meta charset=\"utf-16\"><p>{UMLAUTS}</p>");
        assert!(decode_html(html.as_bytes(), None).contains(UMLAUTS));
    }

    #[test]
    fn bom_wins_over_header() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(format!("<p>{UMLAUTS}</p>").as_bytes());
        let text = decode_html(&bytes, Some("text/html; charset=iso-8859-1"));
        assert_eq!(text, format!("<p>{UMLAUTS}</p>"));
    }

    #[test]
    fn unknown_header_label_falls_through() {
        let html = format!("<p>{UMLAUTS}</p>");
        let text = decode_html(html.as_bytes(), Some("text/html; charset=klingon"));
        assert!(text.contains(UMLAUTS));
    }

    #[test]
    fn text_files_are_decoded() {
        let robots = "User-agent: *\nDisallow: /bürger/\n";
        assert_eq!(decode_text(robots.as_bytes(), None), robots);
        assert_eq!(decode_text(&latin1(robots), Some("text/plain")), robots);
        assert_eq!(
            decode_text(&latin1(robots), Some("text/plain; charset=iso-8859-1")),
            robots
        );
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(robots.as_bytes());
        assert_eq!(
            decode_text(&with_bom, Some("text/plain; charset=iso-8859-1")),
            robots
        );
    }

    #[test]
    fn charset_is_parsed_from_meta_content() {
        assert_eq!(
            charset_from_content("text/html; charset=iso-8859-1").as_deref(),
            Some("iso-8859-1")
        );
        assert_eq!(
            charset_from_content("text/html;charset = 'utf-8'").as_deref(),
            Some("utf-8")
        );
        assert_eq!(charset_from_content("text/html"), None);
    }
}
