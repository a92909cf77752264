//! The harness of a stress run: forks the writers, watches them with
//! `sigtimedwait` (never a thread, so it can fork again at any time), injects
//! the faults of the plan, restarts writers that died, moves dead or paused
//! holders' locks into the past so nobody waits 30 s, drives the storm's
//! rounds, and at the end merges the ledgers into one history and checks it.

use std::fs::File;
use std::io::{BufWriter, IsTerminal};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::check::{Checker, Findings};
use super::faults::{self, Fault, Plan};
use super::files::{self, Access, Identity, Owned};
use super::history::{EndLine, Event, JsonWriter, Kind, RunLine};
use super::ledger::{self, Ledger, Merge};
use super::progress::Tracker;
pub use super::scenario::{Config, Progress, Scenario, Variant, PAUSED_HOST};
use super::shared::{Shared, Totals, GO_STOP};
use super::spawn::{self, Host};
use super::sys::{self, SignalMask};
use super::writer::{code, Backend, Job, Mode};
use rvlf_lock::record::{self, hex, Hostname, Record, WriterId, RECORD_LEN};
use rvlf_lock::Options;

/// How far into the past a dead holder's lock is moved: beyond every threshold.
const AGE: Duration = Duration::from_secs(3600);

/// What a run did and found.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub findings: Findings,
    pub totals: Totals,
    pub elapsed: Duration,
    /// Writers that ended abnormally (not by an injected fault).
    pub failures: Vec<String>,
    /// Why the scenario did not run here.
    pub skipped: Option<String>,
    pub interrupted: bool,
    /// Why the harness gave up waiting.
    pub stalled: Option<String>,
    /// After the run, the lock could not be taken (by the protocol): why.
    /// `None` when it could, as it must after every writer has gone.
    pub leftover: Option<String>,
}

impl Outcome {
    fn skipped(reason: String) -> Outcome {
        Outcome {
            findings: Findings::default(),
            totals: Totals::default(),
            elapsed: Duration::ZERO,
            failures: Vec::new(),
            skipped: Some(reason),
            interrupted: false,
            stalled: None,
            leftover: None,
        }
    }

    /// The harness could not do its job: the findings say nothing.
    pub fn harness_failed(&self) -> bool {
        self.interrupted || self.stalled.is_some() || !self.failures.is_empty()
    }
}

/// One incarnation of a writer, alive.
#[derive(Debug)]
struct Live {
    pid: Pid,
    plan: Plan,
    /// The slot's iteration count when it started.
    start_iterations: u64,
    kill_sent: bool,
    /// Stopped inside its critical section; continue it then.
    resume_at: Option<Instant>,
}

#[derive(Debug)]
struct WriterState {
    job: Job,
    host: Host,
    live: Option<Live>,
    incarnations: u32,
    finished: bool,
    /// End of the ledger's last whole entry, as far as checked.
    ledger_good: u64,
}

/// How a writer process ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Exited(i32),
    Signaled(Signal),
}

/// A running stress test.
struct Run<'a> {
    config: &'a Config,
    shared: Shared,
    mask: &'a SignalMask,
    lock_path: PathBuf,
    counter: Owned,
    harness: Ledger,
    harness_ledger: Owned,
    writers: Vec<WriterState>,
    failures: Vec<String>,
    local_host: Hostname,
    started: Instant,
    /// Storm: the round in progress (0 before the first), and whether it is over.
    round: u64,
    storm_done: bool,
    /// Tearing down: deaths are recorded, not answered.
    stopping: bool,
    last_activity: (u64, Instant),
    progress: Tracker,
    /// Why the harness stopped waiting, if it did.
    stalled: Option<String>,
}

/// Run one stress test.
pub fn run(config: &Config) -> Result<Outcome, String> {
    config.validate()?;
    let mask = SignalMask::block().map_err(|e| format!("blocking signals: {e}"))?;
    if let Some(reason) = unavailable(config, &mask) {
        return Ok(Outcome::skipped(reason));
    }
    let scratch = tempfile::Builder::new()
        .prefix("rvlf-stress-")
        .tempdir_in(&config.dir)
        .map_err(|e| format!("scratch directory in {}: {e}", config.dir.display()))?;
    let mut run = Run::new(config, &mask, scratch.path())?;
    if let Err(e) = run.start() {
        run.teardown();
        return Err(e);
    }
    let interrupted = run.watch();
    run.teardown();
    let elapsed = run.started.elapsed();
    let leftover = try_final_acquire(&run.lock_path, &mask);
    let counter = read_counter(&run.counter)?;
    let findings = run.check(counter)?;
    Ok(Outcome {
        findings,
        totals: run.shared.totals(),
        elapsed,
        failures: run.failures.clone(),
        skipped: None,
        interrupted,
        stalled: run.stalled.clone(),
        leftover,
    })
}

/// With every writer gone, whatever they left must be free or breakable:
/// take the lock once by the protocol and release it. Why not, if not.
///
/// In a forked child, like every acquire of a run: the library may cache
/// this host's name for the life of a process, and a cache filled in the
/// harness would be inherited by the writers it forks later, on other hosts.
fn try_final_acquire(lock_path: &Path, mask: &SignalMask) -> Option<String> {
    let exit = spawn::in_child(mask, || {
        match rvlf_lock::WriterLock::try_acquire_file(lock_path, Options::default()) {
            Ok(lock) => match lock.release() {
                Ok(rvlf_lock::machine::Released::Released) => 0,
                _ => 3,
            },
            Err(rvlf_lock::AcquireError::Busy { .. }) => 1,
            Err(_) => 2,
        }
    });
    let why = match exit {
        Ok(0) => return None,
        Ok(1) => "busy",
        Ok(2) => "error",
        Ok(_) => "acquired, but its release did not say released",
        Err(e) => return Some(format!("cannot try: {e}")),
    };
    let found = match rvlf_lock::inspect::inspect(lock_path) {
        Ok(found) => found.render(),
        Err(e) => e.to_string(),
    };
    Some(format!("{why}; the lock file:\n{found}"))
}

/// Why `config` cannot run on this machine, if it cannot.
fn unavailable(config: &Config, mask: &SignalMask) -> Option<String> {
    let pid_ns = match config.scenario {
        Scenario::Hosts => true,
        Scenario::Pause => false,
        _ => return None,
    };
    spawn::probe_hosts(pid_ns, mask)
        .err()
        .map(|e| format!("simulated hosts are not available here: {e}"))
}

fn read_counter(counter: &Owned) -> Result<u64, String> {
    let mut b = [0u8; 8];
    counter
        .open(Access::Read)
        .and_then(|f| f.read_exact_at(&mut b, 0))
        .map_err(|e| format!("{}: {e}", counter.path.display()))?;
    Ok(u64::from_le_bytes(b))
}

impl<'a> Run<'a> {
    fn new(config: &'a Config, mask: &'a SignalMask, dir: &Path) -> Result<Run<'a>, String> {
        let shared = Shared::new(config.writers).map_err(|e| format!("shared memory: {e}"))?;
        let lock_path = dir.join("data.rvf.lock");
        // The harness's files, made here before any writer or adapter runs.
        let counter_path = dir.join("counter");
        let counter = Owned::create(&counter_path, Access::ReadWrite, 0o600)
            .and_then(|(owned, f)| f.write_all_at(&0u64.to_le_bytes(), 0).map(|()| owned))
            .map_err(|e| format!("{}: {e}", counter_path.display()))?;
        let harness_path = dir.join("harness.ledger");
        let (harness, harness_ledger) = Ledger::create(&harness_path)
            .map_err(|e| format!("{}: {e}", harness_path.display()))?;
        let ledgers = (0..config.writers)
            .map(|index| {
                let path = dir.join(format!("w{index}.ledger"));
                Ledger::create(&path)
                    .map(|(_, owned)| owned)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .collect::<Result<Vec<Owned>, String>>()?;
        let writers = ledgers
            .iter()
            .enumerate()
            .map(|(index, ledger)| WriterState {
                job: Job {
                    index,
                    incarnation: 0,
                    backend: config.backend(index),
                    mode: config.mode(index),
                    plan: Plan::NONE,
                    limit: config.limit(index),
                    hold: config.hold,
                    lock_path: lock_path.clone(),
                    counter: counter.clone(),
                    ledger: ledger.clone(),
                },
                host: config.host(index),
                live: None,
                incarnations: 0,
                finished: false,
                ledger_good: 0,
            })
            .collect();
        let local_host =
            rvlf_lock::host::local_hostname().map_err(|e| format!("gethostname: {e}"))?;
        let now = Instant::now();
        let mut followed = ledgers;
        followed.push(harness_ledger.clone());
        Ok(Run {
            config,
            shared,
            mask,
            lock_path,
            counter,
            harness,
            harness_ledger,
            writers,
            failures: Vec::new(),
            local_host,
            started: now,
            round: 0,
            storm_done: false,
            stopping: false,
            last_activity: (0, now),
            progress: Tracker::new(config.progress, followed, now),
            stalled: None,
        })
    }

    fn start(&mut self) -> Result<(), String> {
        if let Some(d) = self.config.duration {
            let deadline = sys::mono_ns() + d.as_nanos() as u64;
            self.shared
                .header()
                .deadline_ns
                .store(deadline, Ordering::Relaxed);
        }
        self.started = Instant::now();
        self.last_activity = (0, self.started);
        self.progress.reset(self.started);
        for index in 0..self.writers.len() {
            self.spawn(index)?;
        }
        Ok(())
    }

    /// Start the next incarnation of writer `index`.
    fn spawn(&mut self, index: usize) -> Result<(), String> {
        let slot = self.shared.slot(index);
        slot.signal_pid.store(0, Ordering::Relaxed);
        slot.record_pid.store(0, Ordering::Relaxed);
        // Every event of the writer's former lives is in its ledger.
        slot.floor.store(sys::mono_ns(), Ordering::Release);
        let w = &mut self.writers[index];
        let in_process = matches!(w.job.backend, Backend::Reference(_));
        w.job.incarnation = w.incarnations;
        w.job.plan = faults::plan(
            self.config.seed,
            index,
            w.incarnations,
            &self.config.faults,
            self.config.fault_every,
            in_process,
        );
        let pid = spawn::writer(&w.job, &self.shared, self.mask, &w.host)?;
        // Who to signal: this process, unless its writer runs in a PID
        // namespace (its init says) or is an adapter (the writer says).
        let in_pid_ns = matches!(w.host, Host::Named { pid_ns: true, .. });
        if in_process && !in_pid_ns {
            slot.signal_pid.store(pid.as_raw(), Ordering::Relaxed);
        }
        w.incarnations += 1;
        w.live = Some(Live {
            pid,
            plan: w.job.plan,
            start_iterations: slot.iterations.load(Ordering::Relaxed),
            kill_sent: false,
            resume_at: None,
        });
        Ok(())
    }

    fn all_finished(&self) -> bool {
        self.writers.iter().all(|w| w.finished && w.live.is_none())
    }

    /// The event loop. True if interrupted.
    fn watch(&mut self) -> bool {
        loop {
            if self.all_finished() {
                return false;
            }
            let busy = self.config.scenario == Scenario::Storm
                || self.writers.iter().any(|w| {
                    w.live
                        .as_ref()
                        .is_some_and(|l| l.resume_at.is_some() || l.plan.fault == Some(Fault::Kill))
                });
            let wait = if busy {
                Duration::from_micros(500)
            } else {
                Duration::from_millis(20)
            };
            if let Some(sig) = self.mask.wait(wait) {
                if sig != libc::SIGCHLD {
                    return true;
                }
            }
            self.reap();
            self.strike();
            self.resume_paused();
            if self.config.scenario == Scenario::Storm {
                self.storm_step();
            }
            self.progress_line(false);
            if let Some(reason) = self.stalled_reason() {
                self.stalled = Some(reason);
                return false;
            }
        }
    }

    fn activity(&self) -> u64 {
        self.shared.progress() + self.round
    }

    /// Why the run is stuck, if it is: too long without an acquisition, or
    /// past its timeout.
    fn stalled_reason(&self) -> Option<String> {
        if self.all_finished() {
            return None;
        }
        let (count, since) = self.last_activity;
        let paused = self
            .writers
            .iter()
            .any(|w| w.live.as_ref().is_some_and(|l| l.resume_at.is_some()));
        let quiet = count == self.activity() && !paused && since.elapsed() > self.config.stall;
        let late = self.started.elapsed() > self.config.timeout;
        if !quiet && !late {
            return None;
        }
        let lock = match rvlf_lock::inspect::inspect(&self.lock_path) {
            Ok(found) => found.render(),
            Err(e) => format!("{e}\n"),
        };
        Some(format!(
            "{} after {:.1} s; the lock file:\n{lock}",
            if late {
                "timed out"
            } else {
                "no acquisition for too long"
            },
            self.started.elapsed().as_secs_f64()
        ))
    }

    fn note_activity(&mut self) {
        let now = self.activity();
        if now != self.last_activity.0 {
            self.last_activity = (now, Instant::now());
        }
    }

    fn reap(&mut self) {
        loop {
            let status = waitpid(
                Pid::from_raw(-1),
                Some(WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED),
            );
            match status {
                Ok(WaitStatus::Exited(pid, c)) => self.ended(pid, End::Exited(c)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.ended(pid, End::Signaled(sig)),
                Ok(WaitStatus::Stopped(pid, _)) => self.stopped(pid),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        self.note_activity();
    }

    fn find(&self, pid: Pid) -> Option<usize> {
        self.writers
            .iter()
            .position(|w| w.live.as_ref().is_some_and(|l| l.pid == pid))
    }

    /// The lock identity of writer `index`'s holder: the PID its records
    /// carry and, on a simulated host, its host name.
    fn identity(&self, index: usize) -> (u32, Option<Hostname>) {
        let pid = self.shared.slot(index).record_pid.load(Ordering::Relaxed);
        let host = match &self.writers[index].host {
            Host::Local => None,
            Host::Named { name, .. } => Some(Hostname::truncated(name.as_bytes())),
        };
        (pid, host)
    }

    fn ended(&mut self, pid: Pid, end: End) {
        let Some(index) = self.find(pid) else { return };
        let Some(live) = self.writers[index].live.take() else {
            return;
        };
        let cause = match (end, live.plan.fault) {
            (End::Exited(code::DONE), _) => None,
            (End::Signaled(Signal::SIGKILL), _) if live.kill_sent => {
                Some("harness SIGKILL".to_string())
            }
            (End::Exited(code::ADAPTER_GONE), _) if live.kill_sent => {
                Some("harness SIGKILL of its adapter".to_string())
            }
            (End::Exited(code::ADAPTER_GONE), _) => {
                // A failure of the implementation; the run goes on without
                // waiting 30 s for the lock it may have left.
                self.failures.push(format!(
                    "writer {index}: {}",
                    code::describe(code::ADAPTER_GONE)
                ));
                Some("its adapter hung or crashed".to_string())
            }
            (End::Signaled(Signal::SIGKILL), Some(Fault::Point(p))) => {
                Some(format!("failpoint {}", p.name()))
            }
            (End::Signaled(Signal::SIGKILL), _) if self.stopping => {
                Some("SIGKILL at teardown".to_string())
            }
            (End::Exited(c), _) => {
                self.failures
                    .push(format!("writer {index}: {}", code::describe(c)));
                None
            }
            (End::Signaled(sig), _) => {
                self.failures.push(format!(
                    "writer {index}: killed by {sig:?} (not a planned fault)"
                ));
                Some(format!("{sig:?}"))
            }
        };
        if let Some(cause) = cause {
            self.record_death(index, &cause);
        }
        self.kill_adapter_group(index);
        let w = &self.writers[index];
        let spent = match (w.job.mode, w.job.limit) {
            (Mode::Storm, Some(rounds)) => {
                self.shared.slot(index).round.load(Ordering::Relaxed) >= rounds
            }
            (_, Some(limit)) => self.shared.slot(index).progress.load(Ordering::Relaxed) >= limit,
            (_, None) => false,
        };
        let deadline = self.shared.header().deadline_ns.load(Ordering::Relaxed);
        let late = deadline != 0 && sys::mono_ns() >= deadline;
        let died =
            matches!(end, End::Signaled(_) | End::Exited(code::ADAPTER_GONE)) || live.kill_sent;
        let restart = died && !spent && !late && !self.stopping && !self.storm_done;
        if restart {
            if self.config.scenario == Scenario::Storm {
                // The round it died in counts as done for it.
                self.shared
                    .slot(index)
                    .round
                    .store(self.round, Ordering::Relaxed);
            }
            if let Err(e) = self.spawn(index) {
                self.failures.push(format!("writer {index}: restart: {e}"));
                self.writers[index].finished = true;
            }
        } else {
            self.writers[index].finished = true;
            if self.config.scenario == Scenario::Pause && index == 0 {
                // The paused writer is what this scenario is about: when it
                // is done, so is the run.
                self.shared.header().stop.store(1, Ordering::Release);
            }
        }
    }

    /// Write the death into the writer's ledger, after moving its lock (if
    /// it left one) into the past.
    fn record_death(&mut self, index: usize, cause: &str) {
        let t = sys::mono_ns();
        let (pid, host) = self.identity(index);
        let held = self.age_lock(pid, host.as_ref(), index);
        let w = &mut self.writers[index];
        match ledger::repair(&w.job.ledger, w.ledger_good) {
            Ok(good) => w.ledger_good = good,
            Err(e) => self.failures.push(format!("writer {index}: ledger: {e}")),
        }
        let seq = self.shared.slot(index).progress.load(Ordering::Relaxed);
        let mut death = Event::new(t, Kind::Death).by(index, pid, seq);
        death.signal = Some(libc::SIGKILL);
        death.cause = Some(cause.to_string());
        death.held_lock = held;
        self.append_to(index, &death);
    }

    fn append_to(&mut self, index: usize, event: &Event) {
        let ledger = &self.writers[index].job.ledger;
        if let Err(e) = Ledger::open_owned(ledger).and_then(|mut l| l.append(event, None)) {
            self.failures.push(format!(
                "writer {index}: ledger {}: {e}",
                ledger.path.display()
            ));
        }
    }

    fn harness_event(&mut self, event: &Event) {
        if let Err(e) = self.harness.append(event, None) {
            self.failures.push(format!("harness ledger: {e}"));
        }
    }

    /// If the lock is this holder's (`pid`, and `host` when given), rewrite
    /// its timestamp and its mtime an hour into the past: stale by every
    /// threshold, as if that long had passed. True if it was.
    fn age_lock(&mut self, pid: u32, host: Option<&Hostname>, index: usize) -> bool {
        let aged = age_lock(&self.lock_path, pid, host);
        if aged {
            let event = Event::new(sys::mono_ns(), Kind::Aged).by(index, pid, 0);
            self.harness_event(&event);
        }
        aged
    }

    fn kill_adapter_group(&self, index: usize) {
        let slot = self.shared.slot(index);
        let group = slot.group.swap(0, Ordering::Relaxed);
        if group > 0 {
            let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        }
    }

    /// Writer `index` stopped itself inside its critical section: age its
    /// lock as if the pause had outlasted the threshold, continue it later.
    fn stopped(&mut self, pid: Pid) {
        let Some(index) = self.find(pid) else { return };
        let t = sys::mono_ns();
        let (record_pid, host) = self.identity(index);
        let seq = self.shared.slot(index).progress.load(Ordering::Relaxed);
        self.append_to(
            index,
            &Event::new(t, Kind::Pause).by(index, record_pid, seq),
        );
        self.age_lock(record_pid, host.as_ref(), index);
        let resume = Instant::now() + self.config.pause;
        if let Some(live) = self.writers[index].live.as_mut() {
            live.resume_at = Some(resume);
        }
    }

    fn resume_paused(&mut self) {
        let now = Instant::now();
        for index in 0..self.writers.len() {
            let due = self.writers[index]
                .live
                .as_ref()
                .and_then(|l| l.resume_at.filter(|&at| at <= now).map(|_| l.pid));
            let Some(pid) = due else { continue };
            let (record_pid, _) = self.identity(index);
            let seq = self.shared.slot(index).progress.load(Ordering::Relaxed);
            let event = Event::new(sys::mono_ns(), Kind::Continue).by(index, record_pid, seq);
            self.append_to(index, &event);
            if let Some(live) = self.writers[index].live.as_mut() {
                live.resume_at = None;
            }
            let _ = kill(pid, Signal::SIGCONT);
        }
    }

    /// Send the harness's SIGKILLs whose time has come: the planned ones,
    /// and those of writers whose failpoint was not reached within
    /// 2 * `fault_every` iterations of being armed (a breaker's step is only
    /// reached when there is a stale lock to break), so that faults go on.
    fn strike(&mut self) {
        let grace = 2 * self.config.fault_every.max(1);
        for index in 0..self.writers.len() {
            let slot = self.shared.slot(index);
            let target = slot.signal_pid.load(Ordering::Relaxed);
            let iterations = slot.iterations.load(Ordering::Relaxed);
            let due = self.writers[index].live.as_ref().is_some_and(|l| {
                let at = l.start_iterations + l.plan.after;
                let time = match l.plan.fault {
                    Some(Fault::Kill) => iterations >= at,
                    Some(Fault::Point(_)) => iterations >= at + grace,
                    None => false,
                };
                time && !l.kill_sent && l.resume_at.is_none()
            });
            if !due || target <= 0 {
                continue;
            }
            let _ = kill(Pid::from_raw(target), Signal::SIGKILL);
            if let Some(live) = self.writers[index].live.as_mut() {
                live.kill_sent = true;
            }
            let (pid, _) = self.identity(index);
            let seq = slot.progress.load(Ordering::Relaxed);
            self.harness_event(&Event::new(sys::mono_ns(), Kind::Kill).by(index, pid, seq));
        }
    }

    /// Storm: when every writer is done with the round, plant the next stale
    /// lock and release them all at once.
    fn storm_step(&mut self) {
        if self.storm_done {
            return;
        }
        let round = self.round;
        let complete =
            self.writers.iter().enumerate().all(|(i, w)| {
                w.finished || self.shared.slot(i).round.load(Ordering::Acquire) >= round
            });
        if !complete {
            return;
        }
        let deadline = self.shared.header().deadline_ns.load(Ordering::Relaxed);
        let out_of_rounds = self.config.count.is_some_and(|c| round >= c);
        let out_of_time = deadline != 0 && sys::mono_ns() >= deadline;
        if out_of_rounds || out_of_time || round >= u64::from(GO_STOP - 1) {
            self.storm_done = true;
            self.release_storm(GO_STOP);
            return;
        }
        if let Err(e) = self.plant(round + 1) {
            self.failures
                .push(format!("storm round {}: {e}", round + 1));
            self.storm_done = true;
            self.release_storm(GO_STOP);
            return;
        }
        self.round = round + 1;
        self.release_storm(self.round as u32);
    }

    /// Set the storm's `go` word and wake every writer waiting on it.
    fn release_storm(&self, go: u32) {
        let header = self.shared.header();
        header.go.store(go, Ordering::Release);
        sys::futex_wake_all(&header.go);
    }

    /// Put a stale lock at the lock path: this host, a dead PID, written an
    /// hour ago (timestamp and mtime). Whatever was there goes first.
    fn plant(&mut self, round: u64) -> Result<(), String> {
        let pid = spawn::dead_pid()?;
        let id = WriterId::random().map_err(|e| format!("random: {e}"))?;
        let then = sys::realtime_ns() - AGE.as_nanos() as i128;
        let record = Record::new(
            pid,
            self.local_host.as_bytes(),
            u64::try_from(then).unwrap_or(0),
            id,
        );
        plant_file(
            &self.lock_path,
            &record::encode(&record),
            SystemTime::now() - AGE,
        )?;
        let mut event = Event::new(sys::mono_ns(), Kind::Plant);
        event.pid = pid;
        event.seq = round;
        self.harness_event(&event);
        Ok(())
    }

    /// Print a progress line if one is due (at the end, `last`, always).
    fn progress_line(&mut self, last: bool) {
        let now = Instant::now();
        if !self.progress.due(now, last) {
            return;
        }
        let checked_to = self.complete_before();
        let elapsed = self.started.elapsed();
        self.progress.print(
            &mut std::io::stderr().lock(),
            now,
            elapsed,
            checked_to,
            last,
        );
    }

    /// A time (CLOCK_MONOTONIC ns) before which every event of the run is in
    /// the ledgers: the harness writes its own at once, and each live writer
    /// says how far it is ([`super::shared::Slot::floor`]).
    fn complete_before(&self) -> u64 {
        let now = sys::mono_ns();
        (0..self.writers.len())
            .filter(|&i| self.writers[i].live.is_some())
            .map(|i| self.shared.slot(i).floor.load(Ordering::Acquire))
            .fold(now, u64::min)
    }

    /// Stop every writer: ask, continue the stopped, wait a little, then kill.
    fn teardown(&mut self) {
        self.stopping = true;
        self.shared.header().stop.store(1, Ordering::Release);
        self.release_storm(GO_STOP);
        for index in 0..self.writers.len() {
            if self.writers[index]
                .live
                .as_ref()
                .is_some_and(|l| l.resume_at.is_some())
            {
                if let Some(l) = self.writers[index].live.as_mut() {
                    l.resume_at = Some(Instant::now());
                }
            }
        }
        self.resume_paused();
        let grace = Instant::now() + Duration::from_secs(5);
        while !self.all_finished() && Instant::now() < grace {
            self.mask.wait(Duration::from_millis(20));
            self.reap();
        }
        for w in &self.writers {
            if let Some(live) = &w.live {
                let _ = killpg(live.pid, Signal::SIGKILL);
                let _ = kill(live.pid, Signal::SIGKILL);
            }
        }
        for index in 0..self.writers.len() {
            self.kill_adapter_group(index);
            if let Some(pid) = self.writers[index].live.as_ref().map(|l| l.pid) {
                let status = loop {
                    match waitpid(pid, None) {
                        Err(Errno::EINTR) => continue,
                        other => break other,
                    }
                };
                match status {
                    Ok(WaitStatus::Signaled(_, sig, _)) => self.ended(pid, End::Signaled(sig)),
                    Ok(WaitStatus::Exited(_, c)) => self.ended(pid, End::Exited(c)),
                    _ => self.writers[index].live = None,
                }
            }
        }
        self.progress_line(true);
    }

    /// Merge the ledgers, save the history if asked, and check it.
    fn check(&self, counter: u64) -> Result<Findings, String> {
        let mut ledgers: Vec<Owned> = self.writers.iter().map(|w| w.job.ledger.clone()).collect();
        ledgers.push(self.harness_ledger.clone());
        let mut merge = Merge::open(&ledgers)?;
        let mut json = match &self.config.history {
            Some(path) => {
                let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let run = RunLine {
                    scenario: self.config.scenario.name().into(),
                    variant: self.config.variant.name.into(),
                    writers: self.config.writers,
                    seed: self.config.seed.to_string(),
                    implementations: self.config.implementations(),
                };
                Some(
                    JsonWriter::new(BufWriter::new(file), &run)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
            None => None,
        };
        let mut checker = Checker::new();
        while let Some(event) = merge.next_event()? {
            if let Some(w) = json.as_mut() {
                w.event(&event).map_err(|e| format!("history: {e}"))?;
            }
            checker.push(&event);
        }
        if let Some(w) = json {
            w.end(EndLine { counter })
                .map_err(|e| format!("history: {e}"))?;
        }
        Ok(checker.finish(Some(counter)))
    }
}

/// Put `bytes` at `lock_path` as a lock file last modified at `mtime`. The
/// file is prepared under a new random name in the lock's directory
/// (created exclusively, never through a link, its mtime set through its
/// descriptor), linked into place once whatever was at the lock path is
/// gone, and checked to be the file that was prepared: adapters can write
/// that directory.
fn plant_file(lock_path: &Path, bytes: &[u8], mtime: SystemTime) -> Result<(), String> {
    let dir = lock_path.parent().unwrap_or(Path::new("."));
    let name = WriterId::random().map_err(|e| format!("random: {e}"))?;
    let temp = dir.join(format!(".plant.{}.tmp", hex(&name.0)));
    let at = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| format!("{path}: {e}")
    };
    let (prepared, file) = Owned::create(&temp, Access::ReadWrite, 0o644).map_err(at(&temp))?;
    let linked = file
        .write_all_at(bytes, 0)
        .and_then(|()| files::set_mtime(&file, mtime))
        .map_err(at(&temp))
        .and_then(|()| match std::fs::remove_file(lock_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(at(lock_path)(e)),
            _ => std::fs::hard_link(&temp, lock_path).map_err(at(lock_path)),
        });
    let _ = std::fs::remove_file(&temp);
    linked?;
    let placed = files::open_regular(lock_path, Access::Read)
        .and_then(|f| Identity::of(&f))
        .map_err(at(lock_path))?;
    if placed != prepared.id {
        return Err(format!(
            "{}: not the stale lock prepared: {} was replaced",
            lock_path.display(),
            temp.display()
        ));
    }
    Ok(())
}

/// Move the lock at `path` an hour into the past if it is the record of
/// `pid` (and of `host`, when given): timestamp rewritten in place, then the
/// mtime, both through one descriptor of a regular file opened without
/// following a link. The file stays the same file. True if it was moved.
pub fn age_lock(path: &Path, pid: u32, host: Option<&Hostname>) -> bool {
    let Ok(file) = files::open_regular(path, Access::ReadWrite) else {
        return false;
    };
    let mut buf = [0u8; RECORD_LEN + 1];
    if file.read_at(&mut buf, 0).ok() != Some(RECORD_LEN) {
        return false;
    }
    let Ok(mut held) = record::decode(&buf[..RECORD_LEN]) else {
        return false;
    };
    if held.pid != pid || host.is_some_and(|h| *h != held.hostname) {
        return false;
    }
    let then = sys::realtime_ns() - AGE.as_nanos() as i128;
    held.timestamp_ns = u64::try_from(then).unwrap_or(0);
    file.write_all_at(&record::encode(&held), 0).is_ok()
        && files::set_mtime(&file, SystemTime::now() - AGE).is_ok()
}

/// Whether stderr is a terminal: progress is then one line rewritten in place.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn plant(path: &Path, pid: u32, host: &[u8]) -> Record {
        let now = u64::try_from(sys::realtime_ns()).expect("after 1970");
        let record = Record::new(pid, host, now, WriterId([5; 16]));
        std::fs::write(path, record::encode(&record)).expect("write");
        record
    }

    #[test]
    fn aging_moves_only_the_named_holders_lock_into_the_past_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.rvf.lock");
        let record = plant(&path, 4242, b"host-a");
        let ino = std::fs::metadata(&path).expect("stat").ino();
        assert!(!age_lock(&path, 4243, None), "another pid's lock");
        let other = Hostname::truncated(b"host-b");
        assert!(!age_lock(&path, 4242, Some(&other)), "another host's lock");
        assert_eq!(
            record::decode(&std::fs::read(&path).expect("read")),
            Ok(record.clone())
        );

        let host = Hostname::truncated(b"host-a");
        assert!(age_lock(&path, 4242, Some(&host)));
        let meta = std::fs::metadata(&path).expect("stat");
        let aged = record::decode(&std::fs::read(&path).expect("read")).expect("still valid");
        assert_eq!(meta.ino(), ino, "the same file, rewritten in place");
        let hour = AGE.as_nanos() as u64;
        assert!(record.timestamp_ns - aged.timestamp_ns >= hour - 1_000_000_000);
        let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + i128::from(meta.mtime_nsec());
        assert!(sys::realtime_ns() - mtime_ns >= AGE.as_nanos() as i128 - 1_000_000_000);
        assert_eq!((aged.pid, aged.writer_id), (record.pid, record.writer_id));
    }
}
