//! Backdoor triggers shared by the poisoning attacks and the defences that
//! are scored against them: a [`Trigger`] applied to one example or a
//! batch, saved as a PNG, and the [`Manifest`] of poisoned indices (JSON)
//! every defence can be scored against.
//!
//! * Patch (BadNets; Gu et al. 2017, "BadNets: Identifying Vulnerabilities
//!   in the Machine Learning Model Supply Chain"): `x' = (1 - m) x + m p`
//!   with a small mask `m` (a checkerboard square in a corner).
//! * Blend (Chen et al. 2017, "Targeted Backdoor Attacks on Deep Learning
//!   Systems Using Data Poisoning"): `x' = (1 - a) x + a p` over the whole
//!   image with a fixed random pattern `p`.
//! * Warp (WaNet; Nguyen & Tran 2021, "WaNet: Imperceptible Warping-based
//!   Backdoor Attack"): a smooth random displacement field (a `k x k`
//!   uniform grid upsampled to the image, scaled by `s / h`) added to the
//!   identity sampling grid, images resampled bilinearly.
//!
//! Examples are laid out `[c, h, w]` (channels first); flat feature
//! vectors are treated as `[1, 1, d]` images.

use std::path::Path;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use aisec_model::Tensor;

/// Errors of trigger construction, application and saving.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// Shapes or parameters do not fit.
    #[error("trigger: {0}")]
    Invalid(String),
    /// Writing a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// PNG encoding failed.
    #[error(transparent)]
    Png(#[from] crate::save::SaveError),
    /// JSON encoding or decoding failed.
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
}

/// Per-example layout `[channels, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 or 3 for images; 1 for feature vectors).
    pub c: usize,
    /// Height (1 for feature vectors).
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl ImageShape {
    /// Values per example.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True when the shape holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The layout of one example of `example_shape` (without the batch
    /// dimension): `[c, h, w]`, `[h, w]` (one channel) or `[d]` (`[1, 1, d]`,
    /// or `[1, s, s]` when `d` is a square number of at least 16, e.g. the
    /// 8x8 digits stored flat).
    pub fn from_example_shape(example_shape: &[usize]) -> Result<ImageShape, TriggerError> {
        let s = match example_shape {
            [c, h, w] => ImageShape {
                c: *c,
                h: *h,
                w: *w,
            },
            [h, w] => ImageShape { c: 1, h: *h, w: *w },
            [d] => {
                let r = (*d as f64).sqrt().round() as usize;
                if r * r == *d && *d >= 16 {
                    ImageShape { c: 1, h: r, w: r }
                } else {
                    ImageShape { c: 1, h: 1, w: *d }
                }
            }
            s => {
                return Err(TriggerError::Invalid(format!(
                    "examples of shape {s:?} are not images or feature vectors"
                )))
            }
        };
        if s.is_empty() || s.len() > 1 << 26 {
            return Err(TriggerError::Invalid(format!("bad example size {s:?}")));
        }
        Ok(s)
    }
}

/// A backdoor trigger: how a clean example becomes a triggered one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// `x' = (1 - mask) x + mask pattern` (BadNets patch).
    Patch {
        /// Example layout.
        shape: ImageShape,
        /// Per-value weight in `[0, 1]`.
        mask: Vec<f32>,
        /// Values written where the mask is set.
        pattern: Vec<f32>,
    },
    /// `x' = (1 - alpha) x + alpha pattern` (Blended).
    Blend {
        /// Example layout.
        shape: ImageShape,
        /// The blended pattern.
        pattern: Vec<f32>,
        /// Blend ratio in `(0, 1]`.
        alpha: f32,
    },
    /// Resampling at a warped grid (WaNet).
    Warp {
        /// Example layout.
        shape: ImageShape,
        /// Source coordinates `(row, col)` per output pixel, `[h * w * 2]`,
        /// in pixels.
        grid: Vec<f32>,
    },
}

impl Trigger {
    /// BadNets: a `size x size` checkerboard of `lo`/`hi` in the
    /// bottom-right corner, one pixel from the border when the image
    /// allows. Feature vectors get the last `size` features set to `hi`.
    pub fn badnets(
        shape: ImageShape,
        size: usize,
        lo: f32,
        hi: f32,
    ) -> Result<Trigger, TriggerError> {
        if size == 0 || (shape.h > 1 && size > shape.h) || size > shape.w {
            return Err(TriggerError::Invalid(format!(
                "patch size {size} does not fit a {}x{} example",
                shape.h, shape.w
            )));
        }
        let mut mask = vec![0.0; shape.len()];
        let mut pattern = vec![0.0; shape.len()];
        // One-pixel margin from the border where the image has room.
        let rows = if shape.h == 1 {
            0..1
        } else {
            let m = usize::from(shape.h >= size + 2);
            shape.h - size - m..shape.h - m
        };
        let mc = usize::from(shape.h > 1 && shape.w >= size + 2);
        let cols = shape.w - size - mc..shape.w - mc;
        for c in 0..shape.c {
            for (ri, r) in rows.clone().enumerate() {
                for (ci, col) in cols.clone().enumerate() {
                    let i = (c * shape.h + r) * shape.w + col;
                    mask[i] = 1.0;
                    pattern[i] = if shape.h == 1 || (ri + ci) % 2 == 0 {
                        hi
                    } else {
                        lo
                    };
                }
            }
        }
        Ok(Trigger::Patch {
            shape,
            mask,
            pattern,
        })
    }

    /// A solid `size x size` patch of `value` in the very bottom-right
    /// corner of every channel (no margin): the classic white-square BadNets
    /// stamp, for small images whose corner is always background (e.g. the
    /// 8x8 digits).
    pub fn solid_patch(
        shape: ImageShape,
        size: usize,
        value: f32,
    ) -> Result<Trigger, TriggerError> {
        if size == 0 || size > shape.h || size > shape.w || !value.is_finite() {
            return Err(TriggerError::Invalid(format!(
                "a {size}x{size} patch of {value} does not fit a {}x{} example",
                shape.h, shape.w
            )));
        }
        let mut mask = vec![0.0; shape.len()];
        let mut pattern = vec![0.0; shape.len()];
        for c in 0..shape.c {
            for r in shape.h - size..shape.h {
                for col in shape.w - size..shape.w {
                    let i = (c * shape.h + r) * shape.w + col;
                    mask[i] = 1.0;
                    pattern[i] = value;
                }
            }
        }
        Ok(Trigger::Patch {
            shape,
            mask,
            pattern,
        })
    }

    /// Blended: a fixed uniform-noise pattern in `[lo, hi]` from `seed`,
    /// mixed in with ratio `alpha` (Chen et al. 2017 use random noise as
    /// one of their blended keys; 0.1 to 0.2 is typical).
    pub fn blended(
        shape: ImageShape,
        alpha: f32,
        seed: u64,
        lo: f32,
        hi: f32,
    ) -> Result<Trigger, TriggerError> {
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(TriggerError::Invalid(format!(
                "blend ratio {alpha} is not in (0, 1]"
            )));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x626c_656e_6465_6421);
        let pattern = (0..shape.len()).map(|_| rng.gen_range(lo..=hi)).collect();
        Ok(Trigger::Blend {
            shape,
            pattern,
            alpha,
        })
    }

    /// WaNet: a `k x k` field of uniform noise in `[-1, 1]`, normalised by
    /// its mean absolute value, upsampled bilinearly to `h x w`, scaled so
    /// the largest displacement is about `s` pixels per `h` (the paper's
    /// `s / h` in normalised coordinates, with k = 4, s = 0.5 on CIFAR-10),
    /// and added to the identity grid, clamped to the image.
    pub fn wanet(shape: ImageShape, k: usize, s: f32, seed: u64) -> Result<Trigger, TriggerError> {
        if shape.h < 2 || shape.w < 2 || k < 2 || !(s.is_finite() && s > 0.0) {
            return Err(TriggerError::Invalid(format!(
                "warping needs an image of at least 2x2, k >= 2 and s > 0 (got {}x{}, k {k}, s {s})",
                shape.h, shape.w
            )));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7761_6e65_7421);
        let noise: Vec<f32> = (0..k * k * 2).map(|_| rng.gen_range(-1.0..=1.0)).collect();
        let mean_abs = noise.iter().map(|v| v.abs()).sum::<f32>() / noise.len() as f32;
        let noise: Vec<f32> = noise.iter().map(|v| v / mean_abs.max(1e-6)).collect();
        let (h, w) = (shape.h, shape.w);
        let mut grid = vec![0.0; h * w * 2];
        for r in 0..h {
            for c in 0..w {
                // Position in the k x k field (align corners).
                let fr = r as f32 * (k - 1) as f32 / (h - 1) as f32;
                let fc = c as f32 * (k - 1) as f32 / (w - 1) as f32;
                for d in 0..2 {
                    let v = bilinear(&noise, k, k, 2, d, fr, fc);
                    // Normalised units span 2 over the image: s/h of that
                    // is (s/h) * (size/2) pixels.
                    let size = if d == 0 { h } else { w } as f32;
                    let disp = v * s / h as f32 * size / 2.0;
                    let base = if d == 0 { r } else { c } as f32;
                    grid[(r * w + c) * 2 + d] = (base + disp).clamp(0.0, size - 1.0);
                }
            }
        }
        Ok(Trigger::Warp { shape, grid })
    }

    /// The example layout the trigger is for.
    pub fn shape(&self) -> ImageShape {
        match self {
            Trigger::Patch { shape, .. }
            | Trigger::Blend { shape, .. }
            | Trigger::Warp { shape, .. } => *shape,
        }
    }

    /// A short name: `patch`, `blend` or `warp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Patch { .. } => "patch",
            Trigger::Blend { .. } => "blend",
            Trigger::Warp { .. } => "warp",
        }
    }

    /// Applies the trigger to one example in place.
    pub fn apply(&self, x: &mut [f32]) -> Result<(), TriggerError> {
        let shape = self.shape();
        if x.len() != shape.len() {
            return Err(TriggerError::Invalid(format!(
                "example has {} values, the trigger is for {}",
                x.len(),
                shape.len()
            )));
        }
        match self {
            Trigger::Patch { mask, pattern, .. } => {
                for ((v, m), p) in x.iter_mut().zip(mask).zip(pattern) {
                    *v = (1.0 - m) * *v + m * p;
                }
            }
            Trigger::Blend { pattern, alpha, .. } => {
                for (v, p) in x.iter_mut().zip(pattern) {
                    *v = (1.0 - alpha) * *v + alpha * p;
                }
            }
            Trigger::Warp { grid, .. } => {
                let src = x.to_vec();
                let (h, w) = (shape.h, shape.w);
                for c in 0..shape.c {
                    for r in 0..h {
                        for col in 0..w {
                            let g = (r * w + col) * 2;
                            x[(c * h + r) * w + col] = bilinear(
                                &src[c * h * w..(c + 1) * h * w],
                                h,
                                w,
                                1,
                                0,
                                grid[g],
                                grid[g + 1],
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the trigger to rows `idx` of a batch in place.
    pub fn apply_rows(&self, x: &mut Tensor, idx: &[usize]) -> Result<(), TriggerError> {
        let n = x.batch();
        for &i in idx {
            if i >= n {
                return Err(TriggerError::Invalid(format!(
                    "row {i} is out of range for {n} examples"
                )));
            }
            self.apply(x.row_mut(i))?;
        }
        Ok(())
    }

    /// A triggered copy of the whole batch.
    pub fn applied(&self, x: &Tensor) -> Result<Tensor, TriggerError> {
        let mut out = x.clone();
        let all: Vec<usize> = (0..x.batch()).collect();
        self.apply_rows(&mut out, &all)?;
        Ok(out)
    }

    /// An image of the trigger for people: the pattern where the mask is
    /// set (grey elsewhere) for a patch, the pattern for a blend, and for a
    /// warp the displacement magnitude (black none, white the largest).
    /// Values in `[0, 1]`, layout `[c, h, w]`.
    pub fn picture(&self, lo: f32, hi: f32) -> Vec<f32> {
        let span = (hi - lo).max(1e-12);
        let norm = |v: f32| ((v - lo) / span).clamp(0.0, 1.0);
        match self {
            Trigger::Patch { mask, pattern, .. } => mask
                .iter()
                .zip(pattern)
                .map(|(m, p)| m * norm(*p) + (1.0 - m) * 0.5)
                .collect(),
            Trigger::Blend { pattern, .. } => pattern.iter().map(|p| norm(*p)).collect(),
            Trigger::Warp { shape, grid } => {
                let (h, w) = (shape.h, shape.w);
                let mags: Vec<f32> = (0..h * w)
                    .map(|i| {
                        let dr = grid[2 * i] - (i / w) as f32;
                        let dc = grid[2 * i + 1] - (i % w) as f32;
                        (dr * dr + dc * dc).sqrt()
                    })
                    .collect();
                let m = mags.iter().copied().fold(0.0f32, f32::max).max(1e-12);
                (0..shape.c)
                    .flat_map(|_| mags.iter().map(move |v| v / m))
                    .collect()
            }
        }
    }

    /// Writes [`picture`](Trigger::picture) as a PNG (grey for one channel,
    /// RGB for three; other channel counts show the first channel),
    /// upscaled so small images stay visible.
    pub fn save_png(&self, path: &Path, lo: f32, hi: f32) -> Result<(), TriggerError> {
        let shape = self.shape();
        let pic = self.picture(lo, hi);
        let (h, w) = (shape.h, shape.w);
        let scale = (128 / h.max(w).max(1)).clamp(1, 16);
        let (oh, ow) = (h * scale, w * scale);
        let rgb = shape.c == 3;
        let chans = if rgb { 3 } else { 1 };
        let mut buf = Vec::with_capacity(oh * ow * chans);
        for r in 0..oh {
            for c in 0..ow {
                for ch in 0..chans {
                    let v = pic[(ch * h + r / scale) * w + c / scale];
                    buf.push((v * 255.0).round() as u8);
                }
            }
        }
        let png = aisec_model::data::images::encode_png(&buf, ow, oh, chans)
            .map_err(crate::save::SaveError::from)?;
        std::fs::write(path, png)?;
        Ok(())
    }
}

/// Bilinear sample of channel `d` of an `[h, w, ch]`-interleaved field (or
/// a plain `[h, w]` plane with `ch = 1`) at fractional `(r, c)`, clamped to
/// the border.
fn bilinear(f: &[f32], h: usize, w: usize, ch: usize, d: usize, r: f32, c: f32) -> f32 {
    let r = r.clamp(0.0, (h - 1) as f32);
    let c = c.clamp(0.0, (w - 1) as f32);
    let (r0, c0) = (r.floor() as usize, c.floor() as usize);
    let (r1, c1) = ((r0 + 1).min(h - 1), (c0 + 1).min(w - 1));
    let (fr, fc) = (r - r0 as f32, c - c0 as f32);
    let at = |rr: usize, cc: usize| f[(rr * w + cc) * ch + d];
    (1.0 - fr) * ((1.0 - fc) * at(r0, c0) + fc * at(r0, c1))
        + fr * ((1.0 - fc) * at(r1, c0) + fc * at(r1, c1))
}

/// How poisoned examples were relabelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelMode {
    /// Every poisoned example is relabelled to the target class.
    AllToOne,
    /// Class `c` is relabelled to `(c + 1) mod classes`.
    AllToAll,
    /// Labels are left as they were (clean-label attack).
    Clean,
}

impl LabelMode {
    /// The label a triggered example of true class `y` should get from a
    /// backdoored model (`None` when the attack does not change it: a
    /// clean-label attack still aims at `target`).
    pub fn attack_label(self, y: usize, target: usize, classes: usize) -> usize {
        match self {
            LabelMode::AllToOne | LabelMode::Clean => target,
            LabelMode::AllToAll => (y + 1) % classes.max(1),
        }
    }
}

/// The ground truth of a poisoning run, written as JSON beside the
/// poisoned data: which rows were poisoned, their original labels, and the
/// trigger, so that every defence can be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Attack name (`badnets`, `badnets-all-to-all`, `blended`, `wanet`,
    /// `clean-label`).
    pub attack: String,
    /// Examples in the poisoned data set.
    pub examples: usize,
    /// Number of classes.
    pub classes: usize,
    /// Target class (all-to-one and clean-label).
    pub target: usize,
    /// How labels were changed.
    pub label_mode: LabelMode,
    /// Requested poison rate (fraction of the data set).
    pub rate: f32,
    /// Seed of the run.
    pub seed: u64,
    /// Poisoned row indices, ascending.
    pub indices: Vec<usize>,
    /// Label of each poisoned row before poisoning (same order).
    pub original_labels: Vec<usize>,
    /// The trigger.
    pub trigger: Trigger,
}

impl Manifest {
    /// Writes the manifest as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), TriggerError> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }

    /// Reads a manifest, checking that indices are in range, ascending and
    /// paired with labels.
    pub fn load(path: &Path) -> Result<Manifest, TriggerError> {
        let meta = std::fs::metadata(path)?;
        if meta.len() > 1 << 30 {
            return Err(TriggerError::Invalid("manifest larger than 1 GiB".into()));
        }
        let m: Manifest = serde_json::from_slice(&std::fs::read(path)?)?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), TriggerError> {
        if self.indices.len() != self.original_labels.len() {
            return Err(TriggerError::Invalid(
                "indices and original_labels differ in length".into(),
            ));
        }
        if self.indices.windows(2).any(|w| w[0] >= w[1])
            || self.indices.last().is_some_and(|&i| i >= self.examples)
        {
            return Err(TriggerError::Invalid(
                "indices must be ascending and below the example count".into(),
            ));
        }
        Ok(())
    }

    /// A 0/1 vector over the data set: 1 where a row was poisoned.
    pub fn is_poisoned(&self) -> Vec<bool> {
        let mut v = vec![false; self.examples];
        for &i in &self.indices {
            if let Some(b) = v.get_mut(i) {
                *b = true;
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(c: usize, h: usize, w: usize, v: f32) -> (ImageShape, Vec<f32>) {
        (ImageShape { c, h, w }, vec![v; c * h * w])
    }

    #[test]
    fn badnets_writes_a_checkerboard_in_the_corner_only() {
        let (s, mut x) = img(1, 8, 8, 0.5);
        let t = Trigger::badnets(s, 3, 0.0, 1.0).unwrap();
        t.apply(&mut x).unwrap();
        // Rows/cols 4..7 (one-pixel margin), alternating 1, 0.
        assert_eq!(x[4 * 8 + 4], 1.0);
        assert_eq!(x[4 * 8 + 5], 0.0);
        assert_eq!(x[6 * 8 + 6], 1.0);
        assert_eq!(x[7 * 8 + 7], 0.5);
        assert_eq!(x.iter().filter(|&&v| v != 0.5).count(), 9);
        // Colour: the same square in every channel.
        let (s, mut x) = img(3, 6, 6, 0.5);
        Trigger::badnets(s, 2, 0.0, 1.0)
            .unwrap()
            .apply(&mut x)
            .unwrap();
        assert_eq!(x.iter().filter(|&&v| v != 0.5).count(), 12);
        // Too big, and the wrong example size, are errors.
        assert!(Trigger::badnets(ImageShape { c: 1, h: 4, w: 4 }, 5, 0.0, 1.0).is_err());
        assert!(t.apply(&mut [0.0; 3]).is_err());
    }

    #[test]
    fn blend_mixes_in_the_pattern_at_alpha() {
        let (s, mut x) = img(1, 4, 4, 0.0);
        let t = Trigger::blended(s, 0.2, 7, 0.0, 1.0).unwrap();
        let Trigger::Blend { pattern, .. } = &t else {
            panic!("not a blend")
        };
        t.apply(&mut x).unwrap();
        for (v, p) in x.iter().zip(pattern) {
            assert!((v - 0.2 * p).abs() < 1e-6);
        }
        // Seeded: the same seed gives the same pattern, another seed not.
        assert_eq!(t, Trigger::blended(s, 0.2, 7, 0.0, 1.0).unwrap());
        assert_ne!(t, Trigger::blended(s, 0.2, 8, 0.0, 1.0).unwrap());
        assert!(Trigger::blended(s, 0.0, 7, 0.0, 1.0).is_err());
    }

    #[test]
    fn warp_moves_pixels_smoothly_and_keeps_constant_images() {
        let s = ImageShape { c: 1, h: 16, w: 16 };
        let t = Trigger::wanet(s, 4, 0.5, 3).unwrap();
        // A constant image is unchanged by resampling.
        let mut flat = vec![0.3; 256];
        t.apply(&mut flat).unwrap();
        assert!(flat.iter().all(|v| (v - 0.3).abs() < 1e-6));
        // A ramp changes, by less than a few pixels' worth.
        let ramp: Vec<f32> = (0..256).map(|i| (i % 16) as f32 / 15.0).collect();
        let mut x = ramp.clone();
        t.apply(&mut x).unwrap();
        let moved = x
            .iter()
            .zip(&ramp)
            .filter(|(a, b)| (*a - *b).abs() > 1e-4)
            .count();
        assert!(moved > 50, "{moved}");
        let max = x
            .iter()
            .zip(&ramp)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max < 4.0 / 15.0, "{max}");
        assert!(Trigger::wanet(ImageShape { c: 1, h: 1, w: 9 }, 4, 0.5, 0).is_err());
    }

    #[test]
    fn flat_vectors_use_a_square_layout_or_a_row() {
        assert_eq!(
            ImageShape::from_example_shape(&[64]).unwrap(),
            ImageShape { c: 1, h: 8, w: 8 }
        );
        assert_eq!(
            ImageShape::from_example_shape(&[10]).unwrap(),
            ImageShape { c: 1, h: 1, w: 10 }
        );
        let t = Trigger::badnets(ImageShape { c: 1, h: 1, w: 10 }, 3, 0.0, 1.0).unwrap();
        let mut x = vec![0.0; 10];
        t.apply(&mut x).unwrap();
        assert_eq!(&x[7..], &[1.0, 1.0, 1.0]);
        assert!(ImageShape::from_example_shape(&[1, 2, 3, 4]).is_err());
    }

    #[test]
    fn manifest_round_trips_and_rejects_bad_indices() {
        let dir = tempfile::tempdir().unwrap();
        let s = ImageShape { c: 1, h: 4, w: 4 };
        let m = Manifest {
            attack: "badnets".into(),
            examples: 10,
            classes: 3,
            target: 0,
            label_mode: LabelMode::AllToOne,
            rate: 0.2,
            seed: 1,
            indices: vec![2, 5],
            original_labels: vec![1, 2],
            trigger: Trigger::badnets(s, 2, 0.0, 1.0).unwrap(),
        };
        let p = dir.path().join("m.json");
        m.save(&p).unwrap();
        assert_eq!(Manifest::load(&p).unwrap(), m);
        assert_eq!(m.is_poisoned().iter().filter(|&&b| b).count(), 2);
        let bad = Manifest {
            indices: vec![5, 2],
            ..m.clone()
        };
        bad.save(&p).unwrap();
        assert!(Manifest::load(&p).is_err());
        let png = dir.path().join("t.png");
        m.trigger.save_png(&png, 0.0, 1.0).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 50);
        Trigger::wanet(ImageShape { c: 3, h: 8, w: 8 }, 4, 0.5, 1)
            .unwrap()
            .save_png(&png, 0.0, 1.0)
            .unwrap();
    }

    #[test]
    fn label_modes() {
        assert_eq!(LabelMode::AllToOne.attack_label(3, 0, 10), 0);
        assert_eq!(LabelMode::AllToAll.attack_label(9, 0, 10), 0);
        assert_eq!(LabelMode::AllToAll.attack_label(3, 0, 10), 4);
    }
}
