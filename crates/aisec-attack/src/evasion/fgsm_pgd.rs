//! FGSM and BIM/PGD, the budgeted one-step and iterative gradient attacks.
//!
//! Both take a batch `x` with true labels `y` and optional target classes,
//! and return a batch of the same shape holding, per example, the
//! adversarial example found (or the last iterate when none was found),
//! inside the ball and the valid input range.

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::{Deserialize, Serialize};

use super::iterate::{Outcome, Pick, Schedule};
use crate::context::AttackContext;
use crate::util::{ascent_direction, example_shape, gather, goal_met, predictions, stack, Budget};

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
pub fn pgd(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &PgdConfig,
) -> Result<Tensor, ModelError> {
    let shape = example_shape(x);
    let alpha = cfg
        .step_size
        .unwrap_or(2.5 * budget.eps / cfg.steps.max(1) as f32);
    let mut out = Outcome::new(x);
    let schedule = Schedule {
        targets: None,
        restarts: cfg.restarts,
    };
    schedule.drive::<ModelError>(ctx, &mut out, Pick::Unbroken, |ctx, out, run, todo| {
        let x0 = gather(x, todo);
        let yy: Vec<usize> = todo.iter().map(|&i| y[i]).collect();
        let tt: Option<Vec<usize>> = targets.map(|t| todo.iter().map(|&i| t[i]).collect());
        let mut cur: Vec<Vec<f32>> = (0..todo.len())
            .map(|k| {
                if cfg.random_start {
                    budget.random_start(x0.row(k), ctx.rng())
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
            // The last pass (or the first after a cancel) only reads the predictions.
            let last = step == cfg.steps || ctx.is_cancelled();
            let (g, z) = if last {
                (None, model.logits(&xt)?)
            } else {
                let (_, g, z) = model.loss_grad(&xt, &loss)?;
                (Some(g), z)
            };
            let pred = predictions(&z);
            for (k, &i) in todo.iter().enumerate() {
                if goal_met(pred[k], yy[k], tt.as_ref().map(|t| t[k])) {
                    out.first(i, &cur[k]);
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
        if run.last {
            for (k, &i) in todo.iter().enumerate() {
                if !out.found[i] {
                    out.adv[i] = cur[k].clone();
                }
            }
        }
        Ok(())
    })?;
    Ok(out.into_tensor(&shape))
}
