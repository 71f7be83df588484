//! Sigstore trust roots: the `trusted_root.json` of the Sigstore protobuf
//! specs (`dev.sigstore.trustroot.v1.TrustedRoot`, media type
//! `application/vnd.dev.sigstore.trustedroot+json;version=0.1`) and the
//! `ClientTrustConfig` that wraps one (what `model_signing verify sigstore
//! --trust_config` reads), read from untrusted bytes with serde and
//! [`aisec_core::json`]'s bounds.
//!
//! Kept: the Fulcio certificate authorities (their DER chains and validity
//! windows), the transparency log (Rekor) keys and the CT log keys, each
//! with its validity window and its log id, the SHA-256 of the key's DER
//! SubjectPublicKeyInfo, computed here as sigstore-python does (the `logId`
//! the file states is not trusted for lookup). Keys of types aisec does not
//! verify (RSA, Ed25519) are skipped and counted, as sigstore-python skips
//! them with a warning. Timestamp authorities are not read: keyless bundles
//! are verified with the transparency log's integrated time.

use aisec_core::json::{self, JsonLimits};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::bundle::RawChain;
use crate::cert::EcKey;
use crate::ProvenanceError;

/// Media type of a trusted root.
pub const TRUSTED_ROOT_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
/// Media type of a client trust config.
pub const TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// Bounds for a trust root file (Sigstore's public one is about 10 KiB).
pub const LIMITS: JsonLimits = JsonLimits {
    max_bytes: 4 << 20,
    max_depth: 16,
    max_elements: 50_000,
};
/// Most authorities or log keys of each kind kept.
pub const MAX_ENTRIES: usize = 64;
/// Most certificates in one authority's chain.
pub const MAX_CHAIN: usize = 8;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    trusted_root: Option<RawRoot>,
    #[serde(default)]
    tlogs: Option<Vec<RawLog>>,
    #[serde(default)]
    certificate_authorities: Option<Vec<RawCa>>,
    #[serde(default)]
    ctlogs: Option<Vec<RawLog>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: Option<String>,
    #[serde(default)]
    valid_for: Option<RawRange>,
}

#[derive(Debug, Deserialize)]
struct RawRange {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: Option<RawRange>,
}

/// A validity window, seconds since the Unix epoch (`None`: open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// Start.
    pub start: Option<u64>,
    /// End.
    pub end: Option<u64>,
}

impl Window {
    /// Whether `t` is inside.
    pub fn contains(&self, t: u64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

/// A Fulcio certificate authority: its chain (DER, issuing certificate
/// first, root last) and when it may issue.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Where it runs.
    pub uri: String,
    /// The certificates, DER.
    pub chain: Vec<Vec<u8>>,
    /// When it is trusted.
    pub valid_for: Window,
}

/// A transparency or CT log's public key.
#[derive(Debug, Clone)]
pub struct LogKey {
    /// Where it runs.
    pub base_url: String,
    /// SHA-256 of the key's DER SubjectPublicKeyInfo.
    pub log_id: [u8; 32],
    /// The key.
    pub key: EcKey,
    /// When it is trusted.
    pub valid_for: Window,
}

/// What a trust root says.
#[derive(Debug, Clone, Default)]
pub struct SigstoreTrust {
    /// Fulcio authorities.
    pub authorities: Vec<Authority>,
    /// Rekor keys.
    pub tlogs: Vec<LogKey>,
    /// CT log keys.
    pub ctlogs: Vec<LogKey>,
    /// Keys skipped: types aisec does not verify (RSA, Ed25519).
    pub skipped_keys: usize,
}

impl SigstoreTrust {
    /// Reads a trusted root or a client trust config. A file that is not
    /// one, or one without a Fulcio authority, a Rekor key or a CT log key
    /// aisec can use, is [`ProvenanceError::Key`].
    pub fn parse(bytes: &[u8]) -> Result<SigstoreTrust, ProvenanceError> {
        let bad = |why: String| ProvenanceError::Key(format!("trust root: {why}"));
        let doc: RawDoc = json::from_slice(bytes, &LIMITS)
            .map_err(|e| bad(format!("not a Sigstore trusted root or trust config: {e}")))?;
        let root = match (doc.media_type.as_deref(), doc.trusted_root) {
            (Some(TRUST_CONFIG_MEDIA_TYPE), Some(r)) => r,
            (Some(TRUST_CONFIG_MEDIA_TYPE), None) => {
                return Err(bad("the client trust config has no trustedRoot".into()))
            }
            (Some(TRUSTED_ROOT_MEDIA_TYPE), _) => RawRoot {
                media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
                tlogs: doc.tlogs.unwrap_or_default(),
                certificate_authorities: doc.certificate_authorities.unwrap_or_default(),
                ctlogs: doc.ctlogs.unwrap_or_default(),
            },
            (other, _) => {
                return Err(bad(format!(
                    "media type {other:?} is neither {TRUSTED_ROOT_MEDIA_TYPE} nor \
                     {TRUST_CONFIG_MEDIA_TYPE}"
                )))
            }
        };
        if root.media_type != TRUSTED_ROOT_MEDIA_TYPE {
            return Err(bad(format!(
                "the trusted root's media type is {:?}, expected {TRUSTED_ROOT_MEDIA_TYPE}",
                root.media_type
            )));
        }
        for (what, n) in [
            (
                "certificate authorities",
                root.certificate_authorities.len(),
            ),
            ("tlogs", root.tlogs.len()),
            ("ctlogs", root.ctlogs.len()),
        ] {
            if n > MAX_ENTRIES {
                return Err(bad(format!("{n} {what} (at most {MAX_ENTRIES} are read)")));
            }
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut out = SigstoreTrust::default();
        for (i, ca) in root.certificate_authorities.iter().enumerate() {
            let n = ca.cert_chain.certificates.len();
            if n == 0 || n > MAX_CHAIN {
                return Err(bad(format!(
                    "certificate authority {} has {n} certificates (1 to {MAX_CHAIN} expected)",
                    i + 1
                )));
            }
            let mut chain = Vec::with_capacity(n);
            for (j, c) in ca.cert_chain.certificates.iter().enumerate() {
                chain.push(b64.decode(c.raw_bytes.as_bytes()).map_err(|e| {
                    bad(format!(
                        "certificate authority {} certificate {}: not base64: {e}",
                        i + 1,
                        j + 1
                    ))
                })?);
            }
            out.authorities.push(Authority {
                uri: ca.uri.clone(),
                chain,
                valid_for: window(ca.valid_for.as_ref())
                    .map_err(|e| bad(format!("certificate authority {}: {e}", i + 1)))?,
            });
        }
        for (list, into, what) in [
            (&root.tlogs, &mut out.tlogs, "tlog"),
            (&root.ctlogs, &mut out.ctlogs, "ctlog"),
        ] {
            for (i, l) in list.iter().enumerate() {
                let Some(raw) = &l.public_key.raw_bytes else {
                    return Err(bad(format!("{what} {} has no public key", i + 1)));
                };
                let der = b64
                    .decode(raw.as_bytes())
                    .map_err(|e| bad(format!("{what} {} key: not base64: {e}", i + 1)))?;
                let details = l.public_key.key_details.as_deref().unwrap_or("");
                let key = match EcKey::from_spki(&der) {
                    Ok(k) if key_details_match(&k, details) => k,
                    // RSA, Ed25519, P-521 or a mislabelled key: sigstore-python
                    // skips keys it cannot load.
                    _ => {
                        out.skipped_keys += 1;
                        continue;
                    }
                };
                let mut log_id = [0u8; 32];
                log_id.copy_from_slice(&Sha256::digest(&der));
                into.push(LogKey {
                    base_url: l.base_url.clone(),
                    log_id,
                    key,
                    valid_for: window(l.public_key.valid_for.as_ref())
                        .map_err(|e| bad(format!("{what} {}: {e}", i + 1)))?,
                });
            }
        }
        if out.authorities.is_empty() {
            return Err(bad("no Fulcio certificate authority in it".into()));
        }
        if out.tlogs.is_empty() {
            return Err(bad(
                "no transparency log (Rekor) key aisec can use (ECDSA P-256/P-384) in it".into(),
            ));
        }
        if out.ctlogs.is_empty() {
            return Err(bad(
                "no CT log key aisec can use (ECDSA P-256/P-384) in it".into()
            ));
        }
        Ok(out)
    }
}

/// The key types sigstore-python loads as ECDSA, and the curve they name.
fn key_details_match(k: &EcKey, details: &str) -> bool {
    matches!(
        (k, details),
        (EcKey::P256(_), "PKIX_ECDSA_P256_SHA_256") | (EcKey::P384(_), "PKIX_ECDSA_P384_SHA_384")
    )
}

fn window(r: Option<&RawRange>) -> Result<Window, String> {
    let Some(r) = r else {
        return Ok(Window::default());
    };
    let conv = |s: &Option<String>| -> Result<Option<u64>, String> {
        s.as_deref()
            .map(|t| rfc3339(t).ok_or_else(|| format!("validFor time {t:?} is not RFC 3339")))
            .transpose()
    };
    Ok(Window {
        start: conv(&r.start)?,
        end: conv(&r.end)?,
    })
}

/// Seconds since the epoch of an RFC 3339 time as protobuf JSON writes
/// `Timestamp`s (`2021-01-01T00:00:00Z`, fractions and offsets allowed).
pub fn rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let sign = match rb[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let dt = der::DateTime::new(
        u16::try_from(y).ok()?,
        u8::try_from(mo).ok()?,
        u8::try_from(d).ok()?,
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(sec.min(59)).ok()?,
    )
    .ok()?;
    let t = i64::try_from(dt.unix_duration().as_secs()).ok()? - offset;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = include_str!("../tests/fixtures/keyless/trusted_root.json");
    const CONFIG: &str = include_str!("../tests/fixtures/keyless/trust_config.json");

    #[test]
    fn reads_the_trusted_root_and_the_client_trust_config() {
        let a = SigstoreTrust::parse(ROOT.as_bytes()).unwrap();
        let b = SigstoreTrust::parse(CONFIG.as_bytes()).unwrap();
        for t in [&a, &b] {
            assert_eq!(t.authorities.len(), 1);
            assert_eq!(t.authorities[0].chain.len(), 2);
            assert_eq!((t.tlogs.len(), t.ctlogs.len(), t.skipped_keys), (1, 1, 0));
            assert_eq!(t.authorities[0].valid_for.start, Some(1_609_459_200));
        }
        // The log id the file states is the SHA-256 of the key (checked, not trusted).
        let doc: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        let stated = doc["tlogs"][0]["logId"]["keyId"].as_str().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(b64.decode(stated).unwrap(), a.tlogs[0].log_id.to_vec());
    }

    #[test]
    fn bad_trust_roots_are_clear_errors_not_panics() {
        for (bad, says) in [
            ("", "not a Sigstore"),
            ("[]", "media type"),
            ("{}", "media type"),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"}"#,
                "no trustedRoot",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
                "no Fulcio",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[]}}]}"#,
                "0 certificates",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"!"}]}}]}"#,
                "base64",
            ),
            (
                r#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","certificateAuthorities":[{"certChain":{"certificates":[{"rawBytes":"AA=="}]},"validFor":{"start":"yesterday"}}]}"#,
                "RFC 3339",
            ),
        ] {
            let err = SigstoreTrust::parse(bad.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        // A Rekor key of a type aisec does not verify is skipped; none left is an error.
        let mut doc: serde_json::Value = serde_json::from_str(ROOT).unwrap();
        doc["tlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ED25519".into();
        let err = SigstoreTrust::parse(doc.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("Rekor"), "{err}");
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2021-01-01T00:00:00Z"), Some(1_609_459_200));
        assert_eq!(rfc3339("2021-01-01T00:00:00.123456Z"), Some(1_609_459_200));
        assert_eq!(rfc3339("2021-01-01T01:00:00+01:00"), Some(1_609_459_200));
        for bad in [
            "",
            "2021-01-01",
            "2021-13-01T00:00:00Z",
            "2021-01-01T00:00:00",
            "2021-01-01T00:00:00.Z",
            "２021-01-01T00:00:00Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }
}
