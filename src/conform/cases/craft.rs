//! What cases use to set a scene: records with chosen fields, files planted
//! with chosen mtimes, PIDs known dead or alive, this host's name, and a
//! look at what an implementation wrote.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::conform::case::{harness, Problem};
use crate::conform::wire::{unhex, Outcome};
use rvlf_lock::record::{self, Hostname, Record, WriterId};

pub const SECOND: i128 = 1_000_000_000;

/// The wall clock, UNIX epoch nanoseconds.
pub fn now_ns() -> i128 {
    rvlf_lock::driver::now_ns()
}

/// This host's name as a conforming writer stores it.
pub fn local_host() -> Result<Hostname, Problem> {
    rvlf_lock::host::local_hostname().map_err(|e| Problem::Harness(format!("gethostname: {e}")))
}

/// A host name that is not this host's.
pub fn other_host() -> Hostname {
    Hostname::truncated(b"rvlf-conformance-other-host")
}

/// A PID that named a process which has exited and been reaped.
pub fn dead_pid() -> Result<u32, Problem> {
    let mut child = std::process::Command::new("true")
        .spawn()
        .map_err(harness("spawn `true`"))?;
    let pid = child.id();
    child.wait().map_err(harness("wait for `true`"))?;
    Ok(pid)
}

/// A PID that is alive for the whole case: the harness's own.
pub fn live_pid() -> u32 {
    std::process::id()
}

/// A record with the given fields and a fixed writer id.
pub fn record(pid: u32, host: &Hostname, timestamp_ns: i128) -> Record {
    Record {
        pid,
        hostname: host.clone(),
        timestamp_ns: u64::try_from(timestamp_ns.max(0)).unwrap_or(u64::MAX),
        writer_id: WriterId(*b"conformance-case"),
        version: record::VERSION,
    }
}

/// Write `bytes` at `path` and set its mtime (UNIX epoch ns).
pub fn plant(path: &Path, bytes: &[u8], mtime_ns: i128) -> Result<(), Problem> {
    fs::write(path, bytes).map_err(harness("plant a lock file"))?;
    set_mtime(path, mtime_ns)
}

/// Plant the encoded `record` with both its timestamp and its mtime `age` old.
pub fn plant_aged(
    path: &Path,
    record_at: impl Fn(i128) -> Record,
    age: Duration,
) -> Result<Record, Problem> {
    let when = now_ns() - age.as_nanos() as i128;
    let r = record_at(when);
    plant(path, &record::encode(&r), when)?;
    Ok(r)
}

/// Set a file's mtime (UNIX epoch ns; before 1970 is clamped to 1970).
pub fn set_mtime(path: &Path, mtime_ns: i128) -> Result<(), Problem> {
    let ns = u64::try_from(mtime_ns.max(0)).unwrap_or(u64::MAX);
    let when = UNIX_EPOCH + Duration::from_nanos(ns);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .map_err(harness("set a file's mtime"))
}

/// What is at `path` now: its bytes, or `None` when nothing is there.
pub fn read_lock(path: &Path) -> Result<Option<Vec<u8>>, Problem> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::Harness(format!("lstat {}: {e}", path.display()))),
        Ok(m) if !m.file_type().is_file() => Err(Problem::Fail(format!(
            "{} is no longer a regular file",
            path.display()
        ))),
        Ok(_) => fs::read(path)
            .map(Some)
            .map_err(harness("read the lock file")),
    }
}

/// A file's identity and state, to show that nothing touched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i128,
    /// The first 4 KiB, for regular files.
    pub head: Vec<u8>,
}

/// Snapshot what is at `path` without following a symlink.
pub fn snapshot(path: &Path) -> Result<Option<Snapshot>, Problem> {
    let m = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Problem::Harness(format!("lstat {}: {e}", path.display()))),
        Ok(m) => m,
    };
    let head = if m.file_type().is_file() {
        use std::io::Read;
        let mut buf = Vec::new();
        // Bounded, and only of regular files (a FIFO would block).
        if let Ok(f) = fs::File::open(path) {
            let _ = f.take(4096).read_to_end(&mut buf);
        }
        buf
    } else {
        Vec::new()
    };
    Ok(Some(Snapshot {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        size: m.size(),
        mtime_ns: i128::from(m.mtime()) * SECOND + i128::from(m.mtime_nsec()),
        head,
    }))
}

/// Fail unless what is at `path` is exactly as `before`.
pub fn unchanged(path: &Path, before: &Option<Snapshot>) -> Result<(), Problem> {
    let after = snapshot(path)?;
    if &after == before {
        return Ok(());
    }
    Err(Problem::Fail(match (before, &after) {
        (Some(_), None) => format!("{} was deleted", path.display()),
        (None, Some(_)) => format!("{} appeared", path.display()),
        _ => format!("{} was changed", path.display()),
    }))
}

/// The writer id (hex) an `acquired` reply carries, or a failure naming what came instead.
pub fn expect_acquired(outcome: &Outcome, what: &str) -> Result<[u8; 16], Problem> {
    match outcome {
        Outcome::Acquired { writer_id } => unhex(writer_id)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| {
                Problem::Fail(format!(
                    "{what}: writer_id {writer_id:?} is not 16 bytes of hex"
                ))
            }),
        Outcome::Unimplemented => Err(Problem::Unimplemented(format!(
            "{what}: try-acquire is unimplemented"
        ))),
        other => Err(Problem::Fail(format!(
            "{what}: expected acquired, got {}",
            describe(other)
        ))),
    }
}

/// Fail unless the reply is `busy`.
pub fn expect_busy(outcome: &Outcome, what: &str) -> Result<(), Problem> {
    match outcome {
        Outcome::Busy => Ok(()),
        Outcome::Unimplemented => Err(Problem::Unimplemented(format!(
            "{what}: try-acquire is unimplemented"
        ))),
        other => Err(Problem::Fail(format!(
            "{what}: expected busy, got {}",
            describe(other)
        ))),
    }
}

/// A reply in a few words, for failure messages.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error { error, message } if message.is_empty() => format!("error ({error})"),
        Outcome::Error { error, message } => format!("error ({error}: {message})"),
        Outcome::Invalid { code } => format!("invalid ({code})"),
        other => other.name().to_string(),
    }
}

/// Decode a lock file the implementation wrote, failing with what is wrong.
pub fn decode_written(bytes: &[u8]) -> Result<Record, Problem> {
    record::decode(bytes).map_err(|e| {
        Problem::Fail(format!(
            "the lock file it wrote is not a valid record: [{}] {e}",
            e.code()
        ))
    })
}
