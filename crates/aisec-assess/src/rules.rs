//! The rules `aisec assess` reports besides its checks' own findings.

aisec_core::declare_rules! {
    /// ## What it detects
    /// A threat of the system's threat model that a measurement showed to be
    /// real: the check that tests it (scan, evasion, membership inference,
    /// extraction, probes, the gateway replay) reported a finding of low
    /// severity or more for the threat's ATLAS techniques.
    ///
    /// ## Why it matters
    /// The finding of the check says what failed; this one says which part
    /// of the system it exposes and at what risk (likelihood from the
    /// component's exposure, impact from the threat), which is what a
    /// security lead ranks work by.
    ///
    /// ## Example
    /// `TM-ART-EXEC@models`: the artifact folder holds a pickle that calls
    /// `posix.system`, so loading a model runs code.
    pub static ASSESS_THREAT_OPEN = {
        id: "AISEC-ASSESS-001",
        name: "assess-threat-open",
        title: "Threat open: a measurement shows it is real",
        severity: High,
        atlas: &["AML.T0040"],
        owasp: &[],
        remediation: "Apply the threat's control (named in the evidence), then run aisec assess again to confirm the threat is mitigated.",
    };

    /// ## What it detects
    /// A threat of high inherent risk that nothing measured: aisec has no
    /// check for it (excessive agency, poisoning of outside data, artifact
    /// signing) or its check could not run.
    ///
    /// ## Why it matters
    /// Untested is not mitigated. The control named in the evidence has to
    /// be reviewed by a person; the report lists it so the gap is visible.
    ///
    /// ## Example
    /// `TM-LLM-AGENCY@chat`: the LLM can call `send_email`; whether a human
    /// approves each call is a design review, not a measurement.
    pub static ASSESS_THREAT_UNTESTED = {
        id: "AISEC-ASSESS-002",
        name: "assess-threat-not-tested",
        title: "High-risk threat not tested: review its control manually",
        severity: Low,
        atlas: &["AML.T0040"],
        owasp: &[],
        remediation: "Review the named control and record it in the description's `controls`, or add the missing inputs so aisec can measure the threat.",
    };
}
