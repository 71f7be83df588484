//! Surviving a mapped file that shrinks during a scan.
//!
//! Reading a page of a memory map past the file's current end raises
//! SIGBUS, which kills the process (exit 135) and loses the whole report.
//! Instead of `sigsetjmp`/`longjmp` out of the parser (undefined behaviour
//! in Rust), the handler here repairs the fault in place: when the address
//! lies in a map registered by [`register`], it maps an anonymous zero page
//! over the faulting page (`MAP_FIXED`) and records that this map faulted;
//! the read then resumes and sees zeros. The scanner checks
//! [`MapGuard::faulted`] (and the file's length) after the scan and turns
//! that file's result into an error; the other files' results and the
//! report are unaffected. Faults outside registered maps go to the handler
//! that was installed before (Rust's stack-overflow handler, or the
//! default action), so real bugs still crash.
//!
//! The same repair-and-continue approach is used by databases that map
//! files they do not own (for example LMDB's and SQLite's advice to treat
//! SIGBUS on mapped I/O as a recoverable I/O error).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// How many maps may be registered at once (one per file being scanned).
const SLOTS: usize = 256;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicUsize = AtomicUsize::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const NO: AtomicBool = AtomicBool::new(false);
static STARTS: [AtomicUsize; SLOTS] = [ZERO; SLOTS];
static LENS: [AtomicUsize; SLOTS] = [ZERO; SLOTS];
static FAULTED: [AtomicBool; SLOTS] = [NO; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// A registered map; unregisters on drop.
#[derive(Debug)]
pub(crate) struct MapGuard {
    slot: usize,
}

impl MapGuard {
    /// Whether a read of this map faulted (the file shrank under it).
    pub(crate) fn faulted(&self) -> bool {
        FAULTED[self.slot].load(Ordering::Acquire)
    }
}

impl Drop for MapGuard {
    fn drop(&mut self) {
        LENS[self.slot].store(0, Ordering::Release);
        STARTS[self.slot].store(0, Ordering::Release);
    }
}

/// Registers the mapped range `[ptr, ptr + len)`; `None` when the handler
/// cannot be installed or every slot is taken (the caller then reads the
/// file into memory instead of mapping it).
pub(crate) fn register(ptr: *const u8, len: usize) -> Option<MapGuard> {
    if len == 0 || !install() {
        return None;
    }
    for slot in 0..SLOTS {
        // Claim a free slot by its start address.
        if STARTS[slot]
            .compare_exchange(0, ptr as usize, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            FAULTED[slot].store(false, Ordering::Release);
            LENS[slot].store(len, Ordering::Release);
            return Some(MapGuard { slot });
        }
    }
    None
}

/// Installs the handler once; false if that failed.
fn install() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: sysconf and sigaction are called with valid
            // arguments; the handler only touches atomics and calls mmap.
            unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE);
                if page > 0 {
                    PAGE.store(page as usize, Ordering::Release);
                }
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = handler as *const () as usize;
                new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut new.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
                    Some(old)
                } else {
                    None
                }
            }
        })
        .is_some()
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Acquire);
    for slot in 0..SLOTS {
        let len = LENS[slot].load(Ordering::Acquire);
        let start = STARTS[slot].load(Ordering::Acquire);
        if len == 0 || addr < start || addr >= start.saturating_add(len) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: the page lies inside a read-only private map this process
        // owns for the duration of the scan; replacing it with a zero page
        // keeps every pointer into the map valid.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            FAULTED[slot].store(true, Ordering::Release);
            return;
        }
    }
    // Not ours: hand over to whoever handled SIGBUS before.
    // SAFETY: restoring or calling the previous disposition as the kernel
    // would have.
    unsafe {
        match PREVIOUS.get().copied().flatten() {
            Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(old.sa_sigaction);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(old.sa_sigaction);
                    f(sig);
                }
            }
            _ => {
                // Default action: the fault repeats on return and kills.
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_map_reads_zeros_and_is_flagged() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; 1 << 20]).unwrap();
        drop(f);
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: test-only map of a file this test owns.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let guard = register(map.as_ptr(), map.len()).unwrap();
        assert_eq!(map[0], 7);
        // Another writer cuts the file to one page.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let sum: u64 = map.iter().map(|&b| b as u64).sum();
        assert!(guard.faulted());
        assert_eq!(sum, 7 * 4096);
        drop(guard);
    }
}
