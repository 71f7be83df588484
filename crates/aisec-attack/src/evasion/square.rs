//! The Square attack (scores only; L-inf and L2), a query-only attack.
//!
//! It sees the model only through [`Classifier`], counts every example it
//! sends, and stops at a per-example query budget. It returns the
//! adversarial batch and the queries spent per example.

use aisec_model::{Classifier, ModelError, Tensor};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::context::AttackContext;
use crate::util::{best_other, clip, diff, example_shape, l2, stack, Budget, Norm};

/// Settings of [`square_linf`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquareConfig {
    /// Queries per example, the initial one included (AutoAttack standard: 5000).
    pub max_queries: u64,
    /// Initial fraction of pixels changed per square (AutoAttack: 0.8).
    pub p_init: f32,
}

impl Default for SquareConfig {
    fn default() -> Self {
        SquareConfig {
            max_queries: 5000,
            p_init: 0.8,
        }
    }
}

/// The Square attack's piecewise-constant schedule of the square area
/// fraction, for iteration `it` of `n_iters` (rescaled to 10 000 iterations
/// as in Andriushchenko et al. 2020).
pub fn square_p(p_init: f32, it: u64, n_iters: u64) -> f32 {
    let i = (it as f64 / n_iters.max(1) as f64 * 10000.0) as u64;
    let div = match i {
        0..=10 => 1.0,
        11..=50 => 2.0,
        51..=200 => 4.0,
        201..=500 => 8.0,
        501..=1000 => 16.0,
        1001..=2000 => 32.0,
        2001..=4000 => 64.0,
        4001..=6000 => 128.0,
        6001..=8000 => 256.0,
        _ => 512.0,
    };
    p_init / div
}

/// `(channels, height, width)` view of an example shape: `[C,H,W]` as is,
/// `[H,W]` as one channel, anything else as one row of values.
fn chw(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [c, h, w] => (*c, *h, *w),
        [h, w] => (1, *h, *w),
        _ => (1, 1, shape.iter().product()),
    }
}

/// Margin to minimise: untargeted `z_y - max_{i!=y} z_i`, targeted
/// `max_{i!=t} z_i - z_t`; the goal is met when it is negative.
fn margin(z: &[f32], y: usize, target: Option<usize>) -> f32 {
    match target {
        Some(t) => best_other(z, t).1 - z[t],
        None => z[y] - best_other(z, y).1,
    }
}

/// Square attack, L-inf (Andriushchenko et al. 2020, "Square Attack: a
/// query-efficient black-box adversarial attack via random search"):
/// initialise with vertical stripes of `±eps`, then repeatedly set a random
/// square window (side from the `p` schedule) of every channel to `±eps`,
/// keeping the change when the margin loss decreases.
pub fn square_linf(
    ctx: &mut AttackContext,
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &SquareConfig,
) -> Result<(Tensor, Vec<u64>), ModelError> {
    let (c, h, w) = chw(&example_shape(x));
    let eps = budget.eps;
    let init = |i: usize, rng: &mut StdRng| {
        // Vertical stripes of +-eps.
        let x0 = x.row(i);
        let mut v = x0.to_vec();
        for ch in 0..c {
            for col in 0..w {
                let s = if rng.gen_bool(0.5) { eps } else { -eps };
                for row in 0..h {
                    let k = (ch * h + row) * w + col;
                    v[k] = x0[k] + s;
                }
            }
        }
        clip(&mut v, budget.lo, budget.hi);
        v
    };
    let propose = |i: usize, cur: &[f32], p: f32, rng: &mut StdRng| {
        let (sh, sw) = if h > 1 {
            let s = ((p * (h * w) as f32).sqrt().round() as usize).clamp(1, h.min(w));
            (s, s)
        } else {
            (1, ((p * w as f32).round() as usize).clamp(1, w))
        };
        let x0 = x.row(i);
        let vh = rng.gen_range(0..=h - sh);
        let vw = rng.gen_range(0..=w - sw);
        let mut v = cur.to_vec();
        for _ in 0..10 {
            let mut changed = false;
            for ch in 0..c {
                let s = if rng.gen_bool(0.5) { eps } else { -eps };
                for row in vh..vh + sh {
                    for col in vw..vw + sw {
                        let k = (ch * h + row) * w + col;
                        let nv = (x0[k] + s).clamp(budget.lo, budget.hi);
                        if (nv - cur[k]).abs() > 1e-7 {
                            changed = true;
                        }
                        v[k] = nv;
                    }
                }
            }
            if changed {
                break;
            }
        }
        v
    };
    let search = Search {
        model,
        x,
        y,
        targets,
        cfg,
    };
    search.run(ctx, init, propose)
}

/// The random search both Square variants run (Andriushchenko et al. 2020,
/// Algorithm 1): one query at `init`'s starting points, then per iteration
/// a `propose`d candidate for every example whose goal is not met yet
/// (margin >= 0), all queried together, each kept when its margin is
/// lower. Stops at `max_queries` per example, when every goal is met, or
/// when the run is cancelled.
struct Search<'a> {
    model: &'a dyn Classifier,
    x: &'a Tensor,
    y: &'a [usize],
    targets: Option<&'a [usize]>,
    cfg: &'a SquareConfig,
}

impl Search<'_> {
    fn run(
        &self,
        ctx: &mut AttackContext,
        mut init: impl FnMut(usize, &mut StdRng) -> Vec<f32>,
        mut propose: impl FnMut(usize, &[f32], f32, &mut StdRng) -> Vec<f32>,
    ) -> Result<(Tensor, Vec<u64>), ModelError> {
        let (x, y, cfg) = (self.x, self.y, self.cfg);
        let cancel = ctx.run().cancel.clone();
        let rng = ctx.rng();
        let n = x.batch();
        let shape = example_shape(x);
        let mut queries = vec![0u64; n];
        if n == 0 || cfg.max_queries == 0 {
            return Ok((x.clone(), queries));
        }
        let tgt = |i: usize| self.targets.map(|t| t[i]);
        let mut cur: Vec<Vec<f32>> = (0..n).map(|i| init(i, rng)).collect();
        let z = self.model.logits(&stack(&cur, &shape))?;
        let mut m: Vec<f32> = (0..n).map(|i| margin(z.row(i), y[i], tgt(i))).collect();
        for q in queries.iter_mut() {
            *q += 1;
        }
        let n_iters = cfg.max_queries.saturating_sub(1);
        for it in 0..n_iters {
            if cancel.is_cancelled() {
                break;
            }
            let active: Vec<usize> = (0..n).filter(|&i| m[i] >= 0.0).collect();
            if active.is_empty() {
                break;
            }
            let p = square_p(cfg.p_init, it, n_iters);
            let mut cand: Vec<Vec<f32>> = active
                .iter()
                .map(|&i| propose(i, &cur[i], p, rng))
                .collect();
            let z = self.model.logits(&stack(&cand, &shape))?;
            for (k, &i) in active.iter().enumerate() {
                queries[i] += 1;
                let mk = margin(z.row(k), y[i], tgt(i));
                if mk < m[i] {
                    m[i] = mk;
                    cur[i] = std::mem::take(&mut cand[k]);
                }
            }
        }
        Ok((stack(&cur, &shape), queries))
    }
}

/// Square attack, either norm: [`square_linf`] or [`square_l2`].
pub fn square(
    ctx: &mut AttackContext,
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &SquareConfig,
) -> Result<(Tensor, Vec<u64>), ModelError> {
    match budget.norm {
        Norm::Linf => square_linf(ctx, model, x, y, targets, budget, cfg),
        Norm::L2 => square_l2(ctx, model, x, y, targets, budget, cfg),
    }
}

/// The L2 Square attack's window pattern on an `rows x cols` rectangle:
/// nested rectangles around the centre, ring `k` weighted `1/(k+1)^2`,
/// scaled to unit L2 norm (Andriushchenko et al. 2020, Sec. 3.2).
fn eta_rect(rows: usize, cols: usize) -> Vec<f32> {
    let mut d = vec![0.0f32; rows * cols];
    if rows == 0 || cols == 0 {
        return d;
    }
    let (cr, cc) = (rows / 2, cols / 2);
    let rings = cr.max(cc);
    for r in 0..rows {
        for c in 0..cols {
            // Ring index: Chebyshev distance from the centre cell; every
            // ring at or outside it contributes 1/(k+1)^2.
            let k = r.abs_diff(cr).max(c.abs_diff(cc));
            d[r * cols + c] = (k..=rings).map(|j| 1.0 / ((j + 1) * (j + 1)) as f32).sum();
        }
    }
    normalise(&mut d);
    d
}

fn normalise(v: &mut [f32]) {
    let n = l2(v);
    if n > 0.0 {
        v.iter_mut().for_each(|a| *a /= n);
    }
}

/// The update pattern of the L2 Square attack on a `rows x cols` window:
/// two halves of opposite sign, each an [`eta_rect`], unit L2 norm, and
/// for a square window transposed with probability 1/2.
fn square_eta(rows: usize, cols: usize, rng: &mut StdRng) -> Vec<f32> {
    let mut d = vec![0.0f32; rows * cols];
    if rows >= 2 {
        let h1 = rows / 2;
        let top = eta_rect(h1, cols);
        let bottom = eta_rect(rows - h1, cols);
        d[..h1 * cols].copy_from_slice(&top);
        for (o, v) in d[h1 * cols..].iter_mut().zip(&bottom) {
            *o = -v;
        }
    } else if cols >= 2 {
        let w1 = cols / 2;
        let left = eta_rect(1, w1);
        let right = eta_rect(1, cols - w1);
        d[..w1].copy_from_slice(&left);
        for (o, v) in d[w1..].iter_mut().zip(&right) {
            *o = -v;
        }
    } else {
        d.fill(1.0);
    }
    normalise(&mut d);
    if rows == cols && rng.gen_bool(0.5) {
        let mut t = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = d[r * cols + c];
            }
        }
        d = t;
    }
    d
}

/// `x0 + eps * delta / ||delta||_2`, clipped to the valid range.
fn l2_point(x0: &[f32], delta: &[f32], budget: &Budget) -> Vec<f32> {
    let n = l2(delta).max(1e-12);
    let mut v: Vec<f32> = x0
        .iter()
        .zip(delta)
        .map(|(a, d)| a + budget.eps * d / n)
        .collect();
    clip(&mut v, budget.lo, budget.hi);
    v
}

/// Square attack, L2 (Andriushchenko et al. 2020, "Square Attack: a
/// query-efficient black-box adversarial attack via random search",
/// Sec. 3.2 and Algorithm 3). Starts from a grid of windows (side `h/5`)
/// each holding the two-halves pattern with a random sign per channel,
/// scaled to the full budget `eps`. Each iteration picks two windows of
/// side `s` (from the `p` schedule, at least 3 and odd): the second
/// window's perturbation is removed and its mass, together with the first
/// window's and any budget left, is put back into the first window as the
/// old window direction plus a fresh random-sign pattern; the whole
/// perturbation is then rescaled to norm `eps` and clipped. A candidate is
/// kept when the margin loss decreases. Returns the best point and the
/// queries per example.
pub fn square_l2(
    ctx: &mut AttackContext,
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &SquareConfig,
) -> Result<(Tensor, Vec<u64>), ModelError> {
    let (c, h, w) = chw(&example_shape(x));
    let eps = budget.eps;
    let at = |ch: usize, r: usize, col: usize| (ch * h + r) * w + col;
    // Initial grid of windows.
    let (gh, gw) = ((h / 5).max(1), (w / 5).max(1));
    let (oh, ow) = (
        (h - gh * (h / gh).min(5)) / 2,
        (w - gw * (w / gw).min(5)) / 2,
    );
    let init = |i: usize, rng: &mut StdRng| {
        let mut delta = vec![0.0f32; c * h * w];
        let mut r0 = oh;
        while r0 + gh <= h {
            let mut c0 = ow;
            while c0 + gw <= w {
                let pat = square_eta(gh, gw, rng);
                for ch in 0..c {
                    let s = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
                    for r in 0..gh {
                        for col in 0..gw {
                            delta[at(ch, r0 + r, c0 + col)] += s * pat[r * gw + col];
                        }
                    }
                }
                c0 += gw;
            }
            r0 += gh;
        }
        l2_point(x.row(i), &delta, budget)
    };
    let (wh, ww) = if h > 1 { (h, w) } else { (1, w) };
    // Window side: at least 3 and odd (when the input allows).
    let side = |len: usize, area: f32| {
        let mut s = (area.sqrt().round() as usize).max(3);
        if s.is_multiple_of(2) {
            s += 1;
        }
        s.min(len).max(1)
    };
    let propose = |i: usize, cur: &[f32], p: f32, rng: &mut StdRng| {
        let (sh, sw) = if wh > 1 {
            let s = side(wh.min(ww), p * (wh * ww) as f32);
            (s, s)
        } else {
            (1, side(ww, p * ww as f32 * p * ww as f32))
        };
        let x0 = x.row(i);
        let mut delta = diff(cur, x0);
        let (r1, c1) = (rng.gen_range(0..=wh - sh), rng.gen_range(0..=ww - sw));
        let (r2, c2) = (rng.gen_range(0..=wh - sh), rng.gen_range(0..=ww - sw));
        let in1 = |r: usize, col: usize| r >= r1 && r < r1 + sh && col >= c1 && col < c1 + sw;
        let in2 = |r: usize, col: usize| r >= r2 && r < r2 + sh && col >= c2 && col < c2 + sw;
        let total2: f32 = delta.iter().map(|v| v * v).sum();
        let pat = square_eta(sh, sw, rng);
        for ch in 0..c {
            // Mass in the union of both windows, and the first window's direction.
            let mut union2 = 0.0f32;
            let mut win1 = Vec::with_capacity(sh * sw);
            for r in 0..wh {
                for col in 0..ww {
                    let v = delta[at(ch, r, col)];
                    if in1(r, col) || in2(r, col) {
                        union2 += v * v;
                    }
                }
            }
            for r in r1..r1 + sh {
                for col in c1..c1 + sw {
                    win1.push(delta[at(ch, r, col)]);
                }
            }
            let n1 = l2(&win1);
            let s = if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
            let mut upd: Vec<f32> = pat
                .iter()
                .zip(&win1)
                .map(|(p, o)| s * p + o / (n1 + 1e-12))
                .collect();
            let un = l2(&upd).max(1e-12);
            let mass = ((eps * eps - total2).max(0.0) / c as f32 + union2).sqrt();
            upd.iter_mut().for_each(|v| *v *= mass / un);
            for r in r2..r2 + sh {
                for col in c2..c2 + sw {
                    delta[at(ch, r, col)] = 0.0;
                }
            }
            for r in 0..sh {
                for col in 0..sw {
                    delta[at(ch, r1 + r, c1 + col)] = upd[r * sw + col];
                }
            }
        }
        l2_point(x0, &delta, budget)
    };
    let search = Search {
        model,
        x,
        y,
        targets,
        cfg,
    };
    search.run(ctx, init, propose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::gaussian;
    use aisec_model::test_support::Linear;
    use rand::SeedableRng;

    #[test]
    fn eta_patterns_have_unit_norm_and_peak_in_the_centre() {
        let e = eta_rect(5, 5);
        assert!((l2(&e) - 1.0).abs() < 1e-5);
        let centre = e[2 * 5 + 2];
        assert!(e.iter().all(|&v| v > 0.0 && v <= centre));
        // Symmetric about the centre; ring k holds sum_{j>=k} 1/(j+1)^2, so
        // (ring0 - ring1) / (ring1 - ring2) = 1 / (1/4).
        assert_eq!(e[0], e[24]);
        assert!(((centre - e[5 + 2]) / (e[5 + 2] - e[0]) - 1.0 / 0.25).abs() < 1e-3);
        let mut rng = StdRng::seed_from_u64(0);
        for (r, c) in [(7, 7), (3, 3), (1, 5), (4, 6), (1, 1)] {
            let d = square_eta(r, c, &mut rng);
            assert!((l2(&d) - 1.0).abs() < 1e-5, "{r}x{c}");
            if r * c > 1 {
                // Two halves of opposite sign: the pattern sums to about zero
                // for even splits and has both signs in any case.
                assert!(d.iter().any(|&v| v > 0.0) && d.iter().any(|&v| v < 0.0));
            }
        }
        let d = square_eta(6, 4, &mut rng);
        assert!(d[..12].iter().all(|&v| v > 0.0) && d[12..].iter().all(|&v| v < 0.0));
        assert!(d.iter().sum::<f32>().abs() < 1e-5);
    }

    #[test]
    fn square_l2_stays_in_the_ball_and_box_and_beats_random_noise() {
        let (c, h, w) = (2usize, 10usize, 10usize);
        let d = c * h * w;
        let mut rng = StdRng::seed_from_u64(3);
        let classes = 4;
        let wts: Vec<Vec<f32>> = (0..classes)
            .map(|_| (0..d).map(|_| gaussian(&mut rng)).collect())
            .collect();
        let model = Linear {
            shape: vec![c, h, w],
            w: wts,
        };
        let n = 12;
        let x = Tensor::new(
            vec![n, c, h, w],
            (0..n * d).map(|_| rng.gen_range(0.2f32..0.8)).collect(),
        )
        .unwrap();
        let z = model.logits(&x).unwrap();
        let y: Vec<usize> = (0..n).map(|i| crate::util::predictions(&z)[i]).collect();
        // The exact minimal L2 distance to the nearest other class, per example.
        let minimal: Vec<f32> = (0..n)
            .map(|i| {
                let zi = z.row(i);
                (0..classes)
                    .filter(|&k| k != y[i])
                    .map(|k| {
                        let dw = diff(&model.w[y[i]], &model.w[k]);
                        (zi[y[i]] - zi[k]) / l2(&dw)
                    })
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        let mut sorted = minimal.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let eps = 2.0 * sorted[n / 2];
        let budget = Budget {
            norm: Norm::L2,
            eps,
            lo: 0.0,
            hi: 1.0,
        };
        let cfg = SquareConfig {
            max_queries: 300,
            p_init: 0.3,
        };
        let mut ctx = AttackContext::silent().with_rng(rng);
        let (adv, q) = square(&mut ctx, &model, &x, &y, None, &budget, &cfg).unwrap();
        let rng = ctx.rng();
        let pred = model.predict(&adv).unwrap();
        let mut fooled = 0;
        for i in 0..n {
            let dd = diff(adv.row(i), x.row(i));
            assert!(l2(&dd) <= eps * 1.0001 + 1e-6, "norm {} > {eps}", l2(&dd));
            assert!(adv.row(i).iter().all(|v| (0.0..=1.0).contains(v)));
            assert!((1..=300).contains(&q[i]));
            if pred[i] != y[i] {
                fooled += 1;
                assert!(minimal[i] <= eps * 1.0001, "fooled below the minimal norm");
            } else {
                // Unbroken examples used the whole budget.
                assert_eq!(q[i], 300);
            }
        }
        // Every example whose minimal perturbation is at most eps/2 is easy.
        let easy = minimal.iter().filter(|&&m| m <= eps / 2.0).count();
        assert!(fooled >= easy, "fooled {fooled}, easy {easy}");
        // Random noise of the same norm fools far fewer.
        let mut noise_fooled = 0;
        for i in 0..n {
            let g: Vec<f32> = (0..d).map(|_| gaussian(rng)).collect();
            let p = l2_point(x.row(i), &g, &budget);
            let zp = model
                .logits(&Tensor::new(vec![1, c, h, w], p).unwrap())
                .unwrap();
            if crate::util::predictions(&zp)[0] != y[i] {
                noise_fooled += 1;
            }
        }
        assert!(
            fooled > noise_fooled + 2,
            "square {fooled} vs noise {noise_fooled}"
        );
        // Deterministic for a seed.
        let mut r1 = AttackContext::silent().with_seed(9);
        let mut r2 = AttackContext::silent().with_seed(9);
        let a = square_l2(&mut r1, &model, &x, &y, None, &budget, &cfg).unwrap();
        let b = square_l2(&mut r2, &model, &x, &y, None, &budget, &cfg).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
    }

    #[test]
    fn square_l2_handles_flat_inputs_and_zero_budget() {
        // z0 = 0.2 * sum(x); z1 = sum(x[..3]) - sum(x[3..]). At x = 0.5 class 0
        // wins by 0.6; a perturbation (+a, +a, +a, -a, -a, -a) flips it for
        // a > 0.1 (L2 norm 0.245).
        let model = Linear {
            shape: vec![6],
            w: vec![vec![0.2; 6], vec![1.0, 1.0, 1.0, -1.0, -1.0, -1.0]],
        };
        let x = Tensor::new(vec![2, 6], vec![0.5; 12]).unwrap();
        let y = vec![0, 0];
        let mut ctx = AttackContext::silent().with_seed(1);
        let cfg = SquareConfig {
            max_queries: 50,
            p_init: 0.8,
        };
        let big = Budget {
            norm: Norm::L2,
            eps: 1.0,
            lo: 0.0,
            hi: 1.0,
        };
        let (adv, _) = square_l2(&mut ctx, &model, &x, &y, None, &big, &cfg).unwrap();
        assert!(model.predict(&adv).unwrap().iter().all(|&p| p == 1));
        for i in 0..2 {
            assert!(l2(&diff(adv.row(i), x.row(i))) <= 1.0001);
        }
        let zero = Budget { eps: 0.0, ..big };
        let (adv, q) = square_l2(&mut ctx, &model, &x, &y, None, &zero, &cfg).unwrap();
        assert_eq!(adv, x);
        assert!(q.iter().all(|&v| v == 50));
    }
}
