//! Cases: release (PROTOCOL.md §9). The implementation acquires a lock, the
//! harness then changes what is at the lock path behind its back (replaces
//! it with another record, with a copy of the holder's own bytes in a new
//! file, with garbage, or removes it), and the release must report `lost`
//! and leave the replacement exactly as it was.

use std::fs;
use std::path::Path;

use super::craft::{self, Snapshot};
use crate::conform::case::{harness, Case, Ctx, Level, Problem};
use crate::conform::wire::Outcome;
use rvlf_lock::record::{self, WriterId};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "release::removes-own-lock".into(),
            section: "§9.1",
            level: Level::Must,
            requirement: "Releasing a lock that is still the holder's own removes the lock file."
                .into(),
            expected: "acquired; release: released; the lock path is gone".into(),
            exclusive: false,
            run: Box::new(removes_own_lock),
        },
        Case {
            id: "release::owner-check-replaced".into(),
            section: "§9.2",
            level: Level::Must,
            requirement: "A release finding another writer's record at the lock path reports \
                          lost and deletes nothing."
                .into(),
            expected: "acquired; lock replaced by another writer id; release: lost; \
                       the replacement is unchanged"
                .into(),
            exclusive: false,
            run: Box::new(owner_check_replaced),
        },
        Case {
            id: "release::same-id-other-file".into(),
            section: "§9.1",
            level: Level::Must,
            requirement: "A holder unlinks only when both the writer id and the file identity \
                          match the file it published."
                .into(),
            expected: "acquired; lock replaced by a copy of its own bytes in another file; \
                       release: lost; the copy is unchanged"
                .into(),
            exclusive: false,
            run: Box::new(same_id_other_file),
        },
        Case {
            id: "release::vanished".into(),
            section: "§9.2",
            level: Level::Must,
            requirement: "A release finding the lock path absent reports lost and creates nothing."
                .into(),
            expected: "acquired; lock removed; release: lost; the lock path stays absent".into(),
            exclusive: false,
            run: Box::new(vanished),
        },
        Case {
            id: "release::double-release".into(),
            section: "§9.3",
            level: Level::Must,
            requirement: "A second release of the same handle does not touch the lock path and \
                          does not report released."
                .into(),
            expected: "acquired; release: released; a copy of its record planted again; \
                       second release: error (not-held) or lost; the copy is unchanged"
                .into(),
            exclusive: false,
            run: Box::new(double_release),
        },
        Case {
            id: "release::replaced-by-malformed".into(),
            section: "§9.2",
            level: Level::Must,
            requirement: "A release finding a file that does not decode at the lock path reports \
                          lost and deletes nothing."
                .into(),
            expected: "acquired; lock replaced by a 10-byte file; release: lost; \
                       the file is unchanged"
                .into(),
            exclusive: false,
            run: Box::new(replaced_by_malformed),
        },
    ]
}

fn removes_own_lock(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    acquire(ctx, &path)?;
    let released = ctx.release(&path)?;
    expect_release(&released, "released", "release of its own lock")?;
    match craft::snapshot(&path)? {
        None => Ok(()),
        Some(_) => Err(Problem::Fail(
            "release answered released, but the lock file is still there".into(),
        )),
    }
}

fn owner_check_replaced(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    let ours = acquire(ctx, &path)?;
    let mut other = craft::record(craft::live_pid(), &craft::local_host()?, craft::now_ns());
    if other.writer_id.0 == ours {
        // Practically impossible for a random id; keep the replacement another writer's.
        other.writer_id = WriterId([0x5a; 16]);
    }
    let before = replace(&path, &record::encode(&other))?;
    lost_and_unchanged(
        ctx,
        &path,
        &before,
        "release after another writer replaced the lock",
    )
}

fn same_id_other_file(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    acquire(ctx, &path)?;
    let own = craft::read_lock(&path)?.ok_or_else(|| {
        Problem::Fail("acquired, but there is no lock file at the lock path".into())
    })?;
    let before = replace(&path, &own)?;
    lost_and_unchanged(
        ctx,
        &path,
        &before,
        "release after its own bytes were copied into another file at the lock path",
    )
}

fn vanished(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    acquire(ctx, &path)?;
    fs::remove_file(&path).map_err(harness("remove the lock file"))?;
    lost_and_unchanged(ctx, &path, &None, "release after the lock file was removed")
}

fn double_release(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    acquire(ctx, &path)?;
    let own = craft::read_lock(&path)?.ok_or_else(|| {
        Problem::Fail("acquired, but there is no lock file at the lock path".into())
    })?;
    let first = ctx.release(&path)?;
    expect_release(&first, "released", "first release")?;
    // Its own bytes again, in a new file: a handle that was not consumed and
    // trusts the writer id alone would delete them.
    let before = replace(&path, &own)?;
    let second = ctx.release(&path)?;
    match &second {
        Outcome::Error { .. } | Outcome::Lost => craft::unchanged(&path, &before),
        Outcome::Unimplemented => Err(Problem::Unimplemented(
            "second release: release is unimplemented".into(),
        )),
        other => Err(Problem::Fail(format!(
            "second release: expected error (not-held) or lost, got {}",
            craft::describe(other)
        ))),
    }
}

fn replaced_by_malformed(ctx: &mut Ctx) -> Result<(), Problem> {
    let path = ctx.lock_path();
    acquire(ctx, &path)?;
    let before = replace(&path, b"not a lock")?;
    lost_and_unchanged(
        ctx,
        &path,
        &before,
        "release after a 10-byte file replaced the lock",
    )
}

/// Acquire `path` with the main adapter; the writer id it reported.
fn acquire(ctx: &mut Ctx, path: &Path) -> Result<[u8; 16], Problem> {
    let outcome = ctx.try_acquire(path)?;
    craft::expect_acquired(&outcome, "try-acquire of a free lock")
}

/// Put `bytes` at `path` the way another writer would: a new file renamed
/// over it (a new inode, made under a fresh name with O_EXCL, so nothing an
/// adapter planted next to the lock is written through). Returns the
/// snapshot of what is there now.
fn replace(path: &Path, bytes: &[u8]) -> Result<Option<Snapshot>, Problem> {
    craft::put(path, bytes, None)?;
    craft::snapshot(path)
}

/// Release `path`; it must answer lost and leave `before` as it was.
fn lost_and_unchanged(
    ctx: &mut Ctx,
    path: &Path,
    before: &Option<Snapshot>,
    what: &str,
) -> Result<(), Problem> {
    let outcome = ctx.release(path)?;
    let answered = expect_release(&outcome, "lost", what);
    // What happened to the file is the more telling failure.
    craft::unchanged(path, before).map_err(|p| match (&p, &answered) {
        (Problem::Fail(changed), Err(Problem::Fail(reply))) => {
            Problem::Fail(format!("{reply}; {changed}"))
        }
        (Problem::Fail(changed), _) => {
            Problem::Fail(format!("{what}: answered lost, but {changed}"))
        }
        _ => p,
    })?;
    answered
}

/// Fail unless a release answered `want` (`released` or `lost`).
fn expect_release(outcome: &Outcome, want: &str, what: &str) -> Result<(), Problem> {
    match outcome {
        Outcome::Released if want == "released" => Ok(()),
        Outcome::Lost if want == "lost" => Ok(()),
        Outcome::Unimplemented => Err(Problem::Unimplemented(format!(
            "{what}: release is unimplemented"
        ))),
        other => Err(Problem::Fail(format!(
            "{what}: expected {want}, got {}",
            craft::describe(other)
        ))),
    }
}
