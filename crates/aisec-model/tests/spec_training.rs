//! Spec-built models: training with SGD/Adam on the digits fixture,
//! safetensors round trip and ONNX export.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::path::PathBuf;

use aisec_model::data::npy::read_npy;
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, Trainer};
use aisec_model::{Classifier, Differentiable, Loss, OnnxModel, Tensor};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn digits(flat: bool) -> (Tensor, Vec<usize>) {
    let mut x = read_npy(fx("digits_cnn.x.npy")).unwrap().to_tensor();
    if flat {
        x.shape = vec![x.shape[0], 64];
    }
    let y = read_npy(fx("digits_cnn.y.npy"))
        .unwrap()
        .to_labels()
        .unwrap();
    (x, y)
}

const CNN_TOML: &str = r#"
input = [1, 8, 8]
[[layers]]
type = "conv2d"
filters = 4
kernel = 3
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "max_pool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 10
"#;

#[test]
fn adam_fits_a_small_batch_with_a_cnn_spec() {
    let spec = ArchSpec::parse(CNN_TOML).unwrap();
    let mut m = OnnxModel::from_spec(&spec, 1).unwrap();
    assert_eq!(m.input_shape(), &[1, 8, 8]);
    assert_eq!(m.num_classes(), 10);
    let (x, y) = digits(false);
    let mut t = Trainer::new(Optimizer::adam(0.02));
    let first = t.epoch(&mut m, &x, &y, 8).unwrap();
    let mut last = first;
    for _ in 0..60 {
        last = t.epoch(&mut m, &x, &y, 8).unwrap();
    }
    assert!(last < 0.1 * first, "loss {first} -> {last}");
    let p = m.predict(&x).unwrap();
    assert_eq!(p, y);
}

#[test]
fn sgd_trains_mlp_and_weights_round_trip() {
    let spec = ArchSpec::parse(
        r#"{"input": [64], "layers": [{"type": "dense", "units": 16}, {"type": "tanh"},
            {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let mut m = OnnxModel::from_spec(&spec, 3).unwrap();
    let (x, y) = digits(true);
    let mut t = Trainer::new(Optimizer::Sgd {
        lr: 0.5,
        momentum: 0.9,
    });
    let first = t.epoch(&mut m, &x, &y, 16).unwrap();
    let mut last = first;
    for _ in 0..40 {
        last = t.epoch(&mut m, &x, &y, 16).unwrap();
    }
    assert!(last < 0.2 * first, "loss {first} -> {last}");

    let d = tempfile::tempdir().unwrap();
    let st = d.path().join("w.safetensors");
    m.save_safetensors(&st).unwrap();
    let back = OnnxModel::from_spec_safetensors(&spec, &st).unwrap();
    assert_eq!(back.logits(&x).unwrap(), m.logits(&x).unwrap());

    // Export to ONNX and run it through the ONNX loader.
    let onnx = d.path().join("m.onnx");
    m.save_onnx(&onnx).unwrap();
    let o = OnnxModel::load(&onnx).unwrap();
    assert_eq!(o.logits(&x).unwrap(), m.logits(&x).unwrap());
    let l = Loss::CrossEntropy { labels: y.clone() };
    assert_eq!(
        o.loss_grad(&x, &l).unwrap().1,
        m.loss_grad(&x, &l).unwrap().1
    );
}

#[test]
fn bad_specs_and_weights_are_errors() {
    assert!(ArchSpec::parse(
        r#"{"input": [64], "layers": [{"type": "conv2d", "filters": 2, "kernel": 3}]}"#
    )
    .and_then(|s| OnnxModel::from_spec(&s, 0))
    .is_err());
    assert!(
        ArchSpec::parse(r#"{"input": [64], "layers": [{"type": "dense", "units": 0}]}"#)
            .and_then(|s| OnnxModel::from_spec(&s, 0))
            .is_err()
    );
    assert!(ArchSpec::parse("not a spec").is_err());
    let spec =
        ArchSpec::parse(r#"{"input": [4], "layers": [{"type": "dense", "units": 3}]}"#).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("w.safetensors");
    let other =
        ArchSpec::parse(r#"{"input": [5], "layers": [{"type": "dense", "units": 3}]}"#).unwrap();
    OnnxModel::from_spec(&other, 0)
        .unwrap()
        .save_safetensors(&p)
        .unwrap();
    assert!(OnnxModel::from_spec_safetensors(&spec, &p).is_err());
    std::fs::write(&p, [0xffu8; 16]).unwrap();
    assert!(OnnxModel::from_spec_safetensors(&spec, &p).is_err());
}

// ---- The fit loop, checkpoints and resume --------------------------------

use std::sync::atomic::{AtomicBool, Ordering};

use aisec_model::checkpoint::Checkpoint;
use aisec_model::data::Dataset;
use aisec_model::fit::{
    evaluate, fit, per_example_losses, probabilities, train_spec, train_spec_soft, Augment,
    CheckpointPolicy, FitEvent, FitOptions, Schedule, TrainConfig,
};
use aisec_model::train::WeightDecay;

/// The whole 8x8 digits set (1,797 images) scaled to [0, 1], split
/// `n_train` / rest.
fn all_digits(n_train: usize) -> (Dataset, Dataset) {
    let mut x = read_npy(fx("digits/x.npy")).unwrap().to_tensor();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let y = read_npy(fx("digits/y.npy")).unwrap().to_labels().unwrap();
    let d = Dataset::new(x, y).unwrap();
    (d.slice(0, n_train), d.slice(n_train, d.len()))
}

fn flat(d: &Dataset) -> Dataset {
    let mut d = d.clone();
    d.x.shape = vec![d.len(), 64];
    d
}

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 32},
    {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

#[test]
fn fit_trains_an_mlp_to_high_validation_accuracy_in_one_call() {
    let (tr, va) = all_digits(1400);
    let (tr, va) = (flat(&tr), flat(&va));
    let spec = ArchSpec::parse(MLP).unwrap();
    let cfg = TrainConfig {
        epochs: 8,
        batch_size: 32,
        optimizer: Optimizer::adam(0.01),
        schedule: Schedule::Cosine { min_lr: 0.0 },
        warmup_epochs: 1,
        seed: 3,
        ..TrainConfig::default()
    };
    let (m, h) = train_spec(&spec, 1, &tr, &cfg).unwrap();
    assert_eq!(h.epochs.len(), 8);
    assert_eq!(h.steps, 8 * 1400_u64.div_ceil(32));
    assert!(h.epochs[7].train_loss < 0.5 * h.epochs[0].train_loss);
    let (_, acc) = evaluate(&m, &va, 256).unwrap();
    assert!(acc > 0.9, "validation accuracy {acc}");
    // The cosine schedule ends near zero.
    assert!(h.epochs[7].lr < 1e-3, "{}", h.epochs[7].lr);
    // Per-example losses: members (training data) score lower on average.
    let lin = per_example_losses(&m, &tr, 256).unwrap();
    let lout = per_example_losses(&m, &va, 256).unwrap();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert_eq!(lin.len(), 1400);
    assert!(mean(&lin) < mean(&lout));
}

fn bn_cnn() -> ArchSpec {
    ArchSpec::parse(
        r#"{"input": [1, 8, 8], "layers": [
        {"type": "conv2d", "filters": 4, "kernel": 3, "padding": 1},
        {"type": "batch_norm"}, {"type": "relu"},
        {"type": "residual", "filters": 4, "stride": 2, "batch_norm": true},
        {"type": "global_avg_pool"}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap()
}

fn bn_cfg() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 20,
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        weight_decay: WeightDecay::L2(1e-4),
        schedule: Schedule::Step {
            every: 1,
            gamma: 0.5,
        },
        seed: 11,
        augment: Augment {
            crop_padding: 1,
            flip: false,
        },
        ..TrainConfig::default()
    }
}

#[test]
fn interrupted_run_resumed_from_its_checkpoint_matches_the_uninterrupted_run() {
    let (tr, va) = all_digits(120);
    let va = va.slice(0, 30);
    let spec = bn_cnn();
    let cfg = bn_cfg();

    let mut straight = OnnxModel::from_spec(&spec, 4).unwrap();
    let h1 = fit(
        &mut straight,
        &tr,
        &cfg,
        FitOptions {
            val: Some(&va),
            spec: Some(&spec),
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert!(!h1.cancelled);
    assert!(h1.epochs.iter().all(|e| e.val_accuracy.is_some()));

    // Same run, cancelled in the middle of epoch 2 (step 8 of 18).
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("run").join("ck.safetensors");
    let cancel = AtomicBool::new(false);
    let mut steps = 0;
    let mut saw_ck = false;
    let mut cb = |e: &FitEvent| match e {
        FitEvent::Batch { .. } => {
            steps += 1;
            if steps == 8 {
                cancel.store(true, Ordering::SeqCst);
            }
        }
        FitEvent::Checkpoint(_) => saw_ck = true,
        FitEvent::Epoch(_) => {}
    };
    let mut part = OnnxModel::from_spec(&spec, 4).unwrap();
    let h2 = fit(
        &mut part,
        &tr,
        &cfg,
        FitOptions {
            val: Some(&va),
            spec: Some(&spec),
            progress: Some(&mut cb),
            cancel: Some(&cancel),
            checkpoint: Some(CheckpointPolicy {
                path: ck.clone(),
                every: 1,
                at_end: true,
                run_options: None,
            }),
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert!(saw_ck);
    assert!(h2.cancelled);
    assert_eq!(h2.epochs.len(), 1);
    assert_eq!(h2.steps, 8);

    let c = Checkpoint::load(&ck).unwrap();
    assert_eq!((c.epochs_done, c.batches_done), (1, 2));
    assert_eq!(c.spec.as_ref(), Some(&spec));
    assert_eq!(c.config, cfg);
    // A fresh model resumed from the file finishes the run.
    let mut resumed = OnnxModel::from_spec(&spec, 99).unwrap();
    let h3 = fit(
        &mut resumed,
        &tr,
        &cfg,
        FitOptions {
            val: Some(&va),
            spec: Some(&spec),
            resume: Some(c),
            ..FitOptions::default()
        },
    )
    .unwrap();
    assert!(!h3.cancelled);
    assert_eq!(h3.steps, h1.steps);
    assert_eq!(h3.epochs.len(), 3);
    for n in straight.weight_names() {
        assert_eq!(
            straight.weight(&n).unwrap(),
            resumed.weight(&n).unwrap(),
            "weight {n} differs after resume"
        );
    }
    for (a, b) in h1.epochs.iter().zip(&h3.epochs) {
        assert_eq!(a.val_loss, b.val_loss);
        assert!((a.train_loss - b.train_loss).abs() < 1e-6);
    }
    // Running statistics moved away from their initial (0, 1).
    let rm = straight.weight("layer1.running_mean").unwrap();
    assert!(rm.data.iter().any(|v| v.abs() > 1e-3));

    // A resume into another architecture is refused, as is a damaged file.
    let other = OnnxModel::from_spec(&ArchSpec::parse(CNN_TOML).unwrap(), 0).unwrap();
    let c = Checkpoint::load(&ck).unwrap();
    let mut o = other.clone();
    let r = fit(
        &mut o,
        &tr,
        &cfg,
        FitOptions {
            resume: Some(c),
            ..FitOptions::default()
        },
    );
    assert!(r.is_err());
    let bytes = std::fs::read(&ck).unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(Checkpoint::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut flipped = bytes.clone();
    flipped[20] ^= 0x5a;
    let _ = Checkpoint::from_bytes(&flipped);
    // No temporary files are left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn batch_norm_running_statistics_track_the_data() {
    // BN straight on the input: its running mean must approach the
    // per-feature data mean (momentum 0.1 over 60 steps).
    let (tr, _) = all_digits(600);
    let tr = flat(&tr);
    let spec = ArchSpec::parse(
        r#"{"input": [64], "layers": [{"type": "batch_norm"}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 5,
        batch_size: 50,
        ..TrainConfig::default()
    };
    let (m, _) = train_spec(&spec, 0, &tr, &cfg).unwrap();
    let rm = m.weight("layer0.running_mean").unwrap();
    let rv = m.weight("layer0.running_var").unwrap();
    for j in [10, 20, 27, 36, 44] {
        let col: Vec<f32> = (0..600).map(|i| tr.x.data[i * 64 + j]).collect();
        let mean = col.iter().sum::<f32>() / 600.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 599.0;
        assert!(
            (rm.data[j] - mean).abs() < 0.05,
            "{j}: {} vs {mean}",
            rm.data[j]
        );
        assert!(
            (rv.data[j] - var).abs() < 0.25 * var + 0.01,
            "{j}: {} vs {var}",
            rv.data[j]
        );
    }
}

#[test]
fn distilling_soft_targets_copies_the_teacher() {
    let (tr, va) = all_digits(800);
    let (tr, va) = (flat(&tr), flat(&va));
    let spec = ArchSpec::parse(MLP).unwrap();
    let cfg = TrainConfig {
        epochs: 6,
        batch_size: 32,
        optimizer: Optimizer::adam(0.01),
        ..TrainConfig::default()
    };
    let (teacher, _) = train_spec(&spec, 1, &tr, &cfg).unwrap();
    let probs = probabilities(&teacher, &tr.x, 256).unwrap();
    let student_spec = ArchSpec::parse(
        r#"{"input": [64], "layers": [{"type": "dense", "units": 24}, {"type": "tanh"},
        {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let (student, h) = train_spec_soft(&student_spec, 2, &tr.x, &probs, &cfg).unwrap();
    assert_eq!(h.epochs.len(), 6);
    let a = teacher.predict(&va.x).unwrap();
    let b = student.predict(&va.x).unwrap();
    let agree = a.iter().zip(&b).filter(|(p, q)| p == q).count() as f32 / a.len() as f32;
    assert!(agree > 0.85, "agreement {agree}");
}

#[test]
fn fit_rejects_bad_configs_and_inputs() {
    let (tr, _) = all_digits(50);
    let spec = ArchSpec::parse(MLP).unwrap();
    let mut m = OnnxModel::from_spec(&spec, 0).unwrap();
    let bad = [
        TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            optimizer: Optimizer::adam(-1.0),
            ..TrainConfig::default()
        },
        TrainConfig {
            weight_decay: WeightDecay::Decoupled(f32::NAN),
            ..TrainConfig::default()
        },
    ];
    let ftr = flat(&tr);
    for cfg in &bad {
        assert!(fit(&mut m, &ftr, cfg, FitOptions::default()).is_err());
    }
    // Augmentation needs images.
    let cfg = TrainConfig {
        augment: Augment {
            crop_padding: 2,
            flip: true,
        },
        ..TrainConfig::default()
    };
    assert!(fit(&mut m, &ftr, &cfg, FitOptions::default()).is_err());
    // Wrong input shape for the model.
    assert!(fit(&mut m, &tr, &TrainConfig::default(), FitOptions::default()).is_err());
    // Non-finite inputs are refused up front.
    let mut nan = ftr.clone();
    nan.x.data[5] = f32::NAN;
    let err = fit(&mut m, &nan, &TrainConfig::default(), FitOptions::default());
    assert!(err.unwrap_err().to_string().contains("finite"));
}
