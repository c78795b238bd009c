//! The widget's options, read from the `data-lotse-*` attributes of its script tag.

use web_sys::Element;

/// German UI text; each can be replaced with a `data-lotse-text-*` attribute.
#[derive(Debug, Clone)]
pub struct Texts {
    /// The launcher button (`data-lotse-text-launcher`).
    pub launcher: String,
    /// The dialog's heading (`data-lotse-text-title`).
    pub title: String,
    /// The first message in the dialog (`data-lotse-text-greeting`).
    pub greeting: String,
    /// The notice above the input (`data-lotse-text-privacy`).
    pub privacy: String,
    /// The Einfache-Sprache button (`data-lotse-text-simplify`).
    pub simplify: String,
    /// The button that returns to the original (`data-lotse-text-original`).
    pub original: String,
}

/// Where in the main content the Einfache-Sprache button goes
/// (`data-lotse-simplify-position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimplifyPosition {
    /// Right after the content's first `h1`, so that the page still opens with its heading;
    /// the first child of the content when it has no `h1` (the default; `heading`).
    AfterHeading,
    /// The first child of the content, above its heading (`top`).
    Top,
}

/// Everything the widget needs (the town's name, `data-lotse-town`, goes into the title) to know about its page and its server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Lotse server, without a trailing slash (`data-lotse-api`; default: the origin the
    /// script came from).
    pub api: String,
    /// A logo for the dialog's header (`data-lotse-logo`).
    pub logo: Option<String>,
    /// `left` or `right` (default) (`data-lotse-position`).
    pub left: bool,
    /// The primary colour (`data-lotse-color`); the CSS custom property `--lotse-primary`
    /// set by the CMS's stylesheet works as well.
    pub color: Option<String>,
    /// CSS selector of the main content, where the Einfache-Sprache button goes
    /// (`data-lotse-content`).
    pub content_selector: String,
    /// `data-lotse-chat="off"` leaves out the chat.
    pub chat: bool,
    /// `data-lotse-simplify="off"` leaves out the Einfache-Sprache button.
    pub simplify: bool,
    /// `data-lotse-simplify-position="top"` puts the button above the content's heading;
    /// by default (`heading`) it follows the content's first `h1`.
    pub simplify_position: SimplifyPosition,
    /// The page's address as the server indexed it (`data-lotse-page-url`; default: the
    /// canonical link, else the address without its fragment).
    pub page_url: String,
    pub text: Texts,
}

const DEFAULT_CONTENT: &str = "main, [role=main], #content, article";

impl Config {
    /// Read the options from the script element (or from nothing: all defaults).
    pub fn from_script(script: Option<&Element>) -> Config {
        let attr = |name: &str| -> Option<String> {
            script
                .and_then(|s| s.get_attribute(&format!("data-lotse-{name}")))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let town = attr("town").unwrap_or_else(|| "Ihre Stadtverwaltung".to_string());
        let api = attr("api")
            .or_else(|| script.and_then(script_origin))
            .unwrap_or_else(page_origin)
            .trim_end_matches('/')
            .to_string();
        let text = Texts {
            launcher: attr("text-launcher").unwrap_or_else(|| "Fragen Sie uns".to_string()),
            title: attr("text-title").unwrap_or_else(|| format!("Digitale Auskunft – {town}")),
            greeting: attr("text-greeting").unwrap_or_else(|| {
                "Guten Tag! Ich beantworte Ihre Fragen mit den Informationen dieser Website \
                 und nenne Ihnen die Quellen."
                    .to_string()
            }),
            privacy: attr("text-privacy").unwrap_or_else(|| {
                "Bitte geben Sie keine persönlichen Daten ein (zum Beispiel Namen, Adressen, \
                 Geburtsdaten oder Aktenzeichen). Die Antworten erstellt eine KI: Sie können \
                 Fehler enthalten. Verbindlich sind die verlinkten Seiten. Damit wir die \
                 Website verbessern können, speichern wir Ihre Frage bis zu 90 Tage lang, ohne \
                 persönliche Angaben und ohne Bezug zu Ihrer Person."
                    .to_string()
            }),
            simplify: attr("text-simplify").unwrap_or_else(|| "Einfache Sprache".to_string()),
            original: attr("text-original").unwrap_or_else(|| "Zurück zum Originaltext".to_string()),
        };
        Config {
            api,
            logo: attr("logo"),
            left: attr("position").is_some_and(|p| p.eq_ignore_ascii_case("left")),
            color: attr("color"),
            content_selector: attr("content").unwrap_or_else(|| DEFAULT_CONTENT.to_string()),
            chat: !attr("chat").is_some_and(|v| is_off(&v)),
            simplify: !attr("simplify").is_some_and(|v| is_off(&v)),
            simplify_position: match attr("simplify-position") {
                Some(p) if p.eq_ignore_ascii_case("top") => SimplifyPosition::Top,
                _ => SimplifyPosition::AfterHeading,
            },
            page_url: attr("page-url").unwrap_or_else(page_url),
            text,
        }
    }
}

fn is_off(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "off" | "false" | "no" | "0" | "aus" | "nein")
}

/// The origin of the script's own address: where the widget's files and the API live by
/// default.
fn script_origin(script: &Element) -> Option<String> {
    let src = script.get_attribute("src")?;
    let base = web_sys::window()?.location().href().ok()?;
    let url = web_sys::Url::new_with_base(&src, &base).ok()?;
    Some(url.origin())
}

fn page_origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// The canonical link if the page has one, else the address without its fragment.
fn page_url() -> String {
    let Some(window) = web_sys::window() else {
        return String::new();
    };
    let here = window.location().href().unwrap_or_default();
    let canonical = window
        .document()
        .and_then(|d| d.query_selector("link[rel~='canonical'][href]").ok().flatten())
        .and_then(|l| l.get_attribute("href"))
        .and_then(|href| web_sys::Url::new_with_base(&href, &here).ok());
    let url = canonical.or_else(|| web_sys::Url::new(&here).ok());
    match url {
        Some(u) => {
            u.set_hash("");
            u.href()
        }
        None => here,
    }
}
