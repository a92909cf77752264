//! `rvlf stress`: run a scenario and report, or re-check a saved history.
//!
//! Exit status: 0 no violation; 1 a violation (overlapping holders, or a
//! counter that disagrees); 2 the run could not be done (bad arguments, a
//! writer that failed, a stall, a scenario this machine cannot run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::check::Findings;
use super::engine::{self, Config, Progress, Scenario, Variant};
use super::{check, faults, history, picture, report};
use crate::args::{duration, Zero};
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
    /// Run this long (with --count, whichever ends first): 90s, 5m, 1h30m,
    /// 500ms, or plain seconds.
    #[arg(long, value_name = "DURATION", value_parser = run_time)]
    pub duration: Option<Duration>,
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
    /// Draw the history as an HTML page (a summary, the timeline of holding
    /// intervals with faults and the first overlap, histograms) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Draw the same picture as a standalone SVG to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Writers run this adapter (a shell command, see conformance/ADAPTER.md)
    /// instead of the library, e.g. "rvlf adapter --mutant original".
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
    /// Extra time inside each critical section, e.g. 1ms (default: storm
    /// 1ms, else 0).
    #[arg(long, value_name = "DURATION", value_parser = hold)]
    pub hold: Option<Duration>,
    /// The same in microseconds (the former spelling of --hold).
    #[arg(
        long,
        value_name = "MICROSECONDS",
        hide = true,
        conflicts_with = "hold"
    )]
    pub hold_us: Option<u64>,
    /// Pause scenario: how long writer 0 stays stopped.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = pause)]
    pub pause: Duration,
    /// The same in milliseconds (the former spelling of --pause).
    #[arg(long, value_name = "MS", hide = true, conflicts_with = "pause")]
    pub pause_ms: Option<u64>,
    /// Pause scenario: writer 0 stops inside every N-th critical section.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub pause_every: u64,
    /// Give up after this long in all.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = timeout)]
    pub timeout: Duration,
    /// How often to print a progress line (acquisitions, violations, faults,
    /// deaths so far) when stderr is not a terminal; 0 for never. On a
    /// terminal one line is rewritten in place instead, unless this is 0.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = progress_every)]
    pub progress_every: Duration,
}

// The time flags' parsers, each naming its flag in its errors.
fn run_time(text: &str) -> Result<Duration, String> {
    duration(text, "duration", Zero::Refused)
}
fn hold(text: &str) -> Result<Duration, String> {
    duration(text, "hold", Zero::Allowed)
}
fn pause(text: &str) -> Result<Duration, String> {
    duration(text, "pause", Zero::Allowed)
}
fn timeout(text: &str) -> Result<Duration, String> {
    duration(text, "timeout", Zero::Refused)
}
fn progress_every(text: &str) -> Result<Duration, String> {
    duration(text, "progress-every", Zero::Allowed)
}

/// The run these arguments ask for.
pub fn config(args: &StressArgs) -> Result<Config, String> {
    let seed = args.seed.unwrap_or_else(faults::random_seed);
    let mut c = Config::new(args.scenario, args.variant, seed);
    c.writers = args.writers;
    c.duration = args.duration;
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
    if let Some(hold) = args.hold.or(args.hold_us.map(Duration::from_micros)) {
        c.hold = hold;
    }
    c.pause = args.pause_ms.map_or(args.pause, Duration::from_millis);
    c.pause_every = args.pause_every;
    c.history = args.history.clone();
    c.progress = Progress::choose(args.progress_every, engine::stderr_is_terminal());
    c.timeout = args.timeout;
    Ok(c)
}

/// `rvlf stress`.
pub fn run_cli(args: &StressArgs) -> ExitCode {
    if let Some(path) = &args.check {
        return check_file(path, args);
    }
    let mut config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvlf stress: {e}");
            return ExitCode::from(2);
        }
    };
    // The picture is drawn from the saved history: saved in a scratch
    // directory when not asked for.
    let wants_picture = args.html.is_some() || args.svg.is_some();
    let scratch = match (wants_picture, &config.history) {
        (true, None) => match tempfile::tempdir() {
            Ok(dir) => {
                config.history = Some(dir.path().join("history.jsonl"));
                Some(dir)
            }
            Err(e) => {
                eprintln!("rvlf stress: a directory for the history: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
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
    if let Some(path) = &args.history {
        say!("history saved to {}", path.display());
    }
    let drawn = match (&config.history, outcome.skipped.is_some()) {
        (Some(path), false) if wants_picture => read(path)
            .and_then(|saved| draw(args, &saved, &outcome.findings, outcome.harness_failed())),
        _ => Ok(()),
    };
    drop(scratch);
    if let Err(e) = &drawn {
        eprintln!("rvlf stress: {e}");
    }
    if outcome.skipped.is_some() {
        ExitCode::from(2)
    } else if !outcome.findings.ok() {
        ExitCode::from(1)
    } else if outcome.harness_failed() || drawn.is_err() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Read a saved history.
fn read(path: &Path) -> Result<history::Saved, String> {
    std::fs::File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| history::read_json(std::io::BufReader::new(f)))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Write the picture files `args` asks for.
fn draw(
    args: &StressArgs,
    saved: &history::Saved,
    findings: &Findings,
    harness_failed: bool,
) -> Result<(), String> {
    if args.html.is_none() && args.svg.is_none() {
        return Ok(());
    }
    let p = picture::render(saved, findings, harness_failed);
    for (path, text, what) in [(&args.svg, &p.svg, "SVG"), (&args.html, &p.html, "HTML")] {
        if let Some(path) = path {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            say!("{what} picture saved to {}", path.display());
        }
    }
    Ok(())
}

/// `rvlf stress --check FILE`.
fn check_file(path: &Path, args: &StressArgs) -> ExitCode {
    let saved = match read(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rvlf stress --check: {e}");
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
    if let Err(e) = draw(args, &saved, &findings, false) {
        eprintln!("rvlf stress --check: {e}");
        if findings.ok() {
            return ExitCode::from(2);
        }
    }
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

    #[test]
    fn time_flags_take_durations_with_units() {
        let c = parse(&["--duration", "20s", "--timeout", "1h30m"]).expect("valid");
        assert_eq!(c.duration, Some(Duration::from_secs(20)));
        assert_eq!(c.timeout, Duration::from_secs(5400));
        for (text, expected) in [
            ("500ms", Duration::from_millis(500)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("90", Duration::from_secs(90)),
        ] {
            let c = parse(&["--duration", text]).expect(text);
            assert_eq!(c.duration, Some(expected), "{text}");
        }
        let c = parse(&["--scenario", "pause", "--pause", "1s", "--hold", "2ms"]).expect("valid");
        assert_eq!(
            (c.pause, c.hold),
            (Duration::from_secs(1), Duration::from_millis(2))
        );
        let c = parse(&["--pause-ms", "300", "--hold-us", "5"]).expect("former spellings");
        assert_eq!(
            (c.pause, c.hold),
            (Duration::from_millis(300), Duration::from_micros(5))
        );
        let e = parse(&["--duration", "20x"]).expect_err("not a duration");
        assert!(e.contains("--duration must be a duration"), "{e}");
        let e = parse(&["--timeout", "0s"]).expect_err("0");
        assert!(
            e.contains("--timeout must be a duration greater than 0"),
            "{e}"
        );
    }

    #[test]
    fn progress_is_a_live_line_on_a_terminal_and_lines_elsewhere() {
        let c = parse(&[]).expect("valid");
        let expected = if engine::stderr_is_terminal() {
            Progress::Live
        } else {
            Progress::Lines(Duration::from_secs(10))
        };
        assert_eq!(c.progress, expected);
        let c = parse(&["--progress-every", "0"]).expect("valid");
        assert_eq!(c.progress, Progress::Off);
        let every = Duration::from_millis(50);
        assert_eq!(Progress::choose(every, false), Progress::Lines(every));
        assert_eq!(Progress::choose(every, true), Progress::Live);
        assert_eq!(Progress::choose(Duration::ZERO, true), Progress::Off);
    }
}
