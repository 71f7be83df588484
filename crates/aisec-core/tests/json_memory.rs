//! Peak heap of bounded JSON parsing, measured with a counting allocator
//! (this test is its own binary, so nothing else allocates concurrently).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.
#![allow(unsafe_code)] // A counting global allocator must implement the unsafe GlobalAlloc trait.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use aisec_core::json::{parse_value, JsonError, JsonLimits};

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let n = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(n, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// `[{"":0},{"":0},...]` of about `bytes` bytes.
fn object_bomb(bytes: usize) -> Vec<u8> {
    let mut doc = Vec::with_capacity(bytes + 8);
    doc.push(b'[');
    while doc.len() < bytes {
        doc.extend_from_slice(br#"{"":0},"#);
    }
    doc.extend_from_slice(br#"{"":0}]"#);
    doc
}

fn peak_during(f: impl FnOnce()) -> usize {
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

#[test]
fn object_bomb_memory_is_bounded() {
    // 4 MB of one-entry objects: about 2.4 million elements.
    let doc = object_bomb(4 << 20);
    let peak = peak_during(|| {
        let e = parse_value(&doc, &JsonLimits::SCAN).unwrap_err();
        assert!(matches!(e, JsonError::TooManyElements { .. }), "{e}");
    });
    // Refused by the pre-scan: nothing of the document is built.
    assert!(peak < 64 << 10, "refusal allocated {peak} bytes");

    // The largest accepted document of the same shape (3 elements per
    // object: the object, its key, its value), right under the element
    // bound, stays within 256 bytes per element (measured: 227, about
    // 97 times the text; 114 MB at the default 500,000 elements).
    let l = JsonLimits::SCAN;
    let just_under = object_bomb(l.max_elements / 3 * 7 - 64);
    let mut elements = 0;
    let peak = peak_during(|| {
        elements = aisec_core::json::prescan(&just_under, &l).unwrap().elements;
        let v = parse_value(&just_under, &l).unwrap();
        assert!(v.as_array().is_some_and(|a| a.len() > 150_000));
    });
    let per = peak / elements;
    eprintln!(
        "{} bytes, {elements} elements: peak {peak} bytes ({per} per element, {:.0}x the text)",
        just_under.len(),
        peak as f64 / just_under.len() as f64
    );
    assert!(per <= 256, "{per} bytes per element");
}
