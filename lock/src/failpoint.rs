//! Crash points for fault injection: a process arms one named point, and the
//! lock machinery kills that process with SIGKILL the moment it reaches it —
//! as a power cut or `kill -9` would, at exactly that step of the protocol.
//!
//! `machine::run` says which point each request reaches, so every driver
//! (real or simulated) has them. They exist only with the `failpoints`
//! feature; unarmed, a check is one atomic load.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where a process can be made to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Point {
    /// The lock was just published: the holder dies before using it.
    AfterPublish = 1,
    /// A lock was read while acquiring (perhaps to be judged stale), nothing done yet.
    AfterRead,
    /// A stale lock is about to be unlinked by its breaker.
    BeforeBreakUnlink,
    /// A stale lock was unlinked; the breaker has not published yet.
    AfterBreakUnlink,
    /// Release checked ownership and is about to unlink.
    BeforeReleaseUnlink,
    /// Release unlinked the lock and has not closed its file yet.
    AfterReleaseUnlink,
}

impl Point {
    /// Every point, in protocol order.
    pub const ALL: [Point; 6] = [
        Point::AfterPublish,
        Point::AfterRead,
        Point::BeforeBreakUnlink,
        Point::AfterBreakUnlink,
        Point::BeforeReleaseUnlink,
        Point::AfterReleaseUnlink,
    ];

    /// The point's name on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Point::AfterPublish => "after-publish",
            Point::AfterRead => "after-read",
            Point::BeforeBreakUnlink => "before-break-unlink",
            Point::AfterBreakUnlink => "after-break-unlink",
            Point::BeforeReleaseUnlink => "before-release-unlink",
            Point::AfterReleaseUnlink => "after-release-unlink",
        }
    }

    /// The point named `name`.
    pub fn from_name(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.name() == name)
    }
}

static ARMED: AtomicU8 = AtomicU8::new(0);

/// Arm `point` in this process (one point at a time), or disarm with `None`.
pub fn arm(point: Option<Point>) {
    ARMED.store(point.map_or(0, |p| p as u8), Ordering::SeqCst);
}

/// Whether any point is armed in this process: one atomic load.
pub fn armed() -> bool {
    ARMED.load(Ordering::Relaxed) != 0
}

/// The lock has reached `point`: if it is the armed one, this process dies
/// here, by SIGKILL.
pub fn reached(point: Point) {
    if ARMED.load(Ordering::Relaxed) == point as u8 {
        // SIGKILL cannot be caught: nothing after this line runs.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}
