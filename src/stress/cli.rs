//! `rvlf stress`: run a scenario and report, or re-check a saved history.
//!
//! Exit status: 0 no violation; 1 a violation (overlapping holders, or a
//! counter that disagrees); 2 the run could not be done (bad arguments, a
//! writer that failed, a stall, a scenario this machine cannot run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::engine::{self, Config, Scenario, Variant};
use super::{check, faults, history, report};
use crate::args::{seconds, Zero};
use crate::{say, say_raw};

/// Options of `rvlf stress`.
#[derive(Debug, Clone, clap::Args)]
pub struct StressArgs {
    /// Re-check a saved history (JSON lines, from --history) instead of running.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// What to exercise.
    #[arg(long, value_enum, default_value_t = Scenario::Contention)]
    pub scenario: Scenario,
    /// Writer processes contending for the one lock.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub writers: usize,
    /// Acquisitions per writer (storm: rounds). Default: contention 1000,
    /// kill and hosts 300, storm 100, pause 30; none with --duration alone.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Run for this many seconds (with --count, whichever ends first).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Faults to inject, comma-separated: failpoints (after-publish, after-read,
    /// before-break-unlink, after-break-unlink, before-release-unlink,
    /// after-release-unlink), kill (a SIGKILL from the harness), all, none.
    /// Default: all for kill, after-publish,kill for hosts, none otherwise.
    #[arg(long, value_name = "LIST")]
    pub faults: Option<String>,
    /// A writer meets its fault after a random number of iterations, this many on average.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub fault_every: u64,
    /// Seed of the fault schedule (default: random; always printed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Save the history as JSON lines to FILE (check it again with --check).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Writers run this adapter (a shell command, see conformance/ADAPTER.md)
    /// instead of the library, e.g. "rvlf adapter --mutant seed".
    #[arg(long, value_name = "COMMAND")]
    pub adapter: Option<String>,
    /// With --adapter: every other writer (0, 2, ...) runs the library instead.
    #[arg(long, requires = "adapter")]
    pub mix: bool,
    /// Which algorithm the library's writers run.
    /// `reference`, or any name of `rvlf adapter --list-mutants`.
    #[arg(long, value_parser = crate::variant::parse, default_value = "reference")]
    pub variant: &'static Variant,
    /// Directory for the run's scratch files and lock (default: the system's
    /// temporary directory; tmpfs such as /dev/shm is faster).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Extra time inside each critical section (default: storm 1000, else 0).
    #[arg(long, value_name = "MICROSECONDS")]
    pub hold_us: Option<u64>,
    /// Pause scenario: how long writer 0 stays stopped.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub pause_ms: u64,
    /// Pause scenario: writer 0 stops inside every N-th critical section.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub pause_every: u64,
    /// Give up after this many seconds in all.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600.0)]
    pub timeout: f64,
}

/// The run these arguments ask for.
pub fn config(args: &StressArgs) -> Result<Config, String> {
    let seed = args.seed.unwrap_or_else(faults::random_seed);
    let mut c = Config::new(args.scenario, args.variant, seed);
    c.writers = args.writers;
    c.duration = args
        .duration
        .map(|d| seconds(d, "duration", Zero::Refused))
        .transpose()?;
    c.count = match (args.count, c.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => c.count,
    };
    if let Some(spec) = &args.faults {
        c.faults = faults::parse(spec)?;
    }
    c.fault_every = args.fault_every;
    c.adapter = args.adapter.clone();
    c.mix = args.mix;
    if let Some(dir) = &args.dir {
        c.dir = dir.clone();
    }
    if let Some(us) = args.hold_us {
        c.hold = Duration::from_micros(us);
    }
    c.pause = Duration::from_millis(args.pause_ms);
    c.pause_every = args.pause_every;
    c.history = args.history.clone();
    c.progress = engine::stderr_is_terminal();
    c.timeout = seconds(args.timeout, "timeout", Zero::Refused)?;
    Ok(c)
}

/// `rvlf stress`.
pub fn run_cli(args: &StressArgs) -> ExitCode {
    if let Some(path) = &args.check {
        return check_file(path);
    }
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvlf stress: {e}");
            return ExitCode::from(2);
        }
    };
    say_raw!("{}", report::header(&config));
    let outcome = match engine::run(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rvlf stress: {e}");
            return ExitCode::from(2);
        }
    };
    say_raw!("{}", report::run(&outcome));
    if let Some(path) = &config.history {
        say!("history saved to {}", path.display());
    }
    if outcome.skipped.is_some() {
        ExitCode::from(2)
    } else if !outcome.findings.ok() {
        ExitCode::from(1)
    } else if outcome.harness_failed() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `rvlf stress --check FILE`.
fn check_file(path: &Path) -> ExitCode {
    let saved = match std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| history::read_json(std::io::BufReader::new(f)))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvlf stress --check: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    if let Some(run) = &saved.run {
        say!(
            "history of scenario {}, {} writers ({}), seed {}: {} events",
            run.scenario,
            run.writers,
            run.variant,
            run.seed,
            saved.events.len()
        );
    }
    let findings = check::check(&saved.events, saved.end.map(|e| e.counter));
    say_raw!("{}", report::findings(&findings));
    say_raw!("{}", check::render_first_violation(&findings));
    say_raw!("{}", report::verdict(&findings, false));
    if findings.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: StressArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(std::iter::once("rvlf-stress").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        config(&cli.args)
    }

    #[test]
    fn a_duration_alone_lifts_the_default_count() {
        let c = parse(&["--scenario", "kill", "--duration", "2"]).expect("valid");
        assert_eq!((c.count, c.duration), (None, Some(Duration::from_secs(2))));
        assert_eq!(c.faults, Scenario::Kill.default_faults());
        let c = parse(&["--scenario", "storm", "--seed", "7"]).expect("valid");
        assert_eq!((c.count, c.seed), (Some(100), 7));
        assert_eq!(c.hold, Duration::from_millis(1));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--faults", "sometimes"]).is_err());
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--mix"]).is_err(), "--mix needs --adapter");
    }
}
