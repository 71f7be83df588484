//! Perturbation attributions, which need only queries (so they also run on
//! KServe endpoints): occlusion, KernelSHAP and exact Shapley values.

use std::collections::HashMap;

use aisec_model::{Classifier, Tensor};
use rand::distributions::{Distribution, WeightedIndex};
use rand::SeedableRng;

use crate::gradient::target_scores;
use crate::{check_input, check_targets, ExplainError, Result};

/// Rows per model call for perturbation methods.
pub const DEFAULT_CHUNK: usize = 512;

/// Scores of `target` for every row of `rows` (flat, `row_len` values each),
/// in chunks.
fn scores_of_rows(
    model: &dyn Classifier,
    shape: &[usize],
    rows: &[f32],
    target: usize,
    chunk: usize,
) -> Result<Vec<f64>> {
    let d: usize = shape.iter().product();
    let n = rows.len().checked_div(d).unwrap_or(0);
    let chunk = chunk.max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let mut s = Vec::with_capacity(shape.len() + 1);
        s.push(end - start);
        s.extend_from_slice(shape);
        let t = Tensor::new(s, rows[start * d..end * d].to_vec())?;
        let v = target_scores(model, &t, &vec![target; end - start])?;
        out.extend(v.iter().map(|&v| v as f64));
        start = end;
    }
    Ok(out)
}

/// Settings of occlusion.
#[derive(Debug, Clone)]
pub struct OcclusionConfig {
    /// Window shape, one length per input dimension (without batch), e.g.
    /// `[1, 2, 2]` for single-channel images.
    pub window: Vec<usize>,
    /// Step between windows per dimension.
    pub strides: Vec<usize>,
    /// The value occluded features are set to.
    pub baseline: f32,
    /// Rows per model call.
    pub chunk: usize,
}

/// Occlusion (Zeiler & Fergus 2014, "Visualizing and Understanding
/// Convolutional Networks"), as Captum's `Occlusion`: every window position
/// (only those that fit, `1 + (dim - window) / stride` per dimension) is set
/// to the baseline, and each feature gets the mean drop of the target
/// score over the windows that covered it (0 where none did).
pub fn occlusion(
    model: &dyn Classifier,
    x: &Tensor,
    targets: &[usize],
    cfg: &OcclusionConfig,
) -> Result<Tensor> {
    let shape = model.input_shape().to_vec();
    check_input(x, &shape)?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let rank = shape.len();
    if cfg.window.len() != rank || cfg.strides.len() != rank {
        return Err(ExplainError::Invalid(format!(
            "occlusion window {:?} and strides {:?} need one value per input dimension {shape:?}",
            cfg.window, cfg.strides
        )));
    }
    if (0..rank).any(|k| cfg.window[k] == 0 || cfg.strides[k] == 0 || cfg.window[k] > shape[k]) {
        return Err(ExplainError::Invalid(format!(
            "occlusion window {:?} / strides {:?} must be positive and fit the input {shape:?}",
            cfg.window, cfg.strides
        )));
    }
    let counts: Vec<usize> = (0..rank)
        .map(|k| 1 + (shape[k] - cfg.window[k]) / cfg.strides[k])
        .collect();
    let positions: usize = counts.iter().product();
    // Row-major strides of the example.
    let mut pitch = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        pitch[k] = pitch[k + 1] * shape[k + 1];
    }
    // Flat indices covered by window position `p`, made when needed so
    // memory stays at one window whatever the number of positions.
    let cells_of = |p: usize| -> Vec<usize> {
        let mut origin = vec![0usize; rank];
        let mut rest = p;
        for k in (0..rank).rev() {
            origin[k] = (rest % counts[k]) * cfg.strides[k];
            rest /= counts[k];
        }
        let cells: usize = cfg.window.iter().product();
        (0..cells)
            .map(|c| {
                let mut rest = c;
                let mut flat = 0;
                for k in (0..rank).rev() {
                    flat += (origin[k] + rest % cfg.window[k]) * pitch[k];
                    rest /= cfg.window[k];
                }
                flat
            })
            .collect()
    };
    let d = x.row_len();
    let mut cover = vec![0u32; d];
    for p in 0..positions {
        for c in cells_of(p) {
            cover[c] += 1;
        }
    }
    let base = target_scores(model, x, targets)?;
    let chunk = cfg.chunk.max(1);
    let mut out = Vec::with_capacity(x.data.len());
    for (i, &t) in targets.iter().enumerate() {
        let mut acc = vec![0.0f64; d];
        // Occluded copies are built and scored a chunk at a time, so memory
        // stays at `chunk` inputs whatever the number of positions.
        let mut start = 0;
        while start < positions {
            let end = (start + chunk).min(positions);
            let group: Vec<Vec<usize>> = (start..end).map(cells_of).collect();
            let mut rows = Vec::with_capacity(group.len() * d);
            for cells in &group {
                let at = rows.len();
                rows.extend_from_slice(x.row(i));
                for &c in cells {
                    rows[at + c] = cfg.baseline;
                }
            }
            let sc = scores_of_rows(model, &shape, &rows, t, chunk)?;
            for (cells, s) in group.iter().zip(&sc) {
                let drop = base[i] as f64 - s;
                for &c in cells {
                    acc[c] += drop;
                }
            }
            start = end;
        }
        out.extend(
            acc.iter()
                .zip(&cover)
                .map(|(&a, &n)| if n == 0 { 0.0 } else { (a / n as f64) as f32 }),
        );
    }
    Ok(Tensor::new(x.shape.clone(), out)?)
}

/// Settings of KernelSHAP.
#[derive(Debug, Clone, Default)]
pub struct KernelShapConfig {
    /// Coalitions per explained input; `None` is shap's default `2M + 2048`
    /// (`M` the number of features that vary), capped at `2^M - 2`.
    pub nsamples: Option<usize>,
    /// Bound on model rows per explained input (coalitions times background
    /// rows); fewer coalitions are drawn when the default would exceed it.
    pub max_evals: Option<usize>,
    /// Seed of the coalition sampling.
    pub seed: u64,
    /// Rows per model call (0: the default).
    pub chunk: usize,
}

/// Most coalitions KernelSHAP draws per input (their masks are kept).
pub const MAX_COALITIONS: usize = 1 << 20;

/// Shapley-value attributions of a batch.
#[derive(Debug, Clone)]
pub struct ShapValues {
    /// `[batch, ..input shape]`: one value per feature.
    pub values: Tensor,
    /// Expected target score over the background (shap's `expected_value`).
    pub base_value: Vec<f32>,
    /// Target score of each input.
    pub score: Vec<f32>,
    /// Coalitions evaluated per input.
    pub coalitions: Vec<usize>,
    /// Whether every coalition was enumerated for that input (then the
    /// values are exact Shapley values of the background value function).
    pub exact: Vec<bool>,
}

/// Features of `x` that differ from some background row (shap's
/// `varying_groups`: `numpy.allclose` with its default tolerances).
pub fn varying_features(x: &[f32], background: &Tensor) -> Vec<usize> {
    (0..x.len())
        .filter(|&j| {
            (0..background.batch()).any(|r| {
                let b = background.row(r)[j] as f64;
                let a = x[j] as f64;
                (a - b).abs() > 1e-8 + 1e-5 * b.abs()
            })
        })
        .collect()
}

/// The value of coalitions of `varying` features: the mean target score
/// over background rows with the coalition's features taken from `x`.
fn coalition_values(
    model: &dyn Classifier,
    x: &[f32],
    background: &Tensor,
    varying: &[usize],
    masks: &[Vec<bool>],
    target: usize,
    chunk: usize,
) -> Result<Vec<f64>> {
    let shape = model.input_shape().to_vec();
    let nb = background.batch();
    let d = x.len();
    // Build and run at most `chunk` coalitions' worth of rows at a time.
    let per_call = (chunk / nb.max(1)).max(1);
    let mut out = Vec::with_capacity(masks.len());
    for group in masks.chunks(per_call) {
        let mut rows = Vec::with_capacity(group.len() * nb * d);
        for m in group {
            for r in 0..nb {
                let at = rows.len();
                rows.extend_from_slice(background.row(r));
                for (k, &j) in varying.iter().enumerate() {
                    if m[k] {
                        rows[at + j] = x[j];
                    }
                }
            }
        }
        let sc = scores_of_rows(model, &shape, &rows, target, chunk)?;
        for c in sc.chunks(nb) {
            out.push(c.iter().sum::<f64>() / nb as f64);
        }
    }
    Ok(out)
}

fn binom(n: usize, k: usize) -> f64 {
    let mut r = 1.0f64;
    for i in 0..k {
        r = r * (n - i) as f64 / (i + 1) as f64;
    }
    r
}

/// All subsets of `0..m` of size `k`, in lexicographic order (as
/// `itertools.combinations`).
fn combinations(m: usize, k: usize, mut f: impl FnMut(&[usize])) {
    if k > m {
        return;
    }
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        f(&idx);
        // The rightmost index that can still move right.
        let Some(i) = (0..k).rev().find(|&i| idx[i] < i + m - k) else {
            return;
        };
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// Coalitions and kernel weights as shap's `KernelExplainer.explain` draws
/// them: subset sizes whose (paired) coalitions the budget can enumerate
/// are enumerated in full with the Shapley kernel weight; the rest are
/// sampled by size with the kernel's probabilities, duplicates adding
/// weight, and their weights rescaled to the kernel mass left.
fn shap_coalitions(
    m: usize,
    nsamples: usize,
    rng: &mut impl rand::Rng,
) -> (Vec<Vec<bool>>, Vec<f64>) {
    let mut masks: Vec<Vec<bool>> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    // ceil((m - 1) / 2) sizes, of which floor((m - 1) / 2) come in pairs.
    let num_subset_sizes = m / 2;
    let num_paired = (m - 1) / 2;
    let mut weight_vector: Vec<f64> = (1..=num_subset_sizes)
        .map(|i| (m as f64 - 1.0) / (i as f64 * (m - i) as f64))
        .collect();
    for w in weight_vector.iter_mut().take(num_paired) {
        *w *= 2.0;
    }
    let total: f64 = weight_vector.iter().sum();
    weight_vector.iter_mut().for_each(|w| *w /= total);
    let mut num_full = 0;
    let mut left = nsamples as f64;
    let mut remaining = weight_vector.clone();
    for size in 1..=num_subset_sizes {
        let mut nsubsets = binom(m, size);
        if size <= num_paired {
            nsubsets *= 2.0;
        }
        if left * remaining[size - 1] / nsubsets >= 1.0 - 1e-8 {
            num_full += 1;
            left -= nsubsets;
            if remaining[size - 1] < 1.0 {
                let r = 1.0 - remaining[size - 1];
                remaining.iter_mut().for_each(|w| *w /= r);
            }
            let mut w = weight_vector[size - 1] / binom(m, size);
            if size <= num_paired {
                w /= 2.0;
            }
            combinations(m, size, |inds| {
                let mut mask = vec![false; m];
                for &i in inds {
                    mask[i] = true;
                }
                if size <= num_paired {
                    let comp: Vec<bool> = mask.iter().map(|&b| !b).collect();
                    masks.push(mask);
                    weights.push(w);
                    masks.push(comp);
                    weights.push(w);
                } else {
                    masks.push(mask);
                    weights.push(w);
                }
            });
        } else {
            break;
        }
    }
    let nfixed = masks.len();
    let mut samples_left = nsamples.saturating_sub(nfixed);
    if num_full != num_subset_sizes && samples_left > 0 {
        let mut rem: Vec<f64> = weight_vector.clone();
        for w in rem.iter_mut().take(num_paired) {
            *w /= 2.0;
        }
        let rem = &rem[num_full..];
        // The weights are positive by construction, so this cannot fail;
        // an empty tail was excluded above.
        let Ok(dist) = WeightedIndex::new(rem) else {
            return (masks, weights);
        };
        let mut used: HashMap<Vec<bool>, usize> = HashMap::new();
        let mut draws = 0usize;
        let max_draws = 4 * samples_left;
        while samples_left > 0 && draws < max_draws {
            draws += 1;
            let size = dist.sample(rng) + num_full + 1;
            let mut mask = vec![false; m];
            for i in rand::seq::index::sample(rng, m, size).iter() {
                mask[i] = true;
            }
            let pos = used.get(&mask).copied();
            let new = pos.is_none();
            match pos {
                None => {
                    used.insert(mask.clone(), masks.len());
                    samples_left -= 1;
                    masks.push(mask.clone());
                    weights.push(1.0);
                }
                Some(p) => weights[p] += 1.0,
            }
            if samples_left > 0 && size <= num_paired {
                let comp: Vec<bool> = mask.iter().map(|&b| !b).collect();
                if new {
                    samples_left -= 1;
                    masks.push(comp);
                    weights.push(1.0);
                } else if let Some(p) = pos {
                    weights[p + 1] += 1.0;
                }
            }
        }
        let weight_left: f64 = weight_vector[num_full..].iter().sum();
        let sampled: f64 = weights[nfixed..].iter().sum();
        if sampled > 0.0 {
            weights[nfixed..]
                .iter_mut()
                .for_each(|w| *w *= weight_left / sampled);
        }
    }
    (masks, weights)
}

/// Solves the square system `a x = b` (row-major `n x n`) by Gaussian
/// elimination with partial pivoting; `None` when it is singular.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    let scale = a
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for col in 0..n {
        let piv =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[piv * n + col].abs() <= 1e-13 * scale {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(piv * n + k, col * n + k);
            }
            b.swap(piv, col);
        }
        for r in col + 1..n {
            let f = a[r * n + col] / a[col * n + col];
            if f != 0.0 {
                for k in col..n {
                    a[r * n + k] -= f * a[col * n + k];
                }
                b[r] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let mut s = b[r];
        for k in r + 1..n {
            s -= a[r * n + k] * x[k];
        }
        x[r] = s / a[r * n + r];
    }
    Some(x)
}

/// shap's constrained weighted least squares: the last feature is
/// eliminated with the efficiency constraint `sum(phi) = fx - fnull`, the
/// rest solve the normal equations `(X' W X) w = X' W y`. A singular system
/// (too few coalitions) gets a ridge of `1e-9 * trace / M` instead of shap's
/// `lstsq` fallback.
fn kernel_regression(
    masks: &[Vec<bool>],
    weights: &[f64],
    ey: &[f64],
    fx: f64,
    fnull: f64,
) -> Vec<f64> {
    let m = masks.first().map(|v| v.len()).unwrap_or(0);
    if m == 0 {
        return Vec::new();
    }
    let p = m - 1;
    let total = fx - fnull;
    let mut xtwx = vec![0.0f64; p * p];
    let mut xtwy = vec![0.0f64; p];
    let mut row = vec![0.0f64; p];
    for ((mask, &w), &e) in masks.iter().zip(weights).zip(ey) {
        let last = if mask[m - 1] { 1.0 } else { 0.0 };
        let y = (e - fnull) - last * total;
        for k in 0..p {
            row[k] = (if mask[k] { 1.0 } else { 0.0 }) - last;
        }
        for a in 0..p {
            if row[a] == 0.0 {
                continue;
            }
            let wa = w * row[a];
            xtwy[a] += wa * y;
            for b in 0..p {
                xtwx[a * p + b] += wa * row[b];
            }
        }
    }
    let w = match solve(xtwx.clone(), xtwy.clone(), p) {
        Some(w) => w,
        None => {
            let tr: f64 = (0..p).map(|k| xtwx[k * p + k]).sum::<f64>().max(1e-12);
            let mut reg = xtwx;
            for k in 0..p {
                reg[k * p + k] += 1e-9 * tr / p as f64;
            }
            solve(reg, xtwy, p).unwrap_or_else(|| vec![0.0; p])
        }
    };
    let mut phi = w.clone();
    phi.push(total - w.iter().sum::<f64>());
    phi
}

fn check_background(x: &Tensor, background: &Tensor) -> Result<()> {
    if background.batch() == 0
        || background.shape.len() != x.shape.len()
        || background.shape[1..] != x.shape[1..]
    {
        return Err(ExplainError::Invalid(format!(
            "background of shape {:?} does not fit inputs of shape {:?} (it needs at least one row)",
            background.shape, x.shape
        )));
    }
    Ok(())
}

/// KernelSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting
/// Model Predictions"), as the `shap` package's `KernelExplainer` with
/// `l1_reg=False`: features equal to every background row get 0; the
/// others are explained by coalitions drawn as [`shap_coalitions`] does,
/// valued by the mean target score over the background with the
/// coalition's features taken from the input, and fitted by weighted
/// least squares under the efficiency constraint. With `2^M - 2`
/// coalitions or more every coalition is enumerated and the values are
/// exact (see [`exact_shapley`]).
pub fn kernel_shap(
    model: &dyn Classifier,
    x: &Tensor,
    background: &Tensor,
    targets: &[usize],
    cfg: &KernelShapConfig,
) -> Result<ShapValues> {
    check_input(x, model.input_shape())?;
    check_background(x, background)?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let chunk = if cfg.chunk == 0 {
        DEFAULT_CHUNK
    } else {
        cfg.chunk
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let nb = background.batch();
    let fx = target_scores(model, x, targets)?;
    let mut base_value = Vec::with_capacity(x.batch());
    let mut values = Vec::with_capacity(x.data.len());
    let mut coalitions = Vec::with_capacity(x.batch());
    let mut exact = Vec::with_capacity(x.batch());
    let d = x.row_len();
    for (i, &t) in targets.iter().enumerate() {
        let bs = target_scores(model, background, &vec![t; nb])?;
        let fnull = bs.iter().map(|&v| v as f64).sum::<f64>() / nb as f64;
        base_value.push(fnull as f32);
        let xi = x.row(i);
        let varying = varying_features(xi, background);
        let m = varying.len();
        let mut phi = vec![0.0f32; d];
        if m == 1 {
            phi[varying[0]] = (fx[i] as f64 - fnull) as f32;
        }
        if m <= 1 {
            values.extend(phi);
            coalitions.push(0);
            exact.push(true);
            continue;
        }
        let mut nsamples = cfg.nsamples.unwrap_or(2 * m + 2048);
        let max_samples = if m <= 30 {
            (1usize << m) - 2
        } else {
            usize::MAX
        };
        nsamples = nsamples.min(max_samples);
        if nsamples > MAX_COALITIONS {
            return Err(ExplainError::Invalid(format!(
                "{nsamples} coalitions asked; at most {MAX_COALITIONS} are kept in memory"
            )));
        }
        if let Some(limit) = cfg.max_evals {
            let afford = limit / nb;
            if afford < nsamples {
                if afford < m + 1 {
                    return Err(ExplainError::Invalid(format!(
                        "KernelSHAP needs at least {} coalitions for {m} features, but --max-evals {limit} \
                         with {nb} background rows allows {afford}; raise it or use fewer background rows",
                        m + 1
                    )));
                }
                nsamples = afford;
            }
        }
        let (masks, weights) = shap_coalitions(m, nsamples, &mut rng);
        let ey = coalition_values(model, xi, background, &varying, &masks, t, chunk)?;
        let p = kernel_regression(&masks, &weights, &ey, fx[i] as f64, fnull);
        for (k, &j) in varying.iter().enumerate() {
            phi[j] = p[k] as f32;
        }
        values.extend(phi);
        coalitions.push(masks.len());
        exact.push(masks.len() >= max_samples);
    }
    Ok(ShapValues {
        values: Tensor::new(x.shape.clone(), values)?,
        base_value,
        score: fx,
        coalitions,
        exact,
    })
}

/// Most varying features [`exact_shapley`] enumerates (`2^M` coalitions).
pub const EXACT_MAX_FEATURES: usize = 20;

/// Exact Shapley values (Shapley 1953) of the value function KernelSHAP
/// estimates, by enumerating all `2^M` coalitions of the varying features:
/// `phi_i = sum_S |S|! (M - |S| - 1)! / M! (v(S + i) - v(S))`. For `M` up to
/// [`EXACT_MAX_FEATURES`]; used to check KernelSHAP.
pub fn exact_shapley(
    model: &dyn Classifier,
    x: &Tensor,
    background: &Tensor,
    targets: &[usize],
) -> Result<ShapValues> {
    check_input(x, model.input_shape())?;
    check_background(x, background)?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let fx = target_scores(model, x, targets)?;
    let d = x.row_len();
    let mut base_value = Vec::new();
    let mut values = Vec::with_capacity(x.data.len());
    let mut coalitions = Vec::new();
    for (i, &t) in targets.iter().enumerate() {
        let xi = x.row(i);
        let varying = varying_features(xi, background);
        let m = varying.len();
        if m > EXACT_MAX_FEATURES {
            return Err(ExplainError::Invalid(format!(
                "exact Shapley values enumerate 2^M coalitions; {m} features vary (at most {EXACT_MAX_FEATURES})"
            )));
        }
        let masks: Vec<Vec<bool>> = (0..1usize << m)
            .map(|s| (0..m).map(|k| s >> k & 1 == 1).collect())
            .collect();
        let v = coalition_values(model, xi, background, &varying, &masks, t, DEFAULT_CHUNK)?;
        base_value.push(v[0] as f32);
        // weight[s] = s! (m - s - 1)! / m!
        let weight: Vec<f64> = (0..m).map(|s| 1.0 / (m as f64 * binom(m - 1, s))).collect();
        let mut phi = vec![0.0f32; d];
        for (k, &j) in varying.iter().enumerate() {
            let mut acc = 0.0f64;
            for s in 0..1usize << m {
                if s >> k & 1 == 0 {
                    acc += weight[(s as u64).count_ones() as usize] * (v[s | 1 << k] - v[s]);
                }
            }
            phi[j] = acc as f32;
        }
        values.extend(phi);
        coalitions.push(1usize << m);
    }
    Ok(ShapValues {
        values: Tensor::new(x.shape.clone(), values)?,
        base_value,
        score: fx,
        exact: vec![true; coalitions.len()],
        coalitions,
    })
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::testmodels::{Interact, Poly};

    fn bg6() -> Tensor {
        let mut data = Vec::new();
        for r in 0..5 {
            for j in 0..6 {
                data.push(((r * 7 + j * 3) % 5) as f32 * 0.3 - 0.4);
            }
        }
        Tensor::new(vec![5, 6], data).unwrap()
    }

    fn x6() -> Tensor {
        Tensor::new(
            vec![2, 6],
            vec![
                1.0, -0.5, 0.8, 0.1, 1.2, -0.7, 0.3, 0.9, -1.0, 0.5, 0.2, 1.1,
            ],
        )
        .unwrap()
    }

    #[test]
    fn combinations_are_lexicographic_and_complete() {
        let mut all = Vec::new();
        combinations(4, 2, |c| all.push(c.to_vec()));
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        let mut n = 0;
        combinations(10, 3, |_| n += 1);
        assert_eq!(n, 120);
        let mut n = 0;
        combinations(3, 0, |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn shapley_values_of_a_linear_model_are_weight_times_distance_from_the_background_mean() {
        let w = vec![vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.25], vec![1.0; 6]];
        let m = Poly::linear(vec![6], w.clone());
        let bg = bg6();
        let x = x6();
        let e = exact_shapley(&m, &x, &bg, &[0, 1]).unwrap();
        let k = kernel_shap(&m, &x, &bg, &[0, 1], &KernelShapConfig::default()).unwrap();
        for i in 0..2 {
            let t = [0, 1][i];
            for j in 0..6 {
                let mean: f32 = (0..5).map(|r| bg.row(r)[j]).sum::<f32>() / 5.0;
                let want = w[t][j] * (x.row(i)[j] - mean);
                assert!((e.values.row(i)[j] - want).abs() < 1e-5, "exact {i} {j}");
                assert!((k.values.row(i)[j] - want).abs() < 1e-5, "kernel {i} {j}");
            }
            assert!(k.exact[i]);
            assert_eq!(k.coalitions[i], 62);
        }
    }

    #[test]
    fn kernel_shap_at_full_enumeration_equals_exact_shapley_with_interactions() {
        let bg = bg6();
        let x = x6();
        let e = exact_shapley(&Interact, &x, &bg, &[0, 1]).unwrap();
        let k = kernel_shap(&Interact, &x, &bg, &[0, 1], &KernelShapConfig::default()).unwrap();
        for (a, b) in e.values.data.iter().zip(&k.values.data) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for i in 0..2 {
            // Efficiency: the values add up to f(x) - E[f(background)].
            let s: f32 = k.values.row(i).iter().sum();
            assert!((s - (k.score[i] - k.base_value[i])).abs() < 1e-5);
            assert!((e.base_value[i] - k.base_value[i]).abs() < 1e-5);
        }
        // The interactions make the values differ from the linear formula.
        assert!(e.values.row(0)[4].abs() > 1e-3);
    }

    #[test]
    fn sampled_kernel_shap_is_close_to_exact_and_keeps_efficiency() {
        // 12 features, 300 coalitions of 4094: sampled, not enumerated.
        let w: Vec<Vec<f32>> = vec![(0..12).map(|j| (j as f32 - 5.5) / 3.0).collect()];
        let mut m = Poly::linear(vec![12], w);
        m.square = true;
        let bg = Tensor::new(
            vec![3, 12],
            (0..36).map(|v| (v % 7) as f32 * 0.2 - 0.6).collect(),
        )
        .unwrap();
        let x = Tensor::new(
            vec![1, 12],
            (0..12).map(|v| (v as f32 * 0.37).sin()).collect(),
        )
        .unwrap();
        let e = exact_shapley(&m, &x, &bg, &[0]).unwrap();
        let cfg = KernelShapConfig {
            nsamples: Some(300),
            seed: 9,
            ..Default::default()
        };
        let k = kernel_shap(&m, &x, &bg, &[0], &cfg).unwrap();
        assert!(!k.exact[0]);
        assert_eq!(k.coalitions[0], 300);
        let s: f32 = k.values.data.iter().sum();
        assert!((s - (k.score[0] - k.base_value[0])).abs() < 1e-4);
        // An additive model is fitted exactly by the regression whatever the sample.
        for (a, b) in e.values.data.iter().zip(&k.values.data) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn sampled_kernel_shap_with_interactions_is_within_sampling_error() {
        // 6 features allow 62 coalitions; 30 are sampled.
        let bg = bg6();
        let x = x6();
        let e = exact_shapley(&Interact, &x, &bg, &[0, 0]).unwrap();
        let mut worst = 0.0f32;
        for seed in 0..5 {
            let cfg = KernelShapConfig {
                nsamples: Some(30),
                seed,
                ..Default::default()
            };
            let k = kernel_shap(&Interact, &x, &bg, &[0, 0], &cfg).unwrap();
            for (a, b) in e.values.row(0).iter().zip(k.values.row(0)) {
                worst = worst.max((a - b).abs());
            }
        }
        let scale = e.values.row(0).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(worst < 0.5 * scale, "worst {worst} scale {scale}");
    }

    #[test]
    fn features_equal_to_the_whole_background_get_zero() {
        let m = Interact;
        let bg = Tensor::new(
            vec![2, 6],
            vec![0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 0.0, 0.0],
        )
        .unwrap();
        let x = Tensor::new(vec![1, 6], vec![0.5, 1.0, 2.0, 3.0, 1.0, 1.0]).unwrap();
        assert_eq!(varying_features(x.row(0), &bg), vec![0, 4, 5]);
        let k = kernel_shap(&m, &x, &bg, &[0], &KernelShapConfig::default()).unwrap();
        for j in [1, 2, 3] {
            assert_eq!(k.values.row(0)[j], 0.0);
        }
        assert_eq!(k.coalitions[0], 6);
    }

    #[test]
    fn the_cost_bound_cuts_coalitions_or_refuses() {
        let bg = bg6();
        let x = x6();
        let cfg = KernelShapConfig {
            max_evals: Some(5 * 20),
            ..Default::default()
        };
        let k = kernel_shap(&Interact, &x, &bg, &[0, 0], &cfg).unwrap();
        assert_eq!(k.coalitions, vec![20, 20]);
        let cfg = KernelShapConfig {
            max_evals: Some(10),
            ..Default::default()
        };
        let err = kernel_shap(&Interact, &x, &bg, &[0, 0], &cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max-evals"), "{err}");
        // Asking for more coalitions than exist is capped, not refused...
        let cfg = KernelShapConfig {
            nsamples: Some(MAX_COALITIONS * 4),
            ..Default::default()
        };
        let k = kernel_shap(&Interact, &x, &bg, &[0, 0], &cfg).unwrap();
        assert_eq!(k.coalitions, vec![62, 62]);
        // ...but beyond what is kept in memory for many features it is.
        let m = Poly::linear(vec![40], vec![vec![1.0; 40]]);
        let x40 = Tensor::new(vec![1, 40], vec![1.0; 40]).unwrap();
        let cfg = KernelShapConfig {
            nsamples: Some(MAX_COALITIONS + 1),
            ..Default::default()
        };
        assert!(kernel_shap(&m, &x40, &Tensor::zeros(vec![1, 40]), &[0], &cfg).is_err());
    }

    #[test]
    fn occlusion_of_a_linear_model_with_unit_windows_is_weight_times_drop() {
        let w = vec![vec![1.0, -2.0, 0.5, 3.0, 0.0, 1.0]];
        let m = Poly::linear(vec![1, 2, 3], w.clone());
        let x = Tensor::new(vec![1, 1, 2, 3], vec![0.5, 1.0, -1.0, 2.0, 0.3, -0.2]).unwrap();
        let cfg = OcclusionConfig {
            window: vec![1, 1, 1],
            strides: vec![1, 1, 1],
            baseline: 0.0,
            chunk: 4,
        };
        let a = occlusion(&m, &x, &[0], &cfg).unwrap();
        for j in 0..6 {
            assert!((a.data[j] - w[0][j] * x.data[j]).abs() < 1e-6);
        }
        // 2x2 windows with stride 1 over a 2x3 image: two positions; the
        // middle column is covered twice and gets the mean of both drops.
        let cfg = OcclusionConfig {
            window: vec![1, 2, 2],
            strides: vec![1, 1, 1],
            baseline: 0.0,
            chunk: 4,
        };
        let a = occlusion(&m, &x, &[0], &cfg).unwrap();
        let drop = |cols: [usize; 2]| -> f32 {
            cols.iter()
                .map(|&c| w[0][c] * x.data[c] + w[0][c + 3] * x.data[c + 3])
                .sum()
        };
        let (left, right) = (drop([0, 1]), drop([1, 2]));
        assert!((a.data[0] - left).abs() < 1e-6);
        assert!((a.data[1] - (left + right) / 2.0).abs() < 1e-6);
        assert!((a.data[2] - right).abs() < 1e-6);
        let bad = OcclusionConfig {
            window: vec![1, 3, 1],
            strides: vec![1, 1, 1],
            baseline: 0.0,
            chunk: 4,
        };
        assert!(occlusion(&m, &x, &[0], &bad).is_err());
        let bad = OcclusionConfig {
            window: vec![1, 1],
            strides: vec![1, 1],
            baseline: 0.0,
            chunk: 4,
        };
        assert!(occlusion(&m, &x, &[0], &bad).is_err());
    }

    #[test]
    fn exact_shapley_refuses_too_many_features() {
        let m = Poly::linear(vec![24], vec![vec![1.0; 24]]);
        let x = Tensor::new(vec![1, 24], vec![1.0; 24]).unwrap();
        let bg = Tensor::zeros(vec![1, 24]);
        assert!(exact_shapley(&m, &x, &bg, &[0]).is_err());
    }
}
