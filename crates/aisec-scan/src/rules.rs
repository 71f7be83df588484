//! Rules the scanner driver itself reports (the leaf parsers in
//! `aisec-pickle`, `aisec-formats` and `aisec-archive` have their own).

use aisec_core::{Rule, Severity};

/// A file whose suffix claims a format that cannot run code, while its
/// content is a pickle or an archive.
pub static DISGUISED: Rule = Rule {
    id: "AISEC-SCAN-001",
    name: "disguised-artifact",
    title: "File content does not match its suffix",
    description: "The file name claims a data-only format (safetensors, GGUF, ONNX, NumPy, HDF5) \
but the bytes are a pickle, an archive or a compressed stream. Loaders pick their parser from \
the content, so a renamed pickle still runs code when loaded, while people and tools that \
trust the suffix treat it as safe.",
    default_severity: Severity::High,
    atlas: &["AML.T0074", "AML.T0010.003"],
    owasp: &["LLM03"],
    remediation: "Treat the file as the format its bytes say; do not load it until its content \
has been scanned and its origin verified.",
};

/// A suffix that names another format than the content (neither safe).
pub static SUFFIX_MISMATCH: Rule = Rule {
    id: "AISEC-SCAN-002",
    name: "suffix-mismatch",
    title: "File suffix names a different format",
    description: "The file's suffix names a model format other than the one its bytes hold. \
This is often harmless (a renamed file) but is also how malicious artifacts slip past \
suffix-based scanners.",
    default_severity: Severity::Low,
    atlas: &["AML.T0074"],
    owasp: &["LLM03"],
    remediation: "Rename the file to match its content, or find out why it differs.",
};

/// A parser failed part-way: the artifact is damaged or crafted.
pub static MALFORMED: Rule = Rule {
    id: "AISEC-SCAN-003",
    name: "malformed-artifact",
    title: "Artifact is malformed and could not be fully analysed",
    description: "Part of the artifact could not be parsed. Loaders are often more lenient than \
scanners, and crafted damage is a known way to hide a payload from scanners, so what could \
not be read cannot be called safe.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0010.003"],
    owasp: &["LLM03"],
    remediation: "Obtain the artifact again from a trusted source and compare its hash.",
};

/// Archives nested deeper than the configured limit.
pub static TOO_DEEP: Rule = Rule {
    id: "AISEC-SCAN-004",
    name: "nesting-too-deep",
    title: "Archives nested deeper than the scan limit",
    description: "The artifact contains archives nested deeper than aisec follows. Deep nesting \
has no use in model distribution and is a way to exhaust or evade scanners.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0010.003", "AML.T0074"],
    owasp: &["LLM03"],
    remediation: "Unpack the artifact by hand in a sandbox and scan its contents.",
};

/// A member could not be read within the limits (bomb or huge entry).
pub static LIMIT: Rule = Rule {
    id: "AISEC-SCAN-005",
    name: "resource-limit",
    title: "Artifact exceeds a scan resource limit",
    description: "Reading part of the artifact would exceed a size or count limit (for example \
a decompression bomb). The part beyond the limit was not analysed.",
    default_severity: Severity::Medium,
    atlas: &["AML.T0029", "AML.T0010.003"],
    owasp: &["LLM03", "LLM10"],
    remediation:
        "Inspect the artifact by hand in a sandbox; raise the limit only if it is trusted.",
};

/// Every rule of the driver.
pub fn rules() -> Vec<&'static Rule> {
    vec![&DISGUISED, &SUFFIX_MISMATCH, &MALFORMED, &TOO_DEEP, &LIMIT]
}
