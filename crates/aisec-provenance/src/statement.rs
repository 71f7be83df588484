//! The in-toto statement model-signing signs (predicate
//! `https://model_signing/signature/v1.0`, and the v0.1 `Digests` predicate
//! of pre-1.0 releases), read from untrusted bytes.

use std::collections::BTreeMap;

use aisec_core::json::{self, JsonLimits};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::manifest::{Manifest, Serialization, Sha256Digest};
use crate::{hex, Invalid, ProvenanceError};

/// in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// model-signing's v1.0 predicate.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// model-signing's pre-1.0 predicate (digests as subjects).
pub const PREDICATE_TYPE_COMPAT: &str = "https://model_signing/Digests/v0.1";

/// Bounds for a statement: one resource is about 8 elements, so this allows
/// about 250,000 files.
pub const LIMITS: JsonLimits = JsonLimits {
    max_bytes: 64 << 20,
    max_depth: 16,
    max_elements: 2_000_000,
};

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    kind: String,
    #[serde(default)]
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    #[serde(default)]
    predicate: Option<RawPredicate>,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    name: String,
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawPredicate {
    serialization: RawSerialization,
    #[serde(default)]
    resources: Vec<RawResource>,
}

#[derive(Deserialize)]
struct RawSerialization {
    method: String,
    hash_type: String,
    #[serde(default, deserialize_with = "bool_or_string")]
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Vec<String>,
}

/// model-signing writes `false`; its pre-1.0 compat path uses `"false"`.
fn bool_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        B(bool),
        S(String),
    }
    Ok(match B::deserialize(d)? {
        B::B(b) => b,
        B::S(s) => s.eq_ignore_ascii_case("true"),
    })
}

#[derive(Deserialize)]
struct RawResource {
    name: String,
    algorithm: String,
    digest: String,
}

/// Reads a statement into a manifest, checking what model-signing checks:
/// the statement type, the predicate type, one subject whose digest is the
/// SHA-256 over the listed digests (in the order listed), and SHA-256 file
/// digests. `Err(Invalid)` means the document is not a valid signed
/// manifest; `ProvenanceError::Unsupported` a valid one aisec cannot check
/// (shard serialization, BLAKE hashes).
pub fn parse(bytes: &[u8]) -> Result<Result<Manifest, Invalid>, ProvenanceError> {
    let raw: RawStatement = match json::from_slice(bytes, &LIMITS) {
        Ok(r) => r,
        Err(e) => return Ok(Err(Invalid::new(format!("statement is not readable: {e}")))),
    };
    if raw.kind != STATEMENT_TYPE {
        return Ok(Err(Invalid::new(format!(
            "statement type is {:?}, expected {STATEMENT_TYPE}",
            raw.kind
        ))));
    }
    if raw.predicate_type == PREDICATE_TYPE_COMPAT {
        return Ok(compat(raw));
    }
    if raw.predicate_type != PREDICATE_TYPE {
        return Ok(Err(Invalid::new(format!(
            "predicate type is {:?}, expected {PREDICATE_TYPE}",
            raw.predicate_type
        ))));
    }
    let [subject] = raw.subject.as_slice() else {
        return Ok(Err(Invalid::new(format!(
            "statement has {} subjects, expected one",
            raw.subject.len()
        ))));
    };
    let Some(pred) = raw.predicate else {
        return Ok(Err(Invalid::new("statement has no predicate")));
    };
    let ser = pred.serialization;
    if ser.method != "files" {
        return Err(ProvenanceError::Unsupported(format!(
            "serialization method {:?} (aisec verifies the `files` method)",
            ser.method
        )));
    }
    if ser.hash_type != "sha256" {
        return Err(ProvenanceError::Unsupported(format!(
            "hash type {:?} (aisec verifies sha256 manifests)",
            ser.hash_type
        )));
    }
    let mut root = Sha256::new();
    let mut files = BTreeMap::new();
    for r in pred.resources {
        if r.algorithm != "sha256" {
            return Err(ProvenanceError::Unsupported(format!(
                "resource {:?} hashed with {:?}",
                r.name, r.algorithm
            )));
        }
        let Some(d) = digest(&r.digest) else {
            return Ok(Err(Invalid::new(format!(
                "resource {:?} has a malformed digest",
                r.name
            ))));
        };
        root.update(d);
        files.insert(r.name, d);
    }
    let expected = subject.digest.get("sha256").map(String::as_str);
    let got = hex::encode(&root.finalize());
    if expected != Some(got.as_str()) {
        return Ok(Err(Invalid::new(format!(
            "manifest is inconsistent: subject digest {} but the resources hash to {got}",
            expected.unwrap_or("(none)")
        ))));
    }
    Ok(Ok(Manifest {
        model_name: subject.name.clone(),
        serialization: Serialization {
            method: ser.method,
            hash_type: ser.hash_type,
            allow_symlinks: ser.allow_symlinks,
            ignore_paths: ser.ignore_paths,
        },
        files,
    }))
}

/// The v0.1 predicate: every file is a subject; no root digest.
fn compat(raw: RawStatement) -> Result<Manifest, Invalid> {
    let mut files = BTreeMap::new();
    for s in raw.subject {
        let d = s
            .digest
            .get("sha256")
            .and_then(|d| digest(d))
            .ok_or_else(|| Invalid::new(format!("subject {:?} has no sha256 digest", s.name)))?;
        files.insert(s.name, d);
    }
    Ok(Manifest {
        model_name: "compat-undefined-not-present".into(),
        serialization: Serialization {
            method: "files".into(),
            hash_type: "sha256".into(),
            allow_symlinks: false,
            ignore_paths: Vec::new(),
        },
        files,
    })
}

fn digest(s: &str) -> Option<Sha256Digest> {
    let v = hex::decode(s)?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{hash_folder, HashOptions};

    fn sample() -> Manifest {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a.bin"), b"a").unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/b.bin"), b"b").unwrap();
        hash_folder(t.path(), &HashOptions::default())
            .unwrap()
            .manifest
    }

    #[test]
    fn a_statement_round_trips() {
        let m = sample();
        let text = serde_json::to_vec(&m.statement()).unwrap();
        let back = parse(&text).unwrap().unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn an_edited_digest_breaks_the_root_digest() {
        let m = sample();
        let mut st = m.statement();
        st["predicate"]["resources"][0]["digest"] = serde_json::json!("00".repeat(32));
        let err = parse(&serde_json::to_vec(&st).unwrap())
            .unwrap()
            .unwrap_err();
        assert!(err.0.contains("inconsistent"), "{}", err.0);
    }

    #[test]
    fn wrong_types_are_invalid_and_shards_unsupported() {
        let m = sample();
        let mut st = m.statement();
        st["predicateType"] = serde_json::json!("https://example/x");
        assert!(parse(&serde_json::to_vec(&st).unwrap()).unwrap().is_err());
        let mut st = m.statement();
        st["predicate"]["serialization"]["method"] = serde_json::json!("shards");
        assert!(matches!(
            parse(&serde_json::to_vec(&st).unwrap()),
            Err(ProvenanceError::Unsupported(_))
        ));
        for bad in [&b"["[..], b"{}", b"null", &[0xff, 0xfe]] {
            assert!(parse(bad).unwrap().is_err());
        }
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(deep.as_bytes()).unwrap().is_err());
    }

    #[test]
    fn the_v0_1_predicate_lists_files_as_subjects() {
        let doc = serde_json::json!({
            "_type": STATEMENT_TYPE,
            "predicateType": PREDICATE_TYPE_COMPAT,
            "subject": [{"name": "w.bin", "digest": {"sha256": "ab".repeat(32)}}],
        });
        let m = parse(&serde_json::to_vec(&doc).unwrap()).unwrap().unwrap();
        assert_eq!(m.files["w.bin"], [0xab; 32]);
    }
}
