//! Multi-process contention run: forked writers fight for one lock, and every
//! holder writes an enter and an exit entry into an `O_APPEND` ledger and
//! increments a non-atomic counter file inside its critical section. The
//! ledger's append order is the kernel's order of those writes, so two
//! holders overlapped exactly when an enter follows another enter before its
//! exit; lost counter updates cross-check it.
//!
//! Runs the reference (must show 0 overlaps) and the seed's algorithm
//! (`Flaws::SEED`, which must show overlaps), on a disk directory and on
//! tmpfs. A `harness = false` target: the process is single-threaded when it
//! forks, and each child leaves with `_exit`.
//!
//! Bigger runs: `RVLF_CONTENTION_WRITERS=8 RVLF_CONTENTION_COUNT=5000 cargo test --release --test contention`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use rvlf::machine::Flaws;
use rvlf::{AcquireError, Options, WriterLock};

const ENTRY: usize = 24;
const ENTER: u8 = b'E';
const EXIT: u8 = b'X';

struct Config {
    writers: u32,
    count: u32,
}

struct Outcome {
    acquisitions: u64,
    overlaps: u64,
    counter: u64,
    failed_children: u32,
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let config = Config {
        writers: env_u32("RVLF_CONTENTION_WRITERS", 4),
        count: env_u32("RVLF_CONTENTION_COUNT", 1000),
    };
    let mut places = vec![("disk", std::env::temp_dir())];
    if Path::new("/dev/shm").is_dir() {
        places.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    println!(
        "contention: {} writers x {} acquisitions each, per variant and file system",
        config.writers, config.count
    );
    println!(
        "{:<10} {:<6} {:>12} {:>9} {:>9} {:>8}",
        "variant", "fs", "acquisitions", "overlaps", "counter", "verdict"
    );
    let mut ok = true;
    for (fs, base) in &places {
        for (variant, flaws) in [("reference", Flaws::default()), ("seed", Flaws::SEED)] {
            let outcome = match run(base, &config, flaws) {
                Ok(o) => o,
                Err(e) => {
                    println!("{variant:<10} {fs:<6} harness error: {e}");
                    ok = false;
                    continue;
                }
            };
            let expected_ok = if flaws == Flaws::default() {
                outcome.overlaps == 0
                    && outcome.counter == outcome.acquisitions
                    && outcome.failed_children == 0
                    && outcome.acquisitions == u64::from(config.writers * config.count)
            } else {
                // The seed's algorithm must be caught: this is what proves the check.
                outcome.overlaps > 0
            };
            ok &= expected_ok;
            println!(
                "{variant:<10} {fs:<6} {:>12} {:>9} {:>9} {:>8}",
                outcome.acquisitions,
                outcome.overlaps,
                outcome.counter,
                if expected_ok { "expected" } else { "WRONG" }
            );
        }
    }
    // A closing line that test runners read.
    if ok {
        println!("test result: ok. 1 passed; 0 failed");
        ExitCode::SUCCESS
    } else {
        println!("test result: FAILED. 0 passed; 1 failed");
        ExitCode::FAILURE
    }
}

fn run(base: &Path, config: &Config, flaws: Flaws) -> Result<Outcome, String> {
    let dir = tempfile::Builder::new()
        .prefix("rvlf-contention-")
        .tempdir_in(base)
        .map_err(|e| format!("tempdir in {}: {e}", base.display()))?;
    let lock = dir.path().join("data.rvf.lock");
    let ledger = dir.path().join("ledger");
    let counter = dir.path().join("counter");
    std::fs::write(&counter, 0u64.to_le_bytes()).map_err(|e| e.to_string())?;
    File::create(&ledger).map_err(|e| e.to_string())?;

    let mut children = Vec::new();
    for writer in 0..config.writers {
        // SAFETY: this target has no threads (harness = false, nothing spawned),
        // and the child only runs `writer_loop` and leaves with `_exit`.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = std::panic::catch_unwind(|| {
                    writer_loop(writer, config.count, &lock, &ledger, &counter, flaws)
                })
                .unwrap_or(99);
                // SAFETY: leaving the child without running the parent's destructors.
                unsafe { nix::libc::_exit(code) };
            }
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(e) => return Err(format!("fork: {e}")),
        }
    }
    let mut failed_children = 0;
    for child in children {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => {}
            _ => failed_children += 1,
        }
    }
    let entries = std::fs::read(&ledger).map_err(|e| e.to_string())?;
    let (acquisitions, overlaps) = check_ledger(&entries)?;
    let counter = read_counter(&counter).map_err(|e| e.to_string())?;
    Ok(Outcome {
        acquisitions,
        overlaps,
        counter,
        failed_children,
    })
}

/// One writer: acquire (retrying at once while busy), critical section, release.
/// Exit code 0, or 1 if the lock machinery reported an error.
fn writer_loop(
    writer: u32,
    count: u32,
    lock: &Path,
    ledger: &Path,
    counter: &Path,
    flaws: Flaws,
) -> i32 {
    let Ok(mut ledger) = OpenOptions::new()
        .append(true)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(ledger)
    else {
        return 1;
    };
    let options = Options {
        flaws,
        ..Options::default()
    };
    let mut errors = 0;
    let mut done = 0;
    while done < count {
        let held = match WriterLock::try_acquire_file(lock, options) {
            Ok(held) => held,
            Err(AcquireError::Busy { .. }) => {
                std::thread::yield_now();
                continue;
            }
            Err(_) => {
                // The seed's algorithm trips over its own partial files; count, go on.
                errors += 1;
                if errors > 10 * count {
                    return 1;
                }
                continue;
            }
        };
        let seq = u64::from(done);
        if append(&mut ledger, ENTER, writer, seq).is_err() || bump(counter).is_err() {
            return 1;
        }
        std::thread::yield_now();
        if append(&mut ledger, EXIT, writer, seq).is_err() {
            return 1;
        }
        if held.release().is_err() && flaws == Flaws::default() {
            return 1;
        }
        done += 1;
    }
    i32::from(errors > 0 && flaws == Flaws::default())
}

fn append(ledger: &mut File, kind: u8, writer: u32, seq: u64) -> std::io::Result<()> {
    let mut entry = [0u8; ENTRY];
    entry[0] = kind;
    entry[4..8].copy_from_slice(&writer.to_le_bytes());
    entry[8..16].copy_from_slice(&seq.to_le_bytes());
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0);
    entry[16..24].copy_from_slice(&now.to_le_bytes());
    // One write of a whole entry to an O_APPEND file: the kernel orders them.
    ledger.write_all(&entry)
}

/// Read, increment, write back: loses updates whenever two holders overlap.
fn bump(path: &Path) -> std::io::Result<()> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)?;
    let value = u64::from_le_bytes(b) + 1;
    std::thread::yield_now();
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&value.to_le_bytes())
}

fn read_counter(path: &Path) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    File::open(path)?.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Acquisitions, and how many of them entered while another holder was inside.
fn check_ledger(bytes: &[u8]) -> Result<(u64, u64), String> {
    if bytes.len() % ENTRY != 0 {
        return Err(format!("ledger of {} bytes is torn", bytes.len()));
    }
    let mut inside: Vec<(u32, u64)> = Vec::new();
    let (mut acquisitions, mut overlaps) = (0, 0);
    for entry in bytes.chunks_exact(ENTRY) {
        let writer = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&entry[8..16]);
        let seq = u64::from_le_bytes(s);
        match entry[0] {
            ENTER => {
                acquisitions += 1;
                if !inside.is_empty() {
                    overlaps += 1;
                }
                inside.push((writer, seq));
            }
            EXIT => inside.retain(|&h| h != (writer, seq)),
            other => return Err(format!("ledger entry of unknown kind {other}")),
        }
    }
    Ok((acquisitions, overlaps))
}
