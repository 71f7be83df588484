//! A scripted OpenAI-compatible server for throughput benchmarks: answers
//! every chat or completion request at once (or after `--delay-ms`) with a
//! fixed refusal, so the client harness, not the model, is what is measured.
//!
//! Usage: `fast_openai_server [--port P] [--delay-ms D]`; prints the base URL.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

async fn chat(State(delay): State<u64>, _body: Json<Value>) -> Json<Value> {
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Json(
        json!({"id": "x", "object": "chat.completion", "model": "fast",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "I'm sorry, but I can't help with that."},
            "text": "I'm sorry, but I can't help with that."}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    )
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": "fast", "object": "model"}]}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let get_arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = get_arg("--port")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let delay: u64 = get_arg("--delay-ms")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(chat))
        .route("/v1/models", get(models))
        .with_state(delay);
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("http://{}/v1", l.local_addr()?);
    axum::serve(l, app).await?;
    Ok(())
}
