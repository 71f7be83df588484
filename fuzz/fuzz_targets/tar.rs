//! Fuzz the tar reader: parse, list and build anomaly findings.
#![no_main]

use aisec_archive::{looks_like_tar, Limits, TarArchive};
use aisec_core::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_tar(data);
    let limits = Limits {
        max_entries: 256,
        ..Limits::default()
    };
    if let Ok(t) = TarArchive::parse_with_limits(data, &limits) {
        let mut total = 0usize;
        for e in t.entries() {
            assert!(e.data.len() as u64 <= e.size);
            total += e.data.len();
        }
        assert!(total <= data.len());
        let _ = t.anomalies(&Location::path("fuzz.tar"));
    }
});
