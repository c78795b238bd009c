//! Whether a rewrite keeps the words that carry a rule's meaning without being a fact (the
//! lexicon and its counts are `lotse_text`'s; this module compares): negations ("nicht",
//! "kein", "verboten", "ohne", "gebührenfrei"), limits ("nur", "mindestens", "höchstens",
//! "spätestens", "frühestens") and conditions ("wenn", "falls", "soweit", "sobald", "auf
//! Antrag", "auf Verlangen", "es sei denn"), that something is paid ("auf eigene
//! Kosten", "Gebührenschuldner"), and that a rule takes effect or is repealed ("in Kraft",
//! "außer Kraft"). A small model drops or adds them while it shortens
//! a sentence, and then a prohibition reads as a permission ("Bei Gewitter ist der Aufenthalt
//! im Becken untersagt." -> "Wenn es regnet, bleiben Sie im Becken.") or a duty with a
//! condition as one without ("ist auf Verlangen vorzulegen" -> "muss vorgelegt werden"). The
//! fact check cannot see that, because no number changes.
//!
//! The check is deliberately coarse and errs on the side of the original: a rewrite must have
//! no negation when its original has none, at least as many as the original and at most twice
//! as many (splitting "nicht A oder B" into two sentences repeats the "nicht"); each limit of
//! the original must still be there in one of its plain forms; and it needs at least as many
//! conditions as the original ("auf Antrag" may become any mention of an "Antrag", "auf
//! Verlangen" any form of "verlangen"); and an original that says something is paid needs a
//! rewrite that says so too, in any form. A rewrite that fails is not shown; the unit keeps the
//! deterministic pass.

use lotse_text::{circumstances, condition_forms, condition_openings, limits};
pub use lotse_text::{conditions, mentions_payment, negations};

/// Conditions `candidate` keeps of `original`'s: its conjunctions and plain forms of a
/// condition ([`condition_forms`]), and its "bei" / "im Fall" ([`circumstances`]) counted only
/// up to the original's openings "Bei ...", so that "bei der Gemeinde" never stands in for a
/// lost "wenn".
fn kept_conditions(original: &str, candidate: &str) -> usize {
    condition_forms(candidate) + circumstances(candidate).min(condition_openings(original))
}

/// Why `candidate` may say something else than `original` ("may": the check is coarse), if
/// it may.
pub fn problem(original: &str, candidate: &str) -> Option<String> {
    let (before, after) = (negations(original), negations(candidate));
    if before == 0 && after > 0 {
        return Some("adds a negation the original does not have".into());
    }
    if after < before || after > 2 * before {
        return Some(format!("negations {before} -> {after}"));
    }
    if let Some(l) = limits()
        .iter()
        .find(|l| l.stated_in(original) && !l.any_form_in(candidate))
    {
        return Some(format!("drops the limit {:?}", l.name));
    }
    let (before, after) = (conditions(original), kept_conditions(original, candidate));
    if after < before {
        return Some(format!("conditions {before} -> {after}"));
    }
    // who pays is part of a fee: "auf eigene Kosten" or "Gebührenschuldner" must not vanish
    (mentions_payment(original) && !mentions_payment(candidate))
        .then(|| "drops what is paid (costs, fee, tax, payment)".into())
}

#[cfg(test)]
mod tests {
    use super::{conditions, negations, problem};

    #[test]
    fn a_prohibition_turned_into_a_permission_is_found() {
        // rewrites of this kind were shown before the check existed
        let o = "Die Abnahme der Anlage befreit den Bauherrn nicht von seiner Verantwortung.";
        assert!(
            problem(
                o,
                "Die Abnahme der Anlage befreit den Bauherrn von der Verantwortung."
            )
            .is_some()
        );
        let o = "Untersagt ist es, sich bei Gewittern in den Becken aufzuhalten.";
        assert!(problem(o, "Wenn es gewittert, bleiben Sie im Becken.").is_some());
        let o =
            "b) die Benutzung der öffentlichen Abwasseranlagen sowie die Änderung der Benutzung.";
        assert!(problem(o, "b) Die Benutzung der Abwasseranlagen ist verboten.").is_some());
    }

    #[test]
    fn a_repeal_must_stay_a_repeal() {
        // rewrites of this kind were shown before (RULES_VERSION 11)
        let o = "Mit In-Kraft-Treten dieser Geschäftsordnung tritt die Geschäftsordnung vom 6. März 1986 außer Kraft.";
        assert!(problem(o, "Die Geschäftsordnung tritt am 6. März 1986 in Kraft.").is_some());
        let o = "Gleichzeitig tritt die Satzung über die Erhebung der Hundesteuer vom 17. Dezember 2009 außer Kraft.";
        assert!(problem(o, "Die Erhebung der Hundesteuer tritt am 17. Dezember 2009 ein.").is_some());
        // a plain form of the repeal passes
        assert_eq!(problem(o, "Die Satzung über die Hundesteuer vom 17. Dezember 2009 gilt dann nicht mehr."), None);
        assert_eq!(negations("Die Anlage ist außer Betrieb."), 0);
        // that a rule takes effect must not vanish either
        let o = "Diese Satzung tritt am 01. Januar 2002, die Änderungssatzungen am 01. Januar 2013 in Kraft.";
        assert!(problem(o, "Diese Satzung tritt am 1. Januar 2002. Die Änderungssätze tragen am 1. Januar 2013.").is_some());
        assert_eq!(problem(o, "Diese Satzung gilt ab dem 1. Januar 2002. Die Änderungen gelten ab dem 1. Januar 2013."), None);
    }

    #[test]
    fn who_pays_must_not_vanish() {
        // rewrites of this kind were shown before the check existed (RULES_VERSION 10)
        let o = "(1) Private Grundstücksanschlüsse sind vom Grundstückseigentümer auf eigene Kosten zu unterhalten, zu ändern, zu erneuern und zu beseitigen.";
        assert!(problem(o, "(1) Private Grundstücksanschlüsse sind vom Eigentümer zu betreiben. Sie müssen sie ändern, erneuern und beseitigen.").is_some());
        let o = "(3) Gebührenschuldner sind die Eltern sowie die Sorgeberechtigten, die die Aufnahme des Kindes beantragt haben.";
        assert!(problem(o, "(3) Die Eltern und die Sorgeberechtigten müssen die Aufnahme des Kindes beantragen.").is_some());
        // any plain form of paying keeps it
        assert!(problem(o, "(3) Die Eltern zahlen die Gebühr, wenn sie die Aufnahme des Kindes beantragt haben.").is_none());
        let o = "Der Eigentümer trägt die Kosten der Reinigung.";
        assert!(problem(o, "Der Eigentümer bezahlt die Reinigung.").is_none());
        assert!(problem(o, "Zahlen Sie die Reinigung. Sie sind der Eigentümer.").is_none());
        // "Zahlen" are numbers, not a payment
        assert!(!super::mentions_payment("Die Zahlen der Vollgeschosse werden gerundet."));
    }

    #[test]
    fn plain_forms_of_the_same_negation_pass() {
        let o = "Das Abstellen von Fahrzeugen auf dem Marktgelände ist unzulässig.";
        assert_eq!(
            problem(
                o,
                "Sie dürfen auf dem Marktgelände keine Fahrzeuge abstellen."
            ),
            None
        );
        let o = "Hunde dürfen weder in das Bad noch auf die Liegewiese mitgenommen werden.";
        assert_eq!(negations(o), 2);
        assert_eq!(
            problem(
                o,
                "Hunde dürfen nicht in das Bad. Hunde dürfen auch nicht auf die Liegewiese."
            ),
            None
        );
        let o = "Die Benutzung ist für Kinder unter 6 Jahren gebührenfrei.";
        assert_eq!(
            problem(o, "Kinder unter 6 Jahren müssen keine Gebühr zahlen."),
            None
        );
        let o = "Von einer Ehrung kann abgesehen werden, wenn besondere Gründe dagegen sprechen.";
        assert_eq!(
            problem(o, "Wenn es besondere Gründe gibt, gibt es keine Ehrung."),
            None
        );
        assert_eq!(
            problem(
                "Die Gebühr wird am 1. Juli fällig.",
                "Sie zahlen die Gebühr am 1. Juli."
            ),
            None
        );
    }

    #[test]
    fn an_accessible_website_is_no_negation() {
        let o = "Wir bemühen uns, diese Website barrierefrei zugänglich zu machen.";
        assert_eq!(negations(o), 0);
        assert_eq!(
            problem(o, "Wir wollen, dass alle Menschen diese Website gut nutzen können."),
            None
        );
        assert_eq!(negations("Die Benutzung ist gebührenfrei."), 1);
    }

    #[test]
    fn a_lost_or_repeated_negation_is_found() {
        let o = "Gelöste Karten werden nicht zurückgenommen. Verlorene und nicht genutzte Karten werden nicht erstattet.";
        assert!(
            problem(
                o,
                "Sie können Karten nicht zurückgeben. Verlorene Karten werden nicht erstattet."
            )
            .is_some()
        );
        let o = "Ausnahmen sind nicht möglich.";
        assert!(
            problem(
                o,
                "Es gibt keine Ausnahmen. Sie dürfen nicht fragen. Es geht nicht."
            )
            .is_some()
        );
    }

    #[test]
    fn limits_must_stay() {
        let o = "Auf dem Marktgelände sind nur Verkaufswagen und Stände zugelassen.";
        assert!(
            problem(
                o,
                "Verkaufswagen und Stände sind auf dem Marktgelände erlaubt."
            )
            .is_some()
        );
        assert_eq!(
            problem(
                o,
                "Auf dem Marktgelände dürfen nur Verkaufswagen und Stände stehen."
            ),
            None
        );
        let o = "Der Antrag ist spätestens am 15. Mai zu stellen.";
        assert!(problem(o, "Stellen Sie den Antrag am 15. Mai.").is_some());
        assert_eq!(problem(o, "Stellen Sie den Antrag bis zum 15. Mai."), None);
        let o = "Die Gebühr beträgt mindestens 10 Euro.";
        assert!(problem(o, "Die Gebühr ist 10 Euro.").is_some());
    }

    #[test]
    fn a_dropped_condition_is_found() {
        // rewrites of this kind were shown before the check existed (RULES_VERSION 8)
        let o = "(4) Unbebaute Grundstücke sind anzuschließen, wenn der Anschluss im Interesse der öffentlichen Gesundheitspflege geboten ist.";
        assert!(
            problem(
                o,
                "(4) Unbebaute Grundstücke müssen angeschlossen werden. Das liegt an der öffentlichen Gesundheitspflege."
            )
            .is_some()
        );
        assert_eq!(
            problem(
                o,
                "(4) Unbebaute Grundstücke müssen angeschlossen werden, wenn es für die öffentliche Gesundheitspflege geboten ist."
            ),
            None
        );
        let o = "(3) Der Gemeinde ist auf Verlangen ein Nachweis über die Kastration vorzulegen.";
        assert!(
            problem(
                o,
                "(3) Sie müssen der Gemeinde einen Nachweis über die Kastration zeigen."
            )
            .is_some()
        );
        assert_eq!(
            problem(
                o,
                "(3) Wenn die Gemeinde es verlangt, zeigen Sie einen Nachweis über die Kastration."
            ),
            None
        );
        // an opening circumstance is a condition too (a rewrite of this kind was shown in
        // RULES_VERSION 12)
        let o = "Bei Beschäftigung von Arbeitnehmern ist § 12 des Gesetzes über die Ladenöffnung zu beachten.";
        assert_eq!(conditions(o), 1);
        assert!(
            problem(
                o,
                "Paragraf 12 des Gesetzes über die Ladenöffnung muss beachtet werden."
            )
            .is_some()
        );
        assert_eq!(
            problem(
                o,
                "Wenn Sie Arbeitnehmer beschäftigen, beachten Sie Paragraf 12 des Gesetzes über die Ladenöffnung."
            ),
            None
        );
        assert_eq!(conditions("(2) Bei Regen fällt der Markt aus."), 1);
        assert_eq!(conditions("Anträge sind bei der Gemeinde zu stellen."), 0);
        // "bei" keeps an opening "Bei ...", never a lost "sobald"
        let o = "Der Hund ist anzumelden, sobald er drei Monate alt ist; die Anmeldung erfolgt bei der Gemeinde.";
        assert!(
            problem(o, "Melden Sie den Hund bei der Gemeinde an. Er ist drei Monate alt.")
                .is_some()
        );
        let o = "Kleinkläranlagen sind außer Betrieb zu setzen, sobald das Grundstück an die Kläranlage angeschlossen ist.";
        assert_eq!(conditions(o), 1, "\"außer Betrieb\" is no condition");
        assert!(
            problem(o, "Kleinkläranlagen müssen stillgelegt werden. Das Grundstück ist an die Kläranlage angeschlossen.")
                .is_some()
        );
    }

    #[test]
    fn plain_forms_of_a_condition_pass() {
        let o = "Die Aufnahme erfolgt auf Antrag der Eltern.";
        assert_eq!(
            problem(o, "Die Eltern stellen einen Antrag für die Aufnahme."),
            None
        );
        let o = "Eine Erstattung ist ausgeschlossen, es sei denn, die Veranstaltung fällt aus.";
        assert_eq!(
            problem(
                o,
                "Sie bekommen das Geld zurück, wenn die Veranstaltung ausfällt."
            ),
            None
        );
        assert_eq!(conditions("Die Satzung tritt außer Kraft."), 0);
        assert_eq!(
            problem(
                "Bei Gewitter ist der Aufenthalt im Becken untersagt.",
                "Wenn es gewittert, dürfen Sie nicht im Becken bleiben."
            ),
            None
        );
        assert_eq!(
            conditions("Alle Hunde, außer Blindenhunde, kosten Steuer."),
            1
        );
    }
}
