//! Cases: breaking a stale lock (PROTOCOL.md §8). A breaker may remove a
//! stale lock only while it holds the guard flock on the file it judged; what
//! stands at the lock path after a break is the breaker's own record; a live
//! holder's lock is never removed, however often contenders try.

use std::fs::File;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};

use super::craft;
use super::staleness::{expect_held, ms, plant_record, Via, HELD};
use crate::conform::case::{ensure, Case, Ctx, Level, Problem};
use crate::conform::wire::Outcome;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "break::respects-the-guard".into(),
            section: "§8.1",
            level: Level::Must,
            requirement: "A breaker MUST NOT unlink a stale lock without holding the guard flock on it: while someone else holds that flock, try-acquire is busy.".into(),
            expected: format!("stale lock (this host, dead pid, 60 s old) whose flock the harness holds: {HELD}"),
            exclusive: false,
            run: Box::new(run_respects_guard),
        },
        Case {
            id: "break::stale-lock-replaced-by-own".into(),
            section: "§8.3",
            level: Level::Must,
            requirement: "After breaking a stale lock, the breaker's own record stands at the lock path, and it releases it cleanly.".into(),
            expected: "acquired; the lock file is a valid record with the reply's writer id and the adapter's pid; released".into(),
            exclusive: false,
            run: Box::new(run_replaced_by_own),
        },
        Case {
            id: "break::held-lock-untouched".into(),
            section: "§8",
            level: Level::Must,
            requirement: "A live same-host holder's lock is never removed, however many times contenders try.".into(),
            expected: format!("record of this host with the harness's live pid, 60 s old, tried 3 times: {HELD} each time"),
            exclusive: false,
            run: Box::new(run_held_untouched),
        },
    ]
}

/// Plant a stale same-host lock: dead pid, 60 s old. Returns its path and
/// the planted file, open.
fn plant_stale(ctx: &Ctx) -> Result<(PathBuf, File), Problem> {
    let path = ctx.lock_path();
    let (pid, host) = (craft::dead_pid()?, craft::local_host()?);
    let file = craft::plant_aged(&path, |t| craft::record(pid, &host, t), ms(60_000))?;
    Ok((path, file))
}

fn run_respects_guard(ctx: &mut Ctx) -> Result<(), Problem> {
    // The flock is taken on the planted file itself, never on whatever an
    // adapter might have put at the path since.
    let (path, file) = plant_stale(ctx)?;
    // Held for the whole case, like a live holder (§7.2) or another breaker (§8.1).
    let guard = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| Problem::Harness(format!("flock the planted lock: {e}")))?;
    let what = "stale lock whose flock the harness holds";
    let result = expect_held(ctx, Via::Main, &path, what);
    drop(guard);
    result
}

fn run_replaced_by_own(ctx: &mut Ctx) -> Result<(), Problem> {
    let pid = ctx.hello()?.pid;
    let (path, _) = plant_stale(ctx)?;
    let outcome = ctx.try_acquire(&path)?;
    let reply_id = craft::expect_acquired(&outcome, "stale lock (this host, dead pid, 60 s old)");
    if !matches!(outcome, Outcome::Acquired { .. }) {
        return reply_id.map(drop);
    }
    let standing = craft::read_lock(&path);
    let released = ctx.release(&path)?;
    let reply_id = reply_id?;
    let bytes = standing?.ok_or_else(|| {
        Problem::Fail("acquired, but nothing stands at the lock path while it is held".into())
    })?;
    let r = craft::decode_written(&bytes)?;
    ensure(r.writer_id.0 == reply_id, || {
        format!(
            "the lock file holds writer id {}, the reply said {} (the planted one was {})",
            r.writer_id,
            rvlf_lock::record::hex(&reply_id),
            rvlf_lock::record::hex(b"conformance-case")
        )
    })?;
    ensure(r.pid == pid, || {
        format!("the lock file holds pid {}, the adapter's is {pid}", r.pid)
    })?;
    ensure(released == Outcome::Released, || {
        format!(
            "release: expected released, got {}",
            craft::describe(&released)
        )
    })
}

fn run_held_untouched(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    plant_record(&path, craft::live_pid(), &craft::local_host()?, ms(60_000))?;
    let before = craft::snapshot(&path)?;
    for attempt in 1..=3 {
        let what = format!("live holder's lock, attempt {attempt} of 3");
        expect_held(ctx, Via::Main, &path, &what)?;
    }
    craft::unchanged(&path, &before)
}
