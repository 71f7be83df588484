//! The rules a hardening run's report cites (`AISEC-HARDEN-*`): evidence
//! that a control was applied, with the numbers that measure it, so an
//! assessment can cite the run. Severities are set from the measurements
//! by the code that makes the findings (the `aisec harden` command); the
//! values here are the defaults.

aisec_core::declare_rules! {
    /// ## What it detects
    /// A model that aisec adversarially trained (PGD-AT or TRADES) and then
    /// re-measured with its own AutoAttack (APGD-CE, APGD-T, FAB-T, Square)
    /// at the stated norm and radius. The finding records the method, the
    /// training radius and steps, and the clean and AutoAttack accuracy
    /// before and after. It is informational when robust accuracy rose; it
    /// is medium when training left the robust accuracy no higher than
    /// before.
    ///
    /// ## Why it matters
    /// Adversarial training is the mitigation evasion findings
    /// (AISEC-EVASION-001) recommend; its effect has to be measured with an
    /// adaptive, parameter-free attack, not assumed (Croce & Hein 2020).
    ///
    /// ## Example
    /// `aisec harden adv` fine-tuning the bundled digits CNN with PGD-AT at
    /// L-inf 0.1 for a few epochs: AutoAttack accuracy rises from near zero
    /// to a measurable fraction at a small cost in clean accuracy (the
    /// numbers are in the report's data and its RobustBench-style entry).
    pub static ADVERSARIAL_TRAINING = {
        id: "AISEC-HARDEN-001",
        name: "adversarial-training-evidence",
        title: "Model was adversarially trained; robustness re-measured with AutoAttack",
        severity: Info,
        atlas: &["AML.T0015", "AML.T0043.000"],
        owasp: &[],
        remediation: "Keep the evaluation with the model: re-run AutoAttack after every retraining \
at the threat model you deploy against. If the robust accuracy did not rise, train longer, \
with an eps warm-up, or with TRADES, and check the learning rate.",
    };

    /// ## What it detects
    /// A model that aisec trained with DP-SGD (per-example clipping and
    /// Gaussian noise with Poisson sampling), with the privacy spent as
    /// (epsilon, delta) from the RDP and PLD accountants and the test
    /// accuracy before and after. It is informational at epsilon up to 10
    /// and low above it, where the guarantee says little.
    ///
    /// ## Why it matters
    /// Differential privacy bounds what membership inference and model
    /// inversion can learn about any one training example; the bound is
    /// only as good as the epsilon actually spent, which the report states.
    ///
    /// ## Example
    /// `aisec harden dp` on the bundled digits with a target epsilon of 3
    /// at delta 1e-5: the report gives the noise multiplier the accountant
    /// chose, epsilon after every epoch, and the accuracy it cost.
    pub static DP_TRAINING = {
        id: "AISEC-HARDEN-002",
        name: "dp-training-evidence",
        title: "Model was trained with differential privacy (DP-SGD)",
        severity: Info,
        atlas: &["AML.T0024.000", "AML.T0024.001"],
        owasp: &[],
        remediation: "State the (epsilon, delta) with the model. Prefer epsilon at most 8 \
(published MNIST/CIFAR anchors reach useful accuracy there); re-run membership inference \
(aisec attack membership) to confirm the measured leakage fell.",
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_are_well_formed() {
        let problems = aisec_core::rule::problems_in_areas(super::RULES, &["AISEC-HARDEN-0"]);
        assert_eq!(problems, Vec::<String>::new());
    }
}
