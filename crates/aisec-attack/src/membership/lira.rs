//! The likelihood-ratio attack, LiRA (Carlini, Chien, Nasr, Song, Terzis &
//! Tramèr 2022, "Membership Inference Attacks From First Principles",
//! IEEE S&P).
//!
//! The attacker trains shadow models on random halves of a population that
//! contains the examples under test, so each example is IN the training set
//! of about half the shadows and OUT of the rest (the keep masks, seeded).
//! For every example the logit-scaled confidences `phi` the shadows give it
//! are fitted with two Gaussians, `N(mu_in, s_in^2)` and
//! `N(mu_out, s_out^2)`. Then the target's `phi` is scored:
//!
//! * online: `log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2)`, the
//!   log likelihood ratio of the two hypotheses;
//! * offline: only the OUT shadows are needed (they never saw the example);
//!   the one-sided test `log Pr[Z < phi]`, `Z ~ N(mu_out, s_out^2)`: the
//!   more the target is more confident than models that never saw the
//!   example, the more likely it is a member.
//!
//! Variances are per example, or one global variance pooled over all
//! examples (per hypothesis), which the paper recommends when shadows are
//! few (Sec. VI-A: below about 64). With augmented queries each augmentation
//! gets its own fit, and the per-augmentation scores are averaged.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

/// How LiRA's Gaussians get their variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceMode {
    /// One variance per example (and hypothesis), from its own shadows.
    PerExample,
    /// One variance per hypothesis, pooled over every example.
    Global,
    /// Global below 64 shadows, per example from 64 on.
    Auto,
}

impl VarianceMode {
    /// Parses `per-example`, `global` or `auto`.
    pub fn parse(s: &str) -> Option<VarianceMode> {
        match s {
            "per-example" | "per_example" => Some(VarianceMode::PerExample),
            "global" => Some(VarianceMode::Global),
            "auto" => Some(VarianceMode::Auto),
            _ => None,
        }
    }

    /// `Auto` resolved for a number of shadow models.
    pub fn resolve(self, shadows: usize) -> VarianceMode {
        match self {
            VarianceMode::Auto if shadows >= 64 => VarianceMode::PerExample,
            VarianceMode::Auto => VarianceMode::Global,
            m => m,
        }
    }
}

/// Keep masks: `keep[s][i]` is true when example `i` of the pool is in the
/// training set of shadow `s`. Every example is IN for exactly
/// `floor(shadows / 2)` shadows, chosen at random per example (so each
/// shadow trains on about half the pool).
pub fn keep_masks(shadows: usize, pool: usize, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6c69_7261_6b65_6570);
    let mut keep = vec![vec![false; pool]; shadows];
    let mut idx: Vec<usize> = (0..shadows).collect();
    for i in 0..pool {
        idx.shuffle(&mut rng);
        for &s in &idx[..shadows / 2] {
            keep[s][i] = true;
        }
    }
    keep
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Log density of `N(mu, s^2)` at `x`.
pub fn log_normal_pdf(x: f64, mu: f64, s: f64) -> f64 {
    let z = (x - mu) / s;
    -0.5 * z * z - s.ln() - 0.5 * LN_2PI
}

/// `log Phi(z)`, the log of the standard normal CDF, accurate far into both
/// tails.
pub fn log_normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    if z < 0.0 {
        // Phi(z) = erfc(-z/sqrt2) / 2
        aisec_model::special::log_erfc_pos(-x) - std::f64::consts::LN_2
    } else {
        // Phi(z) = 1 - erfc(z/sqrt2) / 2
        (-0.5 * aisec_model::special::log_erfc_pos(x).exp()).ln_1p()
    }
}

/// Smallest standard deviation a fit may have: shadows that all agree
/// exactly would otherwise give an infinite likelihood.
const MIN_STD: f64 = 1e-6;

/// Per-example, per-augmentation Gaussian fits of shadow confidences.
#[derive(Debug, Clone)]
pub struct Fits {
    /// `mu_in[i][a]` (NaN when example `i` has no IN shadow).
    pub mu_in: Vec<Vec<f64>>,
    /// `mu_out[i][a]` (NaN when example `i` has no OUT shadow).
    pub mu_out: Vec<Vec<f64>>,
    /// `s_in[i][a]`.
    pub s_in: Vec<Vec<f64>>,
    /// `s_out[i][a]`.
    pub s_out: Vec<Vec<f64>>,
    /// The variance mode used.
    pub variance: VarianceMode,
}

/// Fits the Gaussians from `phi[s][i][a]` (shadow, example, augmentation)
/// and `keep[s][i]`.
pub fn fit(phi: &[Vec<Vec<f64>>], keep: &[Vec<bool>], variance: VarianceMode) -> Fits {
    let mode = variance.resolve(phi.len());
    let n = phi.first().map_or(0, |p| p.len());
    let na = phi.first().and_then(|p| p.first()).map_or(0, |v| v.len());
    let mut f = Fits {
        mu_in: vec![vec![f64::NAN; na]; n],
        mu_out: vec![vec![f64::NAN; na]; n],
        s_in: vec![vec![f64::NAN; na]; n],
        s_out: vec![vec![f64::NAN; na]; n],
        variance: mode,
    };
    // Pooled residual sums of squares for the global variance.
    let (mut ss_in, mut df_in, mut ss_out, mut df_out) = (
        vec![0.0; na],
        vec![0usize; na],
        vec![0.0; na],
        vec![0usize; na],
    );
    for i in 0..n {
        for a in 0..na {
            for (side, mu, s, ss, df) in [
                (true, &mut f.mu_in, &mut f.s_in, &mut ss_in, &mut df_in),
                (false, &mut f.mu_out, &mut f.s_out, &mut ss_out, &mut df_out),
            ] {
                let vals: Vec<f64> = (0..phi.len())
                    .filter(|&k| keep[k][i] == side)
                    .map(|k| phi[k][i][a])
                    .collect();
                if vals.is_empty() {
                    continue;
                }
                let m = vals.iter().sum::<f64>() / vals.len() as f64;
                let r = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>();
                mu[i][a] = m;
                s[i][a] = if vals.len() > 1 {
                    (r / (vals.len() - 1) as f64).sqrt()
                } else {
                    f64::NAN
                };
                ss[a] += r;
                df[a] += vals.len().saturating_sub(1);
            }
        }
    }
    for a in 0..na {
        let g_in = (ss_in[a] / df_in[a].max(1) as f64).sqrt();
        let g_out = (ss_out[a] / df_out[a].max(1) as f64).sqrt();
        for i in 0..n {
            if mode == VarianceMode::Global || !f.s_in[i][a].is_finite() {
                f.s_in[i][a] = g_in;
            }
            if mode == VarianceMode::Global || !f.s_out[i][a].is_finite() {
                f.s_out[i][a] = g_out;
            }
            f.s_in[i][a] = f.s_in[i][a].max(MIN_STD);
            f.s_out[i][a] = f.s_out[i][a].max(MIN_STD);
        }
    }
    f
}

fn mean_over(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut k) = (0.0, 0);
    for x in v.filter(|x| !x.is_nan()) {
        s += x;
        k += 1;
    }
    if k == 0 {
        f64::NAN
    } else {
        s / k as f64
    }
}

/// Online LiRA scores of the target's confidences `target[i][a]`.
/// An example without IN or OUT shadows scores NaN (ranked last).
pub fn online_scores(fits: &Fits, target: &[Vec<f64>]) -> Vec<f64> {
    target
        .iter()
        .enumerate()
        .map(|(i, t)| {
            mean_over(t.iter().enumerate().map(|(a, &x)| {
                log_normal_pdf(x, fits.mu_in[i][a], fits.s_in[i][a])
                    - log_normal_pdf(x, fits.mu_out[i][a], fits.s_out[i][a])
            }))
        })
        .collect()
}

/// Offline LiRA scores: `log Pr[Z < phi]` under the OUT Gaussian.
pub fn offline_scores(fits: &Fits, target: &[Vec<f64>]) -> Vec<f64> {
    target
        .iter()
        .enumerate()
        .map(|(i, t)| {
            mean_over(
                t.iter()
                    .enumerate()
                    .map(|(a, &x)| log_normal_cdf((x - fits.mu_out[i][a]) / fits.s_out[i][a])),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_masks_split_every_example_in_half() {
        let k = keep_masks(8, 100, 3);
        for i in 0..100 {
            assert_eq!((0..8).filter(|&s| k[s][i]).count(), 4);
        }
        for s in 0..8 {
            let c = k[s].iter().filter(|&&b| b).count();
            assert!((30..=70).contains(&c), "shadow {s} keeps {c}");
        }
        assert_eq!(k, keep_masks(8, 100, 3));
        assert_ne!(k, keep_masks(8, 100, 4));
    }

    #[test]
    fn normal_log_pdf_and_cdf() {
        // Standard normal at 0 and 1.
        assert!((log_normal_pdf(0.0, 0.0, 1.0) - (-0.918_938_533_204_672_7)).abs() < 1e-12);
        assert!((log_normal_pdf(3.0, 1.0, 2.0) - (-0.5 - 2f64.ln() - 0.5 * LN_2PI)).abs() < 1e-12);
        for (z, want) in [
            (0.0, 0.5f64),
            (1.0, 0.841_344_746_068_542_9),
            (-1.0, 0.158_655_253_931_457_05),
            (-3.0, 0.001_349_898_031_630_094_6),
            (2.5, 0.993_790_334_674_223_7),
        ] {
            let got = log_normal_cdf(z).exp();
            assert!(
                (got / want - 1.0).abs() < 1e-6,
                "Phi({z}) = {got}, want {want}"
            );
        }
        // Far tail: log Phi(-40) ~ -z^2/2 - ln(-z) - ln(2pi)/2 (Mills ratio).
        let asym = -800.0 - 40f64.ln() - 0.5 * LN_2PI;
        assert!(
            (log_normal_cdf(-40.0) - asym).abs() < 1e-2,
            "{}",
            log_normal_cdf(-40.0)
        );
        assert!(log_normal_cdf(40.0) <= 0.0 && log_normal_cdf(40.0) > -1e-12);
    }

    #[test]
    fn likelihood_ratio_of_known_gaussians() {
        // Two shadows per side with values giving mu_in = 4, mu_out = 0 and
        // per-example std sqrt(2) on both sides.
        let phi = vec![
            vec![vec![5.0]],
            vec![vec![3.0]],
            vec![vec![1.0]],
            vec![vec![-1.0]],
        ];
        let keep = vec![vec![true], vec![true], vec![false], vec![false]];
        let f = fit(&phi, &keep, VarianceMode::PerExample);
        assert!((f.mu_in[0][0] - 4.0).abs() < 1e-12);
        assert!((f.mu_out[0][0]).abs() < 1e-12);
        assert!((f.s_in[0][0] - 2f64.sqrt()).abs() < 1e-12);
        // Equal variances: the log ratio is linear, (x - 2) * 4 / 2 = 2x - 4.
        let s = online_scores(&f, &[vec![3.0]]);
        assert!((s[0] - 2.0).abs() < 1e-12, "{}", s[0]);
        let s = online_scores(&f, &[vec![2.0]]);
        assert!(s[0].abs() < 1e-12);
        // Offline: Phi((x - 0)/sqrt2) at x = 0 is one half.
        let o = offline_scores(&f, &[vec![0.0]]);
        assert!((o[0] - 0.5f64.ln()).abs() < 1e-6);
        // Global variance pools the residuals of both examples.
        let phi2: Vec<Vec<Vec<f64>>> = phi
            .iter()
            .map(|p| vec![p[0].clone(), vec![p[0][0] * 2.0]])
            .collect();
        let keep2: Vec<Vec<bool>> = keep.iter().map(|k| vec![k[0], k[0]]).collect();
        let g = fit(&phi2, &keep2, VarianceMode::Global);
        // IN residual SS: 2 (example 0) + 8 (example 1), df 2: var 5.
        assert!((g.s_in[0][0] - 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(g.s_in[0][0], g.s_in[1][0]);
        assert_eq!(VarianceMode::Auto.resolve(16), VarianceMode::Global);
        assert_eq!(VarianceMode::Auto.resolve(64), VarianceMode::PerExample);
    }
}
