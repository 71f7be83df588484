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

pub mod accountant;
pub mod error;

pub use error::{HardenError, Result};
