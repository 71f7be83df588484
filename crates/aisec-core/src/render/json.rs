//! The report as JSON: the serde form of [`Report`], pretty-printed; and
//! as JSON Lines (<https://jsonlines.org>), one compact object a line, for
//! tools that consume findings as a stream (`jq -c`, log shippers).

use serde_json::{json, Value};

use crate::report::Report;

/// The report as JSON Lines: one line per finding (`{"type": "finding",
/// ...the finding's fields}`), then one per error (`{"type": "error",
/// "subject", "message"}`), and a last line `{"type": "summary",
/// "command", "version", "summary", "incomplete"}`. Each line is a
/// complete JSON object; no line holds a raw newline.
pub fn jsonl_string(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |v: Value| {
        out.push_str(&v.to_string());
        out.push('\n');
    };
    for f in &report.findings {
        let mut v = serde_json::to_value(f).unwrap_or_else(|e| json!({ "error": e.to_string() }));
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), Value::String("finding".into()));
        }
        line(v);
    }
    for e in &report.errors {
        line(json!({ "type": "error", "subject": e.subject, "message": e.message }));
    }
    line(json!({
        "type": "summary",
        "command": report.command,
        "version": report.version,
        "summary": report.summary,
        "incomplete": report.data.get("incomplete") == Some(&Value::Bool(true)),
    }));
    out
}

/// The report as pretty JSON.
pub fn json_string(report: &Report) -> String {
    super::pretty(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, Finding, Location, Severity};

    #[test]
    fn jsonl_is_one_object_a_line_findings_then_summary() {
        let mut r = Report::new("scan");
        let f = Finding {
            rule_id: "x.rule".into(),
            title: "title\nwith a newline".into(),
            severity: Severity::High,
            confidence: Confidence::High,
            location: Location::path("a\nb.pkl"),
            evidence: "e".into(),
            atlas: vec!["AML.T0011".into()],
            owasp: vec![],
            remediation: "r".into(),
            metrics: Default::default(),
        };
        r.findings.push(f);
        r.error("c.bin", "unreadable");
        r.finish();
        let s = jsonl_string(&r);
        let lines: Vec<Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert_eq!(lines[0]["type"], "finding");
        assert_eq!(lines[0]["rule_id"], "x.rule");
        assert_eq!(lines[0]["title"], "title\nwith a newline");
        assert_eq!(lines[1]["type"], "error");
        assert_eq!(lines[2]["type"], "summary");
        assert_eq!(lines[2]["command"], "scan");
        assert_eq!(lines[2]["incomplete"], false);
    }
}
