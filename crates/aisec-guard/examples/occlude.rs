//! Which words make the fast classifier flag benign text: for each benign JSONL
//! row (`{"text", "label": 0, ...}` per line; rows labelled 1 are skipped) whose score reaches the model's
//! threshold, the highest-scoring word window is scored again with each of its
//! words left out (occlusion, as in Zeiler and Fergus 2014); a word's weight is
//! the score it takes away. Prints the words that take away the most, summed
//! over all flagged rows, and how many rows each one mattered in: the
//! vocabulary behind a class of false positives, which says what benign data
//! the corpus lacks.
//!
//! Usage: cargo run --release -p aisec-guard --example occlude -- FILE.jsonl [SOURCE]
//! (SOURCE: only rows whose `source` field equals it)

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::collections::HashMap;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: occlude FILE.jsonl [SOURCE]"))?;
    let only = args.next();
    let c = aisec_guard::classifier::Classifier::builtin();
    let mut total: HashMap<String, (f64, usize)> = HashMap::new();
    let (mut flagged, mut read) = (0usize, 0usize);
    for line in std::fs::read_to_string(&path)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        if row["label"].as_i64() == Some(1) {
            continue;
        }
        if let Some(s) = &only {
            if row["source"].as_str() != Some(s.as_str()) {
                continue;
            }
        }
        let Some(text) = row["text"].as_str() else {
            continue;
        };
        read += 1;
        let prepared = c.prepare(text);
        let windows = c.windows(&prepared);
        let scores = c.window_scores(text);
        let Some((best, &s)) = scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else {
            continue;
        };
        if s < c.threshold() {
            continue;
        }
        flagged += 1;
        let words: Vec<&str> = windows[best].split(' ').collect();
        let mut seen = std::collections::HashSet::new();
        for i in 0..words.len() {
            let rest: Vec<&str> = words
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, w)| *w)
                .collect();
            let drop = f64::from(s - c.score(&rest.join(" ")));
            let w = words[i].trim_matches(|ch: char| !ch.is_alphanumeric());
            if w.is_empty() || !seen.insert(w.to_string()) {
                continue;
            }
            let e = total.entry(w.to_string()).or_insert((0.0, 0));
            e.0 += drop.max(0.0);
            e.1 += usize::from(drop > 0.0);
        }
    }
    let mut v: Vec<_> = total.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    println!(
        "{flagged} of {read} rows at or above the threshold {:.2}",
        c.threshold()
    );
    println!("| word | score taken away, summed | rows where it took some away |");
    println!("|---|---|---|");
    for (w, (sum, n)) in v.iter().take(40) {
        println!("| {w} | {sum:.2} | {n} |");
    }
    Ok(())
}
