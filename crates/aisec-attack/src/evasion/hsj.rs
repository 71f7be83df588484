//! HopSkipJump, a label-only (decision-based) minimal-perturbation attack.

use aisec_core::run::Cancel;
use aisec_model::{Classifier, ModelError, Tensor};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::context::AttackContext;
use crate::util::{
    clip, diff, example_shape, gaussian, goal_met, l2, linf, sign, stack, Budget, Norm,
};

/// Settings of [`hop_skip_jump`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HsjConfig {
    /// Queries per example.
    pub max_queries: u64,
    /// Gradient-estimation iterations.
    pub max_iter: usize,
    /// Samples for the first gradient estimate (grows as `sqrt(t)`).
    pub init_evals: usize,
    /// Cap on samples per gradient estimate.
    pub max_evals: usize,
    /// Random draws tried to find an adversarial starting point.
    pub init_tries: usize,
    /// Binary-search precision constant `gamma`.
    pub gamma: f32,
}

impl Default for HsjConfig {
    fn default() -> Self {
        HsjConfig {
            max_queries: 5000,
            max_iter: 40,
            init_evals: 100,
            max_evals: 1000,
            init_tries: 100,
            gamma: 1.0,
        }
    }
}

/// Label oracle for one example with a query budget.
struct Oracle<'a> {
    model: &'a dyn Classifier,
    shape: &'a [usize],
    label: usize,
    target: Option<usize>,
    used: u64,
    max: u64,
}

impl Oracle<'_> {
    /// Whether each row meets the goal; `None` when the budget cannot pay for all rows.
    fn ask(&mut self, rows: &[Vec<f32>]) -> Result<Option<Vec<bool>>, ModelError> {
        if rows.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if self.used + rows.len() as u64 > self.max {
            return Ok(None);
        }
        self.used += rows.len() as u64;
        let pred = self.model.predict(&stack(rows, self.shape))?;
        Ok(Some(
            pred.iter()
                .map(|&p| goal_met(p, self.label, self.target))
                .collect(),
        ))
    }

    fn ask_one(&mut self, row: &[f32]) -> Result<Option<bool>, ModelError> {
        Ok(self.ask(&[row.to_vec()])?.map(|v| v[0]))
    }
}

/// HopSkipJump (Chen, Jordan & Wainwright 2020, "HopSkipJumpAttack: a
/// query-efficient decision-based attack"), label-only via
/// [`Classifier::predict`], L2 or L-inf. Starts from a random point that
/// meets the goal, then alternates binary search to the boundary, Monte
/// Carlo estimation of the boundary normal, and a geometric step search.
/// Returns the best boundary point (the clean input when no starting
/// point was found) and the queries per example. `budget` gives the norm
/// and the valid range; its radius is not used (the attack minimises the
/// perturbation).
pub fn hop_skip_jump(
    ctx: &mut AttackContext,
    model: &dyn Classifier,
    x: &Tensor,
    y: &[usize],
    targets: Option<&[usize]>,
    budget: &Budget,
    cfg: &HsjConfig,
) -> Result<(Tensor, Vec<u64>), ModelError> {
    let cancel = ctx.run().cancel.clone();
    let rng = ctx.rng();
    let n = x.batch();
    let shape = example_shape(x);
    let mut out = x.clone();
    let mut queries = vec![0u64; n];
    for i in 0..n {
        if cancel.is_cancelled() {
            break;
        }
        let mut o = Oracle {
            model,
            shape: &shape,
            label: y[i],
            target: targets.map(|t| t[i]),
            used: 0,
            max: cfg.max_queries,
        };
        if let Some(adv) = hsj_one(&mut o, x.row(i), budget, cfg, rng, &cancel)? {
            out.row_mut(i).copy_from_slice(&adv);
        }
        queries[i] = o.used;
    }
    Ok((out, queries))
}

fn dist(norm: Norm, a: &[f32], b: &[f32]) -> f32 {
    let d = diff(a, b);
    match norm {
        Norm::L2 => l2(&d),
        Norm::Linf => linf(&d),
    }
}

/// Binary search between `x0` (goal not met) and `adv` (goal met) for the
/// boundary; returns a point meeting the goal, or `None` when out of queries.
fn boundary_search(
    o: &mut Oracle,
    x0: &[f32],
    adv: &[f32],
    norm: Norm,
    theta: f32,
) -> Result<Option<Vec<f32>>, ModelError> {
    let blend = |a: f32| -> Vec<f32> {
        match norm {
            Norm::L2 => x0
                .iter()
                .zip(adv)
                .map(|(&p, &q)| (1.0 - a) * p + a * q)
                .collect(),
            Norm::Linf => x0
                .iter()
                .zip(adv)
                .map(|(&p, &q)| q.clamp(p - a, p + a))
                .collect(),
        }
    };
    let (mut low, mut high, thr) = match norm {
        Norm::L2 => (0.0f32, 1.0f32, theta),
        Norm::Linf => {
            let d = dist(norm, adv, x0);
            (0.0, d, (d * theta).min(theta))
        }
    };
    let mut guard = 0;
    while high - low > thr && guard < 64 {
        guard += 1;
        let mid = 0.5 * (low + high);
        match o.ask_one(&blend(mid))? {
            None => break,
            Some(true) => high = mid,
            Some(false) => low = mid,
        }
    }
    Ok(Some(blend(high)))
}

fn hsj_one(
    o: &mut Oracle,
    x0: &[f32],
    budget: &Budget,
    cfg: &HsjConfig,
    rng: &mut StdRng,
    cancel: &Cancel,
) -> Result<Option<Vec<f32>>, ModelError> {
    let (norm, lo, hi) = (budget.norm, budget.lo, budget.hi);
    let d = x0.len().max(1);
    let df = d as f32;
    // A starting point that meets the goal: uniform noise in the box.
    let mut start = None;
    for _ in 0..cfg.init_tries {
        let r: Vec<f32> = (0..d).map(|_| rng.gen_range(lo..=hi)).collect();
        match o.ask_one(&r)? {
            None => return Ok(None),
            Some(true) => {
                start = Some(r);
                break;
            }
            Some(false) => {}
        }
    }
    let Some(start) = start else { return Ok(None) };
    // Initial L2 blend search towards x0 (as in the reference implementation).
    let theta = match norm {
        Norm::L2 => cfg.gamma / (df.sqrt() * df),
        Norm::Linf => cfg.gamma / (df * df),
    };
    let Some(mut xb) = boundary_search(o, x0, &start, Norm::L2, theta)? else {
        return Ok(Some(start));
    };
    let Some(first) = boundary_search(o, x0, &xb, norm, theta)? else {
        return Ok(Some(xb));
    };
    xb = first;
    let mut dcur = dist(norm, &xb, x0);
    for t in 1..=cfg.max_iter {
        if cancel.is_cancelled() || o.used >= o.max {
            break;
        }
        let delta = if t == 1 {
            0.1 * (hi - lo)
        } else {
            match norm {
                Norm::L2 => df.sqrt() * theta * dcur,
                Norm::Linf => df * theta * dcur,
            }
        };
        let evals = ((cfg.init_evals as f32 * (t as f32).sqrt()) as usize)
            .min(cfg.max_evals)
            .min(o.max.saturating_sub(o.used) as usize);
        if evals < 2 {
            break;
        }
        // Monte Carlo estimate of the boundary normal.
        let mut dirs = Vec::with_capacity(evals);
        let mut rows = Vec::with_capacity(evals);
        for _ in 0..evals {
            let mut u: Vec<f32> = match norm {
                Norm::L2 => (0..d).map(|_| gaussian(rng)).collect(),
                Norm::Linf => (0..d).map(|_| rng.gen_range(-1.0f32..=1.0)).collect(),
            };
            let un = l2(&u).max(1e-12);
            for v in u.iter_mut() {
                *v /= un;
            }
            let mut p: Vec<f32> = xb.iter().zip(&u).map(|(a, b)| a + delta * b).collect();
            clip(&mut p, lo, hi);
            let u: Vec<f32> = p.iter().zip(&xb).map(|(a, b)| (a - b) / delta).collect();
            dirs.push(u);
            rows.push(p);
        }
        let Some(dec) = o.ask(&rows)? else { break };
        let f: Vec<f32> = dec.iter().map(|&b| if b { 1.0 } else { -1.0 }).collect();
        let mean = f.iter().sum::<f32>() / f.len() as f32;
        let mut g = vec![0.0f32; d];
        for (fi, u) in f.iter().zip(&dirs) {
            let w = if mean.abs() >= 1.0 { *fi } else { fi - mean };
            for (gj, uj) in g.iter_mut().zip(u) {
                *gj += w * uj;
            }
        }
        let gn = l2(&g).max(1e-12);
        let update: Vec<f32> = match norm {
            Norm::L2 => g.iter().map(|v| v / gn).collect(),
            Norm::Linf => g.iter().map(|v| sign(*v)).collect(),
        };
        // Geometric step-size search.
        let mut eps = dcur / (t as f32).sqrt();
        let mut moved = None;
        for _ in 0..25 {
            let mut p: Vec<f32> = xb.iter().zip(&update).map(|(a, b)| a + eps * b).collect();
            clip(&mut p, lo, hi);
            match o.ask_one(&p)? {
                None => break,
                Some(true) => {
                    moved = Some(p);
                    break;
                }
                Some(false) => eps /= 2.0,
            }
        }
        let Some(p) = moved else { break };
        let Some(nb) = boundary_search(o, x0, &p, norm, theta)? else {
            break;
        };
        let nd = dist(norm, &nb, x0);
        if nd <= dcur {
            xb = nb;
            dcur = nd;
        }
    }
    Ok(Some(xb))
}
