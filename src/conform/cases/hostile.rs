//! Cases: hostile lock paths (PROTOCOL.md §4.1). Something that is not a
//! lock record stands at the lock path — a FIFO, a symlink to /dev/zero, a
//! symlink to a stale record elsewhere, a directory, a 1 GiB sparse file, an
//! unreadable file — and try-acquire must answer within the request deadline
//! (a reader that blocks or reads without end gets HANG), never `acquired`,
//! and must leave everything as it was: the thing at the path, a symlink's
//! target, a directory's entries, the lock's directory.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::craft::{self, Snapshot};
use crate::conform::case::{harness, Case, Ctx, Level, Problem};
use crate::conform::scratch;
use crate::conform::wire::{Command, Outcome};

/// The unprivileged user an adapter runs as, when the harness is root, to
/// find a file it cannot read.
const NOBODY: (u32, u32) = (65534, 65534);

/// What must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A refused or unreadable path: an error, never stale, never deleted.
    Error,
    /// A regular file that does not decode and is fresh: a held malformed lock.
    Busy,
}

/// One hostile thing to put at the lock path.
struct Kind {
    name: &'static str,
    what: &'static str,
    answer: Answer,
    /// Build the scene; returns the paths that must not change.
    plant: fn(&Ctx, &Path) -> Result<Vec<PathBuf>, Problem>,
    /// Ask as an unprivileged user when the harness is root.
    unprivileged: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "fifo",
        what: "a FIFO with no writer",
        answer: Answer::Error,
        plant: plant_fifo,
        unprivileged: false,
    },
    Kind {
        name: "symlink-dev-zero",
        what: "a symlink to /dev/zero",
        answer: Answer::Error,
        plant: plant_symlink_dev_zero,
        unprivileged: false,
    },
    Kind {
        name: "symlink-stale-record",
        what: "a symlink to a stale lock record in another directory",
        answer: Answer::Error,
        plant: plant_symlink_stale,
        unprivileged: false,
    },
    Kind {
        name: "directory",
        what: "a directory with one entry",
        answer: Answer::Error,
        plant: plant_directory,
        unprivileged: false,
    },
    Kind {
        name: "sparse-gib",
        what: "a fresh 1 GiB sparse regular file",
        answer: Answer::Busy,
        plant: plant_sparse,
        unprivileged: false,
    },
    Kind {
        name: "unreadable",
        what: "a stale record in a file of mode 000 it cannot read",
        answer: Answer::Error,
        plant: plant_unreadable,
        unprivileged: true,
    },
];

pub fn cases() -> Vec<Case> {
    KINDS.iter().map(case).collect()
}

fn case(kind: &'static Kind) -> Case {
    let (expected, rule) = match kind.answer {
        Answer::Error => (
            "error, within the request deadline",
            "is refused with an error",
        ),
        Answer::Busy => (
            "busy (a fresh malformed lock), within the request deadline",
            "is judged a held malformed lock",
        ),
    };
    Case {
        id: format!("hostile::{}", kind.name),
        section: "§4.1",
        level: Level::Must,
        requirement: format!(
            "A lock path holding {} {rule} without blocking or reading unboundedly, and nothing \
             at or behind it is deleted or changed.",
            kind.what
        ),
        expected: format!("{expected}; nothing deleted or changed"),
        exclusive: false,
        run: Box::new(move |ctx| run(ctx, kind)),
    }
}

fn run(ctx: &mut Ctx, kind: &Kind) -> Result<(), Problem> {
    let lock = ctx.lock_path();
    let mut watched: Vec<Watch> = (kind.plant)(ctx, &lock)?
        .into_iter()
        .map(Watch::Exact)
        .collect();
    watched.push(Watch::Exact(lock.clone()));
    // A writer may create and remove a temporary file next to the lock (§2.2),
    // which changes the directory's times but must not change its entries.
    watched.push(Watch::Entries(ctx.dir.clone()));
    let before = observe(&watched)?;
    let outcome = if kind.unprivileged && nix::unistd::geteuid().is_root() {
        try_acquire_unprivileged(ctx, &lock)?
    } else {
        ctx.try_acquire(&lock)?
    };
    let answered = judge_answer(ctx, kind, &lock, &outcome);
    let after = observe(&watched)?;
    let changed = differences(&before, &after);
    match (answered, changed.is_empty()) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err(Problem::Fail(format!(
            "answered {}, but {}",
            craft::describe(&outcome),
            changed.join("; ")
        ))),
        (Err(Problem::Fail(reply)), false) => {
            Err(Problem::Fail(format!("{reply}; {}", changed.join("; "))))
        }
        (Err(p), _) => Err(p),
    }
}

/// Check the reply; an `acquired` is released again so the adapter holds nothing.
fn judge_answer(ctx: &mut Ctx, kind: &Kind, lock: &Path, outcome: &Outcome) -> Result<(), Problem> {
    match (kind.answer, outcome) {
        (Answer::Error, Outcome::Error { .. }) | (Answer::Busy, Outcome::Busy) => Ok(()),
        (_, Outcome::Unimplemented) => Err(Problem::Unimplemented(
            "try-acquire is unimplemented".into(),
        )),
        (want, other) => {
            if matches!(other, Outcome::Acquired { .. }) && !kind.unprivileged {
                // Best effort: the main adapter is reused by later cases.
                let _ = ctx.release(lock);
            }
            let want = match want {
                Answer::Error => "error",
                Answer::Busy => "busy",
            };
            Err(Problem::Fail(format!(
                "try-acquire of {}: expected {want}, got {}",
                kind.what,
                craft::describe(other)
            )))
        }
    }
}

/// Ask an adapter running as an unprivileged user, so that mode 000 means
/// something; Skip when this machine cannot start one.
fn try_acquire_unprivileged(ctx: &mut Ctx, lock: &Path) -> Result<Outcome, Problem> {
    open_path_to_others(ctx)?;
    let index = match ctx.spawn_with(|spec| spec.user = Some(NOBODY)) {
        Ok(i) => i,
        Err(p) => {
            return Err(Problem::Skip(format!(
                "the harness runs as root and the adapter cannot start as uid {}: {}",
                NOBODY.0,
                p.detail()
            )))
        }
    };
    let path = crate::conform::case::path_str(lock)?;
    ctx.call_on(index, Command::TryAcquire { path })
}

/// Let another user reach the case's directory: the directory itself
/// becomes 0777 (the runner makes the run's scratch root searchable by
/// others). Skip when a directory further up is not searchable.
fn open_path_to_others(ctx: &Ctx) -> Result<(), Problem> {
    scratch::open_dir(&ctx.dir)
        .and_then(|d| d.set_permissions(fs::Permissions::from_mode(0o777)))
        .map_err(harness("chmod the case directory"))?;
    for dir in ctx.dir.ancestors().skip(1) {
        let mode = fs::metadata(dir)
            .map_err(harness("stat a scratch ancestor"))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(Problem::Skip(format!(
                "uid {} cannot reach the scratch directory: {} is mode {:o}",
                NOBODY.0,
                dir.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

fn plant_fifo(_ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    nix::unistd::mkfifo(lock, nix::sys::stat::Mode::from_bits_truncate(0o644))
        .map_err(harness("mkfifo"))?;
    Ok(Vec::new())
}

fn plant_symlink_dev_zero(_ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    let zero = PathBuf::from("/dev/zero");
    symlink(&zero, lock).map_err(harness("symlink to /dev/zero"))?;
    Ok(vec![zero])
}

fn plant_symlink_stale(ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    let elsewhere = ctx.path("elsewhere");
    fs::create_dir(&elsewhere).map_err(harness("mkdir"))?;
    let target = elsewhere.join("data.rvf.lock");
    let (pid, host) = (craft::dead_pid()?, craft::local_host()?);
    craft::plant_aged(
        &target,
        |t| craft::record(pid, &host, t),
        Duration::from_secs(60),
    )?;
    symlink(&target, lock).map_err(harness("symlink to a stale record"))?;
    Ok(vec![target, elsewhere])
}

fn plant_directory(_ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    fs::create_dir(lock).map_err(harness("mkdir at the lock path"))?;
    let entry = lock.join("entry");
    craft::put(&entry, b"an entry of a directory at the lock path\n", None)?;
    Ok(vec![entry])
}

fn plant_sparse(_ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    let file = craft::put(lock, b"", None)?;
    file.set_len(1 << 30)
        .map_err(harness("extend the sparse file to 1 GiB"))?;
    Ok(Vec::new())
}

fn plant_unreadable(_ctx: &Ctx, lock: &Path) -> Result<Vec<PathBuf>, Problem> {
    let (pid, host) = (craft::dead_pid()?, craft::local_host()?);
    let file = craft::plant_aged(
        lock,
        |t| craft::record(pid, &host, t),
        Duration::from_secs(60),
    )?;
    file.set_permissions(fs::Permissions::from_mode(0o000))
        .map_err(harness("chmod 000"))?;
    Ok(Vec::new())
}

/// A path that must not change, and how closely it is compared.
enum Watch {
    /// Kind, inode, mode, size, mtime, first bytes, symlink target, entries.
    Exact(PathBuf),
    /// Only the entries of a directory.
    Entries(PathBuf),
}

/// What is at one watched path: its metadata, a symlink's target, a directory's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: PathBuf,
    exact: bool,
    snapshot: Option<Snapshot>,
    link: Option<PathBuf>,
    entries: Option<Vec<OsString>>,
}

fn observe(watched: &[Watch]) -> Result<Vec<Seen>, Problem> {
    watched
        .iter()
        .map(|w| match w {
            Watch::Exact(p) => look(p, true),
            Watch::Entries(p) => look(p, false),
        })
        .collect()
}

fn look(path: &Path, exact: bool) -> Result<Seen, Problem> {
    let snapshot = craft::snapshot(path)?;
    let link = fs::read_link(path).ok();
    let entries = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let mut names: Vec<OsString> = fs::read_dir(path)
                .map_err(harness("list a directory"))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            Some(names)
        }
        _ => None,
    };
    Ok(Seen {
        path: path.to_path_buf(),
        exact,
        snapshot,
        link,
        entries,
    })
}

/// What changed between two observations, in words.
fn differences(before: &[Seen], after: &[Seen]) -> Vec<String> {
    let mut out = Vec::new();
    for (b, a) in before.iter().zip(after) {
        let p = b.path.display();
        if b.entries != a.entries {
            out.push(format!(
                "the entries of {p} changed from {:?} to {:?}",
                b.entries.as_deref().unwrap_or_default(),
                a.entries.as_deref().unwrap_or_default()
            ));
        }
        if !b.exact {
            continue;
        }
        match (&b.snapshot, &a.snapshot) {
            (Some(_), None) => out.push(format!("{p} was deleted")),
            (None, Some(_)) => out.push(format!("{p} appeared")),
            (Some(x), Some(y)) if x != y => out.push(format!("{p} was changed ({})", diff(x, y))),
            _ => {}
        }
        if b.link != a.link {
            out.push(format!(
                "the symlink {p} now points to {:?}, not {:?}",
                a.link, b.link
            ));
        }
    }
    out
}

fn diff(x: &Snapshot, y: &Snapshot) -> String {
    let mut parts = Vec::new();
    if (x.dev, x.ino) != (y.dev, y.ino) {
        parts.push("another file".to_string());
    }
    if x.mode != y.mode {
        parts.push(format!("mode {:o} -> {:o}", x.mode, y.mode));
    }
    if x.size != y.size {
        parts.push(format!("size {} -> {}", x.size, y.size));
    }
    if x.mtime_ns != y.mtime_ns {
        parts.push("mtime".to_string());
    }
    if x.head != y.head {
        parts.push("contents".to_string());
    }
    parts.join(", ")
}
