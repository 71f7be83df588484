//! A mask-and-pattern trigger, the form Neural Cleanse reverse-engineers
//! (Wang et al., "Neural Cleanse: Identifying and Mitigating Backdoor
//! Attacks in Neural Networks", IEEE S&P 2019, eq. 2):
//! `x' = (1 - m) * x + m * p`, with a mask `m` per pixel (shared by the
//! channels) in `[0, 1]` and a pattern `p` per value. A blended trigger
//! (Chen et al. 2017) is the special case of a constant mask `alpha`.

use aisec_model::Tensor;
use serde::Serialize;

use crate::DefendError;

/// Channels, height and width of one example: `[c, h, w]` as is, `[h, w]`
/// as one channel, and a flat `[d]` as a `1 x 1 x d` image.
pub fn image_dims(shape: &[usize]) -> Result<(usize, usize, usize), DefendError> {
    match *shape {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok((c, h, w)),
        [h, w] if h > 0 && w > 0 => Ok((1, h, w)),
        [d] if d > 0 => Ok((1, 1, d)),
        _ => Err(DefendError::Invalid(format!(
            "inputs of shape {shape:?} are not images ([c, h, w], [h, w] or [d])"
        ))),
    }
}

/// A trigger `x' = (1 - m) x + m p`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskTrigger {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Mask per pixel, `h * w` values in `[0, 1]`.
    pub mask: Vec<f32>,
    /// Pattern per value, `c * h * w` values in the input range.
    pub pattern: Vec<f32>,
}

impl MaskTrigger {
    /// A trigger, checking the sizes.
    pub fn new(
        (c, h, w): (usize, usize, usize),
        mask: Vec<f32>,
        pattern: Vec<f32>,
    ) -> Result<MaskTrigger, DefendError> {
        if mask.len() != h * w || pattern.len() != c * h * w {
            return Err(DefendError::Invalid(format!(
                "trigger for {c}x{h}x{w} needs {} mask and {} pattern values, got {} and {}",
                h * w,
                c * h * w,
                mask.len(),
                pattern.len()
            )));
        }
        Ok(MaskTrigger {
            c,
            h,
            w,
            mask,
            pattern,
        })
    }

    /// The L1 norm of the mask (Neural Cleanse's trigger size).
    pub fn mask_l1(&self) -> f32 {
        self.mask.iter().map(|m| m.abs()).sum()
    }

    /// Stamps one example in place.
    pub fn stamp_row(&self, row: &mut [f32]) {
        let hw = self.h * self.w;
        for (i, v) in row.iter_mut().enumerate().take(self.c * hw) {
            let m = self.mask[i % hw];
            *v = (1.0 - m) * *v + m * self.pattern[i];
        }
    }

    /// Stamps one example with the mask scaled by `gain` (clipped to
    /// `[0, 1]`): `gain` 1 is [`stamp_row`](MaskTrigger::stamp_row).
    pub fn stamp_row_gain(&self, row: &mut [f32], gain: f32) {
        let hw = self.h * self.w;
        for (i, v) in row.iter_mut().enumerate().take(self.c * hw) {
            let m = (self.mask[i % hw] * gain).clamp(0.0, 1.0);
            *v = (1.0 - m) * *v + m * self.pattern[i];
        }
    }

    /// A stamped copy of a batch (rows of the wrong length are an error).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, DefendError> {
        if x.row_len() != self.c * self.h * self.w {
            return Err(DefendError::Invalid(format!(
                "trigger of {} values does not fit inputs of {}",
                self.c * self.h * self.w,
                x.row_len()
            )));
        }
        let mut out = x.clone();
        for i in 0..out.batch() {
            self.stamp_row(out.row_mut(i));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_follows_the_formula() {
        let t = MaskTrigger::new((2, 1, 2), vec![0.0, 0.5], vec![9.0, 4.0, 9.0, 2.0]).unwrap();
        let x = Tensor::new(vec![1, 2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = t.apply(&x).unwrap();
        assert_eq!(y.data, vec![1.0, 3.0, 3.0, 3.0]);
        assert_eq!(t.mask_l1(), 0.5);
        // Gain 2 turns the half mask into a full one; gain 1 is the plain stamp.
        let mut r = vec![1.0, 2.0, 3.0, 4.0];
        t.stamp_row_gain(&mut r, 2.0);
        assert_eq!(r, vec![1.0, 4.0, 3.0, 2.0]);
        let mut r = vec![1.0, 2.0, 3.0, 4.0];
        t.stamp_row_gain(&mut r, 1.0);
        assert_eq!(r, vec![1.0, 3.0, 3.0, 3.0]);
        assert!(MaskTrigger::new((1, 2, 2), vec![0.0; 3], vec![0.0; 4]).is_err());
        let bad = Tensor::zeros(vec![1, 3]);
        assert!(t.apply(&bad).is_err());
    }

    #[test]
    fn image_dims_accepts_images_and_vectors() {
        assert_eq!(image_dims(&[3, 4, 5]).unwrap(), (3, 4, 5));
        assert_eq!(image_dims(&[4, 5]).unwrap(), (1, 4, 5));
        assert_eq!(image_dims(&[7]).unwrap(), (1, 1, 7));
        assert!(image_dims(&[1, 2, 3, 4]).is_err());
        assert!(image_dims(&[0, 2, 3]).is_err());
    }
}
