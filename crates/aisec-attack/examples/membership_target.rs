//! Trains the target model of the membership benchmark
//! (`bench/privacy/membership.sh`) with aisec's own trainer: a spec
//! architecture on the examples whose mask value is 1, written as
//! safetensors and ONNX.
//!
//! ```text
//! cargo run --release -p aisec-attack --example membership_target -- \
//!     spec.json x.npy y.npy mask.npy OUT_PREFIX [--epochs 30] [--batch 32] [--lr 0.001] [--seed 0]
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_attack::membership::{shadow, SpecTrainer};
use aisec_model::data::npy::read_npy;
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::Classifier;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pos: Vec<&String> = args.iter().take_while(|a| !a.starts_with("--")).collect();
    if pos.len() != 5 {
        return Err("usage: membership_target spec.json x.npy y.npy mask.npy OUT_PREFIX [--epochs N] [--batch N] [--lr F] [--seed N]".into());
    }
    let opt = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| default.to_string())
    };
    let num = |name: &str, default: &str| -> Result<f64, String> {
        opt(name, default)
            .parse::<f64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    let text = std::fs::read_to_string(pos[0]).map_err(|e| format!("{}: {e}", pos[0]))?;
    let spec = ArchSpec::parse(&text).map_err(|e| e.to_string())?;
    let x = read_npy(pos[1]).map_err(|e| e.to_string())?.to_tensor();
    let y = read_npy(pos[2])
        .map_err(|e| e.to_string())?
        .to_labels()
        .map_err(|e| e.to_string())?;
    let mask = read_npy(pos[3])
        .map_err(|e| e.to_string())?
        .to_labels()
        .map_err(|e| e.to_string())?;
    if mask.len() != y.len() || x.batch() != y.len() {
        return Err("x, y and mask sizes differ".into());
    }
    let keep: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let train = shadow::subset(&x, &y, &keep).map_err(|e| e.to_string())?;
    let tr = SpecTrainer {
        spec,
        epochs: num("--epochs", "30")? as usize,
        batch_size: num("--batch", "32")? as usize,
        optimizer: Optimizer::adam(num("--lr", "0.001")? as f32),
    };
    let start = std::time::Instant::now();
    let model = tr
        .fit(&train, num("--seed", "0")? as u64)
        .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let pred = model.predict(&x).map_err(|e| e.to_string())?;
    let acc = |side: bool| {
        let idx: Vec<usize> = (0..y.len()).filter(|&i| keep[i] == side).collect();
        idx.iter().filter(|&&i| pred[i] == y[i]).count() as f64 / idx.len().max(1) as f64
    };
    let prefix = pos[4];
    model
        .save_safetensors(format!("{prefix}.safetensors"))
        .map_err(|e| e.to_string())?;
    model
        .save_onnx(format!("{prefix}.onnx"))
        .map_err(|e| e.to_string())?;
    println!(
        "{{\"train_examples\": {}, \"train_accuracy\": {:.4}, \"test_accuracy\": {:.4}, \"seconds\": {:.1}}}",
        train.len(),
        acc(true),
        acc(false),
        secs
    );
    Ok(())
}
