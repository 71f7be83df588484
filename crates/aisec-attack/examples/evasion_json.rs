//! Stand-alone evaluation driver used by `bench/attack/crosscheck.py` until
//! `aisec attack evasion` is wired: loads an ONNX model and `.npy`
//! inputs/labels, runs the attacks and prints the `EvasionReport` (and its
//! findings) as JSON.
//!
//! ```text
//! cargo run --release -p aisec-attack --example evasion_json -- \
//!     model.onnx x.npy y.npy [--attacks pgd,autoattack] [--norm linf] \
//!     [--eps 0.1] [--steps 40] [--seed 0] [--lo 0] [--hi 1] [--n 100] \
//!     [--curve 0.05,0.1,0.2] [--no-random-start] [--cw-const 0.01] \
//!     [--cw-search-steps 9] [--cw-steps 100] [--cw-lr 0.01] \
//!     [--save-examples FILE]
//! ```
//!
//! `--save-examples` writes the per-example outputs as JSON Lines (the
//! report itself holds only the summary).
//!
//! The `--cw-*` flags set [`aisec_attack::whitebox::CwConfig`] (the CLI keeps
//! its defaults), so the cross-check can run C&W with a peer's settings.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_attack::{run_evasion, AttackContext, AttackKind, EvasionConfig, Norm};
use aisec_model::data::npy::read_npy;
use aisec_model::OnnxModel;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pos: Vec<&String> = args.iter().take_while(|a| !a.starts_with("--")).collect();
    if pos.len() != 3 {
        return Err(
            "usage: evasion_json MODEL.onnx X.npy Y.npy [--attacks a,b] [--eps E] ...".into(),
        );
    }
    let opt = |name: &str| -> Option<&str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|s| s.as_str())
    };
    let num = |name: &str, d: f64| -> Result<f64, String> {
        opt(name).map_or(Ok(d), |s| {
            s.parse().map_err(|_| format!("{name}: not a number: {s}"))
        })
    };
    let model = OnnxModel::load(pos[0]).map_err(|e| e.to_string())?;
    let mut x = read_npy(pos[1]).map_err(|e| e.to_string())?.to_tensor();
    let mut y = read_npy(pos[2])
        .map_err(|e| e.to_string())?
        .to_labels()
        .map_err(|e| e.to_string())?;
    if let Some(n) = opt("--n") {
        let n: usize = n.parse().map_err(|_| "--n: not a number")?;
        let n = n.min(x.batch());
        let idx: Vec<usize> = (0..n).collect();
        x = aisec_attack::util::gather(&x, &idx);
        y.truncate(n);
    }
    let attacks = opt("--attacks")
        .unwrap_or("pgd")
        .split(',')
        .map(|s| AttackKind::parse(s).ok_or_else(|| format!("unknown attack {s}")))
        .collect::<Result<Vec<_>, _>>()?;
    let norm = match opt("--norm").unwrap_or("linf") {
        "linf" => Norm::Linf,
        "l2" => Norm::L2,
        s => return Err(format!("unknown norm {s}")),
    };
    let mut cfg = EvasionConfig {
        attacks,
        norm,
        eps: num("--eps", 0.1)? as f32,
        lo: num("--lo", 0.0)? as f32,
        hi: num("--hi", 1.0)? as f32,
        seed: num("--seed", 0.0)? as u64,
        ..EvasionConfig::default()
    };
    cfg.pgd.steps = num("--steps", 40.0)? as usize;
    cfg.pgd.random_start = !args.iter().any(|a| a == "--no-random-start");
    cfg.cw.initial_const = num("--cw-const", cfg.cw.initial_const as f64)? as f32;
    cfg.cw.binary_search_steps =
        num("--cw-search-steps", cfg.cw.binary_search_steps as f64)? as usize;
    cfg.cw.steps = num("--cw-steps", cfg.cw.steps as f64)? as usize;
    cfg.cw.learning_rate = num("--cw-lr", cfg.cw.learning_rate as f64)? as f32;
    if let Some(c) = opt("--curve") {
        cfg.eps_curve = c
            .split(',')
            .map(|s| s.parse::<f32>().map_err(|_| format!("--curve: {s}")))
            .collect::<Result<_, _>>()?;
    }
    let report =
        run_evasion(&model, &x, &y, &cfg, &AttackContext::silent()).map_err(|e| e.to_string())?;
    if let Some(p) = opt("--save-examples") {
        report
            .save_examples(std::path::Path::new(p))
            .map_err(|e| e.to_string())?;
    }
    let out = serde_json::json!({
        "evasion": report,
        "findings": report.findings(pos[0]),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}
