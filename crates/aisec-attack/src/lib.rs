//! `aisec-attack`: evasion attacks and robustness evaluation.
//!
//! This crate owns everything behind `aisec attack evasion`: the attacks,
//! the evaluation driver that turns them into a robustness number a
//! security engineer can trust, the findings that number produces, and
//! saving the adversarial examples behind it.
//!
//! * White-box (gradients through [`aisec_model::Differentiable`]):
//!   [`whitebox::fgsm`], BIM/[`whitebox::pgd`] (L-inf and L2),
//!   [`whitebox::carlini_wagner_l2`], [`whitebox::deepfool`],
//!   [`apgd::apgd`] (CE, DLR), [`apgd::apgd_targeted`] (APGD-T),
//!   [`fab::fab_targeted`] (FAB-T).
//! * Black-box (queries through [`aisec_model::Classifier`] only):
//!   [`blackbox::square_linf`] / [`blackbox::square_l2`] (scores) and [`blackbox::hop_skip_jump`]
//!   (labels), both counting queries against a budget.
//! * [`eval::run_evasion`] / [`eval::run_evasion_blackbox`] run a list of
//!   [`eval::AttackKind`]s (including the AutoAttack "standard" protocol)
//!   and return an [`eval::EvasionReport`]: clean and robust accuracy,
//!   per-example success, L0/L2/L-inf norms, queries, an
//!   accuracy-versus-budget curve and the adversarial examples.
//! * [`EvasionReport::findings`](eval::EvasionReport::findings) maps the
//!   measured numbers to [`aisec_core::Finding`]s; [`RULES`] lists the rules
//!   (declared in [`rules`]).
//! * [`save`] writes the examples as `.npz` and a PNG grid.
//! * Privacy: [`inversion::run_inversion`] (MI-Face class reconstruction)
//!   and [`extraction::run_extraction`] (Knockoff / Copycat / Jacobian
//!   model stealing with fidelity-versus-budget curves), with their findings.
//!
//! Budgets are in the user's input space and every example stays in the
//! configured valid range `[lo, hi]`. Everything random is seeded.

// Numeric kernels index several parallel arrays per example; attack entry
// points take model, data, budget, settings, generator and cancel flag.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub mod apgd;
pub mod blackbox;
pub mod eval;
pub mod extraction;
pub mod fab;
pub mod findings;
pub mod inversion;

pub mod membership;
pub mod rules;
pub mod save;
pub mod util;
pub mod whitebox;

pub use eval::{
    run_evasion, run_evasion_blackbox, AttackKind, AttackResult, CurvePoint, EvasionConfig,
    EvasionError, EvasionReport, Progress,
};
pub use rules::RULES;
pub use util::{Budget, Norm, QueryCounter};
