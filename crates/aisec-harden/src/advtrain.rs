//! Adversarial training of an aisec model (spec models and existing ONNX
//! models alike: both are an [`OnnxModel`] whose weights the
//! [`Trainer`] updates), and the AutoAttack evaluation that ends a run.
//!
//! Methods:
//!
//! - **PGD-AT** (Madry et al., "Towards Deep Learning Models Resistant to
//!   Adversarial Attacks", ICLR 2018): each step minimises the
//!   cross-entropy at the last iterate of a PGD ascent from a uniform
//!   random start in the ball. A clean/adversarial mix replaces only a
//!   fraction of each batch by its adversarial examples (the `ratio` of
//!   ART's `AdversarialTrainer`; 1 is Madry's setting).
//! - **TRADES** (Zhang et al., "Theoretically Principled Trade-off between
//!   Robustness and Accuracy", ICML 2019): minimises
//!   `CE(f(x), y) + beta * KL(p(x) || p(x'))`, where `x'` maximises the KL
//!   term by PGD from `x + 0.001 N(0, 1)`, as the authors' code does.
//!   Gradients flow through both the clean and the adversarial branch.
//!
//! Both work under L-inf or L2 budgets, with the step count and step size
//! of the inner ascent, and an eps warm-up: the radius grows linearly over
//! the first `eps_warmup_epochs` epochs (epoch `e` of `K` trains at
//! `eps * e / K`), a common way to keep early training from collapsing.
//!
//! The inner ascent uses aisec-attack's threat model ([`Budget`]: uniform
//! random start, projection onto the ball and the valid range) and its
//! ascent direction (sign for L-inf, unit gradient for L2). It is not
//! [`aisec_attack::evasion::pgd`] itself: that evaluation attack keeps the
//! first iterate that crosses the decision boundary, while training needs
//! the last iterate of the ascent (Madry et al.; ART's
//! `AdversarialTrainerMadryPGD` does the same) and TRADES ascends the KL
//! term instead of the cross-entropy. The per-epoch robust accuracy and the
//! final evaluation do use aisec-attack's PGD and AutoAttack.
//!
//! TRADES's weight gradient is taken in one backward pass over the clean
//! and adversarial rows stacked, through [`Loss::SoftCrossEntropy`]: with
//! targets `q` summing to `m` per row its logit gradient is `m p - q`, so
//! any logit gradient `g` with zero row sum is reached exactly with
//! `q = m p - g` and `m` just large enough to keep `q` non-negative
//! ([`trades_targets`]; checked against finite differences in the tests).
//!
//! Batch norm, where a model has it, stays in inference form (running
//! statistics frozen, scale and shift trained), as in fine-tuning.
//!
//! Dropout (a spec model's `dropout` layers): the inner attack runs on the
//! inference model, where dropout is the identity, so it ascends a fixed,
//! deterministic function; the weight update runs on a twin with dropout
//! active ([`OnnxModel::spec_dropout_twin`], a fresh mask seed per step
//! drawn from `(seed, epoch, batch)`), whose weights are copied back after
//! every step. That is the attack-in-eval-mode, update-in-train-mode split
//! of ART's `AdversarialTrainerMadryPGD` (its PyTorch estimator computes
//! loss gradients with `training_mode=False` and fits in training mode)
//! and of the TRADES authors' code (`model.eval()` around the attack,
//! `model.train()` for the loss). For TRADES the clean and adversarial
//! logits of the loss are those of the dropout twin (one masked forward of
//! the stacked rows, the same masks as the backward pass). ONNX models are
//! trained as they are: an ONNX `Dropout` node is the identity at inference.
//!
//! Runs are seeded (shuffle, random starts and the mix are drawn from
//! `(seed, epoch, batch)`), so a run resumed from a checkpoint
//! ([`aisec_model::checkpoint::Checkpoint`], the format `aisec train`
//! writes) takes the steps the uninterrupted run would have taken.

use std::time::Instant;

use aisec_attack::evasion::{pgd, run_evasion, AttackKind, EvasionConfig, PgdConfig};
use aisec_attack::util::{ascent_direction, gaussian};
use aisec_attack::{AttackContext, Budget, Norm};
use aisec_core::Cancel;
use aisec_model::checkpoint::Checkpoint;
use aisec_model::classifier::argmax;
use aisec_model::data::Dataset;
use aisec_model::fit::{
    diverged, evaluate, gather, shuffled_order, sub_seed, sync, CheckpointPolicy, EpochStats,
    History, StepPlan, TrainConfig,
};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Trainer;
use aisec_model::{Classifier, Differentiable, Loss, OnnxModel, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{HardenError, Result};
use crate::order::EpochOrders;

/// The adversarial training objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// PGD adversarial training (Madry et al. 2018).
    PgdAt,
    /// TRADES (Zhang et al. 2019) with trade-off `beta` (6 in the paper).
    Trades {
        /// Weight of the KL robustness term.
        beta: f32,
    },
}

impl Method {
    /// Short name (`pgd-at`, `trades`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::PgdAt => "pgd-at",
            Method::Trades { .. } => "trades",
        }
    }
}

/// Everything adversarial about a run (the optimiser, epochs, batch size,
/// schedule and seed are in the [`TrainConfig`] beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvConfig {
    /// PGD-AT or TRADES.
    pub method: Method,
    /// Threat-model norm of the inner ascent.
    pub norm: Norm,
    /// Training radius (reached after the warm-up).
    pub eps: f32,
    /// Smallest valid input value.
    pub lo: f32,
    /// Largest valid input value.
    pub hi: f32,
    /// Ascent steps per batch.
    pub steps: usize,
    /// Ascent step size; `None`: `2.5 * eps / steps` (Madry et al.).
    pub step_size: Option<f32>,
    /// Epochs over which eps grows linearly to its full value (0: none).
    #[serde(default)]
    pub eps_warmup_epochs: usize,
    /// Fraction of each batch replaced by adversarial examples (PGD-AT;
    /// 1: all). TRADES always uses the whole batch.
    #[serde(default = "one")]
    pub adv_fraction: f32,
    /// PGD steps of the per-epoch robust accuracy on the validation set
    /// (0: clean accuracy only).
    #[serde(default)]
    pub eval_steps: usize,
    /// Validation examples attacked per epoch (the first ones).
    #[serde(default)]
    pub eval_examples: usize,
}

fn one() -> f32 {
    1.0
}

impl AdvConfig {
    /// A PGD-AT configuration with Madry's defaults for `eps`.
    pub fn pgd_at(norm: Norm, eps: f32, steps: usize) -> AdvConfig {
        AdvConfig {
            method: Method::PgdAt,
            norm,
            eps,
            lo: 0.0,
            hi: 1.0,
            steps,
            step_size: None,
            eps_warmup_epochs: 0,
            adv_fraction: 1.0,
            eval_steps: 0,
            eval_examples: 0,
        }
    }

    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(HardenError::InvalidParameter(m));
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!("eps {} must be a positive number", self.eps));
        }
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return bad("the valid range needs lo < hi".into());
        }
        if self.steps == 0 || self.steps > 10_000 {
            return bad(format!("steps {} must be in 1..=10000", self.steps));
        }
        if let Some(a) = self.step_size {
            if !(a.is_finite() && a > 0.0) {
                return bad(format!("step size {a} must be a positive number"));
            }
        }
        if !(self.adv_fraction > 0.0 && self.adv_fraction <= 1.0) {
            return bad(format!(
                "adversarial fraction {} must be in (0, 1]",
                self.adv_fraction
            ));
        }
        if let Method::Trades { beta } = self.method {
            if !(beta.is_finite() && beta >= 0.0) {
                return bad(format!("TRADES beta {beta} must be a non-negative number"));
            }
            if self.adv_fraction < 1.0 {
                return bad(
                    "TRADES has its own clean term: leave the adversarial fraction at 1".into(),
                );
            }
        }
        Ok(())
    }

    /// The radius of epoch `epoch` (0-based) under the warm-up.
    pub fn eps_at(&self, epoch: usize) -> f32 {
        if self.eps_warmup_epochs == 0 || epoch >= self.eps_warmup_epochs {
            self.eps
        } else {
            self.eps * (epoch + 1) as f32 / self.eps_warmup_epochs as f32
        }
    }

    fn budget(&self, eps: f32) -> Budget {
        Budget {
            norm: self.norm,
            eps,
            lo: self.lo,
            hi: self.hi,
        }
    }

    /// The inner maximisation at radius `eps`: the budget, `steps` and the
    /// step size.
    fn ascent(&self, eps: f32) -> Ascent {
        Ascent {
            budget: self.budget(eps),
            steps: self.steps,
            alpha: match self.step_size {
                // A given step scales with the warm-up like the radius does.
                Some(a) => a * eps / self.eps,
                None => 2.5 * eps / self.steps as f32,
            },
        }
    }
}

/// The inner maximisation of adversarial training: `steps` steps of size
/// `alpha` of a loss's ascent direction, each projected back into `budget`
/// around the clean input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ascent {
    /// The ball and the valid input range.
    pub budget: Budget,
    /// Ascent steps.
    pub steps: usize,
    /// Step size.
    pub alpha: f32,
}

/// One epoch of adversarial training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Radius trained at.
    pub eps: f32,
    /// Mean training objective over the epoch's steps.
    pub loss: f32,
    /// Fraction of the adversarial training examples the model got right
    /// (at the weights of their step).
    pub train_robust_accuracy: f32,
    /// Clean validation accuracy after the epoch.
    pub val_accuracy: Option<f32>,
    /// Robust validation accuracy under aisec-attack's PGD (`eval_steps`
    /// steps at the full eps) on the first `eval_examples` examples.
    pub val_robust_accuracy: Option<f32>,
    /// Wall time of the epoch's training steps, seconds.
    pub seconds: f64,
}

/// What [`adv_train`] returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdvHistory {
    /// Per-epoch numbers, including those before a resume.
    pub epochs: Vec<AdvEpoch>,
    /// Optimiser steps taken in total.
    pub steps: u64,
    /// True when the run stopped early on the cancel flag.
    pub cancelled: bool,
    /// The last checkpoint written, if any.
    pub checkpoint: Option<std::path::PathBuf>,
}

/// Progress of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum AdvEvent<'a> {
    /// A step finished (1-based epoch and batch, batches per epoch, loss).
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// This step's objective.
        loss: f32,
    },
    /// An epoch finished (after validation).
    Epoch(&'a AdvEpoch),
}

/// Optional parts of an [`adv_train`] run.
#[derive(Default)]
pub struct AdvOptions<'a> {
    /// Validation set (clean and PGD accuracy after every epoch).
    pub val: Option<&'a Dataset>,
    /// The architecture of a spec model (stored in checkpoints).
    pub spec: Option<&'a ArchSpec>,
    /// Checkpoint writing: [`fit`](aisec_model::fit::fit)'s policy (the
    /// [`Checkpoint`] format of `aisec train`; the adversarial settings and
    /// history ride in its run options, the policy's own options under
    /// `"run"`).
    pub checkpoint: Option<CheckpointPolicy>,
    /// Continue from this checkpoint (written by [`adv_train`]).
    pub resume: Option<Checkpoint>,
    /// Stop flag, checked after every step.
    pub cancel: Option<&'a Cancel>,
    /// Per-epoch example orders to train in instead of the seeded shuffle
    /// (e.g. another framework's); must cover every epoch and example. A
    /// run resumed from a checkpoint written with orders needs the same
    /// orders again (their [`EpochOrders::fingerprint`] is stored).
    pub order: Option<&'a EpochOrders>,
}

/// The adversarial part of a checkpoint's run options.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    adv: AdvConfig,
    epochs: Vec<AdvEpoch>,
    #[serde(default)]
    partial: (f64, f64, usize),
    #[serde(default)]
    run: Option<serde_json::Value>,
    /// Fingerprint of the per-epoch orders the run trained in, if given.
    #[serde(default)]
    order: Option<u64>,
}

/// The adversarial settings stored in a checkpoint [`adv_train`] wrote,
/// and the caller's own run options; `None` for a checkpoint of another
/// kind (plain `aisec train`).
pub fn stored_options(ck: &Checkpoint) -> Option<(AdvConfig, Option<serde_json::Value>)> {
    let v = ck.run_options.as_ref()?.get("advtrain")?;
    let s: Stored = serde_json::from_value(v.clone()).ok()?;
    Some((s.adv, s.run))
}

/// A seed for `(seed, a, b)`: [`sub_seed`] of a stream of its own
/// (`"advt"`), so adversarial training's draws differ from plain
/// training's for the same seed.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    sub_seed(seed.wrapping_add(0x6164_7674), a, b)
}

/// Mixed into the seed of the dropout masks (`"dropout"`), so they are
/// drawn independently of the shuffle and the random starts.
const DROPOUT_STREAM: u64 = 0x6472_6f70_6f75_7400;

/// Row-wise log-softmax of logits `[b, c]`.
fn log_softmax(z: &Tensor) -> Vec<f32> {
    let c = z.row_len();
    let mut out = Vec::with_capacity(z.data.len());
    for i in 0..z.batch() {
        let r = z.row(i);
        let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m + r.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
        out.extend(r.iter().map(|v| v - lse));
    }
    debug_assert_eq!(out.len(), z.batch() * c);
    out
}

/// Per-example TRADES objective `CE(z_clean, y) + beta * KL(p_clean || p_adv)`.
pub fn trades_loss(z_clean: &Tensor, z_adv: &Tensor, labels: &[usize], beta: f32) -> Vec<f32> {
    let c = z_clean.row_len();
    let (lc, la) = (log_softmax(z_clean), log_softmax(z_adv));
    (0..z_clean.batch())
        .map(|i| {
            let (lc, la) = (&lc[i * c..(i + 1) * c], &la[i * c..(i + 1) * c]);
            let kl: f32 = lc.iter().zip(la).map(|(a, b)| a.exp() * (a - b)).sum();
            -lc[labels[i]] + beta * kl
        })
        .collect()
}

/// Soft-cross-entropy targets `[2b, c]` for the clean rows then the
/// adversarial rows stacked, whose logit gradient is `scale` times the
/// gradient of the summed TRADES objective (see the module docs).
pub fn trades_targets(
    z_clean: &Tensor,
    z_adv: &Tensor,
    labels: &[usize],
    beta: f32,
    scale: f32,
) -> Vec<f32> {
    let (b, c) = (z_clean.batch(), z_clean.row_len());
    let (lc, la) = (log_softmax(z_clean), log_softmax(z_adv));
    let mut q = vec![0.0f32; 2 * b * c];
    for i in 0..b {
        let (lc, la) = (&lc[i * c..(i + 1) * c], &la[i * c..(i + 1) * c]);
        let p: Vec<f32> = lc.iter().map(|v| v.exp()).collect();
        let s: Vec<f32> = lc.iter().zip(la).map(|(a, b)| a - b).collect();
        let es: f32 = p.iter().zip(&s).map(|(p, s)| p * s).sum();
        let y = labels[i];
        // Desired gradient g_j = p_j (1 + beta (s_j - E s)) - [j = y];
        // q_j = m p_j - k g_j >= 0 needs m >= k (1 + beta (s_j - E s))
        // for j != y (and for y when p_y is not tiny).
        let ratio = |j: usize| scale * (1.0 + beta * (s[j] - es));
        let mut m = 0.0f32;
        for j in 0..c {
            let r = if j == y {
                if p[y] > 0.0 {
                    ratio(j) - scale / p[y]
                } else {
                    f32::NEG_INFINITY
                }
            } else {
                ratio(j)
            };
            m = m.max(r);
        }
        let row = &mut q[i * c..(i + 1) * c];
        for j in 0..c {
            let g = p[j] * (1.0 + beta * (s[j] - es)) - if j == y { 1.0 } else { 0.0 };
            row[j] = (m * p[j] - scale * g).max(0.0);
        }
        // Adversarial row: gradient beta (p_adv - p_clean), reached with
        // targets beta p_clean (mass beta).
        let row = &mut q[(b + i) * c..(b + i + 1) * c];
        for j in 0..c {
            row[j] = scale * beta * p[j];
        }
    }
    q
}

impl Ascent {
    /// `steps` ascent steps of `loss`, projected onto the ball around
    /// `x0`, from the start `start` makes of each row (given a copy of the
    /// clean row and the clean row); the last iterate.
    fn run(
        &self,
        model: &OnnxModel,
        x0: &Tensor,
        loss: &Loss,
        mut start: impl FnMut(&mut [f32], &[f32]),
    ) -> Result<Tensor> {
        let mut cur = x0.clone();
        for k in 0..x0.batch() {
            start(cur.row_mut(k), x0.row(k));
        }
        for _ in 0..self.steps {
            let (_, g, _) = model.loss_grad(&cur, loss)?;
            for k in 0..cur.batch() {
                let d = ascent_direction(g.row(k), self.budget.norm);
                let row = cur.row_mut(k);
                for (v, s) in row.iter_mut().zip(&d) {
                    *v += self.alpha * s;
                }
                self.budget.project(row, x0.row(k));
            }
        }
        Ok(cur)
    }
}

/// PGD-AT's adversarial examples for `x` (uniform random start).
pub fn pgd_examples(
    model: &OnnxModel,
    x: &Tensor,
    labels: &[usize],
    ascent: &Ascent,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    let loss = Loss::CrossEntropy {
        labels: labels.to_vec(),
    };
    ascent.run(model, x, &loss, |row, clean| {
        row.copy_from_slice(&ascent.budget.random_start(clean, rng));
    })
}

/// TRADES's adversarial examples: ascent of `KL(p(x) || p(x'))` from
/// `x + 0.001 N(0, 1)`.
pub fn trades_examples(
    model: &OnnxModel,
    x: &Tensor,
    p_clean: &[f32],
    ascent: &Ascent,
    rng: &mut impl rand::Rng,
) -> Result<Tensor> {
    // The KL's gradient in the adversarial logits is p(x') - p(x): the
    // soft cross-entropy against the clean probabilities.
    let loss = Loss::SoftCrossEntropy {
        targets: p_clean.to_vec(),
    };
    ascent.run(model, x, &loss, |row, clean| {
        for v in row.iter_mut() {
            *v += 0.001 * gaussian(rng);
        }
        ascent.budget.project(row, clean);
    })
}

fn softmax_rows(z: &Tensor) -> Vec<f32> {
    log_softmax(z).into_iter().map(f32::exp).collect()
}

fn correct(z: &Tensor, y: &[usize]) -> usize {
    (0..z.batch()).filter(|&i| argmax(z.row(i)) == y[i]).count()
}

/// One adversarial training step on `(x, y)`; returns the objective and
/// how many of the adversarial examples the model classified correctly
/// (and how many there were).
#[allow(clippy::too_many_arguments)]
fn adv_step(
    trainer: &mut Trainer,
    model: &mut OnnxModel,
    twin: Option<&mut OnnxModel>,
    x: &Tensor,
    y: &[usize],
    cfg: &AdvConfig,
    eps: f32,
    rng: &mut rand::rngs::StdRng,
) -> Result<(f32, usize, usize)> {
    let ascent = cfg.ascent(eps);
    match cfg.method {
        Method::PgdAt => {
            let n = x.batch();
            let mut order: Vec<usize> = (0..n).collect();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let k = if cfg.adv_fraction >= 1.0 {
                n
            } else {
                order.shuffle(rng);
                ((n as f32 * cfg.adv_fraction).round() as usize).min(n)
            };
            let pick = &order[..k];
            let xs = gather(x, pick);
            let ys: Vec<usize> = pick.iter().map(|&i| y[i]).collect();
            let adv = pgd_examples(model, &xs, &ys, &ascent, rng)?;
            let mut mixed = x.clone();
            for (r, &i) in pick.iter().enumerate() {
                mixed.row_mut(i).copy_from_slice(adv.row(r));
            }
            let right = correct(&model.logits(&adv)?, &ys);
            let loss = match twin {
                None => trainer.step(model, &mixed, y)?,
                Some(t) => {
                    let l = trainer.step(t, &mixed, y)?;
                    sync(Some(t), model)?;
                    l
                }
            };
            Ok((loss, right, k))
        }
        Method::Trades { beta } => {
            let zc = model.logits(x)?;
            let pc = softmax_rows(&zc);
            let adv = trades_examples(model, x, &pc, &ascent, rng)?;
            let za = model.logits(&adv)?;
            let right = correct(&za, y);
            let b = x.batch();
            let mut shape = x.shape.clone();
            shape[0] = 2 * b;
            let mut data = x.data.clone();
            data.extend_from_slice(&adv.data);
            let stacked = Tensor::new(shape, data)?;
            // With dropout, the loss's logits are the twin's (masked) ones,
            // the same forward its backward pass differentiates.
            let (zc, za) = match twin.as_deref() {
                None => (zc, za),
                Some(t) => {
                    let z = t.logits(&stacked)?;
                    let c = z.row_len();
                    let (lo, hi) = z.data.split_at(b * c);
                    (
                        Tensor::new(vec![b, c], lo.to_vec())?,
                        Tensor::new(vec![b, c], hi.to_vec())?,
                    )
                }
            };
            let vals = trades_loss(&zc, &za, y, beta);
            // The trainer divides the summed gradient by the rows it sees
            // (2b); scale 2 makes the step the mean over the b examples.
            let q = trades_targets(&zc, &za, y, beta, 2.0);
            let loss = Loss::SoftCrossEntropy { targets: q };
            match twin {
                None => {
                    trainer.step_loss(model, &stacked, &loss)?;
                }
                Some(t) => {
                    trainer.step_loss(t, &stacked, &loss)?;
                    sync(Some(t), model)?;
                }
            }
            Ok((vals.iter().sum::<f32>() / b.max(1) as f32, right, b))
        }
    }
}

/// Robust accuracy of `model` on the first `n` examples of `data` under
/// aisec-attack's PGD (`steps` steps, random start, one restart).
pub fn pgd_accuracy(
    model: &OnnxModel,
    data: &Dataset,
    budget: &Budget,
    steps: usize,
    n: usize,
    seed: u64,
) -> Result<f32> {
    let d = data.slice(0, n.min(data.len()));
    if d.is_empty() {
        return Err(HardenError::InvalidParameter(
            "no examples to attack".into(),
        ));
    }
    let mut ctx = AttackContext::silent().with_seed(seed);
    let cfg = PgdConfig {
        steps,
        ..PgdConfig::default()
    };
    let mut right = 0usize;
    for b in d.batches(256) {
        let adv = pgd(&mut ctx, model, &b.x, &b.y, None, budget, &cfg)?;
        let z = model.logits(&adv)?;
        right += correct(&z, &b.y);
    }
    Ok(right as f32 / d.len() as f32)
}

/// Trains `model` adversarially on `train` with `train_cfg` (epochs,
/// batch size, optimiser, weight decay, learning-rate schedule, seed) and
/// `cfg` (method, budget, warm-up, mix). `on_event` sees every step and
/// epoch.
#[allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub fn adv_train(
    model: &mut OnnxModel,
    train: &Dataset,
    train_cfg: &TrainConfig,
    cfg: &AdvConfig,
    mut opts: AdvOptions,
    mut on_event: impl FnMut(&AdvEvent),
) -> Result<AdvHistory> {
    cfg.validate()?;
    train_cfg.validate()?;
    let n = train.len();
    if n == 0 {
        return Err(HardenError::InvalidParameter("no training examples".into()));
    }
    if train.x.data.iter().any(|v| !v.is_finite()) {
        return Err(HardenError::InvalidParameter(
            "training inputs contain values that are not finite".into(),
        ));
    }
    let classes = model.num_classes();
    if let Some(bad) = train.y.iter().find(|&&v| v >= classes) {
        return Err(HardenError::InvalidParameter(format!(
            "label {bad} is out of range for a model with {classes} outputs"
        )));
    }
    if let Some(o) = opts.order {
        o.check_fits(n, train_cfg.epochs)?;
    }
    let fingerprint = opts.order.map(EpochOrders::fingerprint);
    let plan = StepPlan::new(train_cfg, n);
    let batches = plan.batches;
    let mut trainer = train_cfg.trainer_for(model);
    let mut hist = AdvHistory {
        epochs: Vec::new(),
        steps: 0,
        cancelled: false,
        checkpoint: None,
    };
    let mut fit_hist = History::default();
    let (mut start_epoch, mut start_batch) = (0usize, 0usize);
    let mut carried = (0.0f64, 0.0f64, 0usize, 0usize);
    if let Some(ck) = opts.resume.take() {
        let stored: Stored = ck
            .run_options
            .as_ref()
            .and_then(|v| v.get("advtrain"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or_else(|| {
                HardenError::InvalidParameter(
                    "the checkpoint was not written by adversarial training".into(),
                )
            })?;
        if stored.adv != *cfg {
            return Err(HardenError::InvalidParameter(
                "the adversarial settings differ from the checkpoint's".into(),
            ));
        }
        if stored.order != fingerprint {
            return Err(HardenError::InvalidParameter(match stored.order {
                Some(_) => "the checkpoint's run trained in given per-epoch orders; \
                            resume it with the same orders"
                    .into(),
                None => "the checkpoint's run used its own shuffle; \
                         it cannot be resumed with given orders"
                    .into(),
            }));
        }
        ck.restore(model, &mut trainer)?;
        start_epoch = ck.epochs_done;
        start_batch = ck.batches_done;
        hist.epochs = stored.epochs;
        hist.steps = ck.history.steps;
        fit_hist = ck.history;
        fit_hist.cancelled = false;
        if start_batch > 0 && start_batch < batches {
            carried = (
                ck.partial_loss_sum,
                stored.partial.0,
                stored.partial.1 as usize,
                stored.partial.2,
            );
        } else {
            start_batch = 0;
        }
    }
    // Dropout: the weight update steps a twin with dropout active (see the
    // module docs); built after a resume so it starts from its weights.
    let mut twin = match opts.spec {
        Some(s) if s.has_dropout() => Some(OnnxModel::spec_dropout_twin(s, model)?),
        _ => None,
    };
    let cancelled = || opts.cancel.is_some_and(Cancel::is_cancelled);
    let policy = opts.checkpoint.clone();
    let spec = opts.spec;
    // Writes a checkpoint at `(epochs done, batches done)` with the partial
    // epoch's sums.
    let save = |model: &OnnxModel,
                trainer: &Trainer,
                fit_hist: &History,
                epochs: &[AdvEpoch],
                pos: (usize, usize),
                partial: (f64, f64, usize, usize)|
     -> Result<Option<std::path::PathBuf>> {
        let Some(p) = &policy else {
            return Ok(None);
        };
        let mut ck = Checkpoint::capture(
            model,
            trainer,
            train_cfg,
            fit_hist,
            spec,
            (pos.0, pos.1, partial.0, partial.1),
        );
        #[allow(clippy::cast_precision_loss)]
        let stored = Stored {
            adv: cfg.clone(),
            epochs: epochs.to_vec(),
            partial: (partial.1, partial.2 as f64, partial.3),
            run: p.run_options.clone(),
            order: fingerprint,
        };
        ck.run_options = Some(serde_json::json!({
            "advtrain": serde_json::to_value(&stored)
                .map_err(|e| HardenError::InvalidParameter(e.to_string()))?,
        }));
        ck.save(&p.path)?;
        Ok(Some(p.path.clone()))
    };
    for epoch in start_epoch..train_cfg.epochs {
        let eps = cfg.eps_at(epoch);
        let order = match opts.order.and_then(|o| o.epoch(epoch)) {
            Some(o) => o.to_vec(),
            None => shuffled_order(n, train_cfg.shuffle, mix(train_cfg.seed, epoch as u64, 0)),
        };
        let t0 = Instant::now();
        // (loss sum, seconds before a resume, adversarial right, adversarial seen)
        let (mut loss_sum, prior_secs, mut right, mut seen) = if epoch == start_epoch {
            carried
        } else {
            (0.0, 0.0, 0, 0)
        };
        let first = if epoch == start_epoch { start_batch } else { 0 };
        let mut done = first;
        let mut lr = trainer.lr();
        for b in first..batches {
            let idx = plan.batch(&order, b);
            let xb = gather(&train.x, idx);
            let yb: Vec<usize> = idx.iter().map(|&i| train.y[i]).collect();
            lr = plan.lr(epoch, b);
            trainer.set_lr(lr);
            let mut rng =
                rand::rngs::StdRng::seed_from_u64(mix(train_cfg.seed, epoch as u64, b as u64 + 1));
            if let Some(t) = twin.as_mut() {
                t.set_dropout_seed(mix(train_cfg.seed ^ DROPOUT_STREAM, epoch as u64, b as u64));
            }
            let (l, r, k) = adv_step(
                &mut trainer,
                model,
                twin.as_mut(),
                &xb,
                &yb,
                cfg,
                eps,
                &mut rng,
            )?;
            if !l.is_finite() {
                return Err(HardenError::Numerical(diverged(l, epoch, b)));
            }
            loss_sum += f64::from(l);
            right += r;
            seen += k;
            done += 1;
            hist.steps += 1;
            fit_hist.steps = hist.steps;
            on_event(&AdvEvent::Batch {
                epoch: epoch + 1,
                batch: b + 1,
                batches,
                loss: l,
            });
            if cancelled() && b + 1 < batches {
                hist.cancelled = true;
                fit_hist.cancelled = true;
                hist.checkpoint = save(
                    model,
                    &trainer,
                    &fit_hist,
                    &hist.epochs,
                    (epoch, b + 1),
                    (
                        loss_sum,
                        prior_secs + t0.elapsed().as_secs_f64(),
                        right,
                        seen,
                    ),
                )?;
                return Ok(hist);
            }
        }
        let seconds = prior_secs + t0.elapsed().as_secs_f64();
        let (val_loss, val_accuracy, val_robust_accuracy) = match opts.val {
            Some(v) if !v.is_empty() => {
                let (l, a) = evaluate(model, v, 256)?;
                let r = if cfg.eval_steps > 0 && cfg.eval_examples > 0 {
                    Some(pgd_accuracy(
                        model,
                        v,
                        &cfg.budget(cfg.eps),
                        cfg.eval_steps,
                        cfg.eval_examples,
                        mix(train_cfg.seed, epoch as u64, u64::MAX),
                    )?)
                } else {
                    None
                };
                (Some(l), Some(a), r)
            }
            _ => (None, None, None),
        };
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let e = AdvEpoch {
            epoch: epoch + 1,
            eps,
            loss: (loss_sum / done.max(1) as f64) as f32,
            train_robust_accuracy: right as f32 / seen.max(1) as f32,
            val_accuracy,
            val_robust_accuracy,
            seconds,
        };
        fit_hist.epochs.push(EpochStats {
            epoch: epoch + 1,
            train_loss: e.loss,
            val_loss,
            val_accuracy,
            lr,
            seconds,
        });
        on_event(&AdvEvent::Epoch(&e));
        hist.epochs.push(e);
        let last = epoch + 1 == train_cfg.epochs;
        let stop = cancelled() && !last;
        if let Some(p) = &policy {
            if p.due(epoch, train_cfg.epochs, stop) {
                fit_hist.cancelled = stop;
                hist.checkpoint = save(
                    model,
                    &trainer,
                    &fit_hist,
                    &hist.epochs,
                    (epoch + 1, 0),
                    (0.0, 0.0, 0, 0),
                )?;
            }
        }
        if stop {
            hist.cancelled = true;
            return Ok(hist);
        }
    }
    Ok(hist)
}

/// Clean and AutoAttack accuracy of a model, with what it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustEval {
    /// Threat-model norm.
    pub norm: Norm,
    /// Radius.
    pub eps: f32,
    /// Examples evaluated.
    pub examples: usize,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Accuracy under aisec's AutoAttack (worst case over its components).
    pub autoattack_accuracy: f64,
    /// Per component: name and robust accuracy after it.
    pub components: Vec<(String, f64)>,
    /// Model queries the attack made (examples sent, gradient passes included).
    pub queries: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// False when the evaluation was cancelled before it finished.
    pub complete: bool,
}

/// Evaluates `model` on `data` with aisec-attack's AutoAttack (APGD-CE,
/// APGD-T, FAB-T, Square on the still-robust points, as
/// [`AttackKind::AutoAttack`] runs them). `tune` may adjust the
/// configuration (iterations, queries, batch size) before the run.
pub fn autoattack_eval(
    model: &OnnxModel,
    data: &Dataset,
    budget: &Budget,
    seed: u64,
    ctx: &AttackContext,
    tune: impl FnOnce(&mut EvasionConfig),
) -> Result<RobustEval> {
    let mut ecfg = EvasionConfig {
        attacks: vec![AttackKind::AutoAttack],
        norm: budget.norm,
        eps: budget.eps,
        lo: budget.lo,
        hi: budget.hi,
        seed,
        ..EvasionConfig::default()
    };
    tune(&mut ecfg);
    let t0 = Instant::now();
    let r = run_evasion(model, &data.x, &data.y, &ecfg, ctx)
        .map_err(|e| HardenError::Attack(e.to_string()))?;
    let aa = r
        .attacks
        .iter()
        .find(|a| a.attack == AttackKind::AutoAttack.name())
        .or_else(|| r.attacks.last());
    let components = r
        .attacks
        .iter()
        .filter(|a| a.attack != AttackKind::AutoAttack.name())
        .map(|a| (a.attack.clone(), a.robust_accuracy))
        .collect();
    Ok(RobustEval {
        norm: budget.norm,
        eps: budget.eps,
        examples: r.n,
        clean_accuracy: r.clean_accuracy,
        autoattack_accuracy: r
            .worst_case_robust_accuracy
            .or(aa.map(|a| a.robust_accuracy))
            .unwrap_or(0.0),
        components,
        queries: r.attacks.iter().map(|a| a.total_queries).sum(),
        seconds: t0.elapsed().as_secs_f64(),
        complete: r.complete,
    })
}

/// A RobustBench-style model entry (the JSON fields of RobustBench's
/// `model_info` files, Croce et al. 2021) for an evaluation aisec ran:
/// accuracies in percent as strings with two decimals, `reported` false
/// (no paper number), `number_forward_passes` 1 (a deterministic model).
pub fn robustbench_entry(
    name: &str,
    architecture: &str,
    dataset: &str,
    eval: &RobustEval,
) -> serde_json::Value {
    let norm = match eval.norm {
        Norm::Linf => "Linf",
        Norm::L2 => "L2",
    };
    serde_json::json!({
        "name": name,
        "architecture": architecture,
        "dataset": dataset,
        "threat_model": norm,
        "norm": norm,
        "eps": format!("{}", eval.eps),
        "clean_acc": format!("{:.2}", 100.0 * eval.clean_accuracy),
        "autoattack_acc": format!("{:.2}", 100.0 * eval.autoattack_accuracy),
        "number_forward_passes": 1,
        "reported": false,
        "additional_data": false,
        "evaluated_examples": eval.examples,
        "attack": "aisec AutoAttack (APGD-CE, APGD-T, FAB-T, Square)",
        "complete": eval.complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_model::fit::fit;
    use aisec_model::train::Optimizer;
    use rand::Rng;

    /// Two classes with one robust feature (0.5 +- 0.3, noise 0.1: a
    /// margin of 0.2 from the boundary) and 20 fragile ones (0.5 +- 0.03
    /// with noise 0.05: weak alone, decisive together, and each flipped
    /// by an L-inf perturbation of 0.15), after Tsipras et al. 2019,
    /// "Robustness May Be at Odds with Accuracy".
    fn data(n: usize, seed: u64) -> Dataset {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * 21);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % 2;
            let s = if c == 0 { -1.0f32 } else { 1.0 };
            x.push(0.5 + 0.3 * s + rng.gen_range(-0.1f32..0.1));
            for _ in 0..20 {
                x.push(0.5 + 0.03 * s + rng.gen_range(-0.05f32..0.05));
            }
            y.push(c);
        }
        Dataset::new(Tensor::new(vec![n, 21], x).unwrap(), y).unwrap()
    }

    fn spec() -> ArchSpec {
        ArchSpec::parse(
            r#"{"input": [21], "layers": [{"type": "dense", "units": 16}, {"type": "relu"}, {"type": "dense", "units": 2}]}"#,
        )
        .unwrap()
    }

    fn train_cfg(epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: 32,
            optimizer: Optimizer::adam(0.02),
            seed: 3,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn pgd_at_and_trades_raise_robust_accuracy_over_plain_training() {
        let (train, test) = (data(400, 1), data(200, 2));
        let budget = Budget {
            norm: Norm::Linf,
            eps: 0.15,
            lo: 0.0,
            hi: 1.0,
        };
        let mut plain = OnnxModel::from_spec(&spec(), 5).unwrap();
        fit(&mut plain, &train, &train_cfg(15), Default::default()).unwrap();
        let plain_clean = evaluate(&plain, &test, 256).unwrap().1;
        let plain_rob = pgd_accuracy(&plain, &test, &budget, 20, 200, 1).unwrap();
        let mut cfg = AdvConfig::pgd_at(Norm::Linf, 0.15, 7);
        cfg.eps_warmup_epochs = 3;
        let mut at = OnnxModel::from_spec(&spec(), 5).unwrap();
        let h = adv_train(
            &mut at,
            &train,
            &train_cfg(15),
            &cfg,
            AdvOptions::default(),
            |_| {},
        )
        .unwrap();
        assert_eq!(h.epochs.len(), 15);
        assert!((h.epochs[0].eps - 0.05).abs() < 1e-6);
        assert_eq!(h.epochs[5].eps, 0.15);
        let at_rob = pgd_accuracy(&at, &test, &budget, 20, 200, 1).unwrap();
        let at_clean = evaluate(&at, &test, 256).unwrap().1;
        cfg.method = Method::Trades { beta: 6.0 };
        let mut tr = OnnxModel::from_spec(&spec(), 5).unwrap();
        adv_train(
            &mut tr,
            &train,
            &train_cfg(15),
            &cfg,
            AdvOptions::default(),
            |_| {},
        )
        .unwrap();
        let tr_rob = pgd_accuracy(&tr, &test, &budget, 20, 200, 1).unwrap();
        // The plain model leans on the fragile coordinate and breaks; the
        // adversarially trained ones use the robust one.
        eprintln!("plain {plain_clean}/{plain_rob}, PGD-AT {at_clean}/{at_rob}, TRADES {tr_rob}");
        assert!(plain_clean > 0.95, "plain clean {plain_clean}");
        assert!(plain_rob < 0.5, "plain robust {plain_rob}");
        assert!(at_clean > 0.9, "PGD-AT clean {at_clean}");
        assert!(
            at_rob > plain_rob + 0.3,
            "PGD-AT {at_rob} vs plain {plain_rob}"
        );
        assert!(
            tr_rob > plain_rob + 0.3,
            "TRADES {tr_rob} vs plain {plain_rob}"
        );
    }

    #[test]
    fn trades_weight_gradient_matches_finite_differences() {
        let m = OnnxModel::from_spec(
            &ArchSpec::parse(
                r#"{"input": [3], "layers": [{"type": "dense", "units": 5}, {"type": "tanh"}, {"type": "dense", "units": 4}]}"#,
            )
            .unwrap(),
            11,
        )
        .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let b = 3;
        let x = Tensor::new(
            vec![b, 3],
            (0..b * 3).map(|_| rng.gen_range(-1.0f32..1.0)).collect(),
        )
        .unwrap();
        let xa = Tensor::new(
            x.shape.clone(),
            x.data
                .iter()
                .map(|v| v + rng.gen_range(-0.3f32..0.3))
                .collect(),
        )
        .unwrap();
        let y = vec![0, 3, 1];
        let beta = 2.5;
        let objective = |m: &OnnxModel| -> f64 {
            let (zc, za) = (m.logits(&x).unwrap(), m.logits(&xa).unwrap());
            trades_loss(&zc, &za, &y, beta)
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / b as f64
        };
        let (zc, za) = (m.logits(&x).unwrap(), m.logits(&xa).unwrap());
        let q = trades_targets(&zc, &za, &y, beta, 1.0);
        let mut sd = x.data.clone();
        sd.extend_from_slice(&xa.data);
        let stacked = Tensor::new(vec![2 * b, 3], sd).unwrap();
        let (_, grads) = m
            .weight_grads(&stacked, &Loss::SoftCrossEntropy { targets: q })
            .unwrap();
        let h = 1e-3f32;
        let mut checked = 0;
        for (name, g) in &grads {
            let w0 = m.weight(name).unwrap();
            for i in 0..w0.data.len() {
                let mut mp = m.clone();
                let mut w = w0.clone();
                w.data[i] += h;
                mp.set_weight(name, &w).unwrap();
                let fp = objective(&mp);
                w.data[i] -= 2.0 * h;
                mp.set_weight(name, &w).unwrap();
                let fm = objective(&mp);
                let fd = (fp - fm) / (2.0 * f64::from(h));
                let an = f64::from(g.data[i]) / b as f64;
                assert!(
                    (fd - an).abs() < 2e-3 + 2e-2 * fd.abs(),
                    "{name}[{i}]: analytic {an} vs finite difference {fd}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * 5 + 5 + 5 * 4 + 4);
        // The adversarial-branch targets alone (beta = 0) vanish and the
        // clean rows become plain cross-entropy.
        let q0 = trades_targets(&zc, &za, &y, 0.0, 1.0);
        assert!(q0[b * 4..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn l2_training_and_mix_run_and_stay_in_budget() {
        let m = OnnxModel::from_spec(&spec(), 2).unwrap();
        let d = data(16, 3);
        let budget = Budget {
            norm: Norm::L2,
            eps: 0.3,
            lo: 0.0,
            hi: 1.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let ascent = Ascent {
            budget,
            steps: 5,
            alpha: 0.1,
        };
        let adv = pgd_examples(&m, &d.x, &d.y, &ascent, &mut rng).unwrap();
        for i in 0..16 {
            let dlt: Vec<f32> = adv
                .row(i)
                .iter()
                .zip(d.x.row(i))
                .map(|(a, b)| a - b)
                .collect();
            assert!(budget.admits(&dlt));
            assert!(adv.row(i).iter().all(|v| (0.0..=1.0).contains(v)));
        }
        let mut cfg = AdvConfig::pgd_at(Norm::L2, 0.3, 3);
        cfg.adv_fraction = 0.5;
        let mut m2 = m.clone();
        let h = adv_train(
            &mut m2,
            &d,
            &train_cfg(2),
            &cfg,
            AdvOptions::default(),
            |_| {},
        )
        .unwrap();
        // Half of each batch of 16 was attacked: 8 adversarial examples an epoch.
        assert_eq!(h.steps, 2);
        assert_ne!(m2.weight("layer0.weight"), m.weight("layer0.weight"));
        cfg.method = Method::Trades { beta: 1.0 };
        assert!(cfg.validate().is_err());
        cfg.adv_fraction = 1.0;
        cfg.eps = -1.0;
        assert!(cfg.validate().is_err());
    }

    /// A spec with dropout trains under PGD-AT and TRADES: the weight
    /// update sees dropout (the weights differ from the same run at rate
    /// 0, which they did not when dropout was ignored), the run is
    /// reproducible from its seed, and the inner attack sees a
    /// deterministic model (the inference graph: dropout is the identity,
    /// so the same draws give the same adversarial examples and logits).
    #[test]
    fn dropout_spec_trains_with_a_deterministic_attack() {
        let with_rate = |rate: f32| {
            ArchSpec::parse(&format!(
                r#"{{"input": [21], "layers": [{{"type": "dense", "units": 16}}, {{"type": "relu"}}, {{"type": "dropout", "rate": {rate}}}, {{"type": "dense", "units": 2}}]}}"#
            ))
            .unwrap()
        };
        let d = data(64, 4);
        for method in [Method::PgdAt, Method::Trades { beta: 1.0 }] {
            let mut cfg = AdvConfig::pgd_at(Norm::Linf, 0.1, 3);
            cfg.method = method;
            let run = |spec: &ArchSpec| {
                let mut m = OnnxModel::from_spec(spec, 1).unwrap();
                let h = adv_train(
                    &mut m,
                    &d,
                    &train_cfg(2),
                    &cfg,
                    AdvOptions {
                        spec: Some(spec),
                        ..AdvOptions::default()
                    },
                    |_| {},
                )
                .unwrap();
                assert!(h.epochs.iter().all(|e| e.loss.is_finite()));
                m
            };
            let (drop, none) = (with_rate(0.5), with_rate(0.0));
            let a = run(&drop);
            let b = run(&drop);
            let c = run(&none);
            for n in a.weight_names() {
                assert_eq!(a.weight(&n), b.weight(&n), "{n}: not reproducible");
            }
            assert_ne!(
                a.weight("layer3.weight"),
                c.weight("layer3.weight"),
                "dropout did not reach the weight update"
            );
            // The trained model (what the attack runs on) has no
            // training-mode dropout: logits and PGD examples repeat.
            assert!(!a.has_train_dropout());
            assert_eq!(a.logits(&d.x).unwrap(), a.logits(&d.x).unwrap());
            let ascent = cfg.ascent(0.1);
            let adv = |seed| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                pgd_examples(&a, &d.x, &d.y, &ascent, &mut rng).unwrap()
            };
            assert_eq!(adv(5), adv(5));
        }
    }

    #[test]
    fn a_cancelled_run_resumes_to_the_uninterrupted_weights() {
        let d = data(96, 5);
        let tcfg = train_cfg(2);
        let cfg = AdvConfig::pgd_at(Norm::Linf, 0.1, 3);
        let mut full = OnnxModel::from_spec(&spec(), 1).unwrap();
        adv_train(&mut full, &d, &tcfg, &cfg, AdvOptions::default(), |_| {}).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let cancel = Cancel::new();
        let mut part = OnnxModel::from_spec(&spec(), 1).unwrap();
        let mut seen = 0;
        let h = adv_train(
            &mut part,
            &d,
            &tcfg,
            &cfg,
            AdvOptions {
                cancel: Some(&cancel),
                checkpoint: Some(CheckpointPolicy {
                    path: path.clone(),
                    every: 0,
                    at_end: false,
                    run_options: Some(serde_json::json!({"data": "x.npz"})),
                }),
                ..AdvOptions::default()
            },
            |e| {
                if let AdvEvent::Batch { .. } = e {
                    seen += 1;
                    if seen == 4 {
                        cancel.cancel();
                    }
                }
            },
        )
        .unwrap();
        assert!(h.cancelled);
        assert_eq!(h.steps, 4);
        assert_eq!(h.epochs.len(), 1);
        let ck = Checkpoint::load(&path).unwrap();
        let (stored, run) = stored_options(&ck).unwrap();
        assert_eq!(stored, cfg);
        assert_eq!(run, Some(serde_json::json!({"data": "x.npz"})));
        let mut resumed = OnnxModel::from_spec(&spec(), 9).unwrap();
        let h2 = adv_train(
            &mut resumed,
            &d,
            &tcfg,
            &cfg,
            AdvOptions {
                resume: Some(ck),
                ..AdvOptions::default()
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(h2.steps, 6);
        assert_eq!(h2.epochs.len(), 2);
        for n in full.weight_names() {
            assert_eq!(full.weight(&n), resumed.weight(&n), "{n}");
        }
        // Other settings are refused on resume.
        let ck = Checkpoint::load(&path).unwrap();
        let other = AdvConfig::pgd_at(Norm::Linf, 0.2, 3);
        let mut m = OnnxModel::from_spec(&spec(), 1).unwrap();
        assert!(adv_train(
            &mut m,
            &d,
            &tcfg,
            &other,
            AdvOptions {
                resume: Some(ck),
                ..AdvOptions::default()
            },
            |_| {}
        )
        .is_err());
    }

    /// Given per-epoch orders replace the seeded shuffle exactly: the
    /// identity order trains the `--no-shuffle` weights, the seeded
    /// shuffle's own orders train the default run's weights; orders that do
    /// not fit the run, or differ from a checkpoint's, are refused.
    #[test]
    fn given_orders_replace_the_shuffle_and_must_fit_the_run() {
        let d = data(70, 5);
        let n = d.len();
        let cfg = AdvConfig::pgd_at(Norm::Linf, 0.1, 2);
        let train = |tcfg: &TrainConfig, order: Option<&EpochOrders>| {
            let mut m = OnnxModel::from_spec(&spec(), 1).unwrap();
            let opts = AdvOptions {
                order,
                ..AdvOptions::default()
            };
            adv_train(&mut m, &d, tcfg, &cfg, opts, |_| {}).map(|_| m)
        };
        let weights = |m: &OnnxModel| -> Vec<Option<Tensor>> {
            m.weight_names().iter().map(|k| m.weight(k)).collect()
        };
        let tcfg = train_cfg(2);
        let identity = EpochOrders::new(vec![(0..n).collect(); 2]).unwrap();
        let fixed = TrainConfig {
            shuffle: false,
            ..tcfg.clone()
        };
        assert_eq!(
            weights(&train(&tcfg, Some(&identity)).unwrap()),
            weights(&train(&fixed, None).unwrap())
        );
        let own: Vec<Vec<usize>> = (0..2)
            .map(|e| shuffled_order(n, true, mix(tcfg.seed, e, 0)))
            .collect();
        let own = EpochOrders::new(own).unwrap();
        let shuffled = weights(&train(&tcfg, None).unwrap());
        assert_eq!(weights(&train(&tcfg, Some(&own)).unwrap()), shuffled);
        assert_ne!(weights(&train(&tcfg, Some(&identity)).unwrap()), shuffled);
        // Too few examples per epoch, too few epochs.
        let short = EpochOrders::new(vec![(0..n - 1).collect(); 2]).unwrap();
        let e = train(&tcfg, Some(&short)).err().unwrap().to_string();
        assert!(e.contains("the training set has 70"), "{e}");
        let e = train(&train_cfg(3), Some(&own)).err().unwrap().to_string();
        assert!(e.contains("covers 2 epochs, the run trains 3"), "{e}");
        // A checkpoint remembers whether (and which) orders it trained in.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        let mut m = OnnxModel::from_spec(&spec(), 1).unwrap();
        adv_train(
            &mut m,
            &d,
            &train_cfg(1),
            &cfg,
            AdvOptions {
                order: Some(&own),
                checkpoint: Some(CheckpointPolicy {
                    path: path.clone(),
                    every: 1,
                    at_end: true,
                    run_options: None,
                }),
                ..AdvOptions::default()
            },
            |_| {},
        )
        .unwrap();
        let resume = |order: Option<&EpochOrders>| {
            let mut m = OnnxModel::from_spec(&spec(), 9).unwrap();
            let opts = AdvOptions {
                order,
                resume: Some(Checkpoint::load(&path).unwrap()),
                ..AdvOptions::default()
            };
            adv_train(&mut m, &d, &tcfg, &cfg, opts, |_| {}).map(|_| m)
        };
        let e = resume(None).err().unwrap().to_string();
        assert!(e.contains("resume it with the same orders"), "{e}");
        assert!(resume(Some(&identity)).is_err());
        assert_eq!(weights(&resume(Some(&own)).unwrap()), shuffled);
    }

    #[test]
    fn autoattack_entry_has_the_robustbench_fields() {
        let mut m = OnnxModel::from_spec(&spec(), 5).unwrap();
        let d = data(64, 8);
        fit(&mut m, &d, &train_cfg(10), Default::default()).unwrap();
        let budget = Budget {
            norm: Norm::Linf,
            eps: 0.2,
            lo: 0.0,
            hi: 1.0,
        };
        let ev = autoattack_eval(
            &m,
            &d.slice(0, 16),
            &budget,
            0,
            &AttackContext::silent(),
            |c| {
                c.apgd.steps = 10;
                c.fab.steps = 10;
                c.square.max_queries = 100;
            },
        )
        .unwrap();
        assert_eq!(ev.examples, 16);
        assert!(ev.autoattack_accuracy <= ev.clean_accuracy);
        assert!(ev.queries > 0);
        let j = robustbench_entry("t", "MLP", "synthetic", &ev);
        for k in [
            "name",
            "architecture",
            "dataset",
            "eps",
            "norm",
            "clean_acc",
            "autoattack_acc",
            "number_forward_passes",
            "reported",
            "additional_data",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["reported"], false);
        assert_eq!(j["clean_acc"], format!("{:.2}", 100.0 * ev.clean_accuracy));
    }
}
