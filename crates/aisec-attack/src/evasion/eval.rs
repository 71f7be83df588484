//! The robustness evaluation driver: runs the chosen attacks on a labelled
//! batch, measures clean and robust accuracy, per-example success and
//! perturbation norms, queries and an accuracy-versus-budget curve.
//!
//! Examples are attacked in batches (rayon across batches, each with its
//! own generator seeded from the configuration's seed, the attack and the
//! batch), and every query goes through the run's
//! [`QueryCounter`](aisec_model::blackbox::QueryCounter) (the context's
//! query budget, answer-shape checks) and a per-batch counter for the
//! attack's own query total. Progress is reported in examples, one phase
//! per attack (and per AutoAttack component and curve point). A batch
//! whose attack was interrupted by the cancel flag does not count: every
//! number covers the examples whose batches finished, and the report says
//! whether that was all of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aisec_model::blackbox::QueryCounter;
use aisec_model::{Classifier, Differentiable, Tensor};
use rayon::prelude::*;

use super::apgd::{apgd, apgd_targeted, ApgdLoss};
use super::config::{AttackKind, EvasionConfig, EvasionError};
use super::cw::carlini_wagner_l2;
use super::deepfool::deepfool;
use super::fab::fab_targeted;
use super::fgsm_pgd::{fgsm, pgd, PgdConfig};
use super::hsj::hop_skip_jump;
use super::report::{AttackResult, CurvePoint, EvasionReport};
use super::square::square;
use crate::context::AttackContext;
use crate::util::{diff, gather, goal_met, l0, l2, linf, predictions, Budget, Norm};

/// The model an evaluation runs against.
#[derive(Clone, Copy)]
enum Target<'a> {
    White(&'a dyn Differentiable),
    Black(&'a dyn Classifier),
}

impl<'a> Target<'a> {
    /// The model as a query-only classifier.
    fn query(self) -> &'a dyn Classifier {
        match self {
            Target::White(m) => m,
            Target::Black(m) => m,
        }
    }
}

/// Runs a white-box (gradient) evaluation: every attack in `cfg.attacks`,
/// then the curve.
///
/// Progress goes to `ctx`'s sink (a phase per attack, units are examples);
/// raising `ctx`'s cancel flag stops after the batches in flight and
/// returns what finished, with [`EvasionReport::complete`] false. The
/// context's query budget, if any, caps the examples sent to the model
/// (gradient passes included); going past it is an error.
pub fn run_evasion(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    ctx: &AttackContext,
) -> Result<EvasionReport, EvasionError> {
    let counter = ctx.counter(model);
    evaluate(Target::White(&counter), x, y, cfg, ctx)
}

/// Runs a query-only evaluation (Square and HopSkipJump only; other
/// attacks in `cfg.attacks` are rejected).
pub fn run_evasion_blackbox(
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    ctx: &AttackContext,
) -> Result<EvasionReport, EvasionError> {
    if let Some(k) = cfg.attacks.iter().find(|k| !k.black_box()) {
        return Err(EvasionError::Invalid(format!(
            "attack '{}' needs gradients; a query-only model supports square and hop-skip-jump",
            k.name()
        )));
    }
    if let Some(k) = cfg.curve_attack {
        if !cfg.eps_curve.is_empty() && !k.black_box() {
            return Err(EvasionError::Invalid(format!(
                "curve attack '{}' needs gradients",
                k.name()
            )));
        }
    }
    let counter = ctx.counter(model);
    evaluate(Target::Black(&counter), x, y, cfg, ctx)
}

/// The curve's attack: the configured one, else the strongest requested
/// budgeted attack, else the strongest requested minimal-norm one.
pub fn curve_attack(cfg: &EvasionConfig) -> Result<Option<AttackKind>, EvasionError> {
    if cfg.eps_curve.is_empty() {
        return Ok(None);
    }
    if let Some(k) = cfg.curve_attack {
        return Ok(Some(k));
    }
    AttackKind::BY_STRENGTH
        .iter()
        .chain(AttackKind::MINIMAL_BY_STRENGTH.iter())
        .copied()
        .find(|k| cfg.attacks.contains(k))
        .map(Some)
        .ok_or_else(|| EvasionError::Invalid("the curve needs an attack to run".into()))
}

fn check_inputs(
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
) -> Result<(), EvasionError> {
    let n: usize = x.shape.iter().product();
    if x.shape.is_empty() || n != x.data.len() {
        return Err(EvasionError::Invalid(format!(
            "tensor shape {:?} does not match its {} values",
            x.shape,
            x.data.len()
        )));
    }
    if x.batch() != y.len() {
        return Err(EvasionError::Invalid(format!(
            "{} examples but {} labels",
            x.batch(),
            y.len()
        )));
    }
    if x.batch() == 0 {
        return Err(EvasionError::Invalid("no examples to attack".into()));
    }
    let classes = model.num_classes();
    if let Some(&bad) = y.iter().find(|&&l| l >= classes) {
        return Err(EvasionError::Invalid(format!(
            "label {bad} out of range for {classes} classes"
        )));
    }
    if let Some(t) = cfg.target {
        if t >= classes {
            return Err(EvasionError::Invalid(format!(
                "target {t} out of range for {classes} classes"
            )));
        }
    }
    if !(cfg.eps.is_finite() && cfg.eps >= 0.0)
        || cfg.eps_curve.iter().any(|e| !(e.is_finite() && *e >= 0.0))
    {
        return Err(EvasionError::Invalid(
            "budgets must be finite and non-negative".into(),
        ));
    }
    if !(cfg.lo.is_finite() && cfg.hi.is_finite() && cfg.lo < cfg.hi) {
        return Err(EvasionError::Invalid(format!(
            "invalid input range [{}, {}]",
            cfg.lo, cfg.hi
        )));
    }
    if x.data.iter().any(|v| !v.is_finite()) {
        return Err(EvasionError::Invalid(
            "inputs contain NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// Deterministic per-(attack, batch, budget) seed.
fn sub_seed(seed: u64, kind: AttackKind, batch: usize, eps_idx: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in kind.name().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h ^ (batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (eps_idx as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

fn evaluate(
    target: Target,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    ctx: &AttackContext,
) -> Result<EvasionReport, EvasionError> {
    check_inputs(target.query(), x, y, cfg)?;
    let curve_kind = curve_attack(cfg)?;
    let n = x.batch();
    let bs = cfg.batch_size.max(1);
    let batches: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(bs)
        .map(|c| c.to_vec())
        .collect();
    ctx.phase("clean accuracy", n as u64);
    let mut clean_pred = Vec::with_capacity(n);
    for b in &batches {
        clean_pred.extend(predictions(&target.query().logits(&gather(x, b))?));
        ctx.advance(b.len() as u64);
    }
    let correct: Vec<bool> = (0..n).map(|i| clean_pred[i] == y[i]).collect();
    let clean_accuracy = ratio(correct.iter().filter(|&&c| c).count(), n);

    let job = Job {
        target,
        x,
        y,
        cfg,
        batches: &batches,
        correct: &correct,
    };
    let budget = cfg.budget();
    let mut results: Vec<AttackResult> = Vec::new();
    let mut not_run = Vec::new();
    for &kind in &cfg.attacks {
        let r = if ctx.is_cancelled() {
            None
        } else {
            Some(job.run_kind(ctx, kind, &budget, 0, kind.name())?)
        };
        match r {
            Some(r) if r.evaluated > 0 => results.push(r),
            _ => not_run.push(kind.name().to_string()),
        }
    }

    let mut curve = Vec::new();
    if let Some(k) = curve_kind {
        if k.takes_budget() {
            for (ei, &e) in cfg.eps_curve.iter().enumerate() {
                if ctx.is_cancelled() {
                    break;
                }
                let b = Budget { eps: e, ..budget };
                let label = format!("curve eps={e}: {}", k.name());
                let r = job.run_kind(ctx, k, &b, ei + 1, &label)?;
                if r.evaluated == 0 {
                    break;
                }
                curve.push(CurvePoint {
                    eps: e,
                    robust_accuracy: r.robust_accuracy,
                    attack: k.name().to_string(),
                    method: "per-budget".into(),
                    evaluated: r.evaluated,
                });
            }
        } else {
            // A minimal-norm attack runs once; each budget counts the
            // examples it broke with a perturbation no larger than it.
            let own;
            let run = match results.iter().find(|r| r.attack == k.name()) {
                Some(r) => Some(r),
                None if !ctx.is_cancelled() => {
                    let label = format!("curve: {} (one run, read at every budget)", k.name());
                    own = job.run_kind(ctx, k, &budget, 1, &label)?;
                    Some(&own)
                }
                None => None,
            };
            if let Some(r) = run.filter(|r| r.evaluated > 0) {
                for &e in &cfg.eps_curve {
                    curve.push(job.minimal_norm_point(r, &Budget { eps: e, ..budget }));
                }
            }
        }
    }

    let (worst, pick) = job.merge(AttackKind::AutoAttack, &results, &budget);
    let any = !results.is_empty();
    let complete = results.iter().all(|r| r.evaluated == n)
        && not_run.is_empty()
        && curve.len() == cfg.eps_curve.len()
        && curve.iter().all(|p| p.evaluated == n);
    Ok(EvasionReport {
        n,
        norm: cfg.norm,
        eps: cfg.eps,
        lo: cfg.lo,
        hi: cfg.hi,
        seed: cfg.seed,
        clean_accuracy,
        not_run,
        worst_case_robust_accuracy: any.then_some(worst.robust_accuracy),
        worst_case_evaluated: if any { worst.evaluated } else { 0 },
        worst_case_broken: if any { worst.broken } else { 0 },
        curve,
        curve_attack: curve_kind.map(|k| k.name().to_string()),
        complete,
        cancelled: !complete && ctx.is_cancelled(),
        labels: y.to_vec(),
        clean_pred,
        worst_case_success: worst.success,
        worst_case_attack: pick,
        clean: x.clone(),
        adversarial: worst.adversarial,
        attacks: results,
    })
}

/// What one attack produced before it is summarised.
struct Raw {
    adversarial: Tensor,
    done: Vec<bool>,
    success: Vec<bool>,
    adv_pred: Vec<usize>,
    queries: Vec<u64>,
    total_queries: u64,
}

/// Output of one attacked batch.
struct BatchOut {
    idx: Vec<usize>,
    adv: Tensor,
    queries: Vec<u64>,
}

/// The fixed inputs of one evaluation.
struct Job<'a> {
    target: Target<'a>,
    x: &'a Tensor,
    y: &'a [usize],
    cfg: &'a EvasionConfig,
    batches: &'a [Vec<usize>],
    /// Clean-correct examples.
    correct: &'a [bool],
}

impl Job<'_> {
    /// Runs `kind` (AutoAttack as its four components on the examples still
    /// robust, worst case per example) on the clean-correct examples, in a
    /// progress phase named `label` (one per AutoAttack component).
    fn run_kind(
        &self,
        ctx: &AttackContext,
        kind: AttackKind,
        budget: &Budget,
        eps_idx: usize,
        label: &str,
    ) -> Result<AttackResult, EvasionError> {
        let n = self.x.batch();
        if kind != AttackKind::AutoAttack {
            ctx.phase(label, n as u64);
            return self.run_attack(ctx, kind, self.correct, budget, eps_idx);
        }
        // The standard protocol is the same for L-inf and L2 (Croce & Hein 2020).
        let started = Instant::now();
        let mut still = self.correct.to_vec();
        let mut parts = Vec::with_capacity(4);
        for comp in [
            AttackKind::ApgdCe,
            AttackKind::ApgdT,
            AttackKind::FabT,
            AttackKind::Square,
        ] {
            ctx.phase(&format!("{label}: {}", comp.name()), n as u64);
            let r = self.run_attack(ctx, comp, &still, budget, eps_idx)?;
            for i in 0..n {
                if r.success[i] {
                    still[i] = false;
                }
            }
            parts.push(r);
        }
        let (mut agg, _) = self.merge(AttackKind::AutoAttack, &parts, budget);
        agg.seconds = started.elapsed().as_secs_f64();
        Ok(agg)
    }

    /// Per example, keeps the successful example of smallest threat norm
    /// over `parts` (the first on ties); returns the merged result and, per
    /// example, the index of the part kept. An example counts as evaluated
    /// when every part finished it or one broke it.
    fn merge(
        &self,
        kind: AttackKind,
        parts: &[AttackResult],
        budget: &Budget,
    ) -> (AttackResult, Vec<Option<usize>>) {
        let x = self.x;
        let n = x.batch();
        let mut raw = Raw {
            adversarial: x.clone(),
            done: vec![true; n],
            success: vec![false; n],
            adv_pred: self.y.to_vec(),
            queries: vec![0; n],
            total_queries: parts.iter().map(|r| r.total_queries).sum(),
        };
        let mut best = vec![f32::INFINITY; n];
        let mut pick = vec![None; n];
        for (p, r) in parts.iter().enumerate() {
            for i in 0..n {
                raw.queries[i] += r.queries[i];
                raw.done[i] &= r.done[i];
                if r.success[i] {
                    let nv = r.norm_of(budget.norm, i);
                    if nv < best[i] {
                        best[i] = nv;
                        raw.success[i] = true;
                        raw.adv_pred[i] = r.adv_pred[i];
                        raw.adversarial
                            .row_mut(i)
                            .copy_from_slice(r.adversarial.row(i));
                        pick[i] = Some(p);
                    }
                }
            }
        }
        for i in 0..n {
            raw.done[i] |= raw.success[i];
        }
        let seconds = parts.iter().map(|r| r.seconds).sum();
        let merged = self.summarise(kind, None, self.correct, raw, budget, seconds);
        (merged, pick)
    }

    /// A curve point read off one minimal-norm run: correct examples the
    /// attack did not break with a perturbation inside `budget`.
    fn minimal_norm_point(&self, r: &AttackResult, budget: &Budget) -> CurvePoint {
        let n = self.x.batch();
        let mut evaluated = 0;
        let mut robust = 0;
        for i in 0..n {
            if !r.done[i] {
                continue;
            }
            evaluated += 1;
            let broken = goal_met(r.adv_pred[i], self.y[i], r.target)
                && budget.admits_norm(r.norm_of(budget.norm, i));
            if self.correct[i] && !broken {
                robust += 1;
            }
        }
        CurvePoint {
            eps: budget.eps,
            robust_accuracy: ratio(robust, evaluated),
            attack: r.attack.clone(),
            method: "minimal-norm".into(),
            evaluated,
        }
    }

    /// Counts, rates and norms of one attack's raw output. `attackable`
    /// are the examples it was meant to break (its robust accuracy counts
    /// them as the correct ones).
    fn summarise(
        &self,
        kind: AttackKind,
        target: Option<usize>,
        attackable: &[bool],
        raw: Raw,
        budget: &Budget,
        seconds: f64,
    ) -> AttackResult {
        let x = self.x;
        let n = x.batch();
        let mut l0s = Vec::with_capacity(n);
        let mut l2s = Vec::with_capacity(n);
        let mut linfs = Vec::with_capacity(n);
        for i in 0..n {
            let d = diff(raw.adversarial.row(i), x.row(i));
            l0s.push(l0(&d));
            l2s.push(l2(&d));
            linfs.push(linf(&d));
        }
        let mut succ_norms: Vec<f32> = (0..n)
            .filter(|&i| raw.success[i])
            .map(|i| match budget.norm {
                Norm::Linf => linfs[i],
                Norm::L2 => l2s[i],
            })
            .collect();
        succ_norms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let median = if succ_norms.is_empty() {
            None
        } else {
            Some(succ_norms[succ_norms.len() / 2])
        };
        let evaluated = raw.done.iter().filter(|&&d| d).count();
        let n_correct = (0..n).filter(|&i| raw.done[i] && attackable[i]).count();
        let n_broken = (0..n).filter(|&i| raw.done[i] && raw.success[i]).count();
        AttackResult {
            attack: kind.name().to_string(),
            black_box: kind.black_box(),
            minimal_norm: kind.minimal_norm(),
            target,
            evaluated,
            broken: n_broken,
            robust_accuracy: ratio(n_correct - n_broken.min(n_correct), evaluated),
            attack_success_rate: ratio(n_broken, n_correct),
            median_norm_success: median,
            total_queries: raw.total_queries,
            seconds,
            done: raw.done,
            success: raw.success,
            adv_pred: raw.adv_pred,
            l0: l0s,
            l2: l2s,
            linf: linfs,
            queries: raw.queries,
            adversarial: raw.adversarial,
        }
    }

    /// Runs one attack on the examples flagged in `attackable`, batch by
    /// batch (batches in parallel with rayon, each with its own seeded
    /// generator), then judges every attacked example with one forward
    /// pass per batch.
    fn run_attack(
        &self,
        ctx: &AttackContext,
        kind: AttackKind,
        attackable: &[bool],
        budget: &Budget,
        eps_idx: usize,
    ) -> Result<AttackResult, EvasionError> {
        let started = Instant::now();
        let (x, y, cfg) = (self.x, self.y, self.cfg);
        let n = x.batch();
        let tgt = if kind.supports_target() {
            cfg.target
        } else {
            None
        };
        let total_queries = AtomicU64::new(0);
        let outs: Vec<Result<Option<BatchOut>, EvasionError>> = self
            .batches
            .par_iter()
            .enumerate()
            .map(|(bi, b)| {
                if ctx.is_cancelled() {
                    return Ok(None);
                }
                // Skip examples that are wrong already or whose label is the target.
                let idx: Vec<usize> = b
                    .iter()
                    .copied()
                    .filter(|&i| attackable[i] && tgt != Some(y[i]))
                    .collect();
                let mut bctx = ctx.fork(sub_seed(cfg.seed, kind, bi, eps_idx));
                let out = if idx.is_empty() {
                    BatchOut {
                        idx,
                        adv: gather(x, &[]),
                        queries: Vec::new(),
                    }
                } else {
                    let xb = gather(x, &idx);
                    let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
                    let tb: Option<Vec<usize>> = tgt.map(|t| vec![t; idx.len()]);
                    let (adv, queries, used) =
                        self.attack_batch(&mut bctx, kind, &xb, &yb, tb.as_deref(), budget)?;
                    total_queries.fetch_add(used, Ordering::Relaxed);
                    BatchOut { idx, adv, queries }
                };
                // An attack the cancel flag may have cut short is not counted.
                if ctx.is_cancelled() {
                    return Ok(None);
                }
                ctx.advance(b.len() as u64);
                Ok(Some(out))
            })
            .collect();
        let mut adversarial = x.clone();
        let mut done = vec![false; n];
        let mut queries = vec![0u64; n];
        let mut attacked: Vec<usize> = Vec::new();
        for (b, o) in self.batches.iter().zip(outs) {
            let Some(out) = o? else { continue };
            for &i in b {
                done[i] = true;
            }
            for (k, &i) in out.idx.iter().enumerate() {
                adversarial.row_mut(i).copy_from_slice(out.adv.row(k));
                if let Some(q) = out.queries.get(k) {
                    queries[i] = *q;
                }
                attacked.push(i);
            }
        }
        // Judge every attacked example with one clean forward pass per batch.
        let mut success = vec![false; n];
        let mut adv_pred: Vec<usize> = y.to_vec();
        attacked.sort_unstable();
        for chunk in attacked.chunks(cfg.batch_size.max(1)) {
            let pred = predictions(&self.target.query().logits(&gather(&adversarial, chunk))?);
            for (k, &i) in chunk.iter().enumerate() {
                adv_pred[i] = pred[k];
                let d = diff(adversarial.row(i), x.row(i));
                success[i] = attackable[i] && goal_met(pred[k], y[i], tgt) && budget.admits(&d);
            }
        }
        let raw = Raw {
            adversarial,
            done,
            success,
            adv_pred,
            queries,
            total_queries: total_queries.load(Ordering::Relaxed),
        };
        let seconds = started.elapsed().as_secs_f64();
        Ok(self.summarise(kind, tgt, attackable, raw, budget, seconds))
    }

    /// Runs `kind` on one batch; returns the adversarial batch, per-example
    /// queries (black-box attacks) and the examples sent to the model.
    fn attack_batch(
        &self,
        ctx: &mut AttackContext,
        kind: AttackKind,
        x: &Tensor,
        y: &[usize],
        t: Option<&[usize]>,
        budget: &Budget,
    ) -> Result<(Tensor, Vec<u64>, u64), EvasionError> {
        let cfg = self.cfg;
        if kind.black_box() {
            let counted = QueryCounter::new(self.target.query());
            let (adv, q) = match kind {
                AttackKind::Square => square(ctx, &counted, x, y, t, budget, &cfg.square)?,
                _ => hop_skip_jump(ctx, &counted, x, y, t, budget, &cfg.hsj)?,
            };
            return Ok((adv, q, counted.queries()));
        }
        let Target::White(m) = self.target else {
            return Err(EvasionError::Invalid(format!(
                "attack '{}' needs gradients",
                kind.name()
            )));
        };
        let cm = QueryCounter::new(m);
        let adv = match kind {
            AttackKind::Fgsm => fgsm(&cm, x, y, t, budget)?,
            AttackKind::Bim => {
                let c = PgdConfig {
                    random_start: false,
                    restarts: 1,
                    ..cfg.pgd.clone()
                };
                pgd(ctx, &cm, x, y, t, budget, &c)?
            }
            AttackKind::Pgd => pgd(ctx, &cm, x, y, t, budget, &cfg.pgd)?,
            AttackKind::CwL2 => carlini_wagner_l2(ctx, &cm, x, y, t, budget, &cfg.cw)?,
            AttackKind::Deepfool => deepfool(ctx, &cm, x, budget, &cfg.deepfool)?,
            AttackKind::ApgdCe => apgd(ctx, &cm, x, y, ApgdLoss::Ce, budget, &cfg.apgd)?,
            AttackKind::ApgdDlr => apgd(ctx, &cm, x, y, ApgdLoss::Dlr, budget, &cfg.apgd)?,
            AttackKind::ApgdT => apgd_targeted(ctx, &cm, x, y, budget, &cfg.apgd)?,
            AttackKind::FabT => fab_targeted(ctx, &cm, x, y, budget, &cfg.fab)?,
            AttackKind::Square | AttackKind::HopSkipJump | AttackKind::AutoAttack => {
                return Err(EvasionError::Invalid(format!(
                    "attack '{}' cannot run on a single batch",
                    kind.name()
                )))
            }
        };
        Ok((adv, vec![0; x.batch()], cm.queries()))
    }
}
