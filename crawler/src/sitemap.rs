//! Sitemaps (sitemaps.org): `<urlset>` entries with `lastmod`, and `<sitemapindex>` pointing at
//! further sitemaps. Parsing is tolerant: a broken file yields what could be read.

use quick_xml::Reader;
use quick_xml::events::Event;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sitemap {
    /// Page entries: URL and optional `lastmod`.
    pub urls: Vec<(String, Option<String>)>,
    /// Nested sitemaps of a sitemap index.
    pub sitemaps: Vec<String>,
}

/// Parse a sitemap or sitemap index document.
pub fn parse(xml: &str) -> Sitemap {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut out = Sitemap::default();
    let mut in_index = false;
    let mut current_tag = String::new();
    let mut loc: Option<String> = None;
    let mut lastmod: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = local_name(e.local_name().as_ref());
                if name == "sitemapindex" {
                    in_index = true;
                }
                if name == "url" || name == "sitemap" {
                    loc = None;
                    lastmod = None;
                }
                current_tag = name;
            }
            Ok(Event::Text(t)) => {
                let text = t.decode().map(|c| c.into_owned()).unwrap_or_default();
                push_text(&current_tag, &text, &mut loc, &mut lastmod);
            }
            // quick-xml reports entities (`&amp;`, `&#38;`) as separate events
            Ok(Event::GeneralRef(r)) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => match r.decode().as_deref() {
                        Ok("amp") => "&".to_owned(),
                        Ok("lt") => "<".to_owned(),
                        Ok("gt") => ">".to_owned(),
                        Ok("quot") => "\"".to_owned(),
                        Ok("apos") => "'".to_owned(),
                        _ => String::new(),
                    },
                };
                push_text(&current_tag, &text, &mut loc, &mut lastmod);
            }
            Ok(Event::CData(t)) => {
                let text = String::from_utf8_lossy(&t).into_owned();
                push_text(&current_tag, &text, &mut loc, &mut lastmod);
            }
            Ok(Event::End(e)) => {
                let name = local_name(e.local_name().as_ref());
                if (name == "url" || name == "sitemap")
                    && let Some(l) = loc
                        .take()
                        .map(|l| l.trim().to_owned())
                        .filter(|l| !l.is_empty())
                {
                    if in_index || name == "sitemap" {
                        out.sitemaps.push(l);
                    } else {
                        let lm = lastmod.take().map(|m| m.trim().to_owned());
                        out.urls.push((l, lm.filter(|m| !m.is_empty())));
                    }
                }
                current_tag.clear();
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

fn push_text(tag: &str, text: &str, loc: &mut Option<String>, lastmod: &mut Option<String>) {
    let target = match tag {
        "loc" => loc,
        "lastmod" => lastmod,
        _ => return,
    };
    target.get_or_insert_with(String::new).push_str(text);
}

fn local_name(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlset_with_lastmod() {
        let s = parse(
            r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <url><loc>http://x/a/</loc><lastmod>2025-01-01</lastmod></url>
            <url><loc> http://x/b/?a=1&amp;b=2 </loc></url></urlset>"#,
        );
        assert_eq!(
            s.urls,
            vec![
                ("http://x/a/".into(), Some("2025-01-01".into())),
                ("http://x/b/?a=1&b=2".into(), None)
            ]
        );
    }

    #[test]
    fn sitemap_index() {
        let s = parse("<sitemapindex><sitemap><loc>http://x/s1.xml</loc></sitemap></sitemapindex>");
        assert_eq!(s.sitemaps, ["http://x/s1.xml"]);
        assert!(s.urls.is_empty());
    }

    #[test]
    fn broken_xml_yields_what_was_read() {
        let s = parse("<urlset><url><loc>http://x/a/</loc></url><url><loc>http://x/b");
        assert_eq!(s.urls.len(), 1);
        assert_eq!(parse("not xml at all").urls.len(), 0);
    }
}
