//! Fuzz the tolerant zip reader: parse, list, read every entry with small
//! limits, and build anomaly findings. Must never panic, hang or allocate
//! past the limits.
#![no_main]

use aisec_archive::{looks_like_zip, Limits, ZipArchive};
use aisec_core::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_zip(data);
    let limits = Limits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        max_entries: 256,
        max_ratio: 100,
        ..Limits::default()
    };
    if let Ok(z) = ZipArchive::parse_with_limits(data, &limits) {
        for e in z.entries() {
            let _ = z.read_bounded(e, &limits);
            let _ = z.read(e, &limits);
        }
        let _ = z.anomalies(&Location::path("fuzz.zip"));
    }
});
