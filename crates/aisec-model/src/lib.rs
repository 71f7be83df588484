//! `aisec-model`: the model substrate every attack and defence uses.
//!
//! The contract other crates program against is in [`classifier`]: a
//! [`Tensor`](classifier::Tensor) of `f32` values, the [`Classifier`]
//! (query-only) and [`Differentiable`] (gradients) traits, and the
//! [`Loss`](classifier::Loss) functions attacks ask gradients of.

pub mod classifier;

pub use classifier::{Classifier, Differentiable, Loss, ModelError, Tensor};
