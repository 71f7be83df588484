//! Fine-tunes the top encoder layer (or the top `AISEC_GUARD_FT_LAYERS`
//! layers) of the guard's second stage, with its head, for
//! `scripts/guard/finetune_stage2.py`.
//!
//! The lower layers stay frozen, so their token states are computed once
//! per passage ([`BertEncoder::states_after`]; with every layer trained,
//! `AISEC_GUARD_FT_LAYERS=6` for MiniLM, the summed embeddings,
//! [`BertEncoder::input_states`], and the embeddings' LayerNorm is trained
//! too) and the top layer and the
//! head ([`aisec_model::bert::top_classifier`]) are trained on them with
//! Adam, one passage per forward/backward pass (passages differ in length)
//! and gradients summed over a batch ([`Trainer::step_summed`]). The head
//! starts from a logistic head fitted on the frozen encoder (the file named
//! by `AISEC_GUARD_FT_INIT_HEAD`, else the committed head), so training
//! starts where the frozen second stage is. Passages are the ones the guard
//! gives the encoder (the fast classifier's best window with context), made
//! by the same Rust code that serves them.
//!
//! Usage:
//!   finetune_stage2 train MODEL_DIR TRAIN.jsonl VAL.jsonl OUT_PREFIX EPOCHS LR [BATCH SEED]
//!     reads `{"text", "label"}` per line; writes `OUT_PREFIX.safetensors`
//!     (the top layer's weights and `head.weight` / `head.bias`, f32) and,
//!     after each epoch E, `OUT_PREFIX.eE.safetensors` (the same),
//!     `OUT_PREFIX.val.E.prob` (f32 class-1 probability per VAL row) and a
//!     line of validation loss on stderr
//!   finetune_stage2 score MODEL_DIR TOP.safetensors IN.jsonl OUT.prob MIN_FAST
//!     the whole encoder with the top layer's weights replaced, as the guard
//!     would run it; writes the f32 probability per row (NaN where the fast
//!     score is below MIN_FAST: such rows never reach the second stage) and
//!     `OUT.prob.fast` (f32 fast score per row)
//!   finetune_stage2 digest MODEL_DIR TOP.safetensors
//!     prints the digest of the encoder weights TOP does not replace
//!     (`stage2::base_digest`, the head's `encoder_sha256`)
//! `AISEC_GUARD_EMBED_SERVED=1` reads each text as the guard's models do
//! (`text::model_view`: normalised, look-alikes folded per word) instead of
//! raw, as the shipped encoder and heads were trained.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use aisec_guard::classifier::Classifier;
use aisec_guard::stage2::{passage, Head};
use aisec_guard::wordpiece::WordPiece;
use aisec_model::bert::{top_classifier, BertConfig, BertEncoder};
use aisec_model::train::{Optimizer, Trainer};
use aisec_model::{Loss, Tensor};

fn rows(path: &str) -> anyhow::Result<Vec<(String, usize)>> {
    let mut out = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let text = v["text"].as_str().unwrap_or("").to_string();
        let label = v["label"].as_u64().unwrap_or(0) as usize;
        out.push((text, label));
    }
    Ok(out)
}

struct Setup {
    cfg: BertConfig,
    ws: Vec<(String, Tensor)>,
    vocab: WordPiece,
    head: Head,
}

fn setup(dir: &Path) -> anyhow::Result<Setup> {
    let cfg = BertConfig::from_json(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let ws = aisec_model::safetensors::read_safetensors(dir.join("model.safetensors"))?;
    let vocab = WordPiece::from_vocab(&std::fs::read_to_string(dir.join("vocab.txt"))?)?;
    // The head training starts from (and whose passage settings it uses):
    // AISEC_GUARD_FT_INIT_HEAD, else the committed one.
    let head = match std::env::var("AISEC_GUARD_FT_INIT_HEAD") {
        Ok(p) => Head::from_json(&std::fs::read_to_string(p)?)?,
        Err(_) => Head::builtin()?,
    };
    Ok(Setup {
        cfg,
        ws,
        vocab,
        head,
    })
}

/// Token ids of each text's passage, as the guard builds them.
fn passages(s: &Setup, texts: &[(String, usize)]) -> Vec<(Vec<u32>, f32)> {
    let clf = Classifier::builtin();
    // AISEC_GUARD_EMBED_SERVED=1: the texts as the guard's models read them
    let served = std::env::var("AISEC_GUARD_EMBED_SERVED").is_ok_and(|v| v == "1");
    texts
        .iter()
        .map(|(t, _)| {
            let t = &*aisec_guard::text::model_view(t, served);
            let prepared = clf.prepare(t);
            let sc = clf.score_detail(t);
            let p = passage(clf, &prepared, &sc, s.head.context_words);
            (s.vocab.encode(p, s.head.max_tokens), sc.score)
        })
        .collect()
}

/// The input of the trained layers from `first` on for every passage, two
/// threads: the token states after layer `first - 1`, or the summed
/// embeddings when every layer is trained (`first` 0).
fn states(enc: &BertEncoder, ids: &[(Vec<u32>, f32)], first: usize) -> Vec<Tensor> {
    let h = enc.config().hidden_size;
    let t0 = Instant::now();
    let half = ids.len().div_ceil(2);
    let parts: Vec<Vec<Tensor>> = std::thread::scope(|sc| {
        let hs: Vec<_> = ids
            .chunks(half.max(1))
            .map(|chunk| {
                sc.spawn(move || {
                    chunk
                        .iter()
                        .map(|(p, _)| {
                            let s = match first {
                                0 => enc.input_states(p).unwrap(),
                                f => enc.states_after(p, f - 1).unwrap(),
                            };
                            Tensor::new(vec![p.len(), h], s).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!(
        "states of {} passages in {:.1} s",
        ids.len(),
        t0.elapsed().as_secs_f64()
    );
    parts.into_iter().flatten().collect()
}

/// The trained weights (the top layer and the head; not the constant `scale`).
fn save(top: &aisec_model::OnnxModel, path: &str) -> anyhow::Result<()> {
    let out: Vec<(String, Tensor)> = top
        .weight_names()
        .into_iter()
        .filter(|n| n != "scale")
        .map(|n| {
            let t = top.weight(&n).unwrap();
            (n, t)
        })
        .collect();
    aisec_model::safetensors::write_safetensors(path, &out)?;
    Ok(())
}

fn prob(z: &[f32]) -> f32 {
    1.0 / (1.0 + (z[0] - z[1]).exp())
}

fn train(a: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.len() == 6 || a.len() == 8,
        "usage: finetune_stage2 train MODEL_DIR TRAIN.jsonl VAL.jsonl OUT_PREFIX EPOCHS LR [BATCH SEED]"
    );
    let s = setup(Path::new(&a[0]))?;
    let (epochs, lr): (usize, f32) = (a[4].parse()?, a[5].parse()?);
    let (batch, seed): (usize, u64) = if a.len() == 8 {
        (a[6].parse()?, a[7].parse()?)
    } else {
        (16, 0)
    };
    let layers = s.cfg.num_hidden_layers;
    // AISEC_GUARD_FT_LAYERS: how many top layers are trained (1 by default).
    let top_layers: usize = std::env::var("AISEC_GUARD_FT_LAYERS")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1);
    anyhow::ensure!(
        top_layers >= 1 && top_layers <= layers,
        "AISEC_GUARD_FT_LAYERS must be 1 to {layers} (all of them)"
    );
    let first = layers - top_layers;
    let h = s.cfg.hidden_size;
    anyhow::ensure!(
        s.head.weights.len() == h,
        "the head does not fit the encoder"
    );
    let enc = BertEncoder::from_weights(s.cfg.clone(), &s.ws)?;
    let (train_rows, val_rows) = (rows(&a[1])?, rows(&a[2])?);
    let xs = states(&enc, &passages(&s, &train_rows), first);
    let vs = states(&enc, &passages(&s, &val_rows), first);
    // The head starts at the shipped logistic head: logit 1 minus logit 0
    // is its score.
    let mut ws: Vec<(String, Tensor)> =
        s.ws.iter()
            .filter(|(n, _)| {
                (first..layers).any(|l| n.contains(&format!("layer.{l}.")))
                    || (first == 0 && n.contains("embeddings.LayerNorm."))
            })
            .cloned()
            .collect();
    let mut hw = vec![0.0; h];
    hw.extend_from_slice(&s.head.weights);
    ws.push(("head.weight".into(), Tensor::new(vec![2, h], hw)?));
    ws.push((
        "head.bias".into(),
        Tensor::new(vec![2], vec![0.0, s.head.bias])?,
    ));
    let mut top = top_classifier(&s.cfg, &ws, first, 2)?;
    let mut tr = Trainer::new(Optimizer::adam(lr));
    tr.freeze(["scale".to_string()]);
    let val_pass = |top: &aisec_model::OnnxModel, tag: &str| -> anyhow::Result<()> {
        let mut f = BufWriter::new(std::fs::File::create(format!("{}.val.{tag}.prob", a[3]))?);
        let mut loss = 0.0f64;
        for (x, (_, y)) in vs.iter().zip(&val_rows) {
            let p = prob(&top.forward(x)?.data);
            f.write_all(&p.to_le_bytes())?;
            let q = if *y == 1 { p } else { 1.0 - p };
            loss -= f64::from(q.max(1e-7)).ln();
        }
        f.flush()?;
        eprintln!(
            "epoch {tag}: validation loss {:.4} over {} rows",
            loss / vs.len().max(1) as f64,
            vs.len()
        );
        Ok(())
    };
    val_pass(&top, "0")?;
    let mut order: Vec<usize> = (0..xs.len()).collect();
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let t0 = Instant::now();
    for epoch in 1..=epochs {
        // Fisher-Yates with a xorshift generator: the order is fixed by SEED.
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let mut run = 0.0f32;
        for (b, chunk) in order.chunks(batch.max(1)).enumerate() {
            let mut sum: Option<Vec<(String, Tensor)>> = None;
            for &i in chunk {
                let loss = Loss::CrossEntropy {
                    labels: vec![train_rows[i].1],
                };
                let (v, g) = top.weight_grads(&xs[i], &loss)?;
                run = 0.99 * run + 0.01 * v[0];
                match &mut sum {
                    None => sum = Some(g),
                    Some(acc) => {
                        for ((_, a), (_, b)) in acc.iter_mut().zip(&g) {
                            a.data.iter_mut().zip(&b.data).for_each(|(a, b)| *a += b);
                        }
                    }
                }
            }
            if let Some(g) = sum {
                tr.step_summed(&mut top, chunk.len(), g)?;
            }
            if (b + 1) % 100 == 0 {
                eprintln!(
                    "epoch {epoch}, batch {}: running loss {run:.4}, {:.0} s",
                    b + 1,
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        val_pass(&top, &epoch.to_string())?;
        save(&top, &format!("{}.e{epoch}.safetensors", a[3]))?;
    }
    save(&top, &format!("{}.safetensors", a[3]))?;
    println!(
        "trained {} rows x {epochs} epochs in {:.0} s; wrote {}.safetensors",
        xs.len(),
        t0.elapsed().as_secs_f64(),
        a[3]
    );
    Ok(())
}

fn score(a: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.len() == 5,
        "usage: finetune_stage2 score MODEL_DIR TOP.safetensors IN.jsonl OUT.prob MIN_FAST"
    );
    let s = setup(Path::new(&a[0]))?;
    let top = aisec_model::safetensors::read_safetensors(&a[1])?;
    let min_fast: f32 = a[4].parse()?;
    let h = s.cfg.hidden_size;
    let mut ws = s.ws.clone();
    let (mut head, mut bias) = (None, None);
    for (n, t) in &top {
        match n.as_str() {
            "head.weight" => head = Some(t.clone()),
            "head.bias" => bias = Some(t.clone()),
            _ => {}
        }
    }
    aisec_guard::stage2::overlay(&mut ws, top)?;
    let (hw, hb) = (head.unwrap().data, bias.unwrap().data);
    let w: Vec<f32> = (0..h).map(|j| hw[h + j] - hw[j]).collect();
    let b = hb[1] - hb[0];
    let enc = BertEncoder::from_weights(s.cfg.clone(), &ws)?;
    let texts = rows(&a[2])?;
    let ps = passages(&s, &texts);
    let mut out = BufWriter::new(std::fs::File::create(&a[3])?);
    let mut fast = BufWriter::new(std::fs::File::create(format!("{}.fast", a[3]))?);
    let t0 = Instant::now();
    let mut n = 0;
    for (ids, f) in &ps {
        let p = if *f >= min_fast {
            n += 1;
            let e = enc.embed(ids)?;
            let z = b + w.iter().zip(&e).map(|(a, b)| a * b).sum::<f32>();
            1.0 / (1.0 + (-z).exp())
        } else {
            f32::NAN
        };
        out.write_all(&p.to_le_bytes())?;
        fast.write_all(&f.to_le_bytes())?;
    }
    out.flush()?;
    fast.flush()?;
    println!(
        "{} rows, {n} scored by the encoder in {:.0} s",
        ps.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.first().map(String::as_str) {
        Some("train") => train(&a[1..]),
        Some("score") => score(&a[1..]),
        Some("digest") => {
            anyhow::ensure!(
                a.len() == 3,
                "usage: finetune_stage2 digest MODEL_DIR TOP.safetensors"
            );
            let ws = aisec_model::safetensors::read_safetensors(
                Path::new(&a[1]).join("model.safetensors"),
            )?;
            let top = aisec_model::safetensors::read_safetensors(&a[2])?;
            println!("{}", aisec_guard::stage2::base_digest(&ws, &top));
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: finetune_stage2 train ... | score ... (see the file's doc comment)"
        ),
    }
}
