//! Shared report options (`--format`, `--output`, `--fail-on`) and the
//! function that renders a report and picks the exit code.

use anyhow::Context as _;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use aisec_core::render::{self, Format, TextOptions};
use aisec_core::{Report, Severity};

/// Report options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Report format: text, json, jsonl (JSON Lines: one finding a line, then a summary line), sarif, html or navigator (an ATLAS Navigator layer).
    #[arg(long, short = 'f', default_value = "text", value_parser = parse_format)]
    pub format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Exit with status 1 when a finding is at or above SEVERITY (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", default_value = "high")]
    pub fail_on: Severity,

    /// Never fail on findings (exit 0 unless an error happens).
    #[arg(long, conflicts_with = "fail_on")]
    pub no_fail: bool,

    /// In text output, list only findings at or above SEVERITY (all are counted).
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<Severity>,

    /// Colour in text output: auto (only on a terminal, and not when NO_COLOR is set), always or never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
}

/// Report options of commands that report no findings to fail on (train)
/// or never fail on them (demo): the same `--format`, `-o` and `--color`,
/// without `--fail-on` / `--no-fail`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Report format: text, json, jsonl (JSON Lines: one finding a line, then a summary line), sarif, html or navigator (an ATLAS Navigator layer).
    #[arg(long, short = 'f', default_value = "text", value_parser = parse_format)]
    pub format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// In text output, list only findings at or above SEVERITY (all are counted).
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<Severity>,

    /// Colour in text output: auto (only on a terminal, and not when NO_COLOR is set), always or never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
}

impl ReportArgs {
    /// The same options as [`OutputArgs`] that never fail on findings.
    pub fn to_output(&self) -> OutputArgs {
        OutputArgs {
            format: self.format,
            output: self.output.clone(),
            fail_on: Severity::Critical,
            no_fail: true,
            min_severity: self.min_severity,
            color: self.color.clone(),
        }
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

/// A command's own sections appended to the rendered report: `text` to
/// text output (the evasion curve as a table), `html` (a trusted fragment
/// the command built and escaped itself, such as an inline SVG chart) to
/// HTML output, before the data section. JSON and SARIF carry the same
/// numbers in the report's data.
#[derive(Debug, Default, Clone)]
pub struct Tail {
    /// Appended to text output.
    pub text: String,
    /// Inserted into HTML output.
    pub html: String,
}

impl Tail {
    /// A text-only tail.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            html: String::new(),
        }
    }
}

/// Renders `report` as asked and returns the process exit code.
pub fn emit(report: &Report, args: &OutputArgs) -> anyhow::Result<i32> {
    emit_with_tail(report, args, &Tail::default())
}

/// Puts `fragment` into an HTML page before its data section (or its end).
fn insert_html(page: &mut String, fragment: &str) {
    if fragment.is_empty() {
        return;
    }
    let at = page
        .find("<h2>Data</h2>")
        .or_else(|| page.rfind("</body>"))
        .unwrap_or(page.len());
    page.insert_str(at, fragment);
}

/// [`emit`], with a command's own sections (see [`Tail`]).
pub fn emit_with_tail(report: &Report, args: &OutputArgs, tail: &Tail) -> anyhow::Result<i32> {
    let tail_text = tail.text.as_str();
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let color = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = match args.format {
        Format::Text => {
            let mut t = render::text(
                report,
                TextOptions {
                    color,
                    min_severity: args.min_severity,
                },
            );
            if !tail_text.is_empty() {
                if !t.ends_with('\n') {
                    t.push('\n');
                }
                t.push('\n');
                t.push_str(tail_text);
            }
            t
        }
        Format::Html => {
            let mut s = render::render(report, Format::Html);
            insert_html(&mut s, &tail.html);
            s
        }
        other => {
            let mut s = render::render(report, other);
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write report to {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`aisec scan … | head`) is not an error worth a panic.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
    let fail_on = if args.no_fail {
        None
    } else {
        Some(args.fail_on)
    };
    Ok(report.exit_status(fail_on).code())
}
