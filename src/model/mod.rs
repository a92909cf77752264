//! Exhaustive model check of the acquire, stale-break and release algorithm
//! (PROTOCOL.md §7-§9, §12) with the `stateright` checker.
//!
//! Each model process runs the machine that ships ([`Acquire`], [`Release`]),
//! one request at a time, on the shared simulated file system ([`Sim`]). One
//! model step is one request performed on the simulation: one atomic
//! file-system operation. Besides those steps the checker may crash a process
//! that has something at stake (its PID dies, its open files and guards go,
//! its files stay) and may advance the clock past the same-host threshold,
//! each a bounded number of times. The checker then visits every state
//! reachable under those bounds (breadth-first, or depth-first where the
//! frontier would not fit in memory) and checks the properties of
//! [`LockModel::properties`] in each.
//!
//! [`run_cli`] is the `rvlf model-check` command; [`check`] and [`find`] are
//! the same runs for tests, and [`timeline`] renders a counterexample step by
//! step.
//!
//! This module is the model and its runs; `cli.rs` is the command and its
//! report, `timeline.rs` renders a path and the states along it.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Property};

use crate::sim::{Links, Sim};
use crate::variant::{Variant, VariantRules};
use rvlf_lock::machine::{
    self, Acquire, Acquired, Action, FileId, Held, LockError, Meta, Params, ReadReply, Release,
    Released, Reply, Request,
};
use rvlf_lock::policy::{self, Contents, Facts, Liveness, Thresholds};
use rvlf_lock::record::{self, Hostname, Record, WriterId};

mod cli;
mod timeline;

pub use cli::{report, run_cli, ModelCheckArgs};
use timeline::{actor, show_busy, show_duration, show_lost, show_reply, show_request, show_time};
pub use timeline::{show_fs, timeline};

/// One second in nanoseconds.
const S: i128 = 1_000_000_000;
/// The simulated wall clock when every run starts.
pub const T0: i128 = 1_800_000_000 * S;
/// The one host every model process runs on.
pub const HOST: &[u8] = b"host-a";
/// The PID of model process 0; process `i` has `FIRST_PID + i`.
pub const FIRST_PID: u32 = 101;
/// The PID in the planted stale lock: no model process has it, so it is dead.
pub const PLANTED_PID: u32 = 900;
/// How old the planted stale lock is when a run starts.
pub const PLANTED_AGE_NS: i128 = 60 * S;

/// The bounds of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Model processes, all on one host.
    pub procs: usize,
    /// Acquire/hold/release rounds per process.
    pub rounds: u8,
    /// Acquire attempts per round: an attempt that reports busy is retried
    /// until this many have been made, then the round is given up.
    pub attempts: u8,
    /// How many crashes may happen in one run.
    pub crashes: u8,
    /// How many times the clock may jump by [`tick_ns`] in one run.
    pub ticks: u8,
    /// Start with a stale lock of a dead PID at the lock path.
    pub stale_lock: bool,
    /// The file system refuses hard links, so that publication is §7.1's
    /// fallback: create the lock file (guarded), then write it, two steps.
    pub no_links: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            procs: 2,
            rounds: 1,
            attempts: 2,
            crashes: 0,
            ticks: 1,
            stale_lock: false,
            no_links: false,
        }
    }
}

/// How far one clock tick advances: just past the same-host threshold (§6.1),
/// so that a tick turns a dead same-host holder's lock stale.
pub fn tick_ns(thresholds: &Thresholds) -> i128 {
    thresholds.same_host.as_nanos() as i128 + 1
}

/// A model process: its PID, where it is in its rounds, and what it is doing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Proc {
    pub pid: u32,
    pub round: u8,
    /// Acquire attempts already made in this round.
    pub attempt: u8,
    pub phase: Phase,
}

/// What a model process is doing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Between rounds or attempts: its next step starts an acquire.
    Idle,
    Acquiring {
        machine: Box<Acquire<VariantRules>>,
        next: Request,
        /// What the last read of the lock path in this attempt found (the
        /// file a later unlink must be).
        judged: Option<Meta>,
    },
    /// Got the lock and has not started to release it.
    Holding(Held),
    Releasing {
        machine: Box<Release<VariantRules>>,
        next: Request,
        /// The file this process published.
        own: FileId,
    },
    /// Did all its rounds.
    Done,
    Crashed,
    /// A machine stopped with an error (never expected on the simulation).
    Failed(String),
}

impl Proc {
    /// Holds the lock: got it and has not yet unlinked it or found it lost.
    pub fn is_holder(&self) -> bool {
        self.held_file().is_some()
    }

    /// The file a holder published.
    pub fn held_file(&self) -> Option<FileId> {
        match &self.phase {
            Phase::Holding(held) => Some(held.id),
            Phase::Releasing { next, own, .. } if !matches!(next, Request::Close { .. }) => {
                Some(*own)
            }
            _ => None,
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Crashed | Phase::Failed(_))
    }
}

/// Violations that can only be seen at the moment a step is performed; they
/// stay set in every later state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Breaches {
    /// A release unlinked a file other than the one it published.
    pub release_foreign: bool,
    /// A break unlinked a file other than the one it judged stale.
    pub break_foreign: bool,
    /// A break unlinked a file that §6 does not judge stale at that moment.
    pub break_fresh: bool,
}

/// One state of the model: the simulated world and every process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    pub sim: Sim,
    pub procs: Vec<Proc>,
    pub crashes: u8,
    pub ticks: u8,
    pub breaches: Breaches,
}

/// One transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Process `i` performs its next request (starting an acquire or a
    /// release if it is idle or holding).
    Run(usize),
    /// Process `i` crashes.
    Crash(usize),
    /// The clock jumps by [`tick_ns`].
    Tick,
}

/// What one transition did, for the counterexample timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub actor: String,
    pub request: String,
    pub reply: String,
    /// How the machine finished, if it did on this step.
    pub outcome: Option<String>,
}

/// The model: bounds, and the variant its processes run.
#[derive(Debug, Clone)]
pub struct LockModel {
    pub bounds: Bounds,
    pub variant: &'static Variant,
    pub rules: VariantRules,
    pub thresholds: Thresholds,
    /// Check only this property (used to find its shortest counterexample).
    pub focus: Option<&'static str>,
}

pub const AT_MOST_ONE_HOLDER: &str = "at most one holder";
pub const HOLDER_AT_LOCK_PATH: &str = "a holder's file is at the lock path";
pub const RELEASE_OWN_ONLY: &str = "a release unlinks only its own lock";
pub const BREAK_JUDGED_ONLY: &str = "a break unlinks only the lock it judged stale";
pub const BREAK_STALE_ONLY: &str = "a break unlinks only a stale lock";
pub const NO_MACHINE_ERROR: &str = "no machine stops with an error";
pub const STALE_LOCK_RECOVERABLE: &str =
    "once every holder is dead and its lock stale, a live process can acquire";
pub const RECOVERY_SITUATION_REACHED: &str = "every holder is dead and its lock stale";
pub const TAKEOVER_REACHED: &str = "a live process takes over a dead holder's stale lock";
pub const ALL_ROUNDS_DONE: &str = "every process completes its rounds";

impl LockModel {
    pub fn new(bounds: Bounds, variant: &'static Variant) -> Self {
        LockModel {
            bounds,
            variant,
            rules: variant.rules(),
            thresholds: variant.thresholds,
            focus: None,
        }
    }

    fn host() -> Hostname {
        Hostname::truncated(HOST)
    }

    /// The deterministic writer id of process `i`'s attempt in a round.
    fn writer_id(i: usize, round: u8, attempt: u8) -> WriterId {
        let mut id = [0u8; 16];
        id[0] = b'w';
        id[1] = i as u8;
        id[2] = round;
        id[3] = attempt;
        WriterId(id)
    }

    fn params(&self, pid: u32, writer_id: WriterId) -> Params {
        Params {
            pid,
            host: Self::host(),
            judge_host: Self::host(),
            writer_id,
            thresholds: self.thresholds,
        }
    }

    /// Process `i`'s next round, or the end of its work.
    fn next_round(&self, proc: &mut Proc) {
        proc.round += 1;
        proc.attempt = 0;
        proc.phase = if proc.round >= self.bounds.rounds {
            Phase::Done
        } else {
            Phase::Idle
        };
    }

    /// The §6 verdict on the file at the lock path as it is now, with true
    /// PID liveness: the oracle a break is held against.
    pub fn stale_now(&self, sim: &Sim) -> Option<bool> {
        let inode = sim.lock_file()?;
        let contents = match record::decode(&inode.data) {
            Ok(r) => Contents::Valid(r),
            Err(e) => Contents::Malformed(e),
        };
        let host = Self::host();
        let liveness = policy::pid_to_probe(&contents, &host).map(|pid| {
            if sim.alive.contains(&pid) {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        });
        let facts = Facts {
            contents: &contents,
            mtime_ns: inode.mtime_ns,
            now_ns: sim.now_ns,
            local_host: &host,
            liveness,
        };
        Some(policy::judge(&facts, &self.thresholds).stale)
    }

    /// Perform `step`, returning the next state and what happened.
    pub fn apply(&self, state: &State, step: Step) -> Option<(State, Trace)> {
        let mut next = state.clone();
        let trace = match step {
            Step::Tick => {
                if !self.can_tick(state) {
                    return None;
                }
                let by = tick_ns(&self.thresholds);
                next.sim.advance(by);
                next.ticks += 1;
                Trace {
                    actor: "clock".into(),
                    request: format!("advance {}", show_duration(by)),
                    reply: format!("now {}", show_time(next.sim.now_ns)),
                    outcome: None,
                }
            }
            Step::Crash(i) => {
                if !self.can_crash(state, i) {
                    return None;
                }
                let pid = next.procs[i].pid;
                next.sim.crash(pid);
                next.procs[i].phase = Phase::Crashed;
                next.crashes += 1;
                Trace {
                    actor: actor(i, pid),
                    request: "crash".into(),
                    reply: "PID dead; its open files and guards are gone, its files stay".into(),
                    outcome: None,
                }
            }
            Step::Run(i) => self.run_step(&mut next, i)?,
        };
        next.sim.events.clear();
        Some((next, trace))
    }

    fn can_tick(&self, state: &State) -> bool {
        state.ticks < self.bounds.ticks && state.procs.iter().any(|p| !p.is_finished())
    }

    fn can_crash(&self, state: &State, i: usize) -> bool {
        state.crashes < self.bounds.crashes
            && matches!(
                state.procs[i].phase,
                Phase::Acquiring { .. } | Phase::Holding(_) | Phase::Releasing { .. }
            )
    }

    /// Process `i` performs one request.
    fn run_step(&self, next: &mut State, i: usize) -> Option<Trace> {
        let pid = next.procs[i].pid;
        let phase = std::mem::replace(&mut next.procs[i].phase, Phase::Done);
        match phase {
            Phase::Idle => {
                let proc = &next.procs[i];
                let id = Self::writer_id(i, proc.round, proc.attempt);
                let mut machine = Box::new(Acquire::with_rules(self.params(pid, id), self.rules));
                let Action::Do(request) = machine.start() else {
                    unreachable!("an acquire always starts with a request")
                };
                Some(self.acquire_step(next, i, machine, request, None))
            }
            Phase::Acquiring {
                machine,
                next: request,
                judged,
            } => Some(self.acquire_step(next, i, machine, request, judged)),
            Phase::Holding(held) => {
                let own = held.id;
                let mut machine = Box::new(Release::with_rules(held, self.rules));
                let request = match machine.start() {
                    Action::Do(request) => request,
                    Action::Done(out) => {
                        unreachable!("a release always starts with a request, not {out:?}")
                    }
                };
                Some(self.release_step(next, i, machine, request, own))
            }
            Phase::Releasing {
                machine,
                next: request,
                own,
            } => Some(self.release_step(next, i, machine, request, own)),
            other => {
                next.procs[i].phase = other;
                None
            }
        }
    }

    fn acquire_step(
        &self,
        next: &mut State,
        i: usize,
        mut machine: Box<Acquire<VariantRules>>,
        request: Request,
        mut judged: Option<Meta>,
    ) -> Trace {
        let pid = next.procs[i].pid;
        if request == Request::Unlink {
            if let Some(ino) = next.sim.lock {
                if judged.map(|m| m.id.ino) != Some(ino) {
                    next.breaches.break_foreign = true;
                }
                if self.stale_now(&next.sim) == Some(false) {
                    next.breaches.break_fresh = true;
                }
            }
        }
        let reply = next.sim.perform(pid, &request);
        if let Reply::Read(ReadReply::Found { meta, .. }) = &reply {
            judged = Some(*meta);
        }
        let mut trace = Trace {
            actor: format!("{} acquire", actor(i, pid)),
            request: show_request(&request),
            reply: show_reply(&reply),
            outcome: None,
        };
        let proc = &mut next.procs[i];
        match machine.resume(reply) {
            Ok(Action::Do(request)) => {
                proc.phase = Phase::Acquiring {
                    machine,
                    next: request,
                    judged,
                };
            }
            Ok(Action::Done(Acquired::Held(held))) => {
                trace.outcome = Some(format!("acquired: holds ino {}", held.id.ino));
                proc.phase = Phase::Holding(held);
            }
            Ok(Action::Done(Acquired::Busy(busy))) => {
                trace.outcome = Some(format!("busy ({})", show_busy(&busy)));
                proc.attempt += 1;
                if proc.attempt >= self.bounds.attempts {
                    self.next_round(proc);
                } else {
                    proc.phase = Phase::Idle;
                }
            }
            Err(e) => trace.outcome = Some(self.fail(proc, &e)),
        }
        trace
    }

    fn release_step(
        &self,
        next: &mut State,
        i: usize,
        mut machine: Box<Release<VariantRules>>,
        request: Request,
        own: FileId,
    ) -> Trace {
        let pid = next.procs[i].pid;
        if request == Request::Unlink {
            if let Some(ino) = next.sim.lock {
                if ino != own.ino {
                    next.breaches.release_foreign = true;
                }
            }
        }
        let reply = next.sim.perform(pid, &request);
        let mut trace = Trace {
            actor: format!("{} release", actor(i, pid)),
            request: show_request(&request),
            reply: show_reply(&reply),
            outcome: None,
        };
        let proc = &mut next.procs[i];
        match machine.resume(reply) {
            Ok(Action::Do(request)) => {
                proc.phase = Phase::Releasing {
                    machine,
                    next: request,
                    own,
                };
            }
            Ok(Action::Done(released)) => {
                trace.outcome = Some(match released {
                    Released::Released => "released".into(),
                    Released::Lost(lost) => format!("lost ({})", show_lost(&lost)),
                });
                self.next_round(proc);
            }
            Err(e) => trace.outcome = Some(self.fail(proc, &e)),
        }
        trace
    }

    fn fail(&self, proc: &mut Proc, e: &LockError) -> String {
        proc.phase = Phase::Failed(e.to_string());
        format!("error: {e}")
    }

    /// Whether the precondition of the recovery property holds: no live
    /// holder, at least one live process, and at the lock path a file of a
    /// dead writer that §6 judges stale now.
    pub fn every_holder_dead_and_stale(&self, state: &State) -> bool {
        let Some(inode) = state.sim.lock_file() else {
            return false;
        };
        !state.sim.alive.contains(&inode.creator)
            && !state.procs.iter().any(Proc::is_holder)
            && state.procs.iter().any(|p| state.sim.alive.contains(&p.pid))
            && self.stale_now(&state.sim) == Some(true)
    }

    /// Whether some live process, run alone from `state` (every other
    /// process paused), acquires the lock.
    pub fn some_live_process_acquires_alone(&self, state: &State) -> bool {
        (0..state.procs.len()).any(|i| self.acquires_alone(state, i))
    }

    /// Run process `i` alone: finish what it is doing, then make up to two
    /// fresh acquire attempts. True if it ends up holding the lock.
    fn acquires_alone(&self, state: &State, i: usize) -> bool {
        let proc = &state.procs[i];
        if !state.sim.alive.contains(&proc.pid) {
            return false;
        }
        let mut sim = state.sim.clone();
        let mut fs = sim.process(proc.pid);
        match &proc.phase {
            Phase::Acquiring { machine, next, .. } => {
                let mut machine = machine.clone();
                if let Ok(Acquired::Held(_)) = finish(machine.as_mut(), next.clone(), &mut fs) {
                    return true;
                }
            }
            Phase::Releasing { machine, next, .. } => {
                let mut machine = machine.clone();
                if finish(machine.as_mut(), next.clone(), &mut fs).is_err() {
                    return false;
                }
            }
            Phase::Holding(_) => return true,
            Phase::Idle | Phase::Done => {}
            Phase::Crashed | Phase::Failed(_) => return false,
        }
        (0..2).any(|k| {
            let id = Self::writer_id(i, u8::MAX, k);
            let mut machine = Acquire::new(self.params(proc.pid, id));
            matches!(machine::run(&mut machine, &mut fs), Ok(Acquired::Held(_)))
        })
    }
}

/// Drive a machine that is waiting for the reply to `request` to its end.
fn finish<M: machine::Machine>(
    machine: &mut M,
    mut request: Request,
    fs: &mut impl machine::FileSystem,
) -> Result<M::Output, LockError> {
    loop {
        let reply = fs.perform(&request);
        match machine.resume(reply)? {
            Action::Do(next) => request = next,
            Action::Done(out) => return Ok(out),
        }
    }
}

impl Model for LockModel {
    type State = State;
    type Action = Step;

    fn init_states(&self) -> Vec<State> {
        let mut sim = Sim::new(T0);
        sim.links = match self.variant.links() {
            Links::Work if self.bounds.no_links => Links::Refused,
            links => links,
        };
        let procs = (0..self.bounds.procs)
            .map(|i| {
                let pid = FIRST_PID + i as u32;
                sim.spawn(pid);
                Proc {
                    pid,
                    round: 0,
                    attempt: 0,
                    phase: Phase::Idle,
                }
            })
            .collect();
        if self.bounds.stale_lock {
            let then = T0 - PLANTED_AGE_NS;
            let mut id = [0u8; 16];
            id[0] = b'p';
            let rec = Record::new(PLANTED_PID, HOST, then as u64, WriterId(id));
            sim.plant(&record::encode(&rec), then, PLANTED_PID);
        }
        sim.events.clear();
        vec![State {
            sim,
            procs,
            crashes: 0,
            ticks: 0,
            breaches: Breaches::default(),
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Step>) {
        for (i, proc) in state.procs.iter().enumerate() {
            if !proc.is_finished() {
                actions.push(Step::Run(i));
            }
        }
        for i in 0..state.procs.len() {
            if self.can_crash(state, i) {
                actions.push(Step::Crash(i));
            }
        }
        if self.can_tick(state) {
            actions.push(Step::Tick);
        }
    }

    fn next_state(&self, state: &State, step: Step) -> Option<State> {
        self.apply(state, step).map(|(next, _)| next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut all = all_properties();
        if let Some(name) = self.focus {
            all.retain(|p| p.name == name);
        }
        all
    }
}

/// Every property the model checks, safety first.
fn all_properties() -> Vec<Property<LockModel>> {
    vec![
        Property::always(AT_MOST_ONE_HOLDER, |_, s: &State| {
            s.procs.iter().filter(|p| p.is_holder()).count() <= 1
        }),
        Property::always(HOLDER_AT_LOCK_PATH, |_, s: &State| {
            s.procs
                .iter()
                .filter_map(Proc::held_file)
                .all(|f| s.sim.lock == Some(f.ino))
        }),
        Property::always(RELEASE_OWN_ONLY, |_, s: &State| !s.breaches.release_foreign),
        Property::always(BREAK_JUDGED_ONLY, |_, s: &State| !s.breaches.break_foreign),
        Property::always(BREAK_STALE_ONLY, |_, s: &State| !s.breaches.break_fresh),
        Property::always(NO_MACHINE_ERROR, |_, s: &State| {
            !s.procs.iter().any(|p| matches!(p.phase, Phase::Failed(_)))
        }),
        Property::always(STALE_LOCK_RECOVERABLE, |m: &LockModel, s: &State| {
            !m.every_holder_dead_and_stale(s) || m.some_live_process_acquires_alone(s)
        }),
        Property::sometimes(RECOVERY_SITUATION_REACHED, |m: &LockModel, s: &State| {
            m.every_holder_dead_and_stale(s)
        }),
        Property::sometimes(TAKEOVER_REACHED, |_, s: &State| {
            s.procs
                .iter()
                .any(|p| matches!(&p.phase, Phase::Holding(h) if h.broke.is_some()))
        }),
        Property::sometimes(ALL_ROUNDS_DONE, |_, s: &State| {
            s.procs.iter().all(|p| p.phase == Phase::Done)
        }),
    ]
}

/// What one run found.
pub struct Outcome {
    pub model: LockModel,
    pub unique_states: usize,
    pub generated_states: usize,
    pub max_depth: usize,
    pub elapsed: Duration,
    pub discoveries: HashMap<&'static str, Path<State, Step>>,
}

impl Outcome {
    /// The safety properties with a counterexample, in the model's order.
    pub fn violations(&self) -> Vec<&'static str> {
        self.model
            .properties()
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
            .filter(|p| self.discoveries.contains_key(p.name))
            .map(|p| p.name)
            .collect()
    }

    /// Whether a `sometimes` property found its example.
    pub fn reached(&self, name: &str) -> bool {
        self.discoveries.contains_key(name)
    }
}

/// Explore every state within `bounds` breadth-first on `threads` threads.
pub fn check(bounds: Bounds, variant: &'static Variant, threads: usize) -> Outcome {
    explore(bounds, variant, Search::Bfs, threads, None)
}

/// Explore breadth-first until each property in `wanted` has a discovery (or
/// every state within `bounds` has been seen, if one never does).
pub fn find(
    bounds: Bounds,
    variant: &'static Variant,
    threads: usize,
    wanted: &[&'static str],
) -> Outcome {
    let wanted = wanted.iter().copied().collect();
    explore(bounds, variant, Search::Bfs, threads, Some(wanted))
}

/// The order in which the checker visits states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Search {
    /// Breadth-first: keeps the whole frontier in memory.
    Bfs,
    /// Depth-first: keeps one path; for bounds whose frontier does not fit.
    Dfs,
}

/// Explore in `search` order. The checker keeps the last counterexample it
/// meets for a property, not the first, so each violated safety property is
/// then searched for again alone, breadth-first on one thread, stopping at
/// its first counterexample: a shortest one.
pub fn explore(
    bounds: Bounds,
    variant: &'static Variant,
    search: Search,
    threads: usize,
    until: Option<BTreeSet<&'static str>>,
) -> Outcome {
    let model = LockModel::new(bounds, variant);
    let started = Instant::now();
    let mut builder = model.clone().checker().threads(threads.max(1));
    if let Some(wanted) = until {
        builder = builder.finish_when(HasDiscoveries::AllOf(wanted));
    }
    let mut outcome = match search {
        Search::Bfs => outcome_of(model, builder.spawn_bfs().join()),
        Search::Dfs => outcome_of(model, builder.spawn_dfs().join()),
    };
    for name in outcome.violations() {
        if let Some(path) = shortest_counterexample(&outcome.model, name) {
            outcome.discoveries.insert(name, path);
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

fn outcome_of(model: LockModel, checker: impl Checker<LockModel>) -> Outcome {
    Outcome {
        model,
        unique_states: checker.unique_state_count(),
        generated_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed: Duration::ZERO,
        discoveries: checker.discoveries(),
    }
}

/// A shortest path to a state that violates the safety property `name`.
pub fn shortest_counterexample(model: &LockModel, name: &'static str) -> Option<Path<State, Step>> {
    let focused = LockModel {
        focus: Some(name),
        ..model.clone()
    };
    focused.checker().spawn_bfs().join().discovery(name)
}
