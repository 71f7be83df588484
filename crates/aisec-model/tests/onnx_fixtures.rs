//! Outputs and input gradients of committed ONNX fixtures against
//! onnxruntime / PyTorch references (see scripts/models/train_fixtures.py).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::path::PathBuf;

use aisec_model::data::npy::read_npy;
use aisec_model::{Classifier, Differentiable, Loss, ModelError, OnnxModel, Tensor};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn check_fixture(name: &str) {
    let m = OnnxModel::load(fx(&format!("{name}.onnx"))).unwrap();
    let x = read_npy(fx(&format!("{name}.x.npy"))).unwrap().to_tensor();
    let y = read_npy(fx(&format!("{name}.y.npy")))
        .unwrap()
        .to_labels()
        .unwrap();
    let logits = read_npy(fx(&format!("{name}.logits.npy")))
        .unwrap()
        .to_tensor();
    let grad = read_npy(fx(&format!("{name}.grad.npy")))
        .unwrap()
        .to_tensor();
    assert_eq!(m.input_shape(), &x.shape[1..]);
    assert_eq!(m.num_classes(), 10);
    let z = m.logits(&x).unwrap();
    assert_eq!(z.shape, logits.shape);
    let d = z
        .data
        .iter()
        .zip(&logits.data)
        .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
    assert!(d < 1e-4, "{name}: logits differ by {d}");
    let (vals, g, z2) = m
        .loss_grad(&x, &Loss::CrossEntropy { labels: y.clone() })
        .unwrap();
    assert_eq!(vals.len(), y.len());
    assert_eq!(z2.data, z.data);
    let scale = max_abs(&grad.data).max(1e-6);
    let gd = g
        .data
        .iter()
        .zip(&grad.data)
        .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
    assert!(
        gd / scale < 1e-4,
        "{name}: gradients differ by {gd} (scale {scale})"
    );
}

#[test]
fn digits_mlp_matches_references() {
    check_fixture("digits_mlp");
}

#[test]
fn digits_cnn_matches_references() {
    check_fixture("digits_cnn");
}

#[test]
fn op_zoo_matches_references() {
    check_fixture("op_zoo");
}

#[test]
fn upsample_zoo_matches_references() {
    check_fixture("upsample_zoo");
}

#[test]
fn upsample_zoo_opset11_matches_references() {
    check_fixture("upsample_zoo11");
}

#[test]
fn text_classifier_matches_references() {
    // Token ids arrive as floats; the gradient w.r.t. integer ids is zero.
    check_fixture("text_clf");
}

// torchvision-shaped architectures (random weights, 3x16x16 inputs), each
// as exported by the TorchScript exporter and by the dynamo exporter.

#[test]
fn torchvision_vit_matches_references() {
    // nn.MultiheadAttention: Shape/Gather/Mod/Div head arithmetic, Squeeze.
    check_fixture("vit_tiny");
    check_fixture("vit_tiny_dynamo");
}

#[test]
fn hand_written_vit_matches_references_in_three_export_forms() {
    check_fixture("vit_manual");
    // Opset 11: LayerNorm decomposed (ReduceMean with attribute axes, Pow,
    // Sqrt), Unsqueeze with attribute axes, legacy Softmax axis.
    check_fixture("vit_manual11");
    // Dynamo/opset 18: Split with num_outputs, Reduce axes as inputs.
    check_fixture("vit_manual_dynamo");
}

#[test]
fn mobilenet_v2_matches_references() {
    // Eval BatchNormalization kept, depthwise Conv, Clip (ReLU6), residual Add.
    check_fixture("mobilenetv2_tiny");
    // Dynamo: BatchNorm folded, ReduceMean pooling, Reshape head.
    check_fixture("mobilenetv2_tiny_dynamo");
}

#[test]
fn activation_zoo_matches_references() {
    // HardSwish, HardSigmoid, InstanceNormalization, PRelu, Elu, Selu, Celu,
    // Softplus, Mish (dynamo), Max/Min, Tile, ReduceMax, Reciprocal, ...
    check_fixture("act_zoo");
    check_fixture("act_zoo_dynamo");
}

#[test]
fn text_cnn_matches_references() {
    // Embedding, Conv1d of two widths, max over time (ReduceMax).
    check_fixture("text_cnn");
    check_fixture("text_cnn_dynamo");
}

#[test]
fn recurrent_classifiers_match_references() {
    // Bidirectional LSTM over embeddings (logits only: ids carry no gradient).
    check_fixture("text_lstm");
    // Two stacked LSTMs over float features: input gradients vs torch.
    check_fixture("seq_lstm");
    // Bidirectional GRU (linear_before_reset=1) over float features.
    check_fixture("seq_gru");
}

#[test]
fn vgg_matches_references() {
    check_fixture("vgg_tiny");
    check_fixture("vgg_tiny_dynamo");
}

#[test]
fn unsupported_operator_inside_a_vit_is_named() {
    let mut b = std::fs::read(fx("vit_manual.onnx")).unwrap();
    // Every "Erf" op_type (tag 0x22, length 3) becomes the unknown "Erx".
    let mut hits = 0;
    while let Some(pos) = b.windows(5).position(|w| w == b"\x22\x03Erf") {
        b[pos + 4] = b'x';
        hits += 1;
    }
    assert_eq!(hits, 2);
    match OnnxModel::from_bytes(b) {
        Err(ModelError::Unsupported { op, node }) => {
            assert_eq!(op, "Erx");
            assert!(node.contains("Erf"), "node name {node}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn trained_cnn_classifies_digits() {
    let m = OnnxModel::load(fx("digits_cnn.onnx")).unwrap();
    let x = read_npy(fx("digits_cnn.x.npy")).unwrap().to_tensor();
    let y = read_npy(fx("digits_cnn.y.npy"))
        .unwrap()
        .to_labels()
        .unwrap();
    let p = m.predict(&x).unwrap();
    let correct = p.iter().zip(&y).filter(|(a, b)| a == b).count();
    assert!(correct >= 14, "only {correct}/16 correct");
}

#[test]
fn sgd_lowers_loss_and_saved_onnx_reloads() {
    let mut m = OnnxModel::load(fx("digits_mlp.onnx")).unwrap();
    let x = read_npy(fx("digits_mlp.x.npy")).unwrap().to_tensor();
    // Train towards shifted labels so the loss has room to fall.
    let y: Vec<usize> = read_npy(fx("digits_mlp.y.npy"))
        .unwrap()
        .to_labels()
        .unwrap()
        .iter()
        .map(|l| (l + 1) % 10)
        .collect();
    let loss = Loss::CrossEntropy { labels: y };
    let first = m.sgd_step(&x, &loss, 0.5).unwrap();
    let mut last = first;
    for _ in 0..20 {
        last = m.sgd_step(&x, &loss, 0.5).unwrap();
    }
    assert!(last < first * 0.8, "loss {first} -> {last}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("trained.onnx");
    m.save_onnx(&p).unwrap();
    let back = OnnxModel::load(&p).unwrap();
    assert_eq!(back.logits(&x).unwrap(), m.logits(&x).unwrap());
    for name in m.weight_names() {
        assert_eq!(back.weight(&name), m.weight(&name));
    }
}

#[test]
fn unsupported_operator_is_named() {
    let mut b = std::fs::read(fx("digits_mlp.onnx")).unwrap();
    // NodeProto.op_type is field 4: tag 0x22, length 4, "Tanh".
    let pos = b.windows(6).position(|w| w == b"\x22\x04Tanh").unwrap();
    b[pos + 2..pos + 6].copy_from_slice(b"Tanx");
    match OnnxModel::from_bytes(b) {
        Err(ModelError::Unsupported { op, node }) => {
            assert_eq!(op, "Tanx");
            assert!(!node.is_empty());
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn truncated_and_garbage_bytes_are_errors() {
    let b = std::fs::read(fx("digits_cnn.onnx")).unwrap();
    for cut in [1, 7, 100, b.len() / 2, b.len() - 3] {
        assert!(OnnxModel::from_bytes(b[..cut].to_vec()).is_err());
    }
    assert!(OnnxModel::from_bytes(vec![0xff; 64]).is_err());
}

#[test]
fn wrong_input_shape_is_an_error() {
    let m = OnnxModel::load(fx("digits_cnn.onnx")).unwrap();
    assert!(m.logits(&Tensor::zeros(vec![2, 1, 8, 9])).is_err());
}

#[test]
fn exec_limits_apply_to_a_loaded_model() {
    // The VGG fixture loads (its batch-1 dry run fits the defaults); a
    // batch-8 pass under a 10,000-element tensor bound is refused with a
    // Limit error naming a node, and runs again once the bound is back.
    let mut m = OnnxModel::load(fx("vgg_tiny.onnx")).unwrap();
    let defaults = m.exec_limits();
    let mut shape = vec![8];
    shape.extend_from_slice(m.input_shape());
    let x = Tensor::zeros(shape);
    let want = m.logits(&x).unwrap();
    m.set_exec_limits(aisec_model::ExecLimits {
        max_tensor_elems: 10_000,
        ..defaults
    });
    match m.logits(&x) {
        Err(e @ ModelError::Limit { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("over the limit of 10000"), "{msg}");
        }
        other => panic!("expected a Limit error, got {other:?}"),
    }
    m.set_exec_limits(defaults);
    assert_eq!(m.logits(&x).unwrap().data, want.data);
}
