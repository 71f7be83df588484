//! The driver over the archive and pickle crates' committed fixtures:
//! container anomalies reach the report, and pickles inside containers are
//! analysed.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use std::path::PathBuf;

use aisec_core::Severity;
use aisec_scan::{FileResult, Scanner};

fn fixture(krate: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("tests/fixtures")
        .join(name)
}

fn scan(krate: &str, name: &str) -> FileResult {
    let p = fixture(krate, name);
    let r = Scanner::default().scan_file(&p, name);
    assert!(r.error.is_none(), "{name}: {:?}", r.error);
    r
}

fn rules(r: &FileResult) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn max(r: &FileResult) -> Option<Severity> {
    r.findings.iter().map(|f| f.severity).max()
}

#[test]
fn crc_mismatch_is_reported_after_reading() {
    let r = scan("aisec-archive", "bad_crc.zip");
    assert!(rules(&r).contains(&"AISEC-ARCHIVE-012"), "{:?}", rules(&r));
}

#[test]
fn local_central_name_mismatch_is_high() {
    let r = scan("aisec-archive", "name_mismatch.zip");
    assert!(rules(&r).contains(&"AISEC-ARCHIVE-001"), "{:?}", rules(&r));
    assert!(max(&r) >= Some(Severity::High));
}

#[test]
fn every_compressed_sample_is_opened() {
    for name in [
        "sample.pkl.gz",
        "sample.pkl.bz2",
        "sample.pkl.xz",
        "sample.pkl.lzma",
        "sample.pkl.z",
    ] {
        let r = scan("aisec-archive", name);
        assert!(
            matches!(r.format, aisec_scan::Format::Compressed(_)),
            "{name}: {:?}",
            r.format
        );
    }
}

#[test]
fn legacy_torch_tar_and_stream_are_analysed() {
    let benign = scan("aisec-pickle", "legacy_torch.pt");
    assert!(
        max(&benign) < Some(Severity::High),
        "{:#?}",
        benign.findings
    );
    let evil = scan("aisec-pickle", "legacy_torch_evil.pt");
    assert_eq!(max(&evil), Some(Severity::Critical), "{:#?}", evil.findings);
    let tar = scan("aisec-archive", "torch_legacy.tar");
    assert_eq!(tar.format, aisec_scan::Format::Tar);
}

#[test]
fn joblib_with_object_array_is_caught() {
    let r = scan("aisec-pickle", "object_array_evil.joblib");
    assert_eq!(max(&r), Some(Severity::Critical), "{:#?}", r.findings);
    let ok = scan("aisec-pickle", "arrays.joblib");
    assert!(max(&ok) < Some(Severity::High), "{:#?}", ok.findings);
}

#[test]
fn torch_like_zip_is_recognised() {
    let r = scan("aisec-archive", "torch_like.zip");
    assert_eq!(r.format, aisec_scan::Format::Zip);
    assert!(max(&r) < Some(Severity::High), "{:#?}", r.findings);
}

#[test]
fn tensorflow_protobufs_are_routed_by_name_and_structure() {
    let meta = scan("aisec-formats", "keras_metadata.pb");
    assert!(
        !rules(&meta).contains(&"AISEC-SCAN-003"),
        "keras_metadata.pb reported malformed: {:#?}",
        meta.findings
    );
    let evil = scan("aisec-formats", "tf_pyfunc_saved_model.pb");
    assert_eq!(max(&evil), Some(Severity::Critical), "{:#?}", evil.findings);
    let ok = scan("aisec-formats", "tf_benign_saved_model.pb");
    assert!(max(&ok) < Some(Severity::High), "{:#?}", ok.findings);
}

#[test]
fn extra_pickles_beside_torch_storages_are_scanned() {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("model/data.pkl", o).unwrap();
        z.write_all(b"\x80\x02}q\x00.").unwrap();
        z.start_file("model/data/0", o).unwrap();
        z.write_all(&[0x80, 0x02, 0, 0, 0, 0, 0, 0]).unwrap();
        z.start_file("model/data/hook.pkl", o).unwrap();
        z.write_all(b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.")
            .unwrap();
        z.finish().unwrap();
    }
    let r = Scanner::default().scan_bytes(&buf.into_inner(), "m.pt");
    let crit: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .map(|f| f.location.member.clone())
        .collect();
    assert_eq!(
        crit,
        vec![Some("model/data/hook.pkl".to_string())],
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_cut_off_onnx_file_is_malformed_not_disguised() {
    let whole = std::fs::read(fixture("aisec-formats", "onnx_benign.onnx")).unwrap();
    let sc = Scanner::default();
    let cut = &whole[..whole.len() / 2];
    let r = sc.scan_bytes(cut, "model.onnx");
    assert_eq!(
        rules(&r),
        [aisec_scan::rules::MALFORMED.id],
        "{:#?}",
        r.findings
    );
    assert!(r.findings[0].evidence.contains("ONNX model cut short"));
    assert_eq!(r.findings[0].severity, Severity::Medium);
    // The same bytes under a name that claims nothing: no finding.
    assert!(sc.scan_bytes(cut, "blob.bin").findings.is_empty());
    // Noise under an ONNX name is still a suffix mismatch.
    let r = sc.scan_bytes(b"plain text, not a model at all", "model.onnx");
    assert_eq!(rules(&r), [aisec_scan::rules::SUFFIX_MISMATCH.id]);
}
