//! End-to-end membership runs on a slice of the bundled 8x8 digits.

use super::*;
use crate::context::AttackContext;
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;

/// Target data without a population sample (the offline attacks' own).
fn no_population<'a>(x: &'a Tensor, y: &'a [usize], member: &'a [bool]) -> MembershipData<'a> {
    MembershipData {
        x,
        y,
        member,
        population: None,
    }
}

fn digits(n: usize) -> (Tensor, Vec<usize>) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../aisec-model/tests/fixtures/digits"
    );
    let x = aisec_model::data::npy::read_npy(format!("{dir}/x.npy"))
        .unwrap()
        .to_tensor();
    let y = aisec_model::data::npy::read_npy(format!("{dir}/y.npy"))
        .unwrap()
        .to_labels()
        .unwrap();
    let idx: Vec<usize> = (0..n).collect();
    let mut x = gather(&x, &idx);
    x.data.iter_mut().for_each(|v| *v /= 16.0);
    (x, y[..n].to_vec())
}

fn trainer(epochs: usize) -> SpecTrainer {
    SpecTrainer {
        spec: ArchSpec::parse(
            r#"{"input": [1, 8, 8], "layers": [{"type": "flatten"},
               {"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense", "units": 10}]}"#,
        )
        .unwrap(),
        epochs,
        batch_size: 16,
        optimizer: Optimizer::adam(0.01),
    }
}

#[test]
fn an_overfit_model_leaks_more_than_an_untrained_one() {
    let (x, y) = digits(160);
    // Members: the first half. The target memorises them.
    let member: Vec<bool> = (0..160).map(|i| i < 80).collect();
    let tr = trainer(20);
    let train = shadow::subset(&x, &y, &member).unwrap();
    let overfit = tr.fit(&train, 7).unwrap();
    let untrained = aisec_model::OnnxModel::from_spec(&tr.spec, 7).unwrap();
    let cfg = MembershipConfig {
        shadows: 4,
        bootstrap: 50,
        seed: 3,
        ..MembershipConfig::default()
    };
    let ctx = AttackContext::silent();
    let data = no_population(&x, &y, &member);
    let run = |m: &dyn Classifier, shadows: usize| {
        let cfg = MembershipConfig {
            shadows,
            ..cfg.clone()
        };
        run_membership(m, &data, Some(&tr), &cfg, &ctx).unwrap()
    };
    let leaky = run(&overfit, 4);
    let blank = run(&untrained, 2);
    assert_eq!(leaky.queries, 160);
    assert_eq!(leaky.shadows, 4);
    assert_eq!(leaky.attacks.len(), 3);
    assert!(leaky.member_accuracy > leaky.non_member_accuracy);
    let auc = |r: &MembershipReport, a: &str| {
        r.attacks
            .iter()
            .find(|x| x.attack == a)
            .unwrap()
            .metrics
            .auc
    };
    for a in ["loss", "lira-online", "lira-offline"] {
        assert!(auc(&leaky, a) > 0.6, "{a}: {}", auc(&leaky, a));
        assert!(
            auc(&leaky, a) > auc(&blank, a) + 0.1,
            "{a}: {} vs {}",
            auc(&leaky, a),
            auc(&blank, a)
        );
    }
    // The findings carry the numbers and the taxonomy.
    let f = leaky.findings("target.onnx");
    assert_eq!(f.len(), 3);
    assert!(f[0].atlas.contains(&"AML.T0024.000".to_string()));
    assert!(f[0].metrics.contains_key("tpr_at_0.1pct_fpr"));
    let j = leaky.scores_json();
    assert_eq!(j["shadows"]["keep"].as_array().unwrap().len(), 4);
}

#[test]
fn loss_only_needs_no_shadows_and_counts_augmented_queries() {
    let (x, y) = digits(40);
    let member: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
    let m = aisec_model::OnnxModel::from_spec(&trainer(1).spec, 1).unwrap();
    let ctx = AttackContext::silent();
    let cfg = MembershipConfig {
        attacks: vec![MiaAttack::Loss],
        augments: vec![Augment::Identity, Augment::HorizontalFlip],
        bootstrap: 10,
        ..MembershipConfig::default()
    };
    let data = no_population(&x, &y, &member);
    let r = run_membership(&m, &data, None, &cfg, &ctx).unwrap();
    // Augmentations are only queried for LiRA.
    assert_eq!(r.queries, 40);
    assert_eq!(r.shadows, 0);
    assert!(r.complete && !r.cancelled && r.not_run.is_empty());
    // LiRA without a trainer, one shadow, or no non-members: clear errors.
    let lira = MembershipConfig {
        attacks: vec![MiaAttack::LiraOnline],
        ..cfg.clone()
    };
    assert!(run_membership(&m, &data, None, &lira, &ctx).is_err());
    let one = MembershipConfig { shadows: 1, ..lira };
    assert!(run_membership(&m, &data, Some(&trainer(1)), &one, &ctx).is_err());
    let all_members = MembershipData {
        member: &[true; 40],
        ..data
    };
    assert!(run_membership(&m, &all_members, None, &cfg, &ctx).is_err());
    let budget = AttackContext::silent().with_query_budget(Some(10));
    assert!(run_membership(&m, &data, None, &cfg, &budget).is_err());
}

#[test]
fn cancelled_runs_return_partial_reports_marked_incomplete() {
    let (x, y) = digits(40);
    let member: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
    let m = aisec_model::OnnxModel::from_spec(&trainer(1).spec, 1).unwrap();
    let data = no_population(&x, &y, &member);
    let cfg = MembershipConfig {
        shadows: 4,
        bootstrap: 10,
        batch_size: 8,
        ..MembershipConfig::default()
    };
    // Cancelled before the shadows: the loss attack is scored, LiRA is not.
    let cancel = aisec_core::run::Cancel::new();
    let ctx = AttackContext::new(aisec_core::run::RunContext {
        cancel: cancel.clone(),
        progress: std::sync::Arc::new(CancelAt(cancel, "shadow models")),
    });
    let r = run_membership(&m, &data, Some(&trainer(1)), &cfg, &ctx).unwrap();
    assert!(!r.complete && r.cancelled);
    assert_eq!(r.shadows, 0);
    assert_eq!(
        r.attacks
            .iter()
            .map(|a| a.attack.as_str())
            .collect::<Vec<_>>(),
        ["loss"]
    );
    assert_eq!(r.not_run, ["lira-online", "lira-offline"]);
    assert!(r.attacks[0].metrics.auc.is_finite());
    let f = r.findings("m");
    assert_eq!(f.len(), 1);
    assert!(f[0].evidence.contains("interrupted"));
    // Cancelled while querying the target: nothing to score, still a report.
    let ctx = AttackContext::silent();
    ctx.cancel();
    let r = run_membership(&m, &data, Some(&trainer(1)), &cfg, &ctx).unwrap();
    assert!(!r.complete && r.attacks.is_empty() && r.queries <= 8);
    assert_eq!(r.not_run.len(), 3);
}

/// Raises the cancel flag when a phase of the given name starts.
struct CancelAt(aisec_core::run::Cancel, &'static str);

impl aisec_core::run::Progress for CancelAt {
    fn phase(&self, name: &str, _total: Option<u64>) {
        if name == self.1 {
            self.0.cancel();
        }
    }
    fn advance(&self, _n: u64) {}
}

/// Scores every input the same: nothing can be inferred from it.
struct Flat;

impl Classifier for Flat {
    fn input_shape(&self) -> &[usize] {
        &[1, 8, 8]
    }
    fn num_classes(&self) -> usize {
        10
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(Tensor::zeros(vec![x.batch(), 10]))
    }
}

#[test]
fn a_model_that_leaks_nothing_gets_a_finding_that_says_so() {
    let (x, y) = digits(40);
    let member: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
    let data = no_population(&x, &y, &member);
    let cfg = MembershipConfig {
        attacks: vec![MiaAttack::Loss],
        bootstrap: 20,
        ..MembershipConfig::default()
    };
    let r = run_membership(&Flat, &data, None, &cfg, &AttackContext::silent()).unwrap();
    assert!((r.attacks[0].metrics.auc - 0.5).abs() < 1e-12);
    let f = r.findings("flat");
    assert_eq!(f[0].severity, aisec_core::Severity::Info);
    assert_eq!(f[0].title, findings::HELD);
    assert!(!f[0].title.contains("can be inferred"));
}

#[test]
fn population_duplicates_are_not_counted_twice() {
    let (x, y) = digits(30);
    let idx: Vec<usize> = (10..30).collect();
    let pop = Dataset::new(gather(&x, &idx), idx.iter().map(|&i| y[i]).collect()).unwrap();
    let first: Vec<usize> = (0..20).collect();
    let pool = shadow_pool(&gather(&x, &first), &y[..20], Some(&pop)).unwrap();
    assert_eq!(pool.len(), 30);
}
