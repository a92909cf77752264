//! The `rvlf` command line: inspect a lock file, take a lock by hand, and
//! regenerate or check the golden files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use rvlf_lock::{inspect, lock_path_for, AcquireError, Options, WriterLock};
use rvlf_lock::machine::Released;
use crate::golden;

/// Print a line on stdout. A closed stdout (a pipe whose reader has gone) is
/// not an error worth dying for: a dying `rvlf acquire` would leave its lock.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Print without a newline, like [`say!`].
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

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

#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// The implementation's adapter, a shell command (default: the reference, `rvlf adapter`).
    #[arg(long, value_name = "COMMAND")]
    pub adapter: Option<String>,
    /// Test the reference with one deliberate defect instead (`rvlf adapter --list-mutants`).
    #[arg(long, value_name = "NAME", conflicts_with = "adapter")]
    pub mutant: Option<String>,
    /// Known failures: one `<case-id> <reason>` per line; a listed case that passes is an error.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Run only cases whose id matches this glob (repeatable; `*` and `?`).
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Leave out cases whose id matches this glob (repeatable).
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Run only cases at least this strict: MUST, SHOULD or MAY.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<crate::conform::case::Level>,
    /// List the selected cases and exit.
    #[arg(long)]
    pub list: bool,
    /// How many independent cases run at once (contention cases always run alone).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Seconds an adapter has to answer one request before it is judged to hang.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub request_timeout: f64,
    /// Seconds one case may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub case_timeout: f64,
    /// Seconds the whole run may take; cases not started by then are not run.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub timeout: f64,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Where scratch directories go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
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
        Command::Conform(args) => crate::conform::cli::conform(&args),
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

/// Whether a flag given in seconds may be 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    /// 0 means something: `rvlf acquire --timeout 0` tries once, `--hold 0`
    /// releases at once.
    Allowed,
    /// The flag bounds something that takes time (a run, a case, a request):
    /// 0 would end it before it starts.
    Refused,
}

/// `value` seconds of the flag `--flag` as a [`Duration`]. Negative, NaN,
/// infinite and too large values are refused, and so is 0 unless `zero`
/// allows it; the error names the flag and the value.
pub(crate) fn seconds(value: f64, flag: &str, zero: Zero) -> Result<Duration, String> {
    let bound = match zero {
        Zero::Allowed => ">= 0",
        Zero::Refused => "> 0",
    };
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| zero == Zero::Allowed || !d.is_zero())
        .ok_or_else(|| format!("--{flag} must be a number of seconds {bound}, not {value}"))
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
            say!(
                "timed out after {:.3} s: {}",
                waited.as_secs_f64(),
                last
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuses_zero_only_where_asked() {
        assert_eq!(seconds(0.0, "hold", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            seconds(1.5, "timeout", Zero::Refused),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            seconds(0.0, "timeout", Zero::Refused),
            Err("--timeout must be a number of seconds > 0, not 0".into())
        );
        assert_eq!(
            seconds(-1.0, "hold", Zero::Allowed),
            Err("--hold must be a number of seconds >= 0, not -1".into())
        );
        assert!(seconds(f64::NAN, "timeout", Zero::Allowed).is_err());
        assert!(seconds(f64::INFINITY, "timeout", Zero::Refused).is_err());
    }
}
