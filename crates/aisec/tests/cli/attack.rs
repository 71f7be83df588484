//! End-to-end runs of `aisec attack evasion` on the committed digits models.

use crate::util::{aisec, fixture};

fn evasion(extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let r = aisec(&[
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
    .run();
    (r.code, r.json())
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
    let out = aisec(&[
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
    .run();
    out.expect_code(2);
    assert!(out.stderr.contains("unknown attack 'telepathy'"));
    let missing = aisec(&[
        "attack",
        "evasion",
        "/no/model.onnx",
        "--inputs",
        "x",
        "--labels",
        "y",
    ])
    .run();
    missing.expect_code(2);
    assert!(missing.stderr.contains("/no/model.onnx"));
}

#[test]
fn image_folder_inputs_with_normalisation_inside_the_model() {
    // The 8x8 digits CNN as PNGs in class folders (0..=255 grey levels).
    let x = aisec_model::data::npy::read_npy(fixture("digits_cnn.x.npy"))
        .unwrap()
        .to_tensor();
    let y = aisec_model::data::npy::read_npy(fixture("digits_cnn.y.npy"))
        .unwrap()
        .to_labels()
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    // Classes are numbered in sorted folder-name order, so every digit gets
    // a folder, even those without images in this batch.
    for c in 0..10 {
        std::fs::create_dir_all(d.path().join(format!("{c}"))).unwrap();
    }
    for (i, &label) in y.iter().enumerate() {
        let dir = d.path().join(format!("{label}"));
        std::fs::create_dir_all(&dir).unwrap();
        let px: Vec<u8> = x.row(i).iter().map(|v| (v * 255.0).round() as u8).collect();
        image::GrayImage::from_raw(8, 8, px)
            .unwrap()
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
    let run = |extra: &[&str]| -> serde_json::Value {
        aisec(&["attack", "evasion", &fixture("digits_cnn.onnx"), "--inputs"])
            .arg(d.path())
            .args(&["--attacks", "fgsm", "--format", "json", "--no-progress"])
            .args(extra)
            .run()
            .json()
    };
    let a = run(&["--eps", "0.1"]);
    let ev = &a["data"]["evasion"];
    assert_eq!(ev["n"].as_u64(), Some(16), "{ev}");
    assert!(ev["clean_accuracy"].as_f64().unwrap() > 0.8);
    // The same 8 images as data in [-1, 1] (--value-range maps the 0..=255
    // pixels onto [--lo, --hi]) and a model that normalises by mean -1 and
    // std 2 inside: the composition is the original model, and an FGSM step
    // of 0.2 in [-1, 1] is the step of 0.1 in [0, 1].
    let base = run(&["--limit", "8", "--eps", "0.1"]);
    let b = run(&[
        "--lo=-1",
        "--hi=1",
        "--mean=-1",
        "--std=2",
        "--limit",
        "8",
        "--eps",
        "0.2",
    ]);
    let (e1, e2) = (&base["data"]["evasion"], &b["data"]["evasion"]);
    assert_eq!(e2["n"].as_u64(), Some(8));
    assert_eq!(e1["clean_accuracy"], e2["clean_accuracy"], "{e1}\n{e2}");
    assert_eq!(
        e1["worst_case_robust_accuracy"], e2["worst_case_robust_accuracy"],
        "{e1}\n{e2}"
    );
}

#[test]
fn csv_table_gives_the_same_result_as_npy() {
    let x = aisec_model::data::npy::read_npy(fixture("digits_mlp.x.npy"))
        .unwrap()
        .to_tensor();
    let y = aisec_model::data::npy::read_npy(fixture("digits_mlp.y.npy"))
        .unwrap()
        .to_labels()
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("digits.csv");
    let mut text = String::new();
    for (i, label) in y.iter().enumerate() {
        for v in x.row(i) {
            text.push_str(&format!("{v},"));
        }
        text.push_str(&format!("{label}\n"));
    }
    std::fs::write(&p, text).unwrap();
    let a = aisec(&["attack", "evasion", &fixture("digits_mlp.onnx"), "--inputs"])
        .arg(&p)
        .args(&["--attacks", "fgsm", "--eps", "0.2", "--format", "json"])
        .args(&["--no-progress", "--batch-size", "5"])
        .run()
        .json();
    let (_, b) = evasion(&["--attacks", "fgsm", "--eps", "0.2"]);
    let (e1, e2) = (&a["data"]["evasion"], &b["data"]["evasion"]);
    assert_eq!(e1["n"].as_u64(), Some(16));
    assert_eq!(e1["clean_accuracy"], e2["clean_accuracy"]);
    assert_eq!(
        e1["worst_case_robust_accuracy"],
        e2["worst_case_robust_accuracy"]
    );
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
    aisec(&[
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
    .run()
    .json()
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

#[test]
fn the_curve_uses_the_chosen_attack_names_it_per_point_and_shows_in_text() {
    let base = |extra: &[&str]| {
        aisec(&[
            "attack",
            "evasion",
            &fixture("digits_mlp.onnx"),
            "--inputs",
            &fixture("digits_mlp.x.npy"),
            "--labels",
            &fixture("digits_mlp.y.npy"),
            "--no-progress",
            "--no-fail",
            "--curve",
            "0.05,0.2",
        ])
        .args(extra)
        .run()
    };
    // Only FGSM requested: the curve is FGSM's, not PGD's.
    let v = base(&["--attacks", "fgsm", "--format", "json"]).json();
    let ev = &v["data"]["evasion"];
    assert_eq!(ev["curve_attack"], "fgsm", "{ev}");
    let pts = ev["curve"].as_array().unwrap();
    assert_eq!(pts.len(), 2);
    assert!(pts.iter().all(|p| p["attack"] == "fgsm"), "{pts:?}");
    // An explicit choice wins; the text report shows the curve with it.
    let t = base(&["--attacks", "fgsm,pgd", "--curve-attack", "fgsm"]);
    t.expect_code(0);
    assert!(
        t.stdout
            .contains("Robust accuracy versus budget (L-inf norm, attack fgsm)"),
        "{}",
        t.stdout
    );
    assert_eq!(
        t.stdout.matches("fgsm (per-budget)").count(),
        2,
        "{}",
        t.stdout
    );
}
