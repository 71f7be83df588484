//! Making untrusted strings safe to print on a terminal.
//!
//! File names, archive member names, pickle `GLOBAL` names and model
//! responses are chosen by whoever made the input. Printed raw, an escape
//! sequence in one of them can move the cursor, erase lines or retitle the
//! window and so hide a finding; a Unicode bidirectional override can make
//! `evil.txt` read as another name ("Trojan Source", Boucher and Anderson,
//! 2021, CVE-2021-42574). Every text-mode output escapes them.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` can change how a terminal shows what follows: C0 controls
/// (including newline, carriage return and tab), DEL, C1 controls, and the
/// Unicode bidirectional formatting characters (embeddings, overrides,
/// isolates and the implicit marks).
pub fn is_dangerous(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// `s` with every [dangerous](is_dangerous) character written as a visible
/// Rust-style escape: `\x1b`, `\r`, `\n`, `\t`, `\x7f` for C0 and DEL,
/// `\u{9b}` or `\u{202e}` above that. A backslash is left alone, so the
/// result is for people to read, not to be unescaped. Borrows when there is
/// nothing to escape.
pub fn escape_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_dangerous(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_dangerous(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "models/weights.pt!archive/data.pkl é 字";
        assert!(matches!(escape_terminal(s), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape_terminal("a\x1b[31mb"), r"a\x1b[31mb");
        assert_eq!(escape_terminal("x\r\n\ty\x7f"), r"x\r\n\ty\x7f");
        assert_eq!(escape_terminal("\u{9b}2J"), r"\u{9b}2J");
        assert_eq!(escape_terminal("abc\u{202e}txt.exe"), r"abc\u{202e}txt.exe");
        assert_eq!(
            escape_terminal("\u{2066}\u{2069}\u{200f}"),
            r"\u{2066}\u{2069}\u{200f}"
        );
        assert!(!escape_terminal("\u{0}\u{1f}\u{85}")
            .chars()
            .any(is_dangerous));
    }
}
