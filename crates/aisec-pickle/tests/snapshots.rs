//! Snapshot of the findings reported for a set of representative fixtures
//! (rule, severity, offset, evidence), so changes to evidence rendering and
//! rule selection are reviewed.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Location;
use aisec_pickle::{scan_npy, scan_pickle, Limits, Policy};

#[test]
fn findings_snapshot() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = String::new();
    for name in [
        "os_system_p0.pkl",
        "getattr_chain.pkl",
        "computed_stack_global.pkl",
        "nested_codecs.pkl",
        "numpy_builtins_dict_get.pkl",
        "partial.pkl",
        "trailing_junk.pkl",
        "unknown_class.pkl",
        "object_evil.npy",
        "legacy_torch_evil.pt",
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let loc = Location::path(name);
        let r = if name.ends_with(".npy") {
            scan_npy(&data, &loc, &Policy::default(), &Limits::default())
        } else {
            scan_pickle(&data, &loc, &Policy::default(), &Limits::default())
        };
        out.push_str(&format!(
            "== {name} (pickles {}, kind {:?})\n",
            r.pickles, r.kind
        ));
        for f in &r.findings {
            out.push_str(&format!(
                "{} {} @{} {}\n",
                f.rule_id,
                f.severity,
                f.location.offset.unwrap_or(0),
                f.evidence
            ));
        }
    }
    insta::assert_snapshot!(out);
}
