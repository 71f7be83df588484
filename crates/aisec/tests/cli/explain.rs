//! End-to-end runs of `aisec explain` on the bundled digits models.

use std::path::Path;

use crate::util::{aisec, fixture};

fn explain(model: &str, out: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let r = aisec(&["explain", &fixture(&format!("{model}.onnx"))])
        .args(&["--data", &fixture(&format!("{model}.x.npy"))])
        .args(&["--labels", &fixture(&format!("{model}.y.npy"))])
        .arg("--out")
        .arg(out)
        .args(&["--format", "json"])
        .args(extra)
        .run();
    (r.code, r.json_or_null(), r.stderr)
}

fn doc(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("attributions.json")).unwrap()).unwrap()
}

#[test]
fn ig_on_images_writes_numbers_heat_maps_and_a_page_and_is_complete() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("ig");
    let (code, v, err) = explain("digits_cnn", &out, &["--limit", "5", "--steps", "128"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["data"]["explain"]["method"], "integrated-gradients");
    assert_eq!(v["data"]["explain"]["examples"], 5);
    let a = aisec_npy(&out.join("attributions.npy"));
    assert_eq!(a.0, vec![5, 1, 8, 8]);
    let j = doc(&out);
    for e in j["examples"].as_array().unwrap() {
        // Completeness: the attributions add up to score - baseline score, up to the reported delta.
        let sum = e["attribution_sum"].as_f64().unwrap();
        let change = e["score"].as_f64().unwrap() - e["baseline_score"].as_f64().unwrap();
        let delta = e["delta"].as_f64().unwrap();
        assert!((sum - change - delta).abs() < 1e-3, "{e}");
        assert!(delta.abs() < 0.05 * change.abs().max(1.0), "{e}");
        assert_eq!(e["attributions"].as_array().unwrap().len(), 64);
    }
    for i in 0..5 {
        let png = out.join(format!("{i:04}.png"));
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (260, 142));
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("src=\"0004.png\"") && html.contains("predicted"));
}

/// Reads the shape and values of a little-endian f32 `.npy`.
fn aisec_npy(p: &Path) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape_s = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_s
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let vals = b[10 + hl..]
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, vals)
}

#[test]
fn kernel_shap_on_tabular_inputs_is_efficient_and_draws_bar_charts() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("ks");
    let (code, v, err) = explain(
        "digits_mlp",
        &out,
        &[
            "--method",
            "kernelshap",
            "--limit",
            "3",
            "--nsamples",
            "200",
            "--background-size",
            "8",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["data"]["explain"]["method"], "kernel-shap");
    for e in doc(&out)["examples"].as_array().unwrap() {
        assert!(e["delta"].as_f64().unwrap().abs() < 1e-4, "{e}");
        assert_eq!(e["coalitions"], 200);
    }
    let svg = std::fs::read_to_string(out.join("0000.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<rect x="));
    assert!(std::fs::read_to_string(out.join("summary.svg"))
        .unwrap()
        .contains("mean |kernel-shap|"));
    // The cost bound: 8 background rows x 10 coalitions is too few for the
    // features that vary, and says so.
    let (code, _, err) = explain(
        "digits_mlp",
        &d.path().join("ks2"),
        &[
            "--method",
            "kernelshap",
            "--limit",
            "1",
            "--background-size",
            "8",
            "--max-evals",
            "80",
        ],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("max-evals"), "{err}");
}

#[test]
fn adversarial_attribution_adds_up_to_the_logit_change() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("adv");
    let (code, v, err) = explain(
        "digits_cnn",
        &out,
        &["--limit", "6", "--adversarial", "0.2"],
    );
    assert_eq!(code, Some(0), "{err}");
    let ex = &v["data"]["explain"];
    assert!(ex["method"].as_str().unwrap().contains("adversarial"));
    assert!(ex["adversarial_flipped"].as_u64().unwrap() >= 1, "{v}");
    assert!(ex["mean_logit_change"].as_f64().unwrap() > 0.0, "{v}");
    for e in doc(&out)["examples"].as_array().unwrap() {
        let sum = e["attribution_sum"].as_f64().unwrap();
        let change = e["score"].as_f64().unwrap() - e["baseline_score"].as_f64().unwrap();
        assert!((sum - change).abs() < 0.1 * change.abs().max(0.5), "{e}");
    }
}

#[test]
fn trigger_iou_is_reported_and_bad_options_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("trig");
    let (code, v, err) = explain(
        "digits_cnn",
        &out,
        &[
            "--limit",
            "4",
            "--method",
            "occlusion",
            "--trigger",
            "6,6,2,2",
            "--stamp",
            "1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let iou = v["data"]["explain"]["trigger_iou_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&iou));
    let (code, _, err) = explain("digits_cnn", &out, &["--trigger", "7,7,2,2"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("does not fit"), "{err}");
    let (code, _, err) = explain("digits_cnn", &out, &["--rule", "simpson"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("gausslegendre"), "{err}");
    // A remote model answers queries only: gradient methods are refused before any request.
    let o = aisec(&[
        "explain",
        "--url",
        "http://127.0.0.1:9",
        "--input-shape",
        "1,8,8",
        "--classes",
        "10",
    ])
    .args(&["--method", "ig", "--data", &fixture("digits_cnn.x.npy")])
    .run();
    o.expect_code(2);
    assert!(o.stderr.contains("needs gradients"));
}
