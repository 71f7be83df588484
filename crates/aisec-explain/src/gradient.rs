//! Gradient attributions: saliency, Integrated Gradients, SmoothGrad and
//! GradientSHAP, on any [`Differentiable`] model.
//!
//! The numbers follow Captum's definitions (Kokhlikyan et al. 2020,
//! "Captum: A unified and generic model interpretability library for
//! PyTorch") so that the two can be compared value for value:
//! `bench/explain` does so on the same weights.

use aisec_model::{Differentiable, Loss, Tensor};
use rand::{Rng, SeedableRng};

use crate::{check_input, check_targets, ExplainError, Result};

/// Rows per model call when a method evaluates many points (IG steps,
/// noise samples); bounds memory to this many activations at a time.
pub const DEFAULT_INTERNAL_BATCH: usize = 256;

/// The target-class score and its gradient at every row of `points`, in
/// chunks of at most `chunk` rows. `classes[i]` is the class of row `i`.
pub fn target_grads(
    model: &dyn Differentiable,
    points: &Tensor,
    classes: &[usize],
    chunk: usize,
) -> Result<(Vec<f32>, Tensor)> {
    let n = points.batch();
    if classes.len() != n {
        return Err(ExplainError::Invalid(format!(
            "{} classes for {n} rows",
            classes.len()
        )));
    }
    let row = points.row_len();
    let chunk = chunk.max(1);
    let mut values = Vec::with_capacity(n);
    let mut grads = Vec::with_capacity(points.data.len());
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let mut shape = points.shape.clone();
        shape[0] = end - start;
        let part = Tensor::new(shape, points.data[start * row..end * row].to_vec())?;
        let (v, g, _) = model.loss_grad(
            &part,
            &Loss::Logit {
                classes: classes[start..end].to_vec(),
            },
        )?;
        if v.len() != end - start || g.data.len() != part.data.len() {
            return Err(ExplainError::Invalid(
                "the model returned a gradient of the wrong size".into(),
            ));
        }
        values.extend_from_slice(&v);
        grads.extend_from_slice(&g.data);
        start = end;
    }
    Ok((values, Tensor::new(points.shape.clone(), grads)?))
}

/// The target-class score of every example (one forward pass).
pub fn target_scores(
    model: &dyn aisec_model::Classifier,
    x: &Tensor,
    targets: &[usize],
) -> Result<Vec<f32>> {
    let z = model.logits(x)?;
    if z.batch() != x.batch() || z.row_len() != model.num_classes() {
        return Err(ExplainError::Invalid(format!(
            "the model answered scores of shape {:?} for {} examples and {} classes",
            z.shape,
            x.batch(),
            model.num_classes()
        )));
    }
    Ok(targets
        .iter()
        .enumerate()
        .map(|(i, &t)| z.row(i)[t])
        .collect())
}

/// Saliency (Simonyan et al. 2014, "Deep Inside Convolutional Networks"):
/// the gradient of the target score with respect to the input, in absolute
/// value when `abs` (Captum's `Saliency` default).
pub fn saliency(
    model: &dyn Differentiable,
    x: &Tensor,
    targets: &[usize],
    abs: bool,
) -> Result<Tensor> {
    check_input(x, model.input_shape())?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let (_, mut g) = target_grads(model, x, targets, DEFAULT_INTERNAL_BATCH)?;
    if abs {
        g.data.iter_mut().for_each(|v| *v = v.abs());
    }
    Ok(g)
}

/// Most Integrated Gradients steps (their points and weights are kept).
pub const MAX_STEPS: usize = 1 << 20;

/// How Integrated Gradients places its steps on the path from the baseline
/// to the input; the names are Captum's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgRule {
    /// Left Riemann sum: `alpha = k / n`, `k = 0..n-1`.
    RiemannLeft,
    /// Right Riemann sum: `alpha = (k + 1) / n`.
    RiemannRight,
    /// Midpoint rule: `alpha = (k + 1/2) / n`.
    RiemannMiddle,
    /// Trapezoid rule: `alpha = k / (n - 1)`, half weight at both ends.
    RiemannTrapezoid,
    /// Gauss-Legendre quadrature on `[0, 1]` (Captum's default).
    GaussLegendre,
}

impl IgRule {
    /// Every rule, in the order of its Captum name.
    pub const ALL: [IgRule; 5] = [
        IgRule::RiemannLeft,
        IgRule::RiemannRight,
        IgRule::RiemannMiddle,
        IgRule::RiemannTrapezoid,
        IgRule::GaussLegendre,
    ];

    /// Captum's name of the rule (`riemann_left`, ..., `gausslegendre`).
    pub fn name(self) -> &'static str {
        match self {
            IgRule::RiemannLeft => "riemann_left",
            IgRule::RiemannRight => "riemann_right",
            IgRule::RiemannMiddle => "riemann_middle",
            IgRule::RiemannTrapezoid => "riemann_trapezoid",
            IgRule::GaussLegendre => "gausslegendre",
        }
    }

    /// The rule with Captum's name `s`.
    pub fn parse(s: &str) -> Option<IgRule> {
        IgRule::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The points `alpha_k` in `[0, 1]` and their weights for `n` steps.
    pub fn points(self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if n == 0 || (self == IgRule::RiemannTrapezoid && n < 2) {
            return Err(ExplainError::Invalid(format!(
                "{} needs at least {} steps",
                self.name(),
                if self == IgRule::RiemannTrapezoid {
                    2
                } else {
                    1
                }
            )));
        }
        if n > MAX_STEPS {
            return Err(ExplainError::Invalid(format!(
                "{n} steps asked; at most {MAX_STEPS}"
            )));
        }
        let nf = n as f64;
        Ok(match self {
            IgRule::RiemannLeft => ((0..n).map(|k| k as f64 / nf).collect(), vec![1.0 / nf; n]),
            IgRule::RiemannRight => (
                (0..n).map(|k| (k + 1) as f64 / nf).collect(),
                vec![1.0 / nf; n],
            ),
            IgRule::RiemannMiddle => (
                (0..n).map(|k| (k as f64 + 0.5) / nf).collect(),
                vec![1.0 / nf; n],
            ),
            IgRule::RiemannTrapezoid => {
                let h = 1.0 / (nf - 1.0);
                let mut w = vec![h; n];
                w[0] = h / 2.0;
                w[n - 1] = h / 2.0;
                ((0..n).map(|k| k as f64 * h).collect(), w)
            }
            IgRule::GaussLegendre => {
                let (x, w) = gauss_legendre(n);
                (
                    x.iter().map(|v| 0.5 * (v + 1.0)).collect(),
                    w.iter().map(|v| 0.5 * v).collect(),
                )
            }
        })
    }
}

/// Nodes (ascending, in `[-1, 1]`) and weights of `n`-point Gauss-Legendre
/// quadrature, by Newton's method on the Legendre polynomial `P_n` with the
/// three-term recurrence (Golub & Welsch give the same points as
/// eigenvalues; numpy's `leggauss` refines them the same way).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n {
        // Tricomi's initial guess for the i-th root (descending).
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0f64, x);
            for j in 2..=n {
                let jf = j as f64;
                let p2 = ((2.0 * jf - 1.0) * x * p1 - (jf - 1.0) * p0) / jf;
                p0 = p1;
                p1 = p2;
            }
            let p = if n == 1 { x } else { p1 };
            let pm1 = if n == 1 { 1.0 } else { p0 };
            dp = nf * (x * p - pm1) / (x * x - 1.0);
            let dx = p / dp;
            x -= dx;
            if dx.abs() < 1e-15 {
                break;
            }
        }
        nodes[n - 1 - i] = x;
        weights[n - 1 - i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
    (nodes, weights)
}

/// Settings of Integrated Gradients.
#[derive(Debug, Clone)]
pub struct IgConfig {
    /// Points on the path (Captum's `n_steps`, default 50).
    pub steps: usize,
    /// Where the points lie and how they are weighted.
    pub rule: IgRule,
    /// Rows per model call.
    pub internal_batch: usize,
}

impl Default for IgConfig {
    fn default() -> Self {
        IgConfig {
            steps: 50,
            rule: IgRule::GaussLegendre,
            internal_batch: DEFAULT_INTERNAL_BATCH,
        }
    }
}

/// Attributions with their completeness check.
#[derive(Debug, Clone)]
pub struct PathAttribution {
    /// Same shape as the inputs.
    pub attributions: Tensor,
    /// Target score at each input.
    pub score: Vec<f32>,
    /// Target score at each baseline.
    pub baseline_score: Vec<f32>,
    /// Captum's convergence delta: `sum(attributions) - (score - baseline_score)`
    /// per example. Zero for an exact path integral.
    pub delta: Vec<f32>,
}

/// Row `i` of `baselines`, which holds either one baseline per example or
/// one baseline for all.
fn baseline_row(baselines: &Tensor, i: usize) -> &[f32] {
    if baselines.batch() == 1 {
        baselines.row(0)
    } else {
        baselines.row(i)
    }
}

fn check_baselines(x: &Tensor, baselines: &Tensor) -> Result<()> {
    if baselines.shape.len() != x.shape.len()
        || baselines.shape[1..] != x.shape[1..]
        || !(baselines.batch() == 1 || baselines.batch() == x.batch())
    {
        return Err(ExplainError::Invalid(format!(
            "baselines of shape {:?} do not fit inputs of shape {:?} (one baseline, or one per input)",
            baselines.shape, x.shape
        )));
    }
    Ok(())
}

/// Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic
/// Attribution for Deep Networks"): `(x - b) * integral_0^1 grad f(b + a (x - b)) da`,
/// with the integral taken by `cfg.rule`. `baselines` holds one baseline,
/// or one per input. The completeness delta is reported as Captum does.
pub fn integrated_gradients(
    model: &dyn Differentiable,
    x: &Tensor,
    baselines: &Tensor,
    targets: &[usize],
    cfg: &IgConfig,
) -> Result<PathAttribution> {
    check_input(x, model.input_shape())?;
    check_baselines(x, baselines)?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let (alphas, weights) = cfg.rule.points(cfg.steps)?;
    let b = x.batch();
    let d = x.row_len();
    let mut acc = vec![0.0f64; b * d];
    // Copy k of input i is the path point at alphas[k].
    run_copies(
        model,
        x,
        targets,
        alphas.len(),
        cfg.internal_batch,
        |i, k, row| {
            let a = alphas[k] as f32;
            for (v, &bv) in row.iter_mut().zip(baseline_row(baselines, i)) {
                *v = bv + a * (*v - bv);
            }
        },
        |i, k, _, g, ()| {
            let w = weights[k];
            for (a, &gv) in acc[i * d..(i + 1) * d].iter_mut().zip(g) {
                *a += w * gv as f64;
            }
        },
    )?;
    let mut attr = Vec::with_capacity(b * d);
    for i in 0..b {
        let (xi, bi) = (x.row(i), baseline_row(baselines, i));
        for j in 0..d {
            attr.push((acc[i * d + j] * (xi[j] - bi[j]) as f64) as f32);
        }
    }
    let attributions = Tensor::new(x.shape.clone(), attr)?;
    finish_path(model, x, baselines, targets, attributions)
}

/// Scores at the inputs and baselines, and the completeness delta.
fn finish_path(
    model: &dyn Differentiable,
    x: &Tensor,
    baselines: &Tensor,
    targets: &[usize],
    attributions: Tensor,
) -> Result<PathAttribution> {
    let score = target_scores(model, x, targets)?;
    let full_base = if baselines.batch() == x.batch() {
        baselines.clone()
    } else {
        let mut data = Vec::with_capacity(x.data.len());
        for _ in 0..x.batch() {
            data.extend_from_slice(baselines.row(0));
        }
        Tensor::new(x.shape.clone(), data)?
    };
    let baseline_score = target_scores(model, &full_base, targets)?;
    let delta = (0..x.batch())
        .map(|i| {
            let s: f64 = attributions.row(i).iter().map(|&v| v as f64).sum();
            (s - (score[i] as f64 - baseline_score[i] as f64)) as f32
        })
        .collect();
    Ok(PathAttribution {
        attributions,
        score,
        baseline_score,
        delta,
    })
}

/// A standard normal draw (Box-Muller).
pub(crate) fn normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Settings of SmoothGrad and GradientSHAP.
#[derive(Debug, Clone)]
pub struct NoiseConfig {
    /// Noisy copies per input (Captum's `nt_samples` / `n_samples`).
    pub samples: usize,
    /// Standard deviation of the Gaussian noise, in input units.
    pub stdev: f32,
    /// Seed of the noise (and of GradientSHAP's baseline and path draws).
    pub seed: u64,
    /// Rows per model call.
    pub internal_batch: usize,
}

impl Default for NoiseConfig {
    fn default() -> Self {
        NoiseConfig {
            samples: 25,
            stdev: 0.15,
            seed: 0,
            internal_batch: DEFAULT_INTERNAL_BATCH,
        }
    }
}

impl NoiseConfig {
    /// The seeded noise source of `method`, once the settings are checked
    /// (at least one sample, a finite non-negative noise level).
    fn rng(&self, method: &str) -> Result<rand::rngs::StdRng> {
        if self.samples == 0 || !(self.stdev.is_finite() && self.stdev >= 0.0) {
            return Err(ExplainError::Invalid(format!(
                "{method} needs at least one sample and a non-negative noise level"
            )));
        }
        Ok(rand::rngs::StdRng::seed_from_u64(self.seed))
    }

    /// The mean over `self.samples` copies of each input of what `add`
    /// adds to the input's row of attributions from the target gradient at
    /// the copy `make` made (see [`run_copies`]).
    fn mean_over_copies<T>(
        &self,
        model: &dyn Differentiable,
        x: &Tensor,
        targets: &[usize],
        make: impl FnMut(usize, usize, &mut [f32]) -> T,
        mut add: impl FnMut(&[f32], T, &mut [f64]),
    ) -> Result<Tensor> {
        let (d, s) = (x.row_len(), self.samples);
        let mut acc = vec![0.0f64; x.batch() * d];
        run_copies(
            model,
            x,
            targets,
            s,
            self.internal_batch,
            make,
            |i, _, _, g, kept| add(g, kept, &mut acc[i * d..(i + 1) * d]),
        )?;
        let mean = acc.iter().map(|&v| (v / s as f64) as f32).collect();
        Ok(Tensor::new(x.shape.clone(), mean)?)
    }
}

/// SmoothGrad (Smilkov et al. 2017, "SmoothGrad: removing noise by adding
/// noise"): the mean of the (absolute, when `abs`) gradient over noisy
/// copies `x + N(0, stdev^2)`, as Captum's `NoiseTunnel(Saliency)`.
pub fn smoothgrad(
    model: &dyn Differentiable,
    x: &Tensor,
    targets: &[usize],
    cfg: &NoiseConfig,
    abs: bool,
) -> Result<Tensor> {
    check_input(x, model.input_shape())?;
    check_targets(x.batch(), targets, model.num_classes())?;
    let mut rng = cfg.rng("SmoothGrad")?;
    cfg.mean_over_copies(
        model,
        x,
        targets,
        |_, _, row| {
            row.iter_mut()
                .for_each(|v| *v += cfg.stdev * normal(&mut rng));
        },
        |g, (), acc| {
            for (a, &gv) in acc.iter_mut().zip(g) {
                *a += if abs { gv.abs() } else { gv } as f64;
            }
        },
    )
}

/// Evaluates target gradients at `samples` modified copies of every input,
/// the loop of Integrated Gradients, SmoothGrad and GradientSHAP:
/// `make(i, k, row)` turns copy `k` of input `i` (a copy of the input)
/// into the point to evaluate, in place, and returns what `take` needs of
/// it besides; `take(i, k, point, grad, kept)` receives the gradient
/// there. Copies are made and consumed `chunk` rows at a time (one model
/// call per chunk), in order.
fn run_copies<T>(
    model: &dyn Differentiable,
    x: &Tensor,
    targets: &[usize],
    samples: usize,
    chunk: usize,
    mut make: impl FnMut(usize, usize, &mut [f32]) -> T,
    mut take: impl FnMut(usize, usize, &[f32], &[f32], T),
) -> Result<()> {
    let (b, d) = (x.batch(), x.row_len());
    let total = b * samples;
    let chunk = chunk.max(1);
    let mut start = 0;
    while start < total {
        let end = (start + chunk).min(total);
        let mut data = Vec::with_capacity((end - start) * d);
        let mut classes = Vec::with_capacity(end - start);
        let mut kept = Vec::with_capacity(end - start);
        for r in start..end {
            let (i, k) = (r / samples, r % samples);
            let at = data.len();
            data.extend_from_slice(x.row(i));
            kept.push(make(i, k, &mut data[at..at + d]));
            classes.push(targets[i]);
        }
        let mut shape = x.shape.clone();
        shape[0] = end - start;
        let pts = Tensor::new(shape, data)?;
        let (_, g) = target_grads(model, &pts, &classes, chunk)?;
        for ((j, r), t) in (start..end).enumerate().zip(kept) {
            take(r / samples, r % samples, pts.row(j), g.row(j), t);
        }
        start = end;
    }
    Ok(())
}

/// GradientSHAP (Lundberg & Lee 2017, "A Unified Approach to Interpreting
/// Model Predictions", in Captum's form): for each of `cfg.samples` draws,
/// a baseline `b` picked at random from `baselines`, noise added to the
/// input, a point `b + a (x' - b)` with `a ~ U(0, 1)`, and the attribution
/// `grad * (x' - b)`; the mean over draws approximates expected gradients
/// (Erion et al. 2021). The delta is reported against the mean baseline
/// score, as Captum's `compute_convergence_delta` for GradientSHAP.
pub fn gradient_shap(
    model: &dyn Differentiable,
    x: &Tensor,
    baselines: &Tensor,
    targets: &[usize],
    cfg: &NoiseConfig,
) -> Result<PathAttribution> {
    check_input(x, model.input_shape())?;
    check_targets(x.batch(), targets, model.num_classes())?;
    if baselines.shape.len() != x.shape.len()
        || baselines.shape[1..] != x.shape[1..]
        || baselines.batch() == 0
    {
        return Err(ExplainError::Invalid(format!(
            "GradientSHAP baselines of shape {:?} do not fit inputs of shape {:?}",
            baselines.shape, x.shape
        )));
    }
    let mut rng = cfg.rng("GradientSHAP")?;
    let nb = baselines.batch();
    let attributions = cfg.mean_over_copies(
        model,
        x,
        targets,
        |_, _, row| {
            let base = baselines.row(rng.gen_range(0..nb));
            let a: f32 = rng.gen();
            // x' - b, kept to multiply the gradient by.
            let mut diff = Vec::with_capacity(row.len());
            for (v, &bv) in row.iter_mut().zip(base) {
                let xn = *v + cfg.stdev * normal(&mut rng);
                diff.push(xn - bv);
                *v = bv + a * (xn - bv);
            }
            diff
        },
        |g, diff, acc| {
            for ((a, &gv), &dv) in acc.iter_mut().zip(g).zip(&diff) {
                *a += (gv * dv) as f64;
            }
        },
    )?;
    let b = x.batch();
    let score = target_scores(model, x, targets)?;
    let mut base_mean = vec![0.0f64; b];
    for i in 0..b {
        let t = vec![targets[i]; nb];
        let sc = target_scores(model, baselines, &t)?;
        base_mean[i] = sc.iter().map(|&v| v as f64).sum::<f64>() / nb as f64;
    }
    let delta = (0..b)
        .map(|i| {
            let s: f64 = attributions.row(i).iter().map(|&v| v as f64).sum();
            (s - (score[i] as f64 - base_mean[i])) as f32
        })
        .collect();
    Ok(PathAttribution {
        attributions,
        score,
        baseline_score: base_mean.iter().map(|&v| v as f32).collect(),
        delta,
    })
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use crate::testmodels::Poly;

    fn model() -> Poly {
        Poly::linear(
            vec![4],
            vec![vec![1.0, -2.0, 0.5, 3.0], vec![-1.0, 0.25, 2.0, 0.0]],
        )
    }

    fn batch() -> Tensor {
        Tensor::new(vec![2, 4], vec![0.5, 1.0, -1.0, 2.0, -0.3, 0.7, 0.2, 0.9]).unwrap()
    }

    #[test]
    fn gauss_legendre_matches_known_nodes_and_integrates_degree_2n_minus_1() {
        let (x, w) = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        for (a, b) in x.iter().zip([-r, 0.0, r]) {
            assert!((a - b).abs() < 1e-14, "{x:?}");
        }
        for (a, b) in w.iter().zip([5.0 / 9.0, 8.0 / 9.0, 5.0 / 9.0]) {
            assert!((a - b).abs() < 1e-14, "{w:?}");
        }
        // 10 points integrate x^19 + x^18 over [-1, 1] exactly: 2/19.
        let (x, w) = gauss_legendre(10);
        let s: f64 = x
            .iter()
            .zip(&w)
            .map(|(x, w)| w * (x.powi(19) + x.powi(18)))
            .sum();
        assert!((s - 2.0 / 19.0).abs() < 1e-13, "{s}");
        assert!(x.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn rules_place_points_as_captum_does() {
        let (a, w) = IgRule::RiemannLeft.points(4).unwrap();
        assert_eq!(a, vec![0.0, 0.25, 0.5, 0.75]);
        assert_eq!(w, vec![0.25; 4]);
        let (a, _) = IgRule::RiemannRight.points(4).unwrap();
        assert_eq!(a, vec![0.25, 0.5, 0.75, 1.0]);
        let (a, _) = IgRule::RiemannMiddle.points(2).unwrap();
        assert_eq!(a, vec![0.25, 0.75]);
        let (a, w) = IgRule::RiemannTrapezoid.points(3).unwrap();
        assert_eq!(a, vec![0.0, 0.5, 1.0]);
        assert_eq!(w, vec![0.25, 0.5, 0.25]);
        for r in IgRule::ALL {
            let (_, w) = r.points(7).unwrap();
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{}", r.name());
            assert_eq!(IgRule::parse(r.name()), Some(r));
        }
        assert!(IgRule::RiemannTrapezoid.points(1).is_err());
        assert!(IgRule::GaussLegendre.points(0).is_err());
        assert!(IgRule::RiemannLeft.points(MAX_STEPS + 1).is_err());
    }

    #[test]
    fn ig_of_a_linear_model_is_input_minus_baseline_times_weight() {
        let m = model();
        let x = batch();
        let b = Tensor::new(vec![1, 4], vec![0.1, -0.2, 0.3, 0.0]).unwrap();
        let t = [0, 1];
        for rule in IgRule::ALL {
            let cfg = IgConfig {
                steps: 5,
                rule,
                internal_batch: 3,
            };
            let r = integrated_gradients(&m, &x, &b, &t, &cfg).unwrap();
            for i in 0..2 {
                for j in 0..4 {
                    let want = (x.row(i)[j] - b.row(0)[j]) * m.w[t[i]][j];
                    let got = r.attributions.row(i)[j];
                    assert!(
                        (got - want).abs() < 1e-6,
                        "{} {i} {j}: {got} vs {want}",
                        rule.name()
                    );
                }
                assert!(
                    r.delta[i].abs() < 1e-5,
                    "{}: delta {}",
                    rule.name(),
                    r.delta[i]
                );
            }
        }
    }

    #[test]
    fn ig_on_a_quadratic_is_exact_with_gauss_legendre_and_the_delta_shows_riemann_error() {
        let mut m = model();
        m.square = true;
        let x = batch();
        let b = Tensor::zeros(vec![1, 4]);
        let t = [0, 0];
        // Along the path the gradient 2 w a x is linear in a: the integral is w x^2.
        let gl = integrated_gradients(
            &m,
            &x,
            &b,
            &t,
            &IgConfig {
                steps: 2,
                ..IgConfig::default()
            },
        )
        .unwrap();
        for j in 0..4 {
            let want = m.w[0][j] * x.row(0)[j] * x.row(0)[j];
            assert!((gl.attributions.row(0)[j] - want).abs() < 1e-5);
        }
        assert!(gl.delta[0].abs() < 1e-5);
        // The left rule under-counts a rising integrand by exactly 1/n of it.
        let left = integrated_gradients(
            &m,
            &x,
            &b,
            &t,
            &IgConfig {
                steps: 4,
                rule: IgRule::RiemannLeft,
                internal_batch: 64,
            },
        )
        .unwrap();
        let full: f32 = (0..4).map(|j| m.w[0][j] * x.row(0)[j] * x.row(0)[j]).sum();
        assert!(
            (left.delta[0] + full / 4.0).abs() < 1e-5,
            "{} vs {}",
            left.delta[0],
            -full / 4.0
        );
    }

    #[test]
    fn saliency_and_smoothgrad_of_a_linear_model_are_its_weights() {
        let m = model();
        let x = batch();
        let s = saliency(&m, &x, &[0, 1], true).unwrap();
        assert_eq!(s.row(0), &[1.0, 2.0, 0.5, 3.0]);
        assert_eq!(s.row(1), &[1.0, 0.25, 2.0, 0.0]);
        let raw = saliency(&m, &x, &[0, 1], false).unwrap();
        assert_eq!(raw.row(0), &[1.0, -2.0, 0.5, 3.0]);
        let cfg = NoiseConfig {
            samples: 7,
            stdev: 0.5,
            seed: 3,
            internal_batch: 5,
        };
        let sg = smoothgrad(&m, &x, &[0, 1], &cfg, false).unwrap();
        for (a, b) in sg.data.iter().zip(&raw.data) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn gradient_shap_with_one_baseline_and_no_noise_is_ig_of_a_linear_model() {
        let m = model();
        let x = batch();
        let b = Tensor::new(vec![1, 4], vec![0.2, 0.2, -0.1, 0.4]).unwrap();
        let cfg = NoiseConfig {
            samples: 5,
            stdev: 0.0,
            seed: 1,
            internal_batch: 3,
        };
        let g = gradient_shap(&m, &x, &b, &[1, 0], &cfg).unwrap();
        for i in 0..2 {
            let t = [1, 0][i];
            for j in 0..4 {
                let want = (x.row(i)[j] - b.row(0)[j]) * m.w[t][j];
                assert!((g.attributions.row(i)[j] - want).abs() < 1e-5);
            }
            assert!(g.delta[i].abs() < 1e-5);
        }
        // With several baselines the expectation is w (x - mean b); 4000 draws get close.
        let bs = Tensor::new(vec![2, 4], vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
        let cfg = NoiseConfig {
            samples: 4000,
            stdev: 0.0,
            seed: 2,
            internal_batch: 512,
        };
        let g = gradient_shap(&m, &x, &bs, &[0, 0], &cfg).unwrap();
        for j in 0..4 {
            let want = (x.row(0)[j] - 0.5) * m.w[0][j];
            assert!((g.attributions.row(0)[j] - want).abs() < 0.05 * m.w[0][j].abs() + 1e-6);
        }
    }

    #[test]
    fn bad_arguments_are_errors_not_panics() {
        let m = model();
        let x = batch();
        let b = Tensor::zeros(vec![1, 4]);
        let cfg = IgConfig::default();
        assert!(integrated_gradients(&m, &x, &b, &[0], &cfg).is_err());
        assert!(integrated_gradients(&m, &x, &b, &[0, 9], &cfg).is_err());
        let b3 = Tensor::zeros(vec![3, 4]);
        assert!(integrated_gradients(&m, &x, &b3, &[0, 0], &cfg).is_err());
        let wrong = Tensor::zeros(vec![2, 5]);
        assert!(saliency(&m, &wrong, &[0, 0], true).is_err());
        let none = NoiseConfig {
            samples: 0,
            ..NoiseConfig::default()
        };
        assert!(smoothgrad(&m, &x, &[0, 0], &none, true).is_err());
        assert!(gradient_shap(
            &m,
            &x,
            &Tensor::zeros(vec![0, 4]),
            &[0, 0],
            &NoiseConfig::default()
        )
        .is_err());
    }
}
