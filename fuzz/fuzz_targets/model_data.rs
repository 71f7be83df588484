//! Fuzz the data and weight readers of aisec-model that take untrusted
//! bytes: `.npy`, MNIST-style IDX, CSV tables, safetensors weights, spec
//! architecture files (compiled into a model) and training checkpoints.
//! The first byte picks the reader; every input must give a value or an
//! error, never a panic or an unbounded allocation.
#![no_main]

use aisec_model::checkpoint::Checkpoint;
use aisec_model::data::csv::{parse_csv, LabelColumn};
use aisec_model::data::idx::parse_idx;
use aisec_model::data::npy::parse_npy;
use aisec_model::safetensors::parse_safetensors;
use aisec_model::spec::ArchSpec;
use aisec_model::OnnxModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 6 {
        0 => {
            if let Ok(a) = parse_npy(rest) {
                let _ = a.to_labels();
            }
        }
        1 => {
            let _ = parse_idx(rest);
        }
        2 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = parse_csv(text, &LabelColumn::Last);
            }
        }
        3 => {
            let _ = parse_safetensors(rest);
        }
        4 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(spec) = ArchSpec::parse(text) {
                    let _ = OnnxModel::from_spec(&spec, 0);
                }
            }
        }
        _ => {
            let _ = Checkpoint::from_bytes(rest);
        }
    }
});
