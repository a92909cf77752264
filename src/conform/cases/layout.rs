//! Cases: the record a writer publishes (PROTOCOL.md §3.1, §3.2). Each case
//! takes the lock at a free path, reads the lock file while the implementation
//! holds it, releases, and then checks one requirement of the layout on the
//! raw bytes, so that a report names exactly the field that is wrong.

use super::craft::{self, SECOND};
use crate::conform::case::{ensure, Case, Ctx, Level, Problem};
use crate::conform::wire::Outcome;
use rvlf_lock::record::{self, offset, RECORD_LEN};

/// What the implementation wrote for one acquisition, and around when.
struct Written {
    bytes: Vec<u8>,
    /// The writer id of the `acquired` reply.
    reply_id: [u8; 16],
    /// The harness clock just before the request and just after the reply.
    before_ns: i128,
    after_ns: i128,
}

/// Take the lock at `name` in the case directory, read what stands at the
/// lock path while it is held, and release it.
fn acquire_and_read(ctx: &mut Ctx, name: &str) -> Result<Written, Problem> {
    let path = ctx.path(name);
    let before_ns = craft::now_ns();
    let outcome = ctx.try_acquire(&path)?;
    let after_ns = craft::now_ns();
    let reply_id = craft::expect_acquired(&outcome, "try-acquire on a free path");
    let bytes = match &outcome {
        Outcome::Acquired { .. } => {
            let read = craft::read_lock(&path);
            ctx.release(&path)?;
            read?
        }
        _ => None,
    };
    let reply_id = reply_id?;
    let bytes = bytes.ok_or_else(|| {
        Problem::Fail("acquired, but nothing stands at the lock path while it is held".into())
    })?;
    Ok(Written {
        bytes,
        reply_id,
        before_ns,
        after_ns,
    })
}

/// `len` bytes at `at`, or a failure saying the file is too short for `field`.
fn field<'a>(bytes: &'a [u8], at: usize, len: usize, field: &str) -> Result<&'a [u8], Problem> {
    bytes.get(at..at + len).ok_or_else(|| {
        Problem::Fail(format!(
            "the lock file is {} bytes: too short to hold the {field} at {at:#04x}",
            bytes.len()
        ))
    })
}

fn u32_at(bytes: &[u8], at: usize, name: &str) -> Result<u32, Problem> {
    let b = field(bytes, at, 4, name)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn case(
    id: &str,
    section: &'static str,
    requirement: &str,
    expected: &str,
    run: impl Fn(&mut Ctx) -> Result<(), Problem> + Send + Sync + 'static,
) -> Case {
    Case {
        id: format!("layout::{id}"),
        section,
        level: Level::Must,
        requirement: requirement.into(),
        expected: expected.into(),
        exclusive: false,
        run: Box::new(run),
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        case(
            "length",
            "§3.1",
            "The record a writer publishes is exactly 104 bytes.",
            "acquired; the lock file is 104 bytes",
            check_length,
        ),
        case(
            "magic",
            "§3.1",
            "The record starts with the magic bytes 46 4C 56 52 (\"FLVR\").",
            "acquired; the lock file starts with 46 4c 56 52",
            check_magic,
        ),
        case(
            "checksum-crc32-ieee",
            "§3.1",
            "The u32 LE at 0x64 is the CRC-32/IEEE (zlib crc32) of bytes 0x00-0x63, not CRC-32C.",
            "acquired; bytes 0x64-0x67 hold the CRC-32/IEEE of the first 100 bytes",
            check_checksum,
        ),
        case(
            "version",
            "§3.2",
            "The record's version (u32 LE at 0x60) is 1.",
            "acquired; the u32 at 0x60 is 1",
            check_version,
        ),
        case(
            "pid",
            "§3.2",
            "The record's pid is the writer's getpid().",
            "acquired; the u32 at 0x04 is the pid the adapter announced in hello",
            check_pid,
        ),
        case(
            "hostname",
            "§3.2",
            "The record's host name is gethostname(2) cut to 62 bytes, followed by zero bytes up to 0x48.",
            "acquired; bytes 0x08-0x47 are this host's name, then zeros",
            check_hostname,
        ),
        case(
            "timestamp",
            "§3.2",
            "The record's timestamp_ns is CLOCK_REALTIME at acquisition.",
            "acquired; the u64 at 0x48 lies within 1 s of the try-acquire request",
            check_timestamp,
        ),
        case(
            "writer-id-matches-reply",
            "§3.2",
            "The writer id in the published record is the one the acquisition reports.",
            "acquired; bytes 0x50-0x5f equal the writer_id of the reply",
            check_writer_id_matches_reply,
        ),
        case(
            "writer-id-fresh",
            "§3.2",
            "Every acquisition gets a fresh writer id.",
            "two acquisitions of one path write (and report) different writer ids",
            check_writer_id_fresh,
        ),
        case(
            "decodes",
            "§3.1",
            "The published record decodes without error (§4.2).",
            "acquired; the lock file decodes as a valid record",
            check_decodes,
        ),
    ]
}

fn check_length(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    ensure(w.bytes.len() == RECORD_LEN, || {
        format!("expected 104 bytes, the lock file is {}", w.bytes.len())
    })
}

fn check_magic(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let magic = field(&w.bytes, offset::MAGIC, 4, "magic")?;
    if magic == record::MAGIC_BYTES {
        return Ok(());
    }
    let note = if magic == record::MAGIC.to_be_bytes() {
        " (the big-endian spelling \"RVLF\")"
    } else {
        ""
    };
    Err(Problem::Fail(format!(
        "expected magic 46 4c 56 52, found {}{note}",
        record::hex_spaced(magic)
    )))
}

fn check_checksum(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let stored = u32_at(&w.bytes, offset::CHECKSUM, "checksum")?;
    let covered = &w.bytes[..offset::CHECKSUM];
    let ieee = crc32fast::hash(covered);
    if stored == ieee {
        return Ok(());
    }
    let note = if stored == record::crc32c(covered) {
        ": the stored value is the CRC32C (Castagnoli) of those bytes, not their CRC-32/IEEE"
    } else {
        ""
    };
    Err(Problem::Fail(format!(
        "expected checksum {ieee:#010x} (CRC-32/IEEE of bytes 0x00-0x63), found {stored:#010x}{note}"
    )))
}

fn check_version(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let version = u32_at(&w.bytes, offset::VERSION, "version")?;
    ensure(version == record::VERSION, || {
        format!("expected version 1, found {version}")
    })
}

fn check_pid(ctx: &mut Ctx) -> Result<(), Problem> {
    let pid = ctx.hello()?.pid;
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let found = u32_at(&w.bytes, offset::PID, "pid")?;
    ensure(found == pid, || {
        format!("expected pid {pid} (hello.pid), found {found}")
    })
}

fn check_hostname(ctx: &mut Ctx) -> Result<(), Problem> {
    let host = craft::local_host()?;
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let found = field(
        &w.bytes,
        offset::HOSTNAME,
        record::HOSTNAME_FIELD,
        "host name",
    )?;
    let mut want = host.as_bytes().to_vec();
    want.resize(record::HOSTNAME_FIELD, 0);
    ensure(found == want.as_slice(), || {
        format!(
            "expected the host name field to hold {:?} then zeros, found {}",
            host.to_string(),
            describe_name_field(found)
        )
    })
}

/// A host name field for a failure message: its name bytes and its padding.
pub(super) fn describe_name_field(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let name = record::Hostname::new(field[..end].to_vec())
        .map(|h| format!("{:?}", h.to_string()))
        .unwrap_or_else(|_| record::hex_spaced(&field[..end]));
    let padding = &field[end..];
    let nonzero = padding.iter().filter(|&&b| b != 0).count();
    match (padding.is_empty(), nonzero) {
        (true, _) => format!("{name} ({end} bytes, no NUL)"),
        (false, 0) => format!("{name} ({end} bytes, then zeros)"),
        (false, n) => format!("{name} ({end} bytes, then {n} nonzero padding bytes)"),
    }
}

fn check_timestamp(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let b = field(&w.bytes, offset::TIMESTAMP, 8, "timestamp")?;
    let mut raw = [0u8; 8];
    raw.copy_from_slice(b);
    let ts = i128::from(u64::from_le_bytes(raw));
    let (low, high) = (w.before_ns - SECOND, w.after_ns + SECOND);
    ensure(low <= ts && ts <= high, || {
        let off = if ts < w.before_ns {
            format!("{:.3} s before the request", secs(w.before_ns - ts))
        } else {
            format!("{:.3} s after the reply", secs(ts - w.after_ns))
        };
        format!("expected a timestamp within 1 s of the request ({low}..={high} ns), found {ts} ns: {off}")
    })
}

fn secs(ns: i128) -> f64 {
    ns as f64 / SECOND as f64
}

fn check_writer_id_matches_reply(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    let id = field(&w.bytes, offset::WRITER_ID, 16, "writer id")?;
    ensure(id == w.reply_id, || {
        format!(
            "the reply says writer id {}, the lock file holds {}",
            record::hex(&w.reply_id),
            record::hex(id)
        )
    })
}

fn check_writer_id_fresh(ctx: &mut Ctx) -> Result<(), Problem> {
    let first = acquire_and_read(ctx, "data.rvf.lock")?;
    let second = acquire_and_read(ctx, "data.rvf.lock")?;
    let id = |w: &Written| field(&w.bytes, offset::WRITER_ID, 16, "writer id").map(<[u8]>::to_vec);
    let (a, b) = (id(&first)?, id(&second)?);
    ensure(a != b, || {
        format!("both acquisitions wrote writer id {}", record::hex(&a))
    })?;
    ensure(first.reply_id != second.reply_id, || {
        format!(
            "both acquisitions reported writer id {}",
            record::hex(&first.reply_id)
        )
    })
}

fn check_decodes(ctx: &mut Ctx) -> Result<(), Problem> {
    let w = acquire_and_read(ctx, "data.rvf.lock")?;
    craft::decode_written(&w.bytes).map(drop)
}
