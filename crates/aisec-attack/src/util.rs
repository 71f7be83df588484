//! Shared vector helpers: the threat model (norm, budget, projections),
//! norms, batching and prediction helpers. Query counting lives in
//! [`aisec_model::blackbox::QueryCounter`].

use aisec_model::{classifier::argmax, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The norm that measures a perturbation and defines the threat model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Largest absolute change of any input value.
    Linf,
    /// Euclidean length of the perturbation.
    L2,
}

impl Norm {
    /// Lower-case name (`linf`, `l2`).
    pub fn as_str(self) -> &'static str {
        match self {
            Norm::Linf => "linf",
            Norm::L2 => "l2",
        }
    }

    /// Size of `d` in this norm.
    pub fn of(self, d: &[f32]) -> f32 {
        match self {
            Norm::Linf => linf(d),
            Norm::L2 => l2(d),
        }
    }
}

/// The attacker's budget in the user's input space, and the valid input range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Threat-model norm.
    pub norm: Norm,
    /// Radius of the allowed perturbation ball.
    pub eps: f32,
    /// Smallest valid input value.
    pub lo: f32,
    /// Largest valid input value.
    pub hi: f32,
}

impl Budget {
    /// Whether a perturbation `d` lies inside the ball (with float slack).
    pub fn admits(&self, d: &[f32]) -> bool {
        self.admits_norm(self.norm.of(d))
    }

    /// Whether a perturbation of size `size` (in this budget's norm) lies
    /// inside the ball (with float slack).
    pub fn admits_norm(&self, size: f32) -> bool {
        size <= self.eps * (1.0 + 1e-4) + 1e-6
    }

    /// Projects `x` onto the ball around `x0` intersected with `[lo, hi]`.
    pub fn project(&self, x: &mut [f32], x0: &[f32]) {
        match self.norm {
            Norm::Linf => {
                for (v, &o) in x.iter_mut().zip(x0) {
                    *v = v.clamp(o - self.eps, o + self.eps);
                }
            }
            Norm::L2 => {
                let n = x
                    .iter()
                    .zip(x0)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                if n > self.eps && n > 0.0 {
                    let s = self.eps / n;
                    for (v, &o) in x.iter_mut().zip(x0) {
                        *v = o + (*v - o) * s;
                    }
                }
            }
        }
        clip(x, self.lo, self.hi);
    }

    /// A uniformly random start inside the ball (L-inf: uniform cube; L2:
    /// random direction with a radius drawn uniformly from `[0, eps]`).
    pub fn random_start(&self, x0: &[f32], rng: &mut impl Rng) -> Vec<f32> {
        let mut x: Vec<f32> = match self.norm {
            Norm::Linf => x0
                .iter()
                .map(|&o| o + rng.gen_range(-1.0f32..=1.0) * self.eps)
                .collect(),
            Norm::L2 => {
                let mut d: Vec<f32> = x0.iter().map(|_| gaussian(rng)).collect();
                let n = l2(&d).max(1e-12);
                let r = rng.gen_range(0.0f32..=1.0) * self.eps;
                for v in d.iter_mut() {
                    *v *= r / n;
                }
                x0.iter().zip(&d).map(|(a, b)| a + b).collect()
            }
        };
        self.project(&mut x, x0);
        x
    }
}

/// Clips every value to `[lo, hi]`.
pub fn clip(x: &mut [f32], lo: f32, hi: f32) {
    for v in x.iter_mut() {
        *v = v.clamp(lo, hi);
    }
}

/// Euclidean norm.
pub fn l2(d: &[f32]) -> f32 {
    d.iter().map(|v| v * v).sum::<f32>().sqrt()
}

/// Largest absolute value.
pub fn linf(d: &[f32]) -> f32 {
    d.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Number of values changed by more than `1e-6`.
pub fn l0(d: &[f32]) -> usize {
    d.iter().filter(|v| v.abs() > 1e-6).count()
}

/// Element-wise difference `a - b`.
pub fn diff(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Dot product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A standard normal sample (Box-Muller).
pub fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.gen_range(0.0f32..1.0);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

/// The steepest-ascent direction of `g` for the norm: its sign for L-inf, the
/// unit vector for L2.
/// Non-finite gradient entries (a broken or hostile model) count as zero.
pub fn ascent_direction(g: &[f32], norm: Norm) -> Vec<f32> {
    let g: Vec<f32> = g
        .iter()
        .map(|v| if v.is_finite() { *v } else { 0.0 })
        .collect();
    match norm {
        Norm::Linf => g.iter().map(|v| sign(*v)).collect(),
        Norm::L2 => {
            let n = l2(&g);
            if !(n.is_finite() && n > 1e-12) {
                return vec![0.0; g.len()];
            }
            g.iter().map(|v| v / n).collect()
        }
    }
}

/// Sign with `sign(0) = 0`.
pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// A tensor made of the listed rows of `x`.
pub fn gather(x: &Tensor, idx: &[usize]) -> Tensor {
    let n = x.row_len();
    let mut data = Vec::with_capacity(idx.len() * n);
    for &i in idx {
        data.extend_from_slice(x.row(i));
    }
    let mut shape = x.shape.clone();
    if shape.is_empty() {
        shape.push(0);
    }
    shape[0] = idx.len();
    Tensor { shape, data }
}

/// A batch tensor of the given rows with the per-example `shape`.
pub fn stack(rows: &[Vec<f32>], example_shape: &[usize]) -> Tensor {
    let mut shape = vec![rows.len()];
    shape.extend_from_slice(example_shape);
    let data = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor { shape, data }
}

/// Per-example shape of a batch tensor.
pub fn example_shape(x: &Tensor) -> Vec<usize> {
    x.shape.iter().skip(1).copied().collect()
}

/// Predicted classes from logits.
pub fn predictions(z: &Tensor) -> Vec<usize> {
    (0..z.batch()).map(|i| argmax(z.row(i))).collect()
}

/// Largest logit among classes other than `y`, with its class.
pub fn best_other(z: &[f32], y: usize) -> (usize, f32) {
    let mut best = (usize::MAX, f32::NEG_INFINITY);
    for (i, &v) in z.iter().enumerate() {
        if i != y && (best.0 == usize::MAX || v > best.1) {
            best = (i, v);
        }
    }
    best
}

/// Whether an attack goal is met by prediction `pred`: for targeted attacks
/// the target class, otherwise any class other than the true label.
pub fn goal_met(pred: usize, label: usize, target: Option<usize>) -> bool {
    match target {
        Some(t) => pred == t,
        None => pred != label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn projection_respects_ball_and_range() {
        let b = Budget {
            norm: Norm::L2,
            eps: 0.5,
            lo: 0.0,
            hi: 1.0,
        };
        let x0 = vec![0.5; 4];
        let mut x = vec![3.0, 0.5, 0.5, 0.5];
        b.project(&mut x, &x0);
        assert!((l2(&diff(&x, &x0)) - 0.5).abs() < 1e-5);
        let b = Budget {
            norm: Norm::Linf,
            ..b
        };
        let mut x = vec![-3.0, 0.9, 0.5, 0.2];
        b.project(&mut x, &x0);
        assert_eq!(x, vec![0.0, 0.9, 0.5, 0.2]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let r = b.random_start(&x0, &mut rng);
        assert!(b.admits(&diff(&r, &x0)));
    }
}
