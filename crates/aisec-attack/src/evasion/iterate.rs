//! Iteration scaffolding shared by the iterative gradient attacks.
//!
//! PGD/BIM, APGD, APGD-T and FAB-T have the same outer shape: a schedule
//! of runs (restarts, and for the targeted attacks one round of restarts
//! per target class, ranked by the clean logits), each run attacking the
//! examples that still need it, a step loop that stops when the caller
//! cancels, and a per-example record of the example to return. The
//! attacks differ only in what one run does; this module holds the rest:
//!
//! * [`Schedule::drive`] runs `body` once per (target rank, restart) on
//!   the examples to attack ([`Pick`]), stopping early when none is left or
//!   the context is cancelled;
//! * [`Outcome`] keeps, per example, the point to return and whether it
//!   meets the goal ([`Outcome::first`] for attacks that keep the first
//!   success, [`Outcome::smaller`] for minimal-norm attacks);
//! * [`steps`] is a step counter that ends once the run is cancelled;
//! * [`Targeted`] ranks classes by clean logit and schedules the target
//!   classes of APGD-T and FAB-T.

use aisec_core::run::Cancel;
use aisec_model::{Classifier, ModelError, Tensor};

use crate::context::AttackContext;
use crate::util::stack;

/// Which examples each run of a [`Schedule`] attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Only those that do not meet the goal yet (PGD, APGD, APGD-T).
    Unbroken,
    /// Every example, every run (FAB-T keeps shrinking successful ones).
    All,
}

/// One run of a schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run {
    /// Target rank: 0 for untargeted attacks, else 1, 2, ... (the class
    /// ranked that far below the top clean logit).
    pub rank: usize,
    /// Restart index within the rank, from 0.
    pub restart: usize,
    /// This is the last rank of the schedule.
    pub last_rank: bool,
    /// This is the last run of the schedule.
    pub last: bool,
}

/// The runs an iterative attack makes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    /// `None`: untargeted, one round of restarts; `Some(k)`: target ranks
    /// `1..=k`, one round each (none when `k` is 0).
    pub targets: Option<usize>,
    /// Restarts per round (at least one).
    pub restarts: usize,
}

impl Schedule {
    /// Calls `body(ctx, outcome, run, examples)` for every run in order,
    /// with the indices of the examples `pick` selects; stops when none is
    /// left or the context is cancelled (checked before each run).
    pub(crate) fn drive<E>(
        &self,
        ctx: &mut AttackContext,
        out: &mut Outcome,
        pick: Pick,
        mut body: impl FnMut(&mut AttackContext, &mut Outcome, Run, &[usize]) -> Result<(), E>,
    ) -> Result<(), E> {
        let ranks: Vec<usize> = match self.targets {
            None => vec![0],
            Some(k) => (1..=k).collect(),
        };
        let restarts = self.restarts.max(1);
        for (ri, &rank) in ranks.iter().enumerate() {
            let last_rank = ri + 1 == ranks.len();
            for restart in 0..restarts {
                let idx: Vec<usize> = match pick {
                    Pick::Unbroken => out.unbroken(),
                    Pick::All => (0..out.len()).collect(),
                };
                if (pick == Pick::Unbroken && idx.is_empty()) || ctx.is_cancelled() {
                    return Ok(());
                }
                let run = Run {
                    rank,
                    restart,
                    last_rank,
                    last: last_rank && restart + 1 == restarts,
                };
                body(ctx, out, run, &idx)?;
            }
        }
        Ok(())
    }
}

/// Per example: the point an attack returns, whether it meets the goal,
/// and its threat norm (for minimal-norm attacks).
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The point to return (the clean input until something better is found).
    pub adv: Vec<Vec<f32>>,
    /// The point meets the attack's goal.
    pub found: Vec<bool>,
    /// Threat norm of the point where found (infinite otherwise).
    pub norm: Vec<f32>,
}

impl Outcome {
    /// Every example at its clean input, none found.
    pub(crate) fn new(x: &Tensor) -> Self {
        let n = x.batch();
        Outcome {
            adv: (0..n).map(|i| x.row(i).to_vec()).collect(),
            found: vec![false; n],
            norm: vec![f32::INFINITY; n],
        }
    }

    /// Examples.
    pub(crate) fn len(&self) -> usize {
        self.adv.len()
    }

    /// Indices of the examples not found yet.
    pub(crate) fn unbroken(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| !self.found[i]).collect()
    }

    /// Keeps `point` for example `i` if it is the first success.
    pub(crate) fn first(&mut self, i: usize, point: &[f32]) {
        if !self.found[i] {
            self.found[i] = true;
            self.adv[i] = point.to_vec();
        }
    }

    /// Keeps `point` (a success of threat norm `norm`) for example `i` if
    /// it is smaller than what was kept.
    pub(crate) fn smaller(&mut self, i: usize, point: &[f32], norm: f32) {
        if norm < self.norm[i] {
            self.norm[i] = norm;
            self.found[i] = true;
            self.adv[i] = point.to_vec();
        }
    }

    /// The kept points as a batch with per-example `shape`.
    pub(crate) fn into_tensor(self, shape: &[usize]) -> Tensor {
        stack(&self.adv, shape)
    }
}

/// Step indices `0..n` that end early once the run is cancelled (checked
/// before each step), so a step loop reads `for step in steps(ctx, n)`.
pub(crate) fn steps(ctx: &AttackContext, n: usize) -> impl Iterator<Item = usize> {
    let cancel: Cancel = ctx.run().cancel.clone();
    (0..n).take_while(move |_| !cancel.is_cancelled())
}

/// What a targeted attack (APGD-T, FAB-T) starts from: the classes ranked
/// by the clean logits, and a schedule over the `target_classes` classes
/// ranked below the top one (at most every other class).
pub(crate) struct Targeted {
    /// Classes per example, by decreasing clean logit.
    pub ranks: Vec<Vec<usize>>,
    /// Number of classes.
    pub classes: usize,
    /// One round of `restarts` per target rank.
    pub schedule: Schedule,
}

impl Targeted {
    /// Queries the clean logits of `x` once.
    pub(crate) fn new(
        model: &dyn Classifier,
        x: &Tensor,
        target_classes: usize,
        restarts: usize,
    ) -> Result<Self, ModelError> {
        let z0 = model.logits(x)?;
        let classes = z0.row_len();
        Ok(Targeted {
            ranks: ranked_classes(&z0),
            classes,
            schedule: Schedule {
                targets: Some(target_classes.min(classes.saturating_sub(1))),
                restarts,
            },
        })
    }
}

/// Classes of each example ordered by decreasing logit.
pub(crate) fn ranked_classes(z: &Tensor) -> Vec<Vec<usize>> {
    (0..z.batch())
        .map(|i| {
            let zi = z.row(i);
            let mut idx: Vec<usize> = (0..zi.len()).collect();
            idx.sort_by(|&a, &b| {
                zi[b]
                    .partial_cmp(&zi[a])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            idx
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_runs_ranks_and_restarts_on_what_is_left() {
        let x = Tensor::zeros(vec![3, 2]);
        let mut ctx = AttackContext::silent();
        let mut out = Outcome::new(&x);
        let mut seen = Vec::new();
        Schedule {
            targets: Some(2),
            restarts: 2,
        }
        .drive::<()>(&mut ctx, &mut out, Pick::Unbroken, |_, o, run, idx| {
            seen.push((run.rank, run.restart, run.last_rank, run.last, idx.to_vec()));
            // The first run breaks example 1.
            o.first(1, &[1.0, 1.0]);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, 0, false, false, vec![0, 1, 2]),
                (1, 1, false, false, vec![0, 2]),
                (2, 0, true, false, vec![0, 2]),
                (2, 1, true, true, vec![0, 2]),
            ]
        );
        // Minimal-norm bookkeeping keeps the smaller success.
        out.smaller(0, &[0.5, 0.5], 0.5);
        out.smaller(0, &[0.9, 0.9], 0.9);
        assert_eq!(out.adv[0], vec![0.5, 0.5]);
        // Cancelled: no run at all; untargeted: one round.
        let mut n = 0;
        ctx.cancel();
        Schedule {
            targets: None,
            restarts: 3,
        }
        .drive::<()>(&mut ctx, &mut Outcome::new(&x), Pick::All, |_, _, _, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 0);
        assert_eq!(steps(&ctx, 5).count(), 0);
        assert_eq!(steps(&AttackContext::silent(), 5).count(), 5);
    }
}
