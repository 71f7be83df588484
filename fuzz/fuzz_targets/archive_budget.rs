//! Fuzz target: the scanner's per-file decompression budget across nested
//! containers. Any input, scanned with small budgets, must end without a
//! panic, and a second scan with the same scanner must see a fresh budget
//! (the same findings), so nothing leaks between files.
#![no_main]

use aisec_scan::{ScanOptions, Scanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut o = ScanOptions::default();
    o.archive_limits.max_entry_bytes = 1 << 20;
    o.archive_limits.max_total_bytes = 4 << 20;
    o.archive_limits.max_total_entries = 64;
    o.archive_limits.max_entries = 256;
    let sc = Scanner::new(o);
    let a = sc.scan_bytes(data, "fuzz.zip");
    let b = sc.scan_bytes(data, "fuzz.zip");
    let ids = |r: &aisec_scan::FileResult| {
        r.findings
            .iter()
            .map(|f| (f.rule_id.clone(), f.evidence.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
});
