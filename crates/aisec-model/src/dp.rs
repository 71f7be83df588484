//! DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS
//! 2016): per-example gradient clipping and Gaussian noise, one step at a
//! time over a [`Trainer`]. The per-example gradients come from the
//! hand-written backward (see `graph/per_example.rs`), not from running
//! batches of one. Clipping and noise follow Opacus's `DPOptimizer`: clip
//! factor min(1, C / (|g_i| + 1e-6)) over the norm of all of an example's
//! weight gradients together, noise N(0, (sigma C)^2) on the clipped sum,
//! and division by the *expected* batch size (Poisson sampling makes the
//! actual size random; dividing by it would leak it). The privacy
//! accounting is in `aisec-harden`.

use rand::Rng;

use crate::classifier::{Loss, ModelError, Tensor};
use crate::loss::loss_and_grad;
use crate::onnx_model::{out_tensor, OnnxModel};
use crate::train::Trainer;

/// Largest per-example gradient buffer (batch x weights), in floats: 1 GiB.
const MAX_PER_EXAMPLE_FLOATS: usize = 1 << 28;

/// DP-SGD settings of one step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpConfig {
    /// Noise standard deviation as a multiple of `max_grad_norm`.
    pub noise_multiplier: f64,
    /// Per-example clipping norm C.
    pub max_grad_norm: f64,
    /// Expected batch size (sampling rate x data set size).
    pub expected_batch: f64,
}

/// What one DP-SGD step saw (for progress and reports; not private).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpStepStats {
    /// Mean loss of the batch before the step.
    pub loss: f32,
    /// Examples in the batch.
    pub batch: usize,
    /// Fraction of examples whose gradient norm exceeded C.
    pub clipped: f32,
    /// Mean per-example gradient norm before clipping.
    pub mean_norm: f32,
}

impl OnnxModel {
    /// Per-example losses and per-example weight gradients: one tensor per
    /// weight (in [`OnnxModel::weight_names`] order) shaped
    /// `[batch, ...weight shape]`, whose sum over the batch is
    /// [`OnnxModel::weight_grads`]. Refuses graphs with weights whose
    /// per-example gradient is undefined (batch normalisation) or weights
    /// transformed before use.
    #[allow(clippy::type_complexity)]
    pub fn per_example_weight_grads(
        &self,
        x: &Tensor,
        loss: &Loss,
    ) -> Result<(Vec<f32>, Vec<(String, Tensor)>), ModelError> {
        let batch = x.batch();
        let total: usize = self
            .weight_names()
            .iter()
            .filter_map(|n| self.weight(n))
            .map(|w| w.data.len())
            .sum();
        if batch.saturating_mul(total) > MAX_PER_EXAMPLE_FLOATS {
            return Err(ModelError::Limit {
                node: "(DP-SGD)".into(),
                what: format!("per-example gradient buffer ({batch} examples x {total} weights; use a smaller batch)"),
                size: (batch as u64).saturating_mul(total as u64),
                limit: MAX_PER_EXAMPLE_FLOATS as u64,
            });
        }
        let tape = self.graph.forward(self.input_val(x)?)?;
        let z = out_tensor(self.graph.output_of(&tape)?)?;
        let (vals, gz) = loss_and_grad(&z, loss)?;
        let ids: Vec<usize> = self.graph.weights.iter().map(|w| w.1).collect();
        let grads = self.graph.backward_per_example(&tape, gz, &ids, batch)?;
        let out = self.named_weight_grads(grads, Some(batch));
        Ok((vals, out))
    }
}

/// Clips each example's gradient (all weights together) to norm `clip` in
/// place, Opacus's factor min(1, clip / (norm + 1e-6)); returns the norms
/// before clipping.
pub fn clip_per_example(per: &mut [(String, Tensor)], batch: usize, clip: f64) -> Vec<f32> {
    let mut sq = vec![0.0f64; batch];
    for (_, t) in per.iter() {
        let n = t.data.len() / batch.max(1);
        for (e, s) in sq.iter_mut().enumerate() {
            *s += t.data[e * n..(e + 1) * n]
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>();
        }
    }
    let norms: Vec<f64> = sq.iter().map(|s| s.sqrt()).collect();
    for (_, t) in per.iter_mut() {
        let n = t.data.len() / batch.max(1);
        for (e, norm) in norms.iter().enumerate() {
            let f = (clip / (norm + 1e-6)).min(1.0) as f32;
            if f < 1.0 {
                t.data[e * n..(e + 1) * n].iter_mut().for_each(|v| *v *= f);
            }
        }
    }
    norms.iter().map(|&n| n as f32).collect()
}

/// One standard normal draw (Box & Muller 1958).
fn gauss(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// One DP-SGD step: per-example gradients, clipping to `max_grad_norm`,
/// the clipped sum plus N(0, (sigma C)^2) noise per coordinate, divided by
/// the expected batch size, then the trainer's update. An empty batch
/// (possible under Poisson sampling) is a step of noise alone, as in Opacus.
pub fn dp_sgd_step(
    trainer: &mut Trainer,
    model: &mut OnnxModel,
    x: &Tensor,
    loss: &Loss,
    cfg: &DpConfig,
    rng: &mut impl Rng,
) -> Result<DpStepStats, ModelError> {
    if !(cfg.max_grad_norm > 0.0 && cfg.expected_batch > 0.0 && cfg.noise_multiplier >= 0.0) {
        return Err(ModelError::Invalid(format!(
            "DP-SGD settings out of range: {cfg:?}"
        )));
    }
    let batch = x.batch();
    let (vals, mut grads, norms) = if batch == 0 {
        let zeros = model
            .weight_names()
            .into_iter()
            .filter_map(|n| {
                model.weight(&n).map(|w| {
                    (
                        n,
                        Tensor {
                            shape: w.shape.clone(),
                            data: vec![0.0; w.data.len()],
                        },
                    )
                })
            })
            .collect::<Vec<_>>();
        (vec![], zeros, vec![])
    } else {
        let (vals, mut per) = model.per_example_weight_grads(x, loss)?;
        let norms = clip_per_example(&mut per, batch, cfg.max_grad_norm);
        let summed = per
            .into_iter()
            .map(|(n, t)| {
                let k = t.data.len() / batch;
                let mut s = vec![0.0f32; k];
                for e in 0..batch {
                    s.iter_mut()
                        .zip(&t.data[e * k..(e + 1) * k])
                        .for_each(|(a, b)| *a += b);
                }
                (
                    n,
                    Tensor {
                        shape: t.shape[1..].to_vec(),
                        data: s,
                    },
                )
            })
            .collect::<Vec<_>>();
        (vals, summed, norms)
    };
    let std = cfg.noise_multiplier * cfg.max_grad_norm;
    let inv = 1.0 / cfg.expected_batch;
    for (_, g) in grads.iter_mut() {
        for v in g.data.iter_mut() {
            *v = ((f64::from(*v) + std * gauss(rng)) * inv) as f32;
        }
    }
    let mean_loss = if vals.is_empty() {
        0.0
    } else {
        vals.iter().sum::<f32>() / vals.len() as f32
    };
    // `apply` divides by the number of losses it is given: one, so the
    // gradient it sees is already the (noisy) mean over the expected batch.
    trainer.apply(model, &[mean_loss], grads)?;
    let b = norms.len().max(1) as f32;
    Ok(DpStepStats {
        loss: mean_loss,
        batch,
        clipped: norms
            .iter()
            .filter(|&&n| f64::from(n) > cfg.max_grad_norm)
            .count() as f32
            / b,
        mean_norm: norms.iter().sum::<f32>() / b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ArchSpec;
    use crate::train::Optimizer;
    use rand::SeedableRng;

    fn cnn() -> OnnxModel {
        let spec = ArchSpec::parse(
            r#"{"input": [1, 8, 8], "layers": [
                {"type": "conv2d", "filters": 3, "kernel": 3, "stride": 1, "padding": 1},
                {"type": "relu"}, {"type": "max_pool2d", "size": 2},
                {"type": "conv2d", "filters": 4, "kernel": 2, "stride": 2},
                {"type": "tanh"}, {"type": "flatten"},
                {"type": "dense", "units": 5}, {"type": "relu"}, {"type": "dense", "units": 3}]}"#,
        )
        .unwrap();
        OnnxModel::from_spec(&spec, 7).unwrap()
    }

    fn batch(n: usize) -> (Tensor, Vec<usize>) {
        let data: Vec<f32> = (0..n * 64)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        (
            Tensor::new(vec![n, 1, 8, 8], data).unwrap(),
            (0..n).map(|i| i % 3).collect(),
        )
    }

    #[test]
    fn per_example_grads_equal_batch_of_one_grads() {
        let m = cnn();
        let (x, y) = batch(5);
        let (vals, per) = m
            .per_example_weight_grads(&x, &Loss::CrossEntropy { labels: y.clone() })
            .unwrap();
        assert_eq!(vals.len(), 5);
        for e in 0..5 {
            let xe = Tensor::new(vec![1, 1, 8, 8], x.row(e).to_vec()).unwrap();
            let (v1, g1) = m
                .weight_grads(&xe, &Loss::CrossEntropy { labels: vec![y[e]] })
                .unwrap();
            assert!((v1[0] - vals[e]).abs() < 1e-6);
            for ((n, pe), (n1, g)) in per.iter().zip(&g1) {
                assert_eq!(n, n1);
                let k = g.data.len();
                assert_eq!(pe.shape[0], 5);
                for i in 0..k {
                    let (a, b) = (pe.data[e * k + i], g.data[i]);
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{n}[{i}] example {e}: {a} vs {b}"
                    );
                }
            }
        }
        // And the batch sum is the ordinary batched gradient.
        let (_, gb) = m
            .weight_grads(&x, &Loss::CrossEntropy { labels: y })
            .unwrap();
        for ((_, pe), (_, g)) in per.iter().zip(&gb) {
            let k = g.data.len();
            for i in 0..k {
                let s: f32 = (0..5).map(|e| pe.data[e * k + i]).sum();
                assert!((s - g.data[i]).abs() <= 1e-4 * (1.0 + g.data[i].abs()));
            }
        }
    }

    #[test]
    fn clipping_bounds_each_example_norm() {
        let m = cnn();
        let (x, y) = batch(6);
        let (_, mut per) = m
            .per_example_weight_grads(&x, &Loss::CrossEntropy { labels: y })
            .unwrap();
        let before = clip_per_example(&mut per.clone(), 6, 1e9);
        let clip = f64::from(before.iter().cloned().fold(f32::INFINITY, f32::min)) * 0.5;
        let norms = clip_per_example(&mut per, 6, clip);
        assert_eq!(norms, before);
        let after = clip_per_example(&mut per.clone(), 6, 1e9);
        for (a, b) in after.iter().zip(&before) {
            // Every example was above the clip, so each lands on it.
            assert!(
                (f64::from(*a) - clip).abs() < 1e-4 * clip,
                "{a} vs {clip} (was {b})"
            );
        }
    }

    #[test]
    fn noiseless_dp_step_with_huge_clip_is_plain_sgd() {
        let (x, y) = batch(4);
        let loss = Loss::CrossEntropy { labels: y };
        let mut a = cnn();
        let mut b = cnn();
        let mut ta = Trainer::new(Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
        });
        let mut tb = Trainer::new(Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
        });
        let cfg = DpConfig {
            noise_multiplier: 0.0,
            max_grad_norm: 1e9,
            expected_batch: 4.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        dp_sgd_step(&mut ta, &mut a, &x, &loss, &cfg, &mut rng).unwrap();
        tb.step_loss(&mut b, &x, &loss).unwrap();
        for n in a.weight_names() {
            let (wa, wb) = (a.weight(&n).unwrap(), b.weight(&n).unwrap());
            for (p, q) in wa.data.iter().zip(&wb.data) {
                assert!((p - q).abs() < 1e-5, "{n}");
            }
        }
        // An empty batch is a noise-only step and changes the weights.
        let empty = Tensor::new(vec![0, 1, 8, 8], vec![]).unwrap();
        let before = a.weight("layer0.weight").unwrap();
        let cfg = DpConfig {
            noise_multiplier: 1.0,
            max_grad_norm: 1.0,
            expected_batch: 4.0,
        };
        dp_sgd_step(
            &mut ta,
            &mut a,
            &empty,
            &Loss::CrossEntropy { labels: vec![] },
            &cfg,
            &mut rng,
        )
        .unwrap();
        assert_ne!(a.weight("layer0.weight").unwrap(), before);
    }

    #[test]
    fn batch_norm_is_refused() {
        let m = OnnxModel::test_from_spec(
            r#"{"input": [4], "layers": [{"type": "dense", "units": 3}, {"type": "batch_norm"}, {"type": "dense", "units": 2}]}"#,
            1,
        );
        let x = Tensor::new(vec![2, 4], vec![0.1; 8]).unwrap();
        let r = m.per_example_weight_grads(&x, &Loss::CrossEntropy { labels: vec![0, 1] });
        assert!(matches!(r, Err(ModelError::Unsupported { .. })), "{r:?}");
    }
}
