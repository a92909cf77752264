//! The public API: [`WriterLock`], held until released or dropped.
//!
//! [`AcquireError`] carries the holder's record and the verdict that kept
//! the lock (a few hundred bytes): worth it for the caller, and acquiring is
//! never a hot loop of errors, so the error is not boxed.
#![allow(clippy::result_large_err)]
//!
//! Each call runs the machine of `crate::machine` on the real file system
//! through `crate::driver`; this module adds identity (PID, host name, a
//! fresh writer id), waiting, and ownership of the held file.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::driver::{lock_path_for, Driver};
use crate::machine::{self, Acquire, Acquired, Busy, Flaws, Held, LockError, Params, Released};
use crate::policy::{Contents, Thresholds};
use crate::record::{Record, WriterId};

/// How a waiting acquire backs off: from the first wait, doubling up to the cap,
/// each wait shortened by a random part of up to half so that waiters spread out.
pub const FIRST_WAIT: Duration = Duration::from_millis(1);
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// Rules an acquire follows. The default is the protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub thresholds: Thresholds,
    /// Deliberate defects, for testing the tests; empty by default.
    pub flaws: Flaws,
}

/// Why a lock was not acquired.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("{}: {}", path.display(), describe(busy))]
    Busy { path: PathBuf, busy: Busy },
    #[error("{}: still busy after waiting {waited:?}: {}", path.display(), describe(last))]
    TimedOut {
        path: PathBuf,
        waited: Duration,
        last: Busy,
    },
    #[error("{}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: LockError,
    },
    #[error("cannot read this host's name: {0}")]
    Hostname(Errno),
    #[error("cannot draw a random writer id: {0}")]
    Random(getrandom::Error),
}

/// Why a release could not tell what happened to the lock.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReleaseError {
    pub path: PathBuf,
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
    flaws: Flaws,
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
        let (host, judge_host) = options.flaws.local_host().map_err(AcquireError::Hostname)?;
        let params = Params {
            pid: std::process::id(),
            host,
            judge_host,
            writer_id: WriterId::random().map_err(AcquireError::Random)?,
            thresholds: options.thresholds,
            flaws: options.flaws,
        };
        let mut driver = Driver::new(&lock_path).with_unsafe_reads(options.flaws.unsafe_reads);
        let outcome = machine::run(&mut Acquire::new(params), &mut driver);
        match outcome {
            Ok(Acquired::Held(held)) => {
                let fd = driver.take(held.file);
                Ok(WriterLock {
                    lock_path,
                    fd,
                    held,
                    flaws: options.flaws,
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
    /// held. Waiting sleeps with capped exponential backoff and jitter, and
    /// wakes no later than the moment a dead holder's lock turns stale.
    pub fn acquire_file_timeout(
        lock_path: impl Into<PathBuf>,
        timeout: Duration,
        options: Options,
    ) -> Result<Self, AcquireError> {
        let lock_path = lock_path.into();
        let start = Instant::now();
        let mut wait = FIRST_WAIT;
        loop {
            let busy = match Self::try_acquire_file(lock_path.clone(), options) {
                Err(AcquireError::Busy { busy, .. }) => busy,
                other => return other,
            };
            let waited = start.elapsed();
            let Some(left) = timeout.checked_sub(waited).filter(|d| !d.is_zero()) else {
                return Err(AcquireError::TimedOut {
                    path: lock_path,
                    waited,
                    last: busy,
                });
            };
            std::thread::sleep(nap(wait, random_fraction(), &busy).min(left));
            wait = (wait * 2).min(MAX_WAIT);
        }
    }

    /// The record this lock published.
    pub fn record(&self) -> &Record {
        &self.held.record
    }

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
        let mut driver = Driver::new(&self.lock_path).with_unsafe_reads(self.flaws.unsafe_reads);
        let mut held = self.held.clone();
        held.file = driver.adopt(fd);
        let mut release = machine::Release::new(held, self.flaws);
        machine::run(&mut release, &mut driver).map_err(|source| ReleaseError {
            path: self.lock_path.clone(),
            source,
        })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if self.fd.is_some() {
            let _ = self.release_now();
        }
    }
}

/// How long a waiting acquire sleeps before its next try: `wait` less up to
/// half of it (`fraction` in 0..=1 picks how much), and never past the moment
/// a dead holder's lock turns stale.
pub fn nap(wait: Duration, fraction: f64, busy: &Busy) -> Duration {
    let nap = wait.mul_f64(1.0 - fraction.clamp(0.0, 1.0) / 2.0);
    match busy {
        Busy::Held { verdict, .. } => verdict.stale_in.map_or(nap, |s| nap.min(s)),
        _ => nap,
    }
}

/// A random number in 0..=1 for jitter; 0 if the random source fails.
fn random_fraction() -> f64 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b)
        .map(|()| f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
        .unwrap_or(0.0)
}

/// One line saying why the lock is busy.
pub fn describe(busy: &Busy) -> String {
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
