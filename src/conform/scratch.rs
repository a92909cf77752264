//! The run's scratch directories, and the file operations the harness uses
//! in directories an adapter can write.
//!
//! A run makes one root (`rvlf-conform-XXXXXX`, mode 0711: other users may
//! pass through it but not list it) and one directory per case inside it.
//! Every root is registered here until it is removed, so that a signal can
//! remove what is left ([`close_all`]); after that no root and no case
//! directory can be made, so nothing reappears once it is gone.
//!
//! Adapters are not trusted. The main adapter runs as the harness's own user
//! and can write every scratch directory; some cases hand a directory to
//! another user. So the harness never writes through a name an adapter could
//! have planted: a file it makes is new (`O_CREAT|O_EXCL|O_NOFOLLOW`), a
//! directory it changes is opened with `O_NOFOLLOW` and changed through its
//! descriptor, and removal never follows a symlink and takes back, when it
//! must, directories another user owns or closed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, Mode, SFlag};

/// Roots not yet removed, and whether the run is being torn down.
struct Registry {
    closed: bool,
    roots: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    closed: false,
    roots: Vec::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the run is being interrupted")
}

/// A run's scratch root; removed (with everything in it) when dropped.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
}

impl Root {
    /// Make a fresh root in `parent`.
    pub fn create(parent: &Path) -> Result<Root, String> {
        let made = {
            let mut registry = registry();
            if registry.closed {
                return Err(interrupted().to_string());
            }
            // mkdir(2) of a fresh random name, mode 0700: no adapter runs yet.
            let made = tempfile::Builder::new()
                .prefix("rvlf-conform-")
                .tempdir_in(parent)
                .map(tempfile::TempDir::keep);
            if let Ok(path) = &made {
                registry.roots.push(path.clone());
            }
            made
        };
        let path = made.map_err(|e| {
            format!(
                "cannot make a scratch directory in {}: {e}",
                parent.display()
            )
        })?;
        let root = Root { path };
        // Traversable but not listable by others, so that a case may open a
        // directory of its own to an adapter running as another user.
        open_dir(&root.path)
            .and_then(|d| d.set_permissions(fs::Permissions::from_mode(0o711)))
            .map_err(|e| format!("cannot set the scratch directory's mode: {e}"))?;
        // Names the run that made it, for whoever finds one a killed run left.
        create_new(&root.path.join(".owner"), 0o644)
            .and_then(|mut f| f.write_all(std::process::id().to_string().as_bytes()))
            .map_err(|e| format!("cannot write to the scratch directory: {e}"))?;
        Ok(root)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = remove(&self.path);
        registry().roots.retain(|p| p != &self.path);
    }
}

/// Make the directory of one case in `root`, named `name` unless something
/// already stands there (an adapter can write the root): then `name.XXXXXX`.
/// mkdir(2) never reuses what it finds, so a case never works in a directory
/// (or through a symlink) an adapter prepared.
pub fn case_dir(root: &Path, name: &str) -> io::Result<PathBuf> {
    let registry = registry();
    if registry.closed {
        return Err(interrupted());
    }
    let mut path = root.join(name);
    for _ in 0..16 {
        match fs::DirBuilder::new().mode(0o755).create(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                path = root.join(format!("{name}.{}", random_suffix()?));
            }
            other => return other.map(|()| path),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} and 16 other names are taken", root.join(name).display()),
    ))
}

/// Six random lowercase letters and digits.
pub fn random_suffix() -> io::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// Refuse new roots and case directories from now on, and remove every root
/// still there. For a signal: the adapters must be stopped first.
pub fn close_all() {
    let roots = {
        let mut registry = registry();
        registry.closed = true;
        std::mem::take(&mut registry.roots)
    };
    for root in roots {
        // A case thread may still be planting or removing in it for a
        // moment: a failed pass is retried by `remove` itself.
        let _ = remove(&root);
    }
}

/// Create a new file: never an existing one, never through a symlink
/// (`O_CREAT|O_EXCL|O_NOFOLLOW`), readable and writable, `mode` whatever
/// the umask (set through the descriptor).
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(mode)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Open a directory to change it through its descriptor (fchmod, fchown,
/// *at calls); a symlink at `path` is refused, not followed.
pub fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
}

/// Remove the directory tree at `path`; nothing is followed through a
/// symlink. When a pass fails (another user's directory, a directory its
/// owner closed), the directories are taken back first: made the harness's
/// own when it is root, and mode 0700. Gone already is success.
pub fn remove(path: &Path) -> io::Result<()> {
    let mut last = Ok(());
    for _ in 0..5 {
        match fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(_)
                if fs::symlink_metadata(path)
                    .is_err_and(|e| e.kind() == io::ErrorKind::NotFound) =>
            {
                return Ok(())
            }
            Err(e) => {
                last = Err(e);
                let _ = take_back(path);
            }
        }
    }
    last
}

/// How deep [`take_back`] goes; deeper trees are left to `remove_dir_all`.
const TAKE_BACK_DEPTH: usize = 64;

/// Make every directory of the tree at `path` the harness's own (when it is
/// root) and mode 0700, without following a symlink: each directory is
/// reached with `O_PATH|O_NOFOLLOW` relative to its parent's descriptor and
/// changed through `/proc/self/fd/N`, which names that very directory.
fn take_back(path: &Path) -> io::Result<()> {
    let top = openat(
        AT_FDCWD,
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    take_back_dir(&top, 0)
}

fn take_back_dir(dir: &OwnedFd, depth: usize) -> io::Result<()> {
    let st = fstat(dir)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return Ok(());
    }
    let itself = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let euid = nix::unistd::geteuid();
    let mut retake = false;
    if euid.is_root() && st.st_uid != 0 {
        std::os::unix::fs::chown(&itself, Some(0), Some(0))?;
        retake = true;
    }
    if retake || st.st_mode & 0o7700 != 0o700 {
        fs::set_permissions(&itself, fs::Permissions::from_mode(0o700))?;
    }
    if depth >= TAKE_BACK_DEPTH {
        return Ok(());
    }
    for entry in fs::read_dir(&itself)? {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if let Ok(child) = openat(dir, entry.file_name().as_os_str(), flags, Mode::empty()) {
            let _ = take_back_dir(&child, depth + 1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn create_new_never_writes_through_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        let link = dir.path().join("link");
        symlink(&victim, &link).expect("symlink");
        assert!(create_new(&link, 0o644).is_err());
        assert_eq!(fs::read(&victim).expect("read"), b"precious");
        assert!(
            open_dir(&link).is_err(),
            "a symlink is not opened as a directory"
        );
    }

    #[test]
    fn a_taken_name_gets_a_case_directory_of_its_own() {
        let root = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        symlink(elsewhere.path(), root.path().join("layout--magic")).expect("symlink");
        let dir = case_dir(root.path(), "layout--magic").expect("case dir");
        assert_ne!(dir, root.path().join("layout--magic"));
        assert!(fs::symlink_metadata(&dir).expect("lstat").is_dir());
        assert!(dir.starts_with(root.path()));
    }

    #[test]
    fn take_back_opens_closed_directories_without_following_links() {
        let root = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let (a, b) = (root.path().join("a"), root.path().join("a/b"));
        fs::create_dir_all(&b).expect("mkdir");
        symlink(outside.path(), a.join("link")).expect("symlink");
        fs::set_permissions(&b, fs::Permissions::from_mode(0o000)).expect("chmod");
        fs::set_permissions(&a, fs::Permissions::from_mode(0o1500)).expect("chmod");
        take_back(root.path()).expect("take back");
        let mode = |p: &Path| fs::symlink_metadata(p).expect("lstat").permissions().mode() & 0o7777;
        assert_eq!(mode(&a), 0o700);
        assert_eq!(mode(&b), 0o700);
        assert_eq!(
            mode(outside.path()),
            0o755,
            "a symlink's target is left alone"
        );
    }

    #[test]
    fn remove_takes_back_closed_directories() {
        let root = tempfile::tempdir().expect("tempdir").keep();
        let closed = root.join("a/b");
        fs::create_dir_all(&closed).expect("mkdir");
        fs::write(closed.join("f"), b"x").expect("write");
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o000)).expect("chmod");
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o500)).expect("chmod");
        remove(&root).expect("remove");
        assert!(fs::symlink_metadata(&root).is_err());
    }
}
