//! The workspace's one protobuf wire-format reader (and the few encoders
//! aisec needs to write ONNX files back).
//!
//! Decodes one message level at a time into `(field number, value)` pairs
//! following the encoding described in the protobuf documentation
//! ("Encoding", protobuf.dev): varints (wire type 0), 64-bit (1),
//! length-delimited (2) and 32-bit (5) fields. Group wire types (3, 4) are
//! deprecated and never produced by TensorFlow or ONNX, so they are rejected.
//! Nesting depth is bounded by callers through [`MAX_DEPTH`].
//!
//! It lives in `aisec-core` because two crates that do not depend on each
//! other read protobuf: `aisec-formats` (scanning ONNX and TensorFlow files)
//! and `aisec-model` (loading ONNX graphs to run them). It is small, pure
//! and bounded: it borrows from the input, allocates nothing per field,
//! never reads past a slice and never panics on hostile bytes.
//!
//! [`Source`] is the same decoder over a file that may be known only in
//! pieces (a remote fetch plan's ranged reads): fields are read where the
//! pieces hold them, length-delimited payloads are handed out as places
//! ([`Span`]) that are read only when a walker asks, and every read that
//! no piece holds is recorded, so that a walk over the pieces says which
//! ranges it lacked. The ONNX scanner walks one; a local scan's source is
//! the whole file.

use std::cell::RefCell;

/// Deepest message nesting the format walkers follow.
pub const MAX_DEPTH: usize = 48;

/// One decoded field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, string or embedded message.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// The bytes of a length-delimited field.
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer of a varint field.
    pub fn varint(&self) -> Option<u64> {
        match *self {
            Value::Varint(v) => Some(v),
            _ => None,
        }
    }

    /// A length-delimited field as (lossy) UTF-8 text.
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Why a buffer is not a valid protobuf message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protobuf: {what} at byte {offset}")]
pub struct WireError {
    /// Byte offset within the message being decoded.
    pub offset: usize,
    /// What went wrong.
    pub what: &'static str,
}

/// Reads a base-128 varint at `*pos`, advancing it.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(WireError {
                offset: start,
                what: "truncated varint",
            });
        };
        *pos += 1;
        if i == 9 && b > 1 {
            return Err(WireError {
                offset: start,
                what: "varint overflows 64 bits",
            });
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireError {
        offset: start,
        what: "varint longer than 10 bytes",
    })
}

/// Iterator over the fields of one message.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Starts decoding `buf` as one message.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

impl<'a> Fields<'a> {
    fn step(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let start = self.pos;
        let key = read_varint(self.buf, &mut self.pos)?;
        let field = key >> 3;
        if field == 0 || field > 0x1fff_ffff {
            return Err(WireError {
                offset: start,
                what: "invalid field number",
            });
        }
        let field = field as u32;
        let v = match key & 7 {
            0 => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            1 => {
                let b = self.buf.get(self.pos..self.pos + 8).ok_or(WireError {
                    offset: start,
                    what: "truncated fixed64",
                })?;
                self.pos += 8;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let rest = self.buf.len() - self.pos;
                if len > rest as u64 {
                    return Err(WireError {
                        offset: start,
                        what: "length-delimited field runs past its parent",
                    });
                }
                let b = &self.buf[self.pos..self.pos + len as usize];
                self.pos += len as usize;
                Value::Bytes(b)
            }
            5 => {
                let b = self.buf.get(self.pos..self.pos + 4).ok_or(WireError {
                    offset: start,
                    what: "truncated fixed32",
                })?;
                self.pos += 4;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            3 | 4 => {
                return Err(WireError {
                    offset: start,
                    what: "group wire type not supported",
                })
            }
            _ => {
                return Err(WireError {
                    offset: start,
                    what: "invalid wire type",
                })
            }
        };
        Ok((field, v))
    }
}

impl<'a> Fields<'a> {
    /// The same fields, each with the raw bytes it occupies (tag included),
    /// for callers that copy fields verbatim when re-encoding.
    pub fn with_raw(self) -> RawFields<'a> {
        RawFields(self)
    }
}

/// Iterator over `(field number, value, raw bytes of the field)`; see
/// [`Fields::with_raw`].
#[derive(Debug, Clone)]
pub struct RawFields<'a>(Fields<'a>);

impl<'a> Iterator for RawFields<'a> {
    type Item = Result<(u32, Value<'a>, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.0.pos;
        let r = self.0.next()?;
        Some(r.map(|(n, v)| (n, v, &self.0.buf[start..self.0.pos])))
    }
}

/// Appends a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends a varint field (an `int64` is written as its two's complement).
pub fn put_int_field(out: &mut Vec<u8>, num: u32, v: i64) {
    put_varint(out, u64::from(num) << 3);
    put_varint(out, v as u64);
}

/// Appends a length-delimited field.
pub fn put_bytes_field(out: &mut Vec<u8>, num: u32, b: &[u8]) {
    put_varint(out, (u64::from(num) << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Checks that `buf` decodes as a flat sequence of fields whose numbers and
/// wire types all appear in `known` (pairs of field number and wire type),
/// reading at most `max_fields` fields. Returns the field numbers seen.
pub fn shallow_check(buf: &[u8], known: &[(u32, u8)], max_fields: usize) -> Option<Vec<u32>> {
    let mut seen = Vec::new();
    for (n, f) in fields(buf).enumerate() {
        if n >= max_fields {
            return None;
        }
        let (num, v) = f.ok()?;
        let wt = match v {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        };
        if !known.iter().any(|&(k, w)| k == num && w == wt) {
            return None;
        }
        if !seen.contains(&num) {
            seen.push(num);
        }
    }
    Some(seen)
}

/// Most misses a [`Source`] records; past it a walk still reports that it
/// lacked bytes (the list is not empty), only not every range.
const MAX_MISSES: usize = 1 << 16;

/// A protobuf-encoded file the walkers read field by field: the whole
/// file (a local scan), or the pieces of it a remote fetch plan has so far
/// (`aisec-remote`'s plans). A read that no piece holds is recorded as a
/// miss and answered as if the message ended there (see [`SpanFields`]),
/// so one walk over pieces lists every range it lacked at once; a walk
/// that lacked nothing read only held bytes and decodes exactly what a
/// walk over the whole file decodes.
#[derive(Debug)]
pub struct Source<'a> {
    size: u64,
    /// Sorted by offset, not overlapping, not empty.
    pieces: Vec<(u64, &'a [u8])>,
    misses: RefCell<Misses>,
}

/// The ranges a walk over a [`Source`] lacked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Misses {
    /// Where a field key (or a varint or fixed value) ran into bytes no
    /// piece held: the first such byte, with the end of the message it
    /// belongs to: `(at, message end)`.
    /// Fetching a few KiB from `at` usually brings the next keys along.
    pub keys: Vec<(u64, u64)>,
    /// Payloads of length-delimited fields the walk reads (names, domains,
    /// locations, metadata text), exactly.
    pub bytes: Vec<(u64, u64)>,
}

impl Misses {
    /// True when the walk read only held bytes.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.bytes.is_empty()
    }
}

/// A message's (or a length-delimited payload's) byte range in a
/// [`Source`]: `start..end`, file offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Span {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// One field value read from a [`Source`]: as [`Value`], with a
/// length-delimited payload given by its place rather than its bytes
/// (read them with [`Source::bytes`] when the walk needs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanValue {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(Span),
    /// Wire type 5.
    Fixed32(u32),
}

/// The pieces (offset, bytes) of a file of `size` bytes that a reader over
/// known pieces can use: sorted by offset, with empty pieces, pieces that
/// overlap an earlier one and pieces reaching past `size` dropped. Shared by
/// [`Source`] and the HDF5 reader's byte source (`aisec_formats::h5::Bytes`).
pub fn keep_pieces(size: u64, mut pieces: Vec<(u64, &[u8])>) -> Vec<(u64, &[u8])> {
    pieces.sort_by_key(|p| p.0);
    let mut kept: Vec<(u64, &[u8])> = Vec::with_capacity(pieces.len());
    for (s, b) in pieces {
        let end = s.saturating_add(b.len() as u64);
        let after_last = kept.last().is_none_or(|(ls, lb)| s >= ls + lb.len() as u64);
        if end <= size && after_last && !b.is_empty() {
            kept.push((s, b));
        }
    }
    kept
}

impl<'a> Source<'a> {
    /// The whole file.
    pub fn whole(data: &'a [u8]) -> Source<'a> {
        Source::pieces(data.len() as u64, vec![(0, data)])
    }

    /// A file of `size` bytes of which only `pieces` (offset, bytes) are
    /// known; empty pieces, pieces that overlap an earlier one or reach
    /// past `size` are dropped.
    pub fn pieces(size: u64, pieces: Vec<(u64, &'a [u8])>) -> Source<'a> {
        Source {
            size,
            pieces: keep_pieces(size, pieces),
            misses: RefCell::new(Misses::default()),
        }
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The whole file as one message.
    pub fn all(&self) -> Span {
        Span {
            start: 0,
            end: self.size,
        }
    }

    /// What walks so far lacked (sorted, merged).
    pub fn misses(&self) -> Misses {
        let m = self.misses.borrow();
        Misses {
            keys: merge(m.keys.clone()),
            bytes: merge(m.bytes.clone()),
        }
    }

    /// The held bytes from `pos` on, up to `end` at most (empty when no
    /// piece holds `pos`).
    fn held(&self, pos: u64, end: u64) -> &'a [u8] {
        let i = self.pieces.partition_point(|p| p.0 <= pos);
        let Some((s, b)) = i.checked_sub(1).and_then(|i| self.pieces.get(i)) else {
            return &[];
        };
        let (Ok(at), Ok(n)) = (
            usize::try_from(pos - s),
            usize::try_from(end.saturating_sub(pos)),
        ) else {
            return &[];
        };
        match b.get(at..) {
            Some(rest) => &rest[..rest.len().min(n)],
            None => &[],
        }
    }

    fn miss_key(&self, at: u64, end: u64) {
        let mut m = self.misses.borrow_mut();
        if m.keys.len() < MAX_MISSES {
            m.keys.push((at, end));
        }
    }

    /// The payload of a length-delimited field, `None` (recorded as a
    /// miss) when no piece holds all of it.
    pub fn bytes(&self, s: Span) -> Option<&'a [u8]> {
        if s.start >= s.end {
            return Some(&[]);
        }
        let h = self.held(s.start, s.end);
        if h.len() as u64 == s.len() {
            return Some(h);
        }
        let mut m = self.misses.borrow_mut();
        if m.bytes.len() < MAX_MISSES {
            m.bytes.push((s.start, s.end));
        }
        None
    }

    /// A payload as (lossy) UTF-8 text; empty when not held (a miss).
    pub fn text(&self, s: Span) -> String {
        self.bytes(s)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// The fields of the message at `s`.
    pub fn fields(&self, s: Span) -> SpanFields<'_, 'a> {
        SpanFields {
            src: self,
            msg: s,
            pos: s.start.min(s.end),
            done: false,
        }
    }
}

/// Sorts and merges ranges that overlap or touch; empty ranges dropped.
fn merge(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.retain(|r| r.0 < r.1);
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Iterator over the fields of one message of a [`Source`]; the same
/// decoding, errors and error offsets (relative to the message) as
/// [`Fields`] over the message's bytes. Where a key or value runs into
/// bytes no piece holds, the miss is recorded and the iteration ends as
/// if the message ended there.
#[derive(Debug)]
pub struct SpanFields<'s, 'a> {
    src: &'s Source<'a>,
    msg: Span,
    pos: u64,
    done: bool,
}

/// Why one step of [`SpanFields`] stopped.
enum Stop {
    Wire(WireError),
    /// The first byte no piece held.
    Missing(u64),
}

impl Iterator for SpanFields<'_, '_> {
    type Item = Result<(u32, SpanValue), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.msg.end {
            return None;
        }
        match self.step() {
            Ok(v) => Some(Ok(v)),
            Err(Stop::Wire(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Err(Stop::Missing(at)) => {
                self.done = true;
                self.src.miss_key(at, self.msg.end);
                None
            }
        }
    }
}

impl SpanFields<'_, '_> {
    /// Offset within the message, as [`Fields`] reports it.
    fn rel(&self, at: u64) -> usize {
        usize::try_from(at - self.msg.start).unwrap_or(usize::MAX)
    }

    /// A varint at `*at`, read from held bytes.
    fn varint(&self, at: &mut u64) -> Result<u64, Stop> {
        let h = self.src.held(*at, self.msg.end);
        let mut p = 0usize;
        match read_varint(h, &mut p) {
            Ok(v) => {
                *at += p as u64;
                Ok(v)
            }
            // Cut short by a hole, not by the message's end.
            Err(e) if e.what == "truncated varint" && (h.len() as u64) < self.msg.end - *at => {
                Err(Stop::Missing(*at + h.len() as u64))
            }
            Err(e) => Err(Stop::Wire(WireError {
                offset: self.rel(*at + e.offset as u64),
                what: e.what,
            })),
        }
    }

    /// `N` fixed bytes at `*at`.
    fn fixed<const N: usize>(
        &self,
        start: u64,
        at: &mut u64,
        what: &'static str,
    ) -> Result<[u8; N], Stop> {
        if self.msg.end - *at < N as u64 {
            return Err(Stop::Wire(WireError {
                offset: self.rel(start),
                what,
            }));
        }
        let h = self.src.held(*at, *at + N as u64);
        let b: [u8; N] = h
            .try_into()
            .map_err(|_| Stop::Missing(*at + h.len() as u64))?;
        *at += N as u64;
        Ok(b)
    }

    fn step(&mut self) -> Result<(u32, SpanValue), Stop> {
        let start = self.pos;
        let mut at = self.pos;
        let key = self.varint(&mut at)?;
        let field = key >> 3;
        let wire = |what| {
            Stop::Wire(WireError {
                offset: self.rel(start),
                what,
            })
        };
        if field == 0 || field > 0x1fff_ffff {
            return Err(wire("invalid field number"));
        }
        let v = match key & 7 {
            0 => SpanValue::Varint(self.varint(&mut at)?),
            1 => SpanValue::Fixed64(u64::from_le_bytes(self.fixed::<8>(
                start,
                &mut at,
                "truncated fixed64",
            )?)),
            2 => {
                let len = self.varint(&mut at)?;
                if len > self.msg.end - at {
                    return Err(wire("length-delimited field runs past its parent"));
                }
                let s = Span {
                    start: at,
                    end: at + len,
                };
                at += len;
                SpanValue::Bytes(s)
            }
            5 => SpanValue::Fixed32(u32::from_le_bytes(self.fixed::<4>(
                start,
                &mut at,
                "truncated fixed32",
            )?)),
            3 | 4 => return Err(wire("group wire type not supported")),
            _ => return Err(wire("invalid wire type")),
        };
        self.pos = at;
        Ok((field as u32, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_wire_types() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed32, field 4 fixed64
        let buf = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let v: Vec<_> = fields(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(v[0], (1, Value::Varint(150)));
        assert_eq!(v[1], (2, Value::Bytes(b"hi")));
        assert_eq!(v[2], (3, Value::Fixed32(1)));
        assert_eq!(v[3], (4, Value::Fixed64(2)));
    }

    #[test]
    fn writes_what_it_reads_with_raw_bytes() {
        let mut b = Vec::new();
        put_int_field(&mut b, 1, -1);
        put_bytes_field(&mut b, 7, b"abc");
        let v: Vec<_> = fields(&b).with_raw().collect::<Result<_, _>>().unwrap();
        assert_eq!(v[0].0, 1);
        assert_eq!(v[0].1, Value::Varint(u64::MAX));
        assert_eq!(v[0].2.len(), 11);
        assert_eq!(v[1], (7, Value::Bytes(b"abc"), &b[11..]));
    }

    #[test]
    fn rejects_overlong_and_groups() {
        assert!(fields(&[0x12, 0x05, b'a']).any(|r| r.is_err()));
        assert!(fields(&[0x0b]).any(|r| r.is_err()));
        assert!(
            fields(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
                .any(|r| r.is_err())
        );
        assert!(fields(&[0x00]).any(|r| r.is_err()));
    }

    /// `Source::fields` over the whole buffer decodes exactly what
    /// `fields` decodes, errors and offsets included; over pieces, it
    /// stops at the first hole and records it.
    #[test]
    fn a_source_decodes_like_a_slice() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut good = Vec::new();
        put_int_field(&mut good, 1, 300);
        put_bytes_field(&mut good, 2, b"hello");
        good.extend([0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8]);
        put_bytes_field(&mut good, 7, &[0x08, 0x01]);
        for round in 0..5000 {
            let mut b = good.clone();
            if round > 0 {
                let n = (rnd() % 3 + 1) as usize;
                for _ in 0..n {
                    let at = (rnd() as usize) % b.len();
                    b[at] = rnd() as u8;
                }
                b.truncate(b.len() - (rnd() as usize % 4));
            }
            let src = Source::whole(&b);
            let a: Vec<_> = fields(&b).collect();
            let c: Vec<_> = src.fields(src.all()).collect();
            assert_eq!(a.len(), c.len(), "{b:?}");
            for (x, y) in a.iter().zip(&c) {
                match (x, y) {
                    (Ok((n, Value::Bytes(p))), Ok((m, SpanValue::Bytes(s)))) => {
                        assert_eq!((n, *p), (m, src.bytes(*s).unwrap()))
                    }
                    (Ok((n, Value::Varint(v))), Ok((m, SpanValue::Varint(w)))) => {
                        assert_eq!((n, v), (m, w))
                    }
                    (Ok((n, Value::Fixed32(v))), Ok((m, SpanValue::Fixed32(w)))) => {
                        assert_eq!((n, v), (m, w))
                    }
                    (Ok((n, Value::Fixed64(v))), Ok((m, SpanValue::Fixed64(w)))) => {
                        assert_eq!((n, v), (m, w))
                    }
                    (Err(e), Err(f)) => assert_eq!(e, f),
                    _ => panic!("{x:?} != {y:?} in {b:?}"),
                }
            }
            assert!(src.misses().is_empty());
        }
        // A hole inside the second field's length: one field, then a miss
        // at the hole, to the message's end.
        let src = Source::pieces(good.len() as u64, vec![(0, &good[..4])]);
        let c: Vec<_> = src.fields(src.all()).collect();
        assert_eq!(c, vec![Ok((1, SpanValue::Varint(300)))]);
        assert_eq!(src.misses().keys, vec![(4, good.len() as u64)]);
        // A payload not held is a miss of exactly its bytes.
        assert_eq!(src.bytes(Span { start: 5, end: 10 }), None);
        assert_eq!(src.misses().bytes, vec![(5, 10)]);
    }
}
