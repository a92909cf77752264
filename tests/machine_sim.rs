//! State-machine tests of acquire, stale-break and release (PROTOCOL.md §4.4,
//! §6-§9) on the simulated file system of `rvlf::sim`.
//!
//! Where interleaving matters the machines are stepped by hand, one request
//! at a time, and the two- and three-contender races on one stale lock are
//! enumerated exhaustively. Each safety check is also run against a
//! deliberately flawed machine (`Flaws`), to show that it can fail.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use rvlf::flaws::Flaws;
use rvlf::sim::{Event, Links, Sim};
use rvlf::variant::VariantRules;
use rvlf_lock::machine::{
    run, Acquire, Acquired, Action, Busy, FileKind, FileSystem, Held, LockError, Lost, Machine,
    Params, ReadReply, Release, Released, Reply, Request,
};
use rvlf_lock::policy::{Contents, Thresholds};
use rvlf_lock::record::{decode, encode, DecodeError, Hostname, Record, WriterId, RECORD_LEN};

const S: i128 = 1_000_000_000;
/// The simulated wall clock at the start of every test.
const T0: i128 = 1_800_000_000 * S;
const HOST: &[u8] = b"host-a";
/// A PID no simulated process has: probing it answers "dead".
const DEAD_PID: u32 = 900;
const A: u32 = 101;
const B: u32 = 102;
const C: u32 = 103;

// ---------------------------------------------------------------------------
// Simulated processes
// ---------------------------------------------------------------------------

/// What a simulated process does next.
#[derive(Debug, Clone)]
enum Next<T> {
    /// Perform this request on the file system.
    Ask(Request),
    /// The machine finished.
    Done(Result<T, LockError>),
}

/// A simulated process: its PID and the machine it is running.
#[derive(Debug, Clone)]
struct Proc<M: Machine> {
    pid: u32,
    machine: M,
    next: Next<M::Output>,
}

impl<M: Machine> Proc<M> {
    fn new(pid: u32, mut machine: M) -> Self {
        let next = match machine.start() {
            Action::Do(request) => Next::Ask(request),
            Action::Done(output) => Next::Done(Ok(output)),
        };
        Proc { pid, machine, next }
    }

    fn pending(&self) -> Option<&Request> {
        match &self.next {
            Next::Ask(request) => Some(request),
            Next::Done(_) => None,
        }
    }

    fn finished(&self) -> Option<&Result<M::Output, LockError>> {
        match &self.next {
            Next::Ask(_) => None,
            Next::Done(result) => Some(result),
        }
    }
}

/// Run one request of `proc` on `sim` and feed the reply to its machine.
/// Returns what was asked and answered, or `None` if the process is finished.
fn step<M: Machine>(sim: &mut Sim, proc: &mut Proc<M>) -> Option<(Request, Reply)> {
    let request = proc.pending()?.clone();
    let reply = sim.perform(proc.pid, &request);
    proc.next = match proc.machine.resume(reply.clone()) {
        Ok(Action::Do(next)) => Next::Ask(next),
        Ok(Action::Done(output)) => Next::Done(Ok(output)),
        Err(e) => Next::Done(Err(e)),
    };
    Some((request, reply))
}

/// The rules of `flaws`: exactly the shipped ones when there is none.
fn rules(flaws: Flaws) -> VariantRules {
    if flaws.any() {
        VariantRules::Flawed(flaws)
    } else {
        VariantRules::Protocol
    }
}

/// Make `sim` publish as `flaws` do: the original created the lock file and
/// then wrote it, unguarded, whatever the file system could do.
fn publish_as(sim: &mut Sim, flaws: Flaws) {
    if flaws.create_then_write {
        sim.links = Links::RefusedUnguarded;
    }
}

fn params(pid: u32) -> Params {
    let mut id = [0xA5; 16];
    id[..4].copy_from_slice(&pid.to_le_bytes());
    Params {
        pid,
        host: Hostname::truncated(HOST),
        judge_host: Hostname::truncated(HOST),
        writer_id: WriterId(id),
        thresholds: Thresholds::V1,
    }
}

fn contender(pid: u32, flaws: Flaws) -> Proc<Acquire<VariantRules>> {
    Proc::new(pid, Acquire::with_rules(params(pid), rules(flaws)))
}

/// A whole acquire by `pid`, run to completion.
fn acquire(sim: &mut Sim, pid: u32, flaws: Flaws) -> Result<Acquired, LockError> {
    publish_as(sim, flaws);
    let mut machine = Acquire::with_rules(params(pid), rules(flaws));
    run(&mut machine, &mut sim.process(pid))
}

fn acquire_held(sim: &mut Sim, pid: u32) -> Held {
    match acquire(sim, pid, Flaws::default()) {
        Ok(Acquired::Held(held)) => held,
        other => panic!("pid {pid} should hold the lock, got {other:?}"),
    }
}

fn release(sim: &mut Sim, pid: u32, held: Held, flaws: Flaws) -> Result<Released, LockError> {
    run(
        &mut Release::with_rules(held, rules(flaws)),
        &mut sim.process(pid),
    )
}

/// A world at T0 with the given processes alive.
fn world(pids: &[u32]) -> Sim {
    let mut sim = Sim::new(T0);
    for &pid in pids {
        sim.spawn(pid);
    }
    sim
}

/// A valid record of this host, as `pid` would have written it at `at`.
fn record_of(pid: u32, at: i128, id: u8) -> Record {
    Record::new(pid, HOST, at as u64, WriterId([id; 16]))
}

/// Plant a valid record of this host by `pid`, written at `at` (timestamp and mtime).
fn plant_record(sim: &mut Sim, pid: u32, at: i128) -> u64 {
    sim.plant(&encode(&record_of(pid, at, 0xEE)), at, pid)
}

/// A lock 60 s old of a dead PID of this host: stale (§6.4).
fn plant_stale(sim: &mut Sim) -> u64 {
    plant_record(sim, DEAD_PID, T0 - 60 * S)
}

/// The inodes removed from the lock path, in order.
fn unlinked(sim: &Sim) -> Vec<u64> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            Event::Unlinked { ino, .. } => Some(*ino),
            Event::Created { .. } => None,
        })
        .collect()
}

fn lock_bytes(sim: &Sim) -> Option<Vec<u8>> {
    sim.lock_file().map(|inode| inode.data.clone())
}

// ---------------------------------------------------------------------------
// §7.1 Publication is complete
// ---------------------------------------------------------------------------

/// Step one acquire to its end; after every step, the size of the file at the
/// lock path (`None`: nothing there), with the request that led to it.
fn sizes_while_acquiring(sim: &mut Sim, pid: u32, flaws: Flaws) -> Vec<(Request, Option<usize>)> {
    publish_as(sim, flaws);
    let mut proc = contender(pid, flaws);
    let mut seen = Vec::new();
    while let Some((request, _)) = step(sim, &mut proc) {
        seen.push((request, sim.lock_file().map(|f| f.data.len())));
    }
    assert!(
        matches!(proc.finished(), Some(Ok(Acquired::Held(_)))),
        "{:?}",
        proc.finished()
    );
    seen
}

fn assert_always_complete(seen: &[(Request, Option<usize>)]) {
    for (request, size) in seen {
        assert!(
            matches!(size, None | Some(RECORD_LEN)),
            "after {request:?} the lock file has {size:?} bytes"
        );
    }
}

#[test]
fn publication_is_complete_after_every_step() {
    let mut sim = world(&[A]);
    assert_always_complete(&sizes_while_acquiring(&mut sim, A, Flaws::default()));
    let written = lock_bytes(&sim).expect("A's lock is there");
    assert_eq!(decode(&written).map(|r| r.pid), Ok(A));

    // Over a stale lock: the path goes from the old record to absent to A's.
    let mut sim = world(&[A]);
    plant_stale(&mut sim);
    let seen = sizes_while_acquiring(&mut sim, A, Flaws::default());
    assert_always_complete(&seen);
    assert!(seen.iter().any(|(_, size)| size.is_none()));
}

#[test]
fn create_then_write_exposes_an_empty_lock_file() {
    let mut sim = world(&[A]);
    let flaws = Flaws {
        create_then_write: true,
        ..Flaws::default()
    };
    let seen = sizes_while_acquiring(&mut sim, A, flaws);
    let first_publish = seen
        .iter()
        .find(|(request, _)| *request == Request::Create)
        .expect("the flawed machine creates the file empty");
    assert_eq!(first_publish.1, Some(0));
}

// ---------------------------------------------------------------------------
// §4.4 Partial records are held, not garbage
// ---------------------------------------------------------------------------

/// The first 50 bytes of a record: what a create-then-write writer leaves
/// visible mid-write.
fn plant_partial(sim: &mut Sim) -> (u64, Vec<u8>) {
    let bytes = encode(&record_of(DEAD_PID, T0, 0xEE))[..50].to_vec();
    (sim.plant(&bytes, T0, DEAD_PID), bytes)
}

fn assert_partial_held(sim: &mut Sim, ino: u64, bytes: &[u8]) {
    match acquire(sim, B, Flaws::default()) {
        Ok(Acquired::Busy(Busy::Held { contents, verdict })) => {
            assert_eq!(
                contents,
                Contents::Malformed(DecodeError::Length { found: 50 })
            );
            assert!(!verdict.stale);
        }
        other => panic!("a partial record must be held, got {other:?}"),
    }
    assert_eq!(sim.lock, Some(ino), "the partial record was replaced");
    assert_eq!(lock_bytes(sim).as_deref(), Some(bytes));
    assert_eq!(sim.lock_file().map(|f| f.mtime_ns), Some(T0));
    assert!(unlinked(sim).is_empty());
}

#[test]
fn a_partial_record_is_held_until_its_mtime_is_over_300_s_old() {
    let mut sim = world(&[B]);
    let (ino, bytes) = plant_partial(&mut sim);
    assert_partial_held(&mut sim, ino, &bytes);
    sim.advance(300 * S);
    assert_partial_held(&mut sim, ino, &bytes);
    sim.advance(1);
    let held = acquire_held(&mut sim, B);
    assert_eq!(
        held.broke,
        Some(Contents::Malformed(DecodeError::Length { found: 50 }))
    );
    let removed: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Unlinked { .. }))
        .collect();
    let want = Event::Unlinked {
        pid: B,
        ino,
        creator: DEAD_PID,
    };
    assert_eq!(removed, [&want]);
}

#[test]
fn the_seed_deletes_a_fresh_partial_record_at_once() {
    let mut sim = world(&[B]);
    let (ino, _) = plant_partial(&mut sim);
    let outcome = acquire(&mut sim, B, Flaws::ORIGINAL);
    assert!(matches!(outcome, Ok(Acquired::Held(_))), "{outcome:?}");
    assert_eq!(unlinked(&sim), [ino]);
}

// ---------------------------------------------------------------------------
// §8 Two or three contenders breaking one stale lock, every interleaving
// ---------------------------------------------------------------------------

/// One state of the race: the file system and every contender.
#[derive(Clone)]
struct World {
    sim: Sim,
    procs: Vec<Proc<Acquire<VariantRules>>>,
}

/// One step of an interleaving, for the counterexample timeline.
struct Move {
    pid: u32,
    request: Request,
    reply: Reply,
    lock: Option<u64>,
}

/// How many interleavings a search covered, and how many of them ended with
/// two or more holders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    interleavings: u64,
    two_holders: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.interleavings += other.interleavings;
        self.two_holders += other.two_holders;
    }
}

/// A depth-first search over which process moves next. With `share`, states
/// already explored are recognised by a 128-bit fingerprint of everything
/// that decides their future (file system, open files, clock, every
/// machine), so interleavings that reach the same state share one
/// exploration and are counted, not re-run; without it every interleaving is
/// run to its end.
struct Search {
    /// The inode of the planted stale lock: the only one anyone may unlink.
    stale: u64,
    /// Strict: stop at the first unsafe state (the reference must have none).
    /// Otherwise only count the races that end with two holders.
    strict: bool,
    /// Whether to share the exploration of states reached more than once.
    share: bool,
    memo: HashMap<(u64, u64), Tally>,
    path: Vec<Move>,
    /// The first interleaving found that ends with two holders.
    first_two_holders: Option<String>,
}

impl Search {
    fn new(stale: u64, strict: bool, share: bool) -> Self {
        Search {
            stale,
            strict,
            share,
            memo: HashMap::new(),
            path: Vec::new(),
            first_two_holders: None,
        }
    }

    /// Every interleaving from `world`; in a strict search, the first
    /// violation instead (with `self.path` leading to it).
    fn explore(&mut self, world: &World) -> Result<Tally, String> {
        if self.strict {
            self.check(world)?;
        }
        let key = self.share.then(|| fingerprint(world));
        if let Some(tally) = key.and_then(|key| self.memo.get(&key)) {
            return Ok(*tally);
        }
        let mut tally = Tally::default();
        for i in 0..world.procs.len() {
            let mut next = world.clone();
            let before = next.sim.events.len();
            let Some((request, reply)) = step(&mut next.sim, &mut next.procs[i]) else {
                continue;
            };
            self.path.push(Move {
                pid: next.procs[i].pid,
                request,
                reply,
                lock: next.sim.lock,
            });
            if self.strict {
                self.check_unlinks(&next.sim.events[before..])?;
            }
            tally += self.explore(&next)?;
            self.path.pop();
        }
        if tally.interleavings == 0 {
            tally = self.end(world)?;
        }
        if let Some(key) = key {
            self.memo.insert(key, tally);
        }
        Ok(tally)
    }

    /// Safety in every state: at most one holder, and it is the file at the
    /// lock path; no machine failed.
    fn check(&self, world: &World) -> Result<(), String> {
        let holders = holders(world);
        if holders.len() > 1 {
            let pids: Vec<u32> = holders.iter().map(|(pid, _)| *pid).collect();
            return Err(format!("processes {pids:?} all hold the lock"));
        }
        for (pid, held) in &holders {
            if world.sim.lock != Some(held.id.ino) {
                let at = world.sim.lock;
                return Err(format!(
                    "pid {pid} holds inode {} but the lock path has {at:?}",
                    held.id.ino
                ));
            }
        }
        for proc in &world.procs {
            if let Some(Err(e)) = proc.finished() {
                return Err(format!("pid {} failed: {e}", proc.pid));
            }
        }
        Ok(())
    }

    /// Only the judged stale file is ever removed (§8 "Why the break is safe").
    fn check_unlinks(&self, events: &[Event]) -> Result<(), String> {
        for event in events {
            if let Event::Unlinked { pid, ino, .. } = event {
                if *ino != self.stale {
                    return Err(format!(
                        "pid {pid} unlinked inode {ino}, not the stale lock"
                    ));
                }
            }
        }
        Ok(())
    }

    /// A finished race: one interleaving. Strictly, it must have one holder.
    fn end(&mut self, world: &World) -> Result<Tally, String> {
        let holders = holders(world).len();
        if self.strict && holders != 1 {
            return Err(format!("the race ended with {holders} holders"));
        }
        if holders > 1 && self.first_two_holders.is_none() {
            self.first_two_holders = Some(self.timeline());
        }
        Ok(Tally {
            interleavings: 1,
            two_holders: u64::from(holders > 1),
        })
    }

    fn timeline(&self) -> String {
        let mut out = String::new();
        for (n, m) in self.path.iter().enumerate() {
            let lock = m
                .lock
                .map_or("absent".to_string(), |ino| format!("inode {ino}"));
            let request = describe_request(&m.request);
            let reply = describe_reply(&m.reply);
            let _ = writeln!(
                out,
                "{:>3}. pid {}: {request} -> {reply}   [lock path: {lock}]",
                n + 1,
                m.pid
            );
        }
        out
    }
}

fn holders(world: &World) -> Vec<(u32, &Held)> {
    world
        .procs
        .iter()
        .filter_map(|p| match p.finished() {
            Some(Ok(Acquired::Held(held))) => Some((p.pid, held)),
            _ => None,
        })
        .collect()
}

/// Feeds formatted text into two differently salted hashers.
struct Fingerprint(DefaultHasher, DefaultHasher);

impl fmt::Write for Fingerprint {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write(s.as_bytes());
        self.1.write(s.as_bytes());
        Ok(())
    }
}

/// Everything that decides a state's future: the file system without its
/// history of events, and every process's machine and next request.
fn fingerprint(world: &World) -> (u64, u64) {
    let mut fp = Fingerprint(DefaultHasher::new(), DefaultHasher::new());
    fp.1.write_u64(0x5256_4C46);
    let mut sim = world.sim.clone();
    sim.events.clear();
    sim.hash(&mut fp.0);
    sim.hash(&mut fp.1);
    write!(fp, "{:?}", world.procs).expect("hashing cannot fail");
    (fp.0.finish(), fp.1.finish())
}

fn describe_request(request: &Request) -> String {
    match request {
        Request::Publish { bytes } => match decode(bytes) {
            Ok(r) => format!("publish record (pid {}, ts {})", r.pid, r.timestamp_ns),
            Err(e) => format!("publish malformed record ({})", e.code()),
        },
        Request::Write { file, .. } => format!("write 104 bytes into handle {}", file.0),
        Request::Read { keep_open } => format!("read (keep open: {keep_open})"),
        other => format!("{other:?}"),
    }
}

fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Read(ReadReply::Found { file, meta, head }) => {
            let what = match decode(head) {
                Ok(r) => format!("record of pid {}", r.pid),
                Err(e) => format!("malformed ({})", e.code()),
            };
            let handle = file.map_or("not kept".to_string(), |h| format!("handle {}", h.0));
            format!(
                "found inode {}, {} bytes, {what}, {handle}",
                meta.id.ino, meta.size
            )
        }
        Reply::Published { file, id } => format!("published inode {} as handle {}", id.ino, file.0),
        Reply::Stat(Some(meta)) => format!("stat: inode {}", meta.id.ino),
        Reply::Stat(None) => "stat: absent".to_string(),
        other => format!("{other:?}"),
    }
}

/// A stale lock and `pids.len()` contenders with the same flaws, ready to race.
fn race(pids: &[u32], flaws: Flaws) -> (World, u64) {
    let mut sim = world(pids);
    publish_as(&mut sim, flaws);
    let stale = plant_stale(&mut sim);
    let procs = pids.iter().map(|&pid| contender(pid, flaws)).collect();
    (World { sim, procs }, stale)
}

/// Explore every interleaving of the reference machines; none may be unsafe.
/// Returns the tally and the number of distinct states (0 without sharing).
fn explore_reference(pids: &[u32], share: bool) -> (Tally, usize) {
    let (world, stale) = race(pids, Flaws::default());
    let mut search = Search::new(stale, true, share);
    match search.explore(&world) {
        Ok(tally) => (tally, search.memo.len()),
        Err(why) => panic!("{why} after:\n{}", search.timeline()),
    }
}

/// Explore every interleaving of flawed machines; return the tally and the
/// first interleaving that ended with two holders.
fn explore_flawed(pids: &[u32], flaws: Flaws) -> (Tally, Option<String>) {
    let (world, stale) = race(pids, flaws);
    let mut search = Search::new(stale, false, true);
    let tally = search
        .explore(&world)
        .expect("a lenient search never stops");
    (tally, search.first_two_holders)
}

#[test]
fn two_breakers_of_one_stale_lock_never_both_hold_it() {
    let (tally, _) = explore_reference(&[A, B], false);
    println!("reference, 2 contenders: {tally:?}, each run to its end");
    assert_eq!(tally.two_holders, 0);
    assert!(tally.interleavings > 1000, "explored only {tally:?}");
    // Sharing states must cover exactly the same interleavings.
    let (shared, states) = explore_reference(&[A, B], true);
    println!("the same with shared states: {shared:?} over {states} distinct states");
    assert_eq!(shared, tally);
}

#[test]
fn three_breakers_of_one_stale_lock_never_both_hold_it() {
    let (tally, states) = explore_reference(&[A, B, C], true);
    println!("reference, 3 contenders: {tally:?} over {states} distinct states");
    assert_eq!(tally.two_holders, 0);
    assert!(tally.interleavings > 1_000_000, "explored only {tally:?}");
}

fn assert_flawed_race_found(name: &str, flaws: Flaws) {
    let (tally, timeline) = explore_flawed(&[A, B], flaws);
    println!("{name}, 2 contenders: {tally:?}");
    let timeline = timeline.expect("the enumeration must find two holders");
    println!("first interleaving with two holders:\n{timeline}");
    assert!(tally.two_holders > 0);
    // The strict search used for the reference stops on these machines too.
    let (world, stale) = race(&[A, B], flaws);
    let mut strict = Search::new(stale, true, true);
    let why = strict
        .explore(&world)
        .expect_err("the strict search must reject these machines");
    println!("the strict search stops at: {why}");
}

#[test]
fn the_enumeration_finds_two_holders_in_the_seed_algorithm() {
    assert_flawed_race_found("Flaws::ORIGINAL", Flaws::ORIGINAL);
}

#[test]
fn the_enumeration_finds_two_holders_without_the_guard() {
    let flaws = Flaws {
        unguarded_break: true,
        ..Flaws::default()
    };
    assert_flawed_race_found("unguarded_break", flaws);
}

// ---------------------------------------------------------------------------
// §9 Release
// ---------------------------------------------------------------------------

/// Nothing of `pid` is open any more: its held file (and guard) was closed.
fn assert_closed_everything(sim: &Sim, pid: u32) {
    let open: Vec<_> = sim.handles.values().filter(|(p, _)| *p == pid).collect();
    assert!(open.is_empty(), "pid {pid} still has {open:?} open");
}

#[test]
fn release_after_a_takeover_reports_lost_and_leaves_the_new_lock() {
    let mut sim = world(&[A, B]);
    let held = acquire_held(&mut sim, A);
    let theirs = record_of(B, T0 + S, 0xBB);
    let bytes = encode(&theirs);
    let ino = sim.plant(&bytes, T0 + S, B);
    assert_ne!(ino, held.id.ino);
    let outcome = release(&mut sim, A, held, Flaws::default());
    let want = Released::Lost(Lost::Replaced {
        contents: Contents::Valid(theirs),
    });
    assert_eq!(outcome, Ok(want));
    assert_eq!(sim.lock, Some(ino));
    assert_eq!(lock_bytes(&sim).as_deref(), Some(&bytes[..]));
    assert!(unlinked(&sim).is_empty());
    assert_closed_everything(&sim, A);
}

#[test]
fn release_after_the_lock_vanished_reports_lost() {
    let mut sim = world(&[A]);
    let held = acquire_held(&mut sim, A);
    assert_eq!(sim.perform(B, &Request::Unlink), Reply::Unlinked);
    let outcome = release(&mut sim, A, held, Flaws::default());
    assert_eq!(outcome, Ok(Released::Lost(Lost::Vanished)));
    assert_eq!(sim.lock, None);
    assert_closed_everything(&sim, A);
}

#[test]
fn a_lock_removed_between_the_owner_check_and_the_unlink_is_lost_not_released() {
    let mut sim = world(&[A]);
    let held = acquire_held(&mut sim, A);
    let mut releaser = Proc::new(A, Release::new(held));
    // The owner check reads our own record ...
    let (request, _) = step(&mut sim, &mut releaser).expect("the release reads first");
    assert!(matches!(request, Request::Read { .. }));
    assert_eq!(releaser.pending(), Some(&Request::Unlink));
    // ... then someone else removes the path before our unlink (§9.2).
    assert_eq!(sim.perform(B, &Request::Unlink), Reply::Unlinked);
    while step(&mut sim, &mut releaser).is_some() {}
    assert_eq!(
        releaser.finished(),
        Some(&Ok(Released::Lost(Lost::Vanished)))
    );
    assert_closed_everything(&sim, A);
}

#[test]
fn a_normal_release_removes_the_lock() {
    let mut sim = world(&[A]);
    let held = acquire_held(&mut sim, A);
    let ino = held.id.ino;
    let outcome = release(&mut sim, A, held, Flaws::default());
    assert_eq!(outcome, Ok(Released::Released));
    assert_eq!(sim.lock, None);
    let last = sim.events.last();
    let want = Event::Unlinked {
        pid: A,
        ino,
        creator: A,
    };
    assert_eq!(last, Some(&want));
    assert_closed_everything(&sim, A);
}

/// A acquires; then the lock path gets a new file with A's own bytes (same
/// writer id): a copy, not the file A published.
fn copy_of_own_lock(flaws: Flaws) -> (Sim, u64, Result<Released, LockError>) {
    let mut sim = world(&[A]);
    let held = acquire_held(&mut sim, A);
    let copy = sim.plant(&encode(&held.record), T0, B);
    assert_ne!(copy, held.id.ino);
    let outcome = release(&mut sim, A, held, flaws);
    (sim, copy, outcome)
}

#[test]
fn release_compares_the_file_not_only_the_writer_id() {
    let (sim, copy, outcome) = copy_of_own_lock(Flaws::default());
    assert!(
        matches!(
            outcome,
            Ok(Released::Lost(Lost::Replaced {
                contents: Contents::Valid(_)
            }))
        ),
        "{outcome:?}"
    );
    assert_eq!(sim.lock, Some(copy));
    assert!(unlinked(&sim).is_empty());
}

#[test]
fn release_by_writer_id_alone_deletes_a_file_it_did_not_publish() {
    let flaws = Flaws {
        release_by_id_only: true,
        ..Flaws::default()
    };
    let (sim, copy, outcome) = copy_of_own_lock(flaws);
    assert_eq!(outcome, Ok(Released::Released));
    assert_eq!(unlinked(&sim), [copy]);
}

// ---------------------------------------------------------------------------
// §6.4 A crashed holder
// ---------------------------------------------------------------------------

fn assert_busy_with(sim: &mut Sim, pid: u32, holder: &Record, stale_in: Option<Duration>) {
    match acquire(sim, pid, Flaws::default()) {
        Ok(Acquired::Busy(Busy::Held { contents, verdict })) => {
            assert_eq!(contents, Contents::Valid(holder.clone()));
            assert!(!verdict.stale);
            assert_eq!(verdict.stale_in, stale_in);
        }
        other => panic!("pid {pid} should be busy, got {other:?}"),
    }
}

#[test]
fn a_crashed_holders_lock_is_held_for_30_s_then_broken() {
    let mut sim = world(&[A, B]);
    let held = acquire_held(&mut sim, A);
    sim.crash(A);
    assert_eq!(sim.lock, Some(held.id.ino), "a crash leaves the lock file");
    assert_eq!(sim.lock_file().and_then(|f| f.guard), None);
    let thirty = Duration::from_secs(30);
    assert_busy_with(
        &mut sim,
        B,
        &held.record,
        Some(thirty + Duration::from_nanos(1)),
    );
    sim.advance(30 * S);
    assert_busy_with(&mut sim, B, &held.record, Some(Duration::from_nanos(1)));
    sim.advance(1);
    let broke = acquire_held(&mut sim, B);
    assert_eq!(broke.broke, Some(Contents::Valid(held.record)));
    let removed: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::Unlinked { .. }))
        .collect();
    let want = Event::Unlinked {
        pid: B,
        ino: held.id.ino,
        creator: A,
    };
    assert_eq!(removed, [&want]);
}

#[test]
fn a_live_holder_is_busy_at_any_age() {
    let mut sim = world(&[A, B]);
    let held = acquire_held(&mut sim, A);
    sim.advance(3600 * S);
    assert_busy_with(&mut sim, B, &held.record, None);
    assert_eq!(sim.lock, Some(held.id.ino));
}

// ---------------------------------------------------------------------------
// §7.2 and §8.1 The guard
// ---------------------------------------------------------------------------

#[test]
fn a_holder_guards_its_published_file() {
    let mut sim = world(&[A]);
    let held = acquire_held(&mut sim, A);
    let inode = sim.lock_file().expect("A's lock is there");
    assert_eq!(inode.guard, Some(held.file));
}

/// A holds the lock, but its PID probes dead (another PID namespace) and its
/// record is 31 s old: the record says stale, only the guard says alive.
fn holder_that_looks_dead() -> (Sim, Held) {
    let mut sim = world(&[A, B]);
    let held = acquire_held(&mut sim, A);
    sim.alive.remove(&A);
    sim.advance(31 * S);
    (sim, held)
}

#[test]
fn a_stale_looking_lock_guarded_by_its_live_holder_is_busy() {
    let (mut sim, held) = holder_that_looks_dead();
    let outcome = acquire(&mut sim, B, Flaws::default());
    let want = Acquired::Busy(Busy::Guarded {
        contents: Contents::Valid(held.record.clone()),
    });
    assert_eq!(outcome, Ok(want));
    assert_eq!(sim.lock, Some(held.id.ino));
    assert!(unlinked(&sim).is_empty());
}

#[test]
fn without_the_guard_a_live_holders_lock_is_broken() {
    let (mut sim, held) = holder_that_looks_dead();
    let flaws = Flaws {
        unguarded_break: true,
        ..Flaws::default()
    };
    let outcome = acquire(&mut sim, B, flaws);
    assert!(matches!(outcome, Ok(Acquired::Held(_))), "{outcome:?}");
    assert_eq!(unlinked(&sim), [held.id.ino]);
}

#[test]
fn a_stale_lock_guarded_by_another_breaker_is_busy() {
    let mut sim = world(&[B, C]);
    let stale = plant_stale(&mut sim);
    let mut breaker = contender(B, Flaws::default());
    // Step B until it holds the guard on the stale lock.
    loop {
        let (request, reply) = step(&mut sim, &mut breaker).expect("B is not done yet");
        if matches!(request, Request::Guard { .. }) {
            assert_eq!(reply, Reply::Guarded);
            break;
        }
    }
    let outcome = acquire(&mut sim, C, Flaws::default());
    assert!(
        matches!(outcome, Ok(Acquired::Busy(Busy::Guarded { .. }))),
        "{outcome:?}"
    );
    assert_eq!(sim.lock, Some(stale));
    assert!(unlinked(&sim).is_empty());
    // B finishes the break and holds the lock.
    while step(&mut sim, &mut breaker).is_some() {}
    assert!(matches!(breaker.finished(), Some(Ok(Acquired::Held(_)))));
    assert_eq!(unlinked(&sim), [stale]);
}

// ---------------------------------------------------------------------------
// §4.1 Hostile lock paths
// ---------------------------------------------------------------------------

#[test]
fn a_lock_path_that_is_not_a_regular_file_is_an_error_and_left_alone() {
    for kind in [FileKind::Fifo, FileKind::Directory, FileKind::Symlink] {
        let mut sim = world(&[A]);
        let ino = sim.plant_special(kind);
        for _ in 0..2 {
            let outcome = acquire(&mut sim, A, Flaws::default());
            assert_eq!(outcome, Err(LockError::NotRegular { kind }));
            assert_eq!(sim.lock, Some(ino));
            assert_eq!(sim.lock_file().and_then(|f| f.kind), Some(kind));
            assert!(unlinked(&sim).is_empty());
            assert_closed_everything(&sim, A);
            // Never stale either, however old.
            sim.advance(86_400 * S);
        }
    }
}

// ---------------------------------------------------------------------------
// §6.3 PIDs that cannot name one process
// ---------------------------------------------------------------------------

/// A [`FileSystem`] that remembers every request made through it.
struct Recording<'a> {
    sim: &'a mut Sim,
    pid: u32,
    requests: Vec<Request>,
}

impl FileSystem for Recording<'_> {
    fn perform(&mut self, request: &Request) -> Reply {
        self.requests.push(request.clone());
        self.sim.perform(self.pid, request)
    }
}

/// Plant a lock of `holder` written `age` ago; acquire as B; return the outcome
/// and the requests B made.
fn acquire_over(holder: u32, age: i128) -> (Sim, u64, Acquired, Vec<Request>) {
    let mut sim = world(&[B]);
    let ino = plant_record(&mut sim, holder, T0 - age);
    let mut fs = Recording {
        sim: &mut sim,
        pid: B,
        requests: Vec::new(),
    };
    let outcome = run(&mut Acquire::new(params(B)), &mut fs);
    let requests = fs.requests;
    let outcome = outcome.expect("acquire over a regular file does not fail");
    (sim, ino, outcome, requests)
}

fn probes(requests: &[Request]) -> Vec<u32> {
    requests
        .iter()
        .filter_map(|r| match r {
            Request::ProbePid { pid } => Some(*pid),
            _ => None,
        })
        .collect()
}

#[test]
fn unprobeable_pids_are_dead_and_never_probed() {
    for pid in [0, 1 << 31, u32::MAX] {
        let (sim, ino, outcome, requests) = acquire_over(pid, 31 * S);
        assert!(
            matches!(outcome, Acquired::Held(_)),
            "pid {pid}: {outcome:?}"
        );
        assert!(probes(&requests).is_empty(), "pid {pid} was probed");
        assert_eq!(unlinked(&sim), [ino]);
        // Dead, but the age rule still applies.
        let (sim, ino, outcome, requests) = acquire_over(pid, 30 * S);
        assert!(
            matches!(outcome, Acquired::Busy(Busy::Held { .. })),
            "pid {pid}: {outcome:?}"
        );
        assert!(probes(&requests).is_empty());
        assert_eq!(sim.lock, Some(ino));
    }
}

#[test]
fn an_ordinary_pid_of_this_host_is_probed() {
    let (_, _, outcome, requests) = acquire_over(DEAD_PID, 31 * S);
    assert!(matches!(outcome, Acquired::Held(_)), "{outcome:?}");
    assert_eq!(probes(&requests), [DEAD_PID]);
}
