//! The model-side BackdoorBench-style table (bench/backdoor/): plants
//! backdoors with aisec-attack's poisoning code (the code behind `aisec
//! attack poison`) in a small CNN trained by aisec on MNIST, then runs
//! Neural Cleanse, the blend variant, unlearning with their reversed
//! triggers, fine-pruning (alone and followed by unlearning) and STRIP, and
//! trains 5 clean seeds to count false alarms of model inspection.
//!
//! Usage: `cargo run --release -p aisec-defend --example backdoor_bench -- DATA.npz OUT_DIR [--quick] [--rows N] [--fresh]`
//! with DATA.npz holding `x` (float32 `[n, 1, 28, 28]` in [0, 1]) and `y`
//! (written by bench/backdoor/mnist_data.py). The split: the first 1,000
//! examples are the test set, the next 500 the defender's clean sample,
//! the rest the training set.
//!
//! Attacks (all-to-one, target 0, `aisec attack poison` defaults): BadNets
//! (Gu et al. 2017) 3x3 black/white checkerboard one pixel from the
//! bottom-right corner at 10 / 5 / 1 / 0.5 %; Blended (Chen et al. 2017)
//! `0.8 x + 0.2 p` with a seeded uniform-noise key at 10 %; WaNet (Nguyen &
//! Tran 2021, k 4, s 0.5, no noise mode) at 10 %; clean-label (Turner et
//! al. 2019: PGD eps 0.3 on a clean surrogate CNN, then the BadNets patch,
//! labels kept) on 8 % of the training set (most of class 0).
//!
//! `--fresh` evaluates model inspection alone on models none of the rows
//! above use: clean seeds 200-209 and BadNets 10 / 5 / 1 / 0.5 %, Blended
//! and WaNet planted with other plant and training seeds. It writes
//! `fresh.json` with every class's trigger size, so a flagging rule chosen
//! on the main rows can be scored on models it never saw.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use aisec_attack::context::AttackContext;
use aisec_attack::poison::{poison_dataset, PoisonConfig, PoisonKind, Trigger};
use aisec_defend::model::{inspect, InspectConfig, Inspection, Method};
use aisec_defend::repair::{fine_prune, score, unlearn, BackdoorScore, RepairConfig, Triggered};
use aisec_defend::strip::{Strip, StripConfig};
use aisec_defend::trigger::MaskTrigger;
use aisec_model::data::Dataset;
use aisec_model::fit::{gather, train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{OnnxModel, Tensor};
use serde_json::json;

const TARGET: usize = 0;

/// Poisons `d` with the library's attack `kind` at `rate`; returns the
/// poisoned set, the trigger and how many rows were poisoned.
fn plant(
    kind: PoisonKind,
    d: &Dataset,
    rate: f32,
    seed: u64,
    surrogate: Option<&OnnxModel>,
) -> (Dataset, Trigger, usize) {
    let cfg = PoisonConfig {
        kind,
        rate,
        target: TARGET,
        seed,
        clean_label_eps: 0.3,
        ..PoisonConfig::default()
    };
    let sur = surrogate.map(|m| m as &dyn aisec_model::Differentiable);
    let p = poison_dataset(&mut AttackContext::silent(), d, 10, &cfg, sur).unwrap();
    let n = p.manifest.indices.len();
    (p.data, p.manifest.trigger, n)
}

fn spec() -> ArchSpec {
    ArchSpec::parse(
        r#"{"input": [1, 28, 28], "layers": [
        {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "max_pool2d", "size": 2},
        {"type": "conv2d", "filters": 16, "kernel": 3, "padding": 1}, {"type": "relu"},
        {"type": "max_pool2d", "size": 2},
        {"type": "flatten"}, {"type": "dense", "units": 64}, {"type": "relu"},
        {"type": "dense", "units": 10}]}"#,
    )
    .unwrap()
}

fn train(d: &Dataset, seed: u64, epochs: usize) -> OnnxModel {
    let cfg = TrainConfig {
        epochs,
        batch_size: 64,
        optimizer: Optimizer::adam(2e-3),
        seed,
        ..TrainConfig::default()
    };
    train_spec(&spec(), seed, d, &cfg).unwrap().0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn s(x: &BackdoorScore) -> serde_json::Value {
    json!({"clean_accuracy": x.clean_accuracy, "asr": x.asr, "poisoned_accuracy": x.poisoned_accuracy})
}

fn summary(i: &Inspection) -> serde_json::Value {
    json!({
        "flagged": i.flagged,
        "sizes": i.classes.iter().map(|c| c.size).collect::<Vec<_>>(),
        "anomaly_index": i.classes.iter().map(|c| c.anomaly_index).collect::<Vec<_>>(),
        "target_index": i.classes[TARGET].anomaly_index,
        "seconds": i.seconds,
    })
}

/// Unlearning with `triggers` on a copy of `model` (after fine-pruning
/// when `prune_first`), scored on the test set.
fn repaired(
    model: &OnnxModel,
    clean: &Dataset,
    triggers: &[&MaskTrigger],
    cfg: &RepairConfig,
    prune_first: bool,
    test: &Dataset,
    tg: Triggered,
) -> serde_json::Value {
    if triggers.is_empty() {
        return serde_json::Value::Null;
    }
    let mut fixed = model.clone();
    let t = Instant::now();
    if prune_first {
        fine_prune(&mut fixed, clean, cfg, None).unwrap();
    }
    unlearn(&mut fixed, clean, triggers, cfg, None).unwrap();
    let sec = t.elapsed().as_secs_f64();
    json!({"after": s(&score(&fixed, test, Some(tg)).unwrap()), "seconds": sec})
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(&args[1]);
    let out = PathBuf::from(&args[2]);
    let quick = args.iter().any(|a| a == "--quick");
    std::fs::create_dir_all(out.join("img")).unwrap();
    let arrays = aisec_model::data::npy::read_npz(&data).unwrap();
    let get = |n: &str| {
        arrays
            .iter()
            .find(|(k, _)| k.trim_end_matches(".npy") == n)
            .map(|(_, a)| a)
            .unwrap()
    };
    let x = get("x").to_tensor();
    let y = get("y").to_labels().unwrap();
    let n = x.batch();
    let pick = |a: usize, b: usize| {
        let ix: Vec<usize> = (a..b).collect();
        Dataset::new(gather(&x, &ix), ix.iter().map(|&i| y[i]).collect()).unwrap()
    };
    let test = pick(0, 1000);
    let clean = pick(1000, 1500);
    let train_set = pick(1500, n);
    let epochs = if quick { 3 } else { 8 };
    if args.iter().any(|a| a == "--art") {
        art_models(&out, &train_set, &clean, &test);
        return;
    }
    let icfg = InspectConfig {
        steps: if quick { 100 } else { 300 },
        ..InspectConfig::default()
    };
    if args.iter().any(|a| a == "--fresh") {
        fresh_seeds(&out, &train_set, &clean, &test, epochs, &icfg);
        return;
    }
    let rcfg = RepairConfig::default();
    // The paper's unlearning (one reversed mask, no gain) for comparison.
    let rcfg_plain = RepairConfig {
        unlearn_gain: 1.0,
        ..RepairConfig::default()
    };
    // Rows in the order they are written (results.json after every row);
    // None is a clean seed (false alarms of model inspection).
    type Row = Option<(PoisonKind, f32, &'static str)>;
    let runs: Vec<Row> = if quick {
        vec![Some((PoisonKind::Badnets, 0.1, "BadNets 10%")), None]
    } else {
        vec![
            Some((PoisonKind::Badnets, 0.1, "BadNets 10%")),
            Some((PoisonKind::Blended, 0.1, "Blended 10%")),
            None,
            Some((PoisonKind::Badnets, 0.05, "BadNets 5%")),
            Some((PoisonKind::Wanet, 0.1, "WaNet 10%")),
            None,
            Some((PoisonKind::Badnets, 0.01, "BadNets 1%")),
            Some((PoisonKind::CleanLabel, 0.08, "Clean-label 8%")),
            None,
            Some((PoisonKind::Badnets, 0.005, "BadNets 0.5%")),
            None,
            None,
        ]
    };
    let only: Option<usize> = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let mut clean_rows: Vec<serde_json::Value> = Vec::new();
    let write = |rows: &[serde_json::Value], clean_rows: &[serde_json::Value]| {
        let res = json!({"data": data.display().to_string(), "train": train_set.len(), "clean_sample": clean.len(),
            "test": test.len(), "epochs": epochs, "inspect": icfg, "repair": rcfg,
            "threads": rayon::current_num_threads(),
            "attacks": rows, "clean_models": clean_rows, "loadavg_end": loadavg()});
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(&res).unwrap(),
        )
        .unwrap();
    };
    // Clean seed 0 is also the clean-label attack's surrogate.
    let mut surrogate: Option<OnnxModel> = None;
    let clean_seed = |seed: u64| {
        let t0 = Instant::now();
        let model = train(&train_set, 100 + seed, epochs);
        let (_, acc) = aisec_model::fit::evaluate(&model, &test, 256).unwrap();
        let mut r = json!({"seed": 100 + seed, "clean_accuracy": acc,
            "train_seconds": t0.elapsed().as_secs_f64(), "loadavg": loadavg()});
        for m in [Method::NeuralCleanse, Method::Blend] {
            let ins = inspect(&model, &clean.x, m, &icfg, None, &|_, _| {}).unwrap();
            println!(
                "clean seed {seed} {}: flagged {:?}, largest index {:.2} (acc {acc:.3})",
                m.as_str(),
                ins.flagged,
                ins.classes
                    .iter()
                    .map(|c| c.anomaly_index)
                    .fold(0.0f32, f32::max)
            );
            r[m.as_str()] = summary(&ins);
        }
        (r, model)
    };
    for (k, run) in runs.iter().enumerate().take(only.unwrap_or(usize::MAX)) {
        let Some((kind, rate, name)) = *run else {
            let (r, m) = clean_seed(clean_rows.len() as u64);
            if surrogate.is_none() {
                surrogate = Some(m);
            }
            clean_rows.push(r);
            write(&rows, &clean_rows);
            continue;
        };
        let t0 = Instant::now();
        if kind == PoisonKind::CleanLabel && surrogate.is_none() {
            surrogate = Some(train(&train_set, 100, epochs));
        }
        let (pd, trigger, planted) =
            plant(kind, &train_set, rate, 5 + k as u64, surrogate.as_ref());
        let model = train(&pd, 1, epochs);
        let train_s = t0.elapsed().as_secs_f64();
        let trig = Dataset::new(trigger.applied(&test.x).unwrap(), test.y.clone()).unwrap();
        let tg = Triggered {
            x: &trig.x,
            y: &trig.y,
            target: TARGET,
        };
        let before = score(&model, &test, Some(tg)).unwrap();
        let tag = name.replace(['%', ' ', '.'], "");
        model.save_onnx(out.join(format!("{tag}.onnx"))).unwrap();
        trigger
            .save_png(&out.join(format!("img/{tag}_trigger.png")), 0.0, 1.0)
            .unwrap();
        let mut row = json!({"attack": name, "kind": kind.name(), "rate": rate, "planted": planted,
            "train_seconds": train_s, "before": s(&before), "loadavg": loadavg()});
        println!("{name}: before {before:?}");
        let mut all: Vec<MaskTrigger> = Vec::new();
        for m in [Method::NeuralCleanse, Method::Blend] {
            let ins = inspect(&model, &clean.x, m, &icfg, None, &|_, _| {}).unwrap();
            let ts: Vec<&MaskTrigger> = ins.classes.iter().map(|c| &c.trigger).collect();
            std::fs::write(
                out.join(format!("img/{tag}_{}.png", m.as_str())),
                aisec_defend::image::trigger_grid(&ts, 0.0, 1.0).unwrap(),
            )
            .unwrap();
            let flagged: Vec<&MaskTrigger> = ins
                .flagged
                .iter()
                .map(|&c| &ins.classes[c].trigger)
                .collect();
            all.extend(flagged.iter().map(|t| (*t).clone()));
            let plain = if k < 2 {
                repaired(&model, &clean, &flagged, &rcfg_plain, false, &test, tg)
            } else {
                serde_json::Value::Null
            };
            row[m.as_str()] = json!({"inspection": summary(&ins),
                "unlearning": repaired(&model, &clean, &flagged, &rcfg, false, &test, tg),
                "unlearning_plain": plain,
                "prune_then_unlearn": repaired(&model, &clean, &flagged, &rcfg, true, &test, tg)});
            println!(
                "  {}: flagged {:?}, target index {:.2}; unlearning {}",
                m.as_str(),
                ins.flagged,
                ins.classes[TARGET].anomaly_index,
                row[m.as_str()]["unlearning"]
            );
            write(&rows, &clean_rows);
        }
        // Unlearning with the reversed triggers of both methods.
        let both: Vec<&MaskTrigger> = all.iter().collect();
        row["both"] =
            json!({"unlearning": repaired(&model, &clean, &both, &rcfg, false, &test, tg)});
        let mut fp = model.clone();
        let t1 = Instant::now();
        let rep = fine_prune(&mut fp, &clean, &rcfg, None).unwrap();
        let fp_s = t1.elapsed().as_secs_f64();
        let fp_after = score(&fp, &test, Some(tg)).unwrap();
        row["fine_pruning"] = json!({"after": s(&fp_after), "pruned": rep.pruned.len(),
            "units": rep.head.units, "seconds": fp_s});
        // STRIP: overlays and threshold from the defender's clean sample.
        let strip = Strip::calibrate(
            &model,
            &gather(&clean.x, &(0..250).collect::<Vec<_>>()),
            &gather(&clean.x, &(250..500).collect::<Vec<_>>()),
            &StripConfig::default(),
        )
        .unwrap();
        let ids: Vec<usize> = (0..test.len()).filter(|&i| test.y[i] != TARGET).collect();
        let on_trig = strip.detect(&model, &gather(&trig.x, &ids)).unwrap();
        let on_clean = strip.detect(&model, &test.x).unwrap();
        let rate = |v: &[(f32, bool)]| v.iter().filter(|p| p.1).count() as f32 / v.len() as f32;
        row["strip"] = json!({"detection": rate(&on_trig), "false_rejection": rate(&on_clean),
            "threshold_bits": strip.threshold});
        println!(
            "  both {}\n  fine-pruning {fp_after:?}\n  strip tpr {:.3} frr {:.3}",
            row["both"]["unlearning"],
            rate(&on_trig),
            rate(&on_clean)
        );
        rows.push(row);
        write(&rows, &clean_rows);
    }
    println!("results written to {}", out.display());
}

/// The ART cross-check's inputs: a BadNets-10 % and a clean MLP
/// (784-64-10) trained here, their weights as `.npz` for the Keras copy,
/// the defender's clean sample, and aisec's Neural Cleanse result and time
/// on the same weights and data (`art/aisec_nc.json`).
fn art_models(out: &std::path::Path, train_set: &Dataset, clean: &Dataset, test: &Dataset) {
    use aisec_attack_free_npz::write;
    let dir = out.join("art");
    std::fs::create_dir_all(&dir).unwrap();
    let mlp = ArchSpec::parse(
        r#"{"input": [1, 28, 28], "layers": [{"type": "flatten"},
        {"type": "dense", "units": 64}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 10,
        batch_size: 64,
        optimizer: Optimizer::adam(2e-3),
        seed: 1,
        ..TrainConfig::default()
    };
    let (pd, trigger, _) = plant(PoisonKind::Badnets, train_set, 0.1, 5, None);
    let mut res = Vec::new();
    for (name, data) in [("badnets", &pd), ("clean", train_set)] {
        let m = train_spec(&mlp, 1, data, &cfg).unwrap().0;
        let names = m.weight_names();
        let ws: Vec<(String, Tensor)> = names
            .iter()
            .map(|n| (n.clone(), m.weight(n).unwrap()))
            .collect();
        write(&dir.join(format!("mlp_{name}.npz")), &ws);
        let trig = Dataset::new(trigger.applied(&test.x).unwrap(), test.y.clone()).unwrap();
        let sc = score(
            &m,
            test,
            Some(Triggered {
                x: &trig.x,
                y: &trig.y,
                target: TARGET,
            }),
        )
        .unwrap();
        let cfg = InspectConfig {
            steps: 300,
            ..InspectConfig::default()
        };
        let la = loadavg();
        let ins = inspect(&m, &clean.x, Method::NeuralCleanse, &cfg, None, &|_, _| {}).unwrap();
        println!(
            "art mlp {name}: {sc:?} flagged {:?} in {:.1}s",
            ins.flagged, ins.seconds
        );
        res.push(
            json!({"model": name, "score": s(&sc), "neural_cleanse": summary(&ins),
            "threads": rayon::current_num_threads(), "loadavg": la}),
        );
    }
    let x = &clean.x;
    let y: Vec<f32> = clean.y.iter().map(|&v| v as f32).collect();
    write(
        &dir.join("clean.npz"),
        &[
            ("x".to_string(), x.clone()),
            ("y".to_string(), Tensor::new(vec![y.len()], y).unwrap()),
        ],
    );
    std::fs::write(
        dir.join("aisec_nc.json"),
        serde_json::to_string_pretty(&res).unwrap(),
    )
    .unwrap();
}

/// A tiny `.npz` writer (stored zip of float32 `.npy` members) for the
/// cross-check files.
mod aisec_attack_free_npz {
    use std::io::Write;

    use aisec_model::Tensor;

    pub(crate) fn write(path: &std::path::Path, arrays: &[(String, Tensor)]) {
        let f = std::fs::File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, t) in arrays {
            z.start_file(format!("{name}.npy"), opts).unwrap();
            let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            let shape = if dims.len() == 1 {
                format!("{},", dims[0])
            } else {
                dims.join(", ")
            };
            let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({shape}), }}");
            let pad = (64 - (10 + h.len() + 1) % 64) % 64;
            h.push_str(&" ".repeat(pad));
            h.push('\n');
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(h.len() as u16).to_le_bytes());
            b.extend_from_slice(h.as_bytes());
            for v in &t.data {
                b.extend_from_slice(&v.to_le_bytes());
            }
            z.write_all(&b).unwrap();
        }
        z.finish().unwrap();
    }
}

/// `--fresh`: inspection only, on seeds the main table never used.
fn fresh_seeds(
    out: &std::path::Path,
    train_set: &Dataset,
    clean: &Dataset,
    test: &Dataset,
    epochs: usize,
    icfg: &InspectConfig,
) {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    let attacks: [Option<(PoisonKind, f32)>; 16] = [
        None,
        Some((PoisonKind::Badnets, 0.1)),
        None,
        Some((PoisonKind::Blended, 0.1)),
        None,
        Some((PoisonKind::Badnets, 0.05)),
        None,
        Some((PoisonKind::Badnets, 0.01)),
        None,
        Some((PoisonKind::Wanet, 0.1)),
        None,
        Some((PoisonKind::Badnets, 0.005)),
        None,
        None,
        None,
        None,
    ];
    let mut clean_seed = 200u64;
    for (k, a) in attacks.iter().enumerate() {
        let t0 = Instant::now();
        let (model, mut row) = match a {
            None => {
                let m = train(train_set, clean_seed, epochs);
                let r = json!({"kind": "clean", "seed": clean_seed});
                clean_seed += 1;
                (m, r)
            }
            Some((kind, rate)) => {
                let (pd, trigger, planted) = plant(*kind, train_set, *rate, 300 + k as u64, None);
                let seed = 400 + k as u64;
                let m = train(&pd, seed, epochs);
                let trig = Dataset::new(trigger.applied(&test.x).unwrap(), test.y.clone()).unwrap();
                let tg = Triggered {
                    x: &trig.x,
                    y: &trig.y,
                    target: TARGET,
                };
                let sc = score(&m, test, Some(tg)).unwrap();
                let r = json!({"kind": kind.name(), "rate": rate, "seed": seed,
                    "planted": planted, "score": s(&sc)});
                (m, r)
            }
        };
        let (_, acc) = aisec_model::fit::evaluate(&model, test, 256).unwrap();
        row["clean_accuracy"] = json!(acc);
        row["train_seconds"] = json!(t0.elapsed().as_secs_f64());
        for m in [Method::NeuralCleanse, Method::Blend] {
            let ins = inspect(&model, &clean.x, m, icfg, None, &|_, _| {}).unwrap();
            row[m.as_str()] = summary(&ins);
        }
        row["loadavg"] = json!(loadavg());
        println!("{row}");
        rows.push(row);
        std::fs::write(
            out.join("fresh.json"),
            serde_json::to_string_pretty(&json!({"epochs": epochs, "inspect": icfg, "rows": rows}))
                .unwrap(),
        )
        .unwrap();
    }
}
