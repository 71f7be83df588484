//! Privacy accountants for DP-SGD (Poisson-subsampled Gaussian mechanism):
//! [`RdpAccountant`] (Rényi DP, as Opacus's default) and the tighter
//! [`PldAccountant`] (numerical composition of the privacy-loss
//! distribution), plus [`noise_multiplier_for_epsilon`].

mod fft;
mod pld;
mod rdp;
mod special;

pub use pld::{PldAccountant, PldSettings};
pub use rdp::{default_orders, rdp_step, rdp_to_epsilon, RdpAccountant, Step};

use crate::error::{HardenError, Result};

/// Which accountant to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountantKind {
    /// Rényi DP (Mironov et al. 2019), Opacus's default.
    Rdp,
    /// Numerical PLD composition (tight).
    Pld,
}

/// Epsilon after `steps` steps at (`sigma`, `q`) for `delta`.
pub fn epsilon(kind: AccountantKind, sigma: f64, q: f64, steps: u64, delta: f64) -> Result<f64> {
    match kind {
        AccountantKind::Rdp => {
            let mut a = RdpAccountant::new();
            a.step(sigma, q, steps)?;
            Ok(a.epsilon(delta)?.0)
        }
        AccountantKind::Pld => {
            let mut a = PldAccountant::new();
            a.step(sigma, q, steps)?;
            a.epsilon(delta)
        }
    }
}

/// The smallest noise multiplier (to relative precision `1e-4`) whose
/// epsilon after `steps` steps at rate `q` is at most `target_eps`, by
/// bisection (epsilon falls as the noise grows), as Opacus's
/// `get_noise_multiplier` does.
pub fn noise_multiplier_for_epsilon(
    kind: AccountantKind,
    target_eps: f64,
    delta: f64,
    q: f64,
    steps: u64,
) -> Result<f64> {
    if !target_eps.is_finite() || target_eps <= 0.0 {
        return Err(HardenError::InvalidParameter(format!(
            "target epsilon {target_eps} must be > 0"
        )));
    }
    let mut hi = 1.0f64;
    let mut tries = 0;
    while epsilon(kind, hi, q, steps, delta)? > target_eps {
        hi *= 2.0;
        tries += 1;
        if tries > 20 {
            return Err(HardenError::Numerical(format!(
                "no noise multiplier up to {hi} reaches epsilon {target_eps}"
            )));
        }
    }
    let mut lo = 0.0f64;
    while hi - lo > 1e-4 * hi {
        let mid = 0.5 * (lo + hi);
        if epsilon(kind, mid, q, steps, delta)? > target_eps {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}
