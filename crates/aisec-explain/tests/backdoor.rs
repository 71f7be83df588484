//! Trigger localisation on a BadNets-style backdoored model (Gu et al.
//! 2017, "BadNets: Identifying Vulnerabilities in the Machine Learning
//! Model Supply Chain"), made here: a 2x2 white patch in the bottom-right
//! corner is stamped on 10% of the bundled 8x8 digits, which are relabelled
//! to class 0, and a small CNN is trained on the mix with aisec-model's
//! trainer. Attributions of triggered inputs should point at the patch.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_explain::gradient::{integrated_gradients, saliency, IgConfig};
use aisec_explain::perturb::{occlusion, OcclusionConfig};
use aisec_explain::security::trigger_iou;
use aisec_model::data::npy::parse_npy;
use aisec_model::data::Dataset;
use aisec_model::fit::{train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, OnnxModel, Tensor};

const X: &[u8] = include_bytes!("../../aisec-model/tests/fixtures/digits/x.npy");
const Y: &[u8] = include_bytes!("../../aisec-model/tests/fixtures/digits/y.npy");

const TARGET: usize = 0;

fn trigger() -> Vec<bool> {
    (0..64).map(|p| p / 8 >= 6 && p % 8 >= 6).collect()
}

fn stamp(row: &mut [f32]) {
    for (p, t) in trigger().iter().enumerate() {
        if *t {
            row[p] = 1.0;
        }
    }
}

/// The backdoored CNN, and held-out (last 297) digits of other classes, stamped.
fn backdoored() -> (OnnxModel, Tensor, Vec<usize>) {
    let mut x = parse_npy(X).unwrap().to_tensor();
    let y = parse_npy(Y).unwrap().to_labels().unwrap();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let n_train = 1500;
    let mut xt = Tensor::new(vec![n_train, 1, 8, 8], x.data[..n_train * 64].to_vec()).unwrap();
    let mut yt = y[..n_train].to_vec();
    // Every 10th training digit is poisoned.
    for i in (0..n_train).step_by(10) {
        stamp(xt.row_mut(i));
        yt[i] = TARGET;
    }
    let spec = ArchSpec::parse(
        r#"{"input": [1, 8, 8], "layers": [
            {"type": "conv2d", "filters": 8, "kernel": 3, "padding": 1}, {"type": "relu"},
            {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"},
            {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 12,
        batch_size: 32,
        optimizer: Optimizer::adam(0.005),
        seed: 1,
        ..TrainConfig::default()
    };
    let (model, _) = train_spec(&spec, 3, &Dataset::new(xt, yt).unwrap(), &cfg).unwrap();
    let mut test = Vec::new();
    let mut labels = Vec::new();
    for (i, &label) in y.iter().enumerate().skip(n_train) {
        if label != TARGET {
            let mut r = x.row(i).to_vec();
            stamp(&mut r);
            test.extend(r);
            labels.push(label);
        }
    }
    let n = labels.len();
    (model, Tensor::new(vec![n, 1, 8, 8], test).unwrap(), labels)
}

#[test]
fn attributions_of_triggered_inputs_localise_the_badnets_patch() {
    let (model, xt, _) = backdoored();
    let pred = model.predict(&xt).unwrap();
    let asr = pred.iter().filter(|&&p| p == TARGET).count() as f32 / pred.len() as f32;
    assert!(asr > 0.9, "attack success rate {asr}");
    let targets = vec![TARGET; xt.batch()];
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;

    let ig = integrated_gradients(
        &model,
        &xt,
        &Tensor::zeros(vec![1, 1, 8, 8]),
        &targets,
        &IgConfig::default(),
    )
    .unwrap();
    let ig_iou = mean(&trigger_iou(&ig.attributions, &trigger()).unwrap());
    let sal = saliency(&model, &xt, &targets, true).unwrap();
    let sal_iou = mean(&trigger_iou(&sal, &trigger()).unwrap());
    let occ = occlusion(
        &model,
        &xt,
        &targets,
        &OcclusionConfig {
            window: vec![1, 2, 2],
            strides: vec![1, 1, 1],
            baseline: 0.0,
            chunk: 512,
        },
    )
    .unwrap();
    let occ_iou = mean(&trigger_iou(&occ, &trigger()).unwrap());
    eprintln!(
        "ASR {asr:.3}; trigger IoU: IG {ig_iou:.3}, saliency {sal_iou:.3}, occlusion {occ_iou:.3}"
    );
    // 4 of 64 pixels drawn at random overlap the trigger with IoU ~0.03.
    assert!(ig_iou > 0.5, "IG IoU {ig_iou}");
    assert!(occ_iou > 0.5, "occlusion IoU {occ_iou}");
}
