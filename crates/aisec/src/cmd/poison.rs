//! `aisec attack poison`: plant a backdoor in a copy of a data set (BadNets,
//! Blended, WaNet, clean-label), save the poisoned data, the trigger and
//! the ground truth, and optionally train a victim on it with aisec's fit
//! loop and measure clean accuracy and attack success rate.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aisec_attack::poison::{
    evaluate_backdoor, poison_dataset, poison_findings, BackdoorEval, PoisonConfig, PoisonKind,
    Poisoned,
};
use aisec_attack::save::{write_npz, NpyArray};
use aisec_core::Report;
use aisec_model::data::Dataset;
use aisec_model::fit::{fit, FitOptions, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, OnnxModel};
use anyhow::{bail, Context};

use crate::output::OutputArgs;

/// Arguments of `aisec attack poison`.
#[derive(Debug, clap::Args)]
pub struct PoisonArgs {
    /// Training data to poison: `.npz` (arrays `x`, `y`), `.npy`/IDX inputs with --labels, a CSV table, or an image folder.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,

    /// Labels for `.npy` / IDX inputs.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    /// Shape of one example, e.g. 1,28,28 [default: the --arch spec's input].
    #[arg(long, value_name = "C,H,W", value_delimiter = ',')]
    pub input_shape: Vec<usize>,

    /// Attack: badnets, badnets-all-to-all, blended, wanet, clean-label.
    #[arg(long, default_value = "badnets")]
    pub kind: String,

    /// Fraction of the training set to poison.
    #[arg(long, default_value_t = 0.1)]
    pub rate: f32,

    /// Target class (all-to-one and clean-label).
    #[arg(long, default_value_t = 0)]
    pub target: usize,

    /// Number of classes [default: the spec's outputs, else the largest label + 1].
    #[arg(long)]
    pub classes: Option<usize>,

    /// Seed of the row choice, the trigger and the victim's training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Side of the BadNets / clean-label patch in pixels.
    #[arg(long, default_value_t = 3)]
    pub patch_size: usize,

    /// Blend ratio of the Blended attack.
    #[arg(long, default_value_t = 0.2)]
    pub alpha: f32,

    /// WaNet control grid size.
    #[arg(long, default_value_t = 4)]
    pub wanet_k: usize,

    /// WaNet warping strength.
    #[arg(long, default_value_t = 0.5)]
    pub wanet_s: f32,

    /// L-inf budget of the clean-label attack's PGD step (input units).
    #[arg(long, default_value_t = 0.0314)]
    pub clean_label_eps: f32,

    /// PGD iterations of the clean-label attack.
    #[arg(long, default_value_t = 10)]
    pub clean_label_steps: usize,

    /// Output folder: poisoned.npz, trigger.png, indices.json, examples.png (and victim.onnx, test_triggered.npz with --arch and --test).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Train a victim (spec JSON/TOML) on the poisoned data and report clean accuracy and attack success rate (the clean-label attack also trains its surrogate with it).
    #[arg(long, value_name = "SPEC")]
    pub arch: Option<PathBuf>,

    /// Held-out clean test data (same formats as DATA) for clean accuracy and ASR.
    #[arg(long, value_name = "DATA")]
    pub test: Option<PathBuf>,

    /// Labels for --test when it is `.npy` / IDX.
    #[arg(long, value_name = "FILE")]
    pub test_labels: Option<PathBuf>,

    /// Training epochs of the victim.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,

    /// Batch size of the victim's training.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,

    /// Adam learning rate of the victim's training.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn read_spec(p: &Path) -> anyhow::Result<ArchSpec> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read spec {}", p.display()))?;
    ArchSpec::parse(&text).with_context(|| format!("in {}", p.display()))
}

/// Runs `aisec attack poison`.
pub fn run(a: PoisonArgs) -> anyhow::Result<i32> {
    let start = Instant::now();
    let kind = PoisonKind::parse(&a.kind)?;
    a.range.check()?;
    let spec = a.arch.as_deref().map(read_spec).transpose()?;
    let shape: Vec<usize> = match (&spec, a.input_shape.is_empty()) {
        (_, false) => a.input_shape.clone(),
        (Some(s), true) => s.input.clone(),
        (None, true) => bail!("give --input-shape (e.g. 1,28,28) or --arch"),
    };
    if let Some(s) = &spec {
        if s.input != shape {
            bail!(
                "--input-shape {shape:?} differs from the spec's input {:?}",
                s.input
            );
        }
    }
    let load = |p: &Path, labels: Option<&Path>, what: &str| {
        crate::args::load_checked(p, labels, "last", &shape, &a.prep, &a.range, what)
    };
    let train = load(&a.data, a.labels.as_deref(), "DATA")?;
    let test = match &a.test {
        Some(p) => Some(load(p, a.test_labels.as_deref(), "--test")?),
        None => None,
    };
    let spec_classes = match &spec {
        Some(s) => Some(OnnxModel::from_spec(s, a.seed)?.num_classes()),
        None => None,
    };
    let classes = a
        .classes
        .or(spec_classes)
        .unwrap_or_else(|| train.y.iter().copied().max().map_or(0, |m| m + 1));
    crate::data::check_labels(&train.y, classes, "DATA")?;
    if let Some(t) = &test {
        crate::data::check_labels(&t.y, classes, "--test")?;
    }
    let cfg = PoisonConfig {
        kind,
        rate: a.rate,
        target: a.target,
        seed: a.seed,
        lo: a.range.lo,
        hi: a.range.hi,
        patch_size: a.patch_size,
        alpha: a.alpha,
        wanet_k: a.wanet_k,
        wanet_s: a.wanet_s,
        clean_label_eps: a.clean_label_eps,
        clean_label_steps: a.clean_label_steps,
    };
    let tcfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        optimizer: Optimizer::adam(a.lr),
        seed: a.seed,
        ..TrainConfig::default()
    };
    tcfg.validate()?;
    let cancel = crate::run::cancel();
    let train_model = |d: &Dataset, what: &str| -> anyhow::Result<Option<OnnxModel>> {
        let Some(s) = &spec else {
            return Ok(None);
        };
        crate::run::note(format!(
            "training the {what} ({} examples, {} epochs)",
            d.len(),
            tcfg.epochs
        ));
        let mut m = OnnxModel::from_spec(s, tcfg.seed)?;
        let h = fit(
            &mut m,
            d,
            &tcfg,
            FitOptions {
                spec: Some(s),
                cancel: Some(cancel.flag()),
                ..FitOptions::default()
            },
        )?;
        Ok((!h.cancelled).then_some(m))
    };

    // The clean-label attack perturbs with PGD on a model of clean data.
    let surrogate = if kind == PoisonKind::CleanLabel {
        if spec.is_none() {
            bail!("the clean-label attack needs --arch (its PGD step runs on a surrogate trained on the clean data)");
        }
        match train_model(&train, "clean surrogate")? {
            Some(m) => Some(m),
            None => return interrupted(&a, start),
        }
    } else {
        None
    };
    let mut ctx =
        aisec_attack::AttackContext::new(crate::run::context(a.no_progress)).with_seed(a.seed);
    let p = poison_dataset(
        &mut ctx,
        &train,
        classes,
        &cfg,
        surrogate
            .as_ref()
            .map(|m| m as &dyn aisec_model::Differentiable),
    )?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let written = save_outputs(&a, &train, &p)?;

    let mut eval: Option<BackdoorEval> = None;
    let victim_path = a.out.join("victim.onnx");
    if spec.is_some() {
        let Some(victim) = train_model(&p.data, "victim on the poisoned data")? else {
            return interrupted(&a, start);
        };
        victim
            .save_onnx(&victim_path)
            .with_context(|| format!("cannot write {}", victim_path.display()))?;
        if let Some(t) = &test {
            let e = evaluate_backdoor(
                &victim,
                t,
                &p.manifest.trigger,
                p.manifest.label_mode,
                p.manifest.target,
                256,
            )?;
            save_triggered_test(&a.out, t, &p)?;
            eval = Some(e);
        } else {
            crate::run::note("no --test data: the victim is saved but not measured");
        }
    }

    let mut report = Report::new("attack poison");
    report.add_rules(aisec_attack::RULES);
    let data_loc = a.out.join("poisoned.npz").display().to_string();
    let vloc = victim_path.display().to_string();
    report.extend(poison_findings(
        &p.manifest,
        &data_loc,
        eval.as_ref().map(|e| (vloc.as_str(), e)),
    ));
    report.summary.items = train.len() as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report.data.insert(
        "poison".into(),
        serde_json::json!({
            "attack": kind.name(),
            "rate": a.rate,
            "target": a.target,
            "seed": a.seed,
            "poisoned": p.manifest.indices.len(),
            "examples": train.len(),
            "classes": classes,
            "written": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "evaluation": eval,
        }),
    );
    crate::run::finish(report, &a.output)
}

fn interrupted(a: &PoisonArgs, start: Instant) -> anyhow::Result<i32> {
    let mut report = Report::new("attack poison");
    report.add_rules(aisec_attack::RULES);
    report.summary.seconds = start.elapsed().as_secs_f64();
    crate::run::mark_incomplete(
        &mut report,
        "interrupted while training: nothing was measured",
    );
    crate::run::finish(report, &a.output)
}

/// Writes the poisoned data, trigger, manifest and a picture of examples.
fn save_outputs(a: &PoisonArgs, clean: &Dataset, p: &Poisoned) -> anyhow::Result<Vec<PathBuf>> {
    let npz = a.out.join("poisoned.npz");
    let f =
        std::fs::File::create(&npz).with_context(|| format!("cannot write {}", npz.display()))?;
    write_npz(
        std::io::BufWriter::new(f),
        &[
            ("x", NpyArray::F32(&p.data.x.shape, &p.data.x.data)),
            (
                "y",
                NpyArray::I64(
                    &[p.data.len()],
                    p.data.y.iter().map(|&v| v as i64).collect(),
                ),
            ),
        ],
    )?;
    let png = a.out.join("trigger.png");
    p.manifest.trigger.save_png(&png, a.range.lo, a.range.hi)?;
    let json = a.out.join("indices.json");
    p.manifest.save(&json)?;
    let mut written = vec![npz, png, json];
    // Up to 6 poisoned rows: clean, poisoned, difference.
    let rows: Vec<usize> = p.manifest.indices.iter().copied().take(6).collect();
    let sh = p.manifest.trigger.shape();
    if sh.h > 1 && (sh.c == 1 || sh.c == 3) && !rows.is_empty() {
        let mut c = clean.x.clone();
        let mut q = p.data.x.clone();
        c.shape = vec![clean.len(), sh.c, sh.h, sh.w];
        q.shape = c.shape.clone();
        let bytes = aisec_attack::save::png_grid(&c, &q, &rows, a.range.lo, a.range.hi)?;
        let ex = a.out.join("examples.png");
        std::fs::write(&ex, bytes).with_context(|| format!("cannot write {}", ex.display()))?;
        written.push(ex);
    }
    Ok(written)
}

/// Writes the triggered test inputs (rows whose true label differs from
/// the attack's label) with their TRUE labels, for `aisec defend` ASR.
fn save_triggered_test(out: &Path, t: &Dataset, p: &Poisoned) -> anyhow::Result<()> {
    let m = &p.manifest;
    let rows: Vec<usize> = (0..t.len())
        .filter(|&i| m.label_mode.attack_label(t.y[i], m.target, m.classes) != t.y[i])
        .collect();
    let mut x = aisec_model::fit::gather(&t.x, &rows);
    let all: Vec<usize> = (0..rows.len()).collect();
    m.trigger.apply_rows(&mut x, &all)?;
    let path = out.join("test_triggered.npz");
    let f =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    write_npz(
        std::io::BufWriter::new(f),
        &[
            ("x", NpyArray::F32(&x.shape, &x.data)),
            (
                "y",
                NpyArray::I64(&[rows.len()], rows.iter().map(|&i| t.y[i] as i64).collect()),
            ),
        ],
    )?;
    Ok(())
}
