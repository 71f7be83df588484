//! Carlini & Wagner's L2 attack, a minimal-perturbation gradient attack.

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::{Deserialize, Serialize};

use crate::context::AttackContext;
use crate::util::{best_other, diff, l2, predictions, Budget};

/// Settings of [`carlini_wagner_l2`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CwConfig {
    /// Initial trade-off constant `c`.
    pub initial_const: f32,
    /// Binary-search steps over `c`.
    pub binary_search_steps: usize,
    /// Adam iterations per value of `c`.
    pub steps: usize,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Confidence margin `kappa`.
    pub kappa: f32,
}

impl Default for CwConfig {
    fn default() -> Self {
        CwConfig {
            initial_const: 1e-2,
            binary_search_steps: 9,
            steps: 100,
            learning_rate: 1e-2,
            kappa: 0.0,
        }
    }
}

/// Carlini & Wagner's L2 attack (2017, "Towards Evaluating the Robustness of
/// Neural Networks"): optimise `w` with `x = lo + (hi-lo)(tanh w + 1)/2`,
/// minimising `||x - x0||^2 + c * f(x)` with Adam, where `f` is the margin
/// `max(z_y - max_{i!=y} z_i, -kappa)` (targeted: `max(max_{i!=t} z_i - z_t, -kappa)`),
/// and binary-search `c` per example. Returns the smallest-L2 successful
/// example found, or the clean input where none succeeded (so its
/// perturbation is zero and it counts as a failure). Only `budget`'s valid
/// range `[lo, hi]` is used: the attack minimises the L2 norm, whatever the
/// budget's norm and radius.
pub fn carlini_wagner_l2(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &CwConfig,
) -> Result<Tensor, ModelError> {
    let (lo, hi) = (budget.lo, budget.hi);
    let n = x.batch();
    let d = x.row_len();
    let span = (hi - lo).max(1e-12);
    let to_w = |v: f32| {
        let t = ((v - lo) / span * 2.0 - 1.0).clamp(-1.0, 1.0) * 0.999_999;
        t.atanh()
    };
    let from_w = |w: f32| lo + span * (w.tanh() + 1.0) / 2.0;
    let w0: Vec<f32> = x.data.iter().map(|&v| to_w(v)).collect();
    let mut c = vec![cfg.initial_const; n];
    let mut c_lo = vec![0.0f32; n];
    let mut c_hi = vec![1e10f32; n];
    let mut best_l2 = vec![f32::INFINITY; n];
    let mut best = x.clone();
    'outer: for _ in 0..cfg.binary_search_steps.max(1) {
        let mut w = w0.clone();
        let mut m = vec![0.0f32; n * d];
        let mut v = vec![0.0f32; n * d];
        let mut success = vec![false; n];
        for t in 1..=cfg.steps.max(1) {
            if ctx.is_cancelled() {
                break 'outer;
            }
            let xs = Tensor {
                shape: x.shape.clone(),
                data: w.iter().map(|&wi| from_w(wi)).collect(),
            };
            let (grad_f, z) = margin_grad(model, &xs, y, targets, cfg.kappa)?;
            let pred = predictions(&z);
            for i in 0..n {
                let zi = z.row(i);
                let ok = match targets {
                    Some(tg) => {
                        pred[i] == tg[i] && best_other(zi, tg[i]).1 - zi[tg[i]] <= -cfg.kappa
                    }
                    None => pred[i] != y[i] && zi[y[i]] - best_other(zi, y[i]).1 <= -cfg.kappa,
                };
                if ok {
                    success[i] = true;
                    let dist = l2(&diff(xs.row(i), x.row(i)));
                    if dist < best_l2[i] {
                        best_l2[i] = dist;
                        best.row_mut(i).copy_from_slice(xs.row(i));
                    }
                }
            }
            // Adam step on w.
            let (b1, b2) = (0.9f32, 0.999f32);
            for i in 0..n {
                for j in 0..d {
                    let k = i * d + j;
                    let xv = xs.data[k];
                    let dxdw = span / 2.0 * (1.0 - w[k].tanh().powi(2));
                    let g = (2.0 * (xv - x.data[k]) + c[i] * grad_f.data[k]) * dxdw;
                    m[k] = b1 * m[k] + (1.0 - b1) * g;
                    v[k] = b2 * v[k] + (1.0 - b2) * g * g;
                    let mh = m[k] / (1.0 - b1.powi(t as i32));
                    let vh = v[k] / (1.0 - b2.powi(t as i32));
                    w[k] -= cfg.learning_rate * mh / (vh.sqrt() + 1e-8);
                }
            }
        }
        for i in 0..n {
            if success[i] {
                c_hi[i] = c_hi[i].min(c[i]);
                c[i] = (c_lo[i] + c_hi[i]) / 2.0;
            } else {
                c_lo[i] = c_lo[i].max(c[i]);
                c[i] = if c_hi[i] < 1e9 {
                    (c_lo[i] + c_hi[i]) / 2.0
                } else {
                    c[i] * 10.0
                };
            }
        }
    }
    Ok(best)
}

/// Gradient of the Carlini-Wagner margin per example, and the logits.
fn margin_grad(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    kappa: f32,
) -> Result<(Tensor, Tensor), ModelError> {
    let n = x.batch();
    match targets {
        None => {
            let (_, mut g, z) = model.loss_grad(
                x,
                &Loss::CwMargin {
                    labels: y.to_vec(),
                    kappa,
                },
            )?;
            for i in 0..n {
                let zi = z.row(i);
                if zi[y[i]] - best_other(zi, y[i]).1 <= -kappa {
                    g.row_mut(i).fill(0.0);
                }
            }
            Ok((g, z))
        }
        Some(t) => {
            let (_, gt, z) = model.loss_grad(
                x,
                &Loss::Logit {
                    classes: t.to_vec(),
                },
            )?;
            let others: Vec<usize> = (0..n).map(|i| best_other(z.row(i), t[i]).0).collect();
            let (_, go, _) = model.loss_grad(x, &Loss::Logit { classes: others })?;
            let mut g = go;
            for i in 0..n {
                let zi = z.row(i);
                let clamped = best_other(zi, t[i]).1 - zi[t[i]] <= -kappa;
                let row = g.row_mut(i);
                for (a, b) in row.iter_mut().zip(gt.row(i)) {
                    *a = if clamped { 0.0 } else { *a - b };
                }
            }
            Ok((g, z))
        }
    }
}
