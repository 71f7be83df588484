//! Fuzz target: reading a model-signing Sigstore bundle and the in-toto
//! statement inside it must never panic, whatever the bytes; a bundle that
//! parses is checked against a fixed key and, as a certificate-based
//! bundle, against the test PKI's root (it must simply fail or pass).
#![no_main]

use aisec_provenance::{statement, Bundle, PublicKey, TrustRoots};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDOmI5RVVFt70TVetrKtpJXYJFstf
yfYvh6iq57s3mhOfFNsTnuiPyEmFFBzk02kh86gCXnID1gxCGHkSTSG1PA==
-----END PUBLIC KEY-----";

const ROOT: &str = include_str!("../../crates/aisec-provenance/tests/fixtures/cert/root.pem");

fuzz_target!(|data: &[u8]| {
    if let Ok(Ok(b)) = Bundle::parse(data) {
        if let Ok(key) = PublicKey::from_pem(KEY) {
            let _ = b.verify(&key);
        }
        let mut roots = TrustRoots::default();
        if roots.add_pem(ROOT, "root.pem").is_ok() {
            let _ = b.verify_with_roots(&roots);
        }
        let _ = statement::parse(&b.payload);
    }
    // The statement parser on raw bytes too (manifest files are read directly).
    let _ = statement::parse(data);
});
