//! Cases: staleness (PROTOCOL.md §6). Every case plants a lock file with a
//! crafted timestamp, mtime, host and pid, and observes the verdict through a
//! single try-acquire: `busy` with the file untouched means held, `acquired`
//! means the implementation judged it stale and broke it. Nothing waits: the
//! ages sit half a second either side of each threshold.
//!
//! The observation helpers here ([`Via`], [`expect_held`], [`expect_stale`])
//! are shared with the golden, hosts and breaking cases.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::craft::{self, SECOND};
use crate::conform::case::{path_str, Case, Ctx, Level, Problem};
use crate::conform::scratch;
use crate::conform::wire::{Command, Outcome};
use rvlf_lock::record::{self, Hostname};

// ---------------------------------------------------------------------------
// Observing a verdict (shared with golden.rs, hosts.rs and breaking.rs)
// ---------------------------------------------------------------------------

/// Which adapter a step talks to: the case's main one, or one it started itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Main,
    Extra(usize),
}

/// Send `command` through `via`.
pub(super) fn call(ctx: &mut Ctx, via: Via, command: Command) -> Result<Outcome, Problem> {
    match via {
        Via::Main => ctx.call(command),
        Via::Extra(i) => ctx.call_on(i, command),
    }
}

/// Try-acquire `path` through `via`.
pub(super) fn try_acquire(ctx: &mut Ctx, via: Via, path: &Path) -> Result<Outcome, Problem> {
    let path = path_str(path)?;
    call(ctx, via, Command::TryAcquire { path })
}

/// Release `path` through `via`.
pub(super) fn release(ctx: &mut Ctx, via: Via, path: &Path) -> Result<Outcome, Problem> {
    let path = path_str(path)?;
    call(ctx, via, Command::Release { path })
}

/// The lock at `path` must be held: try-acquire answers `busy` and the file
/// is exactly as planted. A lock taken against the rule is given back.
pub(super) fn expect_held(ctx: &mut Ctx, via: Via, path: &Path, what: &str) -> Result<(), Problem> {
    let before = craft::snapshot(path)?;
    let outcome = try_acquire(ctx, via, path)?;
    if matches!(outcome, Outcome::Acquired { .. }) {
        release(ctx, via, path)?;
    }
    craft::expect_busy(&outcome, what)?;
    craft::unchanged(path, &before).map_err(|p| match p {
        Problem::Fail(m) => Problem::Fail(format!("{what}: busy, but {m}")),
        other => other,
    })
}

/// The lock at `path` must be stale: try-acquire answers `acquired` (the
/// implementation broke it). The lock is released again.
pub(super) fn expect_stale(
    ctx: &mut Ctx,
    via: Via,
    path: &Path,
    what: &str,
) -> Result<(), Problem> {
    let outcome = try_acquire(ctx, via, path)?;
    if matches!(outcome, Outcome::Acquired { .. }) {
        release(ctx, via, path)?;
    }
    craft::expect_acquired(&outcome, what).map(drop)
}

/// Scenes next to a threshold are planted 0.5 s from it. A failure is only
/// evidence when the whole scene (plant, then the implementation's answer)
/// took less than this: a slower scene may rightly have crossed the threshold.
pub(super) const TRUSTED_WITHIN: Duration = Duration::from_millis(400);

/// Run a timed scene; a failure of a scene slower than [`TRUSTED_WITHIN`] is
/// set again from scratch, up to three times in all.
pub(super) fn timed(
    ctx: &mut Ctx,
    mut scene: impl FnMut(&mut Ctx) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let mut slow = Vec::new();
    loop {
        let started = std::time::Instant::now();
        let result = scene(ctx);
        let took = started.elapsed();
        match result {
            Err(Problem::Fail(m)) if took > TRUSTED_WITHIN => {
                slow.push(format!("{:.0} ms", took.as_secs_f64() * 1e3));
                if slow.len() == 3 {
                    return Err(Problem::Fail(format!(
                        "{m} (every try was slower than the {} ms margin: {})",
                        TRUSTED_WITHIN.as_millis(),
                        slow.join(", ")
                    )));
                }
            }
            other => return other,
        }
    }
}

/// A duration in milliseconds, for ages next to a threshold.
pub(super) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Plant a record of `host` with `pid`, timestamp and mtime both `age` old.
pub(super) fn plant_record(
    path: &Path,
    pid: u32,
    host: &Hostname,
    age: Duration,
) -> Result<(), Problem> {
    craft::plant_aged(path, |t| craft::record(pid, host, t), age).map(drop)
}

/// The expected outcome of a held lock.
pub(super) const HELD: &str = "busy; the lock file is unchanged";
/// The expected outcome of a stale lock.
pub(super) const STALE: &str = "acquired (the stale lock is broken), then released";

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// Whose lock a scene plants.
#[derive(Debug, Clone, Copy)]
enum Host {
    /// This host's kernel name.
    Same,
    /// A name that is not this host's.
    Other,
}

/// Which pid the planted record carries.
#[derive(Debug, Clone, Copy)]
enum Holder {
    /// A process that has exited.
    Dead,
    /// The harness: alive for the whole case.
    Live,
    Pid(u32),
}

/// One planted valid record and the verdict it must get.
struct Scene {
    id: &'static str,
    requirement: &'static str,
    host: Host,
    holder: Holder,
    age: Duration,
    stale: bool,
}

const SCENES: &[Scene] = &[
    Scene {
        id: "same-host-dead-held-at-29.5s",
        requirement: "A same-host lock whose pid is dead is held while its age is at most 30 s.",
        host: Host::Same,
        holder: Holder::Dead,
        age: ms(29_500),
        stale: false,
    },
    Scene {
        id: "same-host-dead-stale-at-30.5s",
        requirement: "A same-host lock whose pid is dead is stale once its age exceeds 30 s.",
        host: Host::Same,
        holder: Holder::Dead,
        age: ms(30_500),
        stale: true,
    },
    Scene {
        id: "same-host-dead-held-at-5s",
        requirement: "A dead holder's same-host lock is not stale before 30 s: death alone does not make a lock stale.",
        host: Host::Same,
        holder: Holder::Dead,
        age: ms(5_000),
        stale: false,
    },
    Scene {
        id: "same-host-live-held-after-1h",
        requirement: "A same-host lock whose pid is alive is held whatever its age.",
        host: Host::Same,
        holder: Holder::Live,
        age: ms(3_600_000),
        stale: false,
    },
    Scene {
        id: "other-host-held-at-299.5s",
        requirement: "Another host's lock is held while its age is at most 300 s.",
        host: Host::Other,
        holder: Holder::Dead,
        age: ms(299_500),
        stale: false,
    },
    Scene {
        id: "other-host-stale-at-300.5s",
        requirement: "Another host's lock is stale once its age exceeds 300 s.",
        host: Host::Other,
        holder: Holder::Dead,
        age: ms(300_500),
        stale: true,
    },
    Scene {
        id: "other-host-live-pid-not-consulted",
        requirement: "Another host's lock is stale after 300 s even when its pid names a live local process: liveness is consulted only for this host's records.",
        host: Host::Other,
        holder: Holder::Live,
        age: ms(300_500),
        stale: true,
    },
    Scene {
        id: "pid-0-is-dead",
        requirement: "A same-host record with pid 0 counts as dead and is never probed: stale after 30 s.",
        host: Host::Same,
        holder: Holder::Pid(0),
        age: ms(30_500),
        stale: true,
    },
    Scene {
        id: "pid-2147483648-is-dead",
        requirement: "A same-host record with pid 2^31 counts as dead and is never probed: stale after 30 s.",
        host: Host::Same,
        holder: Holder::Pid(1 << 31),
        age: ms(30_500),
        stale: true,
    },
    Scene {
        id: "pid-4294967295-is-dead",
        requirement: "A same-host record with pid 2^32-1 (-1 as a pid_t) counts as dead and is never probed: stale after 30 s.",
        host: Host::Same,
        holder: Holder::Pid(u32::MAX),
        age: ms(30_500),
        stale: true,
    },
];

pub fn cases() -> Vec<Case> {
    let mut all: Vec<Case> = SCENES.iter().map(scene_case).collect();
    all.extend([
        malformed_case(ms(299_500), false),
        malformed_case(ms(300_500), true),
        future_timestamp_case(ms(30_500), true),
        future_timestamp_case(Duration::ZERO, false),
        eperm_case(),
    ]);
    all
}

fn section_of(scene: &Scene) -> &'static str {
    match scene.holder {
        Holder::Pid(_) => "§6.3",
        _ => "§6.4",
    }
}

fn scene_case(scene: &'static Scene) -> Case {
    let host = match scene.host {
        Host::Same => "this host",
        Host::Other => "another host",
    };
    let pid = match scene.holder {
        Holder::Dead => "a dead pid".to_string(),
        Holder::Live => "the harness's live pid".to_string(),
        Holder::Pid(p) => format!("pid {p}"),
    };
    let verdict = if scene.stale { STALE } else { HELD };
    Case {
        id: format!("staleness::{}", scene.id),
        section: section_of(scene),
        level: Level::Must,
        requirement: scene.requirement.into(),
        expected: format!(
            "record of {host} with {pid}, {:.1} s old: {verdict}",
            scene.age.as_secs_f64()
        ),
        exclusive: false,
        run: Box::new(move |ctx| timed(ctx, |ctx| run_scene(ctx, scene))),
    }
}

fn run_scene(ctx: &mut Ctx, scene: &Scene) -> Result<(), Problem> {
    let host = match scene.host {
        Host::Same => craft::local_host()?,
        Host::Other => craft::other_host(),
    };
    let pid = match scene.holder {
        Holder::Dead => craft::dead_pid()?,
        Holder::Live => craft::live_pid(),
        Holder::Pid(p) => p,
    };
    let path = ctx.lock_path();
    plant_record(&path, pid, &host, scene.age)?;
    let what = format!(
        "record of {host} (pid {pid}) {:.1} s old",
        scene.age.as_secs_f64()
    );
    if scene.stale {
        expect_stale(ctx, Via::Main, &path, &what)
    } else {
        expect_held(ctx, Via::Main, &path, &what)
    }
}

/// A torn record: the first 50 bytes of a same-host record, mtime `age` old.
fn malformed_case(age: Duration, stale: bool) -> Case {
    let (id, requirement) = if stale {
        (
            "staleness::malformed-stale-at-300.5s",
            "A malformed lock file is stale once its mtime is more than 300 s old.",
        )
    } else {
        (
            "staleness::malformed-held-at-299.5s",
            "A malformed lock file is held while its mtime is at most 300 s old, whatever it claims.",
        )
    };
    Case {
        id: id.into(),
        section: "§4.4",
        level: Level::Must,
        requirement: requirement.into(),
        expected: format!(
            "50-byte file, mtime {:.1} s old: {}",
            age.as_secs_f64(),
            if stale { STALE } else { HELD }
        ),
        exclusive: false,
        run: Box::new(move |ctx| {
            timed(ctx, |ctx| {
                let path = ctx.lock_path();
                let r = craft::record(craft::dead_pid()?, &craft::local_host()?, 0);
                let torn = &record::encode(&r)[..50];
                craft::plant(&path, torn, craft::now_ns() - age.as_nanos() as i128)?;
                let what = format!("50-byte file, mtime {:.1} s old", age.as_secs_f64());
                if stale {
                    expect_stale(ctx, Via::Main, &path, &what)
                } else {
                    expect_held(ctx, Via::Main, &path, &what)
                }
            })
        }),
    }
}

/// A dead same-host writer's record stamped an hour ahead, with mtime `age` old.
fn future_timestamp_case(age: Duration, stale: bool) -> Case {
    let (id, requirement) = if stale {
        (
            "staleness::future-timestamp-expires-by-mtime",
            "A record whose timestamp is in the future ages from its mtime: a dead same-host writer's lock with mtime 30.5 s old is stale.",
        )
    } else {
        (
            "staleness::future-timestamp-fresh-mtime-held",
            "A record whose timestamp is in the future and whose mtime is now has age 0: held.",
        )
    };
    Case {
        id: id.into(),
        section: "§6.2",
        level: Level::Must,
        requirement: requirement.into(),
        expected: format!(
            "timestamp now + 1 h, dead pid, mtime {:.1} s old: {}",
            age.as_secs_f64(),
            if stale { STALE } else { HELD }
        ),
        exclusive: false,
        run: Box::new(move |ctx| {
            let path = ctx.lock_path();
            let now = craft::now_ns();
            let r = craft::record(
                craft::dead_pid()?,
                &craft::local_host()?,
                now + 3600 * SECOND,
            );
            craft::plant(&path, &record::encode(&r), now - age.as_nanos() as i128)?;
            let what = format!(
                "record stamped 1 h ahead, mtime {:.1} s old",
                age.as_secs_f64()
            );
            if stale {
                expect_stale(ctx, Via::Main, &path, &what)
            } else {
                expect_held(ctx, Via::Main, &path, &what)
            }
        }),
    }
}

/// A live process of another user must count as alive (kill gives EPERM).
fn eperm_case() -> Case {
    Case {
        id: "staleness::eperm-is-alive".into(),
        section: "§6.3",
        level: Level::Must,
        requirement: "A same-host pid that kill(2) answers with EPERM (a live process of another user) is alive: its lock is held whatever its age.".into(),
        expected: format!("record of this host with another user's live pid, 1 h old: {HELD}"),
        exclusive: false,
        run: Box::new(run_eperm),
    }
}

/// The uid and gid a root harness runs the adapter as for the EPERM case.
const NOBODY: (u32, u32) = (65534, 65534);

fn run_eperm(ctx: &mut Ctx) -> Result<(), Problem> {
    if nix::unistd::geteuid().is_root() {
        eperm_as_nobody(ctx)
    } else {
        eperm_against_other_users_process(ctx)
    }
}

/// Root harness: an adapter running as nobody probes the harness's own pid.
///
/// The whole scene is set before that adapter exists, in a directory inside
/// the case's own (so inside the run's scratch root, which a signal's
/// clean-up and the runner remove): the lock file is planted, then the
/// directory is given to nobody through its descriptor, then the adapter
/// starts. From then on the harness only looks.
fn eperm_as_nobody(ctx: &mut Ctx) -> Result<(), Problem> {
    let dir = nobody_dir(ctx)?;
    let path = dir.join("data.rvf.lock");
    plant_record(
        &path,
        craft::live_pid(),
        &craft::local_host()?,
        ms(3_600_000),
    )?;
    give_to_nobody(ctx, &dir)?;
    let adapter = ctx
        .spawn_with(|spec| spec.user = Some(NOBODY))
        .map_err(|p| match p {
            Problem::Fail(_) | Problem::Unimplemented(_) => p,
            other => Problem::Skip(format!(
                "the adapter cannot start as uid {} ({})",
                NOBODY.0,
                other.detail()
            )),
        })?;
    let what = format!(
        "adapter as uid {}; record of this host with root's live pid {}, 1 h old",
        NOBODY.0,
        craft::live_pid()
    );
    expect_held(ctx, Via::Extra(adapter), &path, &what)
}

/// A new directory for `NOBODY`'s lock, inside the case's directory: made
/// with mkdir(2), which never reuses what stands at the name.
fn nobody_dir(ctx: &Ctx) -> Result<PathBuf, Problem> {
    let dir = ctx.path(&format!("uid-{}", NOBODY.0));
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(|e| Problem::Harness(format!("mkdir {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Let `NOBODY` reach and own `dir`: the case's directory becomes
/// searchable by others (the run's scratch root already is), and `dir`
/// becomes nobody's, both changed through descriptors opened without
/// following a symlink.
fn give_to_nobody(ctx: &Ctx, dir: &Path) -> Result<(), Problem> {
    let fail = |what: &Path, e: std::io::Error| {
        Problem::Harness(format!(
            "a directory for uid {}: {}: {e}",
            NOBODY.0,
            what.display()
        ))
    };
    let case = scratch::open_dir(&ctx.dir).map_err(|e| fail(&ctx.dir, e))?;
    let mode = case
        .metadata()
        .map_err(|e| fail(&ctx.dir, e))?
        .permissions()
        .mode();
    case.set_permissions(fs::Permissions::from_mode((mode & 0o7777) | 0o711))
        .map_err(|e| fail(&ctx.dir, e))?;
    let own = scratch::open_dir(dir).map_err(|e| fail(dir, e))?;
    std::os::unix::fs::fchown(&own, Some(NOBODY.0), Some(NOBODY.1)).map_err(|e| fail(dir, e))
}

/// Unprivileged harness: pid 1, when it belongs to another user.
fn eperm_against_other_users_process(ctx: &mut Ctx) -> Result<(), Problem> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let owner = std::fs::metadata("/proc/1")
        .map_err(|e| {
            Problem::Skip(format!(
                "no live process of another user found: /proc/1: {e}"
            ))
        })?
        .uid();
    if owner == me {
        return Err(Problem::Skip(
            "no live process of another user found (pid 1 is the harness's user's)".into(),
        ));
    }
    let path = ctx.lock_path();
    plant_record(&path, 1, &craft::local_host()?, ms(3_600_000))?;
    let what = format!("record of this host with pid 1 (uid {owner}), 1 h old");
    expect_held(ctx, Via::Main, &path, &what)
}
