//! Deliberate departures from the protocol, so that the one implementation
//! can also behave like a broken one: the original implementation's defects
//! (PROTOCOL.md §10) and other plausible mistakes. The conformance suite,
//! stress and the model check prove themselves by catching each of them
//! (the catalogue is `crate::variant`).
//!
//! The shipped lock has no switch for any of this. A flaw is either one of
//! the machine's [`Rules`] answered differently, or a file-system request
//! performed differently ([`FlawedFs`]); the machine itself is the one that
//! ships. With every flaw off, each function here is exactly the protocol's.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fstat, Mode};
use serde::Serialize;

use rvlf_lock::driver::{self, Driver};
use rvlf_lock::machine::{
    self, Acquire, Acquired, FileId, FileSystem, Held, Params, ReadReply, Release, Reply, Request,
    Rules, READ_LIMIT,
};
use rvlf_lock::policy::{self, Contents, Facts, Thresholds, Verdict};
use rvlf_lock::record::{self, offset, DecodeError, Hostname, Record, WriterId, RECORD_LEN};
use rvlf_lock::{AcquireError, ReleaseError, Released};

/// Which defects to have. `Flaws::default()` is the protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Flaws {
    /// Publish by creating the lock file empty, then writing it (§10 defect 1).
    pub create_then_write: bool,
    /// Judge a file that does not decode stale at once (§10 defect 1).
    pub malformed_is_garbage: bool,
    /// Unlink a stale lock without the guard and re-check (§10 defect 2).
    pub unguarded_break: bool,
    /// Read lock files by following symlinks, blocking, to the end (§10 defect 3).
    pub unsafe_reads: bool,
    /// Host name from `$HOSTNAME`, else /etc/hostname (§10 defect 4).
    pub env_hostname: bool,
    /// Compare the whole local host name, not its first 62 bytes (§10 defect 4).
    pub untruncated_compare: bool,
    /// Write up to 64 bytes of the host name, with no room for its NUL.
    pub untruncated_write: bool,
    /// Probe PID 0 and PIDs >= 2^31 as if they named one process (§10 defect 5).
    pub trusted_pids: bool,
    /// Accept any checksum (§10 defect 6).
    pub unchecked_checksum: bool,
    /// Age from the timestamp alone, so future timestamps never expire (§10 defect 6).
    pub timestamp_age_only: bool,
    /// A dead holder's lock is stale whatever its age.
    pub stale_when_dead: bool,
    /// Write and check CRC32C instead of CRC-32.
    pub crc32c: bool,
    /// Write the magic big-endian ("RVLF") and accept it.
    pub big_endian_magic: bool,
    /// Release by writer id alone, not file identity.
    pub release_by_id_only: bool,
    /// Release without any owner check: just unlink.
    pub release_unchecked: bool,
}

impl Flaws {
    /// The original implementation's behaviour: all six defects of §10.
    pub const ORIGINAL: Flaws = Flaws {
        create_then_write: true,
        malformed_is_garbage: true,
        unguarded_break: true,
        unsafe_reads: true,
        env_hostname: true,
        untruncated_compare: true,
        untruncated_write: false,
        trusted_pids: true,
        unchecked_checksum: true,
        timestamp_age_only: true,
        stale_when_dead: false,
        crc32c: false,
        big_endian_magic: false,
        release_by_id_only: true,
        release_unchecked: false,
    };

    /// No flaw: the protocol.
    pub const NONE: Flaws = Flaws {
        create_then_write: false,
        malformed_is_garbage: false,
        unguarded_break: false,
        unsafe_reads: false,
        env_hostname: false,
        untruncated_compare: false,
        untruncated_write: false,
        trusted_pids: false,
        unchecked_checksum: false,
        timestamp_age_only: false,
        stale_when_dead: false,
        crc32c: false,
        big_endian_magic: false,
        release_by_id_only: false,
        release_unchecked: false,
    };

    /// Whether any flaw is on.
    pub fn any(&self) -> bool {
        *self != Flaws::NONE
    }

    /// This host's name as (written, compared): the protocol's is the kernel's,
    /// cut to 62 bytes, for both (§5).
    pub fn local_host(&self) -> Result<(Hostname, Hostname), Errno> {
        let raw: Vec<u8> = if self.env_hostname {
            match std::env::var_os("HOSTNAME") {
                Some(v) => v.as_bytes().to_vec(),
                None => std::fs::read("/etc/hostname")
                    .map(|b| b.trim_ascii().to_vec())
                    .unwrap_or_else(|_| b"unknown".to_vec()),
            }
        } else {
            nix::unistd::gethostname()?.as_bytes().to_vec()
        };
        Ok(self.host_names(&raw))
    }

    /// The (written, compared) names of a host whose raw name is `raw` (§5.2).
    pub fn host_names(&self, raw: &[u8]) -> (Hostname, Hostname) {
        let truncated = Hostname::truncated(raw);
        // The first 64 bytes: longer than any name a conforming writer stores.
        let long = || {
            let end = raw.len().min(record::HOSTNAME_FIELD);
            Hostname::new(raw[..end].to_vec()).unwrap_or_else(|_| truncated.clone())
        };
        let written = if self.untruncated_write {
            long()
        } else {
            truncated.clone()
        };
        let compared = if self.untruncated_compare || self.untruncated_write {
            long()
        } else {
            truncated
        };
        (written, compared)
    }
}

impl Rules for Flaws {
    /// The bytes this writer publishes for `record`.
    fn encode(&self, record: &Record) -> [u8; RECORD_LEN] {
        let mut bytes = record::encode(record);
        if self.big_endian_magic {
            bytes[..4].copy_from_slice(&record::MAGIC.to_be_bytes());
            record::seal(&mut bytes);
        }
        if self.crc32c {
            let crc = record::crc32c(&bytes[..offset::CHECKSUM]);
            bytes[offset::CHECKSUM..].copy_from_slice(&crc.to_le_bytes());
        }
        bytes
    }

    /// How this reader decodes a lock file.
    fn decode(&self, bytes: &[u8]) -> Result<Record, DecodeError> {
        let Ok(mut buf) = <[u8; RECORD_LEN]>::try_from(bytes) else {
            return record::decode(bytes);
        };
        if self.big_endian_magic && buf[..4] == record::MAGIC.to_be_bytes() {
            buf[..4].copy_from_slice(&record::MAGIC_BYTES);
        }
        // Whether the checksum passes under this reader's rule, over the bytes as found.
        let stored = u32::from_le_bytes([buf[0x64], buf[0x65], buf[0x66], buf[0x67]]);
        let covered = &bytes[..offset::CHECKSUM];
        let passes = self.unchecked_checksum
            || stored
                == if self.crc32c {
                    record::crc32c(covered)
                } else {
                    crc32fast::hash(covered)
                };
        if passes {
            // Make the canonical decoder see what this reader accepted.
            record::seal(&mut buf);
        }
        record::decode(&buf)
    }

    /// The PID this reader probes before judging, if any (§6.3).
    fn pid_to_probe(&self, contents: &Contents, local_host: &Hostname) -> Option<u32> {
        match contents {
            Contents::Valid(r) if self.trusted_pids && &r.hostname == local_host => Some(r.pid),
            _ => policy::pid_to_probe(contents, local_host),
        }
    }

    /// How this reader judges a lock (§6).
    fn judge(&self, facts: &Facts<'_>, thresholds: &Thresholds) -> Verdict {
        let mut facts = facts.clone();
        if self.timestamp_age_only {
            if let Contents::Valid(r) = facts.contents {
                // Pretend the file is as young as its timestamp says.
                facts.mtime_ns = facts.mtime_ns.max(i128::from(r.timestamp_ns));
            }
        }
        // The original cast PID 0 and >= 2^31 to pid_t and probed them: kill()
        // then addressed a process group or every process, and succeeded.
        if self.trusted_pids && !facts.liveness.is_some_and(policy::Liveness::is_dead) {
            if let Contents::Valid(r) = facts.contents {
                if &r.hostname == facts.local_host && !policy::pid_is_probeable(r.pid) {
                    return Verdict {
                        stale: false,
                        reasons: vec![policy::Reason::PidLiveness {
                            pid: r.pid,
                            liveness: policy::Liveness::Alive,
                        }],
                        stale_in: None,
                    };
                }
            }
        }
        let mut verdict = policy::judge(&facts, thresholds);
        let dead = verdict.reasons.iter().any(|r| {
            matches!(
                r,
                policy::Reason::PidLiveness {
                    liveness: policy::Liveness::Dead,
                    ..
                } | policy::Reason::PidUnprobeable { .. }
            )
        });
        let malformed = matches!(facts.contents, Contents::Malformed(_));
        if (self.stale_when_dead && dead) || (self.malformed_is_garbage && malformed) {
            verdict.stale = true;
            verdict.stale_in = None;
        }
        verdict
    }

    fn breaks_under_guard(&self) -> bool {
        !self.unguarded_break
    }

    fn checks_owner_on_release(&self) -> bool {
        !self.release_unchecked
    }

    fn still_ours(&self, held: &Held, contents: &Contents, found: FileId) -> bool {
        let by_id = matches!(contents, Contents::Valid(r) if r.writer_id == held.record.writer_id);
        by_id && (self.release_by_id_only || found == held.id)
    }
}

/// The real file system as a flawed implementation uses it: the driver that
/// ships, with the requests that flaws change performed here instead.
#[derive(Debug)]
pub struct FlawedFs {
    driver: Driver,
    lock_path: PathBuf,
    flaws: Flaws,
}

impl FlawedFs {
    /// The file system of the lock at `lock_path`, as `flaws` use it.
    pub fn new(lock_path: &Path, flaws: Flaws) -> Self {
        FlawedFs {
            driver: Driver::new(lock_path),
            lock_path: lock_path.to_path_buf(),
            flaws,
        }
    }

    /// The shipped driver underneath (it owns every open file).
    pub fn driver(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// §10 defect 1: create the lock path empty, unguarded, as the original
    /// did (it never took flock).
    fn create_unguarded(&mut self) -> Result<Reply, Errno> {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        match open(
            self.lock_path.as_path(),
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => {
                let st = fstat(&fd)?;
                let id = driver::meta(&st).id;
                Ok(Reply::Published {
                    file: self.driver.adopt(fd),
                    id,
                })
            }
            Err(Errno::EEXIST) => Ok(Reply::Exists),
            Err(e) => Err(e),
        }
    }

    /// §10 defect 3: read following symlinks, blocking, to the end of the
    /// file. Only the first bytes are kept, so a reader stuck on /dev/zero
    /// hangs without eating memory.
    fn read_unsafely(&mut self, keep_open: bool) -> Result<Reply, Errno> {
        let fd: OwnedFd = match open(
            self.lock_path.as_path(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Reply::Read(ReadReply::NotFound)),
            Err(e) => return Err(e),
        };
        let st = fstat(&fd)?;
        let mut head = Vec::new();
        let mut total = 0u64;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match nix::unistd::read(&fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let keep = n.min(READ_LIMIT.saturating_sub(head.len()));
                    head.extend_from_slice(&buf[..keep]);
                    total += n as u64;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        let mut meta = driver::meta(&st);
        meta.size = total;
        let file = keep_open.then(|| self.driver.adopt(fd));
        Ok(Reply::Read(ReadReply::Found { file, meta, head }))
    }
}

impl FileSystem for FlawedFs {
    fn perform(&mut self, request: &Request) -> Reply {
        let flawed = match request {
            // Publish by the create-then-write path even where links work.
            Request::Publish { .. } if self.flaws.create_then_write => Ok(Reply::LinksRefused),
            Request::Create if self.flaws.create_then_write => self.create_unguarded(),
            Request::Read { keep_open } if self.flaws.unsafe_reads => {
                self.read_unsafely(*keep_open)
            }
            _ => return self.driver.perform(request),
        };
        flawed.unwrap_or_else(Reply::Failed)
    }
}

/// A lock taken by the one machine under flawed rules, on [`FlawedFs`]: what
/// a broken implementation holds. The shipped `WriterLock` is the same
/// without the flaws.
#[derive(Debug)]
pub struct FlawedLock {
    lock_path: PathBuf,
    fd: Option<OwnedFd>,
    held: Held,
    flaws: Flaws,
}

impl FlawedLock {
    /// Take the lock file at `lock_path` without waiting.
    #[allow(clippy::result_large_err)]
    pub fn try_acquire_file(
        lock_path: &Path,
        flaws: Flaws,
        thresholds: Thresholds,
    ) -> Result<Self, AcquireError> {
        let (host, judge_host) = flaws.local_host().map_err(AcquireError::Hostname)?;
        let params = Params {
            pid: std::process::id(),
            host,
            judge_host,
            writer_id: WriterId::random().map_err(AcquireError::Random)?,
            thresholds,
        };
        let mut fs = FlawedFs::new(lock_path, flaws);
        let path = lock_path.to_path_buf();
        match machine::run(&mut Acquire::with_rules(params, flaws), &mut fs) {
            Ok(Acquired::Held(held)) => Ok(FlawedLock {
                fd: fs.driver().take(held.file),
                lock_path: path,
                held,
                flaws,
            }),
            Ok(Acquired::Busy(busy)) => Err(AcquireError::Busy { path, busy }),
            Err(source) => Err(AcquireError::Lock { path, source }),
        }
    }

    /// The record this lock published.
    pub fn record(&self) -> &Record {
        &self.held.record
    }

    /// Give the lock back, by the flawed rules.
    pub fn release(mut self) -> Result<Released, ReleaseError> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<Released, ReleaseError> {
        let Some(fd) = self.fd.take() else {
            return Ok(Released::Lost(rvlf_lock::Lost::Vanished));
        };
        let mut fs = FlawedFs::new(&self.lock_path, self.flaws);
        let mut held = self.held.clone();
        held.file = fs.driver().adopt(fd);
        machine::run(&mut Release::with_rules(held, self.flaws), &mut fs).map_err(|source| {
            ReleaseError {
                path: self.lock_path.clone(),
                source,
            }
        })
    }
}

impl Drop for FlawedLock {
    fn drop(&mut self) {
        if self.fd.is_some() {
            let _ = self.release_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvlf_lock::record::WriterId;

    fn sample() -> Record {
        Record::new(7, b"h", 99, WriterId([3; 16]))
    }

    #[test]
    fn no_flaws_is_the_protocol() {
        let f = Flaws::default();
        assert_eq!(f.encode(&sample()), record::encode(&sample()));
        assert_eq!(f.decode(&record::encode(&sample())), Ok(sample()));
    }

    #[test]
    fn codec_flaws_write_what_they_accept() {
        for f in [
            Flaws {
                crc32c: true,
                ..Flaws::NONE
            },
            Flaws {
                big_endian_magic: true,
                ..Flaws::NONE
            },
        ] {
            let bytes = f.encode(&sample());
            assert!(
                record::decode(&bytes).is_err(),
                "{f:?} writes invalid bytes"
            );
            assert_eq!(f.decode(&bytes), Ok(sample()), "{f:?} reads its own bytes");
        }
    }

    #[test]
    fn trusted_pids_keep_pid_0_alive_whatever_the_probe_said() {
        let local = Hostname::truncated(b"h");
        let contents = Contents::Valid(Record::new(0, b"h", 0, WriterId([3; 16])));
        let facts = Facts {
            contents: &contents,
            mtime_ns: 0,
            now_ns: 1_000_000_000_000,
            local_host: &local,
            liveness: Some(policy::Liveness::Unknown { errno: 22 }),
        };
        let trusted = Flaws {
            trusted_pids: true,
            ..Flaws::NONE
        };
        assert!(!trusted.judge(&facts, &Thresholds::V1).stale);
        assert!(Flaws::NONE.judge(&facts, &Thresholds::V1).stale);
    }

    #[test]
    fn unchecked_checksum_accepts_a_corrupt_record() {
        let mut bytes = record::encode(&sample());
        bytes[0x64] ^= 1;
        let f = Flaws {
            unchecked_checksum: true,
            ..Flaws::NONE
        };
        assert_eq!(f.decode(&bytes), Ok(sample()));
        assert!(Flaws::NONE.decode(&bytes).is_err());
    }
}
