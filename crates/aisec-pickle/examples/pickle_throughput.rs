//! Measures scan throughput: `cargo run --release -p aisec-pickle --example
//! pickle_throughput -- FILE... ` prints, per file, the best-of-5 wall time
//! of `scan_pickle` (or `scan_npy` for `.npy`) and MB/s.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_core::Location;
use aisec_pickle::{scan_npy, scan_pickle, Limits, Policy};
use std::time::Instant;

fn main() {
    let policy = Policy::default();
    let limits = Limits::default();
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{path}: {e}");
                continue;
            }
        };
        let loc = Location::path(path.as_str());
        let mut best = f64::MAX;
        let mut findings = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let r = if path.ends_with(".npy") {
                scan_npy(&data, &loc, &policy, &limits)
            } else {
                scan_pickle(&data, &loc, &policy, &limits)
            };
            best = best.min(t.elapsed().as_secs_f64());
            findings = r.findings.len();
        }
        println!(
            "{path}\t{} bytes\t{:.3} ms\t{:.1} MB/s\t{findings} findings",
            data.len(),
            best * 1e3,
            data.len() as f64 / best / 1e6
        );
    }
}
