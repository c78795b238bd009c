//! Facts a rewrite must keep: amounts, dates, times, phone numbers, e-mail addresses, URLs,
//! paragraph references, percentages and every other number.
//!
//! Design decision: facts are compared in a canonical form, so a rewrite may change the
//! format ("165,00 €" = "165 Euro", "§ 3 Abs. 2" = "Paragraf 3 Absatz 2", "8.00 Uhr" =
//! "8 Uhr", "zwei Wochen" = "2 Wochen") but not the value. Structured facts are found first
//! and blanked out, then the remaining numbers; every number a fact consists of is also a
//! *value*, so a range "8 bis 12 Uhr" rewritten as "8 Uhr bis 12 Uhr" still passes. A
//! rewrite fails when a fact of the original is missing or a number appears that the
//! original does not have.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::pattern as re;

/// What kind of fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    Url,
    Email,
    Phone,
    Paragraph,
    Date,
    Time,
    Percent,
    Amount,
    Number,
}

/// One fact as found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub kind: FactKind,
    /// Comparable form, e.g. `amount:165`, `date:1.7.2025`, `§3(2)`.
    pub canonical: String,
    /// The text as written.
    pub text: String,
    /// The numbers the fact consists of, canonical (`165`, `12.5`).
    pub values: Vec<String>,
}


const NUMBER_WORDS: &[(&str, u32)] = &[
    ("zwei", 2),
    ("drei", 3),
    ("vier", 4),
    ("fünf", 5),
    ("sechs", 6),
    ("sieben", 7),
    ("acht", 8),
    ("neun", 9),
    ("zehn", 10),
    ("elf", 11),
    ("zwölf", 12),
    ("zwanzig", 20),
    ("dreißig", 30),
    ("vierzig", 40),
    ("fünfzig", 50),
    ("hundert", 100),
    ("tausend", 1000),
];

pub use lotse_text::is_month;

static URL: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:https?://|www\.)[^\s<>\x22]+"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:\+\d{2}[ ]?(?:\(0\)[ ]?)?\d{2,5}|\(0\d{2,5}\)|\b0\d{2,5})(?:[ /-]?\d{1,8}){1,4}\b")
});
static PARAGRAPH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:§§?|\bparagra(?:f|ph)(?:en|s)?)[ \u{a0}]*(\d+)(?:[ ]?([a-z])(?:[^.\p{L}\d]|$))?(?:[ ,]*(?:abs\.?|absatz)[ \u{a0}]*(\d+))?(?:[ ,]*(?:s\.|satz)[ \u{a0}]*(\d+))?(?:[ ,]*(?:nr\.?|nummer)[ \u{a0}]*(\d+))?",
    )
});
static DATE_NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,2})\.[ ]?(\d{1,2})\.(?:[ ]?(\d{4}|\d{2})\b)?"));
static DATE_ISO: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{2})-(\d{2})\b"));
static DATE_NAMED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(\d{1,2})\.[ \u{a0}]?(januar|jänner|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember|jan\.|feb\.|mär\.|apr\.|jun\.|jul\.|aug\.|sept?\.|okt\.|nov\.|dez\.)(?:[ \u{a0}]?(\d{4}))?",
    )
});
static TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(\d{1,2})(?:[:.](\d{2}))?[ \u{a0}]?uhr\b|\b(\d{1,2}):(\d{2})\b"));
static PERCENT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(\d+(?:,\d+)?)[ \u{a0}]?(?:%|prozent\b|v\.[ \u{a0}]?h\.)"));
static AMOUNT_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}|-{1,2}|–))?[ \u{a0}]?(€|eur\b|euro\b|cent\b|ct\b)",
    )
});
static AMOUNT_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)(?:€|\beur\b|\beuro\b)[ \u{a0}]?(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}|-{1,2}|–))?")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?"));
static WORD: LazyLock<Regex> = LazyLock::new(|| re(r"\p{L}+"));
/// A reference by Roman numeral ("Ziffer II", "Abschnitt IV", "Anlage I"): the model drops
/// these as easily as a § reference.
static ROMAN_REF: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:Ziffer|Ziff\.|Abschnitt|Abschn\.|Teil|Kapitel|Anlage|Anhang|Nr\.|Nummer|Buchstabe)[ \u{a0}]+([IVX]{1,6})\b",
    )
});

/// A number's canonical form: no thousands separators, decimal point, no trailing zeros.
fn canon_number(int: &str, frac: Option<&str>) -> String {
    let int = int.replace('.', "");
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    match frac
        .map(|f| f.trim_end_matches('0'))
        .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
    {
        Some(f) => format!("{int}.{f}"),
        None => int.to_string(),
    }
}

fn year(y: &str) -> String {
    if y.len() == 2 {
        format!("20{y}")
    } else {
        y.to_string()
    }
}

/// Blank `range` out of `text` (keeping byte offsets) so later patterns skip it.
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let spaces = " ".repeat(range.len());
    text.replace_range(range, &spaces);
}

/// All facts of `text`, structured ones first, then the remaining numbers.
pub fn facts(text: &str) -> Vec<Fact> {
    let mut rest = text.to_string();
    let mut out = Vec::new();
    let mut take =
        |rest: &mut String,
         pattern: &Regex,
         kind: FactKind,
         build: &dyn Fn(&regex::Captures<'_>) -> Option<(String, Vec<String>)>| {
            let found: Vec<(
                std::ops::Range<usize>,
                String,
                Option<(String, Vec<String>)>,
            )> = pattern
                .captures_iter(rest)
                .map(|c| {
                    let m = c.get(0).map(|m| m.range()).unwrap_or(0..0);
                    (m.clone(), rest[m].to_string(), build(&c))
                })
                .collect();
            for (range, raw, built) in found {
                let Some((canonical, values)) = built else {
                    continue;
                };
                blank(rest, range);
                out.push(Fact {
                    kind,
                    canonical,
                    text: raw,
                    values,
                });
            }
        };
    take(&mut rest, &URL, FactKind::Url, &|c| {
        let u = c[0].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        let lower = u.to_lowercase();
        let bare = lower
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_start_matches("www.")
            .trim_end_matches('/');
        Some((format!("url:{bare}"), Vec::new()))
    });
    take(&mut rest, &EMAIL, FactKind::Email, &|c| {
        Some((format!("email:{}", c[0].to_lowercase()), Vec::new()))
    });
    take(&mut rest, &PARAGRAPH, FactKind::Paragraph, &|c| {
        let mut canonical = format!("§{}", &c[1]);
        let mut values = vec![canon_number(&c[1], None)];
        if let Some(l) = c.get(2) {
            canonical.push_str(&l.as_str().to_lowercase());
        }
        for (i, tag) in [(3, "abs"), (4, "satz"), (5, "nr")] {
            if let Some(m) = c.get(i) {
                canonical.push_str(&format!(" {tag}{}", m.as_str()));
                values.push(canon_number(m.as_str(), None));
            }
        }
        Some((canonical, values))
    });
    take(&mut rest, &PHONE, FactKind::Phone, &|c| {
        let raw = &c[0];
        let mut digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        if raw.trim_start().starts_with('+') {
            // +49 7164 ... and +49 (0) 7164 ... are 07164 ...
            let rest = digits.get(2..).unwrap_or("").to_string();
            let rest = if raw.contains("(0)") {
                rest.trim_start_matches('0').to_string()
            } else {
                rest
            };
            digits = format!("0{rest}");
        }
        (digits.len() >= 6 && digits.len() <= 15).then(|| (format!("tel:{digits}"), vec![digits]))
    });
    take(&mut rest, &DATE_ISO, FactKind::Date, &|c| {
        let (y, m, d) = (&c[1], canon_number(&c[2], None), canon_number(&c[3], None));
        Some((format!("date:{d}.{m}.{y}"), vec![d, m, y.to_string()]))
    });
    take(&mut rest, &DATE_NAMED, FactKind::Date, &|c| {
        let name = c[2].trim_end_matches('.').to_lowercase();
        let month = lotse_text::MONTHS.iter().find(|(n, _)| *n == name)?.1;
        let d = canon_number(&c[1], None);
        let mut values = vec![d.clone(), month.to_string()];
        let canonical = match c.get(3) {
            Some(y) => {
                values.push(y.as_str().to_string());
                format!("date:{d}.{month}.{}", y.as_str())
            }
            None => format!("date:{d}.{month}."),
        };
        Some((canonical, values))
    });
    take(&mut rest, &DATE_NUMERIC, FactKind::Date, &|c| {
        let (d, m) = (canon_number(&c[1], None), canon_number(&c[2], None));
        let (dn, mn): (u32, u32) = (d.parse().ok()?, m.parse().ok()?);
        if !(1..=31).contains(&dn) || !(1..=12).contains(&mn) {
            return None;
        }
        let mut values = vec![d.clone(), m.clone()];
        let canonical = match c.get(3) {
            Some(y) => {
                let y = year(y.as_str());
                values.push(y.clone());
                format!("date:{d}.{m}.{y}")
            }
            None => format!("date:{d}.{m}."),
        };
        Some((canonical, values))
    });
    take(&mut rest, &TIME, FactKind::Time, &|c| {
        let (h, m) = match (c.get(1), c.get(3)) {
            (Some(h), _) => (h.as_str(), c.get(2).map_or("00", |m| m.as_str())),
            (None, Some(h)) => (h.as_str(), c.get(4).map_or("00", |m| m.as_str())),
            (None, None) => return None,
        };
        let hn: u32 = h.parse().ok()?;
        let mn: u32 = m.parse().ok()?;
        if hn > 24 || mn > 59 {
            return None;
        }
        let mut values = vec![hn.to_string()];
        if mn != 0 {
            values.push(mn.to_string());
        }
        Some((format!("time:{hn}:{mn:02}"), values))
    });
    take(&mut rest, &PERCENT, FactKind::Percent, &|c| {
        let (int, frac) = match c[1].split_once(',') {
            Some((i, f)) => (i.to_string(), Some(f.to_string())),
            None => (c[1].to_string(), None),
        };
        let v = canon_number(&int, frac.as_deref());
        Some((format!("percent:{v}"), vec![v]))
    });
    let amount = |c: &regex::Captures<'_>| {
        let cents_unit = c
            .get(3)
            .is_some_and(|u| matches!(u.as_str().to_lowercase().as_str(), "cent" | "ct"));
        let frac = c
            .get(2)
            .map(|f| f.as_str())
            .filter(|f| f.chars().all(|ch| ch.is_ascii_digit()));
        let frac = frac.map(|f| {
            if f.len() == 1 {
                format!("{f}0")
            } else {
                f.to_string()
            }
        });
        let v = if cents_unit {
            let cents: u64 = c[1].replace('.', "").parse().ok()?;
            canon_number(
                &(cents / 100).to_string(),
                Some(&format!("{:02}", cents % 100)),
            )
        } else {
            canon_number(&c[1], frac.as_deref())
        };
        Some((
            format!("amount:{v}"),
            vec![canon_number(&c[1], frac.as_deref())],
        ))
    };
    take(&mut rest, &AMOUNT_AFTER, FactKind::Amount, &amount);
    take(&mut rest, &AMOUNT_BEFORE, FactKind::Amount, &|c| {
        let v = canon_number(&c[1], c.get(2).map(|f| f.as_str()));
        Some((format!("amount:{v}"), vec![v]))
    });
    take(&mut rest, &ROMAN_REF, FactKind::Paragraph, &|c| {
        Some((format!("ref:{}", &c[1]), Vec::new()))
    });
    take(&mut rest, &NUMBER, FactKind::Number, &|c| {
        let (int, frac) = match c[0].rsplit_once(',') {
            Some((i, f)) => (i.to_string(), Some(f.to_string())),
            None => (c[0].to_string(), None),
        };
        let v = canon_number(&int, frac.as_deref());
        Some((format!("number:{v}"), vec![v]))
    });
    for w in WORD.find_iter(&rest) {
        let lower = w.as_str().to_lowercase();
        if let Some((_, n)) = NUMBER_WORDS.iter().find(|(word, _)| *word == lower) {
            out.push(Fact {
                kind: FactKind::Number,
                canonical: format!("number:{n}"),
                text: w.as_str().to_string(),
                values: vec![n.to_string()],
            });
        }
    }
    out
}

/// Why a rewrite does not keep the facts of its original.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactCheck {
    /// Facts of the original that the rewrite lacks (as written in the original).
    pub missing: Vec<String>,
    /// Numbers in the rewrite that the original does not have (as written in the rewrite).
    pub invented: Vec<String>,
}

impl FactCheck {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.invented.is_empty()
    }
}

/// Compare the facts of `original` and `rewrite`.
pub fn check(original: &str, rewrite: &str) -> FactCheck {
    let (a, b) = (facts(original), facts(rewrite));
    let canon =
        |fs: &[Fact]| -> BTreeSet<String> { fs.iter().map(|f| f.canonical.clone()).collect() };
    let values = |fs: &[Fact]| -> BTreeSet<String> {
        fs.iter().flat_map(|f| f.values.iter().cloned()).collect()
    };
    let (ca, cb) = (canon(&a), canon(&b));
    let (va, vb) = (values(&a), values(&b));
    // "ein Jahr" may become "1 Jahr": an indefinite article allows the value 1
    let mut allowed = va.clone();
    if WORD
        .find_iter(original)
        .any(|w| w.as_str().to_lowercase().starts_with("ein") && w.as_str().len() <= 5)
    {
        allowed.insert("1".into());
    }
    let mut result = FactCheck::default();
    for f in &a {
        let kept = match f.kind {
            FactKind::Number => f.values.iter().all(|v| vb.contains(v)),
            _ => cb.contains(&f.canonical),
        };
        if !kept && !result.missing.contains(&f.text) {
            result.missing.push(f.text.clone());
        }
    }
    for f in &b {
        let known = ca.contains(&f.canonical) || f.values.iter().all(|v| allowed.contains(v));
        if !known && !result.invented.contains(&f.text) {
            result.invented.push(f.text.clone());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Vec<String> {
        facts(text).into_iter().map(|f| f.canonical).collect()
    }

    #[test]
    fn structured_facts_are_found() {
        let t = "Die Steuer beträgt 165,00 € je Hund (§ 5 Abs. 2). Zahlbar bis 1. Juli 2025, \
                 Sprechzeiten 8.30 Uhr bis 12 Uhr, Tel. 07164 808-0, info@bad-boll.de, \
                 https://www.bad-boll.de/steuern/, Ermäßigung 50 %.";
        let c = canon(t);
        for want in [
            "amount:165",
            "§5 abs2",
            "date:1.7.2025",
            "time:8:30",
            "time:12:00",
            "tel:071648080",
            "email:info@bad-boll.de",
            "url:bad-boll.de/steuern",
            "percent:50",
        ] {
            assert!(c.contains(&want.to_string()), "{want} not in {c:?}");
        }
        assert!(!c.iter().any(|f| f.starts_with("number:")), "{c:?}");
    }

    #[test]
    fn formats_may_change_values_may_not() {
        assert!(check("Die Gebühr beträgt 165,00 €.", "Sie zahlen 165 Euro.").ok());
        assert!(
            check(
                "nach § 3 Abs. 2 der Satzung",
                "nach Paragraf 3 Absatz 2 der Regel"
            )
            .ok()
        );
        assert!(
            check(
                "nach § 3 Abs 2 Nr 1 EigBG",
                "nach Paragraf 3 Absatz 2 Nummer 1 EigBG"
            )
            .ok()
        );
        assert!(check("am 01.07.2025", "am 1. Juli 2025").ok());
        // "i.V.m." is no letter of the reference: "§ 4 i.V.m. § 142" is § 4 and § 142
        assert!(check("Gemäß § 4 i.V.m. § 142 GemO", "Nach Paragraf 4 in Verbindung mit Paragraf 142 GemO").ok());
        assert!(!check("nach § 13b", "nach Paragraf 13").ok());
        assert!(check("innerhalb von zwei Wochen", "in 2 Wochen").ok());
        assert!(check("von 8 bis 12 Uhr", "von 8 Uhr bis 12 Uhr").ok());
        assert!(check("für ein Jahr", "für 1 Jahr").ok());
        assert!(check("Tel. (07164) 808-0", "Telefon: 07164 8080").ok());

        let bad = check(
            "Die Steuer beträgt 900,00 € im Jahr.",
            "Sie zahlen 1900 Euro im Jahr.",
        );
        assert_eq!(bad.missing, vec!["900,00 €"]);
        assert_eq!(bad.invented, vec!["1900 Euro"]);
        let lost = check("Frist: 14 Tage, Gebühr 20 €.", "Sie zahlen 20 Euro.");
        assert_eq!(lost.missing, vec!["14"]);
        assert!(check("Es gilt Satz 1.", "Es gilt Satz 2.").invented == vec!["2"]);
    }

    #[test]
    fn roman_references_are_facts() {
        let o = "bei denen die Voraussetzungen nach Ziffer I oder Ziffer II vorliegen";
        assert_eq!(
            check(o, "die die Bedingungen erfüllen").missing,
            vec!["Ziffer I", "Ziffer II"]
        );
        assert!(check(o, "wenn die Regeln aus Ziffer I oder Ziffer II gelten").ok());
        assert!(
            check("Abschnitt IV gilt.", "Teil IV gilt.").ok(),
            "the numeral is the fact"
        );
        assert!(!check("Abschnitt IV gilt.", "Abschnitt V gilt.").ok());
    }
}
