//! The membership-inference rule and the findings a measured run gives.
//!
//! One finding per attack run. Severity compares the true-positive rate at
//! a low false-positive rate with what random guessing gets there (TPR =
//! FPR), as Carlini et al. (2022) argue: an attack that confidently
//! identifies even a few members is a privacy failure, whatever its AUC.
//!
//! | condition (point estimate, 95 % bootstrap bound)                     | severity |
//! |-----------------------------------------------------------------------|----------|
//! | TPR at 0.1 % FPR >= 10 % (100x random)                                | critical |
//! | TPR at 0.1 % FPR >= 1 % with lower bound > 0.1 %, or TPR at 1 % FPR >= 10 % with lower bound > 1 % | high |
//! | TPR at 1 % FPR lower bound > 2 % (2x random), or AUC >= 0.6 with lower bound > 0.55 | medium |
//! | AUC lower bound > 0.5                                                 | low      |
//! | otherwise (indistinguishable from guessing at this sample size)       | info, titled "No membership leakage measured ..." |

use aisec_core::{Confidence, Finding, Location, Severity};

use super::{json_f64, MembershipAttackResult, MembershipReport, RocMetrics};
use crate::rules::MEMBERSHIP_INFERENCE;

/// Title of a finding below the reporting threshold: the attack did no
/// better than guessing at this sample size.
pub const HELD: &str =
    "No membership leakage measured: the attack did no better than guessing at this sample size";

/// Severity of one attack's numbers (see the module table).
pub fn severity_for(m: &RocMetrics) -> Severity {
    let t01 = m.tpr_at_0_1pct_fpr;
    let t1 = m.tpr_at_1pct_fpr;
    if t01 >= 0.10 {
        Severity::Critical
    } else if (t01 >= 0.01 && m.tpr_at_0_1pct_fpr_ci.lo > 0.001)
        || (t1 >= 0.10 && m.tpr_at_1pct_fpr_ci.lo > 0.01)
    {
        Severity::High
    } else if m.tpr_at_1pct_fpr_ci.lo > 0.02 || (m.auc >= 0.6 && m.auc_ci.lo > 0.55) {
        Severity::Medium
    } else if m.auc_ci.lo > 0.5 {
        Severity::Low
    } else {
        Severity::Info
    }
}

fn pct(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v != 0.0 && v.abs() < 0.001 {
        format!("{:.3}%", v * 100.0)
    } else {
        format!("{:.1}%", v * 100.0)
    }
}

impl MembershipReport {
    /// Findings for `target` (model path or endpoint): one per attack,
    /// carrying AUC, TPR at 0.1 % and 1 % FPR and balanced accuracy with
    /// their intervals, and the run's setting, as metrics.
    pub fn findings(&self, target: &str) -> Vec<Finding> {
        self.attacks
            .iter()
            .map(|a| self.finding(target, a))
            .collect()
    }

    fn finding(&self, target: &str, a: &MembershipAttackResult) -> Finding {
        let m = &a.metrics;
        let lift = m.tpr_at_0_1pct_fpr / 0.001;
        let setting = if a.attack == "loss" {
            String::new()
        } else {
            format!(", {} shadow models", self.shadows)
        };
        let evidence = format!(
            "{}: AUC {:.3} [{:.3}, {:.3}], TPR {} [{}, {}] at 0.1% FPR ({:.1}x random guessing), \
TPR {} [{}, {}] at 1% FPR, balanced accuracy {}; {} members vs {} non-members (target accuracy \
{} on members, {} on non-members){}, {} queries{}",
            a.attack,
            m.auc,
            m.auc_ci.lo,
            m.auc_ci.hi,
            pct(m.tpr_at_0_1pct_fpr),
            pct(m.tpr_at_0_1pct_fpr_ci.lo),
            pct(m.tpr_at_0_1pct_fpr_ci.hi),
            lift,
            pct(m.tpr_at_1pct_fpr),
            pct(m.tpr_at_1pct_fpr_ci.lo),
            pct(m.tpr_at_1pct_fpr_ci.hi),
            pct(m.balanced_accuracy),
            self.members,
            self.non_members,
            pct(self.member_accuracy),
            pct(self.non_member_accuracy),
            setting,
            self.queries,
            if self.cancelled {
                " (interrupted: partial)"
            } else {
                ""
            }
        );
        let severity = severity_for(m);
        let mut f = MEMBERSHIP_INFERENCE
            .finding(Location::path(target), evidence)
            .severity(severity)
            .title(if severity == Severity::Info {
                HELD
            } else {
                MEMBERSHIP_INFERENCE.title
            })
            .metric("attack", a.attack.clone())
            .metric("auc", json_f64(m.auc))
            .metric(
                "auc_ci",
                serde_json::json!([json_f64(m.auc_ci.lo), json_f64(m.auc_ci.hi)]),
            )
            .metric("tpr_at_0.1pct_fpr", json_f64(m.tpr_at_0_1pct_fpr))
            .metric(
                "tpr_at_0.1pct_fpr_ci",
                serde_json::json!([
                    json_f64(m.tpr_at_0_1pct_fpr_ci.lo),
                    json_f64(m.tpr_at_0_1pct_fpr_ci.hi)
                ]),
            )
            .metric("tpr_at_1pct_fpr", json_f64(m.tpr_at_1pct_fpr))
            .metric(
                "tpr_at_1pct_fpr_ci",
                serde_json::json!([
                    json_f64(m.tpr_at_1pct_fpr_ci.lo),
                    json_f64(m.tpr_at_1pct_fpr_ci.hi)
                ]),
            )
            .metric("balanced_accuracy", json_f64(m.balanced_accuracy))
            .metric("lift_at_0.1pct_fpr", json_f64(lift))
            .metric("members", self.members as u64)
            .metric("non_members", self.non_members as u64)
            .metric("member_accuracy", json_f64(self.member_accuracy))
            .metric("non_member_accuracy", json_f64(self.non_member_accuracy))
            .metric("queries", self.queries)
            .metric("bootstrap", m.bootstrap as u64);
        if a.attack != "loss" {
            f = f.metric("shadows", self.shadows as u64);
        }
        if self.cancelled {
            f = f.confidence(Confidence::Medium);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Interval;

    fn m(auc: (f64, f64), t01: (f64, f64), t1: (f64, f64)) -> RocMetrics {
        let iv = |p: (f64, f64)| Interval {
            lo: p.1,
            hi: p.0 + (p.0 - p.1),
        };
        RocMetrics {
            auc: auc.0,
            auc_ci: iv(auc),
            tpr_at_0_1pct_fpr: t01.0,
            tpr_at_0_1pct_fpr_ci: iv(t01),
            tpr_at_1pct_fpr: t1.0,
            tpr_at_1pct_fpr_ci: iv(t1),
            balanced_accuracy: 0.5,
            balanced_accuracy_ci: Interval { lo: 0.5, hi: 0.5 },
            bootstrap: 100,
        }
    }

    #[test]
    fn severity_follows_low_fpr_tpr() {
        assert_eq!(
            severity_for(&m((0.9, 0.88), (0.2, 0.1), (0.4, 0.3))),
            Severity::Critical
        );
        assert_eq!(
            severity_for(&m((0.7, 0.68), (0.03, 0.01), (0.1, 0.05))),
            Severity::High
        );
        // High TPR point estimate at 0.1% but its interval reaches guessing.
        assert_eq!(
            severity_for(&m((0.55, 0.52), (0.02, 0.0), (0.03, 0.01))),
            Severity::Low
        );
        assert_eq!(
            severity_for(&m((0.62, 0.6), (0.0, 0.0), (0.02, 0.01))),
            Severity::Medium
        );
        assert_eq!(
            severity_for(&m((0.5, 0.48), (0.001, 0.0), (0.01, 0.0))),
            Severity::Info
        );
    }
}
