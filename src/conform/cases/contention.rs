//! Cases: contention (PROTOCOL.md §7, §8). Several adapter processes — of the
//! implementation alone, or mixed with the reference — try-acquire and
//! release one lock path as fast as they can, each driven from a harness
//! thread of its own, and the harness counts holders. The count only covers
//! the time from an `acquired` reply to the release request, which lies
//! inside the true holding time, so two counted holders are two real ones.
//! A holder also checks that the lock file carries its own writer id and
//! that its release finds it (`released`, not `lost`).
//!
//! The stale storm plants a stale lock again and again and lets several
//! adapters try to break it at the same moment: exactly one may win each
//! round. Races are found by stress, so these cases can miss a defect on a
//! given run; they never report one that is not there.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use super::craft;
use crate::conform::case::{path_str, Case, Ctx, Level, Problem};
use crate::conform::client::{Adapter, Fault, Spec};
use crate::conform::wire::{Command, Outcome};
use rvlf_lock::record::{self, offset, RECORD_LEN};

/// How long the contention loops run at most.
const SPELL: Duration = Duration::from_millis(1800);
/// How many acquisitions, by all adapters together, end a contention loop early.
const ACQUISITIONS: usize = 300;
/// Fewer acquisitions than this in the whole spell show nothing: the
/// machine (or the implementation) is too slow for the case to mean anything.
const MEANINGFUL: usize = 20;
/// Stale-storm rounds at most, the time they may take, and how many
/// adapters contend in each. About one round in a hundred catches a breaker
/// that does not guard its break, so the storm needs many rounds.
const ROUNDS: usize = 400;
const STORM_SPELL: Duration = Duration::from_millis(1800);
const BREAKERS: usize = 4;
/// How old the planted stale lock is (same host, dead PID: stale after 30 s).
const STALE_AGE: Duration = Duration::from_secs(60);

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "contention::same-implementation".into(),
            section: "§7",
            level: Level::Must,
            requirement: "Processes of one implementation contending for one lock never hold it \
                          at the same time."
                .into(),
            expected: format!(
                "3 adapters, up to {ACQUISITIONS} acquisitions or {SPELL:?}: never two holders; \
                 each holder finds its own writer id; every release answers released"
            ),
            exclusive: true,
            run: Box::new(|ctx| {
                let spec = ctx.target.adapter.clone();
                contend(ctx, &[(&spec, "implementation", 3)])
            }),
        },
        Case {
            id: "contention::mixed-with-reference".into(),
            section: "§7",
            level: Level::Must,
            requirement: "The implementation and the reference contending for one lock never \
                          hold it at the same time."
                .into(),
            expected: format!(
                "2 implementation + 2 reference adapters, up to {ACQUISITIONS} acquisitions or \
                 {SPELL:?}: never two holders; each holder finds its own writer id; every \
                 release answers released"
            ),
            exclusive: true,
            run: Box::new(|ctx| {
                let (spec, reference) = (ctx.target.adapter.clone(), ctx.target.reference.clone());
                contend(
                    ctx,
                    &[(&spec, "implementation", 2), (&reference, "reference", 2)],
                )
            }),
        },
        Case {
            id: "contention::stale-storm".into(),
            section: "§8",
            level: Level::Must,
            requirement: "When several writers break the same stale lock at once, exactly one of \
                          them acquires it."
                .into(),
            expected: format!(
                "up to {ROUNDS} rounds or {STORM_SPELL:?}, each: a stale lock (this host, dead \
                 PID, {STALE_AGE:?} old), {BREAKERS} adapters try-acquire at once: exactly one \
                 acquired, the rest busy; the winner's release answers released"
            ),
            exclusive: true,
            run: Box::new(stale_storm),
        },
    ]
}

/// One adapter process driven from a harness thread.
struct Member {
    adapter: Adapter,
    label: String,
}

impl Member {
    fn call(&mut self, command: Command, timeout: Duration) -> Result<Outcome, Problem> {
        let what = match &command {
            Command::Release { .. } => "release",
            _ => "try-acquire",
        };
        self.adapter
            .call(command, timeout)
            .map_err(|f| Problem::from_fault(f, &format!("{}: {what}", self.label)))
    }
}

/// The time one request may take in this case.
fn request_timeout(ctx: &Ctx) -> Result<Duration, Problem> {
    let left = ctx.remaining();
    if left.is_zero() {
        return Err(Problem::Hang("the case ran out of time".into()));
    }
    Ok(ctx.timeouts.request.min(left))
}

/// Start `count` adapters of each spec, all at once.
fn start(ctx: &Ctx, groups: &[(&Spec, &str, usize)]) -> Result<Vec<Member>, Problem> {
    let timeout = request_timeout(ctx)?;
    let wanted: Vec<(&Spec, String)> = groups
        .iter()
        .flat_map(|(spec, name, count)| (1..=*count).map(move |i| (*spec, format!("{name} #{i}"))))
        .collect();
    let started: Vec<Result<Member, Problem>> = std::thread::scope(|s| {
        let handles: Vec<_> = wanted
            .into_iter()
            .map(|(spec, label)| {
                s.spawn(move || match Adapter::spawn(spec, timeout) {
                    Ok(adapter) => Ok(Member { adapter, label }),
                    Err(Fault::Handshake(e)) => {
                        Err(Problem::Crash(format!("{label}: start-up: {e}")))
                    }
                    Err(other) => Err(Problem::from_fault(other, &format!("{label}: start-up"))),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Problem::Harness("an adapter start panicked".into())))
            })
            .collect()
    });
    // Any that did start are stopped when dropped.
    started.into_iter().collect()
}

/// When a loop that may last `spell` from the start of the case must end.
fn deadline(ctx: &Ctx, spell: Duration) -> Instant {
    let spent = ctx.timeouts.case.saturating_sub(ctx.remaining());
    Instant::now() + spell.saturating_sub(spent).min(ctx.remaining() / 2)
}

/// Stop every adapter, at once rather than one grace period after another.
fn stop(members: Vec<Member>) {
    std::thread::scope(|s| {
        for m in members {
            s.spawn(move || m.adapter.finish());
        }
    });
}

/// What the contending threads share.
struct Tally {
    holders: AtomicUsize,
    acquisitions: AtomicUsize,
    stop: AtomicBool,
    violations: Mutex<Vec<String>>,
    until: Instant,
}

impl Tally {
    fn violation(&self, what: String) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut v) = self.violations.lock() {
            v.push(what);
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
            && Instant::now() < self.until
            && self.acquisitions.load(Ordering::SeqCst) < ACQUISITIONS
    }
}

/// Let the adapters of `groups` contend for one lock; fail on two holders,
/// a lock file that is not the holder's, or a release that finds it lost.
fn contend(ctx: &mut Ctx, groups: &[(&Spec, &str, usize)]) -> Result<(), Problem> {
    let path = ctx.lock_path();
    let timeout = request_timeout(ctx)?;
    let mut members = start(ctx, groups)?;
    let tally = Tally {
        holders: AtomicUsize::new(0),
        acquisitions: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        violations: Mutex::new(Vec::new()),
        until: deadline(ctx, SPELL),
    };
    let results: Vec<Result<(), Problem>> = std::thread::scope(|s| {
        let handles: Vec<_> = members
            .iter_mut()
            .map(|m| {
                let (tally, path) = (&tally, path.as_path());
                s.spawn(move || {
                    let result = contend_one(m, path, timeout, tally);
                    if result.is_err() {
                        tally.stop.store(true, Ordering::SeqCst);
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Problem::Harness("a contender panicked".into())))
            })
            .collect()
    });
    stop(members);
    let violations = tally.violations.into_inner().unwrap_or_default();
    let acquisitions = tally.acquisitions.into_inner();
    if let Some(first) = violations.first() {
        return Err(Problem::Fail(format!(
            "{} violation(s) in {acquisitions} acquisitions; first: {first}",
            violations.len()
        )));
    }
    results.into_iter().collect::<Result<(), Problem>>()?;
    if acquisitions == 0 {
        return Err(Problem::Fail(
            "no adapter ever acquired the free lock".into(),
        ));
    }
    if acquisitions < MEANINGFUL.min(ACQUISITIONS) {
        return Err(Problem::Skip(format!(
            "only {acquisitions} acquisitions in {SPELL:?}, none of them overlapping: too few \
             to show anything"
        )));
    }
    Ok(())
}

/// One contender's loop: try-acquire; when acquired, count itself in, check
/// the lock file, count itself out, release.
fn contend_one(
    m: &mut Member,
    path: &Path,
    timeout: Duration,
    tally: &Tally,
) -> Result<(), Problem> {
    let wire_path = path_str(path)?;
    while tally.running() {
        let outcome = m.call(
            Command::TryAcquire {
                path: wire_path.clone(),
            },
            timeout,
        )?;
        let ours = match &outcome {
            Outcome::Busy => continue,
            Outcome::Acquired { .. } => craft::expect_acquired(&outcome, &m.label)?,
            Outcome::Unimplemented => {
                return Err(Problem::Unimplemented(format!(
                    "{}: try-acquire is unimplemented",
                    m.label
                )))
            }
            other => {
                return Err(Problem::Fail(format!(
                    "{}: try-acquire answered {}, expected acquired or busy",
                    m.label,
                    craft::describe(other)
                )))
            }
        };
        let n = tally.acquisitions.fetch_add(1, Ordering::SeqCst) + 1;
        let others = tally.holders.fetch_add(1, Ordering::SeqCst);
        if others > 0 {
            tally.violation(format!(
                "{} acquired (acquisition {n}) while another adapter held the lock",
                m.label
            ));
        }
        if let Some(wrong) = not_ours(path, &ours) {
            tally.violation(format!("{} holds the lock, but {wrong}", m.label));
        }
        tally.holders.fetch_sub(1, Ordering::SeqCst);
        let released = m.call(
            Command::Release {
                path: wire_path.clone(),
            },
            timeout,
        )?;
        match released {
            Outcome::Released => {}
            Outcome::Lost => tally.violation(format!(
                "{}'s release answered lost: someone removed or replaced its lock",
                m.label
            )),
            other => {
                return Err(Problem::Fail(format!(
                    "{}: release of its own lock answered {}",
                    m.label,
                    craft::describe(&other)
                )))
            }
        }
    }
    Ok(())
}

/// What is wrong with the lock file a holder with writer id `ours` finds, if
/// anything. Only the writer id is looked at (other cases judge the rest of
/// the record): the file must be 104 bytes with `ours` at offset 0x50.
fn not_ours(path: &Path, ours: &[u8; 16]) -> Option<String> {
    let bytes = match craft::read_lock(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Some("the lock file is gone".into()),
        Err(p) => return Some(p.detail().to_string()),
    };
    if bytes.len() != RECORD_LEN {
        return Some(format!("the lock file is {} bytes long", bytes.len()));
    }
    let id = &bytes[offset::WRITER_ID..offset::WRITER_ID + 16];
    if id == ours {
        return None;
    }
    let p = offset::PID;
    let pid = u32::from_le_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]);
    Some(format!(
        "the lock file carries writer id {} (pid {pid}), not its {}",
        record::hex(id),
        record::hex(ours)
    ))
}

fn stale_storm(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    let wire_path = path_str(&path)?;
    let timeout = request_timeout(ctx)?;
    let (pid, host) = (craft::dead_pid()?, craft::local_host()?);
    let spec = ctx.target.adapter.clone();
    let mut members = start(ctx, &[(&spec, "implementation", BREAKERS)])?;
    let until = deadline(ctx, STORM_SPELL);
    let result = (1..=ROUNDS)
        .take_while(|_| Instant::now() < until)
        .try_for_each(|round| {
            craft::plant_aged(&path, |t| craft::record(pid, &host, t), STALE_AGE)?;
            let outcomes = all_at_once(&mut members, &wire_path, timeout)?;
            storm_round(&mut members, &wire_path, timeout, round, &outcomes)
        });
    stop(members);
    result
}

/// Every member try-acquires `path` at the same moment; their replies.
fn all_at_once(
    members: &mut [Member],
    path: &str,
    timeout: Duration,
) -> Result<Vec<Outcome>, Problem> {
    let start = Barrier::new(members.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = members
            .iter_mut()
            .map(|m| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    m.call(
                        Command::TryAcquire {
                            path: path.to_string(),
                        },
                        timeout,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Problem::Harness("a breaker panicked".into())))
            })
            .collect()
    })
}

/// Judge one round: exactly one `acquired`, the rest `busy`; the winner's
/// release must find its lock.
fn storm_round(
    members: &mut [Member],
    path: &str,
    timeout: Duration,
    round: usize,
    outcomes: &[Outcome],
) -> Result<(), Problem> {
    let winners: Vec<usize> = (0..outcomes.len())
        .filter(|&i| matches!(outcomes[i], Outcome::Acquired { .. }))
        .collect();
    let release = |m: &mut Member| {
        m.call(
            Command::Release {
                path: path.to_string(),
            },
            timeout,
        )
    };
    if let Some(i) = (0..outcomes.len()).find(|&i| {
        !matches!(
            outcomes[i],
            Outcome::Acquired { .. } | Outcome::Busy | Outcome::Unimplemented
        )
    }) {
        return Err(Problem::Fail(format!(
            "round {round}: {} answered {} to try-acquire of a stale lock",
            members[i].label,
            craft::describe(&outcomes[i])
        )));
    }
    if outcomes.contains(&Outcome::Unimplemented) {
        return Err(Problem::Unimplemented(
            "try-acquire is unimplemented".into(),
        ));
    }
    if winners.len() != 1 {
        let names: Vec<String> = winners.iter().map(|&i| members[i].label.clone()).collect();
        for &i in &winners {
            let _ = release(&mut members[i]);
        }
        return Err(Problem::Fail(format!(
            "round {round}: {} of {} adapters acquired the stale lock at once ({})",
            winners.len(),
            outcomes.len(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let winner = &mut members[winners[0]];
    match release(winner)? {
        Outcome::Released => Ok(()),
        other => Err(Problem::Fail(format!(
            "round {round}: {} won the stale lock, but its release answered {}",
            winner.label,
            craft::describe(&other)
        ))),
    }
}
