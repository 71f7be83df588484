//! Fuzz target: the HDF5 metadata fetch plan (`h5::plan_metadata`, what
//! aisec-remote follows) must never panic, must settle (every round lacks
//! only bytes no earlier round fetched), and the scan of what it fetched
//! (zeros elsewhere) must equal the scan of the whole input.
#![no_main]

use aisec_formats::h5::{merge_ranges, plan_metadata, scan_h5, Bytes};
use libfuzzer_sys::fuzz_target;

/// Rounds a remote plan walks before it reads the whole object.
const ROUNDS: usize = 64;

fuzz_target!(|input: &[u8]| {
    let Some((&sel, d)) = input.split_first() else {
        return;
    };
    // First read and block size of the simulated remote reader.
    let head = [0u64, 64, 512, 16 << 10][usize::from(sel & 3)];
    let block = [1u64, 8, 512, 4096][usize::from((sel >> 2) & 3)];
    let size = d.len() as u64;
    let mut held = merge_ranges(vec![(0, head.min(size))]);
    let mut settled = false;
    for _ in 0..ROUNDS {
        let pieces = held
            .iter()
            .map(|&(s, e)| (s, &d[s as usize..e as usize]))
            .collect();
        let plan = plan_metadata(&Bytes::pieces(size, pieces));
        if plan.missing.is_empty() {
            let mut at = 0;
            for &(s, e) in &plan.unread {
                assert!(s >= at && e > s && e <= size);
                held.push((at, s));
                at = e;
            }
            held.push((at, size));
            settled = true;
            break;
        }
        for &(s, e) in &plan.missing {
            assert!(e <= size && s < e);
            assert!(!held.iter().any(|h| h.0 <= s && e <= h.1), "no progress");
        }
        for &(s, e) in &plan.missing {
            held.push((
                s - s % block,
                e.div_ceil(block).saturating_mul(block).min(size),
            ));
        }
        held = merge_ranges(held);
    }
    if !settled {
        // The remote plan reads such an object whole.
        return;
    }
    let mut img = vec![0u8; d.len()];
    for (s, e) in merge_ranges(held) {
        img[s as usize..e as usize].copy_from_slice(&d[s as usize..e as usize]);
    }
    let loc = aisec_core::Location::path("fuzz");
    assert_eq!(scan_h5(&img, &loc), scan_h5(d, &loc));
});
