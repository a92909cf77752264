//! The final report of a stress run (or of a re-checked history): what ran,
//! acquisitions and their rate, violations with the first one shown
//! Jepsen-style, faults injected, takeover times, and a verdict line.

use std::fmt::Write as _;

use super::check::{human_ns, quantile, render_first_violation, Findings};
use super::engine::{Config, Outcome};
use super::faults;

/// The first lines: what is about to run, with the seed to run it again.
pub fn header(config: &Config) -> String {
    let unit = if config.scenario == super::Scenario::Storm {
        "rounds"
    } else {
        "acquisitions per writer"
    };
    let budget = match (config.count, config.duration) {
        (Some(c), Some(d)) => format!(
            "{c} {unit} or {:.1} s, whichever ends first",
            d.as_secs_f64()
        ),
        (Some(c), None) => format!("{c} {unit}"),
        (None, Some(d)) => format!("for {:.1} s", d.as_secs_f64()),
        (None, None) => "unbounded".into(),
    };
    let mut kinds: Vec<String> = config.implementations();
    kinds.dedup();
    format!(
        "rvlf stress: scenario {}, {} writers ({}), {budget}\n\
         seed {} (rerun with --seed {}), faults: {}{}\n",
        config.scenario.name(),
        config.writers,
        kinds.join(" + "),
        config.seed,
        config.seed,
        faults::names(&config.faults),
        if config.faults.is_empty() {
            String::new()
        } else {
            format!(
                " (one per writer life, after ~{} iterations)",
                config.fault_every
            )
        },
    )
}

/// The findings of a history, whoever checked it.
pub fn findings(f: &Findings) -> String {
    let mut out = String::new();
    let secs = f
        .acquiring_span
        .map_or(0.0, |(a, b)| b.saturating_sub(a) as f64 / 1e9);
    let _ = writeln!(
        out,
        "  acquisitions     {}{}",
        f.acquisitions,
        if secs > 0.0 {
            format!(" ({:.0}/s)", f.acquisitions as f64 / secs)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  violations       {}{}",
        f.violations,
        if f.violations > 0 {
            " acquisitions overlapped another holder"
        } else {
            ""
        }
    );
    if let Some(c) = f.counter {
        let expected = if f.died_inside == 0 {
            format!("{}", f.completed)
        } else {
            format!("{}..={}", f.completed, f.completed + f.died_inside)
        };
        let _ = writeln!(
            out,
            "  counter          {c} (expected {expected}){}",
            if f.counter_ok() {
                ""
            } else if c < f.completed {
                " LOST UPDATES"
            } else {
                " TOO MANY UPDATES"
            }
        );
    }
    let _ = writeln!(out, "  faults injected  {}", faults_line(f));
    let other: Vec<String> = f
        .deaths
        .iter()
        .filter(|(c, _)| !injected(c))
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if !other.is_empty() {
        let _ = writeln!(out, "  other deaths     {}", other.join(", "));
    }
    if !f.recoveries.is_empty() || f.unrecovered > 0 {
        out.push_str(&takeover(f));
    }
    if f.paused_intervals > 0 {
        let _ = writeln!(
            out,
            "  paused holders   {} paused past the threshold; {} of them overtaken; {} acquisitions while one was paused",
            f.paused_intervals, f.paused_overlapped, f.entered_during_pause
        );
    }
    let _ = writeln!(
        out,
        "  releases         {} lost (§9.2), {} failed",
        f.lost_releases, f.release_errors
    );
    if f.errors > 0 {
        let _ = writeln!(
            out,
            "  errors           first: {}",
            f.error_samples.join("; ")
        );
    }
    if f.inconsistency_count > 0 {
        let _ = writeln!(
            out,
            "  inconsistent     {} events: {}",
            f.inconsistency_count,
            f.inconsistencies.join("; ")
        );
    }
    out
}

/// The takeover lines: how soon a dead holder's lock (or a planted stale
/// one) was taken once the harness had aged it past the threshold, and how
/// long a real crash leaves it held, which that figure leaves out.
fn takeover(f: &Findings) -> String {
    let p = |q| quantile(&f.recoveries, q).map_or("-".into(), human_ns);
    let from = match (f.holder_deaths > 0, f.planted > 0) {
        (true, true) => "a holder's death or a planted stale lock",
        (false, true) => "a planted stale lock",
        _ => "a holder's death",
    };
    let never = if f.unrecovered > 0 {
        format!("; {} never taken over", f.unrecovered)
    } else {
        String::new()
    };
    let t = rvlf_lock::Thresholds::V1;
    format!(
        "  takeover         after the lock was aged past the threshold: p50 {}, p99 {} \
         from {from} to the next acquisition ({} takeovers{never})\n\
         \x20 a real crash     leaves its lock held {} s for writers on the same host, \
         {} s for writers on other hosts (the thresholds); the harness aged it instead\n",
        p(0.5),
        p(0.99),
        f.recoveries.len(),
        t.same_host.as_secs(),
        t.other_host.as_secs(),
    )
}

/// Whether a death's cause names a fault the harness injected.
fn injected(cause: &str) -> bool {
    cause.starts_with("failpoint ") || cause.starts_with("harness ")
}

/// Faults the harness injected: the deaths it caused, the pauses and the
/// planted stale locks.
pub fn faults_injected(f: &Findings) -> u64 {
    let deaths: u64 = f
        .deaths
        .iter()
        .filter(|(c, _)| injected(c))
        .map(|(_, n)| n)
        .sum();
    deaths + f.pauses + f.planted
}

fn faults_line(f: &Findings) -> String {
    let total = faults_injected(f);
    if total == 0 {
        return "0".into();
    }
    let mut parts: Vec<String> = f
        .deaths
        .iter()
        .filter(|(c, _)| injected(c))
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    if f.pauses > 0 {
        parts.push(format!("SIGSTOP {}", f.pauses));
    }
    if f.planted > 0 {
        parts.push(format!("planted stale locks {}", f.planted));
    }
    format!("{total}: {}", parts.join(", "))
}

/// The whole report of a run.
pub fn run(outcome: &Outcome) -> String {
    if let Some(reason) = &outcome.skipped {
        return format!("skipped: {reason}\n");
    }
    let mut out = findings(&outcome.findings);
    let t = &outcome.totals;
    let _ = writeln!(
        out,
        "  busy answers     {} held, {} guarded (§8.1), {} contended; {} errors",
        t.busy_held, t.busy_guarded, t.busy_contended, t.errors
    );
    let _ = writeln!(
        out,
        "  elapsed          {:.2} s",
        outcome.elapsed.as_secs_f64()
    );
    if let Some(why) = &outcome.leftover {
        let _ = writeln!(out, "  left behind      a lock nobody can take: {why}");
    }
    out.push_str(&render_first_violation(&outcome.findings));
    for failure in &outcome.failures {
        let _ = writeln!(out, "harness: {failure}");
    }
    if let Some(stall) = &outcome.stalled {
        let _ = writeln!(out, "harness: {stall}");
    }
    if outcome.interrupted {
        out.push_str("harness: interrupted\n");
    }
    out.push_str(&verdict(&outcome.findings, outcome.harness_failed()));
    out
}

/// One line: OK, VIOLATION or INCOMPLETE.
pub fn verdict(f: &Findings, harness_failed: bool) -> String {
    if !f.ok() {
        let mut why = Vec::new();
        if f.violations > 0 {
            why.push(format!("{} overlapping acquisitions", f.violations));
        }
        if !f.counter_ok() {
            why.push("the counter disagrees with the acquisitions".into());
        }
        if f.inconsistency_count > 0 {
            why.push("the history is inconsistent".into());
        }
        return format!("verdict: VIOLATION: {}\n", why.join(", "));
    }
    if harness_failed {
        return "verdict: INCOMPLETE: the harness could not finish the run (see above)\n".into();
    }
    format!(
        "verdict: OK: no two holders overlapped in {} acquisitions\n",
        f.acquisitions
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_takeover_figure_says_what_it_measures_and_what_a_crash_costs() {
        let f = Findings {
            holder_deaths: 3,
            recoveries: vec![10_000_000, 20_000_000, 30_000_000],
            ..Findings::default()
        };
        let text = findings(&f);
        assert!(!text.contains("recovery"), "{text}");
        assert!(
            text.contains(
                "  takeover         after the lock was aged past the threshold: \
                 p50 20.0 ms, p99 30.0 ms from a holder's death to the next acquisition \
                 (3 takeovers)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  a real crash     leaves its lock held 30 s for writers on the same host, \
                 300 s for writers on other hosts (the thresholds); the harness aged it instead\n"
            ),
            "{text}"
        );
        let storm = Findings {
            planted: 2,
            recoveries: vec![5, 6],
            unrecovered: 1,
            ..Findings::default()
        };
        let text = findings(&storm);
        assert!(
            text.contains("from a planted stale lock to the next acquisition (2 takeovers; 1 never taken over)"),
            "{text}"
        );
    }
}
