//! Monitoring of classic models (the KServe side of the guard): input drift
//! and prediction drift against a reference sample, and per-input
//! out-of-distribution and adversarial-input scores computed with the model
//! itself, loaded and run by `aisec-model`.
//!
//! - Drift, per input feature: the population stability index over bins cut
//!   at the reference quantiles (Siddiqi 2006, *Credit Risk Scorecards*) and
//!   the two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value
//!   (the series and small-sample correction of Stephens 1970, as in
//!   Numerical Recipes §14.3). Prediction drift: the PSI of the predicted-class
//!   distribution.
//! - Out of distribution: the energy score `-T·logsumexp(logits/T)` (Liu et al.
//!   2020, "Energy-based out-of-distribution detection") and the Mahalanobis
//!   distance to the nearest class mean under a shared covariance (Lee et al.
//!   2018), here fitted on the logits because the model is a black box that
//!   only returns logits.
//! - Adversarial input: feature squeezing (Xu et al. 2018): the L1 distance
//!   between the softmax of the input and of squeezed copies (reduced bit
//!   depth, 2x2 median smoothing), the largest over squeezers.
//!
//! Every threshold is chosen on clean data the caller holds out from the
//! reference ([`threshold_at_fpr`]); alerts are findings of the rules
//! AISEC-GUARD-034..037 with their ATLAS ids, and the statistics are
//! Prometheus gauges.

use std::collections::VecDeque;

use aisec_core::{Finding, Location};
use aisec_model::{Classifier, ModelError, Tensor};

use crate::metrics::Metrics;
use crate::rules;

/// Most reference values kept per feature for the KS test.
const MAX_KS_SAMPLE: usize = 2000;
/// Most features tracked (wider inputs are rejected with an error).
pub const MAX_FEATURES: usize = 1 << 16;

/// Errors of the model monitor.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The model failed or shapes did not fit.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The reference or input data are unusable.
    #[error("{0}")]
    Data(String),
}

/// Drift settings.
#[derive(Debug, Clone)]
pub struct DriftConfig {
    /// Inputs per drift window.
    pub window: usize,
    /// Quantile bins per feature.
    pub bins: usize,
    /// PSI over which a feature (or the class mix) counts as drifted.
    pub psi_alert: f64,
    /// Family-wise significance of the per-feature KS tests (Bonferroni over features).
    pub ks_alpha: f64,
    /// Share of features that must drift for an input-drift alert (when
    /// `mean_psi_alert` is not set).
    pub feature_share_alert: f64,
    /// Mean PSI over features above which a window is an input-drift alert
    /// (set by [`calibrate`] on clean windows; overrides `feature_share_alert`).
    pub mean_psi_alert: Option<f64>,
    /// Class-mix PSI above which a window is a prediction-drift alert
    /// (set by [`calibrate`]; `psi_alert` when absent).
    pub class_psi_alert: Option<f64>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            window: 200,
            bins: 10,
            psi_alert: 0.25,
            ks_alpha: 0.01,
            feature_share_alert: 0.05,
            mean_psi_alert: None,
            class_psi_alert: None,
        }
    }
}

/// Population stability index between two distributions over the same bins
/// (each a share vector); empty bins are smoothed with `1e-4`.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    const EPS: f64 = 1e-4;
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(EPS), a.max(EPS));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Two-sample KS statistic of two sorted samples.
pub fn ks_statistic(a: &[f32], b: &[f32]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        let diff = (i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs();
        d = d.max(diff);
    }
    d
}

/// Asymptotic p-value of a two-sample KS statistic `d` for sample sizes `n`, `m`.
pub fn ks_pvalue(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let ne = (n * m) as f64 / (n + m) as f64;
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = sign * (-2.0 * (k as f64).powi(2) * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-10 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The value at or above which a share `fpr` of `clean` scores lies: a
/// threshold with that false-alarm rate on the clean data it was chosen on.
pub fn threshold_at_fpr(clean: &[f64], fpr: f64) -> f64 {
    let mut v: Vec<f64> = clean.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let k = ((1.0 - fpr.clamp(0.0, 1.0)) * v.len() as f64).ceil() as usize;
    let idx = k.min(v.len() - 1);
    // Strictly above the (1 - fpr) quantile of the clean scores.
    let t = v[idx];
    if idx + 1 < v.len() || k < v.len() {
        t
    } else {
        t + t.abs().max(1e-12) * 1e-9
    }
}

fn bin_of(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

/// The reference sample a window is compared with.
#[derive(Debug, Clone)]
pub struct Reference {
    edges: Vec<Vec<f64>>,
    expected: Vec<Vec<f64>>,
    sorted: Vec<Vec<f32>>,
    class_share: Vec<f64>,
    n: usize,
}

impl Reference {
    /// Fits the per-feature bins, the KS samples and the class mix from
    /// reference inputs `x` (batch first) and the model's predictions on them.
    pub fn fit(
        x: &Tensor,
        preds: &[usize],
        classes: usize,
        cfg: &DriftConfig,
    ) -> Result<Reference, MonitorError> {
        let n = x.batch();
        let d = x.row_len();
        if n < 2 || preds.len() != n || d == 0 || d > MAX_FEATURES || classes == 0 {
            return Err(MonitorError::Data(format!(
                "reference needs at least 2 examples with predictions and 1..={MAX_FEATURES} features (got {n} examples, {} predictions, {d} features)",
                preds.len()
            )));
        }
        let mut edges = Vec::with_capacity(d);
        let mut expected = Vec::with_capacity(d);
        let mut sorted = Vec::with_capacity(d);
        let step = n.div_ceil(MAX_KS_SAMPLE);
        for f in 0..d {
            let mut col: Vec<f32> = (0..n).map(|i| x.row(i)[f]).collect();
            col.sort_by(|a, b| a.total_cmp(b));
            let mut e: Vec<f64> = (1..cfg.bins.max(2))
                .map(|q| col[(q * (n - 1)) / cfg.bins.max(2)] as f64)
                .collect();
            e.dedup_by(|a, b| a == b);
            let mut hist = vec![0f64; e.len() + 1];
            for &v in &col {
                hist[bin_of(&e, v as f64)] += 1.0;
            }
            hist.iter_mut().for_each(|h| *h /= n as f64);
            edges.push(e);
            expected.push(hist);
            sorted.push(col.into_iter().step_by(step).collect());
        }
        let mut class_share = vec![0f64; classes];
        for &p in preds {
            if p < classes {
                class_share[p] += 1.0 / n as f64;
            }
        }
        Ok(Reference {
            edges,
            expected,
            sorted,
            class_share,
            n,
        })
    }

    /// Number of input features.
    pub fn features(&self) -> usize {
        self.edges.len()
    }

    /// Compares a window of inputs (rows of `features()` values) and their predictions.
    pub fn compare(&self, rows: &[&[f32]], preds: &[usize], cfg: &DriftConfig) -> DriftReport {
        let d = self.features();
        let m = rows.len();
        let mut per_feature = Vec::with_capacity(d);
        let bonferroni = cfg.ks_alpha / d.max(1) as f64;
        let mut alerting = 0usize;
        for f in 0..d {
            let mut col: Vec<f32> = rows.iter().filter_map(|r| r.get(f).copied()).collect();
            col.sort_by(|a, b| a.total_cmp(b));
            let mut hist = vec![0f64; self.edges[f].len() + 1];
            for &v in &col {
                hist[bin_of(&self.edges[f], v as f64)] += 1.0 / m.max(1) as f64;
            }
            let p = psi(&self.expected[f], &hist);
            let ks = ks_statistic(&self.sorted[f], &col);
            let pv = ks_pvalue(ks, self.sorted[f].len(), col.len());
            let drifted = p > cfg.psi_alert || pv < bonferroni;
            alerting += drifted as usize;
            per_feature.push(FeatureDrift {
                feature: f,
                psi: p,
                ks,
                p_value: pv,
                drifted,
            });
        }
        let mut share = vec![0f64; self.class_share.len()];
        for &p in preds {
            if let Some(s) = share.get_mut(p) {
                *s += 1.0 / m.max(1) as f64;
            }
        }
        let class_psi = psi(&self.class_share, &share);
        let mean_psi = per_feature.iter().map(|f| f.psi).sum::<f64>() / d.max(1) as f64;
        let max_ks = per_feature.iter().map(|f| f.ks).fold(0.0, f64::max);
        DriftReport {
            input_alert: match cfg.mean_psi_alert {
                Some(t) => mean_psi > t,
                None => alerting as f64 / d.max(1) as f64 > cfg.feature_share_alert,
            },
            prediction_alert: class_psi > cfg.class_psi_alert.unwrap_or(cfg.psi_alert),
            alerting_features: alerting,
            mean_psi,
            max_ks,
            class_psi,
            class_share: share,
            per_feature,
            window: m,
            reference: self.n,
        }
    }
}

/// Window-level thresholds with a false-alarm rate `fpr` on clean data:
/// `windows` windows of `cfg.window` inputs are drawn with replacement from
/// `clean` (with the model's predictions `preds`), compared with the
/// reference, and the `1 - fpr` quantiles of their mean PSI and class PSI
/// are returned, ready for `DriftConfig::{mean_psi_alert, class_psi_alert}`.
/// Small windows over many classes have a noisy class mix, so a fixed PSI
/// cut-off (the 0.25 of credit scoring) would alarm on clean traffic.
pub fn calibrate(
    reference: &Reference,
    clean: &Tensor,
    preds: &[usize],
    cfg: &DriftConfig,
    fpr: f64,
    windows: usize,
    seed: u64,
) -> (f64, f64) {
    let n = clean.batch().min(preds.len());
    if n == 0 {
        return (f64::INFINITY, f64::INFINITY);
    }
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let (mut a, mut b) = (Vec::with_capacity(windows), Vec::with_capacity(windows));
    for _ in 0..windows.max(1) {
        let idx: Vec<usize> = (0..cfg.window.max(1)).map(|_| next()).collect();
        let rows: Vec<&[f32]> = idx.iter().map(|&i| clean.row(i)).collect();
        let ps: Vec<usize> = idx.iter().map(|&i| preds[i]).collect();
        let r = reference.compare(&rows, &ps, cfg);
        a.push(r.mean_psi);
        b.push(r.class_psi);
    }
    (threshold_at_fpr(&a, fpr), threshold_at_fpr(&b, fpr))
}

/// Drift of one feature.
#[derive(Debug, Clone, Copy)]
pub struct FeatureDrift {
    /// Feature index (flattened input position).
    pub feature: usize,
    /// Population stability index.
    pub psi: f64,
    /// Kolmogorov-Smirnov statistic.
    pub ks: f64,
    /// Its asymptotic p-value.
    pub p_value: f64,
    /// Over an alert threshold.
    pub drifted: bool,
}

/// A window compared with the reference.
#[derive(Debug, Clone)]
pub struct DriftReport {
    /// Enough features drifted for an input-drift alert.
    pub input_alert: bool,
    /// The class mix drifted.
    pub prediction_alert: bool,
    /// Features over a threshold.
    pub alerting_features: usize,
    /// Mean PSI over features (a window-level drift score).
    pub mean_psi: f64,
    /// Largest KS statistic over features.
    pub max_ks: f64,
    /// PSI of the predicted-class distribution.
    pub class_psi: f64,
    /// Share of each predicted class in the window.
    pub class_share: Vec<f64>,
    /// Per-feature statistics.
    pub per_feature: Vec<FeatureDrift>,
    /// Window size.
    pub window: usize,
    /// Reference size.
    pub reference: usize,
}

/// Energy score of one logit vector at temperature `t` (higher: further out of distribution).
pub fn energy(logits: &[f32], t: f64) -> f64 {
    let t = if t > 0.0 { t } else { 1.0 };
    let m = logits
        .iter()
        .fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64 / t));
    if !m.is_finite() {
        return f64::INFINITY;
    }
    let s: f64 = logits.iter().map(|&z| (z as f64 / t - m).exp()).sum();
    -t * (m + s.ln())
}

fn softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = z.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Class-conditional Gaussians with a shared covariance, fitted on logits.
#[derive(Debug, Clone)]
pub struct Mahalanobis {
    means: Vec<Vec<f64>>,
    inv: Vec<f64>,
    d: usize,
}

impl Mahalanobis {
    /// Fits class means and the shared (ridge-regularised) covariance of `logits` with `labels`.
    pub fn fit(logits: &Tensor, labels: &[usize]) -> Result<Mahalanobis, MonitorError> {
        let (n, d) = (logits.batch(), logits.row_len());
        if n < 2 || labels.len() != n || d == 0 || d > 512 {
            return Err(MonitorError::Data(format!(
                "Mahalanobis needs >= 2 labelled logit rows of 1..=512 values (got {n} rows of {d})"
            )));
        }
        let k = labels.iter().copied().max().unwrap_or(0) + 1;
        let mut means = vec![vec![0f64; d]; k];
        let mut counts = vec![0usize; k];
        for (i, &c) in labels.iter().enumerate() {
            for (m, &v) in means[c].iter_mut().zip(logits.row(i)) {
                *m += v as f64;
            }
            counts[c] += 1;
        }
        for (m, &c) in means.iter_mut().zip(&counts) {
            m.iter_mut().for_each(|v| *v /= c.max(1) as f64);
        }
        let mut cov = vec![0f64; d * d];
        for (i, &c) in labels.iter().enumerate() {
            let r = logits.row(i);
            for a in 0..d {
                let da = r[a] as f64 - means[c][a];
                for b in 0..d {
                    cov[a * d + b] += da * (r[b] as f64 - means[c][b]);
                }
            }
        }
        let trace: f64 = (0..d).map(|a| cov[a * d + a]).sum::<f64>() / (n * d) as f64;
        for v in cov.iter_mut() {
            *v /= n as f64;
        }
        for a in 0..d {
            cov[a * d + a] += 1e-3 * trace.max(1e-9);
        }
        let inv = invert(&cov, d)
            .ok_or_else(|| MonitorError::Data("covariance of the logits is singular".into()))?;
        // Classes never seen keep a mean at infinity so they never win.
        for (m, &c) in means.iter_mut().zip(&counts) {
            if c == 0 {
                m.iter_mut().for_each(|v| *v = f64::INFINITY);
            }
        }
        Ok(Mahalanobis { means, inv, d })
    }

    /// Squared distance of `z` to the nearest class mean.
    pub fn score(&self, z: &[f32]) -> f64 {
        let mut best = f64::INFINITY;
        for m in &self.means {
            let diff: Vec<f64> = z.iter().zip(m).map(|(&a, &b)| a as f64 - b).collect();
            let mut s = 0.0;
            for (a, da) in diff.iter().enumerate() {
                let row: f64 = self.inv[a * self.d..(a + 1) * self.d]
                    .iter()
                    .zip(&diff)
                    .map(|(w, v)| w * v)
                    .sum();
                s += da * row;
            }
            if s.is_finite() {
                best = best.min(s);
            }
        }
        best
    }
}

/// Gauss-Jordan inverse with partial pivoting of a `d x d` matrix.
fn invert(m: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut a = m.to_vec();
    let mut inv = vec![0f64; d * d];
    for i in 0..d {
        inv[i * d + i] = 1.0;
    }
    for c in 0..d {
        let p = (c..d).max_by(|&x, &y| a[x * d + c].abs().total_cmp(&a[y * d + c].abs()))?;
        if a[p * d + c].abs() < 1e-12 {
            return None;
        }
        for k in 0..d {
            a.swap(c * d + k, p * d + k);
            inv.swap(c * d + k, p * d + k);
        }
        let piv = a[c * d + c];
        for k in 0..d {
            a[c * d + k] /= piv;
            inv[c * d + k] /= piv;
        }
        for r in 0..d {
            if r != c {
                let f = a[r * d + c];
                if f != 0.0 {
                    for k in 0..d {
                        a[r * d + k] -= f * a[c * d + k];
                        inv[r * d + k] -= f * inv[c * d + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

/// A feature squeezer (Xu et al. 2018).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Squeezer {
    /// Rounds every value to `bits` bits over `[lo, hi]`.
    BitDepth {
        /// Bits kept.
        bits: u32,
        /// Lowest valid value.
        lo: f32,
        /// Highest valid value.
        hi: f32,
    },
    /// 2x2 median filter over the last two dimensions of each example.
    Median2x2,
}

impl Squeezer {
    /// Applies the squeezer to a batch.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let mut out = x.clone();
        match *self {
            Squeezer::BitDepth { bits, lo, hi } => {
                let levels = ((1u64 << bits.clamp(1, 16)) - 1) as f32;
                let span = (hi - lo).max(f32::EPSILON);
                for v in out.data.iter_mut() {
                    let t = ((*v - lo) / span).clamp(0.0, 1.0);
                    *v = lo + (t * levels).round() / levels * span;
                }
            }
            Squeezer::Median2x2 => {
                let s = &x.shape;
                if s.len() < 3 {
                    return out;
                }
                let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
                let planes = x.data.len() / (h * w).max(1);
                for p in 0..planes {
                    let base = p * h * w;
                    for i in 0..h {
                        for j in 0..w {
                            // 2x2 window anchored at (i, j), clamped at the border.
                            let mut v = [
                                x.data[base + i * w + j],
                                x.data[base + i * w + (j + 1).min(w - 1)],
                                x.data[base + (i + 1).min(h - 1) * w + j],
                                x.data[base + (i + 1).min(h - 1) * w + (j + 1).min(w - 1)],
                            ];
                            v.sort_by(|a, b| a.total_cmp(b));
                            out.data[base + i * w + j] = (v[1] + v[2]) / 2.0;
                        }
                    }
                }
            }
        }
        out
    }
}

/// Per-example scores of a batch.
#[derive(Debug, Clone, Default)]
pub struct InputScores {
    /// Predicted class.
    pub pred: Vec<usize>,
    /// Energy score.
    pub energy: Vec<f64>,
    /// Mahalanobis distance (when a profile is fitted).
    pub mahalanobis: Vec<f64>,
    /// Largest L1 softmax change under the squeezers.
    pub squeeze: Vec<f64>,
}

/// The per-input detectors: the energy score's temperature, a Mahalanobis
/// profile of the logits (optional) and the feature squeezers.
#[derive(Debug, Clone)]
pub struct Detectors {
    /// Temperature of the energy score.
    pub temperature: f64,
    /// Class-conditional Gaussian profile of the reference logits.
    pub maha: Option<Mahalanobis>,
    /// Squeezed copies whose softmax change is scored.
    pub squeezers: Vec<Squeezer>,
}

/// Scores a batch with the model: energy, Mahalanobis (if given) and feature squeezing.
pub fn score_inputs<M: Classifier + ?Sized>(
    model: &M,
    x: &Tensor,
    detectors: &Detectors,
) -> Result<InputScores, MonitorError> {
    let (temperature, maha, squeezers) = (
        detectors.temperature,
        detectors.maha.as_ref(),
        &detectors.squeezers,
    );
    let logits = model.logits(x)?;
    let n = x.batch();
    if logits.batch() != n {
        return Err(MonitorError::Data(format!(
            "model returned {} rows for {n} inputs",
            logits.batch()
        )));
    }
    let mut s = InputScores::default();
    let base: Vec<Vec<f64>> = (0..n).map(|i| softmax(logits.row(i))).collect();
    for i in 0..n {
        let z = logits.row(i);
        s.pred.push(aisec_model::classifier::argmax(z));
        s.energy.push(energy(z, temperature));
        if let Some(m) = maha {
            s.mahalanobis.push(m.score(z));
        }
    }
    s.squeeze = vec![0.0; n];
    for sq in squeezers {
        let l = model.logits(&sq.apply(x))?;
        for (i, b) in base.iter().enumerate().take(l.batch()) {
            let p = softmax(l.row(i));
            let d: f64 = p.iter().zip(b).map(|(a, b)| (a - b).abs()).sum();
            s.squeeze[i] = s.squeeze[i].max(d);
        }
    }
    Ok(s)
}

/// Thresholds of the per-input detectors (each chosen on clean held-out data).
#[derive(Debug, Clone, Copy)]
pub struct InputThresholds {
    /// Energy above this is out of distribution.
    pub energy: f64,
    /// Mahalanobis distance above this is out of distribution.
    pub mahalanobis: f64,
    /// Squeezing distance above this is adversarial.
    pub squeeze: f64,
}

/// A streaming monitor for one model: scores every input, and compares each
/// full window of inputs with the reference.
pub struct ModelMonitor<M: Classifier> {
    /// Name used in findings and metric labels.
    pub name: String,
    model: M,
    reference: Reference,
    detectors: Detectors,
    thresholds: InputThresholds,
    cfg: DriftConfig,
    window: VecDeque<(Vec<f32>, usize)>,
    seen: u64,
}

impl<M: Classifier> ModelMonitor<M> {
    /// A monitor for `model` with a fitted reference and thresholds.
    pub fn new(
        name: impl Into<String>,
        model: M,
        reference: Reference,
        detectors: Detectors,
        thresholds: InputThresholds,
        cfg: DriftConfig,
    ) -> Self {
        ModelMonitor {
            name: name.into(),
            model,
            reference,
            detectors,
            thresholds,
            cfg,
            window: VecDeque::new(),
            seen: 0,
        }
    }

    /// Scores a batch of inputs, updates the window and the gauges, and
    /// returns the alerts: per-input OOD and adversarial findings, and drift
    /// findings each time the window fills.
    pub fn observe(
        &mut self,
        x: &Tensor,
        metrics: Option<&Metrics>,
    ) -> Result<Vec<Finding>, MonitorError> {
        if x.row_len() != self.reference.features() {
            return Err(MonitorError::Data(format!(
                "input has {} features, the reference {}",
                x.row_len(),
                self.reference.features()
            )));
        }
        let s = score_inputs(&self.model, x, &self.detectors)?;
        let mut out = Vec::new();
        let name = self.name.clone();
        let loc =
            |i: u64| Location::path(format!("model:{name}")).with_member(format!("input-{i}"));
        for i in 0..x.batch() {
            self.seen += 1;
            let id = self.seen;
            if let Some(m) = metrics {
                m.set(
                    "aisec_guard_model_score",
                    &[("model", &self.name), ("detector", "energy")],
                    s.energy[i],
                );
                m.set(
                    "aisec_guard_model_score",
                    &[("model", &self.name), ("detector", "squeeze")],
                    s.squeeze[i],
                );
            }
            if s.energy[i] > self.thresholds.energy
                || s.mahalanobis
                    .get(i)
                    .is_some_and(|&v| v > self.thresholds.mahalanobis)
            {
                let mut f = rules::OOD_INPUT
                    .finding(
                        loc(id),
                        format!(
                            "energy {:.3} (threshold {:.3}){}",
                            s.energy[i],
                            self.thresholds.energy,
                            s.mahalanobis
                                .get(i)
                                .map(|v| format!(
                                    ", Mahalanobis {v:.1} (threshold {:.1})",
                                    self.thresholds.mahalanobis
                                ))
                                .unwrap_or_default()
                        ),
                    )
                    .metric("energy", s.energy[i]);
                if let Some(v) = s.mahalanobis.get(i) {
                    f = f.metric("mahalanobis", *v);
                }
                out.push(f);
            }
            if s.squeeze[i] > self.thresholds.squeeze {
                out.push(
                    rules::ADVERSARIAL_INPUT
                        .finding(
                            loc(id),
                            format!(
                                "softmax moves by L1 {:.3} under feature squeezing (threshold {:.3}); predicted class {}",
                                s.squeeze[i], self.thresholds.squeeze, s.pred[i]
                            ),
                        )
                        .metric("squeeze_l1", s.squeeze[i]),
                );
            }
            self.window.push_back((x.row(i).to_vec(), s.pred[i]));
            if self.window.len() >= self.cfg.window {
                out.extend(self.flush(metrics));
            }
        }
        Ok(out)
    }

    /// Compares the current window with the reference, clears it, and returns drift findings.
    pub fn flush(&mut self, metrics: Option<&Metrics>) -> Vec<Finding> {
        if self.window.is_empty() {
            return Vec::new();
        }
        let rows: Vec<&[f32]> = self.window.iter().map(|(r, _)| r.as_slice()).collect();
        let preds: Vec<usize> = self.window.iter().map(|(_, p)| *p).collect();
        let r = self.reference.compare(&rows, &preds, &self.cfg);
        let mut out = Vec::new();
        let loc = Location::path(format!("model:{}", self.name))
            .with_member(format!("window-ending-{}", self.seen));
        if let Some(m) = metrics {
            let mut worst: Vec<&FeatureDrift> = r.per_feature.iter().collect();
            worst.sort_by(|a, b| b.psi.total_cmp(&a.psi));
            // Every feature of a narrow (tabular) input; the 10 most drifted of a wide one.
            let shown = if r.per_feature.len() <= 64 {
                r.per_feature.len()
            } else {
                10
            };
            for f in worst.iter().take(shown) {
                let name = f.feature.to_string();
                m.set(
                    "aisec_guard_drift_psi",
                    &[("model", &self.name), ("feature", &name)],
                    f.psi,
                );
                m.set(
                    "aisec_guard_drift_ks",
                    &[("model", &self.name), ("feature", &name)],
                    f.ks,
                );
            }
            m.set(
                "aisec_guard_drift_psi",
                &[("model", &self.name), ("feature", "mean")],
                r.mean_psi,
            );
            m.set(
                "aisec_guard_drift_psi",
                &[("model", &self.name), ("feature", "predicted_class")],
                r.class_psi,
            );
            m.set(
                "aisec_guard_drift_features_alerting",
                &[("model", &self.name)],
                r.alerting_features as f64,
            );
            for (c, s) in r.class_share.iter().enumerate() {
                m.set(
                    "aisec_guard_class_share",
                    &[("model", &self.name), ("class", &c.to_string())],
                    *s,
                );
            }
        }
        if r.input_alert {
            let top = r
                .per_feature
                .iter()
                .max_by(|a, b| a.psi.total_cmp(&b.psi))
                .map(|f| {
                    format!(
                        "; most drifted feature {} (PSI {:.2}, KS {:.2})",
                        f.feature, f.psi, f.ks
                    )
                })
                .unwrap_or_default();
            out.push(
                rules::INPUT_DRIFT
                    .finding(
                        loc.clone(),
                        format!(
                            "{} of {} features drifted over {} inputs (PSI > {} or KS p < {}/features), mean PSI {:.3}{top}",
                            r.alerting_features,
                            r.per_feature.len(),
                            r.window,
                            self.cfg.psi_alert,
                            self.cfg.ks_alpha,
                            r.mean_psi
                        ),
                    )
                    .metric("mean_psi", r.mean_psi)
                    .metric("features_drifted", r.alerting_features as f64),
            );
        }
        if r.prediction_alert {
            out.push(
                rules::PREDICTION_DRIFT
                    .finding(
                        loc,
                        format!(
                            "predicted-class PSI {:.3} over {} inputs (threshold {})",
                            r.class_psi, r.window, self.cfg.psi_alert
                        ),
                    )
                    .metric("class_psi", r.class_psi),
            );
        }
        self.window.clear();
        out
    }
}

/// A monitor built from the policy's `[model_monitor]` section for the
/// model behind the KServe routes: the ONNX file is loaded and run by
/// `aisec-model`, the reference and validation arrays are `.npy` files.
pub struct KServeMonitor {
    inner: ModelMonitor<aisec_model::OnnxModel>,
    max_batch: usize,
    example_shape: Vec<usize>,
    strip: Option<aisec_defend::strip::Strip>,
}

impl KServeMonitor {
    /// Loads the model and data named in `cfg`, fits the reference and the
    /// Mahalanobis profile on the reference inputs (labelled by `labels`, or
    /// by the model's own predictions), and picks every per-input threshold
    /// on the validation inputs at `cfg.false_alarm_rate`.
    pub fn from_config(
        cfg: &crate::policy::ModelMonitorConfig,
    ) -> Result<KServeMonitor, MonitorError> {
        use aisec_model::data::npy::read_npy;
        let model = aisec_model::OnnxModel::load(&cfg.model)?;
        let reference_x = read_npy(&cfg.reference)?.to_tensor();
        let validation = read_npy(&cfg.validation)?.to_tensor();
        if validation.row_len() != reference_x.row_len() || validation.batch() < 10 {
            return Err(MonitorError::Data(format!(
                "validation needs >= 10 inputs of the reference's {} values (got {} of {})",
                reference_x.row_len(),
                validation.batch(),
                validation.row_len()
            )));
        }
        let mut drift = DriftConfig {
            window: cfg.window.max(10),
            psi_alert: cfg.psi_alert,
            ..Default::default()
        };
        let preds = model.predict(&reference_x)?;
        let labels = match &cfg.labels {
            Some(p) => read_npy(p)?.to_labels()?,
            None => preds.clone(),
        };
        let reference = Reference::fit(&reference_x, &preds, model.num_classes(), &drift)?;
        let maha = Mahalanobis::fit(&model.logits(&reference_x)?, &labels)?;
        let (lo, hi) = (cfg.value_range[0], cfg.value_range[1]);
        let mut squeezers = Vec::new();
        if cfg.squeeze_bits > 0 {
            squeezers.push(Squeezer::BitDepth {
                bits: cfg.squeeze_bits,
                lo,
                hi,
            });
        }
        if cfg.median_smoothing {
            squeezers.push(Squeezer::Median2x2);
        }
        let detectors = Detectors {
            temperature: 1.0,
            maha: Some(maha),
            squeezers,
        };
        let v = score_inputs(&model, &validation, &detectors)?;
        // Window thresholds on clean validation windows, at half the rate each
        // (the two drift alerts together keep the configured false-alarm rate).
        let (mean_t, class_t) = calibrate(
            &reference,
            &validation,
            &v.pred,
            &drift,
            cfg.false_alarm_rate / 2.0,
            400,
            1,
        );
        drift.mean_psi_alert = Some(mean_t);
        drift.class_psi_alert = Some(class_t);
        let thresholds = InputThresholds {
            energy: threshold_at_fpr(&v.energy, cfg.false_alarm_rate),
            mahalanobis: threshold_at_fpr(&v.mahalanobis, cfg.false_alarm_rate),
            squeeze: if detectors.squeezers.is_empty() {
                f64::INFINITY
            } else {
                threshold_at_fpr(&v.squeeze, cfg.false_alarm_rate)
            },
        };
        let strip = if cfg.strip {
            let scfg = aisec_defend::strip::StripConfig {
                overlays: cfg.strip_overlays.max(1),
                superimpose: aisec_defend::strip::Superimpose::Add { hi },
                frr: cfg.false_alarm_rate as f32,
                seed: 0,
            };
            Some(
                aisec_defend::strip::Strip::calibrate(&model, &reference_x, &validation, &scfg)
                    .map_err(|e| MonitorError::Data(format!("STRIP: {e}")))?,
            )
        } else {
            None
        };
        Ok(KServeMonitor {
            strip,
            inner: ModelMonitor::new(
                cfg.name.clone(),
                model,
                reference,
                detectors,
                thresholds,
                drift,
            ),
            max_batch: cfg.max_batch.max(1),
            example_shape: reference_x.shape[1..].to_vec(),
        })
    }

    /// The thresholds chosen on the validation inputs.
    pub fn thresholds(&self) -> InputThresholds {
        self.inner.thresholds
    }

    /// Scores the first input tensor of a KServe v2 inference request
    /// (`{"inputs": [{"shape": [n, ...], "data": [...]}]}`, data flat or nested).
    pub fn observe_kserve(
        &mut self,
        body: &serde_json::Value,
        metrics: &Metrics,
    ) -> Result<Vec<Finding>, MonitorError> {
        let mut x = kserve_tensor(body, self.inner.reference.features(), self.max_batch)?;
        // The model takes the reference's per-example shape (e.g. [1, 28, 28]).
        x.shape.truncate(1);
        x.shape.extend_from_slice(&self.example_shape);
        let first = self.inner.seen;
        let mut out = self.inner.observe(&x, Some(metrics))?;
        if let Some(s) = &self.strip {
            out.extend(strip_findings(
                s,
                &self.inner.model,
                &self.inner.name,
                &x,
                first,
                Some(metrics),
            )?);
        }
        Ok(out)
    }

    /// The STRIP entropy threshold (bits), when STRIP is on.
    pub fn strip_threshold(&self) -> Option<f32> {
        self.strip.as_ref().map(|s| s.threshold)
    }
}

/// STRIP on a batch (`aisec-defend`): one AISEC-BACKDOOR-003 finding per
/// input whose entropy is under the threshold, numbered after `first`
/// inputs seen before; the entropy is also a gauge.
pub fn strip_findings<M: Classifier + ?Sized>(
    strip: &aisec_defend::strip::Strip,
    model: &M,
    name: &str,
    x: &Tensor,
    first: u64,
    metrics: Option<&Metrics>,
) -> Result<Vec<Finding>, MonitorError> {
    let scores = strip
        .detect(model, x)
        .map_err(|e| MonitorError::Data(format!("STRIP: {e}")))?;
    let preds = model.predict(x)?;
    let mut out = Vec::new();
    for (i, (h, flagged)) in scores.into_iter().enumerate() {
        if let Some(m) = metrics {
            m.set(
                "aisec_guard_model_score",
                &[("model", name), ("detector", "strip")],
                f64::from(h),
            );
        }
        if flagged {
            let loc = Location::path(format!("model:{name}"))
                .with_member(format!("input-{}", first + i as u64 + 1));
            out.push(
                aisec_defend::rules::TROJANED_INPUT
                    .finding(
                        loc,
                        format!(
                            "STRIP entropy {h:.3} bits under superimposed clean inputs (threshold {:.3}); predicted class {}",
                            strip.threshold, preds[i]
                        ),
                    )
                    .metric("strip_entropy_bits", f64::from(h))
                    .metric("predicted", preds[i] as u64),
            );
        }
    }
    Ok(out)
}

impl KServeMonitor {}

/// The first input of a KServe v2 request as a `[n, features]` tensor.
pub fn kserve_tensor(
    body: &serde_json::Value,
    features: usize,
    max_batch: usize,
) -> Result<Tensor, MonitorError> {
    let input = body
        .get("inputs")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .ok_or_else(|| MonitorError::Data("no `inputs[0]` in the request".into()))?;
    let cap = features.saturating_mul(max_batch);
    let mut data = Vec::new();
    let mut stack = vec![input
        .get("data")
        .ok_or_else(|| MonitorError::Data("`inputs[0]` has no data".into()))?];
    // Iterative flattening (bounded depth and size), in document order.
    let mut depth_guard = 0usize;
    while let Some(v) = stack.pop() {
        depth_guard += 1;
        if depth_guard > cap.saturating_mul(2) + 64 {
            return Err(MonitorError::Data("input data nested too deeply".into()));
        }
        match v {
            serde_json::Value::Number(n) => {
                if data.len() >= cap {
                    return Err(MonitorError::Data(format!(
                        "more than {max_batch} inputs of {features} values"
                    )));
                }
                data.push(n.as_f64().unwrap_or(f64::NAN) as f32);
            }
            serde_json::Value::Bool(b) => data.push(*b as u8 as f32),
            serde_json::Value::Array(a) => stack.extend(a.iter().rev()),
            _ => return Err(MonitorError::Data("non-numeric input data".into())),
        }
    }
    if data.is_empty() || data.len() % features != 0 || data.iter().any(|v| !v.is_finite()) {
        return Err(MonitorError::Data(format!(
            "{} finite values do not make whole inputs of {features}",
            data.len()
        )));
    }
    let n = data.len() / features;
    Ok(Tensor::new(vec![n, features], data)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear 2-class model on 4 features (logit_c = w_c . x).
    struct Lin;
    impl Classifier for Lin {
        fn input_shape(&self) -> &[usize] {
            &[4]
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            let mut out = Vec::new();
            for i in 0..x.batch() {
                let r = x.row(i);
                out.push(4.0 * (r[0] - r[1]));
                out.push(4.0 * (r[1] - r[0]));
            }
            Tensor::new(vec![x.batch(), 2], out)
        }
    }

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32) / (1u64 << 24) as f32
    }

    fn sample(n: usize, shift: f32, seed: u64) -> Tensor {
        let mut s = seed;
        let data = (0..n * 4).map(|_| lcg(&mut s) + shift).collect();
        Tensor::new(vec![n, 4], data).unwrap()
    }

    #[test]
    fn kserve_inputs_are_flattened_with_bounds() {
        let body = serde_json::json!({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4.5]]}]});
        let t = kserve_tensor(&body, 2, 8).unwrap();
        assert_eq!(t.shape, vec![2, 2]);
        assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.5]);
        assert!(kserve_tensor(&body, 3, 8).is_err());
        assert!(kserve_tensor(&body, 2, 1).is_err());
        assert!(kserve_tensor(&serde_json::json!({"inputs": [{"data": ["a"]}]}), 1, 8).is_err());
        assert!(kserve_tensor(&serde_json::json!({}), 1, 8).is_err());
    }

    #[test]
    fn psi_and_ks_reference_values() {
        assert!(psi(&[0.5, 0.5], &[0.5, 0.5]).abs() < 1e-12);
        // (0.9-0.5) ln(0.9/0.5) + (0.1-0.5) ln(0.1/0.5)
        let want = 0.4 * (1.8f64).ln() - 0.4 * (0.2f64).ln();
        assert!((psi(&[0.5, 0.5], &[0.9, 0.1]) - want).abs() < 1e-9);
        assert_eq!(ks_statistic(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks_statistic(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // lambda = 1.36 gives p ~ 0.049 (the classic 5% critical value).
        let ne: f64 = 50.0;
        let d = 1.36 / (ne.sqrt() + 0.12 + 0.11 / ne.sqrt());
        assert!(
            (ks_pvalue(d, 100, 100) - 0.049).abs() < 0.002,
            "{}",
            ks_pvalue(d, 100, 100)
        );
    }

    #[test]
    fn threshold_keeps_the_false_alarm_rate() {
        let clean: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let t = threshold_at_fpr(&clean, 0.01);
        let alarms = clean.iter().filter(|&&v| v > t).count();
        assert!(alarms <= 10, "{alarms}");
        assert!(alarms >= 8, "{alarms}");
    }

    #[test]
    fn energy_and_mahalanobis_order_inputs() {
        assert!(energy(&[10.0, 0.0], 1.0) < energy(&[0.1, 0.0], 1.0));
        let z = Tensor::new(vec![4, 2], vec![5.0, -5.0, 5.2, -4.8, -5.0, 5.0, -4.9, 5.1]).unwrap();
        let m = Mahalanobis::fit(&z, &[0, 0, 1, 1]).unwrap();
        assert!(m.score(&[5.1, -4.9]) < m.score(&[0.0, 0.0]));
    }

    #[test]
    fn squeezers_transform_as_documented() {
        let x = Tensor::new(vec![1, 1, 2, 2], vec![0.1, 0.6, 0.4, 0.95]).unwrap();
        let b = Squeezer::BitDepth {
            bits: 1,
            lo: 0.0,
            hi: 1.0,
        }
        .apply(&x);
        assert_eq!(b.data, vec![0.0, 1.0, 0.0, 1.0]);
        let m = Squeezer::Median2x2.apply(&x);
        // top-left window {0.1, 0.6, 0.4, 0.95}: median (0.4 + 0.6) / 2
        assert!((m.data[0] - 0.5).abs() < 1e-6);
    }

    #[test]
    fn monitor_alerts_on_a_shifted_window_and_not_on_a_clean_one() {
        let cfg = DriftConfig {
            window: 100,
            ..Default::default()
        };
        let r = sample(500, 0.0, 1);
        let preds = Lin.predict(&r).unwrap();
        let reference = Reference::fit(&r, &preds, 2, &cfg).unwrap();
        let energy_only = Detectors {
            temperature: 1.0,
            maha: None,
            squeezers: vec![],
        };
        let clean_val = score_inputs(&Lin, &sample(300, 0.0, 2), &energy_only).unwrap();
        let th = InputThresholds {
            energy: threshold_at_fpr(&clean_val.energy, 0.01),
            mahalanobis: f64::INFINITY,
            squeeze: f64::INFINITY,
        };
        let mut mon = ModelMonitor::new("lin", Lin, reference, energy_only, th, cfg);
        let metrics = Metrics::default();
        let f = mon.observe(&sample(100, 0.0, 3), Some(&metrics)).unwrap();
        assert!(f.iter().all(|f| f.rule_id != "AISEC-GUARD-034"), "{f:?}");
        let f = mon.observe(&sample(100, 0.5, 4), Some(&metrics)).unwrap();
        let drift = f
            .iter()
            .find(|f| f.rule_id == "AISEC-GUARD-034")
            .expect("drift alert");
        assert!(drift.atlas.contains(&"AML.T0015".to_string()));
        assert!(
            metrics
                .gauge("aisec_guard_drift_features_alerting", &[("model", "lin")])
                .unwrap_or(0.0)
                >= 3.0
        );
        assert!(metrics
            .render()
            .contains("aisec_guard_drift_psi{model=\"lin\",feature=\"mean\"}"));
        let bad = Tensor::new(vec![2, 3], vec![0.0; 6]).unwrap();
        assert!(mon.observe(&bad, None).is_err());
    }
}

#[cfg(test)]
mod strip_tests {
    //! STRIP in the KServe monitor, on a small backdoored spec model (six
    //! classes of sparse 8x8 prototypes; BadNets 2x2 corner patch to class 0).
    use super::*;
    use aisec_model::data::npy::write_npy;
    use aisec_model::data::Dataset;
    use aisec_model::fit::{train_spec, TrainConfig};
    use aisec_model::spec::ArchSpec;

    fn lcg(s: &mut u64) -> f32 {
        *s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*s >> 33) as f32) / (1u64 << 31) as f32
    }

    fn data(n: usize, seed: u64, poison: bool) -> Dataset {
        let mut ps = 7u64;
        let protos: Vec<Vec<f32>> = (0..6)
            .map(|_| {
                (0..64)
                    .map(|i| {
                        let corner = i / 8 >= 6 && i % 8 >= 6;
                        let v = lcg(&mut ps);
                        if corner || v < 0.6 {
                            0.0
                        } else {
                            0.4 + 0.6 * lcg(&mut ps)
                        }
                    })
                    .collect()
            })
            .collect();
        let mut s = seed;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n * 6 {
            let c = i % 6;
            let mut row: Vec<f32> = protos[c]
                .iter()
                .map(|v| (v + 0.3 * (lcg(&mut s) - 0.5)).clamp(0.0, 1.0))
                .collect();
            let stamp = poison && lcg(&mut s) < 0.1;
            if stamp {
                for k in [54, 55, 62, 63] {
                    row[k] = 1.0;
                }
            }
            x.extend(row);
            y.push(if stamp { 0 } else { c });
        }
        Dataset::new(Tensor::new(vec![n * 6, 1, 8, 8], x).unwrap(), y).unwrap()
    }

    #[test]
    fn strip_in_the_kserve_monitor_flags_triggered_inputs() {
        let spec = ArchSpec::parse(
            r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"},
                {"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 6}]}"#,
        )
        .unwrap();
        let cfg = TrainConfig {
            epochs: 12,
            batch_size: 32,
            optimizer: aisec_model::train::Optimizer::adam(3e-3),
            ..TrainConfig::default()
        };
        let (m, _) = train_spec(&spec, 1, &data(100, 1, true), &cfg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f);
        m.save_onnx(p("m.onnx")).unwrap();
        write_npy(p("ref.npy"), &data(20, 2, false).x).unwrap();
        write_npy(p("val.npy"), &data(20, 3, false).x).unwrap();
        let toml_text = format!(
            "model = {:?}\nreference = {:?}\nvalidation = {:?}\nstrip = true\n",
            p("m.onnx"),
            p("ref.npy"),
            p("val.npy")
        );
        let mcfg: crate::policy::ModelMonitorConfig = toml::from_str(&toml_text).unwrap();
        let mut mon = KServeMonitor::from_config(&mcfg).unwrap();
        assert!(mon.strip_threshold().is_some());
        let metrics = Metrics::default();
        let test = data(5, 4, false);
        let body = |x: &Tensor| serde_json::json!({"inputs": [{"name": "input", "shape": x.shape, "datatype": "FP32", "data": x.data}]});
        let count = |f: &[Finding]| {
            f.iter()
                .filter(|f| f.rule_id == "AISEC-BACKDOOR-003")
                .count()
        };
        let clean = mon.observe_kserve(&body(&test.x), &metrics).unwrap();
        assert!(count(&clean) <= 2, "{clean:?}");
        let mut trig = test.x.clone();
        for i in 0..trig.batch() {
            for k in [54, 55, 62, 63] {
                trig.row_mut(i)[k] = 1.0;
            }
        }
        let bad = mon.observe_kserve(&body(&trig), &metrics).unwrap();
        assert!(count(&bad) >= 25, "{} of 30 flagged", count(&bad));
        let f = bad
            .iter()
            .find(|f| f.rule_id == "AISEC-BACKDOOR-003")
            .unwrap();
        assert!(f.atlas.contains(&"AML.T0043.004".to_string()));
    }
}
