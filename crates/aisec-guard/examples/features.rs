//! Feature export for `scripts/guard/train_classifier.py`: the training script
//! gets the hashed window features from the same Rust code that scores them in
//! the guard, so training and inference cannot drift apart.
//!
//! Usage: features DIM MAX_CHARS WINDOW STRIDE IN.jsonl OUT_PREFIX
//!
//! Reads `{"text": ...}` per line and writes little-endian arrays:
//! `OUT_PREFIX.rows` (u64, rows + 1: first window of each row),
//! `OUT_PREFIX.wins` (u64, windows + 1: first non-zero of each window),
//! `OUT_PREFIX.idx` (u32 feature index) and `OUT_PREFIX.val` (f64 value);
//! and the same for each window's word, bigram and cue features alone (the
//! input of an `AGLR0007` model's hidden layer): `OUT_PREFIX.wwins`,
//! `OUT_PREFIX.widx`, `OUT_PREFIX.wval`.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::io::{BufRead, BufWriter, Write};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() == 6,
        "usage: features DIM MAX_CHARS WINDOW STRIDE IN.jsonl OUT_PREFIX"
    );
    let c = aisec_guard::classifier::Classifier::featurizer(
        a[0].parse()?,
        a[1].parse()?,
        a[2].parse()?,
        a[3].parse()?,
    )?;
    let input = std::io::BufReader::new(std::fs::File::open(&a[4])?);
    let open = |ext: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::new(std::fs::File::create(format!(
            "{}.{ext}",
            a[5]
        ))?))
    };
    let (mut rows, mut wins, mut idx, mut val) =
        (open("rows")?, open("wins")?, open("idx")?, open("val")?);
    let (mut wwins, mut widx, mut wval) = (open("wwins")?, open("widx")?, open("wval")?);
    let (mut nwin, mut nnz, mut wnnz) = (0u64, 0u64, 0u64);
    rows.write_all(&0u64.to_le_bytes())?;
    wins.write_all(&0u64.to_le_bytes())?;
    wwins.write_all(&0u64.to_le_bytes())?;
    let mut n = 0usize;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let text = v["text"].as_str().unwrap_or("");
        let prepared = c.prepare(text);
        for w in c.windows(&prepared) {
            for (k, x) in c.window_features(w) {
                idx.write_all(&k.to_le_bytes())?;
                val.write_all(&x.to_le_bytes())?;
                nnz += 1;
            }
            wins.write_all(&nnz.to_le_bytes())?;
            for (k, x) in c.window_word_features(w) {
                widx.write_all(&k.to_le_bytes())?;
                wval.write_all(&x.to_le_bytes())?;
                wnnz += 1;
            }
            wwins.write_all(&wnnz.to_le_bytes())?;
            nwin += 1;
        }
        rows.write_all(&nwin.to_le_bytes())?;
        n += 1;
    }
    for mut f in [rows, wins, idx, val, wwins, widx, wval] {
        f.flush()?;
    }
    println!("{n} rows, {nwin} windows, {nnz} features");
    Ok(())
}
