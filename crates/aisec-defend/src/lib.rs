//! `aisec-defend`: finding and removing poisoning and backdoors.
//!
//! This crate owns the defending side of issue 13, written against
//! aisec-model's traits so it runs on the user's own ONNX and spec models:
//! inspection of a training set for poisoned examples, inspection of a model
//! for a planted backdoor without its training data, repair of a backdoored
//! model, and STRIP for trojaned inputs at run time. The attacks that plant
//! poison live in `aisec-attack` (`poison`); the CLI wires both into
//! `aisec attack poison` and `aisec defend`.
//!
//! - [`data`]: dataset inspection (activation clustering, spectral
//!   signatures, early-loss isolation) with precision/recall against the
//!   ground truth `aisec attack poison` writes.
//! - [`model`]: Neural Cleanse (Wang et al., S&P 2019) and a blended-trigger
//!   variant, each reverse-engineering one trigger per class and flagging
//!   classes by the MAD anomaly index; reversed triggers as PNG.
//! - [`repair`]: fine-pruning (Liu et al., RAID 2018) and unlearning with the
//!   reversed trigger (Wang et al. 2019, section VI), with clean accuracy and
//!   attack success rate before and after.
//! - [`strip`]: STRIP (Gao et al., ACSAC 2019), the entropy of predictions on
//!   superimposed inputs, thresholded at a chosen false-rejection rate.

pub mod data;
pub mod image;
pub mod model;
pub mod repair;
pub mod rules;
pub mod strip;
pub mod trigger;

#[cfg(test)]
mod testutil;

pub use rules::RULES;

/// Errors of the defences.
#[derive(Debug, thiserror::Error)]
pub enum DefendError {
    /// The model failed or shapes did not fit.
    #[error(transparent)]
    Model(#[from] aisec_model::ModelError),
    /// The inputs cannot be used (too few examples, wrong shape, bad option).
    #[error("{0}")]
    Invalid(String),
    /// Writing an output failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}
