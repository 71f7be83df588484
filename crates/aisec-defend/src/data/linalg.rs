//! Small dense linear algebra for the data defences: top principal
//! directions by power iteration with deflation (no covariance matrix is
//! formed: each step is `X^T (X v)`), and 2-means with k-means++ seeding
//! (Arthur & Vassilvitskii 2007) and a few restarts.

use rand::Rng;

use super::{normal, rng};

/// The top `k` right singular vectors of the `[n, d]` row-major matrix `x`
/// (rows already centred: principal directions), unit length, by power
/// iteration (at most 100 steps each) with deflation. Fewer than `k` come
/// back when the data has lower rank.
pub fn top_components(x: &[f32], n: usize, d: usize, k: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut r = rng(seed);
    let mut comps: Vec<Vec<f32>> = Vec::new();
    let total: f64 = x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum();
    if total <= 0.0 || n == 0 || d == 0 {
        return comps;
    }
    let mut xv = vec![0.0f64; n];
    for _ in 0..k.min(d).min(n) {
        let mut v: Vec<f64> = (0..d).map(|_| f64::from(normal(&mut r))).collect();
        orthonormalise(&mut v, &comps);
        let mut lambda = 0.0;
        for _ in 0..100 {
            // w = X^T X v, then deflate and normalise.
            for i in 0..n {
                xv[i] = x[i * d..(i + 1) * d]
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| f64::from(*a) * b)
                    .sum();
            }
            let mut w = vec![0.0f64; d];
            for i in 0..n {
                let s = xv[i];
                for (wj, a) in w.iter_mut().zip(&x[i * d..(i + 1) * d]) {
                    *wj += s * f64::from(*a);
                }
            }
            orthonormalise(&mut w, &comps);
            let norm: f64 = w.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm <= 1e-12 * total {
                return comps;
            }
            let delta: f64 = w
                .iter()
                .zip(&v)
                .map(|(a, b)| (a / norm - b).abs())
                .fold(0.0, f64::max);
            v = w.iter().map(|a| a / norm).collect();
            let done = (norm - lambda).abs() <= 1e-7 * norm && delta < 1e-6;
            lambda = norm;
            if done {
                break;
            }
        }
        comps.push(v.iter().map(|a| *a as f32).collect());
    }
    comps
}

/// Removes the components along `basis` from `v` and scales it to unit
/// length (if it is not zero).
fn orthonormalise(v: &mut [f64], basis: &[Vec<f32>]) {
    for b in basis {
        let p: f64 = v.iter().zip(b).map(|(a, c)| a * f64::from(*c)).sum();
        for (a, c) in v.iter_mut().zip(b) {
            *a -= p * f64::from(*c);
        }
    }
    let norm: f64 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|a| *a /= norm);
    }
}

/// 2-means on `[n, k]` row-major points: assignments (0 or 1) and the two
/// centres, best of 5 k-means++ starts by within-cluster sum of squares.
pub fn kmeans2(p: &[f32], n: usize, k: usize, seed: u64) -> (Vec<usize>, [Vec<f32>; 2]) {
    let mut r = rng(seed);
    let row = |i: usize| &p[i * k..(i + 1) * k];
    let d2 =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut best: Option<(f64, Vec<usize>, [Vec<f32>; 2])> = None;
    if n == 0 {
        return (Vec::new(), [vec![0.0; k], vec![0.0; k]]);
    }
    for _ in 0..5 {
        let first = r.gen_range(0..n);
        let c0 = row(first).to_vec();
        let w: Vec<f32> = (0..n).map(|i| d2(row(i), &c0)).collect();
        let tot: f32 = w.iter().sum();
        let second = if tot <= 0.0 {
            r.gen_range(0..n)
        } else {
            let mut t = r.gen_range(0.0..tot);
            let mut pick = n - 1;
            for (i, &wi) in w.iter().enumerate() {
                if t < wi {
                    pick = i;
                    break;
                }
                t -= wi;
            }
            pick
        };
        let mut cs = [c0, row(second).to_vec()];
        let mut assign = vec![0usize; n];
        for _ in 0..100 {
            let mut changed = false;
            for (i, a) in assign.iter_mut().enumerate() {
                let na = usize::from(d2(row(i), &cs[1]) < d2(row(i), &cs[0]));
                changed |= na != *a;
                *a = na;
            }
            let mut sums = [vec![0.0f64; k], vec![0.0f64; k]];
            let mut cnt = [0usize; 2];
            for (i, &a) in assign.iter().enumerate() {
                cnt[a] += 1;
                for (s, v) in sums[a].iter_mut().zip(row(i)) {
                    *s += f64::from(*v);
                }
            }
            for c in 0..2 {
                if cnt[c] > 0 {
                    cs[c] = sums[c].iter().map(|s| (s / cnt[c] as f64) as f32).collect();
                }
            }
            if !changed {
                break;
            }
        }
        let sse: f64 = (0..n).map(|i| f64::from(d2(row(i), &cs[assign[i]]))).sum();
        if best.as_ref().is_none_or(|b| sse < b.0) {
            best = Some((sse, assign, cs));
        }
    }
    match best {
        Some((_, a, c)) => (a, c),
        None => (vec![0; n], [vec![0.0; k], vec![0.0; k]]),
    }
}
