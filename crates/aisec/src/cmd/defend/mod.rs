//! `aisec defend`: finding and removing poisoning and backdoors
//! (`aisec-defend`): dataset inspection, model inspection, repair and STRIP.

use std::path::{Path, PathBuf};

use aisec_model::data::Dataset;
use aisec_model::OnnxModel;

pub mod data;
pub mod demo;
pub mod model;
pub mod repair;
pub mod strip;

/// Arguments of `aisec defend`.
#[derive(Debug, clap::Args)]
pub struct DefendArgs {
    #[command(subcommand)]
    pub command: DefendCommand,
}

/// The defences.
#[derive(Debug, clap::Subcommand)]
pub enum DefendCommand {
    /// Inspect a training set for poisoned examples (activation clustering, spectral signatures, early-loss isolation); scores, ranked list, precision/recall with --ground-truth.
    Data(Box<data::DataArgs>),
    /// Inspect a model for a planted backdoor without its training data (Neural Cleanse and a blended-trigger variant).
    Model(Box<model::ModelArgs>),
    /// Remove a backdoor: fine-pruning or unlearning with the reversed trigger; writes a repaired ONNX model.
    Repair(Box<repair::RepairArgs>),
    /// Flag trojaned inputs in a batch with STRIP (entropy of predictions on superimposed inputs).
    Strip(Box<strip::StripArgs>),
}

/// Runs `aisec defend`.
pub fn run(a: DefendArgs) -> anyhow::Result<i32> {
    match a.command {
        DefendCommand::Data(a) => data::run(*a),
        DefendCommand::Model(a) => model::run(*a),
        DefendCommand::Repair(a) => repair::run(*a),
        DefendCommand::Strip(a) => strip::run(*a),
    }
}

/// The clean data every defence takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanArgs {
    /// Clean data: `.npz` (arrays `x`, `y`), `.npy`/IDX inputs with --labels, CSV, or an image folder.
    #[arg(long, value_name = "DATA")]
    pub clean: PathBuf,

    /// Labels for --clean when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Preprocessing of every data set the command reads (--clean, --test, --triggered, --inputs).
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Use at most this many clean examples (the first N).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

impl CleanArgs {
    /// Loads the clean data for `model`, preprocessed and checked.
    pub fn load(&self, model: &OnnxModel) -> anyhow::Result<Dataset> {
        self.load_other(
            &self.clean,
            self.labels.as_deref(),
            model,
            "--clean",
            self.limit,
        )
    }

    /// Loads another labelled data set (`--test`, `--triggered`) with the
    /// same preprocessing and checks as --clean.
    pub fn load_other(
        &self,
        path: &Path,
        labels: Option<&Path>,
        model: &OnnxModel,
        what: &str,
        limit: Option<usize>,
    ) -> anyhow::Result<Dataset> {
        load_checked(path, labels, model, &self.prep, &self.range, what, limit)
    }
}

/// Loads a labelled data set for `model` with the shared data flags
/// ([`crate::args::load_checked`]: preprocessing, range and NaN checks)
/// and checks its labels against the model's classes.
pub fn load_checked(
    path: &Path,
    labels: Option<&Path>,
    model: &OnnxModel,
    prep: &crate::args::PreprocessArgs,
    range: &crate::args::InputRange,
    what: &str,
    limit: Option<usize>,
) -> anyhow::Result<Dataset> {
    use aisec_model::Classifier;
    let mut d =
        crate::args::load_checked(path, labels, "last", model.input_shape(), prep, range, what)?;
    if let Some(n) = limit {
        if n < d.len() {
            d = d.slice(0, n);
        }
    }
    crate::data::check_labels(&d.y, model.num_classes(), what)?;
    Ok(d)
}

/// Triggered test inputs with their true labels, for the attack success rate.
#[derive(Debug, Clone, clap::Args)]
pub struct TriggeredArgs {
    /// Held-out inputs carrying the trigger, with their TRUE labels (`.npz` x/y, or `.npy` with --triggered-labels).
    #[arg(long, value_name = "DATA", requires = "target")]
    pub triggered: Option<PathBuf>,

    /// Labels for --triggered when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub triggered_labels: Option<PathBuf>,

    /// The class the trigger sends inputs to (the attacker's target).
    #[arg(long, value_name = "CLASS")]
    pub target: Option<usize>,
}
