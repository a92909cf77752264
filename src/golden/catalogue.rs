//! The golden fixtures themselves: [`catalogue`] and the builders of each
//! group of fixtures (valid, implementation-defined, and each kind of
//! invalid file).

use super::{validate, Class, Expect, Fixture, GoldenError};
use rvlf_lock::record::{self, offset, DecodeError, Hostname, Record, WriterId, RECORD_LEN};

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
}
