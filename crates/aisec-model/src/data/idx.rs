//! MNIST-style IDX files (LeCun et al.'s format): a magic number giving the
//! element type and rank, big-endian dimension sizes, then the data. Gzip
//! (`.gz`) files are decompressed with a size bound.

use std::io::Read;
use std::path::Path;

use crate::classifier::{ModelError, Tensor};

const MAX_BYTES: u64 = 1 << 31;

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::Invalid(format!("idx: {}", m.into()))
}

/// One big-endian element of IDX type code `kind` (its width already
/// checked against the header): u8, i8, i16, i32, f32, otherwise f64.
pub(super) fn element(kind: u8, c: &[u8]) -> f32 {
    match kind {
        0x08 => f32::from(c[0]),
        0x09 => f32::from(c[0] as i8),
        0x0B => f32::from(i16::from_be_bytes([c[0], c[1]])),
        0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32,
        0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
        _ => {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            f64::from_be_bytes(a) as f32
        }
    }
}

/// Reads an IDX file (optionally gzip-compressed) as `f32` values with the
/// file's shape.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Tensor, ModelError> {
    let raw = crate::onnx_model::read_bounded(path.as_ref())?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES)
            .read_to_end(&mut out)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes)
}

/// Parses IDX bytes.
pub fn parse_idx(b: &[u8]) -> Result<Tensor, ModelError> {
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(bad("bad magic"));
    }
    let width = match b[2] {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        t => return Err(bad(format!("unknown type 0x{t:02x}"))),
    };
    let rank = usize::from(b[3]);
    let head = 4 + 4 * rank;
    if b.len() < head {
        return Err(bad("truncated header"));
    }
    let mut shape = Vec::with_capacity(rank);
    let mut n: usize = 1;
    for i in 0..rank {
        let o = 4 + 4 * i;
        let d = u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= 1 << 28)
            .ok_or_else(|| bad("too large"))?;
        shape.push(d);
    }
    let data = &b[head..];
    if data.len() < n * width {
        return Err(bad("data shorter than the header says"));
    }
    let vals: Vec<f32> = data[..n * width]
        .chunks_exact(width)
        .map(|c| element(b[2], c))
        .collect();
    Tensor::new(shape, vals)
}
