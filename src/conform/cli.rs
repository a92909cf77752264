//! `rvlf conform` and `rvlf adapter`: the command-line ends of the suite.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::case::{Target, Timeouts};
use super::client::{self, Spec};
use super::runner::{self, Config, Expectations, Selection};
use super::{cases, report, scratch, serve};
use crate::args::{seconds, Zero};
use crate::variant::{self, REFERENCE};
use crate::{say, say_raw};

/// Options of `rvlf conform`.
#[derive(Debug, clap::Args)]
pub struct ConformArgs {
    /// The implementation's adapter, a shell command (default: the reference, `rvlf adapter`).
    #[arg(long, value_name = "COMMAND")]
    pub adapter: Option<String>,
    /// Test the reference with one deliberate defect instead (`rvlf adapter --list-mutants`).
    #[arg(long, value_name = "NAME", conflicts_with = "adapter")]
    pub mutant: Option<String>,
    /// Known failures: one `<case-id> <reason>` per line; a listed case that passes is an error.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Run only cases whose id matches this glob (repeatable; `*` and `?`).
    #[arg(long = "run", value_name = "GLOB")]
    pub run: Vec<String>,
    /// Leave out cases whose id matches this glob (repeatable).
    #[arg(long = "skip", value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Run only cases at least this strict: MUST, SHOULD or MAY.
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<crate::conform::case::Level>,
    /// List the selected cases and exit (as JSON with `--json`).
    #[arg(long)]
    pub list: bool,
    /// How many independent cases run at once (contention cases always run alone).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Seconds an adapter has to answer one request before it is judged to hang.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub request_timeout: f64,
    /// Seconds one case may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub case_timeout: f64,
    /// Seconds the whole run may take; cases not started by then are not run.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub timeout: f64,
    /// Also write the report as JSON to FILE; without FILE, or with `-`, to
    /// stdout instead of the human table (with `--list`: the catalogue).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Where the HTML page's section numbers link to, with `#s3.1` appended.
    #[arg(long, value_name = "URL", default_value = report::DEFAULT_PROTOCOL_URL)]
    pub protocol_url: String,
    /// Where scratch directories go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

/// `rvlf adapter [--mutant NAME]`: serve the protocol on stdin/stdout.
pub fn adapter(mutant_name: Option<&str>, list: bool) -> ExitCode {
    if list {
        for m in variant::BROKEN {
            say!("{:<22} {}", m.name, m.defect);
        }
        return ExitCode::SUCCESS;
    }
    let (name, variant) = match mutant_name {
        None => ("rvlf-reference".to_string(), &REFERENCE),
        Some(n) => match variant::find_broken(n) {
            Some(m) => (format!("rvlf-reference+mutant:{}", m.name), m),
            None => {
                eprintln!(
                    "rvlf adapter: no mutant {n:?}; mutants: {}",
                    variant::names()
                );
                return ExitCode::from(2);
            }
        },
    };
    let stdin = std::io::stdin();
    match serve::serve(&name, variant, stdin.lock(), std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // The harness closed our stdout: nothing is listening any more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvlf adapter: {e}");
            ExitCode::from(2)
        }
    }
}

/// A shell word for `sh -c`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command that starts this binary's own adapter.
pub fn reference_command(mutant_name: Option<&str>) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let exe = exe
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", exe.display()))?;
    Ok(match mutant_name {
        None => format!("{} adapter", quote(exe)),
        Some(m) => format!("{} adapter --mutant {}", quote(exe), quote(m)),
    })
}

fn config(args: &ConformArgs) -> Result<Config, String> {
    if let Some(m) = &args.mutant {
        if variant::find_broken(m).is_none() {
            return Err(format!("no mutant {m:?}; mutants: {}", variant::names()));
        }
    }
    let reference = reference_command(None)?;
    let adapter = match (&args.adapter, &args.mutant) {
        (Some(cmd), _) => cmd.clone(),
        (None, Some(m)) => reference_command(Some(m))?,
        (None, None) => reference.clone(),
    };
    let expectations = match &args.expect {
        None => Expectations::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--expect {}: {e}", path.display()))?;
            Expectations::parse(&text).map_err(|e| format!("--expect {}: {e}", path.display()))?
        }
    };
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    Ok(Config {
        target: Target {
            adapter: Spec::new(adapter),
            reference: Spec::new(reference),
        },
        selection: Selection {
            run: args.run.clone(),
            skip: args.skip.clone(),
            level: args.level,
        },
        jobs,
        timeouts: Timeouts {
            request: seconds(args.request_timeout, "request-timeout", Zero::Refused)?,
            case: seconds(args.case_timeout, "case-timeout", Zero::Refused)?,
        },
        global: seconds(args.timeout, "timeout", Zero::Refused)?,
        expectations,
        scratch: args.scratch.clone().unwrap_or_else(std::env::temp_dir),
    })
}

/// `rvlf conform`.
pub fn conform(args: &ConformArgs) -> ExitCode {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvlf conform: {e}");
            return ExitCode::from(2);
        }
    };
    let catalogue = cases::catalogue();
    if args.list {
        let selected: Vec<_> = catalogue
            .iter()
            .filter(|c| config.selection.includes(c))
            .collect();
        if let Some(path) = &args.json {
            let text = report::catalogue_json(&catalogue, &selected).map_err(|e| e.to_string());
            return ExitCode::from(write_report(path, text.map(|t| t + "\n")));
        }
        say_raw!("{}", report::list(&selected));
        say!("{} of {} cases selected", selected.len(), catalogue.len());
        return ExitCode::SUCCESS;
    }
    // SIGINT, SIGTERM, SIGHUP: stop every adapter, remove the scratch
    // directories, exit 128 + the signal's number.
    if let Err(e) = signals::install(clean_up_and_exit) {
        eprintln!("rvlf conform: cannot handle signals: {e}");
        return ExitCode::from(2);
    }
    running(true);
    let report = runner::run(catalogue, &config);
    running(false);
    if signals::received().is_some() {
        // The signal thread is cleaning up and exits; a report of a run cut
        // short would only mislead.
        loop {
            std::thread::park();
        }
    }
    let mut code = report.exit_code();
    if args.json.as_deref().is_none_or(|p| !is_stdout(p)) {
        say_raw!("{}", report::human(&report));
    }
    if let Some(path) = &args.json {
        code = code.max(write_report(
            path,
            report::json(&report)
                .map(|t| t + "\n")
                .map_err(|e| e.to_string()),
        ));
    }
    if let Some(path) = &args.html {
        code = code.max(write_report(
            path,
            Ok(report::html(&report, &args.protocol_url)),
        ));
    }
    if let Some(path) = &args.junit {
        code = code.max(write_report(path, report::junit(&report)));
    }
    ExitCode::from(code)
}

/// `-`: a report path that means stdout.
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Write one report file (stdout for `-`); 2 if it could not be written.
fn write_report(path: &Path, text: Result<String, String>) -> u8 {
    let written = text.and_then(|t| {
        if is_stdout(path) {
            let mut out = std::io::stdout().lock();
            return out
                .write_all(t.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string());
        }
        let mut file = open_report(path)?;
        file.write_all(t.as_bytes()).map_err(|e| e.to_string())
    });
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvlf conform: cannot write {}: {e}", path.display());
            2
        }
    }
}

/// Open a report file for writing, emptied. The path is the user's, and
/// may be a symlink of theirs (`/dev/stdout`), but it is on the command
/// line every adapter can read: so, much as the kernel's
/// `protected_symlinks` would (whatever that setting is), a symlink in a
/// world-writable directory is followed only when it is this user's or the
/// directory owner's; anything but a symlink is opened with `O_NOFOLLOW`;
/// and a file of another user with more than one link is refused.
fn open_report(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let euid = nix::unistd::geteuid().as_raw();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).mode(0o666);
    match std::fs::symlink_metadata(path) {
        Ok(link) if link.file_type().is_symlink() => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let dir = std::fs::metadata(parent).map_err(|e| e.to_string())?;
            let shared = dir.mode() & 0o002 != 0;
            if shared && link.uid() != euid && link.uid() != dir.uid() {
                return Err(format!(
                    "refusing to follow a symlink of uid {} in the world-writable {}",
                    link.uid(),
                    parent.display()
                ));
            }
        }
        _ => {
            options.custom_flags(libc::O_NOFOLLOW);
        }
    }
    let file = options.open(path).map_err(|e| e.to_string())?;
    let m = file.metadata().map_err(|e| e.to_string())?;
    if m.file_type().is_file() {
        if m.nlink() > 1 && m.uid() != euid {
            return Err(format!(
                "refusing to write a file of uid {} with {} links",
                m.uid(),
                m.nlink()
            ));
        }
        file.set_len(0).map_err(|e| e.to_string())?;
    }
    Ok(file)
}

/// Whether `runner::run` is running, for the signal thread.
static RUNNING: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

fn running(now: bool) {
    let (lock, changed) = &RUNNING;
    *lock.lock().unwrap_or_else(PoisonError::into_inner) = now;
    changed.notify_all();
}

/// How long a signal waits for the run's threads to wind down once their
/// adapters are stopped (they normally take milliseconds; a thread blocked
/// on a pipe that an escaped process holds open is not waited for longer).
const WIND_DOWN: Duration = Duration::from_secs(1);

/// What a signal does, on the signal thread: stop every adapter (and refuse
/// to start one), remove every scratch directory of the run (and refuse to
/// make one), let the run's threads wind down so that no adapter start is
/// left half done, kill any child process still there, then exit with 128 +
/// `signal`, as a shell reports a death by that signal.
fn clean_up_and_exit(signal: i32) -> ! {
    let cleaned = std::panic::catch_unwind(|| {
        client::stop_all();
        scratch::close_all();
        let (lock, changed) = &RUNNING;
        let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = changed
            .wait_timeout_while(guard, WIND_DOWN, |running| *running)
            .unwrap_or_else(PoisonError::into_inner);
        kill_children();
    });
    let name = nix::sys::signal::Signal::try_from(signal).map_or("a signal", |s| s.as_str());
    let outcome = match cleaned {
        Ok(()) => "adapters stopped, scratch directories removed",
        Err(_) => "the clean-up failed",
    };
    // Never a panic here: after SIGHUP stderr may be gone.
    let _ = writeln!(
        std::io::stderr(),
        "rvlf conform: interrupted by {name}: {outcome}"
    );
    std::process::exit(128 + signal)
}

/// SIGKILL every child process of this one, and its process group (an
/// adapter leads its own): the last sweep before exit, for a start that
/// stop_all could not see yet.
fn kill_children() {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the parenthesised name: state, ppid, pgrp.
        let mut after = stat.rsplit_once(") ").map_or("", |(_, r)| r).split(' ');
        let ppid = after.nth(1).and_then(|p| p.parse::<u32>().ok());
        let pgrp = after.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(me) {
            let child = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            if pgrp == Some(pid) {
                let _ = nix::sys::signal::killpg(child, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, told apart: a handler that only writes the
/// signal's number to a pipe (the self-pipe trick), and a thread that reads
/// it and does the work in ordinary code, with locks and allocation. The
/// handler is installed with `SA_RESTART`, so the other threads hardly
/// notice it; a child process starts with default dispositions again
/// (execve resets handlers). A signal that was ignored when the harness
/// started (`nohup`, a background job of a non-interactive shell) stays
/// ignored.
mod signals {
    use std::os::fd::IntoRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    use nix::errno::Errno;
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

    const HANDLED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

    /// The pipe's write end, for the handler; -1 before [`install`].
    static WAKE: AtomicI32 = AtomicI32::new(-1);
    /// The first signal received, 0 before.
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(signal: libc::c_int) {
        // Async-signal-safe only: atomics and write(2), errno kept.
        let errno = Errno::last_raw();
        let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        let fd = WAKE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = signal as u8;
            // SAFETY: writes one byte from a live local to a descriptor
            // that stays open for the life of the process.
            unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
        }
        Errno::set_raw(errno);
    }

    /// The first signal received, if any.
    pub fn received() -> Option<i32> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// Start the signal thread, which calls `then` with the first signal's
    /// number, and install the handler; the first call does, later calls
    /// only report how that went.
    pub fn install(then: fn(i32) -> !) -> Result<(), String> {
        static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        INSTALLED.get_or_init(|| install_once(then)).clone()
    }

    fn install_once(then: fn(i32) -> !) -> Result<(), String> {
        let (read_end, write_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        // A full pipe must not block the handler; a signal is already pending then.
        fcntl(&write_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| format!("fcntl: {e}"))?;
        WAKE.store(write_end.into_raw_fd(), Ordering::SeqCst);
        std::thread::Builder::new()
            .name("rvlf-signals".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                loop {
                    match nix::unistd::read(&read_end, &mut byte) {
                        Ok(1) => then(i32::from(byte[0])),
                        Err(Errno::EINTR) => {}
                        // The write end is never closed: neither happens.
                        _ => return,
                    }
                }
            })
            .map_err(|e| format!("signal thread: {e}"))?;
        let mut mask = SigSet::empty();
        for signal in HANDLED {
            mask.add(signal);
        }
        let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, mask);
        for signal in HANDLED {
            // SAFETY: the handler only touches atomics and calls write(2).
            let old = unsafe { sigaction(signal, &action) }
                .map_err(|e| format!("sigaction {signal}: {e}"))?;
            if old.handler() == SigHandler::SigIgn {
                // SAFETY: puts back the disposition that was there.
                unsafe { sigaction(signal, &old) }
                    .map_err(|e| format!("sigaction {signal}: {e}"))?;
            }
        }
        Ok(())
    }
}
