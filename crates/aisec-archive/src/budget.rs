//! Budgets that span nesting and parallel workers.
//!
//! [`Limits`] bounds one entry or stream. A recursive bomb defeats
//! per-container bounds: 42.zip nests four levels of sixteen zips, so each
//! container is small while the work grows sixteen-fold per level, and
//! Fifield's overlapping-entry bomb ("A better zip bomb", WOOT 2019) points
//! thousands of central-directory records at one deflate stream so every
//! entry inflates to the per-entry cap. Two budgets close this:
//!
//! * [`FileBudget`], one per top-level file, shared by every container
//!   nested in it: the bytes its members may inflate to in total
//!   ([`Limits::max_total_bytes`], also charged for stored members, since
//!   overlapping stored entries cost analysis time the same way) and the
//!   entries that may be opened in total ([`Limits::max_total_entries`]).
//!   What is spent is never given back, so the work per file is bounded
//!   whatever the nesting.
//! * [`MemoryPool`], one per scan, shared by the parallel workers: the
//!   inflated bytes held in memory at once. A [`Grant`] holds its bytes
//!   until it is dropped, together with the buffer it paid for.
//!
//! Reservation happens before decoding and the unused part is refunded
//! after, so concurrent workers never overshoot the pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::Limits;

/// Inflated bytes held in memory at once by all workers of a scan.
#[derive(Debug)]
pub struct MemoryPool {
    limit: u64,
    in_use: AtomicU64,
}

impl MemoryPool {
    /// A pool of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        MemoryPool {
            limit,
            in_use: AtomicU64::new(0),
        }
    }

    /// Bytes currently held.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// The pool's size.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes up to `want` bytes; returns how many were granted.
    fn take(&self, want: u64) -> u64 {
        let mut got = 0;
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                got = want.min(self.limit.saturating_sub(used));
                Some(used + got)
            });
        got
    }

    fn give_back(&self, n: u64) {
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }
}

/// Takes up to `want` from an atomic counter of what is left.
fn take_from(left: &AtomicU64, want: u64) -> u64 {
    let mut got = 0;
    let _ = left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
        got = want.min(l);
        Some(l - got)
    });
    got
}

/// The work one top-level file may cause across all its nested containers.
#[derive(Debug)]
pub struct FileBudget {
    bytes_left: AtomicU64,
    entries_left: AtomicUsize,
    bytes_total: u64,
    entries_total: usize,
    pool: Arc<MemoryPool>,
}

/// Bytes granted for one member or stream, held from the memory pool until
/// dropped.
#[derive(Debug)]
pub struct Grant {
    /// The bytes that may be produced (the output cap to use).
    pub bytes: u64,
    /// When less than asked was granted, which budget was short.
    pub short_by: Option<&'static str>,
    held: u64,
    pool: Option<Arc<MemoryPool>>,
}

impl Drop for Grant {
    fn drop(&mut self) {
        if let Some(p) = &self.pool {
            p.give_back(self.held);
        }
    }
}

impl FileBudget {
    /// A fresh budget from `limits`, drawing memory from `pool`.
    pub fn new(limits: &Limits, pool: Arc<MemoryPool>) -> Self {
        FileBudget {
            bytes_left: AtomicU64::new(limits.max_total_bytes),
            entries_left: AtomicUsize::new(limits.max_total_entries),
            bytes_total: limits.max_total_bytes,
            entries_total: limits.max_total_entries,
            pool,
        }
    }

    /// Bytes this file may still cause to be inflated or analysed.
    pub fn bytes_left(&self) -> u64 {
        self.bytes_left.load(Ordering::Relaxed)
    }

    /// The file's total byte budget.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total
    }

    /// The file's total entry budget.
    pub fn entries_total(&self) -> usize {
        self.entries_total
    }

    /// Counts one entry opened; false once the entry budget is spent.
    pub fn take_entry(&self) -> bool {
        self.entries_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| l.checked_sub(1))
            .is_ok()
    }

    /// Reserves up to `want` bytes of output that will be held in memory
    /// (an inflated member or stream): from the file's budget and from the
    /// shared pool. Call [`FileBudget::settle`] with what was produced.
    pub fn reserve_inflate(&self, want: u64) -> Grant {
        let from_file = take_from(&self.bytes_left, want);
        let from_pool = self.pool.take(from_file);
        // Refund the file what the pool could not cover.
        self.bytes_left
            .fetch_add(from_file - from_pool, Ordering::AcqRel);
        let short_by = if from_pool == want {
            None
        } else if from_file < want {
            Some("per-file inflated-bytes budget")
        } else {
            Some("memory budget shared by the parallel workers")
        };
        Grant {
            bytes: from_pool,
            short_by,
            held: from_pool,
            pool: Some(self.pool.clone()),
        }
    }

    /// Charges `n` bytes analysed in place (a stored member borrowed from
    /// the file): from the file's budget only, nothing is held.
    pub fn reserve_borrowed(&self, n: u64) -> Grant {
        let got = take_from(&self.bytes_left, n);
        Grant {
            bytes: got,
            short_by: (got < n).then_some("per-file inflated-bytes budget"),
            held: 0,
            pool: None,
        }
    }

    /// After decoding: `produced` bytes are kept (held from the pool until
    /// the grant drops); the rest of the reservation is refunded to this
    /// budget (the one that made the grant) and to the pool.
    pub fn settle(&self, g: &mut Grant, produced: u64) {
        let keep = produced.min(g.held);
        let unused = g.held - keep;
        if let Some(p) = &g.pool {
            self.bytes_left.fetch_add(unused, Ordering::AcqRel);
            p.give_back(unused);
        }
        g.held = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: u64, entries: usize) -> Limits {
        Limits {
            max_total_bytes: bytes,
            max_total_entries: entries,
            ..Limits::default()
        }
    }

    #[test]
    fn file_budget_is_spent_and_refunded() {
        let pool = Arc::new(MemoryPool::new(1000));
        let b = FileBudget::new(&limits(100, 2), pool.clone());
        let mut g = b.reserve_inflate(80);
        assert_eq!((g.bytes, g.short_by), (80, None));
        assert_eq!(pool.in_use(), 80);
        b.settle(&mut g, 30);
        assert_eq!(b.bytes_left(), 70);
        assert_eq!(pool.in_use(), 30);
        drop(g);
        assert_eq!(pool.in_use(), 0);
        // Spent bytes stay spent.
        let g = b.reserve_inflate(500);
        assert_eq!(g.bytes, 70);
        assert_eq!(g.short_by, Some("per-file inflated-bytes budget"));
        assert!(b.take_entry() && b.take_entry() && !b.take_entry());
    }

    #[test]
    fn pool_is_shared_between_files() {
        let pool = Arc::new(MemoryPool::new(100));
        let a = FileBudget::new(&limits(1000, 10), pool.clone());
        let b = FileBudget::new(&limits(1000, 10), pool.clone());
        let mut ga = a.reserve_inflate(70);
        a.settle(&mut ga, 70);
        let gb = b.reserve_inflate(70);
        assert_eq!(gb.bytes, 30);
        assert_eq!(
            gb.short_by,
            Some("memory budget shared by the parallel workers")
        );
        // b's file budget was refunded what the pool could not give.
        assert_eq!(b.bytes_left(), 970);
        drop(ga);
        drop(gb);
        assert_eq!(pool.in_use(), 0);
        let g = b.reserve_borrowed(2000);
        assert_eq!(g.bytes, 970);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn concurrent_reservations_never_overshoot() {
        let pool = Arc::new(MemoryPool::new(1 << 20));
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let f = FileBudget::new(&limits(u64::MAX, 10), pool.clone());
                    for _ in 0..2000 {
                        let mut g = f.reserve_inflate(300_000);
                        let half = g.bytes / 2;
                        f.settle(&mut g, half);
                        peak.fetch_max(pool.in_use(), Ordering::Relaxed);
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 1 << 20);
        assert_eq!(pool.in_use(), 0);
    }
}
