//! SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format), as typed
//! structs that serialise to the subset of the schema aisec fills in: one
//! run, the tool's rules (from the report's `declare_rules!` metadata),
//! one result per finding with a physical location, an optional logical
//! location for archive members, a stable partial fingerprint, and the
//! run's non-fatal errors as tool execution notifications.
//!
//! Field names follow the specification (sarif-v2.1.0-os, §3); properties
//! GitHub code scanning reads (`security-severity`, `tags`,
//! `problem.severity`) sit in property bags.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::finding::{Confidence, Finding, Severity};
use crate::report::Report;
use crate::rule::Rule;

/// The schema URI written into every log.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF version written into every log.
pub const VERSION: &str = "2.1.0";

/// A SARIF log (§3.13): the document root.
#[derive(Debug, Clone, Serialize)]
pub struct SarifLog {
    /// `$schema`: the JSON schema this log conforms to.
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    /// Always `2.1.0`.
    pub version: &'static str,
    /// The runs; aisec writes one.
    pub runs: Vec<Run>,
}

/// One run of one tool (§3.14).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The tool and its rules.
    pub tool: Tool,
    /// Identifies the kind of run (`aisec/<command>/`), so code scanning
    /// keeps the categories of different commands apart.
    pub automation_details: AutomationDetails,
    /// How the run went, with its non-fatal errors.
    pub invocations: Vec<Invocation>,
    /// One result per finding.
    pub results: Vec<SarifResult>,
}

/// The tool (§3.18): only its driver component.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// aisec itself.
    pub driver: ToolComponent,
}

/// A tool component (§3.19).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolComponent {
    /// `aisec`.
    pub name: &'static str,
    /// aisec's version.
    pub semantic_version: String,
    /// Where to read about the tool.
    pub information_uri: &'static str,
    /// Every rule a result refers to, by index.
    pub rules: Vec<ReportingDescriptor>,
}

/// A rule's metadata (§3.49).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingDescriptor {
    /// The rule id, e.g. `AISEC-PICKLE-001`.
    pub id: String,
    /// The rule's kebab-case name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// One line: the rule's title.
    pub short_description: MultiformatMessage,
    /// The rule's description as prose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_description: Option<MultiformatMessage>,
    /// Description, remediation and taxonomy, as text and markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<MultiformatMessage>,
    /// The rule's page in docs/rules.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<&'static str>,
    /// The level a result takes unless it says otherwise.
    pub default_configuration: Configuration,
    /// Tags and GitHub's severity properties.
    pub properties: RuleProperties,
}

/// A message in plain text and, optionally, markdown (§3.12).
#[derive(Debug, Clone, Serialize)]
pub struct MultiformatMessage {
    /// Plain text.
    pub text: String,
    /// GitHub-flavoured markdown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
}

impl MultiformatMessage {
    fn text(text: impl Into<String>) -> Self {
        MultiformatMessage {
            text: text.into(),
            markdown: None,
        }
    }
}

/// A rule's default configuration (§3.50).
#[derive(Debug, Clone, Serialize)]
pub struct Configuration {
    /// `error`, `warning`, `note` or `none`.
    pub level: &'static str,
}

/// A rule's property bag.
#[derive(Debug, Clone, Serialize)]
pub struct RuleProperties {
    /// `security`, then the ATLAS ids and `OWASP-<id>`.
    pub tags: Vec<String>,
    /// GitHub's 0.0-10.0 score for the rule's default severity.
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    pub security_severity: Option<&'static str>,
    /// The level GitHub shows for the rule.
    #[serde(rename = "problem.severity", skip_serializing_if = "Option::is_none")]
    pub problem_severity: Option<&'static str>,
}

/// One result (§3.27).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's index in the driver's `rules`.
    pub rule_index: usize,
    /// `error`, `warning` or `note`, from the finding's severity.
    pub level: &'static str,
    /// Title and evidence.
    pub message: Message,
    /// Where: one location.
    pub locations: Vec<Location>,
    /// `aisecFindingHash/v1`: FNV-1a of rule, member and evidence.
    pub partial_fingerprints: BTreeMap<&'static str, String>,
    /// aisec's own fields: severity, confidence, taxonomy, metrics.
    pub properties: ResultProperties,
}

/// A plain-text message (§3.11).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The text.
    pub text: String,
}

/// A location (§3.28).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The file, and the byte offset where one is known.
    pub physical_location: PhysicalLocation,
    /// The member inside an archive, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_locations: Option<Vec<LogicalLocation>>,
}

/// A physical location (§3.29).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    /// The file's URI.
    pub artifact_location: ArtifactLocation,
    /// The region; line 1 for binary files.
    pub region: Region,
}

/// An artifact location (§3.4).
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactLocation {
    /// Relative, `file://` or `http(s)://` URI, percent-encoded.
    pub uri: String,
}

/// A region (§3.30).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    /// Always 1: aisec's inputs are mostly binary.
    pub start_line: u64,
    /// The byte offset of the finding, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
}

/// A logical location (§3.33).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogicalLocation {
    /// The member path inside the archive (`a.zip!inner/data.pkl`).
    pub fully_qualified_name: String,
    /// `member`.
    pub kind: &'static str,
}

/// A result's property bag.
#[derive(Debug, Clone, Serialize)]
pub struct ResultProperties {
    /// The finding's severity.
    pub severity: Severity,
    /// The finding's confidence.
    pub confidence: Confidence,
    /// GitHub's 0.0-10.0 score for the finding's severity.
    #[serde(rename = "security-severity")]
    pub security_severity: &'static str,
    /// MITRE ATLAS technique ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub atlas: Vec<String>,
    /// OWASP LLM Top 10 ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub owasp: Vec<String>,
    /// Measured values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

/// An invocation (§3.20).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    /// True: non-fatal errors are notifications, not a failed run.
    pub execution_successful: bool,
    /// The report's errors.
    pub tool_execution_notifications: Vec<Notification>,
}

/// A notification (§3.58).
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// `error` (the report's errors) or `note` (files skipped).
    pub level: &'static str,
    /// `subject: message`.
    pub message: Message,
}

/// Informational notifications a command put in its data (`data.skipped`:
/// files it read but could not scan, by name), at level `note`.
fn notes(report: &Report) -> impl Iterator<Item = Notification> + '_ {
    let skipped = report.data.get("skipped");
    let reason = skipped
        .and_then(|s| s["reason"].as_str())
        .unwrap_or("skipped");
    skipped
        .and_then(|s| s["files"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .map(move |f| Notification {
            level: "note",
            message: Message {
                text: format!("{f}: skipped, {reason}"),
            },
        })
}

/// Percent-encodes a path into a SARIF artifact URI. Relative paths stay
/// relative (GitHub resolves them against the repository root); absolute
/// paths become `file://` URIs; URLs pass through.
pub fn artifact_uri(path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        return path.to_string();
    }
    let norm = path.replace('\\', "/");
    let norm = norm.strip_prefix("./").unwrap_or(&norm);
    let mut enc = String::with_capacity(norm.len());
    for b in norm.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                enc.push(b as char)
            }
            _ => {
                let _ = write!(enc, "%{b:02X}");
            }
        }
    }
    if norm.starts_with('/') {
        format!("file://{enc}")
    } else {
        enc
    }
}

fn descriptor(r: &Rule) -> ReportingDescriptor {
    let mut tags: Vec<String> = vec!["security".into()];
    tags.extend(r.atlas.iter().map(|a| a.to_string()));
    tags.extend(r.owasp.iter().map(|o| format!("OWASP-{o}")));
    let help = format!(
        "{}\n\nRemediation: {}\n\nTaxonomy: {}",
        r.description,
        r.remediation,
        r.taxonomy_labels().join("; ")
    );
    ReportingDescriptor {
        id: r.id.to_string(),
        name: Some(r.name),
        short_description: MultiformatMessage::text(r.title),
        full_description: Some(MultiformatMessage::text(r.full_description())),
        help: Some(MultiformatMessage {
            text: help,
            markdown: Some(r.help_markdown()),
        }),
        help_uri: Some(r.help_uri),
        default_configuration: Configuration {
            level: r.default_severity.sarif_level(),
        },
        properties: RuleProperties {
            tags,
            security_severity: Some(r.default_severity.security_severity()),
            problem_severity: Some(r.default_severity.sarif_level()),
        },
    }
}

/// A minimal descriptor for a finding whose rule the producer did not
/// register with the report.
fn unregistered(f: &Finding) -> ReportingDescriptor {
    ReportingDescriptor {
        id: f.rule_id.clone(),
        name: None,
        short_description: MultiformatMessage::text(f.title.clone()),
        full_description: None,
        help: None,
        help_uri: None,
        default_configuration: Configuration {
            level: f.severity.sarif_level(),
        },
        properties: RuleProperties {
            tags: vec!["security".into()],
            security_severity: None,
            problem_severity: None,
        },
    }
}

fn result(f: &Finding, rule_index: usize) -> SarifResult {
    let mut text = f.title.clone();
    if !f.evidence.is_empty() {
        text.push_str(": ");
        text.push_str(&f.evidence);
    }
    let fingerprint = fnv1a(&format!(
        "{}|{}|{}",
        f.rule_id,
        f.location.member.as_deref().unwrap_or(""),
        f.evidence
    ));
    SarifResult {
        rule_id: f.rule_id.clone(),
        rule_index,
        level: f.severity.sarif_level(),
        message: Message { text },
        locations: vec![Location {
            physical_location: PhysicalLocation {
                artifact_location: ArtifactLocation {
                    uri: artifact_uri(&f.location.path),
                },
                region: Region {
                    start_line: 1,
                    byte_offset: f.location.offset,
                },
            },
            logical_locations: f.location.member.as_ref().map(|m| {
                vec![LogicalLocation {
                    fully_qualified_name: m.clone(),
                    kind: "member",
                }]
            }),
        }],
        partial_fingerprints: BTreeMap::from([(
            "aisecFindingHash/v1",
            format!("{fingerprint:016x}"),
        )]),
        properties: ResultProperties {
            severity: f.severity,
            confidence: f.confidence,
            security_severity: f.severity.security_severity(),
            atlas: f.atlas.clone(),
            owasp: f.owasp.clone(),
            metrics: f.metrics.clone(),
        },
    }
}

/// The report as a SARIF 2.1.0 log with one run.
pub fn sarif(report: &Report) -> SarifLog {
    // Rules: those the report carries, plus a minimal descriptor for any
    // finding whose rule the producer did not register.
    let mut rules: Vec<ReportingDescriptor> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &report.rules {
        index.insert(r.id, rules.len());
        rules.push(descriptor(r));
    }
    let mut results = Vec::with_capacity(report.findings.len());
    for f in &report.findings {
        let i = match index.get(f.rule_id.as_str()) {
            Some(&i) => i,
            None => {
                let i = rules.len();
                index.insert(&f.rule_id, i);
                rules.push(unregistered(f));
                i
            }
        };
        results.push(result(f, i));
    }
    let notifications = report
        .errors
        .iter()
        .map(|e| Notification {
            level: "error",
            message: Message {
                text: format!("{}: {}", e.subject, e.message),
            },
        })
        .chain(notes(report))
        .collect();
    SarifLog {
        schema: SCHEMA,
        version: VERSION,
        runs: vec![Run {
            tool: Tool {
                driver: ToolComponent {
                    name: "aisec",
                    semantic_version: report.version.clone(),
                    information_uri: "https://github.com/aisec/aisec",
                    rules,
                },
            },
            automation_details: AutomationDetails {
                id: format!("aisec/{}/", report.command),
            },
            invocations: vec![Invocation {
                execution_successful: true,
                tool_execution_notifications: notifications,
            }],
            results,
        }],
    }
}

/// The run's automation details (§3.17).
#[derive(Debug, Clone, Serialize)]
pub struct AutomationDetails {
    /// `aisec/<command>/`.
    pub id: String,
}

/// The log as pretty JSON.
pub(crate) fn sarif_string(report: &Report) -> String {
    super::pretty(&sarif(report))
}

/// 64-bit FNV-1a; stable across runs and platforms, for SARIF fingerprints.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{hostile, sample};
    use serde_json::Value;

    fn value(r: &Report) -> Value {
        serde_json::to_value(sarif(r)).expect("SARIF serialises")
    }

    /// The properties SARIF 2.1.0 requires (sarif-schema-2.1.0.json
    /// `required` lists) of every object aisec writes, and the cross
    /// references the spec asks to hold.
    #[test]
    fn sarif_has_the_required_2_1_0_fields() {
        for r in [sample(), hostile()] {
            let s = value(&r);
            assert_eq!(s["version"], "2.1.0");
            assert_eq!(s["$schema"], SCHEMA);
            let runs = s["runs"].as_array().expect("runs is an array");
            assert_eq!(runs.len(), 1);
            let run = &runs[0];
            let driver = &run["tool"]["driver"];
            assert_eq!(driver["name"], "aisec");
            let rules = driver["rules"].as_array().expect("rules");
            for rule in rules {
                assert!(rule["id"].is_string());
                assert!(rule["shortDescription"]["text"].is_string());
            }
            let results = run["results"].as_array().expect("results");
            assert_eq!(results.len(), r.findings.len());
            for res in results {
                assert!(res["message"]["text"].is_string());
                let idx = res["ruleIndex"].as_u64().expect("ruleIndex") as usize;
                assert_eq!(rules[idx]["id"], res["ruleId"]);
                let level = res["level"].as_str().expect("level");
                assert!(["error", "warning", "note", "none"].contains(&level));
                let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .expect("uri");
                assert!(!uri.contains(' '), "{uri}");
                assert!(!uri.chars().any(|c| c.is_control()), "{uri}");
                assert!(
                    res["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64()
                        >= Some(1)
                );
            }
            let inv = &run["invocations"][0];
            assert!(inv["executionSuccessful"].is_boolean());
            for n in inv["toolExecutionNotifications"].as_array().expect("notes") {
                assert!(n["message"]["text"].is_string());
            }
        }
    }

    #[test]
    fn unregistered_rules_get_a_minimal_descriptor() {
        let mut r = Report::new("scan");
        let rule = crate::render::tests::RULES[0];
        r.extend([rule.finding(crate::finding::Location::path("a"), "x")]);
        r.finish();
        let s = value(&r);
        let rules = s["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0]["id"], "AISEC-TEST-PICKLE");
        assert!(rules[0].get("helpUri").is_none());
        assert_eq!(s["runs"][0]["results"][0]["ruleIndex"], 0);
    }

    #[test]
    fn uris_are_encoded() {
        assert_eq!(artifact_uri("./a b/c#.pt"), "a%20b/c%23.pt");
        assert_eq!(artifact_uri("/tmp/x.pt"), "file:///tmp/x.pt");
        assert_eq!(artifact_uri("https://h/v1"), "https://h/v1");
    }
}
