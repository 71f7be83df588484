//! Differential test against CPython's C unpickler: text-form INT, LONG,
//! GET and PUT operands that CPython accepts must not be reported
//! malformed, must yield the same value, and those it rejects must be
//! reported malformed. Vectors: `tests/vectors/int_forms.json`, made by
//! `scripts/pickle-diff/gen_vectors.py` with CPython 3.11.7.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.

use aisec_core::Location;
use aisec_pickle::{scan_pickle, Limits, Policy};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn text_integer_forms_match_cpython() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("vectors/int_forms.json")).unwrap();
    let vecs = doc["vectors"].as_array().unwrap();
    assert!(vecs.len() > 1000);
    let mut accepted = 0;
    let mut mismatches = Vec::new();
    for v in vecs {
        let data = unhex(v["pickle"].as_str().unwrap());
        let ok = v["ok"].as_bool().unwrap();
        let r = scan_pickle(
            &data,
            &Location::path("v.pkl"),
            &Policy::default(),
            &Limits::default(),
        );
        let malformed = r.findings.iter().any(|f| f.rule_id == "AISEC-PICKLE-009");
        let label = format!("{} {:?}", v["op"], v["form"].as_str().unwrap());
        if ok {
            accepted += 1;
            let want = v["value"].as_str().unwrap();
            let call = r
                .findings
                .iter()
                .find(|f| f.evidence.contains("mylib.f("))
                .map(|f| f.evidence.clone())
                .unwrap_or_default();
            // Values beyond i64 are kept as text; compare small ones exactly.
            let exact = want.len() < 19;
            if malformed || (exact && !call.contains(&format!("mylib.f({want})"))) {
                mismatches.push(format!("{label}: CPython {want}, aisec {:?}", r.findings));
            }
        } else if !malformed {
            mismatches.push(format!("{label}: CPython rejects, aisec accepted"));
        }
    }
    assert!(accepted > 150, "only {accepted} accepted vectors");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
