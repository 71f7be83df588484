//! Rules the scanner driver itself reports (the leaf parsers in
//! `aisec-pickle`, `aisec-formats` and `aisec-archive` have their own).

aisec_core::declare_rules! {
    /// ## What it detects
    /// A file whose name claims a data-only format (safetensors, GGUF, ONNX,
    /// NumPy, HDF5) while its bytes are a pickle, an archive or a compressed
    /// stream.
    ///
    /// ## Why it matters
    /// Loaders pick their parser from the content, so a renamed pickle still
    /// runs code when loaded, while people and tools that trust the suffix
    /// treat the file as safe.
    ///
    /// ## Example
    /// `model.safetensors` that starts with `\x80\x04` (a protocol-4 pickle)
    /// and is loaded with `torch.load`.
    pub static DISGUISED = {
        id: "AISEC-SCAN-001",
        name: "disguised-artifact",
        title: "File content does not match its suffix",
        severity: High,
        atlas: &["AML.T0074", "AML.T0010.003"],
        owasp: &["LLM03"],
        remediation: "Treat the file as the format its bytes say; do not load it until its content \
has been scanned and its origin verified.",
    };

    /// ## What it detects
    /// A file whose suffix names a model format other than the one its bytes
    /// hold, or whose bytes are not recognisable as the claimed format at
    /// all (a code-carrying format under a data-only suffix is
    /// `disguised-artifact` instead).
    ///
    /// ## Why it matters
    /// Often harmless (a renamed file), but it is also how malicious
    /// artifacts slip past suffix-based scanners and reviews.
    ///
    /// ## Example
    /// `weights.h5` whose content is a zip (a Keras v3 `.keras` file).
    pub static SUFFIX_MISMATCH = {
        id: "AISEC-SCAN-002",
        name: "suffix-mismatch",
        title: "File suffix names a different format",
        severity: Low,
        atlas: &["AML.T0074"],
        owasp: &["LLM03"],
        remediation: "Rename the file to match its content, or find out why it differs.",
    };

    /// ## What it detects
    /// An artifact or container member that a parser could not read to the
    /// end (a damaged zip, tar or compressed stream, a format parser that
    /// stopped), when no more specific finding already says so. An `.onnx`
    /// file that opens as an ONNX model and is then cut short is reported
    /// here, not as `suffix-mismatch`.
    ///
    /// ## Why it matters
    /// Loaders are often more lenient than scanners, and crafted damage is a
    /// known way to hide a payload from scanners, so what could not be read
    /// cannot be called safe.
    ///
    /// ## Example
    /// A `.tar` whose second member header is garbage: the first member was
    /// scanned, the rest was not.
    pub static MALFORMED = {
        id: "AISEC-SCAN-003",
        name: "malformed-artifact",
        title: "Artifact is malformed and could not be fully analysed",
        severity: Medium,
        atlas: &["AML.T0010.003"],
        owasp: &["LLM03"],
        remediation: "Obtain the artifact again from a trusted source and compare its hash.",
    };

    /// ## What it detects
    /// Archives nested deeper than the scan's `max_depth` (default 5
    /// containers inside containers); members below the limit are not
    /// scanned.
    ///
    /// ## Why it matters
    /// Deep nesting has no use in model distribution and is a way to exhaust
    /// or evade scanners.
    ///
    /// ## Example
    /// `model.zip` containing `a.zip` containing `b.zip` ... six levels down
    /// to a `data.pkl`.
    pub static TOO_DEEP = {
        id: "AISEC-SCAN-004",
        name: "nesting-too-deep",
        title: "Archives nested deeper than the scan limit",
        severity: Medium,
        atlas: &["AML.T0010.003", "AML.T0074"],
        owasp: &["LLM03"],
        remediation: "Unpack the artifact by hand in a sandbox and scan its contents.",
    };

    /// ## What it detects
    /// A container member that could not be read within a size or count
    /// limit (entry size, total size, entry count).
    ///
    /// ## Why it matters
    /// The part beyond the limit was not analysed; an input built to exceed
    /// limits (a decompression bomb, a huge entry) is also a denial-of-service
    /// attempt against whatever loads it.
    ///
    /// ## Example
    /// A zip member declaring 3 GB uncompressed when the entry limit is
    /// 512 MiB.
    pub static LIMIT = {
        id: "AISEC-SCAN-005",
        name: "resource-limit",
        title: "Artifact exceeds a scan resource limit",
        severity: Medium,
        atlas: &["AML.T0029", "AML.T0010.003"],
        owasp: &["LLM03", "LLM10"],
        remediation: "Inspect the artifact by hand in a sandbox; raise the limit only if it is trusted.",
    };

    /// ## What it detects
    /// A Hugging Face `config.json` (or `tokenizer_config.json`,
    /// `processor_config.json`, ...) with an `auto_map` entry: the Auto
    /// classes of `transformers` import the named Python files from the
    /// repository (or, with `repo--module.Class`, from another repository)
    /// when the model is loaded with `trust_remote_code=True`.
    ///
    /// ## Why it matters
    /// That is arbitrary code from the model's distribution, run with the
    /// loader's privileges; users pass the flag because the model card tells
    /// them to. The referenced files need a review before loading.
    ///
    /// ## Example
    /// `{"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}` beside a
    /// `modeling_evil.py` that runs `os.system` at import.
    pub static HF_REMOTE_CODE = {
        id: "AISEC-SCAN-006",
        name: "hf-remote-code",
        title: "Hugging Face config loads Python code from the repository (auto_map)",
        severity: High,
        atlas: &["AML.T0011.000", "AML.T0010.003"],
        owasp: &["LLM03"],
        remediation: "Review every Python file that auto_map names before loading with \
trust_remote_code=True, or use a model that needs no remote code.",
    };

    /// ## What it detects
    /// A call in a Python file that a Hugging Face `auto_map` makes
    /// `transformers` import (or in a file it imports relatively) that can
    /// spawn processes, execute code, open network connections, import
    /// modules by computed name, unpickle data or write files. Calls are
    /// resolved through the file's imports and aliases and judged with the
    /// capability table generated from the standard library and the ML
    /// libraries; the finding names the file and line.
    ///
    /// ## Why it matters
    /// `trust_remote_code=True` imports these files: module-level code runs
    /// at `from_pretrained`, `__init__` when the model is built. Malicious
    /// Hugging Face repositories have used exactly this to run shell
    /// commands and open reverse shells (JFrog, "Data Scientists Targeted by
    /// Malicious Hugging Face ML Models", 2024; Protect AI Guardian reports
    /// 2025).
    ///
    /// ## Example
    /// `modeling_evil.py` with `import os as o` at the top and
    /// `o.system("curl … | sh")` in the model's `__init__`.
    pub static HF_REMOTE_CODE_CALL = {
        id: "AISEC-SCAN-007",
        name: "hf-remote-code-capability",
        title: "Remote code loaded by auto_map calls a dangerous capability",
        severity: High,
        atlas: &["AML.T0011.000", "AML.T0010.003", "AML.T0050"],
        owasp: &["LLM03"],
        remediation: "Do not load the model with trust_remote_code=True; read the named \
file and line, or use a model that needs no remote code.",
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_are_well_formed() {
        let problems = aisec_core::rule::problems_in_areas(super::RULES, &["AISEC-SCAN-0"]);
        assert_eq!(problems, Vec::<String>::new());
    }
}
