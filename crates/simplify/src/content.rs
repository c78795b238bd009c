//! Content a rewrite adds: nouns that its original does not support. A small model pads its
//! rewrite with sentences in the style of the worked examples ("So steht es in der
//! Gemeindeordnung.") or swaps a term for an unrelated one; the fact check cannot see that,
//! because no number changes.
//!
//! A noun of the rewrite is supported when the original has it (inflection aside), when the
//! original has both its beginning and its end (a compound of the original's parts) or most
//! of its beginning (a derivation: "ordnungswidrig" -> "Ordnungswidrigkeit"), or when
//! it is a word of the plain vocabulary that rewrites use to explain ([`PLAIN_NOUNS`]).
//!
//! Citations are stricter ([`without_unfounded_citations`]): the worked examples end with
//! "So steht es in Paragraf 4 Absatz 1.", and the model imitates that where its original
//! cites nothing, most often as "So steht es in der Regel." ("in der Regel" means
//! "usually": a hedge the rule does not have). Such a sentence is dropped from the rewrite.

/// Plain words a rewrite may use without the original having them (stems, lower case).
const PLAIN_NOUNS: &[&str] = &[
    "amt", "ämter", "stadt", "gemeinde", "verwaltung", "rathaus", "geld", "euro", "cent",
    "antrag", "anträge", "brief", "gebühr", "frist", "tag", "woche", "monat", "jahr", "uhr",
    "stunde", "minute", "datum", "person", "leute", "mensch", "kind", "eltern", "familie",
    "hilfe", "frage", "information", "sache", "ding", "teil", "fall", "fälle", "beispiel",
    "zeit", "ort", "platz", "haus", "wohnung", "straße", "recht", "pflicht", "strafe",
    "erlaubnis", "termin", "formular", "nummer", "telefon", "internet", "seite", "liste",
    "grund", "gründe", "art", "weise", "ende", "anfang", "beginn", "höhe", "betrag", "kosten",
    "regel", "schluss", "bürger", "einwohner", "mitarbeiter", "büro", "adresse", "post",
    "e-mail", "mail", "unterlagen", "papier", "schreiben", "nachweis", "ausnahme", "möglichkeit",
    "bedingung", "voraussetzung", "entscheidung", "genehmigung", "prozent", "hälfte", "menge",
    "versehen", "absicht", "absatz", "paragraf", "paragrafen", "satz", "ziffer", "abschnitt", "anlage",
];

/// Inflection endings stripped before looking a noun up.
const ENDINGS: &[&str] = &["en", "er", "es", "e", "n", "s"];

fn stem(word: &str) -> &str {
    for e in ENDINGS {
        if let Some(s) = word.strip_suffix(e) {
            if s.chars().count() >= 4 {
                return s;
            }
        }
    }
    word
}

fn prefix(word: &str, n: usize) -> &str {
    word.char_indices().nth(n).map_or(word, |(i, _)| &word[..i])
}

fn suffix(word: &str, n: usize) -> &str {
    let len = word.chars().count();
    if len <= n {
        return word;
    }
    word.char_indices().nth(len - n).map_or(word, |(i, _)| &word[i..])
}

/// Whether the (lower-case) original supports the (lower-case) noun.
fn supported(original: &str, noun: &str) -> bool {
    let s = stem(noun);
    original.contains(s)
        || PLAIN_NOUNS.iter().any(|p| s.starts_with(stem(&fold(p))) && s.chars().count() <= p.chars().count() + 2)
        || (noun.chars().count() >= 10 && original.contains(prefix(noun, 5)) && original.contains(stem(suffix(noun, 6))))
        // a derivation of an original word ("ordnungswidrig" -> "Ordnungswidrigkeit")
        || original.contains(prefix(noun, (noun.chars().count() * 7).div_ceil(10).max(6)))
}

/// Lower case without umlauts ("Abfälle" and "Abfall" share a stem).
fn fold(text: &str) -> String {
    text.to_lowercase().replace('ä', "a").replace('ö', "o").replace('ü', "u")
}

/// The capitalised pronouns of the Sie-Form, which the rules ask for: no nouns.
const SIE_FORMS: &[&str] = &["Ihnen", "Ihre", "Ihrem", "Ihren", "Ihrer", "Ihres"];

/// Nouns of `candidate` that `original` does not support, in order, each once. Nouns are
/// capitalised words of four letters or more that do not begin a sentence or follow a colon
/// ("Das gilt: Wenn …"), other than the Sie-Form's pronouns.
pub fn unsupported_nouns(original: &str, candidate: &str) -> Vec<String> {
    let o = fold(original);
    let mut out: Vec<String> = Vec::new();
    for clause in lotse_text::sentences(candidate)
        .iter()
        .flat_map(|s| s.split(':').map(str::to_string).collect::<Vec<_>>())
    {
        let words: Vec<&str> = clause
            .split(|c: char| !(c.is_alphabetic() || c == '-'))
            .filter(|w| !w.is_empty())
            .collect();
        for w in words.iter().skip(1) {
            let w = w.trim_matches('-');
            if w.chars().count() < 4
                || !w.chars().next().is_some_and(char::is_uppercase)
                || SIE_FORMS.contains(&w)
            {
                continue;
            }
            if !supported(&o, &fold(w)) && !out.contains(&w.to_string()) {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// A sentence of four or more words that `candidate` says twice or more and `original` does
/// not (a small model caught in a loop: "Sie dient dem Schutz von freilebenden Katzen." three
/// times).
pub fn repeated_sentence(original: &str, candidate: &str) -> Option<String> {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let count = |text: &str, s: &str| {
        lotse_text::sentences(text)
            .iter()
            .filter(|x| norm(x) == s)
            .count()
    };
    lotse_text::sentences(candidate)
        .into_iter()
        .filter(|s| lotse_text::words(s).len() >= 4)
        .find(|s| {
            let n = norm(s);
            count(candidate, &n) > 1 && count(original, &n) < 2
        })
}

/// How a citation sentence begins (folded, see [`fold`]).
const CITATION_LEADS: &[&str] = &[
    "so steht es in ",
    "so steht es im ",
    "das steht in ",
    "das steht im ",
    "so regelt es ",
    "das regelt ",
    "das regeln ",
    "dies steht in ",
    "dies steht im ",
    "dies regelt ",
];

/// Whether the citation `sentence` (folded) names only what the (folded) original has:
/// every noun and abbreviation it cites begins a word of the original, and "in der Regel"
/// only where the original says it too.
fn citation_founded(original: &str, sentence: &str) -> bool {
    if sentence.contains("in der regel") && !original.contains("in der regel") {
        return false;
    }
    let starts: Vec<&str> = original
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    CITATION_LEADS
        .iter()
        .find_map(|lead| sentence.strip_prefix(lead))
        .unwrap_or(sentence)
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| w.chars().count() >= 2 && w.chars().all(char::is_alphabetic))
        .filter(|w| !matches!(*w, "der" | "die" | "das" | "dem" | "den" | "des" | "und" | "oder" | "bis" | "nummer"))
        .all(|w| {
            let s = stem(w);
            starts.iter().any(|o| o.starts_with(s))
        })
}

/// `candidate` without the sentences that cite something `original` does not cite ("So steht
/// es in der Regel.", "Das regelt die Gemeindeordnung." for an original without either);
/// line breaks are kept. The words of a citation must begin words of the original: the plain
/// vocabulary of [`unsupported_nouns`] does not count here.
pub fn without_unfounded_citations(original: &str, candidate: &str) -> String {
    let o = fold(original);
    candidate
        .split('\n')
        .map(|line| {
            lotse_text::sentences(line)
                .into_iter()
                .filter(|s| {
                    let f = fold(s);
                    !CITATION_LEADS.iter().any(|l| f.starts_with(l)) || citation_founded(&o, &f)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::{unsupported_nouns, without_unfounded_citations};

    #[test]
    fn a_sentence_said_again_and_again_is_found() {
        let o = "(1) Diese Verordnung dient dem Schutz von freilebenden Katzen vor erheblichen Schmerzen.";
        let c = "(1) Diese Verordnung schützt Katzen. Sie dient dem Schutz von Katzen. Sie dient dem Schutz von Katzen.";
        assert_eq!(super::repeated_sentence(o, c).as_deref(), Some("Sie dient dem Schutz von Katzen."));
        assert_eq!(super::repeated_sentence(o, "Sie schützt Katzen. Sie schützt Katzen vor Schmerzen."), None);
        // short sentences and repetitions the original has too are no loop
        assert_eq!(super::repeated_sentence(o, "Das gilt. Das gilt."), None);
        let o = "Die Gebühr beträgt 5 Euro je Stunde. Die Gebühr beträgt 5 Euro je Stunde.";
        assert_eq!(super::repeated_sentence(o, o), None);
    }

    #[test]
    fn citations_the_original_does_not_make_are_dropped() {
        let o = "(3) Zerkleinerungsgeräte für Küchenabfälle dürfen nicht an Grundstücksentwässerungsanlagen angeschlossen werden.";
        assert_eq!(
            without_unfounded_citations(o, "(3) Zerkleinerungsgeräte für Abfall dürfen nicht angeschlossen werden. So steht es in der Regel."),
            "(3) Zerkleinerungsgeräte für Abfall dürfen nicht angeschlossen werden."
        );
        // line structure is kept; an empty line disappears
        assert_eq!(
            without_unfounded_citations(o, "Erstens.\nDas regelt die Gemeindeordnung.\nZweitens."),
            "Erstens.\nZweitens."
        );
        // what the original cites stays, inflected or not
        let o = "Der Abwasserbeitrag wird in Teilbeträgen (Paragraf 33) erhoben, Absätze 1 bis 3 gelten nach Paragraf 46 Absatz 4 Satz 2 WG.";
        for c in [
            "Das wird in Teilbeträgen gemacht. So steht es in Paragraf 33.",
            "Das gilt. So steht es in Absätzen 1 bis 3.",
            "Das gilt. Das regelt Paragraf 46 Absatz 4 Satz 2 WG.",
        ] {
            assert_eq!(without_unfounded_citations(o, c), c);
        }
        // "in der Regel" stays where the original hedges too
        let o = "Die Gebühr wird in der Regel im Voraus erhoben.";
        let c = "Sie zahlen die Gebühr vorher. So steht es in der Regel.";
        assert_eq!(without_unfounded_citations(o, c), c);
        // an abbreviation the original does not have
        assert_eq!(
            without_unfounded_citations("Paragraf 5 gilt für alle.", "Paragraf 5 gilt für alle. Das regelt das KAG."),
            "Paragraf 5 gilt für alle."
        );
    }

    #[test]
    fn padding_in_the_examples_style_is_found() {
        let o = "Die Gemeinde Boll ehrt auch besonders herausragende Leistungen auf kulturellem und sozial-caritativem Gebiet von Einzelpersonen oder Vereinen.";
        assert_eq!(
            unsupported_nouns(o, "Die Gemeinde Boll ehrt besonders Leistungen von Einzelpersonen oder Vereinen. So steht es in der Gemeindeordnung."),
            vec!["Gemeindeordnung"]
        );
        let o = "Von einer Ehrung kann abgesehen werden, wenn besondere Gründe für eine Ausnahme von einer Ehrung sprechen.";
        assert!(unsupported_nouns(o, "Wenn es besondere Gründe gibt, gibt es keine Ehrung.").is_empty());
    }

    #[test]
    fn inflections_compounds_and_plain_words_are_supported() {
        let o = "Die Benutzungsgebühren sind bei der Gemeindekasse einzuzahlen; Anträge auf Ermäßigung sind schriftlich zu stellen.";
        let c = "Sie zahlen die Gebühren an die Kasse der Gemeinde. Sie können eine Ermäßigung beantragen. Schreiben Sie dafür einen Brief an das Amt.";
        assert_eq!(unsupported_nouns(o, c), Vec::<String>::new());
        // a new term that is no plain word
        assert_eq!(unsupported_nouns(o, "Sie zahlen die Gebühr an das Finanzamt."), vec!["Finanzamt"]);
        // the Sie-Form and a clause after a colon add no term; a new noun after a colon does
        let c = "Die Kasse schickt Ihnen Ihre Gebühren. Das gilt: Wenn Sie zahlen, ist es gut.";
        assert_eq!(unsupported_nouns(o, c), Vec::<String>::new());
        assert_eq!(unsupported_nouns(o, "Das gilt: Sie zahlen an das Finanzamt."), vec!["Finanzamt"]);
    }
}

