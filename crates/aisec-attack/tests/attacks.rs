//! End-to-end tests of every attack against a small model with exact gradients.

#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)] // Tests may unwrap and print.
#![allow(clippy::needless_range_loop)]

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aisec_attack::evasion::{
    deepfool, hop_skip_jump, square_linf, DeepFoolConfig, HsjConfig, SquareConfig,
};
use aisec_attack::util::{diff, l2};
use aisec_attack::{
    run_evasion, run_evasion_blackbox, AttackContext, AttackKind, Budget, EvasionConfig,
    EvasionReport, Norm,
};
use aisec_core::run::{Cancel, Progress, RunContext};
use aisec_model::blackbox::QueryCounter;
use aisec_model::{Classifier, Differentiable, Loss, Tensor};
use common::{loss_and_dz, setup, C};

fn cfg(attacks: Vec<AttackKind>, norm: Norm, eps: f32) -> EvasionConfig {
    let mut c = EvasionConfig {
        attacks,
        norm,
        eps,
        seed: 7,
        batch_size: 16,
        ..EvasionConfig::default()
    };
    c.pgd.steps = 20;
    c.apgd.steps = 20;
    c.fab.steps = 20;
    c.cw.steps = 60;
    c.square.max_queries = 300;
    c.hsj.max_queries = 1500;
    c
}

fn run(c: &EvasionConfig, relu: bool, n: usize) -> EvasionReport {
    let (net, x, y) = setup(relu, n, 1);
    run_evasion(&net, &x, &y, c, &AttackContext::silent()).unwrap()
}

fn result<'a>(r: &'a EvasionReport, name: &str) -> &'a aisec_attack::AttackResult {
    r.attacks.iter().find(|a| a.attack == name).unwrap()
}

#[test]
fn gradients_match_finite_differences() {
    for relu in [false, true] {
        let (net, x, y) = setup(relu, 4, 3);
        let targets: Vec<usize> = y.iter().map(|v| (v + 1) % C).collect();
        let losses = [
            Loss::CrossEntropy { labels: y.clone() },
            Loss::Dlr { labels: y.clone() },
            Loss::DlrTargeted {
                labels: y.clone(),
                targets: targets.clone(),
            },
            Loss::CwMargin {
                labels: y.clone(),
                kappa: 100.0,
            },
            Loss::Logit {
                classes: targets.clone(),
            },
        ];
        for loss in &losses {
            let (l, g, _) = net.loss_grad(&x, loss).unwrap();
            for i in 0..4 {
                for j in [0usize, 5, 11] {
                    let h = 1e-3f32;
                    let mut xp = x.clone();
                    xp.row_mut(i)[j] += h;
                    let mut xm = x.clone();
                    xm.row_mut(i)[j] -= h;
                    let zp = net.logits(&xp).unwrap();
                    let zm = net.logits(&xm).unwrap();
                    let fd = (loss_and_dz(zp.row(i), loss, i).0
                        - loss_and_dz(zm.row(i), loss, i).0)
                        / (2.0 * h);
                    let an = g.row(i)[j];
                    assert!(
                        (fd - an).abs() <= 2e-2 * (1.0 + an.abs()),
                        "{loss:?} row {i} coord {j}: fd {fd} vs {an}"
                    );
                }
                assert!(l[i].is_finite());
            }
        }
    }
}

#[test]
fn fgsm_and_pgd_reduce_accuracy_inside_the_ball() {
    for (norm, eps) in [(Norm::Linf, 0.2f32), (Norm::L2, 0.6)] {
        let c = cfg(
            vec![AttackKind::Fgsm, AttackKind::Bim, AttackKind::Pgd],
            norm,
            eps,
        );
        let r = run(&c, false, 60);
        assert!(r.clean_accuracy > 0.95, "clean {}", r.clean_accuracy);
        for a in &r.attacks {
            assert!(
                a.robust_accuracy < r.clean_accuracy - 0.3,
                "{} {norm:?}: {}",
                a.attack,
                a.robust_accuracy
            );
            for i in 0..r.n {
                let d = diff(a.adversarial.row(i), r.clean.row(i));
                assert!(
                    norm.of(&d) <= eps * 1.0001 + 1e-6,
                    "{} left the ball",
                    a.attack
                );
                assert!(a.adversarial.row(i).iter().all(|v| (0.0..=1.0).contains(v)));
            }
        }
        assert!(result(&r, "pgd").robust_accuracy <= result(&r, "fgsm").robust_accuracy + 1e-9);
        assert!(
            r.worst_case_robust_accuracy.unwrap()
                <= r.attacks
                    .iter()
                    .map(|a| a.robust_accuracy)
                    .fold(1.0, f64::min)
        );
    }
}

#[test]
fn targeted_attacks_hit_the_target() {
    let mut c = cfg(vec![AttackKind::Pgd, AttackKind::CwL2], Norm::Linf, 0.4);
    c.target = Some(3);
    c.cw.binary_search_steps = 5;
    let r = run(&c, false, 40);
    for a in &r.attacks {
        assert_eq!(a.target, Some(3));
        let hits = (0..r.n).filter(|&i| a.success[i]).count();
        let eligible = (0..r.n)
            .filter(|&i| r.labels[i] != 3 && r.clean_pred[i] == r.labels[i])
            .count();
        assert!(
            hits as f64 >= 0.9 * eligible as f64,
            "{}: {hits}/{eligible}",
            a.attack
        );
        for i in 0..r.n {
            if a.success[i] {
                assert_eq!(a.adv_pred[i], 3);
            }
        }
    }
}

#[test]
fn carlini_wagner_finds_smaller_l2_than_pgd() {
    let c = cfg(vec![AttackKind::Pgd, AttackKind::CwL2], Norm::L2, 1.5);
    let r = run(&c, false, 30);
    let pgd = result(&r, "pgd");
    let cw = result(&r, "cw-l2");
    let both: Vec<usize> = (0..r.n)
        .filter(|&i| pgd.success[i] && cw.success[i])
        .collect();
    assert!(both.len() >= 20, "{}", both.len());
    let smaller = both.iter().filter(|&&i| cw.l2[i] < pgd.l2[i]).count();
    assert_eq!(smaller, both.len());
    assert!(cw.median_norm_success.unwrap() < pgd.median_norm_success.unwrap());
}

#[test]
fn deepfool_is_exact_on_a_linear_model() {
    let (net, x, y) = setup(false, 20, 5);
    let cfg = DeepFoolConfig {
        overshoot: 0.0,
        ..DeepFoolConfig::default()
    };
    let adv = deepfool(
        &mut AttackContext::silent(),
        &net,
        &x,
        &Budget {
            norm: Norm::L2,
            eps: 0.0,
            lo: -100.0,
            hi: 100.0,
        },
        &cfg,
    )
    .unwrap();
    let z = net.logits(&x).unwrap();
    for i in 0..20 {
        let k0 = y[i];
        // Closed form: min_k |z_k - z_y| / ||w_k - w_y||.
        let exact = (0..C)
            .filter(|&k| k != k0)
            .map(|k| {
                let w: Vec<f32> = net.w[k]
                    .iter()
                    .zip(&net.w[k0])
                    .map(|(a, b)| a - b)
                    .collect();
                (z.row(i)[k] - z.row(i)[k0]).abs() / l2(&w)
            })
            .fold(f32::INFINITY, f32::min);
        let got = l2(&diff(adv.row(i), x.row(i)));
        assert!(
            (got - exact).abs() <= 1e-3 * exact + 1e-4,
            "example {i}: {got} vs {exact}"
        );
    }
    // With the default overshoot every example crosses the boundary.
    let adv = deepfool(
        &mut AttackContext::silent(),
        &net,
        &x,
        &Budget {
            norm: Norm::L2,
            eps: 0.0,
            lo: -100.0,
            hi: 100.0,
        },
        &DeepFoolConfig::default(),
    )
    .unwrap();
    let pred = net.predict(&adv).unwrap();
    assert!(pred.iter().zip(&y).all(|(p, t)| p != t));
}

#[test]
fn apgd_is_at_least_as_strong_as_pgd() {
    let c = cfg(
        vec![AttackKind::Pgd, AttackKind::ApgdCe, AttackKind::ApgdDlr],
        Norm::Linf,
        0.12,
    );
    let r = run(&c, true, 60);
    let pgd = result(&r, "pgd").robust_accuracy;
    assert!(
        pgd > 0.0 && pgd < r.clean_accuracy,
        "budget should be informative: {pgd}"
    );
    for name in ["apgd-ce", "apgd-dlr"] {
        let a = result(&r, name).robust_accuracy;
        assert!(a <= pgd + 1.0 / r.n as f64, "{name} {a} vs pgd {pgd}");
    }
}

#[test]
fn autoattack_worst_case_is_below_each_component() {
    let c = cfg(
        vec![
            AttackKind::ApgdCe,
            AttackKind::ApgdT,
            AttackKind::FabT,
            AttackKind::Square,
            AttackKind::AutoAttack,
        ],
        Norm::Linf,
        0.12,
    );
    let r = run(&c, false, 40);
    let aa = result(&r, "autoattack").robust_accuracy;
    assert!(aa <= result(&r, "apgd-ce").robust_accuracy);
    for name in ["apgd-t", "fab-t", "square"] {
        assert!(
            aa <= result(&r, name).robust_accuracy + 2.0 / r.n as f64,
            "{name}"
        );
    }
    assert!(r.worst_case_robust_accuracy.unwrap() <= aa);
    // FAB-T is a minimal-norm attack: its successes lie inside the budget.
    let fab = result(&r, "fab-t");
    for i in 0..r.n {
        if fab.success[i] {
            assert!(fab.linf[i] <= 0.12 * 1.0001 + 1e-6);
        }
    }
    assert!(fab.success.iter().any(|&s| s));
}

#[test]
fn square_and_hopskipjump_count_queries_exactly() {
    let (net, x, y) = setup(false, 10, 2);
    let counter = QueryCounter::new(&net);
    let budget = Budget {
        norm: Norm::Linf,
        eps: 0.25,
        lo: 0.0,
        hi: 1.0,
    };
    let sq = SquareConfig {
        max_queries: 200,
        p_init: 0.8,
    };
    let mut ctx = AttackContext::silent().with_seed(1);
    let (adv, q) = square_linf(&mut ctx, &counter, &x, &y, None, &budget, &sq).unwrap();
    assert_eq!(counter.queries(), q.iter().sum::<u64>());
    assert!(q.iter().all(|&v| (1..=200).contains(&v)));
    let pred = net.predict(&adv).unwrap();
    let fooled = pred.iter().zip(&y).filter(|(p, t)| p != t).count();
    assert!(fooled >= 8, "square fooled {fooled}/10");
    for i in 0..10 {
        assert!(budget.admits(&diff(adv.row(i), x.row(i))));
    }

    let counter = QueryCounter::new(&net);
    let hsj = HsjConfig {
        max_queries: 800,
        ..HsjConfig::default()
    };
    let l2_range = Budget {
        norm: Norm::L2,
        eps: 0.0,
        lo: 0.0,
        hi: 1.0,
    };
    let (adv, q) = hop_skip_jump(&mut ctx, &counter, &x, &y, None, &l2_range, &hsj).unwrap();
    assert_eq!(counter.queries(), q.iter().sum::<u64>());
    assert!(q.iter().all(|&v| v <= 800));
    let pred = net.predict(&adv).unwrap();
    assert!(
        pred.iter().zip(&y).all(|(p, t)| p != t),
        "hsj must return adversarial points"
    );
    // Its perturbations approach the minimal one (DeepFool is exact here).
    let df = deepfool(
        &mut AttackContext::silent(),
        &net,
        &x,
        &Budget {
            norm: Norm::L2,
            eps: 0.0,
            lo: 0.0,
            hi: 1.0,
        },
        &DeepFoolConfig::default(),
    )
    .unwrap();
    let mut ratio: Vec<f32> = (0..10)
        .map(|i| l2(&diff(adv.row(i), x.row(i))) / l2(&diff(df.row(i), x.row(i))))
        .collect();
    ratio.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(
        ratio[5] < 1.5,
        "median hsj/deepfool norm ratio {}",
        ratio[5]
    );

    // A hard budget at the adapter refuses excess queries.
    let capped = QueryCounter::with_budget(&net, 5);
    assert!(capped.logits(&x).is_err());
    assert_eq!(capped.queries(), 0);
}

#[test]
fn blackbox_evaluation_breaks_the_model_within_budget() {
    let (net, x, y) = setup(false, 30, 4);
    let c = cfg(
        vec![AttackKind::Square, AttackKind::HopSkipJump],
        Norm::Linf,
        0.25,
    );
    let r = run_evasion_blackbox(&net, &x, &y, &c, &AttackContext::silent()).unwrap();
    let sq = result(&r, "square");
    assert!(sq.robust_accuracy < 0.3, "square {}", sq.robust_accuracy);
    assert!(sq.queries.iter().all(|&q| q <= 300));
    assert!(sq.total_queries >= sq.queries.iter().sum::<u64>());
    let h = result(&r, "hop-skip-jump");
    assert!(h.queries.iter().all(|&q| q <= 1500));
    assert!(h.robust_accuracy < r.clean_accuracy);
    let bad = run_evasion_blackbox(
        &net,
        &x,
        &y,
        &cfg(vec![AttackKind::Pgd], Norm::Linf, 0.1),
        &AttackContext::silent(),
    );
    assert!(bad.is_err());
}

#[test]
fn same_seed_same_result() {
    let c = cfg(
        vec![AttackKind::Pgd, AttackKind::Square, AttackKind::ApgdT],
        Norm::Linf,
        0.03,
    );
    let a = run(&c, false, 30);
    let b = run(&c, false, 30);
    for (p, q) in a.attacks.iter().zip(&b.attacks) {
        assert_eq!(p.adversarial, q.adversarial, "{}", p.attack);
        assert_eq!(p.success, q.success);
        assert_eq!(p.queries, q.queries);
    }
    let mut c2 = c.clone();
    c2.seed = 8;
    let d = run(&c2, false, 30);
    assert_ne!(a.attacks[0].adversarial, d.attacks[0].adversarial);
}

/// Records phases and units; raises `cancel` after `stop_after` units.
#[derive(Default)]
struct Record {
    phases: Mutex<Vec<(String, u64)>>,
    units: AtomicU64,
    stop_after: Option<(u64, Cancel)>,
}

impl Progress for Record {
    fn phase(&self, name: &str, total: Option<u64>) {
        if let Ok(mut p) = self.phases.lock() {
            p.push((name.to_string(), total.unwrap_or(0)));
        }
    }
    fn advance(&self, n: u64) {
        let done = self.units.fetch_add(n, Ordering::Relaxed) + n;
        if let Some((k, c)) = &self.stop_after {
            if done >= *k {
                c.cancel();
            }
        }
    }
}

fn recording(stop_after: Option<u64>) -> (Arc<Record>, AttackContext) {
    let cancel = Cancel::new();
    let rec = Arc::new(Record {
        stop_after: stop_after.map(|k| (k, cancel.clone())),
        ..Record::default()
    });
    let ctx = AttackContext::new(RunContext {
        cancel,
        progress: rec.clone(),
    });
    (rec, ctx)
}

#[test]
fn curve_progress_cancel_and_findings() {
    let mut c = cfg(vec![AttackKind::Pgd, AttackKind::Square], Norm::Linf, 0.05);
    c.eps_curve = vec![0.0, 0.02, 0.05, 0.2];
    let (net, x, y) = setup(false, 40, 1);
    let (rec, ctx) = recording(None);
    let r = run_evasion(&net, &x, &y, &c, &ctx).unwrap();
    // Every phase announces its real size and the units add up to it.
    let phases = rec.phases.lock().unwrap().clone();
    let names: Vec<&str> = phases.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "clean accuracy",
            "pgd",
            "square",
            "curve eps=0: pgd",
            "curve eps=0.02: pgd",
            "curve eps=0.05: pgd",
            "curve eps=0.2: pgd"
        ]
    );
    assert!(phases.iter().all(|p| p.1 == 40));
    assert_eq!(rec.units.load(Ordering::Relaxed), 40 * 7);
    assert!(r.complete && !r.cancelled);
    // The curve's attack defaults to the strongest budgeted attack asked for
    // (PGD over Square), and each point says what it measured.
    assert_eq!(r.curve_attack.as_deref(), Some("pgd"));
    assert_eq!(r.curve.len(), 4);
    assert!(r
        .curve
        .iter()
        .all(|p| p.attack == "pgd" && p.method == "per-budget" && p.evaluated == 40));
    assert!((r.curve[0].robust_accuracy - r.clean_accuracy).abs() < 1e-9);
    for w in r.curve.windows(2) {
        assert!(w[1].robust_accuracy <= w[0].robust_accuracy + 1e-9);
    }
    assert!(r.curve[3].robust_accuracy < 0.05);

    let f = r.findings("model.onnx");
    let wb = f.iter().find(|f| f.rule_id == "AISEC-EVASION-001").unwrap();
    assert!(
        wb.atlas.contains(&"AML.T0015".to_string())
            && wb.atlas.contains(&"AML.T0043.000".to_string())
    );
    let robust = wb.metrics["robust_accuracy"].as_f64().unwrap();
    assert!((robust - result(&r, "pgd").robust_accuracy).abs() < 1e-9);
    let expected = if robust < 0.1 {
        aisec_core::Severity::Critical
    } else if robust < 0.5 {
        aisec_core::Severity::High
    } else {
        wb.severity
    };
    assert_eq!(wb.severity, expected);
    let bb = f.iter().find(|f| f.rule_id == "AISEC-EVASION-002").unwrap();
    assert!(bb.atlas.contains(&"AML.T0043.001".to_string()));
    assert!(bb.metrics["queries"].as_u64().unwrap() > 0);
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["attacks"][0]["robust_accuracy"].is_number());
    assert!(json["worst_case_robust_accuracy"].is_number());
    assert_eq!(json["complete"], true);
    assert_eq!(json["curve"][1]["attack"], "pgd");

    // A black-box curve defaults to Square; an explicit choice is honoured.
    let mut sq = c.clone();
    sq.attacks = vec![AttackKind::Square];
    sq.eps_curve = vec![0.0, 0.2];
    let r = run_evasion_blackbox(&net, &x, &y, &sq, &AttackContext::silent()).unwrap();
    assert_eq!(r.curve_attack.as_deref(), Some("square"));
    assert!(r.curve.iter().all(|p| p.attack == "square"));
    let mut fgsm = c.clone();
    fgsm.eps_curve = vec![0.05];
    fgsm.curve_attack = Some(AttackKind::Fgsm);
    let r = run_evasion(&net, &x, &y, &fgsm, &AttackContext::silent()).unwrap();
    assert_eq!(r.curve[0].attack, "fgsm");
    sq.curve_attack = Some(AttackKind::Pgd);
    assert!(run_evasion_blackbox(&net, &x, &y, &sq, &AttackContext::silent()).is_err());

    // Cancelled before anything: no attack ran, nothing is claimed.
    let ctx = AttackContext::silent();
    ctx.cancel();
    let r = run_evasion(&net, &x, &y, &c, &ctx).unwrap();
    assert!(r.cancelled && !r.complete);
    assert!(r.attacks.is_empty());
    assert_eq!(r.not_run, ["pgd", "square"]);
    assert_eq!(r.worst_case_robust_accuracy, None);
    assert!(r.findings("m").is_empty());
}

#[test]
fn a_minimal_norm_curve_reads_one_run_at_every_budget() {
    let (net, x, y) = setup(false, 30, 3);
    let mut c = cfg(vec![AttackKind::Deepfool], Norm::L2, 0.3);
    c.eps_curve = vec![0.0, 0.1, 0.3, 10.0];
    let r = run_evasion(&net, &x, &y, &c, &AttackContext::silent()).unwrap();
    assert_eq!(r.curve_attack.as_deref(), Some("deepfool"));
    assert!(r.curve.iter().all(|p| p.method == "minimal-norm"));
    // At the run's own budget the reading equals the attack's robust accuracy.
    let df = result(&r, "deepfool");
    assert!((r.curve[2].robust_accuracy - df.robust_accuracy).abs() < 1e-9);
    assert!((r.curve[0].robust_accuracy - r.clean_accuracy).abs() < 1e-9);
    for w in r.curve.windows(2) {
        assert!(w[1].robust_accuracy <= w[0].robust_accuracy + 1e-9);
    }
    // DeepFool is exact on this linear model: a large budget breaks all.
    assert_eq!(r.curve[3].robust_accuracy, 0.0);
}

#[test]
fn invalid_inputs_are_errors() {
    let (net, x, y) = setup(false, 4, 1);
    let cancel = AttackContext::silent();
    let c = cfg(vec![AttackKind::Pgd], Norm::Linf, 0.1);
    assert!(run_evasion(&net, &x, &y[..3], &c, &cancel).is_err());
    assert!(run_evasion(&net, &x, &[0, 1, 2, 99], &c, &cancel).is_err());
    let mut bad = c.clone();
    bad.lo = 2.0;
    assert!(run_evasion(&net, &x, &y, &bad, &cancel).is_err());
    let mut nan = x.clone();
    nan.data[0] = f32::NAN;
    assert!(run_evasion(&net, &nan, &y, &c, &cancel).is_err());
    let broken = Tensor {
        shape: vec![4, 3],
        data: vec![0.0; 5],
    };
    assert!(run_evasion(&net, &broken, &y, &c, &cancel).is_err());
}

#[test]
fn saves_npz_and_png() {
    let c = cfg(vec![AttackKind::Pgd], Norm::Linf, 0.05);
    let r = run(&c, false, 12);
    let dir = tempfile::tempdir().unwrap();
    let npz = dir.path().join("adv.npz");
    r.save_npz(&npz).unwrap();
    let bytes = std::fs::read(&npz).unwrap();
    assert_eq!(&bytes[..2], b"PK");
    for name in [
        "x_clean.npy",
        "x_adv.npy",
        "y.npy",
        "pred_adv.npy",
        "success.npy",
    ] {
        assert!(
            bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name}"
        );
    }
    let needle: &[u8] = b"'shape': (12, 1, 4, 4)";
    assert!(bytes.windows(needle.len()).any(|w| w == needle));
    let png = dir.path().join("grid.png");
    r.save_png_grid(&png, 4).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
}

#[test]
fn cancelling_midway_keeps_finished_batches() {
    let (net, x, y) = setup(false, 64, 1);
    let mut c = cfg(vec![AttackKind::Pgd, AttackKind::ApgdCe], Norm::Linf, 0.2);
    c.batch_size = 8;
    // Cancel once the clean pass (64) and one attacked batch (8) are done.
    let (_, ctx) = recording(Some(64 + 8));
    let r = run_evasion(&net, &x, &y, &c, &ctx).unwrap();
    assert!(r.cancelled && !r.complete);
    let pgd = result(&r, "pgd");
    assert!(
        pgd.evaluated >= 8 && pgd.evaluated < 64,
        "{}",
        pgd.evaluated
    );
    // Numbers cover the finished batches only, whole batches at a time.
    assert_eq!(pgd.evaluated % 8, 0);
    assert_eq!(pgd.done.iter().filter(|&&d| d).count(), pgd.evaluated);
    assert!((0..64).any(|i| pgd.done[i] && pgd.success[i]));
    assert!((0..64).all(|i| pgd.done[i] || !pgd.success[i]));
    assert_eq!(r.not_run, ["apgd-ce"]);
    assert_eq!(r.worst_case_evaluated, pgd.evaluated);
    let f = r.findings("m.onnx");
    assert!(f[0].evidence.contains("cancelled"));
    let mut lines = Vec::new();
    r.write_examples(&mut lines).unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8(lines)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 64);
    let evaluated = rows
        .iter()
        .filter(|r| r["attacks"][0]["evaluated"] == true)
        .count();
    assert_eq!(evaluated, pgd.evaluated);
}

#[test]
fn nothing_broken_is_titled_as_held_and_the_summary_does_not_grow_with_n() {
    // A zero budget breaks nothing: the findings say the model held.
    let c = cfg(vec![AttackKind::Pgd, AttackKind::Square], Norm::Linf, 0.0);
    let r = run(&c, false, 16);
    let f = r.findings("m.onnx");
    assert_eq!(f.len(), 2);
    for x in &f {
        assert_eq!(x.severity, aisec_core::Severity::Info);
        assert!(x.title.starts_with("Model held"), "{}", x.title);
        assert_eq!(x.metrics["broken"], 0);
    }
    // Per-example outputs are not in the serialised report: its size is the
    // same for 8 and 64 examples (only the digits of counts differ).
    let c = cfg(vec![AttackKind::Fgsm, AttackKind::Pgd], Norm::Linf, 0.05);
    let small = serde_json::to_string(&run(&c, false, 8)).unwrap();
    let big_report = run(&c, false, 64);
    let big = serde_json::to_string(&big_report).unwrap();
    assert!(
        big.len() < small.len() + 40,
        "{} vs {}",
        big.len(),
        small.len()
    );
    for key in ["\"success\"", "\"labels\"", "\"l2\"", "\"adv_pred\""] {
        assert!(!big.contains(key), "{key} in {big}");
    }
    // They stream to JSON Lines instead, one line per example.
    let mut out = Vec::new();
    big_report.write_examples(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 64);
    let row: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
    assert_eq!(row["index"], 3);
    assert_eq!(row["attacks"][1]["attack"], "pgd");
    assert_eq!(
        row["attacks"][1]["success"],
        result(&big_report, "pgd").success[3]
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("examples.jsonl");
    big_report.save_examples(&p).unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
}

#[test]
fn findings_snapshot() {
    let c = cfg(
        vec![AttackKind::Fgsm, AttackKind::Pgd, AttackKind::Square],
        Norm::Linf,
        0.1,
    );
    let r = run(&c, false, 20);
    let f = r.findings("digits.onnx");
    insta::assert_json_snapshot!("evasion_findings", f);
}

/// A model whose outputs do not match its declared shape (a hostile or broken endpoint).
struct Liar(common::Net, AtomicUsize);

impl Classifier for Liar {
    fn input_shape(&self) -> &[usize] {
        self.0.input_shape()
    }
    fn num_classes(&self) -> usize {
        C
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, aisec_model::ModelError> {
        // Honest for the first (clean) pass, then wrong-shaped.
        if self.1.fetch_add(1, Ordering::Relaxed) == 0 {
            return self.0.logits(x);
        }
        let n = x.batch();
        Tensor::new(vec![n, 2], vec![0.5; n * 2])
    }
    fn predict(&self, _x: &Tensor) -> Result<Vec<usize>, aisec_model::ModelError> {
        Ok(Vec::new())
    }
}

impl Differentiable for Liar {
    fn loss_grad(
        &self,
        x: &Tensor,
        _loss: &Loss,
    ) -> Result<(Vec<f32>, Tensor, Tensor), aisec_model::ModelError> {
        Ok((vec![0.0], Tensor::zeros(vec![1]), self.logits(x)?))
    }
}

#[test]
fn malformed_model_outputs_are_errors_not_panics() {
    let (net, x, y) = setup(false, 8, 1);
    let cancel = AttackContext::silent();
    let mut liar = Liar(net, AtomicUsize::new(0));
    let white = [
        AttackKind::Pgd,
        AttackKind::Deepfool,
        AttackKind::FabT,
        AttackKind::AutoAttack,
        AttackKind::CwL2,
    ];
    for k in white {
        liar.1 = AtomicUsize::new(0);
        let r = run_evasion(&liar, &x, &y, &cfg(vec![k], Norm::Linf, 0.1), &cancel);
        assert!(r.is_err(), "{k:?}");
    }
    for k in [AttackKind::Square, AttackKind::HopSkipJump] {
        liar.1 = AtomicUsize::new(0);
        let c = cfg(vec![k], Norm::Linf, 0.1);
        let r = run_evasion_blackbox(&liar, &x, &y, &c, &cancel);
        assert!(r.is_err(), "{k:?}");
    }
}

#[test]
fn square_l2_runs_in_evaluations_and_autoattack_l2() {
    let (net, x, y) = setup(false, 20, 5);
    let cancel = AttackContext::silent();
    // Budget: twice the median exact minimal L2 perturbation (DeepFool is exact here).
    let df = deepfool(
        &mut AttackContext::silent(),
        &net,
        &x,
        &Budget {
            norm: Norm::L2,
            eps: 0.0,
            lo: 0.0,
            hi: 1.0,
        },
        &DeepFoolConfig::default(),
    )
    .unwrap();
    let mut m: Vec<f32> = (0..20).map(|i| l2(&diff(df.row(i), x.row(i)))).collect();
    m.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let eps = 2.0 * m[10];
    let c = cfg(vec![AttackKind::Square], Norm::L2, eps);
    let r = run_evasion_blackbox(&net, &x, &y, &c, &cancel).unwrap();
    let sq = result(&r, "square");
    assert!(sq.black_box);
    assert!(
        sq.robust_accuracy <= 0.5 * r.clean_accuracy,
        "square-l2 robust {} clean {}",
        sq.robust_accuracy,
        r.clean_accuracy
    );
    for i in 0..20 {
        assert!(sq.l2[i] <= eps * 1.0001 + 1e-6);
        assert!(sq.queries[i] <= 300);
    }
    // AutoAttack's L2 protocol includes Square: its worst case is at most Square's.
    let c = cfg(
        vec![AttackKind::AutoAttack, AttackKind::Square],
        Norm::L2,
        eps,
    );
    let r = run_evasion(&net, &x, &y, &c, &cancel).unwrap();
    let aa = result(&r, "autoattack");
    assert!(aa.robust_accuracy <= result(&r, "square").robust_accuracy + 1e-9);
    // Below every minimal perturbation nothing breaks, so every component,
    // Square included, runs on every correct example and spends queries.
    let c = cfg(vec![AttackKind::AutoAttack], Norm::L2, 0.5 * m[0]);
    let r = run_evasion(&net, &x, &y, &c, &cancel).unwrap();
    let aa = result(&r, "autoattack");
    assert_eq!(aa.robust_accuracy, r.clean_accuracy);
    for i in 0..20 {
        if r.clean_pred[i] == y[i] {
            assert_eq!(aa.queries[i], 300, "square queries inside autoattack-l2");
        }
    }
}
