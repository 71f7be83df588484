//! Report renderers: human text, JSON, SARIF 2.1.0, HTML and a MITRE ATLAS
//! Navigator layer. All are pure functions of a finished [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use serde_json::{json, Value};

use crate::finding::{Finding, Severity};
use crate::report::Report;
use crate::taxonomy::{atlas, atlas_label, owasp_label};

/// Output formats every command supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
    /// A self-contained HTML page.
    Html,
    /// A MITRE ATLAS Navigator layer scoring the techniques seen.
    Navigator,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "txt" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            "html" => Ok(Format::Html),
            "navigator" | "atlas" | "layer" => Ok(Format::Navigator),
            _ => Err(format!(
                "unknown format '{s}' (expected text, json, sarif, html or navigator)"
            )),
        }
    }
}

/// Options for the text renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Use ANSI colours.
    pub color: bool,
    /// Show findings below this severity only in the counts.
    pub min_severity: Option<Severity>,
}

/// Renders `report` in `format` (text without colour).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report, TextOptions::default()),
        Format::Json => json_string(report),
        Format::Sarif => {
            serde_json::to_string_pretty(&sarif(report)).expect("SARIF value serialises")
        }
        Format::Html => html(report),
        Format::Navigator => {
            serde_json::to_string_pretty(&navigator(report)).expect("layer value serialises")
        }
    }
}

/// The report as pretty JSON.
pub fn json_string(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("report serialises")
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    }
}

/// Human-readable text: one block per finding, then errors and a summary.
pub fn text(report: &Report, opts: TextOptions) -> String {
    let mut out = String::new();
    let shown: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| opts.min_severity.is_none_or(|m| f.severity >= m))
        .collect();
    for f in &shown {
        let sev = format!("{:<8}", f.severity.as_str().to_uppercase());
        let _ = writeln!(
            out,
            "{} {} {}",
            paint(opts.color, severity_color(f.severity), &sev),
            paint(opts.color, "1", &f.rule_id),
            f.title
        );
        let _ = writeln!(out, "  at:         {}", f.location);
        if !f.evidence.is_empty() {
            for (i, line) in f.evidence.lines().enumerate() {
                let label = if i == 0 { "evidence:" } else { "" };
                let _ = writeln!(out, "  {label:<11} {line}");
            }
        }
        let _ = writeln!(out, "  confidence: {}", f.confidence);
        if !f.atlas.is_empty() {
            let labels: Vec<String> = f.atlas.iter().map(|a| atlas_label(a)).collect();
            let _ = writeln!(out, "  atlas:      {}", labels.join("; "));
        }
        if !f.owasp.is_empty() {
            let labels: Vec<String> = f.owasp.iter().map(|o| owasp_label(o)).collect();
            let _ = writeln!(out, "  owasp:      {}", labels.join("; "));
        }
        if !f.metrics.is_empty() {
            let m: Vec<String> = f
                .metrics
                .iter()
                .map(|(k, v)| format!("{k}={}", compact(v)))
                .collect();
            let _ = writeln!(out, "  measured:   {}", m.join(", "));
        }
        if !f.remediation.is_empty() {
            let _ = writeln!(out, "  fix:        {}", f.remediation);
        }
        out.push('\n');
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "{} {}: {}",
            paint(opts.color, "1;35", "error   "),
            e.subject,
            e.message
        );
    }
    if !report.errors.is_empty() {
        out.push('\n');
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            report
                .summary
                .by_severity
                .get(s)
                .map(|n| format!("{n} {}", s.as_str()))
        })
        .collect();
    let hidden = report.findings.len() - shown.len();
    let _ = writeln!(
        out,
        "aisec {}: {} item(s), {} finding(s){}{}, {} error(s) in {:.2}s",
        report.command,
        report.summary.items,
        report.findings.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        },
        if hidden > 0 {
            format!(", {hidden} below the display threshold")
        } else {
            String::new()
        },
        report.errors.len(),
        report.summary.seconds
    );
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format!("{x:.4}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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

/// The report as a SARIF 2.1.0 log with one run.
pub fn sarif(report: &Report) -> Value {
    // Rules: those the report carries, plus a minimal descriptor for any
    // finding whose rule the producer did not register.
    let mut rules: Vec<Value> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for r in &report.rules {
        index.insert(r.id.to_string(), rules.len());
        let mut tags: Vec<String> = vec!["security".into()];
        tags.extend(r.atlas.iter().map(|a| a.to_string()));
        tags.extend(r.owasp.iter().map(|o| format!("OWASP-{o}")));
        let help = format!(
            "{}\n\nRemediation: {}\n\nTaxonomy: {}",
            r.description,
            r.remediation,
            r.taxonomy_labels().join("; ")
        );
        rules.push(json!({
            "id": r.id,
            "name": r.name,
            "shortDescription": { "text": r.title },
            "fullDescription": { "text": r.full_description() },
            "help": { "text": help, "markdown": r.help_markdown() },
            "helpUri": r.help_uri,
            "defaultConfiguration": { "level": r.default_severity.sarif_level() },
            "properties": {
                "tags": tags,
                "security-severity": r.default_severity.security_severity(),
                "problem.severity": r.default_severity.sarif_level(),
            }
        }));
    }
    for f in &report.findings {
        if !index.contains_key(&f.rule_id) {
            index.insert(f.rule_id.clone(), rules.len());
            rules.push(json!({
                "id": f.rule_id,
                "shortDescription": { "text": f.title },
                "defaultConfiguration": { "level": f.severity.sarif_level() },
                "properties": { "tags": ["security"] }
            }));
        }
    }
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut msg = f.title.clone();
            if !f.evidence.is_empty() {
                msg.push_str(": ");
                msg.push_str(&f.evidence);
            }
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": artifact_uri(&f.location.path) },
                    "region": { "startLine": 1 }
                }
            });
            if let Some(m) = &f.location.member {
                location["logicalLocations"] = json!([{
                    "fullyQualifiedName": m,
                    "kind": "member"
                }]);
            }
            if let Some(off) = f.location.offset {
                location["physicalLocation"]["region"]["byteOffset"] = json!(off);
            }
            let mut props = serde_json::Map::new();
            props.insert("severity".into(), json!(f.severity));
            props.insert("confidence".into(), json!(f.confidence));
            props.insert(
                "security-severity".into(),
                json!(f.severity.security_severity()),
            );
            if !f.atlas.is_empty() {
                props.insert("atlas".into(), json!(f.atlas));
            }
            if !f.owasp.is_empty() {
                props.insert("owasp".into(), json!(f.owasp));
            }
            if !f.metrics.is_empty() {
                props.insert("metrics".into(), json!(f.metrics));
            }
            let fingerprint = fnv1a(&format!(
                "{}|{}|{}",
                f.rule_id,
                f.location.member.as_deref().unwrap_or(""),
                f.evidence
            ));
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": index[&f.rule_id],
                "level": f.severity.sarif_level(),
                "message": { "text": msg },
                "locations": [location],
                "partialFingerprints": { "aisecFindingHash/v1": format!("{fingerprint:016x}") },
                "properties": props,
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": { "text": format!("{}: {}", e.subject, e.message) }
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "aisec",
                "semanticVersion": report.version,
                "informationUri": "https://github.com/aisec/aisec",
                "rules": rules,
            }},
            "automationDetails": { "id": format!("aisec/{}/", report.command) },
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }]
    })
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

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A self-contained HTML page: summary, findings table, errors and the
/// command's data as JSON.
pub fn html(report: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>aisec {cmd} report</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}\
th{{background:#f4f4f4}}.critical{{background:#fdd}}.high{{background:#fee}}.medium{{background:#ffe}}\
code,pre{{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}}\
</style></head><body>\n<h1>aisec {cmd} report</h1>\n",
        cmd = escape_html(&report.command)
    );
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            report
                .summary
                .by_severity
                .get(s)
                .map(|n| format!("{n} {}", s.as_str()))
        })
        .collect();
    let _ = writeln!(
        o,
        "<p>aisec {} &middot; {} item(s) &middot; {} finding(s) {} &middot; {} error(s) &middot; {:.2}s</p>",
        escape_html(&report.version),
        report.summary.items,
        report.findings.len(),
        escape_html(&if counts.is_empty() {
            String::new()
        } else {
            format!("({})", counts.join(", "))
        }),
        report.errors.len(),
        report.summary.seconds
    );
    if !report.findings.is_empty() {
        o.push_str("<table>\n<tr><th>Severity</th><th>Rule</th><th>Location</th><th>Evidence</th><th>ATLAS / OWASP</th><th>Remediation</th></tr>\n");
        for f in &report.findings {
            let taxa: Vec<String> = f
                .atlas
                .iter()
                .map(|a| atlas_label(a))
                .chain(f.owasp.iter().map(|x| owasp_label(x)))
                .collect();
            let mut evidence = escape_html(&f.evidence);
            if !f.metrics.is_empty() {
                let m: Vec<String> = f
                    .metrics
                    .iter()
                    .map(|(k, v)| format!("{k}={}", compact(v)))
                    .collect();
                let _ = write!(
                    evidence,
                    "<br><small>{}</small>",
                    escape_html(&m.join(", "))
                );
            }
            let _ = writeln!(
                o,
                "<tr class=\"{sev}\"><td>{sev} ({conf})</td><td><b>{id}</b><br>{title}</td><td><code>{loc}</code></td><td><code>{ev}</code></td><td>{tax}</td><td>{fix}</td></tr>",
                sev = f.severity.as_str(),
                conf = f.confidence.as_str(),
                id = escape_html(&f.rule_id),
                title = escape_html(&f.title),
                loc = escape_html(&f.location.to_string()),
                ev = evidence,
                tax = escape_html(&taxa.join("; ")),
                fix = escape_html(&f.remediation),
            );
        }
        o.push_str("</table>\n");
    } else {
        o.push_str("<p>No findings.</p>\n");
    }
    if !report.errors.is_empty() {
        o.push_str("<h2>Errors</h2>\n<ul>\n");
        for e in &report.errors {
            let _ = writeln!(
                o,
                "<li><code>{}</code>: {}</li>",
                escape_html(&e.subject),
                escape_html(&e.message)
            );
        }
        o.push_str("</ul>\n");
    }
    if !report.data.is_empty() {
        let data = serde_json::to_string_pretty(&report.data).expect("data serialises");
        let _ = writeln!(o, "<h2>Data</h2>\n<pre>{}</pre>", escape_html(&data));
    }
    o.push_str("</body></html>\n");
    o
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, Location};

    crate::declare_rules! {
        /// ## What it detects
        /// A pickle that calls a function able to run code.
        ///
        /// ## Why it matters
        /// Loading this pickle runs code.
        ///
        /// ## Example
        /// `cos\nsystem\n(S'id'\ntR.`
        static PICKLE = {
            id: "AISEC-TEST-PICKLE",
            name: "pickle-code-execution",
            title: "Pickle calls a code-execution function",
            severity: Critical,
            atlas: &["AML.T0011.000", "AML.T0010.003"],
            owasp: &["LLM03"],
            remediation: "Do not load it; use safetensors.",
        };
    }

    fn sample() -> Report {
        let mut r = Report::new("scan");
        r.version = "0.0.0-test".into();
        r.add_rules(RULES);
        r.extend([
            PICKLE.finding(
                Location::path("models/evil model.pt")
                    .with_member("archive/data.pkl")
                    .with_offset(42),
                "posix.system('id')",
            ),
            PICKLE
                .finding(Location::path("b.pkl"), "builtins.getattr <unresolved>")
                .severity(Severity::High)
                .confidence(Confidence::Medium)
                .metric("opcodes", 12),
        ]);
        r.error("missing.bin", "No such file or directory (os error 2)");
        r.summary.items = 3;
        r.finish();
        r
    }

    #[test]
    fn text_report_snapshot() {
        insta::assert_snapshot!(text(&sample(), TextOptions::default()));
    }

    #[test]
    fn sarif_snapshot() {
        insta::assert_json_snapshot!(sarif(&sample()));
    }

    #[test]
    fn navigator_snapshot() {
        insta::assert_json_snapshot!(navigator(&sample()));
    }

    #[test]
    fn sarif_has_required_shape() {
        let s = sarif(&sample());
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        for res in run["results"].as_array().unwrap() {
            let idx = res["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], res["ruleId"]);
            assert!(["error", "warning", "note", "none"].contains(&res["level"].as_str().unwrap()));
            let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap();
            assert!(!uri.contains(' '), "{uri}");
        }
    }

    #[test]
    fn html_escapes_hostile_evidence() {
        let mut r = Report::new("probe");
        r.extend([PICKLE.finding(Location::path("x"), "<script>alert(1)</script>")]);
        r.finish();
        let h = html(&r);
        assert!(!h.contains("<script>alert"));
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn uris_are_encoded() {
        assert_eq!(artifact_uri("./a b/c#.pt"), "a%20b/c%23.pt");
        assert_eq!(artifact_uri("/tmp/x.pt"), "file:///tmp/x.pt");
        assert_eq!(artifact_uri("https://h/v1"), "https://h/v1");
    }

    #[test]
    fn formats_parse() {
        assert_eq!("SARIF".parse::<Format>().unwrap(), Format::Sarif);
        assert!("pdf".parse::<Format>().is_err());
    }
}
