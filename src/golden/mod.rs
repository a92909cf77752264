//! The golden lock files of `golden/`: byte-level fixtures any language can
//! use, their manifest, and the regeneration and drift check behind
//! `rvlf golden regen` and `rvlf golden check`.
//!
//! Every fixture is built here, in code, from
//! [`record::encode`](rvlf_lock::record::encode), explicit byte edits and
//! [`record::seal`](rvlf_lock::record::seal): never from randomness or the clock,
//! so the files are the same on every machine. Each fixture declares what a
//! decoder must make of it, and nothing is written unless
//! [`record::decode`](rvlf_lock::record::decode) agrees with every declaration.
//!
//! This module holds the types; `catalogue.rs` builds the fixtures,
//! `manifest.rs` writes them and their manifest, and `check.rs` validates
//! the catalogue and compares a directory with it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rvlf_lock::record::{DecodeError, HostnameError, Record};

mod catalogue;
mod check;
mod manifest;

pub use catalogue::{catalogue, BASE_TIMESTAMP_NS, SAME_HOST};
pub use check::{check, compare, validate};
pub use manifest::{files, manifest, regen, sha256_hex, write};

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
