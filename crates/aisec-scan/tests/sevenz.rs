//! 7z containers (issue 20): a PyTorch checkpoint folder packed with 7z
//! whose pickle breaks right after its payload (the "nullifAI" models) is
//! opened and its pickle analysed; the same folder with a plain state dict
//! stays clean. Fixtures: scripts/fixtures/gen_7z_fixtures.py.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Severity;
use aisec_scan::Scanner;

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../aisec-archive/tests/fixtures/7z/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn scan(name: &str) -> aisec_scan::FileResult {
    let r = Scanner::default().scan_bytes(&fixture(name), name);
    assert!(r.error.is_none(), "{:?}", r.error);
    r
}

fn top(r: &aisec_scan::FileResult) -> Option<Severity> {
    r.findings.iter().map(|f| f.severity).max()
}

#[test]
fn nullifai_checkpoint_in_7z_is_critical() {
    let r = scan("nullifai_torch.7z");
    assert_eq!(r.format.name(), "7z");
    let f = r
        .findings
        .iter()
        .find(|f| f.severity == Severity::Critical)
        .unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert!(f.rule_id.starts_with("AISEC-PICKLE"), "{f:?}");
    assert!(
        f.location.to_string().contains("archive/data.pkl"),
        "{}",
        f.location
    );
}

#[test]
fn benign_checkpoint_in_7z_is_clean() {
    let r = scan("benign_torch.7z");
    assert!(top(&r) < Some(Severity::Medium), "{:#?}", r.findings);
}

#[test]
fn every_coder_reaches_the_pickle() {
    for name in [
        "lzma1.7z",
        "bzip2.7z",
        "deflate.7z",
        "zstd.7z",
        "copy.7z",
        "delta_lzma2.7z",
        "bcj_x86.7z",
        "nonsolid.7z",
        "traversal.7z",
    ] {
        let r = scan(name);
        assert_eq!(
            top(&r),
            Some(Severity::Critical),
            "{name}: {:#?}",
            r.findings
        );
    }
}

#[test]
fn what_cannot_be_read_is_said() {
    let r = scan("encrypted.7z");
    assert!(
        r.findings.iter().any(|f| f.rule_id == "AISEC-ARCHIVE-005"),
        "{:#?}",
        r.findings
    );
    let r = scan("ppmd.7z");
    assert!(
        r.findings.iter().any(|f| f.rule_id == "AISEC-ARCHIVE-018"),
        "{:#?}",
        r.findings
    );
    let r = scan("truncated.7z");
    assert!(
        r.findings.iter().any(
            |f| f.rule_id.contains("MALFORMED") || f.title.to_lowercase().contains("malformed")
        ),
        "{:#?}",
        r.findings
    );
    let r = scan("symlink.7z");
    assert!(
        r.findings.iter().any(|f| f.rule_id == "AISEC-ARCHIVE-015"),
        "{:#?}",
        r.findings
    );
}
