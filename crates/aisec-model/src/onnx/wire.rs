//! A small, bounded protobuf wire-format reader and writer.
//!
//! ONNX files are protobuf `ModelProto` messages. Rather than generating code
//! with `protoc`, this module walks the wire format directly (varints,
//! fixed32/64 and length-delimited fields, per the protobuf encoding spec) and
//! hands out borrowed field values. Every read is bounds-checked; malformed
//! bytes yield [`ModelError::Invalid`], never a panic.

use crate::classifier::ModelError;

/// One field value as found on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WireVal<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field: its number, value, and the raw bytes of the whole field
/// (tag included) so it can be copied verbatim when re-encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub num: u32,
    pub val: WireVal<'a>,
    pub raw: &'a [u8],
}

fn bad(msg: &str) -> ModelError {
    ModelError::Invalid(format!("protobuf: {msg}"))
}

pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, ModelError> {
    let mut out: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(bad("varint longer than 10 bytes"))
}

/// Iterator over the fields of one message.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub(crate) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, ModelError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let start = self.pos;
        let r = (|| {
            let tag = read_varint(self.buf, &mut self.pos)?;
            let num = u32::try_from(tag >> 3).map_err(|_| bad("field number too large"))?;
            let val = match tag & 7 {
                0 => WireVal::Varint(read_varint(self.buf, &mut self.pos)?),
                1 => {
                    let b = self
                        .buf
                        .get(self.pos..self.pos + 8)
                        .ok_or_else(|| bad("truncated fixed64"))?;
                    self.pos += 8;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    WireVal::Fixed64(u64::from_le_bytes(a))
                }
                2 => {
                    let len = read_varint(self.buf, &mut self.pos)?;
                    let len = usize::try_from(len).map_err(|_| bad("length too large"))?;
                    let end = self
                        .pos
                        .checked_add(len)
                        .filter(|&e| e <= self.buf.len())
                        .ok_or_else(|| bad("length-delimited field runs past the end"))?;
                    let b = &self.buf[self.pos..end];
                    self.pos = end;
                    WireVal::Bytes(b)
                }
                5 => {
                    let b = self
                        .buf
                        .get(self.pos..self.pos + 4)
                        .ok_or_else(|| bad("truncated fixed32"))?;
                    self.pos += 4;
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    WireVal::Fixed32(u32::from_le_bytes(a))
                }
                w => return Err(bad(&format!("unsupported wire type {w}"))),
            };
            Ok(Field {
                num,
                val,
                raw: &self.buf[start..self.pos],
            })
        })();
        if r.is_err() {
            self.pos = self.buf.len();
        }
        Some(r)
    }
}

impl<'a> Field<'a> {
    pub fn bytes(&self) -> Result<&'a [u8], ModelError> {
        match self.val {
            WireVal::Bytes(b) => Ok(b),
            _ => Err(bad(&format!(
                "field {} should be length-delimited",
                self.num
            ))),
        }
    }
    pub fn string(&self) -> Result<String, ModelError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
    pub fn int(&self) -> Result<i64, ModelError> {
        match self.val {
            WireVal::Varint(v) => Ok(v as i64),
            _ => Err(bad(&format!("field {} should be a varint", self.num))),
        }
    }
    pub fn float(&self) -> Result<f32, ModelError> {
        match self.val {
            WireVal::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(bad(&format!("field {} should be a fixed32", self.num))),
        }
    }
    /// Repeated int64 field, packed or not: appends to `out`.
    pub fn ints_into(&self, out: &mut Vec<i64>, limit: usize) -> Result<(), ModelError> {
        match self.val {
            WireVal::Varint(v) => out.push(v as i64),
            WireVal::Bytes(b) => {
                let mut p = 0;
                while p < b.len() {
                    if out.len() >= limit {
                        return Err(bad("too many packed ints"));
                    }
                    out.push(read_varint(b, &mut p)? as i64);
                }
            }
            _ => return Err(bad("bad repeated int")),
        }
        Ok(())
    }
    /// Repeated float field, packed or not: appends to `out`.
    pub fn floats_into(&self, out: &mut Vec<f32>) -> Result<(), ModelError> {
        match self.val {
            WireVal::Fixed32(v) => out.push(f32::from_bits(v)),
            WireVal::Bytes(b) => {
                if b.len() % 4 != 0 {
                    return Err(bad("packed floats not a multiple of 4 bytes"));
                }
                out.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            _ => return Err(bad("bad repeated float")),
        }
        Ok(())
    }
    /// Repeated double field, packed or not: appends to `out`.
    pub fn doubles_into(&self, out: &mut Vec<f64>) -> Result<(), ModelError> {
        match self.val {
            WireVal::Fixed64(v) => out.push(f64::from_bits(v)),
            WireVal::Bytes(b) => {
                if b.len() % 8 != 0 {
                    return Err(bad("packed doubles not a multiple of 8 bytes"));
                }
                out.extend(b.chunks_exact(8).map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a)
                }));
            }
            _ => return Err(bad("bad repeated double")),
        }
        Ok(())
    }
}

/// Appends a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
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

/// Appends a varint field.
pub(crate) fn put_int_field(out: &mut Vec<u8>, num: u32, v: i64) {
    put_varint(out, u64::from(num) << 3);
    put_varint(out, v as u64);
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, num: u32, b: &[u8]) {
    put_varint(out, (u64::from(num) << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}
