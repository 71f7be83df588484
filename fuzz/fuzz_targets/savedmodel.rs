//! Fuzz target: aisec-formats savedmodel parser must never panic, hang or over-allocate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loc = aisec_core::Location::path("fuzz");
    let _ = aisec_formats::savedmodel::looks_like_saved_model(data);
    let _ = aisec_formats::savedmodel::scan_saved_model(data, &loc);
    let _ = aisec_formats::savedmodel::scan_graph_def(data, &loc);
    let _ = aisec_formats::savedmodel::scan_keras_metadata(data, &loc);
    let _ = aisec_formats::savedmodel::scan_saved_model_text(data, &loc);
});
