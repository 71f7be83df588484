//! End-to-end runs of `aisec defend model | repair | strip` and the demo's
//! poisoning section, on the backdoored digits MLP the demo plants.

use std::path::{Path, PathBuf};

use crate::util::aisec;

/// Runs the demo's poisoning section into `dir` and returns its folder.
fn planted(dir: &Path) -> PathBuf {
    let r = aisec(&[
        "demo",
        "--only",
        "poisoning",
        "--format",
        "json",
        "--quiet",
        "--keep",
    ])
    .arg(dir)
    .run();
    r.expect_code(0);
    let j = r.json();
    let f = j["findings"].as_array().unwrap();
    let by = |id: &str| f.iter().find(|x| x["rule_id"] == id).cloned().unwrap();
    // Detected (Neural Cleanse flags the target 0), flagged at run time
    // (STRIP), and removed (unlearning).
    let nc = by("AISEC-BACKDOOR-001");
    assert_eq!(nc["metrics"]["class"], 0, "{nc}");
    assert!(nc["metrics"]["anomaly_index"].as_f64().unwrap() >= 2.0);
    assert_eq!(by("AISEC-BACKDOOR-003")["severity"], "high");
    let rep = by("AISEC-BACKDOOR-002");
    assert_eq!(rep["severity"], "info", "{rep}");
    assert!(rep["metrics"]["asr_before"].as_f64().unwrap() > 0.9);
    assert!(rep["metrics"]["asr_after"].as_f64().unwrap() < 0.1);
    dir.join("poisoning")
}

#[test]
fn defend_finds_repairs_and_screens_the_planted_backdoor() {
    let tmp = tempfile::tempdir().unwrap();
    let d = planted(tmp.path());
    for f in [
        "badnets_mlp.onnx",
        "repaired_mlp.onnx",
        "neural-cleanse.png",
        "clean.npz",
    ] {
        assert!(d.join(f).is_file(), "{f}");
    }
    let p = |f: &str| d.join(f).display().to_string();

    // Model inspection: class 0 flagged (exit 1 at the default --fail-on high), triggers saved.
    let trig = tmp.path().join("trig");
    let r = aisec(&[
        "defend",
        "model",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
    ])
    .args(&[
        "--methods",
        "nc",
        "--steps",
        "150",
        "--format",
        "json",
        "--fail-on",
        "medium",
        "--save-triggers",
    ])
    .arg(&trig)
    .run();
    // Class 0 flagged (anomaly index 2.76: medium, so exit 1 at --fail-on medium).
    r.expect_code(1);
    let j = r.json();
    assert_eq!(
        j["data"]["inspections"][0]["flagged"],
        serde_json::json!([0])
    );
    assert!(trig.join("neural-cleanse.png").is_file());
    assert!(trig.join("triggers.json").is_file());

    // Repair by unlearning, scored on held-out clean and triggered digits.
    let out = tmp.path().join("fixed.onnx");
    let r = aisec(&[
        "defend",
        "repair",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
    ])
    .args(&[
        "--test",
        &p("test.npz"),
        "--triggered",
        &p("triggered.npz"),
        "--target",
        "0",
    ])
    .args(&["--steps", "150", "--format", "json", "--quiet", "--out"])
    .arg(&out)
    .run();
    r.expect_code(0);
    let j = r.json();
    let rep = &j["data"]["repair"];
    assert!(rep["before"]["asr"].as_f64().unwrap() > 0.9, "{rep}");
    assert!(rep["after"]["asr"].as_f64().unwrap() < 0.1, "{rep}");
    assert_eq!(rep["scored_on"], "--test");
    assert!(out.is_file());

    // Fine-pruning then unlearning also removes it.
    let out2 = tmp.path().join("fixed2.onnx");
    let r = aisec(&[
        "defend",
        "repair",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
        "--method",
        "prune-unlearn",
    ])
    .args(&[
        "--test",
        &p("test.npz"),
        "--triggered",
        &p("triggered.npz"),
        "--target",
        "0",
    ])
    .args(&["--steps", "150", "--format", "json", "--quiet", "--out"])
    .arg(&out2)
    .run();
    r.expect_code(0);
    let rep = &r.json()["data"]["repair"];
    assert!(rep["fine_pruning"]["pruned"].is_array(), "{rep}");
    assert!(rep["after"]["asr"].as_f64().unwrap() < 0.1, "{rep}");
    assert!(out2.is_file());

    // The repaired model no longer shows the backdoor.
    let r = aisec(&["defend", "model"])
        .arg(&out)
        .args(&[
            "--clean",
            &p("clean.npz"),
            "--methods",
            "nc",
            "--steps",
            "150",
            "--format",
            "json",
        ])
        .run();
    r.expect_code(0);
    assert_eq!(
        r.json()["data"]["inspections"][0]["flagged"],
        serde_json::json!([])
    );

    // STRIP: triggered digits are flagged, clean ones are not.
    let s = tmp.path().join("scores.json");
    let r = aisec(&[
        "defend",
        "strip",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
    ])
    .args(&[
        "--inputs",
        &p("triggered.npz"),
        "--format",
        "json",
        "--scores",
    ])
    .arg(&s)
    .run();
    r.expect_code(1);
    let flagged = r.json()["data"]["strip"]["flagged"].as_u64().unwrap();
    let scores: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s).unwrap()).unwrap();
    let n = scores.as_array().unwrap().len() as u64;
    assert!(flagged as f64 >= 0.8 * n as f64, "{flagged} of {n}");
    let r = aisec(&[
        "defend",
        "strip",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
    ])
    .args(&["--inputs", &p("test.npz"), "--format", "json"])
    .run();
    let flagged = r.json()["data"]["strip"]["flagged"].as_u64().unwrap();
    assert!(flagged <= 10, "{flagged} clean test digits flagged");
}

#[test]
fn defend_refuses_unusable_input_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = planted(tmp.path());
    let p = |f: &str| d.join(f).display().to_string();
    // Too few clean examples for STRIP's threshold.
    let r = aisec(&[
        "defend",
        "strip",
        &p("badnets_mlp.onnx"),
        "--clean",
        &p("clean.npz"),
    ])
    .args(&["--limit", "5", "--inputs", &p("test.npz")])
    .run();
    r.expect_code(2);
    assert!(r.stderr.contains("at least 20"), "{}", r.stderr);
    // Digits stored 0..16 without --scale: the range check names the fix.
    let raw = crate::util::digits("x.npy");
    let r = aisec(&["defend", "model", &p("badnets_mlp.onnx"), "--clean", &raw])
        .args(&["--labels", &crate::util::digits("y.npy")])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--scale"), "{}", r.stderr);
    // A missing model.
    aisec(&[
        "defend",
        "repair",
        "nope.onnx",
        "--clean",
        &p("clean.npz"),
        "--out",
        "x.onnx",
    ])
    .run()
    .expect_code(2);
}
