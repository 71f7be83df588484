//! A loopback KServe v2 (Open Inference Protocol) server for tests, and
//! [`Linear`], a model whose logits are known in closed form.
//!
//! Enabled by the `test-support` feature; never part of a release build.
//! Tests of this crate and of the `aisec` CLI start one per test on
//! `127.0.0.1:0`, point a [`RemoteClassifier`](crate::blackbox::RemoteClassifier)
//! or `aisec --url` at [`KserveServer::url`], and read back what the server
//! saw (request paths, headers, examples answered). The server decodes the
//! request's first input tensor and hands it to a [`Handler`], which
//! returns the status and JSON body to answer with; [`serve_model`] answers
//! with a model's logits.
//!
//! It reads one request per connection (`Connection: close`), which is all
//! the blocking reqwest client in [`blackbox`](crate::blackbox) needs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Classifier, ModelError, Tensor};

/// A linear test model: logit `k` is `<w[k], x>` over inputs of `shape`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// Shape of one example.
    pub shape: Vec<usize>,
    /// One weight row per class, each as long as an example.
    pub w: Vec<Vec<f32>>,
}

impl Classifier for Linear {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn num_classes(&self) -> usize {
        self.w.len()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let mut out = Vec::with_capacity(x.batch() * self.w.len());
        for i in 0..x.batch() {
            for wk in &self.w {
                out.push(wk.iter().zip(x.row(i)).map(|(a, b)| a * b).sum());
            }
        }
        Tensor::new(vec![x.batch(), self.w.len()], out)
    }
}

/// One decoded request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request target, e.g. `/v2/models/digits/infer`.
    pub path: String,
    /// Header lines as `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    /// The first input tensor of the body, when it decoded.
    pub input: Option<Tensor>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers: an HTTP status and a body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Response body (sent as `application/json`).
    pub body: String,
}

impl Reply {
    /// `200 OK` with a KServe v2 response holding `z` as FP32 logits.
    pub fn logits(z: &Tensor) -> Self {
        let body = serde_json::json!({"outputs": [{"name": "logits", "shape": z.shape,
            "datatype": "FP32", "data": z.data}]})
        .to_string();
        Self { status: 200, body }
    }

    /// A reply with any status and body.
    pub fn raw(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }
}

/// Decides the reply to each request.
pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running loopback server. It serves until the test process ends.
pub struct KserveServer {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    examples: Arc<AtomicUsize>,
}

impl KserveServer {
    /// Every request served so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Examples (rows of the input tensors) answered so far.
    pub fn examples(&self) -> usize {
        self.examples.load(Ordering::SeqCst)
    }
}

/// Starts a server that answers every request with `handler`.
///
/// # Panics
/// When no loopback port can be bound (a broken test machine).
pub fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> KserveServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("loopback address")
    );
    let requests = Arc::new(Mutex::new(Vec::new()));
    let examples = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (requests.clone(), examples.clone());
    let handler: Arc<Handler> = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (seen, count, handler) = (seen.clone(), count.clone(), handler.clone());
            // One thread per connection: a client that sends requests in
            // parallel (`-j`) is not serialised by the test server.
            std::thread::spawn(move || {
                let Some(req) = read_request(&stream) else {
                    return;
                };
                if let Some(x) = &req.input {
                    count.fetch_add(x.batch(), Ordering::SeqCst);
                }
                let reply = handler(&req);
                if let Ok(mut s) = seen.lock() {
                    s.push(req);
                }
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    reply.status,
                    reply.body.len(),
                    reply.body
                );
            });
        }
    });
    KserveServer {
        url,
        requests,
        examples,
    }
}

/// Starts a server that answers with `model`'s logits.
pub fn serve_model<M: Classifier + Send + Sync + 'static>(model: M) -> KserveServer {
    serve(move |req| match &req.input {
        Some(x) => match model.logits(x) {
            Ok(z) => Reply::logits(&z),
            Err(e) => Reply::raw(400, format!("{{\"error\": \"{e}\"}}")),
        },
        None => Reply::raw(400, "{\"error\": \"no input tensor\"}"),
    })
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                len = v.parse().ok()?;
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0; len.min(1 << 28)];
    r.read_exact(&mut body).ok()?;
    let input = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| decode_input(&v["inputs"][0]));
    Some(Request {
        path,
        headers,
        input,
    })
}

fn decode_input(inp: &serde_json::Value) -> Option<Tensor> {
    let shape = inp["shape"]
        .as_array()?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<Vec<_>>>()?;
    let data = inp["data"]
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect::<Option<Vec<_>>>()?;
    Tensor::new(shape, data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blackbox::RemoteClassifier;

    /// `z = [sum(x), 0]`.
    fn sum() -> Linear {
        Linear {
            shape: vec![2],
            w: vec![vec![1.0; 2], vec![0.0; 2]],
        }
    }

    #[test]
    fn serves_a_model_and_records_what_it_saw() {
        let s = serve_model(sum());
        let r = RemoteClassifier::new(&s.url, "m", "x", vec![2], 2)
            .unwrap()
            .with_header("X-Test", "1");
        let x = Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(r.logits(&x).unwrap().data, vec![3.0, 0.0, 7.0, 0.0]);
        assert_eq!(s.examples(), 2);
        let reqs = s.requests();
        assert_eq!(reqs[0].path, "/v2/models/m/infer");
        assert_eq!(reqs[0].header("x-test"), Some("1"));
    }
}
