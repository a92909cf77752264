//! Take the lock of a data file without waiting, see what a second try is
//! told while the lock is held, and give the lock back.
//!
//! Works in a fresh temporary directory:
//! `cargo run -p rvlf-lock --example try_acquire`.

use std::error::Error;

use rvlf_lock::{AcquireError, Released, WriterLock};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data.rvf");

    // Creates data.rvf.lock next to the data file, or fails at once.
    let lock = WriterLock::try_acquire(&data)?;
    let record = lock.record();
    println!("acquired {}", lock.lock_path().display());
    println!("  pid {}, host {}", record.pid, record.hostname);
    println!("  writer id {}", record.writer_id);

    // Any other writer, even in this process, is told who holds the lock
    // and why it is not stale.
    match WriterLock::try_acquire(&data) {
        Err(busy @ AcquireError::Busy { .. }) => println!("second try: {busy}"),
        Err(other) => return Err(other.into()),
        Ok(_) => return Err("a second writer got a held lock".into()),
    }

    // The release checks that the lock is still ours before deleting it.
    match lock.release()? {
        Released::Released => println!("released"),
        Released::Lost(how) => println!("lost: the lock was taken over ({how:?})"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().expect("example runs")
    }
}
