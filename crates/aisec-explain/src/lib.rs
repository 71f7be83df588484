//! `aisec-explain`: attributions for any aisec model.
//!
//! Every method answers the same question: how much does each input value
//! contribute to the model's score for one class (a logit, or whatever
//! score a remote endpoint answers)? The methods work through
//! aisec-model's traits only, so they run on ONNX files, spec models and
//! (for the perturbation methods) KServe endpoints alike.
//!
//! - [`gradient`]: saliency (Simonyan et al. 2014), Integrated Gradients
//!   (Sundararajan et al. 2017) with Captum's Riemann and Gauss-Legendre
//!   step rules and its completeness delta, SmoothGrad (Smilkov et al.
//!   2017) and GradientSHAP (Lundberg & Lee 2017, as Captum implements it).
//!   These need [`Differentiable`](aisec_model::Differentiable).
//! - [`perturb`]: occlusion (Zeiler & Fergus 2014), KernelSHAP (Lundberg &
//!   Lee 2017, with the coalition sampling and constrained weighted
//!   regression of the `shap` package's KernelExplainer) and exact Shapley
//!   values for small feature counts. These need only
//!   [`Classifier`](aisec_model::Classifier), i.e. queries.
//! - [`security`]: trigger localisation (IoU of the top-attributed region
//!   with a known trigger mask) and attribution of an adversarial
//!   perturbation's logit change.
//! - [`render`]: heat-map PNGs, SVG bar charts and summaries, and an HTML
//!   page that embeds them.

pub mod gradient;
pub mod perturb;
pub mod render;
pub mod security;

use aisec_model::ModelError;

/// Errors from computing or writing attributions.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The model failed to run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The arguments do not make sense (shapes, counts, budgets).
    #[error("{0}")]
    Invalid(String),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Encoding a picture failed.
    #[error("cannot encode {path}: {message}")]
    Encode {
        /// The file.
        path: String,
        /// The cause.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ExplainError>;

/// Checks that `targets` has one class per example, each below `classes`.
pub(crate) fn check_targets(batch: usize, targets: &[usize], classes: usize) -> Result<()> {
    if targets.len() != batch {
        return Err(ExplainError::Invalid(format!(
            "{} target classes for {batch} examples",
            targets.len()
        )));
    }
    if let Some(&t) = targets.iter().find(|&&t| t >= classes) {
        return Err(ExplainError::Invalid(format!(
            "target class {t} is out of range (the model has {classes} classes)"
        )));
    }
    Ok(())
}

/// Checks that `x` holds whole examples of `shape`.
pub(crate) fn check_input(x: &aisec_model::Tensor, shape: &[usize]) -> Result<()> {
    if x.shape.len() != shape.len() + 1 || x.shape[1..] != *shape {
        return Err(ExplainError::Invalid(format!(
            "inputs of shape {:?} do not fit the model's per-example shape {shape:?}",
            x.shape
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod testmodels;
