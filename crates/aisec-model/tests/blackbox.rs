//! Query counting, label-only views and the KServe v2 client against a
//! loopback server started by the test.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

use aisec_model::blackbox::{LabelOnly, QueryCounter, RemoteClassifier};
use aisec_model::data::npy::read_npy;
use aisec_model::test_support::{KserveServer, Reply};
use aisec_model::{Classifier, OnnxModel};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn counter_budget_and_label_only() {
    let m = OnnxModel::load(fx("digits_cnn.onnx")).unwrap();
    let x = read_npy(fx("digits_cnn.x.npy")).unwrap().to_tensor();
    let c = QueryCounter::with_budget(LabelOnly(m), 40);
    let z = c.logits(&x).unwrap();
    assert_eq!(c.queries(), 16);
    for i in 0..16 {
        assert_eq!(z.row(i).iter().sum::<f32>(), 1.0);
    }
    assert_eq!(c.predict(&x).unwrap(), c.inner().0.predict(&x).unwrap());
    assert_eq!(c.queries(), 32);
    // 32 + 16 > 40: refused, and the refused query is not counted.
    assert!(c.logits(&x).is_err());
    assert_eq!(c.queries(), 32);
}

/// Answers per example `[sum of inputs, 1, 2]`, or labels `i % 3`.
fn serve(labels: bool) -> KserveServer {
    aisec_model::test_support::serve(move |req| {
        let Some(x) = &req.input else {
            return Reply::raw(400, "{}");
        };
        let b = x.batch();
        let out = if labels {
            serde_json::json!({"outputs": [{"name": "label", "shape": [b], "datatype": "INT64",
                "data": (0..b).map(|i| i % 3).collect::<Vec<_>>()}]})
        } else {
            let d: Vec<f32> = (0..b)
                .flat_map(|i| [x.row(i).iter().sum::<f32>(), 1.0, 2.0])
                .collect();
            serde_json::json!({"outputs": [{"name": "scores", "shape": [b, 3], "datatype": "FP32", "data": d}]})
        };
        Reply::raw(200, out.to_string())
    })
}

#[test]
fn kserve_v2_scores_and_labels() {
    let s = serve(false);
    let r = RemoteClassifier::new(&s.url, "digits", "x", vec![2], 3).unwrap();
    let x = aisec_model::Tensor::new(vec![2, 2], vec![1.0, 2.0, 5.0, -1.0]).unwrap();
    let z = r.logits(&x).unwrap();
    assert_eq!(z.data, vec![3.0, 1.0, 2.0, 4.0, 1.0, 2.0]);
    let paths: Vec<String> = s.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/v2/models/digits/infer".to_string()]);

    let s = serve(true);
    let r = RemoteClassifier::new(&s.url, "digits", "x", vec![2], 3).unwrap();
    assert_eq!(r.predict(&x).unwrap(), vec![0, 1]);
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn remote_errors_are_reported() {
    // Nothing listens on this port once the listener is dropped.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r =
        RemoteClassifier::new(&format!("http://127.0.0.1:{port}"), "m", "x", vec![1], 2).unwrap();
    let x = aisec_model::Tensor::zeros(vec![1, 1]);
    assert!(matches!(
        r.logits(&x),
        Err(aisec_model::ModelError::Remote(_))
    ));
    let bad = serde_json::json!({"outputs": [{"datatype": "FP32", "data": [1.0]}]});
    assert!(aisec_model::blackbox::parse_v2_response(&bad, 1, 2).is_err());
    let _ = std::io::stdout().flush();
}
