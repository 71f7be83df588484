//! Data sets: NumPy arrays, MNIST IDX files, CSV tables, image folders,
//! preprocessing into the model's input space, batched iteration, and
//! streaming sources ([`stream`]) for data sets larger than memory.
//!
//! Preprocessing has two halves. [`Preprocess`] turns stored values into
//! the space perturbation budgets are stated in (layout, resize, channel
//! order, value range, e.g. `[0, 255]` HWC BGR to `[0, 1]` CHW RGB).
//! Per-channel mean/std normalisation belongs to the model: wrap it in
//! [`normalize::Normalized`] so an attack's `eps = 8/255` means 8 grey
//! levels, not 8/255 of a standard deviation.

pub mod csv;
pub mod idx;
pub mod images;
pub mod normalize;
pub mod npy;
pub mod stream;

use crate::classifier::{ModelError, Tensor};

/// Examples with labels, row-major, batch first.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Inputs `[n, ..]`.
    pub x: Tensor,
    /// Class per example.
    pub y: Vec<usize>,
}

impl Dataset {
    /// Pairs inputs with labels, checking the counts agree.
    pub fn new(x: Tensor, y: Vec<usize>) -> Result<Dataset, ModelError> {
        if x.batch() != y.len() {
            return Err(ModelError::Shape(format!(
                "{} examples but {} labels",
                x.batch(),
                y.len()
            )));
        }
        Ok(Dataset { x, y })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Examples `start..end` as a new batch.
    pub fn slice(&self, start: usize, end: usize) -> Dataset {
        let end = end.min(self.len());
        let start = start.min(end);
        let row = self.x.row_len();
        let mut shape = self.x.shape.clone();
        if let Some(b) = shape.first_mut() {
            *b = end - start;
        }
        Dataset {
            x: Tensor {
                shape,
                data: self.x.data[start * row..end * row].to_vec(),
            },
            y: self.y[start..end].to_vec(),
        }
    }

    /// Consecutive batches of at most `size` examples.
    pub fn batches(&self, size: usize) -> impl Iterator<Item = Dataset> + '_ {
        let size = size.max(1);
        (0..self.len())
            .step_by(size)
            .map(move |s| self.slice(s, s + size))
    }
}

/// Input preprocessing declared by the user. Steps run in this order:
/// channels-last to channels-first, resize, RGB/BGR swap, `v * scale +
/// shift` (the value range), then per-channel `(v - mean) / std`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Multiply raw values by this (e.g. `1/255`).
    pub scale: f32,
    /// Added after scaling (see [`Preprocess::value_range`]).
    pub shift: f32,
    /// Per-channel mean subtracted after scaling (empty: none).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by (empty: none).
    pub std: Vec<f32>,
    /// Input is channels-last `[n, h, w, c]` and should become `[n, c, h, w]`.
    pub to_channels_first: bool,
    /// Reverse the order of 3 channels (RGB <-> BGR, as OpenCV stores them).
    pub swap_rb: bool,
    /// Resize `[n, c, h, w]` to this `(height, width)`, bilinear with
    /// half-pixel centres (no antialiasing).
    pub resize: Option<(usize, usize)>,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            scale: 1.0,
            shift: 0.0,
            mean: vec![],
            std: vec![],
            to_channels_first: false,
            swap_rb: false,
            resize: None,
        }
    }
}

/// Bilinear resize of `[n, c, h, w]` with half-pixel centres (the
/// `align_corners=False` convention of PyTorch's `interpolate`).
fn resize_bilinear(t: &Tensor, oh: usize, ow: usize) -> Result<Tensor, ModelError> {
    if t.shape.len() != 4 || oh == 0 || ow == 0 || oh > 1 << 14 || ow > 1 << 14 {
        return Err(ModelError::Shape(format!(
            "resize to {oh}x{ow} needs [n,c,h,w], got {:?}",
            t.shape
        )));
    }
    let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
    if h == 0 || w == 0 {
        return Err(ModelError::Shape("cannot resize an empty image".into()));
    }
    let taps = |o: usize, i: usize| -> Vec<(usize, usize, f32)> {
        (0..o)
            .map(|k| {
                let src = ((k as f32 + 0.5) * i as f32 / o as f32 - 0.5).max(0.0);
                let a = (src.floor() as usize).min(i - 1);
                let b = (a + 1).min(i - 1);
                (a, b, src - a as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(oh, h), taps(ow, w));
    let mut out = vec![0.0f32; n * c * oh * ow];
    for (p, plane) in t.data.chunks(h * w).enumerate() {
        let o = &mut out[p * oh * ow..(p + 1) * oh * ow];
        for (yy, &(y0, y1, fy)) in ty.iter().enumerate() {
            for (xx, &(x0, x1, fx)) in tx.iter().enumerate() {
                let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
                let bot = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
                o[yy * ow + xx] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
    Tensor::new(vec![n, c, oh, ow], out)
}

impl Preprocess {
    /// Maps stored values linearly from `from = (lo, hi)` (e.g. `(0, 255)`)
    /// onto `to` (e.g. `(0, 1)` or `(-1, 1)`).
    pub fn value_range(from: (f32, f32), to: (f32, f32)) -> Result<Preprocess, ModelError> {
        let span = from.1 - from.0;
        if !(span.is_finite() && span > 0.0 && (to.1 - to.0).is_finite()) {
            return Err(ModelError::Invalid(format!(
                "bad value range {from:?} -> {to:?}"
            )));
        }
        let scale = (to.1 - to.0) / span;
        Ok(Preprocess {
            scale,
            shift: to.0 - from.0 * scale,
            ..Preprocess::default()
        })
    }

    /// The same steps without the mean/std normalisation, and that
    /// normalisation on its own (for [`normalize::Normalized`]), so the
    /// data ends in pixel space and the model absorbs the normalisation.
    pub fn split_normalization(&self) -> (Preprocess, Vec<f32>, Vec<f32>) {
        let mut p = self.clone();
        let mean = std::mem::take(&mut p.mean);
        let std = std::mem::take(&mut p.std);
        (p, mean, std)
    }

    /// Applies the steps to a batch.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mut t = x.clone();
        if self.to_channels_first {
            if t.shape.len() != 4 {
                return Err(ModelError::Shape(format!(
                    "channel reorder needs [n,h,w,c], got {:?}",
                    t.shape
                )));
            }
            let (n, h, w, c) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
            let mut d = vec![0.0; t.data.len()];
            for i in 0..n {
                for y in 0..h {
                    for xx in 0..w {
                        for ch in 0..c {
                            d[((i * c + ch) * h + y) * w + xx] =
                                t.data[((i * h + y) * w + xx) * c + ch];
                        }
                    }
                }
            }
            t = Tensor {
                shape: vec![n, c, h, w],
                data: d,
            };
        }
        if let Some((h, w)) = self.resize {
            t = resize_bilinear(&t, h, w)?;
        }
        if self.swap_rb {
            if t.shape.len() < 2 || t.shape[1] != 3 {
                return Err(ModelError::Shape(format!(
                    "RGB/BGR swap needs 3 channels in dim 1, got {:?}",
                    t.shape
                )));
            }
            let inner: usize = t.shape[2..].iter().product();
            for ex in t.data.chunks_mut(3 * inner.max(1)) {
                let (r, rest) = ex.split_at_mut(inner);
                r.swap_with_slice(&mut rest[inner..]);
            }
        }
        if self.scale != 1.0 || self.shift != 0.0 {
            let (a, b) = (self.scale, self.shift);
            t.data.iter_mut().for_each(|v| *v = *v * a + b);
        }
        if !self.mean.is_empty() || !self.std.is_empty() {
            let c = *t.shape.get(1).unwrap_or(&1);
            let inner: usize = t.shape.iter().skip(2).product();
            let get = |v: &[f32], ch: usize, d: f32| -> Result<f32, ModelError> {
                match v.len() {
                    0 => Ok(d),
                    1 => Ok(v[0]),
                    l if l == c => Ok(v[ch]),
                    l => Err(ModelError::Shape(format!(
                        "{l} channel statistics for {c} channels"
                    ))),
                }
            };
            for (blk, chunk) in t.data.chunks_mut(inner.max(1)).enumerate() {
                let ch = blk % c.max(1);
                let (m, s) = (get(&self.mean, ch, 0.0)?, get(&self.std, ch, 1.0)?);
                if s == 0.0 {
                    return Err(ModelError::Invalid("zero standard deviation".into()));
                }
                chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
            }
        }
        Ok(t)
    }
}

/// Largest value accepted as a class index when labels are read from a
/// float array (`.npy`, IDX): far above any real class count, low enough
/// that a stray pixel value or garbage is an error rather than an index.
pub const MAX_LABEL: f64 = 1e9;

/// Class indices from the values of a label array, with one rule for every
/// reader: a label is a non-negative whole number below [`MAX_LABEL`].
pub fn labels_from_values<T: Copy + Into<f64>>(values: &[T]) -> Result<Vec<usize>, ModelError> {
    values
        .iter()
        .map(|&v| {
            let v: f64 = v.into();
            if v >= 0.0 && v.fract() == 0.0 && v < MAX_LABEL {
                Ok(v as usize)
            } else {
                Err(ModelError::Invalid(format!(
                    "label {v} is not a class index"
                )))
            }
        })
        .collect()
}

/// Reads class labels from a `.npy` file (told by its magic bytes) or an
/// IDX file, under [`labels_from_values`]'s rule: the one label loader of
/// the workspace (the CLI's `--labels` and [`stream`]'s label files).
pub fn read_labels(path: &std::path::Path) -> Result<Vec<usize>, ModelError> {
    use std::io::Read;
    let is_npy = {
        let mut m = [0u8; 6];
        let mut f = std::fs::File::open(path)?;
        f.read_exact(&mut m).is_ok() && m == *b"\x93NUMPY"
    };
    if is_npy {
        npy::read_npy(path)?.to_labels()
    } else {
        labels_from_values(&idx::read_idx(path)?.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_labels_takes_npy_and_idx_under_one_rule() {
        let dir = tempfile::tempdir().unwrap();
        // IDX, big-endian f32 (type 0x0D), one dimension.
        let idx = |vals: &[f32]| {
            let mut b = vec![0, 0, 0x0D, 1];
            b.extend((vals.len() as u32).to_be_bytes());
            for v in vals {
                b.extend(v.to_be_bytes());
            }
            b
        };
        let good = dir.path().join("good.idx");
        std::fs::write(&good, idx(&[1.0, 0.0, 7.0])).unwrap();
        assert_eq!(read_labels(&good).unwrap(), vec![1, 0, 7]);
        // Above MAX_LABEL: refused for IDX as for .npy.
        let huge = dir.path().join("huge.idx");
        std::fs::write(&huge, idx(&[1e12])).unwrap();
        let e = read_labels(&huge).unwrap_err().to_string();
        assert!(e.contains("not a class index"), "{e}");
        let npy = dir.path().join("y.npy");
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
        let pad = 64 - (10 + h.len() + 1) % 64;
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend(((h.len() + pad + 1) as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b.extend(std::iter::repeat_n(b' ', pad));
        b.push(b'\n');
        for v in [3i64, 2] {
            b.extend(v.to_le_bytes());
        }
        std::fs::write(&npy, b).unwrap();
        assert_eq!(read_labels(&npy).unwrap(), vec![3, 2]);
    }

    #[test]
    fn one_label_rule_for_every_reader() {
        assert_eq!(
            labels_from_values(&[0.0f32, 3.0, 9.0]).unwrap(),
            vec![0, 3, 9]
        );
        assert_eq!(labels_from_values(&[2.0f64]).unwrap(), vec![2]);
        for bad in [-1.0f64, 0.5, f64::NAN, f64::INFINITY, 1e12] {
            let e = labels_from_values(&[bad]).unwrap_err().to_string();
            assert!(e.contains("not a class index"), "{bad}: {e}");
        }
    }

    #[test]
    fn batches_cover_the_data() {
        let d = Dataset::new(
            Tensor::new(vec![5, 2], (0..10).map(|v| v as f32).collect()).unwrap(),
            vec![0, 1, 2, 3, 4],
        )
        .unwrap();
        let b: Vec<Dataset> = d.batches(2).collect();
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].x.shape, vec![1, 2]);
        assert_eq!(b[2].x.data, vec![8.0, 9.0]);
        assert_eq!(b[1].y, vec![2, 3]);
    }

    #[test]
    fn preprocess_scales_normalises_and_reorders() {
        let x = Tensor::new(vec![1, 1, 2, 2], vec![0.0, 255.0, 0.0, 255.0]).unwrap();
        let p = Preprocess {
            scale: 1.0 / 255.0,
            mean: vec![0.5, 0.0],
            std: vec![0.5, 1.0],
            to_channels_first: true,
            ..Preprocess::default()
        };
        let t = p.apply(&x).unwrap();
        assert_eq!(t.shape, vec![1, 2, 1, 2]);
        assert_eq!(t.data, vec![-1.0, -1.0, 1.0, 1.0]);
    }

    #[test]
    fn value_range_channel_swap_and_resize() {
        let p = Preprocess::value_range((0.0, 255.0), (-1.0, 1.0)).unwrap();
        let x = Tensor::new(vec![1, 3], vec![0.0, 127.5, 255.0]).unwrap();
        assert_eq!(p.apply(&x).unwrap().data, vec![-1.0, 0.0, 1.0]);
        assert!(Preprocess::value_range((1.0, 1.0), (0.0, 1.0)).is_err());
        // [1, 1, 2, 3] HWC BGR -> CHW RGB.
        let hwc = Tensor::new(vec![1, 1, 2, 3], vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]).unwrap();
        let p = Preprocess {
            to_channels_first: true,
            swap_rb: true,
            ..Preprocess::default()
        };
        let t = p.apply(&hwc).unwrap();
        assert_eq!(t.shape, vec![1, 3, 1, 2]);
        assert_eq!(t.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert!(p.apply(&Tensor::zeros(vec![1, 2, 2, 2])).is_err());
        // Bilinear 2x2 -> 4x4 (half-pixel): torch.nn.functional.interpolate
        // gives the row [0, 0.25, 0.75, 1] for [0, 1].
        let p = Preprocess {
            resize: Some((4, 4)),
            ..Preprocess::default()
        };
        let t = p
            .apply(&Tensor::new(vec![1, 1, 2, 2], vec![0.0, 1.0, 0.0, 1.0]).unwrap())
            .unwrap();
        assert_eq!(t.shape, vec![1, 1, 4, 4]);
        assert_eq!(&t.data[..4], &[0.0, 0.25, 0.75, 1.0]);
        // Downscale by 2 averages neighbour pairs.
        let p = Preprocess {
            resize: Some((1, 2)),
            ..Preprocess::default()
        };
        let t = p
            .apply(
                &Tensor::new(
                    vec![1, 1, 2, 4],
                    vec![0.0, 2.0, 4.0, 6.0, 2.0, 4.0, 6.0, 8.0],
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(t.data, vec![2.0, 6.0]);
        let (q, m, s) = Preprocess {
            mean: vec![0.5],
            std: vec![0.25],
            ..Preprocess::default()
        }
        .split_normalization();
        assert!(q.mean.is_empty() && q.std.is_empty());
        assert_eq!((m, s), (vec![0.5], vec![0.25]));
    }

    #[test]
    fn idx_round_trip() {
        let mut b = vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[1, 2, 3, 4, 5, 255]);
        let t = idx::parse_idx(&b).unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(t.data[5], 255.0);
        assert!(idx::parse_idx(&b[..15]).is_err());
        assert!(idx::parse_idx(&[0, 0, 0x08, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
