//! Runs every fixture listed in `tests/fixtures/expected.json` (written by
//! `scripts/fixtures/gen_pickle_fixtures.py`) and checks the rules it must
//! raise, that benign files stay below medium, and the stream kind.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::{Location, Severity};
use aisec_pickle::{scan_npy, scan_pickle, Limits, Policy, StreamKind};

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn every_fixture_meets_its_expectation() {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    let exp: serde_json::Value = serde_json::from_str(&text).unwrap();
    let exp = exp.as_object().unwrap();
    assert!(exp.len() >= 40, "fixture manifest too small: {}", exp.len());
    let policy = Policy::default();
    let limits = Limits::default();
    let mut failures = Vec::new();
    for (name, e) in exp {
        let data = std::fs::read(dir().join(name)).unwrap();
        let loc = Location::path(name.as_str());
        let r = if e["scan"] == "npy" {
            scan_npy(&data, &loc, &policy, &limits)
        } else {
            scan_pickle(&data, &loc, &policy, &limits)
        };
        let ids: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
        for want in e["rules"].as_array().unwrap() {
            if !ids.contains(&want.as_str().unwrap()) {
                failures.push(format!("{name}: missing {want}; got {:?}", r.findings));
            }
        }
        if e["clean"].as_bool().unwrap() {
            let bad: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Medium)
                .collect();
            if !bad.is_empty() {
                failures.push(format!("{name}: expected clean, got {bad:?}"));
            }
        }
        if let Some(k) = e.get("kind").and_then(|k| k.as_str()) {
            let want = match k {
                "TorchLegacy" => StreamKind::TorchLegacy,
                "Joblib" => StreamKind::Joblib,
                _ => StreamKind::Plain,
            };
            if r.kind != want {
                failures.push(format!("{name}: kind {:?}, want {want:?}", r.kind));
            }
        }
        if let Some(prof) = e.get("clean_with_profile").and_then(|p| p.as_str()) {
            let pol = Policy::default().with_profile(prof).unwrap();
            let r2 = scan_pickle(&data, &loc, &pol, &limits);
            let bad: Vec<_> = r2
                .findings
                .iter()
                .filter(|f| f.severity >= Severity::Medium)
                .collect();
            if !bad.is_empty() {
                failures.push(format!(
                    "{name}: expected clean with profile {prof}, got {bad:?}"
                ));
            }
        }
        // every finding points into the file
        for f in &r.findings {
            if f.location.offset.is_none_or(|o| o as usize > data.len()) {
                failures.push(format!("{name}: bad offset in {f:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn joblib_arrays_are_skipped_exactly() {
    let data = std::fs::read(dir().join("arrays.joblib")).unwrap();
    let r = scan_pickle(
        &data,
        &Location::path("a.joblib"),
        &Policy::default(),
        &Limits::default(),
    );
    assert_eq!(r.malformed, None);
    assert_eq!(r.consumed, data.len());
    assert_eq!(r.pickles, 1);
    assert!(r
        .globals
        .iter()
        .any(|g| g == "joblib.numpy_pickle.NumpyArrayWrapper"));
}

#[test]
fn legacy_torch_stops_after_storage_keys() {
    let data = std::fs::read(dir().join("legacy_torch.pt")).unwrap();
    let r = scan_pickle(
        &data,
        &Location::path("m.pt"),
        &Policy::default(),
        &Limits::default(),
    );
    assert_eq!(r.pickles, 5);
    assert!(r.consumed < data.len());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r
        .globals
        .iter()
        .any(|g| g == "torch._utils._rebuild_tensor_v2"));
}

#[test]
fn nested_findings_and_evidence() {
    let data = std::fs::read(dir().join("nested_loads.pkl")).unwrap();
    let r = scan_pickle(
        &data,
        &Location::path("n.pkl"),
        &Policy::default(),
        &Limits::default(),
    );
    let nested = r
        .findings
        .iter()
        .find(|f| f.evidence.starts_with("[nested pickle]"))
        .unwrap();
    assert!(
        nested.evidence.contains("os.system('id')"),
        "{}",
        nested.evidence
    );
    assert_eq!(nested.severity, Severity::Critical);
    let p0 = std::fs::read(dir().join("os_system_p0.pkl")).unwrap();
    let r = scan_pickle(
        &p0,
        &Location::path("p.pkl"),
        &Policy::default(),
        &Limits::default(),
    );
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].location.offset, Some(19));
    assert!(
        r.findings[0]
            .evidence
            .starts_with("os.system('id') via REDUCE"),
        "{}",
        r.findings[0].evidence
    );
}
