//! Debug helper: `cargo run -p aisec-formats --example scan_file -- <file>...`
//! sniffs each file's format, runs the matching leaf parser and prints the
//! findings, notes and malformed text, plus the time the parse took.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_core::Location;
use aisec_formats::{gguf, h5, keras, onnx, safetensors, savedmodel};

fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let loc = Location::path(path.clone());
        let t = std::time::Instant::now();
        let (kind, r) = if h5::looks_like_h5(&data) {
            ("hdf5", h5::scan_h5(&data, &loc))
        } else if gguf::looks_like_gguf(&data) {
            ("gguf", gguf::scan_gguf(&data, &loc))
        } else if safetensors::looks_like_safetensors(&data) {
            ("safetensors", safetensors::scan_safetensors(&data, &loc))
        } else if path.ends_with("keras_metadata.pb") {
            (
                "keras_metadata",
                savedmodel::scan_keras_metadata(&data, &loc),
            )
        } else if savedmodel::looks_like_saved_model(&data) {
            ("saved_model", savedmodel::scan_saved_model(&data, &loc))
        } else if onnx::looks_like_onnx(&data) {
            ("onnx", onnx::scan_onnx(&data, &loc))
        } else if path.ends_with(".json") {
            ("keras_config", keras::scan_keras_config(&data, &loc))
        } else {
            ("graph_def", savedmodel::scan_graph_def(&data, &loc))
        };
        let el = t.elapsed();
        println!(
            "{path}: {kind}, {} bytes, {:.3} ms",
            data.len(),
            el.as_secs_f64() * 1e3
        );
        for f in &r.findings {
            println!("  {} [{}] {}", f.rule_id, f.severity, f.evidence);
        }
        for n in &r.notes {
            println!("  note: {n}");
        }
        if let Some(m) = &r.malformed {
            println!("  malformed: {m}");
        }
    }
}
