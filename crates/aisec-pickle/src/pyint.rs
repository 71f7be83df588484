//! Integer parsing exactly as CPython's C unpickler (`Modules/_pickle.c`,
//! which `pickle.load` uses) parses the text opcodes:
//!
//! * `INT` (`I`): C `strtol(s, &end, 0)` first (leading whitespace, sign,
//!   `0x` hex, C-style leading-zero octal, accepted when it stops at the
//!   newline or a NUL byte; a 2-character 0/1 is a bool), else
//!   `PyLong_FromString(s, NULL, 0)`;
//! * `LONG` (`L`): one `L` right before the newline is dropped, then
//!   `PyLong_FromString(s, NULL, 0)`;
//! * `GET`/`PUT` (`g`/`p`): `PyLong_FromString(s, NULL, 10)`; negative keys
//!   fail.
//!
//! `PyLong_FromString` is Python's `int()`: surrounding whitespace, a sign,
//! single underscores between digits, base prefixes `0x`/`0o`/`0b` in base
//! 0, leading zeros only in base 10 (base 0 allows them only for zero), and
//! the text ends at the first NUL byte (it is a C string).
//!
//! A scanner that is stricter than this rejects as "malformed" a pickle that
//! `pickle.load` runs (issue 20). The committed vectors in
//! `tests/vectors/int_forms.json` were produced by CPython itself
//! (`scripts/pickle-diff/gen_vectors.py`) and `tests/int_forms.rs` replays them.

/// An integer value as the unpickler would build it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyInt {
    /// Fits in i64.
    Small(i64),
    /// Larger than i64 (the value is not kept; the text is).
    Big,
}

fn c_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Python's `int(text, base)` for base 0 or 10 over a C string.
pub(crate) fn py_long_from_string(s: &[u8], base: u32) -> Option<PyInt> {
    let s = match s.iter().position(|&c| c == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    let (mut i, neg) = space_and_sign(s);
    let mut radix = if base == 0 { 10 } else { base };
    let mut prefixed = false;
    if base == 0 && i + 1 < s.len() && s[i] == b'0' {
        radix = match s[i + 1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 10,
        };
        if radix != 10 {
            i += 2;
            prefixed = true;
        }
    }
    let start = i;
    let mut acc: i128 = 0;
    let mut big = false;
    let mut ndigits = 0usize;
    let mut prev_digit = prefixed; // "0x_1f" is valid: underscore after a prefix
    let mut nonzero_seen = false;
    let mut first_zero = false;
    while i < s.len() {
        let c = s[i];
        if c == b'_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        if ndigits == 0 {
            first_zero = d == 0;
        }
        if d != 0 {
            nonzero_seen = true;
        }
        ndigits += 1;
        prev_digit = true;
        if !big {
            match acc
                .checked_mul(radix as i128)
                .and_then(|a| a.checked_add(d as i128))
            {
                Some(a) if a <= (i64::MAX as i128) + 1 => acc = a,
                _ => big = true,
            }
        }
        i += 1;
    }
    if ndigits == 0 || !prev_digit || i == start {
        return None;
    }
    // Base 0 without a prefix: "010" is an error, "000" is zero.
    if base == 0 && !prefixed && first_zero && nonzero_seen {
        return None;
    }
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    if i != s.len() {
        return None;
    }
    if big {
        return Some(PyInt::Big);
    }
    let v = if neg { -acc } else { acc };
    match i64::try_from(v) {
        Ok(v) => Some(PyInt::Small(v)),
        Err(_) => Some(PyInt::Big),
    }
}

/// C's `strtol` prologue: leading white space and an optional sign; the
/// index after them and whether the sign was `-`.
fn space_and_sign(s: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    let neg = i < s.len() && s[i] == b'-';
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        i += 1;
    }
    (i, neg)
}

/// C `strtol(s, &end, 0)` on a 64-bit long: (value, end index, overflow).
fn c_strtol0(s: &[u8]) -> (i64, usize, bool) {
    let (mut i, neg) = space_and_sign(s);
    let mut radix = 10;
    if i < s.len() && s[i] == b'0' {
        if i + 2 < s.len() && (s[i + 1] | 0x20) == b'x' && s[i + 2].is_ascii_hexdigit() {
            radix = 16;
            i += 2;
        } else {
            radix = 8;
        }
    }
    let digits_start = i;
    let mut acc: i128 = 0;
    let mut overflow = false;
    while i < s.len() {
        let Some(d) = (s[i] as char).to_digit(radix) else {
            break;
        };
        if !overflow {
            acc = acc * radix as i128 + d as i128;
            if acc > (i64::MAX as i128) + 1 {
                overflow = true;
            }
        }
        i += 1;
    }
    if i == digits_start {
        return (0, 0, false);
    }
    let v = if neg { -acc } else { acc };
    match i64::try_from(v) {
        Ok(v) => (v, i, overflow),
        Err(_) => (0, i, true),
    }
}

/// What the `INT` opcode pushes for `line` (the text before the newline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntOp {
    Bool(bool),
    Int(PyInt),
}

/// `load_int` of `_pickle.c`. `None`: "could not convert string to int".
pub(crate) fn load_int(line: &[u8]) -> Option<IntOp> {
    if line.is_empty() {
        return None; // len < 2: bad readline
    }
    let (x, end, overflow) = c_strtol0(line);
    if !overflow && (end == line.len() || line[end] == 0) {
        if line.len() == 2 && (x == 0 || x == 1) {
            return Some(IntOp::Bool(x == 1));
        }
        return Some(IntOp::Int(PyInt::Small(x)));
    }
    py_long_from_string(line, 0).map(IntOp::Int)
}

/// `load_long` of `_pickle.c`.
pub(crate) fn load_long(line: &[u8]) -> Option<PyInt> {
    if line.is_empty() {
        return None;
    }
    let l = match line.last() {
        Some(b'L') => &line[..line.len() - 1],
        _ => line,
    };
    py_long_from_string(l, 0)
}

/// The memo key of `GET`/`PUT` (`None`: invalid, negative or too large).
pub(crate) fn memo_key(line: &[u8]) -> Option<u64> {
    match py_long_from_string(line, 10)? {
        PyInt::Small(v) if v >= 0 => Some(v as u64),
        _ => None,
    }
}

/// `s` is a float literal of CPython's `_Py_dg_strtod` / `_Py_parse_inf_or_nan`
/// grammar: a sign, digits with an optional point (`1.`, `.5`), an optional
/// exponent, or `inf`/`infinity`/`nan` in any case. Nothing else.
fn strict_float_text(s: &[u8]) -> bool {
    let t = match s.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    let lower = t.to_ascii_lowercase();
    if matches!(lower.as_slice(), b"inf" | b"infinity" | b"nan") {
        return true;
    }
    let mut i = 0;
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    let mut n = digits(&mut i);
    if i < t.len() && t[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if i < t.len() && (t[i] | 0x20) == b'e' {
        i += 1;
        if i < t.len() && (t[i] == b'+' || t[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == t.len()
}

fn parse_strict(s: &[u8]) -> Option<f64> {
    if !strict_float_text(s) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<f64>().ok()
}

/// What the `FLOAT` opcode pushes for `line` (the text before the newline),
/// accepted when either CPython unpickler accepts it:
///
/// * the C one (`load_float` in `_pickle.c`: `PyOS_string_to_double`, which
///   takes no surrounding whitespace or underscores, stops at a NUL byte and
///   raises on overflow), or
/// * the pure-Python one (`float(line)`: surrounding whitespace, single
///   underscores between digits, overflow gives `inf`), which `dill` and
///   other `pickle._Unpickler` subclasses run.
pub(crate) fn load_float(line: &[u8]) -> Option<f64> {
    let c_text = match line.iter().position(|&c| c == 0) {
        Some(n) => &line[..n],
        None => line,
    };
    if let Some(v) = parse_strict(c_text) {
        let literal_inf = c_text.iter().any(|c| (*c | 0x20) == b'i');
        if v.is_finite() || literal_inf {
            return Some(v);
        }
    }
    // float(): strip ASCII whitespace, then underscores only between digits.
    let mut a = 0;
    let mut b = line.len();
    while a < b && c_isspace(line[a]) {
        a += 1;
    }
    while b > a && c_isspace(line[b - 1]) {
        b -= 1;
    }
    let t = &line[a..b];
    let mut clean = Vec::with_capacity(t.len());
    for (k, &c) in t.iter().enumerate() {
        if c == b'_' {
            let prev = k > 0 && t[k - 1].is_ascii_digit();
            let next = t.get(k + 1).is_some_and(|d| d.is_ascii_digit());
            if !(prev && next) {
                return None;
            }
            continue;
        }
        clean.push(c);
    }
    parse_strict(&clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_like_python() {
        let ok = |s: &str, v: i64| {
            assert_eq!(
                py_long_from_string(s.as_bytes(), 0),
                Some(PyInt::Small(v)),
                "{s}"
            )
        };
        ok(" 1_000 ", 1000);
        ok("-0x_1f", -31);
        ok("0o17", 15);
        ok("0b101", 5);
        ok("000", 0);
        ok("0_0", 0);
        ok("+7\t", 7);
        for bad in ["010", "1__0", "_1", "1_", "0x", "", " ", "1 2", "0x_"] {
            assert_eq!(py_long_from_string(bad.as_bytes(), 0), None, "{bad}");
        }
        assert_eq!(py_long_from_string(b"007", 10), Some(PyInt::Small(7)));
        assert_eq!(py_long_from_string(b"0x7", 10), None);
        assert_eq!(py_long_from_string(b"5\x00junk", 10), Some(PyInt::Small(5)));
        assert_eq!(
            py_long_from_string(b"123456789012345678901234567890", 10),
            Some(PyInt::Big)
        );
    }

    #[test]
    fn float_like_either_cpython_unpickler() {
        let f = |s: &[u8]| load_float(s);
        // C: text ends at NUL; either: plain forms, inf/nan spellings
        assert_eq!(f(b"1\x00x"), Some(1.0));
        assert_eq!(f(b"1."), Some(1.0));
        assert_eq!(f(b".5"), Some(0.5));
        assert_eq!(f(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert!(f(b"nan").is_some_and(f64::is_nan));
        // float() only: whitespace, underscores, overflow to inf
        assert_eq!(f(b" 1.5\r"), Some(1.5));
        assert_eq!(f(b"1_0.5"), Some(10.5));
        assert_eq!(f(b"1e999"), Some(f64::INFINITY));
        // neither
        for bad in [
            &b""[..],
            b".",
            b"e5",
            b"1e",
            b"1.5L",
            b"_1.0",
            b"1__0.0",
            b"0x1p3",
            b"nanx",
            b"1,5",
        ] {
            assert_eq!(f(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn int_opcode_like_c() {
        assert_eq!(load_int(b"00"), Some(IntOp::Bool(false)));
        assert_eq!(load_int(b"+1"), Some(IntOp::Bool(true)));
        assert_eq!(load_int(b"010"), Some(IntOp::Int(PyInt::Small(8))));
        assert_eq!(load_int(b"0x10"), Some(IntOp::Int(PyInt::Small(16))));
        assert_eq!(load_int(b" 1_000"), Some(IntOp::Int(PyInt::Small(1000))));
        assert_eq!(load_int(b"12\x00zz"), Some(IntOp::Int(PyInt::Small(12))));
        assert_eq!(load_int(b"abc"), None);
        assert_eq!(load_long(b"10L"), Some(PyInt::Small(10)));
        assert_eq!(load_long(b"0x10"), Some(PyInt::Small(16)));
        assert_eq!(memo_key(b" 0_1 "), Some(1));
        assert_eq!(memo_key(b"-1"), None);
    }
}
