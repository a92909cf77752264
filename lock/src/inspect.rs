//! `inspect`: what a lock file holds and whether this host would judge it
//! stale now, with the reasons — for people debugging a stuck lock, as
//! annotated hex or JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::driver::{now_ns, probe_pid, Driver};
use crate::host::local_hostname;
use crate::machine::{FileKind, FileSystem, ReadReply, Reply, Request};
use crate::policy::{self, Contents, Facts, Liveness, Thresholds, Verdict};
use crate::record::{self, hex, hex_spaced, offset, Hostname, RECORD_LEN};

/// A lock file, decoded and judged.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Inspection {
    /// The lock file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, UNIX epoch nanoseconds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
    pub mtime_ns: i128,
    /// The bytes read (at most 105).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_hex"))]
    pub bytes: Vec<u8>,
    /// The record, or why the bytes are not one (§4.2).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_decode"))]
    pub contents: Contents,
    /// This host's name, cut by the writer's rule (§5).
    pub local_host: Hostname,
    /// When it was judged, UNIX epoch nanoseconds.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
    pub now_ns: i128,
    /// This host's verdict (§6), with its reasons.
    pub verdict: Verdict,
}

#[cfg(feature = "serde")]
fn ser_hex<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(b))
}

#[cfg(feature = "serde")]
fn ser_decode<S: serde::Serializer>(c: &Contents, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    #[derive(serde::Serialize)]
    #[serde(rename_all = "kebab-case")]
    enum Decode<'a> {
        Record(&'a record::Record),
        Error(&'a record::DecodeError),
    }
    match c {
        Contents::Valid(r) => Decode::Record(r).serialize(s),
        Contents::Malformed(e) => Decode::Error(e).serialize(s),
    }
}

/// Why a lock file could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// Nothing is at the path.
    #[error("{}: no such file", .0.display())]
    NotFound(PathBuf),
    /// The path is not a regular file (§4.1); it was not opened.
    #[error("{}: is a {kind}, not a regular file; a lock file is always a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The path could not be read.
    #[error("{}: cannot read: {errno}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        errno: Errno,
    },
    /// gethostname(2) failed.
    #[error("cannot read this host's name: {0}")]
    Hostname(Errno),
}

/// Read the lock file at `path` safely (§4.1) and judge it for this host, now.
pub fn inspect(path: impl AsRef<Path>) -> Result<Inspection, InspectError> {
    let path = path.as_ref();
    let local_host = local_hostname().map_err(InspectError::Hostname)?;
    let io = |errno| InspectError::Io {
        path: path.to_path_buf(),
        errno,
    };
    match Driver::new(path).perform(&Request::Read { keep_open: false }) {
        Reply::Read(ReadReply::Found { meta, head, .. }) => Ok(examine(
            path,
            &head,
            meta.size,
            meta.mtime_ns,
            now_ns(),
            &local_host,
            probe_pid,
        )),
        Reply::Read(ReadReply::NotFound) => Err(InspectError::NotFound(path.to_path_buf())),
        Reply::Read(ReadReply::NotRegular(kind)) => Err(InspectError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
        Reply::Failed(errno) => Err(io(errno)),
        _ => Err(io(Errno::EIO)),
    }
}

/// Decode and judge bytes already read, with the clock, host and PID prober given.
pub fn examine(
    path: &Path,
    bytes: &[u8],
    size: u64,
    mtime_ns: i128,
    now_ns: i128,
    local_host: &Hostname,
    probe: impl FnOnce(u32) -> Liveness,
) -> Inspection {
    let contents = match record::decode(bytes) {
        Ok(r) => Contents::Valid(r),
        Err(record::DecodeError::Length { .. }) => {
            Contents::Malformed(record::DecodeError::Length { found: size })
        }
        Err(e) => Contents::Malformed(e),
    };
    let liveness = policy::pid_to_probe(&contents, local_host).map(probe);
    let verdict = policy::judge(
        &Facts {
            contents: &contents,
            mtime_ns,
            now_ns,
            local_host,
            liveness,
        },
        &Thresholds::V1,
    );
    Inspection {
        path: path.to_path_buf(),
        size,
        mtime_ns,
        bytes: bytes.to_vec(),
        contents,
        local_host: local_host.clone(),
        now_ns,
        verdict,
    }
}

const FIELDS: [(usize, usize, &str); 7] = [
    (offset::MAGIC, 4, "magic"),
    (offset::PID, 4, "pid"),
    (offset::HOSTNAME, 64, "hostname"),
    (offset::TIMESTAMP, 8, "timestamp_ns"),
    (offset::WRITER_ID, 16, "writer_id"),
    (offset::VERSION, 4, "version"),
    (offset::CHECKSUM, 4, "checksum"),
];

impl Inspection {
    /// Annotated hex, the fields and the verdict, for a terminal.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "lock file   {}", self.path.display());
        let _ = writeln!(
            out,
            "size        {} byte{}{}",
            self.size,
            if self.size == 1 { "" } else { "s" },
            if self.size == RECORD_LEN as u64 {
                ""
            } else {
                " (a record is 104)"
            }
        );
        let _ = writeln!(out, "mtime       {}", utc(self.mtime_ns));
        out.push('\n');
        self.render_bytes(&mut out);
        out.push('\n');
        match &self.contents {
            Contents::Valid(_) => {
                let _ = writeln!(out, "decode      valid RVLF v1 record");
            }
            Contents::Malformed(e) => {
                let _ = writeln!(out, "decode      INVALID [{}] {e}", e.code());
            }
        }
        let _ = writeln!(
            out,
            "verdict     {} on host \"{}\" at {}",
            if self.verdict.stale {
                "STALE: may be broken"
            } else {
                "HELD: must not be broken"
            },
            self.local_host,
            utc(self.now_ns)
        );
        for reason in &self.verdict.reasons {
            let _ = writeln!(out, "  - {}", explain(reason));
        }
        if let Some(d) = self.verdict.stale_in {
            let _ = writeln!(
                out,
                "  - turns stale in {:.3} s if nothing changes",
                d.as_secs_f64()
            );
        }
        out
    }

    fn render_bytes(&self, out: &mut String) {
        let b = &self.bytes;
        if b.len() != RECORD_LEN {
            for (row, chunk) in b.chunks(16).enumerate() {
                let _ = writeln!(out, "{:#06x}  {}", row * 16, hex_spaced(chunk));
            }
            if b.is_empty() {
                let _ = writeln!(out, "(empty)");
            }
            return;
        }
        for (at, len, name) in FIELDS {
            let field = &b[at..at + len];
            for (i, chunk) in field.chunks(16).enumerate() {
                let label = if i == 0 {
                    format!("{name:<13}{}", self.field_value(name, field))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "{:#06x}  {:<48} {}",
                    at + i * 16,
                    hex_spaced(chunk),
                    label
                );
            }
        }
        // Trim the padding that the last column leaves on rows without a label.
        *out = out
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n");
        out.push('\n');
    }

    fn field_value(&self, name: &str, field: &[u8]) -> String {
        let u32le = |f: &[u8]| u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
        match name {
            "magic" => format!(
                "{}{}",
                printable(field),
                if field == record::MAGIC_BYTES {
                    " (ok)"
                } else {
                    " (expected \"FLVR\")"
                }
            ),
            "pid" => u32le(field).to_string(),
            "hostname" => {
                let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
                // The bytes before the first NUL: never a NUL, never more than 64.
                let shown = Hostname::new(field[..end].to_vec()).unwrap_or_default();
                let note = if end > record::HOSTNAME_MAX {
                    ", longer than any writer stores: never this host (§4.3)"
                } else {
                    ""
                };
                format!("{} ({end} bytes{note})", short(&shown))
            }
            "timestamp_ns" => {
                let mut a = [0u8; 8];
                a.copy_from_slice(field);
                let ts = u64::from_le_bytes(a);
                format!("{ts} ({})", utc(i128::from(ts)))
            }
            "writer_id" => hex(field),
            "version" => u32le(field).to_string(),
            "checksum" => {
                let stored = u32le(field);
                let computed = crc32fast::hash(&self.bytes[..offset::CHECKSUM]);
                if stored == computed {
                    format!("{stored:#010x} (ok)")
                } else {
                    format!("{stored:#010x} (CRC-32 of the record is {computed:#010x})")
                }
            }
            _ => String::new(),
        }
    }
}

/// One reason in words.
fn explain(reason: &policy::Reason) -> String {
    use policy::Reason::*;
    match reason {
        Malformed { error } => format!(
            "not a valid record ({}): only the file's age counts (§4.4)",
            error.code()
        ),
        SameHost => "written on this host (§5.2)".to_string(),
        OtherHost { stored, local } => format!(
            "written on another host: {} is not {} (§5.2); liveness cannot be checked",
            short(stored),
            short(local)
        ),
        PidUnprobeable { pid } => {
            format!("pid {pid} cannot name one process (0 or >= 2^31): treated as dead (§6.3)")
        }
        PidLiveness { pid, liveness } => format!(
            "pid {pid} is {} (§6.3)",
            match liveness {
                Liveness::Alive => "alive".to_string(),
                Liveness::AliveOtherUser => "alive (EPERM: another user's process)".to_string(),
                Liveness::Dead => "dead (ESRCH)".to_string(),
                Liveness::Unknown { errno } => format!(
                    "of unknown liveness ({}): counted as alive",
                    Errno::from_raw(*errno)
                ),
            }
        ),
        FutureTimestamp { ahead_ns } => format!(
            "timestamp is {:.3} s in the future: the file's mtime bounds the age (§6.2)",
            *ahead_ns as f64 / 1e9
        ),
        Age {
            age_ns,
            from,
            threshold_ns,
            exceeded,
        } => format!(
            "age {:.3} s (from its {}) is {} the {} s threshold (§6.1)",
            *age_ns as f64 / 1e9,
            match from {
                policy::AgeBasis::Timestamp => "timestamp",
                policy::AgeBasis::Mtime => "mtime",
            },
            if *exceeded { "past" } else { "within" },
            threshold_ns / 1_000_000_000
        ),
    }
}

/// A host name, quoted, cut to a readable length (the hex dump has every byte).
fn short(name: &Hostname) -> String {
    let text = name.to_string();
    if text.chars().count() <= 40 {
        format!("\"{text}\"")
    } else {
        format!("\"{}...\"", text.chars().take(36).collect::<String>())
    }
}

fn printable(bytes: &[u8]) -> String {
    let s: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    format!("\"{s}\"")
}

/// UNIX epoch nanoseconds as an RFC 3339 UTC time.
pub fn utc(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            utc(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(utc(i128::from(u64::MAX)), "2554-07-21T23:34:33.709551615Z");
    }
}
