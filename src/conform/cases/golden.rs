//! Cases: the golden lock files (PROTOCOL.md §3-§4) and the optional codec
//! and judge verbs.
//!
//! `golden::<id>` plants each golden fixture at the lock path and observes the
//! verdict through try-acquire. A valid fixture is a record of another host
//! written long ago (or, when its timestamp is recent or ahead, with an mtime
//! over 300 s old), so an implementation that decodes it breaks it. An invalid
//! fixture is malformed: with a fresh mtime it MUST be held and left alone
//! (§4.4), and with an mtime 300.5 s old it MUST be breakable.
//!
//! `decode::<id>`, `encode::worked-example` and `judge::*` run only when the
//! adapter claims the `decode`, `encode` or `judge` feature.

use super::craft::{self, SECOND};
use super::staleness::{expect_held, expect_stale, Via, HELD, STALE};
use crate::conform::case::{ensure, fail, Case, Ctx, Level, Problem};
use crate::conform::wire::{unhex, Command, Fields, JudgeArgs, Outcome};
use crate::golden::{self, Class, Expect, Fixture, BASE_TIMESTAMP_NS};
use rvlf_lock::record::{self, hex, Hostname, Record, WriterId};

/// Age past which every lock is stale, whatever its kind: 300 s + 0.5 s.
const PAST_ALL_THRESHOLDS_NS: i128 = 300 * SECOND + SECOND / 2;

pub fn cases() -> Vec<Case> {
    let fixtures = match golden::catalogue() {
        Ok(f) => f,
        Err(e) => return vec![broken_catalogue(e.to_string())],
    };
    let mut all: Vec<Case> = fixtures.iter().cloned().map(planted_case).collect();
    all.extend(fixtures.iter().cloned().map(decode_case));
    if let Some(worked) = fixtures.iter().find(|f| f.id == "worked-example") {
        all.push(encode_case(worked.clone()));
    }
    all.extend(JUDGE_SCENES.iter().map(judge_case));
    all
}

/// Stands in for the golden cases when the catalogue itself does not build.
fn broken_catalogue(error: String) -> Case {
    Case {
        id: "golden::catalogue".into(),
        section: "§4.2",
        level: Level::Must,
        requirement: "The golden fixtures can be built.".into(),
        expected: "the catalogue builds".into(),
        exclusive: false,
        run: Box::new(move |_| Err(Problem::Harness(format!("golden catalogue: {error}")))),
    }
}

fn level_of(class: Class) -> Level {
    match class {
        Class::Valid | Class::Invalid => Level::Must,
        Class::ImplementationDefined => Level::May,
    }
}

// ---------------------------------------------------------------------------
// golden::<id>: the fixture planted at the lock path
// ---------------------------------------------------------------------------

fn planted_case(f: Fixture) -> Case {
    let (requirement, expected) = match f.class {
        Class::Valid => (
            format!(
                "A valid record is decoded and judged by its fields: {}.",
                f.description
            ),
            format!("another host's record older than 300 s (by its timestamp, or by an mtime 300.5 s old where the timestamp is recent or ahead): {STALE}"),
        ),
        Class::Invalid => (
            format!(
                "A malformed file is held until its mtime is over 300 s old: {}.",
                f.description
            ),
            format!("fresh mtime: {HELD}; mtime 300.5 s old: {STALE}"),
        ),
        Class::ImplementationDefined => (
            format!(
                "Accepting this record is IMPLEMENTATION-DEFINED: {}.",
                f.description
            ),
            "busy with the file unchanged, or acquired then released".to_string(),
        ),
    };
    Case {
        id: format!("golden::{}", f.id),
        section: f.rule,
        level: level_of(f.class),
        requirement,
        expected,
        exclusive: false,
        run: Box::new(move |ctx| match f.class {
            Class::Valid => run_valid(ctx, &f),
            Class::Invalid => run_invalid(ctx, &f),
            Class::ImplementationDefined => run_implementation_defined(ctx, &f),
        }),
    }
}

fn run_valid(ctx: &mut Ctx, f: &Fixture) -> Result<(), Problem> {
    let Expect::Record(r) = &f.expect else {
        return Err(Problem::Harness(format!(
            "{} is valid but declares an error",
            f.id
        )));
    };
    refuse_own_host(r)?;
    let now = craft::now_ns();
    let timestamp = i128::from(r.timestamp_ns);
    // Old records age by their timestamp, so a fresh mtime shows they were
    // decoded; a recent or future timestamp is bounded by an old mtime (§6.2).
    let (mtime, how) = if timestamp < now - PAST_ALL_THRESHOLDS_NS {
        (now, "mtime now")
    } else {
        (now - PAST_ALL_THRESHOLDS_NS, "mtime 300.5 s old")
    };
    let path = ctx.lock_path();
    craft::plant(&path, &f.bytes, mtime)?;
    let what = format!("valid fixture {} ({how})", f.file());
    expect_stale(ctx, Via::Main, &path, &what)
}

/// Skip a fixture whose host name happens to be this host's: its verdict
/// would then depend on the liveness of its pid here.
fn refuse_own_host(r: &Record) -> Result<(), Problem> {
    if r.hostname == craft::local_host()? {
        return Err(Problem::Skip(format!(
            "this host is called {:?}, like the fixture's writer",
            r.hostname.to_string()
        )));
    }
    Ok(())
}

fn run_invalid(ctx: &mut Ctx, f: &Fixture) -> Result<(), Problem> {
    let now = craft::now_ns();
    let fresh = ctx.lock_path();
    craft::plant(&fresh, &f.bytes, now)?;
    let what = format!("malformed fixture {} with mtime now", f.file());
    expect_held(ctx, Via::Main, &fresh, &what)?;
    let aged = ctx.path("aged.rvf.lock");
    craft::plant(&aged, &f.bytes, now - PAST_ALL_THRESHOLDS_NS)?;
    let what = format!("malformed fixture {} with mtime 300.5 s old", f.file());
    expect_stale(ctx, Via::Main, &aged, &what)
}

fn run_implementation_defined(ctx: &mut Ctx, f: &Fixture) -> Result<(), Problem> {
    let path = ctx.lock_path();
    craft::plant(&path, &f.bytes, craft::now_ns())?;
    let before = craft::snapshot(&path)?;
    match ctx.try_acquire(&path)? {
        Outcome::Acquired { .. } => ctx.release(&path).map(drop),
        Outcome::Busy => craft::unchanged(&path, &before),
        Outcome::Unimplemented => Err(Problem::Unimplemented(
            "try-acquire is unimplemented".into(),
        )),
        other => Err(Problem::Fail(format!(
            "{}: expected acquired or busy, got {}",
            f.file(),
            craft::describe(&other)
        ))),
    }
}

// ---------------------------------------------------------------------------
// decode::<id> and encode::worked-example
// ---------------------------------------------------------------------------

/// Skip unless the main adapter claims `feature`.
fn require_feature(ctx: &mut Ctx, feature: &str) -> Result<(), Problem> {
    if ctx.adapter()?.claims(feature) {
        Ok(())
    } else {
        Err(Problem::Skip(format!(
            "the adapter does not claim `{feature}`"
        )))
    }
}

/// A decoded record's fields as a record, or what is wrong with them.
fn fields_record(fields: &Fields) -> Result<Record, Problem> {
    fields
        .to_record()
        .map_err(|e| Problem::Fail(format!("decoded fields are not a record: {e}")))
}

fn decode_case(f: Fixture) -> Case {
    let expected = match &f.expect {
        Expect::Record(r) if f.class == Class::ImplementationDefined => format!(
            "decoded as pid {}, host {:?}, or invalid (the reference decodes it)",
            r.pid,
            r.hostname.to_string()
        ),
        Expect::Record(r) => format!(
            "decoded: pid {}, host {:?}, timestamp {}, writer id {}, version {}",
            r.pid,
            r.hostname.to_string(),
            r.timestamp_ns,
            r.writer_id,
            r.version
        ),
        Expect::Error(e) => format!("invalid, code `{}`", e.code()),
    };
    Case {
        id: format!("decode::{}", f.id),
        section: f.rule,
        level: level_of(f.class),
        requirement: format!("decode of golden file {}: {}.", f.file(), f.description),
        expected,
        exclusive: false,
        run: Box::new(move |ctx| run_decode(ctx, &f)),
    }
}

fn run_decode(ctx: &mut Ctx, f: &Fixture) -> Result<(), Problem> {
    require_feature(ctx, "decode")?;
    let outcome = ctx.call(Command::Decode {
        bytes: hex(&f.bytes),
    })?;
    let lenient = f.class == Class::ImplementationDefined;
    match (&f.expect, &outcome) {
        (_, Outcome::Unimplemented) => Err(Problem::Unimplemented(
            "decode is claimed but unimplemented".into(),
        )),
        (Expect::Record(want), Outcome::Decoded { record }) => {
            let got = fields_record(record)?;
            ensure(&got == want, || {
                format!("expected {}, decoded {}", show(want), show(&got))
            })
        }
        (Expect::Record(_), Outcome::Invalid { .. }) if lenient => Ok(()),
        (Expect::Error(want), Outcome::Invalid { code }) => ensure(code == want.code(), || {
            format!(
                "expected invalid with code `{}` ({want}), got code `{code}`",
                want.code()
            )
        }),
        (Expect::Error(want), Outcome::Decoded { record }) => Err(Problem::Fail(format!(
            "expected invalid with code `{}` ({want}), but it decoded: {}",
            want.code(),
            fields_record(record).map_or_else(|p| p.detail().to_string(), |r| show(&r))
        ))),
        (Expect::Record(want), other) => Err(Problem::Fail(format!(
            "expected decoded {}, got {}",
            show(want),
            craft::describe(other)
        ))),
        (Expect::Error(want), other) => Err(Problem::Fail(format!(
            "expected invalid with code `{}`, got {}",
            want.code(),
            craft::describe(other)
        ))),
    }
}

fn show(r: &Record) -> String {
    format!(
        "pid {}, host {:?}, timestamp {}, writer id {}, version {}",
        r.pid,
        r.hostname.to_string(),
        r.timestamp_ns,
        r.writer_id,
        r.version
    )
}

fn encode_case(worked: Fixture) -> Case {
    Case {
        id: "encode::worked-example".into(),
        section: "§3.3",
        level: Level::Must,
        requirement: "Encoding the worked example's fields gives exactly its 104 bytes.".into(),
        expected: "encoded: the bytes of §3.3, checksum c1 6d b6 b2".into(),
        exclusive: false,
        run: Box::new(move |ctx| run_encode(ctx, &worked)),
    }
}

fn run_encode(ctx: &mut Ctx, worked: &Fixture) -> Result<(), Problem> {
    require_feature(ctx, "encode")?;
    let Expect::Record(r) = &worked.expect else {
        return Err(Problem::Harness(
            "the worked example declares an error".into(),
        ));
    };
    let got = match ctx.call(Command::Encode {
        record: Fields::from(r),
    })? {
        Outcome::Encoded { bytes } => {
            unhex(&bytes).map_err(|e| Problem::Fail(format!("encoded bytes are not hex: {e}")))?
        }
        Outcome::Unimplemented => {
            return Err(Problem::Unimplemented(
                "encode is claimed but unimplemented".into(),
            ))
        }
        other => return fail(format!("expected encoded, got {}", craft::describe(&other))),
    };
    if got == worked.bytes {
        return Ok(());
    }
    let at = got
        .iter()
        .zip(&worked.bytes)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(worked.bytes.len()));
    let crc32c_note = match got.get(..record::RECORD_LEN) {
        Some(b)
            if b[..0x64] == worked.bytes[..0x64]
                && b[0x64..] == record::crc32c(&b[..0x64]).to_le_bytes() =>
        {
            " (its checksum is the CRC32C of the record, not the CRC-32/IEEE)"
        }
        _ => "",
    };
    fail(format!(
        "expected the 104 bytes of §3.3, got {} bytes differing first at offset {at:#04x}{crc32c_note}",
        got.len()
    ))
}

// ---------------------------------------------------------------------------
// judge::*: the staleness rule through the optional `judge` verb
// ---------------------------------------------------------------------------

/// A judge request's scene, on a fixed clock: the record (with `pid`) and its
/// mtime are `age_ms` before now; `liveness` is what kill(pid, 0) would say.
struct JudgeScene {
    id: &'static str,
    requirement: &'static str,
    /// The local name the request gives, and the name the record stores.
    local: &'static [u8],
    stored: &'static [u8],
    pid: u32,
    liveness: &'static str,
    age_ms: i128,
    stale: bool,
}

const JUDGE_SCENES: &[JudgeScene] = &[
    JudgeScene {
        id: "same-host-dead-held-at-29.5s",
        requirement: "judge: a same-host lock with a dead pid is held at 29.5 s.",
        local: JUDGE_LOCAL,
        stored: JUDGE_LOCAL,
        pid: 4242,
        liveness: "dead",
        age_ms: 29_500,
        stale: false,
    },
    JudgeScene {
        id: "same-host-dead-stale-at-30.5s",
        requirement: "judge: a same-host lock with a dead pid is stale at 30.5 s.",
        local: JUDGE_LOCAL,
        stored: JUDGE_LOCAL,
        pid: 4242,
        liveness: "dead",
        age_ms: 30_500,
        stale: true,
    },
    JudgeScene {
        id: "other-host-held-at-299.5s",
        requirement: "judge: another host's lock is held at 299.5 s.",
        local: JUDGE_LOCAL,
        stored: JUDGE_OTHER,
        pid: 4242,
        liveness: "dead",
        age_ms: 299_500,
        stale: false,
    },
    JudgeScene {
        id: "other-host-stale-at-300.5s",
        requirement: "judge: another host's lock is stale at 300.5 s.",
        local: JUDGE_LOCAL,
        stored: JUDGE_OTHER,
        pid: 4242,
        liveness: "dead",
        age_ms: 300_500,
        stale: true,
    },
    JudgeScene {
        id: "same-host-eperm-held-after-1h",
        requirement: "judge: a same-host lock whose pid answers EPERM is alive, so held after an hour.",
        local: JUDGE_LOCAL,
        stored: JUDGE_LOCAL,
        pid: 4242,
        liveness: "eperm",
        age_ms: 3_600_000,
        stale: false,
    },
    JudgeScene {
        id: "long-local-name-cut-before-compare",
        requirement: "judge: a 64-byte local name is cut to 62 bytes before comparing, so a record storing those 62 bytes is this host's: with a dead pid, stale at 30.5 s.",
        local: JUDGE_LONG_LOCAL,
        stored: JUDGE_LONG_LOCAL.split_at(record::HOSTNAME_MAX).0,
        pid: 4242,
        liveness: "dead",
        age_ms: 30_500,
        stale: true,
    },
    JudgeScene {
        id: "same-host-pid-0-never-probed",
        requirement: "judge: pid 0 names no process, so it is dead whatever kill(0, 0) would say: a same-host lock with pid 0 is stale at 30.5 s.",
        local: JUDGE_LOCAL,
        stored: JUDGE_LOCAL,
        pid: 0,
        liveness: "alive",
        age_ms: 30_500,
        stale: true,
    },
];

/// The judge cases' clock: 10 000 s after the worked example.
const JUDGE_NOW_NS: i128 = BASE_TIMESTAMP_NS as i128 + 10_000 * SECOND;
const JUDGE_LOCAL: &[u8] = b"judge-local-host";
const JUDGE_OTHER: &[u8] = b"judge-other-host";
/// 64 bytes, the longest host name Linux allows.
const JUDGE_LONG_LOCAL: &[u8] = b"judge-local-host-with-a-name-of-sixty-four-bytes-0123456789abcXY";
const _: () = assert!(JUDGE_LONG_LOCAL.len() == 64);

fn judge_case(scene: &'static JudgeScene) -> Case {
    Case {
        id: format!("judge::{}", scene.id),
        section: "§6.4",
        level: Level::Must,
        requirement: scene.requirement.into(),
        expected: format!("judged stale: {}", scene.stale),
        exclusive: false,
        run: Box::new(move |ctx| run_judge(ctx, scene)),
    }
}

fn run_judge(ctx: &mut Ctx, scene: &JudgeScene) -> Result<(), Problem> {
    require_feature(ctx, "judge")?;
    let written = JUDGE_NOW_NS - scene.age_ms * (SECOND / 1000);
    let r = Record {
        pid: scene.pid,
        hostname: Hostname::truncated(scene.stored),
        timestamp_ns: u64::try_from(written).unwrap_or(0),
        writer_id: WriterId([7; 16]),
        version: record::VERSION,
    };
    let args = JudgeArgs {
        bytes: hex(&record::encode(&r)),
        mtime_ns: written.to_string(),
        now_ns: JUDGE_NOW_NS.to_string(),
        local_host: hex(scene.local),
        liveness: scene.liveness.into(),
    };
    match ctx.call(Command::Judge(args))? {
        Outcome::Judged { stale } => ensure(stale == scene.stale, || {
            format!("expected stale: {}, judged stale: {stale}", scene.stale)
        }),
        Outcome::Unimplemented => Err(Problem::Unimplemented(
            "judge is claimed but unimplemented".into(),
        )),
        other => fail(format!("expected judged, got {}", craft::describe(&other))),
    }
}
