//! Second-stage embeddings for `scripts/guard/train_stage2.py`: the passage
//! the guard would give the encoder (the fast classifier's best window with
//! context), embedded by the same Rust code that serves it.
//!
//! Usage: embed MODEL_DIR IN.jsonl OUT_PREFIX [CONTEXT_WORDS MAX_TOKENS]
//!
//! Reads `{"text": ...}` per line; writes `OUT_PREFIX.emb` (f32 little-endian,
//! one row of the encoder's width per text), `OUT_PREFIX.fast` (f32 fast
//! score per text) and `OUT_PREFIX.ms` (f64 milliseconds per encoder pass).
//! `AISEC_GUARD_EMBED_SERVED=1` reads each text as the guard's models do
//! (`text::model_view`: normalised, look-alikes folded per word) instead of
//! raw, as the shipped encoder and heads were trained.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

use aisec_guard::classifier::Classifier;
use aisec_guard::stage2::{passage, Head};
use aisec_guard::wordpiece::WordPiece;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() == 3 || a.len() == 5,
        "usage: embed MODEL_DIR IN.jsonl OUT_PREFIX [CONTEXT_WORDS MAX_TOKENS]"
    );
    let dir = std::path::Path::new(&a[0]);
    let (context, max_tokens) = if a.len() == 5 {
        (a[3].parse()?, a[4].parse()?)
    } else {
        let h = Head::builtin()?;
        (h.context_words, h.max_tokens)
    };
    // AISEC_GUARD_STAGE2_TOP: fine-tuned weights over the encoder's
    // (scripts/guard/finetune_stage2.py), loaded as the guard loads them.
    let top = std::env::var_os("AISEC_GUARD_STAGE2_TOP").map(std::path::PathBuf::from);
    let enc = aisec_guard::stage2::load_encoder(dir, top.as_deref())?;
    let vocab = WordPiece::from_vocab(&std::fs::read_to_string(dir.join("vocab.txt"))?)?;
    let clf = Classifier::builtin();
    let served = std::env::var("AISEC_GUARD_EMBED_SERVED").is_ok_and(|v| v == "1");
    let input = std::io::BufReader::new(std::fs::File::open(&a[1])?);
    let open = |ext: &str| -> anyhow::Result<BufWriter<std::fs::File>> {
        Ok(BufWriter::new(std::fs::File::create(format!(
            "{}.{ext}",
            a[2]
        ))?))
    };
    let (mut emb, mut fast, mut ms) = (open("emb")?, open("fast")?, open("ms")?);
    let mut n = 0usize;
    let t0 = Instant::now();
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        // AISEC_GUARD_EMBED_SERVED=1: the text as the guard's models read it
        // (scripts/guard/route_head.py), not the raw text the shipped encoder
        // and heads were trained on
        let text = &*aisec_guard::text::model_view(v["text"].as_str().unwrap_or(""), served);
        let prepared = clf.prepare(text);
        let s = clf.score_detail(text);
        let p = passage(clf, &prepared, &s, context);
        let t = Instant::now();
        let ids = vocab.encode(p, max_tokens);
        let e = enc.embed(&ids)?;
        ms.write_all(&(t.elapsed().as_secs_f64() * 1e3).to_le_bytes())?;
        for x in e {
            emb.write_all(&x.to_le_bytes())?;
        }
        fast.write_all(&s.score.to_le_bytes())?;
        n += 1;
        if n.is_multiple_of(500) {
            eprintln!("{n} texts, {:.1} s", t0.elapsed().as_secs_f64());
        }
    }
    for mut f in [emb, fast, ms] {
        f.flush()?;
    }
    println!("{n} texts embedded in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}
