//! End-to-end runs of `aisec attack poison` and `aisec defend data` on the
//! bundled 8x8 digits (stored 0..16, flat 64 values: the trigger uses the
//! square 8x8 layout).

use crate::util::{aisec, digits};

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

#[test]
fn poison_plants_a_backdoor_and_defend_data_ranks_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("mlp.json");
    std::fs::write(&spec, MLP).unwrap();
    let out = tmp.path().join("p");
    // The test set is the training set here: this checks the mechanics
    // (files, findings, numbers wired through), not generalisation; the
    // held-out numbers are in bench/poison/RESULTS.md.
    let r = aisec(&[
        "attack",
        "poison",
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
    ])
    .args(&[
        "--scale", "0.0625", "--kind", "badnets", "--rate", "0.1", "--target", "0",
    ])
    .args(&[
        "--epochs", "15", "--lr", "0.005", "--format", "json", "--quiet",
    ])
    .arg("--arch")
    .arg(&spec)
    .args(&[
        "--test",
        &digits("x.npy"),
        "--test-labels",
        &digits("y.npy"),
    ])
    .arg("--out")
    .arg(&out)
    .run();
    r.expect_code(1);
    let j = r.json();
    let f = j["findings"].as_array().unwrap();
    assert_eq!(f[0]["rule_id"], "AISEC-POISON-001");
    assert_eq!(f[0]["atlas"][0], "AML.T0020");
    let m = &f[1]["metrics"];
    assert_eq!(f[1]["rule_id"], "AISEC-POISON-002");
    assert!(m["attack_success_rate"].as_f64().unwrap() > 0.9, "{m}");
    assert!(m["clean_accuracy"].as_f64().unwrap() > 0.85, "{m}");
    for name in [
        "poisoned.npz",
        "trigger.png",
        "indices.json",
        "examples.png",
        "victim.onnx",
        "test_triggered.npz",
    ] {
        assert!(out.join(name).exists(), "{name} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("indices.json")).unwrap()).unwrap();
    assert_eq!(manifest["indices"].as_array().unwrap().len(), 180);

    let dd = tmp.path().join("dd");
    let r = aisec(&["defend", "data"])
        .arg(out.join("poisoned.npz"))
        .arg("--model")
        .arg(out.join("victim.onnx"))
        .arg("--arch")
        .arg(&spec)
        .args(&[
            "--early-epochs",
            "3",
            "--isolate",
            "0.1",
            "--format",
            "json",
            "--quiet",
            "--no-fail",
        ])
        .arg("--ground-truth")
        .arg(out.join("indices.json"))
        .arg("--out")
        .arg(&dd)
        .run();
    r.expect_code(0);
    let j = r.json();
    let methods = j["data"]["defend_data"]["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 3);
    for m in methods {
        let d = &m["detection"];
        assert!(d["recall"].as_f64().is_some(), "{m}");
        // Every method ranks poison above clean more often than not.
        assert!(d["auroc"].as_f64().unwrap() > 0.5, "{m}");
    }
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dd.join("scores.json")).unwrap()).unwrap();
    assert_eq!(scores[0]["ranked"].as_array().unwrap().len(), 1797);
    assert!(dd.join("scores.npz").exists());
}

#[test]
fn poison_refuses_bad_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p");
    let base = |extra: &[&str]| {
        aisec(&[
            "attack",
            "poison",
            &digits("x.npy"),
            "--labels",
            &digits("y.npy"),
            "--scale",
            "0.0625",
        ])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .run()
    };
    // No shape and no spec; clean-label without a surrogate spec; unknown attack; unscaled data.
    base(&[]).expect_code(2);
    base(&["--input-shape", "64", "--kind", "clean-label"]).expect_code(2);
    base(&["--input-shape", "64", "--kind", "nope"]).expect_code(2);
    let r = aisec(&[
        "attack",
        "poison",
        &digits("x.npy"),
        "--labels",
        &digits("y.npy"),
        "--input-shape",
        "64",
    ])
    .arg("--out")
    .arg(&out)
    .run();
    r.expect_code(2);
    // Without --arch: data, trigger and ground truth only, exit 0 at --fail-on high.
    base(&["--input-shape", "64", "--kind", "blended", "--rate", "0.05"]).expect_code(0);
    assert!(out.join("indices.json").exists() && out.join("trigger.png").exists());
}
