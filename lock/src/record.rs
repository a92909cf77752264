//! The 104-byte RVLF v1 lock record: its typed fields, `encode` and a `decode`
//! that says exactly what is wrong with a file that is not a record
//! (PROTOCOL.md §3 and §4.2).
//!
//! Decoding is canonical: whenever `decode(bytes)` is `Ok(record)`,
//! `encode(&record) == bytes`. It never panics, whatever it is given.

use std::fmt;


/// Length of a record on disk.
pub const RECORD_LEN: usize = 104;
/// The magic as a number; written little-endian, so the bytes on disk are `46 4C 56 52`.
pub const MAGIC: u32 = 0x5256_4C46;
/// The magic as it appears on disk ("FLVR").
pub const MAGIC_BYTES: [u8; 4] = MAGIC.to_le_bytes();
/// The only version this document defines.
pub const VERSION: u32 = 1;
/// The most hostname bytes a writer stores; a NUL always follows them.
pub const HOSTNAME_MAX: usize = 62;
/// Size of the hostname field.
pub const HOSTNAME_FIELD: usize = 64;

/// Byte offsets of the fields (PROTOCOL.md §3.1).
pub mod offset {
    /// The magic: 4 bytes, `46 4C 56 52` on disk.
    pub const MAGIC: usize = 0x00;
    /// The writer's PID: u32 LE.
    pub const PID: usize = 0x04;
    /// The host name field: 64 bytes, the name then zero bytes.
    pub const HOSTNAME: usize = 0x08;
    /// The acquisition time: u64 LE, nanoseconds since the UNIX epoch.
    pub const TIMESTAMP: usize = 0x48;
    /// The writer id: 16 random bytes.
    pub const WRITER_ID: usize = 0x50;
    /// The format version: u32 LE.
    pub const VERSION: usize = 0x60;
    /// The CRC-32/IEEE of bytes 0x00–0x63: u32 LE, the last 4 bytes.
    pub const CHECKSUM: usize = 0x64;
}

/// A host name as stored in a record: raw bytes, at most 64, none of them NUL.
///
/// Writers only ever produce names of at most 62 bytes
/// ([`Hostname::truncated`]); readers accept up to the whole field (§4.3).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Hostname(Vec<u8>);

/// Why bytes cannot be a [`Hostname`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Hash)]
#[non_exhaustive]
pub enum HostnameError {
    /// Longer than the 64-byte field; holds the length.
    #[error("hostname of {0} bytes does not fit the 64-byte field")]
    TooLong(usize),
    /// Contains a NUL byte; holds its offset in the name.
    #[error("hostname contains a NUL byte at offset {0}")]
    Nul(usize),
}

impl Hostname {
    /// A stored name exactly as given; fails if it could not round-trip through the field.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, HostnameError> {
        let bytes = bytes.into();
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            return Err(HostnameError::Nul(at));
        }
        if bytes.len() > HOSTNAME_FIELD {
            return Err(HostnameError::TooLong(bytes.len()));
        }
        Ok(Hostname(bytes))
    }

    /// The writer's rule (§5.2): the bytes before any NUL, cut to at most 62 bytes.
    /// A reader applies the same rule to its own name before comparing.
    pub fn truncated(raw: &[u8]) -> Self {
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Hostname(raw[..end.min(HOSTNAME_MAX)].to_vec())
    }

    /// The name's bytes, without any NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty name.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when a conforming writer could have written this name (§4.3).
    pub fn is_writable(&self) -> bool {
        self.0.len() <= HOSTNAME_MAX
    }
}

impl fmt::Debug for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl fmt::Display for Hostname {
    /// Printable ASCII as is, every other byte as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b == b'\\' {
                f.write_str("\\\\")?;
            } else if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Hostname {
    /// `{"text": printable form, "hex": exact bytes}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Hostname", 2)?;
        st.serialize_field("text", &self.to_string())?;
        st.serialize_field("hex", &hex(&self.0))?;
        st.end()
    }
}

#[cfg(feature = "serde")]
/// A u64/i128/u128 as a decimal string: JSON numbers lose precision past 2^53.
pub fn decimal<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

#[cfg(feature = "serde")]
fn hex_u32<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#010x}"))
}

#[cfg(feature = "serde")]
fn hex_bytes<S: serde::Serializer>(v: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

/// The 16 random bytes that name one acquisition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WriterId(pub [u8; 16]);

impl WriterId {
    /// A fresh id from the operating system's random source.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)?;
        Ok(WriterId(id))
    }
}

impl fmt::Debug for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriterId({})", hex(&self.0))
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for WriterId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

/// One decoded lock record. The checksum is not a field: `encode` computes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Record {
    /// The writer's process id (§3.2).
    pub pid: u32,
    /// The writer's host name (§3.2, §4.3).
    pub hostname: Hostname,
    /// CLOCK_REALTIME at acquisition, nanoseconds since the UNIX epoch (§3.2).
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
    pub timestamp_ns: u64,
    /// The random id of this acquisition (§3.2), checked at release (§9.1).
    pub writer_id: WriterId,
    /// The format version: 1 ([`decode`] accepts no other).
    pub version: u32,
}

/// What makes bytes not a valid record, checked in this order (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "code", rename_all = "kebab-case"))]
pub enum DecodeError {
    /// `length`: not exactly 104 bytes.
    #[error("length is {found} bytes, a record is exactly 104")]
    Length {
        /// The length found; for a file, its size (§4.1).
        found: u64,
    },
    /// `magic`: the first four bytes are not `46 4C 56 52`.
    #[error("magic is {} ({}), expected 46 4c 56 52", hex_spaced(found), if *big_endian { "the big-endian spelling \"RVLF\"" } else { "not a lock record" })]
    Magic {
        /// The four bytes found.
        #[cfg_attr(feature = "serde", serde(serialize_with = "hex_bytes"))]
        found: [u8; 4],
        /// True when they are the big-endian spelling `52 56 4C 46` ("RVLF").
        big_endian: bool,
    },
    /// `checksum`: the value at 0x64 is not the CRC-32/IEEE of bytes 0x00–0x63.
    #[error("checksum stored {stored:#010x}, computed CRC-32 {computed:#010x}{}", if *matches_crc32c { " (the stored value is the CRC32C of the record: written with the wrong checksum)" } else { "" })]
    Checksum {
        /// The value stored at 0x64.
        #[cfg_attr(feature = "serde", serde(serialize_with = "hex_u32"))]
        stored: u32,
        /// The CRC-32/IEEE of bytes 0x00–0x63.
        #[cfg_attr(feature = "serde", serde(serialize_with = "hex_u32"))]
        computed: u32,
        /// True when the stored value is the CRC-32C of those bytes instead.
        matches_crc32c: bool,
    },
    /// `version`: the version at 0x60 is not 1.
    #[error("version is {found}, only version 1 is known")]
    Version {
        /// The version found.
        found: u32,
    },
    /// `hostname-padding`: a nonzero byte follows the host name's first NUL.
    #[error("hostname field has a nonzero byte at offset {offset:#04x}, after its terminator")]
    HostnamePadding {
        /// The offset in the record of the first such byte.
        offset: usize,
    },
}

impl DecodeError {
    /// The stable error code of PROTOCOL.md §4.2, as used by the golden manifest.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Length { .. } => "length",
            DecodeError::Magic { .. } => "magic",
            DecodeError::Checksum { .. } => "checksum",
            DecodeError::Version { .. } => "version",
            DecodeError::HostnamePadding { .. } => "hostname-padding",
        }
    }
}

impl Record {
    /// The record this process writes: version 1, hostname cut by the writer's rule.
    pub fn new(pid: u32, raw_hostname: &[u8], timestamp_ns: u64, writer_id: WriterId) -> Self {
        Record {
            pid,
            hostname: Hostname::truncated(raw_hostname),
            timestamp_ns,
            writer_id,
            version: VERSION,
        }
    }
}

/// The bytes of `record` with its CRC-32 (IEEE) at 0x64.
pub fn encode(record: &Record) -> [u8; RECORD_LEN] {
    let mut buf = [0u8; RECORD_LEN];
    buf[offset::MAGIC..offset::PID].copy_from_slice(&MAGIC_BYTES);
    buf[offset::PID..offset::HOSTNAME].copy_from_slice(&record.pid.to_le_bytes());
    let name = record.hostname.as_bytes();
    buf[offset::HOSTNAME..offset::HOSTNAME + name.len()].copy_from_slice(name);
    buf[offset::TIMESTAMP..offset::WRITER_ID].copy_from_slice(&record.timestamp_ns.to_le_bytes());
    buf[offset::WRITER_ID..offset::VERSION].copy_from_slice(&record.writer_id.0);
    buf[offset::VERSION..offset::CHECKSUM].copy_from_slice(&record.version.to_le_bytes());
    seal(&mut buf);
    buf
}

/// Recompute and store the checksum of `buf` (used by fixture generators too).
pub fn seal(buf: &mut [u8; RECORD_LEN]) {
    let crc = crc32fast::hash(&buf[..offset::CHECKSUM]);
    buf[offset::CHECKSUM..].copy_from_slice(&crc.to_le_bytes());
}

/// Decode `bytes` as a record, or say what is wrong with them (§4.2).
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let buf: &[u8; RECORD_LEN] = bytes.try_into().map_err(|_| DecodeError::Length {
        found: bytes.len() as u64,
    })?;
    let magic = field::<4>(buf, offset::MAGIC);
    if magic != MAGIC_BYTES {
        return Err(DecodeError::Magic {
            found: magic,
            big_endian: magic == MAGIC.to_be_bytes(),
        });
    }
    let stored = u32::from_le_bytes(field(buf, offset::CHECKSUM));
    let computed = crc32fast::hash(&buf[..offset::CHECKSUM]);
    if stored != computed {
        return Err(DecodeError::Checksum {
            stored,
            computed,
            matches_crc32c: stored == crc32c(&buf[..offset::CHECKSUM]),
        });
    }
    let version = u32::from_le_bytes(field(buf, offset::VERSION));
    if version != VERSION {
        return Err(DecodeError::Version { found: version });
    }
    let name_field = &buf[offset::HOSTNAME..offset::TIMESTAMP];
    let len = name_field
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(HOSTNAME_FIELD);
    if let Some(pad) = name_field[len..].iter().position(|&b| b != 0) {
        return Err(DecodeError::HostnamePadding {
            offset: offset::HOSTNAME + len + pad,
        });
    }
    Ok(Record {
        pid: u32::from_le_bytes(field(buf, offset::PID)),
        hostname: Hostname(name_field[..len].to_vec()),
        timestamp_ns: u64::from_le_bytes(field(buf, offset::TIMESTAMP)),
        writer_id: WriterId(field(buf, offset::WRITER_ID)),
        version,
    })
}

/// `N` bytes of `buf` at `at`; callers pass offsets inside the record.
fn field<const N: usize>(buf: &[u8; RECORD_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

/// CRC-32C (Castagnoli), only to recognise records written with the wrong checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

/// Lowercase hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex, one space between bytes: "46 4c 56 52".
pub fn hex_spaced(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record::new(
            4242,
            b"host-a",
            1_700_000_000_000_000_000,
            WriterId([7; 16]),
        )
    }

    #[test]
    fn magic_is_flvr_on_disk() {
        assert_eq!(&encode(&sample())[..4], b"FLVR");
    }

    #[test]
    fn crc_check_values() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&sample())), Ok(sample()));
    }

    #[test]
    fn big_endian_magic_is_named() {
        let mut buf = encode(&sample());
        buf[..4].copy_from_slice(b"RVLF");
        seal(&mut buf);
        assert_eq!(
            decode(&buf),
            Err(DecodeError::Magic {
                found: *b"RVLF",
                big_endian: true
            })
        );
    }

    #[test]
    fn crc32c_checksum_is_recognised() {
        let mut buf = encode(&sample());
        let c = crc32c(&buf[..offset::CHECKSUM]);
        buf[offset::CHECKSUM..].copy_from_slice(&c.to_le_bytes());
        assert!(matches!(
            decode(&buf),
            Err(DecodeError::Checksum {
                matches_crc32c: true,
                ..
            })
        ));
    }

    #[test]
    fn writer_truncates_hostname_to_62_bytes() {
        let r = Record::new(1, &[b'h'; 80], 0, WriterId::default());
        assert_eq!(r.hostname.len(), HOSTNAME_MAX);
        assert_eq!(encode(&r)[offset::HOSTNAME + HOSTNAME_MAX], 0);
    }
}
