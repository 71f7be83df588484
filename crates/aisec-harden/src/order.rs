//! Example orders given from outside the run: one permutation of the
//! training examples per epoch, read from a `.npy` integer array of shape
//! `[epochs, n]` or a JSON array of arrays.
//!
//! Used to replay another framework's shuffles exactly (e.g. the
//! `torch.randperm` orders of a PyTorch loop, written by
//! `bench/harden/advtrain.py --order torch`), so that two trainings differ
//! only in what is not the data order. Every row must be a permutation of
//! `0..n`: a wrong length, an index out of range, a repeated index or a
//! value that is not a non-negative integer is an error, never a silent
//! truncation or a panic.

use aisec_model::data::npy::parse_npy;

use crate::error::{HardenError, Result};

/// Largest order file accepted, in values (epochs times examples).
const MAX_VALUES: usize = 1 << 28;

/// Per-epoch permutations of the training examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochOrders {
    rows: Vec<Vec<usize>>,
}

fn bad(m: impl Into<String>) -> HardenError {
    HardenError::InvalidParameter(format!("order: {}", m.into()))
}

impl EpochOrders {
    /// Checks that every row is a permutation of `0..len` (all rows of one
    /// length) and that there is at least one row.
    pub fn new(rows: Vec<Vec<usize>>) -> Result<Self> {
        let Some(first) = rows.first() else {
            return Err(bad("no epochs"));
        };
        let n = first.len();
        if n == 0 {
            return Err(bad("epoch 1's order is empty"));
        }
        let mut seen = vec![usize::MAX; n];
        for (e, row) in rows.iter().enumerate() {
            if row.len() != n {
                return Err(bad(format!(
                    "epoch {} has {} indices, epoch 1 has {n}",
                    e + 1,
                    row.len()
                )));
            }
            for (pos, &i) in row.iter().enumerate() {
                if i >= n {
                    return Err(bad(format!(
                        "epoch {}, position {pos}: index {i} is out of range for {n} examples",
                        e + 1
                    )));
                }
                if seen[i] == e {
                    return Err(bad(format!(
                        "epoch {}: index {i} appears twice (each epoch must be a permutation)",
                        e + 1
                    )));
                }
                seen[i] = e;
            }
        }
        Ok(EpochOrders { rows })
    }

    /// Parses `.npy` bytes (an integer array `[epochs, n]`) or, when the
    /// bytes do not start with the NumPy magic, JSON (`[[...], ...]`).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.starts_with(b"\x93NUMPY") {
            Self::from_npy(bytes)
        } else {
            Self::from_json(bytes)
        }
    }

    fn from_npy(bytes: &[u8]) -> Result<Self> {
        let a = parse_npy(bytes).map_err(|e| bad(e.to_string()))?;
        let [epochs, n] = a.shape[..] else {
            return Err(bad(format!(
                "the array must have shape [epochs, examples], not {:?}",
                a.shape
            )));
        };
        if a.values.len() > MAX_VALUES {
            return Err(bad(format!("over {MAX_VALUES} values")));
        }
        let mut rows = Vec::with_capacity(epochs);
        for e in 0..epochs {
            let mut row = Vec::with_capacity(n);
            for (pos, &v) in a.values[e * n..(e + 1) * n].iter().enumerate() {
                row.push(index(v).ok_or_else(|| {
                    bad(format!(
                        "epoch {}, position {pos}: {v} is not a non-negative integer index",
                        e + 1
                    ))
                })?);
            }
            rows.push(row);
        }
        Self::new(rows)
    }

    fn from_json(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("neither .npy nor JSON ({e})")))?;
        let outer = v
            .as_array()
            .ok_or_else(|| bad("JSON must be an array of per-epoch arrays"))?;
        let mut total = 0usize;
        let mut rows = Vec::with_capacity(outer.len());
        for (e, r) in outer.iter().enumerate() {
            let r = r
                .as_array()
                .ok_or_else(|| bad(format!("epoch {} is not an array", e + 1)))?;
            total = total.saturating_add(r.len());
            if total > MAX_VALUES {
                return Err(bad(format!("over {MAX_VALUES} values")));
            }
            let mut row = Vec::with_capacity(r.len());
            for (pos, x) in r.iter().enumerate() {
                let i = x
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "epoch {}, position {pos}: {x} is not a non-negative integer index",
                            e + 1
                        ))
                    })?;
                row.push(i);
            }
            rows.push(row);
        }
        Self::new(rows)
    }

    /// Epochs the file covers.
    pub fn epochs(&self) -> usize {
        self.rows.len()
    }

    /// Examples each epoch orders.
    pub fn examples(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }

    /// The order of epoch `epoch` (0-based), if the file covers it.
    pub fn epoch(&self, epoch: usize) -> Option<&[usize]> {
        self.rows.get(epoch).map(Vec::as_slice)
    }

    /// Checks that the orders fit a run of `epochs` epochs over `n`
    /// examples.
    pub fn check_fits(&self, n: usize, epochs: usize) -> Result<()> {
        if self.examples() != n {
            return Err(bad(format!(
                "each epoch orders {} examples, the training set has {n}",
                self.examples()
            )));
        }
        if self.epochs() < epochs {
            return Err(bad(format!(
                "it covers {} epochs, the run trains {epochs}",
                self.epochs()
            )));
        }
        Ok(())
    }

    /// A 64-bit FNV-1a digest of the orders (stored in checkpoints, so a
    /// resumed run can tell that it is given the same orders).
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for row in &self.rows {
            for &i in row.iter().chain(std::iter::once(&usize::MAX)) {
                for b in (i as u64).to_le_bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        h
    }
}

/// `v` as an index if it is a non-negative integer that fits.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn index(v: f64) -> Option<usize> {
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.007_199_254_740_992e15)
        .then_some(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_i64(shape: &str, vals: &[i64]) -> Vec<u8> {
        let h = format!("{{'descr': '<i8', 'fortran_order': False, 'shape': {shape}, }}");
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&u16::try_from(h.len()).unwrap().to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        for v in vals {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_npy_and_json_permutations() {
        let o = EpochOrders::parse(&npy_i64("(2, 3)", &[2, 0, 1, 1, 2, 0])).unwrap();
        assert_eq!((o.epochs(), o.examples()), (2, 3));
        assert_eq!(o.epoch(0), Some(&[2, 0, 1][..]));
        assert_eq!(o.epoch(1), Some(&[1, 2, 0][..]));
        assert_eq!(o.epoch(2), None);
        let j = EpochOrders::parse(b"[[2, 0, 1], [1, 2, 0]]").unwrap();
        assert_eq!(o, j);
        assert_eq!(o.fingerprint(), j.fingerprint());
        let other = EpochOrders::parse(b"[[2, 0, 1], [1, 0, 2]]").unwrap();
        assert_ne!(o.fingerprint(), other.fingerprint());
        o.check_fits(3, 2).unwrap();
        o.check_fits(3, 1).unwrap();
    }

    fn err(b: &[u8]) -> String {
        EpochOrders::parse(b).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_is_not_a_permutation_per_epoch() {
        assert!(err(b"[[0, 1, 3]]").contains("index 3 is out of range for 3 examples"));
        assert!(err(b"[[0, 1, 1]]").contains("index 1 appears twice"));
        assert!(err(b"[[0, 1, 2], [0, 1]]").contains("epoch 2 has 2 indices, epoch 1 has 3"));
        assert!(err(b"[[0, -1]]").contains("not a non-negative integer"));
        assert!(err(b"[[0, 1.5]]").contains("not a non-negative integer"));
        assert!(err(b"[]").contains("no epochs"));
        assert!(err(b"[[]]").contains("empty"));
        assert!(err(b"{\"a\": 1}").contains("array of per-epoch arrays"));
        assert!(err(b"not json").contains("neither .npy nor JSON"));
        assert!(err(&npy_i64("(3,)", &[0, 1, 2])).contains("shape [epochs, examples]"));
        assert!(err(&npy_i64("(1, 2)", &[0, -4])).contains("not a non-negative integer"));
        assert!(err(&npy_i64("(1, 3)", &[0, 1, 7])).contains("out of range"));
        // Truncated data: the npy reader's error, not a panic.
        let mut b = npy_i64("(1, 3)", &[0, 1, 2]);
        b.truncate(b.len() - 4);
        let e = err(&b);
        assert!(e.contains("order:") && e.contains("shorter"), "{e}");
    }

    #[test]
    fn says_when_the_orders_do_not_fit_the_run() {
        let o = EpochOrders::parse(b"[[1, 0], [0, 1]]").unwrap();
        let e = o.check_fits(3, 2).unwrap_err().to_string();
        assert!(
            e.contains("orders 2 examples, the training set has 3"),
            "{e}"
        );
        let e = o.check_fits(2, 5).unwrap_err().to_string();
        assert!(e.contains("covers 2 epochs, the run trains 5"), "{e}");
    }
}
