//! End-to-end runs of `aisec train` on the bundled 8x8 digits (uint8, /16).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{aisec, digits};

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 32},
    {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

fn train(dir: &Path, out: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let spec = dir.join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let r = aisec(&["train", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .arg("--arch")
        .arg(&spec)
        .arg("--out")
        .arg(dir.join(out))
        .args(&["--format", "json", "--no-progress"])
        .args(extra)
        .run();
    (r.code, r.json())
}

#[test]
fn train_writes_a_model_that_reloads_and_is_accurate() {
    let d = tempfile::tempdir().unwrap();
    let onnx = d.path().join("m.onnx");
    let (code, v) = train(
        d.path(),
        "m.safetensors",
        &[
            "--val-split",
            "0.2",
            "--epochs",
            "4",
            "--lr",
            "0.01",
            "--schedule",
            "cosine",
            "--onnx",
            onnx.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{v}");
    let t = &v["data"]["train"];
    assert_eq!(t["examples"], 1438);
    assert_eq!(t["validation_examples"], 359);
    let h = t["history"]["epochs"].as_array().unwrap();
    assert_eq!(h.len(), 4);
    let acc = h[3]["val_accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "validation accuracy {acc}");
    // Weights + spec beside them, and the ONNX export, all load and agree.
    let spec_text = std::fs::read_to_string(d.path().join("m.spec.json")).unwrap();
    let spec = aisec_model::spec::ArchSpec::parse(&spec_text).unwrap();
    let m = aisec_model::OnnxModel::from_spec_safetensors(&spec, d.path().join("m.safetensors"))
        .unwrap();
    let o = aisec_model::OnnxModel::load(&onnx).unwrap();
    let mut x = aisec_model::data::npy::read_npy(digits("x.npy"))
        .unwrap()
        .to_tensor();
    x.data.truncate(50 * 64);
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    x.shape = vec![50, 64];
    use aisec_model::Classifier;
    assert_eq!(m.logits(&x).unwrap(), o.logits(&x).unwrap());
}

/// A spec with dropout and per-layer initialisers trains from the CLI; the
/// spec written beside the weights keeps both, and the ONNX export (with a
/// standard `Dropout` node, the identity) gives the same outputs.
#[test]
fn train_with_dropout_and_torch_init_exports_and_reloads() {
    let d = tempfile::tempdir().unwrap();
    let spec = d.path().join("drop.json");
    std::fs::write(
        &spec,
        r#"{"input": [64], "layers": [{"type": "dense", "units": 32, "init": "torch"},
        {"type": "relu"}, {"type": "dropout", "rate": 0.2},
        {"type": "dense", "units": 10, "init": {"weight": "glorot_uniform", "bias": "zeros"}}]}"#,
    )
    .unwrap();
    let onnx = d.path().join("m.onnx");
    let r = aisec(&["train", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .arg("--arch")
        .arg(&spec)
        .arg("--out")
        .arg(d.path().join("m.safetensors"))
        .arg("--onnx")
        .arg(&onnx)
        .args(&["--epochs", "4", "--lr", "0.01", "--val-split", "0.2"])
        .args(&["--format", "json", "--no-progress"])
        .run();
    let v = r.json();
    assert_eq!(r.code, Some(0), "{v}");
    let h = v["data"]["train"]["history"]["epochs"].as_array().unwrap();
    let acc = h[3]["val_accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "validation accuracy {acc}");
    let spec_text = std::fs::read_to_string(d.path().join("m.spec.json")).unwrap();
    assert!(
        spec_text.contains("dropout") && spec_text.contains("torch"),
        "{spec_text}"
    );
    let spec = aisec_model::spec::ArchSpec::parse(&spec_text).unwrap();
    let m = aisec_model::OnnxModel::from_spec_safetensors(&spec, d.path().join("m.safetensors"))
        .unwrap();
    let o = aisec_model::OnnxModel::load(&onnx).unwrap();
    let mut x = aisec_model::data::npy::read_npy(digits("x.npy"))
        .unwrap()
        .to_tensor();
    x.data.truncate(50 * 64);
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    x.shape = vec![50, 64];
    use aisec_model::Classifier;
    assert_eq!(m.logits(&x).unwrap(), o.logits(&x).unwrap());
}

#[test]
fn resumed_run_gives_the_same_weights_as_a_straight_one() {
    let d = tempfile::tempdir().unwrap();
    let args = [
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--weight-decay",
        "1e-4",
    ];
    let (c, _) = train(
        d.path(),
        "straight.safetensors",
        &[&args[..], &["--epochs", "3"]].concat(),
    );
    assert_eq!(c, Some(0));
    let ck: PathBuf = d.path().join("ck");
    let (c, v) = train(
        d.path(),
        "first.safetensors",
        &[
            &args[..],
            &["--epochs", "1", "--checkpoint-dir", ck.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(c, Some(0), "{v}");
    assert!(ck.join("checkpoint.safetensors").exists());
    // Resume: the checkpoint's settings are used; --epochs extends the run.
    let (c, v) = train(
        d.path(),
        "resumed.safetensors",
        &["--resume", ck.to_str().unwrap(), "--epochs", "3"],
    );
    assert_eq!(c, Some(0), "{v}");
    assert_eq!(
        v["data"]["train"]["history"]["epochs"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let a = std::fs::read(d.path().join("straight.safetensors")).unwrap();
    let b = std::fs::read(d.path().join("resumed.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from the straight run");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    // Inputs without labels.
    let spec = d.path().join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let run = |args: &[&str]| aisec(&["train"]).args(args).output();
    let o = d.path().join("o.safetensors");
    let out = run(&[
        &digits("x.npy"),
        "--arch",
        spec.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--labels"));
    // A spec whose input does not fit the data.
    let wrong = d.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"input": [10], "layers": [{"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let out = run(&[
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
        "--arch",
        wrong.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs 10"));
    // A damaged checkpoint.
    let bad = d.path().join("bad.safetensors");
    std::fs::write(&bad, b"\x10\0\0\0\0\0\0\0{\"a\":1}").unwrap();
    let out = run(&[
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
        "--resume",
        bad.to_str().unwrap(),
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpoint"));
    // Augmentation on flat inputs.
    let out = run(&[
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
        "--arch",
        spec.to_str().unwrap(),
        "--augment",
        "flip",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!o.exists());
}

#[cfg(unix)]
#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_130() {
    let d = tempfile::tempdir().unwrap();
    let spec = d.path().join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let out = d.path().join("m.safetensors");
    let child = aisec(&["train", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .arg("--arch")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .args(&["--epochs", "100000", "--batch-size", "8"])
        .args(&["--format", "json", "--no-progress"])
        .spawn();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "interrupted runs exit 130");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let msg = v["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("--resume"), "{msg}");
    assert!(!out.exists(), "no final model from an interrupted run");
    let ck = d.path().join("m.checkpoint.safetensors");
    let c = aisec_model::checkpoint::Checkpoint::load(&ck).unwrap();
    assert!(c.trainer.step > 0);
    assert!(v["data"]["train"]["history"]["cancelled"]
        .as_bool()
        .unwrap());
}
