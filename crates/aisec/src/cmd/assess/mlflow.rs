//! `aisec assess --mlflow URL`: logs an assessment to an MLflow tracking
//! server through its REST API (MLflow REST API 2.0: `experiments/get-by-name`
//! and `create`, `runs/create`, `runs/log-batch`, the `mlflow-artifacts`
//! proxy for files, `runs/update`). `log-batch` takes at most 1,000 metrics,
//! 100 params and 100 tags, 1,000 items in all, in a request of at most 1 MB
//! (https://mlflow.org/docs/latest/rest-api.html#log-batch); [`batches`]
//! splits within those limits.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};

/// `log-batch` limits.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;
const MAX_ITEMS: usize = 1000;
/// Kept under MLflow's 1 MB request limit with room for the envelope.
const MAX_BYTES: usize = 900_000;
/// MLflow's longest param value.
const MAX_PARAM_VALUE: usize = 6000;

/// What one run logs.
#[derive(Debug, Default)]
pub struct RunLog {
    /// Run name.
    pub name: String,
    /// Params (key, value).
    pub params: Vec<(String, String)>,
    /// Metrics (key, value); non-finite values are dropped.
    pub metrics: Vec<(String, f64)>,
    /// Tags (key, value).
    pub tags: Vec<(String, String)>,
    /// Files (artifact path, bytes).
    pub artifacts: Vec<(String, Vec<u8>)>,
}

/// A metric or param key MLflow accepts: alphanumerics, `_ - . / ` and
/// space; anything else becomes `_`.
pub fn key(s: &str) -> String {
    let k: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    k.chars().take(250).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One `log-batch` body's items.
#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    /// Metrics.
    pub metrics: Vec<(String, f64)>,
    /// Params.
    pub params: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

impl Batch {
    fn len(&self) -> usize {
        self.metrics.len() + self.params.len() + self.tags.len()
    }

    fn body(&self, run_id: &str, ts: i64) -> Value {
        json!({
            "run_id": run_id,
            "metrics": self.metrics.iter().map(|(k, v)| json!({"key": k, "value": v, "timestamp": ts, "step": 0})).collect::<Vec<_>>(),
            "params": self.params.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
            "tags": self.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        })
    }
}

/// Splits items into `log-batch` requests within MLflow's limits.
pub fn batches(
    metrics: &[(String, f64)],
    params: &[(String, String)],
    tags: &[(String, String)],
) -> Vec<Batch> {
    enum Item<'a> {
        M(&'a (String, f64)),
        P(&'a (String, String)),
        T(&'a (String, String)),
    }
    let items = params
        .iter()
        .map(Item::P)
        .chain(tags.iter().map(Item::T))
        .chain(metrics.iter().filter(|m| m.1.is_finite()).map(Item::M));
    let mut out = vec![Batch::default()];
    let mut bytes = 0usize;
    for it in items {
        let size = match &it {
            Item::M((k, _)) => k.len() + 80,
            Item::P((k, v)) | Item::T((k, v)) => k.len() + v.len() + 40,
        };
        let cur = out.last_mut().map(|b| {
            b.len() >= MAX_ITEMS
                || bytes + size > MAX_BYTES
                || match &it {
                    Item::M(_) => b.metrics.len() >= MAX_METRICS,
                    Item::P(_) => b.params.len() >= MAX_PARAMS,
                    Item::T(_) => b.tags.len() >= MAX_TAGS,
                }
        });
        if cur == Some(true) {
            out.push(Batch::default());
            bytes = 0;
        }
        bytes += size;
        if let Some(b) = out.last_mut() {
            match it {
                Item::M(m) => b.metrics.push(m.clone()),
                Item::P(p) => b.params.push(p.clone()),
                Item::T(t) => b.tags.push(t.clone()),
            }
        }
    }
    out.retain(|b| b.len() > 0);
    out
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = http.request(method, &url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("MLflow request to {url}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "MLflow answered {status} to {url}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("MLflow's answer to {url} is not JSON"))
}

/// Logs `run` to the tracking server at `base` in `experiment` (created
/// when missing); returns the run id.
pub fn log(base: &str, experiment: &str, run: &RunLog) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/').to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        let api = |p: &str| format!("{base}/api/2.0/mlflow/{p}");
        let get = http
            .get(api("experiments/get-by-name"))
            .query(&[("experiment_name", experiment)])
            .send()
            .await
            .with_context(|| format!("MLflow at {base}"))?;
        let exp_id = if get.status().is_success() {
            let v: Value = get.json().await?;
            v.pointer("/experiment/experiment_id")
                .and_then(Value::as_str)
                .context("MLflow: no experiment id")?
                .to_string()
        } else {
            let v = call(&http, reqwest::Method::POST, api("experiments/create"), Some(json!({"name": experiment}))).await?;
            v.get("experiment_id").and_then(Value::as_str).context("MLflow: no experiment id")?.to_string()
        };
        let start = now_ms();
        let created = call(
            &http,
            reqwest::Method::POST,
            api("runs/create"),
            Some(json!({"experiment_id": exp_id, "start_time": start, "run_name": run.name, "tags": [{"key": "mlflow.runName", "value": run.name}]})),
        )
        .await?;
        let run_id = created
            .pointer("/run/info/run_id")
            .and_then(Value::as_str)
            .context("MLflow: no run id")?
            .to_string();
        let artifact_uri = created
            .pointer("/run/info/artifact_uri")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let params: Vec<(String, String)> = run
            .params
            .iter()
            .map(|(k, v)| (key(k), v.chars().take(MAX_PARAM_VALUE).collect()))
            .collect();
        let metrics: Vec<(String, f64)> = run.metrics.iter().map(|(k, v)| (key(k), *v)).collect();
        let tags: Vec<(String, String)> = run.tags.iter().map(|(k, v)| (key(k), v.clone())).collect();
        let ts = now_ms();
        for b in batches(&metrics, &params, &tags) {
            call(&http, reqwest::Method::POST, api("runs/log-batch"), Some(b.body(&run_id, ts))).await?;
        }
        // Files go through the server's artifact proxy (`mlflow server`
        // serves artifacts by default since 2.0): the run's
        // `mlflow-artifacts:/...` URI names the path under it.
        if let Some(rel) = artifact_uri.strip_prefix("mlflow-artifacts:") {
            let rel = rel.trim_start_matches('/');
            for (name, bytes) in &run.artifacts {
                let url = format!("{base}/api/2.0/mlflow-artifacts/artifacts/{rel}/{name}");
                let resp = http.put(&url).body(bytes.clone()).send().await?;
                if !resp.status().is_success() {
                    bail!("MLflow answered {} to the upload of {name}", resp.status());
                }
            }
        } else if !run.artifacts.is_empty() {
            bail!("the run's artifact store ({artifact_uri}) is not served by the tracking server; start it with --serve-artifacts");
        }
        call(
            &http,
            reqwest::Method::POST,
            api("runs/update"),
            Some(json!({"run_id": run_id, "status": "FINISHED", "end_time": now_ms()})),
        )
        .await?;
        anyhow::Ok(run_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_within_log_batch_limits_and_lose_nothing() {
        let metrics: Vec<(String, f64)> = (0..2500).map(|i| (format!("m{i}"), i as f64)).collect();
        let params: Vec<(String, String)> = (0..150)
            .map(|i| (format!("p{i}"), "x".repeat(5000)))
            .collect();
        let tags = vec![("t".to_string(), "v".to_string())];
        let mut with_nan = metrics.clone();
        with_nan.push(("nan".into(), f64::NAN));
        let bs = batches(&with_nan, &params, &tags);
        for b in &bs {
            assert!(
                b.metrics.len() <= MAX_METRICS
                    && b.params.len() <= MAX_PARAMS
                    && b.tags.len() <= MAX_TAGS
            );
            assert!(b.len() <= MAX_ITEMS);
            assert!(b.body("r", 0).to_string().len() < 1_000_000);
        }
        assert_eq!(
            bs.iter().map(|b| b.metrics.len()).sum::<usize>(),
            2500,
            "NaN dropped, rest kept"
        );
        assert_eq!(bs.iter().map(|b| b.params.len()).sum::<usize>(), 150);
        assert!(bs.len() >= 3);
    }

    #[test]
    fn keys_are_what_mlflow_accepts() {
        assert_eq!(
            key("evasion.digits-cnn.robust_accuracy@0.1"),
            "evasion.digits-cnn.robust_accuracy_0.1"
        );
        assert_eq!(key("tpr@0.1%fpr"), "tpr_0.1_fpr");
    }
}
