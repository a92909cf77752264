//! Starting writer processes: `fork` from the single-threaded harness, the
//! child in its own process group, dying with its parent, its body inside
//! `catch_unwind`, and leaving with `_exit` so that nothing of the parent's
//! state (buffers, destructors, temporary directories) runs twice.
//!
//! A writer on a simulated host first enters a new UTS namespace with its
//! own host name (and `$HOSTNAME`, which the seed's algorithm reads), and
//! optionally a new PID namespace: then the writer runs under a small init
//! (PID 1) — a namespace's init ignores the SIGKILL it sends itself, which
//! would defeat the failpoints. Every writer of every simulated host has a
//! small PID, the same on all hosts; a restarted writer gets the next one
//! (PID 2 + restarts), as on a host whose PIDs go on counting. Were it to get
//! its predecessor's PID again, it would find that dead holder's lock held by
//! a live process, itself, for as long as it lives (PROTOCOL.md §11: no boot
//! id). Where the kernel refuses namespaces to root, an unprivileged user
//! namespace is tried as well.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, setpgid, ForkResult, Pid};

use super::shared::Shared;
use super::sys::{self, SignalMask};
use super::writer::{self, code, Job};

/// Where a writer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// This host, as it is.
    Local,
    /// A simulated host: its own UTS namespace named `name`, and with
    /// `pid_ns` its own PID namespace too.
    Named { name: String, pid_ns: bool },
}

/// Fork a writer running `job`. The harness must be single-threaded.
pub fn writer(job: &Job, shared: &Shared, mask: &SignalMask, host: &Host) -> Result<Pid, String> {
    // SAFETY: the harness has no other threads (it never starts any), so the
    // child's copy of the process is consistent; the child runs only the
    // writer and leaves with `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code =
                std::panic::catch_unwind(AssertUnwindSafe(|| child_main(job, shared, mask, host)))
                    .unwrap_or(code::PANIC);
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => Ok(child),
        Err(e) => Err(format!("fork: {e}")),
    }
}

fn child_main(job: &Job, shared: &Shared, mask: &SignalMask, host: &Host) -> i32 {
    mask.restore_in_child();
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    sys::die_with_parent();
    match host {
        Host::Local => writer::run(job, shared),
        Host::Named { name, pid_ns } => {
            if enter_host(name, *pid_ns).is_err() {
                return code::SETUP;
            }
            if *pid_ns {
                run_in_pid_namespace(job, shared)
            } else {
                writer::run(job, shared)
            }
        }
    }
}

/// Unshare the namespaces and take the host name. In a PID namespace only
/// this process's children are inside it.
fn enter_host(name: &str, pid_ns: bool) -> Result<(), Errno> {
    let mut flags = libc::CLONE_NEWUTS;
    if pid_ns {
        flags |= libc::CLONE_NEWPID;
    }
    if let Err(first) = sys::unshare(flags) {
        if first != Errno::EPERM {
            return Err(first);
        }
        // Not allowed as we are: an unprivileged user namespace may be.
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        sys::unshare(flags | libc::CLONE_NEWUSER)?;
        let map = |file: &str, text: String| {
            std::fs::write(format!("/proc/self/{file}"), text).map_err(|_| Errno::EPERM)
        };
        map("setgroups", "deny".into())?;
        map("uid_map", format!("0 {uid} 1"))?;
        map("gid_map", format!("0 {gid} 1"))?;
    }
    nix::unistd::sethostname(name)?;
    // The seed's algorithm asks $HOSTNAME: a real other host would say so too.
    // SAFETY (of the environment): this forked process has one thread.
    std::env::set_var("HOSTNAME", name);
    Ok(())
}

/// This process is outside the new PID namespace, its first child is its
/// init. Mirror how the writer ended, so the harness sees a SIGKILL as one.
fn run_in_pid_namespace(job: &Job, shared: &Shared) -> i32 {
    // SAFETY: single-threaded, as above.
    let init = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            sys::die_with_parent();
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| namespace_init(job, shared)))
                .unwrap_or(code::PANIC);
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => return code::SETUP,
    };
    // The harness kills or stops the init: that takes the writer with it.
    shared
        .slot(job.index)
        .signal_pid
        .store(init.as_raw(), Ordering::Relaxed);
    mirror(waitpid(init, None))
}

/// PID 1 of the namespace: runs the writer as PID 2 + its incarnation and
/// passes on its end.
fn namespace_init(job: &Job, shared: &Shared) -> i32 {
    for _ in 0..job.incarnation {
        if dead_pid().is_err() {
            return code::SETUP;
        }
    }
    // SAFETY: single-threaded, as above.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            sys::die_with_parent();
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| writer::run(job, shared)))
                .unwrap_or(code::PANIC);
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, c)) => c,
            // An init cannot raise SIGKILL on itself: say it with the code.
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            _ => code::SETUP,
        },
        Err(_) => code::SETUP,
    }
}

fn mirror(status: nix::Result<WaitStatus>) -> i32 {
    let signal = match status {
        Ok(WaitStatus::Exited(_, c)) if c > 128 => Signal::try_from(c - 128).ok(),
        Ok(WaitStatus::Exited(_, c)) => return c,
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(sig),
        _ => return code::SETUP,
    };
    if let Some(sig) = signal {
        sys::raise(sig);
    }
    code::SETUP
}

/// Whether writers can run on simulated hosts here; the reason if not.
pub fn probe_hosts(pid_ns: bool, mask: &SignalMask) -> Result<(), String> {
    // SAFETY: single-threaded, as above; the child only calls unshare and
    // sethostname and leaves with `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            mask.restore_in_child();
            let code = match enter_host("rvlf-stress-probe", pid_ns) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, errno)) => Err(format!(
                "unshare(CLONE_NEWUTS{}) and sethostname, also in a user namespace: {}",
                if pid_ns { "|CLONE_NEWPID" } else { "" },
                Errno::from_raw(errno)
            )),
            other => Err(format!("namespace probe ended with {other:?}")),
        },
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// Run `body` in a forked child and return its exit code.
pub fn in_child(mask: &SignalMask, body: impl FnOnce() -> i32) -> Result<i32, String> {
    // SAFETY: single-threaded, as above; the child runs `body` inside
    // catch_unwind and leaves with `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            mask.restore_in_child();
            let code = std::panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(code::PANIC);
            sys::exit_now(code)
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(c),
                Ok(other @ WaitStatus::Signaled(..)) => return Err(format!("{other:?}")),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(format!("waitpid: {e}")),
            }
        },
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// A PID that names no process: a child that has exited and been reaped.
pub fn dead_pid() -> Result<u32, String> {
    // SAFETY: the child does nothing but `_exit`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => sys::exit_now(0),
        Ok(ForkResult::Parent { child }) => {
            waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            Ok(child.as_raw() as u32)
        }
        Err(e) => Err(format!("fork: {e}")),
    }
}
