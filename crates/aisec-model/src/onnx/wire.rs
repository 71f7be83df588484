//! Typed access to protobuf fields for the ONNX loader.
//!
//! ONNX files are protobuf `ModelProto` messages. Rather than generating code
//! with `protoc`, the loader walks the wire format with
//! `aisec_core::protobuf`, the workspace's one bounded wire-format reader
//! (varints, fixed32/64 and length-delimited fields, per the protobuf
//! encoding spec), and this module adds what the loader needs on top: each
//! field's raw bytes (to copy it verbatim when re-encoding) and typed
//! accessors for scalars and packed repeated fields. Malformed bytes yield
//! [`ModelError::Invalid`], never a panic.

use aisec_core::protobuf;

use crate::classifier::ModelError;

pub(crate) use aisec_core::protobuf::Value as WireVal;
pub(crate) use aisec_core::protobuf::{put_bytes_field, put_int_field};

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

fn wire(e: protobuf::WireError) -> ModelError {
    ModelError::Invalid(e.to_string())
}

pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, ModelError> {
    protobuf::read_varint(buf, pos).map_err(wire)
}

/// The fields of one message; after an error the iterator ends.
pub(crate) fn fields(buf: &[u8]) -> impl Iterator<Item = Result<Field<'_>, ModelError>> {
    protobuf::fields(buf).with_raw().map(|r| {
        r.map(|(num, val, raw)| Field { num, val, raw })
            .map_err(wire)
    })
}

impl<'a> Field<'a> {
    pub(crate) fn bytes(&self) -> Result<&'a [u8], ModelError> {
        match self.val {
            WireVal::Bytes(b) => Ok(b),
            _ => Err(bad(&format!(
                "field {} should be length-delimited",
                self.num
            ))),
        }
    }
    pub(crate) fn string(&self) -> Result<String, ModelError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
    pub(crate) fn int(&self) -> Result<i64, ModelError> {
        match self.val {
            WireVal::Varint(v) => Ok(v as i64),
            _ => Err(bad(&format!("field {} should be a varint", self.num))),
        }
    }
    pub(crate) fn float(&self) -> Result<f32, ModelError> {
        match self.val {
            WireVal::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(bad(&format!("field {} should be a fixed32", self.num))),
        }
    }
    /// Repeated int64 field, packed or not: appends to `out`.
    pub(crate) fn ints_into(&self, out: &mut Vec<i64>, limit: usize) -> Result<(), ModelError> {
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
    pub(crate) fn floats_into(&self, out: &mut Vec<f32>) -> Result<(), ModelError> {
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
    pub(crate) fn doubles_into(&self, out: &mut Vec<f64>) -> Result<(), ModelError> {
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
