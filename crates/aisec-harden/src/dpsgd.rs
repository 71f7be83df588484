//! DP-SGD training (Abadi et al., "Deep Learning with Differential
//! Privacy", CCS 2016) of an aisec model: Poisson sampling of each batch
//! (every example joins a step independently with probability `q`, which is
//! what the accountants assume), per-example clipping and Gaussian noise
//! ([`aisec_model::dp::dp_sgd_step`]), and the privacy spent after every
//! epoch from the RDP accountant, with the tight PLD accountant at the end.
//! One epoch is round(1/q) steps, as Opacus's Poisson data loader has.

use std::time::Instant;

use aisec_core::Cancel;
use aisec_model::classifier::{Loss, Tensor};
use aisec_model::data::Dataset;
use aisec_model::dp::{dp_sgd_step, DpConfig};
use aisec_model::fit::{evaluate, gather, sync};
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, Trainer};
use aisec_model::OnnxModel;
use rand::{Rng, SeedableRng};

use crate::accountant::{
    noise_multiplier_for_epsilon, AccountantKind, PldAccountant, RdpAccountant,
};
use crate::error::{HardenError, Result};

/// DP-SGD settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpSgdConfig {
    /// Passes over the data (each round(1/q) Poisson-sampled steps).
    pub epochs: usize,
    /// Poisson sampling rate q (expected batch / data set size).
    pub sample_rate: f64,
    /// Noise multiplier; `None` picks it for `target_epsilon`.
    pub noise_multiplier: Option<f64>,
    /// Epsilon to reach at the end (used when `noise_multiplier` is None).
    pub target_epsilon: Option<f64>,
    /// Delta of the (epsilon, delta) guarantee.
    pub delta: f64,
    /// Per-example clipping norm.
    pub max_grad_norm: f64,
    /// Optimiser (plain SGD in the DP-SGD paper and the Opacus examples).
    pub optimizer: Optimizer,
    /// Seed of sampling and noise.
    pub seed: u64,
}

/// One epoch of a DP-SGD run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DpEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub loss: f32,
    /// Epsilon spent so far (RDP accountant).
    pub epsilon_rdp: f64,
    /// Test accuracy after the epoch, when test data was given.
    pub test_accuracy: Option<f32>,
    /// Wall time of the epoch's training steps, seconds.
    pub seconds: f64,
    /// Fraction of per-example gradients that were clipped.
    pub clipped: f32,
}

/// The outcome of a DP-SGD run: what was done and what it cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DpReport {
    /// Noise multiplier used.
    pub noise_multiplier: f64,
    /// Sampling rate.
    pub sample_rate: f64,
    /// Steps taken.
    pub steps: u64,
    /// Delta.
    pub delta: f64,
    /// Clipping norm.
    pub max_grad_norm: f64,
    /// Epsilon from the RDP accountant.
    pub epsilon_rdp: f64,
    /// Epsilon from the PLD accountant (tight).
    pub epsilon_pld: f64,
    /// Per-epoch history.
    pub epochs: Vec<DpEpoch>,
    /// True when the run was cancelled before its last epoch.
    pub incomplete: bool,
}

impl DpSgdConfig {
    fn steps_per_epoch(&self) -> u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let s = (1.0 / self.sample_rate).round().max(1.0) as u64;
        s
    }

    /// The noise multiplier this run uses (given, or found by bisection on
    /// the RDP accountant for `target_epsilon`, as Opacus's
    /// `make_private_with_epsilon` does).
    pub fn resolve_noise(&self) -> Result<f64> {
        match (self.noise_multiplier, self.target_epsilon) {
            (Some(s), _) => Ok(s),
            (None, Some(eps)) => noise_multiplier_for_epsilon(
                AccountantKind::Rdp,
                eps,
                self.delta,
                self.sample_rate,
                self.steps_per_epoch() * self.epochs as u64,
            ),
            (None, None) => Err(HardenError::InvalidParameter(
                "give a noise multiplier or a target epsilon".into(),
            )),
        }
    }
}

/// Trains `model` with DP-SGD on `train`; evaluates on `test` after each
/// epoch when given. `on_epoch` sees each finished epoch (progress).
/// `spec` is the model's architecture when it is a spec model: with a
/// `dropout` layer the steps run on its training twin (dropout active, a
/// fresh seeded mask per step; the per-example gradients flow through the
/// mask) and the weights are copied back after every epoch.
pub fn train_dp(
    model: &mut OnnxModel,
    spec: Option<&ArchSpec>,
    train: &Dataset,
    test: Option<&Dataset>,
    cfg: &DpSgdConfig,
    cancel: &Cancel,
    mut on_epoch: impl FnMut(&DpEpoch),
) -> Result<DpReport> {
    if !(cfg.sample_rate > 0.0 && cfg.sample_rate <= 1.0) {
        return Err(HardenError::InvalidParameter(format!(
            "sampling rate {} must be in (0, 1]",
            cfg.sample_rate
        )));
    }
    let sigma = cfg.resolve_noise()?;
    let n = train.x.batch();
    if n == 0 {
        return Err(HardenError::InvalidParameter("no training examples".into()));
    }
    #[allow(clippy::cast_precision_loss)]
    let dp = DpConfig {
        noise_multiplier: sigma,
        max_grad_norm: cfg.max_grad_norm,
        expected_batch: cfg.sample_rate * n as f64,
    };
    let mut trainer = Trainer::new(cfg.optimizer.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let mut rdp = RdpAccountant::new();
    let mut pld = PldAccountant::new();
    let per_epoch = cfg.steps_per_epoch();
    let mut twin = match spec {
        Some(s) if s.has_dropout() => Some(OnnxModel::spec_train_twin(s, model)?),
        _ => None,
    };
    let mut step = 0u64;
    let mut epochs = Vec::new();
    let mut incomplete = false;
    'outer: for epoch in 1..=cfg.epochs {
        let t0 = Instant::now();
        let (mut loss_sum, mut clipped_sum) = (0.0f64, 0.0f64);
        for _ in 0..per_epoch {
            if cancel.is_cancelled() {
                incomplete = true;
                break 'outer;
            }
            let idx: Vec<usize> = (0..n)
                .filter(|_| rng.gen::<f64>() < cfg.sample_rate)
                .collect();
            let xb: Tensor = gather(&train.x, &idx);
            let labels: Vec<usize> = idx.iter().map(|&i| train.y[i]).collect();
            step += 1;
            let target = match twin.as_mut() {
                Some(tm) => {
                    // Masks from their own stream: the sampling and noise
                    // draws stay those of a run without dropout.
                    tm.set_dropout_seed(
                        cfg.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x6470_6d61_736b,
                    );
                    tm
                }
                None => &mut *model,
            };
            let st = dp_sgd_step(
                &mut trainer,
                target,
                &xb,
                &Loss::CrossEntropy { labels },
                &dp,
                &mut rng,
            )?;
            // The step is spent once it is taken, whatever its batch.
            rdp.step(sigma, cfg.sample_rate, 1)?;
            pld.step(sigma, cfg.sample_rate, 1)?;
            loss_sum += f64::from(st.loss);
            clipped_sum += f64::from(st.clipped);
        }
        let seconds = t0.elapsed().as_secs_f64();
        sync(twin.as_ref(), model)?;
        let test_accuracy = match test {
            Some(t) => Some(evaluate(model, t, 512)?.1),
            None => None,
        };
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let e = DpEpoch {
            epoch,
            loss: (loss_sum / per_epoch as f64) as f32,
            epsilon_rdp: rdp.epsilon(cfg.delta)?.0,
            test_accuracy,
            seconds,
            clipped: (clipped_sum / per_epoch as f64) as f32,
        };
        on_epoch(&e);
        epochs.push(e);
    }
    sync(twin.as_ref(), model)?;
    let steps: u64 = rdp.history().iter().map(|s| s.steps).sum();
    Ok(DpReport {
        noise_multiplier: sigma,
        sample_rate: cfg.sample_rate,
        steps,
        delta: cfg.delta,
        max_grad_norm: cfg.max_grad_norm,
        epsilon_rdp: rdp.epsilon(cfg.delta)?.0,
        epsilon_pld: pld.epsilon(cfg.delta)?,
        epochs,
        incomplete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three epochs of plain SGD (lr 0.5) at sampling rate 0.1 and noise
    /// `sigma`, delta 1e-5, clipping norm 1, seed 0.
    fn sgd(sigma: f64) -> DpSgdConfig {
        DpSgdConfig {
            epochs: 3,
            sample_rate: 0.1,
            noise_multiplier: Some(sigma),
            target_epsilon: None,
            delta: 1e-5,
            max_grad_norm: 1.0,
            optimizer: Optimizer::Sgd {
                lr: 0.5,
                momentum: 0.0,
            },
            seed: 0,
        }
    }

    fn blobs(n: usize, seed: u64) -> Dataset {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * 4);
        let mut y = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % 2;
            let centre = if c == 0 { -1.0 } else { 1.0 };
            for _ in 0..4 {
                x.push(centre + rng.gen_range(-0.8f32..0.8));
            }
            y.push(c);
        }
        Dataset::new(Tensor::new(vec![n, 4], x).unwrap(), y).unwrap()
    }

    #[test]
    fn dp_training_learns_separable_data_and_accounts_for_it() {
        let spec = ArchSpec::parse(
            r#"{"input": [4], "layers": [{"type": "dense", "units": 8}, {"type": "relu"}, {"type": "dense", "units": 2}]}"#,
        )
        .unwrap();
        let mut m = OnnxModel::from_spec(&spec, 3).unwrap();
        let (train, test) = (blobs(400, 1), blobs(200, 2));
        let cfg = DpSgdConfig {
            seed: 9,
            ..sgd(1.0)
        };
        let mut seen = 0;
        let r = train_dp(
            &mut m,
            Some(&spec),
            &train,
            Some(&test),
            &cfg,
            &Cancel::new(),
            |_| seen += 1,
        )
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(r.steps, 30);
        let acc = r.epochs.last().unwrap().test_accuracy.unwrap();
        assert!(acc > 0.9, "accuracy {acc}");
        // The report's epsilons are the accountants' for 30 steps.
        let mut a = RdpAccountant::new();
        a.step(1.0, 0.1, 30).unwrap();
        assert!((r.epsilon_rdp - a.epsilon(1e-5).unwrap().0).abs() < 1e-12);
        assert!(r.epsilon_pld < r.epsilon_rdp && r.epsilon_pld > 0.0);
        // Epsilon grows epoch by epoch.
        assert!(r
            .epochs
            .windows(2)
            .all(|w| w[1].epsilon_rdp > w[0].epsilon_rdp));
    }

    /// A spec with dropout trains on its twin (masks active, weights
    /// copied back): seeded, different from the same run without dropout,
    /// and it still learns; the sampling and noise draws are unchanged.
    #[test]
    fn dp_training_goes_through_dropout() {
        let with = ArchSpec::parse(
            r#"{"input": [4], "layers": [{"type": "dense", "units": 16}, {"type": "relu"}, {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 2}]}"#,
        )
        .unwrap();
        let without = ArchSpec::parse(
            r#"{"input": [4], "layers": [{"type": "dense", "units": 16}, {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 2}]}"#,
        )
        .unwrap();
        let (train, test) = (blobs(400, 1), blobs(200, 2));
        let cfg = DpSgdConfig {
            seed: 4,
            ..sgd(0.8)
        };
        let run = |spec: &ArchSpec| {
            let mut m = OnnxModel::from_spec(spec, 3).unwrap();
            let r = train_dp(
                &mut m,
                Some(spec),
                &train,
                Some(&test),
                &cfg,
                &Cancel::new(),
                |_| {},
            )
            .unwrap();
            (m.weight("layer0.weight").unwrap().data, r)
        };
        let (wa, ra) = run(&with);
        let (wb, _) = run(&with);
        assert_eq!(wa, wb, "same seed, same weights");
        let (wc, rc) = run(&without);
        assert_ne!(wa, wc, "dropout changed nothing");
        assert_eq!(ra.steps, rc.steps);
        assert!((ra.epsilon_rdp - rc.epsilon_rdp).abs() < 1e-12);
        let acc = ra.epochs.last().unwrap().test_accuracy.unwrap();
        assert!(acc > 0.9, "accuracy {acc}");
    }

    #[test]
    fn noise_for_a_target_epsilon_is_found() {
        let cfg = DpSgdConfig {
            epochs: 2,
            sample_rate: 0.01,
            noise_multiplier: None,
            target_epsilon: Some(2.0),
            optimizer: Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.0,
            },
            ..sgd(1.0)
        };
        let s = cfg.resolve_noise().unwrap();
        let mut a = RdpAccountant::new();
        a.step(s, 0.01, 200).unwrap();
        let eps = a.epsilon(1e-5).unwrap().0;
        assert!(eps <= 2.0 && eps > 1.99, "sigma {s} gives {eps}");
    }
}
