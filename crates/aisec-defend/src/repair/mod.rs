//! Removing a backdoor from a model with a small clean sample.
//!
//! - [`fine_prune`]: fine-pruning (Liu, Dolan-Gavitt & Garg, "Fine-Pruning:
//!   Defending Against Backdooring Attacks on Deep Neural Networks", RAID
//!   2018). Units of the penultimate layer (the inputs of the final linear
//!   layer) are ranked by their mean activation on clean data; the most
//!   dormant are pruned one slice at a time while clean accuracy on the
//!   pruning sample stays within `max_prune_drop` of the original (the
//!   paper prunes until accuracy falls by a few points; BackdoorBench's
//!   default stops at 90 % of the original accuracy), then the pruned model
//!   is fine-tuned on the clean data with the pruned units held at zero.
//!   Liu et al. prune the channels of the last convolution; here the
//!   penultimate units are pruned, which is the same thing for networks
//!   ending in global pooling and a classifier, and the hidden units for
//!   networks ending in dense layers.
//! - [`unlearn`]: Neural Cleanse's mitigation by unlearning (Wang et al.
//!   2019, section VI.C): fine-tune on the clean data with a share (20 % in
//!   the paper) stamped with the reversed trigger and kept at their true
//!   labels, so the model learns that the trigger means nothing. Two
//!   additions to the paper: the stamped share is drawn afresh every epoch
//!   (every clean example is seen with and without the trigger), and each
//!   stamp scales the reversed mask by a random gain in `[1,
//!   unlearn_gain]`, because the reversed mask is a soft, smaller
//!   approximation of the real trigger: unlearning only it left a third of
//!   the attack in place on the MNIST CNN (bench/backdoor/RESULTS.md).
//!
//! Both return the repaired [`OnnxModel`] in place; it is written back as
//! ONNX by the caller ([`OnnxModel::save_onnx`]).

use std::sync::atomic::{AtomicBool, Ordering};

use aisec_core::{Finding, Location, Severity};
use aisec_model::classifier::argmax;
use aisec_model::data::Dataset;
use aisec_model::fit::{evaluate, gather};
use aisec_model::train::{Optimizer, Trainer};
use aisec_model::{Classifier, Loss, OnnxModel, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::rules;
use crate::trigger::MaskTrigger;
use crate::DefendError;

/// The final linear layer: the weight whose rows (or columns) are the
/// classes, and how it is laid out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Head {
    /// Name of the weight.
    pub weight: String,
    /// Penultimate units (the layer's inputs).
    pub units: usize,
    /// `[classes, units]` (Gemm with `transB`, spec dense) rather than
    /// `[units, classes]` (MatMul).
    pub out_major: bool,
}

/// Finds the final linear layer of `model`: a 2-D weight with one side
/// equal to the number of classes whose gradient under the logit of class
/// 0 is non-zero only in class 0's row or column (only the layer that
/// makes the logits has that property).
pub fn find_head(model: &OnnxModel, x: &Tensor) -> Result<Head, DefendError> {
    let k = model.num_classes();
    let probe = gather(x, &[0]);
    let (_, grads) = model.weight_grads(&probe, &Loss::Logit { classes: vec![0] })?;
    let mut found = None;
    for (name, g) in &grads {
        let [a, b] = g.shape[..] else { continue };
        let nz = |v: &f32| *v != 0.0;
        if a == k && b > 0 {
            let rest_zero = !g.data[b..].iter().any(nz);
            if rest_zero && g.data[..b].iter().any(nz) {
                found = Some(Head {
                    weight: name.clone(),
                    units: b,
                    out_major: true,
                });
            }
        }
        if b == k && a > 0 && found.as_ref().is_none_or(|h| h.weight != *name) {
            let others_zero = (0..a).all(|r| !g.data[r * b + 1..(r + 1) * b].iter().any(nz));
            let col: Vec<f32> = (0..a).map(|r| g.data[r * b]).collect();
            if others_zero && col.iter().any(nz) {
                found = Some(Head {
                    weight: name.clone(),
                    units: a,
                    out_major: false,
                });
            }
        }
    }
    found.ok_or_else(|| {
        DefendError::Invalid(
            "no final linear layer found (a 2-D weight feeding the logits directly)".into(),
        )
    })
}

/// Mean activation of every penultimate unit over `x`: the gradient of the
/// summed class-0 logit with respect to class 0's row of the head weight is
/// the sum of the layer's inputs (`dz_0/dW[0, j] = a_j`), so one backward
/// pass per batch gives the activations without reading inside the graph.
pub fn mean_activations(
    model: &OnnxModel,
    head: &Head,
    x: &Tensor,
    batch: usize,
) -> Result<Vec<f32>, DefendError> {
    let n = x.batch();
    let mut sum = vec![0.0f64; head.units];
    let k = model.num_classes();
    for s in (0..n).step_by(batch.max(1)) {
        let idx: Vec<usize> = (s..(s + batch.max(1)).min(n)).collect();
        let xb = gather(x, &idx);
        let (_, grads) = model.weight_grads(
            &xb,
            &Loss::Logit {
                classes: vec![0; idx.len()],
            },
        )?;
        let g = grads
            .iter()
            .find(|(nm, _)| *nm == head.weight)
            .map(|(_, g)| g)
            .ok_or_else(|| DefendError::Invalid(format!("no gradient for {}", head.weight)))?;
        for (j, s) in sum.iter_mut().enumerate() {
            let v = if head.out_major {
                g.data[j]
            } else {
                g.data[j * k]
            };
            *s += f64::from(v);
        }
    }
    Ok(sum.iter().map(|s| (s / n.max(1) as f64) as f32).collect())
}

/// Settings of the repairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepairConfig {
    /// Fine-tuning epochs over the clean data.
    pub epochs: usize,
    /// Fine-tuning batch size.
    pub batch: usize,
    /// Adam learning rate for fine-tuning.
    pub lr: f32,
    /// Fine-pruning: largest fall in clean accuracy (absolute) pruning may
    /// cause before fine-tuning.
    pub max_prune_drop: f32,
    /// Fine-pruning: largest share of units pruned.
    pub max_prune_share: f32,
    /// Unlearning: share of the clean examples stamped with a reversed
    /// trigger (at their true labels), drawn afresh every epoch.
    pub unlearn_share: f32,
    /// Unlearning: every stamp uses the reversed mask scaled by a gain
    /// drawn uniformly from `[1, unlearn_gain]` (clipped to 1), so the model
    /// unlearns a family of triggers around the soft reversed one rather
    /// than that one mask; 1 stamps the reversed trigger as it is.
    pub unlearn_gain: f32,
    /// Seed of shuffling and stamping.
    pub seed: u64,
}

impl Default for RepairConfig {
    fn default() -> Self {
        RepairConfig {
            epochs: 10,
            batch: 32,
            lr: 1e-3,
            max_prune_drop: 0.1,
            max_prune_share: 0.95,
            unlearn_share: 0.2,
            unlearn_gain: 3.0,
            seed: 0,
        }
    }
}

impl RepairConfig {
    fn validate(&self) -> Result<(), DefendError> {
        let bad = |m: &str| Err(DefendError::Invalid(format!("repair: {m}")));
        if self.batch == 0 {
            return bad("batch must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("learning rate must be positive");
        }
        let share = |v: f32| (0.0..=1.0).contains(&v);
        if !(share(self.max_prune_drop) && share(self.max_prune_share) && share(self.unlearn_share))
        {
            return bad("drops and shares must be in [0, 1]");
        }
        if !(self.unlearn_gain.is_finite() && (1.0..=100.0).contains(&self.unlearn_gain)) {
            return bad("unlearning gain must be in [1, 100]");
        }
        Ok(())
    }
}

/// Triggered test inputs with their true labels, and the attacker's target.
#[derive(Debug, Clone, Copy)]
pub struct Triggered<'a> {
    /// Inputs carrying the trigger.
    pub x: &'a Tensor,
    /// Their true labels.
    pub y: &'a [usize],
    /// The class the trigger sends inputs to.
    pub target: usize,
}

/// The numbers of BackdoorBench's tables: clean accuracy, attack success
/// rate and accuracy on triggered inputs with their true labels (both over
/// triggered inputs whose true class is not the target).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BackdoorScore {
    /// Accuracy on clean inputs.
    pub clean_accuracy: f32,
    /// Share of triggered inputs sent to the target.
    pub asr: Option<f32>,
    /// Share of triggered inputs still given their true label.
    pub poisoned_accuracy: Option<f32>,
}

/// Scores `model` on clean data and, when given, triggered inputs.
pub fn score<C: Classifier + ?Sized>(
    model: &C,
    clean: &Dataset,
    triggered: Option<Triggered>,
) -> Result<BackdoorScore, DefendError> {
    let (_, clean_accuracy) = evaluate(model, clean, 256)?;
    let (asr, poisoned_accuracy) = match triggered {
        None => (None, None),
        Some(t) => {
            if t.y.len() != t.x.batch() {
                return Err(DefendError::Invalid(format!(
                    "{} labels for {} triggered inputs",
                    t.y.len(),
                    t.x.batch()
                )));
            }
            let idx: Vec<usize> = (0..t.y.len()).filter(|&i| t.y[i] != t.target).collect();
            if idx.is_empty() {
                return Err(DefendError::Invalid(
                    "every triggered input is of the target class".into(),
                ));
            }
            let mut hit = 0usize;
            let mut right = 0usize;
            for chunk in idx.chunks(256) {
                let z = model.logits(&gather(t.x, chunk))?;
                for (r, &i) in chunk.iter().enumerate() {
                    let p = argmax(z.row(r));
                    hit += usize::from(p == t.target);
                    right += usize::from(p == t.y[i]);
                }
            }
            let n = idx.len() as f32;
            (Some(hit as f32 / n), Some(right as f32 / n))
        }
    };
    Ok(BackdoorScore {
        clean_accuracy,
        asr,
        poisoned_accuracy,
    })
}

/// What fine-pruning did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// The head that was pruned.
    pub head: Head,
    /// Pruned units, most dormant first.
    pub pruned: Vec<usize>,
    /// Clean accuracy on the pruning sample before pruning.
    pub accuracy_before: f32,
    /// Clean accuracy on the pruning sample after pruning, before fine-tuning.
    pub accuracy_pruned: f32,
}

fn zero_units(model: &mut OnnxModel, head: &Head, units: &[usize]) -> Result<(), DefendError> {
    let mut w = model
        .weight(&head.weight)
        .ok_or_else(|| DefendError::Invalid(format!("no weight {}", head.weight)))?;
    let (a, b) = (w.shape[0], w.shape[1]);
    for &j in units {
        if head.out_major {
            (0..a).for_each(|r| w.data[r * b + j] = 0.0);
        } else {
            w.data[j * b..(j + 1) * b].iter_mut().for_each(|v| *v = 0.0);
        }
    }
    model.set_weight(&head.weight, &w)?;
    Ok(())
}

/// Fine-tunes `model` on `(x, y)` for the configured epochs with Adam,
/// keeping batch-norm statistics frozen and, after every step, the pruned
/// units at zero.
fn fine_tune(
    model: &mut OnnxModel,
    x: &Tensor,
    y: &[usize],
    cfg: &RepairConfig,
    pruned: Option<(&Head, &[usize])>,
    cancel: Option<&AtomicBool>,
) -> Result<(), DefendError> {
    let mut tuner = Tuner::new(model, cfg, pruned, cancel);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x6675_6e65);
    for _ in 0..cfg.epochs {
        tuner.epoch(model, x, y, &mut rng)?;
    }
    Ok(())
}

/// The fine-tuning of fine-pruning and unlearning: Adam with batch-norm
/// statistics frozen, the configured batch size, pruned units held at
/// zero after every step, and the stop flag checked before each.
struct Tuner<'a> {
    tr: Trainer,
    batch: usize,
    pruned: Option<(&'a Head, &'a [usize])>,
    cancel: Option<&'a AtomicBool>,
}

impl<'a> Tuner<'a> {
    fn new(
        model: &OnnxModel,
        cfg: &RepairConfig,
        pruned: Option<(&'a Head, &'a [usize])>,
        cancel: Option<&'a AtomicBool>,
    ) -> Tuner<'a> {
        let mut tr = Trainer::new(Optimizer::adam(cfg.lr));
        tr.freeze(
            model
                .weight_names()
                .into_iter()
                .filter(|n| n.contains("running_") || n.ends_with("num_batches_tracked")),
        );
        Tuner {
            tr,
            batch: cfg.batch,
            pruned,
            cancel,
        }
    }

    /// One shuffled pass over `(x, y)`.
    fn epoch(
        &mut self,
        model: &mut OnnxModel,
        x: &Tensor,
        y: &[usize],
        rng: &mut rand::rngs::StdRng,
    ) -> Result<(), DefendError> {
        let mut order: Vec<usize> = (0..x.batch()).collect();
        order.shuffle(rng);
        for chunk in order.chunks(self.batch) {
            if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(DefendError::Cancelled);
            }
            let labels: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            self.tr.step(model, &gather(x, chunk), &labels)?;
            if let Some((h, units)) = self.pruned {
                zero_units(model, h, units)?;
            }
        }
        Ok(())
    }
}

/// Fine-pruning on the clean sample `clean` (pruning decisions and
/// fine-tuning both use it; score the result on other data).
pub fn fine_prune(
    model: &mut OnnxModel,
    clean: &Dataset,
    cfg: &RepairConfig,
    cancel: Option<&AtomicBool>,
) -> Result<PruneReport, DefendError> {
    cfg.validate()?;
    if clean.len() < 2 {
        return Err(DefendError::Invalid(
            "fine-pruning needs a clean sample of at least 2 inputs".into(),
        ));
    }
    let head = find_head(model, &clean.x)?;
    let act = mean_activations(model, &head, &clean.x, 128)?;
    let mut order: Vec<usize> = (0..head.units).collect();
    order.sort_by(|&a, &b| act[a].total_cmp(&act[b]).then(a.cmp(&b)));
    let (_, acc0) = evaluate(&*model, clean, 256)?;
    let max_units = ((head.units as f32 * cfg.max_prune_share) as usize).min(head.units - 1);
    let slice = (head.units / 50).max(1);
    let mut pruned: Vec<usize> = Vec::new();
    let mut acc_pruned = acc0;
    while pruned.len() < max_units {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(DefendError::Cancelled);
        }
        let next: Vec<usize> = order
            .iter()
            .skip(pruned.len())
            .take(slice.min(max_units - pruned.len()))
            .copied()
            .collect();
        let before_slice = model.weight(&head.weight);
        zero_units(model, &head, &next)?;
        let (_, acc) = evaluate(&*model, clean, 256)?;
        if acc0 - acc > cfg.max_prune_drop {
            // Undo the last slice: it cost too much.
            if let Some(w) = before_slice {
                model.set_weight(&head.weight, &w)?;
            }
            break;
        }
        acc_pruned = acc;
        pruned.extend(next);
    }
    fine_tune(
        model,
        &clean.x,
        &clean.y,
        cfg,
        Some((&head, &pruned)),
        cancel,
    )?;
    Ok(PruneReport {
        head,
        pruned,
        accuracy_before: acc0,
        accuracy_pruned: acc_pruned,
    })
}

/// Unlearning with reversed triggers: fine-tunes on `clean` with
/// `unlearn_share` of it stamped (triggers taken in turn) at true labels.
/// Returns how many examples were stamped.
pub fn unlearn(
    model: &mut OnnxModel,
    clean: &Dataset,
    triggers: &[&MaskTrigger],
    cfg: &RepairConfig,
    cancel: Option<&AtomicBool>,
) -> Result<usize, DefendError> {
    cfg.validate()?;
    if triggers.is_empty() {
        return Err(DefendError::Invalid(
            "unlearning needs at least one reversed trigger (no class was flagged)".into(),
        ));
    }
    if clean.is_empty() {
        return Err(DefendError::Invalid("unlearning needs clean data".into()));
    }
    let want = c_h_w(triggers[0]);
    if triggers.iter().any(|t| c_h_w(t) != want) || clean.x.row_len() != want {
        return Err(DefendError::Invalid(
            "trigger does not fit the inputs".into(),
        ));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x756e_6c65);
    let n = ((clean.len() as f32 * cfg.unlearn_share).round() as usize).min(clean.len());
    let mut idx: Vec<usize> = (0..clean.len()).collect();
    let mut tuner = Tuner::new(model, cfg, None, cancel);
    for _ in 0..cfg.epochs {
        // A fresh stamped share every epoch, each stamp with its own gain.
        idx.shuffle(&mut rng);
        let mut x = clean.x.clone();
        for (k, &i) in idx.iter().take(n).enumerate() {
            let t = triggers[k % triggers.len()];
            let g = if cfg.unlearn_gain > 1.0 {
                rng.gen_range(1.0..=cfg.unlearn_gain)
            } else {
                1.0
            };
            t.stamp_row_gain(x.row_mut(i), g);
        }
        tuner.epoch(model, &x, &clean.y, &mut rng)?;
    }
    Ok(n)
}

fn c_h_w(t: &MaskTrigger) -> usize {
    t.c * t.h * t.w
}

/// The finding of a repair: info when the attack success rate fell under
/// 10 % within `max_drop` of clean accuracy, otherwise
/// [`rules::BACKDOOR_SURVIVES_REPAIR`] with severity from the remaining
/// attack success rate (critical at 50 % and above, high at 10 %), or
/// medium when only the accuracy cost is too high.
pub fn finding(
    method: &str,
    before: &BackdoorScore,
    after: &BackdoorScore,
    max_drop: f32,
    subject: &str,
) -> Finding {
    let pct = |v: Option<f32>| v.map_or("n/a".to_string(), |v| format!("{:.1} %", 100.0 * v));
    let evidence = format!(
        "{method}: clean accuracy {:.1} % -> {:.1} %, attack success rate {} -> {}, accuracy on triggered inputs {} -> {}",
        100.0 * before.clean_accuracy,
        100.0 * after.clean_accuracy,
        pct(before.asr),
        pct(after.asr),
        pct(before.poisoned_accuracy),
        pct(after.poisoned_accuracy)
    );
    let drop = before.clean_accuracy - after.clean_accuracy;
    let mut f =
        rules::BACKDOOR_SURVIVES_REPAIR.finding(Location::path(subject.to_string()), evidence);
    f = match after.asr {
        Some(a) if a >= 0.5 => f.severity(Severity::Critical),
        Some(a) if a >= 0.1 => f.severity(Severity::High),
        _ if drop > max_drop => f
            .severity(Severity::Medium)
            .title("Backdoor repair cost more clean accuracy than allowed"),
        Some(_) => f
            .severity(Severity::Info)
            .title("Backdoor removed by the repair"),
        None => f
            .severity(Severity::Info)
            .title("Model repaired (no triggered inputs given to measure the attack)"),
    };
    f = f
        .metric("method", method)
        .metric("clean_accuracy_before", r4(before.clean_accuracy))
        .metric("clean_accuracy_after", r4(after.clean_accuracy));
    if let (Some(b), Some(a)) = (before.asr, after.asr) {
        f = f.metric("asr_before", r4(b)).metric("asr_after", r4(a));
    }
    f
}

fn r4(v: f32) -> f64 {
    (f64::from(v) * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests;
