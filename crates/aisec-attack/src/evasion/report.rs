//! What an evasion evaluation returns, and how its outputs are written.
//!
//! The report serialises (into the CLI's JSON under `data.evasion`) as a
//! summary whose size does not grow with the number of examples: per
//! attack the counts, rates, norms and timings; the curve; whether the run
//! completed. Per-example outputs (labels, predictions, success, norms and
//! queries per attack) stay in compact vectors and are streamed, one JSON
//! line per example, by [`EvasionReport::write_examples`] /
//! [`EvasionReport::save_examples`]; the adversarial examples themselves go
//! to `.npz` ([`EvasionReport::save_npz`]) and a PNG grid.
//!
//! JSON fields of the summary (`data.evasion`):
//!
//! | field | meaning |
//! |---|---|
//! | `n` | examples given |
//! | `norm`, `eps`, `lo`, `hi`, `seed` | the threat model and seed |
//! | `clean_accuracy` | accuracy on the clean inputs (all `n`) |
//! | `attacks[]` | one entry per attack that finished at least one batch, in run order (see [`AttackResult`]) |
//! | `not_run` | attacks asked for that finished no batch (the run was cancelled first) |
//! | `worst_case_robust_accuracy` | correct and broken by no attack, over `worst_case_evaluated`; `null` when no attack finished a batch |
//! | `worst_case_evaluated` | examples every attack finished (or some attack broke) |
//! | `worst_case_broken` | of those, examples broken by at least one attack |
//! | `curve[]` | accuracy-versus-budget points (see [`CurvePoint`]) |
//! | `curve_attack` | the curve's attack (`null` without a curve) |
//! | `complete` | every attack and curve point ran on every example; `false` when cancelled |
//! | `cancelled` | the caller cancelled the run (the numbers cover what finished) |
//!
//! Per-example JSON Lines (`write_examples`): `index`, `label`,
//! `clean_pred`, `worst_case_success`, `worst_case_attack` (name or
//! `null`), `worst_case_adv_pred`, and `attacks`: per attack `attack`,
//! `evaluated` (its batch finished), `success`, `adv_pred`, `l0`, `l2`,
//! `linf`, `queries`.

use std::io::Write;
use std::path::Path;

use aisec_model::Tensor;
use serde::Serialize;

use crate::save::{png_grid, write_npz, NpyArray, SaveError};
use crate::util::Norm;

/// Results of one attack. Per-example vectors are not serialised; see
/// [`EvasionReport::write_examples`].
#[derive(Debug, Clone, Serialize)]
pub struct AttackResult {
    /// Attack name (`pgd`, `apgd-ce`, `autoattack`...).
    pub attack: String,
    /// Query-only attack.
    pub black_box: bool,
    /// Minimal-perturbation attack (success also requires norm <= eps).
    pub minimal_norm: bool,
    /// Target class used, if the attack ran targeted.
    pub target: Option<usize>,
    /// Examples whose batch this attack finished (all of them unless
    /// cancelled; an AutoAttack example also counts once a component broke it).
    pub evaluated: usize,
    /// Of those, examples correctly classified and broken.
    pub broken: usize,
    /// Correct and not broken, over `evaluated`.
    pub robust_accuracy: f64,
    /// Broken over correctly classified, among `evaluated` (`null` when none was correct).
    pub attack_success_rate: f64,
    /// Median threat-norm of successful perturbations (`null` if none).
    pub median_norm_success: Option<f32>,
    /// Examples sent to the model by this attack, gradient passes included.
    pub total_queries: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per example: its batch finished under this attack.
    #[serde(skip)]
    pub done: Vec<bool>,
    /// Per example: evaluated, clean-correct, goal met and inside the budget.
    #[serde(skip)]
    pub success: Vec<bool>,
    /// Per example: predicted class of the adversarial example.
    #[serde(skip)]
    pub adv_pred: Vec<usize>,
    /// Per example: values changed.
    #[serde(skip)]
    pub l0: Vec<usize>,
    /// Per example: L2 norm of the perturbation.
    #[serde(skip)]
    pub l2: Vec<f32>,
    /// Per example: L-inf norm of the perturbation.
    #[serde(skip)]
    pub linf: Vec<f32>,
    /// Per example model queries (black-box attacks; zero otherwise).
    #[serde(skip)]
    pub queries: Vec<u64>,
    /// Adversarial examples, one per input (the clean input where not attacked).
    #[serde(skip)]
    pub adversarial: Tensor,
}

impl AttackResult {
    /// Example `i`'s perturbation size in the threat norm.
    pub fn norm_of(&self, norm: Norm, i: usize) -> f32 {
        match norm {
            Norm::Linf => self.linf[i],
            Norm::L2 => self.l2[i],
        }
    }
}

/// One point of the accuracy-versus-budget curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Budget.
    pub eps: f32,
    /// Robust accuracy at that budget, over `evaluated`.
    pub robust_accuracy: f64,
    /// The attack this point measured.
    pub attack: String,
    /// How: `per-budget` (the attack rerun at this budget) or `minimal-norm`
    /// (one run of a minimal-perturbation attack, counting the examples it
    /// broke with a perturbation of at most this budget).
    pub method: String,
    /// Examples the point covers.
    pub evaluated: usize,
}

/// The outcome of an evasion evaluation (see the module documentation for
/// the JSON fields).
#[derive(Debug, Clone, Serialize)]
pub struct EvasionReport {
    /// Examples.
    pub n: usize,
    /// Threat-model norm.
    pub norm: Norm,
    /// Budget.
    pub eps: f32,
    /// Valid range low end.
    pub lo: f32,
    /// Valid range high end.
    pub hi: f32,
    /// Seed used.
    pub seed: u64,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Per-attack results, in run order (attacks that finished at least one batch).
    pub attacks: Vec<AttackResult>,
    /// Attacks asked for that finished no batch before the run was cancelled.
    pub not_run: Vec<String>,
    /// Worst case over every attack: correct and broken by none, over
    /// `worst_case_evaluated`; `None` when no attack finished a batch.
    pub worst_case_robust_accuracy: Option<f64>,
    /// Examples the worst case covers: finished by every attack, or broken by one.
    pub worst_case_evaluated: usize,
    /// Of those, correctly classified examples broken by at least one attack.
    pub worst_case_broken: usize,
    /// Accuracy-versus-budget curve.
    pub curve: Vec<CurvePoint>,
    /// The curve's attack (`None` without a curve).
    pub curve_attack: Option<String>,
    /// Every attack and curve point ran on every example.
    pub complete: bool,
    /// The run was cancelled; numbers cover what finished.
    pub cancelled: bool,
    /// True labels.
    #[serde(skip)]
    pub labels: Vec<usize>,
    /// Clean predictions.
    #[serde(skip)]
    pub clean_pred: Vec<usize>,
    /// Per example: broken by at least one attack.
    #[serde(skip)]
    pub worst_case_success: Vec<bool>,
    /// Per example: index into `attacks` of the attack whose example is
    /// kept (smallest threat norm among the successful ones).
    #[serde(skip)]
    pub worst_case_attack: Vec<Option<usize>>,
    /// Clean inputs.
    #[serde(skip)]
    pub clean: Tensor,
    /// Worst-case adversarial examples (the clean input where none succeeded).
    #[serde(skip)]
    pub adversarial: Tensor,
}

/// One line of [`EvasionReport::write_examples`].
#[derive(Serialize)]
struct ExampleRow<'a> {
    index: usize,
    label: usize,
    clean_pred: usize,
    worst_case_success: bool,
    worst_case_attack: Option<&'a str>,
    worst_case_adv_pred: usize,
    attacks: Vec<AttackRow<'a>>,
}

#[derive(Serialize)]
struct AttackRow<'a> {
    attack: &'a str,
    evaluated: bool,
    success: bool,
    adv_pred: usize,
    l0: usize,
    l2: f32,
    linf: f32,
    queries: u64,
}

impl EvasionReport {
    /// Example `i`'s predicted class on its worst-case adversarial example
    /// (the clean prediction where no attack succeeded).
    pub fn worst_case_adv_pred(&self, i: usize) -> usize {
        self.worst_case_attack[i]
            .and_then(|a| self.attacks.get(a))
            .map_or(self.clean_pred[i], |r| r.adv_pred[i])
    }

    /// Streams the per-example outputs to `w` as JSON Lines, one object per
    /// example (fields in the module documentation), without building the
    /// whole document in memory.
    pub fn write_examples(&self, mut w: impl Write) -> std::io::Result<()> {
        for i in 0..self.n {
            let row = ExampleRow {
                index: i,
                label: self.labels[i],
                clean_pred: self.clean_pred[i],
                worst_case_success: self.worst_case_success[i],
                worst_case_attack: self.worst_case_attack[i]
                    .and_then(|a| self.attacks.get(a))
                    .map(|r| r.attack.as_str()),
                worst_case_adv_pred: self.worst_case_adv_pred(i),
                attacks: self
                    .attacks
                    .iter()
                    .map(|r| AttackRow {
                        attack: &r.attack,
                        evaluated: r.done[i],
                        success: r.success[i],
                        adv_pred: r.adv_pred[i],
                        l0: r.l0[i],
                        l2: r.l2[i],
                        linf: r.linf[i],
                        queries: r.queries[i],
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut w, &row)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    /// Writes [`write_examples`](EvasionReport::write_examples) to a file.
    pub fn save_examples(&self, path: &Path) -> Result<(), SaveError> {
        let f = std::fs::File::create(path)?;
        self.write_examples(std::io::BufWriter::new(f))?;
        Ok(())
    }

    /// Saves `x_clean`, `x_adv` (worst case per example), `y`,
    /// `pred_clean`, `pred_adv` and `success` as an `.npz` at `path`.
    pub fn save_npz(&self, path: &Path) -> Result<(), SaveError> {
        let f = std::fs::File::create(path)?;
        let n = [self.n];
        let pred_adv: Vec<i64> = (0..self.n)
            .map(|i| self.worst_case_adv_pred(i) as i64)
            .collect();
        write_npz(
            std::io::BufWriter::new(f),
            &[
                (
                    "x_clean",
                    NpyArray::F32(&self.clean.shape, &self.clean.data),
                ),
                (
                    "x_adv",
                    NpyArray::F32(&self.adversarial.shape, &self.adversarial.data),
                ),
                (
                    "y",
                    NpyArray::I64(&n, self.labels.iter().map(|&v| v as i64).collect()),
                ),
                (
                    "pred_clean",
                    NpyArray::I64(&n, self.clean_pred.iter().map(|&v| v as i64).collect()),
                ),
                ("pred_adv", NpyArray::I64(&n, pred_adv)),
                (
                    "success",
                    NpyArray::Bool(&n, self.worst_case_success.clone()),
                ),
            ],
        )
    }

    /// Writes a PNG grid (one row per example, up to `max_rows`, successful
    /// examples first): clean | adversarial | amplified difference.
    pub fn save_png_grid(&self, path: &Path, max_rows: usize) -> Result<(), SaveError> {
        let mut order: Vec<usize> = (0..self.n)
            .filter(|&i| self.worst_case_success[i])
            .collect();
        order.extend((0..self.n).filter(|&i| !self.worst_case_success[i]));
        order.truncate(max_rows.max(1));
        let png = png_grid(&self.clean, &self.adversarial, &order, self.lo, self.hi)?;
        std::fs::write(path, png)?;
        Ok(())
    }
}
