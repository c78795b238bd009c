//! The rewrite prompt (Einfache-Sprache rules in the user turn, which the default model
//! follows better than a system prompt) and the cleaning of the model's reply.

use lotse_inference::ChatMessage;

const RULES: &str = "Schreiben Sie den folgenden Text in Einfacher Sprache.\n\
Regeln:\n\
- Schreiben Sie kurze Sätze mit höchstens 12 Wörtern. Jeder Satz sagt nur eine Sache.\n\
- Schreiben Sie aktiv. Sprechen Sie die Leser mit „Sie“ an.\n\
- Ersetzen oder erklären Sie schwere Wörter.\n\
- Übernehmen Sie alle Zahlen, Beträge, Daten, Uhrzeiten, Fristen, Telefonnummern, \
E-Mail-Adressen, Internetadressen und Paragrafen genau. Schreiben Sie keine neuen Zahlen.\n\
- Lassen Sie nichts Wichtiges weg. Erfinden Sie nichts dazu.\n\
- Geben Sie nur den neuen Text aus, ohne Überschrift und ohne Erklärung.\n";

/// The messages for one unit. `strict` is the retry after a first attempt that lost a fact or
/// read no easier: it asks for split sentences and names `keep`, the unit's facts.
pub fn messages(text: &str, strict: bool, keep: &[String]) -> Vec<ChatMessage> {
    let mut user = String::from(RULES);
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
    vec![ChatMessage::user(user)]
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
            crate::text::sentences(l)
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

/// Informal address ("du", "dein") that the Sie-Form rule forbids.
pub fn uses_du(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic())
        .any(|w| matches!(w.to_lowercase().as_str(), "du" | "dich" | "dir" | "dein" | "deine" | "deinen" | "deinem" | "deiner" | "deines" | "euch" | "euer" | "eure"))
}

/// Whether `text` speaks in the first person ("wir", "ich"): a rewrite must not make the
/// assistant speak for the town where the original does not.
pub fn uses_first_person(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "wir" | "uns" | "unser" | "unsere" | "unseren" | "unserem" | "unserer" | "ich" | "mich" | "mir" | "mein" | "meine"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_person_is_found() {
        assert!(uses_first_person("Ihm ist wichtig, dass wir die Aufgaben übernehmen."));
        assert!(!uses_first_person("Der Bürgermeister übernimmt die Aufgaben. Wirtschaft ist wichtig."));
    }

    #[test]
    fn clean_drops_prefaces_and_quotes() {
        assert_eq!(
            clean("Hier ist der Text in Einfacher Sprache:\n\n„Sie zahlen 20 Euro.“\n"),
            "Sie zahlen 20 Euro."
        );
        assert_eq!(clean("**Sie** zahlen.\nDas Amt hilft."), "Sie zahlen.\nDas Amt hilft.");
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
        assert!(m[0].content.contains("genau so im Text stehen: 20 Euro"));
        assert!(m[0].content.contains("kurze Sätze"));
        assert!(m[0].content.ends_with("Die Steuer beträgt 20 Euro.\n"));
        let first = messages("Die Steuer beträgt 20 Euro.", false, &["20 Euro".into()]);
        assert!(!first[0].content.contains("Wichtig:"));
    }
}
