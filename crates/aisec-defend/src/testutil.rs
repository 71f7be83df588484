//! Tiny synthetic data and models for the unit tests: six classes of 8x8
//! grey images, each a fixed sparse random prototype (strokes on a dark
//! background, like digits; the bottom-right corner stays dark) plus
//! noise, and a BadNets
//! stamp (Gu et al. 2017: a white 2x2 patch in the bottom-right corner,
//! all-to-one to class 0) written here so the tests do not depend on the
//! attack crate.

use aisec_model::data::Dataset;
use aisec_model::fit::{train_spec, TrainConfig};
use aisec_model::spec::ArchSpec;
use aisec_model::train::Optimizer;
use aisec_model::{OnnxModel, Tensor};
use rand::{Rng, SeedableRng};

pub(crate) const K: usize = 6;
pub(crate) const SIDE: usize = 8;
pub(crate) const TARGET: usize = 0;

/// `n` examples per class; the prototypes depend only on `proto_seed`.
pub(crate) fn synthetic(n: usize, proto_seed: u64, seed: u64) -> Dataset {
    let d = SIDE * SIDE;
    let mut pr = rand::rngs::StdRng::seed_from_u64(proto_seed);
    let protos: Vec<Vec<f32>> = (0..K)
        .map(|_| {
            (0..d)
                .map(|i| {
                    let corner = i / SIDE >= SIDE - 2 && i % SIDE >= SIDE - 2;
                    if corner || pr.gen_bool(0.6) {
                        0.0
                    } else {
                        pr.gen_range(0.4..1.0)
                    }
                })
                .collect()
        })
        .collect();
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * K * d);
    let mut y = Vec::with_capacity(n * K);
    for i in 0..n * K {
        let c = i % K;
        for v in &protos[c] {
            let noise: f32 = r.gen_range(-0.15..0.15);
            x.push((v + noise).clamp(0.0, 1.0));
        }
        y.push(c);
    }
    Dataset::new(Tensor::new(vec![n * K, 1, SIDE, SIDE], x).unwrap(), y).unwrap()
}

/// The BadNets patch on one example.
pub(crate) fn stamp(row: &mut [f32]) {
    for yy in SIDE - 2..SIDE {
        for xx in SIDE - 2..SIDE {
            row[yy * SIDE + xx] = 1.0;
        }
    }
}

/// A copy of `x` with every example stamped.
pub(crate) fn stamped(x: &Tensor) -> Tensor {
    let mut out = x.clone();
    for i in 0..out.batch() {
        stamp(out.row_mut(i));
    }
    out
}

/// Poisons `rate` of `d` (stamp, relabel to the target).
pub(crate) fn poison(d: &Dataset, rate: f32, seed: u64) -> Dataset {
    let mut x = d.x.clone();
    let mut y = d.y.clone();
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    for (i, yi) in y.iter_mut().enumerate() {
        if r.gen::<f32>() < rate {
            stamp(x.row_mut(i));
            *yi = TARGET;
        }
    }
    Dataset::new(x, y).unwrap()
}

pub(crate) fn spec() -> ArchSpec {
    ArchSpec::parse(
        r#"{"input": [1, 8, 8], "layers": [
            {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"},
            {"type": "dense", "units": 6}]}"#,
    )
    .unwrap()
}

pub(crate) fn train(d: &Dataset, seed: u64) -> OnnxModel {
    let cfg = TrainConfig {
        epochs: 12,
        batch_size: 32,
        optimizer: Optimizer::adam(3e-3),
        seed,
        ..TrainConfig::default()
    };
    train_spec(&spec(), seed, d, &cfg).unwrap().0
}

/// Share of `x` (true labels `y`, those of the target left out) the model
/// sends to the target once stamped.
pub(crate) fn asr(m: &OnnxModel, d: &Dataset) -> f32 {
    use aisec_model::Classifier;
    let p = m.predict(&stamped(&d.x)).unwrap();
    let idx: Vec<usize> = (0..d.len()).filter(|&i| d.y[i] != TARGET).collect();
    idx.iter().filter(|&&i| p[i] == TARGET).count() as f32 / idx.len() as f32
}

/// The Blended trigger (Chen et al. 2017): `0.7 x + 0.3 p` with a fixed
/// random pattern `p` over the whole image.
pub(crate) fn blend(row: &mut [f32]) {
    let mut r = rand::rngs::StdRng::seed_from_u64(99);
    for v in row.iter_mut() {
        let p: f32 = r.gen_range(0.0..1.0);
        *v = 0.7 * *v + 0.3 * p;
    }
}

/// Poisons `rate` of `d` with the blended trigger.
pub(crate) fn poison_blend(d: &Dataset, rate: f32, seed: u64) -> Dataset {
    let mut x = d.x.clone();
    let mut y = d.y.clone();
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    for (i, yi) in y.iter_mut().enumerate() {
        if r.gen::<f32>() < rate {
            blend(x.row_mut(i));
            *yi = TARGET;
        }
    }
    Dataset::new(x, y).unwrap()
}

/// A copy of `x` with every example blended.
pub(crate) fn blended(x: &Tensor) -> Tensor {
    let mut out = x.clone();
    for i in 0..out.batch() {
        blend(out.row_mut(i));
    }
    out
}
