//! `aisec defend repair`: fine-pruning or unlearning with the reversed
//! trigger (`aisec_defend::repair`), scored before and after, and the
//! repaired model written as ONNX.

use std::path::PathBuf;

use aisec_core::Report;
use aisec_defend::model::{InspectConfig, Method};
use aisec_defend::repair::{
    finding, fine_prune, score, unlearn, BackdoorScore, RepairConfig, Triggered,
};
use aisec_defend::DefendError;
use anyhow::{bail, Context};

use crate::cmd::defend::{CleanArgs, TriggeredArgs};
use crate::output::OutputArgs;

/// Arguments of `aisec defend repair`.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// The backdoored model: ONNX, or safetensors weights together with --spec.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Architecture spec (JSON/TOML) when MODEL is a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Clean data the repair may use (pruning decisions, fine-tuning, trigger reversal).
    #[command(flatten)]
    pub clean: CleanArgs,

    /// Repair: fine-prune (Liu et al. 2018) or unlearn (Neural Cleanse's unlearning with the reversed trigger).
    #[arg(long, default_value = "unlearn", value_parser = ["fine-prune", "unlearn"])]
    pub method: String,

    /// Where to write the repaired model (ONNX).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Held-out clean data to score clean accuracy on (default: --clean itself, which flatters the repair).
    #[arg(long, value_name = "DATA")]
    pub test: Option<PathBuf>,

    /// Labels for --test when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub test_labels: Option<PathBuf>,

    #[command(flatten)]
    pub triggered: TriggeredArgs,

    /// Fine-tuning epochs over the clean data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,

    /// Fine-tuning learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,

    /// Fine-pruning: largest clean-accuracy fall pruning may cause before fine-tuning.
    #[arg(long, default_value_t = 0.1)]
    pub max_prune_drop: f32,

    /// Clean accuracy the repair may cost before the finding says so.
    #[arg(long, default_value_t = 0.02)]
    pub max_drop: f32,

    /// Unlearning: trigger-reversal steps per class.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,

    /// Seed of shuffling, stamping and trigger reversal.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec defend repair`.
pub fn run(a: RepairArgs) -> anyhow::Result<i32> {
    let mut model = crate::cmd::target::load_local(&a.model, a.spec.as_deref())?;
    let clean = a.clean.load(&model)?;
    let test = match &a.test {
        Some(p) => a
            .clean
            .load_other(p, a.test_labels.as_deref(), &model, "--test", None)?,
        None => clean.clone(),
    };
    let trig = match (&a.triggered.triggered, a.triggered.target) {
        (Some(p), Some(t)) => {
            if t >= aisec_model::Classifier::num_classes(&model) {
                bail!("--target {t} is not a class of the model");
            }
            Some((
                a.clean.load_other(
                    p,
                    a.triggered.triggered_labels.as_deref(),
                    &model,
                    "--triggered",
                    None,
                )?,
                t,
            ))
        }
        _ => None,
    };
    let triggered = trig.as_ref().map(|(d, t)| Triggered {
        x: &d.x,
        y: &d.y,
        target: *t,
    });
    let cfg = RepairConfig {
        epochs: a.epochs,
        lr: a.lr,
        max_prune_drop: a.max_prune_drop,
        seed: a.seed,
        ..RepairConfig::default()
    };
    let ctx = crate::run::context(a.no_progress);
    let start = std::time::Instant::now();
    let before: BackdoorScore = score(&model, &test, triggered)?;
    let mut report = Report::new("defend repair");
    report.add_rules(aisec_defend::RULES);
    let name = a.model.display().to_string();
    let flag = ctx.cancel.flag();
    let mut details = serde_json::Map::new();
    let result = if a.method == "fine-prune" {
        ctx.progress.phase("fine-pruning", None);
        fine_prune(&mut model, &clean, &cfg, Some(flag)).map(|r| {
            crate::run::note(format_args!(
                "aisec: pruned {} of {} penultimate units (clean accuracy on the repair data {:.1} % -> {:.1} % before fine-tuning)",
                r.pruned.len(),
                r.head.units,
                100.0 * r.accuracy_before,
                100.0 * r.accuracy_pruned
            ));
            details.insert("fine_pruning".into(), serde_json::to_value(&r).unwrap_or_default());
        })
    } else {
        let icfg = InspectConfig {
            steps: a.steps,
            seed: a.seed,
            range: (a.clean.range.lo, a.clean.range.hi),
            ..InspectConfig::default()
        };
        let (ins, stopped) = crate::cmd::defend::model::inspect_all(
            &model,
            &clean.x,
            &[Method::NeuralCleanse, Method::Blend],
            &icfg,
            &ctx,
        )?;
        if stopped {
            Err(DefendError::Cancelled)
        } else {
            let triggers: Vec<&aisec_defend::trigger::MaskTrigger> = ins
                .iter()
                .flat_map(|i| i.flagged.iter().map(move |&c| &i.classes[c].trigger))
                .collect();
            let flagged: Vec<serde_json::Value> = ins
                .iter()
                .map(|i| serde_json::json!({"method": i.method.as_str(), "flagged": i.flagged}))
                .collect();
            details.insert("flagged".into(), serde_json::Value::Array(flagged));
            if triggers.is_empty() {
                bail!(
                    "model inspection flagged no class, so there is no reversed trigger to unlearn; \
                     the model may be clean (or use --method fine-prune)"
                );
            }
            ctx.progress.phase("unlearning", None);
            unlearn(&mut model, &clean, &triggers, &cfg, Some(flag)).map(|n| {
                details.insert("stamped".into(), n.into());
            })
        }
    };
    ctx.progress.finish();
    match result {
        Ok(()) => {}
        Err(DefendError::Cancelled) => {
            crate::run::mark_incomplete(
                &mut report,
                "interrupted (Ctrl-C): no repaired model was written",
            );
            return crate::run::finish(report, &a.output);
        }
        Err(e) => return Err(e.into()),
    }
    let after = score(&model, &test, triggered)?;
    model
        .save_onnx(&a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    crate::run::note(format_args!(
        "aisec: repaired model written to {}\n",
        a.out.display()
    ));
    let method = if a.method == "fine-prune" {
        "fine-pruning"
    } else {
        "unlearning"
    };
    report.extend([finding(method, &before, &after, a.max_drop, &name)]);
    report.summary.items = 1;
    report.summary.seconds = start.elapsed().as_secs_f64();
    details.insert("before".into(), serde_json::to_value(before)?);
    details.insert("after".into(), serde_json::to_value(after)?);
    details.insert(
        "scored_on".into(),
        if a.test.is_some() {
            "--test"
        } else {
            "--clean (not held out)"
        }
        .into(),
    );
    details.insert("out".into(), a.out.display().to_string().into());
    report
        .data
        .insert("repair".into(), serde_json::Value::Object(details));
    crate::run::finish(report, &a.output)
}
