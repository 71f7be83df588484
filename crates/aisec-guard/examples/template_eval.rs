//! What registering an application's prompt templates (`[input.injection]
//! templates`, `aisec_guard::template`) changes in the guard's decision on
//! labelled JSONL rows (`{"text", "label", ...}` per line) rendered from them.
//!
//! Two pipelines under the default policy, identical but for the templates
//! (a JSON list of `str.format` templates); every row is screened as a
//! request (`scan_input`; blocked = a detection whose action is block). Prints benign rows blocked and attacks caught by
//! each, and how many rows were instances of a registered template.
//!
//! Usage: cargo run --release -p aisec-guard --example template_eval -- TEMPLATES.json ROWS.jsonl

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use aisec_guard::policy::Action;
use aisec_guard::{Pipeline, Policy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(
        args.len() == 2,
        "usage: template_eval TEMPLATES.json ROWS.jsonl"
    );
    let templates: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&args[0]).unwrap()).unwrap();
    let off = Pipeline::new(Policy::default_for("http://127.0.0.1:9"));
    let mut pol = Policy::default_for("http://127.0.0.1:9");
    pol.input.injection.templates = templates.clone();
    if let Err(e) = pol.validate() {
        panic!("templates: {e}");
    }
    let on = Pipeline::new(pol);
    let set = aisec_guard::template::Templates::compile(&templates).unwrap();
    let (mut benign, mut attacks, mut instances) = (0u64, 0u64, 0u64);
    let (mut fp_off, mut fp_on, mut tp_off, mut tp_on) = (0u64, 0u64, 0u64, 0u64);
    let (mut t_off, mut t_on) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for line in std::fs::read_to_string(&args[1]).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap();
        let attack = v["label"].as_i64() == Some(1);
        let blocked = |p: &Pipeline| p.scan_input(text).iter().any(|d| d.action == Action::Block);
        let t = std::time::Instant::now();
        let a = blocked(&off);
        t_off += t.elapsed();
        let t = std::time::Instant::now();
        let b = blocked(&on);
        t_on += t.elapsed();
        instances += u64::from(set.slot_values(text).is_some());
        if attack {
            attacks += 1;
            tp_off += u64::from(a);
            tp_on += u64::from(b);
        } else {
            benign += 1;
            fp_off += u64::from(a);
            fp_on += u64::from(b);
        }
    }
    println!(
        "{} templates; {instances} of {} rows are instances of one",
        templates.len(),
        benign + attacks
    );
    println!("| | benign blocked | attacks caught |");
    println!("|---|---|---|");
    println!("| default policy | {fp_off} of {benign} | {tp_off} of {attacks} |");
    println!("| templates registered | {fp_on} of {benign} | {tp_on} of {attacks} |");
    let n = (benign + attacks).max(1) as f64;
    println!(
        "mean scan_input time per row: {:.1} us default, {:.1} us with the templates",
        t_off.as_secs_f64() * 1e6 / n,
        t_on.as_secs_f64() * 1e6 / n
    );
}
