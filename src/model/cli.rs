//! `rvlf model-check`: its arguments, the run they ask for, and the report
//! it prints.

use std::fmt::Write as _;
use std::process::ExitCode;

use stateright::{Expectation, Model};

use super::timeline::show_duration;
use super::{explore, tick_ns, timeline, Bounds, Outcome, Search};
use crate::variant::{self, Variant};

/// The arguments of `rvlf model-check`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelCheckArgs {
    /// Number of processes (1-4).
    #[arg(long, default_value_t = 2)]
    pub procs: usize,
    /// Acquire/hold/release rounds per process (1-3).
    #[arg(long, default_value_t = 1)]
    pub rounds: u8,
    /// Let processes crash at any step.
    #[arg(long)]
    pub crashes: bool,
    /// With --crashes, at most this many crashes per run.
    #[arg(long, default_value_t = 1)]
    pub max_crashes: u8,
    /// Clock jumps past the same-host threshold (30 s + 1 ns each).
    #[arg(long, default_value_t = 1)]
    pub ticks: u8,
    /// Acquire attempts per round (an attempt that finds the lock busy is retried).
    #[arg(long, default_value_t = 2)]
    pub attempts: u8,
    /// Start with a stale lock of a dead PID at the lock path.
    #[arg(long)]
    pub stale_lock: bool,
    /// The simulated file system refuses hard links: publication takes the
    /// create-then-write fallback of PROTOCOL.md §7.1.
    #[arg(long)]
    pub no_links: bool,
    /// The algorithm to check.
    /// Any name of `rvlf adapter --list-mutants`, or `reference`.
    #[arg(long, value_parser = variant::parse, default_value = "reference")]
    pub variant: &'static Variant,
    /// Checker threads (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Search order: depth-first needs far less memory on large bounds;
    /// counterexamples are shortened breadth-first either way.
    #[arg(long, value_enum, default_value_t = Search::Bfs)]
    pub search: Search,
}

impl ModelCheckArgs {
    /// The bounds these arguments ask for, or why they are out of range.
    pub fn bounds(&self) -> Result<Bounds, String> {
        if !(1..=4).contains(&self.procs) {
            return Err(format!("--procs must be 1 to 4, not {}", self.procs));
        }
        if !(1..=3).contains(&self.rounds) {
            return Err(format!("--rounds must be 1 to 3, not {}", self.rounds));
        }
        if !(1..=4).contains(&self.attempts) {
            return Err(format!("--attempts must be 1 to 4, not {}", self.attempts));
        }
        if self.ticks > 3 {
            return Err(format!("--ticks must be 0 to 3, not {}", self.ticks));
        }
        if self.crashes && !(1..=4).contains(&self.max_crashes) {
            return Err(format!(
                "--max-crashes must be 1 to 4, not {}",
                self.max_crashes
            ));
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        Ok(Bounds {
            procs: self.procs,
            rounds: self.rounds,
            attempts: self.attempts,
            crashes: if self.crashes { self.max_crashes } else { 0 },
            ticks: self.ticks,
            stale_lock: self.stale_lock,
            no_links: self.no_links,
        })
    }
}

/// `rvlf model-check`: run the checker, print what it found. Exit 0 when
/// every safety property holds, 1 on a violation, 2 on bad arguments.
pub fn run_cli(args: &ModelCheckArgs) -> ExitCode {
    let bounds = match args.bounds() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("rvlf model-check: {why}");
            return ExitCode::from(2);
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let outcome = explore(bounds, args.variant, args.search, threads, None);
    print!("{}", report(&outcome));
    if outcome.violations().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The text `rvlf model-check` prints.
pub fn report(outcome: &Outcome) -> String {
    let b = &outcome.model.bounds;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "model check of the {} algorithm: {} processes on one host, {} round(s), \
         {} attempt(s) per round, up to {} crash(es), up to {} tick(s) of {}{}",
        outcome.model.variant.name,
        b.procs,
        b.rounds,
        b.attempts,
        b.crashes,
        b.ticks,
        show_duration(tick_ns(&outcome.model.thresholds)),
        if b.stale_lock {
            ", starting from a stale lock of a dead PID"
        } else {
            ""
        },
    );
    if b.no_links {
        let _ = writeln!(
            out,
            "the file system refuses hard links: every publication creates, then writes"
        );
    }
    let _ = writeln!(
        out,
        "states explored: {} unique ({} generated), max depth {}, time {:.2} s",
        outcome.unique_states,
        outcome.generated_states,
        outcome.max_depth,
        outcome.elapsed.as_secs_f64()
    );
    for p in outcome.model.properties() {
        let found = outcome.discoveries.contains_key(p.name);
        let status = match (&p.expectation, found) {
            (Expectation::Sometimes, true) => "reached",
            (Expectation::Sometimes, false) => "not reached within the bounds",
            (_, true) => "VIOLATED",
            (_, false) => "holds",
        };
        let _ = writeln!(out, "  {:<75} {status}", p.name);
    }
    let violations = outcome.violations();
    if violations.is_empty() {
        let _ = writeln!(
            out,
            "verdict: every safety property holds within the bounds"
        );
        return out;
    }
    let _ = writeln!(out, "verdict: {} property(ies) violated", violations.len());
    for name in violations {
        if let Some(path) = outcome.discoveries.get(name) {
            let _ = writeln!(out, "\ncounterexample for \"{name}\":");
            out.push_str(&timeline(&outcome.model, path));
        }
    }
    out
}
