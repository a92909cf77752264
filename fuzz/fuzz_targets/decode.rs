//! `rvlf_lock::decode` on arbitrary bytes: it never panics, and whenever it
//! accepts bytes, `encode` of the record gives back exactly those bytes
//! (decoding is canonical, lock/src/record.rs).
//!
//! Random bytes almost never carry a right CRC-32, so a 104-byte input is
//! also decoded a second time with its checksum recomputed: that reaches
//! the version and host-name checks and the accepting path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvlf_lock::{decode, encode, DecodeError, RECORD_LEN};

/// Where the CRC-32 of the bytes before it sits (PROTOCOL.md §3.1).
const CHECKSUM_AT: usize = RECORD_LEN - 4;

fn check(bytes: &[u8]) -> Result<(), DecodeError> {
    match decode(bytes) {
        Ok(record) => {
            assert_eq!(
                encode(&record).as_slice(),
                bytes,
                "decode accepted bytes that encode does not give back: {record:?}"
            );
            assert_eq!(record.version, 1, "only version 1 decodes");
            assert!(record.hostname.len() <= 64);
            assert!(!record.hostname.as_bytes().contains(&0));
            // The printable forms must not panic either.
            let _ = format!("{record:?} {}", record.hostname);
            Ok(())
        }
        Err(e) => {
            assert!(matches!(
                e.code(),
                "length" | "magic" | "checksum" | "version" | "hostname-padding"
            ));
            assert_eq!(e.code() == "length", bytes.len() != RECORD_LEN);
            let _ = format!("{e} {e:?}");
            Err(e)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = check(data);
    if let Ok(buf) = <[u8; RECORD_LEN]>::try_from(data) {
        let mut sealed = buf;
        let crc = crc32fast::hash(&sealed[..CHECKSUM_AT]);
        sealed[CHECKSUM_AT..].copy_from_slice(&crc.to_le_bytes());
        if let Err(e) = check(&sealed) {
            assert!(
                !matches!(e, DecodeError::Length { .. } | DecodeError::Checksum { .. }),
                "a sealed 104-byte record failed on {}",
                e.code()
            );
        }
    }
});
