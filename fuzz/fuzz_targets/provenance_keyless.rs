//! Fuzz target: the parsers of Sigstore keyless material must never panic,
//! hang or allocate without bound, whatever the bytes. The first byte picks
//! the parser: a trust root (`trusted_root.json` or client trust config), a
//! signed-note checkpoint, a TLS SCT list, or a whole keyless bundle, which,
//! when it parses, is verified against the committed test trust root (it
//! must simply pass or fail).
#![no_main]

use aisec_provenance::{keyless, tlog, Bundle, Keyless, Policy, SigstoreTrust};
use libfuzzer_sys::fuzz_target;

const TRUST: &[u8] =
    include_bytes!("../../crates/aisec-provenance/tests/fixtures/keyless/trust_config.json");

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            let _ = SigstoreTrust::parse(rest);
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(cp) = tlog::parse_checkpoint(text) {
                    if let Ok(t) = SigstoreTrust::parse(TRUST) {
                        let _ = tlog::verify_checkpoint(&cp, &t.tlogs, &[0; 32], &cp.root);
                    }
                }
            }
        }
        2 => {
            let _ = keyless::parse_sct_list(rest);
        }
        _ => {
            if let (Ok(Ok(b)), Ok(trust)) = (Bundle::parse(rest), SigstoreTrust::parse(TRUST)) {
                if let Some(m) = &b.keyless {
                    let k = Keyless {
                        trust,
                        policy: Policy {
                            identity: "signer@aisec.test".into(),
                            issuer: "https://oidc.aisec.test".into(),
                        },
                    };
                    let _ = keyless::verify(m, &b.payload, &b.payload_type, &b.signature, &k);
                }
            }
        }
    }
});
