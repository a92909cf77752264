//! How a waiting acquire sleeps between two tries (PROTOCOL.md §7.4): until
//! the lock's name leaves its directory (inotify on Linux), and never longer
//! than a capped, jittered exponential backoff, which also covers what no
//! event reports (a holder that dies, a lock that turns stale, a change made
//! by another host on a network file system). Where inotify is unavailable
//! the backoff alone decides. Turns keep a writer that loops back for a lock
//! it has just released from winning every race against sleeping waiters.
//! `crate::lock` drives this; BENCHMARKS.md shows what each part costs and buys.

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

/// What the directory events heard so far say about the lock's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Nothing about the lock's name.
    Nothing,
    /// Its last event removed it (unlink, or renamed away).
    Removed,
    /// Its last event created it (published, or renamed into place).
    Created,
    /// The watch can no longer tell (queue overflow, directory gone).
    Lost,
}

impl Heard {
    /// Fold one event into what has been heard so far. `mask` is an inotify
    /// event mask; `ours` says whether the event names the lock's file.
    pub fn and(self, mask: u32, ours: bool) -> Heard {
        const GONE: u32 = libc::IN_DELETE | libc::IN_MOVED_FROM;
        const BACK: u32 = libc::IN_CREATE | libc::IN_MOVED_TO;
        const BLIND: u32 = libc::IN_Q_OVERFLOW
            | libc::IN_IGNORED
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_UNMOUNT;
        match self {
            Heard::Lost => Heard::Lost,
            _ if mask & BLIND != 0 => Heard::Lost,
            _ if ours && mask & GONE != 0 => Heard::Removed,
            _ if ours && mask & BACK != 0 => Heard::Created,
            heard => heard,
        }
    }

    /// Whether a waiter should stop sleeping and try: the lock may be free.
    pub fn frees(self) -> bool {
        matches!(self, Heard::Removed | Heard::Lost)
    }

    /// Whether a writer leaving the lock to others can stop: one took it,
    /// or the watch cannot tell any more.
    pub fn appears(self) -> bool {
        matches!(self, Heard::Created | Heard::Lost)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod events {
    //! inotify on the lock's directory.
    //!
    //! Closing an inotify instance waits for the kernel to retire its marks
    //! (an SRCU grace period: milliseconds on a busy machine), and a waiter
    //! that has just acquired the lock would wait for that while holding it.
    //! So each process keeps one spare instance and points it at whichever
    //! directory the next waiter needs.

    use std::ffi::OsString;
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use nix::errno::Errno;
    use nix::poll::{ppoll, PollFd, PollFlags};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
    use nix::sys::time::TimeSpec;

    use super::Heard;

    /// A watch on the directory of one lock path, for its name only.
    /// Dropping it keeps its instance as this process's spare.
    pub struct Watch {
        /// Always Some until dropped.
        kept: Option<Instance>,
        name: OsString,
        /// When it last woke for nothing.
        idle: Option<Instant>,
    }

    /// An inotify instance and the one directory it watches.
    struct Instance {
        inotify: Inotify,
        /// The process that made it: a forked child must not share its
        /// queue with its parent.
        pid: u32,
        dir: PathBuf,
        /// None once the kernel has dropped the watch (IN_IGNORED).
        wd: Option<WatchDescriptor>,
        /// Whether the watch reports creations too.
        creations: bool,
    }

    /// This process's spare instance, between two waits.
    static SPARE: Mutex<Option<Instance>> = Mutex::new(None);

    /// Removals always; creations only when asked for, since every
    /// acquisition of a busy lock would otherwise wake all of its waiters.
    fn mask(creations: bool) -> AddWatchFlags {
        let mut mask = AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        if creations {
            mask |= AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO;
        }
        mask
    }

    impl Instance {
        /// The spare if this process has one, else a new instance.
        fn get() -> Option<Instance> {
            let pid = std::process::id();
            let spare = SPARE.lock().unwrap_or_else(|e| e.into_inner()).take();
            match spare.filter(|i| i.pid == pid) {
                Some(mut instance) => {
                    // Learn whether its directory went away since (and forget the rest).
                    instance.fold(Heard::Nothing, None).ok()?;
                    Some(instance)
                }
                None => Some(Instance {
                    inotify: Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?,
                    pid,
                    dir: PathBuf::new(),
                    wd: None,
                    creations: false,
                }),
            }
        }

        /// Watch `dir` (and nothing else), for creations too or not.
        fn point_at(&mut self, dir: PathBuf, creations: bool) -> Result<(), Errno> {
            if self.wd.is_some() && self.dir == dir && self.creations == creations {
                return Ok(());
            }
            if self.dir != dir {
                if let Some(wd) = self.wd.take() {
                    let _ = self.inotify.rm_watch(wd);
                }
            }
            // On a directory already watched this replaces the mask.
            self.wd = Some(self.inotify.add_watch(dir.as_path(), mask(creations))?);
            self.dir = dir;
            self.creations = creations;
            Ok(())
        }

        /// Keep it as the spare, unless there is one already.
        fn retire(self) {
            let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
            if spare.is_none() {
                *spare = Some(self);
            }
        }
    }

    impl Drop for Watch {
        fn drop(&mut self) {
            if let Some(instance) = self.kept.take() {
                instance.retire();
            }
        }
    }

    impl Watch {
        /// A watch on `lock_path`'s directory that has heard nothing yet:
        /// only what happens from now on counts. `None` where inotify is
        /// unavailable or cannot watch the directory (no permission, too
        /// many watches, a file system without it).
        pub fn new(lock_path: &Path) -> Option<Watch> {
            let name = lock_path.file_name()?.to_os_string();
            let dir = match lock_path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut instance = Instance::get()?;
            if instance.point_at(dir, false).is_err() {
                instance.retire();
                return None;
            }
            let mut watch = Watch {
                kept: Some(instance),
                name,
                idle: None,
            };
            watch.drain(Heard::Nothing).ok()?;
            Some(watch)
        }

        fn instance(&mut self) -> Result<&mut Instance, Errno> {
            self.kept.as_mut().ok_or(Errno::EBADF)
        }

        /// Whether to hear the lock's name appear too, not only go.
        pub fn hear_creations(&mut self, on: bool) -> Result<(), Errno> {
            let instance = self.instance()?;
            let dir = instance.dir.clone();
            instance.point_at(dir, on)
        }

        /// Sleep until what is heard from now on satisfies `until`, or
        /// `limit` has passed; say what was heard. Wake-ups that do not
        /// satisfy `until` are spaced at least `calm` apart.
        pub fn wait(
            &mut self,
            limit: Duration,
            until: fn(Heard) -> bool,
            calm: Duration,
        ) -> Result<Heard, Errno> {
            let deadline = Instant::now() + limit;
            let mut heard = Heard::Nothing;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(heard);
                }
                let inotify = &self.instance()?.inotify;
                let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
                match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
                    Ok(0) => return Ok(heard),
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e),
                }
                heard = self.drain(heard)?;
                if until(heard) {
                    return Ok(heard);
                }
                self.woke_for_nothing(calm, deadline);
            }
        }

        /// Note a wake-up that changed nothing; if the last one was less
        /// than `calm` ago, sleep out the rest of it (not past `deadline`).
        pub fn woke_for_nothing(&mut self, calm: Duration, deadline: Instant) {
            let now = Instant::now();
            if let Some(idle) = self.idle {
                let rest = calm
                    .saturating_sub(now.saturating_duration_since(idle))
                    .min(deadline.saturating_duration_since(now));
                if !rest.is_zero() {
                    std::thread::sleep(rest);
                }
            }
            self.idle = Some(Instant::now());
        }

        /// Read every queued event and fold those of our watch into `heard`.
        fn drain(&mut self, heard: Heard) -> Result<Heard, Errno> {
            let name = self.name.clone();
            self.instance()?.fold(heard, Some(&name))
        }
    }

    impl Instance {
        /// Read every queued event and fold those of the current watch that
        /// name `name` (and those that blind it) into `heard`. A watch whose
        /// directory was removed or moved is forgotten, to be set up again.
        fn fold(&mut self, mut heard: Heard, name: Option<&OsString>) -> Result<Heard, Errno> {
            loop {
                let events = match self.inotify.read_events() {
                    Ok(events) => events,
                    Err(Errno::EAGAIN) => return Ok(heard),
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(e),
                };
                for event in &events {
                    let overflow = event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW);
                    if !overflow && Some(event.wd) != self.wd {
                        continue; // from a watch this instance had on another directory
                    }
                    let gone = AddWatchFlags::IN_IGNORED
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF;
                    if event.mask.intersects(gone) {
                        self.wd = None;
                    }
                    let ours = name.is_some() && event.name.as_ref() == name;
                    heard = heard.and(event.mask.bits(), ours);
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn lock_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
            let lock = dir.path().join("data.rvf.lock");
            std::fs::write(&lock, b"held").expect("plant a lock file");
            lock
        }

        #[test]
        fn a_removed_lock_wakes_the_watch_before_its_limit() {
            let dir = tempfile::tempdir().expect("scratch directory");
            let lock = lock_in(&dir);
            let mut watch = Watch::new(&lock).expect("inotify on a local directory");
            std::fs::remove_file(&lock).expect("release");
            // Were the event missed, this would sleep the whole hour.
            assert_eq!(
                watch.wait(Duration::from_secs(3600), Heard::frees, Duration::ZERO),
                Ok(Heard::Removed)
            );
        }

        #[test]
        fn a_reused_watch_hears_only_its_new_directory_from_now_on() {
            let (a, b) = (
                tempfile::tempdir().expect("a"),
                tempfile::tempdir().expect("b"),
            );
            let (lock_a, lock_b) = (lock_in(&a), lock_in(&b));
            drop(Watch::new(&lock_a).expect("inotify"));
            std::fs::remove_file(&lock_a).expect("an event for the spare's old directory");
            let mut watch = Watch::new(&lock_b).expect("inotify");
            assert_eq!(
                watch.wait(Duration::from_millis(20), Heard::frees, Duration::ZERO),
                Ok(Heard::Nothing),
                "the other directory's removal is not ours"
            );
            std::fs::remove_file(&lock_b).expect("release");
            assert_eq!(
                watch.wait(Duration::from_secs(3600), Heard::frees, Duration::ZERO),
                Ok(Heard::Removed)
            );
        }

        #[test]
        fn wake_ups_for_nothing_are_spaced_by_the_calm() {
            let dir = tempfile::tempdir().expect("scratch directory");
            let mut watch = Watch::new(&lock_in(&dir)).expect("inotify");
            let calm = Duration::from_millis(30);
            let far = Instant::now() + Duration::from_secs(3600);
            let start = Instant::now();
            watch.woke_for_nothing(calm, far);
            watch.woke_for_nothing(calm, far);
            assert!(start.elapsed() >= calm, "the second wake-up came too soon");
        }

        #[test]
        fn a_renamed_lock_wakes_the_watch() {
            let dir = tempfile::tempdir().expect("scratch directory");
            let lock = lock_in(&dir);
            let mut watch = Watch::new(&lock).expect("inotify on a local directory");
            std::fs::rename(&lock, dir.path().join("elsewhere")).expect("rename");
            assert_eq!(
                watch.wait(Duration::from_secs(3600), Heard::frees, Duration::ZERO),
                Ok(Heard::Removed)
            );
        }

        #[test]
        fn other_names_do_not_wake_the_watch_and_creations_only_when_asked() {
            let dir = tempfile::tempdir().expect("scratch directory");
            let lock = dir.path().join("data.rvf.lock");
            let mut watch = Watch::new(&lock).expect("inotify on a local directory");
            std::fs::write(dir.path().join("data.rvf"), b"data").expect("other file");
            std::fs::remove_file(dir.path().join("data.rvf")).expect("other file");
            std::fs::write(&lock, b"taken").expect("take");
            assert_eq!(
                watch.wait(Duration::from_millis(20), Heard::appears, Duration::ZERO),
                Ok(Heard::Nothing),
                "creations are not heard unless asked for"
            );
            watch.hear_creations(true).expect("ask for creations");
            std::fs::remove_file(&lock).expect("release");
            std::fs::write(&lock, b"taken again").expect("take again");
            assert_eq!(
                watch.wait(Duration::from_secs(3600), Heard::appears, Duration::ZERO),
                Ok(Heard::Created)
            );
        }
    }
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


    const DELETE: u32 = libc::IN_DELETE;
    const CREATE: u32 = libc::IN_CREATE;

    fn fold(events: &[(u32, bool)]) -> Heard {
        events
            .iter()
            .fold(Heard::Nothing, |h, &(mask, ours)| h.and(mask, ours))
    }

    #[test]
    fn removal_of_the_locks_name_wakes_a_waiter() {
        assert_eq!(fold(&[(DELETE, true)]), Heard::Removed);
        assert_eq!(fold(&[(libc::IN_MOVED_FROM, true)]), Heard::Removed);
        assert!(Heard::Removed.frees());
        assert!(!Heard::Removed.appears());
    }

    #[test]
    fn a_lock_removed_and_taken_again_does_not_wake_a_waiter() {
        let heard = fold(&[(DELETE, true), (CREATE, true)]);
        assert_eq!(heard, Heard::Created);
        assert!(!heard.frees());
        assert!(
            heard.appears(),
            "a writer leaving the lock to others sees it taken"
        );
        assert_eq!(
            fold(&[(DELETE, true), (CREATE, true), (DELETE, true)]),
            Heard::Removed
        );
    }

    #[test]
    fn events_about_other_names_are_ignored() {
        assert_eq!(fold(&[(DELETE, false), (CREATE, false)]), Heard::Nothing);
        assert!(!Heard::Nothing.frees());
        assert!(!Heard::Nothing.appears());
    }

    #[test]
    fn an_overflowed_queue_or_a_vanished_directory_wakes_a_waiter() {
        for blind in [libc::IN_Q_OVERFLOW, libc::IN_IGNORED, libc::IN_DELETE_SELF] {
            let heard = fold(&[
                (DELETE, true),
                (CREATE, true),
                (blind, false),
                (CREATE, true),
            ]);
            assert_eq!(heard, Heard::Lost, "mask {blind:#x}");
            assert!(heard.frees());
            assert!(heard.appears());
        }
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
