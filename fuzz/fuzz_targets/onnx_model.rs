//! Fuzz aisec-model's ONNX loader and executor: arbitrary bytes must give a
//! model or an error, never a panic. Loading runs one forward pass (batch 1)
//! to learn the number of classes, so the executor is exercised too.
#![no_main]

use aisec_model::{Classifier, OnnxModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = OnnxModel::from_bytes(data.to_vec()) {
        let _ = m.num_classes();
        let _ = m.to_onnx_bytes();
    }
});
