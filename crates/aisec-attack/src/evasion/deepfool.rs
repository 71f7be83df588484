//! DeepFool, a minimal-perturbation gradient attack.

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::{Deserialize, Serialize};

use super::iterate::steps;
use crate::context::AttackContext;
use crate::util::{clip, example_shape, l2, predictions, sign, stack, Budget, Norm};

/// Settings of [`deepfool`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepFoolConfig {
    /// Overshoot factor applied to the accumulated perturbation.
    pub overshoot: f32,
    /// Maximum iterations.
    pub max_iter: usize,
    /// Number of top classes considered as candidate boundaries.
    pub candidates: usize,
}

impl Default for DeepFoolConfig {
    fn default() -> Self {
        DeepFoolConfig {
            overshoot: 0.02,
            max_iter: 50,
            candidates: 10,
        }
    }
}

/// DeepFool (Moosavi-Dezfooli et al. 2016): iteratively linearise the
/// classifier around the current point and step to the nearest linearised
/// decision boundary among the top candidate classes (gradients of each
/// logit via `Loss::Logit`), then scale the accumulated step by
/// `1 + overshoot`. L2 uses `|f| w / ||w||_2^2`; L-inf uses the dual-norm
/// step `|f| sign(w) / ||w||_1`. For a linear model the first step is the
/// exact minimal perturbation. `budget` gives the norm and the valid
/// range; its radius is not used (the attack minimises the perturbation).
pub fn deepfool(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    budget: &Budget,
    cfg: &DeepFoolConfig,
) -> Result<Tensor, ModelError> {
    let (norm, lo, hi) = (budget.norm, budget.lo, budget.hi);
    let n = x.batch();
    let d = x.row_len();
    let shape = example_shape(x);
    let z0 = model.logits(x)?;
    let classes = z0.row_len();
    let k = cfg.candidates.clamp(2, classes.max(2)).min(classes);
    // Candidate classes per example, by clean logit, original class first.
    let cands: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            let zi = z0.row(i);
            let mut idx: Vec<usize> = (0..classes).collect();
            idx.sort_by(|&a, &b| {
                zi[b]
                    .partial_cmp(&zi[a])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            idx.truncate(k);
            idx
        })
        .collect();
    let orig: Vec<usize> = cands.iter().map(|c| c[0]).collect();
    let mut r_tot = vec![vec![0.0f32; d]; n];
    let mut cur: Vec<Vec<f32>> = (0..n).map(|i| x.row(i).to_vec()).collect();
    let mut active: Vec<usize> = (0..n).collect();
    for _ in steps(ctx, cfg.max_iter) {
        if active.is_empty() {
            break;
        }
        let xa = stack(
            &active.iter().map(|&i| cur[i].clone()).collect::<Vec<_>>(),
            &shape,
        );
        // Gradients of each candidate logit, batched by rank.
        let mut grads: Vec<Tensor> = Vec::with_capacity(k);
        let mut z = None;
        for r in 0..k {
            let cls: Vec<usize> = active.iter().map(|&i| cands[i][r]).collect();
            let (_, g, zz) = model.loss_grad(&xa, &Loss::Logit { classes: cls })?;
            grads.push(g);
            z = Some(zz);
        }
        let Some(z) = z else { break };
        let pred = predictions(&z);
        let mut still = Vec::new();
        for (a, &i) in active.iter().enumerate() {
            if pred[a] != orig[i] {
                continue;
            }
            let zi = z.row(a);
            let g0 = grads[0].row(a);
            let mut best: Option<(f32, Vec<f32>, f32, f32)> = None;
            for (r, gr) in grads.iter().enumerate().skip(1) {
                let c = cands[i][r];
                let w: Vec<f32> = gr.row(a).iter().zip(g0).map(|(p, q)| p - q).collect();
                let f = (zi[c] - zi[orig[i]]).abs();
                let wn = match norm {
                    Norm::L2 => l2(&w),
                    Norm::Linf => w.iter().map(|v| v.abs()).sum(),
                };
                if wn <= 1e-12 {
                    continue;
                }
                let dist = f / wn;
                if !matches!(&best, Some(b) if b.0 <= dist) {
                    best = Some((dist, w, wn, f));
                }
            }
            let Some((_, w, wn, fl)) = best else { continue };
            let step: Vec<f32> = match norm {
                Norm::L2 => w.iter().map(|v| (fl + 1e-4) * v / (wn * wn)).collect(),
                Norm::Linf => w.iter().map(|v| (fl + 1e-4) / wn * sign(*v)).collect(),
            };
            for (t, s) in r_tot[i].iter_mut().zip(&step) {
                *t += s;
            }
            for j in 0..d {
                cur[i][j] = x.row(i)[j] + (1.0 + cfg.overshoot) * r_tot[i][j];
            }
            clip(&mut cur[i], lo, hi);
            still.push(i);
        }
        active = still;
    }
    Ok(stack(&cur, &shape))
}
