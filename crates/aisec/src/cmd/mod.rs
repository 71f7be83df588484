//! One module per subcommand.

pub mod assess;
pub mod attack;
pub mod defend;
pub mod demo;
pub mod explain;
pub mod extraction;
pub mod guard;
pub mod inversion;

pub mod membership;
pub mod poison;
pub mod probe;
pub mod remote;
pub mod rules;
pub mod scan;
pub mod target;
pub mod train;

/// `aisec probe` with the shared report options.
#[derive(Debug, clap::Args)]
pub struct ProbeCommand {
    #[command(flatten)]
    pub probe: probe::ProbeArgs,

    #[command(flatten)]
    pub output: crate::output::OutputArgs,
}
