//! German text analysis for the index: stemmed words, plain folded words, and compound n-grams.
//!
//! Three analyzers are registered with every index:
//! - `de_stem`: words, lowercased, German stop words removed, Snowball German stemming, then
//!   ASCII folding (the stemmer already maps ä/ö/ü to a/o/u and ß to ss).
//! - `de_plain`: the same without stemming; kept so the effect of stemming can be measured.
//! - `de_grams`: character 4-grams of each folded word. German compounds ("Hundesteuer")
//!   share 4-grams with their parts ("Hunde", "Steuer"), so a query with the parts still finds
//!   the compound. This needs no dictionary, which matters for town vocabulary no word list
//!   knows ("Grünmassesammelplatz"). Its weight is low: it widens recall, BM25 on stems ranks.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

pub const STEM: &str = "de_stem";
pub const PLAIN: &str = "de_plain";
pub const GRAMS: &str = "de_grams";

/// Words that name a kind of place rather than a town; ignored when matching town names
/// ("Gemeinde Bad Boll" is named by "Bad Boll").
pub const GENERIC_PLACE_WORDS: &str = "Gemeinde Stadt Markt Marktgemeinde Landkreis Kreis \
    Kreisstadt Große Kreisstadt Hansestadt Samtgemeinde Verbandsgemeinde Amt Ortsgemeinde \
    Landeshauptstadt Universitätsstadt Stadtverwaltung Gemeindeverwaltung Rathaus";

/// Character n-gram length used for compound matching (chosen by measurement, see
/// ARCHITECTURE.md).
pub const GRAM_LEN: usize = 4;

fn german_stop_words() -> StopWordFilter {
    StopWordFilter::new(Language::German).expect("tantivy ships a German stop-word list")
}

pub fn stemmed_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(german_stop_words())
        .filter(Stemmer::new(Language::German))
        .filter(AsciiFoldingFilter)
        .build()
}

pub fn plain_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(48))
        .filter(LowerCaser)
        .filter(german_stop_words())
        .filter(GermanFold)
        .build()
}

pub fn grams_analyzer() -> TextAnalyzer {
    TextAnalyzer::from(WordGrams)
}

/// Register all analyzers on an index.
pub fn register(index: &tantivy::Index) {
    let m = index.tokenizers();
    m.register(STEM, stemmed_analyzer());
    m.register(PLAIN, plain_analyzer());
    m.register(GRAMS, grams_analyzer());
}

/// Run an analyzer over `text` and collect the token texts (used to build queries).
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Fold German letters the way the stemmer does (ä->a, ö->o, ü->u, ß->ss), other accents to
/// ASCII. Input is expected to be lowercase.
pub fn fold_german(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        match c {
            'ä' | 'à' | 'á' | 'â' | 'ã' | 'å' => out.push('a'),
            'ö' | 'ò' | 'ó' | 'ô' | 'õ' => out.push('o'),
            'ü' | 'ù' | 'ú' | 'û' => out.push('u'),
            'ß' => out.push_str("ss"),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'ç' => out.push('c'),
            'ñ' => out.push('n'),
            'í' | 'ì' | 'î' | 'ï' => out.push('i'),
            _ => out.push(c),
        }
    }
    out
}

/// Token filter applying [`fold_german`].
#[derive(Clone, Copy)]
struct GermanFold;

impl tantivy::tokenizer::TokenFilter for GermanFold {
    type Tokenizer<T: Tokenizer> = GermanFoldTokenizer<T>;
    fn transform<T: Tokenizer>(self, inner: T) -> GermanFoldTokenizer<T> {
        GermanFoldTokenizer { inner }
    }
}

#[derive(Clone)]
struct GermanFoldTokenizer<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for GermanFoldTokenizer<T> {
    type TokenStream<'a> = GermanFoldStream<T::TokenStream<'a>>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        GermanFoldStream {
            inner: self.inner.token_stream(text),
        }
    }
}

struct GermanFoldStream<S> {
    inner: S,
}

impl<S: TokenStream> TokenStream for GermanFoldStream<S> {
    fn advance(&mut self) -> bool {
        if !self.inner.advance() {
            return false;
        }
        let t = self.inner.token_mut();
        if !t.text.is_ascii() {
            t.text = fold_german(&t.text);
        }
        true
    }
    fn token(&self) -> &Token {
        self.inner.token()
    }
    fn token_mut(&mut self) -> &mut Token {
        self.inner.token_mut()
    }
}

/// Tokenizer emitting the character n-grams of every alphabetic word of 4+ letters.
/// Digits and short words are left to the word fields.
#[derive(Clone, Copy, Default)]
struct WordGrams;

impl Tokenizer for WordGrams {
    type TokenStream<'a> = VecTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        let mut position = 0;
        for (start, word) in words(text) {
            let folded = fold_german(&word.to_lowercase());
            let chars: Vec<char> = folded.chars().collect();
            if chars.len() < GRAM_LEN || !chars.iter().all(|c| c.is_alphabetic()) {
                continue;
            }
            for w in chars.windows(GRAM_LEN) {
                tokens.push(Token {
                    offset_from: start,
                    offset_to: start + word.len(),
                    position,
                    text: w.iter().collect(),
                    position_length: 1,
                });
                position += 1;
            }
        }
        VecTokenStream {
            tokens,
            cursor: None,
        }
    }
}

/// Words of `text` with their byte offsets (alphanumeric runs).
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            out.push((s, &text[s..i]));
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

struct VecTokenStream {
    tokens: Vec<Token>,
    cursor: Option<usize>,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        let next = self.cursor.map_or(0, |c| c + 1);
        self.cursor = Some(next);
        next < self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.cursor.unwrap_or(0)]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.cursor.unwrap_or(0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemming_folds_umlauts_and_inflection() {
        let mut a = stemmed_analyzer();
        assert_eq!(tokens(&mut a, "Hunde"), tokens(&mut a, "Hund"));
        assert_eq!(tokens(&mut a, "Gebühren"), tokens(&mut a, "Gebuhr"));
        assert_eq!(tokens(&mut a, "Straße"), tokens(&mut a, "Strasse"));
        // stop words are gone
        assert!(tokens(&mut a, "der die das").is_empty());
    }

    #[test]
    fn grams_link_compounds_to_their_parts() {
        let mut a = grams_analyzer();
        let compound = tokens(&mut a, "Hundesteuer");
        for part in ["Hunde", "Steuer"] {
            let grams = tokens(&mut a, part);
            assert!(
                grams.iter().all(|g| compound.contains(g)),
                "{part}: {grams:?}"
            );
        }
        assert!(tokens(&mut a, "für 12 Hz").is_empty());
    }
}
