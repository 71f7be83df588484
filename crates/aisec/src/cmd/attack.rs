//! `aisec attack …`: attacks against models loaded at run time.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aisec_attack::{run_evasion, AttackKind, EvasionConfig, EvasionReport, Norm};
use aisec_core::Report;
use aisec_model::{OnnxModel, Tensor};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::{emit, OutputArgs};

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
}

/// Arguments of `aisec attack evasion`.
#[derive(Debug, clap::Args)]
pub struct EvasionArgs {
    /// The model (ONNX).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Inputs: a `.npy` array (batch first) or an MNIST-style IDX file, already in the model's input space.
    #[arg(long, value_name = "FILE")]
    pub inputs: PathBuf,

    /// Labels: a `.npy` integer array or an IDX label file.
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,

    /// Multiply inputs by this factor after loading (e.g. 0.00392156862745098 for 0-255 images).
    #[arg(long, value_name = "F")]
    pub scale: Option<f32>,

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

    /// Lowest valid input value.
    #[arg(long, default_value_t = 0.0)]
    pub lo: f32,

    /// Highest valid input value.
    #[arg(long, default_value_t = 1.0)]
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

    /// Random seed (runs are deterministic for a seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Save the adversarial examples (with clean inputs and labels) to this `.npz`.
    #[arg(long, value_name = "FILE")]
    pub save_npz: Option<PathBuf>,

    /// Save a PNG grid of clean / adversarial / difference images.
    #[arg(long, value_name = "FILE")]
    pub save_png: Option<PathBuf>,

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
        t.data
            .iter()
            .map(|&v| {
                if v >= 0.0 && v.fract() == 0.0 {
                    Ok(v as usize)
                } else {
                    bail!("label {v} is not a class index")
                }
            })
            .collect()
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
        ..EvasionConfig::default()
    };
    cfg.pgd.steps = a.steps.max(1);
    Ok(cfg)
}

/// Runs an evasion evaluation and returns its report and the raw result.
pub fn evaluate(
    model: &OnnxModel,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    target_name: &str,
    show_progress: bool,
) -> anyhow::Result<(Report, EvasionReport)> {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        // Ctrl-C stops the attacks after the batch in flight; what is done is reported.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::SeqCst));
    }
    let pb = if show_progress {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} batches, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_message("attacking");
        pb.enable_steady_tick(Duration::from_millis(200));
        Some(pb)
    } else {
        None
    };
    let progress = |done: usize, total: usize| {
        if let Some(pb) = &pb {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        }
    };
    let start = std::time::Instant::now();
    let result = run_evasion(model, x, y, cfg, Some(&progress), &cancel)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let mut report = Report::new("attack evasion");
    report.add_rules(aisec_attack::rules());
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
    let mut x = load_inputs(&a.inputs)?;
    let mut y = load_labels(&a.labels)?;
    if let Some(s) = a.scale {
        x.data.iter_mut().for_each(|v| *v *= s);
    }
    if x.batch() != y.len() {
        bail!("{} inputs but {} labels", x.batch(), y.len());
    }
    if let Some(n) = a.limit {
        let n = n.min(x.batch());
        let row = x.row_len();
        x.data.truncate(n * row);
        x.shape[0] = n;
        y.truncate(n);
    }
    let show = !a.no_progress && std::io::stderr().is_terminal();
    let (report, result) = evaluate(&model, &x, &y, &cfg, &a.model.display().to_string(), show)?;
    if let Some(p) = &a.save_npz {
        result
            .save_npz(p)
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", p.display()))?;
    }
    if let Some(p) = &a.save_png {
        result
            .save_png_grid(p, 16)
            .map_err(|e| anyhow::anyhow!("cannot save {}: {e}", p.display()))?;
    }
    emit(&report, &a.output)
}
