//! What the rendering-payload scanner (`[input.payload]`, `AISEC-GUARD-007`,
//! `aisec_guard::payload`) changes in the guard's decision on labelled JSONL
//! files (`{"text", "label", "source", "kind"}` per line), with the shipped
//! model.
//!
//! Two pipelines under the default policy, identical but for
//! `[input.payload] enabled`. Every row is screened as a request
//! (`scan_input`); rows of kind `document*` are also screened as tool content
//! (`scan_indirect`), and a row counts as blocked when either blocks.
//! Prints recall per source and kind with and without the scanner, and every
//! benign row the scanner fires on (either channel), with its evidence.
//!
//! Usage: cargo run --release -p aisec-guard --example payload_eval -- NAME=FILE...

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::collections::BTreeMap;

use aisec_guard::policy::Action;
use aisec_guard::{Pipeline, Policy};

#[derive(Default, Clone, Copy)]
struct Pair {
    attacks: u64,
    off: u64,
    on: u64,
    payload: u64,
    benign: u64,
    fp_off: u64,
    fp_on: u64,
}

impl Pair {
    fn row(&self, name: &str) -> String {
        let r = |x: u64, n: u64| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.3} ({x}/{n})", x as f64 / n as f64)
            }
        };
        format!(
            "| {name} | {} | {} | {} | +{} | {} | {} | {} | {} |",
            self.attacks,
            r(self.off, self.attacks),
            r(self.on, self.attacks),
            self.on.saturating_sub(self.off),
            self.payload,
            self.benign,
            r(self.fp_off, self.benign),
            r(self.fp_on, self.benign),
        )
    }
}

const HEAD: &str = "| | attacks | recall without | recall with | gained | attacks the scanner fires on | benign | FPR without | FPR with |\n|---|---|---|---|---|---|---|---|---|";

fn decide(p: &Pipeline, t: &str, doc: bool) -> (bool, Option<String>) {
    let mut d = p.scan_input(t);
    if doc {
        d.extend(p.scan_indirect(t, "document"));
    }
    let blocked = d.iter().any(|d| d.action == Action::Block);
    let payload = d
        .iter()
        .find(|d| d.rule.id == "AISEC-GUARD-007")
        .map(|d| d.evidence.clone());
    (blocked, payload)
}

fn main() -> anyhow::Result<()> {
    let on = Pipeline::new(Policy::default_for("http://127.0.0.1:9"));
    let mut off_policy = Policy::default_for("http://127.0.0.1:9");
    off_policy.input.payload.enabled = false;
    let off = Pipeline::new(off_policy);
    let mut total = Pair::default();
    let mut benign_hits: Vec<String> = Vec::new();
    // attacks with an image, link or HTML marker the scanner did not fire on
    let markers = [
        "![",
        "](",
        "<img",
        "<a ",
        "onerror",
        "onload",
        "javascript:",
        "<script",
    ];
    let mut missed: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        let (name, path) = arg.split_once('=').unwrap_or(("data", arg.as_str()));
        let text = std::fs::read_to_string(path)?;
        let mut by_source: BTreeMap<String, Pair> = BTreeMap::new();
        let mut by_kind: BTreeMap<String, Pair> = BTreeMap::new();
        let mut all = Pair::default();
        for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let t = v["text"].as_str().unwrap_or("");
            let label = v["label"].as_i64() == Some(1);
            let source = v["source"].as_str().unwrap_or("?").to_string();
            let kind = v["kind"].as_str().unwrap_or("?").to_string();
            let doc = kind.starts_with("document");
            let (b_on, ev) = decide(&on, t, doc);
            let (b_off, _) = decide(&off, t, doc);
            let fired = ev.is_some();
            if !label {
                if let Some(ev) = &ev {
                    benign_hits.push(format!("- {name} line {} ({source}, {kind}): {ev}", n + 1));
                }
            }
            if label && !fired {
                let lower = t.to_lowercase();
                if let Some(i) = markers.iter().filter_map(|m| lower.find(m)).min() {
                    let a = (0..=i.saturating_sub(120))
                        .rev()
                        .find(|&k| t.is_char_boundary(k))
                        .unwrap_or(0);
                    let b = (i + 160..=t.len())
                        .find(|&k| t.is_char_boundary(k))
                        .unwrap_or(t.len());
                    missed.push(format!(
                        "- {name} line {} ({source}, {kind}; blocked anyway: {b_on}): {:?}",
                        n + 1,
                        &t[a..b]
                    ));
                }
            }
            for p in [
                by_source.entry(source.clone()).or_default(),
                by_kind.entry(kind.clone()).or_default(),
                &mut all,
                &mut total,
            ] {
                if label {
                    p.attacks += 1;
                    p.off += u64::from(b_off);
                    p.on += u64::from(b_on);
                    p.payload += u64::from(fired);
                } else {
                    p.benign += 1;
                    p.fp_off += u64::from(b_off);
                    p.fp_on += u64::from(b_on);
                }
            }
        }
        println!("### {name}\n\nPer source:\n\n{HEAD}");
        for (s, c) in &by_source {
            println!("{}", c.row(s));
        }
        println!("{}", all.row("**all**"));
        println!("\nPer kind:\n\n{HEAD}");
        for (k, c) in &by_kind {
            println!("{}", c.row(k));
        }
        println!();
        files.push(name.to_string());
    }
    println!("### All files ({})\n\n{HEAD}", files.join(", "));
    println!("{}", total.row("**all**"));
    println!(
        "\nBenign rows the payload scanner fires on: {}",
        benign_hits.len()
    );
    for h in &benign_hits {
        println!("{h}");
    }
    println!(
        "\nAttack rows with an image, link or HTML marker the scanner did not fire on: {}",
        missed.len()
    );
    for h in &missed {
        println!("{h}");
    }
    Ok(())
}
