//! Detection quality of the guard's input scanners on labelled JSONL files
//! (`{"text", "label": 0|1, "source", "kind"}` per line, as written by
//! `scripts/guard/train_classifier.py`). Prints markdown tables: per source,
//! per error class (the `kind` of each row), and per detector; the guard's
//! decision is what `Pipeline::scan_input` blocks under the default policy
//! (rules, classifier, unicode, limits), and documents are also scanned as
//! tool content (`Pipeline::scan_indirect`).
//!
//! Usage: cargo run --release -p aisec-guard --example quality -- NAME=FILE...
//! (`AISEC_GUARD_SHOW_ERRORS=1`: every wrong decision on stderr, with its
//! fast score and second-stage probability.)

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::collections::BTreeMap;

use aisec_guard::policy::Action;
use aisec_guard::{Pipeline, Policy};

#[derive(Default, Clone, Copy)]
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
    fn p(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn r(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.p(), self.r());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
    fn fpr(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn).max(1) as f64
    }
    fn pos(&self) -> u64 {
        self.tp + self.fn_
    }
    fn neg(&self) -> u64 {
        self.fp + self.tn
    }
    fn row(&self, name: &str) -> String {
        let na = |x: f64, n: u64| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{x:.3}")
            }
        };
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.pos() + self.neg(),
            self.pos(),
            na(self.p(), self.tp + self.fp),
            na(self.r(), self.pos()),
            na(self.f1(), self.pos()),
            na(self.fpr(), self.neg()),
            self.fp,
            self.fn_
        )
    }
}

const HEAD: &str = "| | texts | attacks | precision | recall | F1 | benign FPR | FP | FN |\n|---|---|---|---|---|---|---|---|---|";

fn main() -> anyhow::Result<()> {
    // The default policy runs the built-in second stage. AISEC_GUARD_STAGE2=off: the same tables
    // with the fast path alone (rules + fast classifier); AISEC_GUARD_MINILM=DIR: with the encoder
    // read from a downloaded folder instead of the built-in one (committed head);
    // AISEC_GUARD_HEAD=FILE: another head file; AISEC_GUARD_MODEL=FILE: another fast classifier
    // file in place of the built-in one (`[input.injection] model`, as in `latency.rs`);
    // AISEC_GUARD_SCOPE=all: the second stage on every request text (below).
    let mut policy = Policy::default_for("http://127.0.0.1:9");
    if let Some(file) = std::env::var_os("AISEC_GUARD_MODEL") {
        policy.input.injection.model = Some(file.into());
        policy.load_model()?;
    }
    let off = std::env::var("AISEC_GUARD_STAGE2").is_ok_and(|v| v == "off");
    let show_errors = std::env::var("AISEC_GUARD_SHOW_ERRORS").is_ok_and(|v| v == "1");
    policy.input.second_stage.enabled = !off;
    if let Some(dir) = std::env::var_os("AISEC_GUARD_MINILM") {
        policy.input.second_stage.model_dir = Some(dir.into());
    }
    // AISEC_GUARD_HEAD=FILE: the built-in encoder with another head file (a
    // candidate's, e.g. scripts/guard/stack_stage2.py's)
    if let Some(head) = std::env::var_os("AISEC_GUARD_HEAD") {
        policy.input.second_stage.head = Some(head.into());
    }
    // AISEC_GUARD_SCOPE=all: every request text read by the encoder
    // (`[input.second_stage] scope = "all"`, candidate EV)
    if std::env::var("AISEC_GUARD_SCOPE").is_ok_and(|v| v == "all") {
        policy.input.second_stage.scope = aisec_guard::policy::Scope::All;
    }
    let p = Pipeline::new(policy);
    if !off {
        let (ok, why) = p.second_stage_status();
        anyhow::ensure!(ok, "second stage did not load: {why:?}");
    }
    let mut stage2_ms: Vec<f64> = Vec::new();
    let mut stage2_texts = 0usize;
    let short_words = aisec_guard::classifier::Classifier::builtin().short_words();
    for arg in std::env::args().skip(1) {
        let (name, path) = arg.split_once('=').unwrap_or(("data", arg.as_str()));
        let text = std::fs::read_to_string(path)?;
        let mut by_source: BTreeMap<String, Counts> = BTreeMap::new();
        let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
        let (mut rules, mut clf, mut guard, mut short_chat, mut emoji) = (
            Counts::default(),
            Counts::default(),
            Counts::default(),
            Counts::default(),
            Counts::default(),
        );
        let mut docs_as_tool = Counts::default();
        let mut tool_by_source: BTreeMap<String, Counts> = BTreeMap::new();
        let mut tool_ms: Vec<f64> = Vec::new();
        let mut tool_second = 0usize;
        let mut unicode_fp = 0u64;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let t = v["text"].as_str().unwrap_or("");
            let label = v["label"].as_i64() == Some(1);
            let source = v["source"].as_str().unwrap_or("?").to_string();
            let kind = v["kind"].as_str().unwrap_or("?").to_string();
            let norm = aisec_guard::text::normalise(t);
            let r = !p.injection_rule_hits(&norm.text).is_empty();
            let t0 = std::time::Instant::now();
            let verdict = p.classifier_verdict(norm.model_text());
            if verdict.second.is_some() {
                stage2_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            stage2_texts += 1;
            let c = verdict.fires;
            let dets = p.scan_input(t);
            let g = dets.iter().any(|d| d.action == Action::Block);
            if show_errors && g != label {
                // AISEC_GUARD_SHOW_ERRORS=1: each wrong decision on stderr, for error analysis
                let what = if label { "missed" } else { "blocked" };
                let short: String = t.chars().take(200).collect();
                let second = verdict
                    .second
                    .map_or("-".to_string(), |s| format!("{s:.3}"));
                eprintln!(
                    "{what}\t{source}\t{kind}\tfast {:.3}\tsecond {second}\t{short:?}",
                    verdict.fast
                );
            }
            if !label && dets.iter().any(|d| d.scanner == "unicode") {
                unicode_fp += 1;
            }
            rules.add(r, label);
            clf.add(c, label);
            guard.add(g, label);
            by_source.entry(source.clone()).or_default().add(g, label);
            by_kind.entry(kind.clone()).or_default().add(g, label);
            if !label && norm.text.split_whitespace().count() < short_words {
                short_chat.add(g, label);
            }
            if t.contains('\u{FE0F}') {
                emoji.add(g, label);
            }
            if kind.starts_with("document") {
                let t0 = std::time::Instant::now();
                let d = p.scan_indirect(t, "document");
                tool_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                tool_second += usize::from(p.indirect_head_loaded());
                let blocked = d.iter().any(|d| d.action == Action::Block);
                docs_as_tool.add(blocked, label);
                tool_by_source
                    .entry(source.clone())
                    .or_default()
                    .add(blocked, label);
            }
        }
        // a ~4k-token tool document (16,000+ characters of this file's texts): the indirect
        // path's cost is bounded by its passages per text, whatever the length
        let mut long = String::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if long.len() >= 16_000 {
                break;
            }
            let v: serde_json::Value = serde_json::from_str(line)?;
            long.push_str(v["text"].as_str().unwrap_or(""));
            long.push('\n');
        }
        let long_norm = aisec_guard::text::normalise(&long).into_model_text();
        let mut long_ms = Vec::new();
        for _ in 0..5 {
            let t0 = std::time::Instant::now();
            let _ = p.indirect_verdict(&long_norm);
            long_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        long_ms.sort_by(f64::total_cmp);
        println!("### {name}\n");
        println!("Guard decision (blocked under the default policy) per source:\n");
        println!("{HEAD}");
        for (s, c) in &by_source {
            println!("{}", c.row(s));
        }
        println!("{}", guard.row("**all**"));
        println!("\nPer error class (kind of text):\n");
        println!("{HEAD}");
        for (k, c) in &by_kind {
            println!("{}", c.row(k));
        }
        println!(
            "{}",
            short_chat.row(&format!("benign texts under {short_words} words"))
        );
        println!("{}", emoji.row("texts with an emoji selector U+FE0F"));
        println!("{}", docs_as_tool.row("documents scanned as tool content"));
        if !tool_by_source.is_empty() {
            println!(
                "\nDocuments (kinds document and document+injection) scanned as tool content \
                 (`Pipeline::scan_indirect`), per source:\n"
            );
            println!("{HEAD}");
            for (s, c) in &tool_by_source {
                println!("{}", c.row(s));
            }
            println!("{}", docs_as_tool.row("**all documents**"));
            tool_ms.sort_by(f64::total_cmp);
            let q = |f: f64| {
                tool_ms
                    .get(((tool_ms.len() as f64 - 1.0) * f).round() as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            println!(
                "\nTool-content scan (`Pipeline::scan_indirect`: rules, fast classifier{}; wall clock, one thread): \
                 encoder ran on {tool_second} of {} documents; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; load {}",
                if off { " only" } else { " + indirect head" },
                tool_ms.len(),
                q(0.5),
                q(0.99),
                tool_ms.last().copied().unwrap_or(0.0),
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim()
            );
        }
        println!(
            "A {}-character tool document (~4k tokens, {} fast windows) through the same verdict, 5 runs: \
             median {:.1} ms, max {:.1} ms.",
            long.len(),
            aisec_guard::classifier::Classifier::builtin()
                .window_scores(&long_norm)
                .len(),
            long_ms[2],
            long_ms[4]
        );
        println!("\nPer detector:\n");
        println!("{HEAD}");
        println!("{}", rules.row("rules"));
        println!(
            "{}",
            clf.row(&format!("classifier (threshold {:.2})", p.threshold()))
        );
        println!(
            "{}",
            guard.row("guard decision (rules, classifier, unicode, limits)")
        );
        println!("\nBenign texts the unicode scanner blocked: {unicode_fp}\n");
        if !off {
            stage2_ms.sort_by(f64::total_cmp);
            let q = |f: f64| {
                stage2_ms
                    .get(((stage2_ms.len() as f64 - 1.0) * f).round() as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            println!(
                "Second stage ran on {} of {stage2_texts} texts (request side); classifier time of those texts \
                 (fast + encoder, wall clock, this machine): p50 {:.1} ms, p99 {:.1} ms; load {}\n",
                stage2_ms.len(),
                q(0.5),
                q(0.99),
                std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
            );
            stage2_ms.clear();
            stage2_texts = 0;
        }
    }
    Ok(())
}
