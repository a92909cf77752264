//! Shared by the benchmarks: where they run (a tmpfs and a disk directory,
//! each named by its file-system type), the monotonic clock every process of a
//! run reads, the machine description printed with the results, summary
//! statistics, and how a benchmark binary tells `cargo bench` from
//! `cargo test --benches`.

#![allow(dead_code)] // each benchmark binary uses its own part of this module

use std::path::{Path, PathBuf};

/// A directory to run in, labelled with its file system.
#[derive(Debug, Clone)]
pub struct Place {
    /// "tmpfs", "ext4", ...: the file-system type from /proc/self/mounts.
    pub fs: String,
    pub dir: PathBuf,
}

impl Place {
    pub fn label(&self) -> String {
        format!("{} ({})", self.fs, self.dir.display())
    }
}

/// A tmpfs (/dev/shm, where present) and a disk directory: `RVLF_BENCH_DISK`
/// or else the system's temporary directory. A directory whose file system is
/// already listed is left out.
pub fn places() -> Vec<Place> {
    let mut dirs = Vec::new();
    if Path::new("/dev/shm").is_dir() {
        dirs.push(PathBuf::from("/dev/shm"));
    }
    dirs.push(std::env::var_os("RVLF_BENCH_DISK").map_or_else(std::env::temp_dir, PathBuf::from));
    let mut places: Vec<Place> = Vec::new();
    for dir in dirs {
        let fs = fs_type(&dir);
        if places.iter().all(|p| p.fs != fs) {
            places.push(Place { fs, dir });
        }
    }
    places
}

/// The type of the file system holding `dir`: the longest mount point of
/// /proc/self/mounts that contains it.
pub fn fs_type(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, at, fs) = (fields.next()?, fields.next()?, fields.next()?);
            let at = at.replace("\\040", " ");
            dir.starts_with(&at).then(|| (at.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_string(), |(_, fs)| fs)
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
pub fn now_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// nproc, CPU model, kernel, and the file systems of `places`.
pub fn machine(places: &[Place]) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let fs: Vec<String> = places.iter().map(Place::label).collect();
    format!(
        "machine: {cpus} CPUs ({model}), Linux {}, file systems: {}",
        kernel.trim(),
        fs.join(", ")
    )
}

/// True under `cargo bench`; false under `cargo test --benches`, which runs
/// each benchmark once, quickly.
pub fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Whether the part of a benchmark binary named `name` should run: when no
/// filter was given on the command line, or the filter is part of its name.
pub fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// The `q`-quantile (0..=1) of `values`, by nearest rank; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Nanoseconds as microseconds, to two decimals.
pub fn us(ns: f64) -> String {
    format!("{:.2}", ns / 1000.0)
}

/// The load average, to print beside the results: other processes on the
/// machine take CPU from the benchmark and lengthen every wake-up.
pub fn load() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!("load average (1, 5, 15 min): {}", fields.join(" "))
}
