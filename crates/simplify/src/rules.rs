//! The deterministic first pass: abbreviations written out, symbols in words, amounts in a
//! plain format, semicolons made into sentence ends, and the town's glossary (a hard term is
//! explained at its first use on the page).
//!
//! Invariant: the pass never changes a fact (`facts::check(original, pass(original)).ok()`,
//! tested), so its output can always be shown.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

use crate::pattern as re;

/// Abbreviations and their spelled-out forms. Patterns are matched at word starts; the
/// optional spaces inside ("z. B.", "z.B.") are part of the pattern.
const ABBREVIATIONS: &[(&str, &str)] = &[
    (r"i\.\s?d\.\s?R\.", "in der Regel"),
    (r"i\.\s?V\.\s?m\.", "in Verbindung mit"),
    (r"i\.\s?S\.\s?v\.", "im Sinne von"),
    (r"i\.\s?S\.\s?d\.", "im Sinne des"),
    (r"i\.\s?S\.", "im Sinne"),
    (r"z\.\s?B\.", "zum Beispiel"),
    (r"Z\.\s?B\.", "Zum Beispiel"),
    (r"u\.\s?a\.", "unter anderem"),
    (r"u\.\s?U\.", "unter Umständen"),
    (r"d\.\s?h\.", "das heißt"),
    (r"o\.\s?g\.", "oben genannt"),
    (r"s\.\s?o\.", "siehe oben"),
    (r"s\.\s?u\.", "siehe unten"),
    (r"Abs\.", "Absatz"),
    (r"Abschn\.", "Abschnitt"),
    (r"gem\.", "gemäß"),
    (r"ggf\.", "gegebenenfalls"),
    (r"bzw\.", "beziehungsweise"),
    (r"usw\.", "und so weiter"),
    (r"ca\.", "etwa"),
    (r"inkl\.", "einschließlich"),
    (r"zzgl\.", "zuzüglich"),
    (r"gesetzl\.\s?MwSt\.", "gesetzlicher Mehrwertsteuer"),
    (r"MwSt\.", "Mehrwertsteuer"),
    (r"v\.\s?H\.", "Prozent"),
    (r"u\.\s?v\.\s?m\.", "und vieles mehr"),
    (r"u\.\s?ä\.", "und Ähnliches"),
    (r"o\.\s?ä\.", "oder Ähnliches"),
    (r"v\.\s?a\.", "vor allem"),
    (r"i\.\s?d\.\s?F\.", "in der Fassung"),
    (r"z\.\s?Zt\.", "zurzeit"),
    (r"bzgl\.", "bezüglich"),
    (r"einschl\.", "einschließlich"),
    (r"Ziff\.", "Ziffer"),
    (r"Buchst\.", "Buchstabe"),
    (r"evtl\.", "eventuell"),
    (r"max\.", "höchstens"),
    (r"mind\.", "mindestens"),
    (r"Std\.", "Stunden"),
    (r"Tel\.", "Telefon"),
    (r"vgl\.", "vergleiche"),
    (r"lt\.", "laut"),
    (r"sog\.", "so genannte"),
    (r"Str\.", "Straße"),
    (r"Nr\.", "Nummer"),
    (r"bspw\.", "beispielsweise"),
    (r"Jh\.", "Jahrhundert"),
    (r"ff\.", "und folgende"),
];

struct Rule {
    pattern: Regex,
    replacement: &'static str,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    ABBREVIATIONS
        .iter()
        .map(|(p, r)| Rule {
            // a word start before, no letter after
            pattern: re(&format!(r"(^|[^\p{{L}}\d]){p}(?:([^\p{{L}}])|$)")),
            replacement: r,
        })
        .collect()
});

static WEEKDAY_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(Mo|Di|Mi|Do|Fr|Sa|So)\.?\s?(?:–|-|bis)\s?(Mo|Di|Mi|Do|Fr|Sa|So)\.?(\s|$|,|:)")
});
static SECTIONS: LazyLock<Regex> = LazyLock::new(|| re(r"§§\s?"));
static SECTION: LazyLock<Regex> = LazyLock::new(|| re(r"§\s?"));
static ARTICLE: LazyLock<Regex> = LazyLock::new(|| re(r"\bArt\.\s?(\d)"));
/// "Abs 2", "Nr 3" without their period, before a number.
static NUMBERED_WITHOUT_PERIOD: LazyLock<Regex> = LazyLock::new(|| re(r"\b(Abs|Nr|Ziff)\s?(\d)"));
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(\d{1,3}(?:\.\d{3})+|\d+)(?:,(00|-{1,2}|–)|,(\d{2}))?[ \u{a0}]?(?:€|EUR\b)")
});
static PERCENT: LazyLock<Regex> = LazyLock::new(|| re(r"(\d)[ \u{a0}]?%"));
static SENTENCE_END_ABBREVIATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"(und so weiter|und folgende)(\s+\p{Lu}|\s*$)"));
static SEMICOLON: LazyLock<Regex> = LazyLock::new(|| re(r";\s+(\p{Ll})"));

fn weekday(short: &str) -> &'static str {
    match short {
        "Mo" => "Montag",
        "Di" => "Dienstag",
        "Mi" => "Mittwoch",
        "Do" => "Donnerstag",
        "Fr" => "Freitag",
        "Sa" => "Samstag",
        _ => "Sonntag",
    }
}

/// Abbreviations, symbols and amounts of one text, sentence by sentence unchanged otherwise.
pub fn expand(text: &str) -> String {
    let mut t = text.to_string();
    t = WEEKDAY_RANGE
        .replace_all(&t, |c: &Captures<'_>| {
            format!("{} bis {}{}", weekday(&c[1]), weekday(&c[2]), &c[3])
        })
        .into_owned();
    for rule in RULES.iter() {
        // twice: a match consumes the separator that the next one would start with
        for _ in 0..2 {
            t = rule
                .pattern
                .replace_all(&t, |c: &Captures<'_>| {
                    let after = c.get(2).map_or("", |m| m.as_str());
                    format!("{}{}{}", &c[1], rule.replacement, after)
                })
                .into_owned();
        }
    }
    t = ARTICLE.replace_all(&t, "Artikel $1").into_owned();
    t = NUMBERED_WITHOUT_PERIOD
        .replace_all(&t, |c: &Captures<'_>| {
            let word = match &c[1] {
                "Abs" => "Absatz",
                "Nr" => "Nummer",
                _ => "Ziffer",
            };
            format!("{word} {}", &c[2])
        })
        .into_owned();
    t = SECTIONS.replace_all(&t, "Paragrafen ").into_owned();
    t = SECTION.replace_all(&t, "Paragraf ").into_owned();
    t = AMOUNT
        .replace_all(&t, |c: &Captures<'_>| match c.get(3) {
            Some(cents) => format!("{},{} Euro", &c[1], cents.as_str()),
            None => format!("{} Euro", &c[1]),
        })
        .into_owned();
    t = PERCENT.replace_all(&t, "$1 Prozent").into_owned();
    // "usw." that ended a sentence still ends it
    t = SENTENCE_END_ABBREVIATION
        .replace_all(&t, "$1.$2")
        .into_owned();
    split_semicolons(&t)
}

/// "A; b" -> "A. B" when both sides are sentences of their own (three words or more).
fn split_semicolons(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for c in SEMICOLON.captures_iter(text) {
        let (Some(m), Some(letter)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let before = &text[last..m.start()];
        let after_start = letter.start();
        let after_sentence = text[after_start..]
            .split(['.', ';', '!', '?'])
            .next()
            .unwrap_or("");
        let before_sentence = before.rsplit(['.', ';', '!', '?']).next().unwrap_or("");
        if before_sentence.split_whitespace().count() >= 3
            && after_sentence.split_whitespace().count() >= 3
        {
            out.push_str(before);
            out.push_str(". ");
            out.extend(letter.as_str().chars().flat_map(char::to_uppercase));
            last = letter.end();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// A term of the town's glossary and its explanation in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlossaryEntry {
    pub term: String,
    pub explanation: String,
}

/// Official terms explained at their first use on a page. The town's configuration can add
/// to or replace the defaults.
#[derive(Debug, Clone)]
pub struct Glossary {
    entries: Vec<(Regex, GlossaryEntry)>,
}

/// Terms of German town websites that plain-language guides ask to explain.
pub const DEFAULT_GLOSSARY: &[(&str, &str)] = &[
    ("Satzung", "eine Regel, die der Gemeinderat beschlossen hat"),
    ("Bescheid", "ein Brief vom Amt mit einer Entscheidung"),
    (
        "Widerspruch",
        "Sie sagen dem Amt schriftlich, dass Sie mit der Entscheidung nicht einverstanden sind",
    ),
    ("Hauptwohnsitz", "die Wohnung, in der Sie meistens leben"),
    (
        "Nebenwohnsitz",
        "eine weitere Wohnung, in der Sie manchmal leben",
    ),
    (
        "Veranlagung",
        "das Amt berechnet, wie viel Sie zahlen müssen",
    ),
    (
        "Ordnungswidrigkeit",
        "ein Verstoß gegen eine Regel, für den man eine Strafe zahlen muss",
    ),
    ("Fälligkeit", "der Tag, bis zu dem Sie zahlen müssen"),
    ("Kalenderjahr", "das Jahr von Januar bis Dezember"),
    ("Steuerschuldner", "die Person, die die Steuer zahlen muss"),
    (
        "Gebührenschuldner",
        "die Person, die die Gebühr zahlen muss",
    ),
    ("Ermäßigung", "Sie müssen weniger zahlen"),
    ("Erlaubnis", "das Amt sagt, dass Sie etwas dürfen"),
    ("Vollstreckung", "das Amt holt sich das Geld mit Zwang"),
    // terms of the statutes on nearly every town's site (fees, roads, utilities)
    (
        "Gesamtschuldner",
        "Mehrere Personen schulden zusammen. Die Gemeinde darf den ganzen Betrag von jeder dieser Personen verlangen",
    ),
    (
        "Verwaltungsakt",
        "eine Entscheidung des Amts in einem einzelnen Fall, zum Beispiel ein Bescheid",
    ),
    ("Inkrafttreten", "der Tag, ab dem eine Regel gilt"),
    (
        "Sondernutzung",
        "Sie nutzen eine Straße oder einen Platz anders als üblich, zum Beispiel für einen Stand oder ein Gerüst",
    ),
    (
        "Erschließungsbeitrag",
        "Geld, das Eigentümer für den Bau von Straßen und Wegen zu ihrem Grundstück zahlen",
    ),
    (
        "Benutzungsgebühr",
        "Geld, das Sie zahlen, wenn Sie eine Einrichtung der Gemeinde nutzen",
    ),
    (
        "Säumniszuschlag",
        "Geld, das Sie zusätzlich zahlen, wenn Sie zu spät zahlen",
    ),
    ("Geldbuße", "Geld, das Sie als Strafe zahlen müssen"),
    ("Stundung", "Sie dürfen später zahlen"),
    (
        "Anschlusszwang",
        "Sie müssen Ihr Grundstück an die Leitungen der Gemeinde anschließen lassen",
    ),
    ("Benutzungszwang", "Sie müssen die Einrichtung der Gemeinde nutzen"),
    ("Eigenbetrieb", "ein Betrieb der Gemeinde mit eigener Kasse"),
    (
        "Hebesatz",
        "die Zahl, mit der die Gemeinde die Höhe der Steuer festlegt",
    ),
];

impl Glossary {
    /// A glossary from entries; an explanation must not contain digits (it would add numbers
    /// to a text that the fact check then has to trust).
    pub fn new(entries: Vec<GlossaryEntry>) -> Result<Glossary, String> {
        let mut out = Vec::new();
        for e in entries {
            let term = e.term.trim();
            if term.is_empty() || e.explanation.trim().is_empty() {
                return Err("glossary entry with an empty term or explanation".into());
            }
            if e.explanation.chars().any(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "glossary explanation of {term:?} contains digits; write numbers out in the original text instead"
                ));
            }
            let pattern = Regex::new(&format!(r"\b{}(?:[a-zäöüß]{{0,3}})\b", regex::escape(term)))
                .map_err(|err| format!("glossary term {term:?}: {err}"))?;
            out.push((pattern, e));
        }
        Ok(Glossary { entries: out })
    }

    /// The built-in terms.
    pub fn default_terms() -> Glossary {
        Glossary::new(
            DEFAULT_GLOSSARY
                .iter()
                .map(|(t, e)| GlossaryEntry {
                    term: (*t).into(),
                    explanation: (*e).into(),
                })
                .collect(),
        )
        .unwrap_or(Glossary {
            entries: Vec::new(),
        })
    }

    pub fn entries(&self) -> impl Iterator<Item = &GlossaryEntry> {
        self.entries.iter().map(|(_, e)| e)
    }

    /// Explain each term at its first use in `texts` (in order): a sentence of its own right
    /// after the sentence that uses it ("Satzung bedeutet: ..."), so that sentence stays
    /// short; in brackets after the term where that sentence has no end mark (a list item
    /// that is a title). Returns the terms explained.
    pub fn explain_first_use(&self, texts: &mut [String]) -> Vec<String> {
        let mut explained = Vec::new();
        for (pattern, entry) in &self.entries {
            for t in texts.iter_mut() {
                if let Some(m) = pattern.find(t) {
                    let already = t[m.end()..].trim_start().starts_with('(');
                    if !already {
                        let sentence = lotse_text::sentence_spans(t)
                            .into_iter()
                            .find(|s| s.start <= m.start() && m.start() < s.end);
                        match sentence {
                            Some(s) if s.terminated => {
                                let explanation = entry.explanation.trim();
                                let stop = if explanation.ends_with(['.', '!', '?']) {
                                    ""
                                } else {
                                    "."
                                };
                                t.insert_str(
                                    s.end,
                                    &format!(" {} bedeutet: {explanation}{stop}", entry.term),
                                );
                            }
                            _ => t.insert_str(m.end(), &format!(" ({})", entry.explanation)),
                        }
                    }
                    explained.push(entry.term.clone());
                    break;
                }
            }
        }
        explained
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::check;

    #[test]
    fn abbreviations_and_symbols_are_written_out() {
        assert_eq!(
            expand(
                "Die Steuer wird gem. § 3 Abs. 2 i. d. R. jährlich erhoben, z.B. 165,00 € je Hund."
            ),
            "Die Steuer wird gemäß Paragraf 3 Absatz 2 in der Regel jährlich erhoben, zum Beispiel 165 Euro je Hund."
        );
        assert_eq!(
            expand("Geöffnet Mo.–Fr. 8 bis 12 Uhr"),
            "Geöffnet Montag bis Freitag 8 bis 12 Uhr"
        );
        assert_eq!(
            expand("Ermäßigung 50 % nach §§ 4"),
            "Ermäßigung 50 Prozent nach Paragrafen 4"
        );
        assert_eq!(expand("Kosten: 12,50 €"), "Kosten: 12,50 Euro");
        assert_eq!(
            expand("Ordnungswidrig i.S. von § 8 KAG handelt, wer i. S. v. § 2 baut."),
            "Ordnungswidrig im Sinne von Paragraf 8 KAG handelt, wer im Sinne von Paragraf 2 baut."
        );
        assert_eq!(
            expand("Hunde, Katzen usw. Alle Tiere."),
            "Hunde, Katzen und so weiter. Alle Tiere."
        );
        // no expansion inside words
        assert_eq!(expand("Die Absicht ist klar."), "Die Absicht ist klar.");
        assert_eq!(
            expand("nach § 3 Abs 2 Nr 1 EigBG"),
            "nach Paragraf 3 Absatz 2 Nummer 1 EigBG"
        );
        assert_eq!(expand("Absatz 2 und Nummern"), "Absatz 2 und Nummern");
        assert_eq!(
            expand("Auf sämtliche Gebühren wird ein Zuschlag von 100 v.H. erhoben. * zzgl. gesetzl. MwSt."),
            "Auf sämtliche Gebühren wird ein Zuschlag von 100 Prozent erhoben. * zuzüglich gesetzlicher Mehrwertsteuer"
        );
        assert_eq!(
            expand("Tische, Stühle u.ä. nach Ziff. 3 Buchst. b i.d.F. vom 1. Mai"),
            "Tische, Stühle und Ähnliches nach Ziffer 3 Buchstabe b in der Fassung vom 1. Mai"
        );
    }

    #[test]
    fn semicolons_become_sentence_ends_between_sentences() {
        assert_eq!(
            expand("Die Steuer wird jährlich erhoben; sie ist am 1. Juli fällig."),
            "Die Steuer wird jährlich erhoben. Sie ist am 1. Juli fällig."
        );
        assert_eq!(
            expand("Hunde; Katzen und Pferde"),
            "Hunde; Katzen und Pferde"
        );
    }

    #[test]
    fn the_pass_keeps_every_fact() {
        for t in [
            "Ein Zuschlag von 100 v. H. und 7 v.H. der Kosten zzgl. MwSt.",
            "Die Steuer beträgt gem. § 5 Abs. 2 jährlich 108,00 € für den ersten Hund; für jeden weiteren Hund 216,00 €.",
            "Sprechzeiten: Mo.–Fr. 8.30 bis 12 Uhr, Tel. 07164 808-0, z. B. am 1. Juli 2025.",
            "Ermäßigung um 50 % gem. §§ 4 und 5, Nr. 3, max. 2 Hunde.",
        ] {
            let out = expand(t);
            let c = check(t, &out);
            assert!(c.ok(), "{t}\n{out}\n{c:?}");
        }
    }

    #[test]
    fn glossary_explains_the_first_use_only() {
        let g = Glossary::default_terms();
        let mut texts = vec![
            "Nach der Satzung ist das so.".to_string(),
            "Die Satzung gilt ab sofort.".to_string(),
        ];
        let explained = g.explain_first_use(&mut texts);
        assert_eq!(explained, vec!["Satzung"]);
        assert_eq!(
            texts[0],
            "Nach der Satzung ist das so. Satzung bedeutet: eine Regel, die der Gemeinderat beschlossen hat."
        );
        assert_eq!(texts[1], "Die Satzung gilt ab sofort.");
    }

    #[test]
    fn glossary_explanation_follows_the_sentence_and_keeps_the_rest() {
        let g = Glossary::default_terms();
        // the sentence of first use ends mid-text: the explanation goes between the two
        let mut texts =
            vec!["Sie erhalten einen Bescheid vom 3. Mai.\nDann zahlen Sie.".to_string()];
        g.explain_first_use(&mut texts);
        assert_eq!(
            texts[0],
            "Sie erhalten einen Bescheid vom 3. Mai. Bescheid bedeutet: ein Brief vom Amt mit einer Entscheidung.\nDann zahlen Sie."
        );
        assert_eq!(lotse_text::sentences(&texts[0]).len(), 3);
        // a title without an end mark keeps the explanation in brackets
        let mut titles = vec!["Satzungen der Gemeinde".to_string()];
        g.explain_first_use(&mut titles);
        assert_eq!(
            titles[0],
            "Satzungen (eine Regel, die der Gemeinderat beschlossen hat) der Gemeinde"
        );
        // a term the text explains itself is not explained again
        let mut own = vec!["Die Satzung (Ortsrecht) gilt.".to_string()];
        g.explain_first_use(&mut own);
        assert_eq!(own[0], "Die Satzung (Ortsrecht) gilt.");
    }

    #[test]
    fn glossary_rejects_digits_in_explanations() {
        assert!(
            Glossary::new(vec![GlossaryEntry {
                term: "Frist".into(),
                explanation: "2 Wochen".into()
            }])
            .is_err()
        );
    }
}
