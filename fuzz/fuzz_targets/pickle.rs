//! Fuzzes the symbolic pickle machine over arbitrary bytes (plain, legacy
//! torch and joblib stream handling are all reached from `scan_pickle`, and
//! so is the second, file-object reading of streams whose opcodes straddle
//! a FRAME's end), plus both per-opcode traces of the differential test.
#![no_main]
use aisec_core::Location;
use aisec_pickle::machine::trace_pickle;
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
    for file_frames in [false, true] {
        let t = trace_pickle(data, &limits, file_frames);
        match t.end {
            Ok(end) => assert!(end <= data.len()),
            Err((at, _)) => assert!(at <= data.len()),
        }
        assert!(t.steps.iter().all(|s| s.pos < data.len()));
    }
});
