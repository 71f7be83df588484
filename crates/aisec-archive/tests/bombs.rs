//! Decompression bombs are generated here, not committed: a deflate stream
//! of zeros is built from one "steady-state" segment repeated many times,
//! so a few MB of input stands for many GB of output.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::io::Write;
use std::time::{Duration, Instant};

use aisec_archive::*;
use aisec_core::Location;

/// A raw deflate stream of `reps` MiB of zeros. The first sync-flushed
/// segment fills the window with zeros; the second segment then encodes one
/// MiB of zeros purely as back-references into that window, so it can be
/// repeated; `finish` adds the final empty block.
fn deflate_zeros_mib(reps: usize) -> Vec<u8> {
    let mib = vec![0u8; 1 << 20];
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&mib).unwrap();
    e.flush().unwrap();
    let first_len = e.get_ref().len();
    e.write_all(&mib).unwrap();
    e.flush().unwrap();
    let seg = e.get_ref()[first_len..].to_vec();
    let tail_start = e.get_ref().len();
    let done = e.finish().unwrap();
    let tail = done[tail_start..].to_vec();
    let mut out = done[..first_len].to_vec();
    for _ in 1..reps {
        out.extend_from_slice(&seg);
    }
    out.extend_from_slice(&tail);
    out
}

fn gzip_wrap(raw: &[u8]) -> Vec<u8> {
    // Header with no flags and mtime 0; trailer CRC/size are not checked
    // before the bound is hit.
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    g.extend_from_slice(raw);
    g.extend_from_slice(&[0; 8]);
    g
}

/// A one-entry zip with a deflated member, built by hand.
fn zip_with_deflate(name: &str, raw: &[u8], declared: u32) -> Vec<u8> {
    let mut z = Vec::new();
    let n = name.len() as u16;
    let local = |z: &mut Vec<u8>| {
        z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
        z.extend_from_slice(&0u32.to_le_bytes());
        z.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        z.extend_from_slice(&declared.to_le_bytes());
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
    };
    local(&mut z);
    z.extend_from_slice(raw);
    let cd = z.len() as u32;
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 8, 0, 0, 0, 0x21, 0]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    z.extend_from_slice(&declared.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0; 12]);
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    let cd_size = z.len() as u32 - cd;
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&cd_size.to_le_bytes());
    z.extend_from_slice(&cd.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

#[test]
fn gzip_bomb_stops_at_entry_limit_quickly() {
    // 4096 MiB of zeros in a few MB of gzip.
    let gz = gzip_wrap(&deflate_zeros_mib(4096));
    assert!(gz.len() < 8 << 20, "bomb is {} bytes", gz.len());
    assert_eq!(sniff_compression(&gz), Some(Compression::Gzip));
    let limits = Limits {
        max_entry_bytes: 16 << 20,
        ..Limits::default()
    };
    let t = Instant::now();
    let out = decompress(&gz, Compression::Gzip, &limits).unwrap();
    let took = t.elapsed();
    assert!(out.truncated_at_limit);
    assert_eq!(out.bytes.len() as u64, limits.max_entry_bytes);
    assert!(out.bytes.iter().all(|&b| b == 0));
    // Memory: the output buffer never grew far past the cap.
    assert!(out.bytes.capacity() as u64 <= 2 * limits.max_entry_bytes + (64 << 10));
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let f = bomb_finding(
        &Location::path("x.joblib"),
        gz.len() as u64,
        out.bytes.len() as u64,
    );
    assert_eq!(f.rule_id, "AISEC-ARCHIVE-014");
}

#[test]
fn ratio_limit_stops_before_entry_limit() {
    let gz = gzip_wrap(&deflate_zeros_mib(256));
    let limits = Limits {
        max_ratio: 10,
        ..Limits::default()
    };
    let out = decompress(&gz, Compression::Gzip, &limits).unwrap();
    assert!(out.truncated_at_limit);
    let cap = limits.output_cap(gz.len() as u64);
    assert_eq!(out.bytes.len() as u64, cap);
    assert!(cap < 256 << 20);
}

#[test]
fn zip_deflate_bomb_is_bounded_in_read_and_read_bounded() {
    let raw = deflate_zeros_mib(2048);
    // Declares an honest-looking 4 GiB - 2 output.
    let z = zip_with_deflate("archive/data.pkl", &raw, u32::MAX - 1);
    let ar = ZipArchive::parse(&z).unwrap();
    let e = &ar.entries()[0];
    let limits = Limits {
        max_entry_bytes: 16 << 20,
        ..Limits::default()
    };
    match ar.read(e, &limits) {
        Err(ArchiveError::LimitExceeded { limit, .. }) => assert_eq!(limit, 16 << 20),
        other => panic!("expected LimitExceeded, got {:?}", other.map(|c| c.len())),
    }
    let out = ar.read_bounded(e, &limits).unwrap();
    assert!(out.truncated_at_limit);
    assert_eq!(out.bytes.len(), 16 << 20);
    let rules: Vec<_> = ar
        .anomalies(&Location::path("b.zip"))
        .into_iter()
        .map(|f| f.rule_id)
        .collect();
    assert!(
        rules.contains(&"AISEC-ARCHIVE-010".to_string()),
        "{rules:?}"
    );
    assert!(
        !rules.contains(&"AISEC-ARCHIVE-012".to_string()),
        "no CRC verdict on truncated output"
    );
}

#[test]
fn zip_entry_lying_small_is_cut_at_declared_slack() {
    // Declares 1000 bytes but inflates to 8 MiB: reading stops at
    // max(2 × declared, 64 KiB) instead of trusting the stream.
    let raw = deflate_zeros_mib(8);
    let z = zip_with_deflate("x", &raw, 1000);
    let ar = ZipArchive::parse(&z).unwrap();
    let out = ar
        .read_bounded(&ar.entries()[0], &Limits::default())
        .unwrap();
    assert!(out.truncated_at_limit);
    assert_eq!(out.bytes.len(), 64 * 1024);
}

#[test]
fn lz4_and_xz_bombs_are_bounded() {
    let zeros = vec![0u8; 8 << 20];
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&zeros).unwrap();
    let lz = enc.finish().unwrap();
    let limits = Limits {
        max_entry_bytes: 2 << 20,
        ..Limits::default()
    };
    let out = decompress(&lz, Compression::Lz4, &limits).unwrap();
    assert!(out.truncated_at_limit);
    assert_eq!(out.bytes.len(), 2 << 20);

    let mut w =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    w.write_all(&zeros).unwrap();
    let xz = w.finish().unwrap();
    assert_eq!(sniff_compression(&xz), Some(Compression::Xz));
    let out = decompress(&xz, Compression::Xz, &limits).unwrap();
    assert!(out.truncated_at_limit);
    // xz packs zeros beyond 1000:1, so the ratio cap is the one that bites.
    let cap = limits.output_cap(xz.len() as u64);
    assert!(cap < 2 << 20);
    assert_eq!(out.bytes.len() as u64, cap);
}

#[test]
fn lzma_header_asking_for_huge_dictionary_is_refused() {
    // lzma-alone header: props 0x5d, 1 GiB dictionary, unknown size.
    let mut d = vec![0x5d];
    d.extend_from_slice(&(1u32 << 30).to_le_bytes());
    d.extend_from_slice(&u64::MAX.to_le_bytes());
    d.extend_from_slice(&[0; 32]);
    assert_eq!(sniff_compression(&d), Some(Compression::Lzma));
    let err = decompress(&d, Compression::Lzma, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, ArchiveError::Corrupt { format: "lzma", .. }),
        "{err}"
    );
}
