//! Dataset inspection: which training examples look poisoned?
//!
//! Each method gives every example a score (higher is more suspicious) and
//! a flag, from the penultimate activations of a model trained on the data
//! (read with [`aisec_model::OnnxModel::forward_at`]) or from per-example
//! losses:
//!
//! * [`activation_clustering`] (Chen et al. 2018, "Detecting Backdoor
//!   Attacks on Deep Neural Networks by Activation Clustering"): per class,
//!   reduce the activations to a few dimensions, split them with 2-means,
//!   and flag the smaller cluster when it holds under 35 % of the class
//!   (the paper's relative-size criterion). The paper reduces with ICA;
//!   this uses PCA (ART offers both), top components by power iteration.
//! * [`spectral_signatures`] (Tran, Li & Madry 2018, "Spectral Signatures
//!   in Backdoor Attacks"): per class, score each example by its squared
//!   projection on the top singular vector of the centred activations and
//!   flag the top `1.5 * expected rate` of the class.
//! * [`early_loss_isolation`] (Li et al. 2021, "Anti-Backdoor Learning:
//!   Training Clean Models on Poisoned Data"): backdoor examples are learnt
//!   much faster than clean ones, so after a short training run their loss
//!   is the lowest; flag the lowest-loss fraction. ([`early_losses`] trains
//!   that short run with aisec's fit loop; ABL's local gradient ascent is
//!   not used.)
//!
//! [`score_against`] turns flags and scores into precision, recall and
//! ROC AUC against the ground-truth poisoned indices.

mod linalg;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use aisec_model::data::Dataset;
use aisec_model::fit::{fit, per_example_losses, FitOptions, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::{ModelError, OnnxModel, Tensor};

pub use linalg::{kmeans2, top_components};

/// Errors of dataset inspection.
#[derive(Debug, thiserror::Error)]
pub enum DataDefenceError {
    /// Inputs do not fit together.
    #[error("data inspection: {0}")]
    Invalid(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One method's verdict on every example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataScores {
    /// Method name (`activation-clustering`, `spectral-signatures`,
    /// `early-loss`).
    pub method: String,
    /// Suspicion per example (higher is more suspicious; comparable
    /// within a method only).
    pub scores: Vec<f32>,
    /// Examples the method flags.
    pub flagged: Vec<bool>,
    /// Per-class notes (cluster sizes, flagged counts).
    pub classes: Vec<ClassNote>,
}

/// What a method found in one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassNote {
    /// The class.
    pub class: usize,
    /// Examples of the class.
    pub examples: usize,
    /// Examples flagged in it.
    pub flagged: usize,
    /// Activation clustering: share of the class in the smaller cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub small_cluster: Option<f32>,
}

impl DataScores {
    /// Indices ordered from most to least suspicious (flagged first, then
    /// by score; ties by index).
    pub fn ranked(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.scores.len()).collect();
        idx.sort_by(|&a, &b| {
            self.flagged[b]
                .cmp(&self.flagged[a])
                .then(self.scores[b].total_cmp(&self.scores[a]))
                .then(a.cmp(&b))
        });
        idx
    }

    /// Number of flagged examples.
    pub fn flagged_count(&self) -> usize {
        self.flagged.iter().filter(|&&f| f).count()
    }
}

/// Rows of `features` per class (indices into the data set).
fn by_class(labels: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        if let Some(v) = out.get_mut(y) {
            v.push(i);
        }
    }
    out
}

fn check(features: &Tensor, labels: &[usize], classes: usize) -> Result<(), DataDefenceError> {
    if features.shape.len() != 2 || features.batch() != labels.len() {
        return Err(DataDefenceError::Invalid(format!(
            "features {:?} do not pair with {} labels (need [n, d])",
            features.shape,
            labels.len()
        )));
    }
    if let Some(&y) = labels.iter().find(|&&y| y >= classes) {
        return Err(DataDefenceError::Invalid(format!(
            "label {y} is not one of {classes} classes"
        )));
    }
    if features.data.iter().any(|v| !v.is_finite()) {
        return Err(DataDefenceError::Invalid(
            "features hold NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// Settings of [`activation_clustering`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AcConfig {
    /// Dimensions kept before clustering (the paper uses 10).
    pub dims: usize,
    /// A cluster holding less than this share of its class is flagged
    /// (the paper and ART use 0.35).
    pub size_threshold: f32,
    /// Seed of the k-means initialisation.
    pub seed: u64,
}

impl Default for AcConfig {
    fn default() -> Self {
        AcConfig {
            dims: 10,
            size_threshold: 0.35,
            seed: 0,
        }
    }
}

/// Activation clustering (Chen et al. 2018). Scores: `1 - share of the
/// class in the example's cluster`, plus a small term that ranks examples
/// nearer their own cluster's centre first.
pub fn activation_clustering(
    features: &Tensor,
    labels: &[usize],
    classes: usize,
    cfg: &AcConfig,
) -> Result<DataScores, DataDefenceError> {
    check(features, labels, classes)?;
    let dims = cfg.dims.min(features.row_len()).max(1);
    let method = "activation-clustering";
    let found = per_class(
        method,
        features,
        labels,
        classes,
        (4, dims, cfg.seed),
        |v, scores, flagged| {
            let (rows, reduced, k) = (v.rows, v.proj, v.k);
            let (assign, centres) = kmeans2(reduced, rows.len(), k, cfg.seed ^ v.class as u64);
            let size1 = assign.iter().filter(|&&a| a == 1).count();
            let sizes = [rows.len() - size1, size1];
            let small = usize::from(sizes[1] < sizes[0]);
            let share = sizes[small] as f32 / rows.len() as f32;
            let flag_small = share < cfg.size_threshold && sizes[small] > 0;
            let mut nflag = 0;
            for (j, &i) in rows.iter().enumerate() {
                let a = assign[j];
                let p = &reduced[j * k..(j + 1) * k];
                let d_own = dist2(p, &centres[a]).sqrt();
                let d_other = dist2(p, &centres[1 - a]).sqrt();
                let margin = (d_other - d_own) / (d_other + d_own).max(1e-12);
                scores[i] = 1.0 - sizes[a] as f32 / rows.len() as f32 + 0.01 * margin;
                if flag_small && a == small {
                    flagged[i] = true;
                    nflag += 1;
                }
            }
            (nflag, Some(share))
        },
    );
    Ok(found)
}

/// Settings of [`spectral_signatures`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SsConfig {
    /// Upper bound on the poisoned share of a class the defender assumes
    /// (Tran et al.'s epsilon).
    pub expected_rate: f32,
    /// Flag `multiplier * expected_rate` of each class (the paper: 1.5).
    pub multiplier: f32,
    /// Seed of the power iteration's start vector.
    pub seed: u64,
}

impl Default for SsConfig {
    fn default() -> Self {
        SsConfig {
            expected_rate: 0.1,
            multiplier: 1.5,
            seed: 0,
        }
    }
}

/// Spectral signatures (Tran et al. 2018). Scores are the squared
/// projections divided by their class mean, so classes compare.
pub fn spectral_signatures(
    features: &Tensor,
    labels: &[usize],
    classes: usize,
    cfg: &SsConfig,
) -> Result<DataScores, DataDefenceError> {
    check(features, labels, classes)?;
    if !(cfg.expected_rate > 0.0 && cfg.expected_rate < 1.0 && cfg.multiplier > 0.0) {
        return Err(DataDefenceError::Invalid(
            "expected rate must be in (0, 1) and the multiplier positive".into(),
        ));
    }
    // No variance in a class: no direction to score along (left unscored).
    let method = "spectral-signatures";
    let found = per_class(
        method,
        features,
        labels,
        classes,
        (2, 1, cfg.seed),
        |v, scores, flagged| {
            let rows = v.rows;
            let s: Vec<f32> = v.proj.iter().map(|v| v * v).collect();
            let mean = (s.iter().map(|&v| f64::from(v)).sum::<f64>() / s.len() as f64).max(1e-30);
            let take = ((cfg.multiplier * cfg.expected_rate * rows.len() as f32).round() as usize)
                .min(rows.len());
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
            for (j, &i) in rows.iter().enumerate() {
                scores[i] = (f64::from(s[j]) / mean) as f32;
            }
            for &j in &order[..take] {
                flagged[rows[j]] = true;
            }
            (take, None)
        },
    );
    Ok(found)
}

/// One class as [`per_class`] hands it to a method: the class, its
/// example indices, and their centred features projected on the class's
/// top principal components (`k` values per example).
struct ClassView<'a> {
    class: usize,
    rows: &'a [usize],
    proj: &'a [f32],
    k: usize,
}

/// The per-class part activation clustering and spectral signatures
/// share: each class's rows, centred and projected on their top `dims`
/// components (power iteration from `seed`), handed to `method`, which
/// sets the class's scores and flags and returns (examples flagged,
/// small-cluster share), under the method's `name`. A class under `min_rows` examples, or without
/// variance, is left unscored (score 0, nothing flagged).
fn per_class(
    name: &str,
    features: &Tensor,
    labels: &[usize],
    classes: usize,
    (min_rows, dims, seed): (usize, usize, u64),
    mut method: impl FnMut(&ClassView<'_>, &mut [f32], &mut [bool]) -> (usize, Option<f32>),
) -> DataScores {
    let n = labels.len();
    let d = features.row_len();
    let mut scores = vec![0.0f32; n];
    let mut flagged = vec![false; n];
    let mut notes = Vec::new();
    for (c, rows) in by_class(labels, classes).into_iter().enumerate() {
        let mut note = ClassNote {
            class: c,
            examples: rows.len(),
            flagged: 0,
            small_cluster: None,
        };
        if rows.len() >= min_rows {
            let centred = centred_rows(features, &rows, d);
            let comps = top_components(&centred, rows.len(), d, dims, seed);
            if !comps.is_empty() {
                let proj = project(&centred, rows.len(), d, &comps);
                let view = ClassView {
                    class: c,
                    rows: &rows,
                    proj: &proj,
                    k: comps.len(),
                };
                (note.flagged, note.small_cluster) = method(&view, &mut scores, &mut flagged);
            }
        }
        notes.push(note);
    }
    DataScores {
        method: name.into(),
        scores,
        flagged,
        classes: notes,
    }
}

/// Early-loss isolation (ABL, Li et al. 2021): flags the `isolate` share
/// of examples with the lowest loss; scores are `-loss`.
pub fn early_loss_isolation(
    losses: &[f32],
    labels: &[usize],
    classes: usize,
    isolate: f32,
) -> Result<DataScores, DataDefenceError> {
    if losses.len() != labels.len() {
        return Err(DataDefenceError::Invalid(format!(
            "{} losses for {} examples",
            losses.len(),
            labels.len()
        )));
    }
    if !(isolate > 0.0 && isolate < 1.0) {
        return Err(DataDefenceError::Invalid(
            "isolation share must be in (0, 1)".into(),
        ));
    }
    if losses.iter().any(|v| !v.is_finite()) {
        return Err(DataDefenceError::Invalid(
            "a loss is NaN or infinite".into(),
        ));
    }
    let n = losses.len();
    let take = ((isolate * n as f32).round() as usize).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]).then(a.cmp(&b)));
    let mut flagged = vec![false; n];
    for &i in &order[..take] {
        flagged[i] = true;
    }
    let notes = by_class(labels, classes)
        .into_iter()
        .enumerate()
        .map(|(c, rows)| ClassNote {
            class: c,
            examples: rows.len(),
            flagged: rows.iter().filter(|&&i| flagged[i]).count(),
            small_cluster: None,
        })
        .collect();
    Ok(DataScores {
        method: "early-loss".into(),
        scores: losses.iter().map(|v| -v).collect(),
        flagged,
        classes: notes,
    })
}

/// Trains a fresh spec model on `data` for `cfg.epochs` (keep it short:
/// 1 or 2) and returns every example's cross-entropy under it, the signal
/// of [`early_loss_isolation`].
pub fn early_losses(
    spec: &ArchSpec,
    data: &Dataset,
    cfg: &TrainConfig,
) -> Result<Vec<f32>, DataDefenceError> {
    let mut m = OnnxModel::from_spec(spec, cfg.seed)?;
    fit(
        &mut m,
        data,
        cfg,
        FitOptions {
            spec: Some(spec),
            ..FitOptions::default()
        },
    )?;
    Ok(per_example_losses(&m, data, 256)?)
}

/// Penultimate (or other tapped) activations of every example, in batches.
pub fn activations(
    model: &OnnxModel,
    x: &Tensor,
    tap: &aisec_model::Tap,
    batch: usize,
) -> Result<Tensor, DataDefenceError> {
    let n = x.batch();
    let mut data = Vec::new();
    let mut d = 0;
    for s in (0..n).step_by(batch.max(1)) {
        let idx: Vec<usize> = (s..(s + batch.max(1)).min(n)).collect();
        let f = model.forward_at(&aisec_model::fit::gather(x, &idx), tap)?;
        d = f.row_len();
        data.extend_from_slice(&f.data);
    }
    Ok(Tensor::new(vec![n, d], data)?)
}

/// Detection quality against ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Flagged examples that are poisoned.
    pub true_positives: usize,
    /// Flagged examples that are clean.
    pub false_positives: usize,
    /// Poisoned examples not flagged.
    pub false_negatives: usize,
    /// TP / (TP + FP) (0 when nothing is flagged).
    pub precision: f32,
    /// TP / (TP + FN), the detection rate (0 when nothing is poisoned).
    pub recall: f32,
    /// Share of clean examples flagged.
    pub false_positive_rate: f32,
    /// Probability a random poisoned example scores above a random clean
    /// one (ties count half); `None` without both kinds.
    pub auroc: Option<f32>,
}

/// Scores a method against the ground-truth poisoned flags.
pub fn score_against(s: &DataScores, poisoned: &[bool]) -> Result<Detection, DataDefenceError> {
    if poisoned.len() != s.scores.len() {
        return Err(DataDefenceError::Invalid(format!(
            "ground truth covers {} examples, the scores {}",
            poisoned.len(),
            s.scores.len()
        )));
    }
    let (mut tp, mut fp, mut fneg) = (0, 0, 0);
    for (&f, &p) in s.flagged.iter().zip(poisoned) {
        match (f, p) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    let clean = poisoned.iter().filter(|&&p| !p).count();
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    Ok(Detection {
        true_positives: tp,
        false_positives: fp,
        false_negatives: fneg,
        precision: frac(tp, tp + fp),
        recall: frac(tp, tp + fneg),
        false_positive_rate: frac(fp, clean),
        auroc: auroc(&s.scores, poisoned),
    })
}

/// Mann-Whitney AUC of `scores` for the positives in `pos` (ties half).
pub fn auroc(scores: &[f32], pos: &[bool]) -> Option<f32> {
    let np = pos.iter().filter(|&&p| p).count();
    let nn = pos.len() - np;
    if np == 0 || nn == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Average ranks over ties.
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if pos[k] {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (np * (np + 1)) as f64 / 2.0;
    Some((u / (np as f64 * nn as f64)) as f32)
}

fn centred_rows(x: &Tensor, rows: &[usize], d: usize) -> Vec<f32> {
    let mut mean = vec![0.0f64; d];
    for &i in rows {
        for (m, v) in mean.iter_mut().zip(x.row(i)) {
            *m += f64::from(*v);
        }
    }
    let n = rows.len().max(1) as f64;
    let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
    let mut out = Vec::with_capacity(rows.len() * d);
    for &i in rows {
        out.extend(x.row(i).iter().zip(&mean).map(|(v, m)| v - m));
    }
    out
}

/// Projections `[n, k]` of `[n, d]` rows on `k` unit components.
fn project(x: &[f32], n: usize, d: usize, comps: &[Vec<f32>]) -> Vec<f32> {
    let k = comps.len();
    let mut out = vec![0.0; n * k];
    for i in 0..n {
        let r = &x[i * d..(i + 1) * d];
        for (c, v) in comps.iter().enumerate() {
            out[i * k + c] = r.iter().zip(v).map(|(a, b)| a * b).sum();
        }
    }
    out
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A seeded generator for the methods (one place, so seeds mean the same).
pub(crate) fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ 0x6465_6665_6e64)
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal(r: &mut impl Rng) -> f32 {
    let u1: f32 = r.gen_range(f32::EPSILON..1.0);
    let u2: f32 = r.gen::<f32>();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests;
