//! The human-readable text report: one block per finding, then errors and a
//! summary line. Every string that can come from an input (paths, member
//! names, evidence, titles, metric values, error messages) is passed through
//! [`escape_terminal`] so a crafted name cannot rewrite the terminal.

use std::fmt::Write as _;

use super::escape::escape_terminal as esc;
use super::metrics_line;
use crate::finding::{Finding, Severity};
use crate::report::Report;
use crate::taxonomy::{atlas_label, owasp_label};

/// Options for the text renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Use ANSI colours.
    pub color: bool,
    /// Show findings below this severity only in the counts.
    pub min_severity: Option<Severity>,
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
            paint(opts.color, "1", &esc(&f.rule_id)),
            esc(&f.title)
        );
        let _ = writeln!(out, "  at:         {}", esc(&f.location.to_string()));
        if !f.evidence.is_empty() {
            // `lines` ends a line at '\n' (dropping a '\r' just before it);
            // a lone '\r' stays in the line and is escaped like the rest.
            for (i, line) in f.evidence.lines().enumerate() {
                let label = if i == 0 { "evidence:" } else { "" };
                let _ = writeln!(out, "  {label:<11} {}", esc(line));
            }
        }
        let _ = writeln!(out, "  confidence: {}", f.confidence);
        if !f.atlas.is_empty() {
            let labels: Vec<String> = f.atlas.iter().map(|a| atlas_label(a)).collect();
            let _ = writeln!(out, "  atlas:      {}", esc(&labels.join("; ")));
        }
        if !f.owasp.is_empty() {
            let labels: Vec<String> = f.owasp.iter().map(|o| owasp_label(o)).collect();
            let _ = writeln!(out, "  owasp:      {}", esc(&labels.join("; ")));
        }
        if let Some(m) = metrics_line(f) {
            let _ = writeln!(out, "  measured:   {}", esc(&m));
        }
        if !f.remediation.is_empty() {
            let _ = writeln!(out, "  fix:        {}", esc(&f.remediation));
        }
        out.push('\n');
    }
    for e in &report.errors {
        let _ = writeln!(
            out,
            "{} {}: {}",
            paint(opts.color, "1;35", "error   "),
            esc(&e.subject),
            esc(&e.message)
        );
    }
    if !report.errors.is_empty() {
        out.push('\n');
    }
    let counts = super::severity_counts(report);
    let hidden = report.findings.len() - shown.len();
    let _ = writeln!(
        out,
        "aisec {}: {} item(s), {} finding(s){}{}, {} error(s) in {:.2}s",
        esc(&report.command),
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
