//! Tests of the spec's dropout layer and per-layer initialisers.

use rand::{Rng, SeedableRng};

use super::*;
use crate::classifier::{Classifier, Differentiable, Loss};
use crate::data::Dataset;
use crate::fit::{fit, FitOptions, TrainConfig};
use crate::train::Optimizer;

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.gen_range(-1.0..1.0)).collect()
}

const DROP_MLP: &str = r#"{"input": [6], "layers": [
    {"type": "dense", "units": 16}, {"type": "dropout", "rate": 0.5},
    {"type": "tanh"}, {"type": "dense", "units": 4}]}"#;

const DROP_CNN: &str = r#"{"input": [2, 5, 5], "layers": [
    {"type": "conv2d", "filters": 3, "kernel": 3, "padding": 1},
    {"type": "dropout", "rate": 0.3}, {"type": "relu"},
    {"type": "flatten"}, {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 4}]}"#;

fn twin(text: &str, seed: u64) -> (ArchSpec, OnnxModel, OnnxModel) {
    let spec = ArchSpec::parse(text).unwrap();
    let m = OnnxModel::from_spec(&spec, 3).unwrap();
    let mut t = OnnxModel::spec_train_twin(&spec, &m).unwrap();
    t.set_dropout_seed(seed);
    (spec, m, t)
}

/// With the mask fixed by the seed, dropout is linear: central
/// differences of the summed loss must match the backward's weight and
/// input gradients.
#[test]
fn dropout_gradients_match_finite_differences_with_a_fixed_mask() {
    for (text, xs) in [(DROP_MLP, vec![5, 6]), (DROP_CNN, vec![3, 2, 5, 5])] {
        let (_, _, mut t) = twin(text, 11);
        assert!(t.has_train_dropout());
        let n: usize = xs.iter().product();
        let x = Tensor::new(xs.clone(), vals(n, 1)).unwrap();
        let labels: Vec<usize> = (0..xs[0]).map(|i| i % 4).collect();
        let loss = Loss::CrossEntropy { labels };
        let f = |m: &OnnxModel, x: &Tensor| -> f64 {
            let (v, _) = m.weight_grads(x, &loss).unwrap();
            v.iter().map(|&v| f64::from(v)).sum()
        };
        let close = |fd: f64, an: f64| (fd - an).abs() <= 2e-2 * (1.0 + fd.abs().max(an.abs()));
        let (_, grads) = t.weight_grads(&x, &loss).unwrap();
        let mut checked = 0;
        for (name, g) in &grads {
            let w0 = t.weight(name).unwrap();
            for i in (0..w0.data.len()).step_by((w0.data.len() / 4).max(1)) {
                let h = 1e-3f32;
                let mut w = w0.clone();
                w.data[i] += h;
                t.set_weight(name, &w).unwrap();
                let up = f(&t, &x);
                w.data[i] -= 2.0 * h;
                t.set_weight(name, &w).unwrap();
                let dn = f(&t, &x);
                t.set_weight(name, &w0).unwrap();
                let fd = (up - dn) / (2.0 * f64::from(h));
                let an = f64::from(g.data[i]);
                assert!(close(fd, an), "{name}[{i}]: fd {fd}, backward {an}");
                checked += 1;
            }
        }
        // The input gradient goes through the same mask.
        let (_, gx, _) = t.loss_grad(&x, &loss).unwrap();
        for i in (0..n).step_by(7) {
            let h = 1e-3f32;
            let mut xp = x.clone();
            xp.data[i] += h;
            let up = f(&t, &xp);
            xp.data[i] -= 2.0 * h;
            let dn = f(&t, &xp);
            let fd = (up - dn) / (2.0 * f64::from(h));
            let an = f64::from(gx.data[i]);
            assert!(close(fd, an), "x[{i}]: fd {fd}, backward {an}");
            checked += 1;
        }
        assert!(checked > 15, "{checked} checks");
    }
}

/// The mask drops about `rate` of the values, scales the rest by
/// 1 / (1 - rate), is the same for a seed and changes with it.
#[test]
fn dropout_masks_are_seeded_inverted_and_drop_at_the_rate() {
    let spec = ArchSpec::parse(
        r#"{"input": [4000], "layers": [{"type": "dropout", "rate": 0.3}, {"type": "flatten"}]}"#,
    )
    .unwrap();
    let m = OnnxModel::from_spec(&spec, 0).unwrap();
    let mut t = OnnxModel::spec_train_twin(&spec, &m).unwrap();
    let x = Tensor::new(vec![5, 4000], vec![1.0; 20_000]).unwrap();
    t.set_dropout_seed(7);
    let a = t.forward(&x).unwrap();
    let zeros = a.data.iter().filter(|&&v| v == 0.0).count();
    // 20,000 Bernoulli(0.3): sd 65, so +-400 is > 6 sd.
    assert!((zeros as i64 - 6000).abs() < 400, "{zeros} dropped");
    let scale = 1.0 / 0.7f32;
    assert!(a.data.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-6));
    let mean = a.data.iter().sum::<f32>() / 20_000.0;
    assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
    assert_eq!(t.forward(&x).unwrap().data, a.data, "same seed, same mask");
    t.set_dropout_seed(8);
    assert_ne!(t.forward(&x).unwrap().data, a.data, "new seed, new mask");
    // Inference: the identity.
    assert_eq!(m.forward(&x).unwrap().data, x.data);
}

/// At inference a dropout layer changes nothing: the model equals the
/// same network with the dropout layer replaced by an identity layer.
#[test]
fn dropout_at_inference_is_the_identity_and_exports_to_onnx() {
    let spec = ArchSpec::parse(DROP_CNN).unwrap();
    let m = OnnxModel::from_spec(&spec, 4).unwrap();
    // Layer outputs around each dropout layer are equal.
    let x = Tensor::new(vec![3, 2, 5, 5], vals(150, 2)).unwrap();
    let conv = m.forward_at(&x, &crate::onnx_model::Tap::Layer(0)).unwrap();
    let drop = m.forward_at(&x, &crate::onnx_model::Tap::Layer(1)).unwrap();
    assert_eq!(conv.data, drop.data);
    let flat = m.forward_at(&x, &crate::onnx_model::Tap::Layer(3)).unwrap();
    let drop2 = m.forward_at(&x, &crate::onnx_model::Tap::Layer(4)).unwrap();
    assert_eq!(flat.data, drop2.data);
    // The MLP: dense, dropout, tanh, dense equals dense, flatten (the
    // identity on [n, f]), tanh, dense with the same weights.
    let spec = ArchSpec::parse(DROP_MLP).unwrap();
    let m = OnnxModel::from_spec(&spec, 4).unwrap();
    let plain = ArchSpec::parse(
        &DROP_MLP.replace(r#""type": "dropout", "rate": 0.5"#, r#""type": "flatten""#),
    )
    .unwrap();
    let ws: Vec<(String, Tensor)> = m
        .weight_names()
        .into_iter()
        .map(|n| {
            let w = m.weight(&n).unwrap();
            (n, w)
        })
        .collect();
    let p = OnnxModel::from_graph_owned(
        plain.to_graph(Some(&ws), 0).unwrap(),
        SPEC_OPSET,
        Some(vec![6]),
    )
    .unwrap();
    let x = Tensor::new(vec![4, 6], vals(24, 5)).unwrap();
    let y = m.forward(&x).unwrap();
    assert_eq!(y.data, p.forward(&x).unwrap().data);
    // Export: a standard Dropout node (no training op), same outputs.
    let g = spec.to_graph(None, 0).unwrap();
    assert!(g
        .nodes
        .iter()
        .any(|n| n.op_type == "Dropout" && n.name == "layer1"));
    assert!(!g.nodes.iter().any(|n| n.op_type == "DropoutTrain"));
    let tg = spec.to_graph_mode(None, 0, true).unwrap();
    assert!(tg
        .nodes
        .iter()
        .any(|n| n.op_type == "DropoutTrain" && n.domain == "ai.aisec"));
    let back = OnnxModel::from_bytes(m.to_onnx_bytes().unwrap()).unwrap();
    assert_eq!(back.forward(&x).unwrap().data, y.data);
    assert_eq!(back.weight_names(), m.weight_names());
    // The weight list is the same in both modes (the seed is no weight).
    let t = OnnxModel::spec_train_twin(&spec, &m).unwrap();
    assert_eq!(t.weight_names(), m.weight_names());
    // And safetensors round trip through the spec.
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("w.safetensors");
    m.save_safetensors(&st).unwrap();
    let c = OnnxModel::from_spec_safetensors(&spec, &st).unwrap();
    assert_eq!(c.forward(&x).unwrap().data, y.data);
}

/// DP-SGD's per-example gradients go through the training mask: their
/// sum over the batch equals the batched gradient of the same masked
/// pass, and each example's row only depends on its own mask.
#[test]
fn per_example_gradients_flow_through_dropout() {
    let (_, _, t) = twin(DROP_CNN, 5);
    let x = Tensor::new(vec![4, 2, 5, 5], vals(200, 3)).unwrap();
    let loss = Loss::CrossEntropy {
        labels: vec![0, 1, 2, 3],
    };
    let (v1, per) = t.per_example_weight_grads(&x, &loss).unwrap();
    let (v2, sum) = t.weight_grads(&x, &loss).unwrap();
    assert_eq!(v1, v2);
    let mut nonzero = 0;
    for ((n1, p), (n2, s)) in per.iter().zip(&sum) {
        assert_eq!(n1, n2);
        let k = s.data.len();
        for j in 0..k {
            let tot: f32 = (0..4).map(|e| p.data[e * k + j]).sum();
            assert!(
                (tot - s.data[j]).abs() <= 1e-4 * (1.0 + s.data[j].abs()),
                "{n1}[{j}]"
            );
            nonzero += usize::from(s.data[j] != 0.0);
        }
    }
    assert!(nonzero > 20);
    // Example 0's per-example gradient equals the batched gradient when
    // the other examples' loss is removed (their rows zeroed through soft
    // targets of all zeros give zero loss gradient).
    let mut targets = vec![0.0f32; 16];
    targets[0] = 1.0;
    let only0 = Loss::SoftCrossEntropy { targets };
    let (_, g0) = t.weight_grads(&x, &only0).unwrap();
    let (_, per0) = t.per_example_weight_grads(&x, &only0).unwrap();
    for ((n, g), (_, p)) in g0.iter().zip(&per0) {
        let k = g.data.len();
        for j in 0..k {
            assert!(
                (p.data[j] - g.data[j]).abs() <= 1e-5 * (1.0 + g.data[j].abs()),
                "{n}[{j}]"
            );
            for e in 1..4 {
                assert_eq!(p.data[e * k + j], 0.0, "{n}: example {e} has no loss");
            }
        }
    }
}

fn blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * 6);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 4;
        for j in 0..6 {
            let centre = if j % 4 == c { 1.5 } else { 0.0 };
            x.push(centre + rng.gen_range(-0.7f32..0.7));
        }
        y.push(c);
    }
    Dataset::new(Tensor::new(vec![n, 6], x).unwrap(), y).unwrap()
}

/// `fit` trains through dropout: deterministic for a seed, different from
/// the same run without dropout, and it learns.
#[test]
fn fit_with_dropout_is_seeded_and_learns() {
    let spec = ArchSpec::parse(DROP_MLP).unwrap();
    let data = blobs(400, 1);
    let cfg = TrainConfig {
        epochs: 8,
        batch_size: 32,
        optimizer: Optimizer::adam(1e-2),
        seed: 3,
        ..TrainConfig::default()
    };
    let run = |spec: &ArchSpec, cfg: &TrainConfig| {
        let mut m = OnnxModel::from_spec(spec, 2).unwrap();
        let opts = FitOptions {
            spec: Some(spec),
            ..FitOptions::default()
        };
        fit(&mut m, &data, cfg, opts).unwrap();
        m
    };
    let a = run(&spec, &cfg);
    let b = run(&spec, &cfg);
    let w = |m: &OnnxModel| m.weight("layer0.weight").unwrap().data;
    assert_eq!(w(&a), w(&b), "same seed, same weights");
    let c = run(
        &spec,
        &TrainConfig {
            seed: 4,
            ..cfg.clone()
        },
    );
    assert_ne!(w(&a), w(&c));
    // Rate 0: the same run as without dropout (shuffles equal).
    let zero = ArchSpec::parse(&DROP_MLP.replace("0.5", "0.0")).unwrap();
    let plain = ArchSpec::parse(
        &DROP_MLP.replace(r#""type": "dropout", "rate": 0.5"#, r#""type": "flatten""#),
    )
    .unwrap();
    assert_eq!(w(&run(&zero, &cfg)), w(&run(&plain, &cfg)));
    assert_ne!(w(&a), w(&run(&plain, &cfg)), "dropout changed nothing");
    let test = blobs(200, 9);
    let acc = (0..test.len())
        .filter(|&i| {
            let x = Tensor::new(vec![1, 6], test.x.row(i).to_vec()).unwrap();
            a.predict(&x).unwrap()[0] == test.y[i]
        })
        .count() as f32
        / test.len() as f32;
    assert!(acc > 0.9, "accuracy {acc}");
}

#[test]
fn bad_dropout_rates_are_refused() {
    for r in ["1.0", "-0.1", "1.5"] {
        let t = format!(
            r#"{{"input": [3], "layers": [{{"type": "dropout", "rate": {r}}}, {{"type": "flatten"}}]}}"#
        );
        assert!(ArchSpec::parse(&t).is_err(), "{r}");
    }
    assert!(ArchSpec::parse(r#"{"input": [3], "layers": [{"type": "dropout"}]}"#).is_err());
}

/// Moments of `n` draws.
fn moments(v: &[f32]) -> (f64, f64, f32) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    (mean, var, max)
}

/// Each initialiser's draws have its bound and variance (fans 50 and 30;
/// 60,000 draws: the sample variance is within 2% of the true one).
#[test]
fn initialisers_have_their_bounds_and_moments() {
    let (fi, fo) = (50usize, 30usize);
    let n = 60_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let cases = [
        (
            InitKind::Torch,
            Some(1.0 / (fi as f64).sqrt()),
            1.0 / (3.0 * fi as f64),
        ),
        (
            InitKind::HeUniform,
            Some((6.0 / fi as f64).sqrt()),
            2.0 / fi as f64,
        ),
        (InitKind::HeNormal, None, 2.0 / fi as f64),
        (
            InitKind::GlorotUniform,
            Some((6.0 / (fi + fo) as f64).sqrt()),
            2.0 / (fi + fo) as f64,
        ),
        (InitKind::GlorotNormal, None, 2.0 / (fi + fo) as f64),
    ];
    for (kind, bound, var) in cases {
        let v = kind.draw(n, (fi, fo), &mut rng);
        let (m, s2, max) = moments(&v);
        assert!(m.abs() < 4.0 * (var / n as f64).sqrt(), "{kind:?} mean {m}");
        assert!(
            (s2 / var - 1.0).abs() < 0.02,
            "{kind:?} variance {s2} vs {var}"
        );
        match bound {
            Some(b) => {
                assert!(f64::from(max) <= b, "{kind:?} max {max} > {b}");
                assert!(
                    f64::from(max) > 0.99 * b,
                    "{kind:?} max {max} far below {b}"
                );
            }
            // Normal: some draws beyond 3 sd, none absurdly far.
            None => {
                let sd = var.sqrt();
                let tails = v.iter().filter(|&&x| f64::from(x.abs()) > 3.0 * sd).count();
                assert!(
                    (80..250).contains(&tails),
                    "{kind:?}: {tails} beyond 3 sd (expect 162)"
                );
                assert!(f64::from(max) < 6.0 * sd);
            }
        }
    }
    assert!(InitKind::Zeros
        .draw(10, (fi, fo), &mut rng)
        .iter()
        .all(|&v| v == 0.0));
}

/// The spec's `init` reaches the layers with PyTorch's fans: a conv with
/// 3 input channels and a 3x3 kernel has fan_in 27, a dense layer its
/// input width; `torch` biases are uniform too; the default is
/// unchanged (He-uniform weights, zero biases, same values for a seed).
#[test]
fn per_layer_initialisers_follow_the_spec() {
    let text = r#"{"input": [3, 6, 6], "layers": [
        {"type": "conv2d", "filters": 64, "kernel": 3, "init": "torch"},
        {"type": "residual", "filters": 64, "init": {"weight": "glorot_normal", "bias": "torch"}},
        {"type": "flatten"},
        {"type": "dense", "units": 40, "init": "he_normal"},
        {"type": "dense", "units": 10, "init": {"weight": "zeros"}},
        {"type": "dense", "units": 10}]}"#;
    let spec = ArchSpec::parse(text).unwrap();
    let m = OnnxModel::from_spec(&spec, 1).unwrap();
    let w = |n: &str| m.weight(n).unwrap().data;
    // conv: fan_in 27.
    let b = 1.0 / 27f32.sqrt();
    let (_, _, max) = moments(&w("layer0.weight"));
    assert!(max <= b && max > 0.95 * b, "{max} vs {b}");
    let (_, _, bmax) = moments(&w("layer0.bias"));
    assert!(bmax <= b && bmax > 0.5 * b, "torch bias {bmax}");
    // residual convs: glorot normal with fans 64*9 and 64*9, torch biases.
    let (_, var, _) = moments(&w("layer1.conv1.weight"));
    let want = 2.0 / (2.0 * 576.0);
    assert!((var / want - 1.0).abs() < 0.05, "{var} vs {want}");
    let (_, _, bmax) = moments(&w("layer1.conv2.bias"));
    assert!(bmax <= 1.0 / 24.0 && bmax > 0.5 / 24.0);
    // dense after flatten: 64 * 4 * 4 = 1024 inputs, he normal.
    let (_, var, _) = moments(&w("layer3.weight"));
    assert!((var * 1024.0 / 2.0 - 1.0).abs() < 0.05, "{var}");
    assert!(w("layer3.bias").iter().all(|&v| v == 0.0));
    assert!(w("layer4.weight").iter().all(|&v| v == 0.0));
    assert!(w("layer4.bias").iter().all(|&v| v == 0.0));
    // Default: He-uniform, zero bias.
    let (_, _, max) = moments(&w("layer5.weight"));
    assert!(max <= (6.0f32 / 10.0).sqrt() && max > 0.5);
    assert!(w("layer5.bias").iter().all(|&v| v == 0.0));
    // Parsing round trip keeps the inits; unknown names are errors.
    assert_eq!(ArchSpec::parse(&spec.to_json()).unwrap(), spec);
    assert!(ArchSpec::parse(
        r#"{"input": [2], "layers": [{"type": "dense", "units": 2, "init": "xavier"}]}"#
    )
    .is_err());
    // A spec without any init gives the same network as before the
    // initialisers existed: He-uniform drawn in the same order.
    let old =
        ArchSpec::parse(r#"{"input": [5], "layers": [{"type": "dense", "units": 3}]}"#).unwrap();
    let he = ArchSpec::parse(
        r#"{"input": [5], "layers": [{"type": "dense", "units": 3, "init": {"weight": "he_uniform", "bias": "zeros"}}]}"#,
    )
    .unwrap();
    let a = OnnxModel::from_spec(&old, 9).unwrap();
    let c = OnnxModel::from_spec(&he, 9).unwrap();
    assert_eq!(a.weight("layer0.weight"), c.weight("layer0.weight"));
    let mut r = rand::rngs::StdRng::seed_from_u64(9);
    let bnd = (6.0f32 / 5.0).sqrt();
    let want: Vec<f32> = (0..15).map(|_| r.gen_range(-bnd..bnd)).collect();
    assert_eq!(a.weight("layer0.weight").unwrap().data, want);
}
