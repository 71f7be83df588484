//! The workspace's one NumPy `.npy` header reader (format versions 1.0, 2.0
//! and 3.0, as described in `numpy/lib/format.py`): magic `\x93NUMPY`,
//! major/minor version, a little-endian header length (2 bytes for 1.x,
//! 4 bytes for 2.x/3.x) and a Python dict literal
//! `{'descr': …, 'fortran_order': …, 'shape': (…)}`.
//!
//! The header is parsed by a small hand-written literal parser: strings,
//! integers, `True`/`False`/`None`, tuples, lists and dicts, nothing is
//! evaluated. Like `numpy.lib.format.read_array_header`, the dict must have
//! exactly the three keys; like `np.load`'s `max_header_size`, the header's
//! length is bounded ([`MAX_HEADER_LEN`]).
//!
//! It lives in `aisec-core` because two crates that do not depend on each
//! other read `.npy`: `aisec-pickle` (scanning object arrays, whose data is a
//! pickle) and `aisec-model` (loading numeric arrays as datasets). It is
//! small, pure and bounded: no allocation beyond the parsed literal (at most
//! 64 items per container, 32 levels deep), never a panic on hostile bytes.

use std::fmt;

/// The six magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header accepted (1 MiB; NumPy writes under 1 KiB, and `np.load`
/// refuses more than 10,000 bytes by default).
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// Most items in one header tuple, list or dict.
const MAX_ITEMS: usize = 64;
/// Deepest nesting of header literals.
const MAX_DEPTH: u32 = 32;

/// Why bytes are not a valid `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NpyError {
    /// Byte offset in the file the problem is at.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> NpyError {
    NpyError {
        offset,
        message: message.into(),
    }
}

/// A parsed Python literal of the header.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `'text'` or `"text"`.
    Str(String),
    /// An integer.
    Int(i128),
    /// `True`/`False`.
    Bool(bool),
    /// `None`.
    None,
    /// `( … )` or `[ … ]`.
    Seq(Vec<Lit>),
    /// `{ key: value, … }`.
    Dict(Vec<(Lit, Lit)>),
}

/// Python-like rendering (bounded by the parser's limits).
impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::Str(s) => write!(f, "'{s}'"),
            Lit::Int(n) => write!(f, "{n}"),
            Lit::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Lit::None => f.write_str("None"),
            Lit::Seq(items) => {
                f.write_str("(")?;
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            Lit::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

struct P<'s> {
    s: &'s [u8],
    i: usize,
    depth: u32,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn value(&mut self) -> Result<Lit, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("header literal nested too deeply".into());
        }
        let r = self.value_inner();
        self.depth -= 1;
        r
    }
    fn value_inner(&mut self) -> Result<Lit, String> {
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let c = *self.s.get(self.i).ok_or("unterminated string")?;
                    self.i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' {
                        let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                        self.i += 1;
                        out.push(e);
                    } else {
                        out.push(c);
                    }
                }
                Ok(Lit::Str(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    if items.len() > MAX_ITEMS {
                        return Err("header sequence too long".into());
                    }
                    items.push(self.value()?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return Err("expected ',' in sequence".into());
                    }
                }
                Ok(Lit::Seq(items))
            }
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    if items.len() > MAX_ITEMS {
                        return Err("header dict too long".into());
                    }
                    let k = self.value()?;
                    if !self.eat(b':') {
                        return Err("expected ':' in dict".into());
                    }
                    let v = self.value()?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return Err("expected ',' in dict".into());
                    }
                }
                Ok(Lit::Dict(items))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let st = self.i;
                self.i += 1;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|&b| b.is_ascii_digit() || b == b'L')
                {
                    self.i += 1;
                }
                let t = String::from_utf8_lossy(&self.s[st..self.i]);
                t.trim_end_matches('L')
                    .parse::<i128>()
                    .map(Lit::Int)
                    .map_err(|_| format!("bad integer '{t}'"))
            }
            Some(_) => {
                let rest = self.s.get(self.i..).unwrap_or_default();
                for (w, v) in [
                    (&b"True"[..], Lit::Bool(true)),
                    (b"False", Lit::Bool(false)),
                    (b"None", Lit::None),
                ] {
                    if rest.starts_with(w) {
                        self.i += w.len();
                        return Ok(v);
                    }
                }
                Err(format!("unexpected character at header offset {}", self.i))
            }
            None => Err("unexpected end of header".into()),
        }
    }
}

/// Parses a `.npy` header literal (the text after the preamble).
pub fn parse_header_literal(s: &[u8]) -> Result<Lit, String> {
    let mut p = P { s, i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != s.len() {
        return Err("extra characters after header dict".into());
    }
    Ok(v)
}

/// The fixed part of a `.npy` file before the header text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    /// Format major version: 1, 2 or 3.
    pub major: u8,
    /// Format minor version.
    pub minor: u8,
    /// Offset of the header text (10 or 12).
    pub header_start: usize,
    /// Length of the header text in bytes (at most [`MAX_HEADER_LEN`]).
    pub header_len: usize,
}

impl Preamble {
    /// Offset of the array data: the end of the header text.
    pub fn data_start(&self) -> usize {
        self.header_start + self.header_len
    }
}

/// Reads the preamble from the first bytes of a file (10 are enough for
/// version 1, 12 for versions 2 and 3).
pub fn preamble(b: &[u8]) -> Result<Preamble, NpyError> {
    if b.len() < 10 || &b[..6] != MAGIC {
        return Err(err(0, "not a .npy file (bad magic)"));
    }
    let (major, minor) = (b[6], b[7]);
    let (header_start, header_len) = match major {
        1 => (10, usize::from(u16::from_le_bytes([b[8], b[9]]))),
        2 | 3 => {
            let Some(&[a, b2, c, d]) = b.get(8..12) else {
                return Err(err(8, "truncated .npy header length"));
            };
            let n = u32::from_le_bytes([a, b2, c, d]);
            (12, usize::try_from(n).unwrap_or(usize::MAX))
        }
        v => return Err(err(6, format!("unsupported .npy version {v}.{minor}"))),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(err(
            8,
            format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"),
        ));
    }
    Ok(Preamble {
        major,
        minor,
        header_start,
        header_len,
    })
}

/// The header dict: what the array's data looks like.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// `descr`: a dtype string such as `'<f4'`, or a structured dtype's
    /// list of `(name, dtype[, shape])` tuples.
    pub descr: Lit,
    /// `fortran_order`: column-major data.
    pub fortran_order: bool,
    /// `shape`: the dimensions.
    pub shape: Vec<u64>,
}

impl Header {
    /// The number of values (`shape`'s product), saturating at `u64::MAX`.
    pub fn count(&self) -> u64 {
        self.shape.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }
}

/// Parses the header text of a version-`major` file found at byte `offset`
/// (for error offsets). Versions 1 and 2 require ASCII text.
pub fn parse_header(major: u8, text: &[u8], offset: usize) -> Result<Header, NpyError> {
    if major < 3 && !text.is_ascii() {
        return Err(err(offset, "non-ASCII header in .npy version 1/2"));
    }
    let lit = parse_header_literal(text)
        .map_err(|e| err(offset, format!("header does not parse: {e}")))?;
    let Lit::Dict(items) = lit else {
        return Err(err(offset, "header is not a dict"));
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(a, _)| matches!(a, Lit::Str(s) if s == k))
            .map(|(_, v)| v)
    };
    let (Some(descr), Some(shape), Some(&Lit::Bool(fortran_order))) =
        (get("descr"), get("shape"), get("fortran_order"))
    else {
        return Err(err(offset, "header lacks descr/shape/fortran_order"));
    };
    if items.len() != 3 {
        return Err(err(offset, "header has unexpected keys"));
    }
    let Lit::Seq(dims) = shape else {
        return Err(err(offset, "shape is not a tuple"));
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            Lit::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| err(offset, "shape is not a tuple of non-negative ints"))?;
    Ok(Header {
        descr: descr.clone(),
        fortran_order,
        shape,
    })
}

/// Reads the preamble and header of a whole file held in memory; the header
/// must lie inside `b`.
pub fn read_header(b: &[u8]) -> Result<(Preamble, Header), NpyError> {
    let pre = preamble(b)?;
    let text = b.get(pre.header_start..pre.data_start()).ok_or_else(|| {
        err(
            8,
            format!(
                "header length {} exceeds file size {}",
                pre.header_len,
                b.len()
            ),
        )
    })?;
    let header = parse_header(pre.major, text, pre.header_start)?;
    Ok((pre, header))
}

/// Item size in bytes of a dtype, and whether it holds Python objects
/// (`'|O'`, or a structured dtype with an object field). Sizes saturate.
pub fn dtype_info(d: &Lit) -> Result<(u64, bool), String> {
    dtype_info_at(d, 0)
}

fn dtype_info_at(d: &Lit, depth: u32) -> Result<(u64, bool), String> {
    if depth > 8 {
        return Err("dtype nested too deeply".into());
    }
    match d {
        Lit::Str(s) => {
            let t = s.trim_start_matches(['<', '>', '|', '=']);
            let kind = t.chars().next().ok_or("empty dtype")?;
            if kind == 'O' {
                return Ok((8, true));
            }
            let digits: String = t[kind.len_utf8()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("dtype '{s}' has no size"))?;
            Ok((if kind == 'U' { n.saturating_mul(4) } else { n }, false))
        }
        Lit::Seq(fields) => {
            let mut size = 0u64;
            let mut obj = false;
            for f in fields {
                let Lit::Seq(parts) = f else {
                    return Err("structured dtype field is not a tuple".into());
                };
                let sub = parts.get(1).ok_or("structured dtype field without type")?;
                let (s, o) = dtype_info_at(sub, depth + 1)?;
                let mut count = 1u64;
                if let Some(Lit::Seq(dims)) = parts.get(2) {
                    for d in dims {
                        match d {
                            Lit::Int(n) if *n >= 0 => {
                                count = count.saturating_mul(u64::try_from(*n).unwrap_or(u64::MAX))
                            }
                            _ => return Err("bad subarray shape".into()),
                        }
                    }
                }
                size = size.saturating_add(s.saturating_mul(count));
                obj |= o;
            }
            Ok((size, obj))
        }
        _ => Err("descr is neither a string nor a field list".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(major: u8, header: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[major, 0]);
        if major == 1 {
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(header.as_bytes());
        v
    }

    #[test]
    fn literal_parser() {
        let l = parse_header_literal(b"{'descr': [('a', '<i4'), ('b', '|O', (2,))], 'fortran_order': False, 'shape': (3, ), }").unwrap();
        let Lit::Dict(items) = l else {
            panic!("not a dict")
        };
        assert_eq!(items.len(), 3);
        assert!(parse_header_literal(b"{'a': __import__('os')}").is_err());
        assert!(parse_header_literal(&[b'['; 100]).is_err());
        assert!(parse_header_literal(b"(1,2,").is_err());
        assert!(parse_header_literal(b"'abc").is_err());
    }

    #[test]
    fn reads_versions_1_and_3() {
        let (p, h) = read_header(&file(
            1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
        ))
        .unwrap();
        assert_eq!((p.major, p.header_start), (1, 10));
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(h.count(), 6);
        assert_eq!(h.descr, Lit::Str("<f4".into()));
        assert_eq!(dtype_info(&h.descr), Ok((4, false)));
        let (p, h) = read_header(&file(
            3,
            "{'descr': [('名', '<i4'), ('o', '|O')], 'fortran_order': True, 'shape': (), }",
        ))
        .unwrap();
        assert_eq!(p.header_start, 12);
        assert!(h.fortran_order);
        assert_eq!(dtype_info(&h.descr), Ok((12, true)));
        assert_eq!(h.descr.to_string(), "(('名', '<i4'), ('o', '|O'))");
    }

    #[test]
    fn hostile_headers_are_errors() {
        for (bytes, needle) in [
            (b"\x93NUMPX\x01\x00\x00\x00".to_vec(), "bad magic"),
            (b"\x93NUMPY\x02\x00\x00\x00".to_vec(), "truncated"),
            (b"\x93NUMPY\x09\x00\x00\x00".to_vec(), "version 9.0"),
            (b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}".to_vec(), "exceeds"),
            (b"\x93NUMPY\x01\x00\x40\x00{}".to_vec(), "exceeds file size"),
            (file(1, "{\u{e9}}"), "non-ASCII"),
            (file(1, "[1]"), "not a dict"),
            (file(1, "{'descr': '<f4', 'shape': (1,)}"), "lacks"),
            (
                file(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                ),
                "unexpected keys",
            ),
            (
                file(
                    1,
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                ),
                "non-negative",
            ),
            (
                file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': 3}"),
                "not a tuple",
            ),
        ] {
            let e = read_header(&bytes).unwrap_err();
            assert!(e.message.contains(needle), "{e} lacks {needle}");
        }
    }
}
