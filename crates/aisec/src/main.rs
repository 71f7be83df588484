//! The `aisec` command line: a thin layer over the capability crates.
//!
//! Each subcommand lives in `cmd/<name>.rs`, parses its arguments with
//! clap, calls its crate, and returns an [`aisec_core::Report`] that
//! [`output`] renders in the format the user asked for. Exit codes are the
//! same for every command: 0 clean, 1 findings at or above `--fail-on`,
//! 2 usage or I/O error.

mod cmd;
mod output;
mod registry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// aisec: AI/ML security in one binary.
#[derive(Debug, Parser)]
#[command(name = "aisec", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

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
    /// Run the runtime gateway in front of an LLM or model server (screening, monitoring, metrics).
    Guard(cmd::guard::GuardArgs),
    /// Train a spec model (MLP, CNN, ResNet-style) on a data set; save safetensors (+ spec) and ONNX.
    Train(Box<cmd::train::TrainArgs>),
    /// Build safe and malicious sample artifacts in a temporary folder and show what aisec finds.
    Demo(cmd::demo::DemoArgs),
    /// Explain a model's decisions: saliency, Integrated Gradients, SHAP, occlusion; heat maps, charts, trigger localisation.
    Explain(Box<cmd::explain::ExplainArgs>),
    /// List every rule aisec can report (severity, ATLAS / OWASP ids), or show one in full.
    Rules(cmd::rules::RulesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if matches!(
        cli.command,
        Command::Attack(_) | Command::Train(_) | Command::Demo(_)
    ) {
        // Model work allocates multi-MiB activations on every call; keep freed
        // memory in the process instead of page-faulting it in again each time.
        aisec_model::tune_allocator();
    }
    let result = match cli.command {
        Command::Scan(a) => cmd::scan::run(a),
        Command::Attack(a) => cmd::attack::run(*a),
        Command::Probe(a) => {
            cmd::probe::run(a.probe).and_then(|report| output::emit(&report, &a.output))
        }
        Command::Guard(a) => cmd::guard::run(a),
        Command::Train(a) => cmd::train::run(*a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Rules(a) => cmd::rules::run(a),
        Command::Explain(a) => cmd::explain::run(*a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("aisec: error: {e:#}");
            ExitCode::from(aisec_core::ExitStatus::Error.code() as u8)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
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
