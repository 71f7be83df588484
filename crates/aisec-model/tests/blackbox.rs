//! Query counting, label-only views and the KServe v2 client against a
//! loopback server started by the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use aisec_model::blackbox::{LabelOnly, QueryCounter, RemoteClassifier};
use aisec_model::data::npy::read_npy;
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

/// Serves `n` requests: echoes per example `[sum of inputs, 1, 2]`.
fn serve(n: usize, labels: bool) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut paths = vec![];
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            paths.push(line.split_whitespace().nth(1).unwrap().to_string());
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let inp = &v["inputs"][0];
            let b = inp["shape"][0].as_u64().unwrap() as usize;
            let data: Vec<f64> = inp["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let row = data.len() / b;
            let out = if labels {
                serde_json::json!({"outputs": [{"name": "label", "shape": [b], "datatype": "INT64",
                    "data": (0..b).map(|i| i % 3).collect::<Vec<_>>()}]})
            } else {
                let d: Vec<f64> = (0..b)
                    .flat_map(|i| [data[i * row..(i + 1) * row].iter().sum::<f64>(), 1.0, 2.0])
                    .collect();
                serde_json::json!({"outputs": [{"name": "scores", "shape": [b, 3], "datatype": "FP32", "data": d}]})
            };
            let body = out.to_string();
            let mut s = s;
            write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", body.len(), body).unwrap();
        }
        paths
    });
    (addr, h)
}

#[test]
fn kserve_v2_scores_and_labels() {
    let (addr, h) = serve(1, false);
    let r = RemoteClassifier::new(&addr, "digits", "x", vec![2], 3).unwrap();
    let x = aisec_model::Tensor::new(vec![2, 2], vec![1.0, 2.0, 5.0, -1.0]).unwrap();
    let z = r.logits(&x).unwrap();
    assert_eq!(z.data, vec![3.0, 1.0, 2.0, 4.0, 1.0, 2.0]);
    assert_eq!(
        h.join().unwrap(),
        vec!["/v2/models/digits/infer".to_string()]
    );

    let (addr, h) = serve(1, true);
    let r = RemoteClassifier::new(&addr, "digits", "x", vec![2], 3).unwrap();
    assert_eq!(r.predict(&x).unwrap(), vec![0, 1]);
    h.join().unwrap();
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
