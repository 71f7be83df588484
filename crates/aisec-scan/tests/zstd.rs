//! Zstandard containers (issue 20): `.pkl.zst` streams and zip entries
//! with method 93 (which Python 3.14's zipfile reads) are opened and the
//! pickles inside analysed.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Severity;
use aisec_scan::Scanner;

const EVIL: &[u8] = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// A zip whose every entry uses compression method 93 (zstd).
fn zip93(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let comp = zstd(data);
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let off = out.len() as u32;
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&[20, 0, 0, 0]); // version, flags
        hdr.extend_from_slice(&93u16.to_le_bytes());
        hdr.extend_from_slice(&[0, 0, 0, 0]); // time, date
        hdr.extend_from_slice(&crc.sum().to_le_bytes());
        hdr.extend_from_slice(&(comp.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(data.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(name.len() as u16).to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&hdr);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&comp);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&[63, 3]); // made by
        central.extend_from_slice(&hdr);
        central.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // comment len, disk, attrs
        central.extend_from_slice(&off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    let n = entries.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[test]
fn zstd_pickle_is_opened() {
    let r = Scanner::default().scan_bytes(&zstd(EVIL), "model.pkl.zst");
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        r.findings.iter().map(|f| f.severity).max(),
        Some(Severity::Critical),
        "{:?}",
        r.findings
    );
    // a benign pickle stays clean
    let r = Scanner::default().scan_bytes(&zstd(b"\x80\x02]q\x00K\x01a."), "ok.pkl.zst");
    assert!(
        r.findings.iter().all(|f| f.severity < Severity::High),
        "{:?}",
        r.findings
    );
}

#[test]
fn zip_method_93_torch_checkpoint_is_opened() {
    let z = zip93(&[("archive/data.pkl", EVIL), ("archive/version", b"3\n")]);
    let r = Scanner::default().scan_bytes(&z, "model.pt");
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        r.findings
            .iter()
            .any(|f| f.severity == Severity::Critical && f.rule_id.starts_with("AISEC-PICKLE")),
        "{:?}",
        r.findings
    );
    assert!(
        !r.findings.iter().any(|f| f.evidence.contains("method 93")),
        "{:?}",
        r.findings
    );
}
