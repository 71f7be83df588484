//! Fuzzes the second stage's head-file parser (`Head::from_json`: the JSON
//! an operator's `[input.second_stage] head` names, with its band, its
//! indirect head, script route and `all_texts` point).
//! Invariants checked: a file either parses or is an error (no panic); an
//! accepted head holds finite weights, an ordered band inside [0, 1], an
//! indirect head as wide as the head with 1-16 passages, and a script route
//! and all-texts point with a positive scale and a threshold in [0, 1].
#![no_main]
use aisec_guard::stage2::{Head, MAX_INDIRECT_WINDOWS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(h) = Head::from_json(text) else {
        return;
    };
    assert!(!h.weights.is_empty() && h.weights.iter().all(|w| w.is_finite()));
    assert!((0.0..=1.0).contains(&h.band_low) && h.band_low <= h.band_high && h.band_high <= 1.0);
    if let Some(i) = &h.indirect {
        assert_eq!(i.weights.len(), h.weights.len());
        assert!((1..=MAX_INDIRECT_WINDOWS).contains(&i.windows));
    }
    if let Some(r) = &h.script_route {
        assert!(r.scale > 0.0 && r.min_share > 0.0 && r.min_share <= 1.0);
        assert!((0.0..=1.0).contains(&r.threshold));
    }
    if let Some(a) = &h.all_texts {
        assert!(a.scale > 0.0 && (0.0..=1.0).contains(&a.threshold));
        assert!(a.fast_weight.is_finite() && a.offset.is_finite());
    }
});
