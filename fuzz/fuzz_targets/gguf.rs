//! Fuzz target: aisec-formats gguf parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::gguf::looks_like_gguf(data);
    let _ = aisec_formats::gguf::scan_gguf(data, &loc);
});
