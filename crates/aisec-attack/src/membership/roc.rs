//! ROC curves of membership scores, the figures Carlini et al. (2022,
//! "Membership Inference Attacks From First Principles", IEEE S&P) argue a
//! membership attack should be judged by: the whole curve on log axes and
//! the true-positive rate at a low false-positive rate (0.1 %, 1 %), next to
//! the usual AUC and balanced accuracy, each with a stratified bootstrap 95 %
//! confidence interval (Efron & Tibshirani 1993, percentile method).
//!
//! Scores are "larger means more likely a member". Members are the
//! positives. Tied scores form one ROC step (a diagonal segment), so the
//! trapezoidal AUC equals the Mann-Whitney statistic with ties counted half.

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::MembershipError;

/// One ROC curve: points `(fpr[i], tpr[i])` from `(0, 0)` to `(1, 1)`,
/// false-positive rate non-decreasing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Roc {
    /// False-positive rates.
    pub fpr: Vec<f64>,
    /// True-positive rates.
    pub tpr: Vec<f64>,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

/// The summary numbers of one attack's ROC, with bootstrap intervals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocMetrics {
    /// Area under the curve.
    pub auc: f64,
    /// 95 % bootstrap interval of the AUC.
    pub auc_ci: Interval,
    /// True-positive rate at 0.1 % false-positive rate.
    pub tpr_at_0_1pct_fpr: f64,
    /// 95 % bootstrap interval of TPR at 0.1 % FPR.
    pub tpr_at_0_1pct_fpr_ci: Interval,
    /// True-positive rate at 1 % false-positive rate.
    pub tpr_at_1pct_fpr: f64,
    /// 95 % bootstrap interval of TPR at 1 % FPR.
    pub tpr_at_1pct_fpr_ci: Interval,
    /// Best balanced accuracy over thresholds, `max (TPR + 1 - FPR) / 2`.
    pub balanced_accuracy: f64,
    /// 95 % bootstrap interval of the balanced accuracy.
    pub balanced_accuracy_ci: Interval,
    /// Bootstrap replicates behind the intervals (0: intervals collapse to the point).
    pub bootstrap: usize,
}

/// Examples sorted by score, descending, cut into groups of equal score.
struct Sorted {
    order: Vec<usize>,
    /// `order[groups[g]..groups[g + 1]]` share one score.
    groups: Vec<usize>,
}

fn sort_scores(scores: &[f64]) -> Sorted {
    // NaN (a failed score) ranks lowest: never evidence of membership.
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])));
    let mut groups = vec![0];
    for k in 1..order.len() {
        if key(scores[order[k]]) != key(scores[order[k - 1]]) {
            groups.push(k);
        }
    }
    groups.push(order.len());
    Sorted { order, groups }
}

fn check(scores: &[f64], member: &[bool]) -> Result<(usize, usize), MembershipError> {
    if scores.len() != member.len() {
        return Err(MembershipError::Invalid(format!(
            "{} scores for {} membership labels",
            scores.len(),
            member.len()
        )));
    }
    let pos = member.iter().filter(|&&m| m).count();
    let neg = member.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(MembershipError::Invalid(
            "a ROC needs at least one member and one non-member".into(),
        ));
    }
    Ok((pos, neg))
}

/// Weighted ROC over presorted scores; `w[i]` is how often example `i`
/// counts (1 for the plain curve, bootstrap multiplicities otherwise).
fn roc_weighted(s: &Sorted, member: &[bool], w: &[u32]) -> Roc {
    let (mut p, mut n) = (0u64, 0u64);
    for (i, &m) in member.iter().enumerate() {
        if m {
            p += w[i] as u64;
        } else {
            n += w[i] as u64;
        }
    }
    let (pf, nf) = (p.max(1) as f64, n.max(1) as f64);
    let mut fpr = vec![0.0];
    let mut tpr = vec![0.0];
    let (mut tp, mut fp) = (0u64, 0u64);
    for g in s.groups.windows(2) {
        for &i in &s.order[g[0]..g[1]] {
            if member[i] {
                tp += w[i] as u64;
            } else {
                fp += w[i] as u64;
            }
        }
        let (f, t) = (fp as f64 / nf, tp as f64 / pf);
        if f != *fpr.last().unwrap_or(&-1.0) || t != *tpr.last().unwrap_or(&-1.0) {
            fpr.push(f);
            tpr.push(t);
        }
    }
    Roc { fpr, tpr }
}

/// The ROC curve of `scores` against the true membership.
pub fn roc(scores: &[f64], member: &[bool]) -> Result<Roc, MembershipError> {
    check(scores, member)?;
    let s = sort_scores(scores);
    Ok(roc_weighted(&s, member, &vec![1; scores.len()]))
}

impl Roc {
    /// Area under the curve (trapezoids).
    pub fn auc(&self) -> f64 {
        let mut a = 0.0;
        for k in 1..self.fpr.len() {
            a += (self.fpr[k] - self.fpr[k - 1]) * (self.tpr[k] + self.tpr[k - 1]) / 2.0;
        }
        a
    }

    /// True-positive rate at false-positive rate `f`, interpolated linearly
    /// between the curve's vertices (a threshold randomised between two
    /// neighbouring scores achieves it). Where the curve rises vertically at
    /// exactly `f`, the top of that rise counts.
    pub fn tpr_at(&self, f: f64) -> f64 {
        let f = f.clamp(0.0, 1.0);
        let mut best_at = None::<f64>;
        for k in 0..self.fpr.len() {
            if self.fpr[k] == f {
                best_at = Some(best_at.map_or(self.tpr[k], |b: f64| b.max(self.tpr[k])));
            }
        }
        if let Some(t) = best_at {
            return t;
        }
        for k in 1..self.fpr.len() {
            let (f0, f1) = (self.fpr[k - 1], self.fpr[k]);
            if f0 < f && f < f1 {
                let (t0, t1) = (self.tpr[k - 1], self.tpr[k]);
                return t0 + (t1 - t0) * (f - f0) / (f1 - f0);
            }
        }
        1.0
    }

    /// The best balanced accuracy over thresholds.
    pub fn balanced_accuracy(&self) -> f64 {
        self.fpr
            .iter()
            .zip(&self.tpr)
            .map(|(f, t)| (t + 1.0 - f) / 2.0)
            .fold(0.5, f64::max)
    }
}

fn summary(r: &Roc) -> [f64; 4] {
    [
        r.auc(),
        r.tpr_at(0.001),
        r.tpr_at(0.01),
        r.balanced_accuracy(),
    ]
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Most bootstrap replicates [`roc_metrics`] draws (more are ignored).
pub const MAX_BOOTSTRAP: usize = 100_000;

/// ROC metrics with stratified bootstrap 95 % intervals: each of
/// `bootstrap` replicates redraws the members and the non-members with
/// replacement (keeping both counts), so the intervals reflect which
/// examples happened to be evaluated. Seeded: the same seed gives the same
/// intervals.
pub fn roc_metrics(
    scores: &[f64],
    member: &[bool],
    bootstrap: usize,
    seed: u64,
) -> Result<RocMetrics, MembershipError> {
    check(scores, member)?;
    let bootstrap = bootstrap.min(MAX_BOOTSTRAP);
    let s = sort_scores(scores);
    let point = summary(&roc_weighted(&s, member, &vec![1; scores.len()]));
    let pos: Vec<usize> = (0..member.len()).filter(|&i| member[i]).collect();
    let neg: Vec<usize> = (0..member.len()).filter(|&i| !member[i]).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6d69_615f_626f_6f74);
    let mut reps: [Vec<f64>; 4] = Default::default();
    let mut w = vec![0u32; scores.len()];
    for _ in 0..bootstrap {
        w.iter_mut().for_each(|v| *v = 0);
        for set in [&pos, &neg] {
            for _ in 0..set.len() {
                w[set[rng.gen_range(0..set.len())]] += 1;
            }
        }
        let m = summary(&roc_weighted(&s, member, &w));
        for k in 0..4 {
            reps[k].push(m[k]);
        }
    }
    let ci = |k: usize| {
        if bootstrap == 0 {
            return Interval {
                lo: point[k],
                hi: point[k],
            };
        }
        let mut v = reps[k].clone();
        v.sort_by(f64::total_cmp);
        Interval {
            lo: percentile(&v, 0.025),
            hi: percentile(&v, 0.975),
        }
    };
    Ok(RocMetrics {
        auc: point[0],
        auc_ci: ci(0),
        tpr_at_0_1pct_fpr: point[1],
        tpr_at_0_1pct_fpr_ci: ci(1),
        tpr_at_1pct_fpr: point[2],
        tpr_at_1pct_fpr_ci: ci(2),
        balanced_accuracy: point[3],
        balanced_accuracy_ci: ci(3),
        bootstrap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_random_and_inverted_scores() {
        let member = [true, true, false, false];
        let r = roc(&[4.0, 3.0, 2.0, 1.0], &member).unwrap();
        assert!(close(r.auc(), 1.0));
        assert!(close(r.tpr_at(0.0), 1.0));
        assert!(close(r.balanced_accuracy(), 1.0));
        let r = roc(&[1.0, 2.0, 3.0, 4.0], &member).unwrap();
        assert!(close(r.auc(), 0.0));
        assert!(close(r.balanced_accuracy(), 0.5));
        // All tied: the diagonal.
        let r = roc(&[1.0; 4], &member).unwrap();
        assert_eq!(r.fpr, vec![0.0, 1.0]);
        assert!(close(r.auc(), 0.5));
        assert!(close(r.tpr_at(0.3), 0.3));
    }

    #[test]
    fn auc_equals_mann_whitney_with_ties() {
        // Members 0.9, 0.5, 0.5; non-members 0.5, 0.1.
        // Pairs: (0.9 > both) 2, (0.5 vs 0.5) 0.5 each x2, (0.5 > 0.1) x2.
        // U = 2 + 1 + 2 = 5 of 6 pairs.
        let scores = [0.9, 0.5, 0.5, 0.5, 0.1];
        let member = [true, true, true, false, false];
        let r = roc(&scores, &member).unwrap();
        assert!(close(r.auc(), 5.0 / 6.0), "{}", r.auc());
        assert_eq!(r.fpr, vec![0.0, 0.0, 0.5, 1.0]);
        assert!(close(r.tpr[1], 1.0 / 3.0));
        assert!(close(r.tpr[2], 1.0));
    }

    #[test]
    fn tpr_interpolates_between_vertices() {
        let r = Roc {
            fpr: vec![0.0, 0.0, 0.02, 1.0],
            tpr: vec![0.0, 0.1, 0.5, 1.0],
        };
        assert!(close(r.tpr_at(0.0), 0.1));
        assert!(close(r.tpr_at(0.01), 0.3));
        assert!(close(r.tpr_at(0.001), 0.12));
        assert!(close(r.tpr_at(0.02), 0.5));
        assert!(close(r.tpr_at(1.0), 1.0));
        // Balanced accuracy at (0.02, 0.5): 0.74.
        assert!(close(r.balanced_accuracy(), 0.74));
    }

    #[test]
    fn bootstrap_intervals_cover_the_point_and_are_seeded() {
        let n = 400;
        let scores: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64).collect();
        let member: Vec<bool> = (0..n).map(|i| (i * 37) % 101 > 40 || i % 3 == 0).collect();
        let a = roc_metrics(&scores, &member, 200, 1).unwrap();
        let b = roc_metrics(&scores, &member, 200, 1).unwrap();
        assert_eq!(a, b);
        assert!(a.auc_ci.lo <= a.auc && a.auc <= a.auc_ci.hi);
        assert!(a.auc_ci.hi - a.auc_ci.lo > 0.0);
        assert!(a.auc > 0.6);
        let c = roc_metrics(&scores, &member, 0, 1).unwrap();
        assert_eq!(c.auc_ci.lo, c.auc);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(roc(&[1.0], &[true, false]).is_err());
        assert!(roc(&[1.0, 2.0], &[true, true]).is_err());
        // NaN ranks last instead of panicking.
        let r = roc(&[f64::NAN, 1.0], &[true, false]).unwrap();
        assert!(close(r.auc(), 0.0));
    }
}
