//! Spec training speed without the CLI: the three `bench/train` families
//! (MLP, CNN, ResNet with batch norm) on 4,000 synthetic 28x28 images
//! (MNIST-like sparsity: about 80% zero pixels), batch 64, the optimisers of
//! `bench/train/bench.py`. Prints seconds per epoch (wall and process CPU)
//! and a checksum of the trained weights, so two builds can be compared for
//! speed and for identical numerics.
//!
//! `RAYON_NUM_THREADS=N cargo run --release -p aisec-model --example train_bench -- [MODEL..] [--epochs E]`

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::time::Instant;

use aisec_model::classifier::Tensor;
use aisec_model::data::Dataset;
use aisec_model::fit::{train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, WeightDecay};
use rand::{Rng, SeedableRng};

const MLP: &str = r#"{"input": [1, 28, 28], "layers": [{"type": "flatten"}, {"type": "dense", "units": 256}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#;
const CNN: &str = r#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "max_pool2d", "size": 2}, {"type": "conv2d", "filters": 32, "kernel": 3, "padding": 1}, {"type": "relu"}, {"type": "max_pool2d", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 64}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#;
const RESNET: &str = r#"{"input": [1, 28, 28], "layers": [{"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1}, {"type": "batch_norm"}, {"type": "relu"}, {"type": "residual", "filters": 16, "batch_norm": true}, {"type": "residual", "filters": 32, "stride": 2, "batch_norm": true}, {"type": "residual", "filters": 64, "stride": 2, "batch_norm": true}, {"type": "global_avg_pool"}, {"type": "dense", "units": 10}]}"#;

/// Process CPU seconds (user + system), from `/proc/self/stat`.
fn cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command name: state is 0, utime 11, stime 12.
    (tick(11) + tick(12)) / 100.0
}

fn fnv(data: &[f32], mut h: u64) -> u64 {
    for v in data {
        for b in v.to_bits().to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    aisec_model::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut epochs = None;
    let mut models = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--epochs" {
            epochs = it.next().and_then(|v| v.parse::<usize>().ok());
        } else {
            models.push(a.clone());
        }
    }
    if models.is_empty() {
        models = vec!["mlp".into(), "cnn".into(), "resnet".into()];
    }
    let n = 4000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x: Vec<f32> = (0..n * 784)
        .map(|_| {
            if rng.gen_bool(0.8) {
                0.0
            } else {
                rng.gen_range(0.0..1.0)
            }
        })
        .collect();
    let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..10)).collect();
    let data = Dataset::new(Tensor::new(vec![n, 1, 28, 28], x)?, y)?;
    for name in &models {
        let (text, opt, wd, e) = match name.as_str() {
            "mlp" => (MLP, Optimizer::adam(1e-3), WeightDecay::None, 5),
            "cnn" => (CNN, Optimizer::adam(1e-3), WeightDecay::None, 3),
            "resnet" => (
                RESNET,
                Optimizer::Sgd {
                    lr: 0.05,
                    momentum: 0.9,
                },
                WeightDecay::L2(5e-4),
                2,
            ),
            other => return Err(format!("unknown model {other}").into()),
        };
        let cfg = TrainConfig {
            epochs: epochs.unwrap_or(e),
            batch_size: 64,
            optimizer: opt,
            weight_decay: wd,
            ..TrainConfig::default()
        };
        let spec = ArchSpec::parse(text)?;
        let (c0, t0) = (cpu_secs(), Instant::now());
        let (m, h) = train_spec(&spec, 0, &data, &cfg)?;
        let (cpu, wall) = (cpu_secs() - c0, t0.elapsed().as_secs_f64());
        let per: Vec<String> = h
            .epochs
            .iter()
            .map(|e| format!("{:.3}", e.seconds))
            .collect();
        let mut hash = 0xcbf2_9ce4_8422_2325u64;
        for w in m.weight_names() {
            if let Some(t) = m.weight(&w) {
                hash = fnv(&t.data, hash);
            }
        }
        let ep = cfg.epochs.max(1) as f64;
        println!(
            "{name}: wall_s_per_epoch={:.3} cpu_s_per_epoch={:.3} epochs=[{}] loss={:.5} weights={hash:016x}",
            wall / ep,
            cpu / ep,
            per.join(","),
            h.last().map_or(f32::NAN, |e| e.train_loss),
        );
    }
    Ok(())
}
