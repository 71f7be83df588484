//! The finding model: what every aisec command reports.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is if it is real. Ordered from least to most severe, so
/// `severity >= Severity::High` reads as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a risk by itself.
    Info,
    /// A weakness with little direct impact.
    Low,
    /// A risk that needs a look.
    Medium,
    /// A likely compromise path.
    High,
    /// Code execution or an equally direct compromise.
    Critical,
}

impl Severity {
    /// All severities, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The SARIF `level` this severity maps to.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Info => "note",
            Severity::Low => "note",
            Severity::Medium => "warning",
            Severity::High | Severity::Critical => "error",
        }
    }

    /// The GitHub code-scanning `security-severity` score (0.0 to 10.0).
    pub fn security_severity(self) -> &'static str {
        match self {
            Severity::Info => "0.0",
            Severity::Low => "3.0",
            Severity::Medium => "5.5",
            Severity::High => "8.0",
            Severity::Critical => "9.5",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when a severity or confidence name is not recognised.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} '{value}' (expected one of: {expected})")]
pub struct ParseLevelError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Severity {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "note" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "moderate" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(ParseLevelError {
                kind: "severity",
                value: s.to_string(),
                expected: "info, low, medium, high, critical",
            }),
        }
    }
}

/// How sure the analysis is that the finding is real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A heuristic that often fires on benign input.
    Low,
    /// Usually right.
    Medium,
    /// Established from the structure of the input itself.
    High,
}

impl Confidence {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Confidence {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Confidence::Low),
            "medium" => Ok(Confidence::Medium),
            "high" => Ok(Confidence::High),
            _ => Err(ParseLevelError {
                kind: "confidence",
                value: s.to_string(),
                expected: "low, medium, high",
            }),
        }
    }
}

/// Where a finding was observed.
///
/// `path` is the file, URL or target the user named; `member` narrows it to
/// an entry inside an archive (nested archives are joined with `!`, as in
/// `model.zip!archive/data.pkl`); `offset` is a byte offset inside that
/// entry where one is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Location {
    /// File path, URL or target name.
    pub path: String,
    /// Entry inside an archive or container, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Byte offset within the member (or the file when there is no member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Location {
    /// A location naming a whole file or target.
    pub fn path(path: impl Into<String>) -> Self {
        Location {
            path: path.into(),
            member: None,
            offset: None,
        }
    }

    /// The same location narrowed to an archive member.
    pub fn with_member(mut self, member: impl Into<String>) -> Self {
        let member = member.into();
        self.member = Some(match self.member.take() {
            Some(outer) => format!("{outer}!{member}"),
            None => member,
        });
        self
    }

    /// The same location with a byte offset.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(m) = &self.member {
            write!(f, "!{m}")?;
        }
        if let Some(o) = self.offset {
            write!(f, "@{o}")?;
        }
        Ok(())
    }
}

/// One observation of a rule at one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The [`Rule::id`](crate::Rule::id) this finding belongs to.
    pub rule_id: String,
    /// Human title; defaults to the rule title and may be made more specific.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// How sure the analysis is.
    pub confidence: Confidence,
    /// Where it was seen.
    pub location: Location,
    /// What was seen: the global, the opcode, the prompt and response...
    pub evidence: String,
    /// MITRE ATLAS technique ids.
    #[serde(default)]
    pub atlas: Vec<String>,
    /// OWASP LLM Top 10 (2025) ids.
    #[serde(default)]
    pub owasp: Vec<String>,
    /// What to do about it.
    pub remediation: String,
    /// Measured numbers behind the finding (robust accuracy, AUC, attack
    /// success rate...). Empty for static findings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

impl Finding {
    /// Overrides the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Overrides the confidence.
    pub fn confidence(mut self, confidence: Confidence) -> Self {
        self.confidence = confidence;
        self
    }

    /// Overrides the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Adds a measured number.
    pub fn metric(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metrics.insert(key.into(), value.into());
        self
    }

    /// Adds an ATLAS technique beyond the rule's own.
    pub fn also_atlas(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !self.atlas.contains(&id) {
            self.atlas.push(id);
        }
        self
    }

    /// A stable key for ordering and de-duplication: location, then rule,
    /// then evidence.
    pub fn sort_key(&self) -> (&Location, &str, &str) {
        (&self.location, &self.rule_id, &self.evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        let err = "bogus".parse::<Severity>().unwrap_err().to_string();
        assert!(err.contains("unknown severity 'bogus'"), "{err}");
    }

    #[test]
    fn nested_members_join_with_bang() {
        let l = Location::path("a.zip")
            .with_member("inner.zip")
            .with_member("m.pkl")
            .with_offset(7);
        assert_eq!(l.to_string(), "a.zip!inner.zip!m.pkl@7");
    }
}
