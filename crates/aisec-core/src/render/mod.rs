//! Report renderers, one file per format: human text ([`text`]), JSON
//! ([`json`]), SARIF 2.1.0 as typed structs ([`sarif`]), a self-contained
//! HTML page ([`html`]) and a MITRE ATLAS Navigator layer ([`navigator`]).
//! All are pure functions of a finished [`Report`]. [`escape`] holds the one
//! function that makes untrusted strings safe to print on a terminal; the
//! text renderer and the CLI's own messages both go through it.

use std::str::FromStr;

use serde_json::Value;

use crate::report::Report;

pub mod escape;
pub mod html;
pub mod json;
pub mod navigator;
pub mod sarif;
pub mod text;

pub use escape::escape_terminal;
pub use html::{escape_html, html};
pub use json::{json_string, jsonl_string};
pub use navigator::navigator;
pub use sarif::{artifact_uri, sarif};
pub use text::{text, TextOptions};

/// Output formats every command supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// The report as JSON.
    Json,
    /// JSON Lines: one finding (then error, then the summary) per line.
    Jsonl,
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
            "jsonl" | "ndjson" | "json-lines" => Ok(Format::Jsonl),
            "sarif" => Ok(Format::Sarif),
            "html" => Ok(Format::Html),
            "navigator" | "atlas" | "layer" => Ok(Format::Navigator),
            _ => Err(format!(
                "unknown format '{s}' (expected text, json, jsonl, sarif, html or navigator)"
            )),
        }
    }
}

/// Renders `report` in `format` (text without colour).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Text => text(report, TextOptions::default()),
        Format::Json => json_string(report),
        Format::Jsonl => json::jsonl_string(report),
        Format::Sarif => sarif::sarif_string(report),
        Format::Html => html(report),
        Format::Navigator => navigator::navigator_string(report),
    }
}

/// `["2 critical", "1 high", ...]`: the summary's counts, most severe first.
fn severity_counts(report: &Report) -> Vec<String> {
    crate::finding::Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            report
                .summary
                .by_severity
                .get(s)
                .map(|n| format!("{n} {}", s.as_str()))
        })
        .collect()
}

/// A metric value in one short token: floats to four decimals, strings bare.
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

/// Pretty JSON of a value built from strings, numbers, maps and sequences.
/// Those cannot fail to serialise (no non-string map keys, no fallible
/// `Serialize` impls); should that ever change, the error is rendered as a
/// JSON string rather than a panic.
fn pretty<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| {
        serde_json::Value::String(format!("aisec: report did not serialise: {e}")).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, Location, Severity};

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

    pub(super) fn sample() -> Report {
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

    /// A finding whose path, member and evidence carry terminal escapes:
    /// a colour reset, a line rewrite (`ESC[2K` + carriage return), a C1
    /// CSI, DEL and a right-to-left override.
    pub(super) fn hostile() -> Report {
        let mut r = Report::new("scan");
        r.add_rules(RULES);
        r.extend([PICKLE.finding(
            Location::path("evil\x1b[2K\rclean.pkl").with_member("a\u{9b}31m\u{202e}lkp.txt"),
            "posix.system\x7f\x1b]0;title\x07",
        )]);
        r.error("bad\x1b[8mname", "hidden\x1b[0m");
        r.finish();
        r
    }

    #[test]
    fn text_report_snapshot() {
        insta::assert_snapshot!(text(&sample(), TextOptions::default()));
    }

    /// The snapshot is of the JSON value (keys sorted), so it shows content,
    /// not field order.
    #[test]
    fn sarif_snapshot() {
        let v = serde_json::to_value(sarif(&sample())).expect("SARIF serialises");
        insta::assert_json_snapshot!(v);
    }

    #[test]
    fn navigator_snapshot() {
        insta::assert_json_snapshot!(navigator(&sample()));
    }

    #[test]
    fn text_output_carries_no_control_characters() {
        for color in [false, true] {
            let out = text(
                &hostile(),
                TextOptions {
                    color,
                    min_severity: None,
                },
            );
            // Colour codes are ours; strip exactly those before checking.
            let mut plain = out.clone();
            for code in ["\x1b[1;31m", "\x1b[1m", "\x1b[0m", "\x1b[1;35m"] {
                plain = plain.replace(code, "");
            }
            for c in plain.chars() {
                assert!(
                    c == '\n' || !escape::is_dangerous(c),
                    "raw {c:?} in text output:\n{out}"
                );
            }
            assert!(out.contains(r"evil\x1b[2K\rclean.pkl"), "{out}");
            assert!(out.contains(r"a\u{9b}31m\u{202e}lkp.txt"), "{out}");
            assert!(out.contains(r"posix.system\x7f\x1b]0;title\x07"), "{out}");
            assert!(out.contains(r"bad\x1b[8mname: hidden\x1b[0m"), "{out}");
        }
    }

    #[test]
    fn formats_parse() {
        assert_eq!("SARIF".parse::<Format>(), Ok(Format::Sarif));
        assert!("pdf".parse::<Format>().is_err());
    }

    #[test]
    fn render_dispatches_every_format() {
        let r = sample();
        assert!(render(&r, Format::Text).contains("AISEC-TEST-PICKLE"));
        let j: Value = serde_json::from_str(&render(&r, Format::Json)).expect("json");
        assert_eq!(j["command"], "scan");
        let s: Value = serde_json::from_str(&render(&r, Format::Sarif)).expect("sarif");
        assert_eq!(s["version"], "2.1.0");
        assert!(render(&r, Format::Html).starts_with("<!doctype html>"));
        let n: Value = serde_json::from_str(&render(&r, Format::Navigator)).expect("layer");
        assert_eq!(n["domain"], "atlas-atlas");
    }
}
