//! Black-box access: the workspace's one query counter (counts, budgets and
//! answer-shape checks), label-only views, and a remote model served over the
//! KServe v2 / Open Inference Protocol (`POST {base}/v2/models/{name}/infer`
//! with JSON tensors) whose timeout bounds the whole exchange.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::classifier::{argmax, Classifier, Differentiable, Loss, ModelError, Tensor};

/// The one query counter of the workspace: wraps a model, counts every
/// example sent to it (score, label and gradient queries alike), refuses
/// any batch that would go past an optional budget, and checks that every
/// answer has the shape asked for, so code above it can index the answers
/// without trusting the model (a remote endpoint, a hostile file).
///
/// It takes the model by value; pass a reference (`&model`, `&dyn
/// Classifier`) to count queries to a model you keep. Counters nest: an
/// attack can count its own queries through a counter around the run's
/// budgeted one. Counting is atomic, so parallel batches share one budget
/// exactly: a batch is charged before it is sent and a refused batch is not
/// charged.
#[derive(Debug)]
pub struct QueryCounter<C> {
    inner: C,
    used: AtomicU64,
    budget: Option<u64>,
}

impl<C> QueryCounter<C> {
    /// Counts queries with no budget.
    pub fn new(inner: C) -> Self {
        Self::with_limit(inner, None)
    }
    /// Counts queries and refuses any batch that would take the total past `budget` examples.
    pub fn with_budget(inner: C, budget: u64) -> Self {
        Self::with_limit(inner, Some(budget))
    }
    /// Counts queries, with a budget when `budget` is `Some`.
    pub fn with_limit(inner: C, budget: Option<u64>) -> Self {
        QueryCounter {
            inner,
            used: AtomicU64::new(0),
            budget,
        }
    }
    /// Examples queried so far.
    pub fn queries(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
    /// The budget, if any.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }
    /// Examples left under the budget (`u64::MAX` without one).
    pub fn remaining(&self) -> u64 {
        match self.budget {
            Some(b) => b.saturating_sub(self.queries()),
            None => u64::MAX,
        }
    }
    /// The wrapped model.
    pub fn inner(&self) -> &C {
        &self.inner
    }
    /// Charges `n` examples, or refuses them when they do not fit the budget.
    fn charge(&self, n: usize) -> Result<(), ModelError> {
        let n = n as u64;
        let budget = self.budget;
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| match budget {
                Some(b) if used.checked_add(n).is_none_or(|t| t > b) => None,
                _ => Some(used.saturating_add(n)),
            })
            .map(|_| ())
            .map_err(|used| ModelError::QueryBudget {
                budget: budget.unwrap_or(u64::MAX),
                used,
                asked: n,
            })
    }
}

/// Checks that logits are `[batch, classes]`.
fn check_logits(z: &Tensor, batch: usize, classes: usize) -> Result<(), ModelError> {
    if z.shape.len() != 2
        || z.batch() != batch
        || z.row_len() != classes
        || z.data.len() != batch * classes
    {
        return Err(ModelError::Shape(format!(
            "model returned logits of shape {:?} for {batch} inputs and {classes} classes",
            z.shape
        )));
    }
    Ok(())
}

impl<C: Classifier> Classifier for QueryCounter<C> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.charge(x.batch())?;
        let z = self.inner.logits(x)?;
        check_logits(&z, x.batch(), self.inner.num_classes())?;
        Ok(z)
    }
    fn predict(&self, x: &Tensor) -> Result<Vec<usize>, ModelError> {
        self.charge(x.batch())?;
        let p = self.inner.predict(x)?;
        if p.len() != x.batch() {
            return Err(ModelError::Shape(format!(
                "model returned {} predictions for {} inputs",
                p.len(),
                x.batch()
            )));
        }
        Ok(p)
    }
}

impl<C: Differentiable> Differentiable for QueryCounter<C> {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        self.charge(x.batch())?;
        let (l, g, z) = self.inner.loss_grad(x, loss)?;
        check_logits(&z, x.batch(), self.inner.num_classes())?;
        if l.len() != x.batch() || g.shape != x.shape || g.data.len() != x.data.len() {
            return Err(ModelError::Shape(format!(
                "model returned {} losses and a {:?} gradient for a {:?} input",
                l.len(),
                g.shape,
                x.shape
            )));
        }
        Ok((l, g, z))
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

/// Default bound on one whole exchange with a remote model (connecting,
/// sending, the response headers and the whole body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A model behind a KServe v2 inference endpoint.
#[derive(Debug)]
pub struct RemoteClassifier {
    url: String,
    input_name: String,
    input_shape: Vec<usize>,
    num_classes: usize,
    client: reqwest::blocking::Client,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

fn client(timeout: Duration) -> Result<reqwest::blocking::Client, ModelError> {
    reqwest::blocking::Client::builder()
        // Bounds connecting and each read; the whole exchange is bounded
        // per request (`RequestBuilder::timeout`) and by the read loop.
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .map_err(|e| ModelError::Remote(e.to_string()))
}

impl RemoteClassifier {
    /// An endpoint at `base` (e.g. `http://host:8080`) serving `model`,
    /// taking FP32 input `input_name` of per-example shape `input_shape`
    /// and answering scores for `num_classes` classes (or class labels,
    /// which become one-hot scores). Each query must finish within
    /// [`DEFAULT_TIMEOUT`] (see [`RemoteClassifier::with_timeout`]).
    pub fn new(
        base: &str,
        model: &str,
        input_name: &str,
        input_shape: Vec<usize>,
        num_classes: usize,
    ) -> Result<Self, ModelError> {
        Ok(RemoteClassifier {
            url: format!("{}/v2/models/{model}/infer", base.trim_end_matches('/')),
            input_name: input_name.into(),
            input_shape,
            num_classes,
            client: client(DEFAULT_TIMEOUT)?,
            headers: vec![],
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Bounds each query, from connecting to the last byte of the answer:
    /// a server that sends its headers and then drips the body a byte at a
    /// time fails the query once `timeout` has passed.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, ModelError> {
        self.client = client(timeout)?;
        self.timeout = timeout;
        Ok(self)
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

    /// The bound on one whole query.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Reads a response body of at most `MAX_RESPONSE` bytes, failing once
/// `deadline` has passed (checked after every read, so a body that arrives
/// a byte at a time cannot stretch the exchange).
fn read_body(
    resp: &mut impl Read,
    deadline: Instant,
    url: &str,
    timeout: Duration,
) -> Result<Vec<u8>, ModelError> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        if Instant::now() > deadline {
            return Err(ModelError::Remote(format!(
                "{url}: no complete answer within {:.1} s ({} bytes received)",
                timeout.as_secs_f64(),
                buf.len()
            )));
        }
        let k = resp
            .read(&mut chunk)
            .map_err(|e| ModelError::Remote(format!("{url}: reading the answer: {e}")))?;
        if k == 0 {
            return Ok(buf);
        }
        if buf.len() as u64 + k as u64 > MAX_RESPONSE {
            return Err(ModelError::Remote(format!(
                "{url}: answer larger than {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        buf.extend_from_slice(&chunk[..k]);
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
        let deadline = Instant::now() + self.timeout;
        let mut req = self
            .client
            .post(&self.url)
            .json(&body)
            .timeout(self.timeout);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let mut resp = req.send().map_err(|e| ModelError::Remote(e.to_string()))?;
        let status = resp.status();
        let buf = read_body(&mut resp, deadline, &self.url, self.timeout)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// `z = [sum(x), 0]` per example, with gradients of ones.
    struct Sum;
    impl Classifier for Sum {
        fn input_shape(&self) -> &[usize] {
            &[2]
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            let d = (0..x.batch())
                .flat_map(|i| [x.row(i).iter().sum::<f32>(), 0.0])
                .collect();
            Tensor::new(vec![x.batch(), 2], d)
        }
    }
    impl Differentiable for Sum {
        fn loss_grad(
            &self,
            x: &Tensor,
            _loss: &Loss,
        ) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
            let g = Tensor::new(x.shape.clone(), vec![1.0; x.data.len()])?;
            Ok((vec![0.0; x.batch()], g, self.logits(x)?))
        }
    }

    /// Answers one example too few.
    struct Short;
    impl Classifier for Short {
        fn input_shape(&self) -> &[usize] {
            &[2]
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            Ok(Tensor::zeros(vec![x.batch().saturating_sub(1), 2]))
        }
    }

    #[test]
    fn counters_nest_share_a_budget_and_check_answers() {
        let x = Tensor::zeros(vec![3, 2]);
        let run = QueryCounter::with_budget(Sum, 10);
        {
            // An attack counts its own queries through a counter around the run's.
            let attack = QueryCounter::new(&run);
            attack.logits(&x).unwrap();
            attack
                .loss_grad(&x, &Loss::CrossEntropy { labels: vec![0; 3] })
                .unwrap();
            assert_eq!(attack.queries(), 6);
            assert_eq!(attack.predict(&x).unwrap(), vec![0, 0, 0]);
        }
        assert_eq!(run.queries(), 9);
        assert_eq!(run.remaining(), 1);
        // 9 + 3 > 10: refused, not charged, and named as a budget error.
        let e = run.logits(&x).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::QueryBudget {
                    budget: 10,
                    used: 9,
                    asked: 3
                }
            ),
            "{e}"
        );
        assert_eq!(run.queries(), 9);
        run.logits(&Tensor::zeros(vec![1, 2])).unwrap();
        assert_eq!(run.remaining(), 0);
        // Wrong-shaped answers are errors, not panics further up.
        let short = QueryCounter::new(Short);
        assert!(matches!(short.logits(&x), Err(ModelError::Shape(_))));
        assert!(matches!(short.predict(&x), Err(ModelError::Shape(_))));
    }

    #[test]
    fn counting_is_exact_across_threads() {
        let run = QueryCounter::with_budget(Sum, 1000);
        let x = Tensor::zeros(vec![7, 2]);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let _ = run.logits(&x);
                    }
                });
            }
        });
        // 400 batches of 7 were asked; exactly floor(1000 / 7) fit.
        assert_eq!(run.queries(), 7 * (1000 / 7));
    }

    /// A server that accepts one request, sends `head` and then the body a
    /// byte every 50 ms, for at most `secs` seconds.
    fn drip(head: &'static str, secs: u64) -> (String, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let Ok((s, _)) = l.accept() else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let mut s = s;
            if s.write_all(head.as_bytes()).is_err() {
                return;
            }
            let until = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < until {
                if s.write_all(b" ").and_then(|_| s.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        (addr, h)
    }

    #[test]
    fn a_dripping_server_cannot_hold_a_query_past_its_timeout() {
        let x = Tensor::zeros(vec![1, 2]);
        for head in [
            // Headers, then a body that never ends in time.
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            // Headers that never end.
            "HTTP/1.1 200 OK\r\nX-Slow: ",
        ] {
            let (addr, h) = drip(head, 30);
            let r = RemoteClassifier::new(&addr, "m", "x", vec![2], 2)
                .unwrap()
                .with_timeout(Duration::from_millis(600))
                .unwrap();
            let started = Instant::now();
            let e = r.logits(&x).unwrap_err();
            let took = started.elapsed();
            assert!(matches!(e, ModelError::Remote(_)), "{e}");
            // Without a whole-exchange bound this query would take the
            // server's 30 s; with it, the timeout and one read at most.
            assert!(took < Duration::from_secs(10), "{took:?}: {e}");
            drop(r);
            h.join().unwrap();
        }
    }
}
