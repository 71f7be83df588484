//! `aisec provenance verify | manifest | sign` against the model-signing
//! fixtures of aisec-provenance (a folder signed by model-signing 1.1.1).

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{aisec, fixture};

/// The test key pair (P-256, made for these tests).
const TEST_SK: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTN3DDUA5F5d+2Jec
IUdjtynSxTCxaAJQ9iaw48TnByOhRANCAAQM6YjlFVUW3vRNV62sq2kldgkWy1/J
9i+HqKrnuzeaE58U2xOe6I/ISYUUHOTTaSHzqAJecgPWDEIYeRJNIbU8
-----END PRIVATE KEY-----
";
const TEST_PK: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDOmI5RVVFt70TVetrKtpJXYJFstf
yfYvh6iq57s3mhOfFNsTnuiPyEmFFBzk02kh86gCXnID1gxCGHkSTSG1PA==
-----END PUBLIC KEY-----
";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aisec-provenance/tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            fs::copy(e.path(), t).unwrap();
        }
    }
}

fn signed_copy() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("signed");
    copy_dir(&fixtures().join("signed"), &m);
    (t, m)
}

fn rules(v: &serde_json::Value) -> Vec<String> {
    let mut r: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap().to_string())
        .collect();
    r.sort();
    r
}

#[test]
fn a_model_signing_signature_verifies_and_exits_0() {
    let model = fixtures().join("signed");
    let key = fixtures().join("key.pub");
    let r = aisec(&["provenance", "verify"])
        .arg(&model)
        .arg("--public-key")
        .arg(&key)
        .args(&["--format", "json"])
        .run();
    r.expect_code(0);
    let v = r.json();
    assert_eq!(rules(&v), Vec::<String>::new());
    assert_eq!(v["data"]["signature_valid"], true);
    assert_eq!(v["data"]["signed_files"], 6);
    assert_eq!(v["data"]["files_hashed"], 6);
    let text = aisec(&["provenance", "verify"])
        .arg(&model)
        .arg("--public-key")
        .arg(&key)
        .run();
    text.expect_code(0);
    assert!(
        text.stdout
            .contains("Provenance signature: valid, 6 signed files"),
        "{}",
        text.stdout
    );
}

#[test]
fn tampering_exits_1_with_one_finding_per_file() {
    let (_t, m) = signed_copy();
    fs::write(m.join("weights.dat"), b"swapped").unwrap();
    fs::remove_file(m.join("config.json")).unwrap();
    fs::write(m.join("notes.md"), b"added").unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .args(&["--format", "json"])
        .run();
    r.expect_code(1);
    let v = r.json();
    assert_eq!(
        rules(&v),
        ["AISEC-PROV-003", "AISEC-PROV-004", "AISEC-PROV-005"]
    );
    let modified = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "AISEC-PROV-003")
        .unwrap();
    assert!(modified["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("weights.dat"));
    assert_eq!(
        modified["atlas"],
        serde_json::json!(["AML.T0010.003", "AML.T0018"])
    );
    // An added notes file is medium: with the default --fail-on high only the
    // high findings fail the run, and --fail-on medium counts it too.
    fs::write(
        m.join("weights.dat"),
        fs::read(fixtures().join("signed/weights.dat")).unwrap(),
    )
    .unwrap();
    fs::copy(fixtures().join("signed/config.json"), m.join("config.json")).unwrap();
    let base = || {
        aisec(&["provenance", "verify"])
            .arg(&m)
            .arg("--public-key")
            .arg(fixtures().join("key.pub"))
    };
    base().run().expect_code(0);
    base().args(&["--fail-on", "medium"]).run().expect_code(1);
}

#[test]
fn a_wrong_key_or_corrupt_signature_is_an_invalid_signature() {
    let model = fixtures().join("signed");
    let r = aisec(&["provenance", "verify"])
        .arg(&model)
        .arg("--public-key")
        .arg(fixtures().join("other.pub"))
        .args(&["--format", "json"])
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-002"]);

    let (t, m) = signed_copy();
    let sig = t.path().join("elsewhere.sig");
    fs::write(&sig, b"{\"mediaType\": 7}").unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--signature")
        .arg(&sig)
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .args(&["--format", "json"])
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-002"]);
}

#[test]
fn no_signature_is_an_unsigned_finding_and_no_key_is_an_error() {
    let (_t, m) = signed_copy();
    fs::remove_file(m.join("model.sig")).unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .args(&["--format", "json", "--fail-on", "low"])
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-001"]);
    // Missing model folder, unreadable key: exit 2 with the cause.
    let r = aisec(&["provenance", "verify", "/nonexistent/model", "--public-key"])
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("/nonexistent/model"), "{}", r.stderr);
    // ... and the missing model is what it says first, before asking for a key.
    let r = aisec(&["provenance", "verify", "/nonexistent/model"]).run();
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("cannot read the model /nonexistent/model"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("--public-key"), "{}", r.stderr);
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .args(&["--public-key", "/nonexistent/key.pub"])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("public key"), "{}", r.stderr);
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--public-key")
        .arg(m.join("config.json"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("P-256"), "{}", r.stderr);
}

#[test]
fn manifest_then_verify_against_it_and_sign_then_verify() {
    let (t, m) = signed_copy();
    let manifest = t.path().join("manifest.json");
    aisec(&["provenance", "manifest"])
        .arg(&m)
        .arg("-o")
        .arg(&manifest)
        .run()
        .expect_code(0);
    let st: serde_json::Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://model_signing/signature/v1.0");
    let names: Vec<&str> = st["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // The signature in the folder is hashed too (it is not this manifest);
    // .github is ignored.
    assert!(names.contains(&"model.sig") && !names.iter().any(|n| n.starts_with(".github")));
    aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--manifest")
        .arg(&manifest)
        .run()
        .expect_code(0);
    fs::write(m.join("a/b.txt"), b"changed").unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--manifest")
        .arg(&manifest)
        .args(&["--format", "json"])
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-003"]);

    // Sign with aisec (a fresh folder), verify with aisec.
    let key = t.path().join("key.pem");
    fs::write(&key, TEST_SK).unwrap();
    let pubkey = t.path().join("key.pub");
    fs::write(&pubkey, TEST_PK).unwrap();
    aisec(&["provenance", "sign"])
        .arg(&m)
        .arg("--private-key")
        .arg(&key)
        .run()
        .expect_code(0);
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--public-key")
        .arg(&pubkey)
        .args(&["--format", "json"])
        .run();
    r.expect_code(0);
    assert_eq!(r.json()["data"]["signed_files"], 6);
    // The model-signing public key does not verify aisec's signature.
    aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .run()
        .expect_code(1);
}

#[test]
fn scan_verify_signatures_adds_the_signature_check_to_the_scan() {
    let (t, m) = signed_copy();
    fs::copy(fixture("digits_mlp.onnx"), m.join("model.onnx")).unwrap();
    let key = t.path().join("key.pem");
    fs::write(&key, TEST_SK).unwrap();
    let pubkey = t.path().join("key.pub");
    fs::write(&pubkey, TEST_PK).unwrap();
    aisec(&["provenance", "sign"])
        .arg(&m)
        .arg("--private-key")
        .arg(&key)
        .run()
        .expect_code(0);
    let scan = || {
        aisec(&["scan"])
            .arg(&m)
            .arg("--verify-signatures")
            .arg(&pubkey)
            .args(&["--format", "json"])
            .run()
    };
    let r = scan();
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["data"]["provenance"][0]["signature_valid"], true, "{v}");
    assert_eq!(v["data"]["provenance"][0]["signed_files"], 7);
    assert_eq!(rules(&v), Vec::<String>::new());
    // The ONNX file is swapped for another model after signing.
    fs::copy(fixture("digits_cnn.onnx"), m.join("model.onnx")).unwrap();
    let r = scan();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-003"]);
    // A key that is not a key: the scan cannot do what was asked.
    let r = aisec(&["scan"])
        .arg(&m)
        .arg("--verify-signatures")
        .arg(m.join("config.json"))
        .run();
    r.expect_code(2);
}

#[test]
fn certificate_signatures_verify_against_the_given_root() {
    let c = fixtures().join("cert");
    let verify = |sig: &str, root: &str| {
        aisec(&["provenance", "verify"])
            .arg(c.join("model"))
            .arg("--signature")
            .arg(c.join("sigs").join(sig))
            .arg("--certificate-chain")
            .arg(c.join(root))
            .args(&["--format", "json"])
            .run()
    };
    let r = verify("good.sig", "root.pem");
    r.expect_code(0);
    let v = r.json();
    assert_eq!(rules(&v), Vec::<String>::new());
    assert_eq!(v["data"]["signed_files"], 3);
    assert_eq!(v["data"]["signer"]["curve"], "P-256");
    assert!(v["data"]["signer"]["subject"]
        .as_str()
        .unwrap()
        .contains("aisec test signer good"));
    assert_eq!(v["data"]["signer"]["expired"], false);
    // model-signing's name for the option, and the --root alias.
    aisec(&["provenance", "verify"])
        .arg(c.join("model"))
        .arg("--signature")
        .arg(c.join("sigs/expired.sig"))
        .arg("--root")
        .arg(c.join("root.pem"))
        .run()
        .expect_code(0);
    for (sig, root) in [
        ("good.sig", "other-root.pem"),
        ("no-signing-usage.sig", "root.pem"),
        ("leaf-only.sig", "root.pem"),
    ] {
        let r = verify(sig, root);
        r.expect_code(1);
        assert_eq!(rules(&r.json()), ["AISEC-PROV-002"], "{sig} {root}");
    }
    verify("leaf-only.sig", "root-and-intermediate.pem").expect_code(0);
    // A tampered copy: the chain is fine, the file is not.
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("model");
    copy_dir(&c.join("model"), &m);
    fs::write(m.join("sub/notes.txt"), b"edited").unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&m)
        .arg("--signature")
        .arg(c.join("sigs/good.sig"))
        .arg("--certificate_chain")
        .arg(c.join("root.pem"))
        .args(&["--format", "json"])
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-003"]);
}

#[test]
fn certificate_signature_wrong_input_exits_2_with_the_reason() {
    let c = fixtures().join("cert");
    let base = || {
        aisec(&["provenance", "verify"])
            .arg(c.join("model"))
            .arg("--signature")
            .arg(c.join("sigs/good.sig"))
    };
    // A key for a certificate-based bundle.
    let r = base()
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--certificate-chain"), "{}", r.stderr);
    // Roots for a key-based bundle.
    let r = aisec(&["provenance", "verify"])
        .arg(fixtures().join("signed"))
        .arg("--certificate-chain")
        .arg(c.join("root.pem"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--public-key"), "{}", r.stderr);
    // A missing root file, and a file that holds no certificate.
    let r = base()
        .args(&["--certificate-chain", "/nonexistent/root.pem"])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("/nonexistent/root.pem"), "{}", r.stderr);
    let r = base()
        .arg("--certificate-chain")
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("no PEM certificate"), "{}", r.stderr);
    // No trust at all.
    let r = base().run();
    r.expect_code(2);
    assert!(r.stderr.contains("--certificate-chain"), "{}", r.stderr);
    // A keyless Sigstore bundle (Fulcio certificate, Rekor entry) needs a trust root.
    let t = tempfile::tempdir().unwrap();
    let keyless = t.path().join("keyless.sig");
    fs::write(
        &keyless,
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="},"tlogEntries":[]},"dsseEnvelope":{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":""}]}}"#,
    )
    .unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(c.join("model"))
        .arg("--signature")
        .arg(&keyless)
        .arg("--certificate-chain")
        .arg(c.join("root.pem"))
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("keyless") && r.stderr.contains("--trust-root"),
        "{}",
        r.stderr
    );
}

fn keyless_dir() -> PathBuf {
    fixtures().join("keyless")
}

/// `aisec provenance verify MODEL --signature SIG --trust-root ROOT
/// --identity ID --identity-provider URL --format json`.
fn keyless_verify(model: &Path, sig: &str, root: &str, id: &str, idp: &str) -> crate::util::Run {
    let k = keyless_dir();
    aisec(&["provenance", "verify"])
        .arg(model)
        .arg("--signature")
        .arg(k.join("sigs").join(sig))
        .arg("--trust-root")
        .arg(k.join(root))
        .args(&[
            "--identity",
            id,
            "--identity-provider",
            idp,
            "--format",
            "json",
        ])
        .run()
}

const ID: &str = "signer@aisec.test";
const IDP: &str = "https://oidc.aisec.test";

#[test]
fn a_keyless_signature_verifies_offline_against_a_trust_root() {
    let k = keyless_dir();
    for root in ["trust_config.json", "trusted_root.json"] {
        let r = keyless_verify(&k.join("model"), "valid.sig", root, ID, IDP);
        r.expect_code(0);
        let v = r.json();
        assert_eq!(rules(&v), Vec::<String>::new());
        assert_eq!(v["data"]["signature_valid"], true);
        assert_eq!(v["data"]["signed_files"], 3);
        assert_eq!(v["data"]["signer"]["identity"], ID);
        assert_eq!(v["data"]["signer"]["oidc_issuer"], IDP);
        assert_eq!(v["data"]["signer"]["log_index"], 1005);
        assert_eq!(v["data"]["trust_root"]["ct_log_keys"], 1);
        assert_eq!(v["data"]["identity"], ID);
    }
    // model-signing's flag spellings work too; the text names the signer.
    let r = aisec(&["provenance", "verify"])
        .arg(k.join("model"))
        .arg("--signature")
        .arg(k.join("sigs/valid.sig"))
        .arg("--trust_config")
        .arg(k.join("trust_config.json"))
        .args(&["--identity", ID, "--identity_provider", IDP])
        .run();
    r.expect_code(0);
    assert!(
        r.stdout
            .contains("Signed by signer@aisec.test (OIDC issuer https://oidc.aisec.test)"),
        "{}",
        r.stdout
    );
    // Wrong signer, a broken log proof, a changed file: findings, exit 1.
    for (sig, id, idp, says) in [
        ("valid.sig", "mallory@aisec.test", IDP, "do not include"),
        ("valid.sig", ID, "https://evil.test", "OIDC issuer"),
        ("proof-broken.sig", ID, IDP, "inclusion proof"),
        ("sct-broken.sig", ID, IDP, "embedded SCT"),
    ] {
        let r = keyless_verify(&k.join("model"), sig, "trust_config.json", id, idp);
        r.expect_code(1);
        let v = r.json();
        assert_eq!(rules(&v), ["AISEC-PROV-002"], "{sig} {id} {idp}");
        let ev = v["findings"][0]["evidence"].as_str().unwrap();
        assert!(ev.contains(says), "{sig}: {ev}");
    }
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("model");
    copy_dir(&k.join("model"), &m);
    fs::write(m.join("weights.bin"), b"changed").unwrap();
    let r = keyless_verify(&m, "valid.sig", "trust_config.json", ID, IDP);
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-003"]);
}

#[test]
fn keyless_wrong_input_exits_2_with_the_reason() {
    let k = keyless_dir();
    let model = k.join("model");
    let sig = k.join("sigs/valid.sig");
    let base = || {
        aisec(&["provenance", "verify"])
            .arg(&model)
            .arg("--signature")
            .arg(&sig)
    };
    // A missing trust root file.
    let r = base()
        .args(&[
            "--trust-root",
            "/nonexistent/trusted_root.json",
            "--identity",
            ID,
        ])
        .args(&["--identity-provider", IDP])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("cannot read trust root"), "{}", r.stderr);
    // A file that is not a trust root.
    let r = base()
        .arg("--trust-root")
        .arg(k.join("sigs/valid.sig"))
        .args(&["--identity", ID, "--identity-provider", IDP])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("media type"), "{}", r.stderr);
    // No identity, no issuer.
    let r = base()
        .arg("--trust-root")
        .arg(k.join("trusted_root.json"))
        .args(&["--identity-provider", IDP])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--identity"), "{}", r.stderr);
    let r = base()
        .arg("--trust-root")
        .arg(k.join("trusted_root.json"))
        .args(&["--identity", ID])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--identity-provider"), "{}", r.stderr);
    // --identity without a trust root.
    let r = base()
        .args(&["--identity", ID])
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--trust-root"), "{}", r.stderr);
    // A keyless bundle with a public key.
    let r = base()
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--trust-root"), "{}", r.stderr);
    // An older bundle version.
    let t = tempfile::tempdir().unwrap();
    let old = t.path().join("old.sig");
    fs::write(
        &old,
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1"}"#,
    )
    .unwrap();
    let r = aisec(&["provenance", "verify"])
        .arg(&model)
        .arg("--signature")
        .arg(&old)
        .arg("--trust-root")
        .arg(k.join("trusted_root.json"))
        .args(&["--identity", ID, "--identity-provider", IDP])
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("not supported") && r.stderr.contains("version=0.1"),
        "{}",
        r.stderr
    );
}

/// A hub-shaped loopback server over `root` (`root/ORG/NAME` are repos);
/// its first request is answered 429, so retries are exercised too.
struct Hub {
    _rt: tokio::runtime::Runtime,
    url: String,
    stats: std::sync::Arc<aisec_remote::hubserver::HubStats>,
}

fn hub(root: &Path) -> Hub {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let s = rt
        .block_on(aisec_remote::hubserver::serve(root, true))
        .unwrap();
    Hub {
        url: s.url,
        stats: s.stats,
        _rt: rt,
    }
}

/// Findings as comparable JSON, with the folder or repo prefix removed.
fn findings_without(v: &serde_json::Value, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.to_string().replace(prefix, "<model>"))
        .collect();
    out.sort();
    out
}

#[test]
fn a_hub_repo_verifies_in_place_like_the_local_folder() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("org/signed");
    copy_dir(&fixtures().join("signed"), &repo);
    let h = hub(root.path());
    let both = |extra: &[&str]| {
        let remote = aisec(&["provenance", "verify", "hf://org/signed", "--public-key"])
            .arg(fixtures().join("key.pub"))
            .args(&["--format", "json", "--fail-on", "low"])
            .args(extra)
            .env("HF_ENDPOINT", &h.url)
            .run();
        let local = aisec(&["provenance", "verify"])
            .arg(&repo)
            .arg("--public-key")
            .arg(fixtures().join("key.pub"))
            .args(&["--format", "json", "--fail-on", "low"])
            .args(extra)
            .run();
        (remote, local)
    };
    let (r, l) = both(&[]);
    r.expect_code(0);
    l.expect_code(0);
    let (rv, lv) = (r.json(), l.json());
    for k in [
        "signature_valid",
        "signed_files",
        "files_hashed",
        "root_digest",
    ] {
        assert_eq!(rv["data"][k], lv["data"][k], "{k}");
    }
    assert_eq!(rv["data"]["files_hashed"], 6);
    let rev = rv["data"]["revision"].as_str().unwrap().to_string();
    assert_eq!(
        rv["data"]["signature"],
        format!("hf://org/signed@{rev}/model.sig")
    );
    // Every signed byte travelled once, no more (1 KiB weights + small files).
    assert_eq!(rv["summary"]["bytes"], lv["summary"]["bytes"]);

    // Tampered on the server: the same findings as locally, named remotely.
    fs::write(repo.join("weights.dat"), b"swapped").unwrap();
    fs::remove_file(repo.join("config.json")).unwrap();
    fs::write(repo.join("loader.py"), b"import os").unwrap();
    let (r, l) = both(&[]);
    r.expect_code(1);
    l.expect_code(1);
    let (rv, lv) = (r.json(), l.json());
    assert_eq!(
        rules(&rv),
        ["AISEC-PROV-003", "AISEC-PROV-004", "AISEC-PROV-005"]
    );
    let remote_prefix = format!("hf://org/signed@{rev}");
    assert_eq!(
        findings_without(&rv, &remote_prefix),
        findings_without(&lv, &repo.display().to_string())
    );
    let modified = rv["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "AISEC-PROV-003")
        .unwrap();
    assert_eq!(
        modified["location"]["path"],
        format!("{remote_prefix}/weights.dat")
    );
    assert!(h.stats.throttled.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // A local manifest as the reference for the remote files.
    let man = root.path().join("manifest.json");
    aisec(&["provenance", "manifest"])
        .arg(&repo)
        .arg("-o")
        .arg(&man)
        .run()
        .expect_code(0);
    let r = aisec(&["provenance", "verify", "hf://org/signed", "--manifest"])
        .arg(&man)
        .args(&["--format", "json", "--fail-on", "low"])
        .env("HF_ENDPOINT", &h.url)
        .run();
    r.expect_code(0);
    fs::write(repo.join("loader.py"), b"import sys").unwrap();
    let r = aisec(&["provenance", "verify", "hf://org/signed", "--manifest"])
        .arg(&man)
        .args(&["--format", "json"])
        .env("HF_ENDPOINT", &h.url)
        .run();
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-003"]);

    // No signature in the repo: an unsigned-model finding.
    fs::remove_file(repo.join("model.sig")).unwrap();
    let (r, _) = both(&[]);
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-001"]);
}

#[test]
fn a_certificate_signed_hub_repo_verifies_in_place() {
    let c = fixtures().join("cert");
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("org/cert");
    copy_dir(&c.join("model"), &repo);
    fs::copy(c.join("sigs/good.sig"), repo.join("model.sig")).unwrap();
    let h = hub(root.path());
    let run = |root_pem: &str| {
        aisec(&[
            "provenance",
            "verify",
            "hf://org/cert@main",
            "--certificate-chain",
        ])
        .arg(c.join(root_pem))
        .args(&["--format", "json"])
        .env("HF_ENDPOINT", &h.url)
        .run()
    };
    let r = run("root.pem");
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["data"]["signed_files"], 3);
    assert!(v["data"]["signer"]["subject"]
        .as_str()
        .unwrap()
        .contains("signer good"));
    let r = run("other-root.pem");
    r.expect_code(1);
    let v = r.json();
    assert_eq!(rules(&v), ["AISEC-PROV-002"]);
    assert!(v["findings"][0]["location"]["path"]
        .as_str()
        .unwrap()
        .ends_with("/model.sig"));
}

#[test]
fn a_keyless_signed_hub_repo_verifies_in_place() {
    let k = keyless_dir();
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("org/keyless");
    copy_dir(&k.join("model"), &repo);
    fs::copy(k.join("sigs/valid.sig"), repo.join("model.sig")).unwrap();
    let h = hub(root.path());
    let run = |id: &str| {
        aisec(&[
            "provenance",
            "verify",
            "hf://org/keyless@main",
            "--trust-root",
        ])
        .arg(k.join("trust_config.json"))
        .args(&[
            "--identity",
            id,
            "--identity-provider",
            IDP,
            "--format",
            "json",
        ])
        .env("HF_ENDPOINT", &h.url)
        .run()
    };
    let r = run(ID);
    r.expect_code(0);
    let v = r.json();
    assert_eq!(v["data"]["signed_files"], 3);
    assert_eq!(v["data"]["signer"]["identity"], ID);
    let r = run("someone@else.test");
    r.expect_code(1);
    assert_eq!(rules(&r.json()), ["AISEC-PROV-002"]);
}

#[test]
fn remote_verify_wrong_input_exits_2() {
    // A dead endpoint (nothing listens on port 9 of loopback).
    let r = aisec(&["provenance", "verify", "hf://org/none", "--public-key"])
        .arg(fixtures().join("key.pub"))
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("cannot list hf://org/none"),
        "{}",
        r.stderr
    );
    // A repo the hub does not have.
    let root = tempfile::tempdir().unwrap();
    let h = hub(root.path());
    let r = aisec(&["provenance", "verify", "hf://org/missing", "--public-key"])
        .arg(fixtures().join("key.pub"))
        .env("HF_ENDPOINT", &h.url)
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("404"), "{}", r.stderr);
    // A single URL is not a folder.
    let r = aisec(&[
        "provenance",
        "verify",
        "https://example.invalid/model.bin",
        "--public-key",
    ])
    .arg(fixtures().join("key.pub"))
    .run();
    r.expect_code(2);
    assert!(r.stderr.contains("no file listing"), "{}", r.stderr);
}

#[test]
fn an_s3_prefix_verifies_in_place_like_the_local_folder() {
    let s3root = tempfile::tempdir().unwrap();
    let repo = s3root.path().join("models/signed");
    copy_dir(&fixtures().join("signed"), &repo);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fs3 = s3s_fs::FileSystem::new(s3root.path()).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs3);
    b.set_auth(s3s::auth::SimpleAuth::from_single("AKTEST", "SECRETTEST"));
    let service = b.build().into_shared();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let http =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(hyper_util::rt::TokioIo::new(sock), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    let remote = || {
        aisec(&["provenance", "verify", "s3://models/signed", "--public-key"])
            .arg(fixtures().join("key.pub"))
            .args(&["--format", "json", "--fail-on", "low"])
            .env("AWS_ENDPOINT_URL", format!("http://{addr}"))
            .env("AWS_ACCESS_KEY_ID", "AKTEST")
            .env("AWS_SECRET_ACCESS_KEY", "SECRETTEST")
            .env("AWS_REGION", "us-east-1")
            .run()
    };
    let r = remote();
    r.expect_code(0);
    assert_eq!(r.json()["data"]["files_hashed"], 6);
    fs::write(repo.join("a/b.txt"), b"changed").unwrap();
    let r = remote();
    r.expect_code(1);
    let v = r.json();
    assert_eq!(rules(&v), ["AISEC-PROV-003"]);
    assert_eq!(
        v["findings"][0]["location"]["path"],
        "s3://models/signed/a/b.txt"
    );
    let local = aisec(&["provenance", "verify"])
        .arg(&repo)
        .arg("--public-key")
        .arg(fixtures().join("key.pub"))
        .args(&["--format", "json", "--fail-on", "low"])
        .run();
    assert_eq!(
        findings_without(&v, "s3://models/signed"),
        findings_without(&local.json(), &repo.display().to_string())
    );
}

#[test]
fn scan_verifies_keyless_signatures_and_counts_their_findings() {
    let k = keyless_dir();
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("model");
    copy_dir(&k.join("model"), &m);
    fs::copy(k.join("sigs/valid.sig"), m.join("model.sig")).unwrap();
    // A model file the signature does not cover, so the scan has a format to read.
    fs::copy(fixture("digits_mlp.onnx"), m.join("extra.onnx")).unwrap();
    let scan = |id: &str, fmt: &str| {
        aisec(&["scan"])
            .arg(&m)
            .arg("--verify-trust-root")
            .arg(k.join("trusted_root.json"))
            .args(&["--verify-identity", id, "--verify-identity-provider", IDP])
            .args(&["--format", fmt])
            .run()
    };
    let r = scan(ID, "json");
    r.expect_code(1);
    let v = r.json();
    assert_eq!(rules(&v), ["AISEC-PROV-005"], "{v}");
    assert_eq!(v["data"]["provenance"][0]["signature_valid"], true);
    assert_eq!(v["data"]["provenance"][0]["signer"]["identity"], ID);
    assert_eq!(v["summary"]["by_severity"]["high"], 1, "{v}");
    // The text summary names the signer and counts the signature's finding.
    let r = scan(ID, "text");
    r.expect_code(1);
    assert!(
        r.stdout.contains("Signature: ")
            && r.stdout
                .contains("valid, 3 signed file(s), signed by signer@aisec.test")
            && r.stdout.contains("Findings: 1 high"),
        "{}",
        r.stdout
    );
    // Another signer than the one expected: the signature does not hold.
    let r = scan("mallory@aisec.test", "json");
    r.expect_code(1);
    let v = r.json();
    assert_eq!(rules(&v), ["AISEC-PROV-002"], "{v}");
    assert_eq!(v["data"]["provenance"][0]["signature_valid"], false);
    // A trust root without the expected signer, and a remote source: exit 2 before scanning.
    let r = aisec(&["scan"])
        .arg(&m)
        .arg("--verify-trust-root")
        .arg(k.join("trusted_root.json"))
        .args(&["--verify-identity-provider", IDP])
        .run();
    r.expect_code(2);
    assert!(r.stderr.contains("--verify-identity"), "{}", r.stderr);
    let r = aisec(&["scan", "hf://org/model", "--verify-signatures"])
        .arg(fixtures().join("key.pub"))
        .run();
    r.expect_code(2);
    assert!(
        r.stderr.contains("aisec provenance verify SOURCE"),
        "{}",
        r.stderr
    );
}
