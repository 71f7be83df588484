//! The BackdoorBench-style table of bench/poison: for each attack setting,
//! poison the training set, train a victim, measure clean accuracy, attack
//! success rate (ASR) and accuracy on triggered inputs with their true label
//! ("before"); then inspect the poisoned set with each data defence, remove
//! what it flags, retrain from the same seed and measure again ("after").
//!
//! `cargo run --release -p aisec-defend --example poison_table -- TRAIN.npz
//! TEST.npz SPEC.json OUT.json [EPOCHS] [SETTINGS]`, where SETTINGS is a
//! comma-separated list like `badnets:0.1,blended:0.1` (default: BadNets at
//! 10/5/1/0.5 % and Blended at 10 %, target class 0).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use aisec_attack::poison::{
    evaluate_backdoor, poison_dataset, BackdoorEval, PoisonConfig, PoisonKind,
};
use aisec_attack::AttackContext;
use aisec_defend::data::{
    activation_clustering, activations, early_loss_isolation, early_losses, score_against,
    spectral_signatures, AcConfig, DataScores, SsConfig,
};
use aisec_model::data::npy::read_npz;
use aisec_model::data::Dataset;
use aisec_model::fit::{fit, gather, FitOptions, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, OnnxModel, Tap};

fn load(path: &str) -> Dataset {
    let a = read_npz(path).expect("npz");
    let get = |n: &str| {
        a.iter()
            .find(|(k, _)| k.trim_end_matches(".npy") == n)
            .map(|(_, v)| v)
            .expect("array")
    };
    Dataset::new(get("x").to_tensor(), get("y").to_labels().unwrap()).unwrap()
}

fn train(spec: &ArchSpec, d: &Dataset, cfg: &TrainConfig) -> OnnxModel {
    let mut m = OnnxModel::from_spec(spec, cfg.seed).unwrap();
    fit(
        &mut m,
        d,
        cfg,
        FitOptions {
            spec: Some(spec),
            ..FitOptions::default()
        },
    )
    .unwrap();
    m
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trainset = load(&args[1]);
    let test = load(&args[2]);
    let spec = ArchSpec::parse(&std::fs::read_to_string(&args[3]).unwrap()).unwrap();
    let out = &args[4];
    let epochs: usize = args.get(5).map_or(8, |s| s.parse().unwrap());
    let settings = args.get(6).cloned().unwrap_or_else(|| {
        "badnets:0.1,badnets:0.05,badnets:0.01,badnets:0.005,blended:0.1".into()
    });
    let mut x = trainset.x.clone();
    x.shape = std::iter::once(trainset.len())
        .chain(spec.input.iter().copied())
        .collect();
    let trainset = Dataset::new(x, trainset.y).unwrap();
    let mut x = test.x.clone();
    x.shape = std::iter::once(test.len())
        .chain(spec.input.iter().copied())
        .collect();
    let test = Dataset::new(x, test.y).unwrap();
    let cfg = TrainConfig {
        epochs,
        batch_size: 64,
        optimizer: Optimizer::adam(1e-3),
        seed: 0,
        ..TrainConfig::default()
    };
    let t = Instant::now();
    let clean_model = train(&spec, &trainset, &cfg);
    let clean_secs = t.elapsed().as_secs_f64();
    let classes = clean_model.num_classes();
    let mut rows = Vec::new();
    for s in settings.split(',') {
        let (kind, rate) = s.split_once(':').unwrap();
        let pcfg = PoisonConfig {
            kind: PoisonKind::parse(kind).unwrap(),
            rate: rate.parse().unwrap(),
            target: 0,
            seed: 0,
            ..PoisonConfig::default()
        };
        let p = poison_dataset(
            &mut AttackContext::silent(),
            &trainset,
            classes,
            &pcfg,
            None,
        )
        .unwrap();
        let m = &p.manifest;
        let eval = |model: &OnnxModel| -> BackdoorEval {
            evaluate_backdoor(model, &test, &m.trigger, m.label_mode, m.target, 256).unwrap()
        };
        // The clean model under the same trigger: the ASR floor.
        let floor = eval(&clean_model);
        let t = Instant::now();
        let victim = train(&spec, &p.data, &cfg);
        let train_secs = t.elapsed().as_secs_f64();
        let before = eval(&victim);
        println!("{s}: before {before:?} ({train_secs:.1} s)");
        let truth = m.is_poisoned();
        let t = Instant::now();
        let feats = activations(&victim, &p.data.x, &Tap::Penultimate, 256).unwrap();
        let feat_secs = t.elapsed().as_secs_f64();
        let mut defences: Vec<(DataScores, f64)> = Vec::new();
        let t = Instant::now();
        defences.push((
            activation_clustering(&feats, &p.data.y, classes, &AcConfig::default()).unwrap(),
            feat_secs + t.elapsed().as_secs_f64(),
        ));
        let t = Instant::now();
        // The defender's assumed rate: 1.5 x 10 % per class, whatever the real rate.
        defences.push((
            spectral_signatures(&feats, &p.data.y, classes, &SsConfig::default()).unwrap(),
            feat_secs + t.elapsed().as_secs_f64(),
        ));
        let t = Instant::now();
        let early = TrainConfig {
            epochs: 1,
            ..cfg.clone()
        };
        let losses = early_losses(&spec, &p.data, &early).unwrap();
        defences.push((
            early_loss_isolation(&losses, &p.data.y, classes, 0.05).unwrap(),
            t.elapsed().as_secs_f64(),
        ));
        let mut after = Vec::new();
        for (d, secs) in &defences {
            let det = score_against(d, &truth).unwrap();
            let keep: Vec<usize> = (0..p.data.len()).filter(|&i| !d.flagged[i]).collect();
            let kept = Dataset::new(
                gather(&p.data.x, &keep),
                keep.iter().map(|&i| p.data.y[i]).collect(),
            )
            .unwrap();
            let retrained = train(&spec, &kept, &cfg);
            let e = eval(&retrained);
            println!(
                "  {}: flagged {} P {:.3} R {:.3} AUROC {:?} ({secs:.2} s) -> after {e:?}",
                d.method,
                d.flagged_count(),
                det.precision,
                det.recall,
                det.auroc
            );
            after.push(serde_json::json!({
                "method": d.method,
                "seconds": secs,
                "flagged": d.flagged_count(),
                "detection": det,
                "after": e,
            }));
        }
        rows.push(serde_json::json!({
            "attack": kind,
            "rate": pcfg.rate,
            "poisoned": m.indices.len(),
            "clean_model": floor,
            "before": before,
            "train_seconds": train_secs,
            "defences": after,
        }));
    }
    let doc = serde_json::json!({
        "train": args[1], "test": args[2], "spec": spec, "epochs": epochs,
        "train_examples": trainset.len(), "test_examples": test.len(),
        "clean_train_seconds": clean_secs,
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "rows": rows,
    });
    std::fs::write(out, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}
