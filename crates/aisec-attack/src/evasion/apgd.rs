//! Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial
//! robustness with an ensemble of diverse parameter-free attacks"):
//! APGD-CE, APGD-DLR and the targeted APGD-T.
//!
//! APGD is PGD with momentum (`alpha = 0.75`) whose step size starts at
//! `2 eps` and is halved at checkpoints when progress stalls: the first
//! checkpoint after `0.22 N` iterations, then intervals shrinking by
//! `0.03 N` down to `0.06 N` (the paper's `p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`).
//! At a checkpoint the step is halved and the iterate restarts from the
//! best point when fewer than `rho = 0.75` of the steps since the last
//! checkpoint increased the loss, or when the step was not halved last
//! time and the best loss has not improved since.

use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::{Deserialize, Serialize};

use super::iterate::{steps as iterate_steps, Outcome, Pick, Schedule, Targeted};
use crate::context::AttackContext;
use crate::util::{ascent_direction, example_shape, gather, predictions, stack, Budget};

/// Settings of APGD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApgdConfig {
    /// Iterations per run (AutoAttack standard: 100).
    pub steps: usize,
    /// Random restarts (APGD-CE standard: 1).
    pub restarts: usize,
    /// Fraction of loss-increasing steps below which a checkpoint halves the step.
    pub rho: f32,
    /// Target classes for APGD-T (AutoAttack standard: 9).
    pub target_classes: usize,
}

impl Default for ApgdConfig {
    fn default() -> Self {
        ApgdConfig {
            steps: 100,
            restarts: 1,
            rho: 0.75,
            target_classes: 9,
        }
    }
}

/// The loss untargeted APGD ascends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApgdLoss {
    /// Cross-entropy (APGD-CE).
    Ce,
    /// Difference of logits ratio (APGD-DLR); needs at least 3 classes, else cross-entropy is used.
    Dlr,
}

/// Untargeted APGD. Returns per example the first misclassified iterate
/// found, else the highest-loss iterate.
pub fn apgd(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    loss: ApgdLoss,
    budget: &Budget,
    cfg: &ApgdConfig,
) -> Result<Tensor, ModelError> {
    let shape = example_shape(x);
    let classes = model.num_classes();
    let mut out = Outcome::new(x);
    let schedule = Schedule {
        targets: None,
        restarts: cfg.restarts,
    };
    schedule.drive::<ModelError>(ctx, &mut out, Pick::Unbroken, |ctx, out, _, todo| {
        let yy: Vec<usize> = todo.iter().map(|&i| y[i]).collect();
        let l = if loss == ApgdLoss::Dlr && classes >= 3 {
            Loss::Dlr { labels: yy.clone() }
        } else {
            Loss::CrossEntropy { labels: yy.clone() }
        };
        let obj = Objective {
            loss: &l,
            sign: 1.0,
        };
        let run = apgd_core(ctx, model, &gather(x, todo), &yy, obj, budget, cfg)?;
        for (k, &i) in todo.iter().enumerate() {
            out.adv[i] = run.adv[k].clone();
            out.found[i] = run.found[k];
        }
        Ok(())
    })?;
    Ok(out.into_tensor(&shape))
}

/// Targeted APGD-T: for each of the `target_classes` classes ranked 2nd,
/// 3rd, ... by the clean logits, run APGD on the targeted DLR loss of
/// the still-robust examples. Success is misclassification, as in
/// AutoAttack. With fewer than 4 classes (where targeted DLR is not
/// defined) the targeted cross-entropy is descended instead.
pub fn apgd_targeted(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    budget: &Budget,
    cfg: &ApgdConfig,
) -> Result<Tensor, ModelError> {
    let shape = example_shape(x);
    let Targeted {
        ranks,
        classes,
        schedule,
    } = Targeted::new(model, x, cfg.target_classes, cfg.restarts)?;
    let mut out = Outcome::new(x);
    schedule.drive::<ModelError>(ctx, &mut out, Pick::Unbroken, |ctx, out, run, todo| {
        let yy: Vec<usize> = todo.iter().map(|&i| y[i]).collect();
        let tt: Vec<usize> = todo.iter().map(|&i| ranks[i][run.rank]).collect();
        let (l, sign) = if classes >= 4 {
            (
                Loss::DlrTargeted {
                    labels: yy.clone(),
                    targets: tt,
                },
                1.0,
            )
        } else {
            (Loss::CrossEntropy { labels: tt }, -1.0)
        };
        let obj = Objective { loss: &l, sign };
        let res = apgd_core(ctx, model, &gather(x, todo), &yy, obj, budget, cfg)?;
        for (k, &i) in todo.iter().enumerate() {
            // The last target's best iterate is returned where nothing succeeded.
            if res.found[k] || run.last_rank {
                out.adv[i] = res.adv[k].clone();
            }
            out.found[i] = res.found[k];
        }
        Ok(())
    })?;
    Ok(out.into_tensor(&shape))
}

struct ApgdRun {
    adv: Vec<Vec<f32>>,
    found: Vec<bool>,
}

/// What one APGD run maximises: `sign * loss`.
struct Objective<'a> {
    loss: &'a Loss,
    sign: f32,
}

/// One APGD run maximising the objective; success means prediction != `y`.
fn apgd_core(
    ctx: &mut AttackContext,
    model: &dyn Differentiable,
    x0: &Tensor,
    y: &[usize],
    objective: Objective,
    budget: &Budget,
    cfg: &ApgdConfig,
) -> Result<ApgdRun, ModelError> {
    let Objective { loss, sign } = objective;
    let n = x0.batch();
    let shape = example_shape(x0);
    let steps = cfg.steps.max(1);
    let first_check = ((0.22 * steps as f32) as usize).max(1);
    let min_check = ((0.06 * steps as f32) as usize).max(1);
    let decr = ((0.03 * steps as f32) as usize).max(1);

    let mut cur: Vec<Vec<f32>> = (0..n)
        .map(|i| budget.random_start(x0.row(i), ctx.rng()))
        .collect();
    let (l, g, z) = model.loss_grad(&stack(&cur, &shape), loss)?;
    let mut grad: Vec<Vec<f32>> = (0..n).map(|i| g.row(i).to_vec()).collect();
    let mut loss_now: Vec<f32> = l.iter().map(|v| sign * v).collect();
    let mut found = vec![false; n];
    let mut adv = cur.clone();
    let pred = predictions(&z);
    for i in 0..n {
        if pred[i] != y[i] {
            found[i] = true;
        }
    }
    let mut best_x = cur.clone();
    let mut best_grad = grad.clone();
    let mut best_loss = loss_now.clone();
    let mut eta = vec![2.0 * budget.eps; n];
    let mut prev = cur.clone();
    let mut increases = vec![0usize; n];
    let mut check_len = first_check;
    let mut since_check = 0usize;
    let mut best_at_check = best_loss.clone();
    let mut reduced_last = vec![true; n];

    for it in iterate_steps(ctx, steps) {
        let a = if it == 0 { 1.0 } else { 0.75 };
        let mut next = Vec::with_capacity(n);
        for i in 0..n {
            let d = ascent_direction(&grad[i], budget.norm);
            let mut z1: Vec<f32> = cur[i]
                .iter()
                .zip(&d)
                .map(|(v, s)| v + sign * eta[i] * s)
                .collect();
            budget.project(&mut z1, x0.row(i));
            let mut x1: Vec<f32> = (0..z1.len())
                .map(|j| cur[i][j] + a * (z1[j] - cur[i][j]) + (1.0 - a) * (cur[i][j] - prev[i][j]))
                .collect();
            budget.project(&mut x1, x0.row(i));
            next.push(x1);
        }
        prev = std::mem::replace(&mut cur, next);
        let (l, g, z) = model.loss_grad(&stack(&cur, &shape), loss)?;
        let pred = predictions(&z);
        for i in 0..n {
            grad[i].copy_from_slice(g.row(i));
            if !found[i] && pred[i] != y[i] {
                found[i] = true;
                adv[i] = cur[i].clone();
            }
            let li = sign * l[i];
            if li > loss_now[i] {
                increases[i] += 1;
            }
            loss_now[i] = li;
            if li > best_loss[i] {
                best_loss[i] = li;
                best_x[i] = cur[i].clone();
                best_grad[i] = grad[i].clone();
            }
        }
        since_check += 1;
        if since_check == check_len {
            for i in 0..n {
                let oscillating = (increases[i] as f32) < cfg.rho * check_len as f32;
                let stalled = !reduced_last[i] && best_at_check[i] >= best_loss[i];
                let reduce = oscillating || stalled;
                reduced_last[i] = reduce;
                best_at_check[i] = best_loss[i];
                if reduce {
                    eta[i] /= 2.0;
                    cur[i] = best_x[i].clone();
                    grad[i] = best_grad[i].clone();
                }
                increases[i] = 0;
            }
            since_check = 0;
            check_len = check_len.saturating_sub(decr).max(min_check);
        }
    }
    for i in 0..n {
        if !found[i] {
            adv[i] = best_x[i].clone();
        }
    }
    Ok(ApgdRun { adv, found })
}
