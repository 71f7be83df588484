//! `aisec-harden`: making a model harder to attack, then proving it.
//!
//! This crate owns issue 14's training-time defences, built on aisec-model's
//! training loop and aisec-attack's attacks: adversarial training (PGD-AT,
//! TRADES) of spec and ONNX models, and differentially private training
//! (DP-SGD with per-example clipping and a privacy accountant). Each run ends
//! with a before/after measurement that a report can cite as evidence.
//!
//! - [`accountant`]: RDP and PLD privacy accountants for the
//!   Poisson-subsampled Gaussian mechanism, and the noise multiplier for a
//!   target epsilon.
//! - [`advtrain`]: adversarial training (PGD-AT, TRADES; L-inf and L2;
//!   eps warm-up, clean/adversarial mix, checkpoints and resume) and the
//!   AutoAttack evaluation with a RobustBench-style entry.
//! - [`order`]: per-epoch example orders read from a file (to replay
//!   another framework's shuffles in adversarial training).
//! - [`dpsgd`]: DP-SGD training with Poisson sampling over aisec-model's
//!   per-example gradients ([`aisec_model::dp`]).

pub mod accountant;
pub mod advtrain;
pub mod dpsgd;
pub mod error;
pub mod order;
pub mod rules;

pub use error::{HardenError, Result};
pub use rules::RULES;
