//! Detection quality of the guard's injection scanners on labelled JSONL
//! files (`{"text":..,"label":0|1,"py_score":..}` per line, as written by
//! `scripts/guard/train_classifier.py`). Prints a markdown table for each
//! file: precision, recall and F1 of the rules, the classifier, and either
//! firing; plus the largest Rust/Python classifier score difference (parity).
//!
//! Usage: cargo run --release -p aisec-guard --example quality -- NAME=FILE...

use aisec_guard::{Pipeline, Policy};

#[derive(Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
    tn: u64,
}

impl Counts {
    fn add(&mut self, pred: bool, label: bool) {
        match (pred, label) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn row(&self, name: &str) -> String {
        let p = self.tp as f64 / (self.tp + self.fp).max(1) as f64;
        let r = self.tp as f64 / (self.tp + self.fn_).max(1) as f64;
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        format!(
            "| {name} | {p:.3} | {r:.3} | {f:.3} | {} | {} | {} | {} |",
            self.tp, self.fp, self.fn_, self.tn
        )
    }
}

fn main() -> anyhow::Result<()> {
    let p = Pipeline::new(Policy::default_for("http://127.0.0.1:9"));
    let th = p.threshold();
    for arg in std::env::args().skip(1) {
        let (name, path) = arg.split_once('=').unwrap_or(("data", arg.as_str()));
        let text = std::fs::read_to_string(path)?;
        let (mut rules, mut clf, mut both, mut plain) = (
            Counts::default(),
            Counts::default(),
            Counts::default(),
            Counts::default(),
        );
        let mut max_diff = 0f64;
        let mut n = 0;
        let mut pos = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let t = v["text"].as_str().unwrap_or("");
            let label = v["label"].as_i64() == Some(1);
            let norm = aisec_guard::text::normalise(t);
            let r = !p.injection_rule_hits(&norm.text).is_empty();
            let s = p.classifier_score(&norm.text);
            if let Some(py) = v["py_score"].as_f64() {
                max_diff = max_diff.max((p.classifier_score(t) as f64 - py).abs());
            }
            let c = p.classifier_fires(&norm.text).is_some();
            plain.add(s >= th, label);
            rules.add(r, label);
            clf.add(c, label);
            both.add(r || c, label);
            n += 1;
            pos += label as u64;
        }
        println!("### {name}: {n} prompts ({pos} injections)\n");
        println!("| detector | precision | recall | F1 | TP | FP | FN | TN |\n|---|---|---|---|---|---|---|---|");
        println!("{}", rules.row("rules"));
        println!(
            "{}",
            clf.row(&format!(
                "classifier (threshold {th:.2}; {:.2} under {} words)",
                p.policy.input.injection.short_threshold,
                p.policy.input.injection.classifier_min_words
            ))
        );
        println!("{}", both.row("rules OR classifier (the guard's default)"));
        println!(
            "{}",
            plain.row(&format!(
                "classifier, one threshold {th:.2} for all lengths"
            ))
        );
        println!("\nLargest |Rust - Python| classifier score on raw text: {max_diff:.2e}\n");
    }
    Ok(())
}
