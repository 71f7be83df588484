use super::*;

/// 2 classes of 20-d features around their class means; 10 % of class 0
/// are poison: another mean plus a strong "trigger" direction.
fn synthetic(seed: u64) -> (Tensor, Vec<usize>, Vec<bool>) {
    let mut r = rng(seed);
    let d = 20;
    let (mut x, mut y, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..300 {
        let c = i % 2;
        let poison = c == 0 && i % 20 == 0;
        for j in 0..d {
            let mut v = normal(&mut r) * 0.5;
            v += if j == c { 3.0 } else { 0.0 };
            if poison {
                v += if j == 1 { 3.0 } else { 0.0 } + if j == 7 { 4.0 } else { 0.0 };
                v -= if j == 0 { 3.0 } else { 0.0 };
            }
            x.push(v);
        }
        y.push(c);
        p.push(poison);
    }
    (Tensor::new(vec![300, d], x).unwrap(), y, p)
}

#[test]
fn activation_clustering_finds_the_poison_cluster() {
    let (x, y, p) = synthetic(1);
    let s = activation_clustering(&x, &y, 2, &AcConfig::default()).unwrap();
    let det = score_against(&s, &p).unwrap();
    assert_eq!(det.recall, 1.0, "{det:?}");
    assert_eq!(det.precision, 1.0, "{det:?}");
    assert!(det.auroc.unwrap() > 0.99);
    // The clean class splits into two large halves (or not at all): nothing flagged.
    assert_eq!(s.classes[1].flagged, 0, "{:?}", s.classes);
    assert!((s.classes[0].small_cluster.unwrap() - 15.0 / 150.0).abs() < 1e-6);
    // The ranking starts with the poison.
    let top: Vec<usize> = s.ranked()[..15].to_vec();
    assert!(top.iter().all(|&i| p[i]));
}

#[test]
fn spectral_signatures_rank_the_poison_first() {
    let (x, y, p) = synthetic(2);
    let cfg = SsConfig {
        expected_rate: 0.1,
        ..SsConfig::default()
    };
    let s = spectral_signatures(&x, &y, 2, &cfg).unwrap();
    let det = score_against(&s, &p).unwrap();
    // 1.5 * 10 % of each class is flagged: 22-23 per class, 15 poison.
    assert_eq!(det.recall, 1.0, "{det:?}");
    assert_eq!(s.flagged_count(), 2 * 23);
    assert!(det.auroc.unwrap() > 0.99, "{det:?}");
    assert!(spectral_signatures(
        &x,
        &y,
        2,
        &SsConfig {
            expected_rate: 0.0,
            ..cfg
        }
    )
    .is_err());
}

#[test]
fn early_loss_flags_the_lowest_losses() {
    let losses = [0.5, 0.01, 2.0, 0.02, 1.0, 0.9];
    let y = [0, 1, 0, 1, 0, 1];
    let s = early_loss_isolation(&losses, &y, 2, 1.0 / 3.0).unwrap();
    assert_eq!(s.flagged, vec![false, true, false, true, false, false]);
    assert_eq!(s.ranked()[..2], [1, 3]);
    assert!(early_loss_isolation(&losses, &y[..3], 2, 0.3).is_err());
    assert!(early_loss_isolation(&[f32::NAN; 6], &y, 2, 0.3).is_err());
}

#[test]
fn early_losses_train_a_short_run() {
    // Two separable classes of 4-d points: after 2 epochs the losses are
    // finite and, on average, lower than at the start (log 2).
    let (x, y, _) = synthetic(3);
    let mut xs = Vec::new();
    for i in 0..x.batch() {
        xs.extend_from_slice(&x.row(i)[..4]);
    }
    let data = Dataset::new(Tensor::new(vec![300, 4], xs).unwrap(), y).unwrap();
    let spec =
        ArchSpec::parse(r#"{"input": [4], "layers": [{"type": "dense", "units": 2}]}"#).unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 16,
        optimizer: aisec_model::train::Optimizer::adam(0.05),
        ..TrainConfig::default()
    };
    let l = early_losses(&spec, &data, &cfg).unwrap();
    assert_eq!(l.len(), 300);
    let mean = l.iter().sum::<f32>() / 300.0;
    assert!(mean < std::f32::consts::LN_2, "{mean}");
}

#[test]
fn detection_numbers_and_bad_inputs() {
    let s = DataScores {
        method: "t".into(),
        scores: vec![0.9, 0.8, 0.1, 0.7],
        flagged: vec![true, true, false, false],
        classes: vec![],
    };
    let d = score_against(&s, &[true, false, false, true]).unwrap();
    assert_eq!(
        (d.true_positives, d.false_positives, d.false_negatives),
        (1, 1, 1)
    );
    assert_eq!(d.precision, 0.5);
    assert_eq!(d.recall, 0.5);
    assert_eq!(d.false_positive_rate, 0.5);
    // Positives 0.9, 0.7 vs negatives 0.8, 0.1: 3 of 4 pairs ordered.
    assert_eq!(d.auroc, Some(0.75));
    assert!(score_against(&s, &[true]).is_err());
    assert_eq!(auroc(&[1.0, 1.0], &[true, false]), Some(0.5));
    let x = Tensor::new(vec![2, 2], vec![0.0, f32::NAN, 1.0, 1.0]).unwrap();
    assert!(activation_clustering(&x, &[0, 1], 2, &AcConfig::default()).is_err());
    let x = Tensor::new(vec![2, 2], vec![0.0; 4]).unwrap();
    assert!(activation_clustering(&x, &[0, 5], 2, &AcConfig::default()).is_err());
    // Constant features: nothing to split, nothing flagged, no panic.
    let x = Tensor::new(vec![8, 2], vec![1.0; 16]).unwrap();
    let s = activation_clustering(&x, &[0; 8], 1, &AcConfig::default()).unwrap();
    assert_eq!(s.flagged_count(), 0);
    let s = spectral_signatures(&x, &[0; 8], 1, &SsConfig::default()).unwrap();
    assert!(s.scores.iter().all(|v| v.is_finite()));
}

#[test]
fn top_components_find_the_dominant_direction() {
    // Points along (3, 4)/5 with small noise.
    let mut r = rng(4);
    let mut x = Vec::new();
    for _ in 0..200 {
        let t = normal(&mut r) * 2.0;
        x.push(0.6 * t + 0.01 * normal(&mut r));
        x.push(0.8 * t + 0.01 * normal(&mut r));
    }
    let c = top_components(&x, 200, 2, 2, 0);
    assert_eq!(c.len(), 2);
    assert!(
        (c[0][0].abs() - 0.6).abs() < 0.01 && (c[0][1].abs() - 0.8).abs() < 0.01,
        "{c:?}"
    );
    let dot: f32 = c[0].iter().zip(&c[1]).map(|(a, b)| a * b).sum();
    assert!(dot.abs() < 1e-4);
}
