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
use aisec_model::dp::clip_per_example;
use aisec_model::spec::ArchSpec;
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
    Ok(())
}
