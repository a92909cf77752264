//! Progress of a run on stderr: acquisitions, violations, faults and deaths
//! so far, and the time elapsed. On a terminal one line is rewritten in
//! place a few times a second; elsewhere (a CI log) a line is printed at a
//! steady interval, and one at the end.
//!
//! The figures come from the history itself, checked while the run goes on:
//! the ledgers are read as they grow and every event older than a time
//! before which all events are written (see [`super::shared::Slot::floor`])
//! goes through a [`Checker`]. So they mean what the final report means;
//! the verdict is still the final check's.

use std::io::Write;
use std::time::{Duration, Instant};

use super::check::{Checker, Findings};
use super::files::Owned;
use super::ledger::Follow;
use super::report;
use super::scenario::Progress;

/// How often the terminal's line is rewritten.
const LIVE_EVERY: Duration = Duration::from_millis(250);

/// The progress of one run.
pub struct Tracker {
    mode: Progress,
    /// `None` when off, or once the ledgers could not be read.
    follow: Option<Follow>,
    checker: Checker,
    last_line: Instant,
    /// Why the ledgers could not be read.
    unreadable: Option<String>,
}

impl Tracker {
    /// Progress as `mode` asks, of the run whose ledgers are `ledgers`
    /// (numbered as the final check numbers them), started at `started`.
    pub fn new(mode: Progress, ledgers: Vec<Owned>, started: Instant) -> Tracker {
        Tracker {
            mode,
            follow: (mode != Progress::Off).then(|| Follow::new(ledgers)),
            checker: Checker::new(),
            last_line: started,
            unreadable: None,
        }
    }

    /// Restart the interval (when the run starts).
    pub fn reset(&mut self, now: Instant) {
        self.last_line = now;
    }

    /// Whether a line is due at `now`; at the end (`last`) one always is,
    /// unless progress is off.
    pub fn due(&self, now: Instant, last: bool) -> bool {
        let every = match self.mode {
            Progress::Off => return false,
            Progress::Live => LIVE_EVERY,
            Progress::Lines(every) => every,
        };
        last || now.saturating_duration_since(self.last_line) >= every
    }

    /// Check the events older than `checked_to` (CLOCK_MONOTONIC ns) that
    /// are not checked yet, and print the line at `now`, `elapsed` into the
    /// run, on `out`.
    pub fn print(
        &mut self,
        out: &mut impl Write,
        now: Instant,
        elapsed: Duration,
        checked_to: u64,
        last: bool,
    ) {
        self.last_line = now;
        self.advance(checked_to);
        let mut text = line(self.checker.so_far(), elapsed);
        if let Some(why) = &self.unreadable {
            text.push_str(&format!(" (history unreadable: {why})"));
        }
        let _ = match (self.mode, last) {
            (Progress::Live, false) => write!(out, "\r{text}\x1b[K"),
            (Progress::Live, true) => writeln!(out, "\r{text}\x1b[K"),
            _ => writeln!(out, "{text}"),
        };
        let _ = out.flush();
    }

    fn advance(&mut self, checked_to: u64) {
        let Some(follow) = self.follow.as_mut() else {
            return;
        };
        if let Err(e) = follow.read() {
            self.unreadable = Some(e);
            self.follow = None;
            return;
        }
        while let Some(event) = follow.next_before(checked_to) {
            self.checker.push(&event);
        }
    }
}

/// One progress line: `progress 12.5 s: 41234 acquisitions (3299/s),
/// 0 violations, 12 faults injected, 12 deaths`.
pub fn line(f: &Findings, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        f.acquisitions as f64 / secs
    } else {
        0.0
    };
    format!(
        "progress {secs:.1} s: {} acquisitions ({rate:.0}/s), {} violations, \
         {} faults injected, {} deaths",
        f.acquisitions,
        f.violations,
        report::faults_injected(f),
        f.deaths.values().sum::<u64>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_due_every_interval_and_at_the_end() {
        let t0 = Instant::now();
        let every = Duration::from_secs(10);
        let mut lines = Tracker::new(Progress::Lines(every), Vec::new(), t0);
        assert!(!lines.due(t0 + Duration::from_secs(9), false));
        assert!(lines.due(t0 + every, false));
        assert!(lines.due(t0, true), "at the end");
        lines.print(&mut Vec::new(), t0 + every, every, 0, false);
        assert!(!lines.due(t0 + every + Duration::from_secs(9), false));
        assert!(lines.due(t0 + 2 * every, false));

        let live = Tracker::new(Progress::Live, Vec::new(), t0);
        assert!(live.due(t0 + LIVE_EVERY, false));
        let off = Tracker::new(Progress::Off, Vec::new(), t0);
        assert!(!off.due(t0 + Duration::from_secs(3600), true));
    }

    #[test]
    fn lines_end_with_a_newline_and_the_live_line_rewrites_itself() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut lines = Tracker::new(Progress::Lines(Duration::from_secs(1)), Vec::new(), t0);
        lines.print(&mut out, t0, Duration::from_secs(2), 0, false);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "progress 2.0 s: 0 acquisitions (0/s), 0 violations, 0 faults injected, 0 deaths\n"
        );
        let mut out = Vec::new();
        let mut live = Tracker::new(Progress::Live, Vec::new(), t0);
        live.print(&mut out, t0, Duration::from_secs(1), 0, false);
        live.print(&mut out, t0, Duration::from_secs(2), 0, true);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("\rprogress 1.0 s: "), "{text:?}");
        assert!(text.contains("\x1b[K\rprogress 2.0 s: "), "{text:?}");
        assert!(text.ends_with("deaths\x1b[K\n"), "{text:?}");
    }

    #[test]
    fn the_line_counts_what_the_history_shows() {
        let mut f = Findings {
            acquisitions: 250,
            violations: 2,
            pauses: 1,
            planted: 3,
            ..Findings::default()
        };
        f.deaths.insert("harness SIGKILL".into(), 4);
        f.deaths.insert("SIGKILL at teardown".into(), 1);
        assert_eq!(
            line(&f, Duration::from_secs(5)),
            "progress 5.0 s: 250 acquisitions (50/s), 2 violations, 8 faults injected, 5 deaths"
        );
    }
}
