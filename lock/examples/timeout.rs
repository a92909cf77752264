//! Wait for a lock another writer holds: a holder thread keeps the lock of
//! `data.rvf` for a short while, and the main thread waits for it with
//! `WriterLock::acquire_timeout`, getting it as soon as the holder releases.
//!
//! Works in a fresh temporary directory:
//! `cargo run -p rvlf-lock --example timeout`.

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use rvlf_lock::{Released, WriterLock};

/// How long the holder keeps the lock.
const HOLD: Duration = Duration::from_millis(200);

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data.rvf");

    // Take the lock and hand it to a thread that holds it, then releases it.
    let held = WriterLock::try_acquire(&data)?;
    println!("holder: acquired, keeping it for {HOLD:?}");
    let holder = thread::spawn(move || {
        thread::sleep(HOLD);
        held.release()
    });

    // Wait up to 10 s; the waiter wakes when the lock file is removed.
    let start = Instant::now();
    let lock = WriterLock::acquire_timeout(&data, Duration::from_secs(10))?;
    println!("waiter: acquired after {:?}", start.elapsed());

    let released = holder.join().map_err(|_| "the holder thread panicked")??;
    println!("holder: {released:?}");
    if lock.release()? != Released::Released {
        return Err("the waiter's lock was taken over".into());
    }
    println!("waiter: released");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().expect("example runs")
    }
}
