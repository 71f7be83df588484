//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, as described in
//! `numpy/lib/format.py`): magic `\x93NUMPY`, major/minor version, a
//! little-endian header length (2 bytes for 1.x, 4 bytes for 2.x/3.x) and a
//! Python dict literal `{'descr': …, 'fortran_order': …, 'shape': (…)}`.
//!
//! The header is parsed by a small hand-written literal parser (no
//! evaluation). Object arrays (`'|O'`, or structured dtypes with an object
//! field) are followed by a pickle, which is analysed with the symbolic
//! machine; other arrays only have their size checked against the header.

use aisec_core::Location;

use crate::machine::Ctx;
use crate::rules::{NPY_HEADER, NPY_OBJECT, TRAILING_DATA};
use crate::{finish, Limits, PickleReport, Policy, StreamKind, StreamOut};

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

struct P<'s> {
    s: &'s [u8],
    i: usize,
    depth: u32,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
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
        if self.depth > 32 {
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
                    if items.len() > 64 {
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
                    if items.len() > 64 {
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
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'L')
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[st..self.i]).map_err(|e| e.to_string())?;
                t.trim_end_matches('L')
                    .parse::<i128>()
                    .map(Lit::Int)
                    .map_err(|_| format!("bad integer '{t}'"))
            }
            Some(_) => {
                for (w, v) in [
                    (&b"True"[..], Lit::Bool(true)),
                    (b"False", Lit::Bool(false)),
                    (b"None", Lit::None),
                ] {
                    if self.s[self.i..].starts_with(w) {
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

/// Parses a `.npy` header literal.
pub fn parse_header_literal(s: &[u8]) -> Result<Lit, String> {
    let mut p = P { s, i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    if p.i != s.len() {
        return Err("extra characters after header dict".into());
    }
    Ok(v)
}

/// Python-like rendering of a header literal (bounded by the parser's limits).
fn lit_repr(l: &Lit) -> String {
    match l {
        Lit::Str(s) => format!("'{s}'"),
        Lit::Int(n) => n.to_string(),
        Lit::Bool(b) => (if *b { "True" } else { "False" }).to_string(),
        Lit::None => "None".to_string(),
        Lit::Seq(items) => {
            let inner: Vec<String> = items.iter().map(lit_repr).collect();
            if items.len() == 1 {
                format!("({},)", inner[0])
            } else {
                format!("({})", inner.join(", "))
            }
        }
        Lit::Dict(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|(k, v)| format!("{}: {}", lit_repr(k), lit_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Item size and whether the dtype holds Python objects.
fn dtype_info(d: &Lit, depth: u32) -> Result<(u64, bool), String> {
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
                let (s, o) = dtype_info(sub, depth + 1)?;
                let mut count = 1u64;
                if let Some(Lit::Seq(dims)) = parts.get(2) {
                    for d in dims {
                        match d {
                            Lit::Int(n) if *n >= 0 => count = count.saturating_mul(*n as u64),
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

/// Scans a NumPy `.npy` file.
pub fn scan_npy(data: &[u8], loc: &Location, policy: &Policy, limits: &Limits) -> PickleReport {
    let mut ctx = Ctx::new(policy, limits, loc);
    let out = scan_npy_ctx(&mut ctx, data);
    finish(ctx, out)
}

fn scan_npy_ctx(ctx: &mut Ctx<'_>, data: &[u8]) -> StreamOut {
    let mut out = StreamOut {
        pickles: 0,
        consumed: 0,
        malformed: None,
        kind: StreamKind::Plain,
    };
    let fail = |ctx: &mut Ctx<'_>, out: &mut StreamOut, off: usize, msg: String| {
        ctx.emit(&NPY_HEADER, off as u64, msg.clone(), None);
        out.malformed = Some(msg);
    };
    if data.len() < 10 || &data[..6] != b"\x93NUMPY" {
        fail(ctx, &mut out, 0, "not a .npy file (bad magic)".into());
        return out;
    }
    let major = data[6];
    let (hlen, hstart) = match major {
        1 => (u16::from_le_bytes([data[8], data[9]]) as usize, 10usize),
        2 | 3 => {
            if data.len() < 12 {
                fail(ctx, &mut out, 8, "truncated .npy header length".into());
                return out;
            }
            (
                u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize,
                12usize,
            )
        }
        v => {
            fail(
                ctx,
                &mut out,
                6,
                format!("unsupported .npy version {v}.{}", data[7]),
            );
            return out;
        }
    };
    let hend = hstart.saturating_add(hlen);
    if hend > data.len() {
        fail(
            ctx,
            &mut out,
            8,
            format!("header length {hlen} exceeds file size {}", data.len()),
        );
        return out;
    }
    let header = &data[hstart..hend];
    if major < 3 && !header.is_ascii() {
        fail(
            ctx,
            &mut out,
            hstart,
            "non-ASCII header in .npy version 1/2".into(),
        );
        return out;
    }
    let lit = match parse_header_literal(header) {
        Ok(l) => l,
        Err(e) => {
            fail(ctx, &mut out, hstart, format!("header does not parse: {e}"));
            return out;
        }
    };
    let Lit::Dict(items) = lit else {
        fail(ctx, &mut out, hstart, "header is not a dict".into());
        return out;
    };
    let get = |k: &str| {
        items
            .iter()
            .find(|(a, _)| *a == Lit::Str(k.into()))
            .map(|(_, v)| v)
    };
    let (Some(descr), Some(shape), Some(Lit::Bool(_))) =
        (get("descr"), get("shape"), get("fortran_order"))
    else {
        fail(
            ctx,
            &mut out,
            hstart,
            "header lacks descr/shape/fortran_order".into(),
        );
        return out;
    };
    if items.len() != 3 {
        fail(ctx, &mut out, hstart, "header has unexpected keys".into());
        return out;
    }
    let (itemsize, has_object) = match dtype_info(descr, 0) {
        Ok(x) => x,
        Err(e) => {
            fail(ctx, &mut out, hstart, format!("bad descr: {e}"));
            return out;
        }
    };
    let mut count = 1u64;
    match shape {
        Lit::Seq(dims) => {
            for d in dims {
                match d {
                    Lit::Int(n) if *n >= 0 => {
                        count = count.saturating_mul(u64::try_from(*n).unwrap_or(u64::MAX))
                    }
                    _ => {
                        fail(
                            ctx,
                            &mut out,
                            hstart,
                            "shape is not a tuple of non-negative ints".into(),
                        );
                        return out;
                    }
                }
            }
        }
        _ => {
            fail(ctx, &mut out, hstart, "shape is not a tuple".into());
            return out;
        }
    }
    out.consumed = hend;
    if has_object {
        ctx.emit(
            &NPY_OBJECT,
            hend as u64,
            format!(
                "object array, descr {}, shape {}: data is a pickle",
                lit_repr(descr),
                lit_repr(shape)
            ),
            None,
        );
        let s = crate::scan_stream_from(ctx, data, hend);
        out.pickles = s.pickles;
        out.consumed = s.consumed;
        out.malformed = s.malformed;
        return out;
    }
    let nbytes = count.saturating_mul(itemsize);
    let avail = (data.len() - hend) as u64;
    if nbytes > avail {
        fail(
            ctx,
            &mut out,
            hend,
            format!("array needs {nbytes} bytes of data, file has {avail}"),
        );
        return out;
    }
    out.consumed = hend + nbytes as usize;
    if nbytes < avail {
        ctx.emit(
            &TRAILING_DATA,
            out.consumed as u64,
            format!("{} bytes after the array data", avail - nbytes),
            None,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(&h);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn v3_utf8_header_and_structured_object_dtype() {
        let h =
            "{'descr': [('名', '<i4'), ('o', '|O')], 'fortran_order': False, 'shape': (1,), }\n";
        let mut v = b"\x93NUMPY\x03\x00".to_vec();
        v.extend_from_slice(&(h.len() as u32).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(b"cposix\nsystem\n(S'id'\ntR.");
        let r = scan_npy(
            &v,
            &Location::path("s.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        let ids: Vec<_> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, vec!["AISEC-PICKLE-012", "AISEC-PICKLE-001"]);
        // non-UTF-8 / non-ASCII header in version 1 is rejected
        let mut bad = b"\x93NUMPY\x01\x00\x04\x00{\xff}\n".to_vec();
        bad.extend_from_slice(&[0; 4]);
        let r = scan_npy(
            &bad,
            &Location::path("b.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        assert!(r.malformed.is_some());
        // header length beyond the file
        let r = scan_npy(
            b"\x93NUMPY\x02\x00\xff\xff\xff\xff{}",
            &Location::path("c.npy"),
            &Policy::default(),
            &Limits::default(),
        );
        assert!(r.malformed.unwrap().contains("exceeds"));
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
    }

    #[test]
    fn numeric_array_ok_and_truncated() {
        let l = Location::path("a.npy");
        let ok = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
            &[0u8; 16],
        );
        let r = scan_npy(&ok, &l, &Policy::default(), &Limits::default());
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.consumed, ok.len());
        let short = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }",
            &[0u8; 16],
        );
        let r = scan_npy(&short, &l, &Policy::default(), &Limits::default());
        assert_eq!(r.findings[0].rule_id, "AISEC-PICKLE-013");
    }
}
