//! Fuzzes the `.npy` header parser and object-array pickle analysis.
#![no_main]
use aisec_core::Location;
use aisec_pickle::{scan_npy, Limits, Policy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = Policy::default();
    let limits = Limits {
        max_ops: 200_000,
        ..Limits::default()
    };
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    // Half the inputs get a valid magic so the header parser is reached.
    let input: &[u8] = if data.first().is_some_and(|b| b & 1 == 1) {
        v.extend_from_slice(&data[1..]);
        &v
    } else {
        data
    };
    let r = scan_npy(input, &Location::path("fuzz.npy"), &policy, &limits);
    assert!(r.consumed <= input.len());
});
