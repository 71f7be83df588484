//! The one place that decides, for every command, how a run looks and ends:
//! progress bars, Ctrl-C, and the exit code.
//!
//! Commands build their library calls on [`context`] (an
//! [`aisec_core::run::RunContext`] whose progress sink is a bar on a
//! terminal and nothing otherwise, and whose cancel flag Ctrl-C raises),
//! and hand their report to [`finish`], which renders it and picks the
//! exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | the job ran and found nothing at or above `--fail-on` |
//! | 1 | the job ran and found something at or above `--fail-on` |
//! | 2 | the job could not be done (usage, I/O, a target that never answered, every attempt failed) |
//! | 130 | interrupted (Ctrl-C); the partial report is written and marked incomplete |
//!
//! A new command gets all of this by calling [`context`] and [`finish`].

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aisec_core::run::{Cancel, NoProgress, Progress, RunContext};
use aisec_core::Report;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::output::{emit_with_tail, OutputArgs, Tail};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
/// Exit code of a run that could not do its job.
pub const FAILED: i32 = 2;

static QUIET: AtomicBool = AtomicBool::new(false);
static CANCEL: OnceLock<Cancel> = OnceLock::new();

/// `--quiet`: no progress bars and no notes on stderr.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a note on stderr unless `--quiet`. Notes quote paths and names
/// from the input, so control characters are shown escaped (issue 19).
/// Trailing newlines are the note's own layout and stay real line breaks;
/// a newline inside it (from a quoted name) is shown escaped.
pub fn note(msg: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("{}", note_text(&msg.to_string()));
    }
}

fn note_text(msg: &str) -> String {
    let body = msg.trim_end_matches('\n');
    let breaks = &msg[body.len()..];
    format!("{}{breaks}", aisec_core::render::escape_terminal(body))
}

/// The process-wide cancel flag. The first call installs the Ctrl-C
/// handler that raises it; commands that never call this keep the default
/// (the process ends at once).
pub fn cancel() -> Cancel {
    CANCEL
        .get_or_init(|| {
            let c = Cancel::new();
            let raised = c.clone();
            let _ = ctrlc::set_handler(move || {
                if raised.is_cancelled() {
                    // A second Ctrl-C while the partial report is written: stop now.
                    std::process::exit(INTERRUPTED);
                }
                raised.cancel();
            });
            c
        })
        .clone()
}

fn interrupted() -> bool {
    CANCEL.get().is_some_and(Cancel::is_cancelled)
}

/// Whether a progress bar is drawn: on a terminal (stderr), without
/// `--quiet` and without the command's `--no-progress`.
pub fn show_progress(no_progress: bool) -> bool {
    !no_progress && !quiet() && std::io::stderr().is_terminal()
}

/// The progress sink long-running work gets: a bar when
/// [`show_progress`], nothing otherwise. (Work that handles Ctrl-C itself,
/// like the async probe harness, takes only this; the rest use
/// [`context`].)
pub fn progress(no_progress: bool) -> Arc<dyn Progress> {
    if show_progress(no_progress) {
        Arc::new(Bar::new())
    } else {
        Arc::new(NoProgress)
    }
}

/// The context long-running work gets: [`progress`] and the Ctrl-C cancel
/// flag.
pub fn context(no_progress: bool) -> RunContext {
    RunContext {
        cancel: cancel(),
        progress: progress(no_progress),
    }
}

/// Marks `report` as covering only part of the job.
pub fn mark_incomplete(report: &mut Report, why: &str) {
    report
        .data
        .insert("incomplete".into(), serde_json::Value::Bool(true));
    let key = why.split([' ', ':']).next().unwrap_or(why);
    if !report.errors.iter().any(|e| e.message.starts_with(key)) {
        report.error(report.command.clone(), why.to_string());
    }
}

/// Renders `report` and returns the exit code (see the module docs).
///
/// A report whose data says `"failed": true` (the job could not be done,
/// e.g. every probe attempt failed) exits 2; one that says
/// `"incomplete": true` (work that handles Ctrl-C itself, like the async
/// probe harness) or a raised Ctrl-C flag exits 130.
pub fn finish(report: Report, out: &OutputArgs) -> anyhow::Result<i32> {
    finish_with(report, out, &Tail::default())
}

/// [`finish`], with a command's own section appended to text output.
pub fn finish_with_tail(report: Report, out: &OutputArgs, tail: &str) -> anyhow::Result<i32> {
    finish_with(report, out, &Tail::text(tail))
}

/// [`finish`], with a command's own sections for text and HTML output.
pub fn finish_with(mut report: Report, out: &OutputArgs, tail: &Tail) -> anyhow::Result<i32> {
    let flag = |k: &str| report.data.get(k) == Some(&serde_json::Value::Bool(true));
    let stopped = interrupted() || flag("incomplete");
    if stopped {
        mark_incomplete(
            &mut report,
            "interrupted (Ctrl-C): the report covers only the work that finished",
        );
    }
    report.finish();
    let code = emit_with_tail(&report, out, tail)?;
    let failed = report.data.get("failed") == Some(&serde_json::Value::Bool(true));
    Ok(if stopped {
        INTERRUPTED
    } else if failed {
        FAILED
    } else {
        code
    })
}

/// One bar for a run, reset at each phase to the phase's own total. With
/// no total it is a spinner with a count. The rate and the ETA are the
/// phase's average so far (the ETA appears once a unit is done), so a
/// slow first batch does not promise weeks.
struct Bar {
    pb: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let pb = ProgressBar::new(0);
        pb.enable_steady_tick(Duration::from_millis(200));
        let bar = Self { pb };
        bar.style(None);
        bar
    }

    fn style(&self, total: Option<u64>) {
        let template = match total {
            Some(_) => "{spinner} {msg} [{bar:30}] {pos}/{len} {rate} {sane_eta}",
            None => "{spinner} {msg} {pos} done {rate}",
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", rate)
            .with_key("sane_eta", sane_eta);
        self.pb.set_style(style);
    }
}

fn rate(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    if let Some(t) = rate_text(s.pos(), s.elapsed().as_secs_f64()) {
        let _ = w.write_str(&t);
    }
}

fn sane_eta(s: &ProgressState, w: &mut dyn std::fmt::Write) {
    if let Some(t) = eta_text(s.pos(), s.len().unwrap_or(0), s.elapsed().as_secs_f64()) {
        let _ = w.write_str(&t);
    }
}

/// Units per second (or seconds per unit when slower than one a second),
/// once there is something to average.
fn rate_text(done: u64, secs: f64) -> Option<String> {
    if done == 0 || secs < 0.5 {
        return None;
    }
    let r = done as f64 / secs;
    Some(if r >= 1.0 {
        format!("({r:.1}/s)")
    } else {
        format!("({:.1}s each)", 1.0 / r)
    })
}

/// Time left at the phase's average rate so far; nothing before the first
/// unit (a zero rate would promise forever) or in the first second.
fn eta_text(done: u64, total: u64, secs: f64) -> Option<String> {
    if done == 0 || total <= done || secs < 1.0 {
        return None;
    }
    let left = (secs / done as f64 * (total - done) as f64).round() as u64;
    let mut out = String::new();
    let _ = if left >= 3600 {
        write!(out, "eta {}h{:02}m", left / 3600, (left % 3600) / 60)
    } else if left >= 60 {
        write!(out, "eta {}m{:02}s", left / 60, left % 60)
    } else {
        write!(out, "eta {left}s")
    };
    Some(out)
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.style(total);
        self.pb.set_message(name.to_string());
        self.pb.set_length(total.unwrap_or(0));
        self.pb.set_position(0);
        self.pb.reset_elapsed();
        self.pb.reset_eta();
    }
    fn advance(&self, n: u64) {
        self.pb.inc(n);
    }
    fn message(&self, msg: &str) {
        let phase = self.pb.message();
        let base = phase.split(" · ").next().unwrap_or("").to_string();
        self.pb.set_message(format!("{base} · {msg}"));
    }
    fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_keep_their_trailing_line_breaks_and_escape_the_rest() {
        assert_eq!(super::note_text("wrote 3 files.\n"), "wrote 3 files.\n");
        assert_eq!(
            super::note_text("to /tmp/a\nb\u{1b}[2J.\n"),
            "to /tmp/a\\nb\\x1b[2J.\n"
        );
    }

    use super::*;

    #[test]
    fn eta_is_the_phase_average_and_absent_before_the_first_unit() {
        assert_eq!(eta_text(0, 100, 30.0), None);
        assert_eq!(eta_text(5, 100, 0.2), None);
        // 10 of 100 in 20 s: 180 s left at the average rate.
        assert_eq!(eta_text(10, 100, 20.0).as_deref(), Some("eta 3m00s"));
        assert_eq!(eta_text(1, 10_000, 2.0).as_deref(), Some("eta 5h33m"));
        assert_eq!(eta_text(100, 100, 20.0), None);
        assert_eq!(rate_text(30, 10.0).as_deref(), Some("(3.0/s)"));
        assert_eq!(rate_text(2, 10.0).as_deref(), Some("(5.0s each)"));
    }

    #[test]
    fn incomplete_runs_are_marked_once() {
        let mut r = Report::new("attack evasion");
        mark_incomplete(&mut r, "interrupted");
        mark_incomplete(&mut r, "interrupted");
        assert_eq!(r.errors.len(), 1, "the cause is named once");
        assert_eq!(r.data["incomplete"], true);
    }
}
