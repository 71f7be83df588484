//! Spec-built models: training with SGD/Adam on the digits fixture,
//! safetensors round trip and ONNX export.

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
