//! Sigstore keyless bundles (model-signing's `sigstore` method), verified
//! offline against a trust root ([`crate::trust_root`]).
//!
//! The steps and their order follow sigstore-python 4.5.1's
//! `Verifier.verify_dsse` (what `model_signing verify sigstore` runs; read
//! in `sigstore/verify/verifier.py`), and the cross-check in
//! `bench/provenance/keyless.py` compares the verdicts case by case:
//!
//! 1. the bundle has exactly one Rekor v1 entry (`dsse` 0.0.1) with an
//!    integrated time and a signed entry timestamp (the time is only
//!    trusted with one; timestamp authorities are not supported);
//! 2. the leaf (`verificationMaterial.certificate`) chains to a certificate
//!    of a Fulcio authority of the trust root, every certificate (leaf
//!    included) valid at the integrated time, and the authority's own
//!    validity window holds that time;
//! 3. the leaf's one embedded SCT verifies with a CT log key of the trust
//!    root over the precertificate (RFC 6962 §3.2);
//! 4. KeyUsage digitalSignature and EKU codeSigning; the identity: a SAN
//!    (e-mail, URI, or Sigstore's otherName) equal to the expected one and
//!    the OIDC issuer extension equal to the expected issuer;
//! 5. the inclusion proof up to its root hash, the checkpoint signed by the
//!    Rekor key and committing to that root, the signed entry timestamp;
//! 6. the DSSE signature with the leaf key (SHA-256 over the PAE), and the
//!    entry body consistent with the envelope (payload hash, signatures,
//!    verifier certificate).
//!
//! Each failure is an [`Invalid`] naming the step. Not supported (refused
//! with a clear reason): Rekor v2 entries (`hashedrekord` 0.0.2, which
//! need a timestamp authority), RFC 3161 timestamps, message-signature
//! bundles, RSA/Ed25519 keys.

use aisec_core::json::{self, JsonLimits};
use base64::Engine as _;
use der::oid::ObjectIdentifier;
use der::{Decode as _, Encode as _};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use crate::cert::{EcKey, TrustRoots};
use crate::trust_root::SigstoreTrust;
use crate::{tlog, Invalid};

const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
const ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
const ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
const SIGSTORE_OTHERNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");
const CT_PRECERT_SIGNING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.4");

/// Bounds for a Rekor entry body.
const BODY_LIMITS: JsonLimits = JsonLimits {
    max_bytes: 1 << 20,
    max_depth: 8,
    max_elements: 1_000,
};
/// Most SCTs in the list read.
const MAX_SCTS: usize = 16;

/// Who signed, as the verified certificate and log entry say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessSigner {
    /// The identity matched (a SAN of the leaf).
    pub identity: String,
    /// The OIDC issuer matched.
    pub issuer: String,
    /// When the log integrated the entry, seconds since the epoch.
    pub integrated_time: u64,
    /// The entry's index in the log.
    pub log_index: u64,
}

/// The expected signer.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The SAN (e-mail or URI) expected: model-signing's `--identity`.
    pub identity: String,
    /// The OIDC issuer expected: model-signing's `--identity_provider`.
    pub issuer: String,
}

/// A trust root and the expected signer.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// The trust root.
    pub trust: SigstoreTrust,
    /// The expected signer.
    pub policy: Policy,
}

/// What a keyless bundle carries besides the envelope (nothing verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// The leaf certificate, DER.
    pub leaf: Vec<u8>,
    /// The transparency log entries, as JSON.
    pub tlog_entries: Vec<serde_json::Value>,
    /// Every signature of the envelope (the entry body lists them all).
    pub envelope_signatures: Vec<Vec<u8>>,
    /// Whether the bundle carries RFC 3161 timestamps.
    pub has_timestamps: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Num {
    N(u64),
    S(String),
}

impl Num {
    fn get(&self) -> Option<u64> {
        match self {
            Num::N(n) => Some(*n),
            Num::S(s) => s.parse().ok(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    log_index: Num,
    log_id: KeyId,
    kind_version: KindVersion,
    #[serde(default)]
    integrated_time: Option<Num>,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    #[serde(default)]
    inclusion_proof: Option<Proof>,
    canonicalized_body: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyId {
    key_id: String,
}

#[derive(Debug, Deserialize)]
struct KindVersion {
    kind: String,
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Proof {
    log_index: Num,
    root_hash: String,
    tree_size: Num,
    #[serde(default)]
    hashes: Vec<String>,
    #[serde(default)]
    checkpoint: Option<CheckpointEnv>,
}

#[derive(Debug, Deserialize)]
struct CheckpointEnv {
    envelope: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseBody {
    kind: String,
    api_version: String,
    spec: DsseSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    #[serde(default)]
    payload_hash: Option<HashValue>,
    #[serde(default)]
    signatures: Vec<BodySig>,
}

#[derive(Debug, Deserialize)]
struct HashValue {
    algorithm: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct BodySig {
    signature: String,
    verifier: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn decode(what: &str, s: &str) -> Result<Vec<u8>, Invalid> {
    b64()
        .decode(s.as_bytes())
        .map_err(|_| Invalid::new(format!("{what} is not base64")))
}

/// Verifies a keyless bundle's material, envelope and signature against
/// `k`; returns who signed. `payload` / `payload_type` / `signature` are
/// the envelope's (its first signature).
pub fn verify(
    m: &Material,
    payload: &[u8],
    payload_type: &str,
    signature: &[u8],
    k: &Keyless,
) -> Result<(EcKey, crate::Signer), Invalid> {
    // 1. The log entry and the time it gives.
    if m.has_timestamps {
        return Err(Invalid::new(
            "the bundle carries RFC 3161 timestamps; aisec does not verify timestamp \
             authorities (only the transparency log's integrated time)",
        ));
    }
    let [entry] = m.tlog_entries.as_slice() else {
        return Err(Invalid::new(format!(
            "the bundle has {} transparency log entries (exactly one expected)",
            m.tlog_entries.len()
        )));
    };
    let entry: Entry = serde_json::from_value(entry.clone())
        .map_err(|e| Invalid::new(format!("transparency log entry is not readable: {e}")))?;
    let kv = (
        entry.kind_version.kind.as_str(),
        entry.kind_version.version.as_str(),
    );
    match kv {
        ("dsse", "0.0.1") => {}
        ("hashedrekord", "0.0.2") => {
            return Err(Invalid::new(
                "the log entry is a Rekor v2 hashedrekord 0.0.2, which carries no integrated \
                 time and needs a timestamp authority; aisec verifies Rekor v1 dsse 0.0.1 entries",
            ))
        }
        (kind, version) => {
            return Err(Invalid::new(format!(
                "the log entry is {kind} {version}; a DSSE bundle's entry must be dsse 0.0.1"
            )))
        }
    }
    let log_index = entry
        .log_index
        .get()
        .ok_or_else(|| Invalid::new("the log entry's logIndex is not a number"))?;
    let Some(time) = entry
        .integrated_time
        .as_ref()
        .and_then(Num::get)
        .filter(|t| *t > 0)
    else {
        return Err(Invalid::new(
            "the log entry has no integrated time, so nothing establishes when it was signed",
        ));
    };
    let Some(promise) = &entry.inclusion_promise else {
        return Err(Invalid::new(
            "the log entry has no signed entry timestamp (inclusion promise), so its integrated \
             time is not signed",
        ));
    };
    let log_id = decode("the log id", &entry.log_id.key_id)?;
    let body = decode("the log entry body", &entry.canonicalized_body)?;

    // 2. The chain at that time.
    let mut anchors = TrustRoots::default();
    for (i, a) in k.trust.authorities.iter().enumerate() {
        if !a.valid_for.contains(time) {
            continue;
        }
        for der in &a.chain {
            anchors
                .add_der(der, &format!("trust root authority {}", i + 1))
                .map_err(|e| Invalid::new(e.to_string()))?;
        }
    }
    if anchors.is_empty() {
        return Err(Invalid::new(format!(
            "no certificate authority of the trust root is valid at the integrated time ({time})"
        )));
    }
    let (key, mut signer, path) = crate::cert::verify_chain_at(&m.leaf, &anchors, time)
        .map_err(|e| Invalid::new(format!("certificate chain: {}", e.0)))?;
    let leaf = Certificate::from_der(&m.leaf)
        .map_err(|e| Invalid::new(format!("signing certificate: {e}")))?;

    // 3. The SCT.
    verify_sct(&leaf, &path, &k.trust)?;

    // 4. Usage and identity.
    crate::cert::sigstore_usage(&m.leaf)?;
    let identity = check_identity(&leaf, &k.policy)?;

    // 5. The log entry's proofs.
    let Some(proof) = &entry.inclusion_proof else {
        return Err(Invalid::new("the log entry has no inclusion proof"));
    };
    let Some(cp) = &proof.checkpoint else {
        return Err(Invalid::new("the inclusion proof has no checkpoint"));
    };
    let (Some(p_index), Some(p_size)) = (proof.log_index.get(), proof.tree_size.get()) else {
        return Err(Invalid::new(
            "the inclusion proof's logIndex or treeSize is not a number",
        ));
    };
    if proof.hashes.len() > tlog::MAX_PROOF {
        return Err(Invalid::new(format!(
            "the inclusion proof has {} hashes (at most {})",
            proof.hashes.len(),
            tlog::MAX_PROOF
        )));
    }
    let mut hashes = Vec::with_capacity(proof.hashes.len());
    for h in &proof.hashes {
        let raw = decode("an inclusion proof hash", h)?;
        let arr: [u8; 32] = raw
            .try_into()
            .map_err(|_| Invalid::new("an inclusion proof hash is not 32 bytes"))?;
        hashes.push(arr);
    }
    let root: [u8; 32] = decode("the inclusion proof's root hash", &proof.root_hash)?
        .try_into()
        .map_err(|_| Invalid::new("the inclusion proof's root hash is not 32 bytes"))?;
    tlog::verify_inclusion(&body, p_index, p_size, &hashes, &root).map_err(Invalid::new)?;
    let checkpoint = tlog::parse_checkpoint(&cp.envelope).map_err(Invalid::new)?;
    tlog::verify_checkpoint(&checkpoint, &k.trust.tlogs, &log_id, &root).map_err(Invalid::new)?;
    let set = decode(
        "the signed entry timestamp",
        &promise.signed_entry_timestamp,
    )?;
    tlog::verify_set(
        &k.trust.tlogs,
        &entry.canonicalized_body,
        time,
        &log_id,
        log_index,
        &set,
    )
    .map_err(Invalid::new)?;

    // 6. The envelope: its signature, then its consistency with the entry.
    if m.envelope_signatures.len() != 1 {
        return Err(Invalid::new(format!(
            "the DSSE envelope has {} signatures (exactly one expected)",
            m.envelope_signatures.len()
        )));
    }
    let pae = dsse_pae(payload_type, payload);
    if !key.verify_sha256(&pae, signature) {
        return Err(Invalid::new(
            "the ECDSA signature over the DSSE envelope does not verify with the signing \
             certificate's key",
        ));
    }
    check_body(&body, payload, &m.envelope_signatures, &m.leaf)?;

    signer.keyless = Some(KeylessSigner {
        identity,
        issuer: k.policy.issuer.clone(),
        integrated_time: time,
        log_index,
    });
    Ok((key, signer))
}

/// DSSE v1 PAE for any payload type.
fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// The dsse 0.0.1 entry body against the envelope, as sigstore-python
/// checks it (the envelope hash cannot be: the envelope JSON is not
/// canonical).
fn check_body(
    body: &[u8],
    payload: &[u8],
    signatures: &[Vec<u8>],
    leaf: &[u8],
) -> Result<(), Invalid> {
    let b: DsseBody = json::from_slice(body, &BODY_LIMITS)
        .map_err(|e| Invalid::new(format!("the log entry body is not a dsse entry: {e}")))?;
    if b.kind != "dsse" || b.api_version != "0.0.1" {
        return Err(Invalid::new(format!(
            "the log entry body is {} {}, not dsse 0.0.1",
            b.kind, b.api_version
        )));
    }
    let Some(ph) = &b.spec.payload_hash else {
        return Err(Invalid::new("the log entry body has no payload hash"));
    };
    if ph.algorithm != "sha256" {
        return Err(Invalid::new(format!(
            "the log entry's payload hash is {}, expected sha256",
            ph.algorithm
        )));
    }
    if ph.value != crate::hex::encode(&Sha256::digest(payload)) {
        return Err(Invalid::new(
            "the log entry's payload hash is not the SHA-256 of the envelope's payload",
        ));
    }
    if b.spec.signatures.len() != signatures.len() {
        return Err(Invalid::new(
            "the log entry's signatures are not the envelope's",
        ));
    }
    for (s, want) in b.spec.signatures.iter().zip(signatures) {
        if decode("a log entry signature", &s.signature)? != *want {
            return Err(Invalid::new(
                "the log entry's signatures are not the envelope's",
            ));
        }
        let pem = decode("a log entry verifier", &s.verifier)?;
        if pem_der(&pem).as_deref() != Some(leaf) {
            return Err(Invalid::new(
                "the log entry's verifier is not the bundle's signing certificate",
            ));
        }
    }
    Ok(())
}

/// The DER of the one certificate in a PEM text.
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let len = text[start..].find("-----END CERTIFICATE-----")?;
    let body: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    b64().decode(body.as_bytes()).ok()
}

fn extension(c: &Certificate, oid: ObjectIdentifier) -> Option<&[u8]> {
    c.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// The SAN and OIDC issuer against the policy; returns the SAN matched.
fn check_identity(leaf: &Certificate, p: &Policy) -> Result<String, Invalid> {
    let v1 = extension(leaf, ISSUER_V1).map(|b| String::from_utf8_lossy(b).into_owned());
    let v2 = match extension(leaf, ISSUER_V2) {
        Some(b) => Some(
            der::asn1::Utf8StringRef::from_der(b)
                .map(|s| s.as_str().to_string())
                .map_err(|_| {
                    Invalid::new(
                        "the OIDC issuer extension (1.3.6.1.4.1.57264.1.8) is not a UTF8String",
                    )
                })?,
        ),
        None => None,
    };
    if v1.is_none() && v2.is_none() {
        return Err(Invalid::new(
            "the signing certificate has no OIDC issuer extension (1.3.6.1.4.1.57264.1.8 or .1.1)",
        ));
    }
    for got in [&v1, &v2].into_iter().flatten() {
        if *got != p.issuer {
            return Err(Invalid::new(format!(
                "the signing certificate's OIDC issuer is {got:?}, not the expected {:?}",
                p.issuer
            )));
        }
    }
    let mut sans = Vec::new();
    if let Some(raw) = extension(leaf, ObjectIdentifier::new_unwrap("2.5.29.17")) {
        let san = SubjectAltName::from_der(raw).map_err(|e| {
            Invalid::new(format!("the signing certificate's SAN does not parse: {e}"))
        })?;
        for n in san.0 {
            match n {
                GeneralName::Rfc822Name(s) => sans.push(s.to_string()),
                GeneralName::UniformResourceIdentifier(s) => sans.push(s.to_string()),
                GeneralName::OtherName(o) if o.type_id == SIGSTORE_OTHERNAME => {
                    if let Ok(s) = o.value.decode_as::<der::asn1::Utf8StringRef<'_>>() {
                        sans.push(s.as_str().to_string());
                    }
                }
                _ => {}
            }
        }
    }
    if sans.contains(&p.identity) {
        Ok(p.identity.clone())
    } else {
        Err(Invalid::new(format!(
            "the signing certificate's identities {sans:?} do not include the expected {:?}",
            p.identity
        )))
    }
}

/// One SCT of a SignedCertificateTimestampList (RFC 6962 §3.2, v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// The CT log's id (SHA-256 of its key).
    pub log_id: [u8; 32],
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    /// CtExtensions.
    pub extensions: Vec<u8>,
    /// TLS HashAlgorithm (4: SHA-256).
    pub hash_alg: u8,
    /// TLS SignatureAlgorithm (3: ECDSA).
    pub sig_alg: u8,
    /// The signature, DER.
    pub signature: Vec<u8>,
}

struct Tls<'a>(&'a [u8]);

impl<'a> Tls<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("SCT list is truncated".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b)))
    }
    fn vec16(&mut self) -> Result<&'a [u8], String> {
        let n = self.uint(2)? as usize;
        self.take(n)
    }
}

/// Parses a TLS-encoded SignedCertificateTimestampList (the contents of
/// the certificate extension's inner OCTET STRING).
pub fn parse_sct_list(bytes: &[u8]) -> Result<Vec<Sct>, String> {
    let mut outer = Tls(bytes);
    let list = outer.vec16()?;
    if !outer.0.is_empty() {
        return Err("trailing bytes after the SCT list".into());
    }
    let mut r = Tls(list);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        if out.len() >= MAX_SCTS {
            return Err(format!("more than {MAX_SCTS} SCTs"));
        }
        let mut s = Tls(r.vec16()?);
        let version = s.uint(1)?;
        if version != 0 {
            return Err(format!("SCT version {version} (only v1 is defined)"));
        }
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(s.take(32)?);
        let timestamp = s.uint(8)?;
        let extensions = s.vec16()?.to_vec();
        let hash_alg = s.uint(1)? as u8;
        let sig_alg = s.uint(1)? as u8;
        let signature = s.vec16()?.to_vec();
        if !s.0.is_empty() {
            return Err("trailing bytes in an SCT".into());
        }
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            hash_alg,
            sig_alg,
            signature,
        });
    }
    Ok(out)
}

/// The embedded SCT against the trust root's CT logs.
fn verify_sct(leaf: &Certificate, path: &[Vec<u8>], trust: &SigstoreTrust) -> Result<(), Invalid> {
    let bad = |why: String| Invalid::new(format!("embedded SCT: {why}"));
    let Some(raw) = extension(leaf, SCT_LIST) else {
        return Err(bad(
            "the signing certificate has no SCT list extension".into()
        ));
    };
    let inner = der::asn1::OctetStringRef::from_der(raw)
        .map_err(|_| bad("the SCT list extension is not an OCTET STRING".into()))?;
    let scts = parse_sct_list(inner.as_bytes()).map_err(bad)?;
    let [sct] = scts.as_slice() else {
        return Err(bad(format!(
            "{} SCTs in the certificate (exactly one expected)",
            scts.len()
        )));
    };
    if sct.hash_alg != 4 {
        return Err(bad(format!(
            "hash algorithm {} (only SHA-256, 4, is accepted)",
            sct.hash_alg
        )));
    }
    // The issuer: the next certificate up, or the one above a
    // precertificate-signing certificate.
    let mut issuer = path
        .get(1)
        .ok_or_else(|| bad("no issuer certificate".into()))
        .and_then(|d| Certificate::from_der(d).map_err(|e| bad(e.to_string())))?;
    let precert_signer = extension(&issuer, ObjectIdentifier::new_unwrap("2.5.29.37"))
        .and_then(|b| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(b).ok())
        .is_some_and(|e| e.0.contains(&CT_PRECERT_SIGNING));
    if precert_signer {
        issuer = path
            .get(2)
            .ok_or_else(|| bad("no certificate above the precertificate signer".into()))
            .and_then(|d| Certificate::from_der(d).map_err(|e| bad(e.to_string())))?;
    }
    let issuer_spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    // The precertificate's TBS: the leaf's without the SCT list.
    let mut tbs = leaf.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id != SCT_LIST);
    }
    let tbs = tbs.to_der().map_err(|e| bad(e.to_string()))?;
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|n| *n < 1 << 24)
        .ok_or_else(|| bad("certificate too large".into()))?;
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(&sct.timestamp.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&Sha256::digest(&issuer_spki));
    signed.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    signed.extend_from_slice(&tbs);
    let ext_len = u16::try_from(sct.extensions.len()).map_err(|e| bad(e.to_string()))?;
    signed.extend_from_slice(&ext_len.to_be_bytes());
    signed.extend_from_slice(&sct.extensions);
    if tlog::keys_for(&trust.ctlogs, &sct.log_id)
        .iter()
        .any(|k| k.key.verify_message(&signed, &sct.signature))
    {
        Ok(())
    } else {
        Err(bad(format!(
            "the signature of CT log {} does not verify with a CT log key of the trust root",
            crate::hex::encode(&sct.log_id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sct_lists_parse_strictly() {
        let mut sct = vec![0u8];
        sct.extend([7u8; 32]);
        sct.extend(5u64.to_be_bytes());
        sct.extend([0, 0, 4, 3, 0, 2, 0xaa, 0xbb]);
        let mut list = (sct.len() as u16).to_be_bytes().to_vec();
        list.extend(&sct);
        let mut all = (list.len() as u16).to_be_bytes().to_vec();
        all.extend(&list);
        let got = parse_sct_list(&all).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].timestamp, got[0].hash_alg, got[0].sig_alg),
            (5, 4, 3)
        );
        assert_eq!(got[0].signature, vec![0xaa, 0xbb]);
        for n in 0..all.len() {
            assert!(parse_sct_list(&all[..n]).is_err(), "truncated at {n}");
        }
        let mut trailing = all.clone();
        trailing.push(0);
        assert!(parse_sct_list(&trailing).is_err());
        let mut v2 = all.clone();
        v2[4] = 1;
        assert!(parse_sct_list(&v2).unwrap_err().contains("version"));
    }

    #[test]
    fn pae_with_any_type() {
        assert_eq!(dsse_pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }
}
