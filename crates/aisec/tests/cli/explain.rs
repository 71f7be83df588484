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

/// A KServe v2 server on loopback for a linear model `z = [x . w, 0]` with
/// 3 features; it answers every request on every connection until the
/// test process ends.
fn kserve_linear(w: [f32; 3]) -> String {
    // The shared loopback KServe v2 server (aisec-model test_support).
    let server = aisec_model::test_support::serve(move |req| {
        let Some(x) = &req.input else {
            return aisec_model::test_support::Reply::raw(400, "{}");
        };
        let out: Vec<f32> = x
            .data
            .chunks(3)
            .flat_map(|x| [x[0] * w[0] + x[1] * w[1] + x[2] * w[2], 0.0])
            .collect();
        let z = aisec_model::Tensor::new(vec![out.len() / 2, 2], out).unwrap();
        aisec_model::test_support::Reply::logits(&z)
    });
    server.url
}

#[test]
fn perturbation_methods_explain_a_kserve_model_through_queries() {
    let w = [1.5f32, -2.0, 0.5];
    let url = kserve_linear(w);
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.npy");
    let bg = d.path().join("bg.npy");
    write_npy(&x, &[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
    write_npy(&bg, &[2, 3], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let out = d.path().join("remote");
    let o = aisec(&[
        "explain",
        "--url",
        &url,
        "--input-shape",
        "3",
        "--classes",
        "2",
    ])
    .args(&["--method", "exact-shapley", "--target", "0", "--data"])
    .arg(&x)
    .arg("--background")
    .arg(&bg)
    .arg("--out")
    .arg(&out)
    .args(&["--format", "json"])
    .output();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Shapley values of a linear model: w * (x - mean background), mean 0.5.
    let j = doc(&out);
    let ex = j["examples"].as_array().unwrap();
    for (i, xi) in [[1.0f32, 2.0, 3.0], [-1.0, 0.5, 0.0]].iter().enumerate() {
        let a = ex[i]["attributions"].as_array().unwrap();
        for k in 0..3 {
            let want = w[k] * (xi[k] - 0.5);
            assert!(
                (a[k].as_f64().unwrap() as f32 - want).abs() < 1e-4,
                "{i} {k}: {a:?}"
            );
        }
    }
}

/// Writes a little-endian f32 `.npy`.
fn write_npy(p: &Path, shape: &[usize], v: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut h = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    for x in v {
        b.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(p, b).unwrap();
}

#[test]
fn gradients_of_a_token_id_model_are_flagged_not_drawn_blank() {
    let d = tempfile::tempdir().unwrap();
    let (code, v, err) = explain("text_cnn", &d.path().join("t"), &["--method", "saliency"]);
    assert_eq!(code, Some(0), "{err}");
    let msg = v["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("token ids"), "{v}");
    let (code, v, err) = explain("text_cnn", &d.path().join("o"), &["--method", "occlusion"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(v["errors"].as_array().unwrap().is_empty(), "{v}");
}
