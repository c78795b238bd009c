//! Streaming text out of a token stream: incremental decoding that never emits half a UTF-8
//! character, and stop strings that are held back until they are ruled out and never emitted.

use crate::Result;

/// Decode pieces at most this many tokens long are forced out even when they do not end in
/// complete characters (a model emitting an invalid byte sequence must not stall the stream).
const MAX_PENDING_TOKENS: usize = 8;

/// Incremental detokenizer (the prefix/read-offset scheme of Hugging Face TGI): each step
/// decodes a short window of recent tokens and emits the text the new token added, once it
/// ends in a complete character. Decoding a window rather than single tokens keeps the
/// spacing rules of decoders (sentencepiece's leading space, byte-level BPE) correct.
#[derive(Debug, Default)]
pub(crate) struct TextStream {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl TextStream {
    pub(crate) fn new() -> TextStream {
        TextStream::default()
    }

    /// Add one token; returns the newly completed text (possibly empty).
    pub(crate) fn push(
        &mut self,
        id: u32,
        decode: &dyn Fn(&[u32]) -> Result<String>,
    ) -> Result<String> {
        self.ids.push(id);
        self.advance(decode, false)
    }

    /// The text still held back (incomplete characters at the very end), lossily.
    pub(crate) fn finish(&mut self, decode: &dyn Fn(&[u32]) -> Result<String>) -> Result<String> {
        self.advance(decode, true)
    }

    fn advance(
        &mut self,
        decode: &dyn Fn(&[u32]) -> Result<String>,
        force: bool,
    ) -> Result<String> {
        if self.read_offset == self.ids.len() {
            return Ok(String::new());
        }
        let prefix_text = decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let new_text = decode(&self.ids[self.prefix_offset..])?;
        let pending = self.ids.len() - self.read_offset;
        let complete = !new_text.ends_with('\u{FFFD}');
        if !(force
            || pending >= MAX_PENDING_TOKENS
            || complete && new_text.len() > prefix_text.len())
        {
            return Ok(String::new());
        }
        // Normally `new_text` extends `prefix_text`; if a decoder rewrote the shared part,
        // emit what follows the common prefix.
        let common = common_prefix_len(&prefix_text, &new_text);
        let piece = new_text[common..].to_string();
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        // Keep the window short.
        if self.prefix_offset > 0 {
            self.ids.drain(..self.prefix_offset);
            self.read_offset -= self.prefix_offset;
            self.prefix_offset = 0;
        }
        Ok(piece)
    }
}

/// Byte length of the longest common prefix of `a` and `b`, on a character boundary.
fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()))
}

/// What [`StopMatcher::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StopOutput {
    /// Text that is safe to emit now.
    pub(crate) emit: String,
    /// A stop string was completed: `emit` ends right before it and generation stops.
    pub(crate) stopped: bool,
}

/// Holds back output that could be the start of a stop string; text up to a stop string is
/// released, the stop string and everything after it never are.
///
/// Invariant: no stop string starts inside text already emitted (everything emitted was
/// checked against complete matches, and any suffix that is a prefix of a stop string is
/// kept back until the next text decides it).
#[derive(Debug)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    pub(crate) fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> StopOutput {
        self.held.push_str(text);
        // The earliest complete stop string wins.
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let emit = self.held[..at].to_string();
            self.held.clear();
            return StopOutput {
                emit,
                stopped: true,
            };
        }
        let keep_from = self.partial_match_start();
        let emit = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        StopOutput {
            emit,
            stopped: false,
        }
    }

    /// Generation ended without a stop string: everything held back is output after all.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Start of the longest suffix of `held` that is a proper prefix of some stop string.
    fn partial_match_start(&self) -> usize {
        for (start, _) in self.held.char_indices() {
            let suffix = &self.held[start..];
            if self
                .stops
                .iter()
                .any(|s| s.len() > suffix.len() && s.starts_with(suffix))
            {
                return start;
            }
        }
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token i is the byte sequence `pieces[i]` (bytes may be partial UTF-8).
    fn byte_decoder(pieces: Vec<Vec<u8>>) -> impl Fn(&[u32]) -> Result<String> {
        move |ids: &[u32]| {
            let bytes: Vec<u8> = ids
                .iter()
                .flat_map(|&i| pieces[i as usize].clone())
                .collect();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    }

    #[test]
    fn multibyte_characters_split_across_tokens_come_out_whole() {
        // "Grüße" with ü (C3 BC) and ß (C3 9F) each split over two tokens.
        let pieces = vec![
            b"Gr".to_vec(),
            vec![0xC3],
            vec![0xBC],
            vec![0xC3],
            vec![0x9F, b'e'],
        ];
        let decode = byte_decoder(pieces);
        let mut stream = TextStream::new();
        let out: Vec<String> = (0..5).map(|i| stream.push(i, &decode).unwrap()).collect();
        assert_eq!(out, ["Gr", "", "ü", "", "ße"]);
        assert_eq!(stream.finish(&decode).unwrap(), "");
    }

    #[test]
    fn incomplete_tail_is_flushed_lossily_at_the_end() {
        let decode = byte_decoder(vec![b"a".to_vec(), vec![0xE2, 0x82]]);
        let mut stream = TextStream::new();
        assert_eq!(stream.push(0, &decode).unwrap(), "a");
        assert_eq!(stream.push(1, &decode).unwrap(), "");
        assert_eq!(stream.finish(&decode).unwrap(), "\u{FFFD}");
    }

    #[test]
    fn invalid_bytes_do_not_stall_the_stream() {
        let decode = byte_decoder(vec![vec![0xFF], b"x".to_vec()]);
        let mut stream = TextStream::new();
        let mut out = String::new();
        for _ in 0..MAX_PENDING_TOKENS {
            out += &stream.push(0, &decode).unwrap();
        }
        assert!(!out.is_empty());
        out += &stream.push(1, &decode).unwrap();
        assert!(out.ends_with('x'));
    }

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            let o = m.push(p);
            out += &o.emit;
            if o.stopped {
                return (out, true);
            }
        }
        out += &m.finish();
        (out, false)
    }

    #[test]
    fn stop_string_split_over_pieces_is_never_emitted() {
        assert_eq!(
            run(&["\n\n"], &["Hallo", "\n", "\nWelt"]),
            ("Hallo".into(), true)
        );
        assert_eq!(
            run(&["ENDE"], &["ab E", "N", "D", "E cd"]),
            ("ab ".into(), true)
        );
    }

    #[test]
    fn held_back_text_is_released_when_ruled_out() {
        let stops = vec!["ENDE".to_string()];
        let mut m = StopMatcher::new(&stops);
        assert_eq!(m.push("ab EN").emit, "ab ");
        // "ENT" is ruled out, the final "E" could still start "ENDE".
        assert_eq!(m.push("TE").emit, "ENT");
        assert_eq!(m.finish(), "E");
        assert_eq!(run(&["ENDE"], &["x EN"]), ("x EN".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins_and_empty_stops_are_ignored() {
        assert_eq!(run(&["", "cd", "b"], &["abcd"]), ("a".into(), true));
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
        // Overlapping prefixes: "aab" must be found although "aa" started earlier.
        assert_eq!(run(&["aab"], &["a", "a", "a", "b"]), ("a".into(), true));
        assert_eq!(run(&["ü!"], &["Grü", "ß"]), ("Grüß".into(), false));
    }
}
