//! FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020,
//! "Minimally distorted adversarial examples with a fast adaptive boundary
//! attack"), a minimal-perturbation attack.
//!
//! At each iterate the decision boundary between the true class `y` and a
//! target `t` is linearised (`g = z_t - z_y`, gradient from two
//! `Loss::Logit` passes). Both the iterate and the original point are
//! projected onto that hyperplane intersected with the valid box; the next
//! iterate is a convex combination biased (by at most `alpha_max`) towards
//! the original point's projection, extrapolated by `eta`. Once an
//! adversarial point is found the iterate is pulled back towards the
//! original (`beta`) to shrink the perturbation. The projection onto
//! `{w . d = c} ∩ box` is exact: its minimiser has the form
//! `clip(t * s, box)` (L-inf: `s = sign(w)`; L2: `s = w`) and `t` is found by
//! bisection on the monotone function `w . clip(t s)`.

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::{Deserialize, Serialize};

use super::iterate::{steps, Outcome, Pick, Targeted};
use crate::context::AttackContext;
use crate::util::{clip, diff, dot, example_shape, predictions, sign, stack, Budget, Norm};

/// Settings of [`fab_targeted`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FabConfig {
    /// Iterations per target (AutoAttack standard: 100).
    pub steps: usize,
    /// Restarts per target (the first starts at the clean point).
    pub restarts: usize,
    /// Target classes (AutoAttack standard: 9).
    pub target_classes: usize,
    /// Largest bias towards the original point.
    pub alpha_max: f32,
    /// Extrapolation factor of the projection step.
    pub eta: f32,
    /// Backward step factor after a success.
    pub beta: f32,
}

impl Default for FabConfig {
    fn default() -> Self {
        FabConfig {
            steps: 100,
            restarts: 1,
            target_classes: 9,
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
        }
    }
}

/// Runs FAB-T and returns per example the smallest-norm misclassified point
/// found over all targets (the clean point where none was found). `budget`
/// sets the norm, the valid range and the radius of random restarts.
pub fn fab_targeted(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    budget: &Budget,
    cfg: &FabConfig,
) -> Result<Tensor, ModelError> {
    let n = x.batch();
    let shape = example_shape(x);
    let Targeted {
        ranks, schedule, ..
    } = Targeted::new(model, x, cfg.target_classes, cfg.restarts)?;
    let mut out = Outcome::new(x);
    schedule.drive::<ModelError>(ctx, &mut out, Pick::All, |ctx, out, run, _| {
        // The target is the r-th ranked class other than the label.
        let targets: Vec<usize> = (0..n)
            .map(|i| {
                let others: Vec<usize> = ranks[i].iter().copied().filter(|&c| c != y[i]).collect();
                others[(run.rank - 1).min(others.len().saturating_sub(1))]
            })
            .collect();
        let mut cur: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                if run.restart == 0 {
                    x.row(i).to_vec()
                } else {
                    let radius = 0.5 * out.norm[i].min(budget.eps);
                    let b = Budget {
                        eps: radius,
                        ..*budget
                    };
                    b.random_start(x.row(i), ctx.rng())
                }
            })
            .collect();
        for _ in steps(ctx, cfg.steps.max(1)) {
            let xt = stack(&cur, &shape);
            let (_, gt, z) = model.loss_grad(
                &xt,
                &Loss::Logit {
                    classes: targets.clone(),
                },
            )?;
            let (_, gy, _) = model.loss_grad(
                &xt,
                &Loss::Logit {
                    classes: y.to_vec(),
                },
            )?;
            for i in 0..n {
                let zi = z.row(i);
                let f = zi[targets[i]] - zi[y[i]];
                let w: Vec<f32> = gt
                    .row(i)
                    .iter()
                    .zip(gy.row(i))
                    .map(|(a, b)| a - b)
                    .collect();
                let x0 = x.row(i);
                // Hyperplane f + w.(p + d - cur) = 0, i.e. w.d = -(f + w.(p - cur)).
                let d_cur = project_hyperplane(&w, -f, &cur[i], budget.norm, budget.lo, budget.hi);
                let c0 = -(f + dot(&w, &diff(x0, &cur[i])));
                let d_orig = project_hyperplane(&w, c0, x0, budget.norm, budget.lo, budget.hi);
                let n_cur = budget.norm.of(&d_cur);
                let n_orig = budget.norm.of(&d_orig);
                let alpha = if n_cur + n_orig > 0.0 {
                    (n_cur / (n_cur + n_orig)).min(cfg.alpha_max)
                } else {
                    0.0
                };
                let row = &mut cur[i];
                for j in 0..row.len() {
                    row[j] = (1.0 - alpha) * (row[j] + cfg.eta * d_cur[j])
                        + alpha * (x0[j] + cfg.eta * d_orig[j]);
                }
                clip(row, budget.lo, budget.hi);
            }
            let pred = predictions(&model.logits(&stack(&cur, &shape))?);
            for i in 0..n {
                if pred[i] != y[i] {
                    let nrm = budget.norm.of(&diff(&cur[i], x.row(i)));
                    out.smaller(i, &cur[i], nrm);
                    let x0 = x.row(i);
                    for (v, &o) in cur[i].iter_mut().zip(x0) {
                        *v = (1.0 - cfg.beta) * o + cfg.beta * *v;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(out.into_tensor(&shape))
}

/// Minimal-norm `d` with `w . d = c` and `lo <= p + d <= hi` (or the
/// feasible point closest to it when the box does not reach the plane).
pub fn project_hyperplane(w: &[f32], c: f32, p: &[f32], norm: Norm, lo: f32, hi: f32) -> Vec<f32> {
    let s_c = sign(c);
    if s_c == 0.0 {
        return vec![0.0; w.len()];
    }
    // Direction per coordinate, oriented so that w.d grows towards c.
    let dir: Vec<f32> = match norm {
        Norm::Linf => w.iter().map(|v| sign(*v) * s_c).collect(),
        Norm::L2 => w.iter().map(|v| v * s_c).collect(),
    };
    let at = |t: f32| -> Vec<f32> {
        dir.iter()
            .zip(p)
            .map(|(&s, &pv)| (t * s).clamp(lo - pv, hi - pv))
            .collect()
    };
    // Largest useful t: every coordinate at its bound.
    let mut t_hi = 0.0f32;
    for (&s, &pv) in dir.iter().zip(p) {
        if s != 0.0 {
            let reach = ((hi - pv).abs().max((pv - lo).abs())) / s.abs();
            t_hi = t_hi.max(reach);
        }
    }
    let target = c.abs();
    if (dot(w, &at(t_hi)) * s_c) < target {
        return at(t_hi);
    }
    let mut t_lo = 0.0f32;
    for _ in 0..60 {
        let mid = 0.5 * (t_lo + t_hi);
        if dot(w, &at(mid)) * s_c >= target {
            t_hi = mid;
        } else {
            t_lo = mid;
        }
    }
    at(t_hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_matches_closed_form_without_box() {
        let w = [3.0f32, -4.0];
        let p = [0.0f32, 0.0];
        let d = project_hyperplane(&w, 5.0, &p, Norm::L2, -100.0, 100.0);
        // Closed form: c w / ||w||^2 = (0.6, -0.8).
        assert!(
            (d[0] - 0.6).abs() < 1e-4 && (d[1] + 0.8).abs() < 1e-4,
            "{d:?}"
        );
        let d = project_hyperplane(&w, 7.0, &p, Norm::Linf, -100.0, 100.0);
        // Closed form: c sign(w) / ||w||_1 = (1, -1).
        assert!(
            (d[0] - 1.0).abs() < 1e-4 && (d[1] + 1.0).abs() < 1e-4,
            "{d:?}"
        );
    }

    #[test]
    fn projection_respects_box() {
        let w = [1.0f32, 1.0];
        let p = [0.9f32, 0.0];
        let d = project_hyperplane(&w, 1.0, &p, Norm::Linf, 0.0, 1.0);
        assert!(p[0] + d[0] <= 1.0 + 1e-6);
        assert!((d[0] + d[1] - 1.0).abs() < 1e-4, "{d:?}");
    }
}
