//! Fuzz target: aisec-formats h5 parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::h5::looks_like_h5(data);
    let _ = aisec_formats::h5::scan_h5(data, &loc);
});
