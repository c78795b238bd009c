//! Prompt-lookup drafting for greedy decoding: the tokens that followed the latest earlier
//! occurrence of the sequence's last few tokens are proposed as its continuation, and one
//! forward pass checks them all. Rewrites and cited answers repeat long runs of their
//! prompt (names, amounts, statute references), so a good share of the drafts is accepted.
//!
//! The output is the one plain greedy decoding gives: a drafted token is kept only where it
//! is the model's own argmax at that position.

/// Longest n-gram matched against the history.
const MAX_NGRAM: usize = 3;
/// Shortest: a single token repeats too often to predict anything.
const MIN_NGRAM: usize = 2;

/// Up to `max` tokens that followed the most recent earlier occurrence of the last
/// `MAX_NGRAM` (else fewer, down to `MIN_NGRAM`) tokens of `history`; empty when there is
/// none.
pub(crate) fn draft(history: &[u32], max: usize) -> &[u32] {
    if max == 0 {
        return &[];
    }
    for n in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if history.len() <= n {
            continue;
        }
        let tail = &history[history.len() - n..];
        // latest start first; the tail itself (start = len - n) is not an earlier occurrence
        for start in (0..history.len() - n).rev() {
            if &history[start..start + n] == tail {
                let from = start + n;
                let to = (from + max).min(history.len());
                if from < to {
                    return &history[from..to];
                }
            }
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::draft;

    #[test]
    fn the_latest_match_of_the_longest_ngram_proposes_what_followed() {
        // ... 1 2 3 9 9 ... 1 2 3 7 8 ... then the tail "1 2 3"
        let h = [1, 2, 3, 9, 9, 5, 1, 2, 3, 7, 8, 6, 1, 2, 3];
        assert_eq!(draft(&h, 2), &[7, 8]);
        assert_eq!(draft(&h, 10), &[7, 8, 6, 1, 2, 3]);
        // a bigram when no trigram matches
        assert_eq!(draft(&[4, 2, 3, 5, 0, 2, 3], 1), &[5]);
        // no earlier occurrence, a single shared token, or nothing asked for
        assert!(draft(&[1, 2, 3, 4], 5).is_empty());
        assert!(draft(&[1, 5, 6, 1], 5).is_empty());
        assert!(draft(&h, 0).is_empty());
        assert!(draft(&[], 3).is_empty());
    }
}
