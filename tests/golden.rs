//! The golden lock files: `golden/` in the repository is exactly what
//! `rvlf golden regen` writes, the drift check notices every kind of change,
//! and the manifest tells the truth about every file (its size, hash and what
//! the reference decoder makes of it).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rvlf::golden::{self, Class, DriftKind, Expect, Fixture, GoldenError};
use rvlf_lock::record::{self, hex, DecodeError, Record};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn repo_golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

fn manifest() -> Value {
    let path = repo_golden().join(golden::MANIFEST);
    let text = fs::read_to_string(&path).expect("golden/manifest.json is readable");
    serde_json::from_str(&text).expect("golden/manifest.json is JSON")
}

fn entries(manifest: &Value) -> &Vec<Value> {
    manifest["fixtures"]
        .as_array()
        .expect("the manifest has a fixtures array")
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("manifest entry {entry} has a string {name}"))
}

/// A fresh golden directory written by `regen`.
fn regenerated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    golden::regen(dir.path()).expect("regen writes into an empty directory");
    dir
}

fn catalogue() -> Vec<Fixture> {
    golden::catalogue().expect("the catalogue validates")
}

#[test]
fn repository_golden_dir_has_no_drift() {
    let drift = golden::check(&repo_golden()).expect("golden/ can be checked");
    assert!(
        drift.is_empty(),
        "golden/ differs from `cargo run -- golden regen`:\n{drift:#?}"
    );
}

#[test]
fn regen_is_deterministic_and_check_accepts_what_it_wrote() {
    let (a, b) = (regenerated(), regenerated());
    for f in catalogue() {
        let read = |dir: &Path| fs::read(dir.join(f.file())).expect("regen wrote the fixture");
        assert_eq!(
            read(a.path()),
            read(b.path()),
            "{} differs between runs",
            f.id
        );
    }
    let manifest = |dir: &Path| fs::read(dir.join(golden::MANIFEST)).expect("manifest written");
    assert_eq!(manifest(a.path()), manifest(b.path()));
    assert_eq!(golden::check(a.path()).expect("check runs"), vec![]);
}

#[test]
fn regen_returns_every_fixture_and_the_manifest() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let written = golden::regen(&dir.path().join("new")).expect("regen creates the directory");
    let mut expected: Vec<PathBuf> = catalogue()
        .iter()
        .map(|f| dir.path().join("new").join(f.file()))
        .collect();
    expected.push(dir.path().join("new").join(golden::MANIFEST));
    assert_eq!(written, expected);
}

#[test]
fn one_flipped_byte_in_a_fixture_is_reported_for_that_file_alone() {
    let dir = regenerated();
    let path = dir.path().join("valid-pid-1.lock");
    let mut bytes = fs::read(&path).expect("fixture written");
    bytes[0x30] ^= 0x01;
    fs::write(&path, bytes).expect("fixture rewritten");

    let drift = golden::check(dir.path()).expect("check runs");
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert_eq!(drift[0].path, path);
    assert_eq!(drift[0].kind, DriftKind::Differs);
    assert!(
        drift[0].what.contains("offset 0x30"),
        "the report names the offset: {}",
        drift[0].what
    );
}

#[test]
fn a_truncated_fixture_is_reported_with_both_sizes() {
    let dir = regenerated();
    let path = dir.path().join("valid-minimal.lock");
    fs::write(&path, [0x46, 0x4c]).expect("fixture rewritten");
    let drift = golden::check(dir.path()).expect("check runs");
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert!(
        drift[0].what.starts_with("2 bytes, 104 expected"),
        "{}",
        drift[0].what
    );
}

#[test]
fn a_changed_manifest_byte_is_reported() {
    let dir = regenerated();
    let path = dir.path().join(golden::MANIFEST);
    let text = fs::read_to_string(&path).expect("manifest written");
    fs::write(&path, text.replacen("\"pid\": 4242", "\"pid\": 4243", 1)).expect("rewritten");
    let drift = golden::check(dir.path()).expect("check runs");
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert_eq!(
        (drift[0].path.clone(), drift[0].kind),
        (path, DriftKind::Differs)
    );
    assert!(drift[0].what.contains("(line "), "{}", drift[0].what);
}

#[test]
fn a_deleted_fixture_is_reported_missing() {
    let dir = regenerated();
    let path = dir.path().join("invalid-length-103.lock");
    fs::remove_file(&path).expect("fixture removed");
    let drift = golden::check(dir.path()).expect("check runs");
    assert_eq!(drift.len(), 1, "{drift:#?}");
    assert_eq!(
        (drift[0].path.clone(), drift[0].kind),
        (path, DriftKind::Missing)
    );
}

#[test]
fn a_stray_lock_file_is_reported_and_regen_removes_only_lock_files() {
    let dir = regenerated();
    let stray = dir.path().join("valid-not-in-the-catalogue.lock");
    let other = dir.path().join("notes.txt");
    fs::write(&stray, b"stray").expect("stray written");
    fs::write(&other, b"keep me").expect("other file written");

    let drift = golden::check(dir.path()).expect("check runs");
    assert_eq!(drift.len(), 1, "only *.lock files count: {drift:#?}");
    assert_eq!(
        (drift[0].path.clone(), drift[0].kind),
        (stray.clone(), DriftKind::Extra)
    );

    golden::regen(dir.path()).expect("regen runs");
    assert!(!stray.exists(), "regen removes a stale fixture");
    assert_eq!(fs::read(&other).expect("other file kept"), b"keep me");
    assert_eq!(golden::check(dir.path()).expect("check runs"), vec![]);
}

#[test]
fn check_of_a_missing_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let err = golden::check(&dir.path().join("absent")).expect_err("nothing to check");
    assert!(matches!(err, GoldenError::Io { .. }), "{err}");
}

#[test]
fn write_refuses_a_declaration_that_disagrees_with_decode_and_writes_nothing() {
    let mut fixtures = catalogue();
    let pid_1 = fixtures
        .iter_mut()
        .find(|f| f.id == "pid-1")
        .expect("pid-1 is in the catalogue");
    let Expect::Record(r) = &mut pid_1.expect else {
        panic!("pid-1 declares a record")
    };
    r.pid = 2;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let err = golden::write(dir.path(), &fixtures).expect_err("declaration is wrong");
    assert!(
        matches!(err, GoldenError::Disagrees { ref id, .. } if id == "pid-1"),
        "{err}"
    );
    let left = fs::read_dir(dir.path()).expect("dir readable").count();
    assert_eq!(left, 0, "nothing may be written");
}

#[test]
fn validate_refuses_a_wrong_error_code_a_wrong_class_and_duplicate_bytes() {
    let base = catalogue();
    let find = |id: &str| {
        base.iter()
            .find(|f| f.id == id)
            .cloned()
            .expect("fixture is in the catalogue")
    };

    let mut wrong_code = find("version-2");
    wrong_code.expect = Expect::Error(DecodeError::Version { found: 0 });
    assert!(matches!(
        golden::validate(&[wrong_code]),
        Err(GoldenError::Disagrees { .. })
    ));

    let mut not_valid = find("hostname-63");
    not_valid.class = Class::Valid;
    assert!(matches!(
        golden::validate(&[not_valid]),
        Err(GoldenError::Class { .. })
    ));

    let mut twin = find("pid-1");
    twin.id = "pid-one";
    assert!(matches!(
        golden::validate(&[find("pid-1"), twin]),
        Err(GoldenError::Duplicate { .. })
    ));
}

#[test]
fn manifest_size_and_sha256_match_every_file() {
    let manifest = manifest();
    for entry in entries(&manifest) {
        let bytes = fs::read(repo_golden().join(field(entry, "file"))).expect("fixture exists");
        assert_eq!(entry["size"], json!(bytes.len()), "size of {entry}");
        let sha = hex(&Sha256::digest(&bytes));
        assert_eq!(
            field(entry, "sha256"),
            sha,
            "sha256 of {}",
            field(entry, "file")
        );
    }
}

/// The manifest's `expect` for decoding `bytes`, derived here independently
/// of the generator.
fn expected(bytes: &[u8]) -> Value {
    match record::decode(bytes) {
        Ok(Record {
            pid,
            hostname,
            timestamp_ns,
            writer_id,
            version,
        }) => json!({"record": {
            "pid": pid,
            "hostname_hex": hex(hostname.as_bytes()),
            "hostname": hostname.to_string(),
            "timestamp_ns": timestamp_ns.to_string(),
            "writer_id": hex(&writer_id.0),
            "version": version,
        }}),
        Err(e) => json!({"error": error_details(&e)}),
    }
}

fn error_details(e: &DecodeError) -> Value {
    let code = e.code();
    match *e {
        DecodeError::Length { found } => json!({"code": code, "length": found}),
        DecodeError::Magic { found, big_endian } => {
            json!({"code": code, "magic_hex": hex(&found), "big_endian": big_endian})
        }
        DecodeError::Checksum {
            stored,
            computed,
            matches_crc32c,
        } => json!({
            "code": code,
            "stored": format!("0x{stored:08x}"),
            "computed": format!("0x{computed:08x}"),
            "matches_crc32c": matches_crc32c,
        }),
        DecodeError::Version { found } => json!({"code": code, "version": found}),
        DecodeError::HostnamePadding { offset } => json!({"code": code, "offset": offset}),
    }
}

#[test]
fn decoding_every_file_gives_the_manifest_expect() {
    let manifest = manifest();
    for entry in entries(&manifest) {
        let bytes = fs::read(repo_golden().join(field(entry, "file"))).expect("fixture exists");
        assert_eq!(
            entry["expect"],
            expected(&bytes),
            "{}",
            field(entry, "file")
        );
    }
}

#[test]
fn ids_and_files_are_unique_and_the_class_prefix_fits_the_expectation() {
    let manifest = manifest();
    let (mut ids, mut files) = (HashSet::new(), HashSet::new());
    for entry in entries(&manifest) {
        let (id, file, class) = (
            field(entry, "id"),
            field(entry, "file"),
            field(entry, "class"),
        );
        assert!(ids.insert(id), "id {id} repeated");
        assert!(files.insert(file), "file {file} repeated");
        assert_eq!(file, format!("{class}-{id}.lock"), "file name of {id}");
        let kind = match class {
            "valid" | "impl" => "record",
            "invalid" => "error",
            other => panic!("{id}: unknown class {other}"),
        };
        assert!(
            entry["expect"].get(kind).is_some(),
            "{id}: {class} must expect a {kind}"
        );
        assert_eq!(
            entry["expect"].as_object().map(|o| o.len()),
            Some(1),
            "{id}"
        );
    }
}

#[test]
fn only_names_no_writer_may_write_are_implementation_defined() {
    let manifest = manifest();
    for entry in entries(&manifest) {
        let Some(r) = entry["expect"].get("record") else {
            continue;
        };
        let name_len = field(r, "hostname_hex").len() / 2;
        let class = if name_len > record::HOSTNAME_MAX {
            "impl"
        } else {
            "valid"
        };
        assert_eq!(
            field(entry, "class"),
            class,
            "{}: {name_len}-byte name",
            entry["id"]
        );
    }
}

#[test]
fn every_rule_cites_a_section_of_protocol_md() {
    let protocol = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md"))
        .expect("PROTOCOL.md is readable");
    let manifest = manifest();
    for entry in entries(&manifest) {
        let rule = field(entry, "rule");
        let number = rule.strip_prefix('§').expect("rules start with §");
        let heading = format!("\n### {number} ");
        assert!(
            protocol.contains(&heading),
            "{}: no section {rule}",
            entry["id"]
        );
    }
}

/// Whether some fixture's `expect.<kind>.<key>` equals `value`, e.g.
/// `("error", "code", "length")`.
fn has(manifest: &Value, kind: &str, key: &str, value: Value) -> bool {
    entries(manifest)
        .iter()
        .any(|e| e["expect"].get(kind).and_then(|x| x.get(key)) == Some(&value))
}

#[test]
fn the_catalogue_covers_every_error_code_and_the_boundaries() {
    let m = manifest();
    for code in ["length", "magic", "checksum", "version", "hostname-padding"] {
        assert!(
            has(&m, "error", "code", json!(code)),
            "no fixture for {code}"
        );
    }
    for length in [0, 1, 103, 105] {
        assert!(has(&m, "error", "length", json!(length)), "length {length}");
    }
    for version in [0, 2] {
        assert!(
            has(&m, "error", "version", json!(version)),
            "version {version}"
        );
    }
    assert!(
        has(&m, "error", "big_endian", json!(true)),
        "big-endian magic"
    );
    assert!(
        has(&m, "error", "matches_crc32c", json!(true)),
        "CRC32C checksum"
    );
    for pid in [0, 1, 1u64 << 31, u64::from(u32::MAX)] {
        assert!(has(&m, "record", "pid", json!(pid)), "pid {pid}");
    }
    for ts in [0, u64::MAX] {
        assert!(
            has(&m, "record", "timestamp_ns", json!(ts.to_string())),
            "timestamp {ts}"
        );
    }
    let name_lengths: HashSet<usize> = entries(&m)
        .iter()
        .filter_map(|e| e["expect"].get("record"))
        .map(|r| field(r, "hostname_hex").len() / 2)
        .collect();
    for n in [0, 1, 62, 63, 64] {
        assert!(name_lengths.contains(&n), "hostname of {n} bytes");
    }
}

#[test]
fn no_two_fixtures_have_the_same_bytes() {
    let manifest = manifest();
    let mut seen = HashSet::new();
    for entry in entries(&manifest) {
        assert!(
            seen.insert(field(entry, "sha256")),
            "{} repeats a file",
            entry["id"]
        );
    }
}
