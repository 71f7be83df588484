//! The robustness evaluation driver: runs the chosen attacks on a labelled
//! batch, measures clean and robust accuracy, per-example success and
//! perturbation norms, queries and an accuracy-versus-budget curve.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use aisec_model::{Classifier, Differentiable, Loss, ModelError, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::apgd::{apgd, apgd_targeted, ApgdConfig, ApgdLoss};
use crate::blackbox::{hop_skip_jump, square, HsjConfig, SquareConfig};
use crate::fab::{fab_targeted, FabConfig};
use crate::util::{cancelled, diff, gather, goal_met, l0, l2, linf, predictions, Budget, Norm};
use crate::whitebox::{
    carlini_wagner_l2, deepfool, fgsm, pgd, CwConfig, DeepFoolConfig, PgdConfig,
};

/// An attack the driver can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// Fast Gradient Sign Method.
    Fgsm,
    /// Basic Iterative Method (PGD from the clean point).
    Bim,
    /// Projected gradient descent with random start and restarts.
    Pgd,
    /// Carlini-Wagner L2 (minimal perturbation).
    CwL2,
    /// DeepFool (minimal perturbation).
    Deepfool,
    /// APGD on cross-entropy.
    ApgdCe,
    /// APGD on the DLR loss.
    ApgdDlr,
    /// Targeted APGD on the targeted DLR loss.
    ApgdT,
    /// Targeted FAB (minimal perturbation).
    FabT,
    /// Square attack, scores only (L-inf or L2).
    Square,
    /// HopSkipJump, labels only (minimal perturbation).
    HopSkipJump,
    /// AutoAttack "standard": APGD-CE, APGD-T, FAB-T, Square in order on
    /// still-robust points, worst case per example.
    AutoAttack,
}

impl AttackKind {
    /// Every kind, in a stable order.
    pub const ALL: [AttackKind; 12] = [
        AttackKind::Fgsm,
        AttackKind::Bim,
        AttackKind::Pgd,
        AttackKind::CwL2,
        AttackKind::Deepfool,
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::ApgdT,
        AttackKind::FabT,
        AttackKind::Square,
        AttackKind::HopSkipJump,
        AttackKind::AutoAttack,
    ];

    /// Kebab-case name (`pgd`, `apgd-ce`, `autoattack`...).
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Bim => "bim",
            AttackKind::Pgd => "pgd",
            AttackKind::CwL2 => "cw-l2",
            AttackKind::Deepfool => "deepfool",
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::ApgdT => "apgd-t",
            AttackKind::FabT => "fab-t",
            AttackKind::Square => "square",
            AttackKind::HopSkipJump => "hop-skip-jump",
            AttackKind::AutoAttack => "autoattack",
        }
    }

    /// Parses a name as printed by [`AttackKind::name`] (also `cw`, `hsj`, `aa`).
    pub fn parse(s: &str) -> Option<AttackKind> {
        let s = s.to_ascii_lowercase().replace('_', "-");
        match s.as_str() {
            "cw" | "c&w" | "cwl2" => return Some(AttackKind::CwL2),
            "hsj" | "hopskipjump" => return Some(AttackKind::HopSkipJump),
            "aa" | "auto-attack" => return Some(AttackKind::AutoAttack),
            _ => {}
        }
        AttackKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Whether the attack needs only queries (no gradients).
    pub fn black_box(self) -> bool {
        matches!(self, AttackKind::Square | AttackKind::HopSkipJump)
    }

    /// Whether the attack minimises the perturbation instead of working
    /// inside the budget (success then also needs norm <= eps).
    pub fn minimal_norm(self) -> bool {
        matches!(
            self,
            AttackKind::CwL2 | AttackKind::Deepfool | AttackKind::FabT | AttackKind::HopSkipJump
        )
    }

    /// Whether a fixed target class in the configuration is honoured.
    pub fn supports_target(self) -> bool {
        matches!(
            self,
            AttackKind::Fgsm
                | AttackKind::Bim
                | AttackKind::Pgd
                | AttackKind::CwL2
                | AttackKind::Square
                | AttackKind::HopSkipJump
        )
    }
}

/// Everything an evaluation needs besides the model and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvasionConfig {
    /// Attacks to run, in order.
    pub attacks: Vec<AttackKind>,
    /// Threat-model norm.
    pub norm: Norm,
    /// Budget in the user's input space (e.g. `8/255`, `0.3`).
    pub eps: f32,
    /// Smallest valid input value.
    pub lo: f32,
    /// Largest valid input value.
    pub hi: f32,
    /// Fixed target class for attacks that support it (`None`: untargeted).
    pub target: Option<usize>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Examples per attacked batch.
    pub batch_size: usize,
    /// Budgets of the accuracy-versus-budget curve (empty: no curve).
    pub eps_curve: Vec<f32>,
    /// Attack rerun at each curve budget.
    pub curve_attack: AttackKind,
    /// FGSM/BIM/PGD settings (BIM forces `random_start = false`, one restart).
    pub pgd: PgdConfig,
    /// Carlini-Wagner settings.
    pub cw: CwConfig,
    /// DeepFool settings.
    pub deepfool: DeepFoolConfig,
    /// APGD-CE/DLR/T settings.
    pub apgd: ApgdConfig,
    /// FAB-T settings.
    pub fab: FabConfig,
    /// Square settings (its `max_queries` is the per-example query budget).
    pub square: SquareConfig,
    /// HopSkipJump settings (its `max_queries` is the per-example query budget).
    pub hsj: HsjConfig,
}

impl Default for EvasionConfig {
    fn default() -> Self {
        EvasionConfig {
            attacks: vec![AttackKind::Pgd],
            norm: Norm::Linf,
            eps: 8.0 / 255.0,
            lo: 0.0,
            hi: 1.0,
            target: None,
            seed: 0,
            batch_size: 64,
            eps_curve: Vec::new(),
            curve_attack: AttackKind::Pgd,
            pgd: PgdConfig::default(),
            cw: CwConfig::default(),
            deepfool: DeepFoolConfig::default(),
            apgd: ApgdConfig::default(),
            fab: FabConfig::default(),
            square: SquareConfig::default(),
            hsj: HsjConfig::default(),
        }
    }
}

impl EvasionConfig {
    /// The budget this configuration describes.
    pub fn budget(&self) -> Budget {
        Budget {
            norm: self.norm,
            eps: self.eps,
            lo: self.lo,
            hi: self.hi,
        }
    }
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvasionError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The inputs or configuration are unusable.
    #[error("invalid evaluation input: {0}")]
    Invalid(String),
}

/// Results of one attack.
#[derive(Debug, Clone, Serialize)]
pub struct AttackResult {
    /// Attack name (`pgd`, `apgd-ce`, `autoattack`...).
    pub attack: String,
    /// Query-only attack.
    pub black_box: bool,
    /// Minimal-perturbation attack (success also requires norm <= eps).
    pub minimal_norm: bool,
    /// Target class used, if the attack ran targeted.
    pub target: Option<usize>,
    /// Examples attacked so far (all of them unless cancelled); a prefix of the input.
    pub evaluated: usize,
    /// Correct and not fooled, over `evaluated`.
    pub robust_accuracy: f64,
    /// Fooled over correctly classified, among `evaluated`.
    pub attack_success_rate: f64,
    /// Per example: clean-correct, goal met and inside the budget.
    pub success: Vec<bool>,
    /// Per example: predicted class of the adversarial example.
    pub adv_pred: Vec<usize>,
    /// Per example: values changed.
    pub l0: Vec<usize>,
    /// Per example: L2 norm of the perturbation.
    pub l2: Vec<f32>,
    /// Per example: L-inf norm of the perturbation.
    pub linf: Vec<f32>,
    /// Median threat-norm of successful perturbations (`null` if none).
    pub median_norm_success: Option<f32>,
    /// Per example model queries (black-box attacks; zero otherwise).
    pub queries: Vec<u64>,
    /// Examples sent to the model by this attack, gradient passes included.
    pub total_queries: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Adversarial examples, one per input (the clean input where not attacked).
    #[serde(skip)]
    pub adversarial: Tensor,
}

/// One point of the accuracy-versus-budget curve.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Budget.
    pub eps: f32,
    /// Robust accuracy at that budget.
    pub robust_accuracy: f64,
    /// Attack used.
    pub attack: String,
}

/// The outcome of [`run_evasion`].
#[derive(Debug, Clone, Serialize)]
pub struct EvasionReport {
    /// Examples.
    pub n: usize,
    /// Threat-model norm.
    pub norm: Norm,
    /// Budget.
    pub eps: f32,
    /// Valid range low end.
    pub lo: f32,
    /// Valid range high end.
    pub hi: f32,
    /// Seed used.
    pub seed: u64,
    /// True labels.
    pub labels: Vec<usize>,
    /// Clean predictions.
    pub clean_pred: Vec<usize>,
    /// Clean accuracy.
    pub clean_accuracy: f64,
    /// Per-attack results, in run order.
    pub attacks: Vec<AttackResult>,
    /// Worst case over every attack: correct and not broken by any, over
    /// the examples every attack evaluated.
    pub worst_case_robust_accuracy: f64,
    /// Per example: broken by at least one attack.
    pub worst_case_success: Vec<bool>,
    /// Per example: the attack whose example is kept (smallest threat norm).
    pub worst_case_attack: Vec<Option<String>>,
    /// Accuracy-versus-budget curve.
    pub curve: Vec<CurvePoint>,
    /// The run was cancelled; numbers cover what finished.
    pub cancelled: bool,
    /// Clean inputs.
    #[serde(skip)]
    pub clean: Tensor,
    /// Worst-case adversarial examples (the clean input where none succeeded).
    #[serde(skip)]
    pub adversarial: Tensor,
}

/// Progress callback: `(done, total)` work units (attacked batches).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Presents a [`Differentiable`] as a plain [`Classifier`] and counts the
/// examples sent through it (forward and gradient passes alike).
pub struct Counted<'a, M: ?Sized> {
    inner: &'a M,
    count: AtomicU64,
}

impl<'a, M: ?Sized> Counted<'a, M> {
    /// Wraps `inner`.
    pub fn new(inner: &'a M) -> Self {
        Counted {
            inner,
            count: AtomicU64::new(0),
        }
    }
    /// Examples sent so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl<M: Classifier + ?Sized> Classifier for Counted<'_, M> {
    fn input_shape(&self) -> &[usize] {
        self.inner.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.count.fetch_add(x.batch() as u64, Ordering::Relaxed);
        let z = self.inner.logits(x)?;
        check_logits(&z, x.batch(), self.inner.num_classes())?;
        Ok(z)
    }
    fn predict(&self, x: &Tensor) -> Result<Vec<usize>, ModelError> {
        self.count.fetch_add(x.batch() as u64, Ordering::Relaxed);
        let p = self.inner.predict(x)?;
        if p.len() != x.batch() {
            return Err(ModelError::Shape(format!(
                "model returned {} predictions for {} inputs",
                p.len(),
                x.batch()
            )));
        }
        Ok(p)
    }
}

impl<M: Differentiable + ?Sized> Differentiable for Counted<'_, M> {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        self.count.fetch_add(x.batch() as u64, Ordering::Relaxed);
        let (l, g, z) = self.inner.loss_grad(x, loss)?;
        check_logits(&z, x.batch(), self.inner.num_classes())?;
        if l.len() != x.batch() || g.shape != x.shape || g.data.len() != x.data.len() {
            return Err(ModelError::Shape(format!(
                "model returned {} losses and a {:?} gradient for a {:?} input",
                l.len(),
                g.shape,
                x.shape
            )));
        }
        Ok((l, g, z))
    }
}

/// Checks that a model's logits are `[batch, classes]`, so attacks can
/// index them without trusting the model (remote endpoints included).
fn check_logits(z: &Tensor, batch: usize, classes: usize) -> Result<(), ModelError> {
    if z.shape.len() != 2
        || z.batch() != batch
        || z.row_len() != classes
        || z.data.len() != batch * classes
    {
        return Err(ModelError::Shape(format!(
            "model returned logits of shape {:?} for {batch} inputs and {classes} classes",
            z.shape
        )));
    }
    Ok(())
}

/// The model an evaluation runs against.
#[derive(Clone, Copy)]
enum Target<'a> {
    White(&'a dyn Differentiable),
    Black(&'a dyn Classifier),
}

/// Query-only view of a differentiable model.
struct View<'a>(&'a dyn Differentiable);

impl Classifier for View<'_> {
    fn input_shape(&self) -> &[usize] {
        self.0.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.0.logits(x)
    }
    fn predict(&self, x: &Tensor) -> Result<Vec<usize>, ModelError> {
        self.0.predict(x)
    }
}

/// Runs a white-box (gradient) evaluation: every attack in `cfg.attacks`.
///
/// `progress` is called with `(done, total)` batches; raising `cancel`
/// stops after the current batch step and returns what was measured, with
/// [`EvasionReport::cancelled`] set.
pub fn run_evasion(
    model: &dyn Differentiable,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    progress: Option<Progress>,
    cancel: &AtomicBool,
) -> Result<EvasionReport, EvasionError> {
    evaluate(Target::White(model), x, y, cfg, progress, cancel)
}

/// Runs a query-only evaluation (Square and HopSkipJump only; other
/// attacks in `cfg.attacks` are rejected).
pub fn run_evasion_blackbox(
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    progress: Option<Progress>,
    cancel: &AtomicBool,
) -> Result<EvasionReport, EvasionError> {
    if let Some(k) = cfg.attacks.iter().find(|k| !k.black_box()) {
        return Err(EvasionError::Invalid(format!(
            "attack '{}' needs gradients; a query-only model supports square and hop-skip-jump",
            k.name()
        )));
    }
    if !cfg.eps_curve.is_empty() && !cfg.curve_attack.black_box() {
        return Err(EvasionError::Invalid(format!(
            "curve attack '{}' needs gradients",
            cfg.curve_attack.name()
        )));
    }
    evaluate(Target::Black(model), x, y, cfg, progress, cancel)
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

fn evaluate(
    target: Target,
    x: &Tensor,
    y: &[usize],
    cfg: &EvasionConfig,
    progress: Option<Progress>,
    cancel: &AtomicBool,
) -> Result<EvasionReport, EvasionError> {
    let view;
    let query: &dyn Classifier = match target {
        Target::White(m) => {
            view = View(m);
            &view
        }
        Target::Black(m) => m,
    };
    check_inputs(query, x, y, cfg)?;
    let n = x.batch();
    let bs = cfg.batch_size.max(1);
    let batches: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(bs)
        .map(|c| c.to_vec())
        .collect();
    let checked = Counted::new(query);
    let mut clean_pred = Vec::with_capacity(n);
    for b in &batches {
        clean_pred.extend(predictions(&checked.logits(&gather(x, b))?));
    }
    let correct: Vec<bool> = (0..n).map(|i| clean_pred[i] == y[i]).collect();
    let clean_accuracy = ratio(correct.iter().filter(|&&c| c).count(), n);

    let units_per_attack = batches.len();
    let plan: Vec<AttackKind> = cfg.attacks.clone();
    let aa_units = 4;
    let total = plan
        .iter()
        .map(|k| {
            if *k == AttackKind::AutoAttack {
                aa_units * units_per_attack
            } else {
                units_per_attack
            }
        })
        .sum::<usize>()
        + cfg.eps_curve.len() * units_per_attack;
    let done = AtomicUsize::new(0);
    let tick = || {
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = progress {
            p(d, total);
        }
    };

    let budget = cfg.budget();
    let mut results = Vec::new();
    for &kind in &plan {
        if cancelled(cancel) {
            break;
        }
        if kind == AttackKind::AutoAttack {
            // The standard protocol is the same for L-inf and L2 (Croce & Hein 2020).
            let components = vec![
                AttackKind::ApgdCe,
                AttackKind::ApgdT,
                AttackKind::FabT,
                AttackKind::Square,
            ];
            let started = Instant::now();
            let mut still: Vec<bool> = correct.clone();
            let mut comp_results: Vec<AttackResult> = Vec::new();
            for comp in components {
                let r = run_attack(
                    target, comp, x, y, &still, &budget, cfg, &batches, 0, &tick, cancel,
                )?;
                for i in 0..n {
                    if r.success[i] {
                        still[i] = false;
                    }
                }
                comp_results.push(r);
            }
            let mut agg = merge_results(
                AttackKind::AutoAttack,
                x,
                y,
                &correct,
                &comp_results,
                &budget,
            );
            agg.seconds = started.elapsed().as_secs_f64();
            results.push(agg);
        } else {
            let r = run_attack(
                target, kind, x, y, &correct, &budget, cfg, &batches, 0, &tick, cancel,
            )?;
            results.push(r);
        }
    }

    let mut curve = Vec::new();
    for (ei, &e) in cfg.eps_curve.iter().enumerate() {
        if cancelled(cancel) {
            break;
        }
        let b = Budget { eps: e, ..budget };
        let r = run_attack(
            target,
            cfg.curve_attack,
            x,
            y,
            &correct,
            &b,
            cfg,
            &batches,
            ei + 1,
            &tick,
            cancel,
        )?;
        curve.push(CurvePoint {
            eps: e,
            robust_accuracy: r.robust_accuracy,
            attack: r.attack.clone(),
        });
    }

    let worst = merge_results(AttackKind::AutoAttack, x, y, &correct, &results, &budget);
    let evaluated_all = results.iter().map(|r| r.evaluated).min().unwrap_or(0);
    let worst_case_attack: Vec<Option<String>> = (0..n)
        .map(|i| {
            let mut best: Option<(f32, &AttackResult)> = None;
            for r in &results {
                if r.success[i] {
                    let nv = norm_value(cfg.norm, r, i);
                    if !matches!(best, Some((b, _)) if b <= nv) {
                        best = Some((nv, r));
                    }
                }
            }
            best.map(|(_, r)| r.attack.clone())
        })
        .collect();
    let worst_case_robust_accuracy = if results.is_empty() {
        clean_accuracy
    } else {
        ratio(
            (0..evaluated_all)
                .filter(|&i| correct[i] && !worst.success[i])
                .count(),
            evaluated_all,
        )
    };
    Ok(EvasionReport {
        n,
        norm: cfg.norm,
        eps: cfg.eps,
        lo: cfg.lo,
        hi: cfg.hi,
        seed: cfg.seed,
        labels: y.to_vec(),
        clean_pred,
        clean_accuracy,
        worst_case_robust_accuracy,
        worst_case_success: worst.success.clone(),
        worst_case_attack,
        curve,
        cancelled: cancelled(cancel),
        clean: x.clone(),
        adversarial: worst.adversarial,
        attacks: results,
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

fn norm_value(norm: Norm, r: &AttackResult, i: usize) -> f32 {
    match norm {
        Norm::Linf => r.linf[i],
        Norm::L2 => r.l2[i],
    }
}

/// Per example, keep the successful example of smallest threat norm.
fn merge_results(
    kind: AttackKind,
    x: &Tensor,
    y: &[usize],
    correct: &[bool],
    parts: &[AttackResult],
    budget: &Budget,
) -> AttackResult {
    let n = x.batch();
    let mut adversarial = x.clone();
    let mut success = vec![false; n];
    let mut adv_pred = y.to_vec();
    let mut best = vec![f32::INFINITY; n];
    let mut queries = vec![0u64; n];
    for r in parts {
        for i in 0..n {
            queries[i] += r.queries[i];
            if r.success[i] {
                let nv = norm_value(budget.norm, r, i);
                if nv < best[i] {
                    best[i] = nv;
                    success[i] = true;
                    adv_pred[i] = r.adv_pred[i];
                    adversarial.row_mut(i).copy_from_slice(r.adversarial.row(i));
                }
            }
        }
    }
    let evaluated = parts.iter().map(|r| r.evaluated).min().unwrap_or(0);
    finish(
        kind,
        None,
        x,
        correct,
        adversarial,
        success,
        adv_pred,
        queries,
        parts.iter().map(|r| r.total_queries).sum(),
        evaluated,
        budget,
        parts.iter().map(|r| r.seconds).sum(),
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    kind: AttackKind,
    target: Option<usize>,
    x: &Tensor,
    correct: &[bool],
    adversarial: Tensor,
    success: Vec<bool>,
    adv_pred: Vec<usize>,
    queries: Vec<u64>,
    total_queries: u64,
    evaluated: usize,
    budget: &Budget,
    seconds: f64,
) -> AttackResult {
    let n = x.batch();
    let mut l0s = Vec::with_capacity(n);
    let mut l2s = Vec::with_capacity(n);
    let mut linfs = Vec::with_capacity(n);
    for i in 0..n {
        let d = diff(adversarial.row(i), x.row(i));
        l0s.push(l0(&d));
        l2s.push(l2(&d));
        linfs.push(linf(&d));
    }
    let mut succ_norms: Vec<f32> = (0..n)
        .filter(|&i| success[i])
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
    let n_correct = (0..evaluated).filter(|&i| correct[i]).count();
    let n_broken = (0..evaluated).filter(|&i| success[i]).count();
    AttackResult {
        attack: kind.name().to_string(),
        black_box: kind.black_box(),
        minimal_norm: kind.minimal_norm(),
        target,
        evaluated,
        robust_accuracy: ratio(n_correct - n_broken.min(n_correct), evaluated),
        attack_success_rate: ratio(n_broken, n_correct),
        success,
        adv_pred,
        l0: l0s,
        l2: l2s,
        linf: linfs,
        median_norm_success: median,
        queries,
        total_queries,
        seconds,
        adversarial,
    }
}

/// Output of one attacked batch.
struct BatchOut {
    idx: Vec<usize>,
    adv: Tensor,
    queries: Vec<u64>,
}

/// Runs one attack on the examples flagged in `attackable`, batch by batch
/// (batches in parallel with rayon, each with its own seeded generator).
#[allow(clippy::too_many_arguments)]
fn run_attack(
    target: Target,
    kind: AttackKind,
    x: &Tensor,
    y: &[usize],
    attackable: &[bool],
    budget: &Budget,
    cfg: &EvasionConfig,
    batches: &[Vec<usize>],
    eps_idx: usize,
    tick: &(dyn Fn() + Sync),
    cancel: &AtomicBool,
) -> Result<AttackResult, EvasionError> {
    let started = Instant::now();
    let n = x.batch();
    let tgt = if kind.supports_target() {
        cfg.target
    } else {
        None
    };
    let total_queries = AtomicU64::new(0);
    let outs: Vec<Result<Option<BatchOut>, EvasionError>> = batches
        .par_iter()
        .enumerate()
        .map(|(bi, b)| {
            if cancelled(cancel) {
                return Ok(None);
            }
            // Skip examples that are wrong already or whose label is the target.
            let idx: Vec<usize> = b
                .iter()
                .copied()
                .filter(|&i| attackable[i] && tgt.is_none_or_ne(y[i]))
                .collect();
            let mut rng = StdRng::seed_from_u64(sub_seed(cfg.seed, kind, bi, eps_idx));
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
                let (adv, queries, used) = attack_batch(
                    target,
                    kind,
                    &xb,
                    &yb,
                    tb.as_deref(),
                    budget,
                    cfg,
                    &mut rng,
                    cancel,
                )?;
                total_queries.fetch_add(used, Ordering::Relaxed);
                BatchOut { idx, adv, queries }
            };
            tick();
            Ok(Some(out))
        })
        .collect();
    let mut adversarial = x.clone();
    let mut success = vec![false; n];
    let mut adv_pred: Vec<usize> = y.to_vec();
    let mut queries = vec![0u64; n];
    let mut evaluated = 0usize;
    let mut prefix_ok = true;
    let mut attacked: Vec<usize> = Vec::new();
    for (b, o) in batches.iter().zip(outs) {
        match o? {
            Some(out) => {
                if prefix_ok {
                    evaluated += b.len();
                }
                for (k, &i) in out.idx.iter().enumerate() {
                    adversarial.row_mut(i).copy_from_slice(out.adv.row(k));
                    if let Some(q) = out.queries.get(k) {
                        queries[i] = *q;
                    }
                    attacked.push(i);
                }
            }
            None => prefix_ok = false,
        }
    }
    // Judge every attacked example with one clean forward pass per batch.
    let query: Box<dyn Classifier + '_> = match target {
        Target::White(m) => Box::new(View(m)),
        Target::Black(m) => Box::new(Forward(m)),
    };
    let query = Counted::new(query.as_ref());
    attacked.sort_unstable();
    for chunk in attacked.chunks(cfg.batch_size.max(1)) {
        let pred = predictions(&query.logits(&gather(&adversarial, chunk))?);
        for (k, &i) in chunk.iter().enumerate() {
            adv_pred[i] = pred[k];
            let d = diff(adversarial.row(i), x.row(i));
            success[i] = attackable[i] && goal_met(pred[k], y[i], tgt) && budget.admits(&d);
        }
    }
    Ok(finish(
        kind,
        tgt,
        x,
        attackable,
        adversarial,
        success,
        adv_pred,
        queries,
        total_queries.load(Ordering::Relaxed),
        evaluated,
        budget,
        started.elapsed().as_secs_f64(),
    ))
}

/// Borrowed classifier as a boxed trait object.
struct Forward<'a>(&'a dyn Classifier);

impl Classifier for Forward<'_> {
    fn input_shape(&self) -> &[usize] {
        self.0.input_shape()
    }
    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.0.logits(x)
    }
}

trait OptNe {
    fn is_none_or_ne(&self, v: usize) -> bool;
}

impl OptNe for Option<usize> {
    fn is_none_or_ne(&self, v: usize) -> bool {
        match self {
            Some(t) => *t != v,
            None => true,
        }
    }
}

/// Runs `kind` on one batch; returns the adversarial batch, per-example
/// queries (black-box attacks) and the examples sent to the model.
#[allow(clippy::too_many_arguments)]
fn attack_batch(
    target: Target,
    kind: AttackKind,
    x: &Tensor,
    y: &[usize],
    t: Option<&[usize]>,
    budget: &Budget,
    cfg: &EvasionConfig,
    rng: &mut StdRng,
    cancel: &AtomicBool,
) -> Result<(Tensor, Vec<u64>, u64), EvasionError> {
    let black =
        |m: &dyn Classifier, rng: &mut StdRng| -> Result<(Tensor, Vec<u64>, u64), EvasionError> {
            let counted = Counted::new(m);
            let (adv, q) = match kind {
                AttackKind::Square => square(&counted, x, y, t, budget, &cfg.square, rng, cancel)?,
                _ => hop_skip_jump(
                    &counted,
                    x,
                    y,
                    t,
                    budget.norm,
                    budget.lo,
                    budget.hi,
                    &cfg.hsj,
                    rng,
                    cancel,
                )?,
            };
            Ok((adv, q, counted.count()))
        };
    if kind.black_box() {
        return match target {
            Target::White(m) => black(&View(m), rng),
            Target::Black(m) => black(m, rng),
        };
    }
    let Target::White(m) = target else {
        return Err(EvasionError::Invalid(format!(
            "attack '{}' needs gradients",
            kind.name()
        )));
    };
    let cm = Counted::new(m);
    let adv = match kind {
        AttackKind::Fgsm => fgsm(&cm, x, y, t, budget)?,
        AttackKind::Bim => {
            let c = PgdConfig {
                random_start: false,
                restarts: 1,
                ..cfg.pgd.clone()
            };
            pgd(&cm, x, y, t, budget, &c, rng, cancel)?
        }
        AttackKind::Pgd => pgd(&cm, x, y, t, budget, &cfg.pgd, rng, cancel)?,
        AttackKind::CwL2 => carlini_wagner_l2(&cm, x, y, t, budget.lo, budget.hi, &cfg.cw, cancel)?,
        AttackKind::Deepfool => deepfool(
            &cm,
            x,
            budget.norm,
            budget.lo,
            budget.hi,
            &cfg.deepfool,
            cancel,
        )?,
        AttackKind::ApgdCe => apgd(&cm, x, y, ApgdLoss::Ce, budget, &cfg.apgd, rng, cancel)?,
        AttackKind::ApgdDlr => apgd(&cm, x, y, ApgdLoss::Dlr, budget, &cfg.apgd, rng, cancel)?,
        AttackKind::ApgdT => apgd_targeted(&cm, x, y, budget, &cfg.apgd, rng, cancel)?,
        AttackKind::FabT => fab_targeted(&cm, x, y, budget, &cfg.fab, rng, cancel)?,
        AttackKind::Square | AttackKind::HopSkipJump | AttackKind::AutoAttack => {
            return Err(EvasionError::Invalid(format!(
                "attack '{}' cannot run on a single batch",
                kind.name()
            )))
        }
    };
    Ok((adv, vec![0; x.batch()], cm.count()))
}
