//! How long-running library work reports progress and learns that it
//! should stop.
//!
//! Every capability that can run for more than a few seconds (scanning a
//! tree, an attack, training, probing an endpoint) takes a [`RunContext`]:
//! a [`Cancel`] flag it polls between units of work, and a [`Progress`]
//! sink it tells how many units there are and how many are done. Libraries
//! never draw bars or install signal handlers themselves; the `aisec` CLI
//! decides that once (a bar on a terminal, nothing under `--quiet` or when
//! output is piped) and passes the context down. Tests and library users
//! pass [`RunContext::silent`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A shared "stop now" flag. Cloning shares the flag; raising it on any
/// clone is seen by all of them.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises the flag (for example from a Ctrl-C handler).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is raised. Work checks this between units and
    /// returns what it has, marked incomplete.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The underlying flag, for code that takes a plain `&AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// Where long-running work reports how far it has got.
///
/// Work is a sequence of phases ("clean accuracy", "pgd", "shadow models");
/// each phase has a unit count when it is known in advance. Implementations
/// must be cheap to call from several threads.
pub trait Progress: Send + Sync {
    /// A new phase starts, with `total` units when known.
    fn phase(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// A short status line for the current phase (for example the running
    /// accuracy); implementations may ignore it.
    fn message(&self, _msg: &str) {}
    /// The whole run has ended (normally or not).
    fn finish(&self) {}
}

/// A [`Progress`] that discards everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
}

/// What a long-running call needs from its caller: a cancel flag and a
/// progress sink.
#[derive(Clone)]
pub struct RunContext {
    /// Polled between units of work.
    pub cancel: Cancel,
    /// Told about phases and units done.
    pub progress: Arc<dyn Progress>,
}

impl RunContext {
    /// A context that is never cancelled by anyone but the caller and
    /// reports nothing.
    pub fn silent() -> Self {
        Self {
            cancel: Cancel::new(),
            progress: Arc::new(NoProgress),
        }
    }

    /// A context with the given progress sink and a fresh cancel flag.
    pub fn with_progress(progress: Arc<dyn Progress>) -> Self {
        Self {
            cancel: Cancel::new(),
            progress,
        }
    }

    /// Whether the caller asked the work to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl Default for RunContext {
    fn default() -> Self {
        Self::silent()
    }
}

impl std::fmt::Debug for RunContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Count {
        phases: AtomicU64,
        units: AtomicU64,
    }

    impl Progress for Count {
        fn phase(&self, _name: &str, _total: Option<u64>) {
            self.phases.fetch_add(1, Ordering::Relaxed);
        }
        fn advance(&self, n: u64) {
            self.units.fetch_add(n, Ordering::Relaxed);
        }
    }

    #[test]
    fn cancel_is_shared_between_clones() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        assert!(b.is_cancelled());
        assert!(b.flag().load(Ordering::Relaxed));
    }

    #[test]
    fn context_forwards_progress() {
        let count = Arc::new(Count::default());
        let ctx = RunContext::with_progress(count.clone());
        ctx.progress.phase("pgd", Some(10));
        ctx.progress.advance(3);
        ctx.progress.advance(4);
        assert_eq!(count.phases.load(Ordering::Relaxed), 1);
        assert_eq!(count.units.load(Ordering::Relaxed), 7);
        assert!(!ctx.is_cancelled());
        ctx.cancel.cancel();
        assert!(ctx.clone().is_cancelled());
    }
}
