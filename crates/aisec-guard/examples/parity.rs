//! Largest |Rust - Python| classifier score over labelled JSONL files with a
//! `py_score` field (as written by `scripts/guard/train_classifier.py`): the
//! Rust features must be the ones the weights were trained on. It also
//! checks that `score_detail`, which skips the hidden layer of windows that
//! cannot win, gives exactly the best of all window scores (a mismatch is an
//! error). Beside it, the training/serving gap: the fast score of the text
//! as the guard serves it (`text::normalise`, `Normalised::model_text`)
//! against the raw text's, which the training tools read (NFKC, invisible
//! characters and per-word look-alike folding are what differ).
//!
//! Usage: cargo run --release -p aisec-guard --example parity -- FILE...
//! (`AISEC_GUARD_MODEL=MODEL_FILE` checks another classifier file than the
//! built-in one, such as a candidate's, against its own scored files;
//! `AISEC_GUARD_SHOW_GAPS=1` prints the texts whose served score moved by
//! more than 0.1).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.
fn main() -> anyhow::Result<()> {
    use aisec_guard::classifier::Classifier;
    let own;
    let c = match std::env::var("AISEC_GUARD_MODEL") {
        Ok(file) => {
            own = Classifier::from_bytes(&std::fs::read(&file)?)?;
            &own
        }
        Err(_) => Classifier::builtin(),
    };
    let show_gaps = std::env::var("AISEC_GUARD_SHOW_GAPS").is_ok_and(|v| v == "1");
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)?;
        let (mut n, mut worst, mut worst_text) = (0usize, 0f64, String::new());
        let (mut served_moved, mut served_worst) = (0usize, 0f64);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let (Some(t), Some(py)) = (v["text"].as_str(), v["py_score"].as_f64()) else {
                continue;
            };
            let all = c.window_scores(t);
            let d = c.score_detail(t);
            anyhow::ensure!(
                aisec_guard::classifier::Scored::from_window_scores(&all) == d,
                "score_detail differs from the best of every window on {:?}",
                t.chars().take(80).collect::<String>()
            );
            let served = c.score(aisec_guard::text::normalise(t).model_text());
            let gap = (served - d.score).abs() as f64;
            served_moved += usize::from(gap > 0.01);
            served_worst = served_worst.max(gap);
            if show_gaps && gap > 0.1 {
                // AISEC_GUARD_SHOW_GAPS=1: the texts the served view moves most, on stderr
                eprintln!(
                    "{:.3} -> {served:.3}\t{:?}",
                    d.score,
                    t.chars().take(120).collect::<String>()
                );
            }
            let d = (d.score as f64 - py).abs();
            if d > worst {
                worst = d;
                worst_text = t.chars().take(80).collect();
            }
            n += 1;
        }
        println!("{path}: {n} texts, largest |Rust - Python| score difference {worst:.2e} ({worst_text:?})");
        println!(
            "{path}: served text (normalised, the models' view) against the raw text: {served_moved} of {n} \
             fast scores moved by more than 0.01, the largest by {served_worst:.3}"
        );
    }
    Ok(())
}
