//! Fuzz target: aisec-formats safetensors parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::safetensors::looks_like_safetensors(data);
    let _ = aisec_formats::safetensors::scan_safetensors(data, &loc);
});
