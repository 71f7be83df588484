//! Prints the symbolic machine's per-opcode trace for the differential test
//! against CPython's unpickler (`fuzz/differential/run.py`).
//!
//! Reads one case per line on stdin (the pickle in hex) and writes one JSON
//! object per line: `steps` (`[pos, op, depth, marks, memo keys, top kind,
//! literal value]` per opcode), `end` (`{"ok": offset after STOP}` or
//! `{"err": [offset, reason]}`) and `globals`, all read as `pickle.loads`
//! does, and under `file` the `end` and `globals` of the reading of a
//! file-backed load (`Ctx::file_frames`).
//! `cargo run -p aisec-pickle --example pickle_trace < cases.hex`

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::io::{BufRead, Write};

use aisec_pickle::machine::trace_pickle;
use aisec_pickle::Limits;
use serde_json::json;

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn main() {
    let limits = Limits {
        max_ops: 100_000,
        ..Limits::default()
    };
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let Some(data) = unhex(line.trim()) else {
            writeln!(out, "{}", json!({"error": "bad hex"})).unwrap();
            continue;
        };
        let t = trace_pickle(&data, &limits, false);
        let f = trace_pickle(&data, &limits, true);
        let steps: Vec<_> = t
            .steps
            .iter()
            .map(|s| json!([s.pos, s.op, s.depth, s.marks, s.memo, s.top, s.value]))
            .collect();
        let end = |t: &aisec_pickle::machine::Trace| match &t.end {
            Ok(p) => json!({ "ok": p }),
            Err((p, m)) => json!({ "err": [p, m] }),
        };
        writeln!(
            out,
            "{}",
            json!({
                "steps": steps,
                "end": end(&t),
                "globals": t.globals,
                "file": {"end": end(&f), "globals": f.globals},
            })
        )
        .unwrap();
    }
}
