//! Model extraction (stealing) through the query interface.
//!
//! The setting is that of Tramèr et al. 2016 ("Stealing Machine Learning
//! Models via Prediction APIs"): an attacker can only send inputs to the
//! victim's prediction API and read its answers, and wants a local copy
//! (a *surrogate*) that behaves like the victim. The attack here follows
//!
//! * Knockoff Nets (Orekondy, Schiele, Fritz 2019): query the victim on
//!   natural images that need not come from its training distribution
//!   (the "random" sampling strategy), then train the surrogate on the
//!   victim's output probabilities (distillation, soft cross-entropy);
//! * Copycat CNN (Correia-Silva et al. 2018): the same with *labels only*
//!   (one-hot targets), on in- or out-of-distribution images;
//! * Papernot et al. 2017 ("Practical Black-Box Attacks against Machine
//!   Learning"): synthetic queries grown by Jacobian-based data
//!   augmentation, `x + λ·sign(∂F_{O(x)}/∂x)` on the current surrogate `F`,
//!   with the sign of λ flipped every τ rounds;
//! * uniform or Gaussian noise as the query-data baseline.
//!
//! Every query goes through [`aisec_model::blackbox::QueryCounter`] with the
//! largest requested budget, so the attack cannot ask more than that. A
//! pool smaller than a budget caps the queries at the pool: the point says
//! so (`capped`), budgets that would train on the same queries as a smaller
//! one are skipped, and the report carries a warning for each; it never
//! claims a budget it did not use.
//! The query sequence is fixed once (for the Jacobian strategy it is grown
//! round by round); for each budget `b` of the list a fresh surrogate is
//! trained on the first `b` answers, and its test accuracy and *fidelity*
//! (agreement of its top-1 label with the victim's on held-out test data,
//! Jagielski et al. 2020) are measured. Evaluating fidelity asks the victim
//! about the test inputs too; those queries are counted separately and are
//! not part of the attacker's budget.

use aisec_core::{Confidence, Finding, Location, Severity};
use aisec_model::blackbox::{LabelOnly, QueryCounter};
use aisec_model::data::Dataset;
use aisec_model::fit::{fit_targets, FitOptions, Targets, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{Classifier, Differentiable, Loss, ModelError, OnnxModel, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::context::AttackContext;
use crate::rules::EXTRACTION;
use crate::util::{gather, gaussian};

/// Most query values (examples times values per example) one run keeps (1 GiB of `f32`).
pub const MAX_QUERY_VALUES: usize = 1 << 28;

/// Errors of an extraction run.
#[derive(Debug, thiserror::Error)]
pub enum ExtractionError {
    /// The model (victim or surrogate) failed, or a remote victim gave a bad answer.
    #[error("model error: {0}")]
    Model(#[from] ModelError),
    /// The configuration or data do not fit.
    #[error("invalid extraction setting: {0}")]
    Config(String),
}

/// Where the attacker's queries come from.
#[derive(Debug, Clone)]
pub enum QueryStrategy {
    /// Inputs from a pool (in- or out-of-distribution), in a seeded random
    /// order without replacement; a budget above the pool size uses the
    /// whole pool.
    Pool {
        /// Inputs `[n, ..input_shape]`, already in the victim's input space.
        x: Tensor,
    },
    /// Uniform noise in `[lo, hi]`.
    Uniform,
    /// Gaussian noise around `mean` with standard deviation `std`, clipped to `[lo, hi]`.
    Gaussian {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Jacobian-based augmentation (Papernot et al. 2017) from `seed`
    /// inputs: each round adds `x + λ·sign(∇_x F_{O(x)}(x))` for (a random
    /// subset of) the current set, on the surrogate trained so far.
    Jacobian {
        /// Initial inputs `[n, ..input_shape]` (a few real examples, or noise).
        seed: Tensor,
        /// Step λ (the paper uses 0.1 on `[0, 1]` inputs).
        lambda: f32,
        /// Flip λ's sign every `tau` rounds (0: never).
        tau: usize,
    },
}

impl QueryStrategy {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            QueryStrategy::Pool { .. } => "pool",
            QueryStrategy::Uniform => "uniform-noise",
            QueryStrategy::Gaussian { .. } => "gaussian-noise",
            QueryStrategy::Jacobian { .. } => "jacobian-augmentation",
        }
    }
}

/// Surrogate training settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurrogateTraining {
    /// Passes over the queried examples.
    pub epochs: usize,
    /// At least this many optimiser steps, whatever the budget (small
    /// budgets get more epochs).
    pub min_steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f32,
}

impl Default for SurrogateTraining {
    fn default() -> Self {
        SurrogateTraining {
            epochs: 20,
            min_steps: 200,
            batch_size: 64,
            lr: 0.003,
        }
    }
}

/// Settings of an extraction run.
#[derive(Debug, Clone)]
pub struct ExtractionConfig {
    /// How queries are chosen.
    pub strategy: QueryStrategy,
    /// What the query data is, for the report: `in-distribution`,
    /// `out-of-distribution` or `synthetic` (free text).
    pub query_data: String,
    /// Query budgets to evaluate, in examples (sorted and deduplicated).
    pub budgets: Vec<usize>,
    /// Use only the victim's top-1 label (one-hot targets) instead of its probabilities.
    pub labels_only: bool,
    /// Surrogate architecture; its input must match the victim's.
    pub surrogate: ArchSpec,
    /// Training settings.
    pub training: SurrogateTraining,
    /// Lowest valid input value.
    pub lo: f32,
    /// Highest valid input value.
    pub hi: f32,
    /// Examples per victim request.
    pub query_batch: usize,
    /// Seed for query order, noise and surrogate initialisation.
    pub seed: u64,
}

impl ExtractionConfig {
    /// Defaults around a strategy and surrogate: budgets 100, 500, 2000,
    /// probabilities, inputs in `[0, 1]`.
    pub fn new(strategy: QueryStrategy, surrogate: ArchSpec) -> Self {
        ExtractionConfig {
            strategy,
            query_data: "unspecified".into(),
            budgets: vec![100, 500, 2000],
            labels_only: false,
            surrogate,
            training: SurrogateTraining::default(),
            lo: 0.0,
            hi: 1.0,
            query_batch: 64,
            seed: 0,
        }
    }
}

/// The surrogate's quality after one budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractionPoint {
    /// Requested budget.
    pub budget: usize,
    /// Victim queries the surrogate was trained on (below `budget` when
    /// the pool ran out).
    pub queries: usize,
    /// `queries` is below `budget`: the pool held fewer inputs.
    pub capped: bool,
    /// Surrogate accuracy on the test labels.
    pub surrogate_accuracy: f64,
    /// Share of test inputs where surrogate and victim agree on the top-1 label.
    pub fidelity: f64,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Result of an extraction run (serialised into the report's data).
#[derive(Debug, Clone, Serialize)]
pub struct ExtractionReport {
    /// Query data kind (`in-distribution`, `out-of-distribution`, `synthetic`).
    pub query_data: String,
    /// Query strategy (`pool`, `uniform-noise`, `gaussian-noise`, `jacobian-augmentation`).
    pub strategy: String,
    /// `probabilities` or `labels`.
    pub outputs: String,
    /// Budgets asked for (sorted, deduplicated); `curve` says what each used.
    pub budgets: Vec<usize>,
    /// One point per budget that finished, in budget order (budgets that
    /// would train on the same queries as a smaller one are skipped, with a
    /// warning).
    pub curve: Vec<ExtractionPoint>,
    /// Distinct queries the strategy could supply for the largest budget
    /// (the pool size when the pool is smaller).
    pub queries_available: usize,
    /// What the run could not do as asked (a budget above the pool, a
    /// skipped budget), in words.
    pub warnings: Vec<String>,
    /// Victim accuracy on the test labels.
    pub victim_accuracy: f64,
    /// Test examples.
    pub test_examples: usize,
    /// Attacker queries asked of the victim in total.
    pub queries_used: u64,
    /// Victim queries spent on measuring fidelity (not the attacker's).
    pub evaluation_queries: u64,
    /// Pool size for pool strategies.
    pub pool_size: Option<usize>,
    /// Trainable surrogate parameters.
    pub surrogate_parameters: usize,
    /// Training settings.
    pub training: SurrogateTraining,
    /// Number of classes.
    pub classes: usize,
    /// Every budget's surrogate was trained and measured.
    pub complete: bool,
    /// Stopped early by the cancel flag.
    pub cancelled: bool,
}

/// An extraction run's report and the surrogate trained at the largest budget.
#[derive(Debug, Clone)]
pub struct Extraction {
    /// Numbers.
    pub report: ExtractionReport,
    /// The surrogate of the last finished budget (None if none finished).
    pub surrogate: Option<OnnxModel>,
}

/// Turns victim outputs into probability rows: rows that already are
/// distributions are kept, anything else is treated as logits (softmax).
/// Non-finite answers are an error.
pub fn to_probabilities(z: &Tensor) -> Result<Vec<f32>, ExtractionError> {
    let c = z.row_len();
    if z.data.iter().any(|v| !v.is_finite()) {
        return Err(ExtractionError::Model(ModelError::Remote(
            "victim returned non-finite scores".into(),
        )));
    }
    let mut out = Vec::with_capacity(z.data.len());
    for i in 0..z.batch() {
        let r = z.row(i);
        let s: f32 = r.iter().sum();
        if c > 0 && r.iter().all(|&v| v >= 0.0) && (s - 1.0).abs() < 1e-3 {
            out.extend(r.iter().map(|v| v / s));
        } else {
            out.extend(softmax(r));
        }
    }
    Ok(out)
}

/// Softmax of one row.
pub fn softmax(r: &[f32]) -> Vec<f32> {
    let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = r.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum::<f32>().max(f32::MIN_POSITIVE);
    e.into_iter().map(|v| v / s).collect()
}

fn argmax(v: &[f32]) -> usize {
    aisec_model::classifier::argmax(v)
}

fn rows_of(x: &Tensor, start: usize, end: usize) -> Tensor {
    let n = x.row_len();
    let mut shape = x.shape.clone();
    shape[0] = end - start;
    Tensor {
        shape,
        data: x.data[start * n..end * n].to_vec(),
    }
}

/// Predicted class per example, in batches (`advance` is told each batch's size).
fn predict_batched(
    m: &dyn Classifier,
    x: &Tensor,
    batch: usize,
    advance: &dyn Fn(u64),
) -> Result<Vec<usize>, ModelError> {
    let mut out = Vec::with_capacity(x.batch());
    let b = batch.max(1);
    for s in (0..x.batch()).step_by(b) {
        let e = (s + b).min(x.batch());
        out.extend(m.predict(&rows_of(x, s, e))?);
        advance((e - s) as u64);
    }
    Ok(out)
}

/// Queries `x` through `oracle` in batches; appends probabilities. Returns
/// false when cancelled before the end.
fn query(
    oracle: &dyn Classifier,
    x: &Tensor,
    batch: usize,
    classes: usize,
    targets: &mut Vec<f32>,
    ctx: &AttackContext,
) -> Result<bool, ExtractionError> {
    let b = batch.max(1);
    for s in (0..x.batch()).step_by(b) {
        if ctx.is_cancelled() {
            return Ok(false);
        }
        let e = (s + b).min(x.batch());
        let z = oracle.logits(&rows_of(x, s, e))?;
        if z.batch() != e - s || z.row_len() != classes {
            return Err(ExtractionError::Model(ModelError::Remote(format!(
                "victim answered {:?} for {} examples of {classes} classes",
                z.shape,
                e - s
            ))));
        }
        targets.extend(to_probabilities(&z)?);
        ctx.advance((e - s) as u64);
    }
    Ok(true)
}

/// Trains `model` (a fresh surrogate, or the Jacobian strategy's
/// substitute between rounds) on soft targets with aisec-model's fit loop
/// (Adam, seeded shuffling; batch norm trained with batch statistics);
/// returns the last epoch's mean loss and the steps taken.
fn fit(
    model: &mut OnnxModel,
    spec: &ArchSpec,
    x: &Tensor,
    targets: &[f32],
    t: &SurrogateTraining,
    seed: u64,
    ctx: &AttackContext,
) -> Result<(f64, usize), ExtractionError> {
    let n = x.batch();
    if n == 0 {
        return Ok((f64::NAN, 0));
    }
    let c = targets.len() / n;
    if c * n != targets.len() || c != model.num_classes() {
        return Err(ExtractionError::Config(format!(
            "{} target values for {n} examples and a surrogate of {} classes",
            targets.len(),
            model.num_classes()
        )));
    }
    let bs = t.batch_size.max(1);
    let per_epoch = n.div_ceil(bs);
    let cfg = TrainConfig {
        epochs: t.epochs.max(t.min_steps.div_ceil(per_epoch)).max(1),
        batch_size: bs,
        optimizer: Optimizer::adam(t.lr),
        seed: seed ^ 0x5eed_f00d,
        ..TrainConfig::default()
    };
    let soft = Tensor::new(vec![n, c], targets.to_vec())?;
    let opts = FitOptions {
        spec: Some(spec),
        cancel: Some(ctx.run().cancel.flag()),
        ..FitOptions::default()
    };
    let h = fit_targets(model, x, Targets::Soft(&soft), &cfg, opts)?;
    let last = h.last().map_or(f64::NAN, |e| f64::from(e.train_loss));
    Ok((last, h.steps as usize))
}

fn check_shapes(
    victim: &dyn Classifier,
    test: &Dataset,
    cfg: &ExtractionConfig,
) -> Result<(), ExtractionError> {
    let shape = victim.input_shape().to_vec();
    let bad = |m: String| Err(ExtractionError::Config(m));
    if cfg.surrogate.input != shape {
        return bad(format!(
            "surrogate input {:?} differs from the victim's {shape:?}",
            cfg.surrogate.input
        ));
    }
    if test.x.shape.get(1..) != Some(shape.as_slice()) {
        return bad(format!(
            "test inputs {:?} do not fit the victim's input {shape:?}",
            test.x.shape
        ));
    }
    if test.is_empty() {
        return bad("no test examples".into());
    }
    if cfg.budgets.is_empty() || cfg.budgets.contains(&0) {
        return bad("budgets must be positive".into());
    }
    if cfg.lo.partial_cmp(&cfg.hi) != Some(std::cmp::Ordering::Less) {
        return bad("lo must be below hi".into());
    }
    if let QueryStrategy::Pool { x } | QueryStrategy::Jacobian { seed: x, .. } = &cfg.strategy {
        if x.shape.get(1..) != Some(shape.as_slice()) || x.batch() == 0 {
            return bad(format!(
                "query inputs {:?} do not fit the victim's input {shape:?}",
                x.shape
            ));
        }
    }
    let row: usize = shape.iter().product();
    let largest = cfg.budgets.iter().copied().max().unwrap_or(0);
    check_query_count(largest, row, "queries (the largest budget)")?;
    let probe = OnnxModel::from_spec(&cfg.surrogate, 0)?;
    if probe.num_classes() != victim.num_classes() {
        return bad(format!(
            "the surrogate has {} outputs, the victim {} classes",
            probe.num_classes(),
            victim.num_classes()
        ));
    }
    if let Some(&bad_y) = test.y.iter().find(|&&y| y >= victim.num_classes()) {
        return bad(format!(
            "test label {bad_y} out of range for {} classes",
            victim.num_classes()
        ));
    }
    Ok(())
}

/// Noise seed inputs for the Jacobian strategy: `n` examples of `shape`,
/// uniform in `[lo, hi)`, seeded. Refuses counts whose values would not fit
/// in memory ([`MAX_QUERY_VALUES`]) before allocating anything.
pub fn jacobian_noise_seed(
    n: usize,
    shape: &[usize],
    lo: f32,
    hi: f32,
    seed: u64,
) -> Result<Tensor, ExtractionError> {
    let row: usize = shape.iter().product();
    check_query_count(n, row, "Jacobian seed inputs")?;
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(ExtractionError::Config("lo must be below hi".into()));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut s = vec![n];
    s.extend_from_slice(shape);
    Ok(Tensor::new(
        s,
        (0..n * row).map(|_| rng.gen_range(lo..hi)).collect(),
    )?)
}

/// Refuses `n` examples of `row` values when they would not fit in memory.
pub fn check_query_count(n: usize, row: usize, what: &str) -> Result<(), ExtractionError> {
    if n.checked_mul(row).is_none_or(|v| v > MAX_QUERY_VALUES) {
        return Err(ExtractionError::Config(format!(
            "{n} {what} of {row} values each are more than this run will hold in memory \
             (at most {MAX_QUERY_VALUES} values, 1 GiB)"
        )));
    }
    Ok(())
}

/// Runs the extraction: builds the query sequence up to the largest
/// budget, asks the victim (through a budgeted [`QueryCounter`]), trains a
/// fresh surrogate per budget and measures accuracy and fidelity on `test`.
///
/// Progress phases (units): `victim labels on the test set` (examples),
/// `querying the victim` (examples: the largest budget, or the pool when it
/// is smaller), `training surrogates` (budgets). Raising `ctx`'s cancel flag
/// stops at the next request or training step; the curve then covers the
/// budgets that finished and the report is marked incomplete. The
/// context's query budget, if any, must cover the largest budget plus the
/// test inputs (the fidelity reference).
pub fn run_extraction(
    victim: &dyn Classifier,
    test: &Dataset,
    cfg: &ExtractionConfig,
    ctx: &AttackContext,
) -> Result<Extraction, ExtractionError> {
    check_shapes(victim, test, cfg)?;
    let mut budgets = cfg.budgets.clone();
    budgets.sort_unstable();
    budgets.dedup();
    let max_budget = *budgets.last().unwrap_or(&0);
    if let Some(b) = ctx.query_budget() {
        let need = max_budget as u64 + test.len() as u64;
        if need > b {
            return Err(ExtractionError::Config(format!(
                "the largest budget ({max_budget}) and the {} test inputs need {need} queries, \
                 over the query budget of {b}",
                test.len()
            )));
        }
    }
    let run = ctx.counter(victim);
    let classes = victim.num_classes();
    let shape = victim.input_shape().to_vec();
    let row: usize = shape.iter().product();
    let mut warnings = Vec::new();

    // Fidelity reference: the victim's own labels on the test inputs,
    // outside the attacker's budget.
    ctx.phase("victim labels on the test set", test.len() as u64);
    let victim_test = predict_batched(&run, &test.x, cfg.query_batch.max(1) * 4, &|k| {
        ctx.advance(k)
    })?;
    let victim_accuracy = accuracy(&victim_test, &test.y);

    let labels_view = LabelOnly(&run);
    let view: &dyn Classifier = if cfg.labels_only { &labels_view } else { &run };
    let oracle = QueryCounter::with_budget(view, max_budget as u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);

    // 1. The query sequence and the victim's answers.
    let mut targets: Vec<f32> = Vec::new();
    let mut complete;
    let mut pool_size = None;
    let available = match &cfg.strategy {
        QueryStrategy::Pool { x } => x.batch().min(max_budget),
        _ => max_budget,
    };
    if available < max_budget {
        warnings.push(format!(
            "the query pool holds {available} inputs, fewer than the largest budget \
             ({max_budget}): budgets above {available} train on the whole pool"
        ));
    }
    ctx.phase("querying the victim", available as u64);
    let queries: Tensor = match &cfg.strategy {
        QueryStrategy::Pool { .. } | QueryStrategy::Uniform | QueryStrategy::Gaussian { .. } => {
            let q = match &cfg.strategy {
                QueryStrategy::Pool { x } => {
                    pool_size = Some(x.batch());
                    let mut idx: Vec<usize> = (0..x.batch()).collect();
                    idx.shuffle(&mut rng);
                    idx.truncate(max_budget);
                    gather(x, &idx)
                }
                _ => {
                    let mut data = Vec::with_capacity(max_budget * row);
                    for _ in 0..max_budget * row {
                        let v = match cfg.strategy {
                            QueryStrategy::Gaussian { mean, std } => {
                                mean + std * gaussian(&mut rng)
                            }
                            _ => rng.gen_range(cfg.lo..cfg.hi),
                        };
                        data.push(v.clamp(cfg.lo, cfg.hi));
                    }
                    let mut s = vec![max_budget];
                    s.extend_from_slice(&shape);
                    Tensor::new(s, data)?
                }
            };
            complete = query(&oracle, &q, cfg.query_batch, classes, &mut targets, ctx)?;
            q
        }
        QueryStrategy::Jacobian { seed, lambda, tau } => {
            let mut set = rows_of(seed, 0, seed.batch().min(max_budget));
            complete = query(&oracle, &set, cfg.query_batch, classes, &mut targets, ctx)?;
            let mut sub = OnnxModel::from_spec(&cfg.surrogate, cfg.seed)?;
            let mut round = 0usize;
            while complete && set.batch() < max_budget {
                fit(
                    &mut sub,
                    &cfg.surrogate,
                    &set,
                    &targets,
                    &cfg.training,
                    cfg.seed + round as u64,
                    ctx,
                )?;
                let flip = *tau > 0 && (round / tau) % 2 == 1;
                let lam = if flip { -lambda } else { *lambda };
                let room = max_budget - set.batch();
                let mut pick: Vec<usize> = (0..set.batch()).collect();
                if room < pick.len() {
                    // Reservoir-style subsampling when the budget caps growth.
                    pick.shuffle(&mut rng);
                    pick.truncate(room);
                    pick.sort_unstable();
                }
                let base = gather(&set, &pick);
                let labels: Vec<usize> = pick
                    .iter()
                    .map(|&i| argmax(&targets[i * classes..(i + 1) * classes]))
                    .collect();
                let (_, g, _) = sub.loss_grad(&base, &Loss::Logit { classes: labels })?;
                let mut new = base.clone();
                for (v, gi) in new.data.iter_mut().zip(&g.data) {
                    let s = if *gi > 0.0 {
                        1.0
                    } else if *gi < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    *v = (*v + lam * s).clamp(cfg.lo, cfg.hi);
                }
                complete = query(&oracle, &new, cfg.query_batch, classes, &mut targets, ctx)?;
                let done = targets.len() / classes.max(1);
                set.data
                    .extend_from_slice(&new.data[..(done - set.batch()) * row]);
                set.shape[0] = done;
                round += 1;
            }
            set
        }
    };
    let answered = targets.len() / classes.max(1);

    // 2. One fresh surrogate per distinct number of queries.
    let mut plan: Vec<(usize, usize)> = Vec::new();
    for &b in &budgets {
        let n = b.min(answered);
        match plan.last() {
            _ if n == 0 => {}
            Some(&(prev, pn)) if pn == n => warnings.push(format!(
                "budget {b} skipped: only {n} queries were available, the same as for budget {prev}"
            )),
            _ => plan.push((b, n)),
        }
    }
    let mut curve = Vec::new();
    let mut surrogate = None;
    ctx.phase("training surrogates", plan.len() as u64);
    for &(b, n) in &plan {
        if ctx.is_cancelled() {
            complete = false;
            break;
        }
        let xb = rows_of(&queries, 0, n);
        let mut model = OnnxModel::from_spec(&cfg.surrogate, cfg.seed)?;
        let (loss, steps) = fit(
            &mut model,
            &cfg.surrogate,
            &xb,
            &targets[..n * classes],
            &cfg.training,
            cfg.seed,
            ctx,
        )?;
        if ctx.is_cancelled() {
            complete = false;
            break;
        }
        let pred = predict_batched(&model, &test.x, 256, &|_| {})?;
        curve.push(ExtractionPoint {
            budget: b,
            queries: n,
            capped: n < b,
            surrogate_accuracy: accuracy(&pred, &test.y),
            fidelity: accuracy(&pred, &victim_test),
            train_loss: loss,
            steps,
        });
        surrogate = Some(model);
        ctx.advance(1);
    }
    if answered < available && complete {
        complete = false;
    }
    let surrogate_parameters = surrogate
        .as_ref()
        .map(|m: &OnnxModel| {
            m.weight_names()
                .iter()
                .filter_map(|w| m.weight(w))
                .map(|t| t.data.len())
                .sum()
        })
        .unwrap_or(0);
    Ok(Extraction {
        report: ExtractionReport {
            query_data: cfg.query_data.clone(),
            strategy: cfg.strategy.name().into(),
            outputs: if cfg.labels_only {
                "labels"
            } else {
                "probabilities"
            }
            .into(),
            budgets,
            curve,
            queries_available: available,
            warnings,
            victim_accuracy,
            test_examples: test.len(),
            queries_used: oracle.queries(),
            evaluation_queries: test.len() as u64,
            pool_size,
            surrogate_parameters,
            training: cfg.training.clone(),
            classes,
            complete,
            cancelled: !complete && ctx.is_cancelled(),
        },
        surrogate,
    })
}

fn accuracy(pred: &[usize], y: &[usize]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    pred.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
}

/// Title of an extraction finding below the reporting threshold.
pub const HELD: &str =
    "Model extraction fell short: the surrogate agrees with the victim on under half the test inputs";

/// Severity from the fidelity reached at the largest budget.
///
/// | fidelity | severity |
/// |----------|----------|
/// | ≥ 95 %   | critical |
/// | ≥ 85 %   | high     |
/// | ≥ 70 %   | medium   |
/// | ≥ 50 %   | low      |
/// | below    | info, titled as falling short ([`HELD`]) |
pub fn severity_for_fidelity(fidelity: f64) -> Severity {
    if fidelity >= 0.95 {
        Severity::Critical
    } else if fidelity >= 0.85 {
        Severity::High
    } else if fidelity >= 0.70 {
        Severity::Medium
    } else if fidelity >= 0.50 {
        Severity::Low
    } else {
        Severity::Info
    }
}

impl ExtractionReport {
    /// One finding for `target` at the largest finished budget, with the
    /// whole curve in its metrics. None when no budget finished.
    pub fn findings(&self, target: &str) -> Vec<Finding> {
        let Some(last) = self.curve.last() else {
            return vec![];
        };
        let capped = if last.capped {
            format!(
                " (budget {} asked; only {} distinct queries were available)",
                last.budget, last.queries
            )
        } else {
            String::new()
        };
        let evidence = format!(
            "a surrogate trained on {} victim answers{capped} ({}, {} query data via {}) agrees \
with the victim on {:.1}% of {} test inputs and reaches {:.1}% accuracy (victim {:.1}%){}",
            last.queries,
            self.outputs,
            self.query_data,
            self.strategy,
            last.fidelity * 100.0,
            self.test_examples,
            last.surrogate_accuracy * 100.0,
            self.victim_accuracy * 100.0,
            if self.cancelled {
                " (run cancelled; partial)"
            } else {
                ""
            }
        );
        let curve: Vec<serde_json::Value> = self
            .curve
            .iter()
            .map(|p| {
                serde_json::json!({
                    "budget": p.budget, "queries": p.queries, "capped": p.capped,
                    "fidelity": num(p.fidelity), "surrogate_accuracy": num(p.surrogate_accuracy)
                })
            })
            .collect();
        let severity = severity_for_fidelity(last.fidelity);
        let mut f = EXTRACTION
            .finding(Location::path(target), evidence)
            .severity(severity)
            // Below the reporting threshold the title says the copy fell short.
            .title(if severity == Severity::Info {
                HELD
            } else {
                EXTRACTION.title
            })
            .metric("fidelity", num(last.fidelity))
            .metric("surrogate_accuracy", num(last.surrogate_accuracy))
            .metric("victim_accuracy", num(self.victim_accuracy))
            .metric("queries", last.queries as u64)
            .metric("budget", last.budget as u64)
            .metric("budget_capped", last.capped)
            .metric("queries_used", self.queries_used)
            .metric("query_data", self.query_data.clone())
            .metric("strategy", self.strategy.clone())
            .metric("outputs", self.outputs.clone())
            .metric("test_examples", self.test_examples as u64)
            .metric("curve", serde_json::Value::Array(curve));
        if self.cancelled {
            f = f.confidence(Confidence::Medium);
        }
        vec![f]
    }
}

fn num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// A default surrogate for a victim input shape: flatten, dense 128, ReLU,
/// dense `classes` (an MLP works for any input shape).
pub fn default_surrogate(input: &[usize], classes: usize) -> ArchSpec {
    use aisec_model::spec::LayerSpec;
    ArchSpec {
        input: input.to_vec(),
        layers: vec![
            LayerSpec::Flatten,
            LayerSpec::Dense {
                units: 128,
                init: None,
            },
            LayerSpec::Relu,
            LayerSpec::Dense {
                units: classes,
                init: None,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_model::spec::LayerSpec;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    /// A linear victim on 4 features and 3 classes.
    struct Linear {
        shape: Vec<usize>,
        calls: Arc<AtomicU64>,
    }
    const W: [[f32; 4]; 3] = [
        [3.0, -1.0, 0.5, 0.0],
        [-1.0, 2.5, -0.5, 1.0],
        [0.0, -1.0, -2.0, 2.5],
    ];
    impl Classifier for Linear {
        fn input_shape(&self) -> &[usize] {
            &self.shape
        }
        fn num_classes(&self) -> usize {
            3
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            self.calls
                .fetch_add(x.batch() as u64, std::sync::atomic::Ordering::SeqCst);
            let mut d = vec![];
            for i in 0..x.batch() {
                let r = x.row(i);
                for w in W {
                    d.push(4.0 * (w.iter().zip(r).map(|(a, b)| a * (b - 0.5)).sum::<f32>()));
                }
            }
            Tensor::new(vec![x.batch(), 3], d)
        }
    }

    fn data(n: usize, seed: u64) -> Dataset {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let x: Vec<f32> = (0..n * 4).map(|_| rng.gen_range(0.0..1.0)).collect();
        let x = Tensor::new(vec![n, 4], x).unwrap();
        let v = Linear {
            shape: vec![4],
            calls: Arc::default(),
        };
        let y = v.predict(&x).unwrap();
        Dataset::new(x, y).unwrap()
    }

    fn linear_spec() -> ArchSpec {
        ArchSpec {
            input: vec![4],
            layers: vec![LayerSpec::Dense {
                units: 3,
                init: None,
            }],
        }
    }

    fn cfg(strategy: QueryStrategy) -> ExtractionConfig {
        let mut c = ExtractionConfig::new(strategy, linear_spec());
        c.budgets = vec![10, 37, 200];
        c.query_batch = 16;
        c.training = SurrogateTraining {
            epochs: 30,
            min_steps: 150,
            batch_size: 32,
            lr: 0.05,
        };
        c
    }

    fn victim() -> (Linear, Arc<AtomicU64>) {
        let calls = Arc::new(AtomicU64::new(0));
        (
            Linear {
                shape: vec![4],
                calls: calls.clone(),
            },
            calls,
        )
    }

    #[test]
    fn surrogate_of_linear_victim_reaches_high_fidelity_within_budget() {
        let test = data(300, 1);
        let pool = data(1000, 2).x;
        let (v, calls) = victim();
        let no = AttackContext::silent();
        let out = run_extraction(&v, &test, &cfg(QueryStrategy::Pool { x: pool }), &no).unwrap();
        let r = &out.report;
        assert_eq!(r.curve.len(), 3);
        assert_eq!(r.queries_used, 200);
        // Attacker queries plus the fidelity reference on the test inputs, nothing else.
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 200 + 300);
        assert_eq!(
            r.curve.iter().map(|p| p.queries).collect::<Vec<_>>(),
            [10, 37, 200]
        );
        let last = r.curve.last().unwrap();
        assert!(last.fidelity > 0.93, "fidelity {}", last.fidelity);
        assert!(last.fidelity >= r.curve[0].fidelity - 0.02);
        assert_eq!(r.victim_accuracy, 1.0);
        let f = r.findings("victim");
        assert_eq!(f[0].rule_id, "AISEC-PRIVACY-003");
        assert!(f[0].severity >= Severity::High);
        assert!(out.surrogate.is_some());
    }

    #[test]
    fn labels_only_noise_and_jacobian_respect_the_budget_exactly() {
        let test = data(100, 3);
        let seed = data(7, 4).x;
        for (strategy, labels_only) in [
            (QueryStrategy::Uniform, true),
            (
                QueryStrategy::Gaussian {
                    mean: 0.5,
                    std: 0.25,
                },
                false,
            ),
            (
                QueryStrategy::Jacobian {
                    seed,
                    lambda: 0.1,
                    tau: 2,
                },
                true,
            ),
        ] {
            let (v, calls) = victim();
            let mut c = cfg(strategy);
            c.labels_only = labels_only;
            c.budgets = vec![45, 20];
            c.training.min_steps = 40;
            let no = AttackContext::silent();
            let r = run_extraction(&v, &test, &c, &no).unwrap().report;
            assert_eq!(r.queries_used, 45, "{}", r.strategy);
            assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 45 + 100);
            assert_eq!(r.budgets, [20, 45]);
            assert_eq!(r.curve[1].queries, 45);
            assert!(r.curve.iter().all(|p| p.fidelity.is_finite()));
            assert_eq!(
                r.outputs,
                if labels_only {
                    "labels"
                } else {
                    "probabilities"
                }
            );
        }
    }

    /// The linear victim, recording every input it is asked about.
    struct Recorder(Linear, std::sync::Mutex<Vec<f32>>);
    impl Classifier for Recorder {
        fn input_shape(&self) -> &[usize] {
            self.0.input_shape()
        }
        fn num_classes(&self) -> usize {
            3
        }
        fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
            if let Ok(mut v) = self.1.lock() {
                v.extend_from_slice(&x.data);
            }
            self.0.logits(x)
        }
    }

    #[test]
    fn jacobian_rounds_step_lambda_from_earlier_queries() {
        let test = data(20, 7);
        let seed = data(5, 8).x;
        let (v, _) = victim();
        let rec = Recorder(v, Default::default());
        let mut c = cfg(QueryStrategy::Jacobian {
            seed: seed.clone(),
            lambda: 0.1,
            tau: 0,
        });
        // Seeds (5), one full round (5 more), then a round capped at 3.
        c.budgets = vec![13];
        c.training.min_steps = 20;
        let no = AttackContext::silent();
        let r = run_extraction(&rec, &test, &c, &no).unwrap().report;
        assert_eq!(r.queries_used, 13);
        let seen = rec.1.lock().unwrap().clone();
        // The test inputs come first (fidelity reference), then the attacker's queries.
        let q = &seen[20 * 4..];
        assert_eq!(q.len(), 13 * 4);
        assert_eq!(&q[..20], &seed.data[..]);
        let round1 = &q[20..40];
        for (a, b) in round1.iter().zip(&seed.data) {
            let d = (a - b).abs();
            // A step of exactly lambda, unless clipped at the range or a zero gradient.
            assert!(
                (d - 0.1).abs() < 1e-6 || *a == 0.0 || *a == 1.0 || d == 0.0,
                "{a} from {b}"
            );
        }
        assert!(round1
            .iter()
            .zip(&seed.data)
            .any(|(a, b)| (a - b).abs() > 0.05));
        // Round 2 augments 3 of the 10 known points.
        let known: Vec<&[f32]> = q[..40].chunks(4).collect();
        for p in q[40..].chunks(4) {
            assert!(known
                .iter()
                .any(|k| k
                    .iter()
                    .zip(p)
                    .all(|(a, b)| ((a - b).abs() - 0.1).abs() < 1e-6
                        || *b == 0.0
                        || *b == 1.0
                        || a == b)));
        }
    }

    #[test]
    fn small_pool_caps_queries_and_bad_inputs_are_errors() {
        let test = data(50, 5);
        let pool = data(30, 6).x;
        let (v, _) = victim();
        let no = AttackContext::silent();
        let mut c = cfg(QueryStrategy::Pool { x: pool });
        c.budgets = vec![100];
        c.training.min_steps = 20;
        let r = run_extraction(&v, &test, &c, &no).unwrap().report;
        assert_eq!(r.curve[0].queries, 30);
        assert_eq!(r.pool_size, Some(30));
        // The cap is said, not hidden: in the point, the report and the finding.
        assert!(r.curve[0].capped && r.curve[0].budget == 100);
        assert_eq!(r.queries_available, 30);
        assert_eq!(r.queries_used, 30);
        assert!(r.warnings[0].contains("30 inputs"), "{:?}", r.warnings);
        let f = r.findings("v");
        assert_eq!(f[0].metrics["budget_capped"], true);
        assert!(
            f[0].evidence.contains("budget 100 asked; only 30"),
            "{}",
            f[0].evidence
        );
        assert!(r.complete && !r.cancelled);
        // Budgets that would train on the same 30 queries are skipped, with a warning.
        let mut many = c.clone();
        many.budgets = vec![20, 50, 100];
        let r = run_extraction(&v, &test, &many, &no).unwrap().report;
        assert_eq!(
            r.curve
                .iter()
                .map(|p| (p.budget, p.queries, p.capped))
                .collect::<Vec<_>>(),
            [(20, 20, false), (50, 30, true)]
        );
        assert!(r.warnings.iter().any(|w| w.contains("budget 100 skipped")));
        // A query budget in the context must cover the largest budget and the test set.
        let tight = AttackContext::silent().with_query_budget(Some(100));
        assert!(run_extraction(&v, &test, &c, &tight).is_err());
        // Wrong surrogate input, empty budgets.
        let mut bad = c.clone();
        bad.surrogate.input = vec![5];
        assert!(run_extraction(&v, &test, &bad, &no).is_err());
        let mut bad = c.clone();
        bad.budgets = vec![];
        assert!(run_extraction(&v, &test, &bad, &no).is_err());
        // A budget too large to hold is refused up front, not allocated.
        let mut bad = c.clone();
        bad.strategy = QueryStrategy::Uniform;
        bad.budgets = vec![usize::MAX / 2];
        assert!(run_extraction(&v, &test, &bad, &no).is_err());
        // Surrogate with the wrong number of outputs.
        let mut bad = c.clone();
        bad.surrogate.layers = vec![LayerSpec::Dense {
            units: 4,
            init: None,
        }];
        assert!(run_extraction(&v, &test, &bad, &no).is_err());
        // Cancelled before anything: no point, flagged.
        let yes = AttackContext::silent();
        yes.cancel();
        let r = run_extraction(&v, &test, &c, &yes).unwrap().report;
        assert!(r.cancelled && r.curve.is_empty());
        assert!(r.findings("v").is_empty());
    }

    #[test]
    fn seed_counts_are_checked_before_anything_is_allocated() {
        // 4e9 seeds of 784 values would be 12.5 TB: refused at once.
        let e = jacobian_noise_seed(4_000_000_000, &[1, 28, 28], 0.0, 1.0, 0).unwrap_err();
        assert!(
            e.to_string().contains("more than this run will hold"),
            "{e}"
        );
        assert!(jacobian_noise_seed(usize::MAX, &[2], 0.0, 1.0, 0).is_err());
        assert!(jacobian_noise_seed(3, &[2], 1.0, 0.0, 0).is_err());
        let s = jacobian_noise_seed(5, &[2, 3], 0.0, 1.0, 7).unwrap();
        assert_eq!(s.shape, vec![5, 2, 3]);
        assert!(s.data.iter().all(|v| (0.0..1.0).contains(v)));
        assert_eq!(s, jacobian_noise_seed(5, &[2, 3], 0.0, 1.0, 7).unwrap());
    }

    #[test]
    fn a_poor_copy_is_titled_as_falling_short_and_cancel_marks_incomplete() {
        let test = data(200, 9);
        let (v, _) = victim();
        let mut c = cfg(QueryStrategy::Uniform);
        c.budgets = vec![30];
        c.training.min_steps = 20;
        let mut r = run_extraction(&v, &test, &c, &AttackContext::silent())
            .unwrap()
            .report;
        // The same report with a surrogate that agrees on under half the inputs.
        r.curve[0].fidelity = 0.3;
        let f = r.findings("v");
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(f[0].title, HELD);
        r.curve[0].fidelity = 0.9;
        assert_eq!(r.findings("v")[0].title, EXTRACTION.title);
        // Cancelled from the start: a report with no point, marked incomplete.
        let stop = AttackContext::silent();
        stop.cancel();
        let r = run_extraction(&v, &test, &c, &stop).unwrap().report;
        assert!(!r.complete && r.cancelled && r.curve.is_empty());
    }

    #[test]
    fn probabilities_from_scores_and_logits() {
        let z = Tensor::new(vec![2, 2], vec![0.25, 0.75, 2.0, 0.0]).unwrap();
        let p = to_probabilities(&z).unwrap();
        assert_eq!(&p[..2], &[0.25, 0.75]);
        assert!((p[2] - 0.880_797).abs() < 1e-5 && (p[2] + p[3] - 1.0).abs() < 1e-6);
        let z = Tensor::new(vec![1, 2], vec![f32::NAN, 0.0]).unwrap();
        assert!(to_probabilities(&z).is_err());
        assert_eq!(severity_for_fidelity(0.99), Severity::Critical);
        assert_eq!(severity_for_fidelity(0.9), Severity::High);
        assert_eq!(severity_for_fidelity(0.75), Severity::Medium);
        assert_eq!(severity_for_fidelity(0.6), Severity::Low);
        assert_eq!(severity_for_fidelity(0.2), Severity::Info);
    }
}
