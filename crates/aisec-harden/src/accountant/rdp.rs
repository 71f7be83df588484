//! Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism.
//!
//! Source: Mironov, Talwar & Zhang, "Rényi Differential Privacy of the
//! Sampled Gaussian Mechanism" (2019), Section 3.3: A_alpha for integer orders
//! by the binomial expansion, and for fractional orders by the two-series
//! expansion with erfc tails. The computation follows the one Opacus
//! (`opacus/accountants/analysis/rdp.py`, after TensorFlow Privacy) performs,
//! term for term, so the two agree to rounding: the same order list, the same
//! stopping rule (terms below e^-30) and the same RDP-to-(eps, delta)
//! conversion, the improved one of Balle et al. 2020 ("Hypothesis testing
//! interpretations and Rényi differential privacy", Prop. 12):
//! eps = rdp - (ln delta + ln alpha)/(alpha - 1) + ln((alpha - 1)/alpha).

use super::special::{ln_erfc, log_add, log_sub};
use crate::error::{HardenError, Result};

/// Opacus's default orders: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
pub fn default_orders() -> Vec<f64> {
    let mut v: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
    v.extend((12..64).map(f64::from));
    v
}

/// ln A_alpha for integer alpha (Mironov et al. 2019, eq. for integer orders).
fn log_a_int(q: f64, sigma: f64, alpha: u32) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    let (lq, l1q) = (q.ln(), (1.0 - q).ln());
    let mut log_binom = 0.0; // ln C(alpha, 0)
    for i in 0..=alpha {
        if i > 0 {
            log_binom += (f64::from(alpha - i + 1) / f64::from(i)).ln();
        }
        let fi = f64::from(i);
        let log_coef = log_binom + fi * lq + f64::from(alpha - i) * l1q;
        let s = log_coef + (fi * fi - fi) / (2.0 * sigma * sigma);
        log_a = log_add(log_a, s);
    }
    log_a
}

/// ln A_alpha for fractional alpha (Mironov et al. 2019, Section 3.3).
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> Result<f64> {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (lq, l1q) = (q.ln(), (1.0 - q).ln());
    let s2 = std::f64::consts::SQRT_2 * sigma;
    let mut coef = 1.0f64; // C(alpha, i), real alpha
                           // The terms decay like a Gaussian in i; a million terms means the
                           // parameters are outside any sane range (the loop is bounded anyway).
    for i in 0..1_000_000u32 {
        if i > 0 {
            coef *= (alpha - f64::from(i - 1)) / f64::from(i);
        }
        let fi = f64::from(i);
        let log_coef = coef.abs().ln();
        let j = alpha - fi;
        let log_t0 = log_coef + fi * lq + j * l1q;
        let log_t1 = log_coef + j * lq + fi * l1q;
        let log_e0 = 0.5f64.ln() + ln_erfc((fi - z0) / s2);
        let log_e1 = 0.5f64.ln() + ln_erfc((z0 - j) / s2);
        let log_s0 = log_t0 + (fi * fi - fi) / (2.0 * sigma * sigma) + log_e0;
        let log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;
        if coef > 0.0 {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        if log_s0.max(log_s1) < -30.0 {
            return Ok(log_add(log_a0, log_a1));
        }
    }
    Err(HardenError::Numerical(format!(
        "RDP series for q={q}, sigma={sigma}, alpha={alpha} did not converge"
    )))
}

/// RDP of one step of the sampled Gaussian mechanism at order `alpha`.
pub fn rdp_step(q: f64, sigma: f64, alpha: f64) -> Result<f64> {
    check_params(q, sigma)?;
    if alpha.is_nan() || alpha <= 1.0 {
        return Err(HardenError::InvalidParameter(format!(
            "RDP order {alpha} must be > 1"
        )));
    }
    if q == 0.0 {
        return Ok(0.0);
    }
    if sigma == 0.0 || alpha.is_infinite() {
        return Ok(f64::INFINITY);
    }
    if q == 1.0 {
        return Ok(alpha / (2.0 * sigma * sigma));
    }
    let log_a = if alpha.fract() == 0.0 && alpha <= f64::from(u32::MAX) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let a = alpha as u32;
        log_a_int(q, sigma, a)
    } else {
        log_a_frac(q, sigma, alpha)?
    };
    Ok(log_a / (alpha - 1.0))
}

pub(crate) fn check_params(q: f64, sigma: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&q) {
        return Err(HardenError::InvalidParameter(format!(
            "sampling rate {q} is outside [0, 1]"
        )));
    }
    if sigma.is_nan() || sigma < 0.0 || sigma.is_infinite() {
        return Err(HardenError::InvalidParameter(format!(
            "noise multiplier {sigma} must be finite and >= 0"
        )));
    }
    Ok(())
}

pub(crate) fn check_delta(delta: f64) -> Result<()> {
    if !(delta > 0.0 && delta < 1.0) {
        return Err(HardenError::InvalidParameter(format!(
            "delta {delta} must be in (0, 1)"
        )));
    }
    Ok(())
}

/// Converts RDP values at `orders` into the smallest epsilon for `delta`;
/// returns (epsilon, the order that attains it).
pub fn rdp_to_epsilon(orders: &[f64], rdp: &[f64], delta: f64) -> Result<(f64, f64)> {
    check_delta(delta)?;
    let mut best = (f64::INFINITY, f64::NAN);
    for (&a, &r) in orders.iter().zip(rdp) {
        let eps = r - (delta.ln() + a.ln()) / (a - 1.0) + ((a - 1.0) / a).ln();
        if eps.is_finite() && eps < best.0 {
            best = (eps, a);
        }
    }
    // Epsilon is never negative (Opacus can report a tiny negative value
    // for a mechanism that is nearly free; clamp it).
    Ok((best.0.max(0.0), best.1))
}

/// One entry of a training run's history: `steps` steps at sampling rate
/// `q` and noise multiplier `sigma`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Noise multiplier (noise std / clipping norm).
    pub sigma: f64,
    /// Poisson sampling rate (expected batch / data set size).
    pub q: f64,
    /// Number of steps.
    pub steps: u64,
}

impl Step {
    /// Appends `steps` steps at (`sigma`, `q`) to `history`, merged into
    /// the last entry when its settings are the same: the one way both
    /// accountants record a run.
    pub(crate) fn record(history: &mut Vec<Step>, sigma: f64, q: f64, steps: u64) -> Result<()> {
        check_params(q, sigma)?;
        match history.last_mut() {
            Some(last) if last.sigma == sigma && last.q == q => last.steps += steps,
            _ => history.push(Step { sigma, q, steps }),
        }
        Ok(())
    }
}

/// The RDP accountant: a history of steps, composed by adding RDP.
#[derive(Debug, Clone, Default)]
pub struct RdpAccountant {
    history: Vec<Step>,
    orders: Vec<f64>,
}

impl RdpAccountant {
    /// An accountant over Opacus's default orders.
    pub fn new() -> Self {
        Self {
            history: Vec::new(),
            orders: default_orders(),
        }
    }

    /// An accountant over chosen orders (each > 1).
    pub fn with_orders(orders: Vec<f64>) -> Result<Self> {
        if orders.is_empty() || orders.iter().any(|a| a.is_nan() || *a <= 1.0) {
            return Err(HardenError::InvalidParameter(
                "RDP orders must be non-empty and > 1".into(),
            ));
        }
        Ok(Self {
            history: Vec::new(),
            orders,
        })
    }

    /// Records `steps` steps at (`sigma`, `q`).
    pub fn step(&mut self, sigma: f64, q: f64, steps: u64) -> Result<()> {
        Step::record(&mut self.history, sigma, q, steps)
    }

    /// The recorded history.
    pub fn history(&self) -> &[Step] {
        &self.history
    }

    /// Total RDP at each order.
    pub fn rdp(&self) -> Result<Vec<f64>> {
        let mut total = vec![0.0; self.orders.len()];
        for s in &self.history {
            #[allow(clippy::cast_precision_loss)]
            let steps = s.steps as f64;
            for (t, &a) in total.iter_mut().zip(&self.orders) {
                *t += rdp_step(s.q, s.sigma, a)? * steps;
            }
        }
        Ok(total)
    }

    /// (epsilon, best order) spent so far for `delta`.
    pub fn epsilon(&self, delta: f64) -> Result<(f64, f64)> {
        rdp_to_epsilon(&self.orders, &self.rdp()?, delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_opacus_defaults() {
        let o = default_orders();
        assert_eq!(o.len(), 99 + 52);
        assert_eq!(o[0], 1.1);
        assert_eq!(o[9], 2.0);
        assert_eq!(*o.last().unwrap(), 63.0);
    }

    #[test]
    fn full_batch_is_the_gaussian_mechanism() {
        // q = 1: RDP of the Gaussian mechanism is alpha / (2 sigma^2) exactly.
        assert!((rdp_step(1.0, 2.0, 3.5).unwrap() - 3.5 / 8.0).abs() < 1e-15);
        assert_eq!(rdp_step(0.0, 1.0, 2.0).unwrap(), 0.0);
        assert!(rdp_step(0.5, 0.0, 2.0).unwrap().is_infinite());
    }

    #[test]
    fn integer_order_two_has_closed_form() {
        // A_2 = (1-q)^2 + 2q(1-q) + q^2 e^{1/sigma^2} = 1 + q^2 (e^{1/sigma^2} - 1).
        let (q, s): (f64, f64) = (0.01, 1.1);
        let want = (1.0 + q * q * ((1.0 / (s * s)).exp() - 1.0)).ln();
        assert!((rdp_step(q, s, 2.0).unwrap() - want).abs() < 1e-15);
    }

    #[test]
    fn fractional_orders_interpolate_their_integer_neighbours() {
        // RDP is non-decreasing in the order; the fractional series must sit
        // between its integer neighbours.
        let (q, s) = (0.02, 0.9);
        let r2 = rdp_step(q, s, 2.0).unwrap();
        let r25 = rdp_step(q, s, 2.5).unwrap();
        let r3 = rdp_step(q, s, 3.0).unwrap();
        assert!(r2 < r25 && r25 < r3, "{r2} {r25} {r3}");
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(rdp_step(1.5, 1.0, 2.0).is_err());
        assert!(rdp_step(0.5, -1.0, 2.0).is_err());
        assert!(rdp_step(0.5, 1.0, 1.0).is_err());
        assert!(rdp_to_epsilon(&[2.0], &[0.1], 0.0).is_err());
        assert!(RdpAccountant::with_orders(vec![]).is_err());
    }
}
