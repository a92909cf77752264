//! Property tests of the record codec (`rvlf_lock::record`, PROTOCOL.md §3 and §4.2).
//!
//! Every property runs a fixed number of cases from a fixed seed, so a run is
//! reproducible; the seed is printed and can be changed with
//! `RVLF_PROPTEST_SEED=<64 hex digits>` to explore other inputs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseResult, TestRng, TestRunner};
use rvlf_lock::record::{
    crc32c, decode, encode, offset, seal, DecodeError, Hostname, Record, WriterId, HOSTNAME_MAX,
    MAGIC_BYTES, RECORD_LEN, VERSION,
};

/// The seed used when `RVLF_PROPTEST_SEED` is not set.
const DEFAULT_SEED: [u8; 32] = *b"rvlf record codec properties v1.";

/// The checksum covers bytes 0x00..0x64; the record is 0x68 bytes.
const CHECKED: usize = offset::CHECKSUM;

fn seed() -> [u8; 32] {
    let Ok(text) = std::env::var("RVLF_PROPTEST_SEED") else {
        return DEFAULT_SEED;
    };
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .filter_map(|i| text.get(i..i + 2))
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect();
    bytes
        .try_into()
        .expect("RVLF_PROPTEST_SEED must be 64 hex digits")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run `test` on `cases` inputs from `strategy`, deterministically, and panic
/// with the (shrunk) failing input and the seed if any case fails.
fn check<S>(name: &str, cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let seed = seed();
    println!("{name}: {cases} cases, seed {}", hex(&seed));
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(config, rng);
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("{name} failed (seed {}): {failure}", hex(&seed));
    }
}

/// Any name a record can carry: 0..=64 bytes, none of them NUL (§4.3).
fn any_hostname() -> impl Strategy<Value = Hostname> {
    prop::collection::vec(1u8..=255, 0..=64)
        .prop_map(|bytes| Hostname::new(bytes).expect("no NUL, at most 64 bytes"))
}

/// Every field value a version-1 record can hold.
fn any_record() -> impl Strategy<Value = Record> {
    (
        any::<u32>(),
        any_hostname(),
        any::<u64>(),
        any::<[u8; 16]>(),
    )
        .prop_map(|(pid, hostname, timestamp_ns, id)| Record {
            pid,
            hostname,
            timestamp_ns,
            writer_id: WriterId(id),
            version: VERSION,
        })
}

/// Raw host names as gethostname(2) might give them: mostly non-NUL bytes,
/// sometimes a NUL, of any length up to 300.
fn any_raw_name() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![12 => 1u8..=255, 1 => Just(0u8)];
    prop_oneof![
        prop::collection::vec(byte.clone(), 0..=300),
        prop::collection::vec(byte, 55..=70),
    ]
}

/// The writer's rule of §3.2 and §5.2, written out independently: the bytes
/// before the first NUL, at most 62 of them.
fn expected_name(raw: &[u8]) -> &[u8] {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    &raw[..end.min(HOSTNAME_MAX)]
}

#[test]
fn every_record_round_trips_through_its_104_bytes() {
    check("round trip", 512, any_record(), |record| {
        let bytes = encode(&record);
        prop_assert_eq!(&bytes[..4], b"FLVR");
        prop_assert_eq!(&bytes[4..8], &record.pid.to_le_bytes());
        let name = record.hostname.as_bytes();
        prop_assert_eq!(&bytes[8..8 + name.len()], name);
        prop_assert!(bytes[8 + name.len()..0x48].iter().all(|&b| b == 0));
        prop_assert_eq!(&bytes[0x48..0x50], &record.timestamp_ns.to_le_bytes());
        prop_assert_eq!(&bytes[0x50..0x60], &record.writer_id.0);
        prop_assert_eq!(&bytes[0x60..0x64], &1u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..CHECKED]);
        prop_assert_eq!(&bytes[0x64..], &crc.to_le_bytes());
        prop_assert_eq!(decode(&bytes), Ok(record));
        Ok(())
    });
}

/// The error §4.2 predicts for `flipped`, a valid record with bit `bit` flipped.
fn check_flip(original: &[u8; RECORD_LEN], bit: usize) -> TestCaseResult {
    let mut flipped = *original;
    flipped[bit / 8] ^= 1 << (bit % 8);
    let result = decode(&flipped);
    let err = match result {
        Ok(r) => return Err(TestCaseError::fail(format!("bit {bit}: accepted as {r:?}"))),
        Err(e) => e,
    };
    if bit < 32 {
        let found: [u8; 4] = flipped[..4].try_into().expect("4 bytes");
        let want = DecodeError::Magic {
            found,
            big_endian: false,
        };
        prop_assert_eq!(err, want, "bit {}", bit);
        return Ok(());
    }
    let stored = u32::from_le_bytes(flipped[CHECKED..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&flipped[..CHECKED]);
    match err {
        DecodeError::Checksum {
            stored: s,
            computed: c,
            ..
        } => {
            prop_assert_eq!((s, c), (stored, computed), "bit {}", bit);
            prop_assert_ne!(s, c);
        }
        other => {
            let why = format!("bit {bit}: {} ({other}), expected checksum", other.code());
            return Err(TestCaseError::fail(why));
        }
    }
    Ok(())
}

#[test]
fn every_single_bit_flip_is_detected_with_the_code_4_2_predicts() {
    check("single bit flips", 256, any_record(), |record| {
        let bytes = encode(&record);
        for bit in 0..RECORD_LEN * 8 {
            check_flip(&bytes, bit)?;
        }
        Ok(())
    });
}

/// Bytes that are almost a record: the magic, random fields, sometimes
/// version 1, sometimes a clean hostname field, usually a correct checksum.
/// These reach every check of §4.2, and `Ok`.
fn near_record() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 40]>(),
        0usize..=64,
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(|(a, b, c, name_len, (magic, version, clean, sealed))| {
            let mut buf = [0u8; RECORD_LEN];
            buf[..32].copy_from_slice(&a);
            buf[32..64].copy_from_slice(&b);
            buf[64..].copy_from_slice(&c);
            if magic {
                buf[..4].copy_from_slice(&MAGIC_BYTES);
            }
            if version {
                buf[0x60..0x64].copy_from_slice(&1u32.to_le_bytes());
            }
            if clean {
                let name = &mut buf[0x08..0x48];
                name[..name_len].iter_mut().for_each(|b| *b = (*b).max(1));
                name[name_len..].fill(0);
            }
            if sealed {
                seal(&mut buf);
            }
            buf.to_vec()
        })
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    let near_length = prop_oneof![Just(103usize), Just(104), Just(105)]
        .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n));
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..=300),
        2 => near_length,
        3 => near_record(),
    ]
}

/// §4.2 written out independently of the decoder: the first failing check.
fn expected_code(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() != RECORD_LEN {
        return Some("length");
    }
    if bytes[..4] != MAGIC_BYTES {
        return Some("magic");
    }
    let stored = u32::from_le_bytes(bytes[CHECKED..].try_into().expect("4 bytes"));
    if stored != crc32fast::hash(&bytes[..CHECKED]) {
        return Some("checksum");
    }
    if bytes[0x60..0x64] != 1u32.to_le_bytes() {
        return Some("version");
    }
    let name = &bytes[0x08..0x48];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    if name[end..].iter().any(|&b| b != 0) {
        return Some("hostname-padding");
    }
    None
}

#[test]
fn decoding_any_bytes_never_panics_and_accepts_only_canonical_records() {
    let seen: RefCell<BTreeMap<&'static str, u32>> = RefCell::default();
    check("decode any bytes", 3000, any_bytes(), |bytes| {
        let result = decode(&bytes);
        let code = result.as_ref().err().map(DecodeError::code);
        prop_assert_eq!(code, expected_code(&bytes));
        if let Ok(record) = &result {
            prop_assert_eq!(&encode(record)[..], &bytes[..]);
        }
        *seen.borrow_mut().entry(code.unwrap_or("ok")).or_default() += 1;
        Ok(())
    });
    let seen = seen.into_inner();
    println!("outcomes: {seen:?}");
    for outcome in [
        "ok",
        "length",
        "magic",
        "checksum",
        "version",
        "hostname-padding",
    ] {
        assert!(seen.contains_key(outcome), "no input reached {outcome}");
    }
}

#[test]
fn writers_truncate_host_names_to_62_bytes_before_any_nul() {
    let strategy = (any_raw_name(), any::<u32>(), any::<u64>());
    check("hostname truncation", 1024, strategy, |(raw, pid, ts)| {
        let want = expected_name(&raw);
        let name = Hostname::truncated(&raw);
        prop_assert_eq!(name.as_bytes(), want);
        let record = Record::new(pid, &raw, ts, WriterId([9; 16]));
        prop_assert_eq!(&record.hostname, &name);
        let bytes = encode(&record);
        let field = &bytes[0x08..0x48];
        prop_assert_eq!(&field[..want.len()], want);
        prop_assert_eq!(field[want.len()], 0, "NUL at 0x08 + {}", want.len());
        prop_assert!(field[want.len()..].iter().all(|&b| b == 0));
        let read = decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read.hostname, name);
        Ok(())
    });
}

/// Two raw names: a common head, then each its own tail. When the head is
/// shorter than 62 bytes a NUL ends it in both (or both end there), so the
/// names agree on their first 62 bytes before any NUL.
fn names_agreeing_on_62_bytes() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let tail = prop::collection::vec(any::<u8>(), 0..=80);
    (
        prop::collection::vec(1u8..=255, 0..=90),
        tail.clone(),
        tail,
        any::<bool>(),
    )
        .prop_map(|(head, tail_a, tail_b, cut)| {
            let (mut a, mut b) = (head.clone(), head.clone());
            if head.len() >= HOSTNAME_MAX || cut {
                if head.len() < HOSTNAME_MAX {
                    a.push(0);
                    b.push(0);
                }
                a.extend(tail_a);
                b.extend(tail_b);
            }
            (a, b)
        })
}

#[test]
fn names_that_agree_on_62_bytes_compare_equal_after_truncation() {
    check(
        "truncated equality",
        1024,
        names_agreeing_on_62_bytes(),
        |(a, b)| {
            prop_assert_eq!(expected_name(&a), expected_name(&b));
            // What a reader on host `a` compares with a record written on host `b` (§5.2).
            let local = Hostname::truncated(&a);
            let written = encode(&Record::new(1, &b, 2, WriterId([3; 16])));
            let stored = decode(&written).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(stored.hostname, local);
            Ok(())
        },
    );
}

#[test]
fn names_that_differ_within_62_bytes_stay_different() {
    let strategy = (
        prop::collection::vec(1u8..=255, 1..=120),
        any::<prop::sample::Index>(),
        1u8..=255,
    );
    check("truncated inequality", 1024, strategy, |(a, at, delta)| {
        let mut b = a.clone();
        let i = at.index(a.len().min(HOSTNAME_MAX));
        b[i] = b[i].wrapping_add(delta).max(1);
        prop_assume!(b[i] != a[i]);
        prop_assert_ne!(Hostname::truncated(&a), Hostname::truncated(&b));
        Ok(())
    });
}

#[test]
fn a_crc32c_checksum_is_reported_as_one_with_both_values() {
    check("crc32c checksum", 512, any_record(), |record| {
        let mut bytes = encode(&record);
        let crc = crc32fast::hash(&bytes[..CHECKED]);
        let castagnoli = crc32c(&bytes[..CHECKED]);
        prop_assume!(castagnoli != crc);
        bytes[CHECKED..].copy_from_slice(&castagnoli.to_le_bytes());
        let want = DecodeError::Checksum {
            stored: castagnoli,
            computed: crc,
            matches_crc32c: true,
        };
        prop_assert_eq!(decode(&bytes), Err(want));
        Ok(())
    });
}

#[test]
fn any_other_wrong_checksum_is_not_called_a_crc32c() {
    check(
        "wrong checksum",
        512,
        (any_record(), any::<u32>()),
        |(record, stored)| {
            let mut bytes = encode(&record);
            let crc = crc32fast::hash(&bytes[..CHECKED]);
            prop_assume!(stored != crc && stored != crc32c(&bytes[..CHECKED]));
            bytes[CHECKED..].copy_from_slice(&stored.to_le_bytes());
            let want = DecodeError::Checksum {
                stored,
                computed: crc,
                matches_crc32c: false,
            };
            prop_assert_eq!(decode(&bytes), Err(want));
            Ok(())
        },
    );
}

/// Inputs of every length but 104: random bytes, and valid records cut short
/// or with bytes appended.
fn wrong_length() -> impl Strategy<Value = Vec<u8>> {
    let cut = (any_record(), 0usize..RECORD_LEN).prop_map(|(r, n)| encode(&r)[..n].to_vec());
    let long =
        (any_record(), prop::collection::vec(any::<u8>(), 1..=196)).prop_map(|(r, extra)| {
            let mut bytes = encode(&r).to_vec();
            bytes.extend(extra);
            bytes
        });
    let random = prop::collection::vec(any::<u8>(), 0..=300);
    prop_oneof![
        cut,
        long,
        random.prop_filter("not 104 bytes", |b| b.len() != RECORD_LEN)
    ]
}

#[test]
fn any_length_but_104_is_a_length_error_reporting_the_length() {
    check("length", 1024, wrong_length(), |bytes| {
        let want = DecodeError::Length {
            found: bytes.len() as u64,
        };
        prop_assert_eq!(decode(&bytes), Err(want));
        Ok(())
    });
}
