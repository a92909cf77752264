//! The scenarios of a stress run and their configuration: what each
//! [`Scenario`] exercises and sets up (writers' hosts, modes, budgets,
//! default faults), and the [`Config`] of one run, with the [`Variant`] of
//! the catalogue its writers run.

use std::path::PathBuf;
use std::time::Duration;

use super::faults::Fault;
use super::spawn::Host;
use super::writer::{Backend, Mode};
pub use crate::variant::Variant;

/// What is being exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Writers contend for the lock.
    Contention,
    /// A stale lock is planted, then all writers are released at once, round after round.
    Storm,
    /// Writers are killed at protocol steps and restarted; survivors must recover.
    Kill,
    /// Writer 0, on a simulated host, stops itself inside its critical section
    /// past the threshold; the others go on.
    Pause,
    /// Every writer on its own simulated host (UTS and PID namespaces), one directory.
    Hosts,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Contention => "contention",
            Scenario::Storm => "storm",
            Scenario::Kill => "kill",
            Scenario::Pause => "pause",
            Scenario::Hosts => "hosts",
        }
    }

    /// The faults injected unless `--faults` says otherwise.
    pub fn default_faults(self) -> Vec<Fault> {
        match self {
            Scenario::Kill => Fault::ALL.to_vec(),
            Scenario::Hosts => vec![
                Fault::Point(rvlf_lock::failpoint::Point::AfterPublish),
                Fault::Kill,
            ],
            _ => Vec::new(),
        }
    }
}

/// Progress on stderr while a run goes on: acquisitions, violations, faults
/// and deaths so far (of the history checked so far), and the time elapsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    /// One line rewritten in place a few times a second: for a terminal.
    Live,
    /// A line at this interval, and one at the end: for a log.
    Lines(Duration),
}

impl Progress {
    /// What `--progress-every every` means where stderr is a terminal or is
    /// not: 0 is off; on a terminal the live line.
    pub fn choose(every: Duration, terminal: bool) -> Progress {
        match (every.is_zero(), terminal) {
            (true, _) => Progress::Off,
            (false, true) => Progress::Live,
            (false, false) => Progress::Lines(every),
        }
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct Config {
    pub scenario: Scenario,
    pub writers: usize,
    /// Acquisitions per writer (storm: rounds). With `duration`, whichever ends first.
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub faults: Vec<Fault>,
    /// Mean loop iterations between faults of one writer.
    pub fault_every: u64,
    pub seed: u64,
    pub variant: &'static Variant,
    /// Writers run this adapter command instead of the library.
    pub adapter: Option<String>,
    /// With `adapter`: every other writer runs the library instead.
    pub mix: bool,
    /// Where the run's scratch directory goes (lock, counter, ledgers).
    pub dir: PathBuf,
    /// Extra time inside each critical section.
    pub hold: Duration,
    /// Pause scenario: how long writer 0 stays stopped, and how often.
    pub pause: Duration,
    pub pause_every: u64,
    /// Save the history here as JSON lines.
    pub history: Option<PathBuf>,
    /// What to print on stderr while the run goes on.
    pub progress: Progress,
    /// The whole run's bound.
    pub timeout: Duration,
    /// No acquisition for this long: the run is declared stalled.
    pub stall: Duration,
}

impl Config {
    /// Defaults for `scenario`: 4 writers, a short count, its default faults.
    pub fn new(scenario: Scenario, variant: &'static Variant, seed: u64) -> Config {
        Config {
            scenario,
            writers: 4,
            count: Some(match scenario {
                Scenario::Contention => 1000,
                Scenario::Storm => 100,
                Scenario::Kill | Scenario::Hosts => 300,
                Scenario::Pause => 30,
            }),
            duration: None,
            faults: scenario.default_faults(),
            fault_every: 20,
            seed,
            variant,
            adapter: None,
            mix: false,
            dir: std::env::temp_dir(),
            hold: match scenario {
                Scenario::Storm => Duration::from_millis(1),
                _ => Duration::ZERO,
            },
            pause: Duration::from_millis(200),
            pause_every: 10,
            history: None,
            progress: Progress::Off,
            timeout: Duration::from_secs(3600),
            stall: Duration::from_secs(30),
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.writers == 0 || self.writers > 4096 {
            return Err(format!("--writers must be 1..=4096, not {}", self.writers));
        }
        if self.scenario == Scenario::Pause && self.writers < 2 {
            return Err("the pause scenario needs at least 2 writers".into());
        }
        if self.count.is_none() && self.duration.is_none() {
            return Err("give --count or --duration".into());
        }
        if self.mix && self.adapter.is_none() {
            return Err("--mix needs --adapter".into());
        }
        if self.scenario == Scenario::Hosts && self.adapter.is_some() {
            return Err(
                "the hosts scenario runs forked writers only; use it without --adapter".into(),
            );
        }
        Ok(())
    }

    /// What writer `index` runs.
    pub(super) fn backend(&self, index: usize) -> Backend {
        // The paused writer stops itself: it runs the library in-process.
        let paused = self.scenario == Scenario::Pause && index == 0;
        let library_turn = self.mix && index.is_multiple_of(2);
        match &self.adapter {
            Some(cmd) if !paused && !library_turn => Backend::Adapter(cmd.clone()),
            _ => Backend::Reference(self.variant),
        }
    }

    pub(super) fn host(&self, index: usize) -> Host {
        match (self.scenario, index) {
            (Scenario::Hosts, i) => Host::Named {
                name: format!("rvlf-stress-host-{i}"),
                pid_ns: true,
            },
            (Scenario::Pause, 0) => Host::Named {
                name: PAUSED_HOST.into(),
                pid_ns: false,
            },
            _ => Host::Local,
        }
    }

    pub(super) fn mode(&self, index: usize) -> Mode {
        match (self.scenario, index) {
            (Scenario::Storm, _) => Mode::Storm,
            (Scenario::Pause, 0) => Mode::Pause {
                every: self.pause_every,
            },
            _ => Mode::Loop,
        }
    }

    /// The budget of writer `index`. In the pause scenario the others go on
    /// until the paused writer is done, so that every pause has contenders.
    pub(super) fn limit(&self, index: usize) -> Option<u64> {
        match (self.scenario, index) {
            (Scenario::Pause, 1..) => None,
            _ => self.count,
        }
    }

    /// What each writer runs, for the report and the history.
    pub fn implementations(&self) -> Vec<String> {
        (0..self.writers)
            .map(|i| match self.backend(i) {
                Backend::Reference(_) => self.variant.name.to_string(),
                Backend::Adapter(cmd) => format!("adapter: {cmd}"),
            })
            .collect()
    }
}

/// The host name of the paused writer in the pause scenario.
pub const PAUSED_HOST: &str = "rvlf-stress-paused";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_runs_alternate_library_and_adapter_writers() {
        let original = crate::variant::find("original").expect("in the catalogue");
        let mut c = Config::new(Scenario::Contention, original, 1);
        c.adapter = Some("x".into());
        c.mix = true;
        assert_eq!(
            c.implementations(),
            ["original", "adapter: x", "original", "adapter: x"]
        );
        c.scenario = Scenario::Pause;
        c.mix = false;
        // The paused writer stops itself, so it is always the library.
        assert_eq!(c.implementations()[..2], ["original", "adapter: x"]);
    }
}
