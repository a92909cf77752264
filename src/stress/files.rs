//! The harness's own files in the scratch directory (the counter, the
//! ledgers), which writers running an adapter can write too: every one is
//! created where nothing was, never through a symbolic link, and opened
//! again only if it is still the very file that was created (device and
//! inode). Times are set through a descriptor, never by path. So whatever
//! an adapter puts at these paths, the harness and its writers write no file
//! but their own.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::stat::futimens;
use nix::sys::time::TimeSpec;

/// Which file an open descriptor is: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    pub fn of(file: &File) -> io::Result<Identity> {
        let meta = file.metadata()?;
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// How a file is opened again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
    /// Writes go to the end (`O_APPEND`).
    Append,
}

impl Access {
    fn options(self) -> OpenOptions {
        let mut o = OpenOptions::new();
        match self {
            Access::Read => o.read(true),
            Access::ReadWrite => o.read(true).write(true),
            Access::Append => o.read(true).append(true),
        };
        o
    }
}

/// A file the harness created: where, and which file it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub path: PathBuf,
    pub id: Identity,
}

impl Owned {
    /// Create `path`, which must not exist (`O_CREAT|O_EXCL|O_NOFOLLOW`),
    /// with `mode`, and open it for `access`.
    pub fn create(path: &Path, access: Access, mode: u32) -> io::Result<(Owned, File)> {
        let file = access
            .options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        let owned = Owned {
            path: path.to_path_buf(),
            id: Identity::of(&file)?,
        };
        Ok((owned, file))
    }

    /// Open the file again: refused if `path` is now a symbolic link, or
    /// another file than the one created.
    pub fn open(&self, access: Access) -> io::Result<File> {
        let file = open_regular(&self.path, access)?;
        if Identity::of(&file)? != self.id {
            return Err(io::Error::other(format!(
                "{} was replaced by another file",
                self.path.display()
            )));
        }
        Ok(file)
    }
}

/// Open an existing regular file, never through a symbolic link
/// (`O_NOFOLLOW`) and without blocking on a FIFO (`O_NONBLOCK`).
pub fn open_regular(path: &Path, access: Access) -> io::Result<File> {
    let file = access
        .options()
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// Set the modification time of the open `file` to `when` with
/// futimens(2), leaving its access time.
pub fn set_mtime(file: &File, when: SystemTime) -> io::Result<()> {
    let since = when.duration_since(UNIX_EPOCH).map_err(io::Error::other)?;
    let mtime = TimeSpec::from_duration(since);
    futimens(file.as_fd(), &TimeSpec::UTIME_OMIT, &mtime).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn a_file_is_created_only_where_nothing_was_and_never_through_a_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        let link = dir.path().join("counter");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        assert!(Owned::create(&link, Access::ReadWrite, 0o600).is_err());
        assert!(Owned::create(&victim, Access::ReadWrite, 0o600).is_err());
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
    }

    #[test]
    fn a_file_is_opened_again_only_if_it_is_still_the_one_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w0.ledger");
        let (owned, mut file) = Owned::create(&path, Access::Append, 0o600).expect("create");
        file.write_all(b"a").expect("write");
        owned.open(Access::Append).expect("the same file");

        // Replaced by another regular file (a hard link to it), then by a
        // symbolic link to the original: both refused.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").expect("write");
        let moved = dir.path().join("moved");
        std::fs::rename(&path, &moved).expect("rename");
        std::fs::hard_link(&victim, &path).expect("link");
        assert!(owned.open(Access::Append).is_err());
        std::fs::remove_file(&path).expect("unlink");
        std::os::unix::fs::symlink(&moved, &path).expect("symlink");
        assert!(owned.open(Access::Append).is_err());
        assert_eq!(std::fs::read(&victim).expect("read"), b"keep");
    }

    #[test]
    fn the_mtime_is_set_through_the_descriptor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let (_, file) = Owned::create(&path, Access::ReadWrite, 0o600).expect("create");
        let then = SystemTime::now() - Duration::from_secs(3600);
        // The path no longer leads to the file: only the descriptor does.
        std::fs::remove_file(&path).expect("unlink");
        set_mtime(&file, then).expect("futimens");
        let mtime = file.metadata().expect("fstat").modified().expect("mtime");
        assert_eq!(mtime, then);
    }
}
