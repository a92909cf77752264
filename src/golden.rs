//! The golden lock files of `golden/`: byte-level fixtures any language can
//! use, their manifest, and the regeneration and drift check behind
//! `rvlf golden regen` and `rvlf golden check`.
//!
//! Every fixture is built here, in code, from [`record::encode`], explicit byte
//! edits and [`record::seal`]: never from randomness or the clock, so the files
//! are the same on every machine. Each fixture declares what a decoder must
//! make of it, and nothing is written unless [`record::decode`] agrees with
//! every declaration.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use rvlf_lock::record::{
    self, hex, offset, DecodeError, Hostname, HostnameError, Record, WriterId, RECORD_LEN,
};

/// The manifest's file name inside the golden directory.
pub const MANIFEST: &str = "manifest.json";
/// The extension of every fixture file.
pub const EXTENSION: &str = "lock";

/// Why the golden files could not be built, written or checked.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fixture {id}: {source}")]
    Hostname {
        id: String,
        #[source]
        source: HostnameError,
    },
    #[error("fixture {id}: declared {declared}, but decode gives {decoded}")]
    Disagrees {
        id: String,
        declared: String,
        decoded: String,
    },
    #[error("fixture {id}: class {class} does not fit what it decodes to: {why}")]
    Class {
        id: String,
        class: &'static str,
        why: &'static str,
    },
    #[error("fixture id {id:?} is not kebab-case (a-z, 0-9, single dashes)")]
    BadId { id: String },
    #[error("fixture {id}: rule {rule:?} is not a PROTOCOL.md section like \"§4.2\"")]
    BadRule { id: String, rule: String },
    #[error("two fixtures share the {what} {value}")]
    Duplicate { what: &'static str, value: String },
    #[error("cannot encode the manifest: {0}")]
    Json(#[from] serde_json::Error),
}

/// How a difference between a golden directory and the catalogue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// A file the catalogue writes is not there.
    Missing,
    /// A `*.lock` file the catalogue does not write.
    Extra,
    /// The file is there with other bytes.
    Differs,
}

/// One difference between `golden/` and what regeneration would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub path: PathBuf,
    pub kind: DriftKind,
    pub what: String,
}

/// What a fixture is for, and the prefix of its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A record a conforming writer may write; every decoder MUST accept it.
    Valid,
    /// Not a record; every decoder MUST reject it with the declared code.
    Invalid,
    /// Left open by PROTOCOL.md; the expectation is what the reference does.
    ImplementationDefined,
}

impl Class {
    /// The class as named in file names and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Class::Valid => "valid",
            Class::Invalid => "invalid",
            Class::ImplementationDefined => "impl",
        }
    }
}

/// What decoding a fixture must give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Record(Record),
    Error(DecodeError),
}

/// One golden lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// Stable kebab-case name; the file is `<class>-<id>.lock`.
    pub id: &'static str,
    pub class: Class,
    /// The PROTOCOL.md section it exercises, e.g. "§4.2".
    pub rule: &'static str,
    pub description: &'static str,
    pub bytes: Vec<u8>,
    /// What the catalogue declares `record::decode` gives for `bytes`.
    pub expect: Expect,
}

impl Fixture {
    /// The fixture's file name: class, id, `.lock`.
    pub fn file(&self) -> String {
        format!("{}-{}.{EXTENSION}", self.class.name(), self.id)
    }
}

// ---------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------

/// Timestamp of the worked example of §3.3 (2023-11-14T22:13:20Z), used by most fixtures.
pub const BASE_TIMESTAMP_NS: u64 = 1_700_000_000_000_000_000;
/// The host name the pid and timestamp fixtures carry, so that a reader
/// whose local name is this one judges them as its own (§5.2, §6.3).
pub const SAME_HOST: &str = "golden-host";

const BASE_PID: u32 = 4242;
const BASE_HOST: &[u8] = b"host-a";
/// 00 01 02 ... 0f, as in §3.3.
const BASE_WRITER_ID: WriterId = WriterId([
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
]);

/// Every golden fixture, in manifest order, checked by [`validate`].
pub fn catalogue() -> Result<Vec<Fixture>, GoldenError> {
    let mut all = Vec::new();
    all.extend(valid_fixtures()?);
    all.extend(implementation_defined_fixtures()?);
    all.extend(length_fixtures()?);
    all.extend(magic_fixtures()?);
    all.extend(checksum_fixtures()?);
    all.extend(corrupted_field_fixtures()?);
    all.extend(version_fixtures()?);
    all.extend(padding_fixtures()?);
    validate(&all)?;
    Ok(all)
}

/// A version-1 record; `id` names the fixture in errors.
fn record(
    id: &str,
    pid: u32,
    hostname: &[u8],
    timestamp_ns: u64,
    writer_id: WriterId,
) -> Result<Record, GoldenError> {
    let hostname = Hostname::new(hostname).map_err(|source| GoldenError::Hostname {
        id: id.to_string(),
        source,
    })?;
    Ok(Record {
        pid,
        hostname,
        timestamp_ns,
        writer_id,
        version: record::VERSION,
    })
}

/// The worked example of PROTOCOL.md §3.3.
fn base(id: &str) -> Result<Record, GoldenError> {
    record(id, BASE_PID, BASE_HOST, BASE_TIMESTAMP_NS, BASE_WRITER_ID)
}

/// A record of [`SAME_HOST`] written at the base time.
fn same_host(id: &str, pid: u32, timestamp_ns: u64) -> Result<Record, GoldenError> {
    record(id, pid, SAME_HOST.as_bytes(), timestamp_ns, BASE_WRITER_ID)
}

/// `n` host name bytes: the alphabet over and over, so positions are readable.
fn long_name(n: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(n).collect()
}

fn accepted(
    class: Class,
    id: &'static str,
    rule: &'static str,
    description: &'static str,
    record: Record,
) -> Fixture {
    Fixture {
        id,
        class,
        rule,
        description,
        bytes: record::encode(&record).to_vec(),
        expect: Expect::Record(record),
    }
}

fn valid(id: &'static str, rule: &'static str, description: &'static str, r: Record) -> Fixture {
    accepted(Class::Valid, id, rule, description, r)
}

fn invalid(
    id: &'static str,
    rule: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    error: DecodeError,
) -> Fixture {
    Fixture {
        id,
        class: Class::Invalid,
        rule,
        description,
        bytes,
        expect: Expect::Error(error),
    }
}

fn valid_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let ts = BASE_TIMESTAMP_NS;
    let id = BASE_WRITER_ID;
    Ok(vec![
        valid("worked-example", "§3.3", "the worked example of PROTOCOL.md: pid 4242, host-a, 2023-11-14T22:13:20Z, writer id 00..0f",
            base("worked-example")?),
        valid("minimal", "§3.1", "every field at its smallest: pid 0, empty host name, timestamp 0, writer id all zero",
            record("minimal", 0, b"", 0, WriterId([0; 16]))?),
        valid("maximal", "§3.1", "every field at its largest: pid 2^32-1, 62 host name bytes 0xff, timestamp 2^64-1, writer id all 0xff",
            record("maximal", u32::MAX, &[0xff; record::HOSTNAME_MAX], u64::MAX, WriterId([0xff; 16]))?),
        valid("hostname-0", "§3.1", "empty host name: the NUL is at 0x08",
            record("hostname-0", BASE_PID, b"", ts, id)?),
        valid("hostname-1", "§3.1", "one-byte host name \"a\"",
            record("hostname-1", BASE_PID, b"a", ts, id)?),
        valid("hostname-62", "§3.2", "62-byte host name, the longest a writer stores; its NUL is at 0x46",
            record("hostname-62", BASE_PID, &long_name(62), ts, id)?),
        valid("hostname-utf8", "§4.3", "host name with UTF-8 multi-byte characters (h\u{f6}st-\u{e4}), compared as raw bytes",
            record("hostname-utf8", BASE_PID, "h\u{f6}st-\u{e4}".as_bytes(), ts, id)?),
        valid("hostname-non-utf8", "§4.3", "host name that is not UTF-8 (bytes ff and 80): valid, host names are raw bytes",
            record("hostname-non-utf8", BASE_PID, b"h\xffst-\x80", ts, id)?),
        valid("hostname-case", "§5.2", "host name GOLDEN-HOST: not the same host as golden-host, names are compared without case folding",
            record("hostname-case", 1, b"GOLDEN-HOST", ts, id)?),
        valid("pid-0", "§6.3", "pid 0 on golden-host: a valid record whose pid names no process, so it counts as dead",
            same_host("pid-0", 0, ts)?),
        valid("pid-1", "§6.3", "pid 1 on golden-host: the smallest pid that names one process",
            same_host("pid-1", 1, ts)?),
        valid("pid-2147483647", "§6.3", "pid 2^31-1 on golden-host: the largest pid that may be probed",
            same_host("pid-2147483647", (1 << 31) - 1, ts)?),
        valid("pid-2147483648", "§6.3", "pid 2^31 on golden-host: negative as a pid_t, so it counts as dead and is never probed",
            same_host("pid-2147483648", 1 << 31, ts)?),
        valid("pid-4294967295", "§6.3", "pid 2^32-1 on golden-host: -1 as a pid_t, so it counts as dead and is never probed",
            same_host("pid-4294967295", u32::MAX, ts)?),
        valid("timestamp-0", "§6.2", "timestamp 0 (1970-01-01) on golden-host, pid 4242",
            same_host("timestamp-0", BASE_PID, 0)?),
        valid("timestamp-max", "§6.2", "timestamp 2^64-1 (year 2554) on golden-host, pid 4242: far in the future, the mtime bounds its age",
            same_host("timestamp-max", BASE_PID, u64::MAX)?),
        valid("timestamp-above-2pow53", "§3.1", "timestamp 2^53+1, which a 64-bit float cannot hold: parse u64 fields as integers",
            record("timestamp-above-2pow53", BASE_PID, BASE_HOST, (1 << 53) + 1, id)?),
    ])
}

fn implementation_defined_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let r = |id, n| {
        record(
            id,
            BASE_PID,
            &long_name(n),
            BASE_TIMESTAMP_NS,
            BASE_WRITER_ID,
        )
    };
    let class = Class::ImplementationDefined;
    Ok(vec![
        accepted(class, "hostname-63", "§4.3", "63-byte host name, NUL at 0x47: no conforming writer writes it; the reference accepts it",
            r("hostname-63", 63)?),
        accepted(class, "hostname-64-no-nul", "§4.3", "64-byte host name filling the field, no NUL at all: the reference accepts it",
            r("hostname-64-no-nul", 64)?),
    ])
}

/// The worked example's bytes.
fn base_bytes(id: &str) -> Result<[u8; RECORD_LEN], GoldenError> {
    Ok(record::encode(&base(id)?))
}

/// The CRC-32 stored in `bytes` (at 0x64).
fn stored_crc(bytes: &[u8; RECORD_LEN]) -> u32 {
    u32::from_le_bytes([
        bytes[offset::CHECKSUM],
        bytes[offset::CHECKSUM + 1],
        bytes[offset::CHECKSUM + 2],
        bytes[offset::CHECKSUM + 3],
    ])
}

/// The CRC-32 of the first 100 bytes.
fn crc_of(bytes: &[u8; RECORD_LEN]) -> u32 {
    crc32fast::hash(&bytes[..offset::CHECKSUM])
}

/// The worked example with `edit` applied and the checksum recomputed.
fn resealed(id: &str, edit: impl FnOnce(&mut [u8; RECORD_LEN])) -> Result<Vec<u8>, GoldenError> {
    let mut bytes = base_bytes(id)?;
    edit(&mut bytes);
    record::seal(&mut bytes);
    Ok(bytes.to_vec())
}

/// The worked example with one byte XORed by `mask` and the old checksum kept,
/// and the `checksum` error that must follow when the magic is untouched.
fn flipped(id: &str, at: usize, mask: u8) -> Result<(Vec<u8>, DecodeError), GoldenError> {
    let original = base_bytes(id)?;
    let mut bytes = original;
    bytes[at] ^= mask;
    let error = DecodeError::Checksum {
        stored: stored_crc(&bytes),
        computed: crc_of(&bytes),
        matches_crc32c: false,
    };
    Ok((bytes.to_vec(), error))
}

fn length_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let full = base_bytes("length")?;
    let length = |n: usize| DecodeError::Length { found: n as u64 };
    let mut plus_one = full.to_vec();
    plus_one.push(b'\n');
    Ok(vec![
        invalid(
            "length-0",
            "§4.2",
            "empty file, as left by a writer that created the file and crashed before writing",
            Vec::new(),
            length(0),
        ),
        invalid(
            "length-1",
            "§4.2",
            "one byte: the first byte of the magic",
            full[..1].to_vec(),
            length(1),
        ),
        invalid(
            "length-103",
            "§4.2",
            "the worked example cut short by its last byte: a torn write",
            full[..RECORD_LEN - 1].to_vec(),
            length(RECORD_LEN - 1),
        ),
        invalid(
            "length-105",
            "§4.2",
            "the worked example followed by a newline: one byte too many",
            plus_one,
            length(RECORD_LEN + 1),
        ),
    ])
}

fn magic_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let magic = |found: [u8; 4], big_endian| DecodeError::Magic { found, big_endian };
    let (one_bit, _) = flipped("corrupt-magic", offset::MAGIC, 0x01)?;
    Ok(vec![
        invalid("all-zeros", "§4.2", "104 zero bytes, as a crash can leave a file whose data never reached the disk",
            vec![0; RECORD_LEN], magic([0; 4], false)),
        invalid("magic-zeros", "§4.2", "the worked example with the magic zeroed, resealed",
            resealed("magic-zeros", |b| b[..4].fill(0))?, magic([0; 4], false)),
        invalid("magic-big-endian", "§3.1", "the worked example with the magic spelled big-endian, 52 56 4c 46 (\"RVLF\"), resealed",
            resealed("magic-big-endian", |b| b[..4].copy_from_slice(&record::MAGIC.to_be_bytes()))?,
            magic(record::MAGIC.to_be_bytes(), true)),
        invalid("corrupt-magic", "§4.2", "the worked example with one bit of the magic flipped (\"GLVR\"), not resealed: magic is checked before the checksum",
            one_bit, magic(*b"GLVR", false)),
    ])
}

fn checksum_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let original = base_bytes("checksum")?;
    let crc = crc_of(&original);
    let crc32c = record::crc32c(&original[..offset::CHECKSUM]);
    let with_stored = |stored: u32| {
        let mut bytes = original;
        bytes[offset::CHECKSUM..].copy_from_slice(&stored.to_le_bytes());
        bytes.to_vec()
    };
    let mismatch = |stored, matches_crc32c| DecodeError::Checksum {
        stored,
        computed: crc,
        matches_crc32c,
    };
    Ok(vec![
        invalid("checksum-crc32c", "§3.1", "the worked example carrying the CRC-32C of its bytes (e7 11 8f 29) instead of the CRC-32",
            with_stored(crc32c), mismatch(crc32c, true)),
        invalid("checksum-zero", "§4.2", "the worked example with a checksum of zero",
            with_stored(0), mismatch(0, false)),
        invalid("checksum-big-endian", "§3.1", "the worked example with its CRC-32 stored big-endian (b2 b6 6d c1)",
            with_stored(crc.swap_bytes()), mismatch(crc.swap_bytes(), false)),
    ])
}

fn corrupted_field_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let corrupt = |id: &'static str, description: &'static str, at: usize, mask: u8| {
        flipped(id, at, mask).map(|(bytes, error)| invalid(id, "§4.2", description, bytes, error))
    };
    Ok(vec![
        corrupt("corrupt-pid", "the worked example with one bit of the pid flipped (4243), not resealed",
            offset::PID, 0x01)?,
        corrupt("corrupt-hostname", "the worked example with one bit of the host name flipped (Host-a), not resealed",
            offset::HOSTNAME, 0x20)?,
        corrupt("corrupt-hostname-padding", "the worked example with the last padding byte set, not resealed: the checksum is checked before the padding",
            offset::TIMESTAMP - 1, 0x01)?,
        corrupt("corrupt-timestamp", "the worked example with the lowest bit of the timestamp's top byte flipped, not resealed",
            offset::TIMESTAMP + 7, 0x01)?,
        corrupt("corrupt-writer-id", "the worked example with one bit of the writer id flipped, not resealed",
            offset::WRITER_ID, 0x01)?,
        corrupt("corrupt-version", "the worked example with version 2 in place of 1, not resealed: the checksum is checked before the version",
            offset::VERSION, 0x03)?,
        corrupt("corrupt-checksum", "the worked example with the lowest bit of its stored checksum flipped",
            offset::CHECKSUM, 0x01)?,
    ])
}

fn version_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let with_version = |id: &str, v: u32| {
        resealed(id, |b| {
            b[offset::VERSION..offset::CHECKSUM].copy_from_slice(&v.to_le_bytes());
        })
    };
    let version = |found| DecodeError::Version { found };
    Ok(vec![
        invalid(
            "version-0",
            "§4.2",
            "the worked example with version 0, resealed",
            with_version("version-0", 0)?,
            version(0),
        ),
        invalid(
            "version-2",
            "§4.2",
            "the worked example with version 2, resealed",
            with_version("version-2", 2)?,
            version(2),
        ),
        invalid(
            "version-big-endian",
            "§4.2",
            "the worked example with version 1 stored big-endian (00 00 00 01), resealed",
            with_version("version-big-endian", 1u32.swap_bytes())?,
            version(1u32.swap_bytes()),
        ),
    ])
}

fn padding_fixtures() -> Result<Vec<Fixture>, GoldenError> {
    let name_end = offset::HOSTNAME + BASE_HOST.len();
    let last = offset::TIMESTAMP - 1;
    let padding = |offset| DecodeError::HostnamePadding { offset };
    Ok(vec![
        invalid("hostname-padding", "§4.2", "the worked example with an 'x' right after the host name's NUL, resealed",
            resealed("hostname-padding", |b| b[name_end + 1] = b'x')?, padding(name_end + 1)),
        invalid("hostname-padding-last-byte", "§4.2", "the worked example with 0x01 in the last byte of the host name field (0x47), resealed",
            resealed("hostname-padding-last-byte", |b| b[last] = 0x01)?, padding(last)),
        invalid("hostname-leading-nul", "§4.2", "host name field 00 \"host-a\", resealed: the name is empty and \"host-a\" is nonzero padding",
            resealed("hostname-leading-nul", |b| {
                b[offset::HOSTNAME..=name_end].rotate_right(1);
            })?,
            padding(offset::HOSTNAME + 1)),
    ])
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Refuse a catalogue whose declarations disagree with `record::decode`, whose
/// classes do not fit what the bytes decode to, or that repeats an id, a file
/// name or a byte string.
pub fn validate(fixtures: &[Fixture]) -> Result<(), GoldenError> {
    let mut ids = HashSet::new();
    let mut files = HashSet::new();
    let mut contents = HashSet::new();
    for f in fixtures {
        check_fixture(f)?;
        if !ids.insert(f.id) {
            return Err(duplicate("id", f.id));
        }
        if !files.insert(f.file()) {
            return Err(duplicate("file name", &f.file()));
        }
        if !contents.insert(f.bytes.as_slice()) {
            return Err(duplicate("bytes of", f.id));
        }
    }
    Ok(())
}

fn duplicate(what: &'static str, value: &str) -> GoldenError {
    GoldenError::Duplicate {
        what,
        value: value.to_string(),
    }
}

fn check_fixture(f: &Fixture) -> Result<(), GoldenError> {
    if !is_kebab(f.id) {
        return Err(GoldenError::BadId {
            id: f.id.to_string(),
        });
    }
    if !is_section(f.rule) {
        return Err(GoldenError::BadRule {
            id: f.id.to_string(),
            rule: f.rule.to_string(),
        });
    }
    let decoded = record::decode(&f.bytes);
    let agrees = match (&f.expect, &decoded) {
        (Expect::Record(want), Ok(got)) => want == got,
        (Expect::Error(want), Err(got)) => want == got,
        _ => false,
    };
    if !agrees {
        return Err(GoldenError::Disagrees {
            id: f.id.to_string(),
            declared: format!("{:?}", f.expect),
            decoded: format!("{decoded:?}"),
        });
    }
    check_class(f)
}

/// valid: a record a conforming writer could write; impl: a record only a
/// lenient reader accepts (§4.3); invalid: not a record.
fn check_class(f: &Fixture) -> Result<(), GoldenError> {
    let why = match (&f.expect, f.class) {
        (Expect::Record(r), Class::Valid) if !r.hostname.is_writable() => {
            "its host name is longer than a writer stores (§4.3): class impl"
        }
        (Expect::Record(r), Class::ImplementationDefined) if r.hostname.is_writable() => {
            "a conforming writer can write it: class valid"
        }
        (Expect::Record(_), Class::Invalid) => "it decodes to a record",
        (Expect::Error(_), Class::Valid | Class::ImplementationDefined) => "it does not decode",
        _ => return Ok(()),
    };
    Err(GoldenError::Class {
        id: f.id.to_string(),
        class: f.class.name(),
        why,
    })
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// "§N" or "§N.M".
fn is_section(rule: &str) -> bool {
    let Some(number) = rule.strip_prefix('§') else {
        return false;
    };
    let parts: Vec<&str> = number.split('.').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

// ---------------------------------------------------------------------------
// The manifest
// ---------------------------------------------------------------------------

const NOTES: [&str; 6] = [
    "Each fixture is a whole lock file. Decode its bytes with the implementation under test (PROTOCOL.md §4.2) and compare with `expect`.",
    "`expect.record`: the file MUST decode to exactly these fields. `expect.error`: the file MUST be rejected with `code`; the other members are what the reference reports.",
    "class `valid`: a conforming writer may write it. `invalid`: every decoder MUST reject it. `impl`: IMPLEMENTATION-DEFINED (§4.3); `expect` is what the reference does.",
    "u64 values are decimal strings (a JSON number loses precision above 2^53); checksums are 0x-prefixed 8-digit hex; byte strings are lowercase hex.",
    "`hostname` is a display form (printable ASCII as is, other bytes as \\xNN); compare `hostname_hex`.",
    "`sha256` and `size` describe the file's bytes. The files are generated by `cargo run -- golden regen`; never edit them by hand.",
];

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    format_version: u32,
    spec: &'static str,
    notes: &'static [&'static str],
    fixtures: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    file: String,
    class: &'static str,
    rule: &'a str,
    description: &'a str,
    size: usize,
    sha256: String,
    expect: ExpectJson,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum ExpectJson {
    Record(RecordJson),
    Error(ErrorJson),
}

#[derive(Serialize)]
struct RecordJson {
    pid: u32,
    hostname_hex: String,
    hostname: String,
    timestamp_ns: String,
    writer_id: String,
    version: u32,
}

#[derive(Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
enum ErrorJson {
    Length {
        length: u64,
    },
    Magic {
        magic_hex: String,
        big_endian: bool,
    },
    Checksum {
        stored: String,
        computed: String,
        matches_crc32c: bool,
    },
    Version {
        version: u32,
    },
    HostnamePadding {
        offset: usize,
    },
}

fn expect_json(bytes: &[u8]) -> ExpectJson {
    match record::decode(bytes) {
        Ok(r) => ExpectJson::Record(RecordJson {
            pid: r.pid,
            hostname_hex: hex(r.hostname.as_bytes()),
            hostname: r.hostname.to_string(),
            timestamp_ns: r.timestamp_ns.to_string(),
            writer_id: hex(&r.writer_id.0),
            version: r.version,
        }),
        Err(e) => ExpectJson::Error(error_json(e)),
    }
}

fn error_json(e: DecodeError) -> ErrorJson {
    match e {
        DecodeError::Length { found } => ErrorJson::Length { length: found },
        DecodeError::Magic { found, big_endian } => ErrorJson::Magic {
            magic_hex: hex(&found),
            big_endian,
        },
        DecodeError::Checksum {
            stored,
            computed,
            matches_crc32c,
        } => ErrorJson::Checksum {
            stored: format!("{stored:#010x}"),
            computed: format!("{computed:#010x}"),
            matches_crc32c,
        },
        DecodeError::Version { found } => ErrorJson::Version { version: found },
        DecodeError::HostnamePadding { offset } => ErrorJson::HostnamePadding { offset },
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The manifest of `fixtures`: pretty JSON ending in a newline. The
/// expectations come from running `record::decode` on each file's bytes.
pub fn manifest(fixtures: &[Fixture]) -> Result<String, GoldenError> {
    let manifest = Manifest {
        format: "RVLF",
        format_version: record::VERSION,
        spec: "PROTOCOL.md",
        notes: &NOTES,
        fixtures: fixtures
            .iter()
            .map(|f| Entry {
                id: f.id,
                file: f.file(),
                class: f.class.name(),
                rule: f.rule,
                description: f.description,
                size: f.bytes.len(),
                sha256: sha256_hex(&f.bytes),
                expect: expect_json(&f.bytes),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    Ok(text)
}

// ---------------------------------------------------------------------------
// Regeneration and drift
// ---------------------------------------------------------------------------

/// Every file of the golden directory, by name, with its bytes: the fixtures,
/// then the manifest. Fails if the catalogue does not validate.
pub fn files(fixtures: &[Fixture]) -> Result<Vec<(String, Vec<u8>)>, GoldenError> {
    validate(fixtures)?;
    let mut out: Vec<(String, Vec<u8>)> = fixtures
        .iter()
        .map(|f| (f.file(), f.bytes.clone()))
        .collect();
    out.push((MANIFEST.to_string(), manifest(fixtures)?.into_bytes()));
    Ok(out)
}

/// Rewrite every fixture and the manifest in `dir`; returns the files written.
pub fn regen(dir: &Path) -> Result<Vec<PathBuf>, GoldenError> {
    write(dir, &catalogue()?)
}

/// Write `fixtures` and their manifest into `dir` (created if needed) and
/// remove every other `*.lock` file there. Nothing is written unless the
/// catalogue validates.
pub fn write(dir: &Path, fixtures: &[Fixture]) -> Result<Vec<PathBuf>, GoldenError> {
    let files = files(fixtures)?;
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in &files {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(io(&path))?;
        written.push(path);
    }
    let wanted: HashSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for name in lock_files(dir)? {
        if !wanted.contains(name.as_str()) {
            let path = dir.join(&name);
            fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(written)
}

/// Compare `dir` with what [`regen`] would write, byte for byte.
pub fn check(dir: &Path) -> Result<Vec<Drift>, GoldenError> {
    compare(dir, &catalogue()?)
}

/// One [`Drift`] per file of `fixtures` (and the manifest) that is missing from
/// `dir` or differs, and per `*.lock` file in `dir` that `fixtures` lacks.
pub fn compare(dir: &Path, fixtures: &[Fixture]) -> Result<Vec<Drift>, GoldenError> {
    let files = files(fixtures)?;
    let mut drift = Vec::new();
    for (name, expected) in &files {
        let path = dir.join(name);
        let found = match fs::read(&path) {
            Ok(found) => found,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                drift.push(Drift {
                    path,
                    kind: DriftKind::Missing,
                    what: format!("missing ({} bytes expected)", expected.len()),
                });
                continue;
            }
            Err(source) => return Err(GoldenError::Io { path, source }),
        };
        if let Some(what) = difference(&found, expected, name == MANIFEST) {
            drift.push(Drift {
                path,
                kind: DriftKind::Differs,
                what,
            });
        }
    }
    let wanted: HashSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for name in lock_files(dir)? {
        if !wanted.contains(name.as_str()) {
            drift.push(Drift {
                path: dir.join(&name),
                kind: DriftKind::Extra,
                what: "not in the catalogue (regen removes it)".to_string(),
            });
        }
    }
    Ok(drift)
}

/// How `found` differs from `expected`, or `None` if it does not.
fn difference(found: &[u8], expected: &[u8], text: bool) -> Option<String> {
    if found == expected {
        return None;
    }
    let at = found
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(expected.len()));
    let byte = |bytes: &[u8]| {
        bytes
            .get(at)
            .map_or("end of file".to_string(), |b| format!("{b:#04x}"))
    };
    let line = if text {
        let line = expected[..at.min(expected.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format!(" (line {})", line + 1)
    } else {
        String::new()
    };
    Some(format!(
        "{} bytes, {} expected; first difference at offset {at:#x}{line}: {} found, {} expected",
        found.len(),
        expected.len(),
        byte(found),
        byte(expected)
    ))
}

/// The names of the `*.lock` files directly in `dir`, sorted.
fn lock_files(dir: &Path) -> Result<BTreeSet<String>, GoldenError> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let is_lock = path.extension().is_some_and(|e| e == EXTENSION);
        let is_file = entry.file_type().map_err(io(&path))?.is_file();
        if is_lock && is_file {
            if let Some(name) = entry.file_name().to_str() {
                names.insert(name.to_string());
            }
        }
    }
    Ok(names)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> GoldenError + '_ {
    move |source| GoldenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_is_the_bytes_of_protocol_3_3() {
        let bytes = base_bytes("worked-example").expect("base record builds");
        assert_eq!(&bytes[..4], b"FLVR");
        assert_eq!(stored_crc(&bytes), 0xB2B6_6DC1);
        assert_eq!(
            record::crc32c(&bytes[..offset::CHECKSUM]),
            0x298F_11E7,
            "§3.3 gives the CRC-32C of the same bytes"
        );
    }

    #[test]
    fn difference_names_the_first_differing_offset_and_line() {
        assert_eq!(difference(b"ab", b"ab", false), None);
        let what = difference(b"a\nbX", b"a\nbc", true).expect("they differ");
        assert!(what.contains("offset 0x3 (line 2)"), "{what}");
        let what = difference(b"abc", b"ab", false).expect("they differ");
        assert!(what.contains("0x63 found, end of file expected"), "{what}");
    }

    #[test]
    fn ids_and_rules_are_checked_for_shape() {
        assert!(is_kebab("pid-2147483648"));
        assert!(!is_kebab("Pid") && !is_kebab("a--b") && !is_kebab("-a") && !is_kebab(""));
        assert!(is_section("§4.2") && is_section("§6"));
        assert!(!is_section("4.2") && !is_section("§4.") && !is_section("§4.2.1"));
    }
}
