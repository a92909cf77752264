//! The public `WriterLock` API on the real file system: busy answers, waiting
//! with a timeout, release outcomes, drop, and the waiting schedule.
// The API's error carries the holder's record (see src/lock.rs).
#![allow(clippy::result_large_err)]

use std::sync::mpsc;
use std::time::Duration;

use rvlf_lock::{
    lock_path_for, AcquireError, Busy, Contents, LockError, Options, Released, WriterLock,
};

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory")
}

#[test]
fn second_acquire_is_busy_and_names_the_live_holder() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let held = WriterLock::try_acquire(&data).expect("a free lock");
    assert_eq!(held.lock_path(), lock_path_for(&data));
    assert_eq!(held.record().pid, std::process::id());
    match WriterLock::try_acquire(&data) {
        Err(AcquireError::Busy {
            busy: Busy::Held { contents, verdict },
            ..
        }) => {
            assert_eq!(contents, Contents::Valid(held.record().clone()));
            assert!(!verdict.stale);
            assert_eq!(verdict.stale_in, None, "a live holder never turns stale");
        }
        other => panic!("expected busy, got {other:?}"),
    }
    assert_eq!(held.release().expect("release"), Released::Released);
    assert!(!lock_path_for(&data).exists(), "release removes the lock");
}

#[test]
fn every_acquisition_draws_a_fresh_writer_id() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let first = WriterLock::try_acquire(&data).expect("free");
    let id = first.record().writer_id;
    first.release().expect("release");
    let second = WriterLock::try_acquire(&data).expect("free again");
    assert_ne!(second.record().writer_id, id);
}

#[test]
fn timed_acquire_gives_up_with_timed_out_while_the_holder_lives() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let _held = WriterLock::try_acquire(&data).expect("free");
    let timeout = Duration::from_millis(120);
    match WriterLock::acquire_timeout(&data, timeout) {
        Err(AcquireError::TimedOut { waited, last, .. }) => {
            assert!(
                waited >= timeout,
                "gave up after {waited:?}, before {timeout:?}"
            );
            assert!(matches!(last, Busy::Held { .. }));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn timed_acquire_gets_the_lock_once_the_holder_releases() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let held = WriterLock::try_acquire(&data).expect("free");
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let data = data.clone();
        std::thread::spawn(move || {
            tx.send(()).expect("main thread listens");
            WriterLock::acquire_timeout(&data, Duration::from_secs(30))
        })
    };
    rx.recv().expect("waiter started");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(held.release().expect("release"), Released::Released);
    let got = waiter
        .join()
        .expect("waiter thread")
        .expect("acquired after release");
    assert_eq!(got.record().pid, std::process::id());
}

#[test]
fn dropping_a_lock_releases_it() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    drop(WriterLock::try_acquire(&data).expect("free"));
    assert!(!lock_path_for(&data).exists());
    WriterLock::try_acquire(&data).expect("free again after drop");
}

#[test]
fn release_of_a_replaced_lock_reports_lost_and_keeps_the_replacement() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let lock = lock_path_for(&data);
    let held = WriterLock::try_acquire(&data).expect("free");
    // Someone else's lock now stands at the path (as after a break and re-acquire).
    std::fs::remove_file(&lock).expect("remove");
    let theirs = WriterLock::try_acquire_file(&lock, Options::default()).expect("free");
    let before = std::fs::read(&lock).expect("read");
    match held.release().expect("release") {
        Released::Lost(rvlf_lock::Lost::Replaced { .. }) => {}
        other => panic!("expected lost, got {other:?}"),
    }
    assert_eq!(std::fs::read(&lock).expect("still there"), before);
    assert_eq!(theirs.release().expect("release"), Released::Released);
}

#[test]
fn release_of_a_vanished_lock_reports_lost() {
    let dir = scratch();
    let data = dir.path().join("data.rvf");
    let held = WriterLock::try_acquire(&data).expect("free");
    std::fs::remove_file(lock_path_for(&data)).expect("remove");
    assert_eq!(
        held.release().expect("release"),
        Released::Lost(rvlf_lock::Lost::Vanished)
    );
}

#[test]
fn acquire_in_a_missing_directory_is_a_typed_error() {
    let dir = scratch();
    match WriterLock::try_acquire(dir.path().join("no/such/dir/data.rvf")) {
        Err(AcquireError::Lock { source, .. }) => {
            assert!(matches!(
                source,
                LockError::Io {
                    errno: nix::errno::Errno::ENOENT,
                    ..
                }
            ));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}
