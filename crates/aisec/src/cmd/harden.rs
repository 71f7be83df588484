//! `aisec harden`: make a model harder to attack, then re-measure it.
//!
//! - `aisec harden adv`: adversarial training (PGD-AT or TRADES, L-inf or
//!   L2) of a spec model from scratch (`--arch`) or of an existing model
//!   (`--model`: ONNX, or safetensors with its spec), with checkpoints and
//!   `--resume`; clean and AutoAttack accuracy before and after, and a
//!   RobustBench-style JSON entry.
//! - `aisec harden dp`: DP-SGD training with the privacy accountant
//!   (`--target-epsilon` picks the noise multiplier); epsilon per epoch and
//!   the test accuracy before and after.
//!
//! Both report what was done and the measurements as Report data, and a
//! finding (AISEC-HARDEN-001 / -002) an assessment can cite as evidence
//! of the control.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aisec_attack::{Budget, Norm};
use aisec_core::{Location, Report, Severity};
use aisec_harden::advtrain::{
    adv_train, autoattack_eval, pgd_accuracy, robustbench_entry, stored_options, AdvConfig,
    AdvEvent, AdvOptions, Method, RobustEval,
};
use aisec_harden::dpsgd::{train_dp, DpSgdConfig};
use aisec_harden::order::EpochOrders;
use aisec_model::checkpoint::Checkpoint;
use aisec_model::data::Dataset;
use aisec_model::fit::{evaluate, split_dataset, CheckpointPolicy, Schedule, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, WeightDecay};
use aisec_model::{Classifier, OnnxModel};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::args::{InputRange, PreprocessArgs};
use crate::data::check_labels;
use crate::output::OutputArgs;

/// Arguments of `aisec harden`.
#[derive(Debug, clap::Args)]
pub struct HardenArgs {
    #[command(subcommand)]
    pub command: HardenCommand,
}

/// The hardening methods.
#[derive(Debug, clap::Subcommand)]
pub enum HardenCommand {
    /// Adversarial training (PGD-AT, TRADES), then AutoAttack before/after and a RobustBench-style entry.
    Adv(Box<AdvArgs>),
    /// Differentially private training (DP-SGD with an RDP/PLD privacy accountant).
    Dp(Box<DpArgs>),
}

/// The model and data every hardening run takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Training data: `.npz` (arrays `x` and `y`), `.npy` or IDX inputs (with `--labels`), a CSV table, or a folder of images.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,

    /// Labels for `.npy` / IDX inputs.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Start from this model: ONNX (fine-tuned and written back as ONNX), or safetensors weights with their spec.
    #[arg(
        long,
        value_name = "MODEL",
        conflicts_with = "arch",
        required_unless_present = "arch"
    )]
    pub model: Option<PathBuf>,

    /// Architecture spec when --model is a safetensors file [default: the .spec.json beside it].
    #[arg(long, value_name = "FILE", requires = "model")]
    pub spec: Option<PathBuf>,

    /// Train a fresh spec model of this architecture (JSON/TOML) instead of starting from --model.
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<PathBuf>,

    /// Test data for the before/after measurements (same formats as DATA) [default: a --val-split hold-out of DATA].
    #[arg(long, value_name = "DATA")]
    pub test: Option<PathBuf>,

    /// Labels for `--test` when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub test_labels: Option<PathBuf>,

    /// Without --test, hold out this fraction of DATA (seeded) for the measurements.
    #[arg(long, default_value_t = 0.2, value_name = "FRACTION")]
    pub val_split: f32,

    #[command(flatten)]
    pub range: InputRange,

    #[command(flatten)]
    pub prep: PreprocessArgs,

    /// Passes over the training data [default: 10, or the checkpoint's with --resume].
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Optimiser: sgd (with momentum) or adam.
    #[arg(long, default_value = "sgd", value_parser = ["sgd", "adam"])]
    pub optimizer: String,

    /// Learning rate [default: 0.05 for sgd, 0.001 for adam].
    #[arg(long)]
    pub lr: Option<f32>,

    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,

    /// Seed of initialisation, shuffling, sampling, noise and attacks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Where to write the hardened model: `.onnx`, or `.safetensors` (spec models; the spec is written beside it).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Also export the hardened model as ONNX.
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `aisec harden adv`.
#[derive(Debug, clap::Args)]
pub struct AdvArgs {
    #[command(flatten)]
    pub common: Common,

    /// Training objective: pgd-at (Madry et al. 2018) or trades (Zhang et al. 2019).
    #[arg(long, default_value = "pgd-at", value_parser = ["pgd-at", "trades"])]
    pub method: String,

    /// TRADES trade-off between clean accuracy and robustness.
    #[arg(long, default_value_t = 6.0)]
    pub beta: f32,

    /// Threat-model norm: linf or l2.
    #[arg(long, default_value = "linf", value_parser = ["linf", "l2"])]
    pub norm: String,

    /// Training and evaluation radius (in the input range --lo..--hi).
    #[arg(long)]
    pub eps: f32,

    /// Inner PGD steps per batch.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,

    /// Inner step size [default: 2.5 * eps / steps].
    #[arg(long)]
    pub step_size: Option<f32>,

    /// Grow eps linearly over the first K epochs.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub eps_warmup: usize,

    /// Fraction of each batch replaced by adversarial examples (PGD-AT; 1 = all).
    #[arg(long, default_value_t = 1.0)]
    pub adv_fraction: f32,

    /// Examples per step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,

    /// Learning-rate schedule: constant, step:EVERY[:GAMMA], cosine[:MIN_LR].
    #[arg(long, default_value = "constant")]
    pub schedule: String,

    /// Weight decay (an L2 penalty).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,

    /// PGD steps of the robust accuracy measured on the test data after every epoch (0: off).
    #[arg(long, default_value_t = 10)]
    pub eval_steps: usize,

    /// Test examples attacked after every epoch and by AutoAttack before and after.
    #[arg(long, default_value_t = 200)]
    pub eval_examples: usize,

    /// Skip AutoAttack (the before/after numbers are then PGD's).
    #[arg(long)]
    pub no_autoattack: bool,

    /// Keep the data's order every epoch (no shuffling), e.g. to replay
    /// another framework's run example for example.
    #[arg(long)]
    pub no_shuffle: bool,

    /// Train epoch e in the order of row e of FILE instead of shuffling:
    /// a `.npy` integer array [epochs, examples] or a JSON array of arrays,
    /// each row a permutation of 0..examples (e.g. another framework's
    /// shuffles, to replay its run).
    #[arg(long, value_name = "FILE", conflicts_with = "no_shuffle")]
    pub order: Option<PathBuf>,

    /// AutoAttack's APGD and FAB iterations.
    #[arg(long, default_value_t = 100)]
    pub aa_steps: usize,

    /// AutoAttack's Square query budget per example.
    #[arg(long, default_value_t = 5000)]
    pub aa_queries: u64,

    /// Write the RobustBench-style JSON entry of the hardened model here.
    #[arg(long, value_name = "FILE")]
    pub robustbench: Option<PathBuf>,

    /// Name and data set for the RobustBench entry.
    #[arg(long, default_value = "aisec-hardened")]
    pub name: String,

    /// Data set name for the RobustBench entry.
    #[arg(long, default_value = "custom")]
    pub dataset: String,

    /// Write `checkpoint.safetensors` here every `--checkpoint-every` epochs and at the end.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Epochs between checkpoints.
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,

    /// Continue a run from its checkpoint (file or --checkpoint-dir folder); its settings are used, --epochs may extend it.
    /// Give the same --model or --arch (and DATA) as the run being resumed: they define the
    /// architecture, the checkpoint supplies the weights.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
}

/// Arguments of `aisec harden dp`.
#[derive(Debug, clap::Args)]
pub struct DpArgs {
    #[command(flatten)]
    pub common: Common,

    /// Expected examples per step; Poisson sampling at rate q = this / examples.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,

    /// Noise multiplier (sigma); without it --target-epsilon picks one.
    #[arg(
        long,
        conflicts_with = "target_epsilon",
        required_unless_present = "target_epsilon"
    )]
    pub noise_multiplier: Option<f64>,

    /// Epsilon to reach after the last epoch; the RDP accountant picks the noise multiplier.
    #[arg(long)]
    pub target_epsilon: Option<f64>,

    /// Delta of the (epsilon, delta) guarantee.
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f64,

    /// Per-example gradient clipping norm.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
}

/// Runs `aisec harden`.
pub fn run(a: HardenArgs) -> anyhow::Result<i32> {
    match a.command {
        HardenCommand::Adv(a) => adv(*a),
        HardenCommand::Dp(a) => dp(*a),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The model to harden, its spec when it has one, and whether it was
/// trained before (so a "before" measurement means something).
fn load_model(c: &Common) -> anyhow::Result<(OnnxModel, Option<ArchSpec>, bool)> {
    let read_spec = |p: &Path| -> anyhow::Result<ArchSpec> {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read spec {}", p.display()))?;
        ArchSpec::parse(&text).with_context(|| format!("in {}", p.display()))
    };
    if let Some(arch) = &c.arch {
        let spec = read_spec(arch)?;
        let m = OnnxModel::from_spec(&spec, c.seed)?;
        return Ok((m, Some(spec), false));
    }
    let model = c.model.as_deref().context("give --model or --arch")?;
    let m = crate::cmd::target::load_local(model, c.spec.as_deref())?;
    let spec_path = c.spec.clone().or_else(|| {
        let beside = model.with_extension("spec.json");
        (model.extension().and_then(|e| e.to_str()) == Some("safetensors") && beside.is_file())
            .then_some(beside)
    });
    let spec = spec_path.as_deref().map(read_spec).transpose()?;
    Ok((m, spec, true))
}

/// Loads a data set shaped for the model's input with the shared loader
/// ([`crate::args::load_checked`]: declared preprocessing, range and NaN
/// checks) and checks its labels against the model's classes.
fn load_set(
    c: &Common,
    path: &Path,
    labels: Option<&Path>,
    model: &OnnxModel,
    what: &str,
) -> anyhow::Result<Dataset> {
    let input = model.input_shape().to_vec();
    let d = crate::args::load_checked(path, labels, "last", &input, &c.prep, &c.range, what)?;
    check_labels(&d.y, model.num_classes(), what)?;
    Ok(d)
}

/// Training and test sets.
fn load_sets(c: &Common, model: &OnnxModel) -> anyhow::Result<(Dataset, Dataset)> {
    let train = load_set(c, &c.data, c.labels.as_deref(), model, "training data")?;
    match &c.test {
        Some(t) => {
            let test = load_set(c, t, c.test_labels.as_deref(), model, "test data")?;
            Ok((train, test))
        }
        None => Ok(split_dataset(&train, c.val_split, c.seed)?),
    }
}

fn optimizer(c: &Common) -> anyhow::Result<Optimizer> {
    let lr =
        c.lr.unwrap_or(if c.optimizer == "sgd" { 0.05 } else { 1e-3 });
    if !(lr.is_finite() && lr > 0.0) {
        bail!("--lr must be a positive number");
    }
    Ok(match c.optimizer.as_str() {
        "sgd" => Optimizer::Sgd {
            lr,
            momentum: c.momentum,
        },
        _ => Optimizer::adam(lr),
    })
}

/// Writes the hardened model where asked; returns the files written.
fn write_model(
    c: &Common,
    model: &OnnxModel,
    spec: Option<&ArchSpec>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut onnx = c.onnx.clone();
    if let Some(out) = &c.out {
        if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        if out.extension().and_then(|e| e.to_str()) == Some("onnx") {
            onnx = onnx.or_else(|| Some(out.clone())).filter(|o| o != out);
            model
                .save_onnx(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            written.push(out.clone());
        } else {
            let spec = spec.context(
                "--out as safetensors needs a spec model (--arch, or --model with its spec); write .onnx instead",
            )?;
            model
                .save_safetensors(out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            let sp = out.with_file_name(format!("{stem}.spec.json"));
            std::fs::write(&sp, spec.to_json() + "\n")
                .with_context(|| format!("cannot write {}", sp.display()))?;
            written.push(out.clone());
            written.push(sp);
        }
    }
    if let Some(o) = onnx {
        model
            .save_onnx(&o)
            .with_context(|| format!("cannot write {}", o.display()))?;
        written.push(o);
    }
    Ok(written)
}

fn bar(show: bool, len: u64, what: &str) -> Option<ProgressBar> {
    show.then(|| {
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {what} {{prefix}} [{{bar:30}}] {{pos}}/{{len}}, {{msg}}, eta {{eta}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    })
}

/// The before/after measurement of `aisec harden adv`.
fn measure(
    a: &AdvArgs,
    model: &OnnxModel,
    test: &Dataset,
    budget: &Budget,
    show: bool,
) -> anyhow::Result<RobustEval> {
    let d = test.slice(0, a.eval_examples.max(1));
    if a.no_autoattack {
        let t0 = Instant::now();
        let clean = f64::from(evaluate(model, &d, 256)?.1);
        let rob = pgd_accuracy(
            model,
            &d,
            budget,
            a.eval_steps.max(1),
            d.len(),
            a.common.seed,
        )?;
        return Ok(RobustEval {
            norm: budget.norm,
            eps: budget.eps,
            examples: d.len(),
            clean_accuracy: clean,
            autoattack_accuracy: f64::from(rob),
            components: vec![(format!("pgd-{}", a.eval_steps.max(1)), f64::from(rob))],
            queries: 0,
            seconds: t0.elapsed().as_secs_f64(),
            complete: true,
        });
    }
    let ctx = crate::cmd::attack::attack_context(show);
    let r = autoattack_eval(model, &d, budget, a.common.seed, &ctx, |c| {
        c.apgd.steps = a.aa_steps.max(1);
        c.fab.steps = a.aa_steps.max(1);
        c.square.max_queries = a.aa_queries.max(1);
    })?;
    ctx.progress().finish();
    Ok(r)
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// Largest `--order` file read (bytes).
const MAX_ORDER_BYTES: u64 = 1 << 30;

/// Reads and checks an `--order` file (each row a permutation; whether it
/// fits the data and epochs is checked once both are known).
fn read_order(p: &Path) -> anyhow::Result<EpochOrders> {
    let len = std::fs::metadata(p)
        .with_context(|| format!("cannot read --order {}", p.display()))?
        .len();
    if len > MAX_ORDER_BYTES {
        bail!(
            "--order {}: {len} bytes, over the {MAX_ORDER_BYTES}-byte limit",
            p.display()
        );
    }
    let bytes = std::fs::read(p).with_context(|| format!("cannot read --order {}", p.display()))?;
    EpochOrders::parse(&bytes).with_context(|| format!("--order {}", p.display()))
}

fn adv(a: AdvArgs) -> anyhow::Result<i32> {
    let c = &a.common;
    c.range.check()?;
    let resume = match &a.resume {
        Some(p) => {
            let f = if p.is_dir() {
                p.join("checkpoint.safetensors")
            } else {
                p.clone()
            };
            Some(
                Checkpoint::load(&f)
                    .with_context(|| format!("cannot read checkpoint {}", f.display()))?,
            )
        }
        None => None,
    };
    let order = a.order.as_deref().map(read_order).transpose()?;
    let (mut model, spec, pretrained) = load_model(c)?;
    let (cfg, train_cfg) = match &resume {
        Some(ck) => {
            let (cfg, run) = stored_options(ck)
                .context("the checkpoint was not written by `aisec harden adv`")?;
            if let Some(stored) = run
                .as_ref()
                .and_then(|r| r.get("data"))
                .and_then(|d| d.as_str())
            {
                if Path::new(stored) != absolute(&c.data) {
                    bail!("DATA differs from the run being resumed ({stored})");
                }
            }
            let tc = TrainConfig {
                epochs: c.epochs.unwrap_or(ck.config.epochs),
                ..ck.config.clone()
            };
            (cfg, tc)
        }
        None => {
            let cfg = AdvConfig {
                method: match a.method.as_str() {
                    "trades" => Method::Trades { beta: a.beta },
                    _ => Method::PgdAt,
                },
                norm: if a.norm == "l2" { Norm::L2 } else { Norm::Linf },
                eps: a.eps,
                lo: c.range.lo,
                hi: c.range.hi,
                steps: a.steps,
                step_size: a.step_size,
                eps_warmup_epochs: a.eps_warmup,
                adv_fraction: a.adv_fraction,
                eval_steps: a.eval_steps,
                eval_examples: a.eval_examples,
            };
            if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) {
                bail!("--weight-decay must be a non-negative number");
            }
            let tc = TrainConfig {
                epochs: c.epochs.unwrap_or(10),
                batch_size: a.batch_size,
                optimizer: optimizer(c)?,
                weight_decay: if a.weight_decay > 0.0 {
                    WeightDecay::L2(a.weight_decay)
                } else {
                    WeightDecay::None
                },
                schedule: Schedule::parse(&a.schedule)?,
                warmup_epochs: 0,
                seed: c.seed,
                shuffle: !a.no_shuffle,
                augment: Default::default(),
            };
            (cfg, tc)
        }
    };
    cfg.validate()?;
    train_cfg.validate()?;
    let (train, test) = load_sets(c, &model)?;
    let budget = Budget {
        norm: cfg.norm,
        eps: cfg.eps,
        lo: cfg.lo,
        hi: cfg.hi,
    };
    let show = crate::run::show_progress(c.no_progress);
    let started = Instant::now();
    // Before: only a trained model's numbers mean anything (and a resumed
    // run's starting point is not the original model).
    let before = if pretrained && resume.is_none() {
        crate::run::note("aisec harden: measuring the model before training\n");
        Some(measure(&a, &model, &test, &budget, show)?)
    } else {
        None
    };

    let cancel = crate::run::cancel();
    let ck_path = match &a.checkpoint_dir {
        Some(d) => Some(d.join("checkpoint.safetensors")),
        None => c.out.as_ref().map(|o| {
            let stem = o
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            o.with_file_name(format!("{stem}.checkpoint.safetensors"))
        }),
    };
    let checkpoint = ck_path.map(|path| CheckpointPolicy {
        path,
        every: if a.checkpoint_dir.is_some() {
            a.checkpoint_every
        } else {
            0
        },
        at_end: a.checkpoint_dir.is_some(),
        run_options: Some(serde_json::json!({ "data": absolute(&c.data) })),
    });
    let batches = train.len().div_ceil(train_cfg.batch_size.max(1));
    let pb = bar(show, (train_cfg.epochs * batches) as u64, "epoch");
    if let (Some(pb), Some(ck)) = (&pb, &resume) {
        pb.set_position((ck.epochs_done * batches + ck.batches_done) as u64);
        pb.reset_eta();
    }
    let epochs = train_cfg.epochs;
    let hist = adv_train(
        &mut model,
        &train,
        &train_cfg,
        &cfg,
        AdvOptions {
            val: Some(&test),
            spec: spec.as_ref(),
            checkpoint,
            resume,
            cancel: Some(&cancel),
            order: order.as_ref(),
        },
        |e| match e {
            AdvEvent::Batch { epoch, loss, .. } => {
                if let Some(pb) = &pb {
                    pb.inc(1);
                    pb.set_prefix(format!("{epoch}/{epochs}"));
                    pb.set_message(format!("loss {loss:.4}"));
                }
            }
            AdvEvent::Epoch(s) => {
                let line = epoch_line(s);
                match &pb {
                    Some(pb) => pb.println(line),
                    None => crate::run::note(line),
                }
            }
        },
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }

    let mut report = Report::new("harden adv");
    report.add_rules(aisec_harden::RULES);
    let subject = c
        .model
        .as_ref()
        .or(c.arch.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut after = None;
    let mut written = Vec::new();
    let mut entry = None;
    if hist.cancelled {
        crate::run::mark_incomplete(
            &mut report,
            &match &hist.checkpoint {
                Some(p) => format!("interrupted: resume with --resume {}", p.display()),
                None => "interrupted before a checkpoint could be written".into(),
            },
        );
    } else {
        written = write_model(c, &model, spec.as_ref())?;
        crate::run::note("aisec harden: measuring the hardened model\n");
        let r = measure(&a, &model, &test, &budget, show)?;
        let arch = spec
            .as_ref()
            .map(|s| format!("aisec spec: {}", s.to_json()))
            .unwrap_or_else(|| "ONNX".into());
        let e = robustbench_entry(&a.name, &arch, &a.dataset, &r);
        if let Some(p) = &a.robustbench {
            std::fs::write(p, serde_json::to_string_pretty(&e)? + "\n")
                .with_context(|| format!("cannot write {}", p.display()))?;
            written.push(p.clone());
        }
        entry = Some(e);
        let rose = before
            .as_ref()
            .is_none_or(|b| r.autoattack_accuracy > b.autoattack_accuracy);
        let attack = if a.no_autoattack { "PGD" } else { "AutoAttack" };
        let mut evidence = format!(
            "{} at {} eps {} ({} steps{}), {} epochs: {attack} accuracy {} (clean {}) on {} examples",
            cfg.method.name(),
            cfg.norm.as_str(),
            cfg.eps,
            cfg.steps,
            match cfg.method {
                Method::Trades { beta } => format!(", beta {beta}"),
                Method::PgdAt => String::new(),
            },
            hist.epochs.len(),
            pct(r.autoattack_accuracy),
            pct(r.clean_accuracy),
            r.examples
        );
        if let Some(b) = &before {
            let _ = write!(
                evidence,
                "; before: {attack} accuracy {} (clean {})",
                pct(b.autoattack_accuracy),
                pct(b.clean_accuracy)
            );
        }
        let mut f = aisec_harden::rules::ADVERSARIAL_TRAINING
            .finding(Location::path(&subject), evidence)
            .metric("method", cfg.method.name())
            .metric("eps", cfg.eps)
            .metric("norm", cfg.norm.as_str())
            .metric("clean_accuracy", r.clean_accuracy)
            .metric("robust_accuracy", r.autoattack_accuracy);
        if let Some(b) = &before {
            f = f
                .metric("clean_accuracy_before", b.clean_accuracy)
                .metric("robust_accuracy_before", b.autoattack_accuracy);
        }
        if !rose {
            f = f
                .severity(Severity::Medium)
                .title("Adversarial training did not raise the measured robust accuracy");
        }
        report.extend([f]);
        after = Some(r);
    }
    report.summary.items = train.len() as u64;
    report.summary.seconds = started.elapsed().as_secs_f64();
    report.data.insert(
        "harden".into(),
        serde_json::json!({
            "method": cfg.method.name(),
            "adversarial": cfg,
            "training": train_cfg,
            "examples": train.len(),
            "test_examples": test.len(),
            "before": before,
            "after": after,
            "history": hist,
            "order_file": a.order.as_ref().map(|p| p.display().to_string()),
            "robustbench": entry,
            "written": written,
        }),
    );
    report.finish();
    let mut tail = String::new();
    if let Some(r) = &after {
        let _ = writeln!(
            tail,
            "hardening ({}, {} eps {}):",
            cfg.method.name(),
            cfg.norm.as_str(),
            cfg.eps
        );
        let attack = if a.no_autoattack { "pgd" } else { "autoattack" };
        let _ = writeln!(tail, "  {:<8} {:>10} {:>12}", "", "clean", attack);
        if let Some(b) = &before {
            let _ = writeln!(
                tail,
                "  {:<8} {:>10} {:>12}",
                "before",
                pct(b.clean_accuracy),
                pct(b.autoattack_accuracy)
            );
        }
        let _ = writeln!(
            tail,
            "  {:<8} {:>10} {:>12}",
            "after",
            pct(r.clean_accuracy),
            pct(r.autoattack_accuracy)
        );
    }
    for e in &hist.epochs {
        tail.push_str(&epoch_line(e));
        tail.push('\n');
    }
    if !written.is_empty() {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(tail, "wrote {}", names.join(", "));
    }
    crate::run::finish_with_tail(report, &c.output, &tail)
}

fn epoch_line(e: &aisec_harden::advtrain::AdvEpoch) -> String {
    let mut s = format!(
        "epoch {:>3}  eps {:.4}  loss {:.4}  train robust {:6.2}%",
        e.epoch,
        e.eps,
        e.loss,
        100.0 * e.train_robust_accuracy
    );
    if let Some(v) = e.val_accuracy {
        let _ = write!(s, "  test clean {:6.2}%", 100.0 * v);
    }
    if let Some(v) = e.val_robust_accuracy {
        let _ = write!(s, "  test pgd {:6.2}%", 100.0 * v);
    }
    let _ = write!(s, "  {:.2} s", e.seconds);
    s
}

fn dp(a: DpArgs) -> anyhow::Result<i32> {
    let c = &a.common;
    c.range.check()?;
    let (mut model, spec, pretrained) = load_model(c)?;
    let (train, test) = load_sets(c, &model)?;
    if a.batch_size == 0 || a.batch_size > train.len() {
        bail!(
            "--batch-size must be between 1 and the {} training examples",
            train.len()
        );
    }
    #[allow(clippy::cast_precision_loss)]
    let q = a.batch_size as f64 / train.len() as f64;
    for (flag, v) in [("--delta", a.delta), ("--max-grad-norm", a.max_grad_norm)] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{flag} must be a positive number");
        }
    }
    if a.delta >= 1.0 {
        bail!("--delta must be below 1");
    }
    let cfg = DpSgdConfig {
        epochs: c.epochs.unwrap_or(10),
        sample_rate: q,
        noise_multiplier: a.noise_multiplier,
        target_epsilon: a.target_epsilon,
        delta: a.delta,
        max_grad_norm: a.max_grad_norm,
        optimizer: optimizer(c)?,
        seed: c.seed,
    };
    let started = Instant::now();
    let before = if pretrained {
        Some(evaluate(&model, &test, 256)?.1)
    } else {
        None
    };
    let cancel = crate::run::cancel();
    let show = crate::run::show_progress(c.no_progress);
    let pb = bar(show, cfg.epochs as u64, "dp-sgd epochs");
    let r = train_dp(
        &mut model,
        spec.as_ref(),
        &train,
        Some(&test),
        &cfg,
        &cancel,
        |e| {
            let line = format!(
            "epoch {:>3}  loss {:.4}  epsilon {:.3} (RDP, delta {})  test acc {}  clipped {:.0}%  {:.2} s",
            e.epoch,
            e.loss,
            e.epsilon_rdp,
            cfg.delta,
            e.test_accuracy
                .map(|v| pct(f64::from(v)))
                .unwrap_or_else(|| "-".into()),
            100.0 * e.clipped,
            e.seconds
        );
            match &pb {
                Some(pb) => {
                    pb.inc(1);
                    pb.println(line);
                }
                None => crate::run::note(line),
            }
        },
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let after = r.epochs.last().and_then(|e| e.test_accuracy);
    let mut report = Report::new("harden dp");
    report.add_rules(aisec_harden::RULES);
    let subject = c
        .model
        .as_ref()
        .or(c.arch.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut written = Vec::new();
    if r.incomplete {
        crate::run::mark_incomplete(&mut report, "interrupted: the model was not written");
    } else {
        written = write_model(c, &model, spec.as_ref())?;
        let mut evidence = format!(
            "DP-SGD: noise multiplier {:.4}, sampling rate {:.5}, {} steps, clip {}: epsilon {:.3} (RDP) / {:.3} (PLD) at delta {}",
            r.noise_multiplier, r.sample_rate, r.steps, r.max_grad_norm, r.epsilon_rdp, r.epsilon_pld, r.delta
        );
        if let Some(acc) = after {
            let _ = write!(evidence, "; test accuracy {}", pct(f64::from(acc)));
        }
        if let Some(b) = before {
            let _ = write!(evidence, " (before {})", pct(f64::from(b)));
        }
        let mut f = aisec_harden::rules::DP_TRAINING
            .finding(Location::path(&subject), evidence)
            .metric("epsilon_rdp", r.epsilon_rdp)
            .metric("epsilon_pld", r.epsilon_pld)
            .metric("delta", r.delta)
            .metric("noise_multiplier", r.noise_multiplier);
        if let Some(acc) = after {
            f = f.metric("test_accuracy", f64::from(acc));
        }
        if r.epsilon_pld.min(r.epsilon_rdp) > 10.0 {
            f = f
                .severity(Severity::Low)
                .title("Model was trained with DP-SGD at a weak privacy budget (epsilon above 10)");
        }
        report.extend([f]);
    }
    report.summary.items = train.len() as u64;
    report.summary.seconds = started.elapsed().as_secs_f64();
    report.data.insert(
        "harden".into(),
        serde_json::json!({
            "method": "dp-sgd",
            "config": cfg,
            "examples": train.len(),
            "test_examples": test.len(),
            "test_accuracy_before": before,
            "test_accuracy_after": after,
            "dp": r,
            "written": written,
        }),
    );
    report.finish();
    let mut tail = format!(
        "DP-SGD: sigma {:.4}, q {:.5}, {} steps: epsilon {:.3} (RDP) / {:.3} (PLD) at delta {}\n",
        r.noise_multiplier, r.sample_rate, r.steps, r.epsilon_rdp, r.epsilon_pld, r.delta
    );
    if let (Some(b), Some(acc)) = (before, after) {
        let _ = writeln!(
            tail,
            "test accuracy {} -> {}",
            pct(f64::from(b)),
            pct(f64::from(acc))
        );
    } else if let Some(acc) = after {
        let _ = writeln!(tail, "test accuracy {}", pct(f64::from(acc)));
    }
    if !written.is_empty() {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(tail, "wrote {}", names.join(", "));
    }
    crate::run::finish_with_tail(report, &c.output, &tail)
}

/// The bundled digits CNN and data (see crates/aisec/assets/README.md).
const DIGITS_CNN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/digits_cnn.onnx"
));
const DIGITS_X: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.x.npy"));
const DIGITS_Y: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.y.npy"));

/// `aisec demo`'s hardening section: PGD-AT fine-tuning of the bundled
/// digits CNN (L-inf 0.1, the evasion section's budget) for a few epochs
/// on 1,500 digits; PGD-10 robust accuracy on the last 200 digits before
/// and after. Writes `dir/models/digits_cnn_hardened.onnx`.
pub fn demo_hardening(dir: &Path) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut model = OnnxModel::from_bytes(DIGITS_CNN.to_vec())?;
    let mut x = aisec_model::data::npy::parse_npy(DIGITS_X)?.to_tensor();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let y = aisec_model::data::npy::parse_npy(DIGITS_Y)?.to_labels()?;
    let all = Dataset::new(x, y)?;
    let n = all.len();
    let (train, test) = (all.slice(0, 1500), all.slice(n.saturating_sub(200), n));
    let budget = Budget {
        norm: Norm::Linf,
        eps: 0.1,
        lo: 0.0,
        hi: 1.0,
    };
    let measure = |m: &OnnxModel| -> anyhow::Result<(f32, f32)> {
        Ok((
            evaluate(m, &test, 256)?.1,
            pgd_accuracy(m, &test, &budget, 10, test.len(), 7)?,
        ))
    };
    let before = measure(&model)?;
    let mut cfg = AdvConfig::pgd_at(Norm::Linf, 0.1, 5);
    cfg.eps_warmup_epochs = 1;
    let tc = TrainConfig {
        epochs: 5,
        batch_size: 50,
        optimizer: Optimizer::adam(5e-3),
        seed: 1,
        ..TrainConfig::default()
    };
    let cancel = crate::run::cancel();
    let hist = adv_train(
        &mut model,
        &train,
        &tc,
        &cfg,
        AdvOptions {
            cancel: Some(&cancel),
            ..AdvOptions::default()
        },
        |_| {},
    )?;
    let after = measure(&model)?;
    let out = dir.join("models/digits_cnn_hardened.onnx");
    if let Some(p) = out.parent() {
        std::fs::create_dir_all(p)?;
    }
    model.save_onnx(&out)?;
    let mut report = Report::new("demo hardening");
    report.add_rules(aisec_harden::RULES);
    let evidence = format!(
        "pgd-at at linf eps 0.1 (5 steps), {} epochs on 1500 digits: PGD-10 accuracy {} -> {} \
         (clean {} -> {}) on 200 held-out digits; hardened model {}",
        hist.epochs.len(),
        pct(f64::from(before.1)),
        pct(f64::from(after.1)),
        pct(f64::from(before.0)),
        pct(f64::from(after.0)),
        out.display()
    );
    let mut f = aisec_harden::rules::ADVERSARIAL_TRAINING
        .finding(Location::path("models/digits_cnn.onnx"), evidence)
        .title("Digits CNN adversarially fine-tuned (PGD-AT); robustness re-measured with PGD")
        .metric("method", "pgd-at")
        .metric("eps", 0.1)
        .metric("clean_accuracy_before", before.0)
        .metric("robust_accuracy_before", before.1)
        .metric("clean_accuracy", after.0)
        .metric("robust_accuracy", after.1);
    if after.1 <= before.1 {
        f = f
            .severity(Severity::Medium)
            .title("Adversarial training did not raise the measured robust accuracy");
    }
    report.extend([f]);
    report.data.insert(
        "hardening".into(),
        serde_json::json!({
            "method": "pgd-at",
            "eps": 0.1,
            "epochs": hist.epochs,
            "before": {"clean_accuracy": before.0, "pgd10_accuracy": before.1},
            "after": {"clean_accuracy": after.0, "pgd10_accuracy": after.1},
            "model": out,
        }),
    );
    report.summary.seconds = started.elapsed().as_secs_f64();
    if hist.cancelled {
        crate::run::mark_incomplete(&mut report, "interrupted during hardening");
    }
    report.finish();
    Ok(report)
}
