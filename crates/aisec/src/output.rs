//! Shared report options (`--format`, `--output`, `--fail-on`) and the
//! function that renders a report and picks the exit code.

use anyhow::Context as _;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use aisec_core::render::{self, Format, TextOptions};
use aisec_core::{Finding, Report, Severity};

/// Report options every command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Report format: text, json, jsonl (JSON Lines, streamed: one finding a line as the work is done, then a summary line), sarif, html or navigator (an ATLAS Navigator layer).
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
    /// Report format: text, json, jsonl (JSON Lines, streamed: one finding a line as the work is done, then a summary line), sarif, html or navigator (an ATLAS Navigator layer).
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

/// JSON Lines written while the work runs (`--format jsonl`), so a slow
/// or interrupted run already shows what it found: `scan` writes a file's
/// findings when the file is done, `probe` one `{"type": "attempt"}` line
/// per attempt as it is judged. At the end [`emit`] writes the report's
/// lines that were not streamed yet (findings built at the end, errors)
/// and the summary line, whose `incomplete` says whether the run covered
/// all of its work. One per process: the command starts it before the
/// work, and output goes to `-o FILE` (created at the start) or stdout,
/// flushed after every line.
pub struct JsonlStream {
    out: Mutex<Box<dyn Write + Send>>,
    written: Mutex<HashSet<String>>,
}

static STREAM: OnceLock<Arc<JsonlStream>> = OnceLock::new();

/// The finding's JSON Lines form, exactly as
/// [`aisec_core::render::jsonl_string`] writes it.
fn finding_line(f: &Finding) -> String {
    let mut v =
        serde_json::to_value(f).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }));
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("type".into(), serde_json::Value::String("finding".into()));
    }
    v.to_string()
}

impl JsonlStream {
    /// Starts streaming when `args` asks for JSON Lines (`None` otherwise);
    /// `-o FILE` is created now.
    pub fn start(args: &OutputArgs) -> anyhow::Result<Option<Arc<JsonlStream>>> {
        if args.format != Format::Jsonl {
            return Ok(None);
        }
        let out: Box<dyn Write + Send> = match &args.output {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot write report to {}", path.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        let s = STREAM
            .get_or_init(|| {
                Arc::new(JsonlStream {
                    out: Mutex::new(out),
                    written: Mutex::new(HashSet::new()),
                })
            })
            .clone();
        Ok(Some(s))
    }

    /// The stream started in this process, if any.
    pub fn active() -> Option<Arc<JsonlStream>> {
        STREAM.get().cloned()
    }

    fn write_line(&self, line: &str) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed pipe (`aisec scan … | head`) is not an error worth a panic.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Writes findings now (each distinct line once).
    pub fn findings(&self, findings: &[Finding]) {
        for f in findings {
            let line = finding_line(f);
            let new = self
                .written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(line.clone());
            if new {
                self.write_line(&line);
            }
        }
    }

    /// Writes another kind of line now (an object with its own `type`).
    pub fn line(&self, v: &serde_json::Value) {
        self.write_line(&v.to_string());
    }

    /// The report's JSON Lines that were not streamed: findings not
    /// written yet, errors, and the summary line.
    fn rest(&self, report: &Report) -> String {
        let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for line in render::jsonl_string(report).lines() {
            if !written.contains(line) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
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
    let fail_on = if args.no_fail {
        None
    } else {
        Some(args.fail_on)
    };
    if args.format == Format::Jsonl {
        if let Some(s) = JsonlStream::active() {
            let rest = s.rest(report);
            for line in rest.lines() {
                s.write_line(line);
            }
            return Ok(report.exit_status(fail_on).code());
        }
    }
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
    Ok(report.exit_status(fail_on).code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_core::finding::Location;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn streamed_lines_are_the_report_lines_and_are_not_repeated_at_the_end() {
        let rule = aisec_attack::RULES[0];
        let a = rule.finding(Location::path("a.pkl"), "first");
        let b = rule.finding(Location::path("b.pkl"), "second");
        let buf = Buf::default();
        let s = JsonlStream {
            out: Mutex::new(Box::new(buf.clone())),
            written: Mutex::new(HashSet::new()),
        };
        // `a` streams while the work runs (twice: written once).
        s.findings(std::slice::from_ref(&a));
        s.findings(std::slice::from_ref(&a));
        let mut r = Report::new("scan");
        r.add_rules(aisec_attack::RULES);
        r.extend([b, a]);
        r.error("c.bin", "unreadable");
        r.finish();
        for line in s.rest(&r).lines() {
            s.write_line(line);
        }
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Every line of the one-shot rendering, each once: the streamed
        // finding first, then the rest, the summary last.
        let full = render::jsonl_string(&r);
        let mut want: Vec<&str> = full.lines().collect();
        let mut got = lines.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        assert!(lines[0].contains("a.pkl"), "{text}");
        let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
        assert_eq!(last["type"], "summary");
        assert_eq!(last["incomplete"], false);
    }
}
