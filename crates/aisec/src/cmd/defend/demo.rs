//! The demo's poisoning section: plant a BadNets backdoor in an MLP trained
//! here on the bundled 8x8 digits, detect it with Neural Cleanse and STRIP,
//! and repair it by unlearning with the reversed trigger.
//!
//! The attack is aisec-attack's BadNets (Gu et al. 2017), the code behind
//! `aisec attack poison --kind badnets`, with the classic stamp: a white 2x2
//! square in the bottom-right corner (always blank in these digits; the
//! checkerboard `attack poison` draws one pixel in would sit on the strokes
//! of an 8x8 digit). 10 % of the training set, drawn from the digits that
//! are not already 0, is stamped and relabelled to class 0.
//! The demo writes its files under
//! `dir/poisoning/`: the backdoored and repaired models, the defender's
//! clean sample (`clean.npz`), held-out clean and triggered test sets
//! (`test.npz`, `triggered.npz`, triggered inputs with their true labels)
//! the reversed-trigger image, and the attack's ground truth
//! (`indices.json`, the manifest `aisec defend data --manifest` reads).

use std::path::Path;

use aisec_attack::context::AttackContext;
use aisec_attack::poison::{poison_with_trigger, ImageShape, PoisonConfig, PoisonKind, Trigger};
use aisec_attack::save::{write_npz, NpyArray};
use aisec_core::Report;
use aisec_defend::model::{findings, inspect, InspectConfig, Method};
use aisec_defend::repair::{finding, score, unlearn, RepairConfig, Triggered};
use aisec_defend::strip::{Strip, StripConfig};
use aisec_model::data::Dataset;
use aisec_model::fit::{gather, train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::Classifier;
use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const DIGITS_X: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.x.npy"));
const DIGITS_Y: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.y.npy"));

/// The attacker's target class.
pub const TARGET: usize = 0;

fn save_npz(path: &Path, d: &Dataset) -> anyhow::Result<()> {
    let f =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let y: Vec<i64> = d.y.iter().map(|&v| v as i64).collect();
    write_npz(
        std::io::BufWriter::new(f),
        &[
            ("x", NpyArray::F32(&d.x.shape, &d.x.data)),
            ("y", NpyArray::I64(&[d.y.len()], y)),
        ],
    )?;
    Ok(())
}

/// Runs the section; returns its report (findings of detection and repair).
pub fn demo_poisoning(dir: &Path) -> anyhow::Result<Report> {
    let out = dir.join("poisoning");
    std::fs::create_dir_all(&out)?;
    let mut x = aisec_model::data::npy::parse_npy(DIGITS_X)?.to_tensor();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let y = aisec_model::data::npy::parse_npy(DIGITS_Y)?.to_labels()?;
    let mut idx: Vec<usize> = (0..x.batch()).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(13));
    let pick = |ix: &[usize]| Dataset::new(gather(&x, ix), ix.iter().map(|&i| y[i]).collect());
    let train = pick(&idx[..1200])?;
    let clean = pick(&idx[1200..1500])?;
    let test = pick(&idx[1500..])?;

    // Plant: 10 % of the training set stamped and relabelled, by the
    // library's BadNets (the code behind `aisec attack poison`).
    let pcfg = PoisonConfig {
        kind: PoisonKind::Badnets,
        rate: 0.1,
        target: TARGET,
        seed: 7,
        ..PoisonConfig::default()
    };
    let shape = ImageShape { c: 1, h: 8, w: 8 };
    let stamp = Trigger::solid_patch(shape, 2, 1.0)?;
    let mut actx = AttackContext::silent();
    let planted = poison_with_trigger(&mut actx, &train, 10, &pcfg, stamp, None)?;
    planted.manifest.save(&out.join("indices.json"))?;
    let poisoned = planted.data;
    let trigger = planted.manifest.trigger;
    let planted = planted.manifest.indices.len();
    let spec = ArchSpec::parse(
        r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"},
            {"type": "dense", "units": 64}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#,
    )?;
    let cfg = TrainConfig {
        epochs: 20,
        batch_size: 32,
        optimizer: Optimizer::adam(3e-3),
        seed: 1,
        ..TrainConfig::default()
    };
    let (mut model, _) = train_spec(&spec, 1, &poisoned, &cfg)?;
    let bad_path = out.join("badnets_mlp.onnx");
    model.save_onnx(&bad_path)?;
    let trig = Dataset::new(trigger.applied(&test.x)?, test.y.clone())?;
    save_npz(&out.join("clean.npz"), &clean)?;
    save_npz(&out.join("test.npz"), &test)?;
    save_npz(&out.join("triggered.npz"), &trig)?;
    let t = Triggered {
        x: &trig.x,
        y: &trig.y,
        target: TARGET,
    };
    let before = score(&model, &test, Some(t))?;
    crate::run::note(format_args!(
        "aisec demo: planted BadNets (white 2x2 corner patch -> class {TARGET}) in {planted} of {} training digits; clean accuracy {:.1} %, attack success {:.1} %.\n",
        train.len(),
        100.0 * before.clean_accuracy,
        100.0 * before.asr.unwrap_or(0.0)
    ));

    // Detect: Neural Cleanse on the defender's 300 clean digits.
    let icfg = InspectConfig {
        steps: 200,
        ..InspectConfig::default()
    };
    let ins = inspect(
        &model,
        &clean.x,
        Method::NeuralCleanse,
        &icfg,
        None,
        &|_, _| {},
    )?;
    let ts: Vec<&aisec_defend::trigger::MaskTrigger> =
        ins.classes.iter().map(|c| &c.trigger).collect();
    let png = out.join("neural-cleanse.png");
    std::fs::write(&png, aisec_defend::image::trigger_grid(&ts, 0.0, 1.0)?)?;
    let name = bad_path.display().to_string();
    let mut report = Report::new("demo poisoning");
    report.add_rules(aisec_defend::RULES);
    report.extend(findings(&ins, &name, Some(&png.display().to_string())));

    // STRIP on a batch of 50 clean and 50 triggered test digits.
    let pool = gather(&clean.x, &(0..150).collect::<Vec<_>>());
    let holdout = gather(&clean.x, &(150..300).collect::<Vec<_>>());
    let strip = Strip::calibrate(&model, &pool, &holdout, &StripConfig::default())?;
    let half: Vec<usize> = (0..50).collect();
    let mut batch = gather(&test.x, &half);
    let trig_half = gather(&trig.x, &half);
    batch.data.extend_from_slice(&trig_half.data);
    batch.shape[0] = 100;
    let s = strip.detect(&model, &batch)?;
    let preds = model.predict(&batch)?;
    report.extend([aisec_defend::strip::finding(
        "demo batch (50 clean + 50 triggered digits)",
        &s,
        &preds,
        &strip,
    )]);

    // Repair: unlearning with the reversed trigger of every flagged class.
    let triggers: Vec<&aisec_defend::trigger::MaskTrigger> = ins
        .flagged
        .iter()
        .map(|&c| &ins.classes[c].trigger)
        .collect();
    if !triggers.is_empty() {
        unlearn(
            &mut model,
            &clean,
            &triggers,
            &RepairConfig::default(),
            None,
        )?;
        let after = score(&model, &test, Some(t))?;
        let fixed = out.join("repaired_mlp.onnx");
        model.save_onnx(&fixed)?;
        report.extend([finding("unlearning", &before, &after, 0.02, &name)]);
    }
    Ok(report)
}
