//! `aisec attack …`: attacks against models loaded at run time.

use std::path::{Path, PathBuf};

use aisec_attack::{run_evasion, AttackContext, AttackKind, EvasionConfig, EvasionReport, Norm};
use aisec_core::Report;
use aisec_model::data::images::ImageOptions;
use aisec_model::data::normalize::Normalized;
use aisec_model::data::stream::{open_source, DataSource};
use aisec_model::data::{Dataset, Preprocess};
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
    /// Adversarial examples (FGSM, PGD, C&W, DeepFool, AutoAttack, Square, HopSkipJump): robust accuracy of an ONNX model.
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
    /// The model (ONNX).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Inputs: a `.npy` array (batch first), an MNIST-style IDX file (optionally .gz), a `.csv` table (last column the label), or a folder of PNG/JPEG images with one subfolder per class (resized to the model's input size).
    #[arg(long, value_name = "PATH")]
    pub inputs: PathBuf,

    /// Labels: a `.npy` integer array or an IDX label file (not with an image folder or CSV).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Multiply inputs by this factor after loading (e.g. 0.00392156862745098 for 0-255 images).
    #[arg(long, value_name = "F", conflicts_with = "value_range")]
    pub scale: Option<f32>,

    /// Range of the stored values, mapped linearly onto [--lo, --hi] (e.g. 0,255). Image folders default to 0,255.
    #[arg(long, value_name = "LO,HI", value_delimiter = ',')]
    pub value_range: Vec<f32>,

    /// Arrays are channels-last [n,h,w,c]: reorder to [n,c,h,w].
    #[arg(long)]
    pub channels_last: bool,

    /// Swap the first and third channel (stored BGR, model wants RGB, or the reverse).
    #[arg(long)]
    pub bgr: bool,

    /// Resize array inputs to HxW (bilinear), e.g. 32x32.
    #[arg(long, value_name = "HxW")]
    pub resize: Option<String>,

    /// Per-channel mean the model expects its input normalised with, comma-separated; applied inside the model, so --eps, --lo and --hi stay in pixel space.
    #[arg(long, value_delimiter = ',', value_name = "M,...")]
    pub mean: Vec<f32>,

    /// Per-channel standard deviation for that normalisation.
    #[arg(long, value_delimiter = ',', value_name = "S,...")]
    pub std: Vec<f32>,

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

    /// Lowest valid input value (inputs below it are an error).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub lo: f32,

    /// Highest valid input value (inputs above it are an error: rescale them with --scale).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub hi: f32,

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
    if is_npy(path) {
        Ok(aisec_model::data::npy::read_npy(path)
            .with_context(|| format!("cannot read labels {}", path.display()))?
            .to_labels()?)
    } else {
        let t = aisec_model::data::idx::read_idx(path).with_context(|| {
            format!(
                "cannot read labels {} (expected .npy or IDX)",
                path.display()
            )
        })?;
        Ok(aisec_model::data::labels_from_values(&t.data)
            .with_context(|| format!("labels {}", path.display()))?)
    }
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

fn parse_hw(s: &str) -> anyhow::Result<(usize, usize)> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("--resize '{s}': expected HxW, e.g. 32x32"))?;
    let (h, w): (usize, usize) = (h.trim().parse()?, w.trim().parse()?);
    if h == 0 || w == 0 || h > 16_384 || w > 16_384 {
        bail!("--resize '{s}': sizes must be 1..16384");
    }
    Ok((h, w))
}

/// The preprocessing the flags declare (without mean/std, which the model
/// absorbs), and whether the inputs are an image folder.
fn preprocess(a: &EvasionArgs) -> anyhow::Result<Preprocess> {
    let folder = a.inputs.is_dir();
    if !a.value_range.is_empty() && a.value_range.len() != 2 {
        bail!("--value-range takes two numbers, LO,HI");
    }
    let mut p = match (&a.value_range[..], a.scale) {
        ([lo, hi], _) => Preprocess::value_range((*lo, *hi), (a.lo, a.hi))?,
        (_, Some(s)) => Preprocess {
            scale: s,
            ..Preprocess::default()
        },
        // Decoded images hold 0..=255.
        _ if folder => Preprocess::value_range((0.0, 255.0), (a.lo, a.hi))?,
        _ => Preprocess::default(),
    };
    p.to_channels_first = a.channels_last;
    p.swap_rb = a.bgr;
    p.resize = a.resize.as_deref().map(parse_hw).transpose()?;
    Ok(p)
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
        .preprocess(preprocess(a)?)
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
    if a.lo >= a.hi {
        bail!("--lo must be below --hi");
    }
    let mut cfg = EvasionConfig {
        attacks,
        norm,
        eps: a.eps,
        lo: a.lo,
        hi: a.hi,
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
    let model = OnnxModel::load(&a.model)
        .with_context(|| format!("cannot load model {}", a.model.display()))?;
    let show = crate::run::show_progress(a.no_progress);
    let data = load_data(&a, &model, show)?;
    check_inputs(&data.x, "inputs", a.lo, a.hi, Fix::ScaleOrValueRange)?;
    check_labels(&data.y, model.num_classes(), "labels")?;
    let name = a.model.display().to_string();
    let (report, result) = if a.mean.is_empty() && a.std.is_empty() {
        evaluate(&model, &data.x, &data.y, &cfg, &name, show)?
    } else {
        let m = Normalized::new(model, a.mean.clone(), a.std.clone())
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
    crate::run::finish_with_tail(report, &a.output, &curve_text(&result))
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
