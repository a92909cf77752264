//! Runs the lock machine against the real file system with syscalls
//! (PROTOCOL.md §4.1, §7.1, §8). This is the only module of the lock that
//! touches files.
//!
//! - Publication is atomic: the record is written and fsynced into an unnamed
//!   `O_TMPFILE` (or a uniquely named temporary file where the file system has
//!   no `O_TMPFILE`), guarded with `flock`, and only then linked into place.
//!   Only where the file system refuses hard links does the driver say so
//!   ([`Reply::LinksRefused`](crate::machine::Reply::LinksRefused)), and the
//!   machine creates the lock and then writes it.
//! - Reads are bounded and non-blocking and refuse anything that is not a
//!   regular file: `lstat` first so that no device or FIFO is ever opened,
//!   `O_NOFOLLOW | O_NONBLOCK`, `fstat` on the descriptor to be sure.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{fstat, lstat, FileStat, Mode, SFlag};
use nix::unistd::{fsync, linkat, unlink, Pid};

use crate::machine::{
    FileId, FileKind, FileSystem, Handle, Meta, ReadReply, Reply, Request, READ_LIMIT,
};
use crate::policy::Liveness;
use crate::record::hex;

/// Permissions of a new lock file, before the umask: everyone may read it.
const LOCK_MODE: u32 = 0o644;

/// The real file system, for one lock path.
#[derive(Debug)]
pub struct Driver {
    lock_path: PathBuf,
    dir: PathBuf,
    files: BTreeMap<Handle, OwnedFd>,
    next: u64,
}

impl Driver {
    /// A driver for the lock file at `lock_path`.
    pub fn new(lock_path: &Path) -> Self {
        let dir = match lock_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Driver {
            lock_path: lock_path.to_path_buf(),
            dir,
            files: BTreeMap::new(),
            next: 1,
        }
    }

    /// Take an open file out of the driver (the held lock, after an acquire).
    pub fn take(&mut self, file: Handle) -> Option<OwnedFd> {
        self.files.remove(&file)
    }

    /// Hand an open file to the driver (the held lock, before a release).
    pub fn adopt(&mut self, fd: OwnedFd) -> Handle {
        let h = Handle(self.next);
        self.next += 1;
        self.files.insert(h, fd);
        h
    }

    fn publish(&mut self, bytes: &[u8]) -> Result<Reply, Errno> {
        let (fd, temp) = match self.unnamed_temp() {
            Ok(fd) => (fd, None),
            // No O_TMPFILE here: a named temporary file (§2.2).
            Err(Errno::EOPNOTSUPP | Errno::EISDIR | Errno::EINVAL) => {
                let (fd, path) = self.named_temp()?;
                (fd, Some(path))
            }
            Err(e) => return Err(e),
        };
        let cleanup = |temp: &Option<PathBuf>| {
            if let Some(t) = temp {
                let _ = unlink(t.as_path());
            }
        };
        let prepared = write_all(&fd, bytes)
            .and_then(|()| fsync(&fd))
            .and_then(|()| guard(&fd).map(|_| ()));
        if let Err(e) = prepared {
            cleanup(&temp);
            return Err(e);
        }
        let linked = match &temp {
            None => link_unnamed(&fd, &self.lock_path),
            Some(t) => linkat(
                nix::fcntl::AT_FDCWD,
                t.as_path(),
                nix::fcntl::AT_FDCWD,
                self.lock_path.as_path(),
                AtFlags::empty(),
            ),
        };
        cleanup(&temp);
        match linked {
            Ok(()) => Ok(self.published(fd)?),
            Err(Errno::EEXIST) => Ok(Reply::Exists),
            // The file system has no hard links: the documented fallback (§7.1).
            Err(Errno::EPERM | Errno::EOPNOTSUPP | Errno::EMLINK) => Ok(Reply::LinksRefused),
            Err(e) => Err(e),
        }
    }

    fn unnamed_temp(&self) -> Result<OwnedFd, Errno> {
        open(
            self.dir.as_path(),
            OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(LOCK_MODE),
        )
    }

    fn named_temp(&self) -> Result<(OwnedFd, PathBuf), Errno> {
        let name = self.lock_path.file_name().unwrap_or_default();
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| Errno::EIO)?;
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".{}.tmp", hex(&random)));
        let path = self.dir.join(temp);
        let fd = open(
            path.as_path(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(LOCK_MODE),
        )?;
        Ok((fd, path))
    }

    /// The fallback's second half: write the record into the created file.
    /// If that fails, the partial file is removed while it is still ours
    /// (the same file at the lock path), so that no one waits out a record
    /// that will never be completed.
    fn write(&mut self, file: Handle, bytes: &[u8]) -> Result<Reply, Errno> {
        let fd = self.file(file)?;
        let written = write_all(fd, bytes).and_then(|()| fsync(fd));
        if let Err(e) = written {
            let ours = fstat(fd).map(|st| file_id(&st));
            let there = lstat(self.lock_path.as_path()).map(|st| file_id(&st));
            if matches!((ours, there), (Ok(a), Ok(b)) if a == b) {
                let _ = unlink(self.lock_path.as_path());
            }
            return Err(e);
        }
        Ok(Reply::Written)
    }

    /// Create the lock path empty, exclusively, and guard it at once (§7.1
    /// fallback, §7.2).
    fn create_empty(&mut self) -> Result<Reply, Errno> {
        let opened = open(
            self.lock_path.as_path(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(LOCK_MODE),
        );
        match opened {
            Ok(fd) => {
                if let Err(e) = guard(&fd) {
                    let _ = unlink(self.lock_path.as_path());
                    return Err(e);
                }
                self.published(fd)
            }
            Err(Errno::EEXIST) => Ok(Reply::Exists),
            Err(e) => Err(e),
        }
    }

    fn published(&mut self, fd: OwnedFd) -> Result<Reply, Errno> {
        let id = file_id(&fstat(&fd)?);
        let file = self.adopt(fd);
        Ok(Reply::Published { file, id })
    }

    fn read(&mut self, keep_open: bool) -> Result<Reply, Errno> {
        // lstat first, so that no FIFO, device or symlink target is ever opened.
        let before = match lstat(self.lock_path.as_path()) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(Reply::Read(ReadReply::NotFound)),
            Err(e) => return Err(e),
        };
        if let Some(kind) = not_regular(&before) {
            return Ok(Reply::Read(ReadReply::NotRegular(kind)));
        }
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = match open(self.lock_path.as_path(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Reply::Read(ReadReply::NotFound)),
            Err(Errno::ELOOP) => return Ok(Reply::Read(ReadReply::NotRegular(FileKind::Symlink))),
            Err(e) => return Err(e),
        };
        // The path may have changed since the lstat: what counts is what we opened.
        let st = fstat(&fd)?;
        if let Some(kind) = not_regular(&st) {
            return Ok(Reply::Read(ReadReply::NotRegular(kind)));
        }
        let meta = meta(&st);
        let head = read_head(&fd, meta.size)?;
        let file = keep_open.then(|| self.adopt(fd));
        Ok(Reply::Read(ReadReply::Found { file, meta, head }))
    }

    fn stat(&self) -> Result<Reply, Errno> {
        match lstat(self.lock_path.as_path()) {
            Ok(st) => Ok(Reply::Stat(Some(meta(&st)))),
            Err(Errno::ENOENT) => Ok(Reply::Stat(None)),
            Err(e) => Err(e),
        }
    }

    fn file(&self, file: Handle) -> Result<&OwnedFd, Errno> {
        self.files.get(&file).ok_or(Errno::EBADF)
    }

    fn try_perform(&mut self, request: &Request) -> Result<Reply, Errno> {
        match request {
            Request::Now => Ok(Reply::Now(now_ns())),
            Request::Publish { bytes } => self.publish(bytes),
            Request::Create => self.create_empty(),
            Request::Write { file, bytes } => self.write(*file, bytes),
            Request::Read { keep_open } => self.read(*keep_open),
            Request::ProbePid { pid } => Ok(Reply::Liveness(probe_pid(*pid))),
            Request::Guard { file } => match guard(self.file(*file)?)? {
                true => Ok(Reply::Guarded),
                false => Ok(Reply::GuardBusy),
            },
            Request::Stat => self.stat(),
            Request::Unlink => match unlink(self.lock_path.as_path()) {
                Ok(()) => Ok(Reply::Unlinked),
                Err(Errno::ENOENT) => Ok(Reply::UnlinkedNothing),
                Err(e) => Err(e),
            },
            Request::Close { file } => {
                self.files.remove(file).ok_or(Errno::EBADF)?;
                Ok(Reply::Closed)
            }
        }
    }
}

impl FileSystem for Driver {
    fn perform(&mut self, request: &Request) -> Reply {
        self.try_perform(request).unwrap_or_else(Reply::Failed)
    }
}

/// The wall clock in UNIX epoch nanoseconds.
pub fn now_ns() -> i128 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// kill(pid, 0), read as §6.3 says. Callers only pass PIDs that name one process.
pub fn probe_pid(pid: u32) -> Liveness {
    let Ok(raw) = i32::try_from(pid) else {
        return Liveness::Unknown {
            errno: Errno::EINVAL as i32,
        };
    };
    if raw <= 0 {
        return Liveness::Unknown {
            errno: Errno::EINVAL as i32,
        };
    }
    match nix::sys::signal::kill(Pid::from_raw(raw), None) {
        Ok(()) => Liveness::Alive,
        Err(Errno::EPERM) => Liveness::AliveOtherUser,
        Err(Errno::ESRCH) => Liveness::Dead,
        Err(e) => Liveness::Unknown { errno: e as i32 },
    }
}

/// flock(LOCK_EX | LOCK_NB): `Ok(false)` when someone else holds it.
fn guard(fd: &OwnedFd) -> Result<bool, Errno> {
    // SAFETY: flock only reads the descriptor number, which `fd` keeps open.
    let rc = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    match Errno::result(rc) {
        Ok(_) => Ok(true),
        Err(Errno::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether linkat(AT_EMPTY_PATH) was refused in this process: the kernel
/// permits it only with CAP_DAC_READ_SEARCH or (Linux 6.10 on) to the file's
/// opener, and says ENOENT otherwise. Learnt once, so that a refusing kernel
/// costs one extra syscall per process, not per acquire.
static EMPTY_PATH_REFUSED: AtomicBool = AtomicBool::new(false);

/// Give an `O_TMPFILE` a name (§7.1 step 4). AT_EMPTY_PATH where the kernel
/// permits it: it links the descriptor itself, with no walk through /proc,
/// which costs about as much as the rest of the link. Else through
/// /proc/self/fd. Both forms fail alike (EEXIST when the lock path exists).
fn link_unnamed(fd: &OwnedFd, to: &Path) -> Result<(), Errno> {
    if !EMPTY_PATH_REFUSED.load(Ordering::Relaxed) {
        match linkat(
            fd.as_fd(),
            "",
            nix::fcntl::AT_FDCWD,
            to,
            AtFlags::AT_EMPTY_PATH,
        ) {
            // Refused, or the lock's directory is gone: /proc tells which.
            Err(Errno::ENOENT) => {}
            other => return other,
        }
    }
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let linked = linkat(
        nix::fcntl::AT_FDCWD,
        proc_path.as_str(),
        nix::fcntl::AT_FDCWD,
        to,
        AtFlags::AT_SYMLINK_FOLLOW,
    );
    // /proc resolved the descriptor, so the ENOENT was the refusal.
    if matches!(linked, Ok(()) | Err(Errno::EEXIST)) {
        EMPTY_PATH_REFUSED.store(true, Ordering::Relaxed);
    }
    linked
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// At most [`READ_LIMIT`] bytes from the start of the file, whose `fstat`
/// gave `size`. Short reads are repeated until end of file (§4.1 step 4);
/// a read that has brought exactly `size` bytes has reached the end the
/// `fstat` saw, so the read that would only confirm it is skipped.
fn read_head(fd: &OwnedFd, size: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; READ_LIMIT];
    let mut got = 0;
    while got < READ_LIMIT {
        match nix::sys::uio::pread(fd, &mut buf[got..], got as i64) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got as u64 == size {
                    break;
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn not_regular(st: &FileStat) -> Option<FileKind> {
    let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    Some(match fmt {
        SFlag::S_IFREG => return None,
        SFlag::S_IFLNK => FileKind::Symlink,
        SFlag::S_IFIFO => FileKind::Fifo,
        SFlag::S_IFDIR => FileKind::Directory,
        SFlag::S_IFSOCK => FileKind::Socket,
        SFlag::S_IFCHR => FileKind::CharDevice,
        SFlag::S_IFBLK => FileKind::BlockDevice,
        _ => FileKind::Unknown,
    })
}

fn file_id(st: &FileStat) -> FileId {
    FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

/// What the machine compares: identity, size and mtime.
pub fn meta(st: &FileStat) -> Meta {
    Meta {
        id: file_id(st),
        size: st.st_size as u64,
        mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
    }
}

/// The lock path of a data file: its path with ".lock" appended (§2.1).
pub fn lock_path_for(data_path: &Path) -> PathBuf {
    let mut bytes = data_path.as_os_str().as_bytes().to_vec();
    bytes.extend_from_slice(b".lock");
    PathBuf::from(OsString::from_vec(bytes))
}
