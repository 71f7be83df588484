//! Classic gradient attacks: FGSM, BIM/PGD, Carlini-Wagner L2 and DeepFool.
//!
//! All functions take a batch `x` with true labels `y` and, where the
//! attack can be targeted, optional target classes. They return a batch of
//! the same shape holding, per example, the adversarial example found (or
//! the last iterate when none was found). Every returned example lies in
//! the valid input range; budgeted attacks also keep it inside the ball.

use std::sync::atomic::AtomicBool;

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::util::{
    ascent_direction, best_other, cancelled, clip, diff, example_shape, gather, goal_met, l2,
    predictions, sign, stack, Budget, Norm,
};

/// Fast Gradient Sign Method (Goodfellow et al. 2015, "Explaining and
/// Harnessing Adversarial Examples"): one step of size `eps` along the sign
/// of the cross-entropy gradient (the normalised gradient for L2). Targeted
/// attacks step down the cross-entropy of the target class.
pub fn fgsm(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
) -> Result<Tensor, ModelError> {
    let (labels, dir) = match targets {
        Some(t) => (t.to_vec(), -1.0),
        None => (y.to_vec(), 1.0),
    };
    let (_, g, _) = model.loss_grad(x, &Loss::CrossEntropy { labels })?;
    let mut out = x.clone();
    for i in 0..x.batch() {
        let step = ascent_direction(g.row(i), budget.norm);
        let x0 = x.row(i);
        let row = out.row_mut(i);
        for (v, s) in row.iter_mut().zip(&step) {
            *v += dir * budget.eps * s;
        }
        budget.project(row, x0);
    }
    Ok(out)
}

/// Which loss PGD ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgdLoss {
    /// Softmax cross-entropy.
    Ce,
    /// Difference of logits ratio (Croce & Hein 2020).
    Dlr,
}

/// Settings of [`pgd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PgdConfig {
    /// Iterations per restart.
    pub steps: usize,
    /// Step size; `None` uses Madry et al.'s `2.5 * eps / steps`.
    pub step_size: Option<f32>,
    /// Start from a uniform random point in the ball (PGD) or from the
    /// clean input (BIM, Kurakin et al. 2017).
    pub random_start: bool,
    /// Number of independent starts; later starts only attack the
    /// examples earlier ones did not break.
    pub restarts: usize,
    /// Loss to ascend (untargeted) or descend (targeted, cross-entropy of the target).
    pub loss: PgdLoss,
}

impl Default for PgdConfig {
    fn default() -> Self {
        PgdConfig {
            steps: 40,
            step_size: None,
            random_start: true,
            restarts: 1,
            loss: PgdLoss::Ce,
        }
    }
}

/// Projected gradient descent (Madry et al. 2018, "Towards Deep Learning
/// Models Resistant to Adversarial Attacks"), L-inf or L2, with random
/// start, restarts and targeted mode. With `random_start = false` and one
/// restart it is the Basic Iterative Method.
///
/// The step size defaults to `2.5 * eps / steps`, the rule Madry et al.
/// use so that the iterate can cross the ball and return within the budget.
#[allow(clippy::too_many_arguments)]
pub fn pgd(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &PgdConfig,
    rng: &mut StdRng,
    cancel: &AtomicBool,
) -> Result<Tensor, ModelError> {
    let n = x.batch();
    let shape = example_shape(x);
    let alpha = cfg
        .step_size
        .unwrap_or(2.5 * budget.eps / cfg.steps.max(1) as f32);
    let mut best: Vec<Vec<f32>> = (0..n).map(|i| x.row(i).to_vec()).collect();
    let mut found = vec![false; n];
    for restart in 0..cfg.restarts.max(1) {
        let todo: Vec<usize> = (0..n).filter(|&i| !found[i]).collect();
        if todo.is_empty() || cancelled(cancel) {
            break;
        }
        let x0 = gather(x, &todo);
        let yy: Vec<usize> = todo.iter().map(|&i| y[i]).collect();
        let tt: Option<Vec<usize>> = targets.map(|t| todo.iter().map(|&i| t[i]).collect());
        let mut cur: Vec<Vec<f32>> = (0..todo.len())
            .map(|k| {
                if cfg.random_start {
                    budget.random_start(x0.row(k), rng)
                } else {
                    x0.row(k).to_vec()
                }
            })
            .collect();
        let (loss, dir) = match (&tt, cfg.loss) {
            (Some(t), _) => (Loss::CrossEntropy { labels: t.clone() }, -1.0f32),
            (None, PgdLoss::Ce) => (Loss::CrossEntropy { labels: yy.clone() }, 1.0),
            (None, PgdLoss::Dlr) => (Loss::Dlr { labels: yy.clone() }, 1.0),
        };
        for step in 0..=cfg.steps {
            let xt = stack(&cur, &shape);
            let last = step == cfg.steps || cancelled(cancel);
            let (g, z) = if last {
                (None, model.logits(&xt)?)
            } else {
                let (_, g, z) = model.loss_grad(&xt, &loss)?;
                (Some(g), z)
            };
            let pred = predictions(&z);
            for (k, &i) in todo.iter().enumerate() {
                if !found[i] && goal_met(pred[k], yy[k], tt.as_ref().map(|t| t[k])) {
                    found[i] = true;
                    best[i] = cur[k].clone();
                }
            }
            let Some(g) = g else {
                break;
            };
            for (k, row) in cur.iter_mut().enumerate() {
                let d = ascent_direction(g.row(k), budget.norm);
                for (v, s) in row.iter_mut().zip(&d) {
                    *v += dir * alpha * s;
                }
                budget.project(row, x0.row(k));
            }
        }
        // Unbroken examples keep the last iterate of the last restart.
        for (k, &i) in todo.iter().enumerate() {
            if !found[i] && restart + 1 >= cfg.restarts.max(1) {
                best[i] = cur[k].clone();
            }
        }
    }
    Ok(stack(&best, &shape))
}

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
/// perturbation is zero and it counts as a failure).
pub fn carlini_wagner_l2(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    lo: f32,
    hi: f32,
    cfg: &CwConfig,
    cancel: &AtomicBool,
) -> Result<Tensor, ModelError> {
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
            if cancelled(cancel) {
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
/// exact minimal perturbation.
pub fn deepfool(
    model: &dyn Differentiable,
    x: &Tensor,
    norm: Norm,
    lo: f32,
    hi: f32,
    cfg: &DeepFoolConfig,
    cancel: &AtomicBool,
) -> Result<Tensor, ModelError> {
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
    for _ in 0..cfg.max_iter {
        if cancelled(cancel) || active.is_empty() {
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
