//! Threat statuses from measured results: each check's findings and
//! metrics decide whether the threats it tests are open or mitigated; a
//! threat no check measured (or whose check failed) is "not tested".

use std::collections::BTreeMap;

use aisec_core::{Finding, Severity};
use serde::{Deserialize, Serialize};

use crate::threats::{CheckRef, Level, Threat, ThreatModel};

/// A threat's status after an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A measurement showed the threat is real.
    Open,
    /// A measurement exercised the threat and it did not succeed beyond the thresholds.
    Mitigated,
    /// Nothing measured it (manual control, check failed, skipped or interrupted).
    NotTested,
}

impl Status {
    /// Name shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Mitigated => "mitigated",
            Status::NotTested => "not tested",
        }
    }

    /// Threat Dragon's status: a threat not shown mitigated is still `Open` there.
    pub fn threat_dragon(self) -> &'static str {
        match self {
            Status::Mitigated => "Mitigated",
            Status::Open | Status::NotTested => "Open",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Outcome {
    /// It ran to the end.
    Done,
    /// It could not run; the reason.
    Failed {
        /// Why.
        error: String,
    },
    /// It was stopped part-way (Ctrl-C); its numbers are partial and not used for statuses.
    Interrupted,
}

/// The result of one check, as the CLI ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: CheckRef,
    /// How it ended.
    pub outcome: Outcome,
    /// ATLAS techniques it actually exercised (with at least one attempt).
    pub exercised: Vec<String>,
    /// Its findings.
    pub findings: Vec<Finding>,
    /// Headline numbers (robust accuracy, AUC, agreement, attack success rates).
    pub metrics: BTreeMap<String, f64>,
    /// The report data of the underlying command (curves, ROC, per-family rates) for the report's charts.
    #[serde(default)]
    pub data: serde_json::Value,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// `AML.T0051` covers `AML.T0051.000` and the reverse (a parent technique
/// and its sub-technique are the same threat at different precision).
pub fn atlas_match(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
}

fn overlaps(xs: &[String], ys: &[String]) -> bool {
    xs.iter().any(|x| ys.iter().any(|y| atlas_match(x, y)))
}

/// A threat with its status and the measurements behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessedThreat {
    /// The threat.
    pub threat: Threat,
    /// Its status.
    pub status: Status,
    /// Why (one sentence naming the measurement or its absence).
    pub reason: String,
    /// Findings of its check that bear on it (any severity).
    pub evidence: Vec<Finding>,
    /// The check's headline metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Risk now: inherent risk when open or not tested, low when mitigated.
    pub residual_risk: Level,
}

/// Assigns every threat a status from the check results.
pub fn assess(model: &ThreatModel, results: &[CheckResult]) -> Vec<AssessedThreat> {
    model
        .threats
        .iter()
        .map(|t| assess_one(t, results))
        .collect()
}

fn assess_one(t: &Threat, results: &[CheckResult]) -> AssessedThreat {
    let mut out = AssessedThreat {
        threat: t.clone(),
        status: Status::NotTested,
        reason: String::new(),
        evidence: Vec::new(),
        metrics: BTreeMap::new(),
        residual_risk: t.inherent_risk(),
    };
    let Some(check) = &t.check else {
        out.reason = match &t.declared_control {
            Some(c) => format!("Not testable by aisec; declared control (not measured): {c}"),
            None => "Not testable by aisec; review the control manually.".into(),
        };
        return out;
    };
    let Some(r) = results.iter().find(|r| &r.check == check) else {
        out.reason = format!("{} was not run.", check.kind.command());
        return out;
    };
    match &r.outcome {
        Outcome::Failed { error } => {
            out.reason = format!("{} could not run: {error}", check.kind.command());
            return out;
        }
        Outcome::Interrupted => {
            out.reason = format!(
                "{} was interrupted; partial numbers are not used.",
                check.kind.command()
            );
            return out;
        }
        Outcome::Done => {}
    }
    out.metrics = relevant_metrics(r, &t.atlas);
    // Findings without ATLAS ids (a scan's unreadable-file note) still bear
    // on the scan's threat; otherwise a finding must share a technique.
    out.evidence = r
        .findings
        .iter()
        .filter(|f| overlaps(&f.atlas, &t.atlas) || (t.atlas.is_empty() && f.atlas.is_empty()))
        .cloned()
        .collect();
    if !overlaps(&r.exercised, &t.atlas) {
        out.reason = format!(
            "{} ran but exercised none of {}.",
            check.kind.command(),
            t.atlas.join(", ")
        );
        return out;
    }
    let worst = out
        .evidence
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    if worst >= Severity::Low {
        out.status = Status::Open;
        out.reason = format!(
            "{} found {} finding(s) up to {worst}.",
            check.kind.command(),
            out.evidence
                .iter()
                .filter(|f| f.severity >= Severity::Low)
                .count()
        );
    } else {
        out.status = Status::Mitigated;
        out.residual_risk = Level::Low;
        out.reason = format!(
            "{} exercised it and found nothing above info.",
            check.kind.command()
        );
    }
    out
}

/// The check's metrics that bear on a threat: a probe run's per-family
/// attack success rates (`asr_<family>`) only for families whose
/// techniques the threat names; every other metric as is.
fn relevant_metrics(r: &CheckResult, atlas: &[String]) -> BTreeMap<String, f64> {
    let families = r
        .data
        .pointer("/probe/families")
        .and_then(serde_json::Value::as_array);
    r.metrics
        .iter()
        .filter(|(k, _)| {
            let Some(fam) = k.strip_prefix("asr_") else {
                return true;
            };
            families.into_iter().flatten().any(|f| {
                f.get("family").and_then(serde_json::Value::as_str) == Some(fam)
                    && f.get("atlas")
                        .and_then(serde_json::Value::as_array)
                        .is_some_and(|a| {
                            a.iter()
                                .filter_map(serde_json::Value::as_str)
                                .any(|x| atlas.iter().any(|y| atlas_match(x, y)))
                        })
            })
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// The overall risk: the highest residual risk of an open threat; a
/// system with nothing open but untested threats is at least medium (an
/// untested threat is not a mitigated one).
pub fn overall_risk(threats: &[AssessedThreat]) -> Level {
    let open = threats
        .iter()
        .filter(|t| t.status == Status::Open)
        .map(|t| t.residual_risk)
        .max();
    let untested = threats
        .iter()
        .filter(|t| t.status == Status::NotTested)
        .map(|t| t.residual_risk)
        .max();
    match (open, untested) {
        (Some(o), _) => o,
        (None, Some(u)) => u.min(Level::Medium),
        (None, None) => Level::Low,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::SystemDescription;
    use crate::threats::{plan, CheckKind};
    use aisec_core::Location;

    fn finding(atlas: &str, sev: Severity) -> Finding {
        let mut f = aisec_scan_like_rule().finding(Location::path("x"), "e");
        f.atlas = vec![atlas.into()];
        f.severity = sev;
        f
    }

    fn aisec_scan_like_rule() -> &'static aisec_core::Rule {
        &crate::rules::ASSESS_THREAT_OPEN
    }

    fn result(
        kind: CheckKind,
        comp: &str,
        exercised: &[&str],
        findings: Vec<Finding>,
    ) -> CheckResult {
        CheckResult {
            check: CheckRef {
                kind,
                component: comp.into(),
            },
            outcome: Outcome::Done,
            exercised: exercised.iter().map(|s| s.to_string()).collect(),
            findings,
            metrics: BTreeMap::new(),
            data: serde_json::Value::Null,
            seconds: 0.0,
        }
    }

    #[test]
    fn statuses_follow_the_measurements() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let results = vec![
            result(
                CheckKind::Scan,
                "models",
                &["AML.T0011.000", "AML.T0010"],
                vec![finding("AML.T0011.000", Severity::Critical)],
            ),
            result(
                CheckKind::Evasion,
                "cnn",
                &["AML.T0015", "AML.T0043"],
                vec![finding("AML.T0015", Severity::Info)],
            ),
            result(CheckKind::Probe, "chat", &["AML.T0051.000"], vec![]),
            CheckResult {
                outcome: Outcome::Failed {
                    error: "refused".into(),
                },
                ..result(CheckKind::Extraction, "cnn", &[], vec![])
            },
        ];
        let a = assess(&m, &results);
        let st = |id: &str| a.iter().find(|t| t.threat.id == id).unwrap().status;
        assert_eq!(st("TM-ART-EXEC@models"), Status::Open);
        assert_eq!(
            st("TM-MODEL-EVASION@cnn"),
            Status::Mitigated,
            "an info 'model held' finding"
        );
        assert_eq!(st("TM-LLM-INJECTION@chat"), Status::Mitigated);
        // The probe ran, but no family exercised output handling.
        assert_eq!(st("TM-LLM-OUTPUT@chat"), Status::NotTested);
        assert_eq!(
            st("TM-MODEL-EXTRACTION@cnn"),
            Status::NotTested,
            "failed check"
        );
        assert_eq!(st("TM-MODEL-MEMBERSHIP@cnn"), Status::NotTested, "not run");
        assert_eq!(st("TM-LLM-AGENCY@chat"), Status::NotTested, "manual");
        assert_eq!(overall_risk(&a), Level::High);
    }

    #[test]
    fn parent_and_sub_techniques_match() {
        assert!(atlas_match("AML.T0051", "AML.T0051.000"));
        assert!(atlas_match("AML.T0051.001", "AML.T0051"));
        assert!(!atlas_match("AML.T0051", "AML.T0054"));
        assert!(!atlas_match("AML.T0010", "AML.T0011"));
    }
}
