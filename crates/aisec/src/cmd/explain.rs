//! `aisec explain`: attributions for a model's decisions on a data set,
//! written as numbers (`.npy`, JSON) and pictures (PNG heat maps, SVG bar
//! charts, an HTML page), with two security uses: localising a backdoor
//! trigger (IoU with the true trigger) and attributing an adversarial
//! perturbation's logit change.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aisec_core::Report;
use aisec_explain::gradient::{self, IgConfig, IgRule, NoiseConfig};
use aisec_explain::perturb::{self, KernelShapConfig, OcclusionConfig};
use aisec_explain::render::{self, Caption, PageItem};
use aisec_explain::security;
use aisec_model::{Classifier, Differentiable, Tensor};
use anyhow::{bail, Context};
use serde_json::json;

use crate::cmd::target::{Victim, VictimArgs};
use crate::output::{emit, OutputArgs};

/// Attribution methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Gradient of the explained score (absolute value, as Captum's Saliency).
    Saliency,
    /// Integrated Gradients from a baseline (Sundararajan et al. 2017).
    Ig,
    /// SmoothGrad: mean absolute gradient over noisy copies (Smilkov et al. 2017).
    Smoothgrad,
    /// GradientSHAP: expected gradients from random background rows (Lundberg & Lee 2017).
    Gradshap,
    /// Occlusion: score drop when a sliding window is set to a value (Zeiler & Fergus 2014).
    Occlusion,
    /// KernelSHAP over a background set (Lundberg & Lee 2017, as shap's KernelExplainer).
    Kernelshap,
    /// Exact Shapley values by enumerating every coalition (at most 20 varying features).
    ExactShapley,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Saliency => "saliency",
            Method::Ig => "integrated-gradients",
            Method::Smoothgrad => "smoothgrad",
            Method::Gradshap => "gradient-shap",
            Method::Occlusion => "occlusion",
            Method::Kernelshap => "kernel-shap",
            Method::ExactShapley => "exact-shapley",
        }
    }

    fn needs_gradients(self) -> bool {
        matches!(
            self,
            Method::Saliency | Method::Ig | Method::Smoothgrad | Method::Gradshap
        )
    }
}

/// Arguments of `aisec explain`. Explanations are read off the model at
/// the inputs as given, so the range is enforced where it is used: by
/// `--adversarial`'s PGD (token-id and tabular models take other ranges).
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("lo", |a| a.help("Lowest valid input value: --adversarial clips to it, and with --adversarial inputs below it are an error")),
    mut_arg("hi", |a| a.help("Highest valid input value: --adversarial clips to it, and with --adversarial inputs above it are an error (map them with --value-range or --scale)"))
)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub victim: VictimArgs,

    /// Inputs to explain: `.npy` or IDX (shaped like the model's input), or a CSV table (with --label-column).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,

    /// True labels (`.npy` or IDX), shown beside the prediction.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Label column of a CSV table: `last`, a 0-based index, or a header name.
    #[arg(long, default_value = "last", value_name = "COL")]
    pub label_column: String,

    /// Preprocessing of --data and --background.
    #[command(flatten)]
    pub prep: crate::args::PreprocessArgs,

    #[command(flatten)]
    pub range: crate::args::InputRange,

    /// The model's input normalisation, applied inside the model (also before a --url query): attributions, baselines, --occlusion-value, --stamp and --adversarial's budget stay in pixel space.
    #[command(flatten)]
    pub norm: crate::args::NormalizeArgs,

    /// Explain only the first N examples.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub limit: usize,

    /// Attribution method [default: ig for a local model, occlusion for --url].
    #[arg(long, value_enum)]
    pub method: Option<Method>,

    /// Class to explain: `predicted`, `label` (needs --labels) or a class index.
    #[arg(long, default_value = "predicted", value_name = "CLASS")]
    pub target: String,

    /// IG: points on the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,

    /// IG: riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre.
    #[arg(long, default_value = "gausslegendre", value_name = "RULE")]
    pub rule: String,

    /// IG baseline: `zero`, `mean` (of the explained inputs) or a number.
    #[arg(long, default_value = "zero", value_name = "B")]
    pub baseline: String,

    /// SmoothGrad / GradientSHAP: noisy samples per input [default: 25 / 20].
    #[arg(long, value_name = "N")]
    pub samples: Option<usize>,

    /// SmoothGrad / GradientSHAP: noise standard deviation in input units [default: 0.15 / 0].
    #[arg(long, value_name = "S")]
    pub stdev: Option<f32>,

    /// Occlusion window per input dimension, comma-separated (e.g. 1,2,2) [default: 1 per channel, 2x2 pixels, or 1 feature].
    #[arg(long, value_delimiter = ',', value_name = "D,...")]
    pub window: Vec<usize>,

    /// Occlusion strides per input dimension [default: 1s].
    #[arg(long, value_delimiter = ',', value_name = "D,...")]
    pub strides: Vec<usize>,

    /// Occlusion: value the window is set to.
    #[arg(long, default_value_t = 0.0)]
    pub occlusion_value: f32,

    /// KernelSHAP / GradientSHAP / exact: background rows (`.npy`/IDX/CSV) [default: rows of --data].
    #[arg(long, value_name = "FILE")]
    pub background: Option<PathBuf>,

    /// Background rows used (a seeded random subset when there are more).
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub background_size: usize,

    /// KernelSHAP: coalitions per input [default: 2M + 2048, shap's].
    #[arg(long, value_name = "N")]
    pub nsamples: Option<usize>,

    /// KernelSHAP: at most this many model rows per explained input (coalitions x background rows).
    #[arg(long, value_name = "N")]
    pub max_evals: Option<usize>,

    /// Seed for noise, baseline draws and coalition sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Feature names for tabular charts, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub feature_names: Vec<String>,

    /// True trigger: a rectangle ROW,COL,HEIGHT,WIDTH in pixels, or a `.npy` mask [H, W] (non-zero = trigger). Reports the IoU of the top-attributed pixels with it.
    #[arg(long, value_name = "R,C,H,W|FILE")]
    pub trigger: Option<String>,

    /// Stamp the --trigger rectangle onto the inputs with this value before explaining (BadNets-style patch).
    #[arg(long, value_name = "V", requires = "trigger")]
    pub stamp: Option<f32>,

    /// Attack each input with PGD (L-inf, this eps, inputs in [--lo, --hi]: data outside it is an error) first and attribute the change of the adversarial class's logit to the perturbation (IG from clean to adversarial input).
    #[arg(long, value_name = "EPS")]
    pub adversarial: Option<f32>,

    /// Folder for attributions.npy, attributions.json, pictures and index.html.
    #[arg(long, default_value = "explain-out", value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Loads the inputs (and labels) to explain.
fn load_data(a: &ExplainArgs, shape: &[usize]) -> anyhow::Result<(Tensor, Option<Vec<usize>>)> {
    let (x, y) = load_table(&a.data, a.labels.as_deref(), &a.label_column)?;
    let mut x = a.prep.apply(x, &a.range)?;
    let want: usize = shape.iter().product();
    if x.row_len() != want {
        bail!(
            "{}: examples have {} values, the model's input {shape:?} needs {want}",
            a.data.display(),
            x.row_len()
        );
    }
    let n = x.batch().min(a.limit);
    x.data.truncate(n * want);
    x.shape = std::iter::once(n).chain(shape.iter().copied()).collect();
    if n == 0 {
        bail!("{} holds no examples", a.data.display());
    }
    let y = match y {
        Some(mut y) => {
            if y.len() < n {
                bail!("{} labels for {n} examples", y.len());
            }
            y.truncate(n);
            Some(y)
        }
        None => None,
    };
    Ok((x, y))
}

/// Inputs and optional labels from `.npy`/IDX or CSV.
fn load_table(
    path: &Path,
    labels: Option<&Path>,
    label_column: &str,
) -> anyhow::Result<(Tensor, Option<Vec<usize>>)> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        let col = match label_column {
            "last" => aisec_model::data::csv::LabelColumn::Last,
            s => match s.parse::<usize>() {
                Ok(i) => aisec_model::data::csv::LabelColumn::Index(i),
                Err(_) => aisec_model::data::csv::LabelColumn::Name(s.to_string()),
            },
        };
        let d = aisec_model::data::csv::read_csv(path, &col)
            .with_context(|| format!("cannot read CSV {}", path.display()))?;
        return Ok((d.x, Some(d.y)));
    }
    let x = crate::cmd::attack::load_inputs(path)?;
    let y = match labels {
        Some(p) => Some(crate::cmd::attack::load_labels(p)?),
        None => None,
    };
    Ok((x, y))
}

/// The trigger mask (`h * w` pixels) from `R,C,H,W` or a `.npy` file.
fn trigger_mask(spec: &str, h: usize, w: usize) -> anyhow::Result<Vec<bool>> {
    let parts: Vec<&str> = spec.split(',').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.trim().parse::<usize>().is_ok()) {
        let v: Vec<usize> = parts.iter().filter_map(|p| p.trim().parse().ok()).collect();
        let (r, c, th, tw) = (v[0], v[1], v[2], v[3]);
        if th == 0 || tw == 0 || r + th > h || c + tw > w {
            bail!("--trigger {spec} does not fit inside {h}x{w} inputs");
        }
        return Ok((0..h * w)
            .map(|p| {
                let (y, x) = (p / w, p % w);
                y >= r && y < r + th && x >= c && x < c + tw
            })
            .collect());
    }
    let m = aisec_model::data::npy::read_npy(spec)
        .with_context(|| format!("--trigger {spec} is neither R,C,H,W nor a readable .npy mask"))?
        .to_tensor();
    if m.data.len() != h * w {
        bail!(
            "trigger mask {spec} has {} values, the inputs {h}x{w} pixels",
            m.data.len()
        );
    }
    Ok(m.data.iter().map(|&v| v != 0.0).collect())
}

/// Sets the trigger pixels of every channel to `value`.
fn stamp(x: &mut Tensor, mask: &[bool], value: f32) {
    let (c, h, w) = security::image_dims(&x.shape[1..]);
    for i in 0..x.batch() {
        let row = x.row_mut(i);
        for ch in 0..c {
            for (p, &m) in mask.iter().enumerate().take(h * w) {
                if m {
                    row[ch * h * w + p] = value;
                }
            }
        }
    }
}

/// A seeded random subset of at most `n` rows.
fn subset(x: &Tensor, n: usize, seed: u64) -> Tensor {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut idx: Vec<usize> = (0..x.batch()).collect();
    if idx.len() > n {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x6267);
        idx.shuffle(&mut rng);
        idx.truncate(n);
        idx.sort_unstable();
    }
    let mut data = Vec::with_capacity(idx.len() * x.row_len());
    for &i in &idx {
        data.extend_from_slice(x.row(i));
    }
    let mut shape = x.shape.clone();
    shape[0] = idx.len();
    Tensor { shape, data }
}

fn is_image(shape: &[usize]) -> bool {
    matches!(shape, [1 | 3, _, _] | [_, _])
}

/// What a method computed.
struct Outcome {
    attributions: Tensor,
    score: Vec<f32>,
    baseline_score: Option<Vec<f32>>,
    delta: Option<Vec<f32>>,
    coalitions: Option<Vec<usize>>,
}

impl Outcome {
    /// The outcome of a path method (Integrated Gradients, GradientSHAP),
    /// with its baseline scores and completeness deltas.
    fn path(r: gradient::PathAttribution) -> Outcome {
        Outcome {
            attributions: r.attributions,
            score: r.score,
            baseline_score: Some(r.baseline_score),
            delta: Some(r.delta),
            coalitions: None,
        }
    }
}

/// SmoothGrad's or GradientSHAP's noise settings: `--samples` and
/// `--stdev` with the method's own defaults, and `--seed`.
fn noise(a: &ExplainArgs, samples: usize, stdev: f32) -> NoiseConfig {
    NoiseConfig {
        samples: a.samples.unwrap_or(samples),
        stdev: a.stdev.unwrap_or(stdev),
        seed: a.seed,
        ..NoiseConfig::default()
    }
}

/// Runs `aisec explain`.
pub fn run(a: ExplainArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    let (victim, name) = a.victim.load()?;
    // --mean/--std: the model normalises inside, so everything below is
    // read off (and taken in) pixel space.
    let (norm_local, norm_remote) = match (&victim, a.norm.is_set()) {
        (_, false) => (None, None),
        (Victim::Local(m), true) => (Some(a.norm.wrap(m)?), None),
        (Victim::Remote(r), true) => (None, Some(a.norm.wrap(r)?)),
    };
    let model: &dyn Classifier = match (&norm_local, &norm_remote) {
        (Some(m), _) => m,
        (_, Some(m)) => m,
        _ => victim.classifier(),
    };
    let local: Option<&dyn Differentiable> = match (&victim, &norm_local) {
        (_, Some(m)) => Some(m),
        (Victim::Local(m), None) => Some(m),
        (Victim::Remote(_), None) => None,
    };
    let method = a.method.unwrap_or(if local.is_some() {
        Method::Ig
    } else {
        Method::Occlusion
    });
    if method.needs_gradients() && local.is_none() {
        bail!(
            "{} needs gradients; a --url model answers queries only: use --method occlusion, kernelshap or exact-shapley",
            method.name()
        );
    }
    let shape = model.input_shape().to_vec();
    let (mut x, labels) = load_data(&a, &shape)?;
    crate::data::check_finite(&x, "--data")?;
    a.range.check()?;
    if a.adversarial.is_some() {
        // PGD's budget and clipping are in [--lo, --hi]: data stored as
        // 0..255 (or 0..16) would make every budget far too small, silently.
        crate::data::check_inputs(
            &x,
            "--data",
            a.range.lo,
            a.range.hi,
            crate::data::Fix::ScaleOrValueRange,
        )?;
    }
    let (_, h, w) = security::image_dims(&shape);
    let trigger = match &a.trigger {
        Some(t) => Some(trigger_mask(t, h, w)?),
        None => None,
    };
    if let (Some(v), Some(m)) = (a.stamp, &trigger) {
        stamp(&mut x, m, v);
    }
    let predicted = model.predict(&x)?;

    // The adversarial use replaces the inputs by PGD's and explains the
    // adversarial class's logit change from the clean input.
    let mut clean: Option<Tensor> = None;
    if let Some(eps) = a.adversarial {
        let Some(dm) = local else {
            bail!("--adversarial needs a local model (PGD uses gradients)");
        };
        let y = labels.clone().unwrap_or_else(|| predicted.clone());
        let budget = aisec_attack::Budget {
            norm: aisec_attack::Norm::Linf,
            eps,
            lo: a.range.lo,
            hi: a.range.hi,
        };
        let mut ctx = aisec_attack::AttackContext::silent().with_seed(a.seed);
        let adv = aisec_attack::evasion::pgd(
            &mut ctx,
            dm,
            &x,
            &y,
            None,
            &budget,
            &aisec_attack::evasion::PgdConfig::default(),
        )?;
        clean = Some(std::mem::replace(&mut x, adv));
    }
    let now_pred = model.predict(&x)?;
    let targets: Vec<usize> = match a.target.as_str() {
        _ if clean.is_some() => now_pred.clone(),
        "predicted" => now_pred.clone(),
        "label" => labels.clone().context("--target label needs --labels")?,
        s => {
            let t: usize = s.parse().with_context(|| {
                format!("--target {s} is not predicted, label or a class index")
            })?;
            vec![t; x.batch()]
        }
    };
    let rule = IgRule::parse(&a.rule).with_context(|| {
        format!(
            "--rule {} is not one of riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre",
            a.rule
        )
    })?;
    let ig_cfg = IgConfig {
        steps: a.steps,
        rule,
        ..IgConfig::default()
    };
    let background = || -> anyhow::Result<Tensor> {
        let b = match &a.background {
            Some(p) => {
                let (b, _) = load_table(p, None, &a.label_column)?;
                let mut b = a.prep.apply(b, &a.range)?;
                if b.row_len() != x.row_len() {
                    bail!("background {} rows do not fit the model input", p.display());
                }
                b.shape = std::iter::once(b.batch())
                    .chain(shape.iter().copied())
                    .collect();
                b
            }
            None => {
                let (b, _) = load_table(&a.data, None, &a.label_column)?;
                let mut b = a.prep.apply(b, &a.range)?;
                b.shape = std::iter::once(b.batch())
                    .chain(shape.iter().copied())
                    .collect();
                b
            }
        };
        Ok(subset(&b, a.background_size.max(1), a.seed))
    };

    let attribution_started = Instant::now();
    let outcome = if let Some(c) = &clean {
        let dm = local.context("local model")?;
        let r = security::attribute_perturbation(dm, c, &x, &targets, &ig_cfg)?;
        Outcome {
            attributions: r.path.attributions,
            score: r.path.score,
            baseline_score: Some(r.path.baseline_score),
            delta: Some(r.path.delta),
            coalitions: None,
        }
    } else {
        match method {
            Method::Saliency => {
                let dm = local.context("local model")?;
                Outcome {
                    attributions: gradient::saliency(dm, &x, &targets, true)?,
                    score: gradient::target_scores(model, &x, &targets)?,
                    baseline_score: None,
                    delta: None,
                    coalitions: None,
                }
            }
            Method::Ig => {
                let dm = local.context("local model")?;
                let base = match a.baseline.as_str() {
                    "zero" => {
                        Tensor::zeros(std::iter::once(1).chain(shape.iter().copied()).collect())
                    }
                    "mean" => {
                        let d = x.row_len();
                        let mut m = vec![0.0f32; d];
                        for i in 0..x.batch() {
                            for (a, v) in m.iter_mut().zip(x.row(i)) {
                                *a += v / x.batch() as f32;
                            }
                        }
                        Tensor::new(std::iter::once(1).chain(shape.iter().copied()).collect(), m)?
                    }
                    v => {
                        let c: f32 = v.parse().with_context(|| {
                            format!("--baseline {v} is not zero, mean or a number")
                        })?;
                        let d = x.row_len();
                        Tensor::new(
                            std::iter::once(1).chain(shape.iter().copied()).collect(),
                            vec![c; d],
                        )?
                    }
                };
                Outcome::path(gradient::integrated_gradients(
                    dm, &x, &base, &targets, &ig_cfg,
                )?)
            }
            Method::Smoothgrad => {
                let dm = local.context("local model")?;
                let cfg = noise(&a, 25, 0.15);
                Outcome {
                    attributions: gradient::smoothgrad(dm, &x, &targets, &cfg, true)?,
                    score: gradient::target_scores(model, &x, &targets)?,
                    baseline_score: None,
                    delta: None,
                    coalitions: None,
                }
            }
            Method::Gradshap => {
                let dm = local.context("local model")?;
                let cfg = noise(&a, 20, 0.0);
                Outcome::path(gradient::gradient_shap(
                    dm,
                    &x,
                    &background()?,
                    &targets,
                    &cfg,
                )?)
            }
            Method::Occlusion => {
                let rank = shape.len();
                let window = if a.window.is_empty() {
                    match shape.as_slice() {
                        [c, hh, ww] if *hh >= 2 && *ww >= 2 => vec![*c, 2, 2],
                        [hh, ww] if *hh >= 2 && *ww >= 2 => vec![2, 2],
                        _ => vec![1; rank],
                    }
                } else {
                    a.window.clone()
                };
                let strides = if a.strides.is_empty() {
                    vec![1; rank]
                } else {
                    a.strides.clone()
                };
                let cfg = OcclusionConfig {
                    window,
                    strides,
                    baseline: a.occlusion_value,
                    chunk: perturb::DEFAULT_CHUNK,
                };
                Outcome {
                    attributions: perturb::occlusion(model, &x, &targets, &cfg)?,
                    score: gradient::target_scores(model, &x, &targets)?,
                    baseline_score: None,
                    delta: None,
                    coalitions: None,
                }
            }
            Method::Kernelshap | Method::ExactShapley => {
                let bg = background()?;
                let r = if method == Method::Kernelshap {
                    let cfg = KernelShapConfig {
                        nsamples: a.nsamples,
                        max_evals: a.max_evals,
                        seed: a.seed,
                        chunk: 0,
                    };
                    perturb::kernel_shap(model, &x, &bg, &targets, &cfg)?
                } else {
                    perturb::exact_shapley(model, &x, &bg, &targets)?
                };
                let delta = (0..x.batch())
                    .map(|i| r.values.row(i).iter().sum::<f32>() - (r.score[i] - r.base_value[i]))
                    .collect();
                Outcome {
                    attributions: r.values,
                    score: r.score,
                    baseline_score: Some(r.base_value),
                    delta: Some(delta),
                    coalitions: Some(r.coalitions),
                }
            }
        }
    };

    let attribution_seconds = attribution_started.elapsed().as_secs_f64();
    let ious = match &trigger {
        Some(m) => Some(security::trigger_iou(&outcome.attributions, m)?),
        None => None,
    };
    let shown_method = if clean.is_some() {
        "integrated-gradients (clean -> adversarial)"
    } else {
        method.name()
    };
    let per_example = PerExample {
        targets: &targets,
        predicted_clean: &predicted,
        predicted: &now_pred,
        labels: labels.as_deref(),
        ious: ious.as_deref(),
        trigger: trigger.as_deref(),
    };
    write_outputs(
        &a,
        &x,
        clean.as_ref(),
        &outcome,
        per_example,
        shown_method,
        &name,
    )?;

    let mut report = Report::new("explain");
    report.summary.items = x.batch() as u64;
    report.summary.seconds = started.elapsed().as_secs_f64();
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    let mut data = serde_json::Map::new();
    data.insert("model".into(), json!(name));
    data.insert("method".into(), json!(shown_method));
    data.insert("examples".into(), json!(x.batch()));
    data.insert("out".into(), json!(a.out.display().to_string()));
    // The method alone, without loading, attacking or writing pictures.
    data.insert("attribution_seconds".into(), json!(attribution_seconds));
    if let Some(d) = &outcome.delta {
        let abs: Vec<f32> = d.iter().map(|v| v.abs()).collect();
        data.insert("mean_abs_delta".into(), json!(mean(&abs)));
    }
    if let Some(i) = &ious {
        data.insert("trigger_iou_mean".into(), json!(mean(i)));
        let to_target = targets.iter().filter(|&&t| t == targets[0]).count();
        data.insert(
            "triggered_examples_in_majority_class".into(),
            json!(to_target),
        );
    }
    if let Some(c) = &clean {
        let changed = predicted
            .iter()
            .zip(&now_pred)
            .filter(|(a, b)| a != b)
            .count();
        data.insert("adversarial_flipped".into(), json!(changed));
        let ch: Vec<f32> = outcome
            .score
            .iter()
            .zip(outcome.baseline_score.iter().flatten())
            .map(|(a, b)| a - b)
            .collect();
        data.insert("mean_logit_change".into(), json!(mean(&ch)));
        let _ = c;
    }
    report
        .data
        .insert("explain".into(), serde_json::Value::Object(data));
    // Models that look token ids up in an embedding table (ONNX Gather)
    // have no gradient with respect to the ids: say so rather than show
    // blank pictures.
    if method.needs_gradients()
        && clean.is_none()
        && outcome.attributions.data.iter().all(|&v| v == 0.0)
        && x.data.iter().all(|v| v.fract() == 0.0)
    {
        report.error(
            name.clone(),
            "every gradient attribution is zero and the inputs are whole numbers: the model \
             probably looks token ids up in an embedding table, which has no input gradient; \
             use --method occlusion or kernelshap with a padding token as --occlusion-value / background",
        );
    }
    report.finish();
    eprintln!(
        "aisec explain: {} on {} examples -> {}",
        shown_method,
        x.batch(),
        aisec_core::render::escape_terminal(&a.out.join("index.html").display().to_string())
    );
    emit(&report, &a.output)
}

/// What is known of each explained example besides its attribution.
#[derive(Clone, Copy)]
struct PerExample<'a> {
    /// The class explained.
    targets: &'a [usize],
    /// The prediction on the clean input (with `--clean`).
    predicted_clean: &'a [usize],
    /// The prediction on the input explained.
    predicted: &'a [usize],
    /// True labels, when given.
    labels: Option<&'a [usize]>,
    /// Overlap of the attribution with the known trigger.
    ious: Option<&'a [f32]>,
    /// The trigger's pixels, outlined in the pictures.
    trigger: Option<&'a [bool]>,
}

/// Writes `attributions.npy`, `attributions.json`, a picture per example,
/// a summary (tabular) and `index.html`.
fn write_outputs(
    a: &ExplainArgs,
    x: &Tensor,
    clean: Option<&Tensor>,
    o: &Outcome,
    per_example: PerExample<'_>,
    method: &str,
    model_name: &str,
) -> anyhow::Result<()> {
    let PerExample {
        targets,
        predicted_clean,
        predicted,
        labels,
        ious,
        trigger,
    } = per_example;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    aisec_model::data::npy::write_npy(a.out.join("attributions.npy"), &o.attributions)?;
    let shape = &x.shape[1..];
    let d = x.row_len();
    let image = is_image(shape);
    let names: Vec<String> = (0..d)
        .map(|j| {
            a.feature_names
                .get(j)
                .cloned()
                .unwrap_or_else(|| format!("f{j}"))
        })
        .collect();
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for i in 0..x.batch() {
        let truth = labels.map(|l| l[i]);
        let attr = o.attributions.row(i);
        let sum: f64 = attr.iter().map(|&v| v as f64).sum();
        let mut caption = format!(
            "#{i}: predicted {}, true {}, explained class {}, score {:.4}",
            predicted[i],
            truth.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            targets[i],
            o.score[i]
        );
        if let Some(b) = &o.baseline_score {
            caption.push_str(&format!(", baseline score {:.4}", b[i]));
        }
        if let Some(dl) = &o.delta {
            caption.push_str(&format!(", delta {:.2e}", dl[i]));
        }
        if let Some(iou) = ious {
            caption.push_str(&format!(", trigger IoU {:.2}", iou[i]));
        }
        if clean.is_some() {
            caption.push_str(&format!(", clean prediction {}", predicted_clean[i]));
        }
        let picture = if image {
            let f = format!("{i:04}.png");
            render::heatmap_png(
                &a.out.join(&f),
                clean.map(|c| c.row(i)).unwrap_or(x.row(i)),
                attr,
                shape,
                &Caption {
                    predicted: predicted[i],
                    truth,
                    target: targets[i],
                    outline: trigger.map(|t| t.to_vec()),
                },
            )?;
            f
        } else {
            let f = format!("{i:04}.svg");
            let svg = render::bar_chart_svg(&caption, &names, attr, 20);
            std::fs::write(a.out.join(&f), svg)
                .with_context(|| format!("cannot write {}", a.out.join(&f).display()))?;
            f
        };
        items.push(PageItem { picture, caption });
        let mut row = json!({
            "index": i,
            "predicted": predicted[i],
            "label": truth,
            "target": targets[i],
            "score": o.score[i],
            "attribution_sum": sum,
        });
        if let Some(b) = &o.baseline_score {
            row["baseline_score"] = json!(b[i]);
        }
        if let Some(dl) = &o.delta {
            row["delta"] = json!(dl[i]);
        }
        if let Some(c) = &o.coalitions {
            row["coalitions"] = json!(c[i]);
        }
        if let Some(iou) = ious {
            row["trigger_iou"] = json!(iou[i]);
        }
        if clean.is_some() {
            row["clean_predicted"] = json!(predicted_clean[i]);
        }
        // Values go in the JSON up to a million in all; the .npy has them all.
        if x.data.len() <= 1_000_000 {
            row["attributions"] = json!(attr);
        }
        rows.push(row);
    }
    let summary = if image {
        None
    } else {
        let m = render::mean_abs(&o.attributions.data, d);
        let svg = render::bar_chart_svg(
            &format!("mean |{method}| over {} examples", x.batch()),
            &names,
            &m,
            20,
        );
        std::fs::write(a.out.join("summary.svg"), svg)?;
        Some("summary.svg")
    };
    let doc = json!({
        "model": model_name,
        "method": method,
        "input_shape": shape,
        "examples": rows,
    });
    std::fs::write(
        a.out.join("attributions.json"),
        serde_json::to_vec_pretty(&doc)?,
    )?;
    let mut facts = vec![
        ("model".to_string(), model_name.to_string()),
        ("method".to_string(), method.to_string()),
        ("examples".to_string(), x.batch().to_string()),
        (
            "numbers".to_string(),
            "attributions.npy, attributions.json".to_string(),
        ),
    ];
    if let Some(iou) = ious {
        let m = iou.iter().sum::<f32>() / iou.len().max(1) as f32;
        facts.push(("mean trigger IoU".to_string(), format!("{m:.3}")));
    }
    let html = render::html_page(&format!("aisec explain: {method}"), &facts, summary, &items);
    std::fs::write(a.out.join("index.html"), html)?;
    Ok(())
}
