//! What cases use to set a scene: records with chosen fields, files planted
//! with chosen mtimes, PIDs known dead or alive, this host's name, and a
//! look at what an implementation wrote.
//!
//! Scenes are set in directories an adapter can write, so a file is only
//! ever planted as a new file renamed into place ([`put`]), its times and
//! mode are set through its descriptor, and a look at a file opens it
//! without following a symlink or blocking on a FIFO.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::conform::case::{harness, Problem};
use crate::conform::scratch;
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

/// Put a new file holding `bytes` at `path`, the way a writer publishes one,
/// and return it open (read and write) for what the scene does next (a
/// flock, an fchmod). It is made under a fresh name next to `path` with
/// `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0644, given `mtime_ns` through its
/// descriptor (futimens), then renamed over `path`: whatever stood there, a
/// symlink an adapter planted included, is replaced and never written
/// through. Every name is resolved from the directory's descriptor, opened
/// without following a symlink.
pub fn put(path: &Path, bytes: &[u8], mtime_ns: Option<i128>) -> Result<File, Problem> {
    let what = |e: &dyn std::fmt::Display| {
        Problem::Harness(format!("plant a file at {}: {e}", path.display()))
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(what(&"not a file path"));
    };
    let dir = scratch::open_dir(dir).map_err(|e| what(&e))?;
    let flags =
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for _ in 0..16 {
        let suffix = scratch::random_suffix().map_err(|e| what(&e))?;
        let staging = format!(".rvlf-scene-{suffix}");
        let fd = match openat(
            &dir,
            staging.as_str(),
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(what(&e)),
            Ok(fd) => fd,
        };
        let mut file = File::from(fd);
        let written = file
            .set_permissions(fs::Permissions::from_mode(0o644))
            .and_then(|()| file.write_all(bytes))
            .map_err(|e| what(&e))
            .and_then(|()| mtime_ns.map_or(Ok(()), |t| set_mtime(&file, t)))
            .and_then(|()| renameat(&dir, staging.as_str(), &dir, name).map_err(|e| what(&e)));
        if let Err(p) = written {
            let _ = unlinkat(&dir, staging.as_str(), UnlinkatFlags::NoRemoveDir);
            return Err(p);
        }
        return Ok(file);
    }
    Err(what(&"16 fresh names were all taken"))
}

/// [`put`] `bytes` at `path` with mtime `mtime_ns` (UNIX epoch ns).
pub fn plant(path: &Path, bytes: &[u8], mtime_ns: i128) -> Result<File, Problem> {
    put(path, bytes, Some(mtime_ns))
}

/// Plant the encoded `record` with both its timestamp and its mtime `age` old.
pub fn plant_aged(
    path: &Path,
    record_at: impl Fn(i128) -> Record,
    age: Duration,
) -> Result<File, Problem> {
    let when = now_ns() - age.as_nanos() as i128;
    let r = record_at(when);
    plant(path, &record::encode(&r), when)
}

/// Set an open file's mtime (UNIX epoch ns; before 1970 is clamped to 1970)
/// through its descriptor (futimens; the atime is left alone).
pub fn set_mtime(file: &File, mtime_ns: i128) -> Result<(), Problem> {
    let ns = u64::try_from(mtime_ns.max(0)).unwrap_or(u64::MAX);
    file.set_modified(UNIX_EPOCH + Duration::from_nanos(ns))
        .map_err(harness("set a file's mtime"))
}

/// Open what is at `path` for reading only if it is a regular file, never
/// through a symlink and never blocking (a FIFO swapped in after a look
/// would block a plain open): the file and its metadata, or `None` when
/// something else (or nothing) is there now.
fn open_regular(path: &Path) -> std::io::Result<Option<(File, fs::Metadata)>> {
    let opened = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ELOOP)
                || e.raw_os_error() == Some(libc::ENXIO) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let m = file.metadata()?;
    Ok(m.file_type().is_file().then_some((file, m)))
}

/// What is at `path` now: its bytes, or `None` when nothing is there.
pub fn read_lock(path: &Path) -> Result<Option<Vec<u8>>, Problem> {
    let not_regular = || Problem::Fail(format!("{} is no longer a regular file", path.display()));
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::Harness(format!("lstat {}: {e}", path.display()))),
        Ok(m) if !m.file_type().is_file() => Err(not_regular()),
        Ok(_) => {
            let opened = open_regular(path).map_err(harness("open the lock file"))?;
            let Some((mut file, _)) = opened else {
                return match fs::symlink_metadata(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    _ => Err(not_regular()),
                };
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(harness("read the lock file"))?;
            Ok(Some(bytes))
        }
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
        let mut buf = Vec::new();
        // Bounded, and only of the very file looked at (which the harness
        // may not be allowed to read: then its head is not compared).
        if let Ok(Some((f, opened))) = open_regular(path) {
            if (opened.dev(), opened.ino()) == (m.dev(), m.ino()) {
                let _ = f.take(4096).read_to_end(&mut buf);
            }
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
