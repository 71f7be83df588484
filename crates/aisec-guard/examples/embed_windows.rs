//! Indirect-head embeddings for `scripts/guard/train_stage2.py`: for each
//! text, the passages of the fast classifier's `K` best windows (as
//! `SecondStage::indirect_score` reads them), embedded by the same Rust code
//! that serves them.
//!
//! Usage: embed_windows MODEL_DIR IN.jsonl OUT_PREFIX CONTEXT_WORDS MAX_TOKENS K
//!
//! Reads `{"text": ...}` per line; writes `OUT_PREFIX.emb` (f32 little-endian,
//! K rows of the encoder's width per text, zeros where a text has fewer
//! windows), `OUT_PREFIX.wfast` (K f32 per text: the window's fast score, -1
//! where missing) and `OUT_PREFIX.ms` (f64 milliseconds of encoder time per text).
//! `AISEC_GUARD_EMBED_SERVED=1` reads each text as the guard's models do
//! (`text::model_view`: normalised, look-alikes folded per word) instead of
//! raw, as the shipped encoder and heads were trained.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use aisec_guard::classifier::Classifier;
use aisec_guard::stage2::{passage_at, top_windows};
use aisec_guard::wordpiece::WordPiece;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() == 6,
        "usage: embed_windows MODEL_DIR IN.jsonl OUT_PREFIX CONTEXT_WORDS MAX_TOKENS K"
    );
    let dir = std::path::Path::new(&a[0]);
    let (context, max_tokens, k): (usize, usize, usize) =
        (a[3].parse()?, a[4].parse()?, a[5].parse()?);
    // AISEC_GUARD_STAGE2_TOP: fine-tuned weights over the encoder's
    // (scripts/guard/finetune_stage2.py), loaded as the guard loads them.
    let top = std::env::var_os("AISEC_GUARD_STAGE2_TOP").map(std::path::PathBuf::from);
    let enc = aisec_guard::stage2::load_encoder(dir, top.as_deref())?;
    let width = enc.config().hidden_size;
    let vocab = WordPiece::from_vocab(&std::fs::read_to_string(dir.join("vocab.txt"))?)?;
    let clf = Classifier::builtin();
    let input = std::io::BufReader::new(std::fs::File::open(&a[1])?);
    let open = |ext: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::new(std::fs::File::create(format!(
            "{}.{ext}",
            a[2]
        ))?))
    };
    let served = std::env::var("AISEC_GUARD_EMBED_SERVED").is_ok_and(|v| v == "1");
    let (mut emb, mut fast, mut ms) = (open("emb")?, open("wfast")?, open("ms")?);
    let mut n = 0usize;
    let t0 = Instant::now();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        // AISEC_GUARD_EMBED_SERVED=1: the text as the guard's models read it
        let text = &*aisec_guard::text::model_view(v["text"].as_str().unwrap_or(""), served);
        let prepared = clf.prepare(text);
        let scores = clf.window_scores(text);
        let top = top_windows(&scores, k);
        let t = Instant::now();
        for j in 0..k {
            match top.get(j) {
                Some(&w) => {
                    let p = passage_at(clf, &prepared, w, context);
                    let e = enc.embed(&vocab.encode(p, max_tokens))?;
                    for x in e {
                        emb.write_all(&x.to_le_bytes())?;
                    }
                    fast.write_all(&scores[w].to_le_bytes())?;
                }
                None => {
                    for _ in 0..width {
                        emb.write_all(&0f32.to_le_bytes())?;
                    }
                    fast.write_all(&(-1f32).to_le_bytes())?;
                }
            }
        }
        ms.write_all(&(t.elapsed().as_secs_f64() * 1e3).to_le_bytes())?;
        n += 1;
        if n.is_multiple_of(200) {
            eprintln!("{n} texts, {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
    for mut f in [emb, fast, ms] {
        f.flush()?;
    }
    println!("{n} texts embedded in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
