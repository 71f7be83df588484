//! `aisec train`: train a spec model (MLP, CNN, ResNet-style) on a data set
//! and save it as safetensors (with its spec) and optionally ONNX.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aisec_core::render::Format;
use aisec_core::Report;
use aisec_model::checkpoint::Checkpoint;
use aisec_model::data::csv::LabelColumn;
use aisec_model::data::images::ImageOptions;
use aisec_model::data::Dataset;
use aisec_model::fit::{
    fit, Augment, CheckpointPolicy, FitEvent, FitOptions, History, Schedule, TrainConfig,
};
use aisec_model::spec::ArchSpec;
use aisec_model::train::{Optimizer, WeightDecay};
use aisec_model::{OnnxModel, Tensor};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::ReportArgs;

/// Arguments of `aisec train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training data: `.npz` (arrays `x` and `y`), `.npy` or IDX inputs (with `--labels`), a CSV table, or a folder of images with one subfolder per class. Optional with `--resume` (the checkpoint names it).
    #[arg(value_name = "DATA", required_unless_present = "resume")]
    pub data: Option<PathBuf>,

    /// Architecture spec (JSON or TOML). Optional with `--resume` (the checkpoint has it).
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<PathBuf>,

    /// Labels for `.npy` / IDX inputs.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Label column of a CSV table: `last` (the default), a 0-based index, or a header name.
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,

    /// Preprocessing of DATA and --val (kept by --resume).
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    /// The model's valid input range: training data outside it is an error (kept by --resume).
    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Validation data (same formats as DATA).
    #[arg(long, value_name = "DATA", conflicts_with = "val_split")]
    pub val: Option<PathBuf>,

    /// Labels for `--val` when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub val_labels: Option<PathBuf>,

    /// Hold out this fraction of DATA (seeded shuffle) for validation.
    #[arg(long, value_name = "FRACTION")]
    pub val_split: Option<f32>,

    /// Passes over the training data [default: 10, or the checkpoint's with --resume].
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Examples per step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,

    /// Optimiser: sgd (with momentum), adam, or adamw (Adam with decoupled weight decay).
    #[arg(long, default_value = "adam", value_parser = ["sgd", "adam", "adamw"])]
    pub optimizer: String,

    /// Learning rate [default: 0.05 for sgd, 0.001 for adam/adamw].
    #[arg(long)]
    pub lr: Option<f32>,

    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,

    /// Weight decay: an L2 penalty for sgd/adam, decoupled for adamw.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,

    /// Learning-rate schedule: constant, step:EVERY[:GAMMA], cosine[:MIN_LR].
    #[arg(long, default_value = "constant")]
    pub schedule: String,

    /// Linear warm-up over this many epochs.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,

    /// Image augmentation, comma-separated: crop (4-pixel padding), crop:P, flip.
    #[arg(long, value_name = "LIST")]
    pub augment: Option<String>,

    /// Keep the data's order every epoch (no shuffling).
    #[arg(long)]
    pub no_shuffle: bool,

    /// Seed for initialisation, shuffling, augmentation and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Where to write the trained weights (safetensors); the spec is written beside it as `<name>.spec.json`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Also export the trained model as ONNX.
    #[arg(long, value_name = "FILE")]
    pub onnx: Option<PathBuf>,

    /// Write `checkpoint.safetensors` here every `--checkpoint-every` epochs and at the end.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,

    /// Epochs between checkpoints.
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,

    /// Continue a run from a checkpoint file (or a --checkpoint-dir folder); its settings are used, `--epochs` may extend it.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: ReportArgs,
}

fn magic(path: &Path) -> [u8; 6] {
    let mut m = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open(path) {
        use std::io::Read;
        let _ = f.read(&mut m);
    }
    m
}

fn read_tensor(path: &Path) -> anyhow::Result<Tensor> {
    if magic(path) == *b"\x93NUMPY" {
        Ok(aisec_model::data::npy::read_npy(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .to_tensor())
    } else {
        aisec_model::data::idx::read_idx(path)
            .with_context(|| format!("cannot read {} (expected .npy or IDX)", path.display()))
    }
}

/// Loads a data set in any format the substrate reads, applies `prep` to
/// the inputs as stored, and shapes them for `input` (use
/// [`crate::args::load_checked`], which also checks the values).
pub(crate) fn load_data(
    path: &Path,
    labels: Option<&Path>,
    label_column: &str,
    input: &[usize],
    prep: &aisec_model::data::Preprocess,
) -> anyhow::Result<Dataset> {
    let d = if path.is_dir() {
        let opts = match input {
            [c, h, w] if *c == 1 || *c == 3 => ImageOptions {
                width: u32::try_from(*w)?,
                height: u32::try_from(*h)?,
                channels: *c,
            },
            _ => bail!("an image folder needs a spec input of [1 or 3, h, w], not {input:?}"),
        };
        aisec_model::data::images::read_image_folder(path, &opts)
            .with_context(|| format!("cannot read image folder {}", path.display()))?
            .0
    } else if magic(path)[..4] == *b"PK\x03\x04" {
        let arrays = aisec_model::data::npy::read_npz(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let find = |names: &[&str]| {
            arrays
                .iter()
                .find(|(n, _)| names.contains(&n.trim_end_matches(".npy")))
                .map(|(_, a)| a)
        };
        let x = find(&["x", "X", "x_train", "inputs"])
            .with_context(|| format!("{}: no array named x", path.display()))?;
        let y = find(&["y", "Y", "y_train", "labels"])
            .with_context(|| format!("{}: no array named y", path.display()))?;
        Dataset::new(x.to_tensor(), y.to_labels()?)?
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let col = match label_column {
            "last" => LabelColumn::Last,
            s => match s.parse::<usize>() {
                Ok(i) => LabelColumn::Index(i),
                Err(_) => LabelColumn::Name(s.to_string()),
            },
        };
        aisec_model::data::csv::read_csv(path, &col)
            .with_context(|| format!("cannot read CSV {}", path.display()))?
    } else {
        let x = read_tensor(path)?;
        let lp = labels.with_context(|| {
            format!(
                "{} holds inputs only: give --labels (or use .npz / CSV)",
                path.display()
            )
        })?;
        let y = crate::cmd::attack::load_labels(lp)?;
        Dataset::new(x, y)?
    };
    let d = if *prep == aisec_model::data::Preprocess::default() {
        d
    } else {
        let x = prep
            .apply(&d.x)
            .with_context(|| format!("cannot preprocess {}", path.display()))?;
        Dataset::new(x, d.y)?
    };
    let n = d.len();
    let want: usize = input.iter().product();
    if d.x.row_len() != want {
        bail!(
            "{}: examples have {} values, the spec's input {input:?} needs {want}",
            path.display(),
            d.x.row_len()
        );
    }
    let mut d = d;
    d.x.shape = std::iter::once(n).chain(input.iter().copied()).collect();
    Ok(d)
}

fn config(a: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let lr =
        a.lr.unwrap_or(if a.optimizer == "sgd" { 0.05 } else { 1e-3 });
    let optimizer = match a.optimizer.as_str() {
        "sgd" => Optimizer::Sgd {
            lr,
            momentum: a.momentum,
        },
        _ => Optimizer::adam(lr),
    };
    if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) {
        bail!("--weight-decay must be a non-negative number");
    }
    let weight_decay = match (a.weight_decay, a.optimizer.as_str()) {
        (0.0, _) => WeightDecay::None,
        (w, "adamw") => WeightDecay::Decoupled(w),
        (w, _) => WeightDecay::L2(w),
    };
    let cfg = TrainConfig {
        epochs: a.epochs.unwrap_or(10),
        batch_size: a.batch_size,
        optimizer,
        weight_decay,
        schedule: Schedule::parse(&a.schedule)?,
        warmup_epochs: a.warmup,
        seed: a.seed,
        shuffle: !a.no_shuffle,
        augment: match &a.augment {
            Some(s) => Augment::parse(s)?,
            None => Augment::default(),
        },
    };
    cfg.validate()?;
    Ok(cfg)
}

fn spec_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!("{stem}.spec.json"))
}

/// The data options of a run, stored in its checkpoints so that
/// `--resume` trains on the same examples with the same validation split
/// and preprocessing (paths made absolute, so a resume from another folder
/// finds them). Fields after `val_split` are absent from checkpoints of
/// older versions (defaults: no preprocessing, range [0, 1]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunOptions {
    data: PathBuf,
    labels: Option<PathBuf>,
    label_column: String,
    scale: Option<f32>,
    val: Option<PathBuf>,
    val_labels: Option<PathBuf>,
    val_split: Option<f32>,
    #[serde(default)]
    value_range: Vec<f32>,
    #[serde(default)]
    channels_last: bool,
    #[serde(default)]
    bgr: bool,
    #[serde(default)]
    resize: Option<String>,
    #[serde(default)]
    lo: Option<f32>,
    #[serde(default)]
    hi: Option<f32>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl RunOptions {
    fn from_args(a: &TrainArgs) -> anyhow::Result<Self> {
        Ok(Self {
            data: absolute(a.data.as_deref().context("give the training DATA")?),
            labels: a.labels.as_deref().map(absolute),
            label_column: a.label_column.clone().unwrap_or_else(|| "last".into()),
            scale: a.prep.scale,
            val: a.val.as_deref().map(absolute),
            val_labels: a.val_labels.as_deref().map(absolute),
            val_split: a.val_split,
            value_range: a.prep.value_range.clone(),
            channels_last: a.prep.channels_last,
            bgr: a.prep.bgr,
            resize: a.prep.resize.clone(),
            lo: Some(a.range.lo),
            hi: Some(a.range.hi),
        })
    }

    /// The preprocessing flags of the run.
    fn prep(&self) -> crate::args::PreprocessArgs {
        crate::args::PreprocessArgs {
            scale: self.scale,
            value_range: self.value_range.clone(),
            channels_last: self.channels_last,
            bgr: self.bgr,
            resize: self.resize.clone(),
        }
    }

    /// The input range of the run.
    fn range(&self) -> crate::args::InputRange {
        let d = crate::args::InputRange::default();
        crate::args::InputRange {
            lo: self.lo.unwrap_or(d.lo),
            hi: self.hi.unwrap_or(d.hi),
        }
    }

    /// The stored options of the resumed run, with a clear error for an
    /// option given again with another value (the run would silently
    /// train on different data).
    fn resumed(a: &TrainArgs, stored: &serde_json::Value) -> anyhow::Result<Self> {
        let s: RunOptions = serde_json::from_value(stored.clone())
            .context("the checkpoint's run options are not readable")?;
        fn same<T: PartialEq + std::fmt::Debug>(
            flag: &str,
            given: Option<T>,
            stored: &Option<T>,
        ) -> anyhow::Result<()> {
            match (given, stored) {
                (Some(g), s) if s.as_ref() != Some(&g) => bail!(
                    "{flag} {g:?} differs from the run being resumed ({}); leave it out to keep the checkpoint's",
                    match s {
                        Some(v) => format!("{v:?}"),
                        None => "not given".into(),
                    }
                ),
                _ => Ok(()),
            }
        }
        same(
            "DATA",
            a.data.as_deref().map(absolute),
            &Some(s.data.clone()),
        )?;
        same("--labels", a.labels.as_deref().map(absolute), &s.labels)?;
        same(
            "--label-column",
            a.label_column.clone(),
            &Some(s.label_column.clone()),
        )?;
        same("--scale", a.prep.scale, &s.scale)?;
        let some = |v: &Vec<f32>| (!v.is_empty()).then(|| v.clone());
        same(
            "--value-range",
            some(&a.prep.value_range),
            &some(&s.value_range),
        )?;
        same(
            "--channels-last",
            a.prep.channels_last.then_some(true),
            &s.channels_last.then_some(true),
        )?;
        same("--bgr", a.prep.bgr.then_some(true), &s.bgr.then_some(true))?;
        same("--resize", a.prep.resize.clone(), &s.resize)?;
        // --lo/--hi have defaults: a value other than the default that
        // differs from the run's is an error.
        let d = crate::args::InputRange::default();
        same("--lo", (a.range.lo != d.lo).then_some(a.range.lo), &s.lo)?;
        same("--hi", (a.range.hi != d.hi).then_some(a.range.hi), &s.hi)?;
        same("--val", a.val.as_deref().map(absolute), &s.val)?;
        same(
            "--val-labels",
            a.val_labels.as_deref().map(absolute),
            &s.val_labels,
        )?;
        same("--val-split", a.val_split, &s.val_split)?;
        Ok(s)
    }
}

/// Runs `aisec train`.
pub fn run(a: TrainArgs) -> anyhow::Result<i32> {
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
    let spec = match (&a.arch, resume.as_ref().and_then(|c| c.spec.clone())) {
        (Some(p), ck) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read spec {}", p.display()))?;
            let s = ArchSpec::parse(&text).with_context(|| format!("in {}", p.display()))?;
            if ck.is_some_and(|c| c != s) {
                bail!("--arch differs from the architecture in the checkpoint");
            }
            s
        }
        (None, Some(s)) => s,
        (None, None) => bail!("give --arch (the checkpoint has no architecture)"),
    };
    let cfg = match &resume {
        Some(c) => TrainConfig {
            epochs: a.epochs.unwrap_or(c.config.epochs),
            ..c.config.clone()
        },
        None => config(&a)?,
    };

    let opts = match resume.as_ref().and_then(|c| c.run_options.as_ref()) {
        Some(stored) => RunOptions::resumed(&a, stored)?,
        None => {
            if resume.is_some() {
                crate::run::note(
                    "note: the checkpoint does not record its data options (an older aisec wrote it); \
                     using the ones given now",
                );
            }
            RunOptions::from_args(&a)?
        }
    };
    let (prep, range) = (opts.prep(), opts.range());
    let mut train = crate::args::load_checked(
        &opts.data,
        opts.labels.as_deref(),
        &opts.label_column,
        &spec.input,
        &prep,
        &range,
        "training data",
    )?;
    let mut val = match &opts.val {
        Some(p) => Some(crate::args::load_checked(
            p,
            opts.val_labels.as_deref(),
            &opts.label_column,
            &spec.input,
            &prep,
            &range,
            "validation data",
        )?),
        None => None,
    };
    if let Some(f) = opts.val_split {
        let (t, v) = aisec_model::fit::split_dataset(&train, f, cfg.seed)?;
        train = t;
        val = Some(v);
    }
    let mut model = OnnxModel::from_spec(&spec, cfg.seed)?;
    let classes = aisec_model::Classifier::num_classes(&model);
    for (name, d) in [("training", Some(&train)), ("validation", val.as_ref())] {
        if let Some(bad) = d.and_then(|d| d.y.iter().find(|&&y| y >= classes)) {
            bail!("{name} label {bad} is out of range: the spec has {classes} outputs");
        }
    }

    let ck_path = match &a.checkpoint_dir {
        Some(d) => d.join("checkpoint.safetensors"),
        None => {
            let stem = a
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            a.out
                .with_file_name(format!("{stem}.checkpoint.safetensors"))
        }
    };
    let policy = CheckpointPolicy {
        path: ck_path,
        every: if a.checkpoint_dir.is_some() {
            a.checkpoint_every
        } else {
            0
        },
        at_end: a.checkpoint_dir.is_some(),
        run_options: Some(serde_json::to_value(&opts)?),
    };

    // Ctrl-C stops after the step in flight and writes a checkpoint.
    let cancel = crate::run::cancel();
    let show = crate::run::show_progress(a.no_progress);
    let batches = train.len().div_ceil(cfg.batch_size.max(1));
    let done_before = resume
        .as_ref()
        .map(|c| (c.epochs_done * batches + c.batches_done) as u64)
        .unwrap_or(0);
    let pb = show.then(|| {
        let pb = ProgressBar::new((cfg.epochs * batches) as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} epoch {prefix} [{bar:30}] {pos}/{len} steps, {msg}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_position(done_before);
        pb.reset_eta();
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let mut last_val = String::new();
    let epochs = cfg.epochs;
    let mut progress = |e: &FitEvent| match e {
        FitEvent::Batch { epoch, loss, .. } => {
            if let Some(pb) = &pb {
                pb.inc(1);
                pb.set_prefix(format!("{epoch}/{epochs}"));
                pb.set_message(format!("loss {loss:.4}{last_val}"));
            }
        }
        FitEvent::Epoch(s) => {
            if let (Some(l), Some(acc)) = (s.val_loss, s.val_accuracy) {
                last_val = format!(", val loss {l:.4} acc {:.2}%", 100.0 * acc);
            }
            if let Some(pb) = &pb {
                pb.println(epoch_line(s));
            }
        }
        FitEvent::Checkpoint(_) => {}
    };
    let start = Instant::now();
    let hist = fit(
        &mut model,
        &train,
        &cfg,
        FitOptions {
            val: val.as_ref(),
            spec: Some(&spec),
            progress: Some(&mut progress),
            cancel: Some(cancel.flag()),
            checkpoint: Some(policy),
            resume,
        },
    )?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();

    let mut written = Vec::new();
    if !hist.cancelled {
        if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        model
            .save_safetensors(&a.out)
            .with_context(|| format!("cannot write {}", a.out.display()))?;
        let sp = spec_path(&a.out);
        std::fs::write(&sp, spec.to_json() + "\n")
            .with_context(|| format!("cannot write {}", sp.display()))?;
        written.push(a.out.clone());
        written.push(sp);
        if let Some(o) = &a.onnx {
            model
                .save_onnx(o)
                .with_context(|| format!("cannot write {}", o.display()))?;
            written.push(o.clone());
        }
    }
    summarize(
        &a,
        &opts,
        &cfg,
        &hist,
        &written,
        seconds,
        (train.len(), val.as_ref().map_or(0, Dataset::len)),
    )
}

fn epoch_line(s: &aisec_model::fit::EpochStats) -> String {
    let val = match (s.val_loss, s.val_accuracy) {
        (Some(l), Some(a)) => format!("  val loss {l:.4}  val acc {:6.2}%", 100.0 * a),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}  train loss {:.4}{val}  lr {:.3e}  {:.2} s",
        s.epoch, s.train_loss, s.lr, s.seconds
    )
}

fn summarize(
    a: &TrainArgs,
    opts: &RunOptions,
    cfg: &TrainConfig,
    hist: &History,
    written: &[PathBuf],
    seconds: f64,
    (n_train, n_val): (usize, usize),
) -> anyhow::Result<i32> {
    let secs: Vec<f64> = hist.epochs.iter().map(|e| e.seconds).collect();
    let per_epoch = if secs.is_empty() {
        0.0
    } else {
        secs.iter().sum::<f64>() / secs.len() as f64
    };
    let status = if hist.cancelled {
        crate::run::INTERRUPTED
    } else {
        aisec_core::ExitStatus::Clean.code()
    };
    if a.output.format == Format::Text {
        let mut s = String::new();
        for e in &hist.epochs {
            s.push_str(&epoch_line(e));
            s.push('\n');
        }
        let last = hist.last();
        let ne = hist.epochs.len();
        s.push_str(&format!(
            "trained {ne} epoch{} ({} steps) on {n_train} examples in {seconds:.1} s ({per_epoch:.3} s/epoch)",
            if ne == 1 { "" } else { "s" },
            hist.steps
        ));
        if let Some(acc) = last.and_then(|e| e.val_accuracy) {
            s.push_str(&format!(
                "; validation accuracy {:.2}% on {}",
                100.0 * acc,
                n_val
            ));
        }
        s.push('\n');
        if hist.cancelled {
            match &hist.checkpoint {
                Some(p) => s.push_str(&format!(
                    "interrupted: checkpoint written to {}; continue with --resume {}\n",
                    p.display(),
                    p.display()
                )),
                None => s.push_str("interrupted before a checkpoint could be written\n"),
            }
        } else {
            let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            s.push_str(&format!("wrote {}\n", names.join(", ")));
            if let Some(p) = &hist.checkpoint {
                s.push_str(&format!("checkpoint {}\n", p.display()));
            }
        }
        match &a.output.output {
            Some(p) => std::fs::write(p, s)
                .with_context(|| format!("cannot write report to {}", p.display()))?,
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(s.as_bytes());
                let _ = out.flush();
            }
        }
        return Ok(status);
    }
    let mut report = Report::new("train");
    report.summary.items = n_train as u64;
    report.summary.seconds = seconds;
    report.data.insert(
        "train".into(),
        serde_json::json!({
            "config": cfg,
            "history": hist,
            "seconds_per_epoch": per_epoch,
            "examples": n_train,
            "validation_examples": n_val,
            "written": written,
            "options": opts,
        }),
    );
    if hist.cancelled {
        report.error(
            opts.data.display().to_string(),
            match &hist.checkpoint {
                Some(p) => format!("interrupted: resume with --resume {}", p.display()),
                None => "interrupted".into(),
            },
        );
    }
    crate::run::finish(report, &a.output.to_output())
}
