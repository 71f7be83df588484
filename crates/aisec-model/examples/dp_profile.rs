//! Where a DP-SGD step's time goes, against a non-private step, on the
//! Opacus MNIST CNN (SampleConvNet) with random inputs: forward only, the
//! batched weight gradients (non-private), the per-example weight
//! gradients, and the clipping. The variants run interleaved, repeated,
//! and the median of each is reported, so a loaded machine slows all of
//! them alike and the ratios stay meaningful.
//!
//! `cargo run --release -p aisec-model --example dp_profile -- [BATCH] [REPS]`

use std::time::Instant;

use aisec_model::classifier::{Loss, Tensor};
use aisec_model::dp::{clip_per_example, dp_sgd_step, DpConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, Trainer};
use aisec_model::OnnxModel;
use rand::{Rng, SeedableRng};

const SPEC: &str = r#"{"input": [1, 28, 28], "layers": [
  {"type": "conv2d", "filters": 16, "kernel": 8, "stride": 2, "padding": 3}, {"type": "relu"},
  {"type": "max_pool2d", "size": 2, "stride": 1},
  {"type": "conv2d", "filters": 32, "kernel": 4, "stride": 2}, {"type": "relu"},
  {"type": "max_pool2d", "size": 2, "stride": 1},
  {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(64);
    let reps: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(20);
    let spec = ArchSpec::parse(SPEC)?;
    let m = OnnxModel::from_spec(&spec, 0)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let x = Tensor::new(
        vec![batch, 1, 28, 28],
        (0..batch * 784).map(|_| rng.gen_range(0.0..1.0)).collect(),
    )?;
    let loss = Loss::CrossEntropy {
        labels: (0..batch).map(|i| i % 10).collect(),
    };
    let (mut fwd, mut bat, mut per, mut clip) = (vec![], vec![], vec![], vec![]);
    let (mut step_plain, mut step_dp, mut per_trained) = (vec![], vec![], vec![]);
    let mut parts: [Vec<f64>; 2] = [vec![], vec![]];
    let (mut mp, mut md) = (m.clone(), m.clone());
    let sgd = Optimizer::Sgd {
        lr: 0.01,
        momentum: 0.0,
    };
    let (mut tp, mut td) = (Trainer::new(sgd.clone()), Trainer::new(sgd));
    let dp = DpConfig {
        noise_multiplier: 1.0,
        max_grad_norm: 1.0,
        expected_batch: batch as f64,
    };
    for _ in 0..reps {
        let t = Instant::now();
        m.forward(&x)?;
        fwd.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        m.weight_grads(&x, &loss)?;
        bat.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (_, mut g) = m.per_example_weight_grads(&x, &loss)?;
        per.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        clip_per_example(&mut g, batch, 1.0);
        clip.push(t.elapsed().as_secs_f64());
        // Whole optimiser steps: plain SGD and a DP-SGD step (noise, update).
        let t = Instant::now();
        tp.step_loss(&mut mp, &x, &loss)?;
        step_plain.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        dp_sgd_step(&mut td, &mut md, &x, &loss, &dp, &mut rng)?;
        step_dp.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let (_, mut pe) = md.per_example_weight_grads(&x, &loss)?;
        per_trained.push(t.elapsed().as_secs_f64());
        // The rest of a DP step, part by part.
        let t = Instant::now();
        clip_per_example(&mut pe, batch, 1.0);
        let summed: Vec<Vec<f32>> = pe
            .iter()
            .map(|(_, t)| {
                let k = t.data.len() / batch;
                let mut s = vec![0.0f32; k];
                for e in 0..batch {
                    s.iter_mut()
                        .zip(&t.data[e * k..(e + 1) * k])
                        .for_each(|(a, b)| *a += b);
                }
                s
            })
            .collect();
        parts[0].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut acc = 0.0f64;
        for g in &summed {
            for _ in g {
                let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
                let u2: f64 = rng.gen();
                acc += (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            }
        }
        parts[1].push(t.elapsed().as_secs_f64());
        std::hint::black_box(acc);
    }
    let (f, b, p, c) = (median(fwd), median(bat), median(per), median(clip));
    let params: usize = m
        .weight_names()
        .iter()
        .filter_map(|n| m.weight(n))
        .map(|w| w.data.len())
        .sum();
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    eprintln!(
        "batch {batch}, {params} weights, {reps} reps, RAYON_NUM_THREADS {threads} (medians, ms)"
    );
    eprintln!("forward                      {:8.2}", 1e3 * f);
    eprintln!(
        "forward + batched backward   {:8.2}  (non-private step)",
        1e3 * b
    );
    eprintln!(
        "forward + per-example grads  {:8.2}  ({:.2}x the batched)",
        1e3 * p,
        p / b
    );
    eprintln!("clipping                     {:8.2}", 1e3 * c);
    eprintln!("per-example + clip / batched {:8.2}x", (p + c) / b);
    let (sp, sd) = (median(step_plain), median(step_dp));
    eprintln!("SGD step                     {:8.2}", 1e3 * sp);
    eprintln!(
        "per-example grads, DP-trained weights {:8.2}",
        1e3 * median(per_trained)
    );
    eprintln!(
        "clip + sum over examples     {:8.2}",
        1e3 * median(parts[0].clone())
    );
    eprintln!(
        "noise draws                  {:8.2}",
        1e3 * median(parts[1].clone())
    );
    eprintln!(
        "DP-SGD step                  {:8.2}  ({:.2}x the SGD step)",
        1e3 * sd,
        sd / sp
    );
    Ok(())
}
