//! Uncontended cost of one try-acquire plus release, against the floors it is
//! built from, on a tmpfs and on a disk directory.
//!
//! Variants, each one cycle:
//! - `reference`: `WriterLock::try_acquire_file` + `release` (the protocol);
//! - `seed`: the same machine with the original implementation's rules
//!   (`rvlf::variant` "original"), through the harness's flawed lock;
//! - `floor-fsync`: open(O_CREAT|O_EXCL), write 104 B, fsync, close, unlink —
//!   the cheapest lock file of the same durability;
//! - `floor-no-fsync`: the same without fsync;
//! - `atomic-floor`: open(O_TMPFILE), write 104 B, fsync, linkat, close,
//!   unlink — the cheapest atomic publication (§7.1), without its checks;
//! - `protocol-floor`: the reference's own 15 syscalls issued directly, with
//!   none of the library around them: what the protocol costs by itself;
//! - `flock`: flock(LOCK_EX) + flock(LOCK_UN) on an open file.
//!
//! Two measurements. Criterion measures each variant on its own (groups
//! `uncontended-<fs>`). Then `interleaved` runs all variants in round-robin
//! blocks of about 1 ms, the order rotated every round, and prints medians
//! and ratios to the floor computed round by round: fsync latency on a shared
//! disk drifts by an order of magnitude within seconds, and only ratios taken
//! from the same moments mean anything (BENCHMARKS.md).
//!
//! `cargo bench --bench lock` runs everything; `cargo test --benches` runs each
//! benchmark once. `RVLF_BENCH_CYCLES=variant,count,dir` runs `count` cycles of
//! one variant in `dir` and exits, for `strace -c` (benches/syscalls.sh).

mod common;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::Criterion;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{fstat, lstat, Mode};
use nix::unistd::{fsync, linkat, unlink, write};
use rvlf::variant;
use rvlf_lock::{decode, encode, Options, Record, WriterId, WriterLock};

use common::{median, quantile, us, Place};

/// Every variant, in the order tables list them. The first is the reference,
/// the second the floor the targets are stated against.
const VARIANTS: [Kind; 7] = [
    Kind::Reference,
    Kind::FloorFsync,
    Kind::Seed,
    Kind::FloorNoFsync,
    Kind::AtomicFloor,
    Kind::ProtocolFloor,
    Kind::Flock,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reference,
    Seed,
    FloorFsync,
    FloorNoFsync,
    AtomicFloor,
    ProtocolFloor,
    Flock,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Reference => "reference",
            Kind::Seed => "seed",
            Kind::FloorFsync => "floor-fsync",
            Kind::FloorNoFsync => "floor-no-fsync",
            Kind::AtomicFloor => "atomic-floor",
            Kind::ProtocolFloor => "protocol-floor",
            Kind::Flock => "flock",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        VARIANTS.into_iter().find(|k| k.name() == name)
    }
}

/// One variant, ready to run cycles in one directory.
struct Variant {
    kind: Kind,
    path: PathBuf,
    /// The open file `flock` locks; None for the others.
    flock_fd: Option<OwnedFd>,
}

/// 104 bytes of a real record, for the floors to write.
fn record_bytes() -> [u8; 104] {
    encode(&Record::new(
        std::process::id(),
        b"bench-host",
        1_700_000_000_000_000_000,
        WriterId([7; 16]),
    ))
}

impl Variant {
    fn new(kind: Kind, dir: &Path) -> Variant {
        let path = dir.join(format!("{}.rvf.lock", kind.name()));
        let flock_fd = (kind == Kind::Flock).then(|| {
            open(
                path.as_path(),
                OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .expect("a file to flock")
        });
        Variant {
            kind,
            path,
            flock_fd,
        }
    }

    /// One acquire + release (or its floor).
    fn cycle(&mut self, bytes: &[u8; 104]) {
        match self.kind {
            Kind::Reference => protocol_cycle(&self.path, Options::default()),
            Kind::Seed => {
                let original = variant::find("original").expect("in the catalogue");
                let held = original
                    .try_acquire_file(&self.path)
                    .expect("an uncontended lock is free");
                held.release().expect("release of our own lock");
            }
            Kind::FloorFsync => floor_cycle(&self.path, bytes, true),
            Kind::FloorNoFsync => floor_cycle(&self.path, bytes, false),
            Kind::AtomicFloor => {
                let fd = publish(&self.path, bytes, false);
                drop(fd);
                unlink(self.path.as_path()).expect("atomic floor: unlink");
            }
            Kind::ProtocolFloor => protocol_floor_cycle(&self.path, bytes),
            Kind::Flock => {
                let fd = self.flock_fd.as_ref().expect("opened in new").as_raw_fd();
                flock(fd, libc::LOCK_EX);
                flock(fd, libc::LOCK_UN);
            }
        }
    }
}

fn protocol_cycle(lock: &Path, options: Options) {
    let held = WriterLock::try_acquire_file(lock, options).expect("an uncontended lock is free");
    held.release().expect("release of our own lock");
}

fn floor_cycle(path: &Path, bytes: &[u8; 104], durable: bool) {
    let fd = open(
        path,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("floor: create");
    assert_eq!(write(&fd, bytes).expect("floor: write"), bytes.len());
    if durable {
        fsync(&fd).expect("floor: fsync");
    }
    drop(fd);
    unlink(path).expect("floor: unlink");
}

/// O_TMPFILE, write, fsync, (with `guard`, flock as §7.2 asks,) link into
/// place as the reference does (AT_EMPTY_PATH, else through /proc): the
/// published file, still open.
fn publish(path: &Path, bytes: &[u8; 104], guard: bool) -> OwnedFd {
    let dir = path.parent().expect("a lock path has a directory");
    let fd = open(
        dir,
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("O_TMPFILE");
    assert_eq!(write(&fd, bytes).expect("write"), bytes.len());
    fsync(&fd).expect("fsync");
    if guard {
        flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB);
    }
    let empty = linkat(
        fd.as_fd(),
        "",
        nix::fcntl::AT_FDCWD,
        path,
        AtFlags::AT_EMPTY_PATH,
    );
    if empty.is_err() {
        let proc_path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
        linkat(
            nix::fcntl::AT_FDCWD,
            proc_path.as_c_str(),
            nix::fcntl::AT_FDCWD,
            path,
            AtFlags::AT_SYMLINK_FOLLOW,
        )
        .expect("link");
    }
    fd
}

/// The syscalls of one reference cycle, in its order, and nothing else.
fn protocol_floor_cycle(path: &Path, bytes: &[u8; 104]) {
    // Acquire: identity, publication (§7.1), the held file's identity.
    std::hint::black_box(nix::unistd::getpid());
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).expect("getrandom");
    let held = publish(path, bytes, true);
    let id = fstat(&held).expect("fstat held");
    // Release: read the lock path per §4.1, compare, unlink, close (§9.1).
    let before = lstat(path).expect("lstat");
    let fd = open(
        path,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .expect("open for read");
    let st = fstat(&fd).expect("fstat");
    let mut head = [0u8; 105];
    let n = nix::sys::uio::pread(&fd, &mut head, 0).expect("pread");
    assert!(n == 104 && st.st_ino == id.st_ino && before.st_ino == st.st_ino);
    unlink(path).expect("unlink");
    drop(fd);
    drop(held);
}

fn flock(fd: i32, op: i32) {
    // SAFETY: flock reads only the descriptor number, which the caller keeps open.
    let rc = unsafe { libc::flock(fd, op) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

// ---------------------------------------------------------------------------
// Criterion: each variant on its own.

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

fn uncontended(c: &mut Criterion, place: &Place) {
    let dir = tempfile::tempdir_in(&place.dir).expect("a scratch directory for the benchmark");
    let bytes = record_bytes();
    let mut group = c.benchmark_group(format!("uncontended-{}", place.fs));
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for kind in VARIANTS {
        let mut variant = Variant::new(kind, dir.path());
        group.bench_function(kind.name(), |b| b.iter(|| variant.cycle(&bytes)));
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Interleaved: every variant in the same moments.

/// Aim for blocks of this length: short enough that the disk's weather is
/// the same for all variants of a round, long enough to time well.
const BLOCK: Duration = Duration::from_millis(1);

/// Per variant (in `VARIANTS` order), the median ns of the cycles of its
/// block in each round. Each cycle is timed on its own, so that a block in
/// which another process took the CPU for a while still gives its typical
/// cycle, not its mean.
struct Rounds {
    ns: Vec<Vec<f64>>,
}

fn interleave(place: &Place, budget: Duration, bench: bool) -> Rounds {
    let dir = tempfile::tempdir_in(&place.dir).expect("a scratch directory for the benchmark");
    let bytes = record_bytes();
    let mut variants: Vec<Variant> = VARIANTS
        .iter()
        .map(|&k| Variant::new(k, dir.path()))
        .collect();
    // Calibrate: how many cycles make a block of each variant.
    let warm = if bench { 50 } else { 1 };
    let blocks: Vec<u32> = variants
        .iter_mut()
        .map(|v| {
            let start = Instant::now();
            for _ in 0..warm {
                v.cycle(&bytes);
            }
            let per = start.elapsed().as_secs_f64() / f64::from(warm);
            if bench {
                (BLOCK.as_secs_f64() / per).clamp(1.0, 10_000.0) as u32
            } else {
                1
            }
        })
        .collect();
    let mut ns = vec![Vec::new(); variants.len()];
    let start = Instant::now();
    let mut round = 0;
    while round == 0 || start.elapsed() < budget {
        for i in 0..variants.len() {
            let v = (i + round) % variants.len();
            let mut cycles = Vec::with_capacity(blocks[v] as usize);
            for _ in 0..blocks[v] {
                let t = Instant::now();
                variants[v].cycle(&bytes);
                cycles.push(t.elapsed().as_nanos() as f64);
            }
            ns[v].push(median(&cycles));
        }
        round += 1;
    }
    Rounds { ns }
}

fn report(place: &Place, rounds: &Rounds) {
    let floor = &rounds.ns[1];
    println!(
        "\ninterleaved, {}: {} rounds, ratios to floor-fsync taken round by round",
        place.label(),
        floor.len()
    );
    println!(
        "| variant | median µs | p10 µs | p90 µs | ratio to floor-fsync: median | 95 % CI of that median | p10 | p90 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (kind, ns) in VARIANTS.iter().zip(&rounds.ns) {
        let ratios: Vec<f64> = ns.iter().zip(floor).map(|(v, f)| v / f).collect();
        let (low, high) = median_interval(&ratios);
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3}–{:.3} | {:.3} | {:.3} |",
            kind.name(),
            us(median(ns)),
            us(quantile(ns, 0.1)),
            us(quantile(ns, 0.9)),
            median(&ratios),
            low,
            high,
            quantile(&ratios, 0.1),
            quantile(&ratios, 0.9),
        );
    }
}

/// A distribution-free 95 % confidence interval of the median of `values`:
/// the order statistics at n/2 ± 0.98·√n.
fn median_interval(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let half = 0.98 * n.sqrt() / n;
    (
        quantile(values, (0.5 - half).max(0.0)),
        quantile(values, (0.5 + half).min(1.0)),
    )
}

// ---------------------------------------------------------------------------

/// `RVLF_BENCH_CYCLES=variant,count,dir`: run `count` cycles and exit.
fn cycles_only(spec: &str) {
    let mut parts = spec.splitn(3, ',');
    let (Some(kind), Some(count), Some(dir)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("RVLF_BENCH_CYCLES must be variant,count,dir; got {spec:?}");
    };
    let kind = Kind::from_name(kind).unwrap_or_else(|| panic!("no variant named {kind:?}"));
    let count: u32 = count.parse().expect("a cycle count");
    let dir = Path::new(std::ffi::OsStr::from_bytes(dir.as_bytes()));
    let bytes = record_bytes();
    let mut variant = Variant::new(kind, dir);
    for _ in 0..count {
        variant.cycle(&bytes);
    }
}

fn main() {
    if let Ok(spec) = std::env::var("RVLF_BENCH_CYCLES") {
        cycles_only(&spec);
        return;
    }
    let bench = common::bench_mode();
    let places = common::places();
    println!("{}", common::machine(&places));
    println!("{}", common::load());
    let mut c = Criterion::default().configure_from_args();
    codec(&mut c);
    for place in &places {
        uncontended(&mut c, place);
    }
    c.final_summary();
    if common::selected("interleaved") {
        let budget = std::env::var("RVLF_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(Duration::from_secs(20), Duration::from_secs_f64);
        for place in &places {
            let rounds = interleave(place, if bench { budget } else { Duration::ZERO }, bench);
            report(place, &rounds);
        }
    }
    println!("\n{}", common::load());
}
