//! The one error type of `aisec-harden`.

/// Everything that can go wrong while hardening a model or accounting for
/// its privacy.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// A parameter is out of its domain (a sampling rate outside [0, 1], a
    /// negative noise multiplier, a delta outside (0, 1) ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A numerical routine did not converge within its bounds.
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The model layer below failed.
    #[error(transparent)]
    Model(#[from] aisec_model::ModelError),
}

/// Short for `Result<T, HardenError>`.
pub type Result<T> = std::result::Result<T, HardenError>;
