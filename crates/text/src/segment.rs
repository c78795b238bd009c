//! German text units for readability and rewriting: sentences, words, syllables.
//!
//! Design decision: rules, not a dictionary. Sentence ends are `.`, `!`, `?` (and line
//! breaks) unless the word before is a known abbreviation or a one- or two-digit ordinal
//! ("am 3. Mai"); syllables are vowel groups with the German diphthongs and long vowels
//! counted once. Validated against human ratings (`lotse eval readability`, see
//! ARCHITECTURE.md).

/// Abbreviations after which a period does not end a sentence (lowercase, without the
/// final period).
const NON_FINAL: &[&str] = &[
    "abs", "art", "bzw", "ca", "d", "dr", "evtl", "gem", "ggf", "h", "i", "inkl", "max", "min",
    "mind", "nr", "o", "prof", "r", "s", "sog", "std", "str", "tel", "u", "usw", "v", "vgl", "z",
    "zzgl", "zb", "bspw", "lt", "e", "g", "a", "m", "etc", "ff", "hr", "fr", "st", "tsd", "mio",
    "mrd", "jan", "feb", "mär", "apr", "jun", "jul", "aug", "sep", "sept", "okt", "nov", "dez",
    "mo", "di", "mi", "do", "sa", "so", "abschn", "bes",
    // legal citations: "(GBl. S. 550)", "BGBl. I", "ber. S. 1092", "Buchst. a"
    "gbl", "bgbl", "gvbl", "ber", "buchst",
];

/// Split a text into sentences (trimmed, non-empty).
pub fn sentences(text: &str) -> Vec<String> {
    sentence_slices(text).into_iter().map(str::to_string).collect()
}

/// The sentences of a text as trimmed, non-empty slices of it, so that a quote made of them
/// is verbatim.
pub fn sentence_slices(text: &str) -> Vec<&str> {
    sentence_spans(text)
        .into_iter()
        .map(|s| text[s.start..s.end].trim())
        .collect()
}

/// One sentence of a text: its byte range (untrimmed) and whether it ends with `.`, `!` or
/// `?` (a line that simply stops does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentenceSpan {
    pub start: usize,
    pub end: usize,
    pub terminated: bool,
}

/// The sentences of a text as byte ranges, in order; pieces without a letter or digit are
/// left out. `sentences` is these ranges, trimmed.
pub fn sentence_spans(text: &str) -> Vec<SentenceSpan> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split('\n') {
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let byte = |i: usize| line_start + chars.get(i).map_or(line.len(), |(b, _)| *b);
        let only: Vec<char> = chars.iter().map(|(_, c)| *c).collect();
        let mut push = |from: usize, to: usize, terminated: bool| {
            if only[from..to].iter().any(|c| c.is_alphanumeric()) {
                out.push(SentenceSpan {
                    start: byte(from),
                    end: byte(to),
                    terminated,
                });
            }
        };
        let mut start = 0;
        let mut i = 0;
        while i < only.len() {
            let c = only[i];
            if matches!(c, '.' | '!' | '?') {
                // take closing quotes and brackets and repeated marks with the sentence
                let mut end = i + 1;
                while end < only.len()
                    && matches!(
                        only[end],
                        '.' | '!' | '?' | '"' | '“' | '”' | '«' | '»' | ')' | '\''
                    )
                {
                    end += 1;
                }
                let next_is_space = end >= only.len() || only[end].is_whitespace();
                if next_is_space && (c != '.' || ends_sentence(&only[start..i], &only[end..])) {
                    push(start, end, true);
                    start = end;
                }
                i = end;
            } else {
                i += 1;
            }
        }
        push(start, only.len(), false);
        line_start += line.len() + 1;
    }
    out
}

/// Whether a period after `before` ends the sentence, given what follows it.
fn ends_sentence(before: &[char], after: &[char]) -> bool {
    let word: String = before
        .iter()
        .rev()
        .take_while(|c| !c.is_whitespace() && **c != '(' && **c != '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let next = after.iter().find(|c| !c.is_whitespace());
    let Some(&next) = next else { return true };
    if word.is_empty() {
        return true;
    }
    let lower = word.to_lowercase();
    if NON_FINAL.contains(&lower.as_str()) {
        return false;
    }
    // "am 3. Mai", "1. Januar": an ordinal, unless it is a year or a count at a sentence end
    if word.chars().all(|c| c.is_ascii_digit()) && word.len() <= 2 {
        return false;
    }
    // a single capital letter ("A. Müller") or a lower-case continuation
    if word.chars().count() == 1 && word.chars().all(char::is_uppercase) {
        return false;
    }
    next.is_uppercase()
        || next.is_ascii_digit()
        || matches!(next, '"' | '„' | '“' | '(' | '-' | '–')
}

/// Words of a text: runs of letters, digits and inner hyphens/apostrophes/periods in
/// numbers. Punctuation and symbols alone are not words.
pub fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '/' | '–' | '—'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

fn is_vowel(c: char) -> bool {
    matches!(
        c,
        'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'ä' | 'ö' | 'ü' | 'é' | 'è' | 'à'
    )
}

/// Two-letter vowel groups that are one syllable in German.
const ONE_SYLLABLE_PAIRS: &[&str] = &[
    "ai", "au", "ay", "ei", "eu", "ey", "äu", "ie", "aa", "ee", "oo", "ou", "ui", "oi", "öu", "uu",
];

/// Estimated syllables of one word (at least 1). Digits count as one syllable per number.
pub fn syllables(word: &str) -> usize {
    let lower = word.to_lowercase();
    let chars: Vec<char> = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if chars.is_empty() {
        return 1;
    }
    let mut count = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_vowel(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_vowel(chars[i]) {
            i += 1;
        }
        let group: String = chars[start..i].iter().collect();
        count += group_syllables(&group);
    }
    count.max(1)
}

fn group_syllables(group: &str) -> usize {
    let n = group.chars().count();
    match n {
        1 => 1,
        2 if ONE_SYLLABLE_PAIRS.contains(&group) => 1,
        2 => 2,
        _ => {
            // "eue" (neue), "aue" (blaue), "eie" (Schreie): a diphthong plus a vowel
            let chars: Vec<char> = group.chars().collect();
            let mut count = 0;
            let mut i = 0;
            while i < chars.len() {
                if i + 1 < chars.len() {
                    let pair: String = chars[i..i + 2].iter().collect();
                    if ONE_SYLLABLE_PAIRS.contains(&pair.as_str()) {
                        count += 1;
                        i += 2;
                        continue;
                    }
                }
                count += 1;
                i += 1;
            }
            count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_respect_abbreviations_and_ordinals() {
        let s = sentences(
            "Die Steuer wird gem. § 3 Abs. 2 fällig. Sie gilt ab dem 1. Januar 2025. Fragen? Rufen Sie z. B. an.",
        );
        assert_eq!(
            s,
            vec![
                "Die Steuer wird gem. § 3 Abs. 2 fällig.",
                "Sie gilt ab dem 1. Januar 2025.",
                "Fragen?",
                "Rufen Sie z. B. an."
            ]
        );
        assert_eq!(sentences("Erste Zeile\nZweite Zeile").len(), 2);
        // slices are verbatim pieces of the text (quotes are made of them)
        let text = "  Gem. § 3 gilt dies.\nJa!  Ende ";
        let slices = sentence_slices(text);
        assert_eq!(slices, vec!["Gem. § 3 gilt dies.", "Ja!", "Ende"]);
        assert!(slices.iter().all(|s| text.contains(s)));
        assert_eq!(sentences(text), slices);
        assert_eq!(sentences("Das war 2024. Danach kam mehr.").len(), 2);
        // a citation of the law gazette is no sentence end
        assert_eq!(
            sentences("Das Gesetz vom 25. November 2014 (GBl. S. 550, ber. S. 1092) gilt. Mehr nicht.").len(),
            2
        );
    }

    #[test]
    fn words_drop_punctuation() {
        assert_eq!(
            words("Die Gebühr (165,00 €) – ab sofort!"),
            vec!["Die", "Gebühr", "165,00", "ab", "sofort"]
        );
    }

    #[test]
    fn syllables_of_common_words() {
        for (w, n) in [
            ("Hund", 1),
            ("Hundesteuer", 4),
            ("Gemeinde", 3),
            ("neue", 2),
            ("Bürgerbüro", 4),
            ("Verwaltungsgebühr", 5),
            ("Theater", 3),
            ("sie", 1),
            ("Öffnungszeiten", 4),
            ("2025", 1),
        ] {
            assert_eq!(syllables(w), n, "{w}");
        }
    }
}
