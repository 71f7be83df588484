//! `aisec defend strip`: STRIP on a batch of inputs
//! (`aisec_defend::strip`), threshold set on held-out clean inputs.

use std::path::PathBuf;

use aisec_core::Report;
use aisec_defend::strip::{finding, Strip, StripConfig, Superimpose};
use aisec_model::fit::gather;
use aisec_model::Classifier;
use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cmd::defend::CleanArgs;
use crate::output::OutputArgs;

/// Arguments of `aisec defend strip`.
#[derive(Debug, clap::Args)]
pub struct StripArgs {
    /// The model: ONNX, or safetensors weights together with --spec.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Architecture spec (JSON/TOML) when MODEL is a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Clean data: half (seeded) are the overlays, the other half sets the threshold.
    #[command(flatten)]
    pub clean: CleanArgs,

    /// The inputs to check (`.npy`, IDX, or `.npz` with an array `x`), preprocessed like --clean.
    #[arg(long, value_name = "FILE")]
    pub inputs: PathBuf,

    /// Clean overlays per input.
    #[arg(long, default_value_t = 32)]
    pub overlays: usize,

    /// False-rejection rate on the held-out clean half the threshold is set at.
    #[arg(long, default_value_t = 0.01)]
    pub frr: f32,

    /// Superimpose as (1-W)*x + W*overlay instead of the paper's saturating sum (for inputs not in [0, hi]).
    #[arg(long, value_name = "W")]
    pub mix: Option<f32>,

    /// Seed of the clean split and the overlay draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Write every input's entropy and verdict here (JSON).
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec defend strip`.
pub fn run(a: StripArgs) -> anyhow::Result<i32> {
    let model = crate::cmd::target::load_local(&a.model, a.spec.as_deref())?;
    let clean = a.clean.load(&model)?;
    if clean.len() < 20 {
        bail!(
            "--clean has {} examples; STRIP needs at least 20 (half overlays, half to set the threshold)",
            clean.len()
        );
    }
    let mut x = a
        .clean
        .prep
        .apply(load_inputs(&a.inputs)?, &a.clean.range)?;
    if x.row_len() != clean.x.row_len() {
        bail!(
            "--inputs: examples have {} values, the model takes {}",
            x.row_len(),
            clean.x.row_len()
        );
    }
    let n = x.batch();
    x.shape = std::iter::once(n)
        .chain(model.input_shape().iter().copied())
        .collect();
    crate::data::check_inputs(
        &x,
        "--inputs",
        a.clean.range.lo,
        a.clean.range.hi,
        crate::data::Fix::ScaleOrValueRange,
    )?;
    let mut idx: Vec<usize> = (0..clean.len()).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(a.seed));
    let (pool, holdout) = idx.split_at(clean.len() / 2);
    let cfg = StripConfig {
        overlays: a.overlays,
        superimpose: match a.mix {
            Some(weight) => Superimpose::Mix { weight },
            None => Superimpose::Add {
                hi: a.clean.range.hi,
            },
        },
        frr: a.frr,
        seed: a.seed,
    };
    let start = std::time::Instant::now();
    let strip = Strip::calibrate(
        &model,
        &gather(&clean.x, pool),
        &gather(&clean.x, holdout),
        &cfg,
    )?;
    let scores = strip.detect(&model, &x)?;
    let preds = model.predict(&x)?;
    let name = a.inputs.display().to_string();
    let mut report = Report::new("defend strip");
    report.add_rules(aisec_defend::RULES);
    report.extend([finding(&name, &scores, &preds, &strip)]);
    report.summary.items = n as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report.data.insert(
        "strip".into(),
        serde_json::json!({
            "threshold_bits": strip.threshold, "frr": strip.frr,
            "overlays": strip.overlays(), "calibration_inputs": strip.calibration_inputs,
            "flagged": scores.iter().filter(|s| s.1).count(),
        }),
    );
    if let Some(p) = &a.scores {
        let rows: Vec<serde_json::Value> = scores
            .iter()
            .zip(&preds)
            .enumerate()
            .map(|(i, ((h, f), p))| serde_json::json!({"index": i, "entropy_bits": h, "flagged": f, "predicted": p}))
            .collect();
        std::fs::write(p, serde_json::to_string_pretty(&rows)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    crate::run::finish(report, &a.output)
}

/// Inputs from `.npy`/IDX, or the `x` array of an `.npz`.
fn load_inputs(path: &std::path::Path) -> anyhow::Result<aisec_model::Tensor> {
    let zip = std::fs::File::open(path)
        .and_then(|mut f| {
            use std::io::Read;
            let mut m = [0u8; 4];
            f.read_exact(&mut m).map(|_| m == *b"PK\x03\x04")
        })
        .unwrap_or(false);
    if !zip {
        return crate::cmd::attack::load_inputs(path);
    }
    let arrays = aisec_model::data::npy::read_npz(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    arrays
        .iter()
        .find(|(n, _)| matches!(n.trim_end_matches(".npy"), "x" | "X" | "inputs"))
        .map(|(_, a)| a.to_tensor())
        .with_context(|| format!("{}: no array named x", path.display()))
}
