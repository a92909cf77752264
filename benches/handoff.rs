//! Contended hand-off: 1, 2, 4 and 8 processes contend for one lock, each in a
//! loop of blocking acquire, empty critical section, release, for a fixed
//! time; then 1, 2 and 8 processes that hold the lock for 200 µs and then
//! work elsewhere for 200 µs (both sleeps), so that a waiting writer, not the
//! releaser, is the one to take the lock next, and how soon a waiter notices
//! a release decides the rate. Variants, all in the same run, in round-robin
//! repetitions:
//! - `events`: `WriterLock::acquire_file_timeout`, the default wait (inotify
//!   on the lock's directory, bounded by the backoff);
//! - `backoff`: the same with `Wait::Backoff` (jittered exponential backoff
//!   alone);
//! - `flock`: flock(LOCK_EX) blocking, flock(LOCK_UN), each process on its
//!   own open file description of one file.
//!
//! Writers are processes: this binary re-executes itself with
//! `RVLF_HANDOFF_CHILD` set (exec, never a bare fork), and each child reports
//! its acquisitions (CLOCK_MONOTONIC when acquire returned, and when release
//! was called) and its own CPU time from getrusage(2). Reported per run:
//! acquisitions/s, the hand-off gap (from one holder calling release to the
//! next holder's acquire returning) p50/p99, CPU time per acquisition, the
//! share of acquisitions that went to another process than the last holder,
//! and the per-writer spread (max/min − 1). Overlapping holders are counted
//! and must be zero.
//!
//! `cargo bench --bench handoff`; `cargo test --benches` runs a short pass.
//! `RVLF_HANDOFF_SECONDS` (default 1) sets the length of one run,
//! `RVLF_HANDOFF_REPS` (default 3) the repetitions, `RVLF_HANDOFF_WRITERS`
//! (e.g. `1,8`) and `RVLF_HANDOFF_WAITS` (e.g. `events,flock`) a subset.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use rvlf_lock::Wait;
use rvlf_lock::{AcquireError, Options, WriterLock};

use common::{median, now_ns, quantile, us, Place};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Events,
    Backoff,
    Flock,
}

const VARIANTS: [Variant; 3] = [Variant::Events, Variant::Backoff, Variant::Flock];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Events => "events",
            Variant::Backoff => "backoff",
            Variant::Flock => "flock",
        }
    }

    fn from_name(name: &str) -> Option<Variant> {
        VARIANTS.into_iter().find(|v| v.name() == name)
    }
}

// ---------------------------------------------------------------------------
// The child: one writer.

/// What one writer did.
#[derive(Debug, Default)]
struct Log {
    /// (acquired, release called), CLOCK_MONOTONIC ns.
    holds: Vec<(u64, u64)>,
    cpu_ns: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

impl Log {
    fn render(&self) -> String {
        let mut out = format!(
            "{} {} {}\n",
            self.cpu_ns, self.voluntary_switches, self.involuntary_switches
        );
        for (a, r) in &self.holds {
            let _ = writeln!(out, "{a} {r}");
        }
        out
    }

    fn parse(text: &str) -> Option<Log> {
        let mut lines = text.lines();
        let mut head = lines.next()?.split(' ').map(str::parse::<u64>);
        let mut log = Log {
            cpu_ns: head.next()?.ok()?,
            voluntary_switches: head.next()?.ok()?,
            involuntary_switches: head.next()?.ok()?,
            holds: Vec::new(),
        };
        for line in lines {
            let (a, r) = line.split_once(' ')?;
            log.holds.push((a.parse().ok()?, r.parse().ok()?));
        }
        Some(log)
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"))
}

fn usage() -> (u64, u64, u64) {
    // SAFETY: getrusage writes one struct rusage, which we own.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
        ru
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    (
        ns(ru.ru_utime) + ns(ru.ru_stime),
        ru.ru_nvcsw as u64,
        ru.ru_nivcsw as u64,
    )
}

fn sleep_until(t_ns: u64) {
    let now = now_ns();
    if t_ns > now {
        std::thread::sleep(Duration::from_nanos(t_ns - now));
    }
}

fn child(variant: Variant) {
    let lock = PathBuf::from(env("RVLF_HANDOFF_LOCK"));
    let work = Work {
        inside: Duration::from_micros(env("RVLF_HANDOFF_INSIDE_US").parse().expect("µs")),
        outside: Duration::from_micros(env("RVLF_HANDOFF_OUTSIDE_US").parse().expect("µs")),
    };
    let start: u64 = env("RVLF_HANDOFF_START").parse().expect("start time");
    let end: u64 = env("RVLF_HANDOFF_END").parse().expect("end time");
    let out = PathBuf::from(env("RVLF_HANDOFF_OUT"));
    let mut log = Log {
        holds: Vec::with_capacity(1 << 16),
        ..Log::default()
    };
    sleep_until(start);
    let (cpu0, vol0, invol0) = usage();
    match variant {
        Variant::Events | Variant::Backoff => {
            let wait = if variant == Variant::Events {
                Wait::Events
            } else {
                Wait::Backoff
            };
            protocol_writer(&lock, end, wait, work, &mut log.holds);
        }
        Variant::Flock => flock_writer(&lock, end, work, &mut log.holds),
    }
    let (cpu1, vol1, invol1) = usage();
    log.cpu_ns = cpu1 - cpu0;
    log.voluntary_switches = vol1 - vol0;
    log.involuntary_switches = invol1 - invol0;
    std::fs::write(&out, log.render()).expect("write the writer's log");
}

/// What a writer does besides taking the lock: sleep this long while
/// holding it, and this long between a release and the next acquire.
#[derive(Debug, Clone, Copy)]
struct Work {
    inside: Duration,
    outside: Duration,
}

fn pause(d: Duration) {
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

fn protocol_writer(lock: &Path, end: u64, wait: Wait, work: Work, holds: &mut Vec<(u64, u64)>) {
    loop {
        let now = now_ns();
        if now >= end {
            return;
        }
        let timeout = Duration::from_nanos(end - now);
        let held =
            match WriterLock::acquire_file_timeout(lock, timeout, Options::default().wait(wait)) {
                Ok(held) => held,
                Err(AcquireError::TimedOut { .. }) => return,
                Err(e) => panic!("acquire: {e}"),
            };
        let acquired = now_ns();
        pause(work.inside);
        let release = now_ns();
        holds.push((acquired, release));
        held.release().expect("release of our own lock");
        pause(work.outside);
    }
}

fn flock_writer(lock: &Path, end: u64, work: Work, holds: &mut Vec<(u64, u64)>) {
    let fd = open(
        lock,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .expect("the file to flock");
    let flock = |op| {
        // SAFETY: flock reads only the descriptor number, which `fd` keeps open.
        let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    };
    while now_ns() < end {
        flock(libc::LOCK_EX);
        let acquired = now_ns();
        pause(work.inside);
        let release = now_ns();
        holds.push((acquired, release));
        flock(libc::LOCK_UN);
        pause(work.outside);
    }
}

// ---------------------------------------------------------------------------
// The parent: runs, statistics, tables.

/// What one run of `writers` processes measured.
#[derive(Debug, Clone)]
struct Run {
    acquisitions: u64,
    seconds: f64,
    /// Gaps between consecutive holders, ns: all, and only those where the
    /// lock went to another process.
    gaps: Vec<f64>,
    handoff_gaps: Vec<f64>,
    handoffs: u64,
    per_writer: Vec<u64>,
    cpu_ns: u64,
    voluntary_switches: u64,
    overlaps: u64,
}

fn run(place: &Place, variant: Variant, writers: usize, work_us: u64, seconds: f64) -> Run {
    let dir = tempfile::tempdir_in(&place.dir).expect("a scratch directory");
    let lock = dir.path().join("data.rvf.lock");
    let exe = std::env::current_exe().expect("this benchmark's executable");
    let start = now_ns() + 200_000_000;
    let end = start + (seconds * 1e9) as u64;
    let outs: Vec<PathBuf> = (0..writers)
        .map(|w| dir.path().join(format!("writer-{w}.log")))
        .collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            Command::new(&exe)
                .env("RVLF_HANDOFF_CHILD", variant.name())
                .env("RVLF_HANDOFF_LOCK", &lock)
                .env("RVLF_HANDOFF_START", start.to_string())
                .env("RVLF_HANDOFF_END", end.to_string())
                .env("RVLF_HANDOFF_OUT", out)
                .env("RVLF_HANDOFF_INSIDE_US", work_us.to_string())
                .env("RVLF_HANDOFF_OUTSIDE_US", work_us.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn a writer")
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("wait for a writer");
        assert!(status.success(), "a writer failed: {status}");
    }
    let logs: Vec<Log> = outs
        .iter()
        .map(|out| {
            let text = std::fs::read_to_string(out).expect("a writer's log");
            Log::parse(&text).expect("a well-formed log")
        })
        .collect();
    summarize(&logs, start, end)
}

fn summarize(logs: &[Log], start: u64, end: u64) -> Run {
    let mut holds: Vec<(u64, u64, usize)> = logs
        .iter()
        .enumerate()
        .flat_map(|(w, log)| log.holds.iter().map(move |&(a, r)| (a, r, w)))
        .filter(|&(a, _, _)| a <= end)
        .collect();
    holds.sort_unstable();
    let mut gaps = Vec::new();
    let mut handoff_gaps = Vec::new();
    let (mut handoffs, mut overlaps) = (0, 0);
    for pair in holds.windows(2) {
        let ((_, released, w0), (acquired, _, w1)) = (pair[0], pair[1]);
        if acquired < released {
            overlaps += 1;
            continue;
        }
        let gap = (acquired - released) as f64;
        gaps.push(gap);
        if w0 != w1 {
            handoffs += 1;
            handoff_gaps.push(gap);
        }
    }
    let mut per_writer = vec![0; logs.len()];
    for &(_, _, w) in &holds {
        per_writer[w] += 1;
    }
    Run {
        acquisitions: holds.len() as u64,
        seconds: (end - start) as f64 / 1e9,
        gaps,
        handoff_gaps,
        handoffs,
        per_writer,
        cpu_ns: logs.iter().map(|l| l.cpu_ns).sum(),
        voluntary_switches: logs.iter().map(|l| l.voluntary_switches).sum(),
        overlaps,
    }
}

impl Run {
    fn rate(&self) -> f64 {
        self.acquisitions as f64 / self.seconds
    }

    /// max/min − 1 of the per-writer counts.
    fn spread(&self) -> f64 {
        let max = self.per_writer.iter().copied().max().unwrap_or(0) as f64;
        let min = self.per_writer.iter().copied().min().unwrap_or(0) as f64;
        if min == 0.0 {
            f64::INFINITY
        } else {
            max / min - 1.0
        }
    }
}

/// Every repetition of one (variant, writers) cell.
type Cells = BTreeMap<(usize, Variant), Vec<Run>>;

fn table(place: &Place, work_us: u64, cells: &Cells) {
    println!(
        "\nhand-off, {}, {work_us} µs in the lock and {work_us} µs outside",
        place.label()
    );
    println!(
        "| writers | wait | acq/s (median) | × 1-writer rate | gap p50 µs | gap p99 µs | \
         hand-off gap p50 µs | p99 µs | to another writer | CPU µs/acq | CPU cores busy | \
         vol. switches/acq | spread max/min−1 | per-writer counts | overlaps |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|");
    for (&(writers, variant), runs) in cells {
        let rates: Vec<f64> = runs.iter().map(Run::rate).collect();
        // The 1-writer rate of the same variant and repetition: same moments.
        let ratios: Vec<f64> = match cells.get(&(1, variant)) {
            Some(solo) => runs
                .iter()
                .zip(solo)
                .map(|(r, s)| r.rate() / s.rate())
                .collect(),
            None => Vec::new(),
        };
        let gaps: Vec<f64> = runs.iter().flat_map(|r| r.gaps.iter().copied()).collect();
        let handoff_gaps: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.handoff_gaps.iter().copied())
            .collect();
        let acquisitions: u64 = runs.iter().map(|r| r.acquisitions).sum();
        let handoffs: u64 = runs.iter().map(|r| r.handoffs).sum();
        let cpu: u64 = runs.iter().map(|r| r.cpu_ns).sum();
        let switches: u64 = runs.iter().map(|r| r.voluntary_switches).sum();
        let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
        let spreads: Vec<f64> = runs.iter().map(Run::spread).collect();
        let worst = runs
            .iter()
            .max_by(|a, b| a.spread().total_cmp(&b.spread()))
            .expect("at least one run");
        println!(
            "| {writers} | {} | {:.0} | {:.2} | {} | {} | {} | {} | {:.0} % | {} | {:.2} | {:.2} | \
             {:.2} (worst {:.2}) | {:?} | {} |",
            variant.name(),
            median(&rates),
            median(&ratios),
            us(median(&gaps)),
            us(quantile(&gaps, 0.99)),
            us(median(&handoff_gaps)),
            us(quantile(&handoff_gaps, 0.99)),
            100.0 * handoffs as f64 / acquisitions.saturating_sub(1).max(1) as f64,
            us(cpu as f64 / acquisitions.max(1) as f64),
            cpu as f64 / 1e9 / seconds,
            switches as f64 / acquisitions.max(1) as f64,
            median(&spreads),
            worst.spread(),
            worst.per_writer,
            runs.iter().map(|r| r.overlaps).sum::<u64>(),
        );
    }
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(name) = std::env::var("RVLF_HANDOFF_CHILD") {
        child(Variant::from_name(&name).expect("a known variant"));
        return;
    }
    if !common::selected("handoff") {
        return;
    }
    let bench = common::bench_mode();
    let places = common::places();
    println!("{}", common::machine(&places));
    println!("{}", common::load());
    let (seconds, reps) = if bench {
        (
            setting("RVLF_HANDOFF_SECONDS", 1.0),
            setting("RVLF_HANDOFF_REPS", 3),
        )
    } else {
        (0.05, 1)
    };
    // (µs slept in the lock and again outside it, writer counts)
    let scenarios: [(u64, &[usize]); 2] = if bench {
        [(0, &[1, 2, 4, 8]), (200, &[1, 2, 8])]
    } else {
        [(0, &[1, 2]), (200, &[2])]
    };
    let only_writers: Option<Vec<usize>> = std::env::var("RVLF_HANDOFF_WRITERS").ok().map(|list| {
        list.split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect()
    });
    let variants: Vec<Variant> = match std::env::var("RVLF_HANDOFF_WAITS") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| Variant::from_name(n.trim()))
            .collect(),
        Err(_) => VARIANTS.to_vec(),
    };
    for place in &places {
        for (work_us, writer_counts) in scenarios {
            let writer_counts: Vec<usize> = writer_counts
                .iter()
                .copied()
                .filter(|w| only_writers.as_ref().is_none_or(|only| only.contains(w)))
                .collect();
            if writer_counts.is_empty() {
                continue;
            }
            let mut cells = Cells::new();
            for _ in 0..reps {
                for &writers in &writer_counts {
                    for &variant in &variants {
                        let result = run(place, variant, writers, work_us, seconds);
                        assert_eq!(result.overlaps, 0, "{variant:?}: two holders at once");
                        assert!(result.acquisitions > 0, "{variant:?}: nobody acquired");
                        cells.entry((writers, variant)).or_default().push(result);
                    }
                }
            }
            table(place, work_us, &cells);
        }
    }
    println!("\n{}", common::load());
}
