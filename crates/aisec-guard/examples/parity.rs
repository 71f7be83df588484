//! Largest |Rust - Python| classifier score over labelled JSONL files with a
//! `py_score` field (as written by `scripts/guard/train_classifier.py`): the
//! Rust features must be the ones the weights were trained on. It also
//! checks that `score_detail`, which skips the hidden layer of windows that
//! cannot win, gives exactly the best of all window scores (a mismatch is an
//! error).
//!
//! Usage: cargo run --release -p aisec-guard --example parity -- FILE...
//! (`AISEC_GUARD_MODEL=MODEL_FILE` checks another classifier file than the
//! built-in one, such as a candidate's, against its own scored files).

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
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)?;
        let (mut n, mut worst, mut worst_text) = (0usize, 0f64, String::new());
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
            let d = (d.score as f64 - py).abs();
            if d > worst {
                worst = d;
                worst_text = t.chars().take(80).collect();
            }
            n += 1;
        }
        println!("{path}: {n} texts, largest |Rust - Python| score difference {worst:.2e} ({worst_text:?})");
    }
    Ok(())
}
