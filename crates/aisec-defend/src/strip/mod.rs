//! STRIP, run-time detection of trojaned inputs (Gao et al., "STRIP: A
//! Defence Against Trojan Attacks on Deep Neural Networks", ACSAC 2019).
//!
//! Each input is superimposed with `n` clean images and the model's
//! predictions on the blends are scored by their mean Shannon entropy (in
//! bits). A clean input's blends are pulled towards the classes of the
//! images laid over it, so the predictions vary and the entropy is high; an
//! input carrying a trigger keeps sending its blends to the target class,
//! so the entropy is low. Inputs below a threshold are flagged; the
//! threshold is the entropy quantile at the chosen false-rejection rate
//! (1 % by default) on clean held-out inputs, as in the paper.
//!
//! Superimposition ([`Superimpose`]): by default as the paper's code does
//! it, adding the two images and saturating at the top of the input range
//! (OpenCV `addWeighted(x, 1, o, 1, 0)` on 8-bit images), which keeps a
//! bright trigger intact; or a mix `(1 - w) x + w o` for inputs whose range
//! is not `[0, hi]`. The overlays are a fixed set drawn once from the clean
//! pool (seeded), so scores are reproducible.

use aisec_core::{Finding, Location, Severity};
use aisec_model::fit::gather;
use aisec_model::{Classifier, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::rules;
use crate::DefendError;

/// How an input and an overlay are superimposed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Superimpose {
    /// `min(x + o, hi)` (the paper's code; `hi` is the top of the input range).
    Add {
        /// Largest input value.
        hi: f32,
    },
    /// `(1 - w) x + w o`.
    Mix {
        /// Weight of the overlay, in (0, 1).
        weight: f32,
    },
}

impl Superimpose {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Superimpose::Add { hi } => (a + b).min(hi),
            Superimpose::Mix { weight } => (1.0 - weight) * a + weight * b,
        }
    }
    fn valid(self) -> bool {
        match self {
            Superimpose::Add { hi } => hi.is_finite(),
            Superimpose::Mix { weight } => weight > 0.0 && weight < 1.0,
        }
    }
}

/// STRIP settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StripConfig {
    /// Clean overlays per input.
    pub overlays: usize,
    /// How inputs and overlays are superimposed.
    pub superimpose: Superimpose,
    /// False-rejection rate on clean held-out inputs the threshold is set at.
    pub frr: f32,
    /// Seed of the overlay draw.
    pub seed: u64,
}

impl Default for StripConfig {
    fn default() -> Self {
        StripConfig {
            overlays: 32,
            superimpose: Superimpose::Add { hi: 1.0 },
            frr: 0.01,
            seed: 0,
        }
    }
}

/// A calibrated STRIP detector.
#[derive(Debug, Clone)]
pub struct Strip {
    overlays: Tensor,
    superimpose: Superimpose,
    /// Entropy (bits) below which an input is flagged.
    pub threshold: f32,
    /// The false-rejection rate the threshold was set at.
    pub frr: f32,
    /// Clean held-out inputs the threshold was set on.
    pub calibration_inputs: usize,
}

/// Shannon entropy (bits) of the softmax of one logit row.
fn entropy_bits(z: &[f32]) -> f32 {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = z.iter().map(|v| f64::from(v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let h: f64 = e
        .iter()
        .map(|v| v / s)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.log2())
        .sum();
    h as f32
}

impl Strip {
    /// Draws the overlays from `pool` (clean inputs) and sets the
    /// threshold on `holdout` (other clean inputs, never the overlays).
    pub fn calibrate<C: Classifier + ?Sized>(
        model: &C,
        pool: &Tensor,
        holdout: &Tensor,
        cfg: &StripConfig,
    ) -> Result<Strip, DefendError> {
        if cfg.overlays == 0 || pool.batch() == 0 {
            return Err(DefendError::Invalid(
                "STRIP needs at least one clean overlay".into(),
            ));
        }
        if !(cfg.superimpose.valid() && cfg.frr >= 0.0 && cfg.frr < 1.0) {
            return Err(DefendError::Invalid(
                "STRIP: overlay weight must be in (0, 1) and the false-rejection rate in [0, 1)"
                    .into(),
            ));
        }
        if holdout.batch() < 10 {
            return Err(DefendError::Invalid(format!(
                "STRIP needs at least 10 clean held-out inputs to set its threshold, got {}",
                holdout.batch()
            )));
        }
        if pool.row_len() != holdout.row_len() {
            return Err(DefendError::Invalid(
                "overlays and held-out inputs differ in size".into(),
            ));
        }
        let mut idx: Vec<usize> = (0..pool.batch()).collect();
        idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(cfg.seed));
        idx.truncate(cfg.overlays);
        let mut s = Strip {
            overlays: gather(pool, &idx),
            superimpose: cfg.superimpose,
            threshold: 0.0,
            frr: cfg.frr,
            calibration_inputs: holdout.batch(),
        };
        let mut h = s.entropies(model, holdout)?;
        h.sort_by(f32::total_cmp);
        // At most floor(frr * n) clean inputs lie strictly below it.
        let k = ((cfg.frr * h.len() as f32).floor() as usize).min(h.len() - 1);
        s.threshold = h[k];
        Ok(s)
    }

    /// Overlays used per input.
    pub fn overlays(&self) -> usize {
        self.overlays.batch()
    }

    /// Mean prediction entropy (bits) of every input's blends.
    pub fn entropies<C: Classifier + ?Sized>(
        &self,
        model: &C,
        x: &Tensor,
    ) -> Result<Vec<f32>, DefendError> {
        let row = x.row_len();
        if row != self.overlays.row_len() {
            return Err(DefendError::Invalid(format!(
                "inputs of {row} values, overlays of {}",
                self.overlays.row_len()
            )));
        }
        let n = self.overlays.batch();
        let sp = self.superimpose;
        let per_pass = (256 / n).max(1);
        let mut out = Vec::with_capacity(x.batch());
        for start in (0..x.batch()).step_by(per_pass) {
            let end = (start + per_pass).min(x.batch());
            let mut data = Vec::with_capacity((end - start) * n * row);
            for i in start..end {
                let xi = x.row(i);
                for o in 0..n {
                    let ov = self.overlays.row(o);
                    data.extend(xi.iter().zip(ov).map(|(&a, &b)| sp.apply(a, b)));
                }
            }
            let mut shape = x.shape.clone();
            shape[0] = (end - start) * n;
            let z = model.logits(&Tensor::new(shape, data)?)?;
            for i in 0..end - start {
                let h: f32 = (0..n).map(|o| entropy_bits(z.row(i * n + o))).sum();
                out.push(h / n as f32);
            }
        }
        Ok(out)
    }

    /// Entropy of every input and whether it is flagged (below the threshold).
    pub fn detect<C: Classifier + ?Sized>(
        &self,
        model: &C,
        x: &Tensor,
    ) -> Result<Vec<(f32, bool)>, DefendError> {
        Ok(self
            .entropies(model, x)?
            .into_iter()
            .map(|h| (h, h < self.threshold))
            .collect())
    }
}

/// The finding for a batch: how many inputs STRIP flagged and the class
/// most of them are predicted as; info when none was. Severity: high when
/// any input is flagged beyond what the false-rejection rate explains
/// (more than twice the expected count plus one), otherwise low.
pub fn finding(subject: &str, scores: &[(f32, bool)], preds: &[usize], strip: &Strip) -> Finding {
    let flagged: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].1).collect();
    let n = scores.len();
    let loc = Location::path(subject.to_string());
    if flagged.is_empty() {
        return rules::TROJANED_INPUT
            .finding(
                loc,
                format!(
                    "none of {n} inputs below the STRIP entropy threshold {:.3} bits",
                    strip.threshold
                ),
            )
            .severity(Severity::Info)
            .title("No trojaned inputs found by STRIP")
            .metric("inputs", n as u64)
            .metric("threshold_bits", f64::from(strip.threshold));
    }
    let mut counts = std::collections::BTreeMap::new();
    for &i in &flagged {
        if let Some(&p) = preds.get(i) {
            *counts.entry(p).or_insert(0usize) += 1;
        }
    }
    let (top, top_n) = counts
        .iter()
        .max_by_key(|(_, &c)| c)
        .map(|(&k, &c)| (k, c))
        .unwrap_or((0, 0));
    let expected = strip.frr * n as f32;
    let sev = if flagged.len() as f32 > 2.0 * expected + 1.0 {
        Severity::High
    } else {
        Severity::Low
    };
    let first: Vec<String> = flagged.iter().take(10).map(|i| i.to_string()).collect();
    rules::TROJANED_INPUT
        .finding(
            loc,
            format!(
                "{} of {n} inputs below the STRIP entropy threshold {:.3} bits (false-rejection rate {:.1} %, {:.1} expected by chance); {top_n} of them predicted as class {top}; first: {}",
                flagged.len(),
                strip.threshold,
                100.0 * strip.frr,
                expected,
                first.join(", ")
            ),
        )
        .severity(sev)
        .metric("inputs", n as u64)
        .metric("flagged", flagged.len() as u64)
        .metric("threshold_bits", f64::from(strip.threshold))
        .metric("top_class", top as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn entropy_is_in_bits() {
        assert!((entropy_bits(&[0.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!((entropy_bits(&[0.0; 4]) - 2.0).abs() < 1e-6);
        assert!(entropy_bits(&[100.0, 0.0, 0.0]) < 1e-3);
    }

    #[test]
    fn strip_flags_triggered_inputs_at_a_low_false_rejection_rate() {
        let pool = synthetic(10, 7, 21);
        let holdout = synthetic(20, 7, 22);
        let test = synthetic(20, 7, 23);
        let bad = train(&poison(&synthetic(100, 7, 2), 0.1, 3), 4);
        let s = Strip::calibrate(&bad, &pool.x, &holdout.x, &StripConfig::default()).unwrap();
        assert_eq!(s.overlays(), 32);
        let clean = s.detect(&bad, &test.x).unwrap();
        let trig = s.detect(&bad, &stamped(&test.x)).unwrap();
        let frr = clean.iter().filter(|c| c.1).count() as f32 / clean.len() as f32;
        let tpr = trig.iter().filter(|c| c.1).count() as f32 / trig.len() as f32;
        assert!(frr <= 0.05, "false rejections {frr}");
        assert!(tpr >= 0.9, "detected {tpr}");
        let preds = bad.predict(&stamped(&test.x)).unwrap();
        let f = finding("batch.npy", &trig, &preds, &s);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.metrics["top_class"], serde_json::json!(0));
        let f = finding("batch.npy", &[(3.0, false)], &[1], &s);
        assert_eq!(f.severity, Severity::Info);
    }

    #[test]
    fn strip_rejects_unusable_inputs() {
        let d = synthetic(2, 7, 1);
        let m = train(&d, 0);
        assert!(Strip::calibrate(&m, &d.x, &d.x, &StripConfig::default()).is_ok());
        let few = gather(&d.x, &[0, 1]);
        assert!(Strip::calibrate(&m, &d.x, &few, &StripConfig::default()).is_err());
        let cfg = StripConfig {
            superimpose: Superimpose::Mix { weight: 1.0 },
            ..StripConfig::default()
        };
        assert!(Strip::calibrate(&m, &d.x, &d.x, &cfg).is_err());
        let s = Strip::calibrate(&m, &d.x, &d.x, &StripConfig::default()).unwrap();
        assert!(s.entropies(&m, &Tensor::zeros(vec![1, 3])).is_err());
    }
}
