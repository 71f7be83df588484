//! The `aisec probe` command as a standalone binary, built from the same
//! module the aisec CLI uses (`crates/aisec/src/cmd/probe.rs`), for the
//! bench and e2e scripts. Adds `--format json|text`, `--output FILE` and
//! `--no-fail` like the main CLI (exit 1 when a finding is high or worse).

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Examples may unwrap and print.

#[path = "../../aisec/src/cmd/probe.rs"]
mod probe;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: probe::ProbeArgs,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    format: String,
    /// Write the report here instead of standard output.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    /// Always exit 0 after a completed run.
    #[arg(long)]
    no_fail: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = <Cli as clap::Parser>::parse();
    let report = probe::run(cli.args)?;
    eprint!("{}", aisec_probe::summary::family_table(&report));
    let text = if cli.format == "json" {
        serde_json::to_string_pretty(&report)?
    } else {
        let mut s = String::new();
        for f in &report.findings {
            s.push_str(&format!("{:<8} {} {}\n", f.severity, f.rule_id, f.title));
        }
        for e in &report.errors {
            s.push_str(&format!("error    {}: {}\n", e.subject, e.message));
        }
        s
    };
    match &cli.output {
        Some(p) => std::fs::write(p, text)?,
        None => print!("{text}"),
    }
    let code = report.exit_status(Some(aisec_core::Severity::High)).code();
    if !cli.no_fail && code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
