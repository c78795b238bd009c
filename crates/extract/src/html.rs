//! HTML to [`Page`]: finds a page's main content, keeps its structure, and collects its links.
//!
//! Extraction works by general means, never by the class names of one CMS:
//!
//! 1. **Chrome is dropped everywhere** ([`is_chrome`]): `script`, `style`, `nav`, `aside`,
//!    `footer`, forms and their controls, `header` unless it belongs to an `article`, `main` or
//!    `section` (the ARIA rule for the `banner` role), elements with a landmark role other than
//!    `main` (`navigation`, `banner`, `contentinfo`, `complementary`, `search`, `dialog`,
//!    `alertdialog`), hidden elements (`hidden`, `aria-hidden="true"`, inline
//!    `display:none`), breadcrumbs (`aria-label` or class naming a breadcrumb or "Sie sind
//!    hier"), skip links ("Zum Inhalt springen" pointing at a `#fragment`) and, as a last-resort
//!    heuristic, cookie/consent banners: an element whose id or class contains `cookie`,
//!    `consent`, `gdpr` or `cc-banner` *and* that holds a button or form control (a privacy
//!    page's section `id="cookies"` has no button and is kept).
//! 2. **The main container** is the `<main>` element, else `[role=main]`, else the only
//!    top-level `<article>`. Without any of these a text-density scorer in the spirit of
//!    readability/boilerpipe decides (`main_by_text_density`): every block with at least
//!    25 characters of non-link text scores `1 + commas + min(chars / 100, 3)`, credited in
//!    full to its parent, half to its grandparent and a third to the next ancestor
//!    (`div`, `section`, `article`, `td`, `body`, ...). A candidate's score is multiplied by
//!    `1 - link density`, and by 0.2 more when more than half its text is link text. The best
//!    candidate then climbs to its parent while the parent adds only a title area before it
//!    (headings, short text without links), so the heading above the text body is not lost;
//!    siblings scoring at least a fifth as well (sections as sibling `div`s), long paragraphs
//!    and headings right before a chosen sibling join it.
//! 3. **Blocks** are read from the main container in document order: headings (with an anchor
//!    from the heading's `id`, an `<a id|name>` inside it, a wrapper whose first child it is,
//!    or an empty element with an id directly before it), paragraphs (including the direct
//!    text of a `div`), lists (nested lists flattened into items), definition lists
//!    (`term: definition`), tables (data tables only; a layout table, one with nested tables
//!    or headings or a single column, is read as containers). Inline elements are part of the
//!    text, whitespace is collapsed, `<hr>` and images are ignored, empty blocks dropped.
//!
//! Links are collected from the *whole* document (navigation included: the crawler discovers
//! pages through them), resolved against `<base href>` or the page URL, without fragments,
//! http(s) only, de-duplicated in document order.

use std::collections::HashMap;

use lotse_core::{Block, DocKind, Page};
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

/// A link found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Absolute http(s) URL without fragment.
    pub url: Url,
    /// The link's text (or its image's `alt`, or its `title`), whitespace-normalised.
    pub text: String,
}

/// Everything the crawler needs from one HTML page.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The page: main content as blocks. `url` is the canonical URL when the page declares
    /// one on the same origin, else the fetched URL.
    pub page: Page,
    /// `<link rel="canonical">`, resolved (any origin; the crawler decides what to do with it).
    pub canonical: Option<Url>,
    /// All `<a href>` / `<area href>` links of the whole document, in document order.
    pub links: Vec<Link>,
    /// `<meta name="robots" content="noindex">` (or `none`).
    pub noindex: bool,
    /// `<meta name="robots" content="nofollow">` (or `none`).
    pub nofollow: bool,
    /// The site's name as the page presents it: `og:site_name`, else the segment the
    /// `<title>` appends ("Startseite - Gemeinde Bad Boll" -> "Gemeinde Bad Boll").
    pub site_name: Option<String>,
}

/// Extracts the main content, metadata and links of an HTML document fetched from `base`.
pub fn extract_html(html: &str, base: &Url) -> Extracted {
    let doc = Html::parse_document(html);
    let link_base = document_base(&doc, base);

    let canonical = canonical_url(&doc, &link_base);
    let (noindex, nofollow) = meta_robots(&doc);
    let links = collect_links(&doc, &link_base);

    let mut walker = BlockWalker::default();
    for container in main_content(&doc) {
        walker.walk_element(container);
    }
    let blocks = walker.finish();

    let first_h1 = blocks.iter().find_map(|b| match b {
        Block::Heading { level: 1, text, .. } if text.chars().count() <= 300 => Some(text.clone()),
        _ => None,
    });
    let (title_tag, site_name) = title_and_site_name(&doc);
    let title = first_h1
        .or(title_tag)
        .or_else(|| {
            blocks.iter().find_map(|b| match b {
                Block::Heading { text, .. } => Some(text.clone()),
                _ => None,
            })
        })
        .unwrap_or_else(|| base.to_string());

    let url = canonical
        .as_ref()
        .filter(|c| c.origin() == base.origin())
        .unwrap_or(base)
        .to_string();

    Extracted {
        page: Page {
            url,
            title,
            kind: DocKind::Html,
            lang: document_lang(&doc),
            modified: modified_date(&doc),
            blocks,
        },
        canonical,
        links,
        noindex,
        nofollow,
        site_name,
    }
}

/// Collapses whitespace runs (including non-breaking spaces) to one space and trims; drops
/// soft hyphens and zero-width characters.
pub fn normalize_space(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if matches!(
            c,
            '\u{ad}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}'
        ) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// A selector from a constant; a typo is a bug caught by every test.
fn selector(css: &'static str) -> Selector {
    Selector::parse(css).expect("constant selector is valid")
}

// ---------------------------------------------------------------------------------------------
// Head: base, canonical, robots, title, language, dates

/// The URL relative links resolve against: `<base href>` if present and valid, else `base`.
fn document_base(doc: &Html, base: &Url) -> Url {
    doc.select(&selector("base[href]"))
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| base.join(href.trim()).ok())
        .unwrap_or_else(|| base.clone())
}

fn canonical_url(doc: &Html, base: &Url) -> Option<Url> {
    doc.select(&selector("link[rel][href]"))
        .find(|l| {
            l.value().attr("rel").is_some_and(|rel| {
                rel.split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("canonical"))
            })
        })
        .and_then(|l| l.value().attr("href"))
        .and_then(|href| resolve_link(base, href))
}

/// Resolves an href to an absolute http(s) URL without fragment.
fn resolve_link(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}

/// `(noindex, nofollow)` from `<meta name="robots">`.
fn meta_robots(doc: &Html) -> (bool, bool) {
    let mut noindex = false;
    let mut nofollow = false;
    for meta in doc.select(&selector("meta[name][content]")) {
        let e = meta.value();
        if !e
            .attr("name")
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("robots"))
        {
            continue;
        }
        for token in e.attr("content").unwrap_or("").split(',') {
            match token.trim().to_ascii_lowercase().as_str() {
                "noindex" => noindex = true,
                "nofollow" => nofollow = true,
                "none" => (noindex, nofollow) = (true, true),
                _ => {}
            }
        }
    }
    (noindex, nofollow)
}

/// The `<title>` split into the page's own title and the site's name:
/// "Hundesteuer - Gemeinde Bad Boll" -> ("Hundesteuer", "Gemeinde Bad Boll").
///
/// The site name is `og:site_name` / `application-name` if the page declares one (and that
/// segment is removed from the title wherever it is), else the last segment of the title
/// (the usual CMS order).
fn title_and_site_name(doc: &Html) -> (Option<String>, Option<String>) {
    let declared = doc
        .select(&selector("meta[content]"))
        .find(|m| {
            let e = m.value();
            let key = e.attr("property").or_else(|| e.attr("name")).unwrap_or("");
            key.eq_ignore_ascii_case("og:site_name") || key.eq_ignore_ascii_case("application-name")
        })
        .and_then(|m| m.value().attr("content"))
        .map(normalize_space)
        .filter(|s| !s.is_empty());
    let raw = doc
        .select(&selector("head title"))
        .next()
        .or_else(|| doc.select(&selector("title")).next())
        .map(|t| normalize_space(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());
    match raw {
        Some(raw) => {
            let (title, from_title) = split_title(&raw, declared.as_deref());
            (Some(title), declared.or(from_title))
        }
        None => (None, declared),
    }
}

/// Splits a title at the first separator kind it contains (" | ", " - ", ...) and takes out
/// the site name segment; returns the rest and the removed segment.
fn split_title(raw: &str, site_name: Option<&str>) -> (String, Option<String>) {
    const SEPARATORS: &[&str] = &[" | ", " - ", " – ", " — ", " :: ", " · ", " » "];
    let Some(sep) = SEPARATORS.iter().find(|s| raw.contains(*s)) else {
        return (raw.to_owned(), None);
    };
    let mut parts: Vec<&str> = raw.split(sep).map(str::trim).collect();
    let site_at = site_name
        .and_then(|s| parts.iter().position(|p| p.eq_ignore_ascii_case(s)))
        .unwrap_or(parts.len() - 1);
    let site = parts.remove(site_at);
    let cleaned = parts.join(sep);
    if cleaned.trim().is_empty() {
        (raw.to_owned(), None)
    } else {
        (cleaned, Some(site.to_owned()).filter(|s| !s.is_empty()))
    }
}

fn document_lang(doc: &Html) -> Option<String> {
    let root = doc.root_element();
    root.value()
        .attr("lang")
        .or_else(|| root.value().attr("xml:lang"))
        .map(str::to_owned)
        .or_else(|| {
            doc.select(&selector("meta[http-equiv][content]"))
                .find(|m| {
                    m.value()
                        .attr("http-equiv")
                        .is_some_and(|h| h.trim().eq_ignore_ascii_case("content-language"))
                })
                .and_then(|m| m.value().attr("content"))
                // "de, en" -> "de"
                .and_then(|c| c.split(',').next())
                .map(str::to_owned)
        })
        .map(|l| l.trim().replace('_', "-"))
        .filter(|l| !l.is_empty())
}

/// The page's modification date from the first of these meta tags that holds a readable date:
/// `dcterms.modified`, `DC.date.modified`, `article:modified_time`, `last-modified`, `date`.
fn modified_date(doc: &Html) -> Option<String> {
    const KEYS: &[&str] = &[
        "dcterms.modified",
        "dc.date.modified",
        "article:modified_time",
        "last-modified",
        "date",
    ];
    let mut found: HashMap<String, String> = HashMap::new();
    for meta in doc.select(&selector("meta[content]")) {
        let e = meta.value();
        let key = e
            .attr("name")
            .or_else(|| e.attr("property"))
            .or_else(|| e.attr("http-equiv"))
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if let Some(content) = e.attr("content") {
            found.entry(key).or_insert_with(|| content.to_owned());
        }
    }
    KEYS.iter()
        .filter_map(|k| found.get(*k))
        .find_map(|v| normalize_date(v))
}

/// ISO 8601 stays (a space before the time becomes `T`); `31.01.2025` and HTTP dates become
/// `2025-01-31`. Anything else is not a date we can use.
fn normalize_date(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let is_iso_date = |s: &str| {
        let b = s.as_bytes();
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    };
    if let Some(date) = raw.get(..10).filter(|d| is_iso_date(d)) {
        return Some(match raw.get(10..) {
            Some(rest) if rest.starts_with(['T', ' ']) && rest.len() > 1 => {
                format!("{date}T{}", &rest[1..])
            }
            _ => date.to_owned(),
        });
    }
    // German: 31.01.2025 or 1.2.2025
    let parts: Vec<&str> = raw.split('.').map(str::trim).collect();
    if let [d, m, y] = parts[..] {
        let num = |s: &str, max_len: usize| {
            (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        if let (Some(d), Some(m), Some(y)) = (num(d, 2), num(m, 2), num(y, 4))
            && y >= 1000
            && (1..=12).contains(&m)
            && (1..=31).contains(&d)
        {
            return Some(format!("{y:04}-{m:02}-{d:02}"));
        }
    }
    let when = httpdate::parse_http_date(raw).ok()?;
    let secs = when.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let date = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?.date();
    Some(format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()))
}

// ---------------------------------------------------------------------------------------------
// Links

fn collect_links(doc: &Html, base: &Url) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let mut index: HashMap<Url, usize> = HashMap::new();
    for a in doc.select(&selector("a[href], area[href]")) {
        let Some(href) = a.value().attr("href") else {
            continue;
        };
        // "#top" points into this very page
        if href.trim_start().starts_with('#') {
            continue;
        }
        let Some(url) = resolve_link(base, href) else {
            continue;
        };
        let mut text = normalize_space(&a.text().collect::<String>());
        if text.is_empty() {
            text = a
                .descendent_elements()
                .find_map(|e| {
                    e.value()
                        .attr("alt")
                        .map(normalize_space)
                        .filter(|t| !t.is_empty())
                })
                .or_else(|| a.value().attr("title").map(normalize_space))
                .or_else(|| a.value().attr("alt").map(normalize_space))
                .unwrap_or_default();
        }
        match index.get(&url) {
            Some(&i) => {
                if links[i].text.is_empty() {
                    links[i].text = text;
                }
            }
            None => {
                index.insert(url.clone(), links.len());
                links.push(Link { url, text });
            }
        }
    }
    links
}

// ---------------------------------------------------------------------------------------------
// Chrome

/// Elements that never hold main content.
const DROPPED_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "video", "audio", "map", "form", "button", "input", "select", "textarea", "option",
    "label", "nav", "aside", "footer", "dialog", "menu", "head", "title", "meta", "link",
];

/// Landmark and widget roles that mark site chrome.
const CHROME_ROLES: &[&str] = &[
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "search",
    "dialog",
    "alertdialog",
    "menu",
    "menubar",
    "toolbar",
];

/// Whether `el` (with everything in it) is site chrome rather than content. See the module
/// docs for the rules.
pub fn is_chrome(el: ElementRef<'_>) -> bool {
    let e = el.value();
    let name = e.name();
    if DROPPED_TAGS.contains(&name) {
        return true;
    }
    if name == "header" && !within_sectioning_content(el) {
        return true;
    }
    if e.attr("role").is_some_and(|roles| {
        roles
            .split_whitespace()
            .any(|r| CHROME_ROLES.iter().any(|c| r.eq_ignore_ascii_case(c)))
    }) {
        return true;
    }
    let is_true = |attr: &str| {
        e.attr(attr)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    };
    if e.attr("hidden").is_some() || is_true("aria-hidden") || is_true("aria-modal") {
        return true;
    }
    if let Some(style) = e.attr("style") {
        let style: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        if style.contains("display:none") || style.contains("visibility:hidden") {
            return true;
        }
    }
    is_breadcrumb(el) || (name == "a" && is_skip_link(el)) || is_consent_banner(el)
}

/// `header` belongs to the content when it is inside an article, main or section (ARIA: it
/// is then not a `banner`).
fn within_sectioning_content(el: ElementRef<'_>) -> bool {
    el.ancestors().filter_map(ElementRef::wrap).any(|a| {
        let e = a.value();
        matches!(e.name(), "article" | "main" | "section")
            || e.attr("role").is_some_and(|r| {
                r.eq_ignore_ascii_case("main") || r.eq_ignore_ascii_case("article")
            })
    })
}

/// Lowercased id and class attribute of an element.
fn id_and_class(el: ElementRef<'_>) -> String {
    let e = el.value();
    format!("{} {}", e.id().unwrap_or(""), e.attr("class").unwrap_or("")).to_ascii_lowercase()
}

fn is_breadcrumb(el: ElementRef<'_>) -> bool {
    let label = el.value().attr("aria-label").unwrap_or("").to_lowercase();
    label.contains("breadcrumb")
        || label.contains("sie sind hier")
        || label.contains("brotkrümel")
        || label.contains("pfadnavigation")
        || id_and_class(el).contains("breadcrumb")
}

/// "Zum Inhalt springen" and the like: a link to a fragment of the same page.
fn is_skip_link(el: ElementRef<'_>) -> bool {
    if !el
        .value()
        .attr("href")
        .is_some_and(|h| h.trim_start().starts_with('#'))
    {
        return false;
    }
    let text = normalize_space(&el.text().collect::<String>()).to_lowercase();
    const PHRASES: &[&str] = &[
        "zum inhalt",
        "zum hauptinhalt",
        "inhalt springen",
        "zur navigation",
        "zur hauptnavigation",
        "zur suche",
        "direkt zu",
        "springe zu",
        "skip to",
        "jump to",
        "nach oben",
        "zum seitenanfang",
        "back to top",
    ];
    PHRASES.iter().any(|p| text.contains(p))
}

/// Last-resort heuristic for cookie/consent banners that are not marked up as dialogs: the id
/// or class names cookies or consent *and* the element holds a control to click.
fn is_consent_banner(el: ElementRef<'_>) -> bool {
    let names = id_and_class(el);
    if !["cookie", "consent", "gdpr", "cc-banner", "cc-window"]
        .iter()
        .any(|w| names.contains(w))
    {
        return false;
    }
    el.descendent_elements().any(|d| {
        let e = d.value();
        matches!(e.name(), "button" | "input" | "select" | "form")
            || e.attr("role")
                .is_some_and(|r| r.eq_ignore_ascii_case("button"))
            || (e.name() == "a"
                && e.attr("class").is_some_and(|c| {
                    let c = c.to_ascii_lowercase();
                    c.contains("btn") || c.contains("button") || c.contains("accept")
                }))
    })
}

fn within_chrome(el: ElementRef<'_>) -> bool {
    el.ancestors().filter_map(ElementRef::wrap).any(is_chrome)
}

// ---------------------------------------------------------------------------------------------
// Main container

/// The elements holding the main content, in document order; see the module docs.
fn main_content(doc: &Html) -> Vec<ElementRef<'_>> {
    let root = doc.root_element();
    let body = doc.select(&selector("body")).next().unwrap_or(root);
    let visible = |el: &ElementRef<'_>| !is_chrome(*el) && !within_chrome(*el);

    let mains: Vec<ElementRef<'_>> = doc.select(&selector("main")).filter(visible).collect();
    if let Some(main) = richest(mains) {
        return vec![main];
    }
    let role_mains: Vec<ElementRef<'_>> = doc
        .select(&selector("[role]"))
        .filter(|e| {
            e.value()
                .attr("role")
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("main"))
        })
        .filter(visible)
        .collect();
    if let Some(main) = richest(role_mains) {
        return vec![main];
    }
    let articles: Vec<ElementRef<'_>> = doc
        .select(&selector("article"))
        .filter(visible)
        .filter(|a| {
            !a.ancestors()
                .filter_map(ElementRef::wrap)
                .any(|p| p.value().name() == "article")
        })
        .collect();
    if let [article] = articles[..]
        && text_stats(article).text > 0
    {
        return vec![article];
    }
    main_by_text_density(body)
}

/// The candidate with the most text, if any has text.
fn richest(candidates: Vec<ElementRef<'_>>) -> Option<ElementRef<'_>> {
    candidates
        .into_iter()
        .map(|c| (c, text_stats(c).text))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| c)
}

/// Text lengths in characters: all text, and the part inside links. Chrome is not counted.
#[derive(Debug, Default, Clone, Copy)]
struct TextStats {
    text: usize,
    link: usize,
}

impl TextStats {
    fn link_density(self) -> f64 {
        if self.text == 0 {
            0.0
        } else {
            self.link as f64 / self.text as f64
        }
    }
}

fn text_stats(el: ElementRef<'_>) -> TextStats {
    TextStatsMap::build(el).of(el)
}

/// [`TextStats`] of every non-chrome element below a root, computed in one bottom-up pass so
/// that the scorer stays linear in the size of the page.
struct TextStatsMap(HashMap<usize, TextStats>);

impl TextStatsMap {
    fn build(root: ElementRef<'_>) -> TextStatsMap {
        fn visit(el: ElementRef<'_>, map: &mut HashMap<usize, TextStats>) -> TextStats {
            let mut stats = TextStats::default();
            for child in el.children() {
                match child.value() {
                    Node::Text(t) => stats.text += t.chars().filter(|c| !c.is_whitespace()).count(),
                    Node::Element(_) => {
                        if let Some(c) = ElementRef::wrap(child).filter(|c| !is_chrome(*c)) {
                            let s = visit(c, map);
                            stats.text += s.text;
                            stats.link += s.link;
                        }
                    }
                    _ => {}
                }
            }
            if el.value().name() == "a" {
                stats.link = stats.text;
            }
            map.insert(node_key(el), stats);
            stats
        }
        let mut map = HashMap::new();
        visit(root, &mut map);
        TextStatsMap(map)
    }

    /// Stats of an element below the root; chrome counts as empty.
    fn of(&self, el: ElementRef<'_>) -> TextStats {
        self.0.get(&node_key(el)).copied().unwrap_or_default()
    }
}

/// Identity of a node for the duration of a parse: the address of its value in the tree.
/// (ego-tree's `NodeId` would do, but scraper does not re-export the crate to name it.)
fn node_key(el: ElementRef<'_>) -> usize {
    std::ptr::from_ref(el.value()) as usize
}

/// Readability-style choice of the main content when the page does not mark it: the best
/// scoring container, plus those of its siblings that score at least a fifth as well (a page
/// whose sections are sibling `div`s), long text paragraphs among them and headings directly
/// before a chosen sibling.
fn main_by_text_density(body: ElementRef<'_>) -> Vec<ElementRef<'_>> {
    const CANDIDATES: &[&str] = &["div", "section", "article", "main", "td", "body", "center"];
    let is_candidate = |e: ElementRef<'_>| CANDIDATES.contains(&e.value().name());
    let stats = TextStatsMap::build(body);

    // Score blocks of inline text and credit their ancestors.
    let mut raw_scores: HashMap<usize, (ElementRef<'_>, f64)> = HashMap::new();
    let mut stack = vec![body];
    while let Some(el) = stack.pop() {
        for child in el.child_elements() {
            if !is_chrome(child) {
                stack.push(child);
            }
        }
        if is_inline(el.value().name()) {
            continue;
        }
        let (inline, commas) = inline_stats(el, &stats);
        let own = inline.text.saturating_sub(inline.link);
        if own < 25 {
            continue;
        }
        let score = 1.0 + commas as f64 + (own as f64 / 100.0).min(3.0);
        for (i, ancestor) in el
            .ancestors()
            .filter_map(ElementRef::wrap)
            .take(3)
            .enumerate()
        {
            if is_candidate(ancestor) {
                raw_scores
                    .entry(node_key(ancestor))
                    .or_insert((ancestor, 0.0))
                    .1 += score / (i + 1) as f64;
            }
        }
    }
    // Link-heavy containers lose.
    let scores: HashMap<usize, f64> = raw_scores
        .values()
        .map(|(el, score)| {
            let density = stats.of(*el).link_density();
            let penalty = if density > 0.5 { 0.2 } else { 1.0 };
            (node_key(*el), score * (1.0 - density) * penalty)
        })
        .collect();
    let score_of = |el: ElementRef<'_>| scores.get(&node_key(el)).copied().unwrap_or(0.0);

    let best = raw_scores
        .values()
        .map(|(el, _)| *el)
        .max_by(|a, b| score_of(*a).total_cmp(&score_of(*b)));
    let Some(mut best) = best else {
        return vec![body];
    };
    let best_score = score_of(best);

    // Climb while the parent adds no more than a title above (a heading, a date line).
    while best != body {
        let Some(parent) = best.parent().and_then(ElementRef::wrap) else {
            break;
        };
        if is_candidate(parent) && adds_only_a_title(parent, best, &stats) {
            best = parent;
        } else {
            break;
        }
    }
    if best == body {
        return vec![body];
    }
    let Some(parent) = best.parent().and_then(ElementRef::wrap) else {
        return vec![best];
    };

    // Siblings that are content too.
    let threshold = (best_score.max(score_of(best)) * 0.2).max(1.0);
    let siblings: Vec<ElementRef<'_>> =
        parent.child_elements().filter(|c| !is_chrome(*c)).collect();
    let mut chosen: Vec<bool> = siblings
        .iter()
        .map(|s| {
            let st = stats.of(*s);
            *s == best
                || score_of(*s) >= threshold
                || (s.value().name() == "p"
                    && st.text.saturating_sub(st.link) >= 80
                    && st.link_density() < 0.25)
        })
        .collect();
    for i in 0..siblings.len().saturating_sub(1) {
        if chosen[i + 1] && heading_level(siblings[i]).is_some() {
            chosen[i] = true;
        }
    }
    siblings
        .into_iter()
        .zip(chosen)
        .filter_map(|(s, keep)| keep.then_some(s))
        .collect()
}

/// Whether everything in `parent` besides `child` is a title area before it: headings and
/// short text without links, nothing with text after it.
fn adds_only_a_title(parent: ElementRef<'_>, child: ElementRef<'_>, stats: &TextStatsMap) -> bool {
    const SHORT: usize = 80;
    let mut before = true;
    for node in parent.children() {
        if node == *child {
            before = false;
            continue;
        }
        match node.value() {
            Node::Text(t) => {
                let n = t.chars().filter(|c| !c.is_whitespace()).count();
                if n > 0 && (!before || n > SHORT) {
                    return false;
                }
            }
            Node::Element(_) => {
                let Some(el) = ElementRef::wrap(node).filter(|e| !is_chrome(*e)) else {
                    continue;
                };
                let st = stats.of(el);
                if st.text == 0 || (before && heading_level(el).is_some()) {
                    continue;
                }
                if !before || st.link > 0 || st.text > SHORT {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Stats of the inline content directly in `el` (its text nodes and inline children, not its
/// block children) and the number of commas in it.
fn inline_stats(el: ElementRef<'_>, stats: &TextStatsMap) -> (TextStats, usize) {
    let mut inline = TextStats::default();
    let mut commas = 0;
    for child in el.children() {
        match child.value() {
            Node::Text(t) => {
                inline.text += t.chars().filter(|c| !c.is_whitespace()).count();
                commas += t.matches(',').count();
            }
            Node::Element(e) if is_inline(e.name()) => {
                if let Some(c) = ElementRef::wrap(child).filter(|c| !is_chrome(*c)) {
                    let s = stats.of(c);
                    inline.text += s.text;
                    inline.link += s.link;
                    commas += c.text().map(|t| t.matches(',').count()).sum::<usize>();
                }
            }
            _ => {}
        }
    }
    (inline, commas)
}

// ---------------------------------------------------------------------------------------------
// Blocks

/// Phrasing elements: their text flows into the surrounding paragraph.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "br", "cite", "code", "data", "del", "dfn",
    "em", "font", "i", "img", "ins", "kbd", "mark", "nobr", "q", "s", "samp", "small", "span",
    "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr", "ruby", "rt", "rp",
];

fn is_inline(name: &str) -> bool {
    INLINE_TAGS.contains(&name)
}

fn heading_level(el: ElementRef<'_>) -> Option<u8> {
    let e = el.value();
    match e.name() {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ if e
            .attr("role")
            .is_some_and(|r| r.eq_ignore_ascii_case("heading")) =>
        {
            Some(
                e.attr("aria-level")
                    .and_then(|l| l.trim().parse::<u8>().ok())
                    .map_or(2, |l| l.clamp(1, 6)),
            )
        }
        _ => None,
    }
}

/// Reads blocks from the main container in document order.
#[derive(Default)]
struct BlockWalker {
    blocks: Vec<Block>,
    /// Inline text gathered from a container's direct text and inline children.
    inline: String,
}

impl BlockWalker {
    fn finish(mut self) -> Vec<Block> {
        self.flush_inline();
        self.blocks
    }

    fn push(&mut self, block: Block) {
        let empty = match &block {
            Block::Heading { text, .. } | Block::Paragraph { text } => text.is_empty(),
            Block::List { items, .. } => items.is_empty(),
            Block::Table { rows } => rows.is_empty(),
        };
        if !empty {
            self.blocks.push(block);
        }
    }

    /// Direct text of a container (a `div` with text) becomes a paragraph.
    fn flush_inline(&mut self) {
        let text = normalize_space(&std::mem::take(&mut self.inline));
        self.push(Block::Paragraph { text });
    }

    fn walk_children(&mut self, el: ElementRef<'_>) {
        for child in el.children() {
            match child.value() {
                Node::Text(t) => self.inline.push_str(t),
                Node::Element(_) => {
                    if let Some(child) = ElementRef::wrap(child) {
                        self.walk_element(child);
                    }
                }
                _ => {}
            }
        }
    }

    fn walk_element(&mut self, el: ElementRef<'_>) {
        if is_chrome(el) {
            return;
        }
        let name = el.value().name();
        if let Some(level) = heading_level(el) {
            self.flush_inline();
            self.push(Block::Heading {
                level,
                text: text_of(el),
                anchor: heading_anchor(el),
            });
            return;
        }
        match name {
            "br" => self.inline.push(' '),
            "hr" | "img" | "picture" | "area" => {}
            _ if is_inline(name) => {
                if has_block_descendant(el) {
                    // e.g. a card link wrapping a heading and a paragraph
                    self.flush_inline();
                    self.walk_children(el);
                    self.flush_inline();
                } else {
                    append_text(el, &mut self.inline);
                }
            }
            "p" | "pre" => {
                self.flush_inline();
                self.push(Block::Paragraph { text: text_of(el) });
            }
            "ul" | "ol" => {
                self.flush_inline();
                let mut items = Vec::new();
                list_items(el, &mut items);
                self.push(Block::List {
                    ordered: name == "ol",
                    items,
                });
            }
            "dl" => {
                self.flush_inline();
                self.push(Block::List {
                    ordered: false,
                    items: definition_items(el),
                });
            }
            "table" => {
                self.flush_inline();
                if is_layout_table(el) {
                    self.walk_layout_table(el);
                } else {
                    if let Some(caption) =
                        el.child_elements().find(|c| c.value().name() == "caption")
                    {
                        self.push(Block::Paragraph {
                            text: text_of(caption),
                        });
                    }
                    let mut rows = Vec::new();
                    table_rows(el, &mut rows);
                    self.push(Block::Table { rows });
                }
            }
            // every other element is a block container
            _ => {
                self.flush_inline();
                self.walk_children(el);
                self.flush_inline();
            }
        }
    }

    /// A layout table: each cell is a container of its own.
    fn walk_layout_table(&mut self, el: ElementRef<'_>) {
        for child in el.child_elements() {
            if is_chrome(child) {
                continue;
            }
            match child.value().name() {
                "td" | "th" => {
                    self.flush_inline();
                    self.walk_children(child);
                    self.flush_inline();
                }
                "caption" => self.walk_element(child),
                _ => self.walk_layout_table(child),
            }
        }
    }
}

/// Whether an inline element holds block content (chrome not looked into).
fn has_block_descendant(el: ElementRef<'_>) -> bool {
    el.child_elements()
        .filter(|c| !is_chrome(*c))
        .any(|c| !is_inline(c.value().name()) || has_block_descendant(c))
}

/// Appends the raw text of an element, chrome left out; block boundaries and `<br>` become
/// spaces, inline elements do not (`Wort<b>teil</b>` stays one word).
fn append_text(el: ElementRef<'_>, out: &mut String) {
    append_text_filtered(el, out, &|_| true);
}

fn append_text_filtered(
    el: ElementRef<'_>,
    out: &mut String,
    keep: &dyn Fn(ElementRef<'_>) -> bool,
) {
    for child in el.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) => {
                let Some(child) = ElementRef::wrap(child).filter(|c| !is_chrome(*c) && keep(*c))
                else {
                    continue;
                };
                let block = !is_inline(e.name()) || e.name() == "br";
                if block {
                    out.push(' ');
                }
                append_text_filtered(child, out, keep);
                if block {
                    out.push(' ');
                }
            }
            _ => {}
        }
    }
}

/// Whitespace-normalised text of an element, chrome left out.
fn text_of(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    append_text(el, &mut out);
    normalize_space(&out)
}

/// Items of a list; an item's text is its whole text without nested lists, whose items
/// follow it (flattened).
fn list_items(list: ElementRef<'_>, items: &mut Vec<String>) {
    for child in list.child_elements() {
        if is_chrome(child) {
            continue;
        }
        match child.value().name() {
            "li" => {
                items.push(text_without_lists(child));
                for nested in child.descendent_elements().filter(|d| {
                    matches!(d.value().name(), "ul" | "ol")
                        && !within_chrome_below(*d, child)
                        // only the outermost nested lists; they recurse themselves
                        && !d
                            .ancestors()
                            .filter_map(ElementRef::wrap)
                            .take_while(|a| *a != child)
                            .any(|a| matches!(a.value().name(), "ul" | "ol"))
                }) {
                    list_items(nested, items);
                }
            }
            // stray content between items (invalid HTML, but seen): wrappers and nested lists
            "ul" | "ol" | "div" | "span" => list_items(child, items),
            _ => items.push(text_of(child)),
        }
    }
    items.retain(|i| !i.is_empty());
}

/// Whether `el` lies inside chrome somewhere below `top` (exclusive).
fn within_chrome_below(el: ElementRef<'_>, top: ElementRef<'_>) -> bool {
    el.ancestors()
        .filter_map(ElementRef::wrap)
        .take_while(|a| *a != top)
        .any(is_chrome)
        || is_chrome(el)
}

fn text_without_lists(item: ElementRef<'_>) -> String {
    let mut out = String::new();
    append_text_filtered(item, &mut out, &|e| {
        !matches!(e.value().name(), "ul" | "ol")
    });
    normalize_space(&out)
}

/// `<dt>Term</dt><dd>Definition</dd>` -> `Term: Definition`.
fn definition_items(dl: ElementRef<'_>) -> Vec<String> {
    let mut children: Vec<ElementRef<'_>> = Vec::new();
    for child in dl.child_elements().filter(|c| !is_chrome(*c)) {
        // <div> wrappers around dt/dd groups are allowed
        if child.value().name() == "div" {
            children.extend(child.child_elements().filter(|c| !is_chrome(*c)));
        } else {
            children.push(child);
        }
    }
    let mut items = Vec::new();
    // the current term, and whether a definition followed it yet
    let mut term: Option<(String, bool)> = None;
    for child in children {
        match child.value().name() {
            "dt" => {
                if let Some((t, false)) = term.replace((text_of(child), false)) {
                    items.push(t); // a term without definition stands alone
                }
            }
            "dd" => {
                let text = text_of(child);
                match term.as_mut() {
                    Some((t, defined)) if !t.is_empty() => {
                        items.push(format!("{t}: {text}"));
                        *defined = true;
                    }
                    _ => items.push(text),
                }
            }
            _ => items.push(text_of(child)),
        }
    }
    if let Some((t, false)) = term {
        items.push(t);
    }
    items.retain(|i| !i.is_empty());
    items
}

/// A table used for layout: nested tables, headings or lists of paragraphs inside, a single
/// column, or `role=presentation`.
fn is_layout_table(table: ElementRef<'_>) -> bool {
    if table
        .value()
        .attr("role")
        .is_some_and(|r| r.eq_ignore_ascii_case("presentation") || r.eq_ignore_ascii_case("none"))
    {
        return true;
    }
    if table
        .descendent_elements()
        .skip(1)
        .any(|d| d.value().name() == "table" || heading_level(d).is_some())
    {
        return true;
    }
    let mut rows = Vec::new();
    table_rows(table, &mut rows);
    let max_cells = rows.iter().map(Vec::len).max().unwrap_or(0);
    max_cells <= 1 && rows.len() > 1
}

/// Rows of cell texts, nested tables excluded. Empty rows are dropped.
fn table_rows(el: ElementRef<'_>, rows: &mut Vec<Vec<String>>) {
    for child in el.child_elements() {
        if is_chrome(child) {
            continue;
        }
        match child.value().name() {
            "tr" => {
                let cells: Vec<String> = child
                    .child_elements()
                    .filter(|c| matches!(c.value().name(), "td" | "th") && !is_chrome(*c))
                    .map(text_of)
                    .collect();
                if cells.iter().any(|c| !c.is_empty()) {
                    rows.push(cells);
                }
            }
            "thead" | "tbody" | "tfoot" => table_rows(child, rows),
            _ => {}
        }
    }
}

/// The anchor of a heading: its id, an `<a id|name>` inside it, the id of a wrapper it opens,
/// or the id of an empty element directly before it.
fn heading_anchor(heading: ElementRef<'_>) -> Option<String> {
    let id_of = |e: ElementRef<'_>| {
        e.value()
            .id()
            .or_else(|| {
                (e.value().name() == "a")
                    .then(|| e.value().attr("name"))
                    .flatten()
            })
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
    };
    if let Some(id) = id_of(heading) {
        return Some(id);
    }
    if let Some(id) = heading.descendent_elements().skip(1).find_map(id_of) {
        return Some(id);
    }
    // previous sibling, skipping whitespace: an empty element with an id
    let mut prev = heading.prev_sibling();
    while let Some(node) = prev {
        match node.value() {
            Node::Text(t) if t.trim().is_empty() => prev = node.prev_sibling(),
            Node::Comment(_) => prev = node.prev_sibling(),
            Node::Element(_) => {
                let anchor = ElementRef::wrap(node)
                    .filter(|e| text_of(*e).is_empty())
                    .and_then(id_of);
                if anchor.is_some() {
                    return anchor;
                }
                break;
            }
            _ => break,
        }
    }
    // a wrapper (section, div) that the heading opens
    let parent = heading.parent().and_then(ElementRef::wrap)?;
    let first_child = parent.children().find(|c| match c.value() {
        Node::Text(t) => !t.trim().is_empty(),
        Node::Comment(_) => false,
        _ => true,
    });
    if first_child.is_some_and(|c| c == *heading) {
        return id_of(parent);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn extract(html: &str) -> Extracted {
        extract_html(html, &url("http://127.0.0.1:8089/a/b/"))
    }

    fn texts(page: &Page) -> Vec<String> {
        page.blocks.iter().map(Block::text).collect()
    }

    const CHROME: &str = r##"
        <div id="cookie-consent" class="cc-banner" role="dialog"><p>Wir verwenden Cookies.</p>
          <button>Alle akzeptieren</button></div>
        <a class="skip-link" href="#content">Zum Inhalt springen</a>
        <header><a href="/"><img src="/logo.svg" alt="Gemeinde"></a>
          <nav aria-label="Hauptnavigation"><ul><li><a href="/">Startseite</a></li></ul></nav>
          <form role="search" action="/suche"><input name="q"><button>Suchen</button></form>
        </header>
        <nav class="breadcrumb" aria-label="Sie sind hier"><a href="/">Startseite</a></nav>
    "##;
    const FOOTER: &str = r#"<footer><ul><li><a href="/impressum/">Impressum</a></li></ul>
        <p>&copy; Gemeinde</p></footer><script>var x = "Impressum";</script>"#;

    #[test]
    fn main_element_content_with_structure() {
        let html = format!(
            r#"<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">
            <title>Hundesteuersatzung - Gemeinde Bad Boll</title>
            <link rel="canonical" href="/a/b/">
            <meta name="dcterms.modified" content="2025-01-01"></head><body>{CHROME}
            <div class="wrap"><aside><h2>In diesem Bereich</h2><ul><li><a href="/x/">X</a></li></ul></aside>
            <main id="content"><div>
              <h1>Satzung über die Erhebung der Hundesteuer</h1>
              <p><strong>Stand:</strong> Januar   2025</p>
              <hr />
              <h3 id="p5">§ 5 Steuersatz</h3>
              <p><strong>(1)</strong> Die Steuer beträgt <em>165,00&nbsp;€</em>.<br>Weiter.</p>
              <ol><li>erstens <a href="/y/">Link</a></li><li>zweitens<ul><li>zwei a</li><li>zwei b</li></ul></li></ol>
              <table><thead><tr><th>Funktion</th><th>Betrag</th></tr></thead>
                <tbody><tr><td>Kommandant</td><td>100 Euro</td></tr><tr><td></td><td></td></tr></tbody></table>
              <div>Direkter Text im div <span>mit Span</span></div>
              <p>   </p>
            </div></main></div>{FOOTER}</body></html>"#
        );
        let ex = extract(&html);
        let page = &ex.page;
        assert_eq!(page.title, "Satzung über die Erhebung der Hundesteuer");
        assert_eq!(page.lang.as_deref(), Some("de"));
        assert_eq!(page.modified.as_deref(), Some("2025-01-01"));
        assert_eq!(page.kind, DocKind::Html);
        assert_eq!(page.url, "http://127.0.0.1:8089/a/b/");
        assert_eq!(
            page.blocks,
            vec![
                Block::Heading {
                    level: 1,
                    text: "Satzung über die Erhebung der Hundesteuer".into(),
                    anchor: None
                },
                Block::Paragraph {
                    text: "Stand: Januar 2025".into()
                },
                Block::Heading {
                    level: 3,
                    text: "§ 5 Steuersatz".into(),
                    anchor: Some("p5".into())
                },
                Block::Paragraph {
                    text: "(1) Die Steuer beträgt 165,00 €. Weiter.".into()
                },
                Block::List {
                    ordered: true,
                    items: vec![
                        "erstens Link".into(),
                        "zweitens".into(),
                        "zwei a".into(),
                        "zwei b".into()
                    ]
                },
                Block::Table {
                    rows: vec![
                        vec!["Funktion".into(), "Betrag".into()],
                        vec!["Kommandant".into(), "100 Euro".into()]
                    ]
                },
                Block::Paragraph {
                    text: "Direkter Text im div mit Span".into()
                },
            ]
        );
        let text = page.text();
        for chrome in [
            "Cookies",
            "Zum Inhalt",
            "Startseite",
            "Suchen",
            "In diesem Bereich",
            "Impressum",
            "©",
        ] {
            assert!(!text.contains(chrome), "{chrome} in {text}");
        }
    }

    #[test]
    fn links_come_from_the_whole_document() {
        let html = format!(
            r#"<html><head><base href="http://127.0.0.1:8089/base/"></head><body>{CHROME}<main>
            <p><a href="rel/#frag">Relativ</a> <a href="mailto:a@b.de">Mail</a>
            <a href="javascript:void(0)">JS</a> <a href="/x/"><img alt="Bild-Link"></a>
            <a href="/x/">Doppelt</a> <a href="https://other.example/p?q=1#top">Extern</a></p>
            </main>{FOOTER}</body></html>"#
        );
        let ex = extract(&html);
        let links: Vec<(String, String)> = ex
            .links
            .iter()
            .map(|l| (l.url.to_string(), l.text.clone()))
            .collect();
        assert_eq!(
            links,
            vec![
                ("http://127.0.0.1:8089/".to_owned(), "Gemeinde".to_owned()),
                (
                    "http://127.0.0.1:8089/base/rel/".to_owned(),
                    "Relativ".to_owned()
                ),
                (
                    "http://127.0.0.1:8089/x/".to_owned(),
                    "Bild-Link".to_owned()
                ),
                (
                    "https://other.example/p?q=1".to_owned(),
                    "Extern".to_owned()
                ),
                (
                    "http://127.0.0.1:8089/impressum/".to_owned(),
                    "Impressum".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn robots_meta_and_canonical() {
        let ex = extract(
            r#"<html><head><meta name="ROBOTS" content="NoIndex, follow">
            <link rel="canonical" href="http://127.0.0.1:8089/a/b/?print=0#x"></head><body><p>x</p></body></html>"#,
        );
        assert!(ex.noindex && !ex.nofollow);
        assert_eq!(
            ex.canonical.unwrap().as_str(),
            "http://127.0.0.1:8089/a/b/?print=0"
        );
        assert_eq!(ex.page.url, "http://127.0.0.1:8089/a/b/?print=0");

        let ex = extract(
            r#"<meta name="robots" content="none"><link rel="canonical" href="https://elsewhere.example/">"#,
        );
        assert!(ex.noindex && ex.nofollow);
        // a canonical on another origin is reported but not used as the page URL
        assert_eq!(ex.canonical.unwrap().as_str(), "https://elsewhere.example/");
        assert_eq!(ex.page.url, "http://127.0.0.1:8089/a/b/");
    }

    #[test]
    fn title_falls_back_to_cleaned_title_tag() {
        let ex = extract("<title>Abfall | Stadt Konstanz</title><main><p>Text</p></main>");
        assert_eq!(ex.page.title, "Abfall");
        assert_eq!(ex.site_name.as_deref(), Some("Stadt Konstanz"));
        let ex = extract(
            r#"<title>Stadt Konstanz – Abfall – Termine</title>
            <meta property="og:site_name" content="Stadt Konstanz"><main><h2>Termine</h2></main>"#,
        );
        assert_eq!(ex.page.title, "Abfall – Termine");
        assert_eq!(ex.site_name.as_deref(), Some("Stadt Konstanz"));
        assert_eq!(
            split_title("Ohne Trenner", None),
            ("Ohne Trenner".to_owned(), None)
        );
        let ex = extract("<main><h2>Nur eine Überschrift</h2></main>");
        assert_eq!(ex.page.title, "Nur eine Überschrift");
        assert_eq!(ex.site_name, None);
    }

    #[test]
    fn dates_are_normalised() {
        assert_eq!(normalize_date("2025-01-31").as_deref(), Some("2025-01-31"));
        assert_eq!(
            normalize_date("2025-01-31 10:00:00").as_deref(),
            Some("2025-01-31T10:00:00")
        );
        assert_eq!(
            normalize_date("2025-01-31T10:00:00+01:00").as_deref(),
            Some("2025-01-31T10:00:00+01:00")
        );
        assert_eq!(normalize_date("1.2.2025").as_deref(), Some("2025-02-01"));
        assert_eq!(
            normalize_date("Fri, 31 Jan 2025 10:00:00 GMT").as_deref(),
            Some("2025-01-31")
        );
        assert_eq!(normalize_date("gestern"), None);
        let ex = extract(
            r#"<meta name="date" content="kaputt"><meta property="article:modified_time" content="2024-05-06T07:08:09Z">
            <meta name="date" content="2020-01-01"><p>x</p>"#,
        );
        assert_eq!(ex.page.modified.as_deref(), Some("2024-05-06T07:08:09Z"));
    }

    #[test]
    fn heading_anchors() {
        let ex = extract(
            r#"<main>
            <h2><a name="s1"></a>§ 1 Zweck</h2>
            <section id="s2"><h2>§ 2 Gebühren</h2><p>Text</p></section>
            <a id="s3"></a>
            <h2>§ 3 Ende</h2>
            <div id="box"><p>Vorweg</p><h2>§ 4 Ohne</h2></div>
            </main>"#,
        );
        let anchors: Vec<Option<String>> = ex
            .page
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Heading { anchor, .. } => Some(anchor.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            anchors,
            vec![
                Some("s1".into()),
                Some("s2".into()),
                Some("s3".into()),
                None
            ]
        );
    }

    #[test]
    fn text_density_finds_content_without_main() {
        let html = r#"<html><body>
            <div id="top"><div class="menu"><a href="/1">Startseite</a> <a href="/2">Rathaus</a>
              <a href="/3">Leben und Freizeit in unserer schönen Gemeinde</a></div></div>
            <div id="wrap">
              <div class="left"><ul><li><a href="/a">Ein sehr langer Navigationslink zur Seite A</a></li>
                <li><a href="/b">Ein sehr langer Navigationslink zur Seite B</a></li>
                <li><a href="/c">Ein sehr langer Navigationslink zur Seite C</a></li></ul></div>
              <div class="content">
                <h1>Öffnungszeiten des Rathauses</h1>
                <div class="text">
                  <p>Das Rathaus ist montags bis freitags von 8 bis 12 Uhr geöffnet, donnerstags auch nachmittags.</p>
                  <p>Termine außerhalb der Öffnungszeiten sind nach Vereinbarung möglich, bitte rufen Sie an.</p>
                </div>
              </div>
            </div>
            <div id="bottom"><a href="/impressum">Impressum</a> | <a href="/datenschutz">Datenschutz</a></div>
            </body></html>"#;
        let ex = extract(html);
        assert_eq!(
            texts(&ex.page),
            vec![
                "Öffnungszeiten des Rathauses",
                "Das Rathaus ist montags bis freitags von 8 bis 12 Uhr geöffnet, donnerstags auch nachmittags.",
                "Termine außerhalb der Öffnungszeiten sind nach Vereinbarung möglich, bitte rufen Sie an.",
            ]
        );
        assert_eq!(ex.page.title, "Öffnungszeiten des Rathauses");
    }

    #[test]
    fn text_density_keeps_sibling_sections() {
        let section = |n: u32| {
            format!(
                "<div class=\"par\"><h3>§ {n} Abschnitt</h3><p>({n}) Die Gemeinde regelt hier, was im Abschnitt {n} \
                 steht, und zwar ausführlich, mit Kommas, wie es sich gehört.</p></div>"
            )
        };
        let html = format!(
            r#"<body><div class="top"><a href="/">Start</a> <a href="/r">Rathaus</a></div>
            <div class="cols"><div class="side"><a href="/a">Seite A</a><br><a href="/b">Seite B</a></div>
            <div class="col"><h1>Marktordnung</h1>{}{}{}<div class="par"><h3>§ 4 Inkrafttreten</h3>
            <p>Diese Satzung tritt am Tage nach ihrer öffentlichen Bekanntmachung in Kraft.</p></div></div></div>
            <div class="bottom">Gemeinde Musterhausen, Telefon 0711 1234</div></body>"#,
            section(1),
            section(2),
            section(3)
        );
        let ex = extract(&html);
        let text = ex.page.text();
        assert!(text.starts_with("Marktordnung\n\n§ 1 Abschnitt"), "{text}");
        assert!(text.contains("(3) Die Gemeinde regelt"));
        assert!(
            text.ends_with("öffentlichen Bekanntmachung in Kraft."),
            "{text}"
        );
        assert!(
            !text.contains("Seite A") && !text.contains("Telefon"),
            "{text}"
        );
    }

    #[test]
    fn single_article_is_main() {
        let ex = extract(
            r#"<body><div><a href="/">Home</a></div><article><h1>Neuigkeit</h1>
            <header><p>12.03.2025</p></header><p>Der Text.</p><footer>Teilen</footer></article>
            <div>Sonstiges</div></body>"#,
        );
        assert_eq!(
            texts(&ex.page),
            vec!["Neuigkeit", "12.03.2025", "Der Text."]
        );
    }

    #[test]
    fn consent_heuristic_needs_a_control() {
        let ex = extract(
            r##"<main><div class="cookie-notice">Wir nutzen Cookies. <a class="btn" href="#">OK</a></div>
            <section id="cookies"><h2>Cookies</h2><p>Diese Website verwendet nur technisch notwendige Cookies.</p></section></main>"##,
        );
        assert_eq!(
            texts(&ex.page),
            vec![
                "Cookies",
                "Diese Website verwendet nur technisch notwendige Cookies."
            ]
        );
    }

    #[test]
    fn hidden_and_layout_tables() {
        let ex = extract(
            r#"<main><p hidden>versteckt</p><p style="display: none">auch</p><p aria-hidden="true">weg</p>
            <table><tr><td><h2>Titel</h2><p>Absatz eins.</p></td><td><table><tr><td>a</td><td>b</td></tr></table></td></tr></table>
            <dl><dt>Telefon</dt><dd>07164 1234</dd><dt>Fax</dt><dd>07164 1235</dd></dl></main>"#,
        );
        assert_eq!(
            ex.page.blocks,
            vec![
                Block::Heading {
                    level: 2,
                    text: "Titel".into(),
                    anchor: None
                },
                Block::Paragraph {
                    text: "Absatz eins.".into()
                },
                Block::Table {
                    rows: vec![vec!["a".into(), "b".into()]]
                },
                Block::List {
                    ordered: false,
                    items: vec!["Telefon: 07164 1234".into(), "Fax: 07164 1235".into()]
                },
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        for html in [
            "",
            "<",
            "<<<>>>",
            "<html><body></body></html>",
            "\u{0}\u{feff}<p>x",
            "<table><tr><td>",
        ] {
            let ex = extract(html);
            assert_eq!(ex.page.kind, DocKind::Html);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Fixture pages, compared with snapshots in tests/snapshots (UPDATE_SNAPSHOTS=1 rewrites).

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/sites");
    const SNAPSHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots");

    fn fixture(site: &str, path: &str) -> Extracted {
        let file = format!("{FIXTURES}/{site}/{path}index.html");
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let html = crate::charset::decode_html(&bytes, Some("text/html"));
        extract_html(&html, &url(&format!("http://127.0.0.1:8089/{path}")))
    }

    /// A readable rendering of a page: metadata, then blocks in Markdown-like form.
    fn render(page: &Page) -> String {
        let mut out = format!(
            "url: {}\ntitle: {}\nlang: {:?}\nmodified: {:?}\n",
            page.url, page.title, page.lang, page.modified
        );
        for block in &page.blocks {
            out.push('\n');
            match block {
                Block::Heading {
                    level,
                    text,
                    anchor,
                } => {
                    out.push_str(&"#".repeat(usize::from(*level)));
                    out.push(' ');
                    out.push_str(text);
                    if let Some(a) = anchor {
                        out.push_str(&format!(" {{#{a}}}"));
                    }
                }
                Block::Paragraph { text } => out.push_str(text),
                Block::List { ordered, items } => {
                    for (i, item) in items.iter().enumerate() {
                        if *ordered {
                            out.push_str(&format!("{}. {item}\n", i + 1));
                        } else {
                            out.push_str(&format!("- {item}\n"));
                        }
                    }
                    out.pop();
                }
                Block::Table { rows } => {
                    for row in rows {
                        out.push_str(&format!("| {} |\n", row.join(" | ")));
                    }
                    out.pop();
                }
            }
            out.push('\n');
        }
        out
    }

    fn assert_snapshot(name: &str, page: &Page) {
        let actual = render(page);
        let file = format!("{SNAPSHOTS}/{name}.md");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(SNAPSHOTS).unwrap();
            std::fs::write(&file, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e} (run with UPDATE_SNAPSHOTS=1 to create it)"));
        assert!(
            expected == actual,
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it):\n--- expected\n{expected}\n--- actual\n{actual}"
        );
    }

    fn assert_no_chrome(page: &Page) {
        let text = page.text();
        for chrome in [
            "Cookies",
            "Hauptnavigation",
            "In diesem Bereich",
            "Startseite",
            "Impressum",
            "©",
            "Zum Inhalt springen",
            "Suchen",
            "Intranet",
            "Rathaus · Bürgerbüro",
        ] {
            assert!(
                !text.contains(chrome),
                "{chrome:?} in {}:\n{text}",
                page.url
            );
        }
    }

    #[test]
    fn fixture_bad_boll_hundesteuer() {
        let ex = fixture("bad-boll", "ortsrecht/bbo-satzung-erhebung-hundesteuer/");
        let page = &ex.page;
        assert_no_chrome(page);
        assert_eq!(
            page.title,
            "Satzung über die Erhebung der Hundesteuer (Hundesteuersatzung) der Gemeinde Bad Boll"
        );
        assert_eq!(page.modified.as_deref(), Some("2025-01-01"));
        assert!(page.blocks.contains(&Block::Heading {
            level: 3,
            text: "§ 5 Steuersatz".into(),
            anchor: None
        }));
        assert!(
            page.text()
                .contains("Die Steuer beträgt im Kalenderjahr für jeden Hund 165,00 €.")
        );
        assert_eq!(
            ex.canonical.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:8089/ortsrecht/bbo-satzung-erhebung-hundesteuer/")
        );
        // navigation links are reported for discovery, the PDF with its link text too
        let link = |p: &str| {
            ex.links
                .iter()
                .find(|l| l.url.path() == p)
                .map(|l| l.text.as_str())
        };
        assert_eq!(link("/rathaus/"), Some("Rathaus & Verwaltung"));
        assert_eq!(
            link("/ortsrecht/bbo-satzung-hauptsatzung.pdf"),
            Some("Hauptsatzung der Gemeinde Bad Boll")
        );
        assert!(link("/impressum/").is_some());
        assert_snapshot("bad-boll-hundesteuer", page);
    }

    #[test]
    fn fixture_bad_boll_home() {
        let ex = fixture("bad-boll", "");
        assert_no_chrome(&ex.page);
        assert_eq!(ex.page.title, "Willkommen");
        assert_eq!(ex.site_name.as_deref(), Some("Gemeinde Bad Boll"));
        assert!(
            ex.page
                .text()
                .contains("Herzlich willkommen auf den Seiten von Gemeinde Bad Boll.")
        );
        assert_snapshot("bad-boll-home", &ex.page);
    }

    #[test]
    fn fixture_konstanz_feuerwehr_entschaedigung() {
        let ex = fixture(
            "konstanz",
            "ortsrecht/kon-satzung-feuerwehr-entschaedigung/",
        );
        let page = &ex.page;
        assert_no_chrome(page);
        assert!(page.blocks.contains(&Block::Heading {
            level: 3,
            text: "§ 6 Zusätzliche Entschädigung".into(),
            anchor: None
        }));
        let table = page.blocks.iter().find_map(|b| match b {
            Block::Table { rows } => Some(rows),
            _ => None,
        });
        let rows = table.expect("fee table");
        assert_eq!(rows[0], vec!["Funktion", "Entschädigung"]);
        assert!(rows.contains(&vec![
            "Abteilungskommandant".to_owned(),
            "80 Euro/Monat".to_owned()
        ]));
        assert_snapshot("konstanz-feuerwehr-entschaedigung", page);
    }

    #[test]
    fn fixture_konstanz_hauptsatzung() {
        let ex = fixture("konstanz", "ortsrecht/kon-satzung-hauptsatzung/");
        assert_no_chrome(&ex.page);
        assert!(ex.page.blocks.iter().any(
            |b| matches!(b, Block::Heading { level: 3, text, .. } if text.starts_with("§ 1"))
        ));
        assert_snapshot("konstanz-hauptsatzung", &ex.page);
    }

    #[test]
    fn all_fixture_pages_are_free_of_chrome() {
        for site in ["bad-boll", "konstanz"] {
            let mut stack = vec![std::path::PathBuf::from(format!("{FIXTURES}/{site}"))];
            let mut n = 0;
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    if path.file_name().is_none_or(|f| f != "index.html") {
                        continue;
                    }
                    let bytes = std::fs::read(&path).unwrap();
                    let html = crate::charset::decode_html(&bytes, None);
                    let ex = extract_html(&html, &url("http://127.0.0.1:8089/p/"));
                    // the Impressum and Datenschutz pages are about exactly that
                    let p = path.to_string_lossy();
                    let about_chrome = ["impressum", "datenschutz", "intern"]
                        .iter()
                        .any(|w| p.contains(w));
                    if !about_chrome {
                        assert_no_chrome(&ex.page);
                    }
                    assert!(!ex.page.blocks.is_empty(), "{path:?}");
                    n += 1;
                }
            }
            assert!(n > 10, "{site}: {n} pages");
        }
    }
}
