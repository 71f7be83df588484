//! Model inversion: reconstructing a representative input of each class
//! from a model's confidence scores and gradients.
//!
//! This is MI-Face (Fredrikson, Jha, Ristenpart 2015, "Model Inversion
//! Attacks that Exploit Confidence Information and Basic
//! Countermeasures", Algorithm 1): starting from a neutral input, gradient
//! descent on the input minimises the cost `c(x) = 1 - p_class(x)` (or
//! `-log p_class(x)`) plus an optional smoothness prior, every iterate is
//! projected back to the valid input range (the paper's `Process` step),
//! and the search stops at the paper's three rules: a maximum number of
//! iterations (α), no improvement of the best cost for `patience` steps
//! (β), or a cost at or below a threshold (γ). The best iterate is returned.
//!
//! The priors are the quadratic total variation of the image (sum of
//! squared differences of neighbouring pixels, Mahendran & Vedaldi 2015
//! with β = 2) and an L2 pull towards the start, both averaged per value so
//! their weights do not depend on the image size.
//!
//! With reference data (examples with labels from the training
//! distribution), each reconstruction is compared with every class mean:
//! RMSE and Pearson correlation to its own class mean and to the nearest
//! other one. A class counts as *identified* when its reconstruction
//! correlates best with its own class mean; the identification rate
//! against chance (1 / classes) is the measure of leakage reported.

use std::io::{Seek, Write};
use std::path::Path;

use aisec_core::{Confidence, Finding, Location, Severity};
use aisec_model::data::Dataset;
use aisec_model::{Differentiable, Loss, ModelError, Tensor};
use serde::Serialize;

use crate::context::AttackContext;
use crate::rules::INVERSION;
use crate::save::{write_npz, NpyArray, SaveError};

/// Errors of an inversion run.
#[derive(Debug, thiserror::Error)]
pub enum InversionError {
    /// The model failed.
    #[error("model error: {0}")]
    Model(#[from] ModelError),
    /// The configuration or data do not fit.
    #[error("invalid inversion setting: {0}")]
    Config(String),
    /// Saving failed.
    #[error("cannot save: {0}")]
    Save(#[from] SaveError),
}

/// The task part of the inversion cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InversionCost {
    /// `1 - p_class(x)`, as in the paper.
    OneMinusP,
    /// `-log p_class(x)` (cross-entropy; stronger gradients far from the class).
    NegLogP,
}

impl InversionCost {
    /// Parses `one-minus-p` or `neg-log-p`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "one-minus-p" | "1-p" => Some(InversionCost::OneMinusP),
            "neg-log-p" | "ce" | "log" => Some(InversionCost::NegLogP),
            _ => None,
        }
    }
}

/// Settings of an inversion run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InversionConfig {
    /// Classes to reconstruct (empty: all).
    pub classes: Vec<usize>,
    /// Task cost.
    pub cost: InversionCost,
    /// Maximum iterations (the paper's α; it uses 5000).
    pub max_iters: usize,
    /// Stop after this many steps without a better cost (the paper's β; 100).
    pub patience: usize,
    /// Stop once the total cost is at or below this (the paper's γ).
    pub threshold: f32,
    /// Gradient step (the paper's λ; 0.1).
    pub step_size: f32,
    /// Weight of the quadratic total-variation prior (0: off).
    pub tv: f32,
    /// Weight of the L2 pull towards the start (0: off).
    pub l2: f32,
    /// Start value for every input entry (None: the middle of `[lo, hi]`).
    pub start: Option<f32>,
    /// Lowest valid input value.
    pub lo: f32,
    /// Highest valid input value.
    pub hi: f32,
}

impl Default for InversionConfig {
    fn default() -> Self {
        InversionConfig {
            classes: vec![],
            cost: InversionCost::OneMinusP,
            max_iters: 1000,
            patience: 100,
            threshold: 0.001,
            step_size: 0.1,
            tv: 0.0,
            l2: 0.0,
            start: None,
            lo: 0.0,
            hi: 1.0,
        }
    }
}

/// Why the search for one class stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Reached `max_iters`.
    MaxIterations,
    /// No better cost for `patience` steps.
    NoImprovement,
    /// Cost at or below the threshold.
    Threshold,
    /// Cancelled.
    Cancelled,
}

/// Result for one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassInversion {
    /// The class.
    pub class: usize,
    /// The model's softmax probability of `class` on the reconstruction.
    pub confidence: f64,
    /// The model's predicted class on the reconstruction.
    pub predicted: usize,
    /// Best total cost reached.
    pub cost: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Why it stopped.
    pub stop: StopReason,
    /// Similarity to the reference class means (when reference data was given).
    pub similarity: Option<Similarity>,
}

/// How a reconstruction compares with the reference class means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Similarity {
    /// RMSE to the own class mean.
    pub rmse_own: f64,
    /// Smallest RMSE to another class mean.
    pub rmse_nearest_other: f64,
    /// Pearson correlation with the own class mean.
    pub corr_own: f64,
    /// Largest correlation with another class mean.
    pub corr_best_other: f64,
    /// Rank of the own class mean by correlation (1 = most similar).
    pub rank: usize,
    /// The own class mean is the most correlated one.
    pub identified: bool,
}

/// Result of an inversion run (serialised into the report's data, without
/// the images).
#[derive(Debug, Clone, Serialize)]
pub struct InversionReport {
    /// Settings used.
    pub config: InversionConfig,
    /// Per class.
    pub classes: Vec<ClassInversion>,
    /// Mean confidence over the classes.
    pub mean_confidence: f64,
    /// Share of classes identified (None without reference data).
    pub identification_rate: Option<f64>,
    /// Chance level of the identification rate (1 / classes of the model).
    pub chance: f64,
    /// Examples sent to the model (one per active class and step, plus the
    /// final confidence pass).
    pub queries: u64,
    /// Every class's search ended by one of the paper's stopping rules.
    pub complete: bool,
    /// Stopped early by the cancel flag.
    pub cancelled: bool,
    /// Reconstructions `[k, ..input_shape]`, in `classes` order.
    #[serde(skip)]
    pub reconstructions: Tensor,
    /// Reference class means `[k, ..]` in the same order, when given.
    #[serde(skip)]
    pub class_means: Option<Tensor>,
}

/// Quadratic TV `mean((x[i,j+1]-x[i,j])^2 + (x[i+1,j]-x[i,j])^2)` over the
/// last two dimensions (or neighbours of a flat vector) and its gradient.
fn tv_and_grad(x: &[f32], shape: &[usize]) -> (f32, Vec<f32>) {
    let (h, w) = match shape {
        [] => (1, 1),
        [d] => (1, *d),
        s => (s[s.len() - 2], s[s.len() - 1]),
    };
    let plane = (h * w).max(1);
    let mut g = vec![0.0; x.len()];
    let mut v = 0.0;
    for p in 0..x.len() / plane {
        let o = p * plane;
        for i in 0..h {
            for j in 0..w {
                let k = o + i * w + j;
                if j + 1 < w {
                    let d = x[k + 1] - x[k];
                    v += d * d;
                    g[k] -= 2.0 * d;
                    g[k + 1] += 2.0 * d;
                }
                if i + 1 < h {
                    let d = x[k + w] - x[k];
                    v += d * d;
                    g[k] -= 2.0 * d;
                    g[k + w] += 2.0 * d;
                }
            }
        }
    }
    let n = x.len().max(1) as f32;
    g.iter_mut().for_each(|v| *v /= n);
    (v / n, g)
}

/// Runs MI-Face for the configured classes (all at once, one batch row per
/// class) and, with `reference` data, measures similarity to class means.
///
/// Progress: one phase, `inversion`, of `max_iters + 1` steps. Raising
/// `ctx`'s cancel flag stops the search at the next step and returns the
/// best reconstructions so far, marked incomplete. The context's query
/// budget, if any, caps the examples sent to the model.
pub fn run_inversion(
    model: &dyn Differentiable,
    cfg: &InversionConfig,
    reference: Option<&Dataset>,
    ctx: &AttackContext,
) -> Result<InversionReport, InversionError> {
    let counter = ctx.counter(model);
    let model: &dyn Differentiable = &counter;
    let nc = model.num_classes();
    let classes: Vec<usize> = if cfg.classes.is_empty() {
        (0..nc).collect()
    } else {
        cfg.classes.clone()
    };
    if let Some(&c) = classes.iter().find(|&&c| c >= nc) {
        return Err(InversionError::Config(format!(
            "class {c} out of range for {nc} classes"
        )));
    }
    if classes.is_empty() {
        return Err(InversionError::Config("the model has no classes".into()));
    }
    if cfg.lo.partial_cmp(&cfg.hi) != Some(std::cmp::Ordering::Less)
        || !cfg.step_size.is_finite()
        || cfg.step_size <= 0.0
    {
        return Err(InversionError::Config(
            "need lo < hi and a positive step size".into(),
        ));
    }
    if cfg.tv < 0.0 || cfg.l2 < 0.0 || !cfg.tv.is_finite() || !cfg.l2.is_finite() {
        return Err(InversionError::Config(
            "prior weights must be non-negative".into(),
        ));
    }
    let shape = model.input_shape().to_vec();
    let row: usize = shape.iter().product();
    let k = classes.len();
    let x0 = cfg
        .start
        .unwrap_or(0.5 * (cfg.lo + cfg.hi))
        .clamp(cfg.lo, cfg.hi);
    let mut full_shape = vec![k];
    full_shape.extend_from_slice(&shape);
    let mut x = Tensor::new(full_shape.clone(), vec![x0; k * row])?;
    let mut best = x.clone();
    let mut best_cost = vec![f32::INFINITY; k];
    let mut since_best = vec![0usize; k];
    let mut iters = vec![0usize; k];
    let mut stop: Vec<Option<StopReason>> = vec![None; k];
    let mut was_cancelled = false;

    // Cost of each active row at x, and its gradient.
    let eval = |xa: &Tensor, cls: &[usize]| -> Result<(Vec<f32>, Tensor), InversionError> {
        let (ce, g, _) = model.loss_grad(
            xa,
            &Loss::CrossEntropy {
                labels: cls.to_vec(),
            },
        )?;
        let mut g = g;
        let mut cost = vec![0.0f32; cls.len()];
        for i in 0..cls.len() {
            let p = (-ce[i]).exp();
            let gi = g.row_mut(i);
            match cfg.cost {
                InversionCost::OneMinusP => {
                    // d(1-p)/dx = p * d(-log p)/dx.
                    cost[i] = 1.0 - p;
                    gi.iter_mut().for_each(|v| *v *= p);
                }
                InversionCost::NegLogP => cost[i] = ce[i],
            }
            let xi = xa.row(i);
            if cfg.tv > 0.0 {
                let (t, tg) = tv_and_grad(xi, &shape);
                cost[i] += cfg.tv * t;
                gi.iter_mut().zip(tg).for_each(|(a, b)| *a += cfg.tv * b);
            }
            if cfg.l2 > 0.0 {
                let n = row.max(1) as f32;
                let mut s = 0.0;
                for (a, &v) in gi.iter_mut().zip(xi) {
                    s += (v - x0) * (v - x0);
                    *a += cfg.l2 * 2.0 * (v - x0) / n;
                }
                cost[i] += cfg.l2 * s / n;
            }
        }
        Ok((cost, g))
    };

    ctx.phase("inversion", cfg.max_iters as u64 + 1);
    for it in 0..=cfg.max_iters {
        let active: Vec<usize> = (0..k).filter(|&i| stop[i].is_none()).collect();
        if active.is_empty() {
            break;
        }
        if ctx.is_cancelled() {
            was_cancelled = true;
            for &i in &active {
                stop[i] = Some(StopReason::Cancelled);
            }
            break;
        }
        let xa = crate::util::gather(&x, &active);
        let cls: Vec<usize> = active.iter().map(|&i| classes[i]).collect();
        let (cost, g) = eval(&xa, &cls)?;
        for (a, &i) in active.iter().enumerate() {
            let c = cost[a];
            if !c.is_finite() {
                return Err(InversionError::Model(ModelError::Invalid(
                    "non-finite inversion cost".into(),
                )));
            }
            if c < best_cost[i] {
                best_cost[i] = c;
                best.row_mut(i).copy_from_slice(xa.row(a));
                since_best[i] = 0;
            } else {
                since_best[i] += 1;
            }
            iters[i] = it;
            if c <= cfg.threshold {
                stop[i] = Some(StopReason::Threshold);
            } else if cfg.patience > 0 && since_best[i] >= cfg.patience {
                stop[i] = Some(StopReason::NoImprovement);
            } else if it == cfg.max_iters {
                stop[i] = Some(StopReason::MaxIterations);
            } else {
                // Gradient step, then projection onto [lo, hi].
                let xi = x.row_mut(i);
                for (v, gv) in xi.iter_mut().zip(g.row(a)) {
                    *v = (*v - cfg.step_size * gv).clamp(cfg.lo, cfg.hi);
                }
            }
        }
        ctx.advance(1);
    }

    // Confidence of the model on the best reconstructions.
    let z = model.logits(&best)?;
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let p = crate::extraction::softmax(z.row(i));
        out.push(ClassInversion {
            class: classes[i],
            confidence: p[classes[i]] as f64,
            predicted: aisec_model::classifier::argmax(&p),
            cost: best_cost[i] as f64,
            iterations: iters[i],
            stop: stop[i].unwrap_or(StopReason::MaxIterations),
            similarity: None,
        });
    }

    let mut class_means = None;
    if let Some(r) = reference {
        // Same number of values per example is enough (e.g. [1, 8, 8] images for a flat [64] input).
        if r.x.row_len() != row || r.x.shape.is_empty() {
            return Err(InversionError::Config(format!(
                "reference inputs {:?} do not fit the model's input {shape:?}",
                r.x.shape
            )));
        }
        let means = class_mean_rows(r, nc)?;
        for (i, ci) in out.iter_mut().enumerate() {
            ci.similarity = Some(similarity(best.row(i), classes[i], &means));
        }
        let mut t = Tensor::zeros(full_shape.clone());
        for (i, &c) in classes.iter().enumerate() {
            if let Some(m) = &means[c] {
                t.row_mut(i).copy_from_slice(m);
            }
        }
        class_means = Some(t);
    }
    let ident: Vec<bool> = out
        .iter()
        .filter_map(|c| c.similarity.as_ref().map(|s| s.identified))
        .collect();
    Ok(InversionReport {
        config: cfg.clone(),
        mean_confidence: out.iter().map(|c| c.confidence).sum::<f64>() / k as f64,
        identification_rate: (!ident.is_empty())
            .then(|| ident.iter().filter(|&&b| b).count() as f64 / ident.len() as f64),
        chance: 1.0 / nc as f64,
        classes: out,
        queries: counter.queries(),
        complete: !was_cancelled,
        cancelled: was_cancelled,
        reconstructions: best,
        class_means,
    })
}

/// Mean input per class (None for classes without examples).
fn class_mean_rows(r: &Dataset, nc: usize) -> Result<Vec<Option<Vec<f32>>>, InversionError> {
    let row = r.x.row_len();
    let mut sums = vec![vec![0.0f64; row]; nc];
    let mut counts = vec![0usize; nc];
    for (i, &y) in r.y.iter().enumerate() {
        if y >= nc {
            return Err(InversionError::Config(format!(
                "reference label {y} out of range for {nc} classes"
            )));
        }
        counts[y] += 1;
        for (s, &v) in sums[y].iter_mut().zip(r.x.row(i)) {
            *s += v as f64;
        }
    }
    Ok(sums
        .into_iter()
        .zip(counts)
        .map(|(s, c)| (c > 0).then(|| s.iter().map(|v| (v / c as f64) as f32).collect()))
        .collect())
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().max(1) as f64;
    let ma = a.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mb = b.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

fn rmse(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().max(1) as f64;
    (a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
}

fn similarity(x: &[f32], own: usize, means: &[Option<Vec<f32>>]) -> Similarity {
    let corr: Vec<(usize, f64)> = means
        .iter()
        .enumerate()
        .filter_map(|(c, m)| m.as_ref().map(|m| (c, pearson(x, m))))
        .collect();
    let rm: Vec<(usize, f64)> = means
        .iter()
        .enumerate()
        .filter_map(|(c, m)| m.as_ref().map(|m| (c, rmse(x, m))))
        .collect();
    let own_corr = corr.iter().find(|c| c.0 == own).map(|c| c.1);
    let best_other = corr
        .iter()
        .filter(|c| c.0 != own)
        .map(|c| c.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let rank = match own_corr {
        Some(o) => 1 + corr.iter().filter(|c| c.0 != own && c.1 >= o).count(),
        None => corr.len() + 1,
    };
    Similarity {
        rmse_own: rm
            .iter()
            .find(|c| c.0 == own)
            .map(|c| c.1)
            .unwrap_or(f64::NAN),
        rmse_nearest_other: rm
            .iter()
            .filter(|c| c.0 != own)
            .map(|c| c.1)
            .fold(f64::INFINITY, f64::min),
        corr_own: own_corr.unwrap_or(f64::NAN),
        corr_best_other: best_other,
        rank,
        identified: rank == 1 && own_corr.is_some(),
    }
}

/// Title of an inversion finding when, with reference data, the
/// reconstructions were identified no better than chance.
pub const HELD_IDENTIFIED: &str =
    "Model inversion fell short: reconstructions match their class no better than chance";

/// Title of an inversion finding when, without reference data, the
/// reconstructions did not reach confident class inputs.
pub const HELD_CONFIDENT: &str =
    "Model inversion fell short: no confident class reconstruction was reached";

/// Severity of an inversion result.
///
/// With reference data, by the identification rate `r` (chance `1/K`):
/// `r ≥ 0.8` high, `r ≥ 0.5` medium, `r >` chance low, else info.
/// Without it, by the mean confidence: `≥ 0.9` medium (the model can be
/// driven to confident class inputs; whether they reveal anything needs a
/// look at the images), `≥ 0.5` low, else info. An info finding is titled
/// as the attack falling short ([`HELD_IDENTIFIED`], [`HELD_CONFIDENT`]).
pub fn severity_for(identification_rate: Option<f64>, chance: f64, confidence: f64) -> Severity {
    match identification_rate {
        Some(r) if r >= 0.8 => Severity::High,
        Some(r) if r >= 0.5 => Severity::Medium,
        Some(r) if r > chance => Severity::Low,
        Some(_) => Severity::Info,
        None if confidence >= 0.9 => Severity::Medium,
        None if confidence >= 0.5 => Severity::Low,
        None => Severity::Info,
    }
}

impl InversionReport {
    /// One finding for `target` with the per-class confidences (and
    /// similarities) as metrics.
    pub fn findings(&self, target: &str) -> Vec<Finding> {
        let k = self.classes.len();
        let high = self.classes.iter().filter(|c| c.confidence >= 0.9).count();
        let mut evidence = format!(
            "MI-Face reconstructions of {k} classes reach mean confidence {:.1}% ({high} of {k} at 90% or more)",
            self.mean_confidence * 100.0
        );
        if let Some(r) = self.identification_rate {
            evidence.push_str(&format!(
                "; {:.0}% of reconstructions correlate best with their own class mean (chance {:.0}%)",
                r * 100.0,
                self.chance * 100.0
            ));
        }
        if self.cancelled {
            evidence.push_str(" (run cancelled; partial)");
        }
        let conf: serde_json::Map<String, serde_json::Value> = self
            .classes
            .iter()
            .map(|c| (c.class.to_string(), num(c.confidence)))
            .collect();
        let severity = severity_for(self.identification_rate, self.chance, self.mean_confidence);
        // Below the reporting threshold the title says the attack fell short.
        let title = match (severity, self.identification_rate) {
            (Severity::Info, Some(_)) => HELD_IDENTIFIED,
            (Severity::Info, None) => HELD_CONFIDENT,
            _ => INVERSION.title,
        };
        let mut f = INVERSION
            .finding(Location::path(target), evidence)
            .severity(severity)
            .title(title)
            .metric("classes", k as u64)
            .metric("mean_confidence", num(self.mean_confidence))
            .metric("confidences", serde_json::Value::Object(conf))
            .metric(
                "cost",
                serde_json::to_value(self.config.cost).unwrap_or_default(),
            )
            .metric(
                "iterations",
                self.classes
                    .iter()
                    .map(|c| c.iterations as u64)
                    .sum::<u64>(),
            );
        if let Some(r) = self.identification_rate {
            f = f
                .metric("identification_rate", num(r))
                .metric("chance", num(self.chance));
            let corr: serde_json::Map<String, serde_json::Value> = self
                .classes
                .iter()
                .filter_map(|c| {
                    c.similarity
                        .as_ref()
                        .map(|s| (c.class.to_string(), num(s.corr_own)))
                })
                .collect();
            f = f.metric("corr_own", serde_json::Value::Object(corr));
        } else {
            f = f.confidence(Confidence::Low);
        }
        if self.cancelled {
            f = f.confidence(Confidence::Medium);
        }
        vec![f]
    }

    /// Saves `reconstructions`, `classes`, `confidence` (and `class_means`) as `.npz`.
    pub fn save_npz(&self, path: &Path) -> Result<(), InversionError> {
        let f = std::fs::File::create(path).map_err(SaveError::from)?;
        self.write_npz(std::io::BufWriter::new(f))
    }

    fn write_npz<W: Write + Seek>(&self, w: W) -> Result<(), InversionError> {
        let k = [self.classes.len()];
        let conf: Vec<f32> = self.classes.iter().map(|c| c.confidence as f32).collect();
        let mut arrays = vec![
            (
                "reconstructions",
                NpyArray::F32(&self.reconstructions.shape, &self.reconstructions.data),
            ),
            (
                "classes",
                NpyArray::I64(&k, self.classes.iter().map(|c| c.class as i64).collect()),
            ),
            ("confidence", NpyArray::F32(&k, &conf)),
        ];
        if let Some(m) = &self.class_means {
            arrays.push(("class_means", NpyArray::F32(&m.shape, &m.data)));
        }
        write_npz(w, &arrays)?;
        Ok(())
    }

    /// Writes a PNG: the reconstructions in one row (class order) and, with
    /// reference data, the class means in a second row; small images are
    /// enlarged to at least 32 pixels.
    pub fn save_png(&self, path: &Path) -> Result<(), InversionError> {
        let mut rows = vec![&self.reconstructions];
        if let Some(m) = &self.class_means {
            rows.push(m);
        }
        let png = tile_png(&rows, self.config.lo, self.config.hi)?;
        std::fs::write(path, png).map_err(SaveError::from)?;
        Ok(())
    }
}

/// Encodes batches as rows of tiles (one tile per example). Images are
/// `[C,H,W]` (C = 1 or 3), `[H,W]`, or flat vectors with a square length.
pub fn tile_png(rows: &[&Tensor], lo: f32, hi: f32) -> Result<Vec<u8>, SaveError> {
    let first = rows
        .first()
        .ok_or_else(|| SaveError::Shape("nothing to draw".into()))?;
    let (c, h, w) = match first.shape.as_slice() {
        [_, c @ (1 | 3), h, w] => (*c, *h, *w),
        [_, h, w] => (1, *h, *w),
        [_, d] => {
            let s = (*d as f64).sqrt() as usize;
            if s * s != *d {
                return Err(SaveError::Shape(format!("{:?}", first.shape)));
            }
            (1, s, s)
        }
        s => return Err(SaveError::Shape(format!("{s:?}"))),
    };
    let cols = first.batch();
    if h == 0 || w == 0 || h > 4096 || w > 4096 || cols == 0 || cols > 4096 {
        return Err(SaveError::Shape(format!("{:?}", first.shape)));
    }
    if rows.iter().any(|r| r.shape != first.shape) {
        return Err(SaveError::Shape("rows differ in shape".into()));
    }
    let z = (32 / h.min(w)).clamp(1, 8);
    let (th, tw) = (h * z, w * z);
    let gap = 2usize;
    let gw = cols * tw + (cols - 1) * gap;
    let gh = rows.len() * th + (rows.len() - 1) * gap;
    let mut img = vec![255u8; gw * gh * c];
    let span = (hi - lo).max(1e-12);
    for (r, t) in rows.iter().enumerate() {
        for col in 0..cols {
            let v = t.row(col);
            for ch in 0..c {
                for yy in 0..th {
                    for xx in 0..tw {
                        let val = v[(ch * h + yy / z) * w + xx / z];
                        let px = col * (tw + gap) + xx;
                        let py = r * (th + gap) + yy;
                        img[(py * gw + px) * c + ch] =
                            (((val - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
        }
    }
    Ok(aisec_model::data::images::encode_png(&img, gw, gh, c)?)
}

fn num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_model::spec::{ArchSpec, LayerSpec};
    use aisec_model::OnnxModel;

    /// A linear softmax model on 4x4 "images" whose class templates are
    /// the two halves: class 0 lights the left half, class 1 the right.
    fn model() -> OnnxModel {
        let spec = ArchSpec {
            input: vec![1, 4, 4],
            layers: vec![
                LayerSpec::Flatten,
                LayerSpec::Dense {
                    units: 2,
                    init: None,
                },
            ],
        };
        let mut m = OnnxModel::from_spec(&spec, 0).unwrap();
        let mut w = vec![0.0f32; 32];
        for i in 0..4 {
            for j in 0..4 {
                let left = if j < 2 { 1.0 } else { -1.0 };
                w[i * 4 + j] = 2.0 * left;
                w[16 + i * 4 + j] = -2.0 * left;
            }
        }
        m.set_weight("layer1.weight", &Tensor::new(vec![2, 16], w).unwrap())
            .unwrap();
        m
    }

    fn reference() -> Dataset {
        let mut x = vec![];
        let mut y = vec![];
        for n in 0..6 {
            let c = n % 2;
            for _i in 0..4 {
                for j in 0..4 {
                    let on = (j < 2) == (c == 0);
                    x.push(if on { 0.9 } else { 0.1 } + 0.01 * n as f32);
                }
            }
            y.push(c);
        }
        Dataset::new(Tensor::new(vec![6, 1, 4, 4], x).unwrap(), y).unwrap()
    }

    #[test]
    fn mi_face_recovers_class_templates_of_a_linear_model() {
        let m = model();
        let cfg = InversionConfig {
            max_iters: 300,
            step_size: 0.5,
            tv: 0.01,
            ..InversionConfig::default()
        };
        let no = AttackContext::silent();
        let r = run_inversion(&m, &cfg, Some(&reference()), &no).unwrap();
        assert_eq!(r.classes.len(), 2);
        for c in &r.classes {
            assert!(c.confidence > 0.99, "class {}: {}", c.class, c.confidence);
            assert_eq!(c.predicted, c.class);
            let s = c.similarity.as_ref().unwrap();
            assert!(s.identified && s.corr_own > 0.9, "{s:?}");
        }
        assert_eq!(r.identification_rate, Some(1.0));
        // Class 0's reconstruction is bright on the left, dark on the right.
        let x = r.reconstructions.row(0);
        assert!(x[0] > x[3] && x[4] > x[7]);
        let f = r.findings("m.onnx");
        assert_eq!(f[0].rule_id, "AISEC-PRIVACY-002");
        assert_eq!(f[0].severity, Severity::High);
        // Saved files.
        let dir = tempfile::tempdir().unwrap();
        r.save_png(&dir.path().join("inv.png")).unwrap();
        r.save_npz(&dir.path().join("inv.npz")).unwrap();
        let png = std::fs::read(dir.path().join("inv.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let z = aisec_model::data::npy::read_npz(dir.path().join("inv.npz")).unwrap();
        let names: Vec<&str> = z.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"reconstructions") && names.contains(&"class_means"));
    }

    #[test]
    fn stopping_rules() {
        let m = model();
        let no = AttackContext::silent();
        // A loose threshold stops early.
        let cfg = InversionConfig {
            threshold: 0.5,
            step_size: 0.1,
            ..InversionConfig::default()
        };
        let r = run_inversion(&m, &cfg, None, &no).unwrap();
        assert!(r.classes.iter().all(|c| c.stop == StopReason::Threshold));
        assert!(r.classes.iter().all(|c| c.iterations < 50));
        // A tiny iteration budget stops at the maximum.
        let cfg = InversionConfig {
            max_iters: 3,
            step_size: 1e-4,
            threshold: 0.0,
            ..InversionConfig::default()
        };
        let r = run_inversion(&m, &cfg, None, &no).unwrap();
        assert!(r
            .classes
            .iter()
            .all(|c| c.stop == StopReason::MaxIterations));
        assert_eq!(r.classes[0].iterations, 3);
        // At a saturated corner the projected step cannot improve: patience stops it.
        let cfg = InversionConfig {
            max_iters: 1000,
            patience: 5,
            threshold: -1.0,
            step_size: 10.0,
            cost: InversionCost::NegLogP,
            ..InversionConfig::default()
        };
        let r = run_inversion(&m, &cfg, None, &no).unwrap();
        assert!(r
            .classes
            .iter()
            .all(|c| c.stop == StopReason::NoImprovement));
        assert_eq!(r.identification_rate, None);
        assert_eq!(r.findings("m")[0].confidence, Confidence::Low);
        // Bad settings.
        let bad = InversionConfig {
            classes: vec![5],
            ..InversionConfig::default()
        };
        assert!(run_inversion(&m, &bad, None, &no).is_err());
    }

    #[test]
    fn weak_results_are_titled_as_falling_short_and_cancel_marks_incomplete() {
        // Class 1 gets a bias of +2: at the neutral start class 0 has p = 0.12.
        let mut m = model();
        m.set_weight(
            "layer1.bias",
            &Tensor::new(vec![2], vec![0.0, 2.0]).unwrap(),
        )
        .unwrap();
        let cfg = InversionConfig {
            classes: vec![0],
            max_iters: 0,
            ..InversionConfig::default()
        };
        let r = run_inversion(&m, &cfg, None, &AttackContext::silent()).unwrap();
        assert!(r.mean_confidence < 0.5, "{}", r.mean_confidence);
        let f = r.findings("m");
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(f[0].title, HELD_CONFIDENT);
        assert!(r.complete && r.queries == 2);
        // A strong result keeps the rule's title.
        let r = run_inversion(
            &model(),
            &InversionConfig::default(),
            None,
            &AttackContext::silent(),
        )
        .unwrap();
        assert_eq!(r.findings("m")[0].title, INVERSION.title);
        // Cancelled: the start is returned, marked incomplete.
        let stop = AttackContext::silent();
        stop.cancel();
        let r = run_inversion(&model(), &InversionConfig::default(), None, &stop).unwrap();
        assert!(!r.complete && r.cancelled);
        assert!(r.classes.iter().all(|c| c.stop == StopReason::Cancelled));
    }

    #[test]
    fn tv_gradient_matches_finite_differences() {
        let x: Vec<f32> = (0..12).map(|i| ((i * 7) % 5) as f32 * 0.2).collect();
        let shape = [1, 3, 4];
        let (_, g) = tv_and_grad(&x, &shape);
        for i in 0..x.len() {
            let mut p = x.clone();
            p[i] += 1e-3;
            let mut q = x.clone();
            q[i] -= 1e-3;
            let fd = (tv_and_grad(&p, &shape).0 - tv_and_grad(&q, &shape).0) / 2e-3;
            assert!((fd - g[i]).abs() < 1e-3, "{i}: {fd} vs {}", g[i]);
        }
        assert_eq!(severity_for(Some(0.3), 0.1, 0.99), Severity::Low);
        assert_eq!(severity_for(Some(0.1), 0.1, 0.99), Severity::Info);
        assert_eq!(severity_for(None, 0.1, 0.95), Severity::Medium);
    }
}
