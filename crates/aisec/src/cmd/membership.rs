//! `aisec attack membership`: membership inference against a model's
//! output scores (loss threshold and LiRA with shadow models), measured
//! against known members and non-members.

use std::path::{Path, PathBuf};

use aisec_attack::membership::{
    plot, run_membership, Augment, MembershipConfig, MembershipData, MembershipReport, MiaAttack,
    ScoreKind, SpecTrainer, VarianceMode, MEMBERSHIP_INFERENCE,
};
use aisec_core::Report;
use aisec_model::data::Dataset;
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, Tensor};
use anyhow::{bail, Context};

use crate::cmd::attack::{load_inputs, load_labels};
use crate::output::OutputArgs;

/// Arguments of `aisec attack membership`.
#[derive(Debug, clap::Args)]
pub struct MembershipArgs {
    /// The target (local file or KServe v2 endpoint).
    #[command(flatten)]
    pub target: crate::cmd::target::VictimArgs,

    /// Known members (training examples): inputs (.npy or IDX).
    #[arg(long, value_name = "FILE", requires = "member_labels")]
    pub members: Option<PathBuf>,

    /// Labels of --members.
    #[arg(long, value_name = "FILE")]
    pub member_labels: Option<PathBuf>,

    /// Known non-members (never trained on): inputs.
    #[arg(long, value_name = "FILE", requires = "non_member_labels")]
    pub non_members: Option<PathBuf>,

    /// Labels of --non-members.
    #[arg(long, value_name = "FILE")]
    pub non_member_labels: Option<PathBuf>,

    /// All evaluated examples in one file, with --labels and --membership-mask (instead of --members/--non-members).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["members", "non_members"], requires_all = ["labels", "membership_mask"])]
    pub data: Option<PathBuf>,

    /// Labels of --data.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Ground truth for --data: a .npy of 0/1 (1 = member).
    #[arg(long, value_name = "FILE")]
    pub membership_mask: Option<PathBuf>,

    /// More attacker data for the shadow models (.npy or IDX; duplicates of evaluated examples are dropped).
    #[arg(long, value_name = "FILE", requires = "population_labels")]
    pub population: Option<PathBuf>,

    /// Labels of --population.
    #[arg(long, value_name = "FILE")]
    pub population_labels: Option<PathBuf>,

    /// Preprocessing of every loaded input.
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Shadow-model architecture (aisec spec, JSON or TOML) for LiRA.
    #[arg(long, value_name = "SPEC")]
    pub shadow_arch: Option<PathBuf>,

    /// Shadow models to train (each example is IN for half of them).
    #[arg(long, default_value_t = 16)]
    pub shadows: usize,

    /// Training epochs per shadow model.
    #[arg(long, default_value_t = 20)]
    pub shadow_epochs: usize,

    /// Mini-batch size for shadow training.
    #[arg(long, default_value_t = 32)]
    pub shadow_batch_size: usize,

    /// Shadow optimiser: adam or sgd.
    #[arg(long, default_value = "adam")]
    pub shadow_optimizer: String,

    /// Shadow learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub shadow_lr: f32,

    /// Momentum for --shadow-optimizer sgd.
    #[arg(long, default_value_t = 0.9)]
    pub shadow_momentum: f32,

    /// Attacks, comma-separated: loss, lira-online, lira-offline (default: all three with --shadow-arch, else loss).
    #[arg(long, value_delimiter = ',')]
    pub attacks: Vec<String>,

    /// LiRA variance: auto (global below 64 shadows), global or per-example.
    #[arg(long, default_value = "auto")]
    pub variance: String,

    /// Extra query per example that LiRA averages over: flip or shift:DY,DX (repeatable, or AUG;AUG).
    #[arg(long, value_name = "AUG")]
    pub augment: Vec<String>,

    /// What the target returns: auto, logits or probs.
    #[arg(long, default_value = "auto")]
    pub scores: String,

    /// Bootstrap replicates for the 95% confidence intervals.
    #[arg(long, default_value_t = 500)]
    pub bootstrap: usize,

    /// Refuse to send the target more than N examples.
    #[arg(long, value_name = "N")]
    pub query_budget: Option<u64>,

    /// Examples per query batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,

    /// Random seed (keep masks, shadow training, bootstrap).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Write the ROC on log-log axes as SVG.
    #[arg(long, value_name = "FILE")]
    pub save_roc: Option<PathBuf>,

    /// Write per-example scores, target and shadow signals and keep masks as JSON.
    #[arg(long, value_name = "FILE")]
    pub save_scores: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn load_set(x: &Path, y: &Path, a: &MembershipArgs) -> anyhow::Result<Dataset> {
    let xs = a.prep.apply(load_inputs(x)?, &a.range)?;
    let what = x.display().to_string();
    crate::data::check_inputs(
        &xs,
        &what,
        a.range.lo,
        a.range.hi,
        crate::data::Fix::ScaleOrValueRange,
    )?;
    let ys = load_labels(y)?;
    Dataset::new(xs, ys).with_context(|| format!("{} and {}", x.display(), y.display()))
}

/// The evaluated examples with their ground truth.
fn evaluation_set(a: &MembershipArgs) -> anyhow::Result<(Tensor, Vec<usize>, Vec<bool>)> {
    if let (Some(d), Some(l), Some(m)) = (&a.data, &a.labels, &a.membership_mask) {
        let set = load_set(d, l, a)?;
        let mask = aisec_model::data::npy::read_npy(m)
            .with_context(|| format!("cannot read membership mask {}", m.display()))?
            .to_labels()
            .with_context(|| format!("{}: expected 0/1 values", m.display()))?;
        if mask.len() != set.len() {
            bail!("{} mask values for {} examples", mask.len(), set.len());
        }
        if mask.iter().any(|&v| v > 1) {
            bail!("{}: expected 0/1 values", m.display());
        }
        return Ok((set.x, set.y, mask.iter().map(|&v| v == 1).collect()));
    }
    let (Some(mx), Some(my), Some(nx), Some(ny)) = (
        &a.members,
        &a.member_labels,
        &a.non_members,
        &a.non_member_labels,
    ) else {
        bail!("give --members/--member-labels and --non-members/--non-member-labels, or --data with --labels and --membership-mask");
    };
    let m = load_set(mx, my, a)?;
    let n = load_set(nx, ny, a)?;
    if m.x.row_len() != n.x.row_len() {
        bail!("members and non-members have different example sizes");
    }
    let mut x = m.x.clone();
    x.data.extend_from_slice(&n.x.data);
    x.shape[0] += n.len();
    let mut y = m.y.clone();
    y.extend_from_slice(&n.y);
    let member = (0..m.len() + n.len()).map(|i| i < m.len()).collect();
    Ok((x, y, member))
}

fn shadow_trainer(a: &MembershipArgs) -> anyhow::Result<Option<SpecTrainer>> {
    let Some(p) = &a.shadow_arch else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    let spec = ArchSpec::parse(&text).with_context(|| format!("{}", p.display()))?;
    if !(a.shadow_lr > 0.0 && a.shadow_lr.is_finite()) {
        bail!("--shadow-lr must be a positive number");
    }
    let optimizer = match a.shadow_optimizer.as_str() {
        "adam" => Optimizer::adam(a.shadow_lr),
        "sgd" => Optimizer::Sgd {
            lr: a.shadow_lr,
            momentum: a.shadow_momentum,
        },
        o => bail!("unknown --shadow-optimizer '{o}' (expected adam or sgd)"),
    };
    Ok(Some(SpecTrainer {
        spec,
        epochs: a.shadow_epochs.max(1),
        batch_size: a.shadow_batch_size.max(1),
        optimizer,
    }))
}

fn config(a: &MembershipArgs, lira_possible: bool) -> anyhow::Result<MembershipConfig> {
    let attacks = if a.attacks.is_empty() {
        if lira_possible {
            vec![
                MiaAttack::Loss,
                MiaAttack::LiraOnline,
                MiaAttack::LiraOffline,
            ]
        } else {
            vec![MiaAttack::Loss]
        }
    } else {
        a.attacks
            .iter()
            .map(|s| {
                MiaAttack::parse(s.trim()).with_context(|| {
                    format!("unknown attack '{s}' (expected loss, lira-online, lira-offline)")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    if attacks.iter().any(|a| *a != MiaAttack::Loss) && !lira_possible {
        bail!("LiRA trains shadow models: give --shadow-arch SPEC (or use --attacks loss)");
    }
    let mut augments = vec![Augment::Identity];
    for s in &a.augment {
        for part in s.split(';').filter(|p| !p.trim().is_empty()) {
            let aug = Augment::parse(part.trim()).with_context(|| {
                format!("unknown augmentation '{part}' (expected flip or shift:DY,DX)")
            })?;
            if !augments.contains(&aug) {
                augments.push(aug);
            }
        }
    }
    Ok(MembershipConfig {
        attacks,
        shadows: a.shadows,
        variance: VarianceMode::parse(&a.variance).with_context(|| {
            format!(
                "unknown --variance '{}' (expected auto, global, per-example)",
                a.variance
            )
        })?,
        augments,
        score_kind: ScoreKind::parse(&a.scores).with_context(|| {
            format!(
                "unknown --scores '{}' (expected auto, logits, probs)",
                a.scores
            )
        })?,
        batch_size: a.batch_size.max(1),
        bootstrap: a.bootstrap,
        seed: a.seed,
    })
}

/// Runs a membership evaluation and returns its report and the raw result.
pub fn evaluate(
    target: &dyn Classifier,
    data: &MembershipData,
    trainer: Option<&SpecTrainer>,
    cfg: &MembershipConfig,
    query_budget: Option<u64>,
    target_name: &str,
    show_progress: bool,
) -> anyhow::Result<(Report, MembershipReport)> {
    // Ctrl-C stops shadow training; the shadows done are used.
    let ctx = crate::cmd::attack::attack_context(show_progress).with_query_budget(query_budget);
    let start = std::time::Instant::now();
    let result = run_membership(
        target,
        data,
        trainer.map(|t| t as &dyn aisec_attack::membership::ShadowTrainer),
        cfg,
        &ctx,
    )?;
    ctx.progress().finish();
    let mut report = Report::new("attack membership");
    report.add_rules(&[&MEMBERSHIP_INFERENCE]);
    report.extend(result.findings(target_name));
    report.summary.items = (result.members + result.non_members) as u64;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("membership".into(), serde_json::to_value(&result)?);
    if result.cancelled {
        report.error(
            target_name,
            format!(
                "interrupted: {} of {} shadow models finished; not scored: {}",
                result.shadows,
                cfg.shadows,
                if result.not_run.is_empty() {
                    "none".to_string()
                } else {
                    result.not_run.join(", ")
                }
            ),
        );
    }
    report.finish();
    Ok((report, result))
}

/// The log-log ROC of every attack in `r` as SVG.
pub fn roc_svg(r: &MembershipReport, title: &str) -> String {
    let curves: Vec<(String, &aisec_attack::membership::Roc)> = r
        .attacks
        .iter()
        .map(|a| {
            (
                format!(
                    "{} (AUC {:.3}, TPR {:.1}% at 0.1% FPR)",
                    a.attack,
                    a.metrics.auc,
                    a.metrics.tpr_at_0_1pct_fpr * 100.0
                ),
                &a.roc,
            )
        })
        .collect();
    plot::roc_svg(title, &curves, plot::lowest_decade(r.non_members))
}

/// Runs `aisec attack membership`.
pub fn run(a: MembershipArgs) -> anyhow::Result<i32> {
    let trainer = shadow_trainer(&a)?;
    let cfg = config(&a, trainer.is_some())?;
    let (victim, name) = a.target.load()?;
    let target = victim.classifier();
    a.range.check()?;
    let (x, y, member) = evaluation_set(&a)?;
    crate::data::check_labels(&y, target.num_classes(), "labels")?;
    let population = match (&a.population, &a.population_labels) {
        (Some(px), Some(py)) => Some(load_set(px, py, &a)?),
        _ => None,
    };
    if let Some(p) = &population {
        crate::data::check_labels(&p.y, target.num_classes(), "--population-labels")?;
    }
    let show = crate::run::show_progress(a.no_progress);
    let data = MembershipData {
        x: &x,
        y: &y,
        member: &member,
        population: population.as_ref(),
    };
    let (report, result) = evaluate(
        target,
        &data,
        trainer.as_ref(),
        &cfg,
        a.query_budget,
        &name,
        show,
    )?;
    if let Some(p) = &a.save_roc {
        let title = format!("Membership inference: {}", short_name(&name));
        std::fs::write(p, roc_svg(&result, &title))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.save_scores {
        std::fs::write(p, serde_json::to_vec(&result.scores_json())?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    crate::run::finish(report, &a.output)
}

fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The bundled 8x8 digits (scikit-learn's copy of the UCI set, CC BY 4.0;
/// see crates/aisec/assets/README.md).
const DIGITS_X: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.x.npy"));
const DIGITS_Y: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.y.npy"));

/// Examples the demo uses (members plus non-members).
const DEMO_EXAMPLES: usize = 500;

/// `aisec demo`'s membership section: an MLP is trained here, to
/// memorise a random half of the first 500 bundled digits; the loss attack and LiRA
/// (4 shadow models on random halves of the same 500) then tell its
/// members from the other half using its output scores only.
pub fn demo_membership(dir: &Path) -> anyhow::Result<Report> {
    let x = aisec_model::data::npy::parse_npy(DIGITS_X)?.to_tensor();
    let y = aisec_model::data::npy::parse_npy(DIGITS_Y)?.to_labels()?;
    let idx: Vec<usize> = (0..x.batch().min(y.len()).min(DEMO_EXAMPLES)).collect();
    let mut xs = aisec_attack::util::gather(&x, &idx);
    xs.data.iter_mut().for_each(|v| *v /= 16.0);
    let ys: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
    // A seeded random half: the first of two complementary keep masks.
    let member = aisec_attack::membership::lira::keep_masks(2, idx.len(), 2022).swap_remove(0);
    let trainer = SpecTrainer {
        spec: ArchSpec::parse(
            r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"},
                {"type": "dense", "units": 64}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#,
        )?,
        epochs: 30,
        batch_size: 25,
        optimizer: Optimizer::adam(0.01),
    };
    let train = aisec_attack::membership::shadow::subset(&xs, &ys, &member)?;
    let target = trainer.fit(&train, 1)?;
    let path = dir.join("models/digits_membership_target.onnx");
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    target.save_onnx(&path)?;
    let cfg = MembershipConfig {
        shadows: 4,
        bootstrap: 200,
        seed: 0,
        ..MembershipConfig::default()
    };
    let data = MembershipData {
        x: &xs,
        y: &ys,
        member: &member,
        population: None,
    };
    let (report, result) = evaluate(
        &target,
        &data,
        Some(&trainer),
        &cfg,
        None,
        &path.display().to_string(),
        false,
    )?;
    let svg = dir.join("models/digits_membership_roc.svg");
    std::fs::write(
        &svg,
        roc_svg(&result, "Membership inference: demo digits MLP"),
    )?;
    Ok(report)
}
