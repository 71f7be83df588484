//! Verifies bundles written by the real `model-signing` package (1.1.1,
//! key-based), committed under tests/fixtures by
//! bench/provenance/gen_fixtures.py.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use aisec_provenance::{hash_folder, statement, Bundle, HashOptions, PublicKey};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(&fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// A copy of the signed folder to tamper with.
fn copy() -> (tempfile::TempDir, PathBuf) {
    fn cp(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let t = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                cp(&e.path(), &t);
            } else {
                fs::copy(e.path(), t).unwrap();
            }
        }
    }
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("signed");
    cp(&fixtures().join("signed"), &m);
    (t, m)
}

fn ids(model: &Path, sig: &Path, key: &PublicKey) -> Vec<String> {
    let v = aisec_provenance::verify_signature(model, sig, key, &HashOptions::default()).unwrap();
    let mut ids: Vec<String> = v.findings.into_iter().map(|f| f.rule_id).collect();
    ids.sort();
    ids
}

#[test]
fn a_model_signing_bundle_verifies_and_its_manifest_equals_ours() {
    let model = fixtures().join("signed");
    let sig = model.join("model.sig");
    let v =
        aisec_provenance::verify_signature(&model, &sig, &key("key.pub"), &HashOptions::default())
            .unwrap();
    assert!(v.findings.is_empty(), "{:#?}", v.findings);
    assert!(v.signature_valid);
    assert_eq!(v.signed_files, 6);

    // The statement model-signing signed, file by file and root digest,
    // equals the manifest aisec computes for the folder.
    let bundle = Bundle::parse(&fs::read(&sig).unwrap()).unwrap().unwrap();
    let theirs = statement::parse(bundle.verify(&key("key.pub")).unwrap())
        .unwrap()
        .unwrap();
    let opts = HashOptions {
        ignore_paths: vec!["model.sig".into()],
        ..HashOptions::default()
    };
    let ours = hash_folder(&model, &opts).unwrap().manifest;
    assert_eq!(ours.files, theirs.files);
    assert_eq!(ours.root_digest(), theirs.root_digest());
    assert_eq!(
        Some(aisec_provenance::hex::encode(&ours.root_digest())),
        v.root_digest
    );
    // Same order of resources, too (a-c.txt after a/b.txt).
    let names: Vec<&str> = ours.ordered().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "a/b.txt",
            "a-c.txt",
            "config.json",
            "empty.bin",
            "tokenizer/vocab.txt",
            "weights.dat"
        ]
    );
}

#[test]
fn the_pre_1_0_pae_signature_still_verifies() {
    let model = fixtures().join("signed");
    assert_eq!(
        ids(&model, &fixtures().join("compat.sig"), &key("key.pub")),
        Vec::<String>::new()
    );
}

#[test]
fn another_key_is_an_invalid_signature() {
    let model = fixtures().join("signed");
    assert_eq!(
        ids(&model, &model.join("model.sig"), &key("other.pub")),
        ["AISEC-PROV-002"]
    );
}

#[test]
fn tampered_added_removed_files_are_each_reported() {
    let (_t, m) = copy();
    let sig = m.join("model.sig");
    let k = key("key.pub");
    fs::write(m.join("weights.dat"), b"swapped").unwrap();
    assert_eq!(ids(&m, &sig, &k), ["AISEC-PROV-003"]);
    fs::write(m.join("tokenizer/extra.py"), b"import os").unwrap();
    assert_eq!(ids(&m, &sig, &k), ["AISEC-PROV-003", "AISEC-PROV-005"]);
    fs::remove_file(m.join("a/b.txt")).unwrap();
    assert_eq!(
        ids(&m, &sig, &k),
        ["AISEC-PROV-003", "AISEC-PROV-004", "AISEC-PROV-005"]
    );
    // A new file under an ignored (git) path is not a finding.
    fs::write(m.join(".github/new.yml"), b"x").unwrap();
    assert_eq!(ids(&m, &sig, &k).len(), 3);
}

#[test]
fn a_corrupted_signature_is_invalid() {
    let (_t, m) = copy();
    let sig = m.join("model.sig");
    let mut b: serde_json::Value = serde_json::from_slice(&fs::read(&sig).unwrap()).unwrap();
    // Re-encode the payload with one digest changed: the ECDSA signature no
    // longer covers it.
    let env = &mut b["dsseEnvelope"];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let text = String::from_utf8(payload).unwrap();
    let edited = text.replacen("\"digest\": \"", "\"digest\": \"0", 1);
    assert_ne!(edited, text);
    env["payload"] = b64.encode(edited).into();
    fs::write(&sig, serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(ids(&m, &sig, &key("key.pub")), ["AISEC-PROV-002"]);
}

#[cfg(unix)]
#[test]
fn a_symlink_in_a_folder_signed_without_symlinks_is_reported() {
    let (_t, m) = copy();
    std::os::unix::fs::symlink(m.join("config.json"), m.join("link.json")).unwrap();
    assert_eq!(
        ids(&m, &m.join("model.sig"), &key("key.pub")),
        ["AISEC-PROV-006"]
    );
}
