//! Every rule the scanner can report names the published technique or CVE
//! it covers in crates/aisec-pickle/BYPASSES.md (issue 20).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

#[test]
fn every_scanner_rule_has_a_row_in_the_bypasses_table() {
    let md = include_str!("../../aisec-pickle/BYPASSES.md");
    let section = md
        .split("## Rules across formats")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("BYPASSES.md has a 'Rules across formats' section");
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| AISEC-"))
        .map(|l| l.split(" | ").map(str::trim).collect())
        .collect();
    let mut missing = Vec::new();
    for r in aisec_scan::all_rules() {
        match rows.iter().find(|c| c[0].trim_start_matches("| ") == r.id) {
            Some(c) => assert!(
                c.len() >= 3 && c[1].len() > 20,
                "{}: the row must name a technique or CVE",
                r.id
            ),
            None => missing.push(r.id),
        }
    }
    assert!(missing.is_empty(), "rules without a row: {missing:?}");
}
