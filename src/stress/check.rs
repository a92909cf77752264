//! The history checker: proves mutual exclusion from a history, or shows the
//! first time it failed.
//!
//! Each holder's interval runs from its `enter` to its `exit` (or to its
//! death, as the harness saw it). `enter` is recorded after the lock was
//! acquired and `exit` before it is released, so the recorded interval lies
//! inside the real holding: two recorded intervals that overlap are two
//! writers that held the lock at once, never a false alarm. Reading events in
//! time order, an `enter` while another interval is open is a violation.
//!
//! The non-atomic counter cross-checks it: each holder reads it, increments
//! and writes it back, so overlapping holders lose updates. Its final value
//! must equal the completed acquisitions, plus at most one for each holder
//! that died inside its critical section (it may or may not have written).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::history::{Event, Kind, RecordView};

/// One holder's time in its critical section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub writer: u32,
    pub pid: u32,
    pub seq: u64,
    pub start: u64,
    /// When it left, or when it was seen dead; `None` while open.
    pub end: Option<u64>,
    /// `exit` or `death`.
    pub ended_by: Option<Kind>,
    pub writer_id: Option<String>,
    pub record: Option<RecordView>,
    /// Stopped (SIGSTOP) while inside.
    pub paused: bool,
    /// Someone else entered while this one was paused inside.
    pub overtaken: bool,
}

impl Interval {
    fn key(&self) -> (u32, u64) {
        (self.writer, self.seq)
    }
}

/// What the checker found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// `enter` events: acquisitions.
    pub acquisitions: u64,
    /// Intervals closed by `exit`.
    pub completed: u64,
    /// Intervals closed by the holder's death.
    pub died_inside: u64,
    /// Acquisitions made while another holder was inside.
    pub violations: u64,
    /// The first overlapping pair: the earlier holder, then the newcomer.
    pub first: Option<(Interval, Interval)>,
    /// The first acquisition made while a paused holder was inside, with it.
    pub first_paused: Option<(Interval, Interval)>,
    pub lost_releases: u64,
    pub release_errors: u64,
    /// Try-acquire errors recorded (writers record only their first few).
    pub errors: u64,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Deaths by cause.
    pub deaths: BTreeMap<String, u64>,
    /// Deaths of a writer whose own lock was at the path.
    pub holder_deaths: u64,
    pub harness_kills: u64,
    pub pauses: u64,
    pub planted: u64,
    pub paused_intervals: u64,
    /// Paused intervals during which someone else acquired the lock.
    pub paused_overlapped: u64,
    /// Acquisitions made while a paused holder was inside.
    pub entered_during_pause: u64,
    /// Nanoseconds from each holder death (or planted stale lock) to the
    /// next acquisition: takeovers of a lock the harness had already made
    /// stale (aged past every threshold), so without the threshold's wait.
    pub recoveries: Vec<u64>,
    /// Holder deaths after which nothing acquired the lock again.
    pub unrecovered: u64,
    /// Events that make no sense (an exit without an enter...), first few.
    pub inconsistencies: Vec<String>,
    pub inconsistency_count: u64,
    /// Intervals still open at the end of the history.
    pub open_at_end: u64,
    /// First and last event times.
    pub span: Option<(u64, u64)>,
    /// Time of the first and the last acquisition.
    pub acquiring_span: Option<(u64, u64)>,
    /// The counter's final value, if the history has one.
    pub counter: Option<u64>,
    /// Host names in the records holders held.
    pub hosts: std::collections::BTreeSet<String>,
}

impl Findings {
    /// The counter is consistent with the acquisitions (or unknown).
    pub fn counter_ok(&self) -> bool {
        self.counter
            .is_none_or(|c| c >= self.completed && c <= self.completed + self.died_inside)
    }

    /// Mutual exclusion held and the history is coherent.
    pub fn ok(&self) -> bool {
        self.violations == 0 && self.counter_ok() && self.inconsistency_count == 0
    }
}

/// Reads events in checking order ([`Event::order`]).
#[derive(Debug, Default)]
pub struct Checker {
    open: BTreeMap<u32, Interval>,
    pending_recovery: Vec<u64>,
    f: Findings,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    pub fn push(&mut self, e: &Event) {
        self.f.span = Some(match self.f.span {
            None => (e.t_ns, e.t_ns),
            Some((a, _)) => (a, e.t_ns),
        });
        match e.event {
            Kind::Enter => self.enter(e),
            Kind::Exit => self.close(e, Kind::Exit),
            Kind::Death => self.death(e),
            Kind::Lost => self.f.lost_releases += 1,
            Kind::ReleaseError => self.f.release_errors += 1,
            Kind::Pause => self.pause(e),
            Kind::Continue | Kind::Aged => {}
            Kind::Error => {
                self.f.errors += 1;
                if self.f.error_samples.len() < 3 {
                    let why = e.cause.clone().unwrap_or_default();
                    let who = e.writer.map_or("harness".into(), |w| format!("writer {w}"));
                    self.f.error_samples.push(format!("{who}: {why}"));
                }
            }
            Kind::Kill => self.f.harness_kills += 1,
            Kind::Plant => {
                self.f.planted += 1;
                self.pending_recovery.push(e.t_ns);
            }
        }
    }

    fn inconsistent(&mut self, what: String) {
        self.f.inconsistency_count += 1;
        if self.f.inconsistencies.len() < 5 {
            self.f.inconsistencies.push(what);
        }
    }

    fn enter(&mut self, e: &Event) {
        let Some(writer) = e.writer else {
            return self.inconsistent(format!("enter without a writer at t={}", e.t_ns));
        };
        self.f.acquisitions += 1;
        self.f.acquiring_span = Some(match self.f.acquiring_span {
            None => (e.t_ns, e.t_ns),
            Some((a, _)) => (a, e.t_ns),
        });
        for death in self.pending_recovery.drain(..) {
            self.f.recoveries.push(e.t_ns.saturating_sub(death));
        }
        if let Some(stale) = self.open.remove(&writer) {
            self.inconsistent(format!(
                "writer {writer} entered (seq {}) while its acquisition seq {} never ended",
                e.seq, stale.seq
            ));
        }
        if let Some(r) = &e.record {
            if !self.f.hosts.contains(&r.hostname) {
                // Cloned only the first time a host is seen.
                self.f.hosts.insert(r.hostname.clone());
            }
        }
        let new = Interval {
            writer,
            pid: e.pid,
            seq: e.seq,
            start: e.t_ns,
            end: None,
            ended_by: None,
            writer_id: e.writer_id.clone(),
            record: e.record.clone(),
            paused: false,
            overtaken: false,
        };
        // The holder inside longest: the one this acquisition overlapped first.
        let earlier = self.open.values().min_by_key(|i| i.start).cloned();
        if let Some(earlier) = earlier {
            self.f.violations += 1;
            if self.f.first.is_none() {
                self.f.first = Some((earlier, new.clone()));
            }
            let mut paused_inside = None;
            for other in self.open.values_mut().filter(|i| i.paused) {
                other.overtaken = true;
                paused_inside = Some(other.clone());
            }
            if let Some(paused) = paused_inside {
                self.f.entered_during_pause += 1;
                if self.f.first_paused.is_none() {
                    self.f.first_paused = Some((paused, new.clone()));
                }
            }
        }
        self.open.insert(writer, new);
    }

    fn close(&mut self, e: &Event, how: Kind) {
        let Some(writer) = e.writer else {
            return self.inconsistent(format!("{how:?} without a writer at t={}", e.t_ns));
        };
        let Some(mut interval) = self.open.remove(&writer) else {
            if how == Kind::Exit {
                self.inconsistent(format!(
                    "writer {writer} left (seq {}) without having entered",
                    e.seq
                ));
            }
            return;
        };
        if interval.paused && interval.overtaken {
            self.f.paused_overlapped += 1;
        }
        interval.end = Some(e.t_ns);
        interval.ended_by = Some(how);
        match how {
            Kind::Exit => self.f.completed += 1,
            _ => self.f.died_inside += 1,
        }
        for (a, b) in [&mut self.f.first, &mut self.f.first_paused]
            .into_iter()
            .flatten()
        {
            for side in [a, b] {
                if side.key() == interval.key() && side.end.is_none() {
                    side.end = interval.end;
                    side.ended_by = interval.ended_by;
                }
            }
        }
    }

    fn death(&mut self, e: &Event) {
        let cause = e.cause.clone().unwrap_or_else(|| "unknown".into());
        *self.f.deaths.entry(cause).or_default() += 1;
        if e.held_lock {
            self.f.holder_deaths += 1;
            self.pending_recovery.push(e.t_ns);
        }
        self.close(e, Kind::Death);
    }

    fn pause(&mut self, e: &Event) {
        self.f.pauses += 1;
        match e.writer.and_then(|w| self.open.get_mut(&w)) {
            Some(interval) if !interval.paused => {
                interval.paused = true;
                self.f.paused_intervals += 1;
            }
            Some(_) => {}
            None => self.inconsistent(format!(
                "writer {:?} paused outside its critical section at t={}",
                e.writer, e.t_ns
            )),
        }
    }

    /// What the events pushed so far show (the counter unknown yet, the
    /// takeovers not sorted).
    pub fn so_far(&self) -> &Findings {
        &self.f
    }

    /// End of history, with the counter's final value if known.
    pub fn finish(mut self, counter: Option<u64>) -> Findings {
        self.f.open_at_end = self.open.len() as u64;
        self.f.unrecovered = self.pending_recovery.len() as u64;
        self.f.counter = counter;
        self.f.recoveries.sort_unstable();
        self.f
    }
}

/// Check a whole history.
pub fn check<'a>(events: impl IntoIterator<Item = &'a Event>, counter: Option<u64>) -> Findings {
    let mut checker = Checker::new();
    for e in events {
        checker.push(e);
    }
    checker.finish(counter)
}

/// The value at quantile `q` (nearest rank) of sorted samples.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A duration in ns, readably.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=9_999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn at(t: u64, t0: u64) -> String {
    format!("+{:.6} s", t.saturating_sub(t0) as f64 / 1e9)
}

fn describe_interval(i: &Interval, t0: u64) -> String {
    let end = match (i.end, i.ended_by) {
        (Some(t), Some(Kind::Death)) => format!("{} (died)", at(t, t0)),
        (Some(t), _) => at(t, t0),
        (None, _) => "still inside at the end".to_string(),
    };
    let record = match &i.record {
        Some(r) => format!(
            "pid {}, host \"{}\", timestamp_ns {}, writer_id {}",
            r.pid, r.hostname, r.timestamp_ns, r.writer_id
        ),
        None => format!(
            "writer_id {} (record not read)",
            i.writer_id.as_deref().unwrap_or("unknown")
        ),
    };
    format!(
        "  writer {:>3}  pid {:>7}  acquisition {:>6}  held [{} .. {}]{}\n      lock record: {record}\n",
        i.writer,
        i.pid,
        i.seq,
        at(i.start, t0),
        end,
        if i.paused { "  (paused inside)" } else { "" }
    )
}

/// The first violation, Jepsen-style: both holders' intervals, the record
/// each one held, and how they overlapped; then the first one against a
/// paused holder, if that was another. Empty when there is none.
pub fn render_first_violation(f: &Findings) -> String {
    let Some((a, b)) = &f.first else {
        return String::new();
    };
    let mut out = format!(
        "first violation ({} of {} acquisitions overlapped another holder):\n",
        f.violations, f.acquisitions
    );
    out.push_str(&render_pair(a, b, f));
    if let Some((p, q)) = &f.first_paused {
        if (p.key(), q.key()) != (a.key(), b.key()) {
            let _ = writeln!(
                out,
                "first acquisition while a holder was paused ({} in all):",
                f.entered_during_pause
            );
            out.push_str(&render_pair(p, q, f));
        }
    }
    out
}

fn render_pair(a: &Interval, b: &Interval, f: &Findings) -> String {
    let t0 = f.span.map_or(0, |s| s.0);
    let mut out = String::new();
    out.push_str(&describe_interval(a, t0));
    out.push_str(&describe_interval(b, t0));
    let overlap_end = match (a.end, b.end) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    };
    let _ = write!(
        out,
        "  writer {} entered {} after writer {} and while it was inside",
        b.writer,
        human_ns(b.start.saturating_sub(a.start)),
        a.writer
    );
    match overlap_end {
        Some(end) => {
            let _ = writeln!(
                out,
                "; both held the lock for {}",
                human_ns(end.saturating_sub(b.start))
            );
        }
        None => out.push('\n'),
    }
    if a.writer_id.is_some() && a.writer_id == b.writer_id {
        out.push_str("  both believed they held the same writer id\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64, kind: Kind, writer: usize, seq: u64) -> Event {
        let mut e = Event::new(t, kind).by(writer, 100 + writer as u32, seq);
        if kind == Kind::Enter {
            e.writer_id = Some(format!("{writer:032x}"));
        }
        e
    }

    #[test]
    fn back_to_back_holders_are_not_a_violation() {
        let h = [
            ev(1, Kind::Enter, 0, 0),
            ev(2, Kind::Exit, 0, 0),
            ev(3, Kind::Enter, 1, 0),
            ev(4, Kind::Exit, 1, 0),
        ];
        let f = check(&h, Some(2));
        assert_eq!((f.acquisitions, f.completed, f.violations), (2, 2, 0));
        assert!(f.ok());
        assert_eq!(render_first_violation(&f), "");
    }

    #[test]
    fn an_enter_inside_another_interval_is_the_first_violation() {
        let h = [
            ev(10, Kind::Enter, 0, 4),
            ev(12, Kind::Enter, 1, 9),
            ev(15, Kind::Exit, 1, 9),
            ev(20, Kind::Exit, 0, 4),
        ];
        let f = check(&h, Some(2));
        assert_eq!(f.violations, 1);
        assert!(!f.ok());
        let (a, b) = f.first.clone().expect("a pair");
        assert_eq!((a.writer, a.seq, a.end), (0, 4, Some(20)));
        assert_eq!((b.writer, b.seq, b.end), (1, 9, Some(15)));
        let text = render_first_violation(&f);
        assert!(text.contains("writer   0"), "{text}");
        assert!(text.contains("both held the lock for 3 ns"), "{text}");
    }

    #[test]
    fn a_death_closes_the_interval_and_starts_the_recovery_clock() {
        let mut death = ev(5, Kind::Death, 0, 1);
        death.held_lock = true;
        death.cause = Some("harness SIGKILL".into());
        let h = [
            ev(1, Kind::Enter, 0, 0),
            death,
            ev(9, Kind::Enter, 1, 0),
            ev(10, Kind::Exit, 1, 0),
        ];
        // The dead holder may or may not have written the counter.
        for counter in [1, 2] {
            let f = check(&h, Some(counter));
            assert_eq!(
                (f.died_inside, f.violations, f.recoveries.clone()),
                (1, 0, vec![4])
            );
            assert!(f.ok(), "counter {counter}");
        }
        assert!(!check(&h, Some(0)).counter_ok(), "a lost update");
        assert!(
            !check(&h, Some(3)).counter_ok(),
            "more updates than holders"
        );
    }

    #[test]
    fn acquisitions_while_a_holder_is_paused_are_counted_as_such() {
        let mut pause = ev(3, Kind::Pause, 0, 0);
        pause.writer_id = None;
        let h = [
            ev(1, Kind::Enter, 0, 0),
            pause,
            ev(5, Kind::Enter, 1, 0),
            ev(6, Kind::Exit, 1, 0),
            ev(8, Kind::Continue, 0, 0),
            ev(9, Kind::Exit, 0, 0),
        ];
        let f = check(&h, Some(2));
        assert_eq!(
            (
                f.paused_intervals,
                f.paused_overlapped,
                f.entered_during_pause
            ),
            (1, 1, 1)
        );
        assert_eq!(f.violations, 1);
        assert!(f.first.as_ref().is_some_and(|(a, _)| a.paused));
    }

    #[test]
    fn an_exit_without_an_enter_is_inconsistent() {
        let f = check(&[ev(1, Kind::Exit, 0, 0)], None);
        assert_eq!(f.inconsistency_count, 1);
        assert!(!f.ok());
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&s, 0.5), Some(50));
        assert_eq!(quantile(&s, 0.99), Some(99));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
