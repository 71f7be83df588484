//! The rules attack results become findings of: evasion
//! (`AISEC-EVASION-*`) and privacy (`AISEC-PRIVACY-*`). Severities are set
//! from the measured numbers by the code that makes the findings
//! ([`crate::evasion::findings`], [`crate::membership`], [`crate::inversion`],
//! [`crate::extraction`]); the values here are the defaults. Below a
//! rule's reporting threshold (nothing broken, an attack no better than
//! guessing, a copy agreeing on under half the inputs) the finding is info
//! and its title says the model held or the attack fell short, instead of
//! the rule's title.

aisec_core::declare_rules! {
    /// ## What it detects
    /// Gradient-based attacks (FGSM, PGD, C&W, DeepFool, APGD, FAB,
    /// AutoAttack) that found small input perturbations inside the stated
    /// budget that change the model's prediction. The finding carries the
    /// clean and robust accuracy; its severity follows the robust accuracy
    /// (critical below 10 %, high below 50 %).
    ///
    /// ## Why it matters
    /// An attacker with the model's weights, or a close substitute, can craft
    /// inputs that look unchanged to people and make the model answer
    /// whatever they choose.
    ///
    /// ## Example
    /// PGD-40 on the `mnist_cnn` test fixture and 1,000 held-out MNIST digits:
    /// clean accuracy 0.975, robust accuracy 0.669 at L-inf 0.1 and 0.000 at
    /// 0.3 (`bench/attack/RESULTS.md`).
    pub static WHITE_BOX = {
        id: "AISEC-EVASION-001",
        name: "white-box-evasion",
        title: "Model is evaded by white-box adversarial examples",
        severity: High,
        atlas: &["AML.T0015", "AML.T0043.000"],
        owasp: &[],
        remediation: "Treat the robust accuracy as the accuracy an adaptive attacker leaves you. \
Consider adversarial training (PGD/TRADES) at the threat model you care about, input \
preprocessing only together with adaptive re-evaluation, and keep weights confidential.",
    };

    /// ## What it detects
    /// Query-only attacks (Square with scores, HopSkipJump with labels only)
    /// that found adversarial examples inside the stated budget using only
    /// the model's outputs, with the number of queries they needed.
    ///
    /// ## Why it matters
    /// Any user of the prediction API can do the same within the measured
    /// number of queries; hiding the weights does not protect the model.
    ///
    /// ## Example
    /// `aisec attack evasion --url <KServe v2 endpoint> --attacks square`
    /// reporting a robust accuracy well below the clean accuracy, with the
    /// queries each broken example took.
    pub static BLACK_BOX = {
        id: "AISEC-EVASION-002",
        name: "black-box-evasion",
        title: "Model is evaded by query-only adversarial examples",
        severity: High,
        atlas: &["AML.T0015", "AML.T0043.001"],
        owasp: &[],
        remediation: "Rate-limit and monitor query patterns (many near-duplicate inputs), return \
labels instead of scores where possible, and improve the model's robustness itself; \
hiding scores alone does not stop label-only attacks.",
    };

    /// ## What it detects
    /// A black-box or single-step attack (FGSM) that breaks more than 5
    /// percentage points more examples than the best iterative gradient
    /// attack (Athalye et al. 2018; Carlini et al. 2019, "On Evaluating
    /// Adversarial Robustness").
    ///
    /// ## Why it matters
    /// It is a classic sign of obfuscated gradients: the white-box robust
    /// accuracy overstates the model's true robustness, and a defence judged
    /// on it is weaker than it looks.
    ///
    /// ## Example
    /// A model whose softmax saturates (illustrative numbers): PGD leaves robust accuracy at 0.80
    /// while Square, which uses no gradients, brings it to 0.40.
    pub static GRADIENT_MASKING = {
        id: "AISEC-EVASION-003",
        name: "gradient-masking-suspected",
        title: "Gradient-based robustness numbers look unreliable (possible gradient masking)",
        severity: Medium,
        atlas: &["AML.T0015"],
        owasp: &[],
        remediation: "Report the worst case over all attacks, run AutoAttack and black-box \
attacks, and check that accuracy falls to zero as the budget grows.",
    };

    /// ## What it detects
    /// A membership inference attack (loss threshold, or LiRA with shadow
    /// models) that tells training examples apart from unseen examples of the
    /// same distribution, better than random guessing, using only the model's
    /// output scores. The finding carries AUC and TPR at low FPR with
    /// bootstrap intervals.
    ///
    /// ## Why it matters
    /// Anyone with query access can learn whether a given record was used to
    /// train the model, which discloses sensitive facts about the people
    /// behind the data.
    ///
    /// ## Example
    /// LiRA online against an MLP trained to 100 % train accuracy on 2,500
    /// MNIST digits: AUC 0.702, TPR 8.8 % at 0.1 % FPR, where the loss
    /// threshold attack finds 0.28 % (`bench/privacy/MEMBERSHIP.md`).
    pub static MEMBERSHIP_INFERENCE = {
        id: "AISEC-PRIVACY-001",
        name: "membership-inference",
        title: "Training-set membership can be inferred from the model's outputs",
        severity: Medium,
        atlas: &["AML.T0024.000"],
        owasp: &[],
        remediation: "Train with differential privacy (DP-SGD, Abadi et al. 2016) and state the \
epsilon; regularise (weight decay, dropout, data augmentation) and stop early so the model \
does not memorise its training set (a large train/test accuracy gap is the warning sign); \
return labels only, or coarsened or rounded scores, from the prediction API, and rate-limit \
and monitor queries. Re-run this measurement after each change: report TPR at low FPR, not \
only AUC.",
    };

    /// ## What it detects
    /// Model inversion (MI-Face): gradient descent on the input from a
    /// neutral start produced, for the listed classes, inputs the model
    /// assigns to that class with high confidence; where reference data was
    /// given, the reconstructions resemble the true class average more than
    /// any other class's.
    ///
    /// ## Why it matters
    /// An attacker with the model (or a white-box surrogate of it) can recover
    /// what typical members of a class look like: a privacy leak when classes
    /// are people or sensitive groups.
    ///
    /// ## Example
    /// MI-Face against an MNIST CNN: every class reconstructed with confidence
    /// 0.99, and each reconstruction correlates best with its own class's
    /// mean digit (`bench/privacy/EXTRACTION.md`).
    pub static INVERSION = {
        id: "AISEC-PRIVACY-002",
        name: "model-inversion",
        title: "Class representatives can be reconstructed from the model (model inversion)",
        severity: Medium,
        atlas: &["AML.T0024.001", "AML.T0024"],
        owasp: &[],
        remediation: "Keep the weights confidential (an extracted surrogate enables the same \
attack), return labels or rounded confidences instead of full scores, rate-limit and monitor \
queries, and for sensitive classes train with differential privacy or avoid one class per \
individual.",
    };

    /// ## What it detects
    /// Model extraction (Knockoff, Copycat, Jacobian augmentation): a
    /// surrogate trained only on the victim's answers to a limited number of
    /// queries agrees with the victim on most held-out inputs. The finding
    /// carries the fidelity at each query budget.
    ///
    /// ## Why it matters
    /// Whoever can query the API can build a functional copy:
    /// intellectual-property loss, and a white-box stand-in for crafting
    /// transferable adversarial examples or running inversion and membership
    /// attacks offline.
    ///
    /// ## Example
    /// A CNN surrogate trained on a victim CNN's probabilities for 1,000
    /// in-distribution MNIST queries agrees with the victim on 95.4 % of the
    /// held-out test digits (`bench/privacy/EXTRACTION.md`).
    pub static EXTRACTION = {
        id: "AISEC-PRIVACY-003",
        name: "model-extraction",
        title: "Model can be copied through its prediction API (model extraction)",
        severity: High,
        atlas: &["AML.T0024.002", "AML.T0024"],
        owasp: &[],
        remediation: "Rate-limit and meter queries per client, and monitor for extraction \
patterns (high volume, out-of-distribution or synthetic inputs, near-duplicates; aisec guard \
flags such traffic). Return top-1 labels instead of probabilities where the use case allows \
(this slows, but does not stop, extraction), round or perturb scores, and watermark the model \
so a stolen copy can be recognised.",
    };

    /// ## What it detects
    /// A training set that holds poisoned examples: `aisec attack poison`
    /// reports the copy it planted (BadNets, Blended, WaNet, clean-label),
    /// with how many rows and which trigger, so defences can be scored
    /// against it.
    ///
    /// ## Why it matters
    /// Whoever can add or edit a small share of the training data can plant
    /// a backdoor that survives training and passes clean-accuracy checks.
    ///
    /// ## Example
    /// `aisec attack poison train.npz --kind badnets --rate 0.1 --target 0
    /// --out poisoned/`: 10 % of the rows carry a 3x3 patch, relabelled to 0.
    pub static POISONED_DATA = {
        id: "AISEC-POISON-001",
        name: "poisoned-training-data",
        title: "Training data is poisoned with a backdoor trigger",
        severity: Medium,
        atlas: &["AML.T0020"],
        owasp: &[],
        remediation: "Track the provenance of every training example, inspect data sets before \
training (aisec defend data: activation clustering, spectral signatures, early-loss \
isolation), and remove what they flag before training.",
    };

    /// ## What it detects
    /// A model trained on poisoned data that answers the attacker's class
    /// when the trigger is present, measured as the attack success rate
    /// (ASR) on triggered held-out inputs. Severity follows the ASR:
    /// critical at 90 % or more, high at 50 %, medium at 20 %; below that
    /// the finding is info and says the backdoor did not take.
    ///
    /// ## Why it matters
    /// The model looks normal on clean test data, but anyone who knows the
    /// trigger decides its answer.
    ///
    /// ## Example
    /// BadNets at 10 % poison on MNIST: clean accuracy unchanged, ASR near
    /// 100 % (`bench/poison/RESULTS.md`).
    pub static BACKDOORED_MODEL = {
        id: "AISEC-POISON-002",
        name: "backdoor-attack-success",
        title: "Model is backdoored: a trigger decides its answer",
        severity: Critical,
        atlas: &["AML.T0018"],
        owasp: &[],
        remediation: "Do not deploy the model. Retrain on inspected data (aisec defend data), \
or inspect and repair the model (aisec defend model: Neural Cleanse, fine-pruning, unlearning) \
and screen inputs at run time (STRIP).",
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_are_well_formed() {
        let areas = ["AISEC-EVASION-0", "AISEC-PRIVACY-0", "AISEC-POISON-0"];
        let problems = aisec_core::rule::problems_in_areas(super::RULES, &areas);
        assert_eq!(problems, Vec::<String>::new());
    }
}
