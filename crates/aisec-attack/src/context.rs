//! The one context every attack in this crate runs in.
//!
//! [`AttackContext`] carries what an attack needs besides its model, data
//! and settings: the caller's [`RunContext`] (a cancel flag polled between
//! units of work and a progress sink told about phases and units done), a
//! seeded random generator, and an optional query budget, the most examples
//! the run may send to the target model. Drivers ([`run_evasion`],
//! [`run_membership`], [`run_inversion`], [`run_extraction`]) take it by
//! reference and hand each unit of parallel work a [`fork`](AttackContext::fork)
//! with its own generator; single attacks (`pgd`, `square`...) take it by
//! mutable reference and draw from [`rng`](AttackContext::rng).
//!
//! Drivers derive every generator from their configuration's `seed`, so a
//! report is reproducible from what it records; the context's own
//! generator (seeded with [`with_seed`](AttackContext::with_seed), 0 by
//! default) serves a single attack called directly.
//!
//! [`run_evasion`]: crate::evasion::run_evasion
//! [`run_membership`]: crate::membership::run_membership
//! [`run_inversion`]: crate::inversion::run_inversion
//! [`run_extraction`]: crate::extraction::run_extraction

use aisec_core::run::{Progress, RunContext};
use aisec_model::blackbox::QueryCounter;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Cancel flag, progress sink, random generator and query budget of an
/// attack run. Cloning shares the cancel flag and the progress sink.
#[derive(Clone, Debug)]
pub struct AttackContext {
    run: RunContext,
    rng: StdRng,
    query_budget: Option<u64>,
}

impl Default for AttackContext {
    fn default() -> Self {
        Self::silent()
    }
}

impl AttackContext {
    /// A context around the caller's run context, seed 0, no query budget.
    pub fn new(run: RunContext) -> Self {
        AttackContext {
            run,
            rng: StdRng::seed_from_u64(0),
            query_budget: None,
        }
    }

    /// A context that reports nothing and is only cancelled through
    /// [`cancel`](AttackContext::cancel) (tests, library use).
    pub fn silent() -> Self {
        Self::new(RunContext::silent())
    }

    /// The same context with its generator seeded by `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// The same context drawing from `rng` (a generator the caller already has).
    pub fn with_rng(mut self, rng: StdRng) -> Self {
        self.rng = rng;
        self
    }

    /// The same context with a query budget: the drivers refuse to send the
    /// target more than `budget` examples in total (`None`: no limit).
    pub fn with_query_budget(mut self, budget: Option<u64>) -> Self {
        self.query_budget = budget;
        self
    }

    /// A context for one unit of work: the same cancel flag, progress sink
    /// and budget, and a fresh generator seeded by `seed`.
    pub fn fork(&self, seed: u64) -> Self {
        AttackContext {
            run: self.run.clone(),
            rng: StdRng::seed_from_u64(seed),
            query_budget: self.query_budget,
        }
    }

    /// The generator every random choice of a single attack draws from.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The caller's run context.
    pub fn run(&self) -> &RunContext {
        &self.run
    }

    /// Whether the caller asked the work to stop. Attacks poll this between
    /// steps and return what they have.
    pub fn is_cancelled(&self) -> bool {
        self.run.is_cancelled()
    }

    /// Raises the shared cancel flag.
    pub fn cancel(&self) {
        self.run.cancel.cancel();
    }

    /// The progress sink.
    pub fn progress(&self) -> &dyn Progress {
        self.run.progress.as_ref()
    }

    /// Starts a phase of `total` units.
    pub fn phase(&self, name: &str, total: u64) {
        self.run.progress.phase(name, Some(total));
    }

    /// `n` more units of the current phase are done.
    pub fn advance(&self, n: u64) {
        if n > 0 {
            self.run.progress.advance(n);
        }
    }

    /// The query budget, if any.
    pub fn query_budget(&self) -> Option<u64> {
        self.query_budget
    }

    /// Wraps the target in the run's query counter (with the budget, if any).
    pub fn counter<C>(&self, target: C) -> QueryCounter<C> {
        QueryCounter::with_limit(target, self.query_budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    struct Count(AtomicU64, std::sync::Mutex<Vec<(String, Option<u64>)>>);
    impl Progress for Count {
        fn phase(&self, name: &str, total: Option<u64>) {
            if let Ok(mut v) = self.1.lock() {
                v.push((name.to_string(), total));
            }
        }
        fn advance(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn forks_share_cancel_and_progress_but_not_generators() {
        let count = Arc::new(Count::default());
        let ctx = AttackContext::new(RunContext::with_progress(count.clone()))
            .with_seed(3)
            .with_query_budget(Some(10));
        let mut a = ctx.fork(1);
        let mut b = ctx.fork(1);
        let mut c = ctx.fork(2);
        let (va, vb, vc): (u64, u64, u64) = (a.rng().gen(), b.rng().gen(), c.rng().gen());
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        assert_eq!(c.query_budget(), Some(10));
        a.phase("pgd", 4);
        b.advance(3);
        c.advance(0);
        assert_eq!(count.0.load(Ordering::Relaxed), 3);
        assert_eq!(count.1.lock().unwrap()[0], ("pgd".to_string(), Some(4)));
        assert!(!ctx.is_cancelled());
        c.cancel();
        assert!(ctx.is_cancelled() && a.is_cancelled());
    }
}
