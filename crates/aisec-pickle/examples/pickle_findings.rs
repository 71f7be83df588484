//! Prints the findings of `scan_pickle` for each file given:
//! `cargo run -p aisec-pickle --example pickle_findings -- FILE... [--profile NAME]`.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_core::Location;
use aisec_pickle::{scan_npy, scan_pickle, Limits, Policy};

fn main() {
    let mut policy = Policy::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--profile" {
            let name = args.next().unwrap_or_default();
            policy = match policy.with_profile(&name) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(2);
                }
            };
        } else {
            files.push(a);
        }
    }
    for path in files {
        let Ok(data) = std::fs::read(&path) else {
            eprintln!("{path}: unreadable");
            continue;
        };
        let loc = Location::path(path.as_str());
        let r = if path.ends_with(".npy") {
            scan_npy(&data, &loc, &policy, &Limits::default())
        } else {
            scan_pickle(&data, &loc, &policy, &Limits::default())
        };
        println!(
            "{path}: {} pickle(s), kind {:?}, consumed {}/{}",
            r.pickles,
            r.kind,
            r.consumed,
            data.len()
        );
        for f in &r.findings {
            println!(
                "  {} {} {} {}",
                f.rule_id, f.severity, f.location, f.evidence
            );
        }
    }
}
