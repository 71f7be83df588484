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

    /// ## What it detects
    /// A classifier whose positive decisions differ between the groups of a
    /// sensitive attribute by more than the description's
    /// `max_fairness_gap`: the demographic-parity difference (selection
    /// rates) or the equalized-odds difference (true- or false-positive
    /// rates), each with its bootstrap 95% interval in the evidence.
    ///
    /// ## Why it matters
    /// Unequal error or selection rates across groups are a harm in their
    /// own right and a compliance matter (NIST AI RMF MEASURE 2.11, the EU
    /// AI Act's requirements on bias); they also show where the model is
    /// brittle.
    ///
    /// ## Example
    /// Selection rate 0.31 for group 0 and 0.12 for group 1: demographic
    /// parity difference 0.19 (95% CI 0.14-0.24) above a gap of 0.10.
    pub static ASSESS_FAIRNESS_GAP = {
        id: "AISEC-ASSESS-003",
        name: "assess-fairness-gap",
        title: "Decisions differ between groups beyond the accepted gap",
        severity: Medium,
        atlas: &["AML.T0031"],
        owasp: &[],
        remediation: "Check the data for under-represented groups and label bias, consider re-weighting or per-group thresholds, and document the residual gap and its justification.",
    };
}
