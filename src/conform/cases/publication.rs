//! Cases: atomic publication (PROTOCOL.md §7.1). A harness thread reads the
//! lock path as fast as it can, the way a contender would (§4.1), while the
//! implementation acquires and releases again and again. Whenever it finds a
//! regular file there, the file must already be the whole 104-byte record:
//! a file of any other size is a record seen half-published.
//!
//! PROTOCOL.md names a creation mode (0644) in its §7.1 procedure but states
//! no requirement on the lock file's mode, so no case checks it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, lstat, Mode, SFlag};

use super::craft;
use crate::conform::case::{Case, Ctx, Level, Problem};
use crate::conform::wire::Outcome;
use rvlf_lock::record::RECORD_LEN;

/// Acquire/release cycles of the first attempt.
const CYCLES: usize = 300;
/// Cycles of the second attempt, when the first saw no record at all.
const RETRY_CYCLES: usize = 900;
/// Time one attempt may take at most.
const BUDGET: Duration = Duration::from_millis(1500);

pub fn cases() -> Vec<Case> {
    vec![Case {
        id: "publication::no-partial-record".into(),
        section: "§7.1",
        level: Level::Must,
        requirement: "The lock path appears with all 104 bytes at once: no reader ever finds a \
                      partial record there."
            .into(),
        expected: "over hundreds of acquire/release cycles, every regular file a concurrent \
                   reader finds at the lock path is 104 bytes long"
            .into(),
        exclusive: true,
        run: Box::new(no_partial_record),
    }]
}

fn no_partial_record(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    let mut seen = Seen::default();
    for cycles in [CYCLES, RETRY_CYCLES] {
        seen = watch_while_cycling(ctx, &path, cycles)?;
        if !seen.partial.is_empty() {
            return Err(Problem::Fail(format!(
                "a reader found the lock file with {} (and {} times with 104 bytes) in {} \
                 acquire/release cycles",
                seen.partial_sizes(),
                seen.whole,
                seen.cycles
            )));
        }
        if seen.whole > 0 {
            return Ok(());
        }
    }
    Err(Problem::Skip(format!(
        "the reader never caught the lock file at all in {} acquire/release cycles: this \
         machine cannot observe publication",
        seen.cycles
    )))
}

/// What the reader found.
#[derive(Debug, Default)]
struct Seen {
    /// Regular files of 104 bytes.
    whole: u64,
    /// Other sizes (st_size, or bytes read when they differ): how often each.
    partial: BTreeMap<u64, u64>,
    /// Acquire/release cycles the implementation completed meanwhile.
    cycles: usize,
}

impl Seen {
    fn partial_sizes(&self) -> String {
        self.partial
            .iter()
            .map(|(size, n)| format!("{size} bytes {n} times"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Cycle acquire/release `cycles` times (or until the budget is spent, or a
/// partial record is seen) while a thread reads the lock path.
fn watch_while_cycling(ctx: &mut Ctx, path: &Path, cycles: usize) -> Result<Seen, Problem> {
    let stop = Arc::new(AtomicBool::new(false));
    let partial_seen = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop, partial_seen) = (path.to_path_buf(), stop.clone(), partial_seen.clone());
        std::thread::spawn(move || read_until_stopped(&path, &stop, &partial_seen))
    };
    let until = Instant::now() + BUDGET.min(ctx.remaining() / 2);
    let mut done = 0;
    let mut result = Ok(());
    while done < cycles && Instant::now() < until && !partial_seen.load(Ordering::Relaxed) {
        if let Err(p) = cycle(ctx, path) {
            result = Err(p);
            break;
        }
        done += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = reader
        .join()
        .map_err(|_| Problem::Harness("the reader thread panicked".into()))?;
    result?;
    seen.cycles = done;
    Ok(seen)
}

/// One acquire and release by the implementation.
fn cycle(ctx: &mut Ctx, path: &Path) -> Result<(), Problem> {
    let outcome = ctx.try_acquire(path)?;
    craft::expect_acquired(&outcome, "try-acquire of a free lock")?;
    match ctx.release(path)? {
        Outcome::Released => Ok(()),
        Outcome::Unimplemented => Err(Problem::Unimplemented("release is unimplemented".into())),
        other => Err(Problem::Fail(format!(
            "release of its own lock: expected released, got {}",
            craft::describe(&other)
        ))),
    }
}

/// Read the lock path as a contender does (§4.1), as fast as possible.
fn read_until_stopped(path: &Path, stop: &AtomicBool, partial_seen: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        if let Some(size) = read_once(path) {
            if size == RECORD_LEN as u64 {
                seen.whole += 1;
            } else {
                *seen.partial.entry(size).or_default() += 1;
                partial_seen.store(true, Ordering::Relaxed);
            }
        }
    }
    seen
}

/// The length of the regular file at `path` (st_size, or the bytes read when
/// st_size was 104), or `None` when there is none.
fn read_once(path: &Path) -> Option<u64> {
    let st = lstat(path).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return None;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = open(path, flags, Mode::empty()).ok()?;
    let st = fstat(&fd).ok()?;
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let mut buf = [0u8; RECORD_LEN + 1];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(&fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    Some(if size != RECORD_LEN as u64 {
        size
    } else {
        got as u64
    })
}
