//! End-to-end runs of `aisec harden adv` / `aisec harden dp` on the
//! bundled 8x8 digits (0..16, so `--scale 0.0625`), tiny budgets.

use std::path::Path;

use crate::util::{aisec, digits};

const MLP: &str = r#"{"input": [64], "layers": [{"type": "dense", "units": 32},
    {"type": "relu"}, {"type": "dense", "units": 10}]}"#;

fn spec(dir: &Path) -> String {
    let p = dir.join("mlp.json");
    std::fs::write(&p, MLP).unwrap();
    p.display().to_string()
}

/// A spec with dropout trains under `aisec harden adv` (its inner attack
/// on the inference model, its weight update with dropout), the same seed
/// gives the same weights, and `--no-shuffle` reaches the training loop
/// (data order changes the weights).
#[test]
fn adv_trains_a_dropout_spec_reproducibly_and_no_shuffle_changes_the_order() {
    let d = tempfile::tempdir().unwrap();
    let arch = d.path().join("drop.json");
    std::fs::write(
        &arch,
        r#"{"input": [64], "layers": [{"type": "dense", "units": 32}, {"type": "relu"},
            {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    let arch = arch.display().to_string();
    let run = |name: &str, extra: &[&str]| -> Vec<u8> {
        let out = d.path().join(name).display().to_string();
        let mut args = vec![
            "--arch",
            &arch,
            "--eps",
            "0.1",
            "--steps",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--eval-examples",
            "20",
            "--eval-steps",
            "2",
            "--no-autoattack",
            "--seed",
            "3",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        harden("adv", &args).expect_code(0);
        std::fs::read(&out).unwrap()
    };
    let a = run("a.safetensors", &[]);
    assert_eq!(a, run("b.safetensors", &[]));
    assert_ne!(a, run("c.safetensors", &["--no-shuffle"]));
}

/// `--order FILE` trains in the given per-epoch permutations: the identity
/// order gives `--no-shuffle`'s weights, a reversed order others; a file
/// that does not fit (wrong length, an index out of range, too few epochs,
/// not a permutation) exits 2 and says why.
#[test]
fn adv_order_file_replays_given_orders_and_refuses_ones_that_do_not_fit() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    let n = 1797usize; // the bundled digits, all of them training data here
    let order = |name: &str, rows: &[Vec<i64>]| -> String {
        let p = d.path().join(name);
        std::fs::write(&p, serde_json::to_string(rows).unwrap()).unwrap();
        p.display().to_string()
    };
    let (tx, ty) = (digits("x.npy"), digits("y.npy"));
    let run = |out: &str, extra: &[&str]| {
        let out = d.path().join(out).display().to_string();
        let mut args = vec![
            "--arch",
            &arch,
            "--test",
            &tx,
            "--test-labels",
            &ty,
            "--eps",
            "0.1",
            "--steps",
            "1",
            "--batch-size",
            "256",
            "--eval-examples",
            "10",
            "--eval-steps",
            "1",
            "--no-autoattack",
            "--seed",
            "2",
            "--out",
        ];
        args.push(&out);
        if !extra.contains(&"--epochs") {
            args.extend_from_slice(&["--epochs", "1"]);
        }
        args.extend_from_slice(extra);
        let r = harden("adv", &args);
        let w = std::fs::read(&out).ok();
        (r, w)
    };
    let identity: Vec<i64> = (0..n as i64).collect();
    let reversed: Vec<i64> = identity.iter().rev().copied().collect();
    let id_file = order("id.json", std::slice::from_ref(&identity));
    let (r, a) = run("a.safetensors", &["--order", &id_file]);
    r.expect_code(0);
    assert_eq!(
        r.json()["data"]["harden"]["order_file"].as_str(),
        Some(id_file.as_str())
    );
    let (_, b) = run("b.safetensors", &["--no-shuffle"]);
    assert_eq!(a, b);
    let rev_file = order("rev.json", &[reversed]);
    let (r, c) = run("c.safetensors", &["--order", &rev_file]);
    r.expect_code(0);
    assert!(a.is_some() && a != c);

    let refused = |file: &str, extra: &[&str], says: &str| {
        let mut args = vec!["--order", file];
        args.extend_from_slice(extra);
        let (r, w) = run("bad.safetensors", &args);
        r.expect_code(2);
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
        assert!(w.is_none());
    };
    let short = order("short.json", &[identity[..n - 1].to_vec()]);
    refused(
        &short,
        &[],
        "each epoch orders 1796 examples, the training set has 1797",
    );
    let mut out_of_range = identity.clone();
    out_of_range[5] = n as i64;
    let oor = order("oor.json", &[out_of_range]);
    refused(&oor, &[], "index 1797 is out of range for 1797 examples");
    let mut twice = identity.clone();
    twice[5] = 4;
    let twice = order("twice.json", &[twice]);
    refused(&twice, &[], "appears twice");
    refused(
        &id_file,
        &["--epochs", "2"],
        "covers 1 epochs, the run trains 2",
    );
    let missing = d.path().join("none.npy").display().to_string();
    refused(&missing, &[], "cannot read --order");
}

fn harden(kind: &str, extra: &[&str]) -> crate::util::Run {
    aisec(&["harden", kind, &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .args(&["--format", "json", "--no-progress"])
        .args(extra)
        .run()
}

#[test]
fn adv_trains_writes_the_model_and_a_robustbench_entry_and_measures_before_after() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    let out = d.path().join("m.safetensors");
    let rb = d.path().join("rb.json");
    let onnx = d.path().join("m.onnx");
    let r = harden(
        "adv",
        &[
            "--arch",
            &arch,
            "--eps",
            "0.1",
            "--steps",
            "3",
            "--epochs",
            "2",
            "--eps-warmup",
            "2",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--eval-examples",
            "40",
            "--eval-steps",
            "5",
            "--aa-steps",
            "5",
            "--aa-queries",
            "50",
            "--out",
            out.to_str().unwrap(),
            "--onnx",
            onnx.to_str().unwrap(),
            "--robustbench",
            rb.to_str().unwrap(),
            "--name",
            "digits-mlp-pgdat",
            "--dataset",
            "digits",
        ],
    );
    r.expect_code(0);
    let v = r.json();
    let h = &v["data"]["harden"];
    assert_eq!(h["method"], "pgd-at");
    let epochs = h["history"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert!((epochs[0]["eps"].as_f64().unwrap() - 0.05).abs() < 1e-6);
    assert!((epochs[1]["eps"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert!(epochs[1]["val_robust_accuracy"].is_number());
    // A fresh spec model has no "before"; the after numbers are AutoAttack's.
    assert!(h["before"].is_null());
    let after = &h["after"];
    assert_eq!(after["examples"], 40);
    let clean = after["clean_accuracy"].as_f64().unwrap();
    let aa = after["autoattack_accuracy"].as_f64().unwrap();
    assert!(clean > 0.5, "clean accuracy {clean}");
    assert!(aa <= clean);
    let f = &v["findings"][0];
    assert_eq!(f["rule_id"], "AISEC-HARDEN-001");
    assert!(f["atlas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "AML.T0015"));
    // The entry on disk is the report's.
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rb).unwrap()).unwrap();
    assert_eq!(entry, h["robustbench"]);
    assert_eq!(entry["name"], "digits-mlp-pgdat");
    assert_eq!(entry["dataset"], "digits");
    assert_eq!(entry["reported"], false);
    assert_eq!(entry["clean_acc"], format!("{:.2}", 100.0 * clean));
    // Weights + spec and the ONNX export load and agree.
    let spec_text = std::fs::read_to_string(d.path().join("m.spec.json")).unwrap();
    let s = aisec_model::spec::ArchSpec::parse(&spec_text).unwrap();
    let m = aisec_model::OnnxModel::from_spec_safetensors(&s, &out).unwrap();
    let o = aisec_model::OnnxModel::load(&onnx).unwrap();
    let x = aisec_model::Tensor::new(vec![1, 64], vec![0.5; 64]).unwrap();
    use aisec_model::Classifier;
    assert_eq!(m.logits(&x).unwrap(), o.logits(&x).unwrap());
}

#[test]
fn adv_fine_tunes_an_onnx_model_with_trades_and_reports_before_and_after() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    let base = d.path().join("base.onnx");
    // A plainly trained model to start from.
    aisec(&["train", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .args(&["--arch", &arch, "--epochs", "3", "--lr", "0.01"])
        .arg("--out")
        .arg(d.path().join("base.safetensors"))
        .arg("--onnx")
        .arg(&base)
        .args(&["--format", "json", "--no-progress"])
        .run()
        .expect_code(0);
    let out = d.path().join("hard.onnx");
    let r = harden(
        "adv",
        &[
            "--model",
            base.to_str().unwrap(),
            "--method",
            "trades",
            "--beta",
            "3",
            "--norm",
            "l2",
            "--eps",
            "0.5",
            "--steps",
            "3",
            "--epochs",
            "1",
            "--optimizer",
            "adam",
            "--lr",
            "0.002",
            "--eval-examples",
            "30",
            "--no-autoattack",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    r.expect_code(0);
    let v = r.json();
    let h = &v["data"]["harden"];
    assert_eq!(h["method"], "trades");
    assert_eq!(h["adversarial"]["norm"], "l2");
    let before = &h["before"];
    assert!(before["clean_accuracy"].as_f64().unwrap() > 0.7, "{before}");
    assert!(h["after"]["clean_accuracy"].is_number());
    let f = &v["findings"][0];
    assert!(f["metrics"]["robust_accuracy_before"].is_number());
    // Written back as ONNX, loadable.
    aisec_model::OnnxModel::load(&out).unwrap();
}

#[test]
fn adv_resumes_from_its_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    let ck = d.path().join("ck");
    let base = [
        "--arch",
        arch.as_str(),
        "--eps",
        "0.1",
        "--steps",
        "2",
        "--eval-steps",
        "0",
        "--no-autoattack",
        "--eval-examples",
        "20",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
    ];
    let mut first = base.to_vec();
    first.extend(["--epochs", "1"]);
    harden("adv", &first).expect_code(0);
    assert!(ck.join("checkpoint.safetensors").is_file());
    let mut second = base.to_vec();
    second.extend(["--epochs", "2", "--resume", ck.to_str().unwrap()]);
    let r = harden("adv", &second);
    r.expect_code(0);
    let v = r.json();
    let epochs = v["data"]["harden"]["history"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(epochs[1]["epoch"], 2);
    // Without the architecture (which the checkpoint does not carry), the
    // usage error names what to give.
    let no_arch: Vec<&str> = second.iter().skip(2).copied().collect();
    let r = harden("adv", &no_arch);
    r.expect_code(2);
    assert!(r.stderr.contains("--model <MODEL>"), "{}", r.stderr);
    // A plain training checkpoint is refused with a clear error.
    let r = harden(
        "adv",
        &[
            "--arch",
            &arch,
            "--eps",
            "0.1",
            "--resume",
            d.path().join("nope.safetensors").to_str().unwrap(),
        ],
    );
    r.expect_code(2);
    assert!(r.stderr.contains("checkpoint"), "{}", r.stderr);
}

#[test]
fn dp_reaches_the_target_epsilon_and_reports_it_per_epoch() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    let r = aisec(&["harden", "dp", &digits("x.npy")])
        .args(&["--labels", &digits("y.npy"), "--scale", "0.0625"])
        .args(&["--arch", &arch, "--epochs", "2", "--batch-size", "128"])
        .args(&["--target-epsilon", "3", "--delta", "1e-5", "--lr", "0.5"])
        .args(&["--momentum", "0", "--format", "json", "--no-progress"])
        .run();
    r.expect_code(0);
    let v = r.json();
    let dp = &v["data"]["harden"]["dp"];
    let eps = dp["epsilon_rdp"].as_f64().unwrap();
    assert!(eps <= 3.0 && eps > 2.9, "epsilon {eps}");
    assert!(dp["epsilon_pld"].as_f64().unwrap() < eps);
    assert_eq!(dp["epochs"].as_array().unwrap().len(), 2);
    // Epsilon is printed after every epoch.
    assert_eq!(r.stderr.matches("epsilon").count(), 2, "{}", r.stderr);
    let f = &v["findings"][0];
    assert_eq!(f["rule_id"], "AISEC-HARDEN-002");
    assert_eq!(f["severity"], "info");
    let acc = v["data"]["harden"]["test_accuracy_after"].as_f64().unwrap();
    assert!(acc > 0.3, "test accuracy {acc}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let arch = spec(d.path());
    // Data 0..16 without --scale is outside [0, 1].
    let r = aisec(&["harden", "adv", &digits("x.npy")])
        .args(&[
            "--labels",
            &digits("y.npy"),
            "--arch",
            &arch,
            "--eps",
            "0.1",
        ])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--scale"), "{}", r.stderr);
    let r = harden("adv", &["--arch", &arch, "--eps", "-1"]);
    r.expect_code(2);
    assert!(r.stderr.contains("eps"), "{}", r.stderr);
    let r = harden(
        "dp",
        &["--arch", &arch, "--noise-multiplier", "1", "--delta", "2"],
    );
    r.expect_code(2);
}
