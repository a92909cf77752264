//! `rvlf conform` and `rvlf adapter`: the command-line ends of the suite.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::case::{Target, Timeouts};
use super::client::{self, Spec};
use super::runner::{self, Config, Expectations, Selection};
use super::{cases, report, serve};
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
    /// List the selected cases and exit.
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
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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

/// The scratch root of the run in progress, for the Ctrl-C handler.
static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
/// Set by the Ctrl-C handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
        say_raw!("{}", report::list(&selected));
        say!("{} of {} cases selected", selected.len(), catalogue.len());
        return ExitCode::SUCCESS;
    }
    let _ = SCRATCH.set(config.scratch.clone());
    // Ctrl-C: stop every adapter process group and remove our scratch directories.
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        client::stop_all();
        if let Some(scratch) = SCRATCH.get() {
            remove_scratch(scratch);
        }
        eprintln!("rvlf conform: interrupted");
        std::process::exit(130);
    });
    let report = runner::run(catalogue, &config);
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The handler is cleaning up and will exit with 130; a report of a
        // run cut short would only mislead.
        loop {
            std::thread::park();
        }
    }
    let mut code = report.exit_code();
    say_raw!("{}", report::human(&report));
    if let Some(path) = &args.json {
        code = code.max(write_report(
            path,
            report::json(&report).map_err(|e| e.to_string()),
        ));
    }
    if let Some(path) = &args.junit {
        code = code.max(write_report(path, report::junit(&report)));
    }
    ExitCode::from(code)
}

/// Write one report file; 2 if it could not be written.
fn write_report(path: &Path, text: Result<String, String>) -> u8 {
    match text.and_then(|t| std::fs::write(path, t).map_err(|e| e.to_string())) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rvlf conform: cannot write {}: {e}", path.display());
            2
        }
    }
}

/// Remove the run's own scratch directories (`rvlf-conform-*`) and nothing else.
fn remove_scratch(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    let pid = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name.to_string_lossy().starts_with("rvlf-conform-")
            && std::fs::read_to_string(entry.path().join(".owner"))
                .is_ok_and(|owner| owner.trim() == pid.to_string());
        if ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
