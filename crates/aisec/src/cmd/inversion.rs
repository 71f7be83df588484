//! `aisec attack inversion`: MI-Face class-representative reconstruction
//! (Fredrikson et al. 2015) with input gradients of a local model.

use std::path::PathBuf;

use aisec_attack::inversion::{run_inversion, InversionConfig, InversionCost};
use aisec_core::Report;
use aisec_model::data::normalize::Normalized;
use aisec_model::data::Dataset;
use anyhow::Context;

use crate::cmd::attack::{load_inputs, load_labels};
use crate::output::OutputArgs;

/// Arguments of `aisec attack inversion`.
#[derive(Debug, clap::Args)]
pub struct InversionArgs {
    /// The model (gradients are needed: a local file).
    #[command(flatten)]
    pub model: crate::cmd::target::ModelArgs,

    /// Classes to reconstruct, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "C,...")]
    pub classes: Vec<usize>,

    /// Cost: one-minus-p (1 - p_class, as in the paper) or neg-log-p (cross-entropy).
    #[arg(long, default_value = "one-minus-p", value_parser = ["one-minus-p", "neg-log-p"])]
    pub cost: String,

    /// Maximum gradient steps per class (α).
    #[arg(long, default_value_t = 1000)]
    pub max_iters: usize,

    /// Stop after this many steps without a better cost (β; 0: never).
    #[arg(long, default_value_t = 100)]
    pub patience: usize,

    /// Stop once the cost is at or below this (γ).
    #[arg(long, default_value_t = 0.001)]
    pub threshold: f32,

    /// Gradient step (λ).
    #[arg(long, default_value_t = 0.1)]
    pub step_size: f32,

    /// Weight of the total-variation smoothness prior.
    #[arg(long, default_value_t = 0.0)]
    pub tv: f32,

    /// Weight of the L2 prior (pull towards the start).
    #[arg(long, default_value_t = 0.0)]
    pub l2: f32,

    /// Start value for every input entry (default: middle of [lo, hi]).
    #[arg(long)]
    pub start: Option<f32>,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Reference inputs (.npy or IDX) to compare reconstructions with class means.
    #[arg(long, value_name = "FILE", requires = "reference_labels")]
    pub reference_inputs: Option<PathBuf>,

    /// Labels of the reference inputs.
    #[arg(long, value_name = "FILE", requires = "reference_inputs")]
    pub reference_labels: Option<PathBuf>,

    /// Preprocessing of the reference inputs.
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    /// The model's input normalisation, applied inside the model: reconstructions, --start, --lo and --hi stay in pixel space.
    #[command(flatten)]
    pub norm_args: crate::args::NormalizeArgs,

    /// Save the reconstructions (and class means) as a PNG grid.
    #[arg(long, value_name = "FILE")]
    pub save_png: Option<PathBuf>,

    /// Save reconstructions, classes and confidences as `.npz`.
    #[arg(long, value_name = "FILE")]
    pub save_npz: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec attack inversion`.
pub fn run(a: InversionArgs) -> anyhow::Result<i32> {
    let model = a.model.load()?;
    let cost = InversionCost::parse(&a.cost).context("unknown cost")?;
    a.range.check()?;
    let cfg = InversionConfig {
        classes: a.classes.clone(),
        cost,
        max_iters: a.max_iters,
        patience: a.patience,
        threshold: a.threshold,
        step_size: a.step_size,
        tv: a.tv,
        l2: a.l2,
        start: a.start,
        lo: a.range.lo,
        hi: a.range.hi,
    };
    let reference = match (&a.reference_inputs, &a.reference_labels) {
        (Some(xp), Some(yp)) => {
            let x = a.prep.apply(load_inputs(xp)?, &a.range)?;
            let y = load_labels(yp)?;
            crate::data::check_lengths(&x, &y, "--reference-inputs")?;
            crate::data::check_inputs(
                &x,
                "--reference-inputs",
                a.range.lo,
                a.range.hi,
                crate::data::Fix::ScaleOrValueRange,
            )?;
            crate::data::check_labels(
                &y,
                aisec_model::Classifier::num_classes(&model),
                "--reference-labels",
            )?;
            Some(Dataset::new(x, y)?)
        }
        _ => None,
    };
    let show = crate::run::show_progress(a.no_progress);
    let ctx = crate::cmd::attack::attack_context(show);
    let start = std::time::Instant::now();
    let r = if a.norm_args.is_set() {
        let m = Normalized::new(model, a.norm_args.mean.clone(), a.norm_args.std.clone())
            .context("--mean/--std do not fit the model")?;
        run_inversion(&m, &cfg, reference.as_ref(), &ctx)?
    } else {
        run_inversion(&model, &cfg, reference.as_ref(), &ctx)?
    };
    ctx.progress().finish();
    let name = a.model.name();
    let mut report = Report::new("attack inversion");
    report.add_rules(aisec_attack::RULES);
    report.extend(r.findings(&name));
    report.summary.items = r.classes.len() as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("inversion".into(), serde_json::to_value(&r)?);
    if r.cancelled {
        report.error(
            &name,
            "interrupted: reconstructions are the best found so far",
        );
    }
    report.finish();
    if let Some(p) = &a.save_png {
        r.save_png(p)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    if let Some(p) = &a.save_npz {
        r.save_npz(p)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    crate::run::finish(report, &a.output)
}
