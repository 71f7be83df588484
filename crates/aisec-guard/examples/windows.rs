//! Prints the fast classifier's score of every word window of each argument
//! (the text as the classifier prepares it; the text's score is the highest
//! window's): which part of a document made it cross the threshold.
//!
//! `cargo run --release -p aisec-guard --example windows -- "some text" ...`

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.
fn main() {
    let c = aisec_guard::classifier::Classifier::builtin();
    println!(
        "threshold {:.2}, short-text threshold {:.2}",
        c.threshold(),
        c.short_threshold()
    );
    for a in std::env::args().skip(1) {
        let prepared = c.prepare(&a);
        for (window, score) in c.windows(&prepared).iter().zip(c.window_scores(&a)) {
            println!("{score:.3} {window}");
        }
        println!("--");
    }
}
