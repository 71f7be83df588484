//! What undoing prompt obfuscation (`[input.injection] deobfuscate`,
//! `aisec_guard::deobf`) changes in the guard's request-side decision,
//! on labelled JSONL files (`{"text", "label", "source", "kind"}` per line,
//! as written by `scripts/guard/train_classifier.py`), with the shipped model.
//!
//! Two pipelines under the default policy, identical but for the switch.
//! For each file: recall per source and kind with and without decoded views,
//! benign false positives added (every one listed), and which decodings
//! fired. With `--synthetic`, the rows are obfuscated first (base64, hex,
//! escapes, URL encoding, ROT13, reversal, leetspeak, spaced letters; bare
//! and inside a "decode this" request) and benign look-alikes are added
//! (benign texts with hex constants, leetspeak gamer names, percent-encoded
//! URLs, base64 blobs of random bytes), and detection and benign FPR are
//! reported per obfuscation.
//!
//! Usage: cargo run --release -p aisec-guard --example deobf_eval -- [--synthetic] [--max N] NAME=FILE...

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::collections::BTreeMap;

use aisec_guard::policy::Action;
use aisec_guard::{Pipeline, Policy};

#[derive(Default, Clone, Copy)]
struct Pair {
    attacks: u64,
    caught_off: u64,
    caught_on: u64,
    benign: u64,
    fp_off: u64,
    fp_on: u64,
}

impl Pair {
    fn add(&mut self, label: bool, off: bool, on: bool) {
        if label {
            self.attacks += 1;
            self.caught_off += u64::from(off);
            self.caught_on += u64::from(on);
        } else {
            self.benign += 1;
            self.fp_off += u64::from(off);
            self.fp_on += u64::from(on);
        }
    }
    fn row(&self, name: &str) -> String {
        let r = |x: u64, n: u64| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.3} ({x}/{n})", x as f64 / n as f64)
            }
        };
        format!(
            "| {name} | {} | {} | {} | +{} | {} | {} | {} | +{} |",
            self.attacks,
            r(self.caught_off, self.attacks),
            r(self.caught_on, self.attacks),
            self.caught_on.saturating_sub(self.caught_off),
            self.benign,
            r(self.fp_off, self.benign),
            r(self.fp_on, self.benign),
            self.fp_on.saturating_sub(self.fp_off),
        )
    }
}

const HEAD: &str = "| | attacks | recall without views | recall with views | gained | benign | FPR without | FPR with | FP added |\n|---|---|---|---|---|---|---|---|---|";

fn blocked(p: &Pipeline, t: &str) -> bool {
    p.scan_input(t).iter().any(|d| d.action == Action::Block)
}

fn b64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='m' | 'A'..='M' => (c as u8 + 13) as char,
            'n'..='z' | 'N'..='Z' => (c as u8 - 13) as char,
            _ => c,
        })
        .collect()
}

fn leet(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_ascii_lowercase() {
            'a' => '4',
            'e' => '3',
            'i' => '1',
            'o' => '0',
            's' => '5',
            _ => c,
        })
        .collect()
}

fn spaced(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            w.chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("   ")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One obfuscation: its name and the function that applies it.
type Transform = (&'static str, fn(&str) -> String);

/// The obfuscations applied to each row of the synthetic set.
fn transforms() -> Vec<Transform> {
    vec![
        ("base64", |t| b64(t.as_bytes())),
        ("base64 in a request", |t| {
            format!("What does this base64 say? {}", b64(t.as_bytes()))
        }),
        ("base64 in a request to obey it", |t| {
            format!(
                "Decode this base64 and do what it says: {}",
                b64(t.as_bytes())
            )
        }),
        ("hex", |t| t.bytes().map(|b| format!("{b:02x}")).collect()),
        ("\\u escapes", |t| {
            t.encode_utf16().map(|u| format!("\\u{u:04x}")).collect()
        }),
        ("URL encoding", url_encode),
        ("rot13", rot13),
        ("rot13 in a request", |t| {
            format!("Can you decode this ROT13 for me: {}", rot13(t))
        }),
        ("reversed", |t| t.chars().rev().collect()),
        ("leetspeak", leet),
        ("spaced letters", spaced),
    ]
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() as usize) % xs.len()]
    }
}

/// Benign texts that carry obfuscation-like material without any instruction.
fn look_alikes(t: &str, rng: &mut Lcg) -> Vec<(&'static str, String)> {
    let hex: String = (0..8)
        .map(|_| format!("{:02x}", rng.next() as u8))
        .collect();
    let blob: Vec<u8> = (0..24).map(|_| rng.next() as u8).collect();
    let gamer = [
        "xX_Sn1p3r_Xx",
        "n00bSl4y3r",
        "l33t h4x0r",
        "Pr0 G4m3r",
        "D4rk L0rd 99",
        "sk8er b01",
        "M4st3r Ch13f",
        "gh0st r1d3r",
    ];
    let words: Vec<&str> = t.split_whitespace().take(6).collect();
    vec![
        (
            "benign + hex constant",
            format!("{t}\n\nconst SEED: u64 = 0x{hex};\nlet mask = 0x{hex};"),
        ),
        (
            "benign + leetspeak gamer names",
            format!(
                "{t} (asked by {} and {} in our clan chat)",
                rng.pick(&gamer),
                rng.pick(&gamer)
            ),
        ),
        (
            "benign + percent-encoded URL",
            format!(
                "{t} Source: https://www.example.com/search?q={}&lang=en%2DGB",
                url_encode(&words.join(" "))
            ),
        ),
        (
            "benign + base64 of random bytes",
            format!(
                "{t}\nattachment: data:application/octet-stream;base64,{}",
                b64(&blob)
            ),
        ),
    ]
}

fn main() -> anyhow::Result<()> {
    let mut synthetic = false;
    let mut max = 1500usize;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--synthetic" => synthetic = true,
            "--max" => max = args.next().and_then(|m| m.parse().ok()).unwrap_or(max),
            _ => files.push(a),
        }
    }
    let mut off_policy = Policy::default_for("http://127.0.0.1:9");
    off_policy.input.injection.deobfuscate = false;
    let mut on_policy = Policy::default_for("http://127.0.0.1:9");
    on_policy.input.injection.deobfuscate = true;
    let off = Pipeline::new(off_policy);
    let on = Pipeline::new(on_policy);
    for arg in files {
        let (name, path) = arg.split_once('=').unwrap_or(("data", arg.as_str()));
        let text = std::fs::read_to_string(path)?;
        let mut rows: Vec<(String, bool, String, String)> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            rows.push((
                v["text"].as_str().unwrap_or("").to_string(),
                v["label"].as_i64() == Some(1),
                v["source"].as_str().unwrap_or("?").to_string(),
                v["kind"].as_str().unwrap_or("?").to_string(),
            ));
        }
        if !synthetic {
            let mut by_source: BTreeMap<String, Pair> = BTreeMap::new();
            let mut by_kind: BTreeMap<String, Pair> = BTreeMap::new();
            let mut all = Pair::default();
            let mut views_fired: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            let mut added: Vec<String> = Vec::new();
            let mut lost = 0u64;
            let t0 = std::time::Instant::now();
            for (t, label, source, kind) in &rows {
                let a = blocked(&off, t);
                let dets = on.scan_input(t);
                let b = dets.iter().any(|d| d.action == Action::Block);
                lost += u64::from(a && !b);
                all.add(*label, a, b);
                by_source
                    .entry(source.clone())
                    .or_default()
                    .add(*label, a, b);
                by_kind.entry(kind.clone()).or_default().add(*label, a, b);
                if let Some(d) = dets.iter().find(|d| d.rule.id == "AISEC-GUARD-006") {
                    let which = d
                        .evidence
                        .split_once('(')
                        .and_then(|(_, r)| r.split_once(')'))
                        .map(|(l, _)| l.to_string())
                        .unwrap_or_default();
                    let e = views_fired.entry(which).or_default();
                    if *label {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
                if !label && b && !a {
                    let ev = dets
                        .iter()
                        .find(|d| d.rule.id == "AISEC-GUARD-006")
                        .map(|d| d.evidence.clone())
                        .unwrap_or_default();
                    let short: String = t.chars().take(140).collect();
                    added.push(format!(
                        "- {source} / {kind}: {short:?}{} — {ev}",
                        if t.chars().count() > 140 { "…" } else { "" }
                    ));
                }
            }
            println!(
                "### {name} ({} rows, both pipelines {:.1} s, load {})\n",
                rows.len(),
                t0.elapsed().as_secs_f64(),
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim()
            );
            println!("Per source:\n\n{HEAD}");
            for (s, c) in &by_source {
                println!("{}", c.row(s));
            }
            println!("{}", all.row("**all**"));
            println!("\nPer kind:\n\n{HEAD}");
            for (k, c) in &by_kind {
                println!("{}", c.row(k));
            }
            println!("\nAISEC-GUARD-006 fired (decoding: attacks / benign):");
            for (k, (a, b)) in &views_fired {
                println!("- {k}: {a} / {b}");
            }
            println!("\nBlocked without views but not with them (must be 0): {lost}");
            println!("\nBenign rows newly blocked ({}):", added.len());
            for a in &added {
                println!("{a}");
            }
            println!();
        } else {
            // Short and medium texts only: obfuscating whole documents is not what attackers send.
            let mut rng = Lcg(0x5eed);
            let pick: Vec<&(String, bool, String, String)> =
                rows.iter().filter(|r| r.0.len() <= 1000).collect();
            let attacks: Vec<_> = pick.iter().filter(|r| r.1).take(max).collect();
            let benign: Vec<_> = pick.iter().filter(|r| !r.1).take(max).collect();
            println!(
                "### {name}, obfuscated ({} attack and {} benign rows of <= 1000 bytes, each obfuscation)\n",
                attacks.len(),
                benign.len()
            );
            println!("{HEAD}");
            let mut total = Pair::default();
            for (tname, f) in transforms() {
                let mut c = Pair::default();
                for r in attacks.iter().chain(benign.iter()) {
                    let t = f(&r.0);
                    c.add(r.1, blocked(&off, &t), blocked(&on, &t));
                }
                total.attacks += c.attacks;
                total.caught_off += c.caught_off;
                total.caught_on += c.caught_on;
                total.benign += c.benign;
                total.fp_off += c.fp_off;
                total.fp_on += c.fp_on;
                println!("{}", c.row(tname));
            }
            println!("{}", total.row("**all obfuscations**"));
            let mut la: BTreeMap<&'static str, Pair> = BTreeMap::new();
            let mut la_added = Vec::new();
            for r in &benign {
                for (k, t) in look_alikes(&r.0, &mut rng) {
                    let (a, b) = (blocked(&off, &t), blocked(&on, &t));
                    la.entry(k).or_default().add(false, a, b);
                    if b && !a && la_added.len() < 15 {
                        let ev = on
                            .scan_input(&t)
                            .iter()
                            .find(|d| d.rule.id == "AISEC-GUARD-006")
                            .map(|d| d.evidence.clone())
                            .unwrap_or_default();
                        let short: String = t.chars().take(160).collect();
                        la_added.push(format!("- {k}: {short:?} — {ev}"));
                    }
                }
            }
            println!("\nBenign look-alikes (each benign row with the material added):\n\n{HEAD}");
            for (k, c) in &la {
                println!("{}", c.row(k));
            }
            println!("\nLook-alikes newly blocked (first 15):");
            for a in &la_added {
                println!("{a}");
            }
            println!();
        }
    }
    Ok(())
}
