//! `aisec attack extraction`: steal a model through its query interface
//! (Knockoff Nets / Copycat CNN / Jacobian augmentation) and report the
//! surrogate's fidelity and accuracy against the number of queries.

use std::path::{Path, PathBuf};

use aisec_attack::extraction::{
    default_surrogate, jacobian_noise_seed, run_extraction, Extraction, ExtractionConfig,
    QueryStrategy, SurrogateTraining,
};
use aisec_core::Report;
use aisec_model::data::Dataset;
use aisec_model::spec::ArchSpec;
use aisec_model::{Classifier, OnnxModel, Tensor};
use anyhow::Context;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cmd::attack::{load_inputs, load_labels};
pub use crate::cmd::target::VictimArgs;
use crate::output::OutputArgs;

/// Arguments of `aisec attack extraction`.
#[derive(Debug, clap::Args)]
pub struct ExtractionArgs {
    #[command(flatten)]
    pub victim: VictimArgs,

    /// Held-out test inputs (.npy or IDX) for accuracy and fidelity.
    #[arg(long, value_name = "FILE")]
    pub test_inputs: PathBuf,

    /// Labels of the test inputs (.npy or IDX).
    #[arg(long, value_name = "FILE")]
    pub test_labels: PathBuf,

    /// Preprocessing of the test inputs (and, unless --query-scale is given, of the query set).
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    /// Query data: in (in-distribution pool), ood (out-of-distribution pool) or synthetic.
    #[arg(long, default_value = "in", value_parser = ["in", "ood", "synthetic"])]
    pub query_data: String,

    /// Query inputs (.npy or IDX) for --query-data in/ood; for synthetic, optional Jacobian seed inputs.
    #[arg(long, value_name = "FILE")]
    pub query_set: Option<PathBuf>,

    /// Scale for the query set (default: --scale).
    #[arg(long, value_name = "F")]
    pub query_scale: Option<f32>,

    /// Synthetic query kind: jacobian (Papernot et al. augmentation), uniform or gaussian noise.
    #[arg(long, default_value = "jacobian", value_parser = ["jacobian", "uniform", "gaussian"])]
    pub synthetic: String,

    /// Jacobian augmentation: number of seed inputs (from --query-set, else uniform noise).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub jacobian_seed: usize,

    /// Jacobian augmentation step λ.
    #[arg(long, default_value_t = 0.1)]
    pub jacobian_lambda: f32,

    /// Jacobian augmentation: flip λ's sign every TAU rounds (0: never).
    #[arg(long, default_value_t = 0, value_name = "TAU")]
    pub jacobian_tau: usize,

    /// Query budgets to evaluate (examples), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,500,2000",
        value_name = "N,..."
    )]
    pub budgets: Vec<usize>,

    /// Use only the victim's top-1 label (Copycat CNN setting) instead of its probabilities.
    #[arg(long)]
    pub labels_only: bool,

    /// Surrogate architecture spec (JSON/TOML); default an MLP with 128 hidden units.
    #[arg(long, value_name = "FILE")]
    pub surrogate_arch: Option<PathBuf>,

    /// Surrogate training epochs per budget.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,

    /// At least this many optimiser steps per budget.
    #[arg(long, default_value_t = 200)]
    pub min_steps: usize,

    /// Surrogate training batch size.
    #[arg(long, default_value_t = 64)]
    pub train_batch: usize,

    /// Adam learning rate.
    #[arg(long, default_value_t = 0.003)]
    pub lr: f32,

    /// Examples per victim request.
    #[arg(long, default_value_t = 64)]
    pub query_batch: usize,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// Random seed (runs are deterministic for a seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Save the surrogate of the largest budget into DIR (surrogate.safetensors, surrogate.spec.json, surrogate.onnx).
    #[arg(long, value_name = "DIR")]
    pub save_surrogate: Option<PathBuf>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn scaled(mut x: Tensor, s: Option<f32>) -> Tensor {
    if let Some(s) = s {
        x.data.iter_mut().for_each(|v| *v *= s);
    }
    x
}

fn first_rows(x: &Tensor, n: usize, seed: u64) -> Tensor {
    let mut idx: Vec<usize> = (0..x.batch()).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x7ac0));
    idx.truncate(n);
    aisec_attack::util::gather(x, &idx)
}

/// Builds the query strategy from the flags.
fn strategy(a: &ExtractionArgs, shape: &[usize]) -> anyhow::Result<(QueryStrategy, String)> {
    let (lo, hi) = (a.range.lo, a.range.hi);
    let pool = match &a.query_set {
        Some(p) => {
            let x = match a.query_scale {
                Some(s) => scaled(load_inputs(p)?, Some(s)),
                None => a.prep.apply(load_inputs(p)?, &a.range)?,
            };
            let fix = crate::data::Fix::Scale(if a.query_scale.is_some() {
                "--query-scale"
            } else {
                "--scale (or --query-scale)"
            });
            crate::data::check_inputs(&x, "--query-set", lo, hi, fix)?;
            Some(x)
        }
        None => None,
    };
    Ok(match a.query_data.as_str() {
        "in" | "ood" => {
            let x = pool.context("--query-data in/ood needs --query-set FILE")?;
            let kind = if a.query_data == "in" {
                "in-distribution"
            } else {
                "out-of-distribution"
            };
            (QueryStrategy::Pool { x }, kind.into())
        }
        _ => {
            let s = match a.synthetic.as_str() {
                "uniform" => QueryStrategy::Uniform,
                "gaussian" => QueryStrategy::Gaussian {
                    mean: 0.5 * (lo + hi),
                    std: 0.25 * (hi - lo),
                },
                _ => {
                    let n = a.jacobian_seed.max(1);
                    let seed = match pool {
                        Some(x) => first_rows(&x, n, a.seed),
                        // Checked against what can be held before anything is allocated.
                        None => jacobian_noise_seed(n, shape, lo, hi, a.seed ^ 0x5eed)
                            .with_context(|| format!("--jacobian-seed {n}"))?,
                    };
                    QueryStrategy::Jacobian {
                        seed,
                        lambda: a.jacobian_lambda,
                        tau: a.jacobian_tau,
                    }
                }
            };
            (s, "synthetic".into())
        }
    })
}

/// Runs an extraction with a progress bar and Ctrl-C handling, and builds the report.
pub fn evaluate(
    victim: &dyn Classifier,
    test: &Dataset,
    cfg: &ExtractionConfig,
    target_name: &str,
    show_progress: bool,
) -> anyhow::Result<(Report, Extraction)> {
    // Ctrl-C stops after the request or training step in flight; what is done is reported.
    let ctx = crate::cmd::attack::attack_context(show_progress);
    let start = std::time::Instant::now();
    let out = run_extraction(victim, test, cfg, &ctx)?;
    ctx.progress().finish();
    // Said on stderr (even with --quiet: the numbers mean less than asked)
    // and, by `run`, at the end of the text report.
    for w in &out.report.warnings {
        eprintln!(
            "aisec: warning: {}",
            aisec_core::render::escape_terminal(&w.to_string())
        );
    }
    let mut report = Report::new("attack extraction");
    report.add_rules(aisec_attack::RULES);
    report.extend(out.report.findings(target_name));
    report.summary.items = out.report.queries_used;
    report.summary.seconds = start.elapsed().as_secs_f64();
    report
        .data
        .insert("extraction".into(), serde_json::to_value(&out.report)?);
    if out.report.cancelled {
        report.error(
            target_name,
            "interrupted: the curve covers the budgets that finished",
        );
    }
    report.finish();
    Ok((report, out))
}

/// Writes the surrogate as safetensors + spec + ONNX into `dir`.
pub fn save_surrogate(m: &OnnxModel, spec: &ArchSpec, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    m.save_safetensors(dir.join("surrogate.safetensors"))?;
    std::fs::write(
        dir.join("surrogate.spec.json"),
        serde_json::to_string_pretty(spec)?,
    )?;
    m.save_onnx(dir.join("surrogate.onnx"))?;
    Ok(())
}

/// Runs `aisec attack extraction`.
pub fn run(a: ExtractionArgs) -> anyhow::Result<i32> {
    let (victim, name) = a.victim.load()?;
    let v = victim.classifier();
    let shape = v.input_shape().to_vec();
    a.range.check()?;
    let x = a.prep.apply(load_inputs(&a.test_inputs)?, &a.range)?;
    let y = load_labels(&a.test_labels)?;
    crate::data::check_lengths(&x, &y, "--test-inputs")?;
    crate::data::check_inputs(
        &x,
        "--test-inputs",
        a.range.lo,
        a.range.hi,
        crate::data::Fix::ScaleOrValueRange,
    )?;
    crate::data::check_labels(&y, v.num_classes(), "--test-labels")?;
    let test = Dataset::new(x, y)?;
    let surrogate = match &a.surrogate_arch {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            ArchSpec::parse(&text).with_context(|| format!("in {}", p.display()))?
        }
        None => default_surrogate(&shape, v.num_classes()),
    };
    let (strategy, kind) = strategy(&a, &shape)?;
    let mut cfg = ExtractionConfig::new(strategy, surrogate);
    cfg.query_data = kind;
    cfg.budgets = a.budgets.clone();
    cfg.labels_only = a.labels_only;
    cfg.training = SurrogateTraining {
        epochs: a.epochs,
        min_steps: a.min_steps,
        batch_size: a.train_batch.max(1),
        lr: a.lr,
    };
    cfg.lo = a.range.lo;
    cfg.hi = a.range.hi;
    cfg.query_batch = a.query_batch.max(1);
    cfg.seed = a.seed;
    let show = crate::run::show_progress(a.no_progress);
    let (report, out) = evaluate(v, &test, &cfg, &name, show)?;
    if let (Some(dir), Some(m)) = (&a.save_surrogate, &out.surrogate) {
        save_surrogate(m, &cfg.surrogate, dir)?;
    }
    let tail: String = out
        .report
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect();
    crate::run::finish_with_tail(report, &a.output, &tail)
}

/// The whole 8x8 digits data set (uint8, values 0..16; CC BY 4.0, see
/// crates/aisec/assets/README.md).
const DIGITS_X: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.x.npy"));
const DIGITS_Y: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/digits.y.npy"));

/// `aisec demo`'s extraction section: steals `victim_path` (the bundled
/// digits CNN) with 50 and 200 in-distribution queries of its
/// probabilities, and reports fidelity on 300 other digits (the bundled CNN
/// was trained on all 1,797 digits, so its accuracy here is not a held-out
/// number; fidelity, agreement with the victim, is what the demo shows).
pub fn demo_extraction(victim_path: &Path) -> anyhow::Result<Report> {
    let victim = OnnxModel::load(victim_path)?;
    let mut x = aisec_model::data::npy::parse_npy(DIGITS_X)?.to_tensor();
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    let y = aisec_model::data::npy::parse_npy(DIGITS_Y)?.to_labels()?;
    let all = Dataset::new(x, y)?;
    let mut idx: Vec<usize> = (0..all.len()).collect();
    idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(1));
    let (pool_idx, test_idx) = idx.split_at(all.len() / 2);
    let pool = aisec_attack::util::gather(&all.x, pool_idx);
    let test_idx = &test_idx[..test_idx.len().min(300)];
    let test = Dataset::new(
        aisec_attack::util::gather(&all.x, test_idx),
        test_idx.iter().map(|&i| all.y[i]).collect(),
    )?;
    let surrogate = ArchSpec {
        input: victim.input_shape().to_vec(),
        layers: vec![
            aisec_model::spec::LayerSpec::Flatten,
            aisec_model::spec::LayerSpec::Dense {
                units: 64,
                init: None,
            },
            aisec_model::spec::LayerSpec::Relu,
            aisec_model::spec::LayerSpec::Dense {
                units: victim.num_classes(),
                init: None,
            },
        ],
    };
    let mut cfg = ExtractionConfig::new(QueryStrategy::Pool { x: pool }, surrogate);
    cfg.query_data = "in-distribution".into();
    cfg.budgets = vec![50, 200];
    cfg.training = SurrogateTraining {
        epochs: 10,
        min_steps: 120,
        batch_size: 32,
        lr: 0.01,
    };
    let (report, _) = evaluate(
        &victim,
        &test,
        &cfg,
        &victim_path.display().to_string(),
        false,
    )?;
    Ok(report)
}
