//! The German words that carry a rule's meaning without being a fact: negations ("nicht",
//! "kein", "verboten", "ohne", "gebührenfrei"), limits ("nur", "mindestens", "höchstens",
//! "spätestens", "frühestens"), conditions ("wenn", "falls", "soweit", "sobald", "auf
//! Antrag", "auf Verlangen", "es sei denn", an opening "Bei ..."), that something is paid
//! ("auf eigene Kosten", "Gebührenschuldner"), and that a rule takes effect or is repealed
//! ("in Kraft", "außer Kraft"); and, built on them, whether a text says "no" (`denies`) and
//! whether a passage could back a "no" (`backs_denial`).
//!
//! Every function looks at one text. Comparing a rewrite with its original (which of these a
//! rewrite must keep) is `lotse_simplify::polarity`. All patterns are case-insensitive
//! (except where noted) and match whole words only: "Nichtschwimmer" is no "nicht".

use std::sync::LazyLock;

use regex::Regex;

use crate::pattern as re;

/// Negations: particles and pronouns, "ohne", verbs and adjectives of prohibition or
/// renunciation, adjectives in "-los"/"-frei" ("kostenlos" = "keine Kosten"), and "außer
/// Kraft" ("gilt nicht mehr": the default model turned "tritt die Geschäftsordnung vom 6. März
/// 1986 außer Kraft" into "tritt am 6. März 1986 in Kraft").
static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:außer\s+kraft|nicht|nichts|kein(?:e|en|em|er|es)?|nie|niemals|nirgends|nirgendwo|niemand(?:en|em)?|weder|ohne|verbot\w*|verbiet\w*|untersag\w*|unzulässig\w*|unerlaubt\w*|unbefugt\w*|unberechtigt\w*|abgesehen|abzusehen|absehen|verzicht\w*|unterlass\w*|\p{L}{4,}(?:los|frei)(?:e|en|em|er|es)?)\b",
    )
});

/// A limit ("nur", "höchstens", ...): the words that state it, and the forms a plain rewrite
/// may use for it.
#[derive(Debug)]
pub struct Limit {
    /// The limit's usual word ("nur", "höchstens", "in Kraft").
    pub name: &'static str,
    trigger: Regex,
    plain: Regex,
}

impl Limit {
    /// Whether `text` states this limit in one of its own words ("lediglich" for "nur").
    pub fn stated_in(&self, text: &str) -> bool {
        self.trigger.is_match(text)
    }

    /// Whether `text` has any form that may stand for this limit, including plain ones ("bis
    /// zum 1. Juli" for "spätestens am 1. Juli").
    pub fn any_form_in(&self, text: &str) -> bool {
        self.plain.is_match(text)
    }
}

static LIMITS: LazyLock<Vec<Limit>> = LazyLock::new(|| {
    [
        (
            "nur",
            "nur|ausschließlich|lediglich",
            "nur|ausschließlich|lediglich",
        ),
        (
            "mindestens",
            "mindestens|wenigstens",
            "mindestens|wenigstens",
        ),
        ("höchstens", "höchstens|maximal", "höchstens|maximal|bis zu"),
        // "Zahlen Sie bis zum 1. Juli" says the same as "spätestens am 1. Juli"
        ("spätestens", "spätestens", "spätestens|bis"),
        ("frühestens", "frühestens", "frühestens|erst"),
        // not a limit but kept the same way: that a rule takes effect ("tritt ... in Kraft"
        // became "Diese Satzung tritt am 1. Januar 2002." and "Die Änderungssätze tragen ...")
        (
            "in Kraft",
            r"in[\s-]+kraft|inkrafttret\w*",
            r"in[\s-]+kraft|inkrafttret\w*|gilt|gelten|gültig",
        ),
    ]
    .into_iter()
    .map(|(name, trigger, plain)| Limit {
        name,
        trigger: re(&format!(r"(?i)\b(?:{trigger})\b")),
        plain: re(&format!(r"(?i)\b(?:{plain})\b")),
    })
    .collect()
});

/// The limits a rule can state, in a fixed order: "nur", "mindestens", "höchstens",
/// "spätestens", "frühestens", and "in Kraft" (not a limit, but a rewrite must keep it the
/// same way).
pub fn limits() -> &'static [Limit] {
    &LIMITS
}

/// Conditions: conjunctions of condition and exception, and "auf Antrag" / "auf Verlangen".
/// "außer" only where it is not "außer Betrieb", "außer Kraft" and the like.
static CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:wenn|falls|sofern|soweit|solange|sobald|es sei denn|ausgenommen|außer(?:\s+(?:Betrieb|Kraft|Acht|Haus|Dienst|Landes|Stande|Atem|Reichweite|Sicht|Frage|Zweifel|Konkurrenz)\b)?|auf Antrag|auf Verlangen)\b",
    )
});

/// A sentence that opens with a circumstance: "Bei Gewitter ist ... untersagt", "Bei
/// Beschäftigung von Arbeitnehmern ist § 12 zu beachten", "Im Falle einer Erkrankung ...".
/// Case-sensitive: the capital marks the sentence's opening. The default model dropped such
/// openings and left a rule without its condition.
static CONDITION_OPENING: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|[.!?:]\s+|^\(\w{1,3}\)\s+|^\w{1,3}\)\s+)(?:Bei|Im\s+Fall(?:e)?)\b"));

/// Forms that may stand for a condition: the same words, and plain forms of "auf Antrag"
/// ("wenn Sie einen Antrag stellen", "beantragen") and "auf Verlangen" ("wenn die Gemeinde es
/// verlangt").
static CONDITION_FORM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:wenn|falls|sofern|soweit|solange|sobald|es sei denn|ausgenommen|außer|auf Antrag|auf Verlangen|antrag\w*|beantrag\w*|verlang\w*)\b",
    )
});

/// A circumstance anywhere in a sentence: "bei", "im Fall".
static CIRCUMSTANCE: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(?:bei|im fall\w*)\b"));

/// That something is paid: money, a cost, fee, contribution, tax or payment, in any compound
/// ("Gebührenschuldner", "Zahlungsverzug", "auf eigene Kosten"). The verb "zahlen" only in
/// lower case or as "Zahlen Sie": the noun "Zahlen" means numbers.
static PAYMENT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i:\b\w*(?:kosten|gebühr|zahlung|bezahl|geld|entgelt|beitrag|beiträg|steuer|vergütung|entschädigung|umlage|auslagen|tarif|preis|erstatt)\w*|\b(?:euro|cent)\b)|\bzahl(?:en|t|e|st)\b|\bZahlen Sie\b",
    )
});

/// Whether `text` says that something is paid (costs, a fee, tax, a payment, an amount in
/// euros).
pub fn mentions_payment(text: &str) -> bool {
    PAYMENT.is_match(text)
}

/// Conditions in `text`: "wenn", "falls", "sofern", "soweit", "solange", "sobald", "es sei
/// denn", "ausgenommen", "außer" (not in idioms such as "außer Kraft"), "auf Antrag", "auf
/// Verlangen", and sentences opening with "Bei ..." or "Im Fall ..." (see
/// [`condition_openings`]).
pub fn conditions(text: &str) -> usize {
    CONDITION
        .find_iter(text)
        // "außer" with a noun after it is an idiom ("außer Kraft"), not an exception
        .filter(|m| {
            !(m.as_str().to_lowercase().starts_with("außer") && m.as_str().len() > "außer".len())
        })
        .count()
        + condition_openings(text)
}

/// Sentences (or numbered items) of `text` that open with a circumstance: "Bei Gewitter
/// ...", "(2) Bei Regen ...", "Im Falle einer Erkrankung ...".
pub fn condition_openings(text: &str) -> usize {
    CONDITION_OPENING.find_iter(text).count()
}

/// Words in `text` that may stand for a condition: the conjunctions of [`conditions`] (here
/// "außer" in any use), and any form of "Antrag", "beantragen" or "verlangen" (the plain forms
/// of "auf Antrag" and "auf Verlangen").
pub fn condition_forms(text: &str) -> usize {
    CONDITION_FORM.find_iter(text).count()
}

/// "bei" and "im Fall" anywhere in `text` (a plain form of an opening "Bei ...", and also
/// "bei der Gemeinde").
pub fn circumstances(text: &str) -> usize {
    CIRCUMSTANCE.find_iter(text).count()
}

/// Negations in `text`; "weder ... noch" counts twice (it becomes two "nicht"). Adjectives in
/// "-los"/"-frei" count ("gebührenfrei"), except those naming a quality ("barrierefrei").
pub fn negations(text: &str) -> usize {
    NEGATION
        .find_iter(text)
        .filter(|m| !not_a_negation(m.as_str()))
        .map(|m| {
            if m.as_str().eq_ignore_ascii_case("weder") {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Words in "-frei"/"-los" that name a quality, not the absence of a duty, fee or right:
/// "barrierefrei" (accessible) may become "für alle gut nutzbar" without a "nicht".
fn not_a_negation(word: &str) -> bool {
    let lower = word.to_lowercase();
    ["barrierefrei", "einwandfrei", "zweifelsfrei", "reibungslos"]
        .iter()
        .any(|w| lower.starts_with(w))
}

/// Words that say "no": "nein", "nicht", "nichts", "kein" in every form, "keinerlei",
/// "keinesfalls", "keineswegs", "nie", "niemals", "nirgends", "nirgendwo", "niemand",
/// "weder", and prohibitions ("verboten", "Verbot", "untersagt", "unzulässig").
static DENIAL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:nein|nicht|nichts|kein(?:e|en|em|er|es)?|keinerlei|keinesfalls|keineswegs|nie|niemals|nirgends|nirgendwo|niemand(?:en|em)?|weder|verbot\w*|verbiet\w*|untersag\w*|unzulässig\w*)\b",
    )
});

/// What follows the "nicht" of "nicht nur ..., sondern auch ...", which affirms.
static NOT_ONLY_BUT: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)^\s+nur\b[^.!?]*\bsondern\b"));

/// Whether `text` says "no", "not" or "none": "Nein", "nicht", "nichts", "kein"/"keine"/
/// "keinen"/"keinem"/"keiner"/"keines" ("keine Pflicht"), "keinerlei", "keinesfalls",
/// "keineswegs", "nie", "niemals", "nirgends", "niemand", "weder", or a prohibition
/// ("verboten", "untersagt", "unzulässig").
///
/// Whole words, any case: "Nichtschwimmerbecken", "Kleinspielfeld" and "Niederschlag" say no
/// such thing. The "nicht" of "nicht nur ..., sondern ..." affirms and does not count.
/// Deliberately narrower than [`negations`]: "ohne Termin", "kostenlos" and "nur" state a fact
/// or a limit rather than answer "no" (a passage with them can still back a "no", see
/// [`backs_denial`]). Coarse: "Kein Problem" and "Nicht-Mitglieder" count.
pub fn denies(text: &str) -> bool {
    DENIAL.find_iter(text).any(|m| {
        !(m.as_str().eq_ignore_ascii_case("nicht") && NOT_ONLY_BUT.is_match(&text[m.end()..]))
    })
}

/// Limits, prohibitions, exceptions and requirements that can back a "no", beyond
/// [`negations`] and [`denies`]: the limits of [`limits`] but "in Kraft" ("nur",
/// "ausschließlich", "lediglich", "mindestens", "wenigstens", "höchstens", "maximal",
/// "spätestens", "frühestens"), "erst" ("erst ab 18 Jahren"), "ausgeschlossen",
/// "geschlossen", "gesperrt", "entfällt", "Ausfall", "fällt ... aus", "eingeschränkt",
/// "beschränkt", "begrenzt", "vorbehalten", "ausgenommen", "außer", "erforderlich",
/// "vorgeschrieben", "-pflichtig" ("genehmigungspflichtig") and "bedarf/bedürfen der (einer)
/// Erlaubnis/Genehmigung/Zustimmung/...".
static RESTRICTION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:nur|ausschließlich|lediglich|mindestens|wenigstens|höchstens|maximal|spätestens|frühestens|erst|ausgeschlossen\w*|geschlossen\w*|gesperrt\w*|entfällt|entfallen|ausfall\w*|f(?:ällt|allen)\s+(?:\S+\s+){0,4}aus|eingeschränkt\w*|beschränkt\w*|begrenzt\w*|vorbehalten|ausgenommen|außer|erforderlich\w*|vorgeschrieben\w*|\w+pflichtig\w*|(?:bedarf|bedürfen)\s+(?:der|einer)\s+(?:\w+\s+)?\w*(?:erlaubnis|genehmigung|zustimmung|bewilligung|zulassung|anmeldung|anzeige)\w*)\b",
    )
});

/// Whether a passage states something that could back a "no": a negation ("nicht", "kein",
/// "ohne", "gebührenfrei", "außer Kraft"; see [`negations`] and [`denies`]), a limit ("nur",
/// "ausschließlich", "höchstens", "mindestens", "spätestens", "erst ab"), a prohibition
/// ("verboten", "untersagt", "unzulässig", "nicht gestattet", "ausgeschlossen",
/// "geschlossen", "gesperrt"), an exception ("ausgenommen", "außer") or a requirement ("bedarf
/// der Genehmigung", "genehmigungspflichtig", "erforderlich").
///
/// Whole words, any case, and coarse by design: it tells a passage that could back a "no"
/// from one that cannot (opening hours, an address, an amount), not whether it does.
/// "barrierefrei" and "Kleinspielfeld" back nothing; "bis" (in every set of opening hours)
/// does not count either.
pub fn backs_denial(text: &str) -> bool {
    negations(text) > 0 || denies(text) || RESTRICTION.is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negations_are_counted() {
        assert_eq!(
            negations("Hunde dürfen weder in das Bad noch auf die Liegewiese mitgenommen werden."),
            2,
            "\"weder ... noch\" counts twice"
        );
        assert_eq!(negations("Das Abstellen von Fahrzeugen ist unzulässig."), 1);
        assert_eq!(negations("Sie dürfen keine Fahrzeuge abstellen."), 1);
        assert_eq!(negations("Die Benutzung ist gebührenfrei."), 1);
        assert_eq!(negations("Von einer Ehrung kann abgesehen werden."), 1);
        assert_eq!(negations("Die Satzung tritt außer Kraft."), 1);
        assert_eq!(negations("Die Anlage ist außer Betrieb."), 0);
        assert_eq!(negations("Das Nichtschwimmerbecken ist geöffnet."), 0);
        assert_eq!(
            negations("Auf dem Kleinspielfeld wird Fußball gespielt."),
            0
        );
    }

    #[test]
    fn an_accessible_website_is_no_negation() {
        assert_eq!(
            negations("Wir bemühen uns, diese Website barrierefrei zugänglich zu machen."),
            0
        );
        assert_eq!(negations("Der Ablauf war reibungslos und einwandfrei."), 0);
    }

    #[test]
    fn conditions_are_counted() {
        assert_eq!(conditions("Die Aufnahme erfolgt auf Antrag der Eltern."), 1);
        assert_eq!(
            conditions(
                "Eine Erstattung ist ausgeschlossen, es sei denn, die Veranstaltung fällt aus."
            ),
            1
        );
        assert_eq!(conditions("Die Satzung tritt außer Kraft."), 0);
        assert_eq!(
            conditions("Alle Hunde, außer Blindenhunde, kosten Steuer."),
            1
        );
        assert_eq!(
            conditions(
                "Kleinkläranlagen sind außer Betrieb zu setzen, sobald das Grundstück angeschlossen ist."
            ),
            1,
            "\"außer Betrieb\" is no condition"
        );
        // an opening circumstance is a condition, "bei" elsewhere is not
        let o = "Bei Beschäftigung von Arbeitnehmern ist § 12 zu beachten.";
        assert_eq!((conditions(o), condition_openings(o)), (1, 1));
        assert_eq!(conditions("(2) Bei Regen fällt der Markt aus."), 1);
        assert_eq!(conditions("Anträge sind bei der Gemeinde zu stellen."), 0);
        assert_eq!(
            condition_openings("Anträge sind bei der Gemeinde zu stellen."),
            0
        );
    }

    #[test]
    fn condition_forms_include_plain_ones() {
        assert_eq!(condition_forms("Die Eltern stellen einen Antrag."), 1);
        assert_eq!(
            condition_forms("Wenn die Gemeinde es verlangt, zeigen Sie ihn."),
            2
        );
        assert_eq!(condition_forms("Die Anlage ist außer Betrieb."), 1);
        assert_eq!(condition_forms("Melden Sie den Hund an."), 0);
        assert_eq!(circumstances("Melden Sie den Hund bei der Gemeinde an."), 1);
        assert_eq!(circumstances("Im Falle einer Erkrankung, bei Regen"), 2);
        assert_eq!(circumstances("Beiträge und Beihilfen"), 0);
    }

    #[test]
    fn limits_are_found_in_their_forms() {
        let named = |name: &str| limits().iter().find(|l| l.name == name).unwrap();
        let names: Vec<&str> = limits().iter().map(|l| l.name).collect();
        assert_eq!(
            names,
            [
                "nur",
                "mindestens",
                "höchstens",
                "spätestens",
                "frühestens",
                "in Kraft"
            ]
        );
        assert!(named("nur").stated_in("Zugang lediglich für Anwohner."));
        assert!(!named("nur").stated_in("Die Nutzung ist nummeriert."));
        assert!(named("höchstens").any_form_in("Es gibt bis zu 3 Plätze."));
        assert!(!named("höchstens").stated_in("Es gibt bis zu 3 Plätze."));
        assert!(named("spätestens").any_form_in("Zahlen Sie bis zum 1. Juli."));
        assert!(named("in Kraft").stated_in("Mit In-Kraft-Treten dieser Ordnung"));
        assert!(named("in Kraft").any_form_in("Die Satzung gilt ab Januar."));
    }

    #[test]
    fn payment_is_found_in_any_compound() {
        assert!(mentions_payment(
            "Sie sind auf eigene Kosten zu unterhalten."
        ));
        assert!(mentions_payment("Gebührenschuldner sind die Eltern."));
        assert!(mentions_payment("Die Eltern zahlen die Gebühr."));
        assert!(mentions_payment("Zahlen Sie die Reinigung."));
        assert!(mentions_payment("Das kostet 5 Euro."));
        // "Zahlen" are numbers, not a payment
        assert!(!mentions_payment(
            "Die Zahlen der Vollgeschosse werden gerundet."
        ));
        assert!(!mentions_payment("Der Hund ist anzumelden."));
    }

    #[test]
    fn denials_are_found() {
        for t in [
            "Nein.",
            "NEIN, das geht nicht.",
            "Das ist nicht erlaubt.",
            "Sie zahlen nichts.",
            "Es besteht keine Pflicht zur Anmeldung.",
            "Sie brauchen keinen Antrag.",
            "Dafür gibt es keinerlei Zuschuss.",
            "Das ist keinesfalls möglich.",
            "Das Grillen ist verboten.",
            "Im Park gilt ein Verbot für Hunde.",
            "Das Rauchen ist untersagt.",
            "Das Parken ist unzulässig.",
            "Weder Hunde noch Katzen.",
            "Das Bad war niemals geöffnet.",
            "Niemand muss sich anmelden.",
            // a "nicht nur" without "sondern" limits nothing: it still denies
            "Das gilt nicht nur heute.",
            // "sondern" alone does not excuse a "nicht"
            "Hunde sind nicht erlaubt, sondern nur Katzen.",
            // "sondern" in the next sentence does not make this "nicht nur" affirm
            "Das gilt nicht nur heute. Sondern?",
            // coarse, as documented: these count too
            "Kein Problem, das geht.",
            "Nicht-Mitglieder zahlen 5 Euro.",
        ] {
            assert!(denies(t), "{t}");
        }
    }

    #[test]
    fn lookalikes_and_affirmations_are_no_denial() {
        for t in [
            "Ja, Sie können den Antrag online stellen.",
            "Auf dem Kleinspielfeld dürfen Sie Fußball spielen.",
            "Das Nichtschwimmerbecken ist geöffnet.",
            "Der Niederschlag war gering.",
            "Frau Keinath berät Sie.",
            "Der Eintritt ist kostenlos.",
            "Sie können ohne Termin kommen.",
            "Der Zutritt ist nur mit Ausweis gestattet.",
            "Die Website ist barrierefrei.",
            "Das Angebot gilt nicht nur für Kinder, sondern auch für Erwachsene.",
            "Nicht nur Hunde, sondern auch Katzen sind willkommen.",
            "",
        ] {
            assert!(!denies(t), "{t}");
        }
    }

    #[test]
    fn restrictions_back_a_denial() {
        for t in [
            "Das ist nicht gestattet.",
            "Der Zutritt ist nur mit Ausweis möglich.",
            "Zugang ausschließlich für Anwohner.",
            "Die Ausleihe ist erst ab 18 Jahren möglich.",
            "Es dürfen höchstens zwei Hunde mitgebracht werden.",
            "Das Hallenbad ist montags geschlossen.",
            "Die Straße ist gesperrt.",
            "Der Markt fällt am Montag aus.",
            "Die Sprechstunde entfällt.",
            "Die Errichtung bedarf der Genehmigung der Gemeinde.",
            "Die Aufstellung bedarf einer schriftlichen Erlaubnis.",
            "Die Anlage ist genehmigungspflichtig.",
            "Eine Terminvereinbarung ist erforderlich.",
            "Eine Erstattung ist ausgeschlossen.",
            "Alle Hunde sind erlaubt, ausgenommen Kampfhunde.",
            "Das Rauchen ist untersagt.",
            "Das Parken ist verboten.",
            "Die Benutzung ist unzulässig.",
            "Sie können ohne Termin kommen.",
            "Die Benutzung ist gebührenfrei.",
            "Die Satzung tritt außer Kraft.",
            "Die Anlage ist außer Betrieb.",
            "Die Teilnehmerzahl ist begrenzt.",
        ] {
            assert!(backs_denial(t), "{t}");
        }
        // every limit but "in Kraft" backs a denial in its own word
        for l in limits().iter().filter(|l| l.name != "in Kraft") {
            assert!(
                backs_denial(&format!("Das gilt {} heute.", l.name)),
                "{}",
                l.name
            );
        }
    }

    #[test]
    fn plain_statements_back_no_denial() {
        for t in [
            "Die Website ist barrierefrei zugänglich.",
            "Das Kleinspielfeld ist täglich geöffnet.",
            "Das Nichtschwimmerbecken ist von 9 bis 20 Uhr geöffnet.",
            "Das Freibad hat von 9 bis 20 Uhr geöffnet.",
            "Die Hundesteuer beträgt 120 Euro im Jahr.",
            "Der Gemeinderat hat die Satzung beschlossen.",
            "Die Satzung tritt am 1. Januar in Kraft.",
            "Das Bürgerbüro ist in der Hauptstraße 1.",
            "Die Erstellung ist einfach.",
            "",
        ] {
            assert!(!backs_denial(t), "{t}");
        }
    }
}
