//! `builtin:weak-chat`: a deliberately weak OpenAI-compatible chat app on
//! loopback, so the example system (and tests) can be assessed end to end
//! without a model. Its replies are aisec-probe's scripted weak app
//! ([`aisec_probe::demo::weak_reply`]: it obeys injected instructions,
//! echoes markdown images, invents packages); when that app would recite
//! its own instructions, this one recites the system prompt the request
//! carried, so system-prompt leakage is real leakage of what was sent.

use std::net::SocketAddr;

use anyhow::Context;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The URL that names the built-in app in a description.
pub const BUILTIN: &str = "builtin:weak-chat";

async fn completions(body: Option<Json<Value>>) -> axum::response::Response {
    let Some(Json(body)) = body else {
        return (axum::http::StatusCode::BAD_REQUEST, "expected JSON").into_response();
    };
    let messages = body.get("messages").and_then(Value::as_array);
    let last = |role: &str| {
        messages
            .into_iter()
            .flatten()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some(role))
            .and_then(|m| m.get("content").and_then(Value::as_str))
            .unwrap_or("")
            .to_string()
    };
    let user = last("user");
    let system = last("system");
    let mut reply = aisec_probe::demo::weak_reply(&user, 0);
    if !system.is_empty() {
        reply = reply.replace(aisec_probe::demo::DEMO_SYSTEM, &system);
    }
    Json(json!({
        "id": "chatcmpl-weak",
        "object": "chat.completion",
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }))
    .into_response()
}

/// A running app; stops when dropped.
pub struct WeakChat {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl WeakChat {
    /// Its base URL (`http://127.0.0.1:PORT`); the OpenAI API is under `/v1`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for WeakChat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the app on 127.0.0.1 (inside a tokio runtime).
pub async fn start() -> anyhow::Result<WeakChat> {
    let app = Router::new().route("/v1/chat/completions", post(completions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the built-in chat app to 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(WeakChat { addr, task })
}
