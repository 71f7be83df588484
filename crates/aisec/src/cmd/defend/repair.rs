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
use aisec_model::{Classifier, OnnxModel, Tensor};
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

    /// Repair: fine-prune (Liu et al. 2018), unlearn (Neural Cleanse's unlearning with the reversed trigger), or prune-unlearn (fine-pruning, then unlearning the triggers reversed on the original model; the setting that took BadNets under 2 % ASR in bench/backdoor).
    #[arg(long, default_value = "unlearn", value_parser = ["fine-prune", "unlearn", "prune-unlearn"])]
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
    let norm = &a.clean.norm;
    // With --mean/--std the model is scored and inspected behind the
    // normalisation (pixel-space data and triggers) and fine-tuned on the
    // normalised data it sees there; the model written stays the user's
    // model, with no normalisation baked in.
    let score_of = |model: &OnnxModel| -> anyhow::Result<BackdoorScore> {
        Ok(if norm.is_set() {
            score(&norm.wrap(model)?, &test, triggered)?
        } else {
            score(model, &test, triggered)?
        })
    };
    let mut tune = clean.clone();
    if norm.is_set() {
        norm.normalize_data(&mut tune.x, model.input_shape())?;
    }
    let ctx = crate::run::context(a.no_progress);
    let start = std::time::Instant::now();
    let before: BackdoorScore = score_of(&model)?;
    let mut report = Report::new("defend repair");
    report.add_rules(aisec_defend::RULES);
    let name = a.model.display().to_string();
    let flag = ctx.cancel.flag();
    let mut details = serde_json::Map::new();
    let result = if a.method == "fine-prune" {
        ctx.progress.phase("fine-pruning", None);
        fine_prune(&mut model, &tune, &cfg, Some(flag)).map(|r| {
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
        let methods = [Method::NeuralCleanse, Method::Blend];
        let (ins, stopped) = if norm.is_set() {
            let m = norm.wrap(&model)?;
            crate::cmd::defend::model::inspect_all(&m, &clean.x, &methods, &icfg, &ctx)?
        } else {
            crate::cmd::defend::model::inspect_all(&model, &clean.x, &methods, &icfg, &ctx)?
        };
        if stopped {
            Err(DefendError::Cancelled)
        } else {
            // Reversed in pixel space; stamped onto the normalised
            // data with the pattern normalised alike (stamping is affine:
            // ((1-m)x + mp - mean)/std = (1-m)(x-mean)/std + m(p-mean)/std).
            let mut triggers: Vec<aisec_defend::trigger::MaskTrigger> = ins
                .iter()
                .flat_map(|i| i.flagged.iter().map(move |&c| i.classes[c].trigger.clone()))
                .collect();
            if norm.is_set() {
                for t in &mut triggers {
                    normalize_trigger(norm, t, model.input_shape())?;
                }
            }
            let triggers: Vec<&aisec_defend::trigger::MaskTrigger> = triggers.iter().collect();
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
            let pruned = if a.method == "prune-unlearn" {
                ctx.progress.phase("fine-pruning", None);
                fine_prune(&mut model, &tune, &cfg, Some(flag)).map(|r| {
                    details.insert(
                        "fine_pruning".into(),
                        serde_json::to_value(&r).unwrap_or_default(),
                    );
                })
            } else {
                Ok(())
            };
            ctx.progress.phase("unlearning", None);
            pruned.and_then(|()| {
                unlearn(&mut model, &tune, &triggers, &cfg, Some(flag)).map(|n| {
                    details.insert("stamped".into(), n.into());
                })
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
    let after = score_of(&model)?;
    model
        .save_onnx(&a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    crate::run::note(format_args!(
        "aisec: repaired model written to {}\n",
        a.out.display()
    ));
    let method = match a.method.as_str() {
        "fine-prune" => "fine-pruning",
        "prune-unlearn" => "fine-pruning then unlearning",
        _ => "unlearning",
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

/// Normalises a pixel-space trigger's pattern as `norm` normalises inputs,
/// so stamping it onto normalised inputs gives the normalised stamped
/// input (the mask is unchanged).
fn normalize_trigger(
    norm: &crate::args::NormalizeArgs,
    t: &mut aisec_defend::trigger::MaskTrigger,
    input: &[usize],
) -> anyhow::Result<()> {
    let mut p = Tensor::new(
        std::iter::once(1).chain(input.iter().copied()).collect(),
        std::mem::take(&mut t.pattern),
    )?;
    norm.normalize_data(&mut p, input)?;
    t.pattern = p.data;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_defend::trigger::MaskTrigger;

    #[test]
    fn a_normalised_trigger_stamps_normalised_inputs() {
        let norm = crate::args::NormalizeArgs {
            mean: vec![0.5, 0.25],
            std: vec![0.5, 2.0],
        };
        let input = [2, 1, 2];
        let mut t = MaskTrigger::new((2, 1, 2), vec![0.0, 0.5], vec![1.0, 0.8, 0.0, 0.6]).unwrap();
        let x = Tensor::new(vec![1, 2, 1, 2], vec![0.2, 0.4, 0.6, 1.0]).unwrap();
        // Normalise the stamped input ...
        let mut want = t.apply(&x).unwrap();
        norm.normalize_data(&mut want, &input).unwrap();
        // ... or stamp the normalised trigger onto the normalised input.
        normalize_trigger(&norm, &mut t, &input).unwrap();
        let mut xn = x.clone();
        norm.normalize_data(&mut xn, &input).unwrap();
        let got = t.apply(&xn).unwrap();
        for (g, w) in got.data.iter().zip(&want.data) {
            assert!((g - w).abs() < 1e-6, "{:?} vs {:?}", got.data, want.data);
        }
        assert_eq!(t.mask, vec![0.0, 0.5]);
    }
}
