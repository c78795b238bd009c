//! Readability of German text: Flesch reading ease for German (Amstad 1978), the first
//! Wiener Sachtextformel (Bamberger & Vanecek 1984) and LIX (Björnsson), plus Spearman's rank
//! correlation to validate them against human ratings.
//!
//! Formulas (`../shared/data/simplification/RULES.md`): ASL = words per sentence, ASW =
//! syllables per word, MS = % words with >= 3 syllables, IW = % words with > 6 letters,
//! ES = % one-syllable words.
//! - Flesch (Amstad) = 180 − ASL − 58.5 × ASW (higher is easier, 0..100 typical)
//! - WSTF1 = 0.1935 MS + 0.1672 ASL + 0.1297 IW − 0.0327 ES − 0.875 (a school grade, 4..15)
//! - LIX = ASL + 100 × long words / words (below 40 easy, above 60 very hard)

use serde::{Deserialize, Serialize};

use lotse_text::{sentences, syllables, words};

/// Readability figures of one text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Readability {
    /// Flesch reading ease for German (Amstad): higher is easier.
    pub flesch_amstad: f64,
    /// Wiener Sachtextformel 1: roughly the school grade needed; lower is easier.
    pub wstf1: f64,
    /// LIX: lower is easier.
    pub lix: f64,
    pub sentences: usize,
    pub words: usize,
}

/// Counts from which the formulas are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    sentences: usize,
    words: usize,
    syllables: usize,
    polysyllables: usize,
    long_words: usize,
    monosyllables: usize,
}

fn counts(text: &str) -> Counts {
    let mut c = Counts::default();
    for s in sentences(text) {
        let ws = words(&s);
        if ws.is_empty() {
            continue;
        }
        c.sentences += 1;
        for w in ws {
            let syl = syllables(w);
            c.words += 1;
            c.syllables += syl;
            if syl >= 3 {
                c.polysyllables += 1;
            }
            if syl == 1 {
                c.monosyllables += 1;
            }
            if w.chars().filter(|ch| ch.is_alphabetic()).count() > 6 {
                c.long_words += 1;
            }
        }
    }
    c
}

/// The figures for `text`; all zero for a text without words.
pub fn readability(text: &str) -> Readability {
    let c = counts(text);
    if c.words == 0 || c.sentences == 0 {
        return Readability::default();
    }
    let words = c.words as f64;
    let asl = words / c.sentences as f64;
    let asw = c.syllables as f64 / words;
    let ms = 100.0 * c.polysyllables as f64 / words;
    let iw = 100.0 * c.long_words as f64 / words;
    let es = 100.0 * c.monosyllables as f64 / words;
    Readability {
        flesch_amstad: 180.0 - asl - 58.5 * asw,
        wstf1: 0.1935 * ms + 0.1672 * asl + 0.1297 * iw - 0.0327 * es - 0.875,
        lix: asl + 100.0 * c.long_words as f64 / words,
        sentences: c.sentences,
        words: c.words,
    }
}

/// Average ranks (1-based), ties sharing the mean rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson over average ranks); `None` for fewer than two
/// pairs, unequal lengths or a constant series.
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let (rx, ry) = (ranks(xs), ranks(ys));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in rx.iter().zip(&ry) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_match_hand_counts() {
        // 2 sentences, 9 words; syllables 1+1+1+1 + 1+2+1+2+1 = 11
        let r = readability("Der Hund bellt laut. Die Katze schläft gerne lang.");
        assert_eq!((r.sentences, r.words), (2, 9));
        let asl = 4.5;
        let asw = 11.0 / 9.0;
        assert!((r.flesch_amstad - (180.0 - asl - 58.5 * asw)).abs() < 1e-9);
        // long words (> 6 letters): "schläft" (7)
        assert!((r.lix - (asl + 100.0 / 9.0)).abs() < 1e-9);
    }

    #[test]
    fn wstf1_is_close_to_the_textstat_vectors() {
        // reference values from textstat's tests (pyphen syllables); our syllable rules
        // differ a little, so allow one grade
        let easy = readability(
            "Alle meine Entchen schwimmen auf dem See, Köpfchen unters Wasser, Schwänzchen in die Höh.",
        );
        assert!((easy.wstf1 - 3.77).abs() < 1.0, "{}", easy.wstf1);
        let hard = readability(
            "Alle Parteien widmen dem Thema rein quantitativ betrachtet nennenswerte Aufmerksamkeit, die Grünen wenig überraschend am meisten.",
        );
        assert!((hard.wstf1 - 13.913).abs() < 1.0, "{}", hard.wstf1);
    }

    #[test]
    fn spearman_handles_ties_and_order() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        let r = spearman(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(r > 0.9 && r < 1.0, "{r}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn empty_text_has_zero_figures() {
        assert_eq!(readability("  ").words, 0);
    }
}
