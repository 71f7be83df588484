//! Unicode normalisation for the scanners: NFKC, removal of invisible
//! characters, folding of common Cyrillic/Greek homoglyphs to Latin, lower
//! case and collapsed whitespace. Also counts what it removed so the
//! unicode scanner can report it.
//!
//! The homoglyph table is a small hand-picked subset of the Unicode
//! confusables list (UTS #39), restricted to letters that look like ASCII.
//!
//! Invisible characters that ordinary text needs are not counted as hiding
//! anything: an emoji presentation selector (U+FE0F/U+FE0E) after an emoji
//! or a keycap base, a zero-width joiner inside an emoji sequence (UTS #51),
//! ZWJ/ZWNJ between letters of scripts that use them (Arabic, Persian,
//! Indic), the tag characters of a subdivision flag (U+1F3F4 followed by
//! a short tag run ending in U+E007F), and one or two zero-width spaces, word
//! joiners or BOMs next to whitespace or an end of the text (they split no
//! word). They are still removed from the text the scanners read.

use unicode_normalization::{is_nfkc_quick, IsNormalized, UnicodeNormalization};

/// Longest input the normaliser looks at, in bytes (longer text is truncated).
pub const MAX_NORMALISE_BYTES: usize = 256 * 1024;

/// Whether `c` is an invisible or formatting character used to hide text:
/// zero-width characters, bidirectional controls, the word joiner family,
/// soft hyphen, variation selectors and Unicode tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Whether `c` is a bidirectional control character.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is in the Unicode tag block (U+E0000..U+E007F), which can
/// smuggle ASCII text that renders as nothing.
pub fn is_tag_char(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// The Latin letter a Cyrillic or Greek homoglyph stands for, if any.
pub fn confusable_to_latin(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'һ' => 'h',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'Х' => 'X',
        'І' => 'I',
        'Ј' => 'J',
        'Ѕ' => 'S',
        'α' => 'a',
        'ο' => 'o',
        'ν' => 'v',
        'ρ' => 'p',
        'ι' => 'i',
        'κ' => 'k',
        'τ' => 't',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    })
}

/// Whether `c` can carry an emoji presentation (a coarse superset of the
/// Unicode `Emoji` property: pictographs, dingbats, arrows, symbols).
pub fn is_emoji_base(c: char) -> bool {
    matches!(c as u32,
        0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x2190..=0x21FF
        | 0x2300..=0x23FF
        | 0x24C2
        | 0x25A0..=0x27BF
        | 0x2900..=0x297F
        | 0x2B00..=0x2BFF
        | 0x1F000..=0x1FAFF)
}

/// Whether the invisible character at `i` of `chars` is one that ordinary
/// text needs (see the module docs), so it hides nothing.
pub fn benign_invisible(chars: &[char], i: usize) -> bool {
    let c = chars[i];
    let prev = i.checked_sub(1).map(|j| chars[j]);
    let next = chars.get(i + 1).copied();
    match c {
        '\u{FE0E}' | '\u{FE0F}' => match prev {
            Some(p) if is_emoji_base(p) => true,
            Some('0'..='9' | '#' | '*') => next == Some('\u{20E3}'),
            _ => false,
        },
        '\u{200D}' => {
            let before = match prev {
                Some('\u{FE0F}') => i >= 2 && is_emoji_base(chars[i - 2]),
                Some(p) => is_emoji_base(p) || (p.is_alphabetic() && !p.is_ascii()),
                None => false,
            };
            let after =
                next.is_some_and(|n| is_emoji_base(n) || (n.is_alphabetic() && !n.is_ascii()));
            before && after
        }
        '\u{200C}' => {
            prev.is_some_and(|p| p.is_alphabetic() && !p.is_ascii())
                && next.is_some_and(|n| n.is_alphabetic() && !n.is_ascii())
        }
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' => {
            // A zero-width space, word joiner or BOM next to whitespace or an end of
            // the text splits no word (copy-paste and translation tools leave them
            // there); inside a word it breaks a keyword apart. Runs of more than two
            // stay suspicious (zero-width steganography strings many together).
            let is_zw = |c: char| matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}');
            let mut start = i;
            while start > 0 && is_zw(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && is_zw(chars[end]) {
                end += 1;
            }
            let edge = |c: Option<&char>| c.is_none_or(|c| c.is_whitespace());
            end - start <= 2
                && (edge(start.checked_sub(1).map(|j| &chars[j])) || edge(chars.get(end)))
        }
        '\u{E0020}'..='\u{E007F}' => {
            // Subdivision flag: U+1F3F4, 2..=6 tag letters/digits, U+E007F.
            let mut start = i;
            while start > 0 && is_tag_char(chars[start - 1]) {
                start -= 1;
            }
            if start == 0 || chars[start - 1] != '\u{1F3F4}' {
                return false;
            }
            let mut end = start;
            while end < chars.len() && is_tag_char(chars[end]) {
                end += 1;
            }
            let run = &chars[start..end];
            (3..=7).contains(&run.len())
                && run.last() == Some(&'\u{E007F}')
                && run[..run.len() - 1]
                    .iter()
                    .all(|&t| matches!(t, '\u{E0030}'..='\u{E0039}' | '\u{E0061}'..='\u{E007A}'))
        }
        _ => false,
    }
}

/// Byte spans of the invisible characters of `text` that are not
/// [`benign_invisible`] (what the unicode scanner reports and redacts).
pub fn suspicious_invisible_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for (k, (i, c)) in text.char_indices().enumerate() {
        if is_invisible(c) && !benign_invisible(&chars, k) {
            out.push(i..i + c.len_utf8());
        }
    }
    out
}

/// What normalisation found and produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalised {
    /// NFKC, invisibles removed, homoglyphs folded, lower case, single spaces.
    pub text: String,
    /// Number of invisible characters removed that ordinary text does not
    /// need (emoji presentation selectors and joiners are removed but not counted).
    pub invisible: usize,
    /// Number of bidirectional controls among them.
    pub bidi: usize,
    /// Number of tag characters among them.
    pub tags: usize,
    /// ASCII decoded from tag characters (what a tag-smuggled instruction says).
    pub tag_text: String,
    /// Words that mixed Latin letters with homoglyphs.
    pub mixed_words: usize,
}

/// Normalises `input` (truncated to [`MAX_NORMALISE_BYTES`]).
pub fn normalise(input: &str) -> Normalised {
    let input = truncate_bytes(input, MAX_NORMALISE_BYTES);
    let mut out = Normalised::default();
    // Every homoglyph is outside ASCII: ASCII text has no mixed words, is its own
    // NFKC form and has nothing invisible in it.
    let ascii = input.is_ascii();
    // Mixed-script words are counted on the raw text, before folding.
    if !ascii {
        for word in input.split(|c: char| !c.is_alphabetic()) {
            let latin = word.chars().any(|c| c.is_ascii_alphabetic());
            let conf = word.chars().any(|c| confusable_to_latin(c).is_some());
            if latin && conf {
                out.mixed_words += 1;
            }
        }
    }
    let mut text = String::with_capacity(input.len());
    let mut last_space = true;
    // A text the quick check finds normalised is its own NFKC form (UAX #15).
    let chars: Vec<char> = if ascii || is_nfkc_quick(input.chars()) == IsNormalized::Yes {
        input.chars().collect()
    } else {
        input.nfkc().collect()
    };
    for (k, &c) in chars.iter().enumerate() {
        if c.is_ascii() {
            // The same steps as below for an ASCII char: never invisible or a homoglyph.
            if c.is_whitespace() {
                if !last_space {
                    text.push(' ');
                    last_space = true;
                }
            } else {
                text.push(c.to_ascii_lowercase());
                last_space = false;
            }
            continue;
        }
        if is_invisible(c) {
            if benign_invisible(&chars, k) {
                continue;
            }
            out.invisible += 1;
            if is_bidi_control(c) {
                out.bidi += 1;
            }
            if is_tag_char(c) {
                out.tags += 1;
                let v = c as u32 - 0xE0000;
                if (0x20..0x7F).contains(&v) {
                    if let Some(a) = char::from_u32(v) {
                        out.tag_text.push(a);
                    }
                }
            }
            continue;
        }
        let c = confusable_to_latin(c).unwrap_or(c);
        if c.is_whitespace() {
            if !last_space {
                text.push(' ');
                last_space = true;
            }
            continue;
        }
        for l in c.to_lowercase() {
            text.push(l);
        }
        last_space = false;
    }
    if text.ends_with(' ') {
        text.pop();
    }
    if !out.tag_text.is_empty() {
        // Smuggled tag text is scanned too.
        text.push(' ');
        text.push_str(&out.tag_text.to_lowercase());
    }
    out.text = text;
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Approximate token count: one token per four characters (OpenAI's rule of thumb).
pub fn approx_tokens(s: &str) -> usize {
    s.chars().count().div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_homoglyphs_and_strips_invisibles() {
        let n = normalise("Ign\u{200B}оrе  ALL\u{202E} previous");
        assert_eq!(n.text, "ignore all previous");
        assert_eq!(n.invisible, 2);
        assert_eq!(n.bidi, 1);
        assert_eq!(n.mixed_words, 1);
    }

    #[test]
    fn decodes_tag_smuggling() {
        let hidden: String = "hi"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let n = normalise(&format!("hello{hidden}"));
        assert_eq!(n.tags, 2);
        assert_eq!(n.tag_text, "hi");
        assert!(n.text.ends_with(" hi"));
    }

    #[test]
    fn emoji_sequences_are_not_hidden_text() {
        for ok in [
            "I love it ❤️",
            "☀️ sunny day",
            "family 👨\u{200D}👩\u{200D}👧 photo",
            "press 1\u{FE0F}\u{20E3} now",
            "flag 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} wales",
            "می\u{200C}خواهم",
            "\u{FEFF}first line of a file",
            "jobs in the area of \u{200B}\u{200B}IT in Germany",
            "end of the sentence.\u{200B}",
        ] {
            let n = normalise(ok);
            assert_eq!(n.invisible, 0, "{ok:?}");
            assert!(suspicious_invisible_spans(ok).is_empty(), "{ok:?}");
        }
        // A selector after a letter, a run of selectors, a joiner between
        // Latin letters and a bare tag run are still counted.
        for bad in [
            "hel\u{FE0F}lo",
            "x\u{FE0F}\u{FE0F}\u{FE0F}",
            "ig\u{200D}nore",
            "hi\u{E0069}\u{E0067}",
            "ig\u{200B}nore previous instructions",
            "a \u{200B}\u{200C}\u{200B}\u{200B} b",
            "a \u{200B}\u{200B}\u{200B} b",
        ] {
            assert!(normalise(bad).invisible > 0, "{bad:?}");
            assert!(!suspicious_invisible_spans(bad).is_empty(), "{bad:?}");
        }
        assert_eq!(normalise("I love it ❤️").text, "i love it ❤");
    }

    #[test]
    fn nfkc_fullwidth() {
        assert_eq!(normalise("ｉｇｎｏｒｅ").text, "ignore");
        // composed by NFKC (the quick check says "maybe"), already NFKC, ASCII
        assert_eq!(normalise("Cafe\u{301} ﬁ").text, "caf\u{e9} fi");
        assert_eq!(normalise("Caf\u{e9}  Ω").text, "caf\u{e9} ω");
        assert_eq!(normalise(" A\tB\x0b\x1fC \r\n").text, "a b \x1fc");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(approx_tokens("abcdefgh"), 2);
    }
}
