//! An OpenAI-compatible chat server whose replies come from the probe
//! crate's deliberately weak scripted app (`aisec_probe::demo::weak_reply`):
//! the upstream `bench/guard/replay.sh` puts the guard in front of, to count
//! how many probe hits the guard stops.
//!
//! `cargo run --release -p aisec-guard --example weak_upstream -- 127.0.0.1:8701`

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn chat(Json(body): Json<Value>) -> Json<Value> {
    // Answer the whole conversation's user turns, newest last, as the weak app would.
    let text: Vec<&str> = body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|x| x["role"] == "user")
                .filter_map(|x| x["content"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let reply = aisec_probe::demo::weak_reply(&text.join("\n"), 0);
    Json(json!({
        "id": "chatcmpl-weak",
        "object": "chat.completion",
        "model": body["model"].clone(),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": reply}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8701".into());
    let app = Router::new().route("/v1/chat/completions", post(chat));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("weak upstream on http://{addr}/v1");
    axum::serve(listener, app).await?;
    Ok(())
}
