//! The staleness rule (PROTOCOL.md §6): a pure function of what was read from
//! the lock file, its mtime, the clock, this host's name and the holder's
//! liveness. No I/O happens here; callers gather the facts.

use std::time::Duration;


use crate::record::{DecodeError, Hostname, Record};

/// The thresholds of §6.1. A lock is stale when its age is strictly greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Thresholds {
    /// A record of this host whose process is dead is stale past this age.
    pub same_host: Duration,
    /// A record of another host is stale past this age.
    pub other_host: Duration,
    /// A file that does not decode is stale past this age (by its mtime).
    pub malformed: Duration,
}

impl Thresholds {
    /// RVLF v1's thresholds: 30 s, 300 s, 300 s.
    pub const V1: Thresholds = Thresholds {
        same_host: Duration::from_secs(30),
        other_host: Duration::from_secs(300),
        malformed: Duration::from_secs(300),
    };

    /// These thresholds with `age` for same-host records of dead processes.
    pub const fn same_host(mut self, age: Duration) -> Self {
        self.same_host = age;
        self
    }

    /// These thresholds with `age` for other hosts' records.
    pub const fn other_host(mut self, age: Duration) -> Self {
        self.other_host = age;
        self
    }

    /// These thresholds with `age` for files that do not decode.
    pub const fn malformed(mut self, age: Duration) -> Self {
        self.malformed = age;
        self
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::V1
    }
}

/// What kill(pid, 0) said about a holder (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum Liveness {
    /// kill succeeded.
    Alive,
    /// kill failed with EPERM: the process exists and belongs to someone else.
    AliveOtherUser,
    /// kill failed with ESRCH.
    Dead,
    /// kill failed some other way; never taken as dead.
    Unknown {
        /// The errno kill failed with; 0 when the PID was not probed.
        errno: i32,
    },
}

impl Liveness {
    /// True only for [`Liveness::Dead`], the one answer that lets a
    /// same-host lock turn stale (§6.4).
    pub fn is_dead(self) -> bool {
        self == Liveness::Dead
    }
}

/// What a reader found at the lock path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Contents {
    /// A record that decodes (§4.2).
    Valid(Record),
    /// A malformed file (§4.4), and the first check of §4.2 it fails.
    Malformed(DecodeError),
}

/// Everything the rule looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Facts<'a> {
    /// What was read at the lock path.
    pub contents: &'a Contents,
    /// The file's modification time, UNIX epoch nanoseconds (may be negative).
    pub mtime_ns: i128,
    /// The wall clock now, UNIX epoch nanoseconds.
    pub now_ns: i128,
    /// This host's name, already cut by the writer's rule.
    pub local_host: &'a Hostname,
    /// The holder's liveness; `None` when it was not probed.
    pub liveness: Option<Liveness>,
}

/// The PID to probe before judging, if the rule needs one: a valid record of
/// this host whose PID can name a single process (§6.3).
pub fn pid_to_probe(contents: &Contents, local_host: &Hostname) -> Option<u32> {
    match contents {
        Contents::Valid(r) if &r.hostname == local_host && pid_is_probeable(r.pid) => Some(r.pid),
        _ => None,
    }
}

/// PID 0 addresses the caller's process group and values of 2^31 and more
/// become negative `pid_t`s that address groups or every process.
pub fn pid_is_probeable(pid: u32) -> bool {
    pid != 0 && pid < (1 << 31)
}

/// One fact that went into a verdict, in the order it was considered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "reason", rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum Reason {
    /// The file is not a valid record; only its mtime counts.
    Malformed {
        /// The first check of §4.2 it fails.
        error: DecodeError,
    },
    /// The record was written on this host (§5.2): its PID's liveness counts.
    SameHost,
    /// The record was written on another host (§5.2): only its age counts.
    OtherHost {
        /// The host name in the record.
        stored: Hostname,
        /// This host's name, cut by the writer's rule.
        local: Hostname,
    },
    /// PID 0 or >= 2^31: names no single process, treated as dead.
    PidUnprobeable {
        /// The PID in the record.
        pid: u32,
    },
    /// What probing the record's PID said (§6.3).
    PidLiveness {
        /// The PID in the record.
        pid: u32,
        /// What kill(pid, 0) said; [`Liveness::Unknown`], counted as alive,
        /// when it was not probed.
        liveness: Liveness,
    },
    /// The record's timestamp is later than now.
    FutureTimestamp {
        /// How far ahead of now, in nanoseconds.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
        ahead_ns: u128,
    },
    /// The age used, what it was measured from, and the threshold it was held against.
    Age {
        /// The age in nanoseconds (§6.2); 0 for a time in the future.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
        age_ns: u128,
        /// The time it was measured from.
        from: AgeBasis,
        /// The threshold in nanoseconds (§6.1).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::record::decimal"))]
        threshold_ns: u128,
        /// True when the age is strictly greater than the threshold: stale.
        exceeded: bool,
    },
}

/// Which time an age was measured from (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum AgeBasis {
    /// The record's timestamp, no later than the file's mtime.
    Timestamp,
    /// The file's mtime: always for a malformed file, and for a record whose
    /// timestamp is later than its mtime.
    Mtime,
}

/// The rule's answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Verdict {
    /// True when the lock is stale and may be broken (§6.4); false when held.
    pub stale: bool,
    /// The facts that decided it, in the order they were considered.
    pub reasons: Vec<Reason>,
    /// When a lock that is held now becomes stale if nothing changes
    /// (its holder is known dead or cannot be checked, and only age is missing).
    #[cfg_attr(feature = "serde", serde(
        rename = "stale_in_ns",
        serialize_with = "nanos",
        skip_serializing_if = "Option::is_none"
    ))]
    pub stale_in: Option<Duration>,
}

#[cfg(feature = "serde")]
fn nanos<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.as_nanos().to_string()),
        None => s.serialize_none(),
    }
}

/// Judge a lock (§6.4). A same-host valid record whose PID is probeable must
/// come with `liveness`; without it the holder counts as alive.
pub fn judge(facts: &Facts<'_>, thresholds: &Thresholds) -> Verdict {
    let mut reasons = Vec::new();
    // A file time before the epoch counts as the epoch (§6.2).
    let mtime_ns = facts.mtime_ns.max(0);
    let record = match facts.contents {
        Contents::Malformed(error) => {
            reasons.push(Reason::Malformed {
                error: error.clone(),
            });
            return aged(
                reasons,
                facts.now_ns - mtime_ns,
                AgeBasis::Mtime,
                thresholds.malformed,
            );
        }
        Contents::Valid(record) => record,
    };

    let same_host = &record.hostname == facts.local_host;
    let threshold = if same_host {
        reasons.push(Reason::SameHost);
        let dead = if pid_is_probeable(record.pid) {
            let liveness = facts.liveness.unwrap_or(Liveness::Unknown { errno: 0 });
            reasons.push(Reason::PidLiveness {
                pid: record.pid,
                liveness,
            });
            liveness.is_dead()
        } else {
            reasons.push(Reason::PidUnprobeable { pid: record.pid });
            true
        };
        if !dead {
            return Verdict {
                stale: false,
                reasons,
                stale_in: None,
            };
        }
        thresholds.same_host
    } else {
        reasons.push(Reason::OtherHost {
            stored: record.hostname.clone(),
            local: facts.local_host.clone(),
        });
        thresholds.other_host
    };

    let ts = i128::from(record.timestamp_ns);
    if ts > facts.now_ns {
        reasons.push(Reason::FutureTimestamp {
            ahead_ns: (ts - facts.now_ns) as u128,
        });
    }
    // The older of the two times: a lock is as old as its oldest evidence (§6.2).
    let (since, from) = if mtime_ns < ts {
        (mtime_ns, AgeBasis::Mtime)
    } else {
        (ts, AgeBasis::Timestamp)
    };
    aged(reasons, facts.now_ns - since, from, threshold)
}

/// Finish a verdict that depends on age alone.
fn aged(mut reasons: Vec<Reason>, age_ns: i128, from: AgeBasis, threshold: Duration) -> Verdict {
    let age_ns = age_ns.max(0) as u128;
    let threshold_ns = threshold.as_nanos();
    let exceeded = age_ns > threshold_ns;
    reasons.push(Reason::Age {
        age_ns,
        from,
        threshold_ns,
        exceeded,
    });
    let stale_in = (!exceeded).then(|| {
        let wait = threshold_ns - age_ns + 1;
        Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
    });
    Verdict {
        stale: exceeded,
        reasons,
        stale_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::WriterId;

    const NOW: i128 = 1_800_000_000_000_000_000;
    const S: i128 = 1_000_000_000;

    fn host(name: &str) -> Hostname {
        Hostname::truncated(name.as_bytes())
    }

    fn valid(pid: u32, name: &str, ts: i128) -> Contents {
        Contents::Valid(Record::new(
            pid,
            name.as_bytes(),
            ts as u64,
            WriterId([1; 16]),
        ))
    }

    fn verdict(contents: &Contents, mtime: i128, liveness: Option<Liveness>) -> Verdict {
        let local = host("here");
        judge(
            &Facts {
                contents,
                mtime_ns: mtime,
                now_ns: NOW,
                local_host: &local,
                liveness,
            },
            &Thresholds::V1,
        )
    }

    #[test]
    fn same_host_dead_pid_is_stale_only_strictly_past_30s() {
        let at = valid(77, "here", NOW - 30 * S);
        assert!(!verdict(&at, NOW, Some(Liveness::Dead)).stale);
        let past = valid(77, "here", NOW - 30 * S - 1);
        assert!(verdict(&past, NOW, Some(Liveness::Dead)).stale);
    }

    #[test]
    fn live_or_eperm_pid_is_never_stale() {
        let old = valid(77, "here", 0);
        assert!(!verdict(&old, 0, Some(Liveness::Alive)).stale);
        assert!(!verdict(&old, 0, Some(Liveness::AliveOtherUser)).stale);
        assert!(!verdict(&old, 0, Some(Liveness::Unknown { errno: 22 })).stale);
    }

    #[test]
    fn unprobeable_pids_count_as_dead() {
        for pid in [0, 1 << 31, u32::MAX] {
            let c = valid(pid, "here", NOW - 31 * S);
            assert_eq!(pid_to_probe(&c, &host("here")), None);
            assert!(verdict(&c, NOW, None).stale, "pid {pid}");
        }
    }

    #[test]
    fn other_host_uses_300s_and_ignores_liveness() {
        let c = valid(77, "there", NOW - 300 * S);
        assert!(!verdict(&c, NOW, None).stale);
        let c = valid(77, "there", NOW - 300 * S - 1);
        assert!(verdict(&c, NOW, None).stale);
        assert_eq!(pid_to_probe(&c, &host("here")), None);
    }

    #[test]
    fn future_timestamp_expires_by_mtime() {
        let c = valid(77, "here", NOW + 3600 * S);
        let v = verdict(&c, NOW - 31 * S, Some(Liveness::Dead));
        assert!(v.stale);
        assert!(matches!(v.reasons[2], Reason::FutureTimestamp { .. }));
    }

    #[test]
    fn malformed_files_wait_for_the_long_threshold_by_mtime() {
        let c = Contents::Malformed(DecodeError::Length { found: 10 });
        let v = verdict(&c, NOW - 299 * S, None);
        assert!(!v.stale);
        assert_eq!(v.stale_in, Some(Duration::from_nanos((S + 1) as u64)));
        assert!(verdict(&c, NOW - 301 * S, None).stale);
    }
}
