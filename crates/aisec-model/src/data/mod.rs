//! Data sets: NumPy arrays, MNIST IDX files, CSV tables, preprocessing into
//! the model's input space, and batched iteration.

pub mod csv;
pub mod idx;
pub mod images;
pub mod npy;

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

/// Input preprocessing, so attack budgets are stated in the model's input
/// space: scale raw values, normalise per channel, and reorder channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Multiply raw values by this first (e.g. `1/255`).
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (empty: none).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by (empty: none).
    pub std: Vec<f32>,
    /// Input is channels-last `[n, h, w, c]` and should become `[n, c, h, w]`.
    pub to_channels_first: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            scale: 1.0,
            mean: vec![],
            std: vec![],
            to_channels_first: false,
        }
    }
}

impl Preprocess {
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
        t.data.iter_mut().for_each(|v| *v *= self.scale);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let t = p.apply(&x).unwrap();
        assert_eq!(t.shape, vec![1, 2, 1, 2]);
        assert_eq!(t.data, vec![-1.0, -1.0, 1.0, 1.0]);
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
