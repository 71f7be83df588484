//! Group fairness of a classifier's decisions: per-group accuracy and
//! selection rate, and the demographic-parity and equalized-odds
//! differences, with percentile bootstrap confidence intervals.
//!
//! Definitions follow Fairlearn's (`fairlearn.metrics`,
//! `demographic_parity_difference` and `equalized_odds_difference` with
//! `method="between_groups"`): the decision is binary, "predicted the
//! positive label"; selection rate is the share of a group selected;
//! demographic parity difference is the largest minus the smallest group
//! selection rate; equalized odds difference is the larger of the spreads
//! of the groups' true-positive rates and false-positive rates (Hardt,
//! Price and Srebro, "Equality of Opportunity in Supervised Learning",
//! 2016). `scripts/assess/fairness_crosscheck.py` compares these numbers
//! with Fairlearn's on the same predictions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One group's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Group value.
    pub group: u64,
    /// Examples.
    pub n: usize,
    /// Accuracy of the multi-class prediction.
    pub accuracy: f64,
    /// Share predicted positive.
    pub selection_rate: f64,
    /// True-positive rate (NaN without positives).
    pub tpr: f64,
    /// False-positive rate (NaN without negatives).
    pub fpr: f64,
}

/// A difference with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The point estimate on all examples.
    pub value: f64,
    /// 2.5th percentile of the bootstrap replicates.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

/// The fairness report of one classifier and attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// The label counted as the positive decision.
    pub positive_label: usize,
    /// Per group.
    pub groups: Vec<GroupStats>,
    /// Demographic parity difference.
    pub demographic_parity_difference: Interval,
    /// Equalized odds difference.
    pub equalized_odds_difference: Interval,
    /// Largest minus smallest group accuracy.
    pub accuracy_difference: Interval,
    /// Bootstrap replicates used.
    pub bootstrap: usize,
}

fn stats(
    y: &[usize],
    p: &[usize],
    g: &[u64],
    idx: &[usize],
    pos: usize,
) -> BTreeMap<u64, GroupStats> {
    #[derive(Default)]
    struct Acc {
        n: usize,
        correct: usize,
        selected: usize,
        pos: usize,
        tp: usize,
        neg: usize,
        fp: usize,
    }
    let mut acc: BTreeMap<u64, Acc> = BTreeMap::new();
    for &i in idx {
        let a = acc.entry(g[i]).or_default();
        a.n += 1;
        a.correct += usize::from(y[i] == p[i]);
        let sel = p[i] == pos;
        a.selected += usize::from(sel);
        if y[i] == pos {
            a.pos += 1;
            a.tp += usize::from(sel);
        } else {
            a.neg += 1;
            a.fp += usize::from(sel);
        }
    }
    let rate = |a: usize, b: usize| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    acc.into_iter()
        .map(|(k, a)| {
            (
                k,
                GroupStats {
                    group: k,
                    n: a.n,
                    accuracy: rate(a.correct, a.n),
                    selection_rate: rate(a.selected, a.n),
                    tpr: rate(a.tp, a.pos),
                    fpr: rate(a.fp, a.neg),
                },
            )
        })
        .collect()
}

fn spread(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return 0.0;
    }
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    max - min
}

fn diffs(s: &BTreeMap<u64, GroupStats>) -> (f64, f64, f64) {
    let dp = spread(s.values().map(|g| g.selection_rate));
    let eo = spread(s.values().map(|g| g.tpr)).max(spread(s.values().map(|g| g.fpr)));
    let acc = spread(s.values().map(|g| g.accuracy));
    (dp, eo, acc)
}

/// A small seeded generator (SplitMix64), so the intervals are reproducible.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Computes the report. `y`, `pred` and `group` have one entry per
/// example; `bootstrap` replicates resample examples with replacement.
/// Returns `None` when the lengths differ or there are fewer than two groups.
pub fn evaluate(
    y: &[usize],
    pred: &[usize],
    group: &[u64],
    positive_label: usize,
    bootstrap: usize,
    seed: u64,
) -> Option<Fairness> {
    let n = y.len();
    if n == 0 || pred.len() != n || group.len() != n {
        return None;
    }
    let all: Vec<usize> = (0..n).collect();
    let s = stats(y, pred, group, &all, positive_label);
    if s.len() < 2 {
        return None;
    }
    let (dp, eo, acc) = diffs(&s);
    let mut rng = seed ^ 0x5eed_fa1e;
    let (mut bdp, mut beo, mut bacc) = (Vec::new(), Vec::new(), Vec::new());
    let mut idx = vec![0usize; n];
    for _ in 0..bootstrap {
        for v in idx.iter_mut() {
            *v = (splitmix(&mut rng) % n as u64) as usize;
        }
        let (a, b, c) = diffs(&stats(y, pred, group, &idx, positive_label));
        bdp.push(a);
        beo.push(b);
        bacc.push(c);
    }
    let iv = |value: f64, v: &mut Vec<f64>| Interval {
        value,
        low: percentile(v, 0.025),
        high: percentile(v, 0.975),
    };
    Some(Fairness {
        positive_label,
        groups: s.into_values().collect(),
        demographic_parity_difference: iv(dp, &mut bdp),
        equalized_odds_difference: iv(eo, &mut beo),
        accuracy_difference: iv(acc, &mut bacc),
        bootstrap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // Group 0: y = [1,1,0,0], pred = [1,0,0,0]: selection 1/4, TPR 1/2, FPR 0, acc 3/4.
        // Group 1: y = [1,0,0,0], pred = [1,1,1,0]: selection 3/4, TPR 1, FPR 2/3, acc 2/4.
        let y = [1, 1, 0, 0, 1, 0, 0, 0];
        let p = [1, 0, 0, 0, 1, 1, 1, 0];
        let g = [0, 0, 0, 0, 1, 1, 1, 1];
        let f = evaluate(&y, &p, &g, 1, 200, 0).unwrap();
        assert!((f.demographic_parity_difference.value - 0.5).abs() < 1e-12);
        // max(TPR spread 0.5, FPR spread 2/3)
        assert!((f.equalized_odds_difference.value - 2.0 / 3.0).abs() < 1e-12);
        assert!((f.accuracy_difference.value - 0.25).abs() < 1e-12);
        assert_eq!(f.groups[1].selection_rate, 0.75);
        let dp = f.demographic_parity_difference;
        assert!(dp.low <= dp.value + 1e-9 && dp.value <= dp.high + 1e-9 || dp.low <= dp.high);
        assert!(dp.low >= 0.0 && dp.high <= 1.0);
    }

    #[test]
    fn equal_groups_have_no_gap_and_bad_input_is_none() {
        let y = [1, 0, 1, 0];
        let p = [1, 0, 1, 0];
        let g = [0, 0, 1, 1];
        let f = evaluate(&y, &p, &g, 1, 50, 1).unwrap();
        assert_eq!(f.demographic_parity_difference.value, 0.0);
        assert_eq!(f.equalized_odds_difference.value, 0.0);
        assert!(
            evaluate(&y, &p, &[0, 0, 0, 0], 1, 10, 0).is_none(),
            "one group"
        );
        assert!(evaluate(&y, &p[..3], &g, 1, 10, 0).is_none());
        assert!(evaluate(&[], &[], &[], 1, 10, 0).is_none());
    }
}
