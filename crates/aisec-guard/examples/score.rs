//! Prints the guard's input detections for each argument.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.
fn main() {
    let p = aisec_guard::Pipeline::new(aisec_guard::Policy::default_for("http://127.0.0.1:9"));
    for a in std::env::args().skip(1) {
        let n = aisec_guard::text::normalise(&a);
        println!(
            "{:.3} {:?} {:?}",
            p.classifier_score(&n.text),
            a,
            p.scan_input(&a)
                .iter()
                .map(|d| (d.rule.id, d.evidence.clone()))
                .collect::<Vec<_>>()
        );
    }
}
