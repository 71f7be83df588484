//! Model provenance: hash manifests of a model folder, and verification of
//! OpenSSF model-signing signatures against the files on disk.
//!
//! The format is that of the `model-signing` package (v1.x,
//! <https://github.com/sigstore/model-transparency>), read from its source
//! and cross-checked against it (`bench/provenance/`):
//!
//! * [`manifest`]: every file of a folder with its SHA-256, paths relative
//!   and `/`-separated, git paths and the signature ignored, symbolic links
//!   refused unless allowed, ordered the way model-signing orders them;
//! * [`statement`]: the in-toto v1 statement (predicate
//!   `https://model_signing/signature/v1.0`) that carries a manifest, with
//!   its root digest (SHA-256 over the file digests);
//! * [`bundle`]: the Sigstore bundle v0.3 JSON around a DSSE envelope
//!   holding that statement, and ECDSA P-256 / SHA-256 over the DSSE PAE
//!   (key-based signing; verifying and signing);
//! * [`cert`]: certificate-based bundles (own PKI): the chain from the
//!   bundle's signing certificate to trusted roots, as model-signing's
//!   certificate verifier checks it, then the DSSE signature (P-256/P-384);
//! * [`keyless`]: Sigstore keyless bundles (Fulcio certificate, embedded
//!   SCT, Rekor entry with inclusion proof, checkpoint and signed entry
//!   timestamp) verified offline against a [`trust_root`]
//!   (`trusted_root.json` or a client trust config), with the expected
//!   identity and OIDC issuer; [`tlog`] holds the transparency-log checks;
//! * [`verify_signature`] / [`verify_manifest`]: the findings
//!   ([`RULES`], ids `AISEC-PROV-0NN`): unsigned model, invalid signature,
//!   modified, missing and unsigned files, symbolic links.
//!
//! Bundles and statements are untrusted input: they are read with
//! [`aisec_core::json`]'s bounds and every malformed one is an
//! invalid-signature finding, never a panic. Sigstore bundles older than
//! v0.3, shard serialization and BLAKE hashes are refused as
//! [`ProvenanceError::Unsupported`]. [`compare_files`] and
//! [`signed_manifest`] let a caller verify files that are not on disk (the
//! CLI's `hf://` and `s3://` verification).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bundle;
pub mod cert;
pub mod keyless;
pub mod manifest;
mod rules;
pub mod statement;
pub mod tlog;
pub mod trust_root;

use std::path::Path;

use aisec_core::{Finding, Location};

pub use bundle::{Bundle, PrivateKey, PublicKey};
pub use cert::{Signer, TrustRoots};
pub use keyless::{Keyless, KeylessSigner, Policy};
pub use manifest::{hash_folder, HashOptions, HashOutcome, Manifest};
pub use rules::*;
pub use trust_root::SigstoreTrust;

/// Why provenance work could not be done (as opposed to findings).
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The model path is not a folder.
    #[error("{0} is not a folder")]
    NotAFolder(String),
    /// A file name that is not UTF-8 (model-signing records names as text).
    #[error("{0}: file name is not UTF-8")]
    BadName(String),
    /// A symbolic link where links are not allowed.
    #[error("{0} is a symbolic link; allow symlinks to hash its target")]
    Symlink(String),
    /// Neither a file nor a folder (FIFO, socket, device, broken link).
    #[error("{0} is neither a file nor a folder")]
    Special(String),
    /// More files than the bound.
    #[error("more than {0} files in the model folder")]
    TooManyFiles(usize),
    /// A key that cannot be used.
    #[error("key: {0}")]
    Key(String),
    /// A valid document aisec cannot check.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The signature is of another method than the trust given (a key for
    /// a certificate-based bundle, roots for a key-based one).
    #[error("{0}")]
    Method(String),
    /// A manifest file (given as the reference) that is not one.
    #[error("{path}: not a model-signing manifest: {why}")]
    BadManifest {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl ProvenanceError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ProvenanceError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Why a signature (or the manifest inside it) is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    fn new(s: impl Into<String>) -> Self {
        Invalid(s.into())
    }
}

/// Lower-case hex.
pub mod hex {
    /// Encodes bytes.
    pub fn encode(b: &[u8]) -> String {
        const D: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(b.len() * 2);
        for &x in b {
            s.push(D[usize::from(x >> 4)] as char);
            s.push(D[usize::from(x & 15)] as char);
        }
        s
    }

    /// Decodes hex (either case); `None` if malformed.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let b = s.as_bytes();
        if !b.len().is_multiple_of(2) {
            return None;
        }
        let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        b.chunks(2)
            .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
            .collect()
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// What was found.
    pub findings: Vec<Finding>,
    /// Files the trusted manifest lists (0 when none was trusted).
    pub signed_files: usize,
    /// Files hashed in the folder.
    pub files_hashed: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// The signature verified (or a manifest was given as the reference).
    pub signature_valid: bool,
    /// The verified manifest's root digest, hex.
    pub root_digest: Option<String>,
    /// Who signed, for a certificate-based signature that verified.
    pub signer: Option<Signer>,
}

/// What a signature is checked against.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The signer's public key (model-signing's `key` method).
    Key(PublicKey),
    /// Trusted root (and intermediate) certificates (model-signing's
    /// `certificate` method).
    Roots(TrustRoots),
    /// A Sigstore trust root and the expected signer (model-signing's
    /// `sigstore` method).
    Sigstore(Box<Keyless>),
}

/// Largest signature or manifest file read (the JSON bounds apply too).
const MAX_DOC: u64 = 96 << 20;

/// Reads a small regular file, refusing FIFOs and oversize files.
fn read_doc(path: &Path) -> Result<Vec<u8>, ProvenanceError> {
    let meta = std::fs::metadata(path).map_err(|e| ProvenanceError::io(path, e))?;
    if !meta.is_file() {
        return Err(ProvenanceError::Special(path.display().to_string()));
    }
    if meta.len() > MAX_DOC {
        return Err(ProvenanceError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(format!(
                "{} bytes, over the {MAX_DOC}-byte limit for a signature or manifest",
                meta.len()
            )),
        });
    }
    std::fs::read(path).map_err(|e| ProvenanceError::io(path, e))
}

/// Verifies the model-signing signature at `signature` over the folder
/// `model` with `key`, then compares the signed manifest with the files.
///
/// No signature file: an [`UNSIGNED_MODEL`] finding. A signature that does
/// not verify (malformed bundle, wrong key, bad ECDSA signature, payload
/// that is not a consistent model-signing statement): one
/// [`INVALID_SIGNATURE`] finding and no file comparison (nothing in it can
/// be trusted). Otherwise a finding per modified, missing, unsigned file
/// and symbolic link. `opts` adds ignore paths to those the signature
/// records; the signature file itself is ignored when inside the folder.
pub fn verify_signature(
    model: &Path,
    signature: &Path,
    key: &PublicKey,
    opts: &HashOptions,
) -> Result<Verification, ProvenanceError> {
    verify_signature_with(model, signature, &Trust::Key(key.clone()), opts)
}

/// [`verify_signature`] with a key or with trusted certificates: a
/// certificate-based bundle is checked against `Trust::Roots` (see
/// [`cert`]). A bundle of the other method than `trust` is
/// [`ProvenanceError::Method`].
pub fn verify_signature_with(
    model: &Path,
    signature: &Path,
    trust: &Trust,
    opts: &HashOptions,
) -> Result<Verification, ProvenanceError> {
    if !std::fs::metadata(model)
        .map_err(|e| ProvenanceError::io(model, e))?
        .is_dir()
    {
        return Err(ProvenanceError::NotAFolder(model.display().to_string()));
    }
    let sig_loc = Location::path(signature.display().to_string());
    if std::fs::symlink_metadata(signature).is_err() {
        return Ok(Verification {
            findings: vec![UNSIGNED_MODEL.finding(
                Location::path(model.display().to_string()),
                format!("no signature file at {}", signature.display()),
            )],
            ..Verification::default()
        });
    }
    let bytes = read_doc(signature)?;
    let invalid = |why: Invalid| Verification {
        findings: vec![INVALID_SIGNATURE.finding(sig_loc.clone(), why.0)],
        ..Verification::default()
    };
    let bundle = match Bundle::parse(&bytes)? {
        Ok(b) => b,
        Err(why) => return Ok(invalid(why)),
    };
    let (manifest, signer) = match signed_manifest(&bundle, trust)? {
        Ok(m) => m,
        Err(why) => return Ok(invalid(why)),
    };
    let mut v = compare(
        model,
        &manifest,
        opts,
        manifest::relative_inside(model, signature),
    )?;
    v.signer = signer;
    Ok(v)
}

/// Checks a parsed bundle against `trust` and returns the manifest it
/// signs (and the signer of a certificate-based one). `Ok(Err(_))` is an
/// invalid signature; `Err(Method)` a bundle of the other method.
pub fn signed_manifest(
    bundle: &Bundle,
    trust: &Trust,
) -> Result<Result<(Manifest, Option<Signer>), Invalid>, ProvenanceError> {
    const KEYLESS_NEEDS: &str = "the signature is a Sigstore keyless one (a Fulcio certificate \
        and a Rekor entry: model-signing's `sigstore` method): give the trust root with \
        --trust-root FILE and the expected signer with --identity and --identity-provider";
    let (payload, signer) = match (trust, &bundle.keyless, bundle.certificates.is_empty()) {
        (Trust::Sigstore(k), Some(m), _) => {
            if bundle.payload_type != bundle::PAYLOAD_TYPE {
                return Ok(Err(Invalid::new(format!(
                    "DSSE payload type is {:?}, expected {}",
                    bundle.payload_type,
                    bundle::PAYLOAD_TYPE
                ))));
            }
            match keyless::verify(
                m,
                &bundle.payload,
                &bundle.payload_type,
                &bundle.signature,
                k,
            ) {
                Ok((_, s)) => (&bundle.payload[..], Some(s)),
                Err(why) => return Ok(Err(why)),
            }
        }
        (_, Some(_), _) => return Err(ProvenanceError::Method(KEYLESS_NEEDS.into())),
        (Trust::Key(key), None, true) => match bundle.verify(key) {
            Ok(p) => (p, None),
            Err(why) => return Ok(Err(why)),
        },
        (Trust::Roots(roots), None, false) => match bundle.verify_with_roots(roots) {
            Ok((p, s)) => (p, Some(s)),
            Err(why) => return Ok(Err(why)),
        },
        (Trust::Key(_), None, false) => {
            return Err(ProvenanceError::Method(
                "the signature is certificate-based (model-signing's `certificate` method): \
                 give the trusted root certificate(s) with --certificate-chain ROOT.pem \
                 instead of a public key"
                    .into(),
            ))
        }
        (Trust::Roots(_), None, true) => {
            return Err(ProvenanceError::Method(
                "the signature is key-based (model-signing's `key` method, no certificate in \
                 the bundle): give the signer's public key with --public-key KEY.pem"
                    .into(),
            ))
        }
        (Trust::Sigstore(_), None, key_based) => {
            return Err(ProvenanceError::Method(format!(
                "the signature is {} and not a Sigstore keyless one: give {}",
                if key_based {
                    "key-based (model-signing's `key` method)"
                } else {
                    "certificate-based (model-signing's `certificate` method)"
                },
                if key_based {
                    "the signer's public key with --public-key KEY.pem"
                } else {
                    "the trusted root certificate(s) with --certificate-chain ROOT.pem"
                }
            )))
        }
    };
    Ok(statement::parse(payload)?.map(|m| (m, signer)))
}

/// Compares the folder `model` with an unsigned manifest (an in-toto
/// statement as `aisec provenance manifest` or model-signing writes it).
/// A manifest file that is not one is an error, not a finding.
pub fn verify_manifest(
    model: &Path,
    manifest_path: &Path,
    opts: &HashOptions,
) -> Result<Verification, ProvenanceError> {
    let bytes = read_doc(manifest_path)?;
    let m = statement::parse(&bytes)?.map_err(|why| ProvenanceError::BadManifest {
        path: manifest_path.display().to_string(),
        why: why.0,
    })?;
    compare(
        model,
        &m,
        opts,
        manifest::relative_inside(model, manifest_path),
    )
}

/// The hashing options a verification against `expected` uses: the
/// caller's, plus the ignore paths and symlink setting the signed
/// manifest records, plus `also_ignore` (the signature inside the folder).
pub fn verification_options(
    expected: &Manifest,
    opts: &HashOptions,
    also_ignore: Option<String>,
) -> HashOptions {
    let mut hash_opts = opts.clone();
    hash_opts
        .ignore_paths
        .extend(expected.serialization.ignore_paths.iter().cloned());
    hash_opts.ignore_paths.extend(also_ignore);
    hash_opts.allow_symlinks |= expected.serialization.allow_symlinks;
    hash_opts
}

/// Hashes the folder the way the manifest says it was hashed and reports
/// the differences.
fn compare(
    model: &Path,
    expected: &Manifest,
    opts: &HashOptions,
    also_ignore: Option<String>,
) -> Result<Verification, ProvenanceError> {
    let hash_opts = verification_options(expected, opts, also_ignore);
    let out = manifest::walk(model, &hash_opts)?;
    let at = |rel: &str| Location::path(model.join(rel).display().to_string());
    let findings = compare_files(expected, &out.manifest.files, &out.symlinks, &at);
    Ok(Verification {
        findings,
        signed_files: expected.files.len(),
        files_hashed: out.manifest.files.len(),
        bytes: out.bytes,
        signature_valid: true,
        root_digest: Some(hex::encode(&expected.root_digest())),
        signer: None,
    })
}

/// The findings of comparing a trusted manifest with the files found
/// (relative path to SHA-256; `symlinks`: links met where not allowed).
/// `at` names a file in findings (a local path, a remote object). Used by
/// the folder verification and by verifiers of remote repositories.
pub fn compare_files(
    expected: &Manifest,
    actual: &std::collections::BTreeMap<String, manifest::Sha256Digest>,
    symlinks: &[String],
    at: &dyn Fn(&str) -> Location,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for link in symlinks {
        findings.push(SYMLINK.finding(
            at(link),
            "symbolic link in a folder signed without allow_symlinks",
        ));
    }
    for (name, want) in expected.ordered() {
        match actual.get(name) {
            Some(got) if got == want => {}
            Some(got) => findings.push(
                FILE_MODIFIED
                    .finding(
                        at(name),
                        format!(
                            "sha256 is {}, the signed manifest says {}",
                            hex::encode(got),
                            hex::encode(want)
                        ),
                    )
                    .metric("expected_sha256", hex::encode(want))
                    .metric("actual_sha256", hex::encode(got)),
            ),
            None if symlinks.iter().any(|l| l == name) => {}
            None => findings.push(FILE_MISSING.finding(
                at(name),
                format!("the signed manifest lists {name}; the folder has no such file"),
            )),
        }
    }
    let mut extra: Vec<(&String, &manifest::Sha256Digest)> = actual
        .iter()
        .filter(|(name, _)| !expected.files.contains_key(*name))
        .collect();
    extra.sort_by(|a, b| manifest::path_order(a.0, b.0));
    for (name, got) in extra {
        findings.push(
            FILE_UNSIGNED
                .finding(at(name), format!("{name} is not in the signed manifest"))
                .metric("actual_sha256", hex::encode(got))
                .severity(extra_severity(name)),
        );
    }
    findings
}

/// File name endings of code and model formats that loaders pick up by
/// name or pattern: an unsigned one next to signed files is high severity.
const LOADABLE: &[&str] = &[
    ".py",
    ".pyc",
    ".so",
    ".dylib",
    ".dll",
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
    ".pickle",
    ".joblib",
    ".ckpt",
    ".safetensors",
    ".gguf",
    ".ggml",
    ".onnx",
    ".h5",
    ".hdf5",
    ".keras",
    ".pb",
    ".tflite",
    ".npy",
    ".npz",
    ".msgpack",
    ".mar",
    ".llamafile",
];

fn extra_severity(name: &str) -> aisec_core::Severity {
    let lower = name.to_ascii_lowercase();
    if LOADABLE.iter().any(|e| lower.ends_with(e)) {
        aisec_core::Severity::High
    } else {
        FILE_UNSIGNED.default_severity
    }
}

/// Builds the manifest of `model` and signs it with `key` (model-signing's
/// key-based method); returns the manifest and the bundle JSON. The
/// signature path, when inside the folder, should be in `opts.ignore_paths`.
pub fn sign(
    model: &Path,
    key: &PrivateKey,
    opts: &HashOptions,
) -> Result<(Manifest, String), ProvenanceError> {
    let out = hash_folder(model, opts)?;
    let statement = serde_json::to_vec_pretty(&out.manifest.statement())
        .map_err(|e| ProvenanceError::Key(e.to_string()))?;
    let bundle = key.sign_bundle(&statement)?;
    Ok((out.manifest, bundle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn key() -> PrivateKey {
        PrivateKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIEzdww1AOReXftiXnCFHY7cp0sUwsWgCUPYmsOPE5wcjoAoGCCqGSM49
AwEHoUQDQgAEDOmI5RVVFt70TVetrKtpJXYJFstfyfYvh6iq57s3mhOfFNsTnuiP
yEmFFBzk02kh86gCXnID1gxCGHkSTSG1PA==
-----END EC PRIVATE KEY-----",
        )
        .unwrap()
    }

    fn signed_folder() -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("model");
        fs::create_dir_all(m.join("sub")).unwrap();
        fs::write(m.join("config.json"), b"{}").unwrap();
        fs::write(m.join("sub/w.bin"), b"weights").unwrap();
        fs::write(m.join("gone.txt"), b"bye").unwrap();
        let opts = HashOptions {
            ignore_paths: vec!["model.sig".into()],
            ..HashOptions::default()
        };
        let (_, bundle) = sign(&m, &key(), &opts).unwrap();
        fs::write(m.join("model.sig"), bundle).unwrap();
        (t, m)
    }

    fn rule_ids(v: &Verification) -> Vec<&str> {
        v.findings.iter().map(|f| f.rule_id.as_str()).collect()
    }

    #[test]
    fn an_untouched_signed_folder_verifies_clean() {
        let (_t, m) = signed_folder();
        let pk = key().public_key().unwrap();
        let v = verify_signature(&m, &m.join("model.sig"), &pk, &HashOptions::default()).unwrap();
        assert_eq!(rule_ids(&v), Vec::<&str>::new());
        assert!(v.signature_valid);
        assert_eq!((v.signed_files, v.files_hashed, v.bytes), (3, 3, 12));
    }

    #[test]
    fn tampering_is_reported_file_by_file() {
        let (_t, m) = signed_folder();
        fs::write(m.join("sub/w.bin"), b"weightz").unwrap();
        fs::remove_file(m.join("gone.txt")).unwrap();
        fs::write(m.join("extra.py"), b"import os").unwrap();
        let pk = key().public_key().unwrap();
        let v = verify_signature(&m, &m.join("model.sig"), &pk, &HashOptions::default()).unwrap();
        let mut ids = rule_ids(&v);
        ids.sort();
        assert_eq!(ids, ["AISEC-PROV-003", "AISEC-PROV-004", "AISEC-PROV-005"]);
        let modified = v
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-PROV-003")
            .unwrap();
        assert!(modified.location.path.ends_with("w.bin"));
        assert!(modified.atlas.contains(&"AML.T0018".to_string()));
        let extra = v
            .findings
            .iter()
            .find(|f| f.rule_id == "AISEC-PROV-005")
            .unwrap();
        assert_eq!(extra.severity, aisec_core::Severity::High, "a .py file");
        assert_eq!(extra_severity("notes.md"), aisec_core::Severity::Medium);
    }

    #[test]
    fn a_corrupt_or_foreign_signature_is_one_invalid_finding() {
        let (_t, m) = signed_folder();
        let sig = m.join("model.sig");
        let pk = key().public_key().unwrap();
        let mut text = fs::read_to_string(&sig).unwrap();
        text = text.replacen("\"sig\":\"M", "\"sig\":\"N", 1);
        fs::write(&sig, &text).unwrap();
        let v = verify_signature(&m, &sig, &pk, &HashOptions::default()).unwrap();
        assert_eq!(rule_ids(&v), ["AISEC-PROV-002"]);
        assert!(!v.signature_valid);
        fs::write(&sig, b"\x00garbage").unwrap();
        let v = verify_signature(&m, &sig, &pk, &HashOptions::default()).unwrap();
        assert_eq!(rule_ids(&v), ["AISEC-PROV-002"]);
        fs::remove_file(&sig).unwrap();
        let v = verify_signature(&m, &sig, &pk, &HashOptions::default()).unwrap();
        assert_eq!(rule_ids(&v), ["AISEC-PROV-001"]);
    }

    #[test]
    fn an_unsigned_manifest_can_be_the_reference() {
        let (t, m) = signed_folder();
        let out = hash_folder(&m, &HashOptions::default()).unwrap();
        let path = t.path().join("manifest.json");
        fs::write(
            &path,
            serde_json::to_vec(&out.manifest.statement()).unwrap(),
        )
        .unwrap();
        let v = verify_manifest(&m, &path, &HashOptions::default()).unwrap();
        // model.sig was hashed into this manifest (it ignores only git paths).
        assert_eq!(rule_ids(&v), Vec::<&str>::new());
        fs::write(m.join("config.json"), b"{\"x\":1}").unwrap();
        let v = verify_manifest(&m, &path, &HashOptions::default()).unwrap();
        assert_eq!(rule_ids(&v), ["AISEC-PROV-003"]);
        fs::write(&path, b"{}").unwrap();
        assert!(matches!(
            verify_manifest(&m, &path, &HashOptions::default()),
            Err(ProvenanceError::BadManifest { .. })
        ));
    }

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(hex::encode(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(hex::decode("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(hex::decode("0"), None);
        assert_eq!(hex::decode("zz"), None);
    }
}
