//! The catalogue of broken variants of the reference: the one implementation
//! with one deliberate defect each (or all of the original's). The
//! conformance suite (`rvlf adapter --mutant NAME`), stress
//! (`rvlf stress --variant NAME`) and the model check
//! (`rvlf model-check --variant NAME`) all take their variants from here, and
//! prove themselves by catching them.
//!
//! A variant with no flaw runs the shipped `WriterLock` itself; the others
//! run the same machine under [`Flaws`] rules ([`FlawedLock`]).

use std::path::Path;
use std::time::Duration;

use rvlf_lock::machine::{FileId, Held, Protocol, Rules};
use rvlf_lock::policy::{Contents, Facts};
use rvlf_lock::record::{DecodeError, Hostname, RECORD_LEN};
use rvlf_lock::{AcquireError, Record, ReleaseError, Released, Thresholds, WriterLock};

use crate::flaws::{FlawedLock, Flaws};
use crate::sim::Links;

/// One named variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// Its name on command lines and in reports.
    pub name: &'static str,
    /// The defect, in one line.
    pub defect: &'static str,
    /// The rules it breaks.
    pub flaws: Flaws,
    /// The thresholds it judges by.
    pub thresholds: Thresholds,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The protocol itself.
pub const REFERENCE: Variant = Variant {
    name: "reference",
    defect: "none: the protocol",
    flaws: Flaws::NONE,
    thresholds: Thresholds::V1,
};

/// An older name of `original`, still accepted.
const ALIASES: &[(&str, &str)] = &[("seed", "original")];

/// Every broken variant, in the order reports list them.
pub const BROKEN: &[Variant] = &[
    Variant {
        name: "original",
        defect: "the original implementation's behaviour: all six defects of PROTOCOL.md §10",
        flaws: Flaws::ORIGINAL,
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "partial-record",
        defect: "§10 defect 1: creates then writes, and deletes files that do not decode",
        flaws: Flaws {
            create_then_write: true,
            malformed_is_garbage: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "create-then-write",
        defect: "publishes by creating the lock file, then writing it: partial records are visible",
        flaws: Flaws {
            create_then_write: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "malformed-is-garbage",
        defect: "deletes a lock file that does not decode, whatever its age",
        flaws: Flaws {
            malformed_is_garbage: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "unguarded-break",
        defect: "§10 defect 2: breaks a stale lock without the flock guard and re-check",
        flaws: Flaws {
            unguarded_break: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "unsafe-reads",
        defect: "§10 defect 3: reads the lock path following symlinks, blocking, to the end",
        flaws: Flaws {
            unsafe_reads: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "hostname-from-env",
        defect: "§10 defect 4: host identity from $HOSTNAME, not gethostname(2)",
        flaws: Flaws {
            env_hostname: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "untruncated-compare",
        defect: "§10 defect 4: compares the whole local host name with the stored, truncated one",
        flaws: Flaws {
            untruncated_compare: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "untruncated-hostname",
        defect: "writes up to 64 bytes of the host name, leaving no NUL",
        flaws: Flaws {
            untruncated_write: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "trusted-pids",
        defect: "§10 defect 5: PID 0 and PIDs >= 2^31 are probed and look alive",
        flaws: Flaws {
            trusted_pids: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "unchecked-checksum",
        defect: "§10 defect 6: trusts a record whatever its checksum",
        flaws: Flaws {
            unchecked_checksum: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "future-never-expires",
        defect: "§10 defect 6: age from the timestamp alone; a future timestamp never expires",
        flaws: Flaws {
            timestamp_age_only: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "crc32c",
        defect: "writes and checks CRC32C instead of CRC-32 (IEEE)",
        flaws: Flaws {
            crc32c: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "big-endian-magic",
        defect: "writes the magic big-endian (\"RVLF\") and accepts it",
        flaws: Flaws {
            big_endian_magic: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "no-owner-check",
        defect: "release unlinks the lock without checking that it is still ours",
        flaws: Flaws {
            release_unchecked: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "release-by-id-only",
        defect: "release checks the writer id but not the file identity",
        flaws: Flaws {
            release_by_id_only: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "stale-whenever-dead",
        defect: "a dead holder's lock is stale at once, whatever its age",
        flaws: Flaws {
            stale_when_dead: true,
            ..Flaws::NONE
        },
        thresholds: Thresholds::V1,
    },
    Variant {
        name: "same-host-29s",
        defect: "same-host threshold off by one: 29 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.same_host(secs(29)),
    },
    Variant {
        name: "same-host-31s",
        defect: "same-host threshold off by one: 31 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.same_host(secs(31)),
    },
    Variant {
        name: "other-host-299s",
        defect: "other-host threshold off by one: 299 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.other_host(secs(299)),
    },
    Variant {
        name: "other-host-301s",
        defect: "other-host threshold off by one: 301 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.other_host(secs(301)),
    },
    Variant {
        name: "malformed-299s",
        defect: "malformed-file threshold off by one: 299 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.malformed(secs(299)),
    },
    Variant {
        name: "malformed-301s",
        defect: "malformed-file threshold off by one: 301 s",
        flaws: Flaws::NONE,
        thresholds: Thresholds::V1.malformed(secs(301)),
    },
];

/// The variant called `name` (the reference, a broken one, or an alias).
pub fn find(name: &str) -> Option<&'static Variant> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, real)| *real);
    std::iter::once(&REFERENCE)
        .chain(BROKEN)
        .find(|v| v.name == name)
}

/// The broken variant called `name`.
pub fn find_broken(name: &str) -> Option<&'static Variant> {
    find(name).filter(|v| v.name != REFERENCE.name)
}

/// Every variant name, comma-separated (for error messages and `--help`).
pub fn names() -> String {
    std::iter::once(&REFERENCE)
        .chain(BROKEN)
        .map(|v| v.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A clap value parser for `--variant` and `--mutant`.
pub fn parse(name: &str) -> Result<&'static Variant, String> {
    find(name).ok_or_else(|| format!("no variant {name:?}; the variants are: {}", names()))
}

/// The rules of a variant: exactly the shipped ones, or flawed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariantRules {
    /// [`Protocol`]: the code that ships.
    Protocol,
    /// The machine's rules as these flaws answer them.
    Flawed(Flaws),
}

/// Calls `$method` on the protocol's rules or on the flaws.
macro_rules! delegate {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self {
            VariantRules::Protocol => Protocol.$method($($arg),*),
            VariantRules::Flawed(f) => f.$method($($arg),*),
        }
    };
}

impl Rules for VariantRules {
    fn encode(&self, record: &Record) -> [u8; RECORD_LEN] {
        delegate!(self.encode(record))
    }
    fn decode(&self, bytes: &[u8]) -> Result<Record, DecodeError> {
        delegate!(self.decode(bytes))
    }
    fn pid_to_probe(&self, contents: &Contents, local_host: &Hostname) -> Option<u32> {
        delegate!(self.pid_to_probe(contents, local_host))
    }
    fn judge(&self, facts: &Facts<'_>, thresholds: &Thresholds) -> rvlf_lock::Verdict {
        delegate!(self.judge(facts, thresholds))
    }
    fn breaks_under_guard(&self) -> bool {
        delegate!(self.breaks_under_guard())
    }
    fn checks_owner_on_release(&self) -> bool {
        delegate!(self.checks_owner_on_release())
    }
    fn still_ours(&self, held: &Held, contents: &Contents, found: FileId) -> bool {
        delegate!(self.still_ours(held, contents, found))
    }
}

/// A lock held by a variant.
#[derive(Debug)]
pub enum Lock {
    /// The shipped lock (a variant with no flaw).
    Shipped(WriterLock),
    /// The machine under flawed rules.
    Flawed(FlawedLock),
}

impl Variant {
    /// The rules it decides by: the protocol's own, unless it has a flaw.
    pub fn rules(&self) -> VariantRules {
        if self.flaws.any() {
            VariantRules::Flawed(self.flaws)
        } else {
            VariantRules::Protocol
        }
    }

    /// How its processes publish on the simulated file system, where links work.
    pub fn links(&self) -> Links {
        if self.flaws.create_then_write {
            Links::RefusedUnguarded
        } else {
            Links::Work
        }
    }

    /// Take the lock file at `lock_path` as this variant does, without waiting.
    #[allow(clippy::result_large_err)]
    pub fn try_acquire_file(&self, lock_path: &Path) -> Result<Lock, AcquireError> {
        if self.flaws.any() {
            FlawedLock::try_acquire_file(lock_path, self.flaws, self.thresholds).map(Lock::Flawed)
        } else {
            let options = rvlf_lock::Options::default().thresholds(self.thresholds);
            WriterLock::try_acquire_file(lock_path, options).map(Lock::Shipped)
        }
    }
}

impl Lock {
    /// The record this lock published.
    pub fn record(&self) -> &Record {
        match self {
            Lock::Shipped(l) => l.record(),
            Lock::Flawed(l) => l.record(),
        }
    }

    /// Give the lock back.
    pub fn release(self) -> Result<Released, ReleaseError> {
        match self {
            Lock::Shipped(l) => l.release(),
            Lock::Flawed(l) => l.release(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_seed_means_original() {
        let mut seen = std::collections::BTreeSet::new();
        for v in std::iter::once(&REFERENCE).chain(BROKEN) {
            assert!(seen.insert(v.name), "{} twice", v.name);
        }
        assert_eq!(find("seed").map(|v| v.name), Some("original"));
        assert!(find_broken("reference").is_none());
    }

    #[test]
    fn every_broken_variant_differs_from_the_reference() {
        for v in BROKEN {
            assert!(
                v.flaws.any() || v.thresholds != Thresholds::V1,
                "{} is the reference",
                v.name
            );
        }
    }
}
