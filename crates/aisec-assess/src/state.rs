//! The resume state of `aisec assess`: the results of the checks that
//! finished, saved after each one, so an interrupted assessment continues
//! where it stopped. A state written for a different description (or
//! budget) is ignored, never mixed in.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::status::{CheckResult, Outcome};
use crate::AssessError;

/// Largest state file read.
pub const MAX_STATE_BYTES: u64 = 256 << 20;

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Format version (1).
    pub version: u32,
    /// [`fingerprint`] of the description the results belong to.
    pub description: String,
    /// Finished checks (done or failed; interrupted ones are not kept).
    pub results: Vec<CheckResult>,
}

/// A stable fingerprint of a description's text (FNV-1a 64, hex).
pub fn fingerprint(text: &str) -> String {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        x ^= u64::from(b);
        x = x.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{x:016x}")
}

impl RunState {
    /// An empty state for a description.
    pub fn new(description: &str) -> Self {
        RunState {
            version: 1,
            description: fingerprint(description),
            results: Vec::new(),
        }
    }

    /// Reads the state at `path` when it exists and belongs to
    /// `description`; `Ok(None)` when there is none or it is for another
    /// description.
    pub fn load(path: &Path, description: &str) -> Result<Option<RunState>, AssessError> {
        if !path.exists() {
            return Ok(None);
        }
        let text = crate::system::read_bounded(path, MAX_STATE_BYTES)?;
        let s: RunState = serde_json::from_str(&text).map_err(|e| AssessError::File {
            what: "assess state file",
            message: format!("{}: {e}", path.display()),
        })?;
        if s.version != 1 || s.description != fingerprint(description) {
            return Ok(None);
        }
        Ok(Some(s))
    }

    /// Records a result (replacing an earlier one of the same check);
    /// interrupted results are not recorded.
    pub fn record(&mut self, r: &CheckResult) {
        if r.outcome == Outcome::Interrupted {
            return;
        }
        self.results.retain(|x| x.check != r.check);
        self.results.push(r.clone());
    }

    /// Writes the state atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), AssessError> {
        let io = |e| AssessError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_vec(self).map_err(|e| AssessError::File {
            what: "assess state file",
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threats::{CheckKind, CheckRef};

    fn result(outcome: Outcome) -> CheckResult {
        CheckResult {
            check: CheckRef {
                kind: CheckKind::Scan,
                component: "models".into(),
            },
            outcome,
            exercised: vec!["AML.T0011".into()],
            findings: vec![],
            metrics: [("files".to_string(), 3.0)].into(),
            data: serde_json::Value::Null,
            seconds: 1.0,
        }
    }

    #[test]
    fn state_round_trips_and_is_tied_to_its_description() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert!(RunState::load(&p, "a").unwrap().is_none());
        let mut s = RunState::new("a");
        s.record(&result(Outcome::Interrupted));
        assert!(s.results.is_empty(), "interrupted checks run again");
        s.record(&result(Outcome::Done));
        s.record(&result(Outcome::Done));
        assert_eq!(s.results.len(), 1);
        s.save(&p).unwrap();
        assert_eq!(RunState::load(&p, "a").unwrap().unwrap(), s);
        assert!(
            RunState::load(&p, "b").unwrap().is_none(),
            "another description"
        );
        std::fs::write(&p, "{").unwrap();
        assert!(RunState::load(&p, "a").is_err());
    }
}
