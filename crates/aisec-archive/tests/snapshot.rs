//! Snapshot of the findings the hostile fixtures produce: the report the
//! scanner will show for container anomalies.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::path::PathBuf;

use aisec_archive::{Limits, TarArchive, ZipArchive};
use aisec_core::{Finding, Location};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn hostile_fixture_findings() {
    let mut all: Vec<Finding> = Vec::new();
    for f in [
        "name_mismatch.zip",
        "flag_bits.zip",
        "bad_crc.zip",
        "no_central.zip",
        "overlap.zip",
        "traversal.zip",
        "duplicate.zip",
        "encrypted_flag.zip",
        "prefixed.zip",
        "trailing.zip",
        "declared_ratio.zip",
    ] {
        let d = fixture(f);
        let z = ZipArchive::parse(&d).unwrap();
        // Read every readable entry so CRC verdicts are in.
        for e in z.entries() {
            let _ = z.read_bounded(e, &Limits::default());
        }
        all.extend(z.anomalies(&Location::path(f)));
    }
    for f in ["hostile.tar", "bad_checksum.tar", "truncated.tar"] {
        let d = fixture(f);
        all.extend(TarArchive::parse(&d).unwrap().anomalies(&Location::path(f)));
    }
    let lines: Vec<String> = all
        .iter()
        .map(|f| {
            format!(
                "{} {} [{}] {}: {}",
                f.rule_id,
                f.severity,
                f.atlas.join(","),
                f.location,
                f.evidence
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}
