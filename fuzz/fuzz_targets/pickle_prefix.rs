//! Fuzz target: the remote sniff's pickle check from a prefix
//! (`looks_like_pickle_prefix`) must, whenever it decides, give
//! `looks_like_pickle`'s answer on the whole input, and otherwise ask for
//! more bytes than it had and no more than the input holds; followed as a
//! remote plan grows the prefix, it must settle with the whole input's
//! answer.
#![no_main]
use aisec_pickle::{looks_like_pickle, looks_like_pickle_prefix, PrefixSniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&sel, d)) = input.split_first() else {
        return;
    };
    let whole = looks_like_pickle(d);
    let total = d.len() as u64;
    // First cut: a few bytes, a fraction of the input, or all of it.
    let mut k = match sel & 3 {
        0 => usize::from(sel >> 2).min(d.len()),
        1 => d.len() / 2,
        2 => d.len() * 7 / 8,
        _ => d.len(),
    };
    loop {
        match looks_like_pickle_prefix(&d[..k], total) {
            PrefixSniff::Pickle => {
                assert!(whole);
                break;
            }
            PrefixSniff::NotPickle => {
                assert!(!whole);
                break;
            }
            PrefixSniff::Needs(n) => {
                assert!(n > k as u64 && n <= total, "cut {k}: needs {n} of {total}");
                k = n as usize;
            }
        }
    }
});
