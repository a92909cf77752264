//! The few system calls the stress engine needs beyond the lock's own:
//! clocks, memory shared between forked processes, a futex to release them
//! at once, signal handling without threads, and namespaces.
//!
//! Everything unsafe of the engine is here, each call with the reason it is
//! sound.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use nix::errno::Errno;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the
/// machine, including those in other PID and UTS namespaces.
pub fn mono_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// CLOCK_REALTIME in nanoseconds since the UNIX epoch (what records carry).
pub fn realtime_ns() -> i128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
        .unwrap_or(0)
}

/// An anonymous `MAP_SHARED` mapping: after `fork` the parent and every
/// child see the same bytes. Zero-filled.
pub struct SharedMap {
    ptr: *mut u8,
    len: usize,
}

impl SharedMap {
    pub fn new(len: usize) -> io::Result<SharedMap> {
        // SAFETY: an anonymous mapping touches no existing memory; the result
        // is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMap {
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the
        // mapping past its owner (`Shared` hands out references tied to it).
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// Sleep while `word` equals `expected`, at most `timeout`. A shared futex:
/// the word lives in a [`SharedMap`], so waiters in other processes count.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the address is a live, aligned u32; FUTEX_WAIT only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Wake every process waiting on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not touch the word.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// The signals the harness takes synchronously (with `sigtimedwait`) instead
/// of with handlers, so that it never needs a thread: children ending or
/// stopping, and the user's interrupt.
pub fn harness_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// While alive, [`harness_signals`] are blocked in this process; dropping it
/// restores the previous mask. Children call [`SignalMask::restore_in_child`]
/// first thing after `fork`.
pub struct SignalMask {
    old: libc::sigset_t,
}

impl SignalMask {
    pub fn block() -> io::Result<SignalMask> {
        let set = harness_signals();
        // SAFETY: both sets are valid; the process is single-threaded here.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SignalMask { old })
    }

    /// In a freshly forked child: the mask the harness had before blocking.
    pub fn restore_in_child(&self) {
        // SAFETY: `old` is a valid set captured by `block`.
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }

    /// Wait up to `timeout` for one of the blocked signals; its number, or
    /// `None` on timeout.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let set = harness_signals();
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: valid set and timespec; a null info pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        (sig > 0).then_some(sig)
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        // Take pending SIGCHLDs away before unblocking, so the default
        // disposition (ignore) is all that remains.
        while self.wait(Duration::ZERO).is_some() {}
        // SAFETY: `old` is a valid set captured by `block`.
        unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// unshare(2) with the given `CLONE_NEW*` flags.
pub fn unshare(flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: unshare takes no pointers.
    Errno::result(unsafe { libc::unshare(flags) }).map(drop)
}

/// Ask the kernel to SIGKILL this process when its parent dies.
pub fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
}

/// Leave the process now, without unwinding or running destructors: how
/// every forked child ends, so that nothing of the parent's state runs twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// Raise `signal` on this process (SIGKILL, SIGSTOP: cannot be caught).
pub fn raise(signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::raise(signal);
}
