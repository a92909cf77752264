//! Hostile lock paths on the real file system (PROTOCOL.md §4.1; defect 3 of
//! the seed, which blocked forever on a FIFO and read /dev/zero forever).
//!
//! For each thing that can stand at a lock path instead of a record — a FIFO,
//! a symlink to /dev/zero, a symlink to a valid-looking stale lock elsewhere,
//! a directory, a 1 GiB sparse file, an unreadable file — the library
//! (`WriterLock::try_acquire_file`, `rvlf_lock::inspect`) and the CLI
//! (`rvlf acquire --lock-file`, `rvlf inspect`) must:
//! - answer with the typed error (or verdict) the protocol asks for;
//! - answer within [`CALL_BOUND`] (a library call) and never hang (every call
//!   runs on a helper thread or in a child process with a [`HANG`] limit, so
//!   a hang fails the test instead of stalling it);
//! - change nothing: the path keeps its kind, inode, size and mtime, a
//!   symlink's target keeps its bytes, a directory keeps its entries, and no
//!   temporary file is left next to the lock.

use std::ffi::OsString;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::stat::Mode;
use rvlf_lock::inspect::InspectError;
use rvlf_lock::machine::{FileKind, LockError, Op};
use rvlf_lock::policy::Contents;
use rvlf_lock::{AcquireError, Busy, DecodeError, Options, Record, Released, WriterId, WriterLock};
use tempfile::TempDir;

/// How long one library call on a hostile path may take.
const CALL_BOUND: Duration = Duration::from_millis(100);
/// How long a CLI run on a hostile path may take: process start-up included.
const CLI_BOUND: Duration = Duration::from_secs(2);
/// Past this a call is taken to hang: it fails the test.
const HANG: Duration = Duration::from_secs(10);
/// The size of the sparse file.
const GIB: u64 = 1 << 30;
/// The unprivileged user the CLI runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// One hostile thing at the lock path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hostile {
    Fifo,
    SymlinkToDevZero,
    /// A symlink to a valid, stale record in another directory: following it
    /// would judge the record stale and break the lock.
    SymlinkToStaleLock,
    Directory,
    SparseGib,
    Unreadable,
}

/// A lock path with a hostile thing at it, and what surrounds it.
struct Scene {
    dir: TempDir,
    lock: PathBuf,
    /// Where a symlink points, when it points into a directory we made.
    _elsewhere: Option<TempDir>,
    target: Option<PathBuf>,
}

/// What must not change: the lock path itself, the entries of its directory,
/// and a symlink's target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    lock: Entry,
    dir_entries: Vec<OsString>,
    target: Option<Entry>,
}

/// One path as `lstat` sees it, plus what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    mode: u32,
    /// A symlink's target.
    link: Option<PathBuf>,
    /// A directory's entries.
    entries: Option<Vec<OsString>>,
    /// The first 4 KiB of a regular file we may read.
    head: Option<Vec<u8>>,
}

fn entry(path: &Path) -> Entry {
    let md = fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{} must still exist: {e}", path.display()));
    let ft = md.file_type();
    let kind = kind_name(&ft);
    let head = ft.is_file().then(|| read_head(path)).flatten();
    Entry {
        kind,
        dev: md.dev(),
        ino: md.ino(),
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        mode: md.mode(),
        link: ft
            .is_symlink()
            .then(|| fs::read_link(path).expect("readlink")),
        entries: ft.is_dir().then(|| entries(path)),
        head,
    }
}

fn kind_name(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        "regular"
    } else if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "other"
    }
}

/// The first 4 KiB of a regular file, if this process may read it.
fn read_head(path: &Path) -> Option<Vec<u8>> {
    let file = fs::File::open(path).ok()?;
    let mut head = Vec::new();
    file.take(4096).read_to_end(&mut head).ok()?;
    Some(head)
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = fs::read_dir(dir)
        .expect("list directory")
        .map(|e| e.expect("directory entry").file_name())
        .collect();
    names.sort();
    names
}

fn state(scene: &Scene) -> State {
    State {
        lock: entry(&scene.lock),
        dir_entries: entries(scene.dir.path()),
        target: scene.target.as_deref().map(entry),
    }
}

/// A TempDir under /tmp that every user may write, for a CLI run as another user.
/// Only this directory is opened up; /tmp itself is world-traversable.
fn world_writable_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rvlf-hostile-")
        .tempdir_in("/tmp")
        .expect("temp dir under /tmp");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod 0777");
    dir
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// A valid record of this host by a reaped process, 60 s old: stale by §6.4.
fn stale_record() -> [u8; 104] {
    let host = rvlf_lock::host::local_hostname().expect("gethostname");
    let ts = now() - Duration::from_secs(60);
    let ns = ts
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after epoch")
        .as_nanos() as u64;
    rvlf_lock::encode(&Record::new(
        dead_pid(),
        host.as_bytes(),
        ns,
        WriterId([9; 16]),
    ))
}

/// The pid of a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("reap true");
    pid
}

fn make_scene(hostile: Hostile, dir: TempDir) -> Scene {
    let lock = dir.path().join("data.rvf.lock");
    let mut scene = Scene {
        dir,
        lock,
        _elsewhere: None,
        target: None,
    };
    match hostile {
        Hostile::Fifo => {
            nix::unistd::mkfifo(&scene.lock, Mode::from_bits_truncate(0o644)).expect("mkfifo")
        }
        Hostile::SymlinkToDevZero => {
            std::os::unix::fs::symlink("/dev/zero", &scene.lock).expect("symlink")
        }
        Hostile::SymlinkToStaleLock => {
            let elsewhere = TempDir::new().expect("second temp dir");
            let target = elsewhere.path().join("other.rvf.lock");
            fs::write(&target, stale_record()).expect("write target");
            let file = fs::File::options().write(true).open(&target).expect("open");
            file.set_modified(now() - Duration::from_secs(60))
                .expect("age the target");
            std::os::unix::fs::symlink(&target, &scene.lock).expect("symlink");
            scene.target = Some(target);
            scene._elsewhere = Some(elsewhere);
        }
        Hostile::Directory => {
            fs::create_dir(&scene.lock).expect("mkdir");
            fs::write(scene.lock.join("inside"), b"keep me").expect("write inside");
        }
        Hostile::SparseGib => {
            let file = fs::File::create(&scene.lock).expect("create");
            file.set_len(GIB).expect("set_len 1 GiB");
        }
        Hostile::Unreadable => {
            fs::write(&scene.lock, stale_record()).expect("write");
            fs::set_permissions(&scene.lock, fs::Permissions::from_mode(0o000)).expect("chmod");
        }
    }
    scene
}

fn scene(hostile: Hostile) -> Scene {
    make_scene(hostile, TempDir::new().expect("temp dir"))
}

/// Run `f` on a helper thread; fail if it takes longer than [`HANG`].
/// Returns its result and how long the call itself took.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let out = f();
        let _ = tx.send((out, start.elapsed()));
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not return within {HANG:?}: it hangs"))
}

fn acquire(lock: &Path) -> (Result<WriterLock, AcquireError>, Duration) {
    let lock = lock.to_path_buf();
    // Boxed: the result is large, and it only crosses the thread once.
    let (out, took) = bounded("try_acquire_file", move || {
        Box::new(WriterLock::try_acquire_file(lock, Options::default()))
    });
    eprintln!("  try_acquire_file took {took:?}");
    assert!(
        took < CALL_BOUND,
        "try_acquire_file took {took:?}, bound {CALL_BOUND:?}"
    );
    (*out, took)
}

fn inspect(lock: &Path) -> Result<rvlf_lock::Inspection, InspectError> {
    let lock = lock.to_path_buf();
    let (out, took) = bounded("inspect", move || rvlf_lock::inspect(lock));
    eprintln!("  inspect took {took:?}");
    assert!(
        took < CALL_BOUND,
        "inspect took {took:?}, bound {CALL_BOUND:?}"
    );
    out
}

/// What a CLI run produced.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run the CLI, killing it (and failing) after [`HANG`].
fn run(mut cmd: Command) -> Ran {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn rvlf");
    while child.try_wait().expect("poll child").is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{shown} did not exit within {HANG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = start.elapsed();
    let out = child.wait_with_output().expect("collect output");
    let ran = Ran {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("  {shown}: {:?} in {took:?}", ran.status.code());
    assert!(
        took < CLI_BOUND,
        "{shown} took {took:?}, bound {CLI_BOUND:?}"
    );
    ran
}

fn rvlf(exe: &Path, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    cmd
}

fn cli_acquire(exe: &Path, lock: &Path) -> Command {
    rvlf(
        exe,
        &["acquire".as_ref(), lock.as_os_str(), "--lock-file".as_ref()],
    )
}

fn cli_inspect(exe: &Path, lock: &Path) -> Command {
    rvlf(exe, &["inspect".as_ref(), lock.as_os_str()])
}

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rvlf"))
}

/// An error run: exit 2 and exactly one line on stderr that contains every needle.
fn assert_error_line(ran: &Ran, needles: &[&str]) {
    assert_eq!(ran.status.code(), Some(2), "exit status; {ran:?}");
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr; {ran:?}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "stderr names {needle:?}; {ran:?}"
        );
    }
    eprintln!("  stderr: {}", lines[0]);
}

fn assert_unchanged(scene: &Scene, before: &State, after_what: &str) {
    let after = state(scene);
    assert_eq!(&after, before, "the scene changed after {after_what}");
}

/// The whole check for a path the protocol refuses as not a regular file.
fn refused_not_regular(hostile: Hostile, kind: FileKind, cli_word: &str) {
    let scene = scene(hostile);
    let before = state(&scene);
    eprintln!("{hostile:?}: {:?}", before.lock);

    let (got, _) = acquire(&scene.lock);
    match &got {
        Err(AcquireError::Lock {
            source: LockError::NotRegular { kind: k },
            ..
        }) if *k == kind => {}
        other => {
            panic!("try_acquire_file on {hostile:?}: expected NotRegular {kind:?}, got {other:?}")
        }
    }
    drop(got);
    assert_unchanged(&scene, &before, "try_acquire_file");

    match inspect(&scene.lock) {
        Err(InspectError::NotRegular { kind: k, .. }) if k == kind => {}
        other => panic!("inspect on {hostile:?}: expected NotRegular {kind:?}, got {other:?}"),
    }
    assert_unchanged(&scene, &before, "inspect");

    assert_error_line(&run(cli_acquire(&exe(), &scene.lock)), &[cli_word]);
    assert_unchanged(&scene, &before, "rvlf acquire");
    assert_error_line(&run(cli_inspect(&exe(), &scene.lock)), &[cli_word]);
    assert_unchanged(&scene, &before, "rvlf inspect");
}

#[test]
fn fifo_lock_path_is_refused_quickly_and_left_alone() {
    refused_not_regular(Hostile::Fifo, FileKind::Fifo, "FIFO");
}

#[test]
fn symlink_to_dev_zero_is_refused_quickly_and_left_alone() {
    refused_not_regular(
        Hostile::SymlinkToDevZero,
        FileKind::Symlink,
        "symbolic link",
    );
}

#[test]
fn symlink_to_a_stale_lock_elsewhere_is_never_followed() {
    // Followed, the stale target would be judged stale and the lock broken.
    refused_not_regular(
        Hostile::SymlinkToStaleLock,
        FileKind::Symlink,
        "symbolic link",
    );
}

#[test]
fn directory_lock_path_is_refused_and_its_entries_kept() {
    refused_not_regular(Hostile::Directory, FileKind::Directory, "directory");
}

#[test]
fn sparse_gib_file_is_a_fresh_malformed_lock_held_without_reading_it() {
    let scene = scene(Hostile::SparseGib);
    let before = state(&scene);
    eprintln!("SparseGib: {:?}", before.lock.size);

    let (got, _) = acquire(&scene.lock);
    match &got {
        Err(AcquireError::Busy {
            busy:
                Busy::Held {
                    contents: Contents::Malformed(DecodeError::Length { found }),
                    verdict,
                },
            ..
        }) if *found == GIB && !verdict.stale => {}
        other => panic!("expected Busy::Held Malformed Length {{ found: 1 GiB }}, got {other:?}"),
    }
    drop(got);
    assert_unchanged(&scene, &before, "try_acquire_file");

    let inspection = inspect(&scene.lock).expect("a regular file can be inspected");
    assert_eq!(
        inspection.contents,
        Contents::Malformed(DecodeError::Length { found: GIB })
    );
    assert!(!inspection.verdict.stale, "a fresh malformed file is held");
    assert!(inspection.bytes.len() <= 105, "read at most 105 bytes");
    assert_unchanged(&scene, &before, "inspect");

    // Busy, not an error: exit 1, and the reason names the length.
    let ran = run(cli_acquire(&exe(), &scene.lock));
    assert_eq!(ran.status.code(), Some(1), "busy; {ran:?}");
    assert!(
        ran.stdout.contains("1073741824"),
        "names the length; {ran:?}"
    );
    assert_unchanged(&scene, &before, "rvlf acquire");
    // A readable regular file is inspectable: exit 0, held.
    let ran = run(cli_inspect(&exe(), &scene.lock));
    assert_eq!(ran.status.code(), Some(0), "held; {ran:?}");
    assert!(
        ran.stdout.contains("[length]"),
        "decode error shown; {ran:?}"
    );
    assert_unchanged(&scene, &before, "rvlf inspect");
}

/// A copy of the CLI binary in a directory every user may traverse, so that
/// another user can run it whatever the permissions of the build directory.
fn exe_for_anyone() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("rvlf-exe-")
        .tempdir_in("/tmp")
        .expect("temp dir under /tmp");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    let copy = dir.path().join("rvlf");
    fs::copy(exe(), &copy).expect("copy rvlf");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    (dir, copy)
}

#[test]
fn unreadable_lock_file_is_an_error_never_stale_and_left_alone() {
    // The file holds a stale record: had it been judged, it would be broken.
    if nix::unistd::geteuid().is_root() {
        // Root reads a mode-000 file; an unprivileged user cannot.
        let scene = make_scene(Hostile::Unreadable, world_writable_dir());
        let before = state(&scene);
        let (_exe_dir, exe) = exe_for_anyone();
        let as_nobody = |mut cmd: Command| {
            cmd.uid(NOBODY).gid(NOBODY);
            cmd
        };
        eprintln!("running the CLI as uid {NOBODY}");
        let ran = run(as_nobody(cli_acquire(&exe, &scene.lock)));
        assert_error_line(&ran, &["Read failed", "Permission denied"]);
        assert_unchanged(&scene, &before, "rvlf acquire");
        let ran = run(as_nobody(cli_inspect(&exe, &scene.lock)));
        assert_error_line(&ran, &["Permission denied"]);
        assert_unchanged(&scene, &before, "rvlf inspect");
    } else {
        let scene = scene(Hostile::Unreadable);
        let before = state(&scene);
        let (got, _) = acquire(&scene.lock);
        match &got {
            Err(AcquireError::Lock {
                source:
                    LockError::Io {
                        op: Op::Read,
                        errno: Errno::EACCES,
                    },
                ..
            }) => {}
            other => panic!("expected Lock Io {{ Read, EACCES }}, got {other:?}"),
        }
        drop(got);
        assert_unchanged(&scene, &before, "try_acquire_file");
        match inspect(&scene.lock) {
            Err(InspectError::Io {
                errno: Errno::EACCES,
                ..
            }) => {}
            other => panic!("expected inspect Io EACCES, got {other:?}"),
        }
        assert_unchanged(&scene, &before, "inspect");
        let ran = run(cli_acquire(&exe(), &scene.lock));
        assert_error_line(&ran, &["Read failed", "Permission denied"]);
        assert_unchanged(&scene, &before, "rvlf acquire");
        assert_error_line(
            &run(cli_inspect(&exe(), &scene.lock)),
            &["Permission denied"],
        );
        assert_unchanged(&scene, &before, "rvlf inspect");
    }
}

#[test]
fn no_temporary_file_is_left_after_release_busy_or_failure() {
    let dir = TempDir::new().expect("temp dir");
    let lock = dir.path().join("data.rvf.lock");
    let only_lock = vec![OsString::from("data.rvf.lock")];

    let held = WriterLock::try_acquire_file(&lock, Options::default()).expect("free lock");
    assert_eq!(entries(dir.path()), only_lock, "while held: the lock alone");

    let busy = WriterLock::try_acquire_file(&lock, Options::default());
    assert!(
        matches!(busy, Err(AcquireError::Busy { .. })),
        "second acquire is busy: {busy:?}"
    );
    assert_eq!(entries(dir.path()), only_lock, "after a busy acquire");

    assert_eq!(held.release().expect("release"), Released::Released);
    assert_eq!(entries(dir.path()), Vec::<OsString>::new(), "after release");

    nix::unistd::mkfifo(&lock, Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let (failed, _) = acquire(&lock);
    assert!(
        matches!(failed, Err(AcquireError::Lock { .. })),
        "acquire on a FIFO fails: {failed:?}"
    );
    assert_eq!(entries(dir.path()), only_lock, "after a failed acquire");
    eprintln!("entries checked after acquire, busy, release and failure");
}
