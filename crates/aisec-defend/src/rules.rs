//! The rules poisoning and backdoor defences report findings of
//! (`AISEC-BACKDOOR-*`). Severities are set from the measured numbers by the
//! code that makes the findings ([`crate::model`], [`crate::repair`],
//! [`crate::strip`], and the CLI for [`crate::data`]); the values here are the defaults.

aisec_core::declare_rules! {
    /// ## What it detects
    /// Model inspection without training data found a class whose
    /// reverse-engineered trigger is anomalously small: Neural Cleanse (Wang
    /// et al. 2019) or its blended-trigger variant needs a much smaller mask
    /// (or blend weight) to send almost every clean input to that class than
    /// to any other, by the MAD anomaly index (flagged at 2 and above). The
    /// finding names the class, the index, the reversed trigger's size and
    /// success rate, and where the trigger image was written. Severity follows
    /// the index (critical at 4 and above, high at 3, medium at 2).
    ///
    /// ## Why it matters
    /// A planted backdoor (BadNets, Blended and similar poisoning) lets whoever
    /// knows the trigger choose the model's answer for any input, while clean
    /// accuracy looks normal; ordinary testing does not reveal it.
    ///
    /// ## Example
    /// `aisec defend model --model badnets.onnx --clean clean.npz` on a
    /// digits CNN trained with 10 % BadNets poison to class 0: class 0's mask
    /// L1 norm is a fraction of the median and its anomaly index is above 2.
    pub static BACKDOORED_MODEL = {
        id: "AISEC-BACKDOOR-001",
        name: "backdoor-detected",
        title: "Model shows a planted backdoor (reverse-engineered trigger is anomalously small)",
        severity: High,
        atlas: &["AML.T0018", "AML.T0018.000"],
        owasp: &[],
        remediation: "Do not deploy the model. Retrain on vetted data (inspect it with `aisec defend data`), \
or repair it with `aisec defend repair` (fine-pruning, unlearning with the reversed trigger) and \
re-check clean accuracy and attack success rate on held-out data.",
    };

    /// ## What it detects
    /// A repair of a backdoored model (fine-pruning or unlearning) left the
    /// attack success rate on triggered inputs at or above 10 %, or cost more
    /// than the allowed clean accuracy. Severity follows the remaining
    /// attack success rate. When the repair works the finding is info and
    /// carries the numbers before and after.
    ///
    /// ## Why it matters
    /// A repaired model is only safe to deploy when the backdoor is gone; a
    /// partial repair still obeys the trigger on a share of inputs.
    ///
    /// ## Example
    /// `aisec defend repair --method fine-prune` on a Blended backdoor that
    /// lives in units the clean data also use: attack success stays high.
    pub static BACKDOOR_SURVIVES_REPAIR = {
        id: "AISEC-BACKDOOR-002",
        name: "backdoor-survives-repair",
        title: "Backdoor survives the repair",
        severity: High,
        atlas: &["AML.T0018", "AML.T0018.000"],
        owasp: &[],
        remediation: "Try the other repair method (unlearning with the reversed trigger after Neural \
Cleanse, or fine-pruning), more clean data for fine-tuning, or retrain from vetted data.",
    };

    /// ## What it detects
    /// STRIP (Gao et al. 2019): inputs whose predictions stay confident when
    /// they are superimposed with clean images (low entropy), below a
    /// threshold set at a 1 % false-rejection rate on held-out clean inputs.
    /// A trigger dominates whatever it is blended with; a clean input does
    /// not. The finding counts the flagged inputs and the class they go to.
    ///
    /// ## Why it matters
    /// Inputs carrying a backdoor trigger are being sent to the model: the
    /// model is backdoored and someone is using the trigger.
    ///
    /// ## Example
    /// `aisec defend strip --model badnets.onnx --clean clean.npz --inputs
    /// batch.npy` on a batch with triggered digits: those inputs have
    /// entropy near 0 and are flagged.
    pub static TROJANED_INPUT = {
        id: "AISEC-BACKDOOR-003",
        name: "trojaned-input",
        title: "Inputs carry a backdoor trigger (STRIP)",
        severity: High,
        atlas: &["AML.T0043.004", "AML.T0018"],
        owasp: &[],
        remediation: "Reject or quarantine the flagged inputs, find where they come from, and inspect \
the model (`aisec defend model`) and its training data for the backdoor they trigger.",
    };

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
        id: "AISEC-BACKDOOR-004",
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
