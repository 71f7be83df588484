//! 7z fixtures (scripts/fixtures/gen_7z_fixtures.py, written with py7zr
//! and by hand): every coder py7zr writes is decoded, hostile entries are
//! reported, and what cannot be decoded is an error, not a panic.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_archive::{ArchiveError, SevenZArchive, SevenZKind};
use aisec_core::Location;

const EVIL_START: &[u8] = b"\x80\x02cposix\nsystem\n";

fn fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/7z/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Decodes every file with data: (name, bytes).
fn files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = SevenZArchive::parse(data).unwrap();
    let mut out = Vec::new();
    for k in 0..a.folders().len() {
        let d = a.read_folder(k, 1 << 20).unwrap();
        assert!(d.error.is_none() && !d.truncated_at_limit, "{:?}", d.error);
        let entries: Vec<_> = a
            .entries()
            .iter()
            .filter(|e| e.folder == Some(k))
            .cloned()
            .collect();
        for e in entries {
            let (b, complete) = a.entry_bytes(&e, &d.bytes);
            assert!(complete, "{}", e.name);
            out.push((e.name.clone(), b.to_vec()));
        }
    }
    assert!(
        a.anomalies(&Location::path("x.7z")).is_empty(),
        "{:?}",
        a.anomalies(&Location::path("x.7z"))
    );
    out
}

#[test]
fn nullifai_torch_folder_is_listed_and_decoded() {
    let data = fixture("nullifai_torch.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    let names: Vec<(&str, SevenZKind)> = a
        .entries()
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert!(
        names.contains(&("archive", SevenZKind::Directory)),
        "{names:?}"
    );
    assert!(names.contains(&("archive/data.pkl", SevenZKind::File)));
    let f = files(&data);
    let pkl = &f.iter().find(|(n, _)| n == "archive/data.pkl").unwrap().1;
    assert!(pkl.starts_with(EVIL_START));
    let t = &f.iter().find(|(n, _)| n == "archive/data/0").unwrap().1;
    assert_eq!(t.len(), 4096);
    assert_eq!(&t[..4], &[0, 1, 2, 3]);
}

#[test]
fn every_supported_coder_decodes() {
    for name in [
        "lzma1.7z",
        "bzip2.7z",
        "deflate.7z",
        "zstd.7z",
        "copy.7z",
        "delta_lzma2.7z",
        "bcj_x86.7z",
    ] {
        let f = files(&fixture(name));
        assert_eq!(f.len(), 1, "{name}");
        assert_eq!(f[0].0, "model.pkl", "{name}");
        assert!(f[0].1.starts_with(EVIL_START), "{name}: {:?}", &f[0].1);
        assert_eq!(f[0].1.len(), 72, "{name}");
    }
}

#[test]
fn non_solid_archive_has_a_folder_per_file() {
    let data = fixture("nonsolid.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    assert_eq!(a.folders().len(), 2);
    let f = files(&data);
    assert_eq!(f[1].0, "b/evil.pkl");
    assert!(f[1].1.starts_with(EVIL_START));
}

#[test]
fn ppmd_and_encryption_are_errors_not_guesses() {
    let data = fixture("ppmd.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    assert!(matches!(
        a.read_folder(0, 1 << 20),
        Err(ArchiveError::UnsupportedMethod { .. })
    ));
    let data = fixture("encrypted.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    assert!(a.folders()[0].encrypted());
    assert!(matches!(
        a.read_folder(0, 1 << 20),
        Err(ArchiveError::Encrypted { .. })
    ));
}

#[test]
fn traversal_and_symlink_are_reported() {
    let data = fixture("traversal.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    assert_eq!(a.entries()[0].name, "../../outside.pkl");
    let ids: Vec<String> = a
        .anomalies(&Location::path("t.7z"))
        .into_iter()
        .map(|f| f.rule_id)
        .collect();
    assert_eq!(ids, ["AISEC-ARCHIVE-009"]);

    let data = fixture("symlink.7z");
    let mut a = SevenZArchive::parse(&data).unwrap();
    let e = a.entries()[0].clone();
    assert_eq!(e.kind, SevenZKind::Symlink);
    let d = a.read_folder(0, 1 << 20).unwrap();
    let (target, _) = a.entry_bytes(&e, &d.bytes);
    assert_eq!(target, b"/etc/passwd");
    let target = target.to_vec();
    a.note_symlink(&e, &target);
    let ids: Vec<String> = a
        .anomalies(&Location::path("s.7z"))
        .into_iter()
        .map(|f| f.rule_id)
        .collect();
    assert_eq!(ids, ["AISEC-ARCHIVE-015"]);
}

#[test]
fn truncated_archive_is_an_error() {
    let data = fixture("truncated.7z");
    assert!(matches!(
        SevenZArchive::parse(&data),
        Err(ArchiveError::OutOfBounds { .. })
    ));
    // Every prefix is handled without a panic.
    let full = fixture("nullifai_torch.7z");
    for n in 0..full.len() {
        if let Ok(a) = SevenZArchive::parse(&full[..n]) {
            for k in 0..a.folders().len() {
                let _ = a.read_folder(k, 1 << 20);
            }
        }
    }
}

#[test]
fn output_cap_is_respected() {
    let data = fixture("nullifai_torch.7z");
    let a = SevenZArchive::parse(&data).unwrap();
    let d = a.read_folder(0, 100).unwrap();
    assert_eq!(d.bytes.len(), 100);
    assert!(d.truncated_at_limit);
}
