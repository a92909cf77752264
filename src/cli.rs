//! The `rvlf` command line: inspect a lock file, take a lock by hand, and
//! regenerate or check the golden files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::lock::{describe, AcquireError, Options, WriterLock};
use crate::machine::Released;
use crate::{golden, inspect, lock_path_for};

/// Reference implementation and test harness of the RVF writer-lock protocol (RVLF v1).
///
/// A data file `data.rvf` is written by one writer at a time; writers exclude
/// each other with the 104-byte lock file `data.rvf.lock` (see PROTOCOL.md).
#[derive(Debug, Parser)]
#[command(name = "rvlf", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a lock file holds, as annotated hex, and whether this host
    /// would judge it stale now, and why.
    ///
    /// Exit status: 0 held, 1 stale (may be broken), 2 not readable as a lock file.
    Inspect {
        /// The lock file (e.g. data.rvf.lock).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Take the lock of a data file, hold it, release it, and say what happened.
    ///
    /// Exit status: 0 acquired and released; 1 busy or timed out; 2 error;
    /// 3 acquired, but the lock was lost before release.
    Acquire {
        /// The data file (its lock is PATH.lock), or the lock file with --lock-file.
        path: PathBuf,
        /// PATH is the lock file itself.
        #[arg(long)]
        lock_file: bool,
        /// Wait up to this many seconds for the lock instead of failing at once.
        #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
        timeout: f64,
        /// Hold the lock this many seconds before releasing it.
        #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
        hold: f64,
    },
    /// Regenerate or check the golden lock files.
    Golden {
        #[command(subcommand)]
        action: GoldenAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum GoldenAction {
    /// Rewrite every fixture and manifest.json from the code, deterministically.
    Regen {
        /// The golden directory.
        #[arg(long, default_value = "golden")]
        dir: PathBuf,
    },
    /// Fail if any fixture or manifest.json differs from what regen would write,
    /// by a single byte.
    Check {
        /// The golden directory.
        #[arg(long, default_value = "golden")]
        dir: PathBuf,
    },
}

/// Parse the arguments and run; the process's exit status.
pub fn main() -> ExitCode {
    run(Cli::parse())
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Inspect { file, json } => inspect_cmd(&file, json),
        Command::Acquire {
            path,
            lock_file,
            timeout,
            hold,
        } => acquire_cmd(path, lock_file, timeout, hold),
        Command::Golden { action } => golden_cmd(action),
    }
}

fn inspect_cmd(file: &std::path::Path, json: bool) -> ExitCode {
    match inspect::inspect(file) {
        Ok(found) => {
            if json {
                match serde_json::to_string_pretty(&found) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("rvlf: cannot encode JSON: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print!("{}", found.render());
            }
            ExitCode::from(u8::from(found.verdict.stale))
        }
        Err(e) => {
            eprintln!("rvlf inspect: {e}");
            ExitCode::from(2)
        }
    }
}

fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{what} must be a number of seconds >= 0, not {value}"))
}

fn acquire_cmd(path: PathBuf, lock_file: bool, timeout: f64, hold: f64) -> ExitCode {
    let (timeout, hold) = match (seconds(timeout, "timeout"), seconds(hold, "hold")) {
        (Ok(t), Ok(h)) => (t, h),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("rvlf acquire: {e}");
            return ExitCode::from(2);
        }
    };
    let lock_path = if lock_file {
        path
    } else {
        lock_path_for(&path)
    };
    let acquired = if timeout.is_zero() {
        WriterLock::try_acquire_file(&lock_path, Options::default())
    } else {
        WriterLock::acquire_file_timeout(&lock_path, timeout, Options::default())
    };
    let lock = match acquired {
        Ok(lock) => lock,
        Err(AcquireError::Busy { busy, .. }) => {
            println!("busy: {}", describe(&busy));
            return ExitCode::from(1);
        }
        Err(AcquireError::TimedOut { waited, last, .. }) => {
            println!(
                "timed out after {:.3} s: {}",
                waited.as_secs_f64(),
                describe(&last)
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("rvlf acquire: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "acquired {} as writer {}",
        lock.lock_path().display(),
        lock.record().writer_id
    );
    if lock.broke().is_some() {
        println!("(broke a stale lock on the way)");
    }
    std::thread::sleep(hold);
    match lock.release() {
        Ok(Released::Released) => {
            println!("released");
            ExitCode::SUCCESS
        }
        Ok(Released::Lost(how)) => {
            println!("lost: the lock was no longer ours ({how:?}); nothing was deleted");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("rvlf acquire: release: {e}");
            ExitCode::from(2)
        }
    }
}

fn golden_cmd(action: GoldenAction) -> ExitCode {
    match action {
        GoldenAction::Regen { dir } => match golden::regen(&dir) {
            Ok(written) => {
                println!("wrote {} files to {}", written.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvlf golden regen: {e}");
                ExitCode::from(2)
            }
        },
        GoldenAction::Check { dir } => match golden::check(&dir) {
            Ok(drift) if drift.is_empty() => {
                println!("{}: no drift", dir.display());
                ExitCode::SUCCESS
            }
            Ok(drift) => {
                for d in &drift {
                    println!("drift: {}: {}", d.path.display(), d.what);
                }
                println!(
                    "{} file(s) differ from `rvlf golden regen`; regenerate and review the diff",
                    drift.len()
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("rvlf golden check: {e}");
                ExitCode::from(2)
            }
        },
    }
}
