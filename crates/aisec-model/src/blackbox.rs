//! Black-box access: query counting and budgets, label-only views, and a
//! remote model served over the KServe v2 / Open Inference Protocol
//! (`POST {base}/v2/models/{name}/infer` with JSON tensors).

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::classifier::{argmax, Classifier, ModelError, Tensor};

/// Wraps a classifier, counting the examples it is asked about and
/// refusing queries past an optional budget.
#[derive(Debug)]
pub struct QueryCounter<C> {
    inner: C,
    used: AtomicU64,
    budget: Option<u64>,
}

impl<C: Classifier> QueryCounter<C> {
    /// Counts queries with no budget.
    pub fn new(inner: C) -> Self {
        QueryCounter {
            inner,
            used: AtomicU64::new(0),
            budget: None,
        }
    }
    /// Counts queries and fails once more than `budget` examples were asked.
    pub fn with_budget(inner: C, budget: u64) -> Self {
        QueryCounter {
            inner,
            used: AtomicU64::new(0),
            budget: Some(budget),
        }
    }
    /// Examples queried so far.
    pub fn queries(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
    /// The wrapped classifier.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Classifier> Classifier for QueryCounter<C> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let n = x.batch() as u64;
        let before = self.used.fetch_add(n, Ordering::SeqCst);
        if let Some(b) = self.budget {
            if before + n > b {
                self.used.fetch_sub(n, Ordering::SeqCst);
                return Err(ModelError::Remote(format!(
                    "query budget of {b} examples exhausted ({before} used, {n} asked)"
                )));
            }
        }
        self.inner.logits(x)
    }
}

/// Exposes only the predicted label: scores are one-hot (1 for the top
/// class, 0 elsewhere), as a label-only API would answer.
#[derive(Debug)]
pub struct LabelOnly<C>(pub C);

impl<C: Classifier> Classifier for LabelOnly<C> {
    fn input_shape(&self) -> &[usize] {
        self.0.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let z = self.0.logits(x)?;
        Ok(one_hot(
            &(0..z.batch()).map(|i| argmax(z.row(i))).collect::<Vec<_>>(),
            z.row_len(),
        ))
    }
}

fn one_hot(labels: &[usize], classes: usize) -> Tensor {
    let mut t = Tensor::zeros(vec![labels.len(), classes]);
    for (i, &l) in labels.iter().enumerate() {
        if l < classes {
            t.data[i * classes + l] = 1.0;
        }
    }
    t
}

/// Largest response body accepted from a remote model.
const MAX_RESPONSE: u64 = 64 << 20;

/// A model behind a KServe v2 inference endpoint.
#[derive(Debug)]
pub struct RemoteClassifier {
    url: String,
    input_name: String,
    input_shape: Vec<usize>,
    num_classes: usize,
    client: reqwest::blocking::Client,
    headers: Vec<(String, String)>,
}

impl RemoteClassifier {
    /// An endpoint at `base` (e.g. `http://host:8080`) serving `model`,
    /// taking FP32 input `input_name` of per-example shape `input_shape`
    /// and answering scores for `num_classes` classes (or class labels,
    /// which become one-hot scores).
    pub fn new(
        base: &str,
        model: &str,
        input_name: &str,
        input_shape: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self, ModelError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ModelError::Remote(e.to_string()))?;
        Ok(RemoteClassifier {
            url: format!("{}/v2/models/{model}/infer", base.trim_end_matches('/')),
            input_name: input_name.into(),
            input_shape,
            num_classes,
            client,
            headers: vec![],
        })
    }

    /// Adds a request header (e.g. `Authorization`).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The inference URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Decodes a KServe v2 response into `[batch, classes]` scores.
pub fn parse_v2_response(body: &Value, batch: usize, classes: usize) -> Result<Tensor, ModelError> {
    let bad = |m: &str| ModelError::Remote(format!("inference response: {m}"));
    let out = body
        .get("outputs")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| bad("no outputs"))?;
    let data = out
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("output has no data array"))?;
    let dtype = out
        .get("datatype")
        .and_then(Value::as_str)
        .unwrap_or("FP32");
    let vals: Vec<f64> = data
        .iter()
        .map(|v| v.as_f64().ok_or_else(|| bad("non-numeric data")))
        .collect::<Result<_, _>>()?;
    if dtype.starts_with("INT") || dtype.starts_with("UINT") {
        if vals.len() != batch {
            return Err(bad("label count differs from batch"));
        }
        let labels: Vec<usize> = vals
            .iter()
            .map(|&v| {
                if v >= 0.0 && (v as usize) < classes {
                    Ok(v as usize)
                } else {
                    Err(bad("label out of range"))
                }
            })
            .collect::<Result<_, _>>()?;
        return Ok(one_hot(&labels, classes));
    }
    if vals.len() != batch * classes {
        return Err(bad(&format!(
            "{} values for a batch of {batch} with {classes} classes",
            vals.len()
        )));
    }
    Tensor::new(
        vec![batch, classes],
        vals.iter().map(|&v| v as f32).collect(),
    )
}

impl Classifier for RemoteClassifier {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }
    fn num_classes(&self) -> usize {
        self.num_classes
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let body = json!({
            "inputs": [{
                "name": self.input_name,
                "shape": x.shape,
                "datatype": "FP32",
                "data": x.data,
            }]
        });
        let mut req = self.client.post(&self.url).json(&body);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send().map_err(|e| ModelError::Remote(e.to_string()))?;
        let status = resp.status();
        let mut buf = Vec::new();
        resp.take(MAX_RESPONSE)
            .read_to_end(&mut buf)
            .map_err(|e| ModelError::Remote(e.to_string()))?;
        if !status.is_success() {
            return Err(ModelError::Remote(format!(
                "{} answered {status}: {}",
                self.url,
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            )));
        }
        let v: Value = serde_json::from_slice(&buf)
            .map_err(|e| ModelError::Remote(format!("response is not JSON: {e}")))?;
        parse_v2_response(&v, x.batch(), self.num_classes)
    }
}
