//! Fuzz the 7z reader: parse the (possibly packed) header with bounded
//! counts, decode every folder under a small output cap, slice the entries.
#![no_main]

use aisec_archive::{looks_like_7z, Limits, SevenZArchive};
use aisec_core::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_7z(data);
    let limits = Limits {
        max_entries: 256,
        ..Limits::default()
    };
    if let Ok(mut a) = SevenZArchive::parse_with_limits(data, &limits) {
        assert!(a.entries().len() <= 256);
        let entries = a.entries().to_vec();
        for k in 0..a.folders().len().min(8) {
            if let Ok(d) = a.read_folder(k, 1 << 20) {
                assert!(d.bytes.len() <= 1 << 20);
                for e in entries.iter().filter(|e| e.folder == Some(k)) {
                    let (b, _) = a.entry_bytes(e, &d.bytes);
                    assert!(b.len() as u64 <= e.size);
                }
            }
        }
        let _ = a.anomalies(&Location::path("fuzz.7z"));
    }
});
