//! Data poisoning and backdoor attacks: a poisoned copy of a data set, the
//! ground truth of what was poisoned ([`Manifest`]), and the measurement
//! of a model trained on it ([`evaluate_backdoor`]: clean accuracy, attack
//! success rate, and accuracy on triggered inputs with their true label,
//! the three columns of BackdoorBench; Wu et al. 2022, "BackdoorBench: A
//! Comprehensive Benchmark of Backdoor Learning").
//!
//! Attacks ([`PoisonKind`]):
//! * BadNets (Gu et al. 2017), all-to-one and all-to-all: a patch trigger
//!   on a fraction of the data, relabelled to the target class (or to
//!   `y + 1`).
//! * Blended (Chen et al. 2017): a noise key blended in at ratio `alpha`.
//! * WaNet (Nguyen & Tran 2021): an imperceptible warp (without the
//!   paper's "noise mode" cross examples).
//! * Clean-label (Turner, Tsipras & Madry 2019, "Label-Consistent Backdoor
//!   Attacks"): only target-class examples are poisoned and labels are
//!   kept; each is first made hard to classify with aisec's own PGD on a
//!   surrogate model (so the model leans on the trigger to fit it), then
//!   the patch is stamped on.
//!
//! Poisoned rows are chosen with a seeded shuffle among the eligible rows:
//! rows not already of the target class for all-to-one (as BackdoorBench
//! does), any row for all-to-all, target-class rows for clean-label.

pub mod trigger;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use aisec_core::{Finding, Location, Severity};
use aisec_model::data::Dataset;
use aisec_model::{Classifier, Differentiable, ModelError};

use crate::context::AttackContext;
use crate::evasion::{pgd, PgdConfig};
use crate::util::{gather, Budget, Norm};
pub use trigger::{ImageShape, LabelMode, Manifest, Trigger, TriggerError};

/// Errors of the poisoning attacks.
#[derive(Debug, thiserror::Error)]
pub enum PoisonError {
    /// Settings or data do not fit.
    #[error("poison: {0}")]
    Invalid(String),
    /// A trigger could not be built or applied.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
    /// The surrogate model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The poisoning attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoisonKind {
    /// BadNets patch, all-to-one.
    Badnets,
    /// BadNets patch, all-to-all (`y -> y + 1`).
    BadnetsAllToAll,
    /// Blended noise key.
    Blended,
    /// WaNet warping.
    Wanet,
    /// Label-consistent (clean-label) patch after PGD.
    CleanLabel,
}

impl PoisonKind {
    /// Every attack, in the order of the help text.
    pub const ALL: [PoisonKind; 5] = [
        PoisonKind::Badnets,
        PoisonKind::BadnetsAllToAll,
        PoisonKind::Blended,
        PoisonKind::Wanet,
        PoisonKind::CleanLabel,
    ];

    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            PoisonKind::Badnets => "badnets",
            PoisonKind::BadnetsAllToAll => "badnets-all-to-all",
            PoisonKind::Blended => "blended",
            PoisonKind::Wanet => "wanet",
            PoisonKind::CleanLabel => "clean-label",
        }
    }

    /// Parses [`name`](PoisonKind::name).
    pub fn parse(s: &str) -> Result<PoisonKind, PoisonError> {
        PoisonKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                PoisonError::Invalid(format!(
                    "unknown attack '{s}' (expected one of {})",
                    PoisonKind::ALL.map(|k| k.name()).join(", ")
                ))
            })
    }

    /// How the attack changes labels.
    pub fn label_mode(self) -> LabelMode {
        match self {
            PoisonKind::BadnetsAllToAll => LabelMode::AllToAll,
            PoisonKind::CleanLabel => LabelMode::Clean,
            _ => LabelMode::AllToOne,
        }
    }
}

/// Settings of a poisoning run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoisonConfig {
    /// The attack.
    pub kind: PoisonKind,
    /// Fraction of the data set to poison, in `(0, 1)`.
    pub rate: f32,
    /// Target class (all-to-one, clean-label).
    pub target: usize,
    /// Seed of the row choice, the blend key and the warp field.
    pub seed: u64,
    /// Lowest valid input value.
    pub lo: f32,
    /// Highest valid input value.
    pub hi: f32,
    /// Side of the BadNets / clean-label patch in pixels.
    pub patch_size: usize,
    /// Blend ratio of Blended (BackdoorBench uses 0.2).
    pub alpha: f32,
    /// Control grid size of WaNet (paper: 4).
    pub wanet_k: usize,
    /// Warping strength of WaNet (paper: 0.5).
    pub wanet_s: f32,
    /// L-inf budget of the clean-label PGD step, in input units.
    pub clean_label_eps: f32,
    /// PGD iterations of the clean-label step.
    pub clean_label_steps: usize,
}

impl Default for PoisonConfig {
    fn default() -> Self {
        PoisonConfig {
            kind: PoisonKind::Badnets,
            rate: 0.1,
            target: 0,
            seed: 0,
            lo: 0.0,
            hi: 1.0,
            patch_size: 3,
            alpha: 0.2,
            wanet_k: 4,
            wanet_s: 0.5,
            clean_label_eps: 8.0 / 255.0,
            clean_label_steps: 10,
        }
    }
}

/// A poisoned data set with its ground truth.
#[derive(Debug, Clone)]
pub struct Poisoned {
    /// The poisoned copy (same order and size as the input).
    pub data: Dataset,
    /// What was poisoned, and the trigger.
    pub manifest: Manifest,
}

/// Builds the trigger `cfg` asks for, for examples of layout `shape`.
pub fn make_trigger(cfg: &PoisonConfig, shape: ImageShape) -> Result<Trigger, PoisonError> {
    let size = cfg.patch_size;
    Ok(match cfg.kind {
        PoisonKind::Badnets | PoisonKind::BadnetsAllToAll | PoisonKind::CleanLabel => {
            Trigger::badnets(shape, size, cfg.lo, cfg.hi)?
        }
        PoisonKind::Blended => Trigger::blended(shape, cfg.alpha, cfg.seed, cfg.lo, cfg.hi)?,
        PoisonKind::Wanet => Trigger::wanet(shape, cfg.wanet_k, cfg.wanet_s, cfg.seed)?,
    })
}

/// Poisons a copy of `data` (labels in `0..classes`). The clean-label
/// attack needs a `surrogate` model (trained on clean data) for its PGD
/// step; the others ignore it.
pub fn poison_dataset(
    ctx: &mut AttackContext,
    data: &Dataset,
    classes: usize,
    cfg: &PoisonConfig,
    surrogate: Option<&dyn Differentiable>,
) -> Result<Poisoned, PoisonError> {
    // Checked before the trigger is built (the blend key draws in lo..=hi).
    if cfg.lo.partial_cmp(&cfg.hi) != Some(std::cmp::Ordering::Less) {
        return Err(PoisonError::Invalid("lo must be below hi".into()));
    }
    let shape = ImageShape::from_example_shape(&data.x.shape[1..])?;
    let trigger = make_trigger(cfg, shape)?;
    poison_with_trigger(ctx, data, classes, cfg, trigger, surrogate)
}

/// [`poison_dataset`] with a trigger the caller built (e.g. a
/// [`Trigger::solid_patch`] or a patch of its own) instead of the one
/// `cfg.kind` names; `cfg.kind` still decides the label mode, the rows
/// eligible and the clean-label PGD step. The trigger's layout must be the
/// data's.
pub fn poison_with_trigger(
    ctx: &mut AttackContext,
    data: &Dataset,
    classes: usize,
    cfg: &PoisonConfig,
    trigger: Trigger,
    surrogate: Option<&dyn Differentiable>,
) -> Result<Poisoned, PoisonError> {
    let n = data.len();
    if !(cfg.rate > 0.0 && cfg.rate < 1.0) {
        return Err(PoisonError::Invalid(format!(
            "poison rate {} is not in (0, 1)",
            cfg.rate
        )));
    }
    if cfg.target >= classes || classes < 2 {
        return Err(PoisonError::Invalid(format!(
            "target class {} is not one of {classes} classes",
            cfg.target
        )));
    }
    if let Some(&bad) = data.y.iter().find(|&&y| y >= classes) {
        return Err(PoisonError::Invalid(format!(
            "label {bad} is not one of {classes} classes"
        )));
    }
    if cfg.lo.partial_cmp(&cfg.hi) != Some(std::cmp::Ordering::Less) {
        return Err(PoisonError::Invalid("lo must be below hi".into()));
    }
    let shape = ImageShape::from_example_shape(&data.x.shape[1..])?;
    if trigger.shape().len() != shape.len() {
        return Err(PoisonError::Invalid(format!(
            "the trigger is for {:?} examples, the data has {shape:?}",
            trigger.shape()
        )));
    }
    let mode = cfg.kind.label_mode();
    let mut eligible: Vec<usize> = (0..n)
        .filter(|&i| match mode {
            LabelMode::AllToOne => data.y[i] != cfg.target,
            LabelMode::AllToAll => true,
            LabelMode::Clean => data.y[i] == cfg.target,
        })
        .collect();
    let want = ((n as f64 * f64::from(cfg.rate)).round() as usize).max(1);
    if eligible.is_empty() {
        return Err(PoisonError::Invalid(
            "no example is eligible for poisoning (clean-label needs target-class examples)".into(),
        ));
    }
    if want > eligible.len() {
        return Err(PoisonError::Invalid(format!(
            "{want} examples to poison but only {} are eligible ({})",
            eligible.len(),
            match mode {
                LabelMode::Clean => "clean-label poisons target-class examples only",
                _ => "lower the rate",
            }
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed ^ 0x706f_6973_6f6e);
    eligible.shuffle(&mut rng);
    let mut idx: Vec<usize> = eligible[..want].to_vec();
    idx.sort_unstable();

    let mut out = data.clone();
    if cfg.kind == PoisonKind::CleanLabel {
        let model = surrogate.ok_or_else(|| {
            PoisonError::Invalid("the clean-label attack needs a surrogate model".into())
        })?;
        let budget = Budget {
            norm: Norm::Linf,
            eps: cfg.clean_label_eps,
            lo: cfg.lo,
            hi: cfg.hi,
        };
        let pcfg = PgdConfig {
            steps: cfg.clean_label_steps.max(1),
            ..PgdConfig::default()
        };
        let x = gather(&data.x, &idx);
        let y: Vec<usize> = idx.iter().map(|&i| data.y[i]).collect();
        let adv = pgd(ctx, model, &x, &y, None, &budget, &pcfg)?;
        for (k, &i) in idx.iter().enumerate() {
            out.x.row_mut(i).copy_from_slice(adv.row(k));
        }
    }
    trigger.apply_rows(&mut out.x, &idx)?;
    for &i in &idx {
        for v in out.x.row_mut(i) {
            *v = v.clamp(cfg.lo, cfg.hi);
        }
        out.y[i] = mode.attack_label(data.y[i], cfg.target, classes);
    }
    let manifest = Manifest {
        attack: cfg.kind.name().into(),
        examples: n,
        classes,
        target: cfg.target,
        label_mode: mode,
        rate: cfg.rate,
        seed: cfg.seed,
        original_labels: idx.iter().map(|&i| data.y[i]).collect(),
        indices: idx,
        trigger,
    };
    Ok(Poisoned {
        data: out,
        manifest,
    })
}

/// BackdoorBench's three numbers for one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackdoorEval {
    /// Accuracy on the clean test set.
    pub clean_accuracy: f32,
    /// Attack success rate: share of triggered test inputs (whose true
    /// label is not the attack's label) classified as the attack's label.
    pub attack_success_rate: f32,
    /// Share of the same triggered inputs still classified as their true
    /// label (BackdoorBench's "robust accuracy").
    pub poisoned_accuracy: f32,
    /// Clean test examples.
    pub clean_examples: usize,
    /// Triggered test examples ASR is measured on.
    pub triggered_examples: usize,
}

/// Measures a model against a backdoor on a clean test set: the trigger is
/// stamped on every test example whose true label differs from the label
/// the attack wants, as BackdoorBench does.
pub fn evaluate_backdoor(
    model: &dyn Classifier,
    test: &Dataset,
    trigger: &Trigger,
    mode: LabelMode,
    target: usize,
    batch: usize,
) -> Result<BackdoorEval, PoisonError> {
    let classes = model.num_classes();
    let batch = batch.max(1);
    let mut correct = 0usize;
    for b in test.batches(batch) {
        let p = model.predict(&b.x)?;
        correct += p.iter().zip(&b.y).filter(|(a, b)| a == b).count();
    }
    let rows: Vec<usize> = (0..test.len())
        .filter(|&i| mode.attack_label(test.y[i], target, classes) != test.y[i])
        .collect();
    let (mut hit, mut kept) = (0usize, 0usize);
    for chunk in rows.chunks(batch) {
        let mut x = gather(&test.x, chunk);
        let all: Vec<usize> = (0..chunk.len()).collect();
        trigger.apply_rows(&mut x, &all)?;
        let p = model.predict(&x)?;
        for (k, &i) in chunk.iter().enumerate() {
            let y = test.y[i];
            if p[k] == mode.attack_label(y, target, classes) {
                hit += 1;
            }
            if p[k] == y {
                kept += 1;
            }
        }
    }
    let frac = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    Ok(BackdoorEval {
        clean_accuracy: frac(correct, test.len()),
        attack_success_rate: frac(hit, rows.len()),
        poisoned_accuracy: frac(kept, rows.len()),
        clean_examples: test.len(),
        triggered_examples: rows.len(),
    })
}

/// Severity of a backdoored model from its attack success rate: critical
/// at 90 % or more, high at 50 %, medium at 20 %, else info (the backdoor
/// did not take).
pub fn backdoor_severity(asr: f32) -> Severity {
    if asr >= 0.9 {
        Severity::Critical
    } else if asr >= 0.5 {
        Severity::High
    } else if asr >= 0.2 {
        Severity::Medium
    } else {
        Severity::Info
    }
}

/// Title of a backdoored-model finding when the backdoor did not take.
pub const BACKDOOR_FAILED: &str = "Planted backdoor did not take (attack success rate under 20%)";

/// Findings of a poisoning run: the poisoned data (AML.T0020) and, when a
/// victim was trained and measured, the backdoored model (AML.T0018).
pub fn poison_findings(
    manifest: &Manifest,
    data_location: &str,
    model: Option<(&str, &BackdoorEval)>,
) -> Vec<Finding> {
    let mut out = vec![crate::rules::POISONED_DATA
        .finding(
            Location::path(data_location),
            format!(
                "{} of {} training examples poisoned with {} ({} trigger, target class {}, {})",
                manifest.indices.len(),
                manifest.examples,
                manifest.attack,
                manifest.trigger.kind(),
                manifest.target,
                match manifest.label_mode {
                    LabelMode::AllToOne => "relabelled all-to-one",
                    LabelMode::AllToAll => "relabelled all-to-all",
                    LabelMode::Clean => "labels unchanged",
                }
            ),
        )
        .metric("poisoned", manifest.indices.len() as u64)
        .metric("examples", manifest.examples as u64)
        .metric("rate", f64::from(manifest.rate))];
    if let Some((loc, e)) = model {
        let sev = backdoor_severity(e.attack_success_rate);
        let mut f = crate::rules::BACKDOORED_MODEL
            .finding(
                Location::path(loc),
                format!(
                    "trained on the poisoned data: clean accuracy {:.1}%, attack success rate {:.1}% \
                     on {} triggered test inputs, {:.1}% of them still classified correctly",
                    100.0 * e.clean_accuracy,
                    100.0 * e.attack_success_rate,
                    e.triggered_examples,
                    100.0 * e.poisoned_accuracy
                ),
            )
            .severity(sev)
            .metric("clean_accuracy", f64::from(e.clean_accuracy))
            .metric("attack_success_rate", f64::from(e.attack_success_rate))
            .metric("poisoned_accuracy", f64::from(e.poisoned_accuracy));
        if sev == Severity::Info {
            f = f.title(BACKDOOR_FAILED);
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisec_model::spec::ArchSpec;
    use aisec_model::{OnnxModel, Tensor};

    /// Two classes of 4x4 images: class 0 dark on top, class 1 dark below.
    fn toy(n: usize, seed: u64) -> Dataset {
        use rand::Rng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = i % 2;
            for r in 0..4 {
                for _ in 0..4 {
                    let base = if (r < 2) == (c == 0) { 0.8 } else { 0.2 };
                    x.push((base + rng.gen_range(-0.1..0.1f32)).clamp(0.0, 1.0));
                }
            }
            y.push(c);
        }
        Dataset::new(Tensor::new(vec![n, 1, 4, 4], x).unwrap(), y).unwrap()
    }

    #[test]
    fn badnets_relabels_exactly_the_chosen_non_target_rows() {
        let d = toy(100, 1);
        let cfg = PoisonConfig {
            rate: 0.1,
            target: 0,
            patch_size: 2,
            ..PoisonConfig::default()
        };
        let p = poison_dataset(&mut AttackContext::silent(), &d, 2, &cfg, None).unwrap();
        let m = &p.manifest;
        assert_eq!(m.indices.len(), 10);
        assert!(m.original_labels.iter().all(|&y| y == 1));
        for i in 0..100 {
            if m.indices.contains(&i) {
                assert_eq!(p.data.y[i], 0);
                assert_ne!(p.data.x.row(i), d.x.row(i));
            } else {
                assert_eq!(p.data.y[i], d.y[i]);
                assert_eq!(p.data.x.row(i), d.x.row(i));
            }
        }
        // Same seed, same rows; another seed, other rows.
        let q = poison_dataset(&mut AttackContext::silent(), &d, 2, &cfg, None).unwrap();
        assert_eq!(q.manifest.indices, m.indices);
        let cfg2 = PoisonConfig {
            seed: 9,
            ..cfg.clone()
        };
        let r = poison_dataset(&mut AttackContext::silent(), &d, 2, &cfg2, None).unwrap();
        assert_ne!(r.manifest.indices, m.indices);
    }

    #[test]
    fn a_caller_built_trigger_is_stamped_and_recorded() {
        let d = toy(60, 2);
        let shape = ImageShape { c: 1, h: 4, w: 4 };
        let t = Trigger::solid_patch(shape, 2, 1.0).unwrap();
        let cfg = PoisonConfig {
            rate: 0.2,
            target: 1,
            ..PoisonConfig::default()
        };
        let p = poison_with_trigger(&mut AttackContext::silent(), &d, 2, &cfg, t.clone(), None)
            .unwrap();
        assert_eq!(p.manifest.trigger, t);
        assert_eq!(p.manifest.indices.len(), 12);
        for &i in &p.manifest.indices {
            assert_eq!(p.data.y[i], 1);
            let r = p.data.x.row(i);
            // The bottom-right 2x2 is white, the rest untouched.
            for (k, v) in r.iter().enumerate() {
                let (row, col) = (k / 4, k % 4);
                if row >= 2 && col >= 2 {
                    assert_eq!(*v, 1.0);
                } else {
                    assert_eq!(*v, d.x.row(i)[k]);
                }
            }
        }
        // A trigger for another layout is refused, not applied.
        let wrong = Trigger::solid_patch(ImageShape { c: 1, h: 5, w: 5 }, 2, 1.0).unwrap();
        let e = poison_with_trigger(&mut AttackContext::silent(), &d, 2, &cfg, wrong, None);
        assert!(matches!(e, Err(PoisonError::Invalid(_))));
        assert!(Trigger::solid_patch(shape, 5, 1.0).is_err());
        assert!(Trigger::solid_patch(shape, 2, f32::NAN).is_err());
    }

    #[test]
    fn all_to_all_and_bad_settings() {
        let d = toy(40, 2);
        let cfg = PoisonConfig {
            kind: PoisonKind::BadnetsAllToAll,
            rate: 0.25,
            patch_size: 2,
            ..PoisonConfig::default()
        };
        let p = poison_dataset(&mut AttackContext::silent(), &d, 2, &cfg, None).unwrap();
        for (&i, &y0) in p.manifest.indices.iter().zip(&p.manifest.original_labels) {
            assert_eq!(p.data.y[i], (y0 + 1) % 2);
        }
        for bad in [
            PoisonConfig {
                rate: 0.0,
                ..cfg.clone()
            },
            PoisonConfig {
                rate: 1.0,
                ..cfg.clone()
            },
            PoisonConfig {
                target: 2,
                ..cfg.clone()
            },
            PoisonConfig {
                kind: PoisonKind::Badnets,
                rate: 0.9,
                ..cfg.clone()
            },
            PoisonConfig {
                patch_size: 9,
                ..cfg.clone()
            },
        ] {
            assert!(poison_dataset(&mut AttackContext::silent(), &d, 2, &bad, None).is_err());
        }
        // Clean-label without a surrogate is an error, not a silent no-op.
        let cl = PoisonConfig {
            kind: PoisonKind::CleanLabel,
            ..cfg
        };
        assert!(poison_dataset(&mut AttackContext::silent(), &d, 2, &cl, None).is_err());
        assert_eq!(PoisonKind::parse("wanet").unwrap(), PoisonKind::Wanet);
        assert!(PoisonKind::parse("nope").is_err());
    }

    #[test]
    fn clean_label_keeps_labels_perturbs_within_budget_and_stamps_the_patch() {
        let d = toy(60, 3);
        let spec = ArchSpec::parse(
            r#"{"input": [1, 4, 4], "layers": [{"type": "flatten"}, {"type": "dense", "units": 2}]}"#,
        )
        .unwrap();
        let m = OnnxModel::from_spec(&spec, 0).unwrap();
        let cfg = PoisonConfig {
            kind: PoisonKind::CleanLabel,
            rate: 0.2,
            target: 1,
            patch_size: 2,
            clean_label_eps: 0.05,
            clean_label_steps: 3,
            ..PoisonConfig::default()
        };
        let p = poison_dataset(&mut AttackContext::silent(), &d, 2, &cfg, Some(&m)).unwrap();
        assert_eq!(p.manifest.indices.len(), 12);
        assert_eq!(p.data.y, d.y);
        let Trigger::Patch { mask, pattern, .. } = &p.manifest.trigger else {
            panic!("clean-label uses a patch")
        };
        for &i in &p.manifest.indices {
            assert_eq!(d.y[i], 1);
            for (k, (a, b)) in p.data.x.row(i).iter().zip(d.x.row(i)).enumerate() {
                if mask[k] > 0.0 {
                    assert_eq!(*a, pattern[k]);
                } else {
                    assert!((a - b).abs() <= 0.05 + 1e-6);
                }
            }
        }
    }

    #[test]
    fn evaluation_counts_asr_on_non_target_rows() {
        // A "model" that answers the target class exactly when the patch
        // corner is bright: ASR 1 on triggered rows, clean accuracy from
        // the toy rule.
        struct Cheat;
        impl Classifier for Cheat {
            fn input_shape(&self) -> &[usize] {
                &[1, 4, 4]
            }
            fn num_classes(&self) -> usize {
                2
            }
            fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
                let mut z = Vec::new();
                for i in 0..x.batch() {
                    let r = x.row(i);
                    let top: f32 = r[..8].iter().sum();
                    let c = if r[4 + 1] == 1.0 && r[4 + 2] == 0.0 {
                        0
                    } else {
                        usize::from(top < 4.0)
                    };
                    z.extend(if c == 0 { [1.0, 0.0] } else { [0.0, 1.0] });
                }
                Tensor::new(vec![x.batch(), 2], z)
            }
        }
        let d = toy(20, 4);
        let t = Trigger::badnets(ImageShape { c: 1, h: 4, w: 4 }, 2, 0.0, 1.0).unwrap();
        let e = evaluate_backdoor(&Cheat, &d, &t, LabelMode::AllToOne, 0, 7).unwrap();
        assert_eq!(e.clean_accuracy, 1.0);
        assert_eq!(e.triggered_examples, 10);
        assert_eq!(e.attack_success_rate, 1.0);
        assert_eq!(e.poisoned_accuracy, 0.0);
        let f = poison_findings(
            &Manifest {
                attack: "badnets".into(),
                examples: 20,
                classes: 2,
                target: 0,
                label_mode: LabelMode::AllToOne,
                rate: 0.1,
                seed: 0,
                indices: vec![1, 3],
                original_labels: vec![1, 1],
                trigger: t,
            },
            "d.npz",
            Some(("m.onnx", &e)),
        );
        assert_eq!(f.len(), 2);
        assert!(f[0].atlas.contains(&"AML.T0020".to_string()));
        assert!(f[1].atlas.contains(&"AML.T0018".to_string()));
        assert_eq!(f[1].severity, Severity::Critical);
        assert_eq!(backdoor_severity(0.1), Severity::Info);
    }
}
