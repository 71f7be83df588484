//! Hostile-input tests: truncations, random mutations, absurd lengths and
//! deep nesting must return quickly with no panic, and set `malformed` where
//! the input cannot be parsed.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::time::{Duration, Instant};

use aisec_core::{Location, Severity};
use aisec_formats::{gguf, h5, keras, onnx, safetensors, savedmodel, FormatReport};

fn all_scanners(d: &[u8]) -> Vec<FormatReport> {
    let loc = Location::path("hostile");
    let _ = (
        h5::looks_like_h5(d),
        onnx::looks_like_onnx(d),
        gguf::looks_like_gguf(d),
        safetensors::looks_like_safetensors(d),
        savedmodel::looks_like_saved_model(d),
    );
    vec![
        h5::scan_h5(d, &loc),
        keras::scan_keras_config(d, &loc),
        savedmodel::scan_saved_model(d, &loc),
        savedmodel::scan_graph_def(d, &loc),
        savedmodel::scan_keras_metadata(d, &loc),
        onnx::scan_onnx(d, &loc),
        gguf::scan_gguf(d, &loc),
        safetensors::scan_safetensors(d, &loc),
    ]
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures dir")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 20);
    v
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn truncated_fixtures_never_panic() {
    let start = Instant::now();
    for (name, d) in fixtures() {
        let step = (d.len() / 400).max(1);
        let mut n = 0;
        while n < d.len() {
            let cut = &d[..n];
            let reports = all_scanners(cut);
            // The scanner matching the file type must notice the truncation.
            if name.ends_with(".gguf") && n < d.len() / 2 {
                assert!(reports[6].malformed.is_some(), "{name} cut at {n}");
            }
            if name.ends_with(".h5") && n < 200 {
                assert!(reports[0].malformed.is_some(), "{name} cut at {n}");
            }
            n += step;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for (_, d) in fixtures() {
        for _ in 0..150 {
            let mut m = d.clone();
            let flips = 1 + (rng.next() % 8) as usize;
            for _ in 0..flips {
                let i = (rng.next() % m.len() as u64) as usize;
                m[i] = match rng.next() % 4 {
                    0 => 0xff,
                    1 => 0,
                    2 => m[i] ^ (1 << (rng.next() % 8)),
                    _ => rng.next() as u8,
                };
            }
            let t = Instant::now();
            all_scanners(&m);
            assert!(t.elapsed() < Duration::from_secs(5));
        }
    }
}

fn ld(field: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut key = u64::from((field << 3) | 2);
    let mut n = body.len() as u64;
    for x in [&mut key, &mut n] {
        loop {
            let b = (*x & 0x7f) as u8;
            *x >>= 7;
            if *x == 0 {
                v.push(b);
                break;
            }
            v.push(b | 0x80);
        }
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn deeply_nested_onnx_subgraphs_are_malformed() {
    // graph { node { attribute { g: graph { node { ... } } } } }
    let mut g = Vec::new();
    for _ in 0..200 {
        let attr = ld(6, &g);
        let node = ld(5, &attr);
        g = ld(1, &node);
    }
    let model = [vec![0x08, 0x08], ld(7, &g)].concat();
    assert!(onnx::looks_like_onnx(&model));
    let r = onnx::scan_onnx(&model, &Location::path("deep.onnx"));
    assert!(
        r.malformed.as_deref().is_some_and(|m| m.contains("nested")),
        "{:?}",
        r.malformed
    );
}

#[test]
fn absurd_lengths() {
    let loc = Location::path("x");
    // Protobuf field claiming 2^62 bytes.
    let mut pb = vec![0x12];
    pb.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    assert!(savedmodel::scan_saved_model(&pb, &loc).malformed.is_some());
    assert!(onnx::scan_onnx(&pb, &loc).malformed.is_some());
    // GGUF string key length 2^63.
    let mut g = b"GGUF".to_vec();
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes());
    g.extend_from_slice(&1u64.to_le_bytes());
    g.extend_from_slice(&(1u64 << 63).to_le_bytes());
    g.extend_from_slice(&[0u8; 16]);
    let r = gguf::scan_gguf(&g, &loc);
    assert!(r.malformed.is_some());
    // GGUF arrays nested beyond the limit.
    let mut g = b"GGUF".to_vec();
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes());
    g.extend_from_slice(&1u64.to_le_bytes());
    g.extend_from_slice(&1u64.to_le_bytes());
    g.push(b'k');
    g.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..50 {
        g.extend_from_slice(&9u32.to_le_bytes());
        g.extend_from_slice(&1u64.to_le_bytes());
    }
    g.extend_from_slice(&[0u8; 64]);
    assert!(gguf::scan_gguf(&g, &loc).malformed.is_some());
    // Big-endian GGUF header is recognised.
    let mut be = b"GGUF".to_vec();
    be.extend_from_slice(&3u32.to_be_bytes());
    be.extend_from_slice(&0u64.to_be_bytes());
    be.extend_from_slice(&0u64.to_be_bytes());
    assert!(gguf::looks_like_gguf(&be));
    let r = gguf::scan_gguf(&be, &loc);
    assert!(r.malformed.is_none(), "{:?}", r.malformed);
    assert!(r.notes.iter().any(|n| n.contains("big-endian")));
    // Deep JSON in a Keras config: refused by the depth bound and reported
    // as an unverifiable config (high), not a quiet malformed file.
    let deep = format!("{}{}", "{\"a\":".repeat(5000), "1");
    let r = keras::scan_keras_config(deep.as_bytes(), &loc);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule_id == "AISEC-KERAS-008" && f.severity == Severity::High),
        "{:?}",
        r.findings
    );
}

#[test]
fn hdf5_cyclic_continuation_terminates() {
    // Superblock v0 whose root object header (v1) holds a continuation
    // message pointing back at its own message block.
    let mut d = vec![0u8; 256];
    d[..8].copy_from_slice(b"\x89HDF\r\n\x1a\n");
    d[13] = 8;
    d[14] = 8;
    // base, freespace, eof, driver: 24..56; root entry at 56: name off, header addr.
    d[24 + 8..24 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    d[24 + 16..24 + 24].copy_from_slice(&256u64.to_le_bytes());
    d[24 + 24..24 + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    d[56 + 8..56 + 16].copy_from_slice(&128u64.to_le_bytes());
    // Object header at 128: version 1, 1 message, header size 24.
    d[128] = 1;
    d[130] = 1;
    d[136..140].copy_from_slice(&24u32.to_le_bytes());
    // Message at 144: type 0x10, size 16, continuation -> (144, 24).
    d[144] = 0x10;
    d[146] = 16;
    d[152..160].copy_from_slice(&144u64.to_le_bytes());
    d[160..168].copy_from_slice(&24u64.to_le_bytes());
    let t = Instant::now();
    let r = h5::scan_h5(&d, &Location::path("cyclic.h5"));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(r.malformed.is_some(), "{:?}", r.notes);
}

#[test]
fn safetensors_header_must_fit() {
    let mut st = 100u64.to_le_bytes().to_vec();
    st.extend_from_slice(b"{}");
    let r = safetensors::scan_safetensors(&st, &Location::path("x"));
    assert!(r.malformed.is_some());
    assert!(!safetensors::looks_like_safetensors(&st));
}
