//! `aisec-attack`: attacks on models and the measurements behind
//! `aisec attack`.
//!
//! This crate owns the attacks, the drivers that turn them into numbers a
//! security engineer can trust, the findings those numbers produce, and
//! saving what the attacks made. It sees models only through
//! `aisec-model`'s [`Classifier`](aisec_model::Classifier) /
//! [`Differentiable`](aisec_model::Differentiable) traits and never loads
//! model files.
//!
//! * [`evasion`]: adversarial examples (FGSM, BIM/PGD, C&W, DeepFool, APGD,
//!   FAB-T, Square, HopSkipJump, AutoAttack) and the robustness evaluation
//!   ([`run_evasion`], [`run_evasion_blackbox`] → [`EvasionReport`]).
//! * [`membership`]: membership inference (loss threshold, LiRA).
//! * [`inversion`]: model inversion (MI-Face class reconstruction).
//! * [`extraction`]: model extraction (Knockoff / Copycat / Jacobian
//!   augmentation) with fidelity-versus-budget curves.
//! * [`context`]: the one [`AttackContext`] every attack and driver takes
//!   (the caller's [`RunContext`](aisec_core::run::RunContext): cancel flag
//!   and progress sink; a seeded generator; an optional query budget).
//!   Queries are counted by [`aisec_model::blackbox::QueryCounter`].
//! * [`poison`]: data poisoning and backdoors (BadNets, Blended, WaNet,
//!   clean-label), the trigger and ground-truth manifest, and the
//!   BackdoorBench measurement (clean accuracy, ASR, poisoned accuracy).
//! * [`save`]: `.npz` and PNG writers; [`util`]: the threat model
//!   ([`Budget`], [`Norm`]) and vector helpers; [`rules`] declares the
//!   rules findings cite, [`RULES`] lists them.
//!
//! Every report says whether its run completed (`complete`; the JSON
//! fields are listed in `docs/attack-reports.md`); a cancelled run returns
//! what finished, marked incomplete. Budgets are in the user's
//! input space and every example stays in the configured valid range
//! `[lo, hi]`. Everything random is seeded.

// Numeric kernels index several parallel arrays per example.
#![allow(clippy::needless_range_loop)]

pub mod context;
pub mod evasion;
pub mod extraction;
pub mod inversion;
pub mod membership;
pub mod poison;
pub mod rules;
pub mod save;
pub mod util;

pub use context::AttackContext;
pub use evasion::{
    run_evasion, run_evasion_blackbox, AttackKind, AttackResult, CurvePoint, EvasionConfig,
    EvasionError, EvasionReport,
};
pub use rules::RULES;
pub use util::{Budget, Norm};
