//! `aisec attack …`: attacks against models loaded at run time.

use std::path::{Path, PathBuf};

use aisec_attack::{run_evasion, AttackContext, AttackKind, EvasionConfig, EvasionReport, Norm};
use aisec_core::Report;
use aisec_model::data::images::ImageOptions;
use aisec_model::data::normalize::Normalized;
use aisec_model::data::stream::{open_source, DataSource};
use aisec_model::data::Dataset;
use aisec_model::{Classifier, Differentiable, OnnxModel, Tensor};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{check_inputs, check_labels, Fix};
use crate::output::OutputArgs;

/// Arguments of `aisec attack`.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    #[command(subcommand)]
    pub kind: AttackCommand,
}

/// The attack families.
// Parsed once per run: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum AttackCommand {
    /// Adversarial examples (FGSM, PGD, C&W, DeepFool, AutoAttack, Square, HopSkipJump): robust accuracy of a model (ONNX, or safetensors + spec).
    Evasion(EvasionArgs),
    /// Model inversion (MI-Face): reconstruct a representative input per class from a model's gradients.
    Inversion(crate::cmd::inversion::InversionArgs),
    /// Model extraction (Knockoff Nets / Copycat / Jacobian augmentation): train a surrogate through the query interface.
    Extraction(crate::cmd::extraction::ExtractionArgs),

    /// Membership inference (loss threshold, LiRA with shadow models): can training examples be told from unseen ones?
    Membership(crate::cmd::membership::MembershipArgs),

    /// Data poisoning (BadNets, Blended, WaNet, clean-label): a poisoned copy of a data set, its trigger and ground truth; with --arch and --test, the victim's clean accuracy and attack success rate.
    Poison(Box<crate::cmd::poison::PoisonArgs>),
}

/// Arguments of `aisec attack evasion`.
#[derive(Debug, clap::Args)]
pub struct EvasionArgs {
    #[command(flatten)]
    pub model: crate::cmd::target::ModelArgs,

    /// Inputs: a `.npy` array (batch first), an MNIST-style IDX file (optionally .gz), a `.csv` table (last column the label), or a folder of PNG/JPEG images with one subfolder per class (resized to the model's input size).
    #[arg(long, value_name = "PATH")]
    pub inputs: PathBuf,

    /// Labels: a `.npy` integer array or an IDX label file (not with an image folder or CSV).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    #[command(flatten)]
    pub norm_args: crate::args::NormalizeArgs,

    /// Attacks, comma-separated: fgsm, bim, pgd, cw-l2, deepfool, apgd-ce, apgd-dlr, apgd-t, fab-t, square, hop-skip-jump, autoattack.
    #[arg(long, default_value = "pgd", value_delimiter = ',')]
    pub attacks: Vec<String>,

    /// Threat-model norm: linf or l2.
    #[arg(long, default_value = "linf")]
    pub norm: String,

    /// Perturbation budget in input space (e.g. 0.3, or 8/255 written as 0.0314).
    #[arg(long, default_value_t = 0.1)]
    pub eps: f32,

    /// Iterations for PGD/BIM.
    #[arg(long, default_value_t = 40)]
    pub steps: usize,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Target class for targeted attacks.
    #[arg(long)]
    pub target: Option<usize>,

    /// Use only the first N examples.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Examples per batch.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,

    /// Budgets for an accuracy-versus-budget curve, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "EPS,...")]
    pub curve: Vec<f32>,

    /// Attack of the curve (default: the strongest requested attack that takes a budget).
    #[arg(long, value_name = "ATTACK")]
    pub curve_attack: Option<String>,

    /// Random seed (runs are deterministic for a seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Save the adversarial examples (with clean inputs and labels) to this `.npz`.
    #[arg(long, value_name = "FILE")]
    pub save_npz: Option<PathBuf>,

    /// Save a PNG grid of clean / adversarial / difference images.
    #[arg(long, value_name = "FILE")]
    pub save_png: Option<PathBuf>,

    /// Save the per-example outputs (labels, predictions, success, norms, queries per attack) as JSON Lines.
    #[arg(long, value_name = "FILE")]
    pub save_examples: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `aisec attack`.
pub fn run(args: AttackArgs) -> anyhow::Result<i32> {
    match args.kind {
        AttackCommand::Evasion(a) => evasion(a),
        AttackCommand::Inversion(a) => crate::cmd::inversion::run(a),
        AttackCommand::Extraction(a) => crate::cmd::extraction::run(a),

        AttackCommand::Membership(a) => crate::cmd::membership::run(a),
        AttackCommand::Poison(a) => crate::cmd::poison::run(*a),
    }
}

pub(crate) fn load_inputs(path: &Path) -> anyhow::Result<Tensor> {
    if is_npy(path) {
        Ok(aisec_model::data::npy::read_npy(path)
            .with_context(|| format!("cannot read inputs {}", path.display()))?
            .to_tensor())
    } else {
        aisec_model::data::idx::read_idx(path).with_context(|| {
            format!(
                "cannot read inputs {} (expected .npy or IDX)",
                path.display()
            )
        })
    }
}

pub(crate) fn load_labels(path: &Path) -> anyhow::Result<Vec<usize>> {
    aisec_model::data::read_labels(path).with_context(|| {
        format!(
            "cannot read labels {} (expected .npy or IDX)",
            path.display()
        )
    })
}

fn is_npy(path: &Path) -> bool {
    std::fs::File::open(path)
        .and_then(|mut f| {
            use std::io::Read;
            let mut m = [0u8; 6];
            f.read_exact(&mut m).map(|_| m == *b"\x93NUMPY")
        })
        .unwrap_or(false)
}

/// Streams the inputs batch by batch (reading only the first `--limit`
/// examples), preprocessing each batch, with a progress bar.
fn load_data(a: &EvasionArgs, model: &OnnxModel, show: bool) -> anyhow::Result<Dataset> {
    let shape = model.input_shape();
    let image = match shape {
        [c, h, w] if (*c == 1 || *c == 3) => ImageOptions {
            width: u32::try_from(*w)?,
            height: u32::try_from(*h)?,
            channels: *c,
        },
        _ if a.inputs.is_dir() => {
            bail!("an image folder needs a model with a [1 or 3, h, w] input, not {shape:?}")
        }
        _ => ImageOptions {
            width: 1,
            height: 1,
            channels: 1,
        },
    };
    let src = open_source(&a.inputs, a.labels.as_deref(), image)
        .with_context(|| format!("cannot read inputs {}", a.inputs.display()))?;
    let limit = a.limit.unwrap_or(usize::MAX);
    let total = src.len_hint().map(|n| n.min(limit));
    let pb = show.then(|| {
        let pb = ProgressBar::new(total.unwrap_or(0) as u64);
        pb.set_style(
            ProgressStyle::with_template("{spinner} loading [{bar:30}] {pos}/{len} examples")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });
    let mut x: Vec<f32> = Vec::new();
    let mut y: Vec<usize> = Vec::new();
    let mut ex_shape: Vec<usize> = vec![];
    let batches = src
        .batches(a.batch_size.clamp(1, 4096))
        .preprocess(a.prep.preprocess(&a.range, a.inputs.is_dir())?)
        .on_progress(|done, _| {
            if let Some(pb) = &pb {
                pb.set_position(done.min(limit) as u64);
            }
        });
    for b in batches {
        let b = b.with_context(|| format!("cannot read inputs {}", a.inputs.display()))?;
        let take = b.len().min(limit - y.len());
        ex_shape = b.x.shape[1..].to_vec();
        x.extend_from_slice(&b.x.data[..take * b.x.row_len()]);
        y.extend_from_slice(&b.y[..take]);
        if y.len() >= limit {
            break;
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    // Examples stored in another shape with the same number of values
    // (`[n, 1, 8, 8]` for a model that takes `[64]`, as `aisec train`
    // accepts them) are read in row-major order in the model's shape.
    if ex_shape.iter().product::<usize>() == shape.iter().product::<usize>() {
        ex_shape = shape.to_vec();
    }
    let mut s = vec![y.len()];
    s.extend(ex_shape);
    Ok(Dataset::new(Tensor::new(s, x)?, y)?)
}

/// Builds the attack configuration from the flags.
fn config(a: &EvasionArgs) -> anyhow::Result<EvasionConfig> {
    let attacks = a
        .attacks
        .iter()
        .map(|s| AttackKind::parse(s).with_context(|| format!("unknown attack '{s}'")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let norm = match a.norm.as_str() {
        "linf" | "inf" => Norm::Linf,
        "l2" => Norm::L2,
        other => bail!("unknown norm '{other}' (expected linf or l2)"),
    };
    if !(a.eps >= 0.0 && a.eps.is_finite()) {
        bail!("--eps must be a non-negative number");
    }
    a.range.check()?;
    let mut cfg = EvasionConfig {
        attacks,
        norm,
        eps: a.eps,
        lo: a.range.lo,
        hi: a.range.hi,
        target: a.target,
        seed: a.seed,
        batch_size: a.batch_size.max(1),
        eps_curve: a.curve.clone(),
        curve_attack: a
            .curve_attack
            .as_deref()
            .map(|s| AttackKind::parse(s).with_context(|| format!("unknown attack '{s}'")))
            .transpose()?,
        ..EvasionConfig::default()
    };
    cfg.pgd.steps = a.steps.max(1);
    Ok(cfg)
}

/// Runs an evasion evaluation and returns its report and the raw result.
pub fn evaluate(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    target_name: &str,
    show_progress: bool,
) -> anyhow::Result<(Report, EvasionReport)> {
    // Ctrl-C stops the attacks after the batches in flight; what finished is reported.
    let ctx = attack_context(show_progress);
    let start = std::time::Instant::now();
    let result = run_evasion(model, x, y, cfg, &ctx)?;
    ctx.progress().finish();
    let mut report = Report::new("attack evasion");
    report.add_rules(aisec_attack::RULES);
    report.extend(result.findings(target_name));
    report.summary.items = result.n as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("evasion".into(), serde_json::to_value(&result)?);
    if result.cancelled {
        report.error(
            target_name,
            "interrupted: the numbers cover the batches that finished",
        );
    }
    report.finish();
    Ok((report, result))
}

fn evasion(a: EvasionArgs) -> anyhow::Result<i32> {
    let cfg = config(&a)?;
    let model = a.model.load()?;
    let show = crate::run::show_progress(a.no_progress);
    let data = load_data(&a, &model, show)?;
    check_inputs(
        &data.x,
        "inputs",
        a.range.lo,
        a.range.hi,
        Fix::ScaleOrValueRange,
    )?;
    check_labels(&data.y, model.num_classes(), "labels")?;
    let name = a.model.name();
    let (report, result) = if !a.norm_args.is_set() {
        evaluate(&model, &data.x, &data.y, &cfg, &name, show)?
    } else {
        let m = Normalized::new(model, a.norm_args.mean.clone(), a.norm_args.std.clone())
            .context("--mean/--std do not fit the model")?;
        evaluate(&m, &data.x, &data.y, &cfg, &name, show)?
    };
    if let Some(p) = &a.save_npz {
        result
            .save_npz(p)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    if let Some(p) = &a.save_png {
        result
            .save_png_grid(p, 16)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    if let Some(p) = &a.save_examples {
        result
            .save_examples(p)
            .with_context(|| format!("cannot save {}", p.display()))?;
    }
    let tail = crate::output::Tail {
        text: curve_text(&result),
        html: curve_html(&result),
    };
    crate::run::finish_with(report, &a.output, &tail)
}

/// The accuracy-versus-budget curve for HTML output: a heading, an inline
/// SVG line chart (budget on x, robust accuracy 0..100% on y, one marker
/// per point, labelled with its attack) and the table of points. Empty
/// without `--curve`. Every string from the run is HTML-escaped.
fn curve_html(r: &EvasionReport) -> String {
    use aisec_core::render::html::escape_html;
    use std::fmt::Write as _;
    if r.curve.is_empty() {
        return String::new();
    }
    let norm = match r.norm {
        Norm::Linf => "L-inf",
        Norm::L2 => "L2",
    };
    let (w, h, left, right, top, bottom) = (560.0_f64, 300.0_f64, 56.0, 16.0, 16.0, 44.0);
    let max_eps = r
        .curve
        .iter()
        .map(|p| f64::from(p.eps))
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    let px = |e: f32| left + f64::from(e) / max_eps * (w - left - right);
    let py = |a: f64| top + (1.0 - a.clamp(0.0, 1.0)) * (h - top - bottom);
    let mut o = String::new();
    let _ = write!(
        o,
        "<h2>Robust accuracy versus budget</h2>\n<figure>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"robust accuracy versus {norm} budget\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    // Axes, y grid at 0, 25, 50, 75, 100 %.
    for k in 0..=4 {
        let a = f64::from(k) / 4.0;
        let y = py(a);
        let _ = writeln!(
            o,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
            w - right,
            left - 6.0,
            y + 4.0,
            k * 25
        );
    }
    let _ = writeln!(
        o,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        h - bottom,
        h - bottom,
        w - right,
        h - bottom
    );
    let points: Vec<String> = r
        .curve
        .iter()
        .map(|p| format!("{:.1},{:.1}", px(p.eps), py(p.robust_accuracy)))
        .collect();
    let _ = writeln!(
        o,
        "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    for p in &r.curve {
        let (x, y) = (px(p.eps), py(p.robust_accuracy));
        let _ = writeln!(
            o,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"#c0392b\"><title>eps {} · {:.1}% · {} ({})</title></circle>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            p.eps,
            100.0 * p.robust_accuracy,
            escape_html(&p.attack),
            escape_html(&p.method),
            h - bottom + 14.0,
            p.eps
        );
    }
    let _ = write!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{norm} budget (eps)</text>\
         <text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">robust accuracy</text>\n</svg>\n",
        (left + w - right) / 2.0,
        h - 8.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    let _ = writeln!(
        o,
        "<figcaption>Attack: {}. Clean accuracy {:.1}%.</figcaption>\n</figure>",
        escape_html(r.curve_attack.as_deref().unwrap_or("?")),
        100.0 * r.clean_accuracy
    );
    o.push_str("<table>\n<tr><th>eps</th><th>robust accuracy</th><th>examples</th><th>attack (method)</th></tr>\n");
    for p in &r.curve {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{:.1}%</td><td>{}</td><td>{} ({})</td></tr>",
            p.eps,
            100.0 * p.robust_accuracy,
            p.evaluated,
            escape_html(&p.attack),
            escape_html(&p.method)
        );
    }
    o.push_str("</table>\n");
    o
}

/// The accuracy-versus-budget curve as a text table, each point with the
/// attack that measured it (empty without `--curve`).
fn curve_text(r: &EvasionReport) -> String {
    if r.curve.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "Robust accuracy versus budget ({} norm, attack {}):\n  {:>10}  {:>8}  {:>9}  attack (method)\n",
        match r.norm {
            Norm::Linf => "L-inf",
            Norm::L2 => "L2",
        },
        r.curve_attack.as_deref().unwrap_or("?"),
        "eps",
        "accuracy",
        "examples"
    );
    for p in &r.curve {
        let bar = "#".repeat((p.robust_accuracy * 30.0).round().clamp(0.0, 30.0) as usize);
        s.push_str(&format!(
            "  {:>10.4}  {:>7.1}%  {:>9}  {} ({})  {bar}\n",
            p.eps,
            100.0 * p.robust_accuracy,
            p.evaluated,
            p.attack,
            p.method
        ));
    }
    s
}

/// The context attack commands run in (see [`crate::run`]): a progress
/// bar on a terminal, nothing otherwise, and the Ctrl-C cancel flag.
pub(crate) fn attack_context(show_progress: bool) -> AttackContext {
    AttackContext::new(crate::run::context(!show_progress))
}
