//! Waiting on directory events: what a waiter has heard about the lock's
//! name ([`Heard`]), and, on Linux, the inotify watch on the lock's
//! directory that hears it. The schedule that decides how long to sleep
//! is in the parent module.
//!
//! Closing an inotify instance waits for the kernel to retire its marks
//! (an SRCU grace period: milliseconds on a busy machine), and a waiter
//! that has just acquired the lock would wait for that while holding it.
//! So each process keeps one spare instance and points it at whichever
//! directory the next waiter needs.

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
pub(super) use watch::Watch;

#[cfg(any(target_os = "linux", target_os = "android"))]
mod watch {
    use std::ffi::OsString;
    use std::os::fd::AsFd;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::Heard;

    use nix::errno::Errno;
    use nix::poll::{ppoll, PollFd, PollFlags};
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
    use nix::sys::time::TimeSpec;



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
}
