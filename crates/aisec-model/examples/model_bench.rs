//! Cross-check and throughput driver used by `bench/model/`.
//!
//! `model_bench MODEL.onnx check X.npy Y.npy OUT_DIR` writes `logits.npy` and
//! `grad.npy` (gradient of the summed cross-entropy w.r.t. the input).
//! `model_bench MODEL.onnx bench BATCH ITERS` times forward + input gradient
//! and prints `images_per_s=<n> cpu_images_per_s=<n>` (wall and CPU time).
//! `model_bench --spec SPEC OUT.onnx` exports a spec-built model;
//! `model_bench --train MODEL.onnx X.npy Y.npy OUT.onnx` takes 5 SGD steps
//! and writes the updated model (both are checked with onnxruntime).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::time::Instant;

use aisec_model::data::npy::{read_npy, write_npy};
use aisec_model::{Classifier, Differentiable, Loss, OnnxModel, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("AISEC_DEFAULT_MALLOC").is_none() {
        aisec_model::tune_allocator();
    }
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: model_bench MODEL.onnx (check X Y OUT | bench BATCH ITERS)".into());
    }
    if args[1] == "--spec" && args.len() == 4 {
        // model_bench --spec SPEC OUT.onnx: build (seed 0) and export a spec model.
        let spec = aisec_model::spec::ArchSpec::parse(&std::fs::read_to_string(&args[2])?)?;
        OnnxModel::from_spec(&spec, 0)?.save_onnx(&args[3])?;
        return Ok(());
    }
    if args[1] == "--train" && args.len() == 6 {
        // model_bench --train MODEL.onnx X.npy Y.npy OUT.onnx: 5 SGD steps, then save.
        let mut m = OnnxModel::load(&args[2])?;
        let x = read_npy(&args[3])?.to_tensor();
        let y = read_npy(&args[4])?.to_labels()?;
        for _ in 0..5 {
            m.sgd_step(&x, &Loss::CrossEntropy { labels: y.clone() }, 0.1)?;
        }
        m.save_onnx(&args[5])?;
        return Ok(());
    }
    let m = OnnxModel::load(&args[1])?;
    match args[2].as_str() {
        "check" if args.len() == 6 => {
            let x = read_npy(&args[3])?.to_tensor();
            let y = read_npy(&args[4])?.to_labels()?;
            let (_, g, z) = m.loss_grad(&x, &Loss::CrossEntropy { labels: y })?;
            let out = std::path::Path::new(&args[5]);
            write_npy(out.join("logits.npy"), &z)?;
            write_npy(out.join("grad.npy"), &g)?;
        }
        "bench" if args.len() == 5 => {
            let b: usize = args[3].parse()?;
            let iters: usize = args[4].parse()?;
            let mut shape = vec![b];
            shape.extend_from_slice(m.input_shape());
            let n: usize = shape.iter().product();
            let data = (0..n)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
                .collect();
            let x = Tensor::new(shape, data)?;
            let loss = Loss::CrossEntropy {
                labels: (0..b).map(|i| i % m.num_classes()).collect(),
            };
            m.loss_grad(&x, &loss)?;
            let (t, c) = (Instant::now(), cpu_seconds());
            for _ in 0..iters {
                m.loss_grad(&x, &loss)?;
            }
            let s = t.elapsed().as_secs_f64();
            let cs = cpu_seconds() - c;
            println!(
                "images_per_s={:.1} cpu_images_per_s={:.1}",
                (b * iters) as f64 / s,
                (b * iters) as f64 / cs.max(1e-9)
            );
        }
        "train-epoch" if args.len() == 5 => {
            // model_bench MODEL train-epoch N BATCH: one SGD (momentum 0.9)
            // epoch over N deterministic pseudo-random examples.
            let n: usize = args[3].parse()?;
            let b: usize = args[4].parse()?;
            let mut m = m;
            let mut shape = vec![n];
            shape.extend_from_slice(m.input_shape());
            let len: usize = shape.iter().product();
            let data = (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
                .collect();
            let x = Tensor::new(shape, data)?;
            let y: Vec<usize> = (0..n).map(|i| i % m.num_classes()).collect();
            let mut tr = aisec_model::train::Trainer::new(aisec_model::train::Optimizer::Sgd {
                lr: 0.01,
                momentum: 0.9,
            });
            let (t, c) = (Instant::now(), cpu_seconds());
            tr.epoch(&mut m, &x, &y, b)?;
            let s = t.elapsed().as_secs_f64();
            println!("epoch_s={s:.3} cpu_s={:.3}", cpu_seconds() - c);
        }
        _ => return Err("bad arguments".into()),
    }
    Ok(())
}

/// CPU time (user + system, all threads) of this process so far, from
/// `/proc/self/stat` (clock ticks, assumed 100 per second as on Linux);
/// 0 where that file is missing. On a loaded machine CPU time is steadier
/// than wall time for single-threaded runs.
fn cpu_seconds() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, i.e. the 12th and 13th after it.
    let rest = s.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}
