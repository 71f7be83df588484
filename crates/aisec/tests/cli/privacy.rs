//! End-to-end runs of `aisec attack extraction` (local and over HTTP
//! against a loopback KServe v2 server started here) and
//! `aisec attack inversion` on the committed digits models.

use aisec_model::test_support::{KserveServer, Reply};
use aisec_model::{Classifier, OnnxModel};

use crate::util::fixture;

fn aisec(args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let r = crate::util::aisec(args)
        .args(&["--format", "json", "--no-progress"])
        .run();
    (r.code, r.json_or_null(), r.stderr)
}

fn small_surrogate(dir: &std::path::Path) -> String {
    let p = dir.join("mlp.json");
    std::fs::write(
        &p,
        r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"}, {"type": "dense", "units": 32},
            {"type": "relu"}, {"type": "dense", "units": 10}]}"#,
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn extraction_local_in_distribution_curve_and_saved_surrogate() {
    let dir = tempfile::tempdir().unwrap();
    let arch = small_surrogate(dir.path());
    let save = dir.path().join("stolen");
    let (code, r, err) = aisec(&[
        "attack",
        "extraction",
        &fixture("digits_cnn.onnx"),
        "--test-inputs",
        &fixture("digits_cnn.x.npy"),
        "--test-labels",
        &fixture("digits_cnn.y.npy"),
        "--query-data",
        "in",
        "--query-set",
        &fixture("digits/x.npy"),
        "--query-scale",
        "0.0625",
        "--budgets",
        "120,30",
        "--surrogate-arch",
        &arch,
        "--epochs",
        "5",
        "--min-steps",
        "60",
        "--lr",
        "0.01",
        "--seed",
        "3",
        "--save-surrogate",
        save.to_str().unwrap(),
        "--fail-on",
        "critical",
    ]);
    assert!(matches!(code, Some(0) | Some(1)), "{err}");
    let ex = &r["data"]["extraction"];
    assert_eq!(ex["queries_used"], 120, "{ex}");
    assert_eq!(ex["query_data"], "in-distribution");
    let curve = ex["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 2);
    assert_eq!(curve[0]["budget"], 30);
    assert_eq!(curve[1]["queries"], 120);
    let fid = curve[1]["fidelity"].as_f64().unwrap();
    assert!(fid > 0.6, "fidelity {fid} at 120 queries");
    let f = &r["findings"][0];
    assert_eq!(f["rule_id"], "AISEC-PRIVACY-003");
    assert!(f["atlas"].to_string().contains("AML.T0024.002"));
    assert_eq!(f["metrics"]["fidelity"].as_f64().unwrap(), fid);
    // --fail-on critical: exit 1 exactly when the finding is critical.
    assert_eq!(code == Some(1), f["severity"] == "critical");
    // The saved surrogate loads both ways and predicts like the report says.
    let onnx = OnnxModel::load(save.join("surrogate.onnx")).unwrap();
    let spec = aisec_model::spec::ArchSpec::parse(
        &std::fs::read_to_string(save.join("surrogate.spec.json")).unwrap(),
    )
    .unwrap();
    let st = OnnxModel::from_spec_safetensors(&spec, save.join("surrogate.safetensors")).unwrap();
    let x = aisec_model::data::npy::read_npy(fixture("digits_cnn.x.npy"))
        .unwrap()
        .to_tensor();
    assert_eq!(onnx.predict(&x).unwrap(), st.predict(&x).unwrap());
    let victim = OnnxModel::load(fixture("digits_cnn.onnx")).unwrap();
    let agree = onnx
        .predict(&x)
        .unwrap()
        .iter()
        .zip(victim.predict(&x).unwrap())
        .filter(|(a, b)| **a == *b)
        .count();
    assert_eq!(agree as f64 / 16.0, fid);
}

/// Serves the digits CNN over KServe v2 on a loopback port (its model
/// name must be `digits`). `garbage` answers a malformed body instead.
fn serve(garbage: bool) -> KserveServer {
    let model = OnnxModel::load(fixture("digits_cnn.onnx")).unwrap();
    aisec_model::test_support::serve(move |req| {
        if !req.path.starts_with("/v2/models/digits/infer") {
            return Reply::raw(404, "{}");
        }
        match (&req.input, garbage) {
            (_, true) => Reply::raw(
                200,
                r#"{"outputs": [{"name": "p", "datatype": "FP32", "data": [1.0, "x"]}]}"#,
            ),
            (Some(x), false) => Reply::logits(&model.logits(x).unwrap()),
            (None, false) => Reply::raw(400, "{}"),
        }
    })
}

fn http_args<'a>(addr: &'a str, arch: &'a str) -> Vec<&'a str> {
    vec![
        "attack",
        "extraction",
        "--url",
        addr,
        "--model-name",
        "digits",
        "--input-name",
        "x",
        "--input-shape",
        "1,8,8",
        "--classes",
        "10",
        "--surrogate-arch",
        arch,
        "--epochs",
        "3",
        "--min-steps",
        "30",
        "--no-fail",
    ]
}

#[test]
fn extraction_over_http_with_labels_only_and_synthetic_queries() {
    let dir = tempfile::tempdir().unwrap();
    let arch = small_surrogate(dir.path());
    let server = serve(false);
    let mut args = http_args(&server.url, &arch);
    let (tx, ty) = (fixture("digits_cnn.x.npy"), fixture("digits_cnn.y.npy"));
    args.extend([
        "--test-inputs",
        &tx,
        "--test-labels",
        &ty,
        "--query-data",
        "synthetic",
        "--synthetic",
        "jacobian",
        "--jacobian-seed",
        "10",
        "--labels-only",
        "--budgets",
        "25,70",
        "--query-batch",
        "16",
    ]);
    let (code, r, err) = aisec(&args);
    assert_eq!(code, Some(0), "{err}");
    let ex = &r["data"]["extraction"];
    assert_eq!(ex["outputs"], "labels");
    assert_eq!(ex["strategy"], "jacobian-augmentation");
    assert_eq!(ex["queries_used"], 70);
    // The server saw exactly the attacker's budget plus the 16 test inputs.
    assert_eq!(server.examples(), 70 + 16);
    assert_eq!(ex["curve"].as_array().unwrap().len(), 2);
    assert!(r["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/v2/models/digits/infer"));
}

#[test]
fn bad_endpoints_and_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let arch = small_surrogate(dir.path());
    let server = serve(true);
    let mut args = http_args(&server.url, &arch);
    let (tx, ty) = (fixture("digits_cnn.x.npy"), fixture("digits_cnn.y.npy"));
    args.extend([
        "--test-inputs",
        &tx,
        "--test-labels",
        &ty,
        "--query-data",
        "synthetic",
        "--synthetic",
        "uniform",
        "--budgets",
        "10",
    ]);
    let (code, _, err) = aisec(&args);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("non-numeric"), "{err}");
    // --url without a shape; in-distribution without a query set.
    let (code, _, err) = aisec(&[
        "attack",
        "extraction",
        "--url",
        "http://127.0.0.1:9",
        "--test-inputs",
        &tx,
        "--test-labels",
        &ty,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--input-shape"), "{err}");
    let (code, _, err) = aisec(&[
        "attack",
        "extraction",
        &fixture("digits_cnn.onnx"),
        "--test-inputs",
        &tx,
        "--test-labels",
        &ty,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--query-set"), "{err}");
}

#[test]
fn inversion_reconstructs_digits_and_saves_images() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("inv.png");
    let npz = dir.path().join("inv.npz");
    let (code, r, err) = aisec(&[
        "attack",
        "inversion",
        &fixture("digits_mlp.onnx"),
        "--cost",
        "neg-log-p",
        "--max-iters",
        "150",
        "--step-size",
        "0.05",
        "--tv",
        "0.5",
        "--start",
        "0",
        "--reference-inputs",
        &fixture("digits/x.npy"),
        "--reference-labels",
        &fixture("digits/y.npy"),
        "--scale",
        "0.0625",
        "--save-png",
        png.to_str().unwrap(),
        "--save-npz",
        npz.to_str().unwrap(),
        "--no-fail",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let inv = &r["data"]["inversion"];
    let classes = inv["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    let conf = inv["mean_confidence"].as_f64().unwrap();
    assert!(conf > 0.9, "mean confidence {conf}");
    assert!(inv["identification_rate"].as_f64().is_some());
    let f = &r["findings"][0];
    assert_eq!(f["rule_id"], "AISEC-PRIVACY-002");
    assert!(f["atlas"].to_string().contains("AML.T0024.001"));
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let z = aisec_model::data::npy::read_npz(&npz).unwrap();
    let rec = &z.iter().find(|(n, _)| n == "reconstructions").unwrap().1;
    assert_eq!(rec.shape, vec![10, 64]);
    assert!(rec.values.iter().all(|&v| (0.0..=1.0).contains(&v)));
}
