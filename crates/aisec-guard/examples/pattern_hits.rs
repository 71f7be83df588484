//! Per-pattern hits of the guard's built-in injection/jailbreak patterns on
//! labelled JSONL files (`{"text", "label": 0|1, "source", "kind"}` per
//! line). For every pattern label: the benign rows it fires on (each listed,
//! first 160 characters), and the attack rows it fires on per source and
//! kind; then how many attack rows fire no pattern but this one. With
//! `--rows FILE` it also writes one TSV line per row (file name, line number,
//! label, source, kind, whether `Pipeline::scan_input` blocks it under the
//! default policy, the pattern labels that fired, and the number of invisible
//! characters the unicode scanner counts as hiding), so two builds' outputs
//! can be compared row by row (what a new pattern newly blocks).
//! Attack texts are never printed (only counts), so evaluation-only sources
//! can be measured without reading them.
//!
//! `AISEC_GUARD_MODEL_FILE=PATH` scores with another classifier file (as the
//! policy key `[input.injection] model` would), so a candidate model is
//! measured without replacing the committed asset; the second stage is off
//! then (its band belongs to the shipped classifier), and with
//! `AISEC_GUARD_STAGE2=off`.
//!
//! Usage: cargo run --release -p aisec-guard --example pattern_hits -- [--rows OUT.tsv] NAME=FILE...

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::collections::BTreeMap;
use std::io::Write;

use aisec_guard::policy::Action;
use aisec_guard::{Pipeline, Policy};

fn main() -> anyhow::Result<()> {
    let mut policy = Policy::default_for("http://127.0.0.1:9");
    // AISEC_GUARD_STAGE2=off: without the built-in second stage (the fast path alone).
    policy.input.second_stage.enabled = std::env::var("AISEC_GUARD_STAGE2").as_deref() != Ok("off");
    if let Some(path) = std::env::var_os("AISEC_GUARD_MODEL_FILE") {
        // a candidate fast classifier is compared on the fast path: the second
        // stage's band was chosen on the shipped classifier's scores
        policy.input.second_stage.enabled = false;
        policy.input.injection.model = Some(path.into());
        policy.load_model()?;
        println!(
            "classifier: {}",
            policy.input.injection.model.as_ref().unwrap().display()
        );
    }
    let p = Pipeline::new(policy);
    let mut rows_out: Option<std::fs::File> = None;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--rows" {
            let path = args
                .next()
                .ok_or_else(|| anyhow::anyhow!("--rows needs a path"))?;
            rows_out = Some(std::fs::File::create(path)?);
        } else {
            files.push(a);
        }
    }
    for arg in files {
        let (name, path) = arg.split_once('=').unwrap_or(("data", arg.as_str()));
        let text = std::fs::read_to_string(path)?;
        // label -> (benign texts, attack counts per "source/kind")
        let mut benign: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut attack: BTreeMap<&'static str, BTreeMap<String, usize>> = BTreeMap::new();
        let mut only: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut attacks_per_group: BTreeMap<String, usize> = BTreeMap::new();
        let (mut n_benign, mut n_attack) = (0usize, 0usize);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)?;
            let t = v["text"].as_str().unwrap_or("");
            let label = v["label"].as_i64() == Some(1);
            let group = format!(
                "{}/{}",
                v["source"].as_str().unwrap_or("?"),
                v["kind"].as_str().unwrap_or("?")
            );
            let norm = aisec_guard::text::normalise(t);
            let mut labels: Vec<&'static str> = p
                .injection_rule_hits(&norm.text)
                .into_iter()
                .map(|(_, l)| l)
                .collect();
            labels.dedup();
            if label {
                n_attack += 1;
                *attacks_per_group.entry(group.clone()).or_default() += 1;
                for l in &labels {
                    *attack
                        .entry(l)
                        .or_default()
                        .entry(group.clone())
                        .or_default() += 1;
                }
                if labels.len() == 1 {
                    *only.entry(labels[0]).or_default() += 1;
                }
            } else {
                n_benign += 1;
                for l in &labels {
                    let short: String = t.chars().take(160).collect();
                    benign
                        .entry(l)
                        .or_default()
                        .push(format!("{group} line {}: {short:?}", i + 1));
                }
            }
            if let Some(f) = rows_out.as_mut() {
                let blocked = p.scan_input(t).iter().any(|d| d.action == Action::Block);
                writeln!(
                    f,
                    "{name}\t{}\t{}\t{group}\t{}\t{}\t{}",
                    i + 1,
                    u8::from(label),
                    u8::from(blocked),
                    labels.join("|"),
                    norm.invisible
                )?;
            }
        }
        println!("### {name}: {n_benign} benign rows, {n_attack} attack rows\n");
        println!("Attack rows per source/kind: {attacks_per_group:?}\n");
        println!("| pattern | benign hits | attack hits | attack rows only it fires on | attack hits per source/kind |");
        println!("|---|---|---|---|---|");
        let mut labels: Vec<&'static str> = benign.keys().chain(attack.keys()).copied().collect();
        labels.sort_unstable();
        labels.dedup();
        for l in &labels {
            let b = benign.get(l).map_or(0, Vec::len);
            let a: usize = attack.get(l).map_or(0, |m| m.values().sum());
            let per = attack.get(l).map_or_else(String::new, |m| {
                m.iter()
                    .map(|(g, n)| format!("{g} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            println!(
                "| {l} | {b} | {a} | {} | {per} |",
                only.get(l).copied().unwrap_or(0)
            );
        }
        for (l, texts) in &benign {
            println!("\nBenign rows `{l}` fires on:");
            for t in texts {
                println!("- {t}");
            }
        }
        println!();
    }
    Ok(())
}
