//! The training loop: [`fit`] trains a model on a [`Dataset`] for a number
//! of epochs with a [`TrainConfig`] (optimiser, weight decay, learning-rate
//! schedule, seeded shuffling, image augmentation), evaluates a validation
//! set after every epoch, reports progress to a callback, stops on a
//! cancellation flag and writes resumable checkpoints
//! ([`crate::checkpoint`]).
//!
//! Schedules: constant, step decay, and cosine annealing (Loshchilov &
//! Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017,
//! here a single cycle without restarts), each with an optional linear
//! warm-up (Goyal et al., "Accurate, Large Minibatch SGD", 2017). The
//! learning rate is set per step.
//!
//! Augmentation for images `[c, h, w]`: random crop of the zero-padded image
//! back to its size, and horizontal flip with probability 1/2 (the
//! CIFAR-style augmentation of He et al., "Deep Residual Learning for Image
//! Recognition", CVPR 2016).
//!
//! Every random choice (shuffle order, crop offsets, flips) is drawn from a
//! generator seeded by `(seed, epoch[, batch])`, so a run is reproducible
//! and a run resumed from a checkpoint takes exactly the steps the
//! uninterrupted run would have taken.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::classifier::{Classifier, Loss, ModelError, Tensor};
use crate::data::Dataset;
use crate::loss::loss_and_grad;
use crate::onnx_model::OnnxModel;
use crate::spec::ArchSpec;
use crate::train::{Optimizer, Trainer, WeightDecay};

/// Learning-rate schedule over the whole run (after any warm-up).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The optimiser's learning rate throughout.
    #[default]
    Constant,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f32,
    },
    /// Cosine annealing from the base rate down to `min_lr` at the last step.
    Cosine {
        /// Final learning rate.
        #[serde(default)]
        min_lr: f32,
    },
}

impl Schedule {
    /// Parses `constant`, `step:EVERY[:GAMMA]` (gamma 0.1 by default) or
    /// `cosine[:MIN_LR]`.
    pub fn parse(s: &str) -> Result<Schedule, ModelError> {
        let bad = || {
            ModelError::Invalid(format!(
                "schedule '{s}': expected constant, step:EVERY[:GAMMA] or cosine[:MIN_LR]"
            ))
        };
        let mut parts = s.split(':');
        let kind = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let num = |t: &str| t.trim().parse::<f32>().ok().filter(|v| v.is_finite());
        match (kind.trim(), args.as_slice()) {
            ("constant", []) => Ok(Schedule::Constant),
            ("step", [e]) | ("step", [e, _]) => {
                let every = e.trim().parse::<usize>().ok().filter(|&v| v > 0);
                let gamma = match args.get(1) {
                    Some(g) => num(g).ok_or_else(bad)?,
                    None => 0.1,
                };
                Ok(Schedule::Step {
                    every: every.ok_or_else(bad)?,
                    gamma,
                })
            }
            ("cosine", []) => Ok(Schedule::Cosine { min_lr: 0.0 }),
            ("cosine", [m]) => Ok(Schedule::Cosine {
                min_lr: num(m).ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        }
    }

    /// The learning rate at global step `t` (0-based) of `total` steps,
    /// with `per_epoch` steps per epoch and `warmup` warm-up steps.
    pub fn lr_at(&self, base: f32, t: usize, total: usize, per_epoch: usize, warmup: usize) -> f32 {
        if t < warmup {
            return base * (t + 1) as f32 / warmup as f32;
        }
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                let epoch = t / per_epoch.max(1);
                base * gamma.powi((epoch / every.max(1)) as i32)
            }
            Schedule::Cosine { min_lr } => {
                let span = total.saturating_sub(warmup).max(1) as f32;
                let p = ((t - warmup) as f32 / span).min(1.0);
                min_lr + (base - min_lr) * 0.5 * (1.0 + (std::f32::consts::PI * p).cos())
            }
        }
    }
}

/// Image augmentation applied to training batches (never to validation).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Augment {
    /// Random crop with this much zero padding on every side (0: off).
    #[serde(default)]
    pub crop_padding: usize,
    /// Random horizontal flip with probability 1/2.
    #[serde(default)]
    pub flip: bool,
}

impl Augment {
    /// True when augmentation does something.
    pub fn is_active(&self) -> bool {
        self.crop_padding > 0 || self.flip
    }

    /// Parses a comma-separated list: `crop` (padding 4), `crop:P`, `flip`,
    /// or `none`.
    pub fn parse(s: &str) -> Result<Augment, ModelError> {
        let mut a = Augment::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once(':') {
                None if part == "none" => {}
                None if part == "flip" => a.flip = true,
                None if part == "crop" => a.crop_padding = 4,
                Some(("crop", p)) => {
                    a.crop_padding =
                        p.parse().ok().filter(|&p: &usize| p <= 64).ok_or_else(|| {
                            ModelError::Invalid(format!("augment: bad crop '{p}'"))
                        })?
                }
                _ => {
                    return Err(ModelError::Invalid(format!(
                        "augment '{part}': expected crop, crop:P, flip or none"
                    )))
                }
            }
        }
        Ok(a)
    }

    /// Augments every example of a batch `[n, c, h, w]` in place.
    pub fn apply(&self, x: &mut Tensor, rng: &mut impl Rng) -> Result<(), ModelError> {
        if !self.is_active() {
            return Ok(());
        }
        if x.shape.len() != 4 {
            return Err(ModelError::Shape(format!(
                "image augmentation needs [n, c, h, w] inputs, got {:?}",
                x.shape
            )));
        }
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3]);
        let p = self.crop_padding as isize;
        let mut buf = vec![0.0f32; c * h * w];
        for i in 0..x.batch() {
            let flip = self.flip && rng.gen_bool(0.5);
            let (dy, dx) = if p > 0 {
                (rng.gen_range(-p..=p), rng.gen_range(-p..=p))
            } else {
                (0, 0)
            };
            if !flip && dy == 0 && dx == 0 {
                continue;
            }
            let row = x.row_mut(i);
            for ch in 0..c {
                for yy in 0..h {
                    let sy = yy as isize + dy;
                    for xx in 0..w {
                        let sx0 = xx as isize + dx;
                        let v = if sy < 0 || sy >= h as isize || sx0 < 0 || sx0 >= w as isize {
                            0.0
                        } else {
                            let sx = if flip {
                                w - 1 - sx0 as usize
                            } else {
                                sx0 as usize
                            };
                            row[(ch * h + sy as usize) * w + sx]
                        };
                        buf[(ch * h + yy) * w + xx] = v;
                    }
                }
            }
            row.copy_from_slice(&buf);
        }
        Ok(())
    }
}

/// Everything that decides how a model is trained. Serialisable, so a
/// checkpoint records the configuration it was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Optimiser and its base learning rate.
    pub optimizer: Optimizer,
    /// Weight decay.
    #[serde(default)]
    pub weight_decay: WeightDecay,
    /// Learning-rate schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Linear warm-up from `lr / steps` to `lr` over this many epochs.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Seed for shuffling and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Shuffle the training set every epoch (on by default).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Image augmentation (off by default).
    #[serde(default)]
    pub augment: Augment,
}

fn yes() -> bool {
    true
}

impl Default for TrainConfig {
    /// Adam at 1e-3, batch 64, 10 epochs, shuffled, no decay or schedule.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            optimizer: Optimizer::adam(1e-3),
            weight_decay: WeightDecay::None,
            schedule: Schedule::Constant,
            warmup_epochs: 0,
            seed: 0,
            shuffle: true,
            augment: Augment::default(),
        }
    }
}

impl TrainConfig {
    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: &str| Err(ModelError::Invalid(format!("train config: {m}")));
        if self.batch_size == 0 {
            return bad("batch size must be positive");
        }
        let lr = self.optimizer.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return bad("learning rate must be a positive number");
        }
        match self.weight_decay {
            WeightDecay::L2(l) | WeightDecay::Decoupled(l) if !(l.is_finite() && l >= 0.0) => {
                return bad("weight decay must be a non-negative number")
            }
            _ => {}
        }
        if let Optimizer::Sgd { momentum, .. } = self.optimizer {
            if !(0.0..1.0).contains(&momentum) {
                return bad("momentum must be in [0, 1)");
            }
        }
        if let Schedule::Step { every: 0, .. } = self.schedule {
            return bad("step schedule needs every >= 1");
        }
        Ok(())
    }

    /// The trainer of a run on `model`: the optimiser with the weight
    /// decay, and batch-norm running statistics frozen (they follow batch
    /// statistics, not gradients).
    pub fn trainer_for(&self, model: &OnnxModel) -> Trainer {
        let mut t = Trainer::new(self.optimizer.clone()).with_weight_decay(self.weight_decay);
        t.freeze(
            model
                .weight_names()
                .into_iter()
                .filter(|n| n.ends_with(".running_mean") || n.ends_with(".running_var")),
        );
        t
    }
}

/// Per-epoch numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weights changing as
    /// they go, as every framework reports it).
    pub train_loss: f32,
    /// Validation loss (mean cross-entropy) after the epoch.
    pub val_loss: Option<f32>,
    /// Validation accuracy after the epoch.
    pub val_accuracy: Option<f32>,
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Wall-clock seconds of the epoch's training steps (validation excluded).
    pub seconds: f64,
}

/// What [`fit`] returns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// One entry per completed epoch, including those before a resume.
    pub epochs: Vec<EpochStats>,
    /// True when the run stopped early on the cancellation flag.
    pub cancelled: bool,
    /// Optimiser steps taken in total.
    pub steps: u64,
    /// Where the last checkpoint was written, if any.
    pub checkpoint: Option<PathBuf>,
}

impl History {
    /// The last completed epoch's numbers.
    pub fn last(&self) -> Option<&EpochStats> {
        self.epochs.last()
    }
}

/// Progress reports sent to the callback.
#[derive(Debug, Clone, PartialEq)]
pub enum FitEvent<'a> {
    /// A step finished.
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// Batches done in this epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// This batch's mean loss.
        loss: f32,
    },
    /// An epoch finished (after validation).
    Epoch(&'a EpochStats),
    /// A checkpoint was written.
    Checkpoint(&'a std::path::Path),
}

/// Where and how often [`fit`] writes checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    /// The file, rewritten atomically each time (for example
    /// `run/checkpoint.safetensors`).
    pub path: PathBuf,
    /// Write after every `every` epochs (0: never on a schedule).
    pub every: usize,
    /// Also write one when the run completes. One is always written when
    /// the run is cancelled.
    pub at_end: bool,
    /// Stored in every checkpoint as [`Checkpoint::run_options`].
    pub run_options: Option<serde_json::Value>,
}

impl CheckpointPolicy {
    /// Stores the policy's run options in `ck` and writes it to the path.
    fn write(&self, mut ck: Checkpoint) -> Result<(), ModelError> {
        ck.run_options.clone_from(&self.run_options);
        ck.save(&self.path)
    }

    /// Whether a checkpoint is due after epoch `epoch` (0-based) of a run
    /// of `epochs`: at the end when `at_end`, on the `every` schedule, and
    /// whenever the run stops early (`stop` before the last epoch).
    pub fn due(&self, epoch: usize, epochs: usize, stop: bool) -> bool {
        let last = epoch + 1 == epochs;
        (last && self.at_end)
            || (stop && !last)
            || (self.every > 0 && (epoch + 1).is_multiple_of(self.every))
    }
}

/// Optional parts of a [`fit`] run.
#[derive(Default)]
pub struct FitOptions<'a> {
    /// Validation set evaluated after every epoch.
    pub val: Option<&'a Dataset>,
    /// The model's architecture when it is a spec model: needed for
    /// batch-norm training (batch statistics, running averages) and stored
    /// in checkpoints. Without it batch norm stays in inference form: its
    /// running statistics are frozen and only scale and shift train.
    pub spec: Option<&'a ArchSpec>,
    /// Called after every step, epoch and checkpoint.
    pub progress: Option<&'a mut dyn FnMut(&FitEvent)>,
    /// Checked after every step; when set, the run stops (writing a
    /// checkpoint if a policy is given) and returns with `cancelled`.
    pub cancel: Option<&'a AtomicBool>,
    /// Checkpoint writing.
    pub checkpoint: Option<CheckpointPolicy>,
    /// Continue from this checkpoint: its weights, optimiser state and
    /// position replace the model's and the run's.
    pub resume: Option<Checkpoint>,
}

/// Training targets: class labels or soft probability rows (distillation).
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// One class per example; the loss is softmax cross-entropy.
    Hard(&'a [usize]),
    /// `[n, classes]` probabilities; the loss is soft-target cross-entropy
    /// (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015).
    Soft(&'a Tensor),
}

/// Trains `model` on `train` with cross-entropy. See [`fit_targets`].
pub fn fit(
    model: &mut OnnxModel,
    train: &Dataset,
    cfg: &TrainConfig,
    opts: FitOptions,
) -> Result<History, ModelError> {
    fit_targets(model, &train.x, Targets::Hard(&train.y), cfg, opts)
}

/// Builds a spec model from `seed` and trains it on `train`: the one-line
/// way to get a shadow or surrogate model.
pub fn train_spec(
    spec: &ArchSpec,
    seed: u64,
    train: &Dataset,
    cfg: &TrainConfig,
) -> Result<(OnnxModel, History), ModelError> {
    train_fresh(spec, seed, |m, opts| fit(m, train, cfg, opts))
}

/// Builds a spec model and distils soft targets (`[n, classes]`
/// probabilities, e.g. a victim's outputs) into it.
pub fn train_spec_soft(
    spec: &ArchSpec,
    seed: u64,
    x: &Tensor,
    targets: &Tensor,
    cfg: &TrainConfig,
) -> Result<(OnnxModel, History), ModelError> {
    train_fresh(spec, seed, |m, opts| {
        fit_targets(m, x, Targets::Soft(targets), cfg, opts)
    })
}

/// A fresh spec model from `seed`, trained by `train` with the spec in
/// its options.
fn train_fresh<'s>(
    spec: &'s ArchSpec,
    seed: u64,
    train: impl FnOnce(&mut OnnxModel, FitOptions<'s>) -> Result<History, ModelError>,
) -> Result<(OnnxModel, History), ModelError> {
    let mut m = OnnxModel::from_spec(spec, seed)?;
    let opts = FitOptions {
        spec: Some(spec),
        ..FitOptions::default()
    };
    let h = train(&mut m, opts)?;
    Ok((m, h))
}

/// Mixed into the run's seed for dropout masks, so they are independent of
/// the shuffle and augmentation draws.
const DROPOUT_STREAM: u64 = 0x6472_6f70_6f75_7400;

/// A seed for `(seed, a, b)` (SplitMix64 finaliser over a mix): the
/// per-epoch and per-step seeds of [`fit`] and of the loops built on its
/// pieces.
pub fn sub_seed(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        .wrapping_add(a.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(b.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The example order of epoch `epoch` (0-based).
pub(crate) fn epoch_order(cfg: &TrainConfig, n: usize, epoch: usize) -> Vec<usize> {
    shuffled_order(n, cfg.shuffle, sub_seed(cfg.seed, epoch as u64, 0))
}

/// What a run reports when batch `batch` of epoch `epoch` (both 0-based)
/// gave a loss that is not finite.
pub fn diverged(loss: f32, epoch: usize, batch: usize) -> String {
    format!(
        "training diverged: loss {loss} at epoch {}, batch {} (lower the learning rate)",
        epoch + 1,
        batch + 1
    )
}

/// `0..n`, shuffled by a generator seeded with `seed` when `shuffle` is set.
pub fn shuffled_order(n: usize, shuffle: bool, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    }
    order
}

/// How a run's `n` examples fall into batches and which learning rate each
/// step takes (schedule and warm-up of the [`TrainConfig`]): the step
/// arithmetic of [`fit`], shared with the loops built on its pieces
/// (aisec-harden's adversarial training).
#[derive(Debug, Clone, Copy)]
pub struct StepPlan<'c> {
    cfg: &'c TrainConfig,
    n: usize,
    /// Batches per epoch.
    pub batches: usize,
    total: usize,
    warmup: usize,
    base_lr: f32,
}

impl<'c> StepPlan<'c> {
    /// The plan of `n` examples under `cfg` (a validated config: batch
    /// size at least 1).
    pub fn new(cfg: &'c TrainConfig, n: usize) -> Self {
        let batches = n.div_ceil(cfg.batch_size.max(1));
        StepPlan {
            cfg,
            n,
            batches,
            total: batches * cfg.epochs,
            warmup: cfg.warmup_epochs * batches,
            base_lr: cfg.optimizer.lr(),
        }
    }

    /// The example indices of batch `b` (0-based) in an epoch's `order`.
    pub fn batch<'o>(&self, order: &'o [usize], b: usize) -> &'o [usize] {
        let bs = self.cfg.batch_size;
        let end = ((b + 1) * bs).min(self.n).min(order.len());
        order.get(b * bs..end).unwrap_or(&[])
    }

    /// The learning rate of batch `b` of epoch `epoch` (both 0-based).
    pub fn lr(&self, epoch: usize, b: usize) -> f32 {
        self.cfg.schedule.lr_at(
            self.base_lr,
            epoch * self.batches + b,
            self.total,
            self.batches,
            self.warmup,
        )
    }
}

/// Splits `d` into `(train, validation)` with `round(n * fraction)`
/// examples (at least one each) in the validation part, after a seeded
/// shuffle.
pub fn split_dataset(
    d: &Dataset,
    fraction: f32,
    seed: u64,
) -> Result<(Dataset, Dataset), ModelError> {
    let n = d.len();
    if !(fraction > 0.0 && fraction < 1.0) || n < 2 {
        return Err(ModelError::Invalid(
            "validation split needs a fraction in (0, 1) and at least 2 examples".into(),
        ));
    }
    let nv = ((n as f32 * fraction).round() as usize).clamp(1, n - 1);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(sub_seed(
        seed,
        u64::MAX,
        0x7661_6c69,
    )));
    let (v, t) = idx.split_at(nv);
    let pick = |ix: &[usize]| Dataset::new(gather(&d.x, ix), ix.iter().map(|&i| d.y[i]).collect());
    Ok((pick(t)?, pick(v)?))
}

/// Rows `idx` of `x` as a batch.
pub fn gather(x: &Tensor, idx: &[usize]) -> Tensor {
    let row = x.row_len();
    let mut data = Vec::with_capacity(idx.len() * row);
    for &i in idx {
        data.extend_from_slice(&x.data[i * row..(i + 1) * row]);
    }
    let mut shape = x.shape.clone();
    if let Some(b) = shape.first_mut() {
        *b = idx.len();
    }
    Tensor { shape, data }
}

/// Trains `model` on inputs `x` with `targets`, from scratch or from
/// `opts.resume`, and returns the per-epoch history.
pub fn fit_targets(
    model: &mut OnnxModel,
    x: &Tensor,
    targets: Targets,
    cfg: &TrainConfig,
    mut opts: FitOptions,
) -> Result<History, ModelError> {
    cfg.validate()?;
    let n = x.batch();
    match targets {
        Targets::Hard(y) if y.len() != n => {
            return Err(ModelError::Shape(format!(
                "{} labels for {n} examples",
                y.len()
            )))
        }
        Targets::Soft(t) if t.batch() != n => {
            return Err(ModelError::Shape(format!(
                "{} target rows for {n} examples",
                t.batch()
            )))
        }
        _ => {}
    }
    if n == 0 {
        return Err(ModelError::Invalid("no training examples".into()));
    }
    if x.data.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Invalid(
            "training inputs contain values that are not finite (NaN or infinity)".into(),
        ));
    }
    if let Targets::Soft(t) = targets {
        if t.data.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(ModelError::Invalid(
                "soft targets must be finite non-negative probabilities".into(),
            ));
        }
    }
    if cfg.augment.is_active() && x.shape.len() != 4 {
        return Err(ModelError::Shape(format!(
            "image augmentation needs [n, c, h, w] inputs, got {:?}",
            x.shape
        )));
    }
    let plan = StepPlan::new(cfg, n);
    let batches = plan.batches;
    let mut trainer = cfg.trainer_for(model);
    let mut hist = History::default();
    let (mut start_epoch, mut start_batch, mut carried) = (0, 0, (0.0f64, 0usize, 0.0f64));
    if let Some(ck) = opts.resume.take() {
        ck.restore(model, &mut trainer)?;
        start_epoch = ck.epochs_done;
        start_batch = ck.batches_done;
        carried = (ck.partial_loss_sum, ck.batches_done, ck.partial_seconds);
        hist = ck.history;
        hist.cancelled = false;
    }
    if start_batch >= batches {
        // The checkpoint's partial epoch used a larger data set; start the
        // next epoch cleanly.
        start_batch = 0;
        carried = (0.0, 0, 0.0);
    }
    // Batch norm: train a twin graph that normalises by batch statistics,
    // update the running averages from them, copy weights back to `model`
    // whenever it is looked at (validation, checkpoints, the end).
    // Dropout: the same twin, with a fresh mask seed every step.
    let sites = opts.spec.map(|s| s.bn_sites()).unwrap_or_default();
    let mut twin = match opts.spec {
        Some(spec) if spec.has_train_mode() => Some(OnnxModel::spec_train_twin(spec, model)?),
        _ => None,
    };
    let probes: Vec<(String, usize)> = sites
        .iter()
        .flat_map(|s| [(s.stats_node(), 1), (s.stats_node(), 2)])
        .collect();
    let spec = opts.spec;
    let mut emit = |e: &FitEvent| {
        if let Some(cb) = opts.progress.as_mut() {
            cb(e);
        }
    };
    let cancelled = || opts.cancel.is_some_and(|c| c.load(Ordering::SeqCst));
    let policy = opts.checkpoint.clone();
    for epoch in start_epoch..cfg.epochs {
        let order = epoch_order(cfg, n, epoch);
        let t0 = Instant::now();
        let (mut loss_sum, mut done, prior_secs) = if epoch == start_epoch {
            carried
        } else {
            (0.0, 0, 0.0)
        };
        let first = if epoch == start_epoch { start_batch } else { 0 };
        let mut lr = trainer.lr();
        for b in first..batches {
            let idx = plan.batch(&order, b);
            let mut xb = gather(x, idx);
            if cfg.augment.is_active() {
                let mut rng = rand::rngs::StdRng::seed_from_u64(sub_seed(
                    cfg.seed,
                    epoch as u64,
                    b as u64 + 1,
                ));
                cfg.augment.apply(&mut xb, &mut rng)?;
            }
            let loss = match targets {
                Targets::Hard(y) => Loss::CrossEntropy {
                    labels: idx.iter().map(|&i| y[i]).collect(),
                },
                Targets::Soft(t) => Loss::SoftCrossEntropy {
                    targets: gather(t, idx).data,
                },
            };
            lr = plan.lr(epoch, b);
            trainer.set_lr(lr);
            let l = match twin.as_mut() {
                None => trainer.step_loss(model, &xb, &loss)?,
                Some(tm) => {
                    tm.set_dropout_seed(sub_seed(
                        cfg.seed ^ DROPOUT_STREAM,
                        epoch as u64,
                        b as u64,
                    ));
                    let (vals, grads, stats) = tm.weight_grads_probed(&xb, &loss, &probes)?;
                    trainer.apply(tm, &vals, grads)?;
                    update_running_stats(tm, &sites, &stats, xb.batch())?;
                    vals.iter().sum::<f32>() / vals.len().max(1) as f32
                }
            };
            if !l.is_finite() {
                return Err(ModelError::Invalid(diverged(l, epoch, b)));
            }
            loss_sum += f64::from(l);
            done += 1;
            hist.steps += 1;
            emit(&FitEvent::Batch {
                epoch: epoch + 1,
                batch: b + 1,
                batches,
                loss: l,
            });
            if cancelled() && b + 1 < batches {
                hist.cancelled = true;
                sync(twin.as_ref(), model)?;
                if let Some(p) = &policy {
                    let pos = (
                        epoch,
                        b + 1,
                        loss_sum,
                        prior_secs + t0.elapsed().as_secs_f64(),
                    );
                    p.write(Checkpoint::capture(model, &trainer, cfg, &hist, spec, pos))?;
                    emit(&FitEvent::Checkpoint(&p.path));
                    hist.checkpoint = Some(p.path.clone());
                }
                return Ok(hist);
            }
        }
        let seconds = prior_secs + t0.elapsed().as_secs_f64();
        sync(twin.as_ref(), model)?;
        let (val_loss, val_accuracy) = match opts.val {
            Some(v) if !v.is_empty() => {
                let (l, a) = evaluate(model, v, cfg.batch_size.max(256))?;
                (Some(l), Some(a))
            }
            _ => (None, None),
        };
        hist.epochs.push(EpochStats {
            epoch: epoch + 1,
            train_loss: (loss_sum / done.max(1) as f64) as f32,
            val_loss,
            val_accuracy,
            lr,
            seconds,
        });
        if let Some(s) = hist.epochs.last() {
            emit(&FitEvent::Epoch(s));
        }
        let last = epoch + 1 == cfg.epochs;
        let stop = cancelled();
        if let Some(p) = &policy {
            if p.due(epoch, cfg.epochs, stop) {
                hist.cancelled = stop && !last;
                let pos = (epoch + 1, 0, 0.0, 0.0);
                p.write(Checkpoint::capture(model, &trainer, cfg, &hist, spec, pos))?;
                emit(&FitEvent::Checkpoint(&p.path));
                hist.checkpoint = Some(p.path.clone());
            }
        }
        if stop && !last {
            hist.cancelled = true;
            return Ok(hist);
        }
    }
    Ok(hist)
}

/// Copies every weight of the training twin (batch statistics, dropout:
/// [`OnnxModel::spec_train_twin`]) into the inference model; nothing
/// without a twin.
pub fn sync(twin: Option<&OnnxModel>, model: &mut OnnxModel) -> Result<(), ModelError> {
    if let Some(t) = twin {
        for n in t.weight_names() {
            if let Some(w) = t.weight(&n) {
                model.set_weight(&n, &w)?;
            }
        }
    }
    Ok(())
}

/// Exponential running averages of batch-norm statistics, as PyTorch keeps
/// them: `r = (1 - m) r + m s`, with the unbiased batch variance.
fn update_running_stats(
    model: &mut OnnxModel,
    sites: &[crate::spec::BnSite],
    stats: &[Option<Tensor>],
    batch: usize,
) -> Result<(), ModelError> {
    for (k, site) in sites.iter().enumerate() {
        let (Some(Some(mean)), Some(Some(var))) = (stats.get(2 * k), stats.get(2 * k + 1)) else {
            return Err(ModelError::Invalid(format!(
                "batch statistics of '{}' were not computed",
                site.prefix
            )));
        };
        let cnt = (batch * site.spatial) as f32;
        let unbias = if cnt > 1.0 { cnt / (cnt - 1.0) } else { 1.0 };
        let mo = site.momentum;
        for (name, s, f) in [
            (format!("{}.running_mean", site.prefix), mean, 1.0),
            (format!("{}.running_var", site.prefix), var, unbias),
        ] {
            let mut r = model
                .weight(&name)
                .ok_or_else(|| ModelError::Invalid(format!("no weight '{name}'")))?;
            if r.data.len() != s.data.len() {
                return Err(ModelError::Shape(format!("statistics of '{name}'")));
            }
            r.data
                .iter_mut()
                .zip(&s.data)
                .for_each(|(r, &v)| *r = (1.0 - mo) * *r + mo * v * f);
            model.set_weight(&name, &r)?;
        }
    }
    Ok(())
}

/// Mean cross-entropy and accuracy of `model` on `data`, in batches.
pub fn evaluate<C: Classifier + ?Sized>(
    model: &C,
    data: &Dataset,
    batch: usize,
) -> Result<(f32, f32), ModelError> {
    let mut total = 0.0f64;
    let mut correct = 0usize;
    for b in data.batches(batch.max(1)) {
        let z = model.logits(&b.x)?;
        correct += (0..z.batch())
            .filter(|&i| crate::classifier::argmax(z.row(i)) == b.y[i])
            .count();
        let (vals, _) = loss_and_grad(&z, &Loss::CrossEntropy { labels: b.y })?;
        total += vals.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    let n = data.len().max(1) as f64;
    Ok(((total / n) as f32, (correct as f64 / n) as f32))
}

/// Softmax probabilities `[n, classes]` of a batch, computed in batches of
/// `batch` (confidence vectors for membership inference, soft targets for
/// distillation).
pub fn probabilities<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    batch: usize,
) -> Result<Tensor, ModelError> {
    let n = x.batch();
    let batch = batch.max(1);
    let mut data = Vec::new();
    let mut classes = 0;
    for s in (0..n).step_by(batch) {
        let idx: Vec<usize> = (s..(s + batch).min(n)).collect();
        let z = model.logits(&gather(x, &idx))?;
        classes = z.row_len();
        for i in 0..z.batch() {
            let r = z.row(i);
            let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = r.iter().map(|v| (v - m).exp()).collect();
            let t: f32 = e.iter().sum();
            data.extend(e.iter().map(|v| v / t));
        }
    }
    Tensor::new(vec![n, classes], data)
}

/// Cross-entropy of every example (the signal of loss-threshold membership
/// inference, Yeom et al. 2018), in batches.
pub fn per_example_losses<C: Classifier + ?Sized>(
    model: &C,
    data: &Dataset,
    batch: usize,
) -> Result<Vec<f32>, ModelError> {
    let mut out = Vec::with_capacity(data.len());
    for b in data.batches(batch.max(1)) {
        let z = model.logits(&b.x)?;
        let (vals, _) = loss_and_grad(&z, &Loss::CrossEntropy { labels: b.y })?;
        out.extend(vals);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_their_formulas() {
        let c = Schedule::Constant;
        assert_eq!(c.lr_at(0.1, 0, 100, 10, 0), 0.1);
        // Warm-up is linear up to the base rate.
        assert!((c.lr_at(0.1, 4, 100, 10, 10) - 0.05).abs() < 1e-7);
        assert_eq!(c.lr_at(0.1, 10, 100, 10, 10), 0.1);
        let s = Schedule::Step {
            every: 3,
            gamma: 0.5,
        };
        assert_eq!(s.lr_at(1.0, 29, 100, 10, 0), 1.0);
        assert_eq!(s.lr_at(1.0, 30, 100, 10, 0), 0.5);
        assert_eq!(s.lr_at(1.0, 65, 100, 10, 0), 0.25);
        let k = Schedule::Cosine { min_lr: 0.1 };
        assert!((k.lr_at(1.0, 0, 100, 10, 0) - 1.0).abs() < 1e-6);
        assert!((k.lr_at(1.0, 50, 100, 10, 0) - 0.55).abs() < 1e-6);
        assert!((k.lr_at(1.0, 100, 100, 10, 0) - 0.1).abs() < 1e-6);
        assert_eq!(
            Schedule::parse("step:5:0.2").unwrap(),
            Schedule::Step {
                every: 5,
                gamma: 0.2
            }
        );
        assert_eq!(
            Schedule::parse("cosine").unwrap(),
            Schedule::Cosine { min_lr: 0.0 }
        );
        assert!(Schedule::parse("step:0").is_err());
        assert!(Schedule::parse("linear").is_err());
    }

    #[test]
    fn crop_and_flip_move_pixels_as_specified() {
        let a = Augment::parse("crop:1,flip").unwrap();
        assert_eq!(
            a,
            Augment {
                crop_padding: 1,
                flip: true
            }
        );
        assert!(Augment::parse("rotate").is_err());
        // Flip only.
        let f = Augment {
            crop_padding: 0,
            flip: true,
        };
        let x0 = Tensor::new(vec![64, 1, 1, 3], [1.0, 2.0, 3.0].repeat(64)).unwrap();
        let mut x = x0.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        f.apply(&mut x, &mut rng).unwrap();
        let flipped = (0..64).filter(|&i| x.row(i) == [3.0, 2.0, 1.0]).count();
        let same = (0..64).filter(|&i| x.row(i) == [1.0, 2.0, 3.0]).count();
        assert_eq!(flipped + same, 64);
        assert!(flipped > 16 && same > 16, "{flipped} flipped of 64");
        // Crop only: every output is the input shifted by (dy, dx) in
        // [-1, 1]^2 with zeros shifted in.
        let c = Augment {
            crop_padding: 1,
            flip: false,
        };
        let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut x = Tensor::new(vec![50, 1, 3, 3], img.repeat(50)).unwrap();
        c.apply(&mut x, &mut rng).unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..50 {
            let r = x.row(i);
            let ok = (-1..=1isize).any(|dy| {
                (-1..=1isize).any(|dx| {
                    let want: Vec<f32> = (0..9)
                        .map(|k| {
                            let (yy, xx) = (k as isize / 3 + dy, k as isize % 3 + dx);
                            if (0..3).contains(&yy) && (0..3).contains(&xx) {
                                img[(yy * 3 + xx) as usize]
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    if r == want.as_slice() {
                        seen.insert((dy, dx));
                        true
                    } else {
                        false
                    }
                })
            });
            assert!(ok, "row {i}: {r:?}");
        }
        assert!(seen.len() >= 5, "only {} distinct shifts", seen.len());
        let mut flat = Tensor::zeros(vec![2, 9]);
        assert!(c.apply(&mut flat, &mut rng).is_err());
    }

    #[test]
    fn shuffle_is_a_seeded_permutation_per_epoch() {
        let cfg = TrainConfig {
            seed: 7,
            ..TrainConfig::default()
        };
        let a = epoch_order(&cfg, 100, 0);
        let b = epoch_order(&cfg, 100, 1);
        assert_eq!(a, epoch_order(&cfg, 100, 0));
        assert_ne!(a, b);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        let fixed = TrainConfig {
            shuffle: false,
            ..cfg
        };
        assert_eq!(epoch_order(&fixed, 5, 3), vec![0, 1, 2, 3, 4]);
    }
}
