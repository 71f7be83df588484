//! Evasion: adversarial examples and the robustness evaluation behind
//! `aisec attack evasion`.
//!
//! * White-box (gradients through [`aisec_model::Differentiable`]):
//!   [`fgsm`], BIM/[`pgd`] (L-inf and L2) in [`fgsm_pgd`],
//!   [`carlini_wagner_l2`] in [`cw`], [`deepfool()`] in [`deepfool`],
//!   [`apgd()`] (CE, DLR) and [`apgd_targeted`] (APGD-T) in [`apgd`],
//!   [`fab_targeted`] (FAB-T) in [`fab`].
//! * Black-box (queries through [`aisec_model::Classifier`] only):
//!   [`square_linf`] / [`square_l2`] (scores) in [`square`] and
//!   [`hop_skip_jump`] (labels) in [`hsj`], both counting queries against
//!   a per-example budget.
//! * [`iterate`] holds the scaffolding the iterative attacks share (the
//!   schedule of restarts and target classes, the per-example outcome, the
//!   cancellable step loop).
//! * [`run_evasion`] / [`run_evasion_blackbox`] ([`eval`]) run a list of
//!   [`AttackKind`]s (including the AutoAttack "standard" protocol) and an
//!   accuracy-versus-budget curve, and return an [`EvasionReport`]
//!   ([`report`]): clean and robust accuracy, per-attack counts, norms,
//!   queries and timings, and per-example outputs streamed to JSON Lines.
//! * [`EvasionReport::findings`] ([`findings`]) maps the measured numbers
//!   to [`aisec_core::Finding`]s.
//!
//! Every attack takes an [`AttackContext`](crate::AttackContext) first (its
//! generator and cancel flag), then the model, the batch, the budget
//! ([`Budget`](crate::Budget): norm, radius, valid range) and its settings.
//! Budgets are in the user's input space and every example stays in
//! `[lo, hi]`.

pub mod apgd;
pub mod config;
pub mod cw;
pub mod deepfool;
pub mod eval;
pub mod fab;
pub mod fgsm_pgd;
pub mod findings;
pub mod hsj;
pub(crate) mod iterate;
pub mod report;
pub mod square;

pub use apgd::{apgd, apgd_targeted, ApgdConfig, ApgdLoss};
pub use config::{AttackKind, EvasionConfig, EvasionError};
pub use cw::{carlini_wagner_l2, CwConfig};
pub use deepfool::{deepfool, DeepFoolConfig};
pub use eval::{curve_attack, run_evasion, run_evasion_blackbox};
pub use fab::{fab_targeted, project_hyperplane, FabConfig};
pub use fgsm_pgd::{fgsm, pgd, PgdConfig, PgdLoss};
pub use hsj::{hop_skip_jump, HsjConfig};
pub use report::{AttackResult, CurvePoint, EvasionReport};
pub use square::{square, square_l2, square_linf, square_p, SquareConfig};
