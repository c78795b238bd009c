//! German month names, as written in dates ("1. Juli 2025", "3. Jan. 2024").

/// Month names and their usual abbreviations, lowercase, with the month's number.
pub const MONTHS: &[(&str, u32)] = &[
    ("januar", 1),
    ("jänner", 1),
    ("jan", 1),
    ("februar", 2),
    ("feb", 2),
    ("märz", 3),
    ("mär", 3),
    ("april", 4),
    ("apr", 4),
    ("mai", 5),
    ("juni", 6),
    ("jun", 6),
    ("juli", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("oktober", 10),
    ("okt", 10),
    ("november", 11),
    ("nov", 11),
    ("dezember", 12),
    ("dez", 12),
];

/// The number of the month `word` names ("Januar", "Jan.", "jänner"), trailing `.`/`,` ignored.
pub fn month_number(word: &str) -> Option<u32> {
    let w = word.trim_end_matches(['.', ',']).to_lowercase();
    MONTHS.iter().find(|(m, _)| *m == w).map(|(_, n)| *n)
}

/// Whether `word` names a month ("Januar", "Jan.").
pub fn is_month(word: &str) -> bool {
    month_number(word).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_with_abbreviations_and_any_case() {
        assert_eq!(month_number("Juli"), Some(7));
        assert_eq!(month_number("Jan."), Some(1));
        assert_eq!(month_number("Jänner,"), Some(1));
        assert!(is_month("SEPT."));
        assert!(!is_month("Juliane"));
        assert!(!is_month("Mais"));
    }
}
