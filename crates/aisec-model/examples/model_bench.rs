//! Cross-check and throughput driver used by `bench/model/`.
//!
//! `model_bench MODEL.onnx check X.npy Y.npy OUT_DIR` writes `logits.npy` and
//! `grad.npy` (gradient of the summed cross-entropy w.r.t. the input).
//! `model_bench MODEL.onnx bench BATCH ITERS` times forward + input gradient
//! and prints `images_per_s=<n>`.

use std::time::Instant;

use aisec_model::data::npy::{read_npy, write_npy};
use aisec_model::{Classifier, Differentiable, Loss, OnnxModel, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return Err("usage: model_bench MODEL.onnx (check X Y OUT | bench BATCH ITERS)".into());
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
            let t = Instant::now();
            for _ in 0..iters {
                m.loss_grad(&x, &loss)?;
            }
            let s = t.elapsed().as_secs_f64();
            println!("images_per_s={:.1}", (b * iters) as f64 / s);
        }
        _ => return Err("bad arguments".into()),
    }
    Ok(())
}
