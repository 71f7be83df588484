//! Integration tests over the fixtures written by
//! `scripts/fixtures/gen_archive_fixtures.py`.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::path::PathBuf;

use aisec_archive::*;
use aisec_core::{Finding, Location, Severity};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rule_ids(f: &[Finding]) -> Vec<&str> {
    let mut v: Vec<&str> = f.iter().map(|f| f.rule_id.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn loc(name: &str) -> Location {
    Location::path(name)
}

const PICKLE_HEAD: &[u8] = b"\x80\x02";

#[test]
fn clean_torch_zip_has_no_anomalies_and_reads_entries() {
    let d = fixture("torch_like.zip");
    assert!(looks_like_zip(&d));
    let z = ZipArchive::parse(&d).unwrap();
    let names: Vec<_> = z.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "archive/data.pkl",
            "archive/version",
            "archive/data/0",
            "archive/notes.txt"
        ]
    );
    let lim = Limits::default();
    let pkl = z
        .read(z.by_name("archive/data.pkl").unwrap(), &lim)
        .unwrap();
    assert!(
        matches!(pkl, std::borrow::Cow::Borrowed(_)),
        "stored entries are borrowed"
    );
    assert!(pkl.starts_with(PICKLE_HEAD));
    let txt = z
        .read(z.by_name("archive/notes.txt").unwrap(), &lim)
        .unwrap();
    assert_eq!(txt.len(), 14 * 50);
    assert!(txt.starts_with(b"deflated text "));
    let t = z.read(z.by_name("archive/data/0").unwrap(), &lim).unwrap();
    assert_eq!(t.len(), 1024);
    assert!(
        z.anomalies(&loc("m.pt")).is_empty(),
        "{:#?}",
        z.anomalies(&loc("m.pt"))
    );
    assert!(!z.recovered_from_local_headers());
}

#[test]
fn local_central_name_mismatch_is_high() {
    let d = fixture("name_mismatch.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let e = z.by_name("archive/data.pkl").unwrap();
    assert_eq!(e.local_name.as_deref(), Some("archive/data.pkX"));
    // The central view (what torch uses) still reads the pickle.
    assert!(z
        .read(e, &Limits::default())
        .unwrap()
        .starts_with(PICKLE_HEAD));
    let f = z.anomalies(&loc("m.pt"));
    let hit = f
        .iter()
        .find(|f| f.rule_id == "AISEC-ARCHIVE-001")
        .expect("mismatch finding");
    assert_eq!(hit.severity, Severity::High);
    assert!(hit.atlas.contains(&"AML.T0074".to_string()));
    assert_eq!(hit.location.to_string(), "m.pt!archive/data.pkl");
    assert!(hit.evidence.contains("archive/data.pkX"));
}

#[test]
fn unusual_flag_bits_are_reported_and_entry_still_readable() {
    let d = fixture("flag_bits.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let e = z.by_name("archive/data.pkl").unwrap();
    assert_eq!(e.flags, 0x0020);
    assert!(!e.encrypted);
    assert!(z
        .read(e, &Limits::default())
        .unwrap()
        .starts_with(PICKLE_HEAD));
    let f = z.anomalies(&loc("m.pt"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-006"]);
    assert!(f[0].evidence.contains("0x0020"));
}

#[test]
fn bad_crc_is_an_anomaly_not_an_error() {
    for (file, member) in [
        ("bad_crc.zip", "archive/data.pkl"),
        ("bad_crc_deflate.zip", "archive/notes.txt"),
    ] {
        let d = fixture(file);
        let z = ZipArchive::parse(&d).unwrap();
        assert!(
            z.anomalies(&loc(file)).is_empty(),
            "CRCs are only known after reading"
        );
        let e = z.by_name(member).unwrap();
        let bytes = z.read(e, &Limits::default()).unwrap();
        assert!(!bytes.is_empty());
        let f = z.anomalies(&loc(file));
        assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-012"], "{file}");
        assert_eq!(f[0].severity, Severity::Low);
        // Reading again does not duplicate the finding.
        z.read(e, &Limits::default()).unwrap();
        assert_eq!(z.anomalies(&loc(file)).len(), 1);
    }
}

#[test]
fn missing_central_directory_recovers_from_local_headers() {
    let d = fixture("no_central.zip");
    assert!(looks_like_zip(&d));
    let z = ZipArchive::parse(&d).unwrap();
    assert!(z.recovered_from_local_headers());
    let names: Vec<_> = z.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "archive/data.pkl",
            "archive/version",
            "archive/data/0",
            "archive/notes.txt"
        ]
    );
    let lim = Limits::default();
    assert!(z
        .read(&z.entries()[0], &lim)
        .unwrap()
        .starts_with(PICKLE_HEAD));
    assert_eq!(z.read(&z.entries()[3], &lim).unwrap().len(), 700);
    let f = z.anomalies(&loc("x.zip"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-011"]);
}

#[test]
fn overlapping_entries_are_reported() {
    let d = fixture("overlap.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let f = z.anomalies(&loc("o.zip"));
    let o = f
        .iter()
        .find(|f| f.rule_id == "AISEC-ARCHIVE-003")
        .expect("overlap");
    assert!(
        o.evidence.contains("'b.bin'") && o.evidence.contains("'a.bin'"),
        "{}",
        o.evidence
    );
    // Reading a.bin yields both payloads; its CRC no longer matches.
    let a = z
        .read(z.by_name("a.bin").unwrap(), &Limits::default())
        .unwrap();
    assert!(a.starts_with(&[b'A'; 100]) && a.ends_with(&[b'B'; 100]));
    assert!(rule_ids(&z.anomalies(&loc("o.zip"))).contains(&"AISEC-ARCHIVE-012"));
}

#[test]
fn traversal_names_are_high() {
    let d = fixture("traversal.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let f = z.anomalies(&loc("t.zip"));
    let tr: Vec<_> = f
        .iter()
        .filter(|f| f.rule_id == "AISEC-ARCHIVE-009")
        .collect();
    assert_eq!(tr.len(), 2, "{f:#?}");
    assert!(tr.iter().all(|f| f.severity == Severity::High));
}

#[test]
fn duplicates_encryption_prefix_trailing() {
    let d = fixture("duplicate.zip");
    let f = ZipArchive::parse(&d).unwrap().anomalies(&loc("d.zip"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-002"]);

    let d = fixture("encrypted_flag.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let e = z.by_name("archive/version").unwrap();
    assert!(e.encrypted);
    assert!(matches!(
        z.read(e, &Limits::default()),
        Err(ArchiveError::Encrypted { .. })
    ));
    assert_eq!(rule_ids(&z.anomalies(&loc("e.zip"))), ["AISEC-ARCHIVE-005"]);

    let d = fixture("prefixed.zip");
    let z = ZipArchive::parse(&d).unwrap();
    assert!(z
        .read(&z.entries()[0], &Limits::default())
        .unwrap()
        .starts_with(PICKLE_HEAD));
    let f = z.anomalies(&loc("p.zip"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-007"], "{f:#?}");

    let d = fixture("trailing.zip");
    let f = ZipArchive::parse(&d).unwrap().anomalies(&loc("t.zip"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-008"]);
    assert!(f[0].evidence.starts_with("14 bytes"), "{}", f[0].evidence);
}

#[test]
fn zip64_end_records_are_followed() {
    let d = fixture("zip64.zip");
    let z = ZipArchive::parse(&d).unwrap();
    assert_eq!(z.entries().len(), 2);
    assert!(z
        .read(&z.entries()[0], &Limits::default())
        .unwrap()
        .starts_with(PICKLE_HEAD));
    assert_eq!(
        &z.read(&z.entries()[1], &Limits::default()).unwrap()[..],
        b"3\n"
    );
    assert!(
        z.anomalies(&loc("z.zip")).is_empty(),
        "{:#?}",
        z.anomalies(&loc("z.zip"))
    );
}

#[test]
fn bzip2_and_lzma_zip_methods_decode() {
    for (f, m) in [("bzip2_method.zip", 12), ("lzma_method.zip", 14)] {
        let d = fixture(f);
        let z = ZipArchive::parse(&d).unwrap();
        assert_eq!(z.entries()[0].method, m);
        let b = z.read(&z.entries()[0], &Limits::default()).unwrap();
        assert_eq!(b.len() as u64, z.entries()[0].uncompressed_size);
        assert!(b.starts_with(PICKLE_HEAD));
        assert!(
            z.anomalies(&loc(f)).is_empty(),
            "{f}: {:#?}",
            z.anomalies(&loc(f))
        );
    }
}

#[test]
fn nested_zip_reads_through() {
    let d = fixture("nested.zip");
    let outer = ZipArchive::parse(&d).unwrap();
    let inner_bytes = outer
        .read(
            outer.by_name("models/model.pt").unwrap(),
            &Limits::default(),
        )
        .unwrap();
    assert!(looks_like_zip(&inner_bytes));
    let inner = ZipArchive::parse(&inner_bytes).unwrap();
    let pkl = inner
        .read(
            inner.by_name("archive/data.pkl").unwrap(),
            &Limits::default(),
        )
        .unwrap();
    assert!(pkl.starts_with(PICKLE_HEAD));
}

#[test]
fn declared_ratio_is_flagged() {
    let d = fixture("declared_ratio.zip");
    let z = ZipArchive::parse(&d).unwrap();
    let f = z.anomalies(&loc("r.zip"));
    assert_eq!(rule_ids(&f), ["AISEC-ARCHIVE-010"]);
    // The real data (1000 zeros) still reads: the bound is the ratio cap.
    assert_eq!(
        z.read(&z.entries()[0], &Limits::default()).unwrap().len(),
        1000
    );
}

#[test]
fn legacy_torch_tar() {
    let d = fixture("torch_legacy.tar");
    assert!(looks_like_tar(&d));
    assert!(!looks_like_zip(&d));
    let t = TarArchive::parse(&d).unwrap();
    let names: Vec<_> = t.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["sys_info", "pickle", "storages", "tensors"]);
    assert!(t
        .entries()
        .iter()
        .all(|e| e.kind == TarEntryKind::File && e.checksum_ok));
    assert!(t.by_name("pickle").unwrap().data.starts_with(PICKLE_HEAD));
    assert_eq!(
        t.by_name("storages").unwrap().data.len() as u64,
        t.by_name("storages").unwrap().size
    );
    assert!(
        t.anomalies(&loc("old.pt")).is_empty(),
        "{:#?}",
        t.anomalies(&loc("old.pt"))
    );
}

#[test]
fn tar_long_names_gnu_and_pax() {
    let want = format!("models/{}data.pkl", "very_long_directory_name/".repeat(6));
    for f in ["gnu_longname.tar", "pax_longname.tar"] {
        let d = fixture(f);
        let t = TarArchive::parse(&d).unwrap();
        assert_eq!(t.entries().len(), 1, "{f}");
        assert_eq!(t.entries()[0].name, want, "{f}");
        assert!(t.entries()[0].data.starts_with(PICKLE_HEAD));
        assert!(t.anomalies(&loc(f)).is_empty());
    }
}

#[test]
fn hostile_tar_findings() {
    let d = fixture("hostile.tar");
    let t = TarArchive::parse(&d).unwrap();
    assert_eq!(t.entries().len(), 5);
    let f = t.anomalies(&loc("h.tar"));
    assert_eq!(
        rule_ids(&f),
        [
            "AISEC-ARCHIVE-009",
            "AISEC-ARCHIVE-015",
            "AISEC-ARCHIVE-016"
        ],
        "{f:#?}"
    );
    assert_eq!(
        f.iter()
            .filter(|f| f.rule_id == "AISEC-ARCHIVE-015")
            .count(),
        2
    );
}

#[test]
fn tar_bad_checksum_and_truncation() {
    let d = fixture("bad_checksum.tar");
    let t = TarArchive::parse(&d).unwrap();
    assert_eq!(t.entries()[0].name, "rys_info");
    assert!(!t.entries()[0].checksum_ok);
    assert_eq!(rule_ids(&t.anomalies(&loc("b.tar"))), ["AISEC-ARCHIVE-012"]);

    let d = fixture("truncated.tar");
    let t = TarArchive::parse(&d).unwrap();
    assert!(t.entries().len() >= 2);
    let last = t.entries().last().unwrap();
    assert!((last.data.len() as u64) <= last.size);
    assert!(rule_ids(&t.anomalies(&loc("t.tar"))).contains(&"AISEC-ARCHIVE-004"));
}

#[test]
fn compressed_samples_roundtrip() {
    let want = fixture("sample.pkl");
    let cases = [
        ("sample.pkl.gz", Compression::Gzip),
        ("sample.pkl.z", Compression::Zlib),
        ("sample.pkl.bz2", Compression::Bzip2),
        ("sample.pkl.xz", Compression::Xz),
        ("sample.pkl.lzma", Compression::Lzma),
    ];
    for (f, c) in cases {
        let d = fixture(f);
        assert_eq!(sniff_compression(&d), Some(c), "{f}");
        let out = decompress(&d, c, &Limits::default()).unwrap();
        assert!(!out.truncated_at_limit && out.error.is_none(), "{f}");
        assert_eq!(out.bytes, want, "{f}");
    }
    assert_eq!(
        sniff_compression(&want),
        None,
        "a raw pickle is not compressed"
    );
    assert_eq!(sniff_compression(&fixture("torch_like.zip")), None);
    assert_eq!(sniff_compression(&fixture("torch_legacy.tar")), None);
}

#[test]
fn lz4_frame_roundtrip() {
    use std::io::Write;
    let want = fixture("sample.pkl");
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&want).unwrap();
    let d = enc.finish().unwrap();
    assert_eq!(sniff_compression(&d), Some(Compression::Lz4));
    let out = decompress(&d, Compression::Lz4, &Limits::default()).unwrap();
    assert_eq!(out.bytes, want);
}

#[test]
fn non_archives_are_rejected_cleanly() {
    let junk = b"just some text that is not an archive at all".repeat(20);
    assert!(!looks_like_zip(&junk));
    assert!(!looks_like_tar(&junk));
    assert!(matches!(
        ZipArchive::parse(&junk),
        Err(ArchiveError::NotAnArchive { .. })
    ));
    assert!(matches!(
        TarArchive::parse(&junk),
        Err(ArchiveError::NotAnArchive { .. })
    ));
    assert!(ZipArchive::parse(b"").is_err());
    assert!(TarArchive::parse(b"").is_err());
}

#[test]
fn every_fixture_prefix_parses_without_panic() {
    // Truncating a file anywhere must give an error or a tolerant result.
    for f in [
        "torch_like.zip",
        "zip64.zip",
        "overlap.zip",
        "torch_legacy.tar",
        "pax_longname.tar",
    ] {
        let d = fixture(f);
        for cut in (0..d.len()).step_by(7) {
            let part = &d[..cut];
            if let Ok(z) = ZipArchive::parse(part) {
                for e in z.entries() {
                    let _ = z.read_bounded(e, &Limits::default());
                }
                let _ = z.anomalies(&loc(f));
            }
            if let Ok(t) = TarArchive::parse(part) {
                let _ = t.anomalies(&loc(f));
            }
        }
    }
}
