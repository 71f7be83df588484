//! Fuzz target: the protobuf metadata fetch plans (`onnx::plan_metadata`
//! and `savedmodel::plan_metadata`, what aisec-remote's ONNX and
//! TensorFlow plans follow) must never panic, must settle (every round
//! lacks only bytes no earlier round fetched), and once a walk lacks
//! nothing, the sniff and the scan of what it fetched (zeros elsewhere)
//! must equal those of the whole input. The remote sniff's ONNX check
//! (`onnx::looks_like_onnx_held`) over the same pieces must, when it
//! decides, give the whole input's answer, and otherwise lack a byte not
//! held.
#![no_main]

use aisec_formats::h5::merge_ranges;
use aisec_formats::pb::{Misses, Source};
use aisec_formats::{onnx, savedmodel};
use libfuzzer_sys::fuzz_target;

/// Rounds a remote plan walks (at least) before it reads the whole object.
const ROUNDS: usize = 64;

fuzz_target!(|input: &[u8]| {
    let Some((&sel, d)) = input.split_first() else {
        return;
    };
    // First read and key block size of the simulated remote reader, and
    // which walk (ONNX or TensorFlow `.pb`).
    let head = [0u64, 4, 64, 16 << 10][usize::from(sel & 3)];
    let block = [1u64, 16, 512, 16 << 10][usize::from((sel >> 2) & 3)];
    let tf = sel & 0x10 != 0;
    let size = d.len() as u64;
    let mut held = merge_ranges(vec![(0, head.min(size))]);
    let mut settled = false;
    for _ in 0..ROUNDS {
        let pieces: Vec<(u64, &[u8])> = held
            .iter()
            .map(|&(s, e)| (s, &d[s as usize..e as usize]))
            .collect();
        let held_verdict = onnx::looks_like_onnx_held(size, pieces.clone());
        match held_verdict {
            onnx::OnnxSniff::Onnx => assert!(onnx::looks_like_onnx(d)),
            onnx::OnnxSniff::NotOnnx => assert!(!onnx::looks_like_onnx(d)),
            onnx::OnnxSniff::Lacks(at) => {
                assert!(at < size && !held.iter().any(|h| h.0 <= at && at < h.1));
            }
        }
        let src = Source::pieces(size, pieces);
        let missing: Misses = if tf {
            let p = savedmodel::plan_metadata(&src);
            if p.missing.is_empty() {
                assert_eq!(p.saved_model, savedmodel::looks_like_saved_model(d));
            }
            p.missing
        } else {
            let p = onnx::plan_metadata(&src);
            if p.missing.is_empty() {
                assert_eq!(p.looks_like_onnx, onnx::looks_like_onnx(d));
            }
            p.missing
        };
        if missing.is_empty() {
            settled = true;
            break;
        }
        let want: Vec<(u64, u64)> = missing
            .keys
            .iter()
            .map(|&(s, e)| (s, e.min(s + block)))
            .chain(missing.bytes.iter().copied())
            .collect();
        for &(s, e) in &want {
            assert!(e <= size && s < e);
            assert!(!held.iter().any(|h| h.0 <= s && e <= h.1), "no progress");
        }
        held.extend(want);
        held = merge_ranges(held);
    }
    if !settled {
        // The remote plan reads such an object whole.
        return;
    }
    let mut img = vec![0u8; d.len()];
    for &(s, e) in &held {
        img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
    }
    let loc = aisec_core::Location::path("fuzz");
    if tf {
        let saved = savedmodel::looks_like_saved_model(d);
        assert_eq!(savedmodel::looks_like_saved_model(&img), saved);
        let scan = if saved {
            savedmodel::scan_saved_model
        } else {
            savedmodel::scan_graph_def
        };
        assert_eq!(scan(&img, &loc), scan(d, &loc));
    } else {
        assert_eq!(onnx::looks_like_onnx(&img), onnx::looks_like_onnx(d));
        assert_eq!(onnx::scan_onnx(&img, &loc), onnx::scan_onnx(d, &loc));
    }
});
