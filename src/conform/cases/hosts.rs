//! Cases: host identity (PROTOCOL.md §5). The local name must be the
//! kernel's (gethostname(2)), not `$HOSTNAME`; a name longer than 62 bytes is
//! stored cut to 62 bytes and recognised as this host's when read back.
//!
//! The `$HOSTNAME` cases start a dedicated adapter with a wrong `$HOSTNAME`.
//! The long-name cases start one in a new UTS namespace whose host name is 64
//! bytes long (the most Linux allows), via `unshare --uts` (or, unprivileged,
//! `unshare --user --map-root-user --uts`), and are skipped where neither works.

use std::process::{Command as Process, Stdio};
use std::sync::OnceLock;

use super::craft;
use super::layout::describe_name_field;
use super::staleness::{expect_stale, ms, plant_record, release, try_acquire, Via, STALE};
use crate::conform::case::{ensure, Case, Ctx, Level, Problem};
use crate::conform::client::Spec;
use crate::conform::wire::Outcome;
use rvlf_lock::record::{self, offset, Hostname};

/// The `$HOSTNAME` the env cases give their adapter.
const WRONG_ENV_NAME: &str = "rvlf-wrong-hostname";

/// A 64-byte host name: 62 bytes a writer keeps, then "XY" it must drop.
const LONG_NAME: &str = "rvlf-conformance-long-host-name-0123456789-abcdefghijklmnopqrsXY";
const _: () = assert!(
    LONG_NAME.len() == 64,
    "Linux host names are at most 64 bytes"
);

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "hosts::kernel-name-despite-env".into(),
            section: "§5.1",
            level: Level::Must,
            requirement: "The local host name comes from gethostname(2), not $HOSTNAME: a same-host record is judged as this host's even when $HOSTNAME says otherwise.".into(),
            expected: format!("adapter run with HOSTNAME={WRONG_ENV_NAME}; record of this host (kernel name), dead pid, 30.5 s old: {STALE}"),
            exclusive: false,
            run: Box::new(run_env_recognised),
        },
        Case {
            id: "hosts::written-name-is-the-kernels".into(),
            section: "§5.1",
            level: Level::Must,
            requirement: "A writer stores the kernel's host name, not $HOSTNAME.".into(),
            expected: format!("adapter run with HOSTNAME={WRONG_ENV_NAME}: acquired; bytes 0x08-0x47 hold the kernel's name, then zeros"),
            exclusive: false,
            run: Box::new(run_env_written),
        },
        Case {
            id: "hosts::long-name-stored-truncated".into(),
            section: "§3.2",
            level: Level::Must,
            requirement: "On a host whose name is 64 bytes long, a writer stores its first 62 bytes followed by zero bytes.".into(),
            expected: "adapter in a UTS namespace named with 64 bytes: acquired; the host name field holds the first 62 bytes, then two zero bytes".into(),
            exclusive: false,
            run: Box::new(run_long_written),
        },
        Case {
            id: "hosts::long-name-recognised-as-this-host".into(),
            section: "§5.2",
            level: Level::Must,
            requirement: "On a host whose name is 64 bytes long, a record holding its first 62 bytes is this host's (the local name is cut to 62 bytes before comparing).".into(),
            expected: format!("adapter in a UTS namespace named with 64 bytes; record of that name cut to 62 bytes, dead pid, 30.5 s old: {STALE}"),
            exclusive: false,
            run: Box::new(run_long_recognised),
        },
    ]
}

/// Start an adapter whose environment says `HOSTNAME=rvlf-wrong-hostname`.
fn spawn_with_wrong_env(ctx: &mut Ctx) -> Result<usize, Problem> {
    ctx.spawn_with(|spec| {
        spec.env.retain(|(k, _)| k != "HOSTNAME");
        spec.env.push(("HOSTNAME".into(), WRONG_ENV_NAME.into()));
    })
}

fn run_env_recognised(ctx: &mut Ctx) -> Result<(), Problem> {
    let host = craft::local_host()?;
    if host.as_bytes() == WRONG_ENV_NAME.as_bytes() {
        return Err(Problem::Skip(format!(
            "this host is called {WRONG_ENV_NAME}"
        )));
    }
    // The scene is set before the adapter exists; a stale lock only grows
    // staler while it starts.
    let path = ctx.lock_path();
    plant_record(&path, craft::dead_pid()?, &host, ms(30_500))?;
    let adapter = spawn_with_wrong_env(ctx)?;
    let what =
        format!("HOSTNAME={WRONG_ENV_NAME}; record of {host} (this host), dead pid, 30.5 s old");
    expect_stale(ctx, Via::Extra(adapter), &path, &what)
}

fn run_env_written(ctx: &mut Ctx) -> Result<(), Problem> {
    let host = craft::local_host()?;
    let adapter = spawn_with_wrong_env(ctx)?;
    let field = written_name_field(ctx, Via::Extra(adapter))?;
    expect_name_field(&field, &host)
}

/// Take a free lock through `via`, read the host name field it wrote while
/// held, and release.
fn written_name_field(ctx: &mut Ctx, via: Via) -> Result<Vec<u8>, Problem> {
    let path = ctx.lock_path();
    let outcome = try_acquire(ctx, via, &path)?;
    if !matches!(outcome, Outcome::Acquired { .. }) {
        craft::expect_acquired(&outcome, "try-acquire on a free path")?;
    }
    let read = craft::read_lock(&path);
    release(ctx, via, &path)?;
    craft::expect_acquired(&outcome, "try-acquire on a free path")?;
    let bytes = read?.ok_or_else(|| {
        Problem::Fail("acquired, but nothing stands at the lock path while it is held".into())
    })?;
    let end = offset::HOSTNAME + record::HOSTNAME_FIELD;
    bytes
        .get(offset::HOSTNAME..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            Problem::Fail(format!(
                "the lock file is {} bytes: too short to hold the host name field",
                bytes.len()
            ))
        })
}

/// Fail unless `field` is `host` followed by zero bytes.
fn expect_name_field(field: &[u8], host: &Hostname) -> Result<(), Problem> {
    let mut want = host.as_bytes().to_vec();
    want.resize(record::HOSTNAME_FIELD, 0);
    ensure(field == want.as_slice(), || {
        format!(
            "expected the host name field to hold {:?} ({} bytes) then zeros, found {}",
            host.to_string(),
            host.len(),
            describe_name_field(field)
        )
    })
}

// ---------------------------------------------------------------------------
// Long host names, in a UTS namespace
// ---------------------------------------------------------------------------

/// The `unshare` prefixes tried, most direct first.
const UNSHARE: [&[&str]; 2] = [
    &["unshare", "--uts", "--"],
    &["unshare", "--user", "--map-root-user", "--uts", "--"],
];

/// Sets the namespace's host name to `$1`, then runs the rest of its argv,
/// which [`Spec::wrapper`] ends with `sh -c COMMAND`.
const SET_NAME_THEN_EXEC: &str = "hostname \"$1\" && shift && exec \"$@\"";

/// A wrapper that runs the adapter in a new UTS namespace named [`LONG_NAME`],
/// or why this machine cannot make one. Probed once per run.
fn uts_wrapper() -> &'static Result<Vec<String>, String> {
    static WRAPPER: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    WRAPPER.get_or_init(probe_uts_wrapper)
}

fn probe_uts_wrapper() -> Result<Vec<String>, String> {
    let mut tried = Vec::new();
    for prefix in UNSHARE {
        let mut wrapper: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        wrapper.extend(["sh", "-c", SET_NAME_THEN_EXEC, "sh", LONG_NAME].map(String::from));
        // Exactly as an adapter would be started, with `hostname` as the command.
        let mut argv = wrapper.clone();
        argv.extend(["sh", "-c", "hostname"].map(String::from));
        let result = Process::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() && out.stdout.trim_ascii() == LONG_NAME.as_bytes() => {
                return Ok(wrapper)
            }
            Ok(out) => tried.push(format!(
                "`{}`: {} {}",
                prefix.join(" "),
                out.status,
                String::from_utf8_lossy(out.stderr.trim_ascii())
            )),
            Err(e) => tried.push(format!("`{}`: {e}", prefix.join(" "))),
        }
    }
    Err(format!(
        "cannot run the adapter in a UTS namespace with a 64-byte host name: {}",
        tried.join("; ")
    ))
}

/// Start an adapter in a UTS namespace named [`LONG_NAME`], or skip.
fn spawn_long_named(ctx: &mut Ctx) -> Result<usize, Problem> {
    let wrapper = uts_wrapper().clone().map_err(Problem::Skip)?;
    ctx.spawn_with(|spec: &mut Spec| spec.wrapper = wrapper)
}

fn run_long_written(ctx: &mut Ctx) -> Result<(), Problem> {
    let adapter = spawn_long_named(ctx)?;
    let field = written_name_field(ctx, Via::Extra(adapter))?;
    expect_name_field(&field, &Hostname::truncated(LONG_NAME.as_bytes()))
}

fn run_long_recognised(ctx: &mut Ctx) -> Result<(), Problem> {
    // The scene is set before the adapter exists, as above.
    let stored = Hostname::truncated(LONG_NAME.as_bytes());
    let path = ctx.lock_path();
    plant_record(&path, craft::dead_pid()?, &stored, ms(30_500))?;
    let adapter = spawn_long_named(ctx)?;
    let what = format!(
        "host name {LONG_NAME:?} (64 bytes); record of its first 62 bytes, dead pid, 30.5 s old"
    );
    expect_stale(ctx, Via::Extra(adapter), &path, &what)
}
