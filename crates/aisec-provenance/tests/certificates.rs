//! Certificate-based bundles written by the real `model-signing` package
//! (1.1.1, `sign certificate`) over a test PKI, committed under
//! tests/fixtures/cert by bench/provenance/gen_cert_fixtures.py, with
//! model-signing's own verdict for each (expected.json).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use aisec_provenance::{
    verify_signature_with, HashOptions, ProvenanceError, PublicKey, Trust, TrustRoots,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cert")
}

fn roots(file: &str) -> Trust {
    let mut r = TrustRoots::default();
    r.add_pem(&fs::read_to_string(dir().join(file)).unwrap(), file)
        .unwrap();
    Trust::Roots(r)
}

fn verdict(model: &Path, sig: &str, trust: &Trust) -> (bool, Vec<String>, String) {
    let v = verify_signature_with(
        model,
        &dir().join("sigs").join(sig),
        trust,
        &HashOptions::default(),
    )
    .unwrap();
    let ids = v.findings.iter().map(|f| f.rule_id.clone()).collect();
    let msg = v
        .findings
        .first()
        .map(|f| f.evidence.clone())
        .unwrap_or_default();
    (v.findings.is_empty() && v.signature_valid, ids, msg)
}

#[test]
fn aisec_agrees_with_model_signing_on_every_committed_case() {
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(dir().join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 30, "10 signatures x 3 trust files");
    let model = dir().join("model");
    let mut accepted = 0;
    for (case, want) in &expected {
        let (sig, trust) = case.split_once(' ').unwrap();
        let (ok, ids, msg) = verdict(&model, sig, &roots(trust));
        assert_eq!(ok, want.as_bool().unwrap(), "{case}: aisec {ids:?} {msg}");
        if !ok {
            assert_eq!(ids, ["AISEC-PROV-002"], "{case}: {msg}");
        }
        accepted += usize::from(ok);
    }
    // Both sides accept some and refuse some: the comparison is not vacuous.
    assert_eq!(accepted, 11);
}

#[test]
fn reasons_name_the_broken_rule() {
    let model = dir().join("model");
    let root = roots("root.pem");
    let cases = [
        (
            "good.sig",
            "other-root.pem",
            "does not verify with the key of",
        ),
        (
            "before-ca.sig",
            "root.pem",
            "not valid at the signing certificate's start",
        ),
        ("no-signing-usage.sig", "root.pem", "may not sign"),
        ("non-ca-issuer.sig", "root.pem", "not a CA certificate"),
        (
            "leaf-only.sig",
            "root.pem",
            "no chain from the signing certificate",
        ),
    ];
    for (sig, trust, why) in cases {
        let (ok, _, msg) = verdict(&model, sig, &roots(trust));
        assert!(!ok && msg.contains(why), "{sig} with {trust}: {msg}");
    }
    let v = verify_signature_with(
        &model,
        &dir().join("sigs/expired.sig"),
        &root,
        &HashOptions::default(),
    )
    .unwrap();
    let s = v.signer.unwrap();
    assert!(s.expired && s.subject.contains("signer expired"), "{s:?}");
    assert_eq!(s.chain.len(), 2, "intermediate and root: {s:?}");
    let (_, _, _) = verdict(&model, "p384.sig", &root);
    let v = verify_signature_with(
        &model,
        &dir().join("sigs/p384.sig"),
        &root,
        &HashOptions::default(),
    )
    .unwrap();
    assert_eq!(v.signer.unwrap().curve, "P-384");
}

#[test]
fn a_tampered_file_is_a_mismatch_after_a_valid_chain() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("model");
    fs::create_dir_all(m.join("sub")).unwrap();
    for f in ["config.json", "weights.bin", "sub/notes.txt"] {
        fs::copy(dir().join("model").join(f), m.join(f)).unwrap();
    }
    fs::write(m.join("weights.bin"), b"changed").unwrap();
    fs::write(m.join("extra.py"), b"import os").unwrap();
    let (ok, mut ids, _) = verdict(&m, "good.sig", &roots("root.pem"));
    ids.sort();
    assert!(!ok);
    assert_eq!(ids, ["AISEC-PROV-003", "AISEC-PROV-005"]);
}

#[test]
fn the_wrong_kind_of_trust_is_an_error_not_a_finding() {
    let model = dir().join("model");
    let key = PublicKey::from_pem(&fs::read_to_string(dir().join("../key.pub")).unwrap()).unwrap();
    let err = verify_signature_with(
        &model,
        &dir().join("sigs/good.sig"),
        &Trust::Key(key),
        &HashOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProvenanceError::Method(m) if m.contains("--certificate-chain")),
        "{err}"
    );
    let err = verify_signature_with(
        &dir().join("../signed"),
        &dir().join("../signed/model.sig"),
        &roots("root.pem"),
        &HashOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProvenanceError::Method(m) if m.contains("--public-key")),
        "{err}"
    );
}

#[test]
fn flipped_bytes_in_the_chain_are_refused_never_a_panic() {
    let root = roots("root.pem");
    let Trust::Roots(r) = &root else {
        unreachable!()
    };
    let bytes = fs::read(dir().join("sigs/good.sig")).unwrap();
    let b = aisec_provenance::Bundle::parse(&bytes).unwrap().unwrap();
    assert!(b.verify_with_roots(r).is_ok());
    let mut refused = 0;
    for which in 0..b.certificates.len() {
        for at in (0..b.certificates[which].len()).step_by(7) {
            let mut m = b.clone();
            m.certificates[which][at] ^= 0x01;
            // Any change to a signed certificate breaks its signature or its
            // encoding (the outer signature field of the leaf excepted, which
            // then fails as a signature).
            if m.verify_with_roots(r).is_err() {
                refused += 1;
            }
        }
    }
    let tried: usize = b.certificates.iter().map(|c| c.len().div_ceil(7)).sum();
    assert_eq!(refused, tried, "every flipped certificate is refused");
}
