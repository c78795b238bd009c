//! The rewrite prompt (Einfache-Sprache rules in the user turn, which the default model
//! follows better than a system prompt) and the cleaning of the model's reply.

use lotse_inference::ChatMessage;

const RULES: &str = "Schreiben Sie den folgenden Text in Einfacher Sprache.\n\
Regeln:\n\
- Schreiben Sie kurze Sätze mit höchstens 10 Wörtern. Jeder Satz sagt nur eine Sache.\n\
- Schreiben Sie aktiv. Sprechen Sie die Leser mit „Sie“ an.\n\
- Nehmen Sie kurze, bekannte Wörter. Ersetzen oder erklären Sie schwere Wörter.\n\
- Übernehmen Sie alle Zahlen, Beträge, Daten, Uhrzeiten, Fristen, Telefonnummern, \
E-Mail-Adressen, Internetadressen und Paragrafen genau. Schreiben Sie keine neuen Zahlen.\n\
- Lassen Sie nichts Wichtiges weg. Erfinden Sie nichts dazu.\n\
- Geben Sie nur den neuen Text aus, ohne Überschrift und ohne Erklärung.\n";

/// Worked examples shown to the model before each unit (original, rewrite), in the style of a
/// town's statutes and notices. Own wording, about no real town: a rewrite that repeats one of
/// their sentences is rejected ([`copies_example`]). They come first and never change, so the
/// engine's prompt cache computes them once.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "Die Erlaubnis ist spätestens zwei Wochen vor Beginn der Veranstaltung schriftlich bei \
der Gemeindeverwaltung zu beantragen. Dem Antrag sind die zur Prüfung erforderlichen \
Unterlagen beizufügen.",
        "Sie brauchen eine Erlaubnis. Stellen Sie dafür einen Antrag bei der Gemeinde. \
Der Antrag muss schriftlich sein. Er muss spätestens zwei Wochen vor der Veranstaltung da sein. \
Legen Sie alle nötigen Unterlagen bei.",
    ),
    (
        "Die Benutzungsgebühr beträgt 25 Euro je angefangene Stunde und wird mit der Bekanntgabe \
des Gebührenbescheids an den Gebührenschuldner fällig.",
        "Für die Nutzung zahlen Sie eine Gebühr. Sie beträgt 25 Euro für jede angefangene Stunde. \
Sie bekommen darüber einen Bescheid. Dann müssen Sie die Gebühr zahlen.",
    ),
    (
        "Ordnungswidrig im Sinne von Paragraf 142 der Gemeindeordnung handelt, wer vorsätzlich \
oder fahrlässig entgegen Paragraf 4 Absatz 1 Abfälle außerhalb der dafür bestimmten Behälter \
ablagert.",
        "Werfen Sie Abfall nur in die richtigen Behälter. So steht es in Paragraf 4 Absatz 1. \
Wer das nicht tut, begeht eine Ordnungswidrigkeit. Das gilt auch, wenn es aus Versehen passiert. \
Das regelt Paragraf 142 der Gemeindeordnung.",
    ),
];

/// The messages for one unit: the rules, the worked examples as earlier turns, then the unit.
/// `strict` is the retry after a first attempt that lost a fact or read no easier: it asks
/// for split sentences and names `keep`, the unit's facts.
pub fn messages(text: &str, strict: bool, keep: &[String]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(EXAMPLES.len() * 2 + 1);
    for (i, (original, rewrite)) in EXAMPLES.iter().enumerate() {
        let intro = if i == 0 {
            RULES
        } else {
            "Schreiben Sie auch diesen Text in Einfacher Sprache.\n"
        };
        out.push(ChatMessage::user(format!("{intro}\nText:\n{original}\n")));
        out.push(ChatMessage::assistant(*rewrite));
    }
    let mut user = String::from(
        "Schreiben Sie auch diesen Text in Einfacher Sprache. Beachten Sie die Regeln.\n",
    );
    if strict {
        user.push_str("- Wichtig: Teilen Sie jeden langen Satz in zwei oder drei kurze Sätze.\n");
    }
    if strict && !keep.is_empty() {
        user.push_str(&format!(
            "- Wichtig: Diese Angaben müssen genau so im Text stehen: {}. Schreiben Sie keine anderen Zahlen.\n",
            keep.join("; ")
        ));
    }
    user.push_str("\nText:\n");
    user.push_str(text.trim());
    user.push('\n');
    out.push(ChatMessage::user(user));
    out
}

/// Whether `candidate` repeats a sentence of a worked example that `original` does not have
/// (a small model sometimes answers with the example instead of the text).
pub fn copies_example(original: &str, candidate: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let original = norm(original);
    let ours: Vec<String> = lotse_text::sentences(candidate)
        .iter()
        .map(|s| norm(s))
        .collect();
    EXAMPLES
        .iter()
        .flat_map(|(_, r)| lotse_text::sentences(r))
        .map(|s| norm(&s))
        .filter(|s| s.split(' ').count() >= 4 && !original.contains(s.as_str()))
        .any(|s| ours.contains(&s))
}

/// Lines a model puts before or after the text ("Hier ist der Text in Einfacher Sprache:").
fn is_preface(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    (l.ends_with(':') && l.split_whitespace().count() <= 10)
        && (l.contains("einfache") || l.contains("text") || l.starts_with("hier"))
        || l == "text:"
}

/// Sentences a model adds about its own work ("Es gibt keine weiteren Informationen.").
fn is_meta(sentence: &str) -> bool {
    let l = sentence.trim().to_lowercase();
    const STARTS: &[&str] = &[
        "es gibt keine weiteren",
        "es gibt keine zusätzlichen",
        "keine weiteren informationen",
        "dieser text",
        "der text ",
        "der obige text",
        "der originaltext",
        "ich habe",
        "ich hoffe",
        "hinweis:",
        "anmerkung:",
        "in einfacher sprache",
        "hier ist",
    ];
    STARTS.iter().any(|s| l.starts_with(s))
}

/// The rewrite as text: preface lines, sentences about the rewrite, markdown emphasis and
/// surrounding quotes removed.
pub fn clean(reply: &str) -> String {
    let lines: Vec<String> = reply
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_preface(l))
        .map(|l| {
            lotse_text::sentences(l)
                .into_iter()
                .filter(|s| !is_meta(s))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    let t = lines.join("\n").replace("**", "").replace("__", "");
    let t = t.trim();
    let t = t
        .strip_prefix(['"', '„', '“'])
        .and_then(|x| x.strip_suffix(['"', '“', '”']))
        .unwrap_or(t);
    t.trim().to_string()
}

/// Informal address ("du", "dein") that the Sie-Form rule forbids (see
/// [`lotse_text::du_form`]).
pub fn uses_du(text: &str) -> bool {
    lotse_text::du_form(text)
}

/// Whether `text` speaks in the first person ("wir", "ich"): a rewrite must not make the
/// assistant speak for the town where the original does not.
pub fn uses_first_person(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "wir"
                | "uns"
                | "unser"
                | "unsere"
                | "unseren"
                | "unserem"
                | "unserer"
                | "ich"
                | "mich"
                | "mir"
                | "mein"
                | "meine"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_person_is_found() {
        assert!(uses_first_person(
            "Ihm ist wichtig, dass wir die Aufgaben übernehmen."
        ));
        assert!(!uses_first_person(
            "Der Bürgermeister übernimmt die Aufgaben. Wirtschaft ist wichtig."
        ));
    }

    #[test]
    fn clean_drops_prefaces_and_quotes() {
        assert_eq!(
            clean("Hier ist der Text in Einfacher Sprache:\n\n„Sie zahlen 20 Euro.“\n"),
            "Sie zahlen 20 Euro."
        );
        assert_eq!(
            clean("**Sie** zahlen.\nDas Amt hilft."),
            "Sie zahlen.\nDas Amt hilft."
        );
        assert_eq!(
            clean("Sie sind Gesamtschuldner. Es gibt keine weiteren Informationen oder Zahlen."),
            "Sie sind Gesamtschuldner."
        );
    }

    #[test]
    fn du_forms_are_found() {
        assert!(uses_du("Dann zahlst du 20 Euro."));
        assert!(!uses_du("Dann zahlen Sie 20 Euro. Dubai ist weit."));
    }

    #[test]
    fn retry_names_the_facts() {
        let m = messages("Die Steuer beträgt 20 Euro.", true, &["20 Euro".into()]);
        let last = &m.last().unwrap().content;
        assert!(last.contains("genau so im Text stehen: 20 Euro"));
        assert!(last.contains("kurze Sätze"));
        assert!(last.ends_with("Die Steuer beträgt 20 Euro.\n"));
        let first = messages("Die Steuer beträgt 20 Euro.", false, &["20 Euro".into()]);
        assert!(!first.last().unwrap().content.contains("Wichtig:"));
        // the rules and examples are the same for every unit (one cached prompt prefix)
        assert_eq!(m[..m.len() - 1], first[..first.len() - 1]);
        assert!(m[0].content.starts_with(RULES));
    }

    #[test]
    fn the_examples_keep_their_facts_and_read_easier() {
        for (original, rewrite) in EXAMPLES {
            let c = crate::facts::check(original, rewrite);
            assert!(c.ok(), "{original}: {c:?}");
            let gain = crate::readability::readability(rewrite).flesch_amstad
                - crate::readability::readability(original).flesch_amstad;
            assert!(gain > 15.0, "{original}: gain {gain:.1}");
            // the other checks a rewrite must pass
            let ratio = rewrite.chars().count() as f64 / original.chars().count() as f64;
            assert!(
                (0.4..=2.5).contains(&ratio),
                "{original}: length ratio {ratio:.2}"
            );
            assert!(
                !uses_du(rewrite) && !uses_first_person(rewrite),
                "{rewrite}"
            );
            // nor does any of them add a term its original does not support
            let added = crate::content::unsupported_nouns(original, rewrite);
            assert!(added.is_empty(), "{rewrite}: {added:?}");
        }
    }

    #[test]
    fn a_copied_example_is_found() {
        let copy = format!("Die Steuer beträgt 20 Euro. {}", EXAMPLES[0].1);
        assert!(copies_example("Die Steuer beträgt 20 Euro.", &copy));
        assert!(!copies_example(
            "Die Steuer beträgt 20 Euro.",
            "Die Steuer kostet 20 Euro. Sie zahlen sie jedes Jahr."
        ));
        // a sentence the original itself has is no copy
        assert!(!copies_example(EXAMPLES[0].1, EXAMPLES[0].1));
    }
}
