//! A report: the findings of one command run, the rules they cite, the
//! errors met on the way and command-specific data (metrics, curves).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::rule::Rule;

/// A problem met while running that did not stop the run: an unreadable
/// file, a truncated archive, an endpoint that kept failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportError {
    /// What the error is about (a path, a URL, a probe).
    pub subject: String,
    /// The message, already human-readable.
    pub message: String,
}

/// Counts shown at the end of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// How many inputs (files, examples, prompts...) were examined.
    pub items: u64,
    /// Bytes read, where that is meaningful.
    #[serde(default)]
    pub bytes: u64,
    /// Findings per severity.
    pub by_severity: BTreeMap<Severity, u64>,
    /// Wall-clock seconds the run took.
    #[serde(default)]
    pub seconds: f64,
}

/// The outcome of a command run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The aisec command that produced it, e.g. `scan`.
    pub command: String,
    /// aisec's version.
    pub version: String,
    /// The findings, sorted by location then rule.
    pub findings: Vec<Finding>,
    /// Every rule a finding cites (and any others the command ran).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<&'static Rule>,
    /// Non-fatal errors.
    pub errors: Vec<ReportError>,
    /// Counts.
    pub summary: Summary,
    /// Command-specific data: metrics, curves, per-probe rates. Rendered in
    /// JSON and HTML; text renderers show the findings only.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// An empty report for `command`.
    pub fn new(command: impl Into<String>) -> Self {
        Report {
            command: command.into(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            findings: Vec::new(),
            rules: Vec::new(),
            errors: Vec::new(),
            summary: Summary::default(),
            data: serde_json::Map::new(),
        }
    }

    /// Records the rules this run used; duplicates are ignored.
    pub fn add_rules(&mut self, rules: &[&'static Rule]) {
        for &r in rules {
            if !self.rules.iter().any(|x| x.id == r.id) {
                self.rules.push(r);
            }
        }
    }

    /// Adds findings.
    pub fn extend(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
    }

    /// Adds a non-fatal error.
    pub fn error(&mut self, subject: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ReportError {
            subject: subject.into(),
            message: message.into(),
        });
    }

    /// Sorts findings into a stable order, drops exact duplicates and
    /// recomputes the per-severity counts. Call once before rendering.
    pub fn finish(&mut self) {
        self.findings.sort_by(|a, b| {
            a.sort_key()
                .cmp(&b.sort_key())
                .then(b.severity.cmp(&a.severity))
        });
        self.findings.dedup_by(|a, b| a.sort_key() == b.sort_key());
        self.errors
            .sort_by(|a, b| (&a.subject, &a.message).cmp(&(&b.subject, &b.message)));
        let mut by = BTreeMap::new();
        for f in &self.findings {
            *by.entry(f.severity).or_insert(0) += 1;
        }
        self.summary.by_severity = by;
        self.rules.sort_by_key(|r| r.id);
    }

    /// Adds another run's findings, rules, errors, counts and data to this
    /// report, then [`finish`](Report::finish)es it. `aisec demo` builds its
    /// report this way from one report per section, `aisec report merge`
    /// from shard reports.
    ///
    /// `data` is merged key by key, and nothing is dropped:
    /// - a key only one side has is kept;
    /// - equal values are kept once;
    /// - the counters in [`ADDITIVE_DATA_KEYS`] are added up (numbers
    ///   summed; maps of counts added key by key; lists concatenated);
    /// - the flags in [`FLAG_DATA_KEYS`] (`incomplete`, `failed`) are
    ///   or-ed: the merged run is incomplete if any part was;
    /// - any other pair of different values is kept per source, in merge
    ///   order, as `{"per_source": [this, other, ...]}`.
    pub fn merge(&mut self, other: Report) {
        self.add_rules(&other.rules);
        self.findings.extend(other.findings);
        self.errors.extend(other.errors);
        self.summary.items += other.summary.items;
        self.summary.bytes += other.summary.bytes;
        self.summary.seconds += other.summary.seconds;
        for (k, theirs) in other.data {
            let merged = match self.data.remove(&k) {
                None => theirs,
                Some(ours) if ADDITIVE_DATA_KEYS.contains(&k.as_str()) => add_counts(ours, theirs),
                Some(serde_json::Value::Bool(a)) if FLAG_DATA_KEYS.contains(&k.as_str()) => {
                    match theirs {
                        serde_json::Value::Bool(b) => serde_json::Value::Bool(a || b),
                        other => keep_both(serde_json::Value::Bool(a), other),
                    }
                }
                Some(ours) => keep_both(ours, theirs),
            };
            self.data.insert(k, merged);
        }
        self.finish();
    }

    /// The most severe finding's severity, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// The rule metadata for a finding, if the report carries it.
    pub fn rule(&self, id: &str) -> Option<&'static Rule> {
        self.rules.iter().copied().find(|r| r.id == id)
    }

    /// The CI exit status for a `--fail-on` threshold.
    pub fn exit_status(&self, fail_on: Option<Severity>) -> ExitStatus {
        match (fail_on, self.max_severity()) {
            (Some(t), Some(m)) if m >= t => ExitStatus::Findings,
            _ => ExitStatus::Clean,
        }
    }
}

/// `data` keys that hold counts, which [`Report::merge`] adds up:
/// `aisec scan`'s per-format file counts, scanned and skipped files, and the
/// byte counts of remote scans.
pub const ADDITIVE_DATA_KEYS: &[&str] = &[
    "bytes_read",
    "bytes_stored",
    "formats",
    "scanned",
    "skipped",
    "sources",
    "unchanged",
];

/// `data` flags that [`Report::merge`] or-s: the exit code reads them.
pub const FLAG_DATA_KEYS: &[&str] = &["incomplete", "failed"];

/// The sum of two counts: integers added, objects added key by key, lists
/// concatenated; equal values kept; anything else kept per source.
fn add_counts(ours: serde_json::Value, theirs: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) if a.is_u64() && b.is_u64() => {
            match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => Value::from(x.saturating_add(y)),
                _ => keep_both(Value::Number(a), Value::Number(b)),
            }
        }
        (Value::Object(mut a), Value::Object(b)) if !is_per_source(&a) => {
            for (k, v) in b {
                let m = match a.remove(&k) {
                    None => v,
                    Some(mine) => add_counts(mine, v),
                };
                a.insert(k, m);
            }
            Value::Object(a)
        }
        (Value::Array(mut a), Value::Array(b)) => {
            a.extend(b);
            Value::Array(a)
        }
        (a, b) => keep_both(a, b),
    }
}

/// Two different values of one key, both kept: `{"per_source": [..]}`,
/// extended when `ours` already is one.
fn keep_both(ours: serde_json::Value, theirs: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if ours == theirs {
        return ours;
    }
    let mut list = match ours {
        Value::Object(mut m) if is_per_source(&m) => match m.remove("per_source") {
            Some(Value::Array(v)) => v,
            _ => Vec::new(),
        },
        other => vec![other],
    };
    list.push(theirs);
    serde_json::json!({ "per_source": list })
}

/// Whether an object is [`keep_both`]'s wrapper.
fn is_per_source(m: &serde_json::Map<String, serde_json::Value>) -> bool {
    m.len() == 1 && m.get("per_source").is_some_and(serde_json::Value::is_array)
}

/// The process exit codes every aisec command shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: nothing at or above the threshold.
    Clean,
    /// 1: findings at or above the `--fail-on` threshold.
    Findings,
    /// 2: bad usage, or an input that could not be read at all.
    Error,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::Findings => 1,
            ExitStatus::Error => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Location;

    crate::declare_rules! {
        /// A rule for these tests.
        static R = {
            id: "AISEC-TEST-001",
            name: "t",
            title: "t",
            severity: Medium,
            atlas: &[],
            owasp: &[],
            remediation: "",
        };
    }

    #[test]
    fn merging_adds_counters_and_keeps_every_other_value() {
        use serde_json::json;
        let run = |data: serde_json::Value| {
            let mut r = Report::new("scan");
            r.summary.items = 1;
            if let serde_json::Value::Object(m) = data {
                r.data = m;
            }
            r
        };
        let mut a = run(json!({
            "bytes_read": 10, "bytes_stored": 1000,
            "formats": {"pickle": 2, "zip": 1},
            "skipped": {"count": 1, "reason": "not a model", "files": ["a.txt"]},
            "model": "a.onnx", "same": 7, "only_a": true,
        }));
        a.merge(run(json!({
            "bytes_read": 5, "bytes_stored": 500,
            "formats": {"zip": 3, "gguf": 1},
            "skipped": {"count": 2, "reason": "not a model", "files": ["b.txt", "c.md"]},
            "model": "b.onnx", "same": 7, "only_b": [1],
        })));
        a.merge(run(json!({"model": "c.onnx", "bytes_read": 1})));
        let d = serde_json::Value::Object(a.data.clone());
        assert_eq!(d["bytes_read"], json!(16));
        assert_eq!(d["bytes_stored"], json!(1500));
        assert_eq!(d["formats"], json!({"pickle": 2, "zip": 4, "gguf": 1}));
        assert_eq!(
            d["skipped"],
            json!({"count": 3, "reason": "not a model", "files": ["a.txt", "b.txt", "c.md"]})
        );
        // Different values of a key that is not a counter: all kept, in order.
        assert_eq!(
            d["model"],
            json!({"per_source": ["a.onnx", "b.onnx", "c.onnx"]})
        );
        assert_eq!(d["same"], json!(7));
        assert_eq!(d["only_a"], json!(true));
        assert_eq!(d["only_b"], json!([1]));
        assert_eq!(a.summary.items, 3);
        // Flags: any part incomplete makes the whole incomplete.
        let mut c = run(json!({"incomplete": false}));
        c.merge(run(json!({"incomplete": true})));
        c.merge(run(json!({"incomplete": false})));
        assert_eq!(c.data["incomplete"], json!(true));
        // A counter that is not a count (a string) is kept per source too.
        let mut b = run(json!({"scanned": 2}));
        b.merge(run(json!({"scanned": "n/a"})));
        assert_eq!(b.data["scanned"], json!({"per_source": [2, "n/a"]}));
    }

    #[test]
    fn fail_on_threshold_sets_exit_code() {
        let mut r = Report::new("scan");
        r.add_rules(RULES);
        assert_eq!(r.rule("AISEC-TEST-001"), Some(&R));
        assert_eq!(r.exit_status(Some(Severity::Low)), ExitStatus::Clean);
        r.extend([R.finding(Location::path("a"), "x")]);
        r.finish();
        assert_eq!(r.exit_status(Some(Severity::Medium)).code(), 1);
        assert_eq!(r.exit_status(Some(Severity::High)).code(), 0);
        assert_eq!(r.exit_status(None).code(), 0);
    }

    #[test]
    fn merge_combines_sections() {
        let mut a = Report::new("demo");
        a.add_rules(RULES);
        a.extend([R.finding(Location::path("b"), "x")]);
        a.summary.items = 2;
        a.data.insert("scan".into(), serde_json::json!(1));
        let mut b = Report::new("attack");
        b.add_rules(RULES);
        b.extend([
            R.finding(Location::path("a"), "y").severity(Severity::High),
            R.finding(Location::path("b"), "x"),
        ]);
        b.error("u", "down");
        b.summary.items = 3;
        b.summary.bytes = 10;
        b.data.insert("attack".into(), serde_json::json!(2));
        a.merge(b);
        assert_eq!(a.command, "demo");
        assert_eq!(a.rules.len(), 1);
        // The duplicate finding is dropped and the rest sorted by location.
        assert_eq!(a.findings.len(), 2);
        assert_eq!(a.findings[0].location.path, "a");
        assert_eq!(a.errors.len(), 1);
        assert_eq!((a.summary.items, a.summary.bytes), (5, 10));
        assert_eq!(a.summary.by_severity[&Severity::High], 1);
        assert_eq!(a.data.len(), 2);
    }

    #[test]
    fn finish_sorts_dedups_and_counts() {
        let mut r = Report::new("scan");
        r.extend([
            R.finding(Location::path("b"), "x"),
            R.finding(Location::path("a"), "x")
                .severity(Severity::Critical),
            R.finding(Location::path("b"), "x"),
        ]);
        r.finish();
        assert_eq!(r.findings.len(), 2);
        assert_eq!(r.findings[0].location.path, "a");
        assert_eq!(r.summary.by_severity[&Severity::Critical], 1);
        assert_eq!(r.summary.by_severity[&Severity::Medium], 1);
    }
}
