//! What `rvlf inspect` shows for every golden fixture, pinned as insta
//! snapshots (tests/snapshots/): the annotated hex, the decode result and the
//! verdict, in one fixed context so that the output is the same everywhere.
//!
//! The context: the file is `golden/<file>`, modified 250 ms after the base
//! timestamp of the fixtures, inspected 60 s after it on the host
//! "golden-host", where pid 1 is alive and every other pid is dead.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use rvlf::golden::{self, Fixture};
use rvlf_lock::inspect::{examine, Inspection};
use rvlf_lock::policy::Liveness;
use rvlf_lock::Hostname;

const BASE_NS: i128 = golden::BASE_TIMESTAMP_NS as i128;
/// The file's mtime: just after the record's timestamp, as when it was written.
const MTIME_NS: i128 = BASE_NS + 250_000_000;
/// Past the 30 s same-host threshold, within the 300 s ones.
const NOW_NS: i128 = BASE_NS + 60_000_000_000;

/// Names of the JSON snapshots, besides one per fixture id.
const JSON_SNAPSHOTS: [(&str, &str); 2] = [
    ("json-worked-example", "worked-example"),
    ("json-corrupt-checksum", "corrupt-checksum"),
];

fn probe(pid: u32) -> Liveness {
    if pid == 1 {
        Liveness::Alive
    } else {
        Liveness::Dead
    }
}

fn inspection(f: &Fixture) -> Inspection {
    let local = Hostname::new(golden::SAME_HOST).expect("golden-host is a valid name");
    let path = Path::new("golden").join(f.file());
    let size = f.bytes.len() as u64;
    examine(&path, &f.bytes, size, MTIME_NS, NOW_NS, &local, probe)
}

fn catalogue() -> Vec<Fixture> {
    golden::catalogue().expect("the catalogue validates")
}

fn fixture(id: &str) -> Fixture {
    catalogue()
        .into_iter()
        .find(|f| f.id == id)
        .expect("the fixture is in the catalogue")
}

#[test]
fn inspect_render_of_every_fixture() {
    for f in catalogue() {
        insta::with_settings!({ description => f.description, omit_expression => true }, {
            insta::assert_snapshot!(f.id, inspection(&f).render());
        });
    }
}

#[test]
fn inspect_json_of_a_valid_and_an_invalid_fixture() {
    for (name, id) in JSON_SNAPSHOTS {
        let f = fixture(id);
        let json = serde_json::to_string_pretty(&inspection(&f)).expect("Inspection serializes");
        insta::with_settings!({ description => f.description, omit_expression => true }, {
            insta::assert_snapshot!(name, json);
        });
    }
}

/// A snapshot left behind by a removed or renamed fixture would never be
/// checked again; every `.snap` file must belong to a snapshot taken above.
#[test]
fn every_snapshot_file_belongs_to_a_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let mut expected: BTreeSet<String> = catalogue().iter().map(|f| f.id.to_string()).collect();
    expected.extend(JSON_SNAPSHOTS.iter().map(|(name, _)| name.to_string()));
    let prefix = "inspect_snapshots__";
    let found: BTreeSet<String> = fs::read_dir(&dir)
        .expect("tests/snapshots exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            Some(
                name.strip_prefix(prefix)?
                    .strip_suffix(".snap")?
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(found, expected, "snapshot files in {}", dir.display());
}
