//! The `rvlf` command line: inspect a lock file, take a lock by hand, and
//! regenerate or check the golden files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::args::{seconds, Zero};
use crate::conform::cli::ConformArgs;
use crate::golden;
use crate::{say, say_raw};
use rvlf_lock::machine::Released;
use rvlf_lock::{inspect, lock_path_for, AcquireError, Options, WriterLock};

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
    /// Run the conformance suite against an implementation (by default the
    /// built-in reference) and report a verdict per case.
    ///
    /// Exit status: 0 no MUST case failed; 1 one did (or a known failure
    /// passed); 2 the harness or the adapter's start-up failed, or nothing ran.
    Conform(ConformArgs),
    /// Work with the JSON reports of `rvlf conform --json`.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Serve the adapter protocol (conformance/ADAPTER.md) on stdin/stdout
    /// with the reference implementation.
    Adapter {
        /// Run the reference with one deliberate defect (see --list-mutants).
        #[arg(long, value_name = "NAME")]
        mutant: Option<String>,
        /// List the mutants and exit.
        #[arg(long)]
        list_mutants: bool,
    },
    /// Fork writers that contend for one lock, inject faults, and check the
    /// recorded history for overlapping holders.
    ///
    /// Exit status: 0 the verdict is as expected; 1 it is not (e.g. the
    /// reference overlapped); 2 bad arguments or a harness error.
    Stress(crate::stress::cli::StressArgs),
    /// Check every interleaving of the lock algorithm exhaustively, within bounds.
    ///
    /// Exit status: 0 every property holds; 1 one is violated (a numbered
    /// counterexample is printed); 2 bad arguments.
    ModelCheck(crate::model::ModelCheckArgs),
    /// Regenerate or check the golden lock files.
    Golden {
        #[command(subcommand)]
        action: GoldenAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Put several runs side by side: one column per report, one row per
    /// case, each cell linked to its detail.
    ///
    /// Exit status: 0 written; 2 a report is unreadable or not a conformance
    /// report, or the output cannot be written.
    Merge(crate::conform::matrix::MergeArgs),
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
        /// The golden directory (relative to the working directory).
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
        Command::Conform(args) => crate::conform::cli::conform(&args),
        Command::Report {
            action: ReportAction::Merge(args),
        } => crate::conform::matrix::merge_cmd(&args),
        Command::Stress(args) => crate::stress::cli::run_cli(&args),
        Command::ModelCheck(args) => crate::model::run_cli(&args),
        Command::Adapter {
            mutant,
            list_mutants,
        } => crate::conform::cli::adapter(mutant.as_deref(), list_mutants),
    }
}

fn inspect_cmd(file: &std::path::Path, json: bool) -> ExitCode {
    match inspect(file) {
        Ok(found) => {
            if json {
                match serde_json::to_string_pretty(&found) {
                    Ok(text) => say!("{text}"),
                    Err(e) => {
                        eprintln!("rvlf: cannot encode JSON: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                say_raw!("{}", found.render());
            }
            ExitCode::from(u8::from(found.verdict.stale))
        }
        Err(e) => {
            eprintln!("rvlf inspect: {e}");
            ExitCode::from(2)
        }
    }
}

fn acquire_cmd(path: PathBuf, lock_file: bool, timeout: f64, hold: f64) -> ExitCode {
    let (timeout, hold) = match (
        seconds(timeout, "timeout", Zero::Allowed),
        seconds(hold, "hold", Zero::Allowed),
    ) {
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
            say!("busy: {busy}");
            return ExitCode::from(1);
        }
        Err(AcquireError::TimedOut { waited, last, .. }) => {
            say!("timed out after {:.3} s: {}", waited.as_secs_f64(), last);
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("rvlf acquire: {e}");
            return ExitCode::from(2);
        }
    };
    say!(
        "acquired {} as writer {}",
        lock.lock_path().display(),
        lock.record().writer_id
    );
    if lock.broke().is_some() {
        say!("(broke a stale lock on the way)");
    }
    std::thread::sleep(hold);
    match lock.release() {
        Ok(Released::Released) => {
            say!("released");
            ExitCode::SUCCESS
        }
        Ok(Released::Lost(how)) => {
            say!("lost: the lock was no longer ours ({how:?}); nothing was deleted");
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
                say!("wrote {} files to {}", written.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rvlf golden regen: {e}");
                ExitCode::from(2)
            }
        },
        GoldenAction::Check { dir } if !dir.is_dir() => {
            eprintln!(
                "rvlf golden check: no golden directory at {}; run it from the repository's root \
                 or name the directory with --dir <path>/golden",
                std::path::absolute(&dir).unwrap_or(dir).display()
            );
            ExitCode::from(2)
        }
        GoldenAction::Check { dir } => match golden::check(&dir) {
            Ok(drift) if drift.is_empty() => {
                say!("{}: no drift", dir.display());
                ExitCode::SUCCESS
            }
            Ok(drift) => {
                for d in &drift {
                    say!("drift: {}: {}", d.path.display(), d.what);
                }
                say!(
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
