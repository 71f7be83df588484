//! Fuzz target: aisec_core::json must never panic, and what it accepts it
//! must never under-count (the element bound is what bounds memory).
#![no_main]

use aisec_core::json::{parse_value, prescan, JsonLimits};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(|x| 1 + count(x)).sum(),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = JsonLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
        max_elements: 5_000,
    };
    let shape = prescan(data, &limits);
    match parse_value(data, &limits) {
        Ok(v) => {
            let s = shape.expect("parse accepted what prescan refused");
            assert!(s.elements >= count(&v), "{} < {}", s.elements, count(&v));
            assert!(s.elements <= limits.max_elements);
        }
        Err(e) => {
            if shape.is_ok() {
                assert!(!e.is_limit());
            }
        }
    }
});
