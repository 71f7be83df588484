//! `aisec defend model`: Neural Cleanse and the blended-trigger variant
//! (`aisec_defend::model`), reversed triggers as PNG and JSON.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use aisec_core::Report;
use aisec_defend::model::{findings, inspect, InspectConfig, Inspection, Method};
use aisec_defend::DefendError;
use anyhow::Context;

use crate::cmd::defend::CleanArgs;
use crate::output::OutputArgs;

/// Arguments of `aisec defend model`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The model: ONNX, or safetensors weights together with --spec (gradients are needed).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Architecture spec (JSON/TOML) when MODEL is a safetensors file.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    #[command(flatten)]
    pub clean: CleanArgs,

    /// Methods, comma-separated: nc (Neural Cleanse), blend (blended-trigger variant).
    #[arg(long, value_delimiter = ',', default_value = "nc,blend", value_parser = ["nc", "blend"])]
    pub methods: Vec<String>,

    /// Optimisation steps per class.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,

    /// Clean examples per optimisation step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,

    /// Anomaly index at and above which a class is flagged.
    #[arg(long, default_value_t = 2.0)]
    pub threshold: f32,

    /// A class flagged by the index must also have a trigger at most this share of the median size (1 = the paper's rule).
    #[arg(long, default_value_t = 0.5)]
    pub max_size_ratio: f32,

    /// A class whose trigger is at most this share of the median size is flagged whatever its index (0 = off).
    #[arg(long, default_value_t = 0.3)]
    pub sure_size_ratio: f32,

    /// Seed of the trigger initialisation and batch sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Write the reversed triggers here: `<method>.png` (masks above masked patterns, one column per class) and `triggers.json`.
    #[arg(long, value_name = "DIR")]
    pub save_triggers: Option<PathBuf>,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn method(s: &str) -> Method {
    if s == "blend" {
        Method::Blend
    } else {
        Method::NeuralCleanse
    }
}

/// Runs every method; stops early (Ok with what finished, cancelled = true) on Ctrl-C.
pub(crate) fn inspect_all<M: aisec_model::Differentiable>(
    model: &M,
    x: &aisec_model::Tensor,
    methods: &[Method],
    cfg: &InspectConfig,
    ctx: &aisec_core::run::RunContext,
) -> anyhow::Result<(Vec<Inspection>, bool)> {
    let k = model.num_classes() as u64;
    let mut out = Vec::new();
    let flag: &AtomicBool = ctx.cancel.flag();
    for &m in methods {
        ctx.progress.phase(m.as_str(), Some(k));
        let p = ctx.progress.clone();
        match inspect(model, x, m, cfg, Some(flag), &move |_, _| p.advance(1)) {
            Ok(i) => out.push(i),
            Err(DefendError::Cancelled) => return Ok((out, true)),
            Err(e) => return Err(e.into()),
        }
    }
    ctx.progress.finish();
    Ok((out, false))
}

/// A table of the per-class results of each method.
pub(crate) fn table(ins: &[Inspection]) -> String {
    let mut s = String::new();
    for i in ins {
        let _ = writeln!(
            s,
            "\n{} ({}; median {:.3}, 1.4826*MAD {:.3}, {} clean inputs, {:.1} s)",
            i.method.as_str(),
            i.method.size_name(),
            i.median,
            i.mad,
            i.examples,
            i.seconds
        );
        let _ = writeln!(s, "  class      size   success  anomaly  flagged");
        for c in &i.classes {
            let _ = writeln!(
                s,
                "  {:>5} {:>9.3} {:>8.1}% {:>8.2}  {}",
                c.class,
                c.size,
                100.0 * c.success,
                c.anomaly_index,
                if c.flagged { "YES" } else { "" }
            );
        }
    }
    s
}

/// Writes `<method>.png` and `triggers.json` under `dir`; returns the PNG paths.
pub(crate) fn save_triggers(
    dir: &std::path::Path,
    ins: &[Inspection],
    range: (f32, f32),
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    let mut json = Vec::new();
    for i in ins {
        let ts: Vec<&aisec_defend::trigger::MaskTrigger> =
            i.classes.iter().map(|c| &c.trigger).collect();
        let png = aisec_defend::image::trigger_grid(&ts, range.0, range.1)?;
        let p = dir.join(format!("{}.png", i.method.as_str()));
        std::fs::write(&p, png).with_context(|| format!("cannot write {}", p.display()))?;
        paths.push(p.display().to_string());
        for c in &i.classes {
            json.push(serde_json::json!({
                "method": i.method.as_str(), "class": c.class, "size": c.size,
                "success": c.success, "anomaly_index": c.anomaly_index, "flagged": c.flagged,
                "trigger": c.trigger,
            }));
        }
    }
    let p = dir.join("triggers.json");
    std::fs::write(&p, serde_json::to_string(&json)?)
        .with_context(|| format!("cannot write {}", p.display()))?;
    Ok(paths)
}

/// Runs `aisec defend model`.
pub fn run(a: ModelArgs) -> anyhow::Result<i32> {
    let model = crate::cmd::target::load_local(&a.model, a.spec.as_deref())?;
    let clean = a.clean.load(&model)?;
    let cfg = InspectConfig {
        steps: a.steps,
        batch: a.batch,
        threshold: a.threshold,
        max_size_ratio: a.max_size_ratio,
        sure_size_ratio: a.sure_size_ratio,
        seed: a.seed,
        range: (a.clean.range.lo, a.clean.range.hi),
        ..InspectConfig::default()
    };
    let methods: Vec<Method> = a.methods.iter().map(|s| method(s)).collect();
    let ctx = crate::run::context(a.no_progress);
    let start = std::time::Instant::now();
    let (ins, cancelled) = if a.clean.norm.is_set() {
        let m = a.clean.norm.wrap(&model)?;
        inspect_all(&m, &clean.x, &methods, &cfg, &ctx)?
    } else {
        inspect_all(&model, &clean.x, &methods, &cfg, &ctx)?
    };
    let name = a.model.display().to_string();
    let pngs = match &a.save_triggers {
        Some(d) if !ins.is_empty() => save_triggers(d, &ins, cfg.range)?,
        _ => vec![],
    };
    let mut report = Report::new("defend model");
    report.add_rules(aisec_defend::RULES);
    for (k, i) in ins.iter().enumerate() {
        report.extend(findings(i, &name, pngs.get(k).map(String::as_str)));
    }
    report.summary.items = ins.iter().map(|i| i.classes.len() as u64).sum();
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("inspections".into(), serde_json::to_value(&ins)?);
    if cancelled {
        crate::run::mark_incomplete(
            &mut report,
            "interrupted (Ctrl-C): only the methods that finished are reported",
        );
    }
    crate::run::finish_with_tail(report, &a.output, &table(&ins))
}
