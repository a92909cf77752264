//! The acquire, stale-break and release algorithm (PROTOCOL.md §7-§9) as a
//! pure state machine. It never touches a file system: it asks for one
//! [`Request`](crate::machine::Request) at a time and is told the
//! [`Reply`](crate::machine::Reply). The real driver (`crate::driver`) and
//! the harness's simulated file system both run it, so what the tests and
//! the model check exercise is what ships.
//!
//! ```text
//! acquire: Now → Publish ─Published─────────────────────────────→ Acquired
//!                   ├LinksRefused→ Create ─Published→ Write ──────→ Acquired
//!                   │                └Exists→ Read …
//!                   └Exists→ Read ─gone→ (publish again)
//!                              └found→ [ProbePid] → judge ─held→ Close → Busy
//!                                                        └stale→ Guard → Stat → Unlink → Close → (publish again)
//! release: Read → compare writer id and file → Unlink → Close → Released
//!                                  └mismatch→ Close → Lost
//! ```
//!
//! Every decision the protocol leaves to the reader of a lock file (how it
//! encodes and decodes, whose PID it probes, how it judges, whether a lock
//! found at release is ours) goes through a [`Rules`](crate::machine::Rules);
//! [`Protocol`](crate::machine::Protocol) is the protocol's, and the only one
//! this crate uses. Checkers supply other rules
//! to make the one machine behave like a broken implementation.

use nix::errno::Errno;

use crate::policy::{self, Contents, Facts, Liveness, Thresholds, Verdict};
use crate::record::{self, DecodeError, Hostname, Record, WriterId, RECORD_LEN};

/// How many times one acquire may find the lock gone or broken and publish
/// again before it reports contention instead of looping.
pub const MAX_ROUNDS: u32 = 4;

/// At most this many bytes are read from a lock file: one more than a record,
/// so that a long file is seen to be long (§4.1).
pub const READ_LIMIT: usize = RECORD_LEN + 1;

/// A file the driver holds open on the machine's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Handle(pub u64);

/// The identity of a file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FileId {
    /// The device (st_dev).
    pub dev: u64,
    /// The inode number (st_ino).
    pub ino: u64,
}

/// What `lstat`/`fstat` told about a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Meta {
    /// Device and inode.
    pub id: FileId,
    /// The size in bytes (st_size).
    pub size: u64,
    /// The modification time with nanoseconds, UNIX epoch nanoseconds
    /// (negative before the epoch).
    pub mtime_ns: i128,
}

/// Kinds of things found at a lock path that are not regular files (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum FileKind {
    /// A symbolic link.
    Symlink,
    /// A FIFO (named pipe).
    Fifo,
    /// A directory.
    Directory,
    /// A socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A file type none of the others names.
    Unknown,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Symlink => "symbolic link",
            FileKind::Fifo => "FIFO",
            FileKind::Directory => "directory",
            FileKind::Socket => "socket",
            FileKind::CharDevice => "character device",
            FileKind::BlockDevice => "block device",
            FileKind::Unknown => "file of unknown type",
        })
    }
}

/// One operation the machine needs done. Each is a single atomic step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// The wall clock, UNIX epoch nanoseconds.
    Now,
    /// Make the lock path appear holding exactly `bytes`, all at once, if
    /// nothing is there (§7.1). The new file stays open as the held file and
    /// is guarded from before it appears (§7.2).
    Publish {
        /// The record.
        bytes: [u8; RECORD_LEN],
    },
    /// The fallback where the file system refuses hard links (§7.1): create
    /// the lock path empty and exclusively, without following a symlink, and
    /// guard it at once. It stays open as the held file.
    Create,
    /// The fallback's second half: write `bytes` into the created file and
    /// make them durable.
    Write {
        /// The file [`Request::Create`] made.
        file: Handle,
        /// The record.
        bytes: [u8; RECORD_LEN],
    },
    /// Read the lock path safely (§4.1): regular files only, no symlinks
    /// followed, never blocking, at most [`READ_LIMIT`] bytes. With
    /// `keep_open` the file stays open for a later [`Request::Guard`].
    Read {
        /// Keep the file open and answer with its handle.
        keep_open: bool,
    },
    /// kill(pid, 0).
    ProbePid {
        /// The PID to probe; one that names a single process (§6.3).
        pid: u32,
    },
    /// flock(LOCK_EX | LOCK_NB) on an open file (§8.1).
    Guard {
        /// The file to guard: the lock file read this round.
        file: Handle,
    },
    /// lstat the lock path.
    Stat,
    /// unlink the lock path.
    Unlink,
    /// Close an open file (dropping any guard on it).
    Close {
        /// The file to close.
        file: Handle,
    },
}

/// What a [`Request::Read`] found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReadReply {
    /// A regular file, read.
    Found {
        /// The file, still open, when the read asked to keep it open.
        file: Option<Handle>,
        /// What `fstat` of the descriptor read said (§4.1 step 3).
        meta: Meta,
        /// The first bytes of the file, at most [`READ_LIMIT`].
        head: Vec<u8>,
    },
    /// Nothing is at the lock path.
    NotFound,
    /// Something that is not a regular file is there; it was not read.
    NotRegular(FileKind),
}

/// The answer to a [`Request`]. `Failed` may answer any request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To [`Request::Now`]: the wall clock, UNIX epoch nanoseconds.
    Now(i128),
    /// To [`Request::Publish`] or [`Request::Create`]: the lock path is now
    /// this file, held open and guarded.
    Published {
        /// The published file.
        file: Handle,
        /// Its identity.
        id: FileId,
    },
    /// To [`Request::Publish`] or [`Request::Create`]: something is already
    /// at the lock path.
    Exists,
    /// The file system refuses hard links: publish by [`Request::Create`].
    LinksRefused,
    /// To [`Request::Write`]: the record is written and synced.
    Written,
    /// To [`Request::Read`].
    Read(ReadReply),
    /// To [`Request::ProbePid`].
    Liveness(Liveness),
    /// To [`Request::Guard`]: the guard is ours.
    Guarded,
    /// To [`Request::Guard`]: another open file holds the guard.
    GuardBusy,
    /// To [`Request::Stat`]: what is at the lock path, `None` if nothing.
    Stat(Option<Meta>),
    /// To [`Request::Unlink`]: the lock path was removed.
    Unlinked,
    /// To [`Request::Unlink`]: nothing was at the lock path.
    UnlinkedNothing,
    /// To [`Request::Close`].
    Closed,
    /// The request failed with this error.
    Failed(Errno),
}

/// The operation a [`LockError::Io`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum Op {
    /// Reading the clock.
    Clock,
    /// Publishing the lock (§7.1), or creating it in the fallback.
    Publish,
    /// Writing the record into the lock created in the fallback (§7.1).
    Write,
    /// Reading the lock path (§4.1).
    Read,
    /// Probing a PID (§6.3).
    ProbePid,
    /// Taking a lock file's guard (§8.1).
    Guard,
    /// `lstat` of the lock path.
    Stat,
    /// Unlinking the lock path.
    Unlink,
    /// Closing a file.
    Close,
}

/// Why the machine stopped without an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "error", rename_all = "kebab-case"))]
#[non_exhaustive]
pub enum LockError {
    /// The lock path is not a regular file (§4.1): it was neither judged
    /// nor deleted.
    #[error("the lock path is a {kind}, not a regular file; it was left alone")]
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
    /// A file-system call failed.
    #[error("{op:?} failed: {errno}")]
    Io {
        /// The operation.
        op: Op,
        /// Its error.
        #[cfg_attr(feature = "serde", serde(serialize_with = "ser_errno"))]
        errno: Errno,
    },
    /// The driver answered a request with a reply that does not fit it.
    #[error("driver answered {reply} to {request}")]
    Protocol {
        /// The request the machine was waiting on.
        request: &'static str,
        /// The reply it got.
        reply: &'static str,
    },
}

#[cfg(feature = "serde")]
fn ser_errno<S: serde::Serializer>(e: &Errno, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{e:?}"))
}

/// The machine's next move.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action<T> {
    /// Perform this request and feed its reply back to the machine.
    Do(Request),
    /// Finished, with this outcome.
    Done(T),
}

/// The decisions an implementation makes about lock files. Every method
/// defaults to what PROTOCOL.md says; [`Protocol`] changes none of them.
pub trait Rules {
    /// The bytes a writer publishes for `record` (§3).
    fn encode(&self, record: &Record) -> [u8; RECORD_LEN] {
        record::encode(record)
    }

    /// How a reader decodes a lock file's first bytes (§4.2).
    fn decode(&self, bytes: &[u8]) -> Result<Record, DecodeError> {
        record::decode(bytes)
    }

    /// The PID a reader probes before judging, if any (§6.3).
    fn pid_to_probe(&self, contents: &Contents, local_host: &Hostname) -> Option<u32> {
        policy::pid_to_probe(contents, local_host)
    }

    /// Whether a lock is stale, and why (§6).
    fn judge(&self, facts: &Facts<'_>, thresholds: &Thresholds) -> Verdict {
        policy::judge(facts, thresholds)
    }

    /// Whether a stale lock is unlinked only under its guard, after checking
    /// that it is still the file judged (§8).
    fn breaks_under_guard(&self) -> bool {
        true
    }

    /// Whether a release reads the lock back before unlinking it (§9.1).
    fn checks_owner_on_release(&self) -> bool {
        true
    }

    /// Whether the lock found at release, `contents` in the file `found`, is
    /// still the one `held` published (§9.1): same writer id, same file.
    fn still_ours(&self, held: &Held, contents: &Contents, found: FileId) -> bool {
        matches!(contents, Contents::Valid(r) if r.writer_id == held.record.writer_id)
            && found == held.id
    }
}

/// The protocol's rules (PROTOCOL.md), with nothing changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Protocol;

impl Rules for Protocol {}

/// Who is acquiring.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Params {
    /// This process's id, as stored in the record.
    pub pid: u32,
    /// This host's name as written into the record, cut by the writer's rule (§5).
    pub host: Hostname,
    /// This host's name as compared with a stored one (§5.2): the same as
    /// `host` for the protocol.
    pub judge_host: Hostname,
    /// A fresh id for this acquisition (§3.2).
    pub writer_id: WriterId,
    /// The staleness thresholds (§6.1).
    pub thresholds: Thresholds,
}

/// The lock this process now holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Held {
    /// The published file, held open: it carries the guard (§7.2).
    pub file: Handle,
    /// Its identity, checked at release (§9.1).
    pub id: FileId,
    /// The record it holds.
    pub record: Record,
    /// The stale lock this acquire broke on its way, if any.
    pub broke: Option<Contents>,
}

/// Why an acquire did not get the lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "why", rename_all = "kebab-case"))]
pub enum Busy {
    /// The lock is held: here is what it holds and why it is not stale.
    Held {
        /// What the lock file holds.
        #[cfg_attr(feature = "serde", serde(serialize_with = "ser_contents"))]
        contents: Contents,
        /// The verdict (§6): held, and why.
        verdict: Verdict,
    },
    /// The lock is stale but someone else holds its guard (§8.1): another
    /// breaker at work, or a holder whose process still lives.
    Guarded {
        /// What the lock file holds.
        #[cfg_attr(feature = "serde", serde(serialize_with = "ser_contents"))]
        contents: Contents,
    },
    /// The lock changed under us in every one of the acquire's 4 rounds
    /// (`MAX_ROUNDS`).
    Contended,
}

#[cfg(feature = "serde")]
fn ser_contents<S: serde::Serializer>(c: &Contents, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Contents::Valid(r) => serde::Serialize::serialize(r, s),
        Contents::Malformed(e) => serde::Serialize::serialize(e, s),
    }
}

/// An acquire's result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Acquired {
    /// The lock is ours.
    Held(Held),
    /// Another writer has it.
    Busy(Busy),
}

/// What was read and judged at the lock path during one round.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Seen {
    file: Handle,
    meta: Meta,
    contents: Contents,
    now_ns: i128,
}

/// Where an acquire is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AcqState {
    Start,
    Clock,
    Publishing,
    /// Links are refused: creating the lock path empty (§7.1 fallback).
    Creating,
    Writing {
        file: Handle,
        id: FileId,
    },
    Reading,
    /// Read the lock; now the clock, to judge its age.
    Timing {
        seen: Seen,
    },
    /// Judging a same-host record: its PID's liveness.
    Probing {
        seen: Seen,
    },
    Guarding {
        seen: Seen,
    },
    Verifying {
        seen: Seen,
    },
    Unlinking {
        seen: Seen,
    },
    /// Closing the file read this round; afterwards either retry or stop.
    Closing {
        then: AfterClose,
    },
    Finished,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AfterClose {
    Retry { broke: Option<Contents> },
    Stop(Busy),
}

/// One attempt to take the lock, without waiting (§7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acquire<R = Protocol> {
    rules: R,
    params: Params,
    record: Record,
    bytes: [u8; RECORD_LEN],
    state: AcqState,
    round: u32,
    broke: Option<Contents>,
}

impl Acquire<Protocol> {
    /// An acquire by the protocol's rules.
    pub fn new(params: Params) -> Self {
        Acquire::with_rules(params, Protocol)
    }
}

impl<R: Rules> Acquire<R> {
    /// An acquire that decides by `rules`.
    pub fn with_rules(params: Params, rules: R) -> Self {
        let record = Record {
            pid: params.pid,
            hostname: params.host.clone(),
            timestamp_ns: 0,
            writer_id: params.writer_id,
            version: record::VERSION,
        };
        Acquire {
            rules,
            params,
            record,
            bytes: [0; RECORD_LEN],
            state: AcqState::Start,
            round: 0,
            broke: None,
        }
    }

    /// The first request.
    pub fn start(&mut self) -> Action<Acquired> {
        self.state = AcqState::Clock;
        Action::Do(Request::Now)
    }

    /// Feed the reply to the last request; get the next move.
    pub fn resume(&mut self, reply: Reply) -> Result<Action<Acquired>, LockError> {
        let state = std::mem::replace(&mut self.state, AcqState::Finished);
        let (request, step) = (state_name(&state), reply_name(&reply));
        let unexpected = LockError::Protocol {
            request,
            reply: step,
        };
        if let Reply::Failed(errno) = reply {
            return Err(LockError::Io {
                op: op_of_state(&state),
                errno,
            });
        }
        let action = match (state, reply) {
            (AcqState::Clock, Reply::Now(now)) => {
                self.record.timestamp_ns = u64::try_from(now.max(0)).unwrap_or(u64::MAX);
                self.bytes = self.rules.encode(&self.record);
                self.publish()
            }
            (AcqState::Publishing, Reply::Published { file, id }) => self.held(file, id),
            (AcqState::Publishing, Reply::LinksRefused) => {
                self.state = AcqState::Creating;
                Action::Do(Request::Create)
            }
            (AcqState::Creating, Reply::Published { file, id }) => {
                self.state = AcqState::Writing { file, id };
                Action::Do(Request::Write {
                    file,
                    bytes: self.bytes,
                })
            }
            (AcqState::Publishing | AcqState::Creating, Reply::Exists) => self.read(),
            (AcqState::Writing { file, id }, Reply::Written) => self.held(file, id),
            (AcqState::Reading, Reply::Read(read)) => match read {
                ReadReply::NotFound => self.retry(),
                ReadReply::NotRegular(kind) => return Err(LockError::NotRegular { kind }),
                ReadReply::Found {
                    file: Some(file),
                    meta,
                    head,
                } => {
                    let contents = match self.rules.decode(&head) {
                        Ok(r) => Contents::Valid(r),
                        // A short read of a long file is reported with its real length.
                        Err(record::DecodeError::Length { .. }) => {
                            Contents::Malformed(record::DecodeError::Length { found: meta.size })
                        }
                        Err(e) => Contents::Malformed(e),
                    };
                    let seen = Seen {
                        file,
                        meta,
                        contents,
                        now_ns: 0,
                    };
                    self.state = AcqState::Timing { seen };
                    Action::Do(Request::Now)
                }
                ReadReply::Found { file: None, .. } => return Err(unexpected),
            },
            (AcqState::Timing { mut seen }, Reply::Now(now)) => {
                seen.now_ns = now;
                match self
                    .rules
                    .pid_to_probe(&seen.contents, &self.params.judge_host)
                {
                    Some(pid) => {
                        self.state = AcqState::Probing { seen };
                        Action::Do(Request::ProbePid { pid })
                    }
                    None => self.decide(seen, None),
                }
            }
            (AcqState::Probing { seen }, Reply::Liveness(l)) => self.decide(seen, Some(l)),
            (AcqState::Guarding { seen }, Reply::Guarded) => {
                self.state = AcqState::Verifying { seen };
                Action::Do(Request::Stat)
            }
            (AcqState::Guarding { seen }, Reply::GuardBusy) => self.close_then(
                seen.file,
                AfterClose::Stop(Busy::Guarded {
                    contents: seen.contents,
                }),
            ),
            (AcqState::Verifying { seen }, Reply::Stat(meta)) => {
                if meta == Some(seen.meta) {
                    self.state = AcqState::Unlinking { seen };
                    Action::Do(Request::Unlink)
                } else {
                    // Not the file we judged any more: never unlink (§8.2).
                    self.close_then(seen.file, AfterClose::Retry { broke: None })
                }
            }
            (AcqState::Unlinking { seen }, Reply::Unlinked) => {
                let broke = Some(seen.contents);
                self.close_then(seen.file, AfterClose::Retry { broke })
            }
            // Gone before our unlink: nothing was broken, start over (§8.3).
            (AcqState::Unlinking { seen }, Reply::UnlinkedNothing) => {
                self.close_then(seen.file, AfterClose::Retry { broke: None })
            }
            (AcqState::Closing { then }, Reply::Closed) => match then {
                AfterClose::Retry { broke } => {
                    if broke.is_some() {
                        self.broke = broke;
                    }
                    self.retry()
                }
                AfterClose::Stop(busy) => Action::Done(Acquired::Busy(busy)),
            },
            _ => return Err(unexpected),
        };
        Ok(action)
    }

    fn publish(&mut self) -> Action<Acquired> {
        self.state = AcqState::Publishing;
        Action::Do(Request::Publish { bytes: self.bytes })
    }

    fn held(&mut self, file: Handle, id: FileId) -> Action<Acquired> {
        Action::Done(Acquired::Held(Held {
            file,
            id,
            record: self.record.clone(),
            broke: self.broke.take(),
        }))
    }

    fn read(&mut self) -> Action<Acquired> {
        self.state = AcqState::Reading;
        Action::Do(Request::Read { keep_open: true })
    }

    /// The lock vanished or was broken: publish again, a bounded number of times.
    fn retry(&mut self) -> Action<Acquired> {
        self.round += 1;
        if self.round >= MAX_ROUNDS {
            return Action::Done(Acquired::Busy(Busy::Contended));
        }
        self.publish()
    }

    fn close_then(&mut self, file: Handle, then: AfterClose) -> Action<Acquired> {
        self.state = AcqState::Closing { then };
        Action::Do(Request::Close { file })
    }

    fn decide(&mut self, seen: Seen, liveness: Option<Liveness>) -> Action<Acquired> {
        let verdict = self.rules.judge(
            &Facts {
                contents: &seen.contents,
                mtime_ns: seen.meta.mtime_ns,
                now_ns: seen.now_ns,
                local_host: &self.params.judge_host,
                liveness,
            },
            &self.params.thresholds,
        );
        if !verdict.stale {
            let file = seen.file;
            return self.close_then(
                file,
                AfterClose::Stop(Busy::Held {
                    contents: seen.contents,
                    verdict,
                }),
            );
        }
        if !self.rules.breaks_under_guard() {
            self.state = AcqState::Unlinking { seen };
            return Action::Do(Request::Unlink);
        }
        let file = seen.file;
        self.state = AcqState::Guarding { seen };
        Action::Do(Request::Guard { file })
    }
}

fn state_name(s: &AcqState) -> &'static str {
    match s {
        AcqState::Start => "start",
        AcqState::Clock | AcqState::Timing { .. } => "now",
        AcqState::Probing { .. } => "probe-pid",
        AcqState::Publishing => "publish",
        AcqState::Creating => "create",
        AcqState::Writing { .. } => "write",
        AcqState::Reading => "read",
        AcqState::Guarding { .. } => "guard",
        AcqState::Verifying { .. } => "stat",
        AcqState::Unlinking { .. } => "unlink",
        AcqState::Closing { .. } => "close",
        AcqState::Finished => "nothing (finished)",
    }
}

fn op_of_state(s: &AcqState) -> Op {
    match s {
        AcqState::Start | AcqState::Clock | AcqState::Timing { .. } | AcqState::Finished => {
            Op::Clock
        }
        AcqState::Probing { .. } => Op::ProbePid,
        AcqState::Publishing | AcqState::Creating => Op::Publish,
        AcqState::Writing { .. } => Op::Write,
        AcqState::Reading => Op::Read,
        AcqState::Guarding { .. } => Op::Guard,
        AcqState::Verifying { .. } => Op::Stat,
        AcqState::Unlinking { .. } => Op::Unlink,
        AcqState::Closing { .. } => Op::Close,
    }
}

fn reply_name(r: &Reply) -> &'static str {
    match r {
        Reply::Now(_) => "now",
        Reply::Published { .. } => "published",
        Reply::Exists => "exists",
        Reply::LinksRefused => "links-refused",
        Reply::Written => "written",
        Reply::Read(_) => "read",
        Reply::Liveness(_) => "liveness",
        Reply::Guarded => "guarded",
        Reply::GuardBusy => "guard-busy",
        Reply::Stat(_) => "stat",
        Reply::Unlinked => "unlinked",
        Reply::UnlinkedNothing => "unlinked-nothing",
        Reply::Closed => "closed",
        Reply::Failed(_) => "failed",
    }
}

/// What a release found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Released {
    /// The lock was ours and is gone.
    Released,
    /// The lock was no longer ours; nothing was deleted (§9.2).
    Lost(Lost),
}

/// What stood at the lock path instead of our lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "found", rename_all = "kebab-case"))]
pub enum Lost {
    /// Nothing.
    Vanished,
    /// Another file: another writer's record, or something malformed.
    Replaced {
        /// What that file holds.
        #[cfg_attr(feature = "serde", serde(serialize_with = "ser_contents"))]
        contents: Contents,
    },
    /// Something that is not a regular file.
    NotRegular {
        /// What it is.
        kind: FileKind,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RelState {
    Reading,
    Unlinking,
    Closing { outcome: Released },
    Finished,
}

/// Give the lock back, checking first that it is still ours (§9).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Release<R = Protocol> {
    held: Held,
    rules: R,
    state: RelState,
}

impl Release<Protocol> {
    /// A release by the protocol's rules.
    pub fn new(held: Held) -> Self {
        Release::with_rules(held, Protocol)
    }
}

impl<R: Rules> Release<R> {
    /// A release that decides by `rules`.
    pub fn with_rules(held: Held, rules: R) -> Self {
        Release {
            held,
            rules,
            state: RelState::Finished,
        }
    }

    /// The first request.
    pub fn start(&mut self) -> Action<Released> {
        if !self.rules.checks_owner_on_release() {
            self.state = RelState::Unlinking;
            return Action::Do(Request::Unlink);
        }
        self.state = RelState::Reading;
        Action::Do(Request::Read { keep_open: false })
    }

    /// Feed the reply to the last request; get the next move.
    pub fn resume(&mut self, reply: Reply) -> Result<Action<Released>, LockError> {
        let state = std::mem::replace(&mut self.state, RelState::Finished);
        if let Reply::Failed(errno) = reply {
            let op = match state {
                RelState::Reading => Op::Read,
                RelState::Unlinking => Op::Unlink,
                RelState::Closing { .. } | RelState::Finished => Op::Close,
            };
            return Err(LockError::Io { op, errno });
        }
        let unexpected = LockError::Protocol {
            request: match state {
                RelState::Reading => "read",
                RelState::Unlinking => "unlink",
                RelState::Closing { .. } => "close",
                RelState::Finished => "nothing (finished)",
            },
            reply: reply_name(&reply),
        };
        let action = match (state, reply) {
            (RelState::Reading, Reply::Read(read)) => match read {
                ReadReply::NotFound => self.close(Released::Lost(Lost::Vanished)),
                ReadReply::NotRegular(kind) => {
                    self.close(Released::Lost(Lost::NotRegular { kind }))
                }
                ReadReply::Found { meta, head, .. } => {
                    let contents = match self.rules.decode(&head) {
                        Ok(r) => Contents::Valid(r),
                        Err(e) => Contents::Malformed(e),
                    };
                    if self.rules.still_ours(&self.held, &contents, meta.id) {
                        self.state = RelState::Unlinking;
                        Action::Do(Request::Unlink)
                    } else {
                        self.close(Released::Lost(Lost::Replaced { contents }))
                    }
                }
            },
            (RelState::Unlinking, Reply::Unlinked) => self.close(Released::Released),
            // Someone removed it between our check and our unlink: we did not
            // release it, and cannot say who holds the path now (§9.2).
            (RelState::Unlinking, Reply::UnlinkedNothing) => {
                self.close(Released::Lost(Lost::Vanished))
            }
            (RelState::Closing { outcome }, Reply::Closed) => Action::Done(outcome),
            _ => return Err(unexpected),
        };
        Ok(action)
    }

    fn close(&mut self, outcome: Released) -> Action<Released> {
        self.state = RelState::Closing { outcome };
        Action::Do(Request::Close {
            file: self.held.file,
        })
    }
}

/// Something that performs requests: the real file system or the simulated one.
pub trait FileSystem {
    /// Perform `request` as one step and answer it; an error is
    /// [`Reply::Failed`].
    fn perform(&mut self, request: &Request) -> Reply;
}

/// Which machine a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub enum Phase {
    /// [`Acquire`].
    Acquire,
    /// [`Release`].
    Release,
}

/// A machine that [`run`] can drive to completion.
pub trait Machine {
    /// What it finishes with.
    type Output;
    /// Which protocol phase this machine runs (for fault injection).
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    const PHASE: Phase;
    /// The first move.
    fn start(&mut self) -> Action<Self::Output>;
    /// Feed the reply to the last request; get the next move.
    fn resume(&mut self, reply: Reply) -> Result<Action<Self::Output>, LockError>;
}

impl<R: Rules> Machine for Acquire<R> {
    type Output = Acquired;
    const PHASE: Phase = Phase::Acquire;
    fn start(&mut self) -> Action<Acquired> {
        Acquire::start(self)
    }
    fn resume(&mut self, reply: Reply) -> Result<Action<Acquired>, LockError> {
        Acquire::resume(self, reply)
    }
}

impl<R: Rules> Machine for Release<R> {
    type Output = Released;
    const PHASE: Phase = Phase::Release;
    fn start(&mut self) -> Action<Released> {
        Release::start(self)
    }
    fn resume(&mut self, reply: Reply) -> Result<Action<Released>, LockError> {
        Release::resume(self, reply)
    }
}

/// Drive `machine` over `fs` until it finishes. Files the machine opened and
/// did not close (only possible when it stops with an error) are closed here;
/// the held file of a successful acquire is the one file left open.
pub fn run<M: Machine, F: FileSystem + ?Sized>(
    machine: &mut M,
    fs: &mut F,
) -> Result<M::Output, LockError> {
    let mut open: Vec<Handle> = Vec::new();
    let mut action = machine.start();
    loop {
        let request = match action {
            Action::Done(output) => return Ok(output),
            Action::Do(request) => request,
        };
        #[cfg(feature = "failpoints")]
        crash_points::before(M::PHASE, &request);
        let reply = fs.perform(&request);
        #[cfg(feature = "failpoints")]
        crash_points::after(M::PHASE, &request, &reply);
        match (&request, &reply) {
            (_, Reply::Published { file, .. }) => open.push(*file),
            (
                _,
                Reply::Read(ReadReply::Found {
                    file: Some(file), ..
                }),
            ) => open.push(*file),
            (Request::Close { file }, Reply::Closed) => open.retain(|f| f != file),
            _ => {}
        }
        action = match machine.resume(reply) {
            Ok(next) => next,
            Err(e) => {
                for file in open {
                    fs.perform(&Request::Close { file });
                }
                return Err(e);
            }
        };
    }
}

/// Which crash point of `crate::failpoint` each step of a machine reaches.
#[cfg(feature = "failpoints")]
mod crash_points {
    use super::{Phase, Reply, Request};
    use crate::failpoint::{armed, reached, Point};

    /// Before `request` is performed.
    pub fn before(phase: Phase, request: &Request) {
        if !armed() {
            return;
        }
        match (phase, request) {
            (Phase::Acquire, Request::Unlink) => reached(Point::BeforeBreakUnlink),
            (Phase::Release, Request::Unlink) => reached(Point::BeforeReleaseUnlink),
            _ => {}
        }
    }

    /// After `request` was performed and answered `reply`.
    pub fn after(phase: Phase, request: &Request, reply: &Reply) {
        if !armed() {
            return;
        }
        match (phase, request, reply) {
            // Published, or (create-then-write) written: the lock is now held.
            (Phase::Acquire, Request::Publish { .. }, Reply::Published { .. })
            | (Phase::Acquire, Request::Write { .. }, Reply::Written) => {
                reached(Point::AfterPublish)
            }
            (Phase::Acquire, Request::Read { .. }, Reply::Read(_)) => reached(Point::AfterRead),
            (Phase::Acquire, Request::Unlink, Reply::Unlinked) => reached(Point::AfterBreakUnlink),
            (Phase::Release, Request::Unlink, Reply::Unlinked) => {
                reached(Point::AfterReleaseUnlink)
            }
            _ => {}
        }
    }
}
