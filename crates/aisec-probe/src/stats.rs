//! Attack success rates with Wilson score intervals.
//!
//! The Wilson interval (Wilson, 1927) behaves at rates near 0 and 1 and for
//! small n, where the normal approximation collapses to a zero-width interval.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `hits` successes in `n` trials at normal quantile `z`.
/// Returns `(0.0, 1.0)` when `n == 0` (nothing is known).
pub fn wilson(hits: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let n_f = n as f64;
    let p = hits.min(n) as f64 / n_f;
    let z2 = z * z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = z * ((p * (1.0 - p) / n_f) + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // 5 of 10: the textbook interval is about [0.237, 0.763].
        let (lo, hi) = wilson(5, 10, Z95);
        assert!((lo - 0.2366).abs() < 1e-3, "{lo}");
        assert!((hi - 0.7634).abs() < 1e-3, "{hi}");
        // 0 of 20: lower bound 0, upper about 0.161.
        let (lo, hi) = wilson(0, 20, Z95);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.1611).abs() < 1e-3, "{hi}");
        assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
        let (lo, hi) = wilson(20, 20, Z95);
        assert!(hi <= 1.0 && lo > 0.8);
    }
}
