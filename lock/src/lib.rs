//! The RVF writer lock (RVLF v1, see PROTOCOL.md): one writer at a time for
//! a data file `data.rvf`, through the 104-byte lock file `data.rvf.lock`.
//!
//! ```no_run
//! use rvlf_lock::{Released, WriterLock};
//!
//! let lock = WriterLock::try_acquire("data.rvf")?; // creates data.rvf.lock
//! // ... write data.rvf: no other writer holds the lock ...
//! match lock.release()? {
//!     Released::Released => {}
//!     Released::Lost(how) => eprintln!("lock was taken over: {how:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`WriterLock`] takes the lock without waiting, or waiting up to a
//!   timeout, and gives it back, saying whether it was still ours.
//! - [`inspect()`] tells what a lock file holds and whether this host would
//!   judge it stale now, and why.
//! - [`encode`] and [`decode`] are the record codec.
//!
//! The algorithm is a pure state machine driven by a small driver of real
//! file-system calls. The `machine` feature makes the machine, its rules and
//! the driver public for checkers and simulators; `failpoints` adds crash
//! points for fault injection. Neither is needed to take the lock, and
//! neither is covered by semantic versioning.
#![warn(missing_docs)]

/// Modules that are private by default and public with the `machine`
/// feature; their user-facing items are re-exported at the root either way.
macro_rules! internal {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "machine")]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "machine"))]
        mod $name;
    )*};
}

internal! {
    /// Running the machine on the real file system.
    driver;
    /// This host's identity (§5).
    host;
    /// What a lock file holds, for people.
    inspect;
    /// The acquire, stale-break and release algorithm as a state machine.
    machine;
    /// Staleness (§6) as a pure function.
    policy;
    /// The record codec (§3, §4.2).
    record;
    /// How a waiting acquire sleeps (§7.4).
    wait;
}

#[cfg(feature = "failpoints")]
pub mod failpoint;
mod lock;

pub use driver::lock_path_for;
pub use inspect::{inspect, InspectError, Inspection};
pub use lock::{AcquireError, Options, ReleaseError, WriterLock};
pub use machine::{Busy, FileKind, LockError, Lost, Op, Released};
pub use policy::{AgeBasis, Contents, Liveness, Reason, Thresholds, Verdict};
pub use record::{
    decode, encode, DecodeError, Hostname, HostnameError, Record, WriterId, RECORD_LEN,
};
pub use wait::Wait;
