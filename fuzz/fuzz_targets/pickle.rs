//! Fuzzes the symbolic pickle machine over arbitrary bytes (plain, legacy
//! torch and joblib stream handling are all reached from `scan_pickle`).
#![no_main]
use aisec_core::Location;
use aisec_pickle::{looks_like_pickle, scan_pickle, Limits, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::default();
    let limits = Limits {
        max_ops: 200_000,
        ..Limits::default()
    };
    let _ = looks_like_pickle(data);
    let r = scan_pickle(data, &Location::path("fuzz.pkl"), &policy, &limits);
    assert!(r.consumed <= data.len());
    assert!(r.findings.len() <= limits.max_findings);
});
