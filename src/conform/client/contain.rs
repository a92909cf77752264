//! Containment of adapter process trees: whatever an adapter starts, in its
//! process group or not, in a new session or not, ignoring SIGTERM or not,
//! is gone once the adapter is stopped.
//!
//! Each adapter is started in one of two ways, chosen when it starts:
//!
//! - **A cgroup v2 of its own**, where cgroups can be made: cgroup2 is
//!   mounted (found in /proc/self/mountinfo, at /sys/fs/cgroup or elsewhere),
//!   the cgroup this process is in (/proc/self/cgroup) lets it make a child
//!   (root, or a delegated subtree), and the kernel has `cgroup.kill` (Linux
//!   5.14). The adapter's cgroup is `<this process's cgroup>/rvlf-<pid>-<n>`;
//!   the forked child joins it before it execs (it writes `0` to the cgroup's
//!   `cgroup.procs` through a descriptor the harness opened before the fork),
//!   so everything it ever starts is born inside, and only a process allowed
//!   to write to another cgroup's `cgroup.procs` can leave. Stopping writes
//!   `1` to `cgroup.kill`, which SIGKILLs every process in it (forks racing
//!   with it included), waits until the cgroup is empty and removes it.
//! - **A child subreaper** everywhere else (no cgroup2, a read-only or
//!   foreign cgroup tree, an older kernel), and when `RVLF_NO_CGROUP` is set
//!   to anything but `0` or the empty string. This process marks itself with
//!   PR_SET_CHILD_SUBREAPER, so that the orphans of an adapter (the children
//!   of a process that exited, setsid() or not) are re-parented to it rather
//!   than to init, and every adapter gets `RVLF_ADAPTER_TREE=<pid>-<n>` in its
//!   environment. Stopping scans /proc/*/stat and SIGKILLs, round after round
//!   until none is left: the adapter, every process whose parent chain
//!   reaches it, the adapter's process group, and every process adopted by
//!   this one that came from that adapter: tagged with its
//!   `RVLF_ADAPTER_TREE`, tagged with one of an adapter already stopped, or
//!   untagged but in the adapter's process group or in a session other than
//!   this process's. The adopted ones are reaped with waitpid(2). Only a
//!   process that does all of these at once escapes the stop of its adapter
//!   (and is found by [`stop_all`] alone): leave the adapter's tree, move to
//!   a new process group of this process's session, and remove the variable
//!   from its environment.
//!
//! [`stop_all`] kills every adapter tree this process started, cgroups and
//! adopted orphans included, and refuses further starts: it is for a run
//! that was interrupted, and may be called from any thread, also while
//! other threads start and stop adapters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{getpgrp, getpid, getsid, Pid};

/// The environment variable that tags an adapter's processes (subreaper way).
pub const TAG_VAR: &str = "RVLF_ADAPTER_TREE";
/// Set to anything but `0` or the empty string: never use cgroups.
pub const NO_CGROUP_VAR: &str = "RVLF_NO_CGROUP";

/// How long killing one tree may take before the harness gives up on what
/// is left (a process in uninterruptible sleep dies when it wakes up).
const PATIENCE: Duration = Duration::from_secs(2);
/// Between two rounds of a kill.
const ROUND: Duration = Duration::from_millis(1);

/// Set by [`stop_all`]: no adapter may start after it.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Numbers the adapters of this process.
static SERIAL: AtomicU64 = AtomicU64::new(1);
/// Set once making or joining a cgroup failed: the subreaper way from then on.
static NO_CGROUPS: AtomicBool = AtomicBool::new(false);

/// What the registry knows of a live adapter.
struct Entry {
    leader: i32,
    tag: String,
    cgroup: Option<PathBuf>,
}

/// Every adapter started and not yet released, by serial number.
fn registry() -> &'static Mutex<BTreeMap<u64, Entry>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<u64, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Held from fork to registration, and by each round of a subreaper kill,
/// so that a round never sees a child between its fork and its registration.
fn forking() -> &'static Mutex<()> {
    static FORKING: Mutex<()> = Mutex::new(());
    &FORKING
}

/// Cgroups whose removal failed (a process slow to die); retried later.
fn leftovers() -> &'static Mutex<Vec<PathBuf>> {
    static LEFTOVERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    &LEFTOVERS
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How one adapter's processes are held; release it after the adapter was
/// killed with [`Tree::kill`] and reaped.
#[derive(Debug)]
pub struct Tree {
    serial: u64,
    tag: String,
    /// The adapter's own cgroup, or `None`: the subreaper way.
    cgroup: Option<PathBuf>,
    released: bool,
}

/// Start the command `build` makes as a contained adapter: in a cgroup of its
/// own where possible, else under this process as a subreaper. `build` may be
/// called twice (a start that cannot join its cgroup is retried without).
pub fn spawn(build: impl Fn() -> Command) -> io::Result<(Child, Tree)> {
    if STOPPING.load(Ordering::SeqCst) {
        return Err(interrupted());
    }
    let serial = SERIAL.fetch_add(1, Ordering::SeqCst);
    let tag = format!("{}-{serial}", std::process::id());
    if let Some(cgroup) = new_cgroup(serial) {
        match start(&build, serial, &tag, Some(&cgroup)) {
            Ok(child) => {
                let tree = Tree {
                    serial,
                    tag,
                    cgroup: Some(cgroup.dir),
                    released: false,
                };
                return Ok((child, tree));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                let _ = fs::remove_dir(&cgroup.dir);
                return Err(e);
            }
            Err(_) => {
                // Perhaps the cgroup could not be joined; perhaps the command
                // cannot start at all. Without the cgroup, we will know.
                let _ = fs::remove_dir(&cgroup.dir);
                let child = start_subreaped(&build, serial, &tag)?;
                NO_CGROUPS.store(true, Ordering::SeqCst);
                return Ok((child, Tree::subreaped(serial, tag)));
            }
        }
    }
    let child = start_subreaped(&build, serial, &tag)?;
    Ok((child, Tree::subreaped(serial, tag)))
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted")
}

fn start_subreaped(build: &impl Fn() -> Command, serial: u64, tag: &str) -> io::Result<Child> {
    become_subreaper();
    start(build, serial, tag, None)
}

/// Fork and exec one adapter, joining `cgroup` in between, and register it.
fn start(
    build: &impl Fn() -> Command,
    serial: u64,
    tag: &str,
    cgroup: Option<&NewCgroup>,
) -> io::Result<Child> {
    let mut command = build();
    command.env(TAG_VAR, tag);
    if let Some(cgroup) = cgroup {
        let procs = cgroup.procs.as_raw_fd();
        // SAFETY: between fork and exec the closure only calls write(2), which
        // is async-signal-safe, on a descriptor that stays open until the
        // parent's spawn returns (it is closed on exec).
        unsafe {
            command.pre_exec(move || join_cgroup(procs));
        }
    }
    let _forking = lock(forking());
    let mut child = command.spawn()?;
    // Registered under the lock stop_all takes: either stop_all sees this
    // adapter, or this start sees that it is stopping.
    let mut live = lock(registry());
    if STOPPING.load(Ordering::SeqCst) {
        drop(live);
        if let Some(cgroup) = cgroup {
            let _ = fs::write(cgroup.dir.join("cgroup.kill"), "1");
        }
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.kill();
        let _ = child.wait();
        return Err(interrupted());
    }
    live.insert(
        serial,
        Entry {
            leader: child.id() as i32,
            tag: tag.to_string(),
            cgroup: cgroup.map(|c| c.dir.clone()),
        },
    );
    Ok(child)
}

/// In the forked child: move this process into the cgroup whose
/// `cgroup.procs` is open as `procs`.
fn join_cgroup(procs: i32) -> io::Result<()> {
    // SAFETY: a plain write(2) of a static byte string.
    let written = unsafe { libc::write(procs, b"0".as_ptr().cast(), 1) };
    if written == 1 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Make this process a child subreaper, once.
fn become_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // SAFETY: prctl with integer arguments; it only sets a flag of this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0);
        }
    });
}

// ---------------------------------------------------------------- cgroups

/// A cgroup made for one adapter, with its `cgroup.procs` open for writing.
struct NewCgroup {
    dir: PathBuf,
    procs: OwnedFd,
}

/// The cgroup this process is in, as a directory, when cgroup2 is mounted
/// and `RVLF_NO_CGROUP` does not forbid it. Found once per process.
fn cgroup_base() -> Option<&'static Path> {
    static BASE: OnceLock<Option<PathBuf>> = OnceLock::new();
    BASE.get_or_init(|| {
        let off = std::env::var_os(NO_CGROUP_VAR).is_some_and(|v| !v.is_empty() && v != "0");
        if off {
            return None;
        }
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
        find_cgroup_dir(own, &mounts)
    })
    .as_deref()
}

/// The directory of cgroup `own` (a path in the cgroup2 hierarchy) under a
/// cgroup2 mount listed in `mountinfo`.
fn find_cgroup_dir(own: &str, mountinfo: &str) -> Option<PathBuf> {
    if own.split('/').any(|part| part == "..") || own.ends_with(" (deleted)") {
        return None;
    }
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split(' ').next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let (root, point) = (unescape(root), unescape(point));
        let rest = if root == "/" {
            Some(own)
        } else {
            own.strip_prefix(root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
        };
        if let Some(rest) = rest {
            let dir = Path::new(&point).join(rest.trim_start_matches('/'));
            if dir.join("cgroup.procs").is_file() {
                return Some(dir);
            }
        }
    }
    None
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The name prefix of this process's cgroups.
fn cgroup_prefix() -> String {
    format!("rvlf-{}-", std::process::id())
}

/// Make the cgroup of adapter `serial`, or `None` (the subreaper way).
fn new_cgroup(serial: u64) -> Option<NewCgroup> {
    if NO_CGROUPS.load(Ordering::SeqCst) {
        return None;
    }
    let base = cgroup_base()?;
    let dir = base.join(format!("{}{serial}", cgroup_prefix()));
    let made = fs::create_dir(&dir).or_else(|e| {
        // One left by an earlier process of the same pid, perhaps.
        if e.kind() == io::ErrorKind::AlreadyExists {
            fs::remove_dir(&dir).and_then(|()| fs::create_dir(&dir))
        } else {
            Err(e)
        }
    });
    if made.is_err() {
        NO_CGROUPS.store(true, Ordering::SeqCst);
        return None;
    }
    let procs = if dir.join("cgroup.kill").is_file() {
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .ok()
    } else {
        None
    };
    match procs {
        Some(file) => Some(NewCgroup {
            dir,
            procs: file.into(),
        }),
        None => {
            let _ = fs::remove_dir(&dir);
            NO_CGROUPS.store(true, Ordering::SeqCst);
            None
        }
    }
}

/// Remove an emptied cgroup, waiting up to `patience` for its last processes
/// to finish dying; a cgroup that cannot be removed yet is retried later.
fn remove_cgroup(dir: &Path, patience: Duration) {
    let until = Instant::now() + patience;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) if Instant::now() < until => std::thread::sleep(ROUND),
            Err(_) => {
                lock(leftovers()).push(dir.to_path_buf());
                return;
            }
        }
    }
}

/// Retry the removal of cgroups that were not empty in time.
fn remove_leftovers() {
    let dirs: Vec<PathBuf> = lock(leftovers()).drain(..).collect();
    for dir in dirs {
        if fs::remove_dir(&dir).is_err() && dir.exists() {
            lock(leftovers()).push(dir);
        }
    }
}

fn cgroup_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

// ---------------------------------------------------------------- /proc

/// One process, from /proc/PID/stat.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    zombie: bool,
}

fn parse_stat(pid: i32, stat: &str) -> Option<Proc> {
    // The command name, in parentheses, may itself hold ") ".
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    let sid = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        sid,
        zombie: state == "Z" || state == "X",
    })
}

/// Every process this process can see.
fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// The `RVLF_ADAPTER_TREE` of a process's environment, if it can be read.
fn tag_of(pid: i32) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{TAG_VAR}=");
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(|tag| String::from_utf8_lossy(tag).into_owned())
}

/// The pids of `roots` and of every process whose parent chain reaches one.
fn with_descendants(roots: &[i32], procs: &[Proc]) -> Vec<Proc> {
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    let mut by_pid: HashMap<i32, &Proc> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
        by_pid.insert(p.pid, p);
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut todo: Vec<i32> = roots.to_vec();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(p) = by_pid.get(&pid) {
            out.push(**p);
        }
        todo.extend(children.get(&pid).into_iter().flatten().map(|c| c.pid));
    }
    out
}

fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

// ---------------------------------------------------------------- trees

impl Tree {
    fn subreaped(serial: u64, tag: String) -> Tree {
        Tree {
            serial,
            tag,
            cgroup: None,
            released: false,
        }
    }

    /// Send `signal` to every process of the tree. `leader` is the adapter's
    /// pid while it is not reaped.
    pub fn signal(&self, leader: Option<i32>, group: i32, signal: Signal) {
        let _ = killpg(Pid::from_raw(group), signal);
        let pids: Vec<i32> = match &self.cgroup {
            Some(dir) => cgroup_pids(dir),
            None => {
                let _forking = lock(forking());
                let procs = processes();
                with_descendants(&self.roots(leader, group, &procs), &procs)
                    .iter()
                    .filter(|p| !p.zombie)
                    .map(|p| p.pid)
                    .collect()
            }
        };
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// SIGKILL every process of the tree and wait (a bounded time) until
    /// none is left; reap the ones this process adopted. `leader` is the
    /// adapter's pid while it is not reaped (it is killed, never reaped here),
    /// `group` its process group.
    pub fn kill(&self, leader: Option<i32>, group: i32) {
        if let Some(dir) = &self.cgroup {
            if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                return;
            }
        }
        let until = Instant::now() + PATIENCE;
        while self.kill_round(leader, group) && Instant::now() < until {
            std::thread::sleep(ROUND);
        }
    }

    /// One round of a subreaper kill; true while processes are left.
    fn kill_round(&self, leader: Option<i32>, group: i32) -> bool {
        let _forking = lock(forking());
        let procs = processes();
        let me = getpid().as_raw();
        let mut left = false;
        for p in with_descendants(&self.roots(leader, group, &procs), &procs) {
            if Some(p.pid) == leader {
                if !p.zombie {
                    let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                }
            } else if !p.zombie {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                left = true;
            } else if p.ppid == me {
                reap(p.pid);
            } else {
                // A zombie whose parent is being killed: adopted next round.
                left = true;
            }
        }
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        left
    }

    /// Where a subreaper scan of this tree starts: the adapter, and the
    /// processes this process adopted from it.
    fn roots(&self, leader: Option<i32>, group: i32, procs: &[Proc]) -> Vec<i32> {
        let me = getpid().as_raw();
        let (my_group, my_session) = (getpgrp().as_raw(), getsid(None).map_or(0, Pid::as_raw));
        let ours = format!("{}-", std::process::id());
        let (leaders, tags): (BTreeSet<i32>, BTreeSet<String>) = {
            let live = lock(registry());
            (
                live.values().map(|e| e.leader).collect(),
                live.iter()
                    .filter(|(serial, _)| **serial != self.serial)
                    .map(|(_, e)| e.tag.clone())
                    .collect(),
            )
        };
        let mut roots: Vec<i32> = leader.into_iter().collect();
        for p in procs {
            // Only adopted processes: not this process's own children (other
            // adapters, helpers it runs in its own process group).
            if p.ppid != me || leaders.contains(&p.pid) || p.pgid == my_group {
                continue;
            }
            let from_here = match tag_of(p.pid) {
                Some(tag) if tag == self.tag => true,
                // Of an adapter of this process that is gone.
                Some(tag) if tag.starts_with(&ours) => !tags.contains(&tag),
                _ => p.pgid == group || p.sid != my_session,
            };
            if from_here {
                roots.push(p.pid);
            }
        }
        roots
    }

    /// After the adapter was killed and reaped: remove its cgroup and forget it.
    pub fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        lock(registry()).remove(&self.serial);
        if let Some(dir) = &self.cgroup {
            remove_cgroup(dir, PATIENCE);
        }
        remove_leftovers();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.release();
    }
}

// ---------------------------------------------------------------- stop_all

/// Kill every adapter tree this process started, cgroups and adopted
/// orphans included, and refuse to start new ones (an interrupted run).
///
/// Safe to call from any thread while others start, use and stop adapters,
/// also from a thread that runs after a signal was caught; it never waits
/// for a lock another thread might hold for long, and its waits are bounded
/// (about a second).
pub fn stop_all() {
    STOPPING.store(true, Ordering::SeqCst);
    let until = Instant::now() + Duration::from_secs(1);
    // Every start either registered before this or sees STOPPING.
    let registered: Vec<(i32, Option<PathBuf>)> = loop {
        match registry().try_lock() {
            Ok(live) => {
                break live
                    .values()
                    .map(|e| (e.leader, e.cgroup.clone()))
                    .collect()
            }
            Err(TryLockError::Poisoned(p)) => {
                break p
                    .into_inner()
                    .values()
                    .map(|e| (e.leader, e.cgroup.clone()))
                    .collect()
            }
            Err(TryLockError::WouldBlock) if Instant::now() < until => std::thread::sleep(ROUND),
            Err(TryLockError::WouldBlock) => break Vec::new(),
        }
    };
    let mut cgroups: BTreeSet<PathBuf> = registered.iter().filter_map(|(_, c)| c.clone()).collect();
    // And any cgroup of this process the registry does not show yet.
    if let Some(base) = cgroup_base() {
        let prefix = cgroup_prefix();
        if let Ok(entries) = fs::read_dir(base) {
            cgroups.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path()),
            );
        }
    }
    for dir in &cgroups {
        let _ = fs::write(dir.join("cgroup.kill"), "1");
    }
    for (leader, _) in &registered {
        let _ = killpg(Pid::from_raw(*leader), Signal::SIGKILL);
    }
    // Everything else below this process: subreaper adapters and their
    // adopted orphans (and the harness's own helpers, which end with it).
    let me = getpid().as_raw();
    let my_group = getpgrp().as_raw();
    let leaders: BTreeSet<i32> = registered.iter().map(|(l, _)| *l).collect();
    loop {
        let procs = processes();
        let mut left = false;
        for p in with_descendants(&[me], &procs) {
            if p.pid == me {
                continue;
            }
            if !p.zombie {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                left = true;
            } else if p.ppid == me && p.pgid != my_group && !leaders.contains(&p.pid) {
                reap(p.pid);
            }
        }
        if !left || Instant::now() >= until {
            break;
        }
        std::thread::sleep(ROUND);
    }
    let patience = until.saturating_duration_since(Instant::now());
    for dir in &cgroups {
        remove_cgroup(dir, patience.min(Duration::from_millis(200)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_with_odd_command_names() {
        let p = parse_stat(7, "7 (a) b) S 1 7 7 0 -1").expect("parse");
        assert_eq!(
            (p.pid, p.ppid, p.pgid, p.sid, p.zombie),
            (7, 1, 7, 7, false)
        );
        let z = parse_stat(8, "8 (sh) Z 7 8 3 0").expect("parse");
        assert!(z.zombie);
        assert!(parse_stat(9, "9 (sh)").is_none());
    }

    #[test]
    fn the_cgroup_directory_comes_from_mountinfo() {
        let info = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        // The first mount whose directory exists wins; neither exists here
        // unless this machine has them, so check the path logic directly.
        let found = find_cgroup_dir("/user.slice/x.scope", info);
        if let Some(dir) = found {
            assert!(dir.ends_with("user.slice/x.scope"), "{dir:?}");
        }
        assert_eq!(find_cgroup_dir("/../escaped", info), None);
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"/plain"), "/plain");
    }

    #[test]
    fn descendants_follow_parent_chains() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            pgid: pid,
            sid: pid,
            zombie: false,
        };
        let procs = [p(10, 1), p(11, 10), p(12, 11), p(13, 1), p(14, 13)];
        let mut found: Vec<i32> = with_descendants(&[10], &procs)
            .iter()
            .map(|p| p.pid)
            .collect();
        found.sort_unstable();
        assert_eq!(found, vec![10, 11, 12]);
    }
}
