//! Per-example signals read from a model's outputs only (black-box): the
//! log-probability of the true label (the loss-threshold attack's score) and
//! the logit-scaled confidence LiRA models as Gaussian.
//!
//! Both come from one query per example and augmentation through the
//! [`Classifier`] trait, so a local ONNX model, a spec model, or a remote
//! KServe endpoint behind a query counter serve equally.

use aisec_model::{Classifier, Tensor};
use serde::Serialize;

use super::MembershipError;

/// What the model's output rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Unnormalised logits (softmax gives the probabilities).
    Logits,
    /// Probabilities (rows sum to one), as many prediction APIs return.
    Probabilities,
    /// Decide from the first answer: rows of non-negative values summing to
    /// one are probabilities, anything else is logits.
    Auto,
}

impl ScoreKind {
    /// Parses `logits`, `probs` / `probabilities` or `auto`.
    pub fn parse(s: &str) -> Option<ScoreKind> {
        match s {
            "logits" => Some(ScoreKind::Logits),
            "probs" | "probabilities" => Some(ScoreKind::Probabilities),
            "auto" => Some(ScoreKind::Auto),
            _ => None,
        }
    }

    /// `Auto` resolved against a batch of outputs.
    pub fn resolve(self, z: &Tensor) -> ScoreKind {
        if self != ScoreKind::Auto {
            return self;
        }
        let probs = (0..z.batch()).all(|i| {
            let r = z.row(i);
            r.iter().all(|&v| (0.0..=1.0).contains(&v))
                && (r.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-3
        });
        if probs && z.batch() > 0 {
            ScoreKind::Probabilities
        } else {
            ScoreKind::Logits
        }
    }
}

/// A deterministic input transformation queried alongside the original
/// (Carlini et al. 2022, Sec. V: averaging over augmented queries makes
/// LiRA stronger because training used those augmentations too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Augment {
    /// The example itself.
    Identity,
    /// Mirror along the last (width) axis.
    HorizontalFlip,
    /// Translate by `(dy, dx)` pixels, zero fill.
    Shift {
        /// Rows down (negative: up).
        dy: i32,
        /// Columns right (negative: left).
        dx: i32,
    },
}

impl Augment {
    /// Parses `identity`, `flip`, or `shift:DY,DX` (e.g. `shift:0,1`).
    pub fn parse(s: &str) -> Option<Augment> {
        match s {
            "identity" | "none" => Some(Augment::Identity),
            "flip" | "hflip" => Some(Augment::HorizontalFlip),
            _ => {
                let (a, b) = s.strip_prefix("shift:")?.split_once(',')?;
                Some(Augment::Shift {
                    dy: a.trim().parse().ok()?,
                    dx: b.trim().parse().ok()?,
                })
            }
        }
    }

    /// A short name (`identity`, `flip`, `shift:1,0`).
    pub fn name(&self) -> String {
        match self {
            Augment::Identity => "identity".into(),
            Augment::HorizontalFlip => "flip".into(),
            Augment::Shift { dy, dx } => format!("shift:{dy},{dx}"),
        }
    }

    /// Applies the transformation to a batch whose examples are images
    /// (`[.., h, w]`, at least two dimensions per example).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, MembershipError> {
        if *self == Augment::Identity {
            return Ok(x.clone());
        }
        if x.shape.len() < 3 {
            return Err(MembershipError::Invalid(format!(
                "augmentation {} needs image inputs [n, .., h, w], got {:?}",
                self.name(),
                x.shape
            )));
        }
        let w = x.shape[x.shape.len() - 1];
        let h = x.shape[x.shape.len() - 2];
        let planes = x.data.len() / (h * w).max(1);
        let mut out = vec![0.0f32; x.data.len()];
        for p in 0..planes {
            let src = &x.data[p * h * w..(p + 1) * h * w];
            let dst = &mut out[p * h * w..(p + 1) * h * w];
            for r in 0..h {
                for c in 0..w {
                    let (sr, sc) = match *self {
                        Augment::HorizontalFlip => (r as i64, (w - 1 - c) as i64),
                        Augment::Shift { dy, dx } => (r as i64 - dy as i64, c as i64 - dx as i64),
                        Augment::Identity => (r as i64, c as i64),
                    };
                    if sr >= 0 && sc >= 0 && (sr as usize) < h && (sc as usize) < w {
                        dst[r * w + c] = src[sr as usize * w + sc as usize];
                    }
                }
            }
        }
        Ok(Tensor {
            shape: x.shape.clone(),
            data: out,
        })
    }
}

fn logsumexp(v: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = v.clone().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// `log(1 + e^t)` without overflow for large `t` or loss of precision
/// for very negative `t` (where it is about `e^t`, not 0).
fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

/// `log p_y` and `log (1 - p_y)` of one output row, in forms that keep
/// their precision when the model is certain: a loss of `1e-30` stays
/// `1e-30` instead of rounding to 0, so high-margin examples keep their
/// order (the loss-threshold attack ranks them by it).
///
/// From logits, with `t = logsumexp_{j != y} z_j - z_y` (minus the margin
/// in log-sum-exp form): `log p_y = -softplus(t)` and
/// `log (1 - p_y) = -softplus(-t)`; `p_y` itself is never formed.
/// Distinct orders survive margins up to about 745 nats, where `e^-t`
/// leaves the range of `f64`.
///
/// From probabilities, with `q` the summed probability of the other
/// classes: `log p_y = -log1p(q / p_y)` and `log (1 - p_y) = log q -
/// log(p_y + q)` (the row normalised, so an answer rounded to `p_y = 1`
/// still ranks by its `q`).
fn log_p_and_complement(row: &[f32], y: usize, kind: ScoreKind) -> (f64, f64) {
    let others = || {
        row.iter()
            .enumerate()
            .filter(move |(j, _)| *j != y)
            .map(|(_, &v)| v as f64)
    };
    match kind {
        ScoreKind::Probabilities => {
            // Floor at the smallest positive double so a zero never becomes -inf.
            let py = (row[y] as f64).max(f64::MIN_POSITIVE);
            let rest = others().map(|v| v.max(0.0)).sum::<f64>();
            let rest = if rest > 0.0 {
                rest
            } else {
                (1.0 - py).max(0.0)
            };
            let log_p = -(rest / py).ln_1p();
            let log_c = rest.max(f64::MIN_POSITIVE).ln() - (py + rest).ln();
            (log_p, log_c)
        }
        _ => {
            let t = logsumexp(others()) - row[y] as f64;
            (-softplus(t), -softplus(-t))
        }
    }
}

/// The loss-threshold score (Yeom et al. 2018, "Privacy Risk in Machine
/// Learning: Analyzing the Connection to Overfitting"): minus the
/// cross-entropy of the true label, `log p_y`, computed so that it does not
/// saturate at 0 for confident predictions (see `log_p_and_complement`).
pub fn neg_cross_entropy(row: &[f32], y: usize, kind: ScoreKind) -> f64 {
    log_p_and_complement(row, y, kind).0
}

/// LiRA's logit-scaled confidence `phi = log p_y - log (1 - p_y)`
/// (Carlini et al. 2022, Sec. IV-B). From logits it is computed as
/// `z_y - logsumexp_{j != y} z_j`, which never forms `1 - p_y` and so stays
/// exact when the model is certain.
pub fn logit_confidence(row: &[f32], y: usize, kind: ScoreKind) -> f64 {
    let (a, b) = log_p_and_complement(row, y, kind);
    a - b
}

/// What querying a model for a set of examples gives.
#[derive(Debug, Clone)]
pub struct Signals {
    /// `log p_y` per example (identity query).
    pub log_p: Vec<f64>,
    /// `phi[i][a]`: logit-scaled confidence of example `i` under augmentation `a`.
    pub phi: Vec<Vec<f64>>,
    /// Whether the identity query predicted the label.
    pub correct: Vec<bool>,
    /// How the outputs were read.
    pub kind: ScoreKind,
}

/// Queries `model` for every example of `x` (with labels `y`) under each
/// augmentation (the first must be [`Augment::Identity`] or is treated as
/// the plain query) in batches of `batch`, telling `go_on` the queries of
/// each finished batch; when it answers false before the last batch,
/// querying stops and the result is `None` (the caller cancelled). Pass
/// `&mut |_| true` to query everything.
pub fn signals_until(
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    augments: &[Augment],
    kind: ScoreKind,
    batch: usize,
    go_on: &mut dyn FnMut(usize) -> bool,
) -> Result<Option<Signals>, MembershipError> {
    let n = x.batch();
    if y.len() != n {
        return Err(MembershipError::Invalid(format!(
            "{} labels for {n} examples",
            y.len()
        )));
    }
    let classes = model.num_classes();
    if classes < 2 {
        return Err(MembershipError::Invalid(format!(
            "membership scores need at least two classes, the model has {classes}"
        )));
    }
    if let Some(&bad) = y.iter().find(|&&l| l >= classes) {
        return Err(MembershipError::Invalid(format!(
            "label {bad} but the model has {classes} classes"
        )));
    }
    let augs: Vec<Augment> = if augments.is_empty() {
        vec![Augment::Identity]
    } else {
        augments.to_vec()
    };
    let batch = batch.max(1);
    let row = x.row_len();
    let mut out = Signals {
        log_p: vec![0.0; n],
        phi: vec![Vec::with_capacity(augs.len()); n],
        correct: vec![false; n],
        kind,
    };
    let mut resolved = None;
    for s in (0..n).step_by(batch) {
        let e = (s + batch).min(n);
        let mut shape = x.shape.clone();
        shape[0] = e - s;
        let xb = Tensor::new(shape, x.data[s * row..e * row].to_vec())?;
        for (a, aug) in augs.iter().enumerate() {
            let xa = aug.apply(&xb)?;
            let z = model.logits(&xa)?;
            if z.batch() != e - s || z.row_len() != classes {
                return Err(MembershipError::Invalid(format!(
                    "model answered shape {:?} for a batch of {} with {classes} classes",
                    z.shape,
                    e - s
                )));
            }
            if z.data.iter().any(|v| v.is_nan()) {
                return Err(MembershipError::Invalid("model answered NaN scores".into()));
            }
            let k = *resolved.get_or_insert_with(|| kind.resolve(&z));
            for i in 0..e - s {
                let r = z.row(i);
                let yi = y[s + i];
                out.phi[s + i].push(logit_confidence(r, yi, k));
                if a == 0 {
                    out.log_p[s + i] = neg_cross_entropy(r, yi, k);
                    out.correct[s + i] = aisec_model::classifier::argmax(r) == yi;
                }
            }
        }
        if !go_on((e - s) * augs.len()) && e < n {
            return Ok(None);
        }
    }
    out.kind = resolved.unwrap_or(kind);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_is_stable_and_matches_the_definition() {
        let row = [2.0f32, 0.5, -1.0];
        let e: Vec<f64> = row.iter().map(|&v| (v as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        let p = e[0] / s;
        let want = p.ln() - (1.0 - p).ln();
        assert!((logit_confidence(&row, 0, ScoreKind::Logits) - want).abs() < 1e-12);
        assert!((neg_cross_entropy(&row, 0, ScoreKind::Logits) - p.ln()).abs() < 1e-12);
        // A certain model: p_y rounds to 1 in floating point, phi stays finite.
        let sure = [100.0f32, 0.0, 0.0];
        let phi = logit_confidence(&sure, 0, ScoreKind::Logits);
        assert!((phi - (100.0 - 2f64.ln())).abs() < 1e-9, "{phi}");
        // The same model as probabilities.
        let probs: Vec<f32> = e.iter().map(|v| (v / s) as f32).collect();
        assert_eq!(
            ScoreKind::Auto.resolve(&Tensor::new(vec![1, 3], probs.clone()).unwrap()),
            ScoreKind::Probabilities
        );
        let phi_p = logit_confidence(&probs, 0, ScoreKind::Probabilities);
        assert!((phi_p - want).abs() < 1e-6, "{phi_p} vs {want}");
        // A zero probability is floored, not -inf.
        assert!(logit_confidence(&[0.0, 1.0], 0, ScoreKind::Probabilities).is_finite());
    }

    #[test]
    fn loss_scores_keep_the_order_of_high_margin_examples() {
        // Margins of 40 to 700 nats: p_y rounds to 1 in f64 for all of them,
        // so log p_y computed as z_y - logsumexp(z) ties at 0.
        let margins = [40.0f32, 60.0, 100.0, 200.0, 400.0, 700.0];
        let scores: Vec<f64> = margins
            .iter()
            .map(|&m| neg_cross_entropy(&[m, 0.0, -1.0], 0, ScoreKind::Logits))
            .collect();
        for w in scores.windows(2) {
            assert!(w[0] < w[1] && w[1] < 0.0, "{scores:?}");
        }
        // Close to -(e^-m + e^(-m-1)) for a margin m.
        let want = -((-40.0f64).exp() + (-41.0f64).exp());
        assert!(
            (scores[0] / want - 1.0).abs() < 1e-9,
            "{} vs {want}",
            scores[0]
        );
        // A wrong, confident prediction: large negative, still exact.
        let wrong = neg_cross_entropy(&[0.0, 300.0], 0, ScoreKind::Logits);
        assert!((wrong + 300.0).abs() < 1e-9, "{wrong}");
        // The same from probability answers rounded to p_y = 1 in f32.
        let probs: Vec<f64> = [1e-10f32, 1e-20, 1e-30]
            .iter()
            .map(|&q| neg_cross_entropy(&[1.0, q, 0.0], 0, ScoreKind::Probabilities))
            .collect();
        assert!(
            probs[0] < probs[1] && probs[1] < probs[2] && probs[2] < 0.0,
            "{probs:?}"
        );
        // phi stays the margin in log-sum-exp form.
        let phi = logit_confidence(&[700.0, 0.0, 0.0], 0, ScoreKind::Logits);
        assert!((phi - (700.0 - 2f64.ln())).abs() < 1e-9, "{phi}");
    }

    #[test]
    fn augmentations_move_pixels() {
        let x = Tensor::new(vec![1, 1, 2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let f = Augment::HorizontalFlip.apply(&x).unwrap();
        assert_eq!(f.data, vec![3., 2., 1., 6., 5., 4.]);
        let s = Augment::parse("shift:0,1").unwrap().apply(&x).unwrap();
        assert_eq!(s.data, vec![0., 1., 2., 0., 4., 5.]);
        let s = Augment::parse("shift:1,0").unwrap().apply(&x).unwrap();
        assert_eq!(s.data, vec![0., 0., 0., 1., 2., 3.]);
        assert!(Augment::HorizontalFlip
            .apply(&Tensor::zeros(vec![2, 5]))
            .is_err());
        assert!(Augment::parse("rotate").is_none());
    }
}
