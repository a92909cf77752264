//! What one writer process does: take the lock, run the critical section,
//! release it, again and again — with the reference library in-process, or
//! by driving an adapter process through the adapter protocol.
//!
//! The critical section records `enter` in the writer's ledger, reads the
//! shared counter file, waits a moment, writes the counter back plus one and
//! records `exit`. A paused writer stops itself (SIGSTOP) between the read
//! and the write, so that a holder breaking in meanwhile also loses an
//! update.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::sys::signal::Signal;
use nix::sys::stat::{fstat, Mode as FileMode, SFlag};

use super::faults::{Fault, Plan};
use super::files::{Access, Owned};
use super::history::{Event, Kind};
use super::ledger::{Held, Ledger};
use super::shared::{Shared, Slot, GO_STOP};
use super::sys;
use crate::conform::client::{Adapter, Spec};
use crate::conform::wire::{unhex, Command, Outcome};
use crate::variant::{Lock, Variant};
use rvlf_lock::machine::{Busy, Released};
use rvlf_lock::record::{self, RECORD_LEN};
use rvlf_lock::AcquireError;

/// Exit codes of a writer process.
pub mod code {
    /// Finished its share.
    pub const DONE: i32 = 0;
    /// Could not write its ledger or the counter.
    pub const IO: i32 = 10;
    /// Its adapter died, hung or stopped speaking the protocol.
    pub const ADAPTER_GONE: i32 = 11;
    /// Errors and nothing else, for too long.
    pub const STUCK: i32 = 12;
    /// Could not set itself up (namespace, adapter start).
    pub const SETUP: i32 = 13;
    /// Panicked.
    pub const PANIC: i32 = 99;

    pub fn describe(code: i32) -> String {
        match code {
            DONE => "done".into(),
            IO => "could not write its ledger or the counter".into(),
            ADAPTER_GONE => "its adapter died or stopped answering".into(),
            STUCK => "only errors for too long".into(),
            SETUP => "could not set itself up".into(),
            PANIC => "panicked".into(),
            other => format!("exit status {other}"),
        }
    }
}

/// Errors in a row after which a writer gives up.
const MAX_ERRORS_IN_ROW: u64 = 100_000;
/// How long a storm writer spins waiting for the next round before it sleeps.
const SPIN: Duration = Duration::from_millis(50);
/// Errors a writer process records in its ledger (it counts all of them).
const ERRORS_RECORDED: u64 = 3;

/// How a writer takes the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The library, in this process, as this variant of it.
    Reference(&'static Variant),
    /// An adapter process started with this shell command.
    Adapter(String),
}

/// How a writer loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Acquire, critical section, release, until the budget is spent.
    Loop,
    /// As `Loop`, but stop itself inside every `every`-th critical section.
    Pause { every: u64 },
    /// One try per storm round, released by the harness through `go`.
    Storm,
}

/// Everything one writer process needs.
#[derive(Debug, Clone)]
pub struct Job {
    pub index: usize,
    /// How many processes ran as this writer before this one.
    pub incarnation: u32,
    pub backend: Backend,
    pub mode: Mode,
    pub plan: Plan,
    /// Acquisitions (or storm rounds) for this writer index in total.
    pub limit: Option<u64>,
    /// Extra time inside the critical section.
    pub hold: Duration,
    pub lock_path: PathBuf,
    /// The counter and this writer's ledger, created by the harness.
    pub counter: Owned,
    pub ledger: Owned,
}

/// What one try-acquire got.
enum Attempt {
    Acquired(Holding),
    Busy(Busy),
    /// An adapter's plain `busy` (it does not say why).
    BusyOpaque,
    Error(String),
    /// The adapter is gone: nothing more can be done with it.
    Gone(String),
}

enum Holding {
    Reference(Lock),
    Adapter {
        writer_id: [u8; 16],
        record: Option<[u8; RECORD_LEN]>,
    },
}

impl Holding {
    fn writer_id(&self) -> [u8; 16] {
        match self {
            Holding::Reference(l) => l.record().writer_id.0,
            Holding::Adapter { writer_id, .. } => *writer_id,
        }
    }

    fn record(&self) -> Option<[u8; RECORD_LEN]> {
        match self {
            Holding::Reference(l) => Some(record::encode(l.record())),
            Holding::Adapter { record, .. } => *record,
        }
    }
}

enum ReleaseOutcome {
    Released,
    Lost,
    Error(String),
    Gone(String),
}

/// A lock implementation as a writer drives it.
enum Client {
    Reference {
        lock_path: PathBuf,
        variant: &'static Variant,
    },
    Adapter {
        adapter: Adapter,
        lock_path: PathBuf,
    },
}

/// How long an adapter has to answer one request.
const ADAPTER_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    fn start(job: &Job, slot: &Slot) -> Result<Client, String> {
        match &job.backend {
            Backend::Reference(variant) => {
                let pid = std::process::id();
                slot.record_pid.store(pid, Ordering::Relaxed);
                Ok(Client::Reference {
                    lock_path: job.lock_path.clone(),
                    variant,
                })
            }
            Backend::Adapter(command) => {
                let adapter = Adapter::spawn(&Spec::new(command.clone()), ADAPTER_TIMEOUT)
                    .map_err(|e| format!("adapter {command:?}: {e}"))?;
                slot.group.store(adapter.pid() as i32, Ordering::Relaxed);
                slot.record_pid.store(adapter.hello.pid, Ordering::Relaxed);
                slot.signal_pid
                    .store(adapter.hello.pid as i32, Ordering::Relaxed);
                Ok(Client::Adapter {
                    adapter,
                    lock_path: job.lock_path.clone(),
                })
            }
        }
    }

    fn try_acquire(&mut self) -> Attempt {
        match self {
            Client::Reference { lock_path, variant } => match variant.try_acquire_file(lock_path) {
                Ok(lock) => Attempt::Acquired(Holding::Reference(lock)),
                Err(AcquireError::Busy { busy, .. }) => Attempt::Busy(busy),
                Err(e) => Attempt::Error(e.to_string()),
            },
            Client::Adapter { adapter, lock_path } => {
                let path = lock_path.to_string_lossy().into_owned();
                match adapter.call(Command::TryAcquire { path }, ADAPTER_TIMEOUT) {
                    Ok(Outcome::Acquired { writer_id }) => {
                        let id: [u8; 16] = unhex(&writer_id)
                            .ok()
                            .and_then(|b| b.try_into().ok())
                            .unwrap_or([0; 16]);
                        let record = read_record(lock_path).filter(|r| {
                            r[record::offset::WRITER_ID..record::offset::VERSION] == id
                        });
                        Attempt::Acquired(Holding::Adapter {
                            writer_id: id,
                            record,
                        })
                    }
                    Ok(Outcome::Busy) => Attempt::BusyOpaque,
                    Ok(other) => Attempt::Error(format!("try-acquire answered {}", other.name())),
                    Err(fault) => Attempt::Gone(fault.to_string()),
                }
            }
        }
    }

    fn release(&mut self, holding: Holding) -> ReleaseOutcome {
        match (self, holding) {
            (Client::Reference { .. }, Holding::Reference(lock)) => match lock.release() {
                Ok(Released::Released) => ReleaseOutcome::Released,
                Ok(Released::Lost(_)) => ReleaseOutcome::Lost,
                Err(e) => ReleaseOutcome::Error(e.to_string()),
            },
            (Client::Adapter { adapter, lock_path }, Holding::Adapter { .. }) => {
                let path = lock_path.to_string_lossy().into_owned();
                match adapter.call(Command::Release { path }, ADAPTER_TIMEOUT) {
                    Ok(Outcome::Released) => ReleaseOutcome::Released,
                    Ok(Outcome::Lost) => ReleaseOutcome::Lost,
                    Ok(other) => {
                        ReleaseOutcome::Error(format!("release answered {}", other.name()))
                    }
                    Err(fault) => ReleaseOutcome::Gone(fault.to_string()),
                }
            }
            _ => ReleaseOutcome::Error("holding of another client".into()),
        }
    }

    fn finish(self) {
        if let Client::Adapter { adapter, .. } = self {
            adapter.finish();
        }
    }
}

/// The lock file's bytes, read safely (§4.1), if it holds exactly a record.
fn read_record(path: &Path) -> Option<[u8; RECORD_LEN]> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .ok()?;
    let st = fstat(fd.as_fd()).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return None;
    }
    let file = File::from(fd);
    let mut buf = [0u8; RECORD_LEN + 1];
    let n = file.read_at(&mut buf, 0).ok()?;
    (n == RECORD_LEN).then(|| {
        let mut r = [0u8; RECORD_LEN];
        r.copy_from_slice(&buf[..RECORD_LEN]);
        r
    })
}

/// The running writer: its files and counters.
struct Writer<'a> {
    job: &'a Job,
    shared: &'a Shared,
    slot: &'a Slot,
    ledger: Ledger,
    counter: File,
    client: Client,
    /// Iterations of this incarnation, for the fault plan.
    iterations: u64,
    armed: bool,
    errors_in_row: u64,
    errors_recorded: u64,
}

/// Run the writer; its exit code.
pub fn run(job: &Job, shared: &Shared) -> i32 {
    let slot = shared.slot(job.index);
    let (mut ledger, counter) = match open_files(job) {
        Ok(files) => files,
        Err(_) => return code::IO,
    };
    let client = match Client::start(job, slot) {
        Ok(c) => c,
        Err(why) => {
            let pid = slot.record_pid.load(Ordering::Relaxed);
            let mut event = Event::new(sys::mono_ns(), Kind::Error).by(job.index, pid, 0);
            event.cause = Some(why);
            let _ = ledger.append(&event, None);
            return code::SETUP;
        }
    };
    let mut writer = Writer {
        job,
        shared,
        slot,
        ledger,
        counter,
        client,
        iterations: 0,
        armed: false,
        errors_in_row: 0,
        errors_recorded: 0,
    };
    let code = match job.mode {
        Mode::Loop | Mode::Pause { .. } => writer.run_loop(),
        Mode::Storm => writer.run_storm(),
    };
    writer.client.finish();
    code
}

/// The ledger and the counter, if they are still the harness's files
/// (adapters can write the directory they are in).
fn open_files(job: &Job) -> std::io::Result<(Ledger, File)> {
    let ledger = Ledger::open_owned(&job.ledger)?;
    let counter = job.counter.open(Access::ReadWrite)?;
    Ok((ledger, counter))
}

/// What one [`Writer::attempt`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    Acquired,
    Busy,
    Failed,
}

impl Writer<'_> {
    fn seq(&self) -> u64 {
        self.slot.progress.load(Ordering::Relaxed)
    }

    fn should_stop(&self) -> bool {
        if self.shared.stopping() {
            return true;
        }
        let deadline = self.shared.header().deadline_ns.load(Ordering::Relaxed);
        if deadline != 0 && sys::mono_ns() >= deadline {
            return true;
        }
        match (self.job.mode, self.job.limit) {
            (Mode::Storm, Some(rounds)) => self.slot.round.load(Ordering::Relaxed) >= rounds,
            (_, Some(limit)) => self.seq() >= limit,
            (_, None) => false,
        }
    }

    /// Arm this incarnation's failpoint once its time has come.
    fn maybe_arm(&mut self) {
        if let Some(Fault::Point(point)) = self.job.plan.fault {
            if !self.armed && self.iterations >= self.job.plan.after {
                rvlf_lock::failpoint::arm(Some(point));
                self.armed = true;
            }
        }
    }

    fn iteration_done(&mut self) {
        self.iterations += 1;
        self.slot.iterations.fetch_add(1, Ordering::Relaxed);
    }

    fn run_loop(&mut self) -> i32 {
        while !self.should_stop() {
            self.maybe_arm();
            match self.attempt() {
                Ok(Tried::Acquired) => self.iteration_done(),
                Ok(Tried::Busy | Tried::Failed) => sys_yield(),
                Err(code) => return code,
            }
        }
        code::DONE
    }

    fn run_storm(&mut self) -> i32 {
        let header = self.shared.header();
        loop {
            let last = self.slot.round.load(Ordering::Relaxed);
            // Spin (yielding) for a while, so that the writers on a CPU when
            // the round starts all start at that instant; then sleep.
            let spin_until = sys::mono_ns() + SPIN.as_nanos() as u64;
            let go = loop {
                let g = header.go.load(Ordering::Acquire);
                if g == GO_STOP || self.should_stop() {
                    return code::DONE;
                }
                if u64::from(g) > last {
                    break g;
                }
                self.mark_floor();
                if sys::mono_ns() < spin_until {
                    sys_yield();
                } else {
                    sys::futex_wait(&header.go, g, Duration::from_millis(100));
                }
            };
            self.maybe_arm();
            // One try: a busy answer means someone else won this round.
            // An error gets two more.
            for _ in 0..3 {
                match self.attempt() {
                    Ok(Tried::Acquired | Tried::Busy) => break,
                    Ok(Tried::Failed) => {}
                    Err(code) => return code,
                }
            }
            self.slot.round.store(u64::from(go), Ordering::Release);
            self.iteration_done();
        }
    }

    /// No event of this writer is under way: every one it will record has
    /// a later time than now.
    fn mark_floor(&self) {
        self.slot.floor.store(sys::mono_ns(), Ordering::Release);
    }

    /// One try-acquire, and if it succeeds the critical section and the
    /// release. `Err` carries the exit code of a writer that must stop.
    fn attempt(&mut self) -> Result<Tried, i32> {
        self.mark_floor();
        let holding = match self.client.try_acquire() {
            Attempt::Acquired(h) => h,
            Attempt::Busy(busy) => {
                self.errors_in_row = 0;
                let counter = match busy {
                    Busy::Held { .. } => &self.slot.busy_held,
                    Busy::Guarded { .. } => &self.slot.busy_guarded,
                    Busy::Contended => &self.slot.busy_contended,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return Ok(Tried::Busy);
            }
            Attempt::BusyOpaque => {
                self.errors_in_row = 0;
                self.slot.busy_held.fetch_add(1, Ordering::Relaxed);
                return Ok(Tried::Busy);
            }
            Attempt::Error(why) => {
                self.slot.errors.fetch_add(1, Ordering::Relaxed);
                self.record_error(why)?;
                self.errors_in_row += 1;
                if self.errors_in_row > MAX_ERRORS_IN_ROW {
                    return Err(code::STUCK);
                }
                return Ok(Tried::Failed);
            }
            Attempt::Gone(why) => {
                self.record_error(why)?;
                return Err(code::ADAPTER_GONE);
            }
        };
        self.errors_in_row = 0;
        let seq = self.seq();
        let pause = match self.job.mode {
            Mode::Pause { every } => (seq + 1).is_multiple_of(every.max(1)),
            _ => false,
        };
        if self.critical_section(&holding, seq, pause).is_err() {
            return Err(code::IO);
        }
        self.slot.progress.store(seq + 1, Ordering::Release);
        let pid = self.slot.record_pid.load(Ordering::Relaxed);
        let outcome = self.client.release(holding);
        let (kind, cause) = match outcome {
            ReleaseOutcome::Released => return Ok(Tried::Acquired),
            ReleaseOutcome::Lost => {
                self.slot.lost.fetch_add(1, Ordering::Relaxed);
                (Kind::Lost, None)
            }
            ReleaseOutcome::Error(e) => {
                self.slot.errors.fetch_add(1, Ordering::Relaxed);
                (Kind::ReleaseError, Some(e))
            }
            ReleaseOutcome::Gone(why) => {
                self.record_error(why)?;
                return Err(code::ADAPTER_GONE);
            }
        };
        let mut event = Event::new(sys::mono_ns(), kind).by(self.job.index, pid, seq);
        event.cause = cause;
        self.ledger.append(&event, None).map_err(|_| code::IO)?;
        Ok(Tried::Acquired)
    }

    /// Note an error in the ledger, if this process has not noted too many.
    fn record_error(&mut self, why: String) -> Result<(), i32> {
        if self.errors_recorded >= ERRORS_RECORDED {
            return Ok(());
        }
        self.errors_recorded += 1;
        let pid = self.slot.record_pid.load(Ordering::Relaxed);
        let mut event = Event::new(sys::mono_ns(), Kind::Error).by(self.job.index, pid, self.seq());
        event.cause = Some(why);
        self.ledger.append(&event, None).map_err(|_| code::IO)
    }

    fn critical_section(
        &mut self,
        holding: &Holding,
        seq: u64,
        pause: bool,
    ) -> std::io::Result<()> {
        let pid = self.slot.record_pid.load(Ordering::Relaxed);
        let writer_id = holding.writer_id();
        let record = holding.record();
        let held = Held {
            writer_id: &writer_id,
            record: record.as_ref(),
        };
        let enter = Event::new(sys::mono_ns(), Kind::Enter).by(self.job.index, pid, seq);
        self.ledger.append(&enter, Some(&held))?;
        let mut value = [0u8; 8];
        self.counter.read_exact_at(&mut value, 0)?;
        if pause {
            // The harness sees us stopped, ages our lock, and continues us later.
            sys::raise(Signal::SIGSTOP);
        }
        if self.job.hold.is_zero() {
            sys_yield();
        } else {
            std::thread::sleep(self.job.hold);
        }
        let next = u64::from_le_bytes(value).wrapping_add(1);
        self.counter.write_all_at(&next.to_le_bytes(), 0)?;
        let exit = Event::new(sys::mono_ns(), Kind::Exit).by(self.job.index, pid, seq);
        self.ledger.append(&exit, None)
    }
}

fn sys_yield() {
    std::thread::yield_now();
}
