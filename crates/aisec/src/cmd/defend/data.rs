//! `aisec defend data`: inspect a training set for poisoned examples with
//! activation clustering, spectral signatures and early-loss isolation
//! (`aisec_defend::data`), write per-example scores and a ranked list, and
//! score them against the ground truth `aisec attack poison` wrote.

use std::path::PathBuf;
use std::time::Instant;

use aisec_attack::poison::Manifest;
use aisec_attack::save::{write_npz, NpyArray};
use aisec_core::{Location, Report, Severity};
use aisec_defend::data::{
    activation_clustering, activations, early_loss_isolation, early_losses, score_against,
    spectral_signatures, AcConfig, DataScores, Detection, SsConfig,
};
use aisec_model::fit::{per_example_losses, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, Tap};
use anyhow::{bail, Context};

use crate::output::OutputArgs;

/// Arguments of `aisec defend data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// The training set to inspect: `.npz` (arrays `x`, `y`), `.npy`/IDX inputs with --labels, CSV, or an image folder.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,

    /// Labels for `.npy` / IDX inputs.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// A model trained on DATA (ONNX, or safetensors with --spec or the NAME.spec.json `aisec train` writes beside it): its penultimate activations feed activation clustering and spectral signatures.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,

    /// Architecture spec (JSON/TOML) when --model is a safetensors file [default: the .spec.json beside it].
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// Read activations at this ONNX node's first output instead of the penultimate layer.
    #[arg(long, value_name = "NODE")]
    pub layer: Option<String>,

    /// Methods, comma-separated: ac (activation clustering), ss (spectral signatures), loss (early-loss isolation).
    #[arg(long, value_delimiter = ',', default_value = "ac,ss,loss")]
    pub methods: Vec<String>,

    /// Spec for early-loss isolation's short training run (without it the loss method uses --model's losses, a weaker signal).
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<PathBuf>,

    /// Epochs of the early-loss training run.
    #[arg(long, default_value_t = 1)]
    pub early_epochs: usize,

    /// Share of the data the loss method isolates (lowest losses).
    #[arg(long, default_value_t = 0.05)]
    pub isolate: f32,

    /// Poisoned share per class the defender assumes (spectral signatures flag 1.5 times this).
    #[arg(long, default_value_t = 0.1)]
    pub expected_rate: f32,

    /// Activation clustering flags a cluster holding less than this share of its class.
    #[arg(long, default_value_t = 0.35)]
    pub size_threshold: f32,

    /// Ground truth (`indices.json` from `aisec attack poison`): report precision and recall.
    #[arg(long, value_name = "FILE")]
    pub ground_truth: Option<PathBuf>,

    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Seed of clustering, power iteration and the early-loss run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Write scores.json (per method: scores, flags, ranked indices) and scores.npz here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Also write DATA without the examples flagged by these methods (comma-separated, e.g. ac) to this `.npz`, for retraining.
    #[arg(long, value_name = "FILE", requires = "remove_by")]
    pub write_filtered: Option<PathBuf>,

    /// Methods whose flags --write-filtered removes.
    #[arg(long, value_delimiter = ',', value_name = "METHODS")]
    pub remove_by: Vec<String>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec defend data`.
pub fn run(a: DataArgs) -> anyhow::Result<i32> {
    let start = Instant::now();
    for m in a.methods.iter().chain(&a.remove_by) {
        if !["ac", "ss", "loss"].contains(&m.as_str()) {
            bail!("unknown method '{m}' (expected ac, ss or loss)");
        }
    }
    let model = crate::cmd::target::load_local(&a.model, a.spec.as_deref())?;
    let data = super::load_checked(
        &a.data,
        a.labels.as_deref(),
        &model,
        &a.prep,
        &a.range,
        "DATA",
        None,
    )?;
    let classes = model.num_classes();
    let truth = match &a.ground_truth {
        Some(p) => {
            let m = Manifest::load(p).with_context(|| format!("cannot read {}", p.display()))?;
            if m.examples != data.len() {
                bail!(
                    "{}: ground truth is for {} examples, DATA has {}",
                    p.display(),
                    m.examples,
                    data.len()
                );
            }
            Some(m.is_poisoned())
        }
        None => None,
    };
    let tap = match &a.layer {
        Some(n) => Tap::Node {
            name: n.clone(),
            output: 0,
        },
        None => Tap::Penultimate,
    };
    let want = |m: &str| a.methods.iter().any(|x| x == m);
    let mut results: Vec<(DataScores, f64)> = Vec::new();
    if want("ac") || want("ss") {
        let t = Instant::now();
        let feats = activations(&model, &data.x, &tap, 256)?;
        let feat_secs = t.elapsed().as_secs_f64();
        if want("ac") {
            let t = Instant::now();
            let cfg = AcConfig {
                size_threshold: a.size_threshold,
                seed: a.seed,
                ..AcConfig::default()
            };
            let s = activation_clustering(&feats, &data.y, classes, &cfg)?;
            results.push((s, feat_secs + t.elapsed().as_secs_f64()));
        }
        if want("ss") {
            let t = Instant::now();
            let cfg = SsConfig {
                expected_rate: a.expected_rate,
                seed: a.seed,
                ..SsConfig::default()
            };
            let s = spectral_signatures(&feats, &data.y, classes, &cfg)?;
            results.push((s, feat_secs + t.elapsed().as_secs_f64()));
        }
    }
    if want("loss") {
        let t = Instant::now();
        let losses = match &a.arch {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read spec {}", p.display()))?;
                let spec = ArchSpec::parse(&text).with_context(|| format!("in {}", p.display()))?;
                let cfg = TrainConfig {
                    epochs: a.early_epochs.max(1),
                    batch_size: 64,
                    optimizer: Optimizer::adam(1e-3),
                    seed: a.seed,
                    ..TrainConfig::default()
                };
                early_losses(&spec, &data, &cfg)?
            }
            None => {
                crate::run::note("no --arch: the loss method reads --model's losses (a fully trained model fits clean and poisoned rows alike; give --arch for early-loss isolation)");
                per_example_losses(&model, &data, 256)?
            }
        };
        let s = early_loss_isolation(&losses, &data.y, classes, a.isolate)?;
        results.push((s, t.elapsed().as_secs_f64()));
    }

    let detections: Vec<Option<Detection>> = results
        .iter()
        .map(|(s, _)| truth.as_ref().map(|t| score_against(s, t)).transpose())
        .collect::<Result<_, _>>()?;

    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json: Vec<serde_json::Value> = results
            .iter()
            .zip(&detections)
            .map(|((s, secs), d)| {
                serde_json::json!({
                    "method": s.method,
                    "seconds": secs,
                    "flagged": s.flagged_count(),
                    "ranked": s.ranked(),
                    "scores": s.scores,
                    "flags": s.flagged,
                    "classes": s.classes,
                    "detection": d,
                })
            })
            .collect();
        let p = dir.join("scores.json");
        std::fs::write(&p, serde_json::to_string(&json)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
        let names: Vec<String> = results
            .iter()
            .map(|(s, _)| s.method.replace('-', "_"))
            .collect();
        let lens: Vec<[usize; 1]> = results.iter().map(|(s, _)| [s.scores.len()]).collect();
        let arrays: Vec<(&str, NpyArray)> = names
            .iter()
            .zip(&lens)
            .zip(&results)
            .map(|((n, l), (s, _))| (n.as_str(), NpyArray::F32(l, &s.scores)))
            .collect();
        let p = dir.join("scores.npz");
        let f =
            std::fs::File::create(&p).with_context(|| format!("cannot write {}", p.display()))?;
        write_npz(std::io::BufWriter::new(f), &arrays)?;
    }

    if let Some(path) = &a.write_filtered {
        let name = |m: &str| match m {
            "ac" => "activation-clustering",
            "ss" => "spectral-signatures",
            _ => "early-loss",
        };
        let mut drop = vec![false; data.len()];
        for m in &a.remove_by {
            let Some((s, _)) = results.iter().find(|(s, _)| s.method == name(m)) else {
                bail!("--remove-by {m}: that method is not in --methods");
            };
            for (d, f) in drop.iter_mut().zip(&s.flagged) {
                *d |= *f;
            }
        }
        let keep: Vec<usize> = (0..data.len()).filter(|&i| !drop[i]).collect();
        let x = aisec_model::fit::gather(&data.x, &keep);
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        write_npz(
            std::io::BufWriter::new(f),
            &[
                ("x", NpyArray::F32(&x.shape, &x.data)),
                (
                    "y",
                    NpyArray::I64(
                        &[keep.len()],
                        keep.iter().map(|&i| data.y[i] as i64).collect(),
                    ),
                ),
            ],
        )?;
    }

    let mut report = Report::new("defend data");
    report.add_rules(aisec_defend::RULES);
    let loc = a.data.display().to_string();
    let ac = results
        .iter()
        .find(|(s, _)| s.method == "activation-clustering")
        .map(|(s, _)| s);
    if let Some(ac) = ac.filter(|s| s.flagged_count() > 0) {
        // Agreement: share of AC's flags another method also flags.
        let others: Vec<&DataScores> = results
            .iter()
            .map(|(s, _)| s)
            .filter(|s| s.method != ac.method)
            .collect();
        let agree = ac
            .flagged
            .iter()
            .enumerate()
            .filter(|(i, &f)| f && others.iter().any(|o| o.flagged[*i]))
            .count() as f32
            / ac.flagged_count() as f32;
        let classes_hit: Vec<String> = ac
            .classes
            .iter()
            .filter(|c| c.flagged > 0)
            .map(|c| {
                format!(
                    "class {} ({} of {}, {:.0}%)",
                    c.class,
                    c.flagged,
                    c.examples,
                    100.0 * c.small_cluster.unwrap_or(0.0)
                )
            })
            .collect();
        let sev = if !others.is_empty() && agree >= 0.5 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut f = aisec_defend::rules::SUSPICIOUS_DATA
            .finding(
                Location::path(&loc),
                format!(
                    "activation clustering flags {} examples in a small separate cluster: {}; {:.0}% of them also flagged by {}",
                    ac.flagged_count(),
                    classes_hit.join(", "),
                    100.0 * agree,
                    if others.is_empty() { "no other method (none run)".to_string() } else { others.iter().map(|o| o.method.as_str()).collect::<Vec<_>>().join(" or ") }
                ),
            )
            .severity(sev)
            .metric("flagged", ac.flagged_count() as u64)
            .metric("agreement", f64::from(agree));
        if let Some(Some(d)) = results
            .iter()
            .position(|(s, _)| s.method == ac.method)
            .map(|i| detections[i])
        {
            f = f
                .metric("precision", f64::from(d.precision))
                .metric("recall", f64::from(d.recall));
        }
        report.extend(vec![f]);
    }
    report.summary.items = data.len() as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report.data.insert(
        "defend_data".into(),
        serde_json::json!({
            "examples": data.len(),
            "classes": classes,
            "methods": results.iter().zip(&detections).map(|((s, secs), d)| serde_json::json!({
                "method": s.method,
                "seconds": secs,
                "flagged": s.flagged_count(),
                "top": s.ranked().into_iter().take(20).collect::<Vec<_>>(),
                "classes": s.classes,
                "detection": d,
            })).collect::<Vec<_>>(),
        }),
    );
    let mut tail = String::from("\nDataset inspection:\n");
    for ((s, secs), d) in results.iter().zip(&detections) {
        tail.push_str(&format!(
            "  {:<22} flagged {:>6}  ({:.2} s)",
            s.method,
            s.flagged_count(),
            secs
        ));
        if let Some(d) = d {
            tail.push_str(&format!(
                "  precision {:.3}  recall {:.3}  FPR {:.3}  AUROC {}",
                d.precision,
                d.recall,
                d.false_positive_rate,
                d.auroc.map_or("-".into(), |v| format!("{v:.3}"))
            ));
        }
        tail.push('\n');
    }
    crate::run::finish_with_tail(report, &a.output, &tail)
}
