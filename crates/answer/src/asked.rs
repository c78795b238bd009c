//! What kind of answer a question wants, and where a text states such an answer.
//!
//! A citizen who asks "Was kostet ...?" needs an amount, "Bis wann ...?" a date or time,
//! "Wie lange ...?" a period, "Wer ...?"/"Wo ...?" an office or place, "Darf ich ...?" a yes or
//! no with its condition. The kind steers which sentences of a page become evidence (those that
//! hold such a fact come first) and what the answer check looks for: when the key sentence of
//! the evidence states a fact of the asked kind, the answer must state it too.
//!
//! The German wording is this module's own (question words of the municipal kind); the
//! patterns are deliberately narrow: a fact that is not recognised only costs a preference,
//! a wrongly recognised one could make a right answer look wrong.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The kind of fact a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskedKind {
    /// An amount of money, a rate or a percentage ("Was kostet ...", "Wie hoch ...").
    Amount,
    /// A date, a time of day or a weekday ("Wann ...", "Bis wann ...").
    DateTime,
    /// A duration, a deadline in days or an age ("Wie lange ...", "Ab welchem Alter ...").
    Period,
    /// Who decides or where something happens ("Wer ...", "Wo ...", "An wen ...").
    Office,
    /// A yes or no, with its condition ("Darf ich ...", "Muss ich ...", "Gibt es ...").
    YesNo,
    /// Anything else ("Wie beantrage ich ...", "Was ist ...").
    Other,
}

impl AskedKind {
    pub const ALL: [AskedKind; 6] = [
        AskedKind::Amount,
        AskedKind::DateTime,
        AskedKind::Period,
        AskedKind::Office,
        AskedKind::YesNo,
        AskedKind::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AskedKind::Amount => "amount",
            AskedKind::DateTime => "date_time",
            AskedKind::Period => "period",
            AskedKind::Office => "office",
            AskedKind::YesNo => "yes_no",
            AskedKind::Other => "other",
        }
    }
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("static pattern")
}

// Question wording, matched on the lowercased question. Order matters: "bis zu welchem
// Betrag" is an amount although it starts with "bis"; "ab welchem Alter" is an age (a period).
static Q_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:wie ?viel\w*|was kostet|was kosten|kostet|kosten|wie hoch|welche[rnms]? (?:betrag|gebühr\w*|preis\w*|beitrag|satz|hebesatz|wertgrenze\w*|summe)|bis zu welchem betrag|wieviel|höhe der|gebühr\w*|entgelt\w*|stammkapital|hebes[aä]tz\w*|wertgrenze\w*|sitzungsgeld|entschädig\w*|vergütung\w*|steuer\b)")
});
static Q_DATETIME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:bis wann|ab wann|seit wann|wann|um wie ?viel uhr|uhrzeit\w*|\w*zeiten|öffnungszeit\w*|geöffnet|zugänglich|tagt|\w*ruhe|abends|nachts|morgens|mittags|(?:mon|diens|donners|frei|sams|sonn|feier|werk)tag\w*|mittwoch\w*|wochenende)\b")
});
static Q_PERIOD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:wie lange|wie oft|wie viele (?:tage|wochen|monate|jahre|stunden)|welche frist|frist\w*|ab welchem alter|welches alter|wie alt|mindestalter|höchstalter|zeitliche|berechnet)\b")
});
static Q_OFFICE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:wer|wo|wohin|woher|an wen|bei wem|von wem|welche (?:stelle|behörde)|welches amt)\b|\b(?:zuständig\w*|wer\b|an wen|bei wem|wo (?:kann|muss|darf|soll|bekomme|erhalte|finde))")
});
static Q_YESNO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:darf|dürfen|muss|müssen|kann|können|gibt es|gilt|gelten|werden|wird|bekomme|bekommt|erhalte|erhält|ist|sind|brauche|braucht|habe|hat|haben|besteht|bin|soll|sollte|sollen)\b")
});

/// The kind of fact `question` asks for, from its wording (German; other languages are
/// [`AskedKind::Other`] unless they use the same words).
pub fn classify(question: &str) -> AskedKind {
    let q = question.trim().to_lowercase();
    let q = q.trim_start_matches(|c: char| !c.is_alphanumeric());
    // the question word decides first; a yes/no question about an amount ("Gibt es eine
    // Saisonkarte?") is still answered best with the amount
    if Q_PERIOD.is_match(q) && (q.starts_with("wie lange") || q.starts_with("ab welchem alter") || q.starts_with("wie oft") || q.contains("frist") || q.starts_with("wie alt")) {
        return AskedKind::Period;
    }
    if q.starts_with("wann") || q.starts_with("bis wann") || q.starts_with("ab wann") || q.starts_with("seit wann") || q.starts_with("um wie") {
        return AskedKind::DateTime;
    }
    if q.starts_with("wer ") || q.starts_with("wo ") || q.starts_with("wohin") || q.starts_with("an wen") || q.starts_with("bei wem") || q.starts_with("von wem") {
        return AskedKind::Office;
    }
    if q.starts_with("wie viel") || q.starts_with("wieviel") || q.starts_with("was kostet") || q.starts_with("was kosten") || q.starts_with("wie hoch") || q.starts_with("bis zu welchem betrag") {
        return AskedKind::Amount;
    }
    if Q_AMOUNT.is_match(q) && !Q_YESNO.is_match(q) {
        return AskedKind::Amount;
    }
    if Q_PERIOD.is_match(q) && !Q_YESNO.is_match(q) {
        return AskedKind::Period;
    }
    if Q_YESNO.is_match(q) {
        return AskedKind::YesNo;
    }
    if Q_DATETIME.is_match(q) {
        return AskedKind::DateTime;
    }
    if Q_OFFICE.is_match(q) {
        return AskedKind::Office;
    }
    AskedKind::Other
}

// Facts in page text, matched on the original text (case-insensitive where it says so).
const NUM: &str = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:,\d+)?";
static F_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:(?:{NUM})\s?(?:,-|,–)?\s?(?:€|euro\b|eur\b|cent\b|ct\b|%|prozent\b|v\.\s?h\.|vom hundert\b|von hundert\b)|(?:€|eur\b)\s?(?:{NUM}))"
    ))
});
static F_TIME: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)(?:\b\d{{1,2}}(?:[.:]\d{{2}})?\s?uhr\b|\b\d{{1,2}}[.:]\d{{2}}\s?(?:bis|-|–)\s?\d{{1,2}}[.:]\d{{2}}|\b\d{{1,2}}\.\s?(?:januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember)\b|\b\d{{1,2}}\.\d{{1,2}}\.(?:\d{{2,4}})?|\b(?:montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|werktag|feiertag)\w*|\b(?:januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember)\b)"
    ))
});
static F_PERIOD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:\d+(?:,\d+)?|eine[nmr]?|ein|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|elf|zwölf|vierzehn|achtzehn|halbe[nr]?|viertel)\s+(?:volle[nr]?\s+|angefangene[nr]?\s+|halbe[nr]?\s+)?(?:sekunde|minute|stunde|tag|woche|monat|jahr|lebensjahr|werktag|kalendertag)\w*|\b(?:jährlich|monatlich|wöchentlich|täglich|zweimal|dreimal|einmal)\b|\b(?:alter von|lebensjahr\w*)\b")
});
static F_OFFICE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:\w*(?:amt|ämter|ausschuss|ausschüsse|behörde|verwaltung|stelle|meister|meisterin|leiter|leiterin|leitung|wart|wartin|rat|räte|rätin|kommandant\w*|beauftragte\w*|kasse|büro|rathaus|gericht|versammlung|träger)|tasso|findefix)\b")
});
static F_YESNO: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:nicht|kein\w*|nur|erst|ausschließlich|verboten|untersagt|unzulässig|zulässig|gestattet|erlaubt|berechtigt|verpflichtet|pflicht\w*|muss|müssen|darf|dürfen|ist\s+\w+\s+zu|sind\s+\w+\s+zu|bedarf|anspruch|ausgeschlossen|frei|befreit|ab\s+\d+|bis\s+\d+|ohne)\b")
});

/// The facts of `kind` a text states, as they are written (for the answer check and for
/// ranking evidence). [`AskedKind::Other`] has none.
pub fn facts(kind: AskedKind, text: &str) -> Vec<String> {
    let re: &Regex = match kind {
        AskedKind::Amount => &F_AMOUNT,
        AskedKind::DateTime => &F_TIME,
        AskedKind::Period => &F_PERIOD,
        AskedKind::Office => &F_OFFICE,
        AskedKind::YesNo => &F_YESNO,
        AskedKind::Other => return Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for m in re.find_iter(text) {
        let s = m.as_str().trim().to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The kinds of fact worth preferring for a question: its own kind first (possibly
/// [`AskedKind::Other`]), then the kinds
/// its words point to ("Darf ich am Sonntag ...?" is a yes/no about a time; "Gibt es eine
/// Saisonkarte?" one about an amount).
pub fn wanted(question: &str) -> Vec<AskedKind> {
    let kind = classify(question);
    let q = question.trim().to_lowercase();
    let mut out = vec![kind];
    let mut also = |k: AskedKind, yes: bool| {
        if yes && !out.contains(&k) {
            out.push(k);
        }
    };
    let word = |w: &str| q.split(|c: char| !c.is_alphanumeric()).any(|x| x == w);
    also(AskedKind::Amount, Q_AMOUNT.is_match(&q) || q.contains("erstatt"));
    also(AskedKind::DateTime, Q_DATETIME.is_match(&q));
    // "Wann endet ...?" is often answered by an age or a period
    also(AskedKind::Period, Q_PERIOD.is_match(&q) || word("alter") || word("alleine") || word("allein") || kind == AskedKind::DateTime);
    out
}

/// Whether a text states a fact of `kind`.
pub fn holds(kind: AskedKind, text: &str) -> bool {
    kind != AskedKind::Other && !facts(kind, text).is_empty()
}

/// The numbers of a text, normalised for comparison: `1.000,00` -> `1000`, `15,50` -> `15.5`,
/// `8.00` (a time) -> `8`.
pub fn numbers(text: &str) -> Vec<String> {
    static N: LazyLock<Regex> =
        LazyLock::new(|| re(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+[.:]\d{1,2}\b|\d+(?:,\d+)?"));
    N.find_iter(text).map(|m| normalise_number(m.as_str())).collect()
}

fn normalise_number(n: &str) -> String {
    // German: '.' groups thousands (1.000), ',' is the decimal mark; "8.00" (a time) and
    // "8:00" are 8 o'clock: both read as 8 (and 8.30 as 8.3)
    let n = &n.replace(':', ".");
    let s = if n.contains(',') {
        n.replace('.', "").replace(',', ".")
    } else if n.matches('.').count() == 1 && n.split('.').nth(1).is_some_and(|d| d.len() != 3) {
        n.to_string()
    } else {
        n.replace('.', "")
    };
    match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.trim_start_matches('0').to_string().chars().next().map_or("0".into(), |_| int.trim_start_matches('0').to_string())
            } else {
                format!("{}.{frac}", if int.trim_start_matches('0').is_empty() { "0" } else { int.trim_start_matches('0') })
            }
        }
        None => {
            let t = s.trim_start_matches('0');
            if t.is_empty() { "0".into() } else { t.to_string() }
        }
    }
}

/// Whether `answer` states at least one of `facts` (numbers compared as numbers, words
/// case-insensitively, a plural or inflected form of an office counting).
pub fn states_any(answer: &str, facts: &[String]) -> bool {
    // citation markers are no figures: "[1]" must not stand for "1. Juli"
    let answer = crate::check::strip_markers(answer);
    let lower = answer.to_lowercase();
    let answer_numbers = numbers(&answer);
    facts.iter().any(|f| {
        let fnums = numbers(f);
        if !fnums.is_empty() {
            // the unit or month too, where the fact has one ("4 Wochen" is not "4 Monate")
            let unit: Vec<String> = f
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.chars().count() >= 3)
                .map(|w| w.to_lowercase().chars().take(4).collect())
                .collect();
            let with_euro = lower.replace('€', " euro ");
            fnums.iter().all(|n| answer_numbers.contains(n)) && unit.iter().all(|u| with_euro.contains(u.as_str()))
        } else {
            let f = f.to_lowercase();
            let stem: String = f.chars().take(f.chars().count().saturating_sub(1).max(4)).collect();
            lower.contains(&f) || (stem.chars().count() >= 4 && lower.contains(&stem))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AskedKind::*;

    #[test]
    fn questions_are_classified_by_their_wording() {
        let cases = [
            ("Was kostet der Eintritt ins Freibad?", Amount),
            ("Wie hoch ist die Grundsteuer B in Bad Boll?", Amount),
            ("Wie viel Sitzungsgeld bekommt ein Gemeinderat?", Amount),
            ("Bis zu welchem Betrag kann der Bürgermeister selbst entscheiden?", Amount),
            ("Bis wann muss der Gehweg geräumt sein?", DateTime),
            ("Wann tagt der Gemeinderat?", DateTime),
            ("Wie lange kann ich Bücher ausleihen?", Period),
            ("Ab welchem Alter dürfen Kinder die Bücherei alleine nutzen?", Period),
            ("Wer übt das Hausrecht aus?", Office),
            ("Wo darf ich Plakate aufhängen?", Office),
            ("Darf ich am Sonntag Glas in den Container werfen?", YesNo),
            ("Gibt es einen Rechtsanspruch auf eine Ehrung?", YesNo),
            ("Wie beantrage ich eine Reservierung?", Other),
            ("Was ist eine Vorausleistung?", Other),
        ];
        assert_eq!(wanted("Was muss ich als Hundehalter beachten?"), vec![Other]);
        assert_eq!(wanted("Darf ich am Sonntag Glas einwerfen?"), vec![YesNo, DateTime]);
        for (q, k) in cases {
            assert_eq!(classify(q), k, "{q}");
        }
    }

    #[test]
    fn facts_of_each_kind_are_found_and_others_are_not() {
        assert_eq!(facts(Amount, "Der Satz beträgt 15,00 € je Stunde."), vec!["15,00 €"]);
        assert_eq!(facts(Amount, "| Kommandant | 1.000,00 €/Jahr |"), vec!["1.000,00 €"]);
        assert_eq!(facts(Amount, "Grundsteuer B auf 270 v. H."), vec!["270 v. H."]);
        assert!(facts(Amount, "nach § 12 Abs. 3 der Satzung vom 1. Januar").is_empty());
        assert_eq!(facts(DateTime, "von 22.00 Uhr bis 7.00 Uhr"), vec!["22.00 Uhr", "7.00 Uhr"]);
        assert_eq!(facts(DateTime, "bis zum 1. Dezember eines Jahres"), vec!["1. Dezember"]);
        assert!(facts(DateTime, "Die Gebühr beträgt 5 Euro.").is_empty());
        assert_eq!(facts(Period, "Die Leihfrist beträgt 4 Wochen."), vec!["4 Wochen"]);
        assert_eq!(facts(Period, "je angefangene halbe Stunde"), vec!["halbe Stunde"]);
        assert!(facts(Office, "Das Hausrecht übt der Hausmeister aus.").contains(&"Hausmeister".to_string()));
        assert!(facts(Office, "Die Gebühr beträgt 5 Euro.").is_empty());
        assert!(holds(YesNo, "Ein Rechtsanspruch besteht nicht."));
        assert!(!holds(Other, "Ein Rechtsanspruch besteht nicht."));
    }

    #[test]
    fn numbers_compare_as_numbers() {
        assert_eq!(numbers("1.000,00 €"), vec!["1000"]);
        assert_eq!(numbers("15,50 Euro"), vec!["15.5"]);
        assert_eq!(numbers("8.00 Uhr"), vec!["8"]);
        assert_eq!(numbers("25.000 Euro"), vec!["25000"]);
        assert!(states_any("Sie erhalten 15 Euro pro Stunde [1].", &["15,00 €".into()]));
        assert!(!states_any("Sie erhalten 150 Euro pro Stunde [1].", &["15,00 €".into()]));
        assert!(states_any("Das Hausrecht hat der Hausmeister [1].", &["Hausmeister".into()]));
        assert!(!states_any("Das Hausrecht hat die Gemeinde [1].", &["Hausmeister".into()]));
        // a citation marker is no date, and a period needs its unit
        assert!(!states_any("Die Steuer ist jährlich fällig [1].", &["1. Juli".into()]));
        assert!(!states_any("Die Leihfrist beträgt 4 Monate [1].", &["4 Wochen".into()]));
        assert!(states_any("Die Leihfrist beträgt 4 Wochen [1].", &["4 Wochen".into()]));
        assert!(states_any("Der Eintritt kostet 5 Euro [1].", &["5,00 €".into()]));
    }
}
