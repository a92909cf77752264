//! Look inside a lock file: take a lock, print what `rvlf_lock::inspect`
//! makes of its lock file (the bytes, annotated field by field, and whether
//! this host would judge it stale now, with the reasons), then release it.
//!
//! Works in a fresh temporary directory:
//! `cargo run -p rvlf-lock --example inspect`.

use std::error::Error;

use rvlf_lock::{Released, WriterLock};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data.rvf");

    let lock = WriterLock::try_acquire(&data)?;

    // Reads the lock file as any reader would (§4.1) and judges it (§6).
    let inspection = rvlf_lock::inspect(lock.lock_path())?;
    print!("{}", inspection.render());
    if inspection.verdict.stale {
        return Err("a lock held by a live process was judged stale".into());
    }

    match lock.release()? {
        Released::Released => println!("\nreleased"),
        other => return Err(format!("release: {other:?}").into()),
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
