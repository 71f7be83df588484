//! The KServe model monitor end to end: the guard loads the MNIST fixture
//! model (aisec-attack's test fixture) with aisec-model, calibrates on clean
//! digits, and raises drift and out-of-distribution alerts for KServe
//! requests it relays to the scripted upstream on loopback.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::net::SocketAddr;
use std::time::Duration;

use aisec_guard::policy::{ModelMonitorConfig, Policy};
use aisec_guard::proxy::{start, StartOptions};
use aisec_guard::upstream::start_upstream;
use aisec_model::data::npy::{read_npy, write_npy};
use aisec_model::Tensor;
use serde_json::json;

const FIX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../aisec-attack/tests/fixtures"
);

fn digits() -> Tensor {
    // 300 held-out digits stored as uint8 0..255.
    let mut t = read_npy(format!("{FIX}/mnist_test.x.npy"))
        .unwrap()
        .to_tensor();
    t.data.iter_mut().for_each(|v| *v /= 255.0);
    t
}

fn part(t: &Tensor, from: usize, to: usize) -> Tensor {
    let n = t.row_len();
    let mut shape = t.shape.clone();
    shape[0] = to - from;
    Tensor::new(shape, t.data[from * n..to * n].to_vec()).unwrap()
}

#[tokio::test]
async fn kserve_requests_are_monitored_for_drift_and_ood() {
    let dir = tempfile::tempdir().unwrap();
    let all = digits();
    let (r, v) = (dir.path().join("ref.npy"), dir.path().join("val.npy"));
    write_npy(&r, &part(&all, 0, 150)).unwrap();
    write_npy(&v, &part(&all, 150, 250)).unwrap();
    let up = start_upstream(0).await.unwrap();
    let mut p = Policy::default_for(&up.url());
    p.audit.path = dir.path().join("audit.jsonl").display().to_string();
    p.model_monitor = Some(ModelMonitorConfig {
        name: "mnist".into(),
        model: format!("{FIX}/mnist_cnn.onnx").into(),
        reference: r,
        labels: None,
        validation: v,
        window: 25,
        psi_alert: 0.25,
        false_alarm_rate: 0.02,
        squeeze_bits: 1,
        median_smoothing: true,
        value_range: [0.0, 1.0],
        max_batch: 64,
        strip: false,
        strip_overlays: 16,
    });
    let g = start(
        p,
        StartOptions {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}/v2/models/mnist/infer", g.addr);
    let http = reqwest::Client::new();
    // 25 brightened digits: a drifted window of inputs.
    let mut bright = part(&all, 250, 275);
    bright
        .data
        .iter_mut()
        .for_each(|x| *x = (*x + 0.5).min(1.0));
    let body = json!({"inputs": [{"name": "x", "shape": [25, 1, 28, 28], "datatype": "FP32", "data": bright.data}]});
    let resp = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the monitor never blocks");
    let mut drift = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let alerts = g.state.alerts();
        if alerts.iter().any(|a| a.rule_id == "AISEC-GUARD-034") {
            drift = true;
            break;
        }
    }
    assert!(
        drift,
        "{:?}\n{}\n{}",
        g.state.alerts(),
        g.state.metrics.render(),
        std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default()
    );
    let m = g.state.metrics.render();
    assert!(
        m.contains("aisec_guard_drift_psi{model=\"mnist\",feature=\"mean\"}"),
        "{m}"
    );
    assert!(m.contains("aisec_guard_class_share{model=\"mnist\",class=\"0\"}"));
    // A request the monitor cannot read is still relayed, and counted.
    let resp = http
        .post(&url)
        .json(&json!({"inputs": [{"data": [1, 2, 3]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    for _ in 0..50 {
        if g.state
            .metrics
            .render()
            .contains("aisec_guard_model_monitor_errors_total")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(g
        .state
        .metrics
        .render()
        .contains("aisec_guard_model_monitor_errors_total"));
    g.shutdown().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(log.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["event"] == "alert" && v["rule"] == "AISEC-GUARD-034"
    }));
}
