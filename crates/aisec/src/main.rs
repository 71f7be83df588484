//! The `aisec` command line: a thin layer over the capability crates.
//!
//! Each subcommand lives in `cmd/<name>.rs`, parses its arguments with
//! clap, calls its crate, and returns an [`aisec_core::Report`] that
//! [`output`] renders in the format the user asked for. [`run`] decides,
//! once for every command, progress bars, Ctrl-C and exit codes: 0 clean,
//! 1 findings at or above `--fail-on`, 2 the job could not be done (usage,
//! I/O, a target that never answered), 130 interrupted (partial report
//! written, marked incomplete).

// A binary has no public API, and printing is its job.
#![allow(unreachable_pub, clippy::print_stdout)]

mod args;
mod cmd;
mod data;
mod output;
mod registry;
mod run;

use std::process::ExitCode;

use aisec_core::render::escape_terminal;
use clap::{CommandFactory, FromArgMatches, Subcommand};

/// aisec: AI/ML security in one binary.
#[derive(Debug, clap::Parser)]
#[command(name = "aisec", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// No progress bars and no notes on stderr (errors and the report still appear).
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan model artifacts for code execution and supply-chain risks, without running them.
    Scan(cmd::scan::ScanArgs),
    /// Attack a model: evasion (adversarial examples), membership inference, inversion or extraction (stealing).
    Attack(Box<cmd::attack::AttackArgs>),
    /// Probe an LLM endpoint (OpenAI-compatible or REST) for injection, jailbreaks, leakage and unsafe output.
    Probe(Box<cmd::ProbeCommand>),
    /// Defend against poisoning and backdoors: inspect a model (Neural Cleanse), repair it, flag trojaned inputs (STRIP).
    Defend(cmd::defend::DefendArgs),
    /// Run the runtime gateway in front of an LLM or model server (screening, monitoring, metrics).
    Guard(cmd::guard::GuardArgs),
    /// Train a spec model (MLP, CNN, ResNet-style) on a data set; save safetensors (+ spec) and ONNX.
    Train(Box<cmd::train::TrainArgs>),
    /// Harden a model: adversarial training (PGD-AT, TRADES) or DP-SGD, then re-measure it (AutoAttack, epsilon).
    Harden(cmd::harden::HardenArgs),
    /// Build safe and malicious sample artifacts in a temporary folder and show what aisec finds.
    Demo(cmd::demo::DemoArgs),
    /// Explain a model's decisions: saliency, Integrated Gradients, SHAP, occlusion; heat maps, charts, trigger localisation.
    Explain(Box<cmd::explain::ExplainArgs>),
    /// Assess a whole ML system from its description: threat model (STRIDE x ATLAS x OWASP LLM), every applicable check, report and compliance views.
    Assess(Box<cmd::assess::AssessArgs>),
    /// Work with reports: merge shard outputs into one report.
    Report(cmd::remote::ReportCommand),
    /// Model provenance: verify OpenSSF model-signing signatures (key or certificate based; a folder, or hf:// and s3:// repos in place), write hash manifests, sign (key-based).
    Provenance(cmd::provenance::ProvenanceArgs),
    /// List every rule aisec can report (severity, ATLAS / OWASP ids), or show one in full.
    Rules(cmd::rules::RulesArgs),
}

fn main() -> ExitCode {
    // The matches are kept: a command with a config file (probe) lets
    // flags given on the command line win over it.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The guard server logs JSON lines on stderr from its first line to its
    // last (`aisec_guard::init_json_logging`, set once its policy loaded);
    // every other command, and `guard --check`, logs text.
    if !matches!(&cli.command, Command::Guard(g) if !g.check) {
        init_logging(cli.verbose, cli.quiet);
    }
    run::set_quiet(cli.quiet);
    if matches!(
        cli.command,
        Command::Attack(_)
            | Command::Train(_)
            | Command::Harden(_)
            | Command::Demo(_)
            | Command::Defend(_)
            | Command::Assess(_)
    ) {
        // Model work allocates multi-MiB activations on every call; keep freed
        // memory in the process instead of page-faulting it in again each time.
        aisec_model::tune_allocator();
    }
    let result = match cli.command {
        Command::Scan(a) => cmd::scan::run(a),
        Command::Attack(a) => cmd::attack::run(*a),
        Command::Probe(a) if a.probe.list => {
            let json = a.output.format == aisec_core::render::Format::Json;
            cmd::probe::list(json).map(|s| {
                print!("{s}");
                0
            })
        }
        // --format jsonl: one line per attempt as it is judged; the
        // per-probe findings and the summary follow at the end.
        Command::Probe(a) => output::JsonlStream::start(&a.output)
            .and_then(|stream| {
                cmd::probe::run_with(
                    a.probe.clone(),
                    matches.subcommand_matches("probe"),
                    run::progress(a.probe.no_progress).as_ref(),
                    &|r| {
                        if let Some(s) = &stream {
                            s.line(&cmd::attempt_line(r));
                        }
                    },
                )
            })
            .and_then(|report| {
                if !run::quiet() {
                    eprint!("{}", aisec_probe::summary::family_table(&report));
                }
                run::finish(report, &a.output)
            }),
        Command::Guard(a) => cmd::guard::run(a),
        Command::Defend(a) => cmd::defend::run(a),
        Command::Train(a) => cmd::train::run(*a),
        Command::Harden(a) => cmd::harden::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Rules(a) => cmd::rules::run(a),
        Command::Report(a) => cmd::remote::report(a),
        Command::Assess(a) => cmd::assess::run(*a),
        Command::Explain(a) => cmd::explain::run(*a),
        Command::Provenance(a) => cmd::provenance::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // Error chains quote file and member names: print them escaped.
            eprintln!("aisec: error: {}", escape_terminal(&error_text(&e)));
            ExitCode::from(aisec_core::ExitStatus::Error.code() as u8)
        }
    }
}

/// The error and its causes, each named once: a cause whose text an
/// outer message already quotes (`cannot load m.onnx: No such file` over
/// `No such file`) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if c.is_empty() || out.contains(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    out
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match verbose {
        _ if quiet => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("AISEC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(io).context("cannot open m.onnx: No such file");
        let e = e.context("cannot load model m.onnx");
        assert_eq!(
            super::error_text(&e),
            "cannot load model m.onnx: cannot open m.onnx: No such file"
        );
    }
}
