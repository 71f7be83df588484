//! NumPy `.npy` and `.npz` reading for numeric arrays.
//!
//! Follows the format described in NumPy's `numpy.lib.format` docs: a magic
//! string, a version, a little header dict (`descr`, `fortran_order`,
//! `shape`) and the raw data. Only numeric dtypes are accepted; object
//! arrays (which would need unpickling) are refused, never loaded.

use std::io::Read;
use std::path::Path;

use crate::classifier::{ModelError, Tensor};

/// Largest array accepted (values).
const MAX_VALUES: usize = 1 << 30;

/// A numeric array read from `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions (C order).
    pub shape: Vec<usize>,
    /// Values converted to `f64` (exact for every integer below 2^53).
    pub values: Vec<f64>,
}

impl NpyArray {
    /// The values as an `f32` tensor (a 0-d array becomes shape `[1]`).
    pub fn to_tensor(&self) -> Tensor {
        let shape = if self.shape.is_empty() {
            vec![1]
        } else {
            self.shape.clone()
        };
        Tensor {
            shape,
            data: self.values.iter().map(|&v| v as f32).collect(),
        }
    }
    /// The values as non-negative integers (labels); fails on anything else.
    pub fn to_labels(&self) -> Result<Vec<usize>, ModelError> {
        super::labels_from_values(&self.values)
    }
}

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::Invalid(format!("npy: {}", m.into()))
}

/// Reads a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray, ModelError> {
    let bytes = crate::onnx_model::read_bounded(path.as_ref())?;
    parse_npy(&bytes)
}

/// Reads every array of a `.npz` archive (name without `.npy`, array).
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpyArray)>, ModelError> {
    let f = std::fs::File::open(path)?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| bad(format!("npz: {e}")))?;
    let mut out = Vec::new();
    for i in 0..z.len().min(10_000) {
        let mut e = z.by_index(i).map_err(|e| bad(format!("npz: {e}")))?;
        let name = e.name().trim_end_matches(".npy").to_string();
        let mut buf = Vec::new();
        (&mut e)
            .take(crate::onnx_model::MAX_MODEL_BYTES)
            .read_to_end(&mut buf)?;
        out.push((name, parse_npy(&buf)?));
    }
    Ok(out)
}

/// The layout a `.npy` header declares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NpyHeader {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Number of values (product of `shape`, bounded).
    pub count: usize,
    /// Bytes per value.
    pub width: usize,
    /// Big-endian values.
    pub big: bool,
    /// dtype kind: `f`, `i`, `u` or `b`.
    pub kind: char,
    /// Column-major data.
    pub fortran: bool,
}

impl NpyHeader {
    /// Converts `self.width`-byte little/big-endian values to `f64`.
    pub(crate) fn decode(&self, data: &[u8], out: &mut Vec<f64>) {
        let big = self.big;
        let rd = |c: &[u8]| -> u64 {
            let mut a = [0u8; 8];
            if big {
                for (i, &x) in c.iter().rev().enumerate() {
                    a[i] = x;
                }
            } else {
                a[..c.len()].copy_from_slice(c);
            }
            u64::from_le_bytes(a)
        };
        let (k, w) = (self.kind, self.width);
        out.extend(data.chunks_exact(w).map(|c| {
            let v = rd(c);
            match (k, w) {
                ('f', 4) => f64::from(f32::from_bits(v as u32)),
                ('f', 8) => f64::from_bits(v),
                ('i', 1) => f64::from(v as u8 as i8),
                ('i', 2) => f64::from(v as u16 as i16),
                ('i', 4) => f64::from(v as u32 as i32),
                ('i', 8) => v as i64 as f64,
                _ => v as f64,
            }
        }));
    }
}

/// Length of the fixed preamble and of the header text, from the first 12
/// bytes of a `.npy` file (read by `aisec_core::npy`, the workspace's one
/// `.npy` header reader).
pub(crate) fn preamble(b: &[u8]) -> Result<(usize, usize), ModelError> {
    let p = aisec_core::npy::preamble(b).map_err(|e| bad(e.message))?;
    Ok((p.header_start, p.header_len))
}

/// Parses the header dictionary text into the layout this crate can decode:
/// numeric dtypes only; object arrays and structured dtypes are refused.
pub(crate) fn parse_header_text(h: &str) -> Result<NpyHeader, ModelError> {
    use aisec_core::npy::{dtype_info, parse_header, Lit};
    // `h` is already UTF-8; version 3 rules skip the ASCII-only check.
    let header = parse_header(3, h.as_bytes(), 0).map_err(|e| bad(e.message))?;
    let (_, object) = dtype_info(&header.descr).map_err(bad)?;
    if object {
        return Err(bad("object arrays are refused (they need unpickling)"));
    }
    let Lit::Str(descr) = &header.descr else {
        return Err(bad("structured dtypes are not supported"));
    };
    if header.shape.len() > 32 {
        return Err(bad("too many dimensions"));
    }
    let mut shape = Vec::with_capacity(header.shape.len());
    let mut n: usize = 1;
    for &d in &header.shape {
        let d = usize::try_from(d).map_err(|_| bad("array too large"))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_VALUES)
            .ok_or_else(|| bad("array too large"))?;
        shape.push(d);
    }
    let (endian, kind) = descr.split_at(descr.chars().next().map_or(0, char::len_utf8));
    let width: usize = kind
        .get(1..)
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| bad(format!("unsupported dtype '{descr}'")))?;
    let kc = kind.chars().next().unwrap_or(' ');
    match (kc, width) {
        ('f', 4 | 8) | ('i', 1 | 2 | 4 | 8) | ('u', 1 | 2 | 4 | 8) | ('b', 1) => {}
        _ => return Err(bad(format!("unsupported dtype '{descr}'"))),
    }
    Ok(NpyHeader {
        shape,
        count: n,
        width,
        big: endian == ">",
        kind: kc,
        fortran: header.fortran_order,
    })
}

/// Parses `.npy` bytes.
pub fn parse_npy(b: &[u8]) -> Result<NpyArray, ModelError> {
    let (start, hlen) = preamble(b)?;
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= b.len())
        .ok_or_else(|| bad("header runs past the end"))?;
    let h = std::str::from_utf8(&b[start..end]).map_err(|_| bad("header not text"))?;
    let hd = parse_header_text(h)?;
    let (shape, n) = (hd.shape.clone(), hd.count);
    let data = &b[end..];
    let need = n
        .checked_mul(hd.width)
        .ok_or_else(|| bad("array too large"))?;
    if data.len() < need {
        return Err(bad("data shorter than the shape says"));
    }
    let mut values = Vec::with_capacity(n);
    hd.decode(&data[..need], &mut values);
    if hd.fortran && shape.len() > 1 {
        // Column-major to row-major.
        let rev: Vec<usize> = shape.iter().rev().copied().collect();
        let mut out = vec![0.0; n];
        let st = crate::kernels::strides(&rev);
        let perm_st: Vec<usize> = st.iter().rev().copied().collect();
        crate::kernels::for_each_bcast(&shape, [&perm_st], |o, [i]| out[o] = values[i]);
        values = out;
    }
    Ok(NpyArray { shape, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_f32_and_i64() {
        let d: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = parse_npy(&npy("<f4", "(2,)", &d)).unwrap();
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.values, vec![1.5, -2.0]);
        let d: Vec<u8> = [3i64, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse_npy(&npy("<i8", "(1, 2)", &d)).unwrap();
        assert_eq!(a.to_labels().unwrap(), vec![3, 7]);
    }

    #[test]
    fn refuses_object_arrays_and_truncation() {
        assert!(parse_npy(&npy("|O", "(1,)", &[0; 8])).is_err());
        assert!(parse_npy(&npy("<f4", "(4,)", &[0; 8])).is_err());
        assert!(parse_npy(b"\x93NUMPY\x01\x00\xff\xff").is_err());
    }
}

/// Writes a tensor as a little-endian `float32` `.npy` file (version 1.0).
pub fn write_npy(path: impl AsRef<Path>, t: &Tensor) -> Result<(), ModelError> {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    for v in &t.data {
        b.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, b)?;
    Ok(())
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn write_then_read_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.npy");
        let t = Tensor::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]).unwrap();
        write_npy(&p, &t).unwrap();
        assert_eq!(read_npy(&p).unwrap().to_tensor(), t);
    }
}
