//! Sigstore bundles (v0.3 JSON) carrying a DSSE envelope, as model-signing
//! writes them for key-based signing, read from untrusted bytes; ECDSA
//! P-256 / SHA-256 verification over the DSSE pre-authentication encoding
//! (PAE, DSSE protocol v1.0); and signing that produces the same bundle.

use aisec_core::json::{self, JsonLimits};
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::{hex, Invalid, ProvenanceError};

/// The bundle media type model-signing's key-based signer writes.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Another spelling of v0.3 Sigstore clients accept.
pub const BUNDLE_MEDIA_TYPE_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/// Older Sigstore bundle versions (certificate chains, optional proofs).
const OLDER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
];
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Bounds for a bundle. The payload (a base64 statement) dominates; a
/// bundle has few elements.
pub const LIMITS: JsonLimits = JsonLimits {
    max_bytes: 96 << 20,
    max_depth: 16,
    max_elements: 10_000,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    #[serde(default)]
    verification_material: Option<RawMaterial>,
    #[serde(default)]
    dsse_envelope: Option<RawEnvelope>,
    #[serde(default)]
    message_signature: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    #[serde(default)]
    public_key: Option<RawKeyId>,
    #[serde(default)]
    certificate: Option<RawCert>,
    #[serde(default)]
    x509_certificate_chain: Option<RawChain>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
    #[serde(default)]
    timestamp_verification_data: Option<RawTimestamps>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamps {
    #[serde(default)]
    rfc3161_timestamps: Vec<serde_json::Value>,
}

/// A certificate chain as Sigstore's protobuf JSON writes it (bundles and
/// trust roots alike).
#[derive(Debug, Deserialize)]
pub(crate) struct RawChain {
    #[serde(default)]
    pub(crate) certificates: Vec<RawCert>,
}

/// One DER certificate, base64 in `rawBytes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawCert {
    pub(crate) raw_bytes: String,
}

#[derive(Debug, Deserialize)]
struct RawKeyId {
    #[serde(default)]
    hint: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEnvelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<RawSig>,
}

#[derive(Debug, Deserialize)]
struct RawSig {
    sig: String,
}

/// A parsed bundle: the DSSE envelope and the key hint, nothing verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The envelope's payload (the in-toto statement), base64-decoded.
    pub payload: Vec<u8>,
    /// The envelope's payload type.
    pub payload_type: String,
    /// The first signature (model-signing verifies only the first), DER.
    pub signature: Vec<u8>,
    /// The public key hint: hex SHA-256 of the signer's public key PEM.
    pub key_hint: Option<String>,
    /// The certificate chain (DER, signing certificate first) of a
    /// certificate-based bundle; empty for a key-based one.
    pub certificates: Vec<Vec<u8>>,
    /// The Fulcio certificate and transparency log entries of a Sigstore
    /// keyless bundle.
    pub keyless: Option<crate::keyless::Material>,
}

impl Bundle {
    /// Reads a bundle: key-based (a key hint), certificate-based (an X.509
    /// chain, own PKI) or Sigstore keyless (a Fulcio certificate and a
    /// Rekor entry). `Ok(Err(_))` is a malformed or unusable bundle (an
    /// invalid signature); `Err(Unsupported)` a Sigstore bundle version
    /// older than 0.3.
    pub fn parse(bytes: &[u8]) -> Result<Result<Bundle, Invalid>, ProvenanceError> {
        let raw: RawBundle = match json::from_slice(bytes, &LIMITS) {
            Ok(r) => r,
            Err(e) => return Ok(Err(Invalid::new(format!("bundle is not readable: {e}")))),
        };
        if OLDER_MEDIA_TYPES.contains(&raw.media_type.as_str()) {
            return Err(ProvenanceError::Unsupported(format!(
                "Sigstore bundle version {:?}: aisec reads v0.3 bundles ({BUNDLE_MEDIA_TYPE}), \
                 what model-signing 1.x writes",
                raw.media_type
            )));
        }
        if raw.media_type != BUNDLE_MEDIA_TYPE && raw.media_type != BUNDLE_MEDIA_TYPE_ALT {
            return Ok(Err(Invalid::new(format!(
                "bundle media type is {:?}, expected {BUNDLE_MEDIA_TYPE}",
                raw.media_type
            ))));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut certificates = Vec::new();
        let mut keyless = None;
        if let Some(m) = &raw.verification_material {
            if let Some(chain) = &m.x509_certificate_chain {
                for (i, c) in chain.certificates.iter().enumerate() {
                    let Ok(der) = b64.decode(c.raw_bytes.as_bytes()) else {
                        return Ok(Err(Invalid::new(format!(
                            "bundle certificate {} is not base64",
                            i + 1
                        ))));
                    };
                    certificates.push(der);
                }
                if certificates.is_empty() {
                    return Ok(Err(Invalid::new(
                        "the bundle's certificate chain has no certificate",
                    )));
                }
            } else if let Some(c) = &m.certificate {
                let Ok(der) = b64.decode(c.raw_bytes.as_bytes()) else {
                    return Ok(Err(Invalid::new("the bundle's certificate is not base64")));
                };
                keyless = Some(crate::keyless::Material {
                    leaf: der,
                    tlog_entries: m.tlog_entries.clone(),
                    envelope_signatures: Vec::new(),
                    has_timestamps: m
                        .timestamp_verification_data
                        .as_ref()
                        .is_some_and(|t| !t.rfc3161_timestamps.is_empty()),
                });
            }
        }
        let Some(env) = raw.dsse_envelope else {
            let what = if raw.message_signature.is_some() {
                "a message signature, not a DSSE envelope"
            } else {
                "no DSSE envelope"
            };
            return Ok(Err(Invalid::new(format!("bundle has {what}"))));
        };
        let Ok(payload) = b64.decode(env.payload.as_bytes()) else {
            return Ok(Err(Invalid::new("DSSE payload is not base64")));
        };
        let Some(first) = env.signatures.first() else {
            return Ok(Err(Invalid::new("DSSE envelope has no signature")));
        };
        let Ok(signature) = b64.decode(first.sig.as_bytes()) else {
            return Ok(Err(Invalid::new("DSSE signature is not base64")));
        };
        if let Some(k) = keyless.as_mut() {
            for s in &env.signatures {
                let Ok(sig) = b64.decode(s.sig.as_bytes()) else {
                    return Ok(Err(Invalid::new("DSSE signature is not base64")));
                };
                k.envelope_signatures.push(sig);
            }
        }
        Ok(Ok(Bundle {
            payload,
            payload_type: env.payload_type,
            signature,
            key_hint: raw
                .verification_material
                .and_then(|m| m.public_key)
                .and_then(|k| k.hint)
                .filter(|h| !h.is_empty()),
            certificates,
            keyless,
        }))
    }

    /// Checks the signature with `key` and returns the signed payload.
    pub fn verify(&self, key: &PublicKey) -> Result<&[u8], Invalid> {
        if let Some(hint) = &self.key_hint {
            if !hint.eq_ignore_ascii_case(&key.hint) {
                return Err(Invalid::new(format!(
                    "the bundle names public key {hint}, not the given key ({})",
                    key.hint
                )));
            }
        }
        if self.payload_type != PAYLOAD_TYPE {
            return Err(Invalid::new(format!(
                "DSSE payload type is {:?}, expected {PAYLOAD_TYPE}",
                self.payload_type
            )));
        }
        let sig = Signature::from_der(&self.signature)
            .map_err(|_| Invalid::new("DSSE signature is not a DER ECDSA signature"))?;
        let ok = key.key.verify(&pae(&self.payload), &sig).is_ok()
            || key.key.verify(&pae_compat(&self.payload), &sig).is_ok();
        if ok {
            Ok(&self.payload)
        } else {
            Err(Invalid::new(
                "the ECDSA signature over the DSSE envelope does not verify with the given public key",
            ))
        }
    }
}

impl Bundle {
    /// Checks a certificate-based bundle: the chain up to one of `roots`,
    /// the signing certificate's usage, then the DSSE signature with its
    /// key. Returns the signed payload and who signed it.
    pub fn verify_with_roots(
        &self,
        roots: &crate::cert::TrustRoots,
    ) -> Result<(&[u8], crate::cert::Signer), Invalid> {
        let (key, signer) = crate::cert::verify_chain(&self.certificates, roots)?;
        if self.payload_type != PAYLOAD_TYPE {
            return Err(Invalid::new(format!(
                "DSSE payload type is {:?}, expected {PAYLOAD_TYPE}",
                self.payload_type
            )));
        }
        if key.verify_dsse(
            &pae(&self.payload),
            &pae_compat(&self.payload),
            &self.signature,
        ) {
            Ok((&self.payload, signer))
        } else {
            Err(Invalid::new(format!(
                "the ECDSA signature over the DSSE envelope does not verify with the key of the \
                 signing certificate ({})",
                signer.subject
            )))
        }
    }
}

/// DSSE v1 pre-authentication encoding of an in-toto payload.
pub fn pae(payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {PAYLOAD_TYPE} {} ",
        PAYLOAD_TYPE.len(),
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The PAE model-signing 0.2 signed by mistake: `DSSEV1` and the payload as
/// Python's `repr(bytes)` (model-signing still accepts these signatures).
pub fn pae_compat(payload: &[u8]) -> Vec<u8> {
    format!(
        "DSSEV1 {} {PAYLOAD_TYPE} {} {}",
        PAYLOAD_TYPE.len(),
        payload.len(),
        python_bytes_repr(payload)
    )
    .into_bytes()
}

/// Python's `repr()` of a `bytes` object.
fn python_bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if c as char == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote);
    s
}

/// A P-256 public key and its model-signing hint.
#[derive(Debug, Clone)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Hex SHA-256 of the key as SubjectPublicKeyInfo PEM (what
    /// model-signing records in the bundle).
    pub hint: String,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<PublicKey, ProvenanceError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            ProvenanceError::Key(format!(
                "not a P-256 public key PEM ({e}); aisec verifies ECDSA P-256 signatures"
            ))
        })?;
        PublicKey::from_key(key)
    }

    fn from_key(key: VerifyingKey) -> Result<PublicKey, ProvenanceError> {
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| ProvenanceError::Key(e.to_string()))?;
        Ok(PublicKey {
            key,
            hint: hex::encode(&Sha256::digest(pem.as_bytes())),
        })
    }
}

/// A P-256 private key to sign with.
#[derive(Debug, Clone)]
pub struct PrivateKey {
    key: SigningKey,
}

impl PrivateKey {
    /// Reads a PKCS#8 (`-----BEGIN PRIVATE KEY-----`) or SEC1
    /// (`-----BEGIN EC PRIVATE KEY-----`) PEM, unencrypted.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, ProvenanceError> {
        let pem = pem.trim();
        let key = match SigningKey::from_pkcs8_pem(pem) {
            Ok(k) => k,
            Err(e) => p256::SecretKey::from_sec1_pem(pem)
                .map(SigningKey::from)
                .map_err(|_| {
                    ProvenanceError::Key(format!("not an unencrypted P-256 private key PEM ({e})"))
                })?,
        };
        Ok(PrivateKey { key })
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<PublicKey, ProvenanceError> {
        PublicKey::from_key(*self.key.verifying_key())
    }

    /// Signs an in-toto statement into a bundle model-signing verifies.
    pub fn sign_bundle(&self, statement: &[u8]) -> Result<String, ProvenanceError> {
        let sig: DerSignature = self.key.sign(&pae(statement));
        let b64 = base64::engine::general_purpose::STANDARD;
        let bundle = serde_json::json!({
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "publicKey": {"hint": self.public_key()?.hint},
                "tlogEntries": [],
            },
            "dsseEnvelope": {
                "payload": b64.encode(statement),
                "payloadType": PAYLOAD_TYPE,
                "signatures": [{"sig": b64.encode(sig.as_bytes()), "keyid": ""}],
            },
        });
        serde_json::to_string(&bundle).map_err(|e| ProvenanceError::Key(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway test key (generated for these tests; signs nothing real).
    const SK: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTN3DDUA5F5d+2Jec
IUdjtynSxTCxaAJQ9iaw48TnByOhRANCAAQM6YjlFVUW3vRNV62sq2kldgkWy1/J
9i+HqKrnuzeaE58U2xOe6I/ISYUUHOTTaSHzqAJecgPWDEIYeRJNIbU8
-----END PRIVATE KEY-----";
    // The same key as SEC1 (`openssl ec` / cryptography TraditionalOpenSSL).
    const SK_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIEzdww1AOReXftiXnCFHY7cp0sUwsWgCUPYmsOPE5wcjoAoGCCqGSM49
AwEHoUQDQgAEDOmI5RVVFt70TVetrKtpJXYJFstfyfYvh6iq57s3mhOfFNsTnuiP
yEmFFBzk02kh86gCXnID1gxCGHkSTSG1PA==
-----END EC PRIVATE KEY-----";
    // A P-384 key, which model-signing accepts and aisec does not.
    const PK_P384: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEn5HTyl8abWvvmaPNORDFnW/ez0XXxu3Q
QWzsIzs8hOOjIE8jQFnnbyOCD5zkgPhQOHgl8VD3TIl7K6PtODM+wEg2eRGBV33I
GFckV9B+euzgUu6/YrM7aUA/eGkhyjBd
-----END PUBLIC KEY-----";

    fn other_key() -> PrivateKey {
        PrivateKey {
            key: SigningKey::from_slice(&[7u8; 32]).unwrap(),
        }
    }

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
        assert_eq!(
            pae(b"hello"),
            b"DSSEv1 28 application/vnd.in-toto+json 5 hello".to_vec()
        );
        assert_eq!(python_bytes_repr(b"a'b\n\x00\\"), "b\"a'b\\n\\x00\\\\\"");
        assert_eq!(python_bytes_repr(b"{\"a\"}"), "b'{\"a\"}'");
    }

    #[test]
    fn sign_then_verify_and_reject_tampering() {
        let sk = PrivateKey::from_pem(SK).unwrap();
        let pk = sk.public_key().unwrap();
        let text = sk.sign_bundle(b"{\"x\":1}").unwrap();
        let b = Bundle::parse(text.as_bytes()).unwrap().unwrap();
        assert_eq!(b.verify(&pk).unwrap(), b"{\"x\":1}");

        let mut forged = b.clone();
        forged.payload = b"{\"x\":2}".to_vec();
        assert!(forged.verify(&pk).is_err());

        let other = other_key().public_key().unwrap();
        let err = b.verify(&other).unwrap_err();
        assert!(err.0.contains("names public key"), "{}", err.0);
        let mut no_hint = b.clone();
        no_hint.key_hint = None;
        assert!(no_hint
            .verify(&other)
            .unwrap_err()
            .0
            .contains("does not verify"));
    }

    #[test]
    fn malformed_bundles_are_invalid_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"mediaType\":\"x\"}",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\"}",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"dsseEnvelope\":{\"payload\":\"!!\",\"payloadType\":\"x\",\"signatures\":[]}}",
            b"{\"mediaType\":\"application/vnd.dev.sigstore.bundle.v0.3+json\",\"dsseEnvelope\":{\"payload\":\"\",\"payloadType\":\"x\",\"signatures\":[]}}",
        ] {
            assert!(Bundle::parse(bad).unwrap().is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let keyless = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="}},"dsseEnvelope":{"payload":"","payloadType":"x","signatures":[{"sig":"AQ=="}]}}"#;
        let b = Bundle::parse(keyless).unwrap().unwrap();
        let m = b.keyless.unwrap();
        assert_eq!(
            (m.leaf, m.envelope_signatures),
            (vec![0u8], vec![vec![1u8]])
        );
        let old = br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2"}"#;
        assert!(matches!(
            Bundle::parse(old),
            Err(ProvenanceError::Unsupported(m)) if m.contains("version=0.2") && m.contains("v0.3")
        ));
        let bad_cert = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"!"}}}"#;
        assert!(Bundle::parse(bad_cert).unwrap().is_err());
        let chain = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"AA=="}]}},"dsseEnvelope":{"payload":"","payloadType":"x","signatures":[{"sig":""}]}}"#;
        let b = Bundle::parse(chain).unwrap().unwrap();
        assert_eq!(b.certificates, vec![vec![0u8]]);
        let err = b
            .verify_with_roots(&crate::cert::TrustRoots::default())
            .unwrap_err();
        assert!(err.0.contains("signing certificate"), "{}", err.0);
        for bad in [
            &br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"!"}]}}}"#[..],
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"x509CertificateChain":{"certificates":[]}}}"#,
        ] {
            assert!(Bundle::parse(bad).unwrap().is_err());
        }
        let b = Bundle {
            payload: vec![],
            payload_type: PAYLOAD_TYPE.into(),
            signature: vec![1, 2, 3],
            key_hint: None,
            certificates: vec![],
            keyless: None,
        };
        let pk = other_key().public_key().unwrap();
        assert!(b.verify(&pk).unwrap_err().0.contains("DER"));
    }

    #[test]
    fn keys_other_than_p256_are_refused_clearly() {
        assert!(matches!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(ProvenanceError::Key(_))
        ));
        assert!(PrivateKey::from_pem("nope").is_err());
        let err = PublicKey::from_pem(PK_P384).unwrap_err();
        assert!(err.to_string().contains("P-256"), "{err}");
        let a = PrivateKey::from_pem(SK).unwrap().public_key().unwrap();
        let b = PrivateKey::from_pem(SK_SEC1).unwrap().public_key().unwrap();
        assert_eq!(a.hint, b.hint);
    }
}
