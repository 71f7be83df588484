//! Certificate-based signatures (model-signing's `certificate` method, a
//! private PKI): the bundle carries the signing (leaf) certificate and,
//! usually, its intermediates; the user gives the trusted root(s).
//!
//! What is checked is what model-signing 1.1.1's certificate verifier
//! checks (read from `model_signing/_signing/sign_certificate.py`, which
//! hands the chain to OpenSSL's `X509_verify_cert` through pyOpenSSL), and
//! the cross-check in `bench/provenance/` confirms it case by case:
//!
//! * a chain from the leaf, through certificates of the bundle or of the
//!   given files, to a self-signed certificate of the given files, each
//!   certificate's ECDSA signature (SHA-256/384/512 on P-256 or P-384)
//!   verifying with its issuer's key;
//! * every issuer a CA (basicConstraints cA, keyCertSign when it has a
//!   KeyUsage, its path length respected); no unknown critical extension;
//! * every certificate valid at the leaf's notBefore: the bundle has no
//!   timestamp, so model-signing takes the leaf's start as the signing time
//!   and an expired leaf still verifies (aisec reports it as expired in the
//!   report data, not as an invalid signature, to agree with model-signing);
//! * the leaf may sign: KeyUsage digitalSignature, or ExtendedKeyUsage
//!   codeSigning;
//! * its key (P-256 or P-384) verifies the DSSE signature, with the hash
//!   that goes with the curve.
//!
//! Not checked (as OpenSSL's defaults do not either, or aisec does not
//! support them): revocation, name constraints and policy constraints
//! (refused when critical), RSA and Ed25519 certificates (refused).

use std::time::{Duration, SystemTime};

use der::oid::ObjectIdentifier;
use der::{Decode as _, Encode as _, Reader as _};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::Certificate;

use crate::{Invalid, ProvenanceError};

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// Extensions understood here (or harmless when critical).
const KNOWN: &[&str] = &[
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extKeyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.32", // certificatePolicies
];
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";

/// Most certificates in a chain (bundle plus given roots) looked at.
const MAX_CERTS: usize = 64;
/// Longest chain built (leaf to root).
const MAX_DEPTH: usize = 8;
/// Most candidate issuers tried (each a signature check) while building a
/// chain. Depth-first search over certificates that all share one name and
/// one key (which anyone can make for their own PKI) would otherwise try
/// every ordering of them: 63 x 62 x ... paths, a hang on one bundle.
const MAX_TRIES: usize = 256;

/// One parsed certificate with its raw to-be-signed bytes.
#[derive(Debug, Clone)]
struct Cert {
    der: Vec<u8>,
    tbs: Vec<u8>,
    cert: Certificate,
}

impl Cert {
    fn parse(der: &[u8]) -> Result<Cert, String> {
        let cert = Certificate::from_der(der).map_err(|e| format!("not a DER certificate: {e}"))?;
        // The signed bytes as they are, not re-encoded.
        let outer = der::asn1::AnyRef::from_der(der).map_err(|e| e.to_string())?;
        let mut r = der::SliceReader::new(outer.value()).map_err(|e| e.to_string())?;
        let tbs = r.tlv_bytes().map_err(|e| e.to_string())?.to_vec();
        Ok(Cert {
            der: der.to_vec(),
            tbs,
            cert,
        })
    }

    fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn name_der(n: &x509_cert::name::Name) -> Vec<u8> {
        n.to_der().unwrap_or_default()
    }

    fn issued_by(&self, issuer: &Cert) -> bool {
        Self::name_der(&self.cert.tbs_certificate.issuer)
            == Self::name_der(&issuer.cert.tbs_certificate.subject)
    }

    fn self_issued(&self) -> bool {
        self.issued_by(self)
    }

    fn not_before(&self) -> Duration {
        self.cert
            .tbs_certificate
            .validity
            .not_before
            .to_unix_duration()
    }

    fn not_after(&self) -> Duration {
        self.cert
            .tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
    }

    fn extension<T: for<'a> der::Decode<'a>>(
        &self,
        oid: ObjectIdentifier,
    ) -> Result<Option<T>, String> {
        let Some(exts) = &self.cert.tbs_certificate.extensions else {
            return Ok(None);
        };
        match exts.iter().find(|e| e.extn_id == oid) {
            None => Ok(None),
            Some(e) => T::from_der(e.extn_value.as_bytes())
                .map(Some)
                .map_err(|err| {
                    format!("{}: extension {oid} does not parse: {err}", self.subject())
                }),
        }
    }

    fn spki_der(&self) -> Result<Vec<u8>, String> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())
    }

    /// Whether `issuer`'s key verifies this certificate's signature.
    fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        let alg = self.cert.signature_algorithm.oid.to_string();
        let digest: Vec<u8> = match alg.as_str() {
            ECDSA_SHA256 => Sha256::digest(&self.tbs).to_vec(),
            ECDSA_SHA384 => Sha384::digest(&self.tbs).to_vec(),
            ECDSA_SHA512 => Sha512::digest(&self.tbs).to_vec(),
            other => {
                return Err(format!(
                    "{} is signed with algorithm {other}; aisec checks ECDSA certificate signatures only",
                    self.subject()
                ))
            }
        };
        let sig = self
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| format!("{}: signature is not whole bytes", self.subject()))?;
        let key = EcKey::from_spki(&issuer.spki_der()?)
            .map_err(|e| format!("issuer {}: {e}", issuer.subject()))?;
        if key.verify_prehash(&digest, sig) {
            Ok(())
        } else {
            Err(format!(
                "the signature on {} does not verify with the key of {}",
                self.subject(),
                issuer.subject()
            ))
        }
    }
}

/// An ECDSA public key on a curve aisec verifies.
#[derive(Debug, Clone)]
pub enum EcKey {
    /// P-256 (DSSE signed with SHA-256).
    P256(p256::ecdsa::VerifyingKey),
    /// P-384 (DSSE signed with SHA-384).
    P384(p384::ecdsa::VerifyingKey),
}

impl EcKey {
    pub(crate) fn from_spki(der: &[u8]) -> Result<EcKey, String> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(EcKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(EcKey::P384(k));
        }
        Err("the key is not ECDSA P-256 or P-384 (aisec verifies those)".into())
    }

    fn verify_prehash(&self, digest: &[u8], der_sig: &[u8]) -> bool {
        match self {
            EcKey::P256(k) => p256::ecdsa::Signature::from_der(der_sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            EcKey::P384(k) => p384::ecdsa::Signature::from_der(der_sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
        }
    }

    /// Verifies a DSSE signature the way model-signing does: over the PAE
    /// with the curve's hash, or over the pre-1.0 PAE with SHA-256.
    pub fn verify_dsse(&self, pae: &[u8], pae_compat: &[u8], der_sig: &[u8]) -> bool {
        let main = match self {
            EcKey::P256(_) => Sha256::digest(pae).to_vec(),
            EcKey::P384(_) => Sha384::digest(pae).to_vec(),
        };
        self.verify_prehash(&main, der_sig)
            || self.verify_prehash(&Sha256::digest(pae_compat), der_sig)
    }

    /// Verifies an ECDSA signature over `data` with the hash that goes
    /// with the curve (SHA-256 for P-256, SHA-384 for P-384), as Sigstore's
    /// `PKIX_ECDSA_P256_SHA_256` / `PKIX_ECDSA_P384_SHA_384` keys sign.
    pub fn verify_message(&self, data: &[u8], der_sig: &[u8]) -> bool {
        let digest = match self {
            EcKey::P256(_) => Sha256::digest(data).to_vec(),
            EcKey::P384(_) => Sha384::digest(data).to_vec(),
        };
        self.verify_prehash(&digest, der_sig)
    }

    /// Verifies an ECDSA signature over `data` hashed with SHA-256 whatever
    /// the curve (Sigstore's DSSE verification).
    pub fn verify_sha256(&self, data: &[u8], der_sig: &[u8]) -> bool {
        self.verify_prehash(&Sha256::digest(data), der_sig)
    }

    /// The curve's name.
    pub fn curve(&self) -> &'static str {
        match self {
            EcKey::P256(_) => "P-256",
            EcKey::P384(_) => "P-384",
        }
    }
}

/// The certificates the user trusts (roots, and intermediates if given).
#[derive(Debug, Clone, Default)]
pub struct TrustRoots {
    certs: Vec<Cert>,
}

impl TrustRoots {
    /// Adds every `CERTIFICATE` block of a PEM text (a file may hold a
    /// whole chain, as model-signing's `--certificate_chain` allows).
    pub fn add_pem(&mut self, text: &str, origin: &str) -> Result<usize, ProvenanceError> {
        let bad = |why: String| ProvenanceError::Key(format!("{origin}: {why}"));
        let mut n = 0;
        let mut rest = text;
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let body_start = start + "-----BEGIN CERTIFICATE-----".len();
            let Some(len) = rest[body_start..].find("-----END CERTIFICATE-----") else {
                return Err(bad("a certificate block has no END line".into()));
            };
            let b64: String = rest[body_start..body_start + len]
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            use base64::Engine as _;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| bad(format!("certificate {} is not base64: {e}", n + 1)))?;
            let c = Cert::parse(&der).map_err(|e| bad(format!("certificate {}: {e}", n + 1)))?;
            if self.certs.len() >= MAX_CERTS {
                return Err(bad(format!("more than {MAX_CERTS} certificates")));
            }
            self.certs.push(c);
            n += 1;
            rest = &rest[body_start + len..];
        }
        if n == 0 {
            return Err(bad(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
            ));
        }
        Ok(n)
    }

    /// Adds one DER certificate (a Sigstore trust root's CA chain).
    pub fn add_der(&mut self, der: &[u8], origin: &str) -> Result<(), ProvenanceError> {
        let c = Cert::parse(der).map_err(|e| ProvenanceError::Key(format!("{origin}: {e}")))?;
        if self.certs.len() >= MAX_CERTS {
            return Err(ProvenanceError::Key(format!(
                "{origin}: more than {MAX_CERTS} certificates"
            )));
        }
        if !self.trusts(&c) {
            self.certs.push(c);
        }
        Ok(())
    }

    /// How many certificates are trusted.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn trusts(&self, c: &Cert) -> bool {
        self.certs.iter().any(|t| t.der == c.der)
    }
}

/// What a verified chain says about the signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The leaf's subject (RFC 4514).
    pub subject: String,
    /// Subjects from the leaf's issuer up to the root.
    pub chain: Vec<String>,
    /// Leaf validity, seconds since the Unix epoch.
    pub not_before: u64,
    /// Leaf validity end, seconds since the Unix epoch.
    pub not_after: u64,
    /// The leaf has expired by now (model-signing still accepts it: see
    /// the module documentation).
    pub expired: bool,
    /// The leaf key's curve.
    pub curve: String,
    /// For a Sigstore keyless signature: the identity and the log entry.
    pub keyless: Option<crate::keyless::KeylessSigner>,
}

/// Verifies `chain` (DER, leaf first, as in the bundle) up to one of
/// `roots`; returns the leaf's key and what it says. `Err` is an invalid
/// signature, with the reason.
pub fn verify_chain(chain: &[Vec<u8>], roots: &TrustRoots) -> Result<(EcKey, Signer), Invalid> {
    let (key, signer, _) = verify_chain_with(chain, roots, None)?;
    can_sign(&chain_leaf(chain)?).map_err(Invalid::new)?;
    Ok((key, signer))
}

fn chain_leaf(chain: &[Vec<u8>]) -> Result<Cert, Invalid> {
    let Some(leaf_der) = chain.first() else {
        return Err(Invalid::new("the bundle's certificate chain is empty"));
    };
    Cert::parse(leaf_der).map_err(|e| Invalid::new(format!("signing certificate: {e}")))
}

/// A Sigstore (Fulcio) chain: `leaf` up to any certificate of `anchors`
/// (every certificate of the trust root's authorities is an anchor, as in
/// sigstore-python's `Store`), every certificate valid at `at` (the log's
/// integrated time, seconds). Returns the leaf key, what it says, and the
/// DER path from the leaf to the anchor (leaf first). No usage check: the
/// caller applies Sigstore's.
pub fn verify_chain_at(
    leaf: &[u8],
    anchors: &TrustRoots,
    at: u64,
) -> Result<(EcKey, Signer, Vec<Vec<u8>>), Invalid> {
    verify_chain_with(&[leaf.to_vec()], anchors, Some(Duration::from_secs(at)))
}

/// Key usage as Sigstore requires of a Fulcio leaf: KeyUsage
/// digitalSignature and ExtendedKeyUsage codeSigning, both.
pub fn sigstore_usage(leaf: &[u8]) -> Result<(), Invalid> {
    let c = Cert::parse(leaf).map_err(|e| Invalid::new(format!("signing certificate: {e}")))?;
    let ku: Option<KeyUsage> = c.extension(KEY_USAGE).map_err(Invalid::new)?;
    if !ku.is_some_and(|k| k.digital_signature()) {
        return Err(Invalid::new(
            "the signing certificate's KeyUsage lacks digitalSignature",
        ));
    }
    let eku: Option<ExtendedKeyUsage> = c.extension(EXT_KEY_USAGE).map_err(Invalid::new)?;
    if !eku.is_some_and(|e| e.0.contains(&CODE_SIGNING)) {
        return Err(Invalid::new(
            "the signing certificate's ExtendedKeyUsage lacks codeSigning",
        ));
    }
    Ok(())
}

fn verify_chain_with(
    chain: &[Vec<u8>],
    roots: &TrustRoots,
    at: Option<Duration>,
) -> Result<(EcKey, Signer, Vec<Vec<u8>>), Invalid> {
    if chain.len() > MAX_CERTS {
        return Err(Invalid::new(format!(
            "the bundle's certificate chain has {} certificates (at most {MAX_CERTS} are read)",
            chain.len()
        )));
    }
    let leaf = chain_leaf(chain)?;
    let mut bundled = Vec::new();
    for (i, d) in chain.iter().enumerate().skip(1) {
        bundled.push(
            Cert::parse(d)
                .map_err(|e| Invalid::new(format!("bundle certificate {}: {e}", i + 1)))?,
        );
    }
    let mut path = vec![&leaf];
    let mut why = None;
    let mut tries = MAX_TRIES;
    let any_anchor = at.is_some();
    if !build(&mut path, roots, &bundled, &mut why, &mut tries, any_anchor) {
        return Err(Invalid::new(why.unwrap_or_else(|| {
            let subject = leaf.subject();
            format!(
                "no chain from the signing certificate ({}) to a {}: its issuer {} is \
                 neither in the bundle nor in the given certificates",
                if subject.is_empty() {
                    "empty subject"
                } else {
                    subject.as_str()
                },
                if any_anchor {
                    "trust root certificate authority"
                } else {
                    "given root"
                },
                leaf.cert.tbs_certificate.issuer
            )
        })));
    }
    check_path(&path, at).map_err(Invalid::new)?;
    let key = EcKey::from_spki(&leaf.spki_der().map_err(Invalid::new)?)
        .map_err(|e| Invalid::new(format!("signing certificate: {e}")))?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Ok((
        key.clone(),
        Signer {
            subject: leaf.subject(),
            chain: path[1..].iter().map(|c| c.subject()).collect(),
            not_before: leaf.not_before().as_secs(),
            not_after: leaf.not_after().as_secs(),
            expired: at.is_none() && leaf.not_after() < now,
            curve: key.curve().into(),
            keyless: None,
        },
        path.iter().map(|c| c.der.clone()).collect(),
    ))
}

/// Depth-first path building: extends `path` until its last certificate
/// is a trusted self-issued one (whose own signature is not checked, as
/// OpenSSL does not by default). Trusted candidates are tried first. At
/// most `tries` candidate issuers are tried in all.
fn build<'a>(
    path: &mut Vec<&'a Cert>,
    roots: &'a TrustRoots,
    bundled: &'a [Cert],
    why: &mut Option<String>,
    tries: &mut usize,
    any_anchor: bool,
) -> bool {
    let Some(&cur) = path.last() else {
        return false;
    };
    if roots.trusts(cur) && (cur.self_issued() || (any_anchor && path.len() > 1)) {
        return true;
    }
    if path.len() >= MAX_DEPTH {
        why.get_or_insert_with(|| {
            format!("no chain to a given root within {MAX_DEPTH} certificates")
        });
        return false;
    }
    for c in roots.certs.iter().chain(bundled.iter()) {
        if !cur.issued_by(c) || path.iter().any(|p| p.der == c.der) {
            continue;
        }
        if *tries == 0 {
            *why = Some(format!(
                "no chain to a given root found after trying {MAX_TRIES} candidate issuers \
                 (the certificates form too many possible paths)"
            ));
            return false;
        }
        *tries -= 1;
        match cur.signed_by(c) {
            Ok(()) => {
                path.push(c);
                if build(path, roots, bundled, why, tries, any_anchor) {
                    return true;
                }
                path.pop();
            }
            Err(e) => {
                why.get_or_insert(e);
            }
        }
    }
    false
}

/// CA, path length, validity and critical-extension checks on a built path.
fn check_path(path: &[&Cert], given: Option<Duration>) -> Result<(), String> {
    let Some(leaf) = path.first() else {
        return Err("empty chain".into());
    };
    let at = given.unwrap_or_else(|| leaf.not_before());
    for (i, c) in path.iter().enumerate() {
        if c.not_before() > at || c.not_after() < at {
            let when = match given {
                Some(t) => format!(
                    "the transparency log's integrated time ({} s since the epoch)",
                    t.as_secs()
                ),
                None => format!(
                    "the signing certificate's start ({})",
                    leaf.cert.tbs_certificate.validity.not_before
                ),
            };
            let what = if i == 0 && given.is_some() {
                "the signing certificate".to_string()
            } else {
                c.subject()
            };
            return Err(format!(
                "{what} is not valid at {when}: it is valid from {} to {}",
                c.cert.tbs_certificate.validity.not_before,
                c.cert.tbs_certificate.validity.not_after
            ));
        }
        if let Some(exts) = &c.cert.tbs_certificate.extensions {
            for e in exts {
                if e.critical && !KNOWN.contains(&e.extn_id.to_string().as_str()) {
                    return Err(format!(
                        "{} has a critical extension aisec does not check ({})",
                        c.subject(),
                        e.extn_id
                    ));
                }
            }
        }
        if i == 0 {
            continue;
        }
        let bc: Option<BasicConstraints> = c.extension(BASIC_CONSTRAINTS)?;
        match bc {
            Some(bc) if bc.ca => {
                // Intermediates between this CA and the leaf.
                let below = i.saturating_sub(1);
                if let Some(max) = bc.path_len_constraint {
                    if below > usize::from(max) {
                        return Err(format!(
                            "{} allows {max} intermediate certificates below it, the chain has {below}",
                            c.subject()
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{} issued {} but is not a CA certificate (basicConstraints cA is not set)",
                    c.subject(),
                    path[i - 1].subject()
                ))
            }
        }
        let ku: Option<KeyUsage> = c.extension(KEY_USAGE)?;
        if ku.is_some_and(|k| !k.key_cert_sign()) {
            return Err(format!(
                "{} is a CA whose KeyUsage lacks keyCertSign",
                c.subject()
            ));
        }
    }
    Ok(())
}

/// model-signing: KeyUsage digitalSignature, or else EKU codeSigning.
fn can_sign(leaf: &Cert) -> Result<(), String> {
    let ku: Option<KeyUsage> = leaf.extension(KEY_USAGE)?;
    if ku.is_some_and(|k| k.digital_signature()) {
        return Ok(());
    }
    let eku: Option<ExtendedKeyUsage> = leaf.extension(EXT_KEY_USAGE)?;
    if eku.is_some_and(|e| e.0.contains(&CODE_SIGNING)) {
        return Ok(());
    }
    Err(format!(
        "the signing certificate ({}) may not sign: neither KeyUsage digitalSignature nor \
         ExtendedKeyUsage codeSigning",
        leaf.subject()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_certificates_are_invalid_not_panics() {
        let roots = TrustRoots::default();
        for bad in [vec![], vec![vec![]], vec![vec![0x30, 0x03, 1, 2, 3]]] {
            assert!(verify_chain(&bad, &roots).is_err());
        }
        let mut r = TrustRoots::default();
        assert!(r.add_pem("nothing here", "x.pem").is_err());
        assert!(r
            .add_pem(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "x.pem"
            )
            .is_err());
        assert!(r
            .add_pem("-----BEGIN CERTIFICATE-----\nAAAA", "x.pem")
            .unwrap_err()
            .to_string()
            .contains("END"));
    }

    /// 64 distinct CA certificates with one name and one key: each one
    /// verifies every other, so an unbounded depth-first search tries
    /// 63 x 62 x ... x 57 orderings (a hang) before giving up.
    #[test]
    fn same_name_same_key_certificates_do_not_blow_up_path_building() {
        use der::asn1::BitString;
        use p256::ecdsa::signature::Signer as _;
        use p256::pkcs8::EncodePublicKey as _;
        use x509_cert::serial_number::SerialNumber;
        use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

        let mut trusted = TrustRoots::default();
        trusted
            .add_pem(include_str!("../tests/fixtures/cert/root.pem"), "root.pem")
            .unwrap();
        let mut template = trusted.certs[0].cert.clone();
        let key = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let spki = key.verifying_key().to_public_key_der().unwrap();
        template.tbs_certificate.subject_public_key_info =
            SubjectPublicKeyInfoOwned::from_der(spki.as_bytes()).unwrap();
        // Same name as issuer and subject, but not the trusted root's key.
        let alg = AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(ECDSA_SHA256),
            parameters: None,
        };
        template.tbs_certificate.signature = alg.clone();
        template.signature_algorithm = alg;
        let chain: Vec<Vec<u8>> = (0..MAX_CERTS as u8)
            .map(|i| {
                let mut c = template.clone();
                c.tbs_certificate.serial_number = SerialNumber::new(&[1, i]).unwrap();
                let sig: p256::ecdsa::DerSignature = key.sign(&c.tbs_certificate.to_der().unwrap());
                c.signature = BitString::from_bytes(sig.as_bytes()).unwrap();
                c.to_der().unwrap()
            })
            .collect();
        // Each one is signed by the (shared) key of any other.
        let (a, b) = (
            Cert::parse(&chain[0]).unwrap(),
            Cert::parse(&chain[1]).unwrap(),
        );
        assert!(a.issued_by(&b) && a.signed_by(&b).is_ok());

        let err = verify_chain(&chain, &trusted).unwrap_err();
        assert!(err.0.contains("candidate issuers"), "{}", err.0);
    }
}
