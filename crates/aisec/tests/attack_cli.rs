//! End-to-end runs of `aisec attack evasion` on the committed digits models.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!(
        "{}/../aisec-model/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn evasion(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_aisec"))
        .args([
            "attack",
            "evasion",
            &fixture("digits_mlp.onnx"),
            "--inputs",
            &fixture("digits_mlp.x.npy"),
            "--labels",
            &fixture("digits_mlp.y.npy"),
            "--format",
            "json",
            "--no-progress",
        ])
        .args(extra)
        .output()
        .expect("run aisec");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

#[test]
fn pgd_lowers_accuracy_and_is_deterministic() {
    let args = [
        "--attacks",
        "fgsm,pgd",
        "--eps",
        "0.2",
        "--steps",
        "20",
        "--seed",
        "7",
    ];
    let (code, a) = evasion(&args);
    assert!(matches!(code, Some(0) | Some(1)));
    let ev = &a["data"]["evasion"];
    let clean = ev["clean_accuracy"].as_f64().unwrap();
    let robust = ev["worst_case_robust_accuracy"].as_f64().unwrap();
    assert!(clean > 0.8, "clean accuracy {clean}");
    assert!(robust < clean, "robust {robust} not below clean {clean}");
    let f = &a["findings"][0];
    assert!(f["atlas"].to_string().contains("AML.T0015"));
    let (_, b) = evasion(&args);
    assert_eq!(
        ev["worst_case_robust_accuracy"],
        b["data"]["evasion"]["worst_case_robust_accuracy"]
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_aisec"))
        .args([
            "attack",
            "evasion",
            &fixture("digits_mlp.onnx"),
            "--inputs",
            &fixture("digits_mlp.x.npy"),
            "--labels",
            &fixture("digits_mlp.y.npy"),
            "--attacks",
            "telepathy",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown attack 'telepathy'"));
    let missing = Command::new(env!("CARGO_BIN_EXE_aisec"))
        .args([
            "attack",
            "evasion",
            "/no/model.onnx",
            "--inputs",
            "x",
            "--labels",
            "y",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/model.onnx"));
}

/// The committed real-MNIST models (crates/aisec-attack/tests/fixtures, made by
/// scripts/models/train_mnist.py) on their 8-digit test batch.
fn mnist(model: &str, extra: &[&str]) -> serde_json::Value {
    let f = |n: &str| {
        format!(
            "{}/../aisec-attack/tests/fixtures/{n}",
            env!("CARGO_MANIFEST_DIR")
        )
    };
    let out = Command::new(env!("CARGO_BIN_EXE_aisec"))
        .args([
            "attack",
            "evasion",
            &f(model),
            "--inputs",
            &f("mnist_tiny.x.npy"),
            "--labels",
            &f("mnist_tiny.y.npy"),
            "--format",
            "json",
            "--no-progress",
        ])
        .args(extra)
        .output()
        .expect("run aisec");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn mnist_fixtures_undefended_falls_adversarially_trained_holds() {
    let args = ["--attacks", "bim", "--eps", "0.3", "--steps", "5"];
    let plain = mnist("mnist_cnn.onnx", &args);
    let ev = &plain["data"]["evasion"];
    assert!(ev["clean_accuracy"].as_f64().unwrap() >= 0.75);
    let robust_plain = ev["worst_case_robust_accuracy"].as_f64().unwrap();
    assert!(robust_plain <= 0.25, "undefended robust {robust_plain}");
    let madry = mnist("mnist_madry.onnx", &args);
    let ev = &madry["data"]["evasion"];
    assert!(ev["clean_accuracy"].as_f64().unwrap() >= 0.75);
    let robust_madry = ev["worst_case_robust_accuracy"].as_f64().unwrap();
    assert!(
        robust_madry >= robust_plain + 0.25,
        "adversarially trained {robust_madry} vs undefended {robust_plain}"
    );
}
