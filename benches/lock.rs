//! Uncontended cost of the reference: record encode/decode, and one
//! try-acquire plus release on tmpfs and on a disk directory.
//!
//! `cargo bench --bench lock`; `cargo test --benches` runs each once.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion};
use rvlf::{decode, encode, Options, Record, WriterId, WriterLock};

fn codec(c: &mut Criterion) {
    let record = Record::new(
        4242,
        b"host-a",
        1_700_000_000_000_000_000,
        WriterId([7; 16]),
    );
    let bytes = encode(&record);
    let mut group = c.benchmark_group("record");
    group.bench_function("encode", |b| {
        b.iter(|| encode(std::hint::black_box(&record)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode(std::hint::black_box(&bytes)))
    });
    group.finish();
}

fn places() -> Vec<(&'static str, PathBuf)> {
    let mut places = vec![("disk", std::env::temp_dir())];
    if Path::new("/dev/shm").is_dir() {
        places.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    places
}

fn acquire_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire_release");
    for (fs, base) in places() {
        let dir = tempfile::tempdir_in(&base).expect("a scratch directory for the benchmark");
        let lock = dir.path().join("data.rvf.lock");
        group.bench_function(fs, |b| {
            b.iter(|| {
                let held = WriterLock::try_acquire_file(&lock, Options::default())
                    .expect("an uncontended lock is free");
                held.release().expect("release of our own lock")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codec, acquire_release);
criterion_main!(benches);
