//! A MITRE ATLAS Navigator layer (layer format 4.5): every technique seen,
//! scored by the highest severity of its findings.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::finding::Severity;
use crate::report::Report;
use crate::taxonomy::atlas;

/// A MITRE ATLAS Navigator layer: every technique seen, scored by the
/// highest severity of its findings (1 to 5), with the finding count and
/// rules in the comment.
pub fn navigator(report: &Report) -> Value {
    let mut seen: BTreeMap<&str, (Severity, usize, Vec<&str>)> = BTreeMap::new();
    for f in &report.findings {
        for a in &f.atlas {
            let e = seen
                .entry(a.as_str())
                .or_insert((f.severity, 0, Vec::new()));
            e.0 = e.0.max(f.severity);
            e.1 += 1;
            if !e.2.contains(&f.rule_id.as_str()) {
                e.2.push(f.rule_id.as_str());
            }
        }
    }
    let mut techniques = Vec::new();
    for (id, (sev, n, rules)) in &seen {
        let tactics: &[&str] = atlas(id).map(|t| t.tactics).unwrap_or(&[]);
        let score = match sev {
            Severity::Info => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        };
        let comment = format!("{n} finding(s), max {sev}; rules: {}", rules.join(", "));
        if tactics.is_empty() {
            techniques.push(json!({"techniqueID": id, "score": score, "comment": comment}));
        }
        for t in tactics {
            techniques.push(json!({
                "techniqueID": id,
                "tactic": t,
                "score": score,
                "comment": comment,
                "enabled": true,
            }));
        }
    }
    json!({
        "name": format!("aisec {}", report.command),
        "versions": { "layer": "4.5", "navigator": "4.9.1" },
        "domain": "atlas-atlas",
        "description": format!("Techniques observed by aisec {} {}", report.command, report.version),
        "sorting": 3,
        "hideDisabled": false,
        "gradient": { "colors": ["#ffe766", "#ff6666"], "minValue": 1, "maxValue": 5 },
        "legendItems": [
            {"label": "info/low", "color": "#ffe766"},
            {"label": "critical", "color": "#ff6666"}
        ],
        "techniques": techniques,
    })
}

/// The layer as pretty JSON.
pub(crate) fn navigator_string(report: &Report) -> String {
    super::pretty(&navigator(report))
}
