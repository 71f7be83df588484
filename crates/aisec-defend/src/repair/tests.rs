use super::*;
use crate::model::{inspect, InspectConfig, Method};
use crate::testutil::*;

fn triggered(d: &Dataset) -> (Tensor, Vec<usize>) {
    (stamped(&d.x), d.y.clone())
}

/// `x` (labels `y`) as inputs stamped towards [`TARGET`].
fn to_target<'a>(x: &'a Tensor, y: &'a [usize]) -> Triggered<'a> {
    Triggered {
        x,
        y,
        target: TARGET,
    }
}

/// The repair tests' set-up: a repair set, a test set, a model trained on
/// BadNets-poisoned data, and the test set with the trigger stamped.
fn backdoored() -> (Dataset, Dataset, OnnxModel, (Tensor, Vec<usize>)) {
    let repair_set = synthetic(30, 7, 11);
    let test = synthetic(30, 7, 12);
    let bad = train(&poison(&synthetic(100, 7, 2), 0.1, 3), 4);
    let stamped = triggered(&test);
    (repair_set, test, bad, stamped)
}

#[test]
fn the_head_and_its_activations_are_found() {
    let d = synthetic(10, 7, 1);
    let m = train(&d, 0);
    let h = find_head(&m, &d.x).unwrap();
    assert_eq!(h.units, 32);
    assert!(h.out_major);
    let act = mean_activations(&m, &h, &d.x, 7).unwrap();
    // By hand: relu(W1 x + b1) averaged, with the first dense layer's weights.
    let names = m.weight_names();
    let w1 = m.weight(&names[0]).unwrap();
    let b1 = m.weight(&names[1]).unwrap();
    assert_eq!(w1.shape, vec![32, 64]);
    let mut want = [0.0f32; 32];
    for i in 0..d.len() {
        let x = d.x.row(i);
        for (j, w) in want.iter_mut().enumerate() {
            let z: f32 = (0..64).map(|k| w1.data[j * 64 + k] * x[k]).sum::<f32>() + b1.data[j];
            *w += z.max(0.0) / d.len() as f32;
        }
    }
    for j in 0..32 {
        assert!(
            (act[j] - want[j]).abs() < 1e-3,
            "unit {j}: {} vs {}",
            act[j],
            want[j]
        );
    }
}

#[test]
fn scores_follow_backdoorbench_definitions() {
    let d = synthetic(10, 7, 1);
    let bad = train(&poison(&synthetic(100, 7, 2), 0.1, 3), 4);
    let (tx, ty) = triggered(&d);
    let s = score(
        &bad,
        &d,
        Some(Triggered {
            x: &tx,
            y: &ty,
            target: TARGET,
        }),
    )
    .unwrap();
    assert!(s.clean_accuracy > 0.9);
    let asr = s.asr.unwrap();
    assert!((asr - crate::testutil::asr(&bad, &d)).abs() < 1e-6);
    assert!(asr + s.poisoned_accuracy.unwrap() <= 1.0 + 1e-6);
    assert!(score(
        &bad,
        &d,
        Some(Triggered {
            x: &tx,
            y: &ty[..3],
            target: 0
        })
    )
    .is_err());
}

#[test]
fn unlearning_with_the_reversed_trigger_removes_badnets() {
    let (repair_set, test, mut bad, (tx, ty)) = backdoored();
    let t = to_target(&tx, &ty);
    let before = score(&bad, &test, Some(t)).unwrap();
    assert!(before.asr.unwrap() > 0.9);
    let cfg = InspectConfig {
        steps: 200,
        ..InspectConfig::default()
    };
    let ins = inspect(
        &bad,
        &repair_set.x,
        Method::NeuralCleanse,
        &cfg,
        None,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(ins.flagged, vec![TARGET]);
    let trig = &ins.classes[TARGET].trigger;
    let rc = RepairConfig::default();
    let n = unlearn(&mut bad, &repair_set, &[trig], &rc, None).unwrap();
    assert_eq!(n, (repair_set.len() as f32 * 0.2).round() as usize);
    let after = score(&bad, &test, Some(t)).unwrap();
    assert!(after.asr.unwrap() < 0.1, "{before:?} -> {after:?}");
    assert!(
        before.clean_accuracy - after.clean_accuracy <= 0.03,
        "{before:?} -> {after:?}"
    );
    let f = finding("unlearning", &before, &after, 0.02, "bad.onnx");
    assert_eq!(f.severity, Severity::Info);
    assert!(unlearn(&mut bad, &repair_set, &[], &rc, None).is_err());
}

#[test]
fn fine_pruning_prunes_dormant_units_and_keeps_them_pruned() {
    let (repair_set, test, mut bad, (tx, ty)) = backdoored();
    let t = to_target(&tx, &ty);
    let before = score(&bad, &test, Some(t)).unwrap();
    let rep = fine_prune(&mut bad, &repair_set, &RepairConfig::default(), None).unwrap();
    assert!(!rep.pruned.is_empty());
    assert!(rep.accuracy_before - rep.accuracy_pruned <= 0.1 + 1e-6);
    let w = bad.weight(&rep.head.weight).unwrap();
    for &j in &rep.pruned {
        assert!((0..6).all(|r| w.data[r * 32 + j] == 0.0));
    }
    let after = score(&bad, &test, Some(t)).unwrap();
    assert!(
        before.clean_accuracy - after.clean_accuracy <= 0.05,
        "{before:?} -> {after:?}"
    );
    eprintln!(
        "fine-pruning {before:?} -> {after:?}, pruned {}",
        rep.pruned.len()
    );
    let f = finding("fine-pruning", &before, &after, 0.02, "bad.onnx");
    assert_eq!(f.rule_id, "AISEC-BACKDOOR-002");
}
