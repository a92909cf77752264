//! The lock's real use: hold it while replacing `data.rvf`. The new contents
//! go to a temporary file next to it, which is synced and renamed into place,
//! so readers see the old file or the new one, never half of one. The release
//! then says whether the lock was still ours: if it was taken over meanwhile
//! (judged stale and broken by another writer), another writer may have
//! written too, and the caller must know.
//!
//! Works in a fresh temporary directory:
//! `cargo run -p rvlf-lock --example write_data`.

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rvlf_lock::{Released, WriterLock};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data.rvf");

    let lock = WriterLock::try_acquire(&data)?;
    replace(&data, b"RVF data written under the lock\n")?;

    match lock.release()? {
        Released::Released => println!("wrote {} and released the lock", data.display()),
        Released::Lost(how) => {
            return Err(format!("the lock was taken over while writing: {how:?}").into())
        }
    }
    print!("{}", fs::read_to_string(&data)?);
    Ok(())
}

/// Replace `path` with `contents`: write a temporary file, fsync it, rename
/// it over `path`, then fsync the directory so that the rename is durable.
fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = dir.join(name);
    let mut file = File::create(&temp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temp, path)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().expect("example runs")
    }
}
