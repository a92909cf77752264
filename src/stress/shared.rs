//! State shared between the harness and its forked writers, in one
//! `MAP_SHARED` page set: the storm's start signal, the stop flag and
//! deadline, and one slot per writer (progress, pids, outcome counters).
//!
//! Only relaxed per-writer counters and the harness's own flags live here:
//! nothing in it orders two writers' critical sections, so it cannot hide a
//! mutual-exclusion failure.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use super::sys::SharedMap;

/// The storm's `go` value that tells writers to leave.
pub const GO_STOP: u32 = u32::MAX;

#[repr(C, align(64))]
pub struct Header {
    /// Storm: the round writers may start (a futex word).
    pub go: AtomicU32,
    /// Nonzero: every writer leaves at its next check.
    pub stop: AtomicU32,
    /// CLOCK_MONOTONIC ns after which writers leave; 0 for none.
    pub deadline_ns: AtomicU64,
}

/// One writer's public state. Written by the writer (and its successors
/// after a restart), read by the harness.
#[repr(C, align(64))]
pub struct Slot {
    /// Acquisitions completed by this writer index: the next sequence number.
    pub progress: AtomicU64,
    /// Loop iterations (acquisitions, or storm rounds) over all incarnations.
    pub iterations: AtomicU64,
    /// Storm: the last round this writer finished.
    pub round: AtomicU64,
    /// The process to signal to kill or pause this writer's lock holder.
    pub signal_pid: AtomicI32,
    /// An extra process group to kill at teardown (an adapter's).
    pub group: AtomicI32,
    /// The PID its lock records carry (differs from `signal_pid` in a PID
    /// namespace, or for an adapter).
    pub record_pid: AtomicU32,
    /// Try-acquires that found the lock held.
    pub busy_held: AtomicU64,
    /// ... found it stale but guarded (§8.1).
    pub busy_guarded: AtomicU64,
    /// ... saw it change in every round (§7.3).
    pub busy_contended: AtomicU64,
    /// Acquires or releases that failed with an error.
    pub errors: AtomicU64,
    /// Releases that reported the lock lost (§9.2).
    pub lost: AtomicU64,
    /// CLOCK_MONOTONIC ns before which every event of this writer is in its
    /// ledger: set by the harness when it starts the writer, and by the
    /// writer whenever it has no event under way. Progress reads the
    /// ledgers up to there while the run goes on.
    pub floor: AtomicU64,
}

/// Totals over all slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub busy_held: u64,
    pub busy_guarded: u64,
    pub busy_contended: u64,
    pub errors: u64,
    pub lost: u64,
}

/// The shared region: a header and `writers` slots.
pub struct Shared {
    map: SharedMap,
    writers: usize,
}

impl Shared {
    pub fn new(writers: usize) -> std::io::Result<Shared> {
        let len = std::mem::size_of::<Header>() + writers * std::mem::size_of::<Slot>();
        let map = SharedMap::new(len)?;
        Ok(Shared { map, writers })
    }

    pub fn header(&self) -> &Header {
        debug_assert!(self.map.len() >= std::mem::size_of::<Header>());
        // SAFETY: the mapping is page-aligned, zero-filled (a valid Header:
        // all atomics at 0) and lives as long as `self`.
        unsafe { &*(self.map.ptr() as *const Header) }
    }

    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < self.writers, "slot {index} of {}", self.writers);
        // SAFETY: slot `index` lies inside the mapping (checked above); Slot
        // is 64-aligned and so is the offset after the 64-aligned Header;
        // zero bytes are a valid Slot.
        unsafe {
            let base = self.map.ptr().add(std::mem::size_of::<Header>()) as *const Slot;
            &*base.add(index)
        }
    }

    pub fn writers(&self) -> usize {
        self.writers
    }

    /// Acquisitions completed by all writers so far.
    pub fn progress(&self) -> u64 {
        (0..self.writers)
            .map(|i| self.slot(i).progress.load(Ordering::Relaxed))
            .sum()
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for i in 0..self.writers {
            let s = self.slot(i);
            t.busy_held += s.busy_held.load(Ordering::Relaxed);
            t.busy_guarded += s.busy_guarded.load(Ordering::Relaxed);
            t.busy_contended += s.busy_contended.load(Ordering::Relaxed);
            t.errors += s.errors.load(Ordering::Relaxed);
            t.lost += s.lost.load(Ordering::Relaxed);
        }
        t
    }

    pub fn stopping(&self) -> bool {
        self.header().stop.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_the_header_or_each_other() {
        let shared = Shared::new(3).expect("mmap");
        shared.header().go.store(7, Ordering::Relaxed);
        for i in 0..3 {
            shared
                .slot(i)
                .progress
                .store(i as u64 + 1, Ordering::Relaxed);
        }
        assert_eq!(shared.header().go.load(Ordering::Relaxed), 7);
        assert_eq!(shared.progress(), 6);
    }
}
