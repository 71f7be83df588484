//! Baselines: what an earlier assessment found, so a new one can say what
//! changed (new and fixed findings, threats whose status moved) and CI can
//! fail only on findings that are new.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aisec_core::Finding;
use serde::{Deserialize, Serialize};

use crate::status::{AssessedThreat, Status};
use crate::threats::Level;
use crate::AssessError;

/// Largest baseline read.
pub const MAX_BASELINE_BYTES: u64 = 64 << 20;

/// A finding's identity across runs: rule and location (paths relative to
/// the description, loopback URLs normalised by the caller); evidence and
/// numbers may change without making it a new finding.
pub fn fingerprint(f: &Finding) -> String {
    format!("{}|{}", f.rule_id, f.location)
}

/// The baseline file (`--write-baseline`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Format version (1).
    pub version: u32,
    /// System name.
    pub system: String,
    /// Overall risk then.
    pub overall_risk: Level,
    /// Status of every threat then.
    pub threats: BTreeMap<String, Status>,
    /// Fingerprints of every finding then.
    pub findings: BTreeSet<String>,
}

/// What changed since the baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// Overall risk then.
    pub previous_risk: Option<Level>,
    /// Findings not in the baseline.
    pub new_findings: Vec<String>,
    /// Baseline findings no longer reported.
    pub fixed_findings: Vec<String>,
    /// Threats whose status changed: (id, then, now).
    pub status_changes: Vec<(String, Status, Status)>,
    /// Threats not in the baseline.
    pub new_threats: Vec<String>,
    /// Baseline threats no longer in the model.
    pub removed_threats: Vec<String>,
}

impl Baseline {
    /// The baseline of an assessment.
    pub fn of(system: &str, risk: Level, threats: &[AssessedThreat], findings: &[Finding]) -> Self {
        Baseline {
            version: 1,
            system: system.to_string(),
            overall_risk: risk,
            threats: threats
                .iter()
                .map(|t| (t.threat.id.clone(), t.status))
                .collect(),
            findings: findings.iter().map(fingerprint).collect(),
        }
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, AssessError> {
        let text = crate::system::read_bounded(path, MAX_BASELINE_BYTES)?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| AssessError::File {
            what: "baseline",
            message: format!("{}: {e}", path.display()),
        })?;
        if b.version != 1 {
            return Err(AssessError::File {
                what: "baseline",
                message: format!("{}: unknown version {}", path.display(), b.version),
            });
        }
        Ok(b)
    }

    /// Whether a finding was already known.
    pub fn knows(&self, f: &Finding) -> bool {
        self.findings.contains(&fingerprint(f))
    }

    /// What changed from this baseline to the current assessment.
    pub fn diff(&self, threats: &[AssessedThreat], findings: &[Finding]) -> Changes {
        let now: BTreeSet<String> = findings.iter().map(fingerprint).collect();
        let current: BTreeMap<&str, Status> = threats
            .iter()
            .map(|t| (t.threat.id.as_str(), t.status))
            .collect();
        Changes {
            previous_risk: Some(self.overall_risk),
            new_findings: now.difference(&self.findings).cloned().collect(),
            fixed_findings: self.findings.difference(&now).cloned().collect(),
            status_changes: threats
                .iter()
                .filter_map(|t| {
                    let then = *self.threats.get(&t.threat.id)?;
                    (then != t.status).then(|| (t.threat.id.clone(), then, t.status))
                })
                .collect(),
            new_threats: threats
                .iter()
                .filter(|t| !self.threats.contains_key(&t.threat.id))
                .map(|t| t.threat.id.clone())
                .collect(),
            removed_threats: self
                .threats
                .keys()
                .filter(|k| !current.contains_key(k.as_str()))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::assess;
    use crate::system::SystemDescription;
    use crate::threats::plan;
    use aisec_core::Location;

    #[test]
    fn diff_names_new_fixed_and_moved() {
        let d = SystemDescription::parse(crate::threats::tests_example()).unwrap();
        let m = plan(&d);
        let threats = assess(&m, &[]);
        let f = |p: &str| crate::rules::ASSESS_THREAT_OPEN.finding(Location::path(p), "e");
        let b = Baseline::of("s", Level::High, &threats, &[f("a"), f("b")]);
        let mut now = threats.clone();
        now[0].status = Status::Open;
        now.pop();
        let c = b.diff(&now, &[f("b"), f("c")]);
        assert_eq!(c.new_findings, vec!["AISEC-ASSESS-001|c"]);
        assert_eq!(c.fixed_findings, vec!["AISEC-ASSESS-001|a"]);
        assert_eq!(
            c.status_changes,
            vec![(now[0].threat.id.clone(), Status::NotTested, Status::Open)]
        );
        assert_eq!(c.removed_threats.len(), 1);
        assert!(b.knows(&f("a")) && !b.knows(&f("c")));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.json");
        std::fs::write(&p, serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(Baseline::load(&p).unwrap(), b);
        std::fs::write(&p, "{\"version\": 2}").unwrap();
        assert!(Baseline::load(&p).is_err());
    }
}
