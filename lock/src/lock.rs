//! The public API: [`WriterLock`], held until released or dropped.
//!
//! [`AcquireError`] carries the holder's record and the verdict that kept
//! the lock (a few hundred bytes): worth it for the caller, and acquiring is
//! never a hot loop of errors, so the error is not boxed.
//!
//! Each call runs the machine of `crate::machine`, by the protocol's rules,
//! on the real file system through `crate::driver`; this module adds
//! identity (PID, host name, a fresh writer id), waiting, and ownership of
//! the held file.
//!
//! Waiting (§7.4) is a loop of try-acquires. Between two tries a waiter
//! sleeps: by default until the lock's name leaves its directory (inotify on
//! Linux), and never longer than a capped, jittered exponential backoff, which
//! also covers what no event reports (a holder that dies, a lock that turns
//! stale, a change made by another host on a network file system). Where
//! inotify is unavailable the backoff alone decides ([`Wait`]). A writer that
//! loops back for a lock it has just released would win every race against
//! sleeping waiters; turns ([`TURN`]) make it leave the lock to them from time
//! to time. The waiting itself is in `crate::wait`; BENCHMARKS.md shows what
//! each of these costs and buys.
#![allow(clippy::result_large_err)]

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::driver::{lock_path_for, Driver};
use crate::host::local_hostname;
use crate::machine::{self, Acquire, Acquired, Busy, Held, LockError, Params, Released};
use crate::policy::{Contents, Thresholds};
use crate::record::{Hostname, Record, WriterId};
use crate::wait::Wait;
use crate::wait::{
    handover, nap, next_move, random_fraction, remember_handover, Move, Sleeper, COURTESY,
    FIRST_WAIT, MAX_WAIT,
};

/// How an acquire judges and waits. The default is the protocol's
/// thresholds and event-driven waiting; every writer of one data file must
/// use the same thresholds.
///
/// ```no_run
/// use std::time::Duration;
/// use rvlf_lock::{Options, Thresholds, Wait, WriterLock};
///
/// let options = Options::default()
///     .thresholds(Thresholds::V1.same_host(Duration::from_secs(60)))
///     .wait(Wait::Backoff);
/// let lock = WriterLock::acquire_file_timeout("data.rvf.lock", Duration::from_secs(5), options)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    thresholds: Thresholds,
    wait: Wait,
}

impl Options {
    /// Judge staleness by `thresholds` (PROTOCOL.md §6.1).
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Sleep between tries as `wait` says (used by the waiting acquires).
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }
}

/// Why a lock was not acquired.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// Another writer holds the lock.
    #[error("{}: {busy}", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, and why it is not stale.
        busy: Busy,
    },
    /// Another writer still held the lock when the time ran out.
    #[error("{}: still busy after waiting {waited:?}: {last}", path.display())]
    TimedOut {
        /// The lock file.
        path: PathBuf,
        /// How long this acquire waited.
        waited: Duration,
        /// What the last try found.
        last: Busy,
    },
    /// The lock file could not be worked on: an I/O error, or a lock path
    /// that is not a regular file.
    #[error("{}: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: LockError,
    },
    /// gethostname(2) failed.
    #[error("cannot read this host's name: {0}")]
    Hostname(Errno),
    /// The operating system's random source failed.
    #[error("cannot draw a random writer id: {0}")]
    Random(getrandom::Error),
}

/// Why a release could not tell what happened to the lock.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReleaseError {
    /// The lock file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: LockError,
}

/// An acquired writer lock. Release it with [`WriterLock::release`] to learn
/// whether it was still ours; dropping it releases on a best-effort basis.
pub struct WriterLock {
    lock_path: PathBuf,
    /// The published file, guarded by our flock until it is closed (§7.2).
    fd: Option<OwnedFd>,
    held: Held,
    /// When the turn this acquisition belongs to began (see [`TURN`]); None
    /// when no other writer was seen waiting.
    pub(crate) turn: Option<Instant>,
}

impl fmt::Debug for WriterLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterLock")
            .field("lock_path", &self.lock_path)
            .field("record", &self.held.record)
            .finish()
    }
}

impl WriterLock {
    /// Take the lock of the data file `data_path` (the lock is `data_path` + ".lock")
    /// without waiting.
    pub fn try_acquire(data_path: impl AsRef<Path>) -> Result<Self, AcquireError> {
        Self::try_acquire_file(lock_path_for(data_path.as_ref()), Options::default())
    }

    /// Take the lock of `data_path`, waiting up to `timeout` while it is held.
    pub fn acquire_timeout(
        data_path: impl AsRef<Path>,
        timeout: Duration,
    ) -> Result<Self, AcquireError> {
        Self::acquire_file_timeout(
            lock_path_for(data_path.as_ref()),
            timeout,
            Options::default(),
        )
    }

    /// Take the lock file at `lock_path` itself, without waiting.
    pub fn try_acquire_file(
        lock_path: impl Into<PathBuf>,
        options: Options,
    ) -> Result<Self, AcquireError> {
        let lock_path = lock_path.into();
        let host = local_host().map_err(AcquireError::Hostname)?;
        let params = Params {
            pid: std::process::id(),
            judge_host: host.clone(),
            host,
            writer_id: WriterId::random().map_err(AcquireError::Random)?,
            thresholds: options.thresholds,
        };
        let mut driver = Driver::new(&lock_path);
        let outcome = machine::run(&mut Acquire::new(params), &mut driver);
        match outcome {
            Ok(Acquired::Held(held)) => {
                let fd = driver.take(held.file);
                Ok(WriterLock {
                    lock_path,
                    fd,
                    held,
                    turn: None,
                })
            }
            Ok(Acquired::Busy(busy)) => Err(AcquireError::Busy {
                path: lock_path,
                busy,
            }),
            Err(source) => Err(AcquireError::Lock {
                path: lock_path,
                source,
            }),
        }
    }

    /// Take the lock file at `lock_path`, waiting up to `timeout` while it is
    /// held. With the default [`Wait`] the waiter is woken when the lock's
    /// name leaves its directory, and by a capped exponential backoff with
    /// jitter that also wakes no later than the moment a dead holder's lock
    /// turns stale.
    ///
    /// With [`Wait::Events`], a writer that released this lock moments ago
    /// and had waited for it (so others were probably waiting too) takes it
    /// again at once until its turn (1 ms, `TURN`) is over; then it first lets
    /// the others have it: for up to 1 ms (`COURTESY`) it waits for another
    /// writer to take the lock, and if one does, it queues behind it like any
    /// waiter.
    pub fn acquire_file_timeout(
        lock_path: impl Into<PathBuf>,
        timeout: Duration,
        options: Options,
    ) -> Result<Self, AcquireError> {
        let lock_path = lock_path.into();
        let wait = options.wait;
        let start = Instant::now();
        let mut backoff = FIRST_WAIT;
        let mut sleeper = Sleeper::new(wait);
        let mut turn = None;
        let mut waited = false;
        if wait == Wait::Events {
            match next_move(handover(&lock_path), Instant::now()) {
                Move::Try => {}
                Move::KeepTurn(began) => turn = Some(began),
                Move::Defer => waited = sleeper.defer(&lock_path, COURTESY.min(timeout)),
            }
        }
        loop {
            let busy = match Self::try_acquire_file(lock_path.clone(), options) {
                Ok(mut lock) => {
                    lock.turn = if waited { Some(Instant::now()) } else { turn };
                    return Ok(lock);
                }
                Err(AcquireError::Busy { busy, .. }) => busy,
                Err(e) => return Err(e),
            };
            let elapsed = start.elapsed();
            let Some(left) = timeout.checked_sub(elapsed).filter(|d| !d.is_zero()) else {
                return Err(AcquireError::TimedOut {
                    path: lock_path,
                    waited: elapsed,
                    last: busy,
                });
            };
            sleeper.sleep(&lock_path, nap(backoff, random_fraction(), &busy).min(left));
            waited = true;
            backoff = (backoff * 2).min(MAX_WAIT);
        }
    }

    /// The record this lock published.
    pub fn record(&self) -> &Record {
        &self.held.record
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The stale lock this acquire broke on its way, if it broke one.
    pub fn broke(&self) -> Option<&Contents> {
        self.held.broke.as_ref()
    }

    /// Give the lock back. The lock file is deleted only if it is still ours
    /// (same writer id, same file); otherwise the answer is [`Released::Lost`].
    pub fn release(mut self) -> Result<Released, ReleaseError> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<Released, ReleaseError> {
        let Some(fd) = self.fd.take() else {
            // Only reachable if the acquire lost the descriptor; never ours to delete.
            return Ok(Released::Lost(machine::Lost::Vanished));
        };
        let mut driver = Driver::new(&self.lock_path);
        let mut held = self.held.clone();
        held.file = driver.adopt(fd);
        let mut release = machine::Release::new(held);
        let released = machine::run(&mut release, &mut driver).map_err(|source| ReleaseError {
            path: self.lock_path.clone(),
            source,
        });
        if let (Some(turn), Ok(Released::Released)) = (self.turn, &released) {
            remember_handover(&self.lock_path, turn);
        }
        released
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if self.fd.is_some() {
            let _ = self.release_now();
        }
    }
}

/// This host's name as written and as compared (§5): the kernel's, cut to
/// 62 bytes, cached for the life of the process, which §5.1 allows. The
/// cache remembers which process filled it: a forked child (which may have
/// entered another UTS namespace) reads its own name.
fn local_host() -> Result<Hostname, Errno> {
    static KERNEL: Mutex<Option<(u32, Hostname)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut cache = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    match cache.as_ref() {
        Some((owner, name)) if *owner == pid => Ok(name.clone()),
        _ => {
            let name = local_hostname()?;
            *cache = Some((pid, name.clone()));
            Ok(name)
        }
    }
}

/// One line saying why the lock is busy.
impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self))
    }
}

fn describe(busy: &Busy) -> String {
    match busy {
        Busy::Held { contents, verdict } => {
            let who = match contents {
                Contents::Valid(r) => format!("held by pid {} on host {}", r.pid, r.hostname),
                Contents::Malformed(e) => format!("held by a malformed lock file ({e})"),
            };
            match verdict.stale_in {
                Some(d) => format!(
                    "{who}; stale in {:.1} s if nothing changes",
                    d.as_secs_f64()
                ),
                None => format!("{who}; its process is alive"),
            }
        }
        Busy::Guarded { .. } => {
            "stale, but another process holds its guard (a breaker at work, or a live holder)"
                .to_string()
        }
        Busy::Contended => format!(
            "the lock changed under us {} times in a row",
            machine::MAX_ROUNDS
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_host_name_is_the_kernels() {
        let first = local_host().expect("gethostname");
        assert_eq!(local_host().expect("gethostname"), first);
        assert_eq!(first, local_hostname().expect("gethostname"));
    }
}
