//! Fuzz target: aisec-formats keras_config parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::keras::scan_keras_config(data, &loc);
});
