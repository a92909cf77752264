//! How a waiting acquire sleeps between two tries (PROTOCOL.md §7.4): until
//! the lock's name leaves its directory (inotify on Linux), and never longer
//! than a capped, jittered exponential backoff, which also covers what no
//! event reports (a holder that dies, a lock that turns stale, a change made
//! by another host on a network file system). Where inotify is unavailable
//! the backoff alone decides. Turns keep a writer that loops back for a lock
//! it has just released from winning every race against sleeping waiters.
//! `crate::lock` drives this; BENCHMARKS.md shows what each part costs and buys.

mod events;

pub use events::Heard;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::machine::Busy;

/// How a waiting acquire backs off: from the first wait, doubling up to the cap,
/// each wait shortened by a random part of up to half so that waiters spread out.
pub const FIRST_WAIT: Duration = Duration::from_millis(1);
/// The backoff's cap: the longest wait between two tries.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// Turns, with [`Wait::Events`]. A writer that got the lock after waiting
/// for it has a turn of this length, during which it may take the lock again
/// at once each time it comes back for it. Once the turn is over it leaves
/// the free lock to the writers that were waiting, for up to [`COURTESY`].
/// Without turns the releaser, already running, takes the lock again before
/// any sleeping waiter has woken, and keeps it for as long as it loops; with
/// a hand-off at every release, every acquisition would pay a wake-up.
pub const TURN: Duration = Duration::from_millis(1);

/// How long a writer whose turn is over waits for another to take the lock.
pub const COURTESY: Duration = FIRST_WAIT;

/// A waiter wakes for nothing at most once in this long (a wake-up for
/// nothing: the lock was taken again before it looked); sooner, it sleeps out
/// the rest before it looks again, and events meanwhile wait in its queue.
/// This bounds what a lock taken back and forth costs its waiters.
pub const CALM: Duration = Duration::from_micros(200);

/// A contended release stops counting as recent after this long: a writer
/// that comes back later than that finds the others gone or done waiting.
const HANDOVER_MEMORY: Duration = Duration::from_millis(100);

/// How a waiting acquire sleeps between two tries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Until the lock's name is removed from its directory or renamed away
    /// (inotify), and at most the backoff; the backoff alone where inotify
    /// cannot watch the directory.
    #[default]
    Events,
    /// The backoff alone: capped exponential backoff with jitter.
    Backoff,
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

/// A lock this process released while other writers were probably waiting.
struct Handover {
    lock_path: PathBuf,
    released: Instant,
    /// When the releasing writer's turn began.
    turn: Instant,
}

/// This process's recent contended releases, at most [`HANDOVERS_KEPT`].
static HANDOVERS: Mutex<Vec<Handover>> = Mutex::new(Vec::new());

/// At most this many remembered handovers; the oldest is forgotten first.
const HANDOVERS_KEPT: usize = 16;

pub(crate) fn remember_handover(lock_path: &Path, turn: Instant) {
    let mut handovers = HANDOVERS.lock().unwrap_or_else(|e| e.into_inner());
    handovers.retain(|h| h.lock_path != lock_path);
    if handovers.len() >= HANDOVERS_KEPT {
        handovers.remove(0);
    }
    handovers.push(Handover {
        lock_path: lock_path.to_path_buf(),
        released: Instant::now(),
        turn,
    });
}

/// If this process released `lock_path` within [`HANDOVER_MEMORY`] while
/// others were probably waiting: when the releaser's turn began. Asking
/// forgets the answer, so each release counts once.
pub(crate) fn handover(lock_path: &Path) -> Option<Instant> {
    let mut handovers = HANDOVERS.lock().unwrap_or_else(|e| e.into_inner());
    let i = handovers.iter().position(|h| h.lock_path == lock_path)?;
    let handover = handovers.remove(i);
    (handover.released.elapsed() < HANDOVER_MEMORY).then_some(handover.turn)
}

/// What a waiting acquire does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    /// Try at once: no contended release of ours to take into account.
    Try,
    /// Try at once, within the turn that began then.
    KeepTurn(Instant),
    /// Our turn is over: leave the lock to the others first.
    Defer,
}

/// The first move, given when the turn of our last contended release of
/// this lock began (if it was recent).
pub(crate) fn next_move(handover: Option<Instant>, now: Instant) -> Move {
    match handover {
        None => Move::Try,
        Some(began) if now.saturating_duration_since(began) < TURN => Move::KeepTurn(began),
        Some(_) => Move::Defer,
    }
}

/// A random number in 0..=1 for jitter; 0 if the random source fails.
pub(crate) fn random_fraction() -> f64 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b)
        .map(|()| f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX))
        .unwrap_or(0.0)
}

/// Sleeps between the tries of one waiting acquire. The inotify watch is set
/// up at the first sleep, so an acquire that never waits pays nothing for it.
pub(crate) struct Sleeper {
    state: State,
}

enum State {
    Unstarted,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Watching(events::Watch),
    Timer,
}

impl Sleeper {
    pub(crate) fn new(wait: Wait) -> Self {
        let state = match wait {
            Wait::Events => State::Unstarted,
            Wait::Backoff => State::Timer,
        };
        Sleeper { state }
    }

    /// Sleep up to `limit`; with a watch, return early once the lock's name
    /// has left its directory and not come back. True when woken that way.
    pub(crate) fn sleep(&mut self, lock_path: &Path, limit: Duration) -> bool {
        let fresh = matches!(self.state, State::Unstarted);
        self.start(lock_path);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let State::Watching(watch) = &mut self.state {
            if fresh && !exists(lock_path) {
                // Removed between our try and the watch: no event will say so.
                return true;
            }
            let deadline = Instant::now() + limit;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match watch.wait(left, Heard::frees, CALM) {
                    // Taken again before we looked: a wake-up for nothing.
                    Ok(Heard::Removed) if exists(lock_path) => {
                        watch.woke_for_nothing(CALM, deadline);
                    }
                    Ok(heard) => return heard.frees(),
                    Err(_) => break,
                }
            }
            // The watch broke (it should not): the backoff alone from now on.
            self.state = State::Timer;
        }
        let _ = fresh;
        std::thread::sleep(limit);
        false
    }

    /// Leave the free lock to a waiting writer for up to `window`. True if
    /// one took it; then this returns once it is released again, or after
    /// [`FIRST_WAIT`], whichever is first.
    pub(crate) fn defer(&mut self, lock_path: &Path, window: Duration) -> bool {
        self.start(lock_path);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let State::Watching(watch) = &mut self.state {
            let taken = watch.hear_creations(true).is_ok()
                && (exists(lock_path)
                    || matches!(
                        watch.wait(window, Heard::appears, Duration::ZERO),
                        Ok(Heard::Created)
                    ));
            let _ = watch.hear_creations(false);
            if taken {
                self.sleep(lock_path, FIRST_WAIT);
            }
            return taken;
        }
        let _ = (lock_path, window);
        false
    }

    /// Set up the watch if not yet tried; where it cannot be had, time alone.
    fn start(&mut self, lock_path: &Path) {
        if let State::Unstarted = self.state {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                self.state = events::Watch::new(lock_path).map_or(State::Timer, State::Watching);
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                let _ = lock_path;
                self.state = State::Timer;
            }
        }
    }
}

/// Whether anything is at `path` (an lstat; errors other than "absent" count
/// as present, so that the waiter keeps waiting and lets its next try report them).
fn exists(path: &Path) -> bool {
    !matches!(nix::sys::stat::lstat(path), Err(Errno::ENOENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{Options, WriterLock};
    use crate::machine::Released;
    use crate::policy::{Contents, Verdict};

    fn held_for(stale_in: Option<Duration>) -> Busy {
        Busy::Held {
            contents: Contents::Malformed(crate::record::DecodeError::Length { found: 0 }),
            verdict: Verdict {
                stale: false,
                reasons: Vec::new(),
                stale_in,
            },
        }
    }

    #[test]
    fn waiting_sleeps_between_half_and_all_of_the_backoff() {
        let busy = held_for(None);
        assert_eq!(nap(MAX_WAIT, 0.0, &busy), MAX_WAIT);
        assert_eq!(nap(MAX_WAIT, 1.0, &busy), MAX_WAIT / 2);
        assert!(nap(FIRST_WAIT, 0.5, &busy) >= FIRST_WAIT / 2);
        assert!(FIRST_WAIT >= Duration::from_millis(1), "no busy-spinning");
    }

    #[test]
    fn waiting_wakes_when_a_dead_holders_lock_turns_stale() {
        let soon = Duration::from_micros(300);
        assert_eq!(nap(MAX_WAIT, 0.0, &held_for(Some(soon))), soon);
        assert_eq!(nap(MAX_WAIT, 0.0, &Busy::Contended), MAX_WAIT);
    }


    #[test]
    fn a_contended_release_is_remembered_once_with_its_turn() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        assert_eq!(handover(&lock), None, "never released here");
        let turn = Instant::now();
        remember_handover(&lock, turn);
        assert_eq!(handover(&lock), Some(turn));
        assert_eq!(handover(&lock), None, "asking forgets");
    }

    #[test]
    fn only_a_release_within_a_turn_is_remembered() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        let first = WriterLock::try_acquire_file(&lock, Options::default()).expect("free");
        assert_eq!(first.release().expect("release"), Released::Released);
        assert_eq!(handover(&lock), None, "nobody was waited for");
        let mut second = WriterLock::try_acquire_file(&lock, Options::default()).expect("free");
        let turn = Instant::now();
        second.turn = Some(turn);
        assert_eq!(second.release().expect("release"), Released::Released);
        assert_eq!(handover(&lock), Some(turn));
    }

    #[test]
    fn a_writer_keeps_its_turn_and_then_defers() {
        let now = Instant::now();
        assert_eq!(next_move(None, now), Move::Try, "no contended release");
        let began = now - TURN / 2;
        assert_eq!(next_move(Some(began), now), Move::KeepTurn(began));
        assert_eq!(next_move(Some(now - TURN), now), Move::Defer);
    }

    #[test]
    fn a_writer_that_defers_to_nobody_takes_the_lock_without_a_turn() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        remember_handover(&lock, Instant::now() - 2 * TURN);
        let got =
            WriterLock::acquire_file_timeout(&lock, Duration::from_secs(60), Options::default())
                .expect("nobody else wants it");
        assert_eq!(got.turn, None, "nobody took the lock while we deferred");
        assert_eq!(got.release().expect("release"), Released::Released);
        assert_eq!(handover(&lock), None, "no turn, so nothing to remember");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_release_wakes_a_sleeping_waiter() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        std::fs::write(&lock, b"held").expect("plant a lock file");
        let mut sleeper = Sleeper::new(Wait::Events);
        sleeper.start(&lock);
        std::fs::remove_file(&lock).expect("release");
        // Were the release missed, this would sleep the whole hour.
        assert!(sleeper.sleep(&lock, Duration::from_secs(3600)));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_lock_taken_again_before_the_waiter_looks_does_not_end_its_sleep() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        std::fs::write(&lock, b"held").expect("plant a lock file");
        let mut sleeper = Sleeper::new(Wait::Events);
        sleeper.start(&lock);
        std::fs::remove_file(&lock).expect("release");
        std::fs::write(&lock, b"taken again").expect("another writer takes it");
        assert!(!sleeper.sleep(&lock, Duration::from_millis(20)));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_waiter_finding_the_lock_gone_as_it_starts_watching_does_not_sleep() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        // Released between the busy try and the watch: nothing will be heard.
        assert!(Sleeper::new(Wait::Events).sleep(&lock, Duration::from_secs(3600)));
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn deferring_ends_when_another_writer_takes_the_lock() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        let taker = {
            let lock = lock.clone();
            std::thread::spawn(move || std::fs::write(&lock, b"taken").expect("take"))
        };
        // Taken before the watch starts or after: either way seen, never the hour.
        let mut sleeper = Sleeper::new(Wait::Events);
        assert!(sleeper.defer(&lock, Duration::from_secs(3600)));
        taker.join().expect("taker");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn deferring_to_nobody_takes_the_lock_after_the_window() {
        let dir = tempfile::tempdir().expect("scratch directory");
        let lock = dir.path().join("data.rvf.lock");
        let mut sleeper = Sleeper::new(Wait::Events);
        assert!(!sleeper.defer(&lock, Duration::from_millis(5)));
        assert!(!Sleeper::new(Wait::Backoff).defer(&lock, Duration::from_secs(3600)));
    }
}
