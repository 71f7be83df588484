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
}
