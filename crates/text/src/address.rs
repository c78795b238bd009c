//! How a German text addresses its reader: informally ("du") or not.

/// Whether `text` addresses the reader informally: one of the words "du", "dich", "dir",
/// "dein", "deine", "deinen", "deinem", "deiner", "deines", "euch", "euer", "eure", in any
/// case. A word is a run of letters, so "Dudenverlag" and "Dubai" are no "du", while "du"
/// between digits or punctuation is.
///
/// Kept simple on purpose:
/// - "ihr" is left out: it is also "her"/"their" and the capitalised "Ihr" of the Sie-Form.
/// - The inflected "euren", "eurem", "eurer", "eures" are left out, as is a "du" only implied
///   by a verb ("Komm vorbei!").
/// - Quoted speech counts like any other text (`„Kommst du?“` is informal), and so does a
///   foreign "du" ("Café du Port").
pub fn du_form(text: &str) -> bool {
    text.split(|c: char| !c.is_alphabetic()).any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "du" | "dich"
                | "dir"
                | "dein"
                | "deine"
                | "deinen"
                | "deinem"
                | "deiner"
                | "deines"
                | "euch"
                | "euer"
                | "eure"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::du_form;

    #[test]
    fn informal_address_is_found() {
        assert!(du_form("Du kannst den Antrag online stellen."));
        assert!(du_form("Dann zahlst du 20 Euro."));
        assert!(du_form("Wir schicken dir den Bescheid."));
        assert!(du_form("Bring deinen Ausweis mit."));
        assert!(du_form("Wir freuen uns auf euch!"));
        assert!(du_form("DEINE Stadtverwaltung"));
        // a run of letters is a word, whatever stands around it
        assert!(du_form("(du)"));
        assert!(du_form("2du3"));
    }

    #[test]
    fn formal_address_and_lookalikes_are_not_informal() {
        assert!(!du_form("Sie können den Antrag online stellen."));
        assert!(!du_form("Bringen Sie Ihren Ausweis mit."));
        assert!(!du_form("Der Dudenverlag sitzt in Berlin."));
        assert!(!du_form("Dubai ist weit."));
        assert!(!du_form("Die Direktorin und der Dirigent kommen."));
        assert!(!du_form("Die Deichsel ist dicht."));
        assert!(!du_form("Europa und der Euro"));
        // "ihr" is too ambiguous to count
        assert!(!du_form("Die Stadt und ihr Bürgerbüro"));
        assert!(!du_form(""));
    }
}
