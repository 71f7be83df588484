//! BERT uncased tokenisation (the basic tokenizer and WordPiece) for the
//! second-stage encoder, after Devlin et al. 2019 and the WordPiece model
//! of Wu et al. 2016: clean the text, lower-case it, strip accents (NFD,
//! combining marks dropped), put spaces around CJK ideographs, split on
//! whitespace and punctuation, then split each word greedily into the
//! longest vocabulary pieces (continuations prefixed `##`), `[UNK]` for a
//! word that does not split or is longer than 100 characters.
//!
//! Punctuation is ASCII punctuation plus the Unicode General Punctuation,
//! CJK Symbols and Punctuation, and fullwidth ASCII punctuation blocks;
//! Hugging Face's tokenizer uses the full Unicode `P*` categories, so a
//! rare punctuation sign outside those blocks may split differently.

use std::collections::HashMap;

use unicode_normalization::UnicodeNormalization;

/// Longest word WordPiece splits (longer ones become `[UNK]`).
const MAX_WORD_CHARS: usize = 100;
/// Largest vocabulary file accepted.
pub const MAX_VOCAB_BYTES: usize = 16 << 20;

/// A WordPiece vocabulary with the special tokens BERT needs.
#[derive(Debug, Clone)]
pub struct WordPiece {
    ids: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
}

/// A vocabulary that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("WordPiece vocabulary: {0}")]
pub struct VocabError(String);

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || ('\u{2000}'..='\u{206F}').contains(&c)
        || ('\u{3000}'..='\u{303F}').contains(&c)
        || ('\u{FF01}'..='\u{FF0F}').contains(&c)
        || ('\u{FF1A}'..='\u{FF20}').contains(&c)
        || ('\u{FF3B}'..='\u{FF40}').contains(&c)
        || ('\u{FF5B}'..='\u{FF65}').contains(&c)
        || matches!(c, '¡' | '§' | '«' | '¶' | '·' | '»' | '¿')
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_mark(c: char) -> bool {
    // Combining diacritical marks (the Mn characters NFD produces for Latin,
    // Greek and Cyrillic accents).
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

impl WordPiece {
    /// Parses a `vocab.txt` (one token per line, id = line number).
    pub fn from_vocab(text: &str) -> Result<WordPiece, VocabError> {
        if text.len() > MAX_VOCAB_BYTES {
            return Err(VocabError(format!(
                "{} bytes (limit {MAX_VOCAB_BYTES})",
                text.len()
            )));
        }
        let mut ids = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let tok = line.trim_end_matches('\r');
            ids.entry(tok.to_string()).or_insert(i as u32);
        }
        let get = |t: &str| {
            ids.get(t)
                .copied()
                .ok_or_else(|| VocabError(format!("no {t} token")))
        };
        Ok(WordPiece {
            unk: get("[UNK]")?,
            cls: get("[CLS]")?,
            sep: get("[SEP]")?,
            ids,
        })
    }

    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the vocabulary is empty (never true for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The basic tokenizer's words of `text`.
    pub fn basic(text: &str) -> Vec<String> {
        let mut spaced = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            let cp = c as u32;
            if cp == 0 || cp == 0xFFFD {
                continue;
            }
            if c.is_whitespace() {
                spaced.push(' ');
            } else if c.is_control() {
                continue;
            } else if is_cjk(c) {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            } else {
                spaced.push(c);
            }
        }
        let mut words = Vec::new();
        for w in spaced.split(' ').filter(|w| !w.is_empty()) {
            let lower: String = w.chars().flat_map(char::to_lowercase).collect();
            let mut cur = String::new();
            for c in lower.nfd().filter(|&c| !is_mark(c)) {
                if is_punct(c) {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    words.push(c.to_string());
                } else {
                    cur.push(c);
                }
            }
            if !cur.is_empty() {
                words.push(cur);
            }
        }
        words
    }

    fn pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > MAX_WORD_CHARS {
            out.push(self.unk);
            return;
        }
        let mut found = Vec::new();
        let mut start = 0usize;
        let mut key = String::with_capacity(word.len() + 2);
        while start < chars.len() {
            let mut end = chars.len();
            let mut hit = None;
            while end > start {
                let s = chars[start].0;
                let e = chars.get(end).map_or(word.len(), |c| c.0);
                key.clear();
                if start > 0 {
                    key.push_str("##");
                }
                key.push_str(&word[s..e]);
                if let Some(&id) = self.ids.get(key.as_str()) {
                    hit = Some(id);
                    break;
                }
                end -= 1;
            }
            match hit {
                Some(id) => {
                    found.push(id);
                    start = end;
                }
                None => {
                    out.push(self.unk);
                    return;
                }
            }
        }
        out.extend(found);
    }

    /// Token ids of `text` as one sequence: `[CLS]`, at most `max_len - 2`
    /// pieces, `[SEP]`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.max(2) - 2;
        let mut ids = vec![self.cls];
        let mut buf = Vec::new();
        for w in WordPiece::basic(text) {
            if ids.len() > budget {
                break;
            }
            buf.clear();
            self.pieces(&w, &mut buf);
            let room = budget - (ids.len() - 1);
            ids.extend(buf.iter().take(room));
        }
        ids.push(self.sep);
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> WordPiece {
        let v =
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n,\nworld\n!\nun\n##aff\n##able\nthe\ncafe\n中\n";
        WordPiece::from_vocab(v).expect("vocab")
    }

    #[test]
    fn basic_tokenizer_splits_like_bert() {
        assert_eq!(
            WordPiece::basic("Hello,  WORLD!\tCafé 中国"),
            vec!["hello", ",", "world", "!", "cafe", "中", "国"]
        );
        assert_eq!(WordPiece::basic("a\u{0}b\u{7}c"), vec!["abc"]);
    }

    #[test]
    fn wordpiece_is_greedy_longest_match() {
        let v = vocab();
        // [CLS] un ##aff ##able [SEP]
        assert_eq!(v.encode("unaffable", 16), vec![2, 8, 9, 10, 3]);
        // an unknown word is one [UNK]
        assert_eq!(v.encode("hello zzz", 16), vec![2, 4, 1, 3]);
        assert_eq!(
            v.encode("Hello, world! Café 中", 16),
            vec![2, 4, 5, 6, 7, 12, 13, 3]
        );
        // truncation keeps [CLS] and [SEP]
        assert_eq!(v.encode("hello hello hello", 4), vec![2, 4, 4, 3]);
        assert_eq!(v.encode(&"x".repeat(200), 8), vec![2, 1, 3]);
    }

    #[test]
    fn vocab_without_specials_is_refused() {
        assert!(WordPiece::from_vocab("a\nb\n").is_err());
    }
}
