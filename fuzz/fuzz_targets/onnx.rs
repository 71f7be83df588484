//! Fuzz target: aisec-formats onnx parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::onnx::looks_like_onnx(data);
    let _ = aisec_formats::onnx::truncated_onnx(data);
    let _ = aisec_formats::onnx::scan_onnx(data, &loc);
});
