//! Named mutants: the reference with one deliberate defect each
//! (`rvlf adapter --mutant NAME`). The suite proves itself by failing every
//! one of them on at least one MUST case.

use std::time::Duration;

use crate::flaws::Flaws;
use crate::lock::Options;
use crate::policy::Thresholds;

/// One named defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mutant {
    pub name: &'static str,
    pub defect: &'static str,
    pub options: Options,
}

const fn flawed(flaws: Flaws) -> Options {
    Options {
        thresholds: Thresholds::V1,
        flaws,
    }
}

const fn thresholds(same_host: u64, other_host: u64, malformed: u64) -> Options {
    Options {
        thresholds: Thresholds {
            same_host: Duration::from_secs(same_host),
            other_host: Duration::from_secs(other_host),
            malformed: Duration::from_secs(malformed),
        },
        flaws: Flaws::NONE,
    }
}

/// Every mutant, in the order reports list them.
pub const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "seed",
        defect: "the original implementation's behaviour: all six defects of PROTOCOL.md §10",
        options: flawed(Flaws::SEED),
    },
    Mutant {
        name: "partial-record",
        defect: "§10 defect 1: creates then writes, and deletes files that do not decode",
        options: flawed(Flaws {
            create_then_write: true,
            malformed_is_garbage: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "create-then-write",
        defect: "publishes by creating the lock file, then writing it: partial records are visible",
        options: flawed(Flaws {
            create_then_write: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "malformed-is-garbage",
        defect: "deletes a lock file that does not decode, whatever its age",
        options: flawed(Flaws {
            malformed_is_garbage: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "unguarded-break",
        defect: "§10 defect 2: breaks a stale lock without the flock guard and re-check",
        options: flawed(Flaws {
            unguarded_break: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "unsafe-reads",
        defect: "§10 defect 3: reads the lock path following symlinks, blocking, to the end",
        options: flawed(Flaws {
            unsafe_reads: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "hostname-from-env",
        defect: "§10 defect 4: host identity from $HOSTNAME, not gethostname(2)",
        options: flawed(Flaws {
            env_hostname: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "untruncated-compare",
        defect: "§10 defect 4: compares the whole local host name with the stored, truncated one",
        options: flawed(Flaws {
            untruncated_compare: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "untruncated-hostname",
        defect: "writes up to 64 bytes of the host name, leaving no NUL",
        options: flawed(Flaws {
            untruncated_write: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "trusted-pids",
        defect: "§10 defect 5: PID 0 and PIDs >= 2^31 are probed and look alive",
        options: flawed(Flaws {
            trusted_pids: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "unchecked-checksum",
        defect: "§10 defect 6: trusts a record whatever its checksum",
        options: flawed(Flaws {
            unchecked_checksum: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "future-never-expires",
        defect: "§10 defect 6: age from the timestamp alone; a future timestamp never expires",
        options: flawed(Flaws {
            timestamp_age_only: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "crc32c",
        defect: "writes and checks CRC32C instead of CRC-32 (IEEE)",
        options: flawed(Flaws {
            crc32c: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "big-endian-magic",
        defect: "writes the magic big-endian (\"RVLF\") and accepts it",
        options: flawed(Flaws {
            big_endian_magic: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "no-owner-check",
        defect: "release unlinks the lock without checking that it is still ours",
        options: flawed(Flaws {
            release_unchecked: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "release-by-id-only",
        defect: "release checks the writer id but not the file identity",
        options: flawed(Flaws {
            release_by_id_only: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "stale-whenever-dead",
        defect: "a dead holder's lock is stale at once, whatever its age",
        options: flawed(Flaws {
            stale_when_dead: true,
            ..Flaws::NONE
        }),
    },
    Mutant {
        name: "same-host-29s",
        defect: "same-host threshold off by one: 29 s",
        options: thresholds(29, 300, 300),
    },
    Mutant {
        name: "same-host-31s",
        defect: "same-host threshold off by one: 31 s",
        options: thresholds(31, 300, 300),
    },
    Mutant {
        name: "other-host-299s",
        defect: "other-host threshold off by one: 299 s",
        options: thresholds(30, 299, 300),
    },
    Mutant {
        name: "other-host-301s",
        defect: "other-host threshold off by one: 301 s",
        options: thresholds(30, 301, 300),
    },
    Mutant {
        name: "malformed-299s",
        defect: "malformed-file threshold off by one: 299 s",
        options: thresholds(30, 300, 299),
    },
    Mutant {
        name: "malformed-301s",
        defect: "malformed-file threshold off by one: 301 s",
        options: thresholds(30, 300, 301),
    },
];

/// The mutant called `name`.
pub fn find(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// All mutant names, comma-separated (for error messages and `--help`).
pub fn names() -> String {
    MUTANTS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}
