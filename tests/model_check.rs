//! The exhaustive model check of acquire, stale-break and release
//! (PROTOCOL.md §12), run by `cargo test`.
//!
//! The reference algorithm must satisfy every safety property in every state
//! reachable with two and three processes, crashes and clock jumps, and the
//! runs must be big enough and reach the interesting situations (a dead
//! holder's stale lock, its takeover) so that they cannot pass vacuously.
//! The seed's algorithm must yield counterexamples for its two algorithmic
//! defects (§10 rows 1 and 2), each as a violation of its own property, and
//! each single-flaw variant must violate exactly what its flaw allows.

use std::collections::BTreeSet;
use std::process::ExitCode;

use rvlf::model::{self, Bounds, LockModel, Outcome, Phase, State, Step};
use rvlf::variant::{self, Variant, REFERENCE};
use rvlf_lock::machine::Request;
use rvlf_lock::record::RECORD_LEN;
use stateright::Model;

/// The checker threads: the test machine has two cores.
const THREADS: usize = 2;

fn bounds(procs: usize, rounds: u8, crashes: u8, stale_lock: bool) -> Bounds {
    Bounds {
        procs,
        rounds,
        attempts: 2,
        crashes,
        ticks: 1,
        stale_lock,
        no_links: false,
    }
}

fn names(list: &[&'static str]) -> BTreeSet<&'static str> {
    list.iter().copied().collect()
}

fn violated(outcome: &Outcome) -> BTreeSet<&'static str> {
    outcome.violations().into_iter().collect()
}

/// Print the run, so that `--nocapture` shows sizes and timings.
fn show(label: &str, outcome: &Outcome) {
    println!("{label}: {}", model::report(outcome));
}

/// The reference holds everything, and the run reached a dead holder's stale
/// lock and its takeover by a live process.
fn assert_reference_holds(outcome: &Outcome, at_least: usize) {
    assert!(
        outcome.violations().is_empty(),
        "the reference violates {:?}:\n{}",
        outcome.violations(),
        model::report(outcome)
    );
    assert!(
        outcome.unique_states >= at_least,
        "only {} states explored; the model no longer explores what it should",
        outcome.unique_states
    );
    for wanted in [
        model::RECOVERY_SITUATION_REACHED,
        model::TAKEOVER_REACHED,
        model::ALL_ROUNDS_DONE,
    ] {
        assert!(outcome.reached(wanted), "never reached: {wanted}");
    }
}

#[test]
fn reference_two_processes_two_rounds_with_crashes_holds_every_property() {
    let outcome = model::check(bounds(2, 2, 2, false), &REFERENCE, THREADS);
    show("reference P=2 K=2 crashes<=2", &outcome);
    assert_reference_holds(&outcome, 20_000);
}

#[test]
fn reference_three_processes_with_crashes_holds_every_property() {
    let outcome = model::check(bounds(3, 1, 2, false), &REFERENCE, THREADS);
    show("reference P=3 K=1 crashes<=2", &outcome);
    assert_reference_holds(&outcome, 200_000);
}

#[test]
fn reference_breakers_of_a_planted_stale_lock_hold_every_property() {
    let outcome = model::check(bounds(2, 1, 1, true), &REFERENCE, THREADS);
    show("reference P=2 K=1 crashes<=1 stale lock", &outcome);
    assert_reference_holds(&outcome, 5_000);
}

/// The step that ends `path`: the state before it and the step.
fn last_step(path: &stateright::Path<State, Step>) -> (State, Step) {
    let steps = path.clone().into_vec();
    let (state, step) = steps
        .iter()
        .rev()
        .find_map(|(s, a)| a.map(|a| (s.clone(), a)))
        .expect("a counterexample has at least one step");
    (state, step)
}

/// Defect 1: a contender reads the record a live writer is still writing,
/// takes it for garbage and deletes it. Three processes with crashes; the
/// same run also finds two holders and the break race.
#[test]
fn seed_deletes_a_partial_record_of_a_live_writer() {
    let outcome = model::find(
        bounds(3, 1, 1, false),
        v("original"),
        THREADS,
        &[
            model::BREAK_STALE_ONLY,
            model::AT_MOST_ONE_HOLDER,
            model::BREAK_JUDGED_ONLY,
        ],
    );
    show("seed P=3 crashes<=1", &outcome);
    assert!(violated(&outcome).is_superset(&names(&[
        model::BREAK_STALE_ONLY,
        model::AT_MOST_ONE_HOLDER,
        model::BREAK_JUDGED_ONLY,
    ])));
    let path = &outcome.discoveries[model::BREAK_STALE_ONLY];
    let (before, step) = last_step(path);
    let Step::Run(i) = step else {
        panic!("the violating step is a request, not {step:?}")
    };
    let Phase::Acquiring { next, .. } = &before.procs[i].phase else {
        panic!("the deleter is acquiring")
    };
    assert_eq!(*next, Request::Unlink);
    let victim = before.sim.lock_file().expect("something is deleted");
    assert!(
        victim.data.len() < RECORD_LEN,
        "the deleted file is a partial record"
    );
    assert!(
        before.sim.alive.contains(&victim.creator),
        "its writer is alive"
    );
    println!("{}", model::timeline(&outcome.model, path));
}

/// Defect 2: two contenders judge one stale lock stale; without the guard
/// and the re-check, the second unlinks the lock the first has just made.
#[test]
fn seed_loses_the_stale_break_race() {
    let outcome = model::find(
        bounds(2, 1, 0, true),
        v("original"),
        THREADS,
        &[model::BREAK_JUDGED_ONLY],
    );
    let path = outcome
        .discoveries
        .get(model::BREAK_JUDGED_ONLY)
        .expect("the seed unlinks a lock it did not judge");
    let (before, step) = last_step(path);
    let Step::Run(i) = step else {
        panic!("the violating step is a request, not {step:?}")
    };
    let Phase::Acquiring { judged, .. } = &before.procs[i].phase else {
        panic!("the unlinker is acquiring")
    };
    let planted = path.clone().into_states()[0].sim.lock;
    let judged = judged.expect("it read a file before unlinking");
    assert_eq!(Some(judged.id.ino), planted, "it judged the planted lock");
    let victim = before.sim.lock_file().expect("it unlinks a file");
    assert_ne!(before.sim.lock, planted, "but unlinks another one");
    assert_eq!(
        victim.creator,
        before.procs[1 - i].pid,
        "the other breaker's new lock"
    );
    println!("{}", model::timeline(&outcome.model, path));
}

/// The classic race of §8 with defect 2 alone: two breakers of one stale
/// lock both end up holding it.
#[test]
fn unguarded_break_lets_two_breakers_of_one_stale_lock_both_hold() {
    let outcome = model::find(
        bounds(2, 1, 0, true),
        v("unguarded-break"),
        THREADS,
        &[model::BREAK_JUDGED_ONLY, model::AT_MOST_ONE_HOLDER],
    );
    let path = outcome
        .discoveries
        .get(model::AT_MOST_ONE_HOLDER)
        .expect("two holders");
    let last = path.last_state();
    let holders: Vec<_> = last.procs.iter().filter(|p| p.is_holder()).collect();
    assert_eq!(holders.len(), 2);
    // Both broke the same planted lock on their way in.
    let broke: Vec<_> = holders
        .iter()
        .map(|p| match &p.phase {
            Phase::Holding(h) => h.broke.clone(),
            other => panic!("a holder in {other:?}"),
        })
        .collect();
    assert!(
        broke.iter().all(Option::is_some),
        "both broke a lock: {broke:?}"
    );
    assert!(violated(&outcome).contains(model::BREAK_JUDGED_ONLY));
    println!("{}", model::timeline(&outcome.model, path));
}

/// Where the file system refuses hard links, publication is the two steps
/// of §7.1's fallback: a reader can find the lock created and still empty.
/// The protocol keeps every property all the same: the empty file is young,
/// so nobody breaks it, and its creator holds its guard from the start.
#[test]
fn reference_with_the_create_then_write_fallback_holds_every_property() {
    for stale_lock in [false, true] {
        let mut b = bounds(2, if stale_lock { 1 } else { 2 }, 1, stale_lock);
        b.no_links = true;
        let outcome = model::check(b, &REFERENCE, THREADS);
        println!("{}", model::report(&outcome));
        assert!(violated(&outcome).is_empty(), "{}", model::report(&outcome));
        assert!(
            outcome.unique_states > 1000,
            "the fallback's interleavings were explored"
        );
    }
}

/// The variant called `name` in the catalogue.
fn v(name: &str) -> &'static Variant {
    variant::find(name).expect("in the catalogue")
}

/// Each variant, explored exhaustively from a planted stale lock with two
/// processes and a crash, violates exactly the properties its flaws allow.
#[test]
fn each_variant_violates_exactly_what_its_flaws_allow() {
    let expected: [(&Variant, &[&str]); 5] = [
        (&REFERENCE, &[]),
        (
            v("original"),
            &[
                model::AT_MOST_ONE_HOLDER,
                model::HOLDER_AT_LOCK_PATH,
                model::RELEASE_OWN_ONLY,
                model::BREAK_JUDGED_ONLY,
                model::BREAK_STALE_ONLY,
            ],
        ),
        (
            // The guard and the re-check still keep breakers to the file they
            // judged; deleting a partial record is enough to break exclusion.
            v("partial-record"),
            &[
                model::AT_MOST_ONE_HOLDER,
                model::HOLDER_AT_LOCK_PATH,
                model::RELEASE_OWN_ONLY,
                model::BREAK_STALE_ONLY,
            ],
        ),
        (
            v("unguarded-break"),
            &[
                model::AT_MOST_ONE_HOLDER,
                model::HOLDER_AT_LOCK_PATH,
                model::RELEASE_OWN_ONLY,
                model::BREAK_JUDGED_ONLY,
                model::BREAK_STALE_ONLY,
            ],
        ),
        // With unique writer ids and one host nobody removes a live
        // holder's lock, so comparing the id alone never picks the wrong file.
        (v("release-by-id-only"), &[]),
    ];
    for (variant, want) in expected {
        let outcome = model::check(bounds(2, 1, 1, true), variant, THREADS);
        assert_eq!(
            violated(&outcome),
            names(want),
            "{}:\n{}",
            variant.name,
            model::report(&outcome)
        );
    }
}

/// The timeline numbers each step and gives the process, the request, the
/// reply and what is at the lock path afterwards.
#[test]
fn a_counterexample_timeline_shows_each_step_and_the_lock_path() {
    let m = LockModel::new(bounds(2, 1, 0, false), v("original"));
    let path =
        model::shortest_counterexample(&m, model::BREAK_STALE_ONLY).expect("the seed breaks it");
    let text = model::timeline(&m, &path);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("  0. start: lock path: empty"));
    assert_eq!(lines[1], "  1. P0 (pid 101) acquire: clock -> T0+0s");
    assert!(lines[2].starts_with("     lock path: empty"));
    assert!(text.contains("create the lock path empty (O_EXCL) -> created ino 1 as h1"));
    assert!(text.contains("[malformed: length, 0 bytes]"));
    assert!(text.contains("lock path: ino 1 by pid 101, 0 bytes [partial: 0 bytes]"));
    let unlink = lines
        .iter()
        .position(|l| l.contains("unlink the lock path -> unlinked"))
        .expect("the deletion is a step");
    // The original never tries a link; its refusal is one step that changes nothing.
    assert!(lines[unlink].starts_with("  9. P1 (pid 102) acquire:"));
    assert_eq!(
        lines.last().copied(),
        Some("     VIOLATES: a break unlinks only a stale lock")
    );
}

/// The recovery property is not vacuous: a live process that keeps a stale
/// lock's guard to itself makes it fail.
#[test]
fn recovery_property_fails_when_a_live_process_sits_on_the_guard() {
    let m = LockModel::new(bounds(2, 1, 0, true), &REFERENCE);
    let mut state = m.init_states().remove(0);
    // Process 1 opens the planted lock and takes its guard, then stops.
    let reply = state.sim.perform(102, &Request::Read { keep_open: true });
    let rvlf_lock::machine::Reply::Read(rvlf_lock::machine::ReadReply::Found {
        file: Some(file),
        ..
    }) = reply
    else {
        panic!("the planted lock is readable")
    };
    state.sim.perform(102, &Request::Guard { file });
    state.procs[1].phase = Phase::Done;
    assert!(m.every_holder_dead_and_stale(&state));
    assert!(!m.some_live_process_acquires_alone(&state));
    let recoverable = m
        .properties()
        .into_iter()
        .find(|p| p.name == model::STALE_LOCK_RECOVERABLE)
        .expect("the property exists");
    assert!(!(recoverable.condition)(&m, &state));
}

#[test]
fn model_check_command_exit_codes() {
    let mut args = model::ModelCheckArgs {
        procs: 2,
        rounds: 1,
        crashes: true,
        max_crashes: 1,
        ticks: 1,
        attempts: 2,
        stale_lock: false,
        no_links: false,
        variant: &REFERENCE,
        threads: Some(THREADS),
        search: model::Search::Bfs,
    };
    assert_eq!(model::run_cli(&args), ExitCode::SUCCESS);
    args.variant = v("original");
    assert_eq!(model::run_cli(&args), ExitCode::from(1));
    args.procs = 0;
    assert_eq!(model::run_cli(&args), ExitCode::from(2));
}
