//! Membership inference: was this example in the model's training set?
//! (MITRE ATLAS AML.T0024.000, "Infer Training Data Membership".)
//!
//! Everything here sees the target only through [`Classifier`] (its output
//! scores), so a local ONNX or spec model and a remote KServe endpoint are
//! attacked the same way; every example sent to the target is counted.
//!
//! * [`MiaAttack::Loss`]: the loss-threshold baseline (Yeom et al. 2018,
//!   "Privacy Risk in Machine Learning: Analyzing the Connection to
//!   Overfitting", CSF): score `-CE(f(x), y)`.
//! * [`MiaAttack::LiraOnline`] / [`MiaAttack::LiraOffline`]: the
//!   likelihood-ratio attack with shadow models (Carlini et al. 2022,
//!   "Membership Inference Attacks From First Principles", IEEE S&P); see
//!   [`lira`].
//!
//! [`run_membership`] queries the target, trains the shadows (through a
//! [`ShadowTrainer`], seeded keep masks), scores every example with every
//! attack and measures each against the true membership: ROC, AUC, TPR at
//! 0.1 % and 1 % FPR and balanced accuracy, with bootstrap intervals
//! ([`roc`]). [`MembershipReport::findings`] turns the numbers into
//! findings, [`plot::roc_svg`] draws the log-log ROC.

pub mod findings;
pub mod lira;
pub mod plot;
pub mod roc;
pub mod scores;
pub mod shadow;

use std::collections::HashMap;

use aisec_model::data::Dataset;
use aisec_model::{Classifier, ModelError, Tensor};
use rayon::prelude::*;
use serde::Serialize;

pub use crate::rules::MEMBERSHIP_INFERENCE;
pub use lira::VarianceMode;
pub use roc::{Interval, Roc, RocMetrics};
pub use scores::{Augment, ScoreKind};
pub use shadow::{ShadowTrainer, SpecTrainer};

use crate::context::AttackContext;
use crate::util::gather;

/// Errors of a membership evaluation.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Inputs or settings that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The target or a shadow model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A membership attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MiaAttack {
    /// Loss threshold (Yeom et al. 2018).
    Loss,
    /// LiRA with IN and OUT shadows (Carlini et al. 2022).
    LiraOnline,
    /// LiRA with OUT shadows only (Carlini et al. 2022).
    LiraOffline,
}

impl MiaAttack {
    /// Parses `loss`, `lira-online` (or `lira`), `lira-offline`.
    pub fn parse(s: &str) -> Option<MiaAttack> {
        match s {
            "loss" | "loss-threshold" => Some(MiaAttack::Loss),
            "lira" | "lira-online" => Some(MiaAttack::LiraOnline),
            "lira-offline" => Some(MiaAttack::LiraOffline),
            _ => None,
        }
    }

    /// The attack's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MiaAttack::Loss => "loss",
            MiaAttack::LiraOnline => "lira-online",
            MiaAttack::LiraOffline => "lira-offline",
        }
    }

    fn needs_shadows(self) -> bool {
        self != MiaAttack::Loss
    }
}

/// Most shadow models one run trains (the paper's largest runs use 256).
pub const MAX_SHADOWS: usize = 1024;

/// Settings of a membership evaluation.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// Attacks to run.
    pub attacks: Vec<MiaAttack>,
    /// Shadow models for LiRA (at least 2).
    pub shadows: usize,
    /// How LiRA's Gaussians get their variance.
    pub variance: VarianceMode,
    /// Queries per example (the identity first); LiRA averages over them.
    pub augments: Vec<Augment>,
    /// How to read the target's outputs.
    pub score_kind: ScoreKind,
    /// Examples per query batch.
    pub batch_size: usize,
    /// Bootstrap replicates for the confidence intervals.
    pub bootstrap: usize,
    /// Seed for keep masks, shadow training and the bootstrap.
    pub seed: u64,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            attacks: vec![
                MiaAttack::Loss,
                MiaAttack::LiraOnline,
                MiaAttack::LiraOffline,
            ],
            shadows: 16,
            variance: VarianceMode::Auto,
            augments: vec![Augment::Identity],
            score_kind: ScoreKind::Auto,
            batch_size: 256,
            bootstrap: 500,
            seed: 0,
        }
    }
}

/// One attack's measured result.
#[derive(Debug, Clone, Serialize)]
pub struct MembershipAttackResult {
    /// Attack name (`loss`, `lira-online`, `lira-offline`).
    pub attack: String,
    /// ROC summary with intervals.
    pub metrics: RocMetrics,
    /// The ROC sampled at log-spaced false-positive rates, `(fpr, tpr)`.
    pub roc_points: Vec<(f64, f64)>,
    /// The full ROC.
    #[serde(skip)]
    pub roc: Roc,
    /// The attack's score per evaluated example (larger: member).
    #[serde(skip)]
    pub scores: Vec<f64>,
}

/// Raw signals behind LiRA, for `--save-scores` and independent re-checks.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowSignals {
    /// `keep[s][i]`: evaluated example `i` was in shadow `s`'s training set.
    pub keep: Vec<Vec<bool>>,
    /// `phi[s][i][a]`: shadow `s`'s logit-scaled confidence on example `i`, augmentation `a`.
    pub phi: Vec<Vec<Vec<f64>>>,
    /// Accuracy of each shadow on its own OUT examples (among the evaluated ones).
    pub out_accuracy: Vec<f64>,
}

/// The result of [`run_membership`].
#[derive(Debug, Clone, Serialize)]
pub struct MembershipReport {
    /// Evaluated members (positives).
    pub members: usize,
    /// Evaluated non-members (negatives).
    pub non_members: usize,
    /// Target accuracy on the members (its training accuracy).
    pub member_accuracy: f64,
    /// Target accuracy on the non-members (its test accuracy).
    pub non_member_accuracy: f64,
    /// Examples sent to the target.
    pub queries: u64,
    /// Shadow models trained (0 without LiRA).
    pub shadows: usize,
    /// Examples the shadows were drawn from (evaluated ones plus population).
    pub shadow_pool: usize,
    /// LiRA's variance mode, once resolved.
    pub variance: Option<VarianceMode>,
    /// Queries per example.
    pub augments: Vec<String>,
    /// How the target's outputs were read.
    pub score_kind: ScoreKind,
    /// Per attack.
    pub attacks: Vec<MembershipAttackResult>,
    /// Seed used.
    pub seed: u64,
    /// Attacks asked for that could not be scored (the run was cancelled
    /// before two shadow models, or before the target was queried).
    pub not_run: Vec<String>,
    /// Every attack asked for was scored with every shadow asked for.
    pub complete: bool,
    /// Whether the run was cancelled (fewer shadows than asked, or fewer attacks).
    pub cancelled: bool,
    /// Ground truth per evaluated example.
    #[serde(skip)]
    pub member: Vec<bool>,
    /// Target's `log p_y` per example.
    #[serde(skip)]
    pub target_log_p: Vec<f64>,
    /// Target's `phi[i][a]`.
    #[serde(skip)]
    pub target_phi: Vec<Vec<f64>>,
    /// Shadow signals (LiRA runs only).
    #[serde(skip)]
    pub shadow_signals: Option<ShadowSignals>,
}

/// One trained shadow: keep mask, confidences, OUT accuracy.
type ShadowRun = (Vec<bool>, Vec<Vec<f64>>, f64);

/// The examples a membership evaluation scores, and their ground truth.
#[derive(Debug, Clone, Copy)]
pub struct MembershipData<'a> {
    /// Evaluated examples `[n, ..]`.
    pub x: &'a Tensor,
    /// Their labels.
    pub y: &'a [usize],
    /// True membership per example; it only grades the scores (the attacks
    /// never see it).
    pub member: &'a [bool],
    /// More attacker data for the shadow models (exact duplicates of
    /// evaluated examples are dropped).
    pub population: Option<&'a Dataset>,
}

fn row_key(x: &Tensor, y: &[usize], i: usize) -> Vec<u32> {
    let mut k: Vec<u32> = x.row(i).iter().map(|v| v.to_bits()).collect();
    k.push(y[i] as u32);
    k
}

/// The shadow pool: the evaluated examples first (in order), then the
/// population's examples that are not exact copies of an evaluated one.
fn shadow_pool(
    x: &Tensor,
    y: &[usize],
    population: Option<&Dataset>,
) -> Result<Dataset, MembershipError> {
    let mut pool = Dataset::new(x.clone(), y.to_vec())?;
    let Some(p) = population else {
        return Ok(pool);
    };
    if p.x.row_len() != x.row_len() {
        return Err(MembershipError::Invalid(format!(
            "population examples have shape {:?}, evaluated ones {:?}",
            p.x.shape.get(1..),
            x.shape.get(1..)
        )));
    }
    let mut seen: HashMap<Vec<u32>, ()> = HashMap::with_capacity(x.batch());
    for i in 0..x.batch() {
        seen.insert(row_key(x, y, i), ());
    }
    let extra: Vec<usize> = (0..p.len())
        .filter(|&i| !seen.contains_key(&row_key(&p.x, &p.y, i)))
        .collect();
    let ex = gather(&p.x, &extra);
    pool.x.data.extend_from_slice(&ex.data);
    pool.x.shape[0] += extra.len();
    pool.y.extend(extra.iter().map(|&i| p.y[i]));
    Ok(pool)
}

fn accuracy(correct: &[bool], member: &[bool], side: bool) -> f64 {
    let (mut k, mut n) = (0usize, 0usize);
    for (c, m) in correct.iter().zip(member) {
        if *m == side {
            n += 1;
            k += *c as usize;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        k as f64 / n as f64
    }
}

/// Log-spaced FPR grid from 1e-4 to 1 (and 0), for compact ROC summaries.
fn sample_roc(r: &Roc) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, r.tpr_at(0.0))];
    for k in 0..=40 {
        let f = 10f64.powf(-4.0 + k as f64 * 0.1);
        out.push((f, r.tpr_at(f)));
    }
    out
}

/// Runs the membership attacks in `cfg.attacks` against `target` on the
/// examples of `data`, graded by their true membership.
///
/// LiRA trains `cfg.shadows` models with `trainer` on random halves of the
/// shadow pool (the evaluated examples plus the population, exact
/// duplicates removed); the attacker never uses the membership flags,
/// which only grade the scores.
///
/// Progress phases (units): `querying the target` (examples times
/// augmentations), `shadow models` (models), `scoring` (attacks). Raising
/// `ctx`'s cancel flag stops training after the shadows in flight and
/// scores with those done; with fewer than two, LiRA is not scored (it is
/// listed in `not_run`) and the loss attack still is. The report is then
/// marked incomplete. The context's query budget, if any, caps the
/// examples sent to the target; a run that needs more is refused up front.
pub fn run_membership(
    target: &dyn Classifier,
    data: &MembershipData,
    trainer: Option<&dyn ShadowTrainer>,
    cfg: &MembershipConfig,
    ctx: &AttackContext,
) -> Result<MembershipReport, MembershipError> {
    let MembershipData {
        x,
        y,
        member,
        population,
    } = *data;
    let n = x.batch();
    if y.len() != n || member.len() != n {
        return Err(MembershipError::Invalid(format!(
            "{n} examples, {} labels, {} membership flags",
            y.len(),
            member.len()
        )));
    }
    let members = member.iter().filter(|&&m| m).count();
    if members == 0 || members == n {
        return Err(MembershipError::Invalid(
            "need both members and non-members to measure an attack".into(),
        ));
    }
    if cfg.attacks.is_empty() {
        return Err(MembershipError::Invalid("no attack selected".into()));
    }
    let want: usize = target.input_shape().iter().product();
    if x.row_len() != want {
        return Err(MembershipError::Invalid(format!(
            "examples have shape {:?}, the model takes {:?}",
            x.shape.get(1..),
            target.input_shape()
        )));
    }
    // Present the examples in the model's own per-example shape.
    let mut shaped = x.clone();
    shaped.shape = std::iter::once(n)
        .chain(target.input_shape().iter().copied())
        .collect();
    let x = &shaped;
    let lira = cfg.attacks.iter().any(|a| a.needs_shadows());
    if lira {
        if trainer.is_none() {
            return Err(MembershipError::Invalid(
                "LiRA needs shadow models: give a shadow architecture".into(),
            ));
        }
        if cfg.shadows < 2 || cfg.shadows > MAX_SHADOWS {
            return Err(MembershipError::Invalid(format!(
                "LiRA needs between 2 and {MAX_SHADOWS} shadow models, {} asked",
                cfg.shadows
            )));
        }
    }
    let mut augments = cfg.augments.clone();
    if augments.first() != Some(&Augment::Identity) {
        augments.retain(|a| *a != Augment::Identity);
        augments.insert(0, Augment::Identity);
    }
    // Only the identity query is needed without LiRA.
    let target_augs: &[Augment] = if lira { &augments } else { &augments[..1] };
    if let Some(b) = ctx.query_budget() {
        let need = (n * target_augs.len()) as u64;
        if need > b {
            return Err(MembershipError::Invalid(format!(
                "the evaluation needs {need} queries, over the budget of {b}"
            )));
        }
    }
    let counter = ctx.counter(target);
    ctx.phase("querying the target", (n * target_augs.len()) as u64);
    let queried = scores::signals_until(
        &counter,
        x,
        y,
        target_augs,
        cfg.score_kind,
        cfg.batch_size,
        &mut |k| {
            ctx.advance(k as u64);
            !ctx.is_cancelled()
        },
    )?;
    let Some(t) = queried else {
        // Cancelled before every example was queried: nothing to score.
        return Ok(MembershipReport {
            members,
            non_members: n - members,
            member_accuracy: f64::NAN,
            non_member_accuracy: f64::NAN,
            queries: counter.queries(),
            shadows: 0,
            shadow_pool: 0,
            variance: None,
            augments: target_augs.iter().map(|a| a.name()).collect(),
            score_kind: cfg.score_kind,
            attacks: Vec::new(),
            seed: cfg.seed,
            not_run: cfg.attacks.iter().map(|a| a.as_str().to_string()).collect(),
            complete: false,
            cancelled: true,
            member: member.to_vec(),
            target_log_p: Vec::new(),
            target_phi: Vec::new(),
            shadow_signals: None,
        });
    };
    let kind = t.kind;

    let mut shadow_signals = None;
    let mut shadows_done = 0;
    let mut pool_len = n;
    if let (true, Some(trainer)) = (lira, trainer) {
        let pool = shadow_pool(x, y, population)?;
        pool_len = pool.len();
        let keep_all = lira::keep_masks(cfg.shadows, pool.len(), cfg.seed);
        ctx.phase("shadow models", cfg.shadows as u64);
        let results: Vec<Option<ShadowRun>> = (0..cfg.shadows)
            .into_par_iter()
            .map(|s| -> Result<_, MembershipError> {
                if ctx.is_cancelled() {
                    return Ok(None);
                }
                let data = shadow::subset(&pool.x, &pool.y, &keep_all[s])?;
                let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(s as u64 + 1);
                let model = trainer.train(&data, seed)?;
                // Shadows are the attacker's own models: read as logits.
                let sig = scores::signals_until(
                    model.as_ref(),
                    x,
                    y,
                    &augments,
                    ScoreKind::Logits,
                    cfg.batch_size,
                    &mut |_| true,
                )?
                .ok_or_else(|| MembershipError::Invalid("querying stopped early".into()))?;
                let keep: Vec<bool> = keep_all[s][..n].to_vec();
                let out_acc = accuracy(&sig.correct, &keep, false);
                ctx.advance(1);
                Ok(Some((keep, sig.phi, out_acc)))
            })
            .collect::<Result<_, _>>()?;
        let mut keep = Vec::new();
        let mut phi = Vec::new();
        let mut out_accuracy = Vec::new();
        for (k, p, a) in results.into_iter().flatten() {
            keep.push(k);
            phi.push(p);
            out_accuracy.push(a);
        }
        shadows_done = keep.len();
        // LiRA needs at least two shadows; a run cancelled before then scores the loss attack only.
        if shadows_done >= 2 {
            shadow_signals = Some(ShadowSignals {
                keep,
                phi,
                out_accuracy,
            });
        }
    }

    let fits = shadow_signals
        .as_ref()
        .map(|s| lira::fit(&s.phi, &s.keep, cfg.variance));
    let mut attacks = Vec::new();
    let mut not_run = Vec::new();
    ctx.phase("scoring", cfg.attacks.len() as u64);
    for a in &cfg.attacks {
        let sc = match (a, &fits) {
            (MiaAttack::Loss, _) => t.log_p.clone(),
            (MiaAttack::LiraOnline, Some(f)) => lira::online_scores(f, &t.phi),
            (MiaAttack::LiraOffline, Some(f)) => lira::offline_scores(f, &t.phi),
            _ => {
                not_run.push(a.as_str().to_string());
                continue;
            }
        };
        let r = roc::roc(&sc, member)?;
        let metrics = roc::roc_metrics(&sc, member, cfg.bootstrap, cfg.seed)?;
        attacks.push(MembershipAttackResult {
            attack: a.as_str().to_string(),
            metrics,
            roc_points: sample_roc(&r),
            roc: r,
            scores: sc,
        });
        ctx.advance(1);
    }
    let complete = not_run.is_empty() && (!lira || shadows_done == cfg.shadows);
    Ok(MembershipReport {
        members,
        non_members: n - members,
        member_accuracy: accuracy(&t.correct, member, true),
        non_member_accuracy: accuracy(&t.correct, member, false),
        queries: counter.queries(),
        shadows: shadows_done,
        shadow_pool: if lira { pool_len } else { 0 },
        variance: fits.as_ref().map(|f| f.variance),
        augments: target_augs.iter().map(|a| a.name()).collect(),
        score_kind: kind,
        attacks,
        seed: cfg.seed,
        not_run,
        complete,
        cancelled: !complete && ctx.is_cancelled(),
        member: member.to_vec(),
        target_log_p: t.log_p,
        target_phi: t.phi,
        shadow_signals,
    })
}

impl MembershipReport {
    /// Everything needed to re-check the numbers independently, as JSON:
    /// ground truth, labels-free per-example scores of every attack, the
    /// target's signals and (for LiRA) the shadows' confidences and keep masks.
    pub fn scores_json(&self) -> serde_json::Value {
        let mut attacks = serde_json::Map::new();
        for a in &self.attacks {
            attacks.insert(
                a.attack.clone(),
                serde_json::Value::Array(a.scores.iter().map(|&v| json_f64(v)).collect()),
            );
        }
        serde_json::json!({
            "member": self.member,
            "scores": attacks,
            "target_log_p": self.target_log_p.iter().map(|&v| json_f64(v)).collect::<Vec<_>>(),
            "target_phi": self.target_phi,
            "augments": self.augments,
            "variance": self.variance,
            "shadows": self.shadow_signals,
            "summary": serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        })
    }
}

pub(crate) fn json_f64(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests;
