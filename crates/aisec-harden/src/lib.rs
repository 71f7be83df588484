//! `aisec-harden`: making a model harder to attack, then proving it.
//!
//! This crate owns issue 14's training-time defences, built on aisec-model's
//! training loop and aisec-attack's attacks: adversarial training (PGD-AT,
//! TRADES) of spec and ONNX models, and differentially private training
//! (DP-SGD with per-example clipping and a privacy accountant). Each run ends
//! with a before/after measurement that a report can cite as evidence.
