//! The rules defence findings cite (`AISEC-DEFEND-*`). Severities are set
//! from the measured numbers by the code that makes the findings; the
//! values here are the defaults.

aisec_core::declare_rules! {
    /// ## What it detects
    /// Training examples that dataset inspection flags as likely poisoned:
    /// activation clustering (Chen et al. 2018) found a class whose
    /// penultimate activations split into a small separate cluster, with
    /// spectral signatures (Tran et al. 2018) and early-loss isolation (Li
    /// et al. 2021) ranking the same rows. Severity: high when at least two
    /// methods agree on most flagged rows, medium otherwise.
    ///
    /// ## Why it matters
    /// A small, tightly clustered group inside a class that the model learns
    /// unusually fast is the signature of a backdoor trigger; training on it
    /// plants the backdoor in the model.
    ///
    /// ## Example
    /// `aisec defend data poisoned/poisoned.npz --model victim.onnx
    /// --ground-truth poisoned/indices.json` on BadNets-poisoned MNIST
    /// (`bench/poison/RESULTS.md`).
    pub static SUSPICIOUS_DATA = {
        id: "AISEC-DEFEND-001",
        name: "suspicious-training-examples",
        title: "Training data holds a cluster of likely poisoned examples",
        severity: Medium,
        atlas: &["AML.T0020"],
        owasp: &[],
        remediation: "Review the ranked examples, remove the flagged ones (or the whole cluster), \
trace where they came from, and retrain; then re-measure the model (aisec defend model) \
before deploying it.",
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_are_well_formed() {
        assert_eq!(
            aisec_core::rule::problems(super::RULES),
            Vec::<String>::new()
        );
    }
}
