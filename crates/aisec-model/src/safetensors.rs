//! Minimal safetensors reading and writing (F32/F64/F16/BF16 tensors).
//!
//! Format (huggingface/safetensors): an 8-byte little-endian header length,
//! a JSON header mapping names to `{dtype, shape, data_offsets}`, then the
//! packed data. Offsets are checked against the buffer; nothing is executed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classifier::{ModelError, Tensor};

const MAX_HEADER: u64 = 100 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// The header entry of a tensor being written.
#[derive(Serialize)]
struct EntryOut<'a> {
    dtype: &'a str,
    shape: &'a [usize],
    data_offsets: [usize; 2],
}

/// One F32 tensor to write: name, shape, values.
pub(crate) type F32Tensor<'a> = (&'a str, &'a [usize], &'a [f32]);

/// Encodes F32 tensors as safetensors bytes (data in the order given)
/// with `metadata` as the `__metadata__` string map when not empty.
pub(crate) fn encode_f32(
    metadata: &[(&str, String)],
    tensors: &[F32Tensor<'_>],
) -> Result<Vec<u8>, ModelError> {
    use serde_json::Value;
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let md = metadata
            .iter()
            .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(md));
    }
    let mut off = 0;
    for &(name, shape, data) in tensors {
        let len = data.len() * 4;
        let e = EntryOut {
            dtype: "F32",
            shape,
            data_offsets: [off, off + len],
        };
        let e = serde_json::to_value(e).map_err(|e| bad(e.to_string()))?;
        header.insert(name.into(), e);
        off += len;
    }
    let mut h = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut b = Vec::with_capacity(8 + h.len() + off);
    b.extend_from_slice(&(h.len() as u64).to_le_bytes());
    b.extend_from_slice(&h);
    // The header's map is sorted by name; the data follows the order in
    // which offsets were assigned.
    for (_, _, data) in tensors {
        for v in data.iter() {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(b)
}

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::Invalid(format!("safetensors: {}", m.into()))
}

/// Reads all float tensors of a safetensors file, sorted by name.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>, ModelError> {
    let b = crate::onnx_model::read_bounded(path.as_ref())?;
    parse_safetensors(&b)
}

/// IEEE 754 half precision to single (exact: every half is a float).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        // Subnormal: frac * 2^-24, normalised.
        (0, f) => {
            let shift = f.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, f) => sign | 0x7fc0_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Parses safetensors bytes.
pub fn parse_safetensors(b: &[u8]) -> Result<Vec<(String, Tensor)>, ModelError> {
    if b.len() < 8 {
        return Err(bad("truncated"));
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&b[..8]);
    let hl = u64::from_le_bytes(l);
    if hl > MAX_HEADER || hl > (b.len() - 8) as u64 {
        return Err(bad("header length out of range"));
    }
    let hl = hl as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&b[8..8 + hl]).map_err(|e| bad(format!("header: {e}")))?;
    let data = &b[8 + hl..];
    let mut out = Vec::new();
    for (name, v) in header {
        if name == "__metadata__" {
            continue;
        }
        let e: Entry = serde_json::from_value(v).map_err(|e| bad(format!("{name}: {e}")))?;
        let [s, t] = e.data_offsets;
        if s > t || t > data.len() {
            return Err(bad(format!("{name}: offsets out of range")));
        }
        let raw = &data[s..t];
        let mut n: usize = 1;
        for &d in &e.shape {
            n = n
                .checked_mul(d)
                .filter(|&n| n <= 1 << 28)
                .ok_or_else(|| bad(format!("{name}: too large")))?;
        }
        let vals: Vec<f32> = match e.dtype.as_str() {
            "F32" => le_f32(raw),
            "F64" => le_f64_as_f32(raw),
            "BF16" => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            "F16" => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => continue,
        };
        let width = match e.dtype.as_str() {
            "F32" => 4,
            "F64" => 8,
            _ => 2,
        };
        if vals.len() != n || raw.len() != n * width {
            return Err(bad(format!("{name}: data size does not match shape")));
        }
        out.push((name, Tensor::new(e.shape, vals)?));
    }
    Ok(out)
}

/// Writes tensors as F32 safetensors.
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor)],
) -> Result<(), ModelError> {
    let views: Vec<F32Tensor<'_>> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice()))
        .collect();
    let b = encode_f32(&[], &views)?;
    std::fs::write(path, b)?;
    Ok(())
}

/// Little-endian `f32`s (a trailing partial element is dropped; callers
/// check the length against the shape).
pub(crate) fn le_f32(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Little-endian `f64`s narrowed to `f32` (as [`le_f32`]).
pub(crate) fn le_f64_as_f32(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            f64::from_le_bytes(a) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values_decode_exactly() {
        for (h, want) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3800, 0.5),
            (0x7bff, 65504.0),
            (0x0001, 2f32.powi(-24)),
            (0x0200, 2f32.powi(-15)),
            (0x03ff, 1023.0 * 2f32.powi(-24)),
            (0x8000, -0.0),
            (0x7c00, f32::INFINITY),
            (0xfc00, f32::NEG_INFINITY),
        ] {
            assert_eq!(f16_to_f32(h).to_bits(), want.to_bits(), "{h:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn f16_tensors_are_read() {
        let header = br#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header);
        b.extend_from_slice(&[0x00, 0x3c, 0x00, 0xc0]);
        let t = parse_safetensors(&b).expect("parses");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].1.data, vec![1.0, -2.0]);
        // A size that does not match the shape is an error.
        let mut short = (header.len() as u64).to_le_bytes().to_vec();
        short.extend_from_slice(header);
        short.extend_from_slice(&[0x00, 0x3c]);
        assert!(parse_safetensors(&short).is_err());
    }
}
