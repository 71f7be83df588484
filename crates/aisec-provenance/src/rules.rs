//! The rules behind provenance findings (ids `AISEC-PROV-0NN`).

/// Every provenance finding is about the model supply chain.
const SUPPLY: &[&str] = &["AML.T0010.003"];
/// A signed file whose bytes changed: the model itself may have been altered.
const TAMPERED: &[&str] = &["AML.T0010.003", "AML.T0018"];
const OWASP: &[&str] = &["LLM03"];

aisec_core::declare_rules! {
    /// ## What it detects
    /// A model folder checked for provenance that carries no signature file
    /// (by default `model.sig`, the name the OpenSSF `model-signing` tool
    /// writes).
    ///
    /// ## Why it matters
    /// Without a signature nothing ties the files to whoever published them:
    /// a mirror, a cache or a compromised account can swap weights or code
    /// and no check downstream can tell.
    ///
    /// ## Example
    /// `aisec provenance verify ./llama --public-key pub.pem` on a folder
    /// that has `model.safetensors` and `config.json` but no `model.sig`.
    pub static UNSIGNED_MODEL = {
        id: "AISEC-PROV-001",
        name: "unsigned-model",
        title: "Model is not signed",
        severity: Low,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Ask the publisher for a model-signing signature (or sign the model yourself when you publish it) and verify it before loading.",
    };

    /// ## What it detects
    /// A signature that does not verify: the sigstore bundle is malformed,
    /// the ECDSA signature over the DSSE envelope is wrong for the given
    /// public key, the bundle names another key, the payload is not a
    /// model-signing in-toto statement, or the statement's root digest does
    /// not match the file digests it lists.
    ///
    /// ## Why it matters
    /// The signature is the only thing that says the manifest came from the
    /// key holder. If it fails, nothing in the manifest can be trusted and
    /// the model must be treated as unsigned and possibly tampered with.
    ///
    /// ## Example
    /// A `model.sig` whose DSSE payload was edited to list new digests for
    /// `model.safetensors` after signing.
    pub static INVALID_SIGNATURE = {
        id: "AISEC-PROV-002",
        name: "invalid-model-signature",
        title: "Model signature does not verify",
        severity: High,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Do not load the model. Fetch it and its signature again from the publisher, and check that the public key (or the root certificate) is the publisher's.",
    };

    /// ## What it detects
    /// A file whose SHA-256 differs from the digest the (verified) signed
    /// manifest records for it.
    ///
    /// ## Why it matters
    /// The file was changed after signing: corrupted in transit, or replaced
    /// with a backdoored or code-executing variant (a pickle swapped into a
    /// checkpoint, edited remote code, altered weights).
    ///
    /// ## Example
    /// `model.safetensors` signed with digest `5891b5...`, now hashing to
    /// `9a1290...`.
    pub static FILE_MODIFIED = {
        id: "AISEC-PROV-003",
        name: "signed-file-modified",
        title: "Signed model file was modified",
        severity: High,
        atlas: TAMPERED,
        owasp: OWASP,
        remediation: "Do not load the model; restore the file from the publisher and verify again.",
    };

    /// ## What it detects
    /// A file the signed manifest lists that is not in the model folder.
    ///
    /// ## Why it matters
    /// A missing file changes what is loaded: a loader may fall back to
    /// another file (a `.bin` pickle instead of a removed `.safetensors`) or
    /// to defaults an attacker chose.
    ///
    /// ## Example
    /// The manifest lists `tokenizer.json`; the folder has none.
    pub static FILE_MISSING = {
        id: "AISEC-PROV-004",
        name: "signed-file-missing",
        title: "Signed model file is missing",
        severity: High,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Restore the missing file from the publisher and verify again.",
    };

    /// ## What it detects
    /// A file in the model folder that the signed manifest does not list
    /// (and that is not an ignored path such as `.git/` or the signature).
    ///
    /// ## Why it matters
    /// Loaders pick files up by name and pattern: an added
    /// `pytorch_model.bin` or `modeling_*.py` next to signed files is loaded
    /// without being covered by the signature.
    ///
    /// The finding is high when the file is code or a model format a loader
    /// picks up (`.py`, `.bin`, `.pt`, `.pkl`, `.safetensors`, `.gguf`,
    /// `.onnx`, shared libraries...), medium otherwise.
    ///
    /// ## Example
    /// A signed folder to which `extra_loader.py` was added after signing.
    pub static FILE_UNSIGNED = {
        id: "AISEC-PROV-005",
        name: "unsigned-file-in-signed-model",
        title: "File not covered by the model signature",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Remove the file, or have the publisher sign the model with it.",
    };

    /// ## What it detects
    /// A symbolic link in a model folder whose signature was made without
    /// `allow_symlinks`.
    ///
    /// ## Why it matters
    /// A link lets the loaded bytes come from outside the signed folder, and
    /// its target can change without the folder changing. model-signing
    /// refuses such folders.
    ///
    /// ## Example
    /// `model.safetensors -> /tmp/other.safetensors` in a signed folder.
    pub static SYMLINK = {
        id: "AISEC-PROV-006",
        name: "symlink-in-signed-model",
        title: "Symbolic link in a model signed without symlinks",
        severity: Medium,
        atlas: SUPPLY,
        owasp: OWASP,
        remediation: "Replace the link with the file it points to, or sign and verify with symlinks allowed if links are intended.",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_well_formed() {
        assert_eq!(aisec_core::rule::problems(RULES), Vec::<String>::new());
        assert_eq!(RULES.len(), 6);
        assert!(RULES.iter().all(|r| r.id.starts_with("AISEC-PROV-0")));
        assert!(FILE_MODIFIED.atlas.contains(&"AML.T0018"));
    }
}
