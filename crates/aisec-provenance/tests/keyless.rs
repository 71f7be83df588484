//! Sigstore keyless bundles made by bench/provenance/keyless.py (a
//! throwaway Fulcio, CT log and Rekor; the DSSE envelope from the real
//! `model_signing sign key`), committed under tests/fixtures/keyless with
//! model-signing 1.1.1's own verdict for each case (cases.json, from
//! `model_signing verify sigstore --trust_config`).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use aisec_provenance::{
    verify_signature_with, HashOptions, Keyless, Policy, ProvenanceError, SigstoreTrust, Trust,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keyless")
}

fn trust(file: &str, identity: &str, issuer: &str) -> Trust {
    Trust::Sigstore(Box::new(Keyless {
        trust: SigstoreTrust::parse(&fs::read(dir().join(file)).unwrap()).unwrap(),
        policy: Policy {
            identity: identity.into(),
            issuer: issuer.into(),
        },
    }))
}

fn cases() -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap()
}

/// A copy of the model folder with weights.bin changed (the "tampered-file" case).
fn tampered() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for rel in ["config.json", "weights.bin", "sub/notes.txt"] {
        let to = t.path().join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(dir().join("model").join(rel), &to).unwrap();
    }
    fs::write(t.path().join("weights.bin"), b"changed").unwrap();
    t
}

fn run(case: &serde_json::Value, trust_file: &str) -> aisec_provenance::Verification {
    let tmp = tampered();
    let model = if case["tamper"].as_bool().unwrap() {
        tmp.path().to_path_buf()
    } else {
        dir().join("model")
    };
    verify_signature_with(
        &model,
        &dir().join(case["signature"].as_str().unwrap()),
        &trust(
            trust_file,
            case["identity"].as_str().unwrap(),
            case["identity_provider"].as_str().unwrap(),
        ),
        &HashOptions::default(),
    )
    .unwrap()
}

#[test]
fn aisec_agrees_with_model_signing_on_every_committed_case() {
    let cases = cases();
    assert_eq!(cases.len(), 12);
    let mut accepted = 0;
    for trust_file in ["trust_config.json", "trusted_root.json"] {
        for (name, case) in &cases {
            let v = run(case, trust_file);
            let ok = v.findings.is_empty() && v.signature_valid;
            let want = case["model_signing_accepts"].as_bool().unwrap();
            let ids: Vec<&str> = v.findings.iter().map(|f| f.rule_id.as_str()).collect();
            assert_eq!(ok, want, "{name}: aisec {ids:?} {:?}", v.findings.first());
            if !ok {
                let expect = if name == "tampered-file" {
                    "AISEC-PROV-003"
                } else {
                    "AISEC-PROV-002"
                };
                assert_eq!(ids, [expect], "{name}: {:?}", v.findings.first());
            }
            accepted += usize::from(ok);
        }
    }
    // One case is valid; the other eleven are refused by both.
    assert_eq!(accepted, 2);
}

#[test]
fn each_refusal_names_the_step_that_failed() {
    let cases = cases();
    for (name, says) in [
        (
            "wrong-identity",
            "do not include the expected \"someone@else.test\"",
        ),
        ("wrong-issuer", "OIDC issuer is \"https://oidc.aisec.test\""),
        (
            "other-ca",
            "certificate chain: no chain from the signing certificate",
        ),
        ("sct-unknown-log", "embedded SCT: the signature of CT log"),
        ("sct-broken", "embedded SCT: the signature of CT log"),
        (
            "proof-broken",
            "inclusion proof does not lead to the root hash",
        ),
        (
            "checkpoint-bad-sig",
            "checkpoint: the signature of rekor.aisec.test does not verify",
        ),
        (
            "time-outside",
            "the signing certificate is not valid at the transparency log's integrated time",
        ),
        ("set-tampered", "signed entry timestamp"),
        (
            "body-mismatch",
            "payload hash is not the SHA-256 of the envelope's payload",
        ),
    ] {
        let v = run(&cases[name], "trust_config.json");
        let msg = &v.findings[0].evidence;
        assert!(msg.contains(says), "{name}: {msg}");
    }
    let v = run(&cases["valid"], "trusted_root.json");
    let s = v.signer.unwrap();
    let k = s.keyless.unwrap();
    assert_eq!(k.identity, "signer@aisec.test");
    assert_eq!(k.issuer, "https://oidc.aisec.test");
    assert_eq!(k.log_index, 1005);
    assert_eq!(k.integrated_time, s.not_before + 60);
    assert!(!s.expired, "checked at the log's time, not now");
    assert_eq!(v.signed_files, 3);
}

#[test]
fn a_keyless_bundle_needs_a_trust_root_and_other_bundles_do_not_take_one() {
    let model = dir().join("model");
    let key = aisec_provenance::PublicKey::from_pem(
        &fs::read_to_string(dir().join("../key.pub")).unwrap(),
    )
    .unwrap();
    let err = verify_signature_with(
        &model,
        &dir().join("sigs/valid.sig"),
        &Trust::Key(key),
        &HashOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProvenanceError::Method(m) if m.contains("--trust-root")),
        "{err}"
    );
    let signed = dir().join("../signed");
    let err = verify_signature_with(
        &signed,
        &signed.join("model.sig"),
        &trust("trusted_root.json", "a", "b"),
        &HashOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProvenanceError::Method(m) if m.contains("--public-key")),
        "{err}"
    );
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn mangled_keyless_bundles_are_invalid_not_panics() {
    let text = fs::read_to_string(dir().join("sigs/valid.sig")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = trust(
        "trust_config.json",
        "signer@aisec.test",
        "https://oidc.aisec.test",
    );
    let model = dir().join("model");
    let tmp = tempfile::tempdir().unwrap();
    let edits: Vec<(&str, Edit)> = vec![
        (
            "no entries",
            Box::new(|b| b["verificationMaterial"]["tlogEntries"] = serde_json::json!([])),
        ),
        (
            "two entries",
            Box::new(|b| {
                let e = b["verificationMaterial"]["tlogEntries"][0].clone();
                b["verificationMaterial"]["tlogEntries"] = serde_json::json!([e.clone(), e]);
            }),
        ),
        (
            "rekor v2",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["kindVersion"] =
                    serde_json::json!({"kind": "hashedrekord", "version": "0.0.2"})
            }),
        ),
        (
            "intoto",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] = "intoto".into()
            }),
        ),
        (
            "no time",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("integratedTime");
            }),
        ),
        (
            "no promise",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("inclusionPromise");
            }),
        ),
        (
            "no proof",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("inclusionProof");
            }),
        ),
        (
            "long proof",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] =
                    serde_json::json!(vec!["AA=="; 65])
            }),
        ),
        (
            "short hash",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] =
                    "AA==".into()
            }),
        ),
        (
            "index past size",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["logIndex"] =
                    "9".into()
            }),
        ),
        (
            "bad checkpoint",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
                    ["envelope"] = "x".into()
            }),
        ),
        (
            "body not base64",
            Box::new(|b| {
                b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = "!".into()
            }),
        ),
        (
            "entry junk",
            Box::new(|b| b["verificationMaterial"]["tlogEntries"][0] = serde_json::json!(7)),
        ),
        (
            "leaf junk",
            Box::new(|b| b["verificationMaterial"]["certificate"]["rawBytes"] = "AAAA".into()),
        ),
        (
            "timestamps",
            Box::new(|b| {
                b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
                    serde_json::json!([{"signedTimestamp": "AA=="}])
            }),
        ),
        (
            "two sigs",
            Box::new(|b| {
                let s = b["dsseEnvelope"]["signatures"][0].clone();
                b["dsseEnvelope"]["signatures"] = serde_json::json!([s.clone(), s]);
            }),
        ),
        (
            "payload type",
            Box::new(|b| b["dsseEnvelope"]["payloadType"] = "text/plain".into()),
        ),
        (
            "dsse sig",
            Box::new(|b| {
                let other = b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
                    ["signedEntryTimestamp"]
                    .clone();
                b["dsseEnvelope"]["signatures"][0]["sig"] = other;
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut b = good.clone();
        edit(&mut b);
        let sig = tmp.path().join("m.sig");
        fs::write(&sig, b.to_string()).unwrap();
        let v = verify_signature_with(&model, &sig, &t, &HashOptions::default()).unwrap();
        let ids: Vec<&str> = v.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["AISEC-PROV-002"], "{what}");
    }
}
