//! Writers shared by the attacks' outputs: NumPy `.npz` (written here:
//! `.npy` version 1.0 members in a stored zip) and PNG images (a grid of
//! clean / adversarial / difference images for image-shaped inputs).

use std::io::{Seek, Write};

use aisec_model::data::images::encode_png;
use aisec_model::{ModelError, Tensor};

/// Errors while saving.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Writing failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The zip writer failed.
    #[error("zip error: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// PNG encoding failed (in [`aisec_model::data::images::encode_png`]).
    #[error("png error: {0}")]
    Png(#[source] ModelError),
    /// The inputs are not image-shaped.
    #[error("not image-shaped: {0}")]
    Shape(String),
}

impl From<ModelError> for SaveError {
    /// A pixel buffer that does not fit its shape stays a
    /// [`SaveError::Shape`]; anything else the encoder says is a
    /// [`SaveError::Png`].
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Shape(s) => SaveError::Shape(s),
            e => SaveError::Png(e),
        }
    }
}

/// An array for an `.npy` member.
pub enum NpyArray<'a> {
    /// Little-endian `f32`.
    F32(&'a [usize], &'a [f32]),
    /// Little-endian `i64`.
    I64(&'a [usize], Vec<i64>),
    /// Booleans (`|b1`).
    Bool(&'a [usize], Vec<bool>),
}

/// Encodes one `.npy` (format version 1.0) file.
pub fn npy_bytes(a: &NpyArray) -> Vec<u8> {
    let (descr, shape) = match a {
        NpyArray::F32(s, _) => ("<f4", *s),
        NpyArray::I64(s, _) => ("<i8", *s),
        NpyArray::Bool(s, _) => ("|b1", *s),
    };
    let dims = match shape.len() {
        0 => String::new(),
        1 => format!("{},", shape[0]),
        _ => shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match a {
        NpyArray::F32(_, d) => d
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        NpyArray::I64(_, d) => d
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        NpyArray::Bool(_, d) => out.extend(d.iter().map(|&b| b as u8)),
    }
    out
}

/// Writes named arrays as an uncompressed `.npz` to `w`.
pub fn write_npz<W: Write + Seek>(w: W, arrays: &[(&str, NpyArray)]) -> Result<(), SaveError> {
    let mut z = zip::ZipWriter::new(w);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(false);
    for (name, a) in arrays {
        z.start_file(format!("{name}.npy"), opts)?;
        z.write_all(&npy_bytes(a))?;
    }
    z.finish()?;
    Ok(())
}

/// Encodes the grid for the listed examples as PNG bytes. Images are
/// `[C,H,W]` with C = 1 or 3, or `[H,W]`; values map from `[lo, hi]` to 0..255.
pub fn png_grid(
    clean: &Tensor,
    adv: &Tensor,
    rows: &[usize],
    lo: f32,
    hi: f32,
) -> Result<Vec<u8>, SaveError> {
    let (c, h, w) = match clean.shape.as_slice() {
        [_, c @ (1 | 3), h, w] => (*c, *h, *w),
        [_, h, w] => (1, *h, *w),
        s => return Err(SaveError::Shape(format!("{s:?}"))),
    };
    if h == 0 || w == 0 || h > 4096 || w > 4096 || rows.is_empty() {
        return Err(SaveError::Shape(format!("{:?}", clean.shape)));
    }
    let gap = 2usize;
    let gw = 3 * w + 2 * gap;
    let gh = rows.len() * h + (rows.len() - 1) * gap;
    let mut img = vec![255u8; gw * gh * c];
    let span = (hi - lo).max(1e-12);
    let to_u8 = |v: f32| (((v - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
    for (r, &i) in rows.iter().enumerate() {
        let a = clean.row(i);
        let b = adv.row(i);
        let dmax = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (p, q)| m.max((q - p).abs()))
            .max(1e-12);
        for ch in 0..c {
            for yy in 0..h {
                for xx in 0..w {
                    let k = (ch * h + yy) * w + xx;
                    let vals = [
                        to_u8(a[k]),
                        to_u8(b[k]),
                        (((b[k] - a[k]) / dmax * 0.5 + 0.5) * 255.0).round() as u8,
                    ];
                    for (col, v) in vals.iter().enumerate() {
                        let px = col * (w + gap) + xx;
                        let py = r * (h + gap) + yy;
                        img[(py * gw + px) * c + ch] = *v;
                    }
                }
            }
        }
    }
    Ok(encode_png(&img, gw, gh, c)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let b = npy_bytes(&NpyArray::F32(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        assert_eq!(b.len(), 10 + hl + 24);
        assert_eq!(&b[10 + hl + 4..10 + hl + 8], &1.0f32.to_le_bytes());
        let b = npy_bytes(&NpyArray::I64(&[1], vec![7]));
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert!(std::str::from_utf8(&b[10..10 + hl])
            .unwrap()
            .contains("(1,)"));
    }

    #[test]
    fn png_grid_encodes() {
        let clean = Tensor::new(vec![2, 1, 4, 4], vec![0.5; 32]).unwrap();
        let mut adv = clean.clone();
        adv.data[3] = 0.6;
        let bytes = png_grid(&clean, &adv, &[0, 1], 0.0, 1.0).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png_grid(
            &Tensor::zeros(vec![2, 5]),
            &Tensor::zeros(vec![2, 5]),
            &[0],
            0.0,
            1.0
        )
        .is_err());
    }
}
