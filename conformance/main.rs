//! `cargo test --test conformance`: the conformance catalogue as ordinary
//! test trials, so that `cargo test` fails when the reference or the Python
//! adapter breaks a requirement, and a single case can be re-run by name
//! (`cargo test --test conformance -- reference::layout::magic`).
//!
//! - `<adapter>::<case id>`, for each adapter (`reference`: `rvlf adapter`;
//!   `python`: conformance/adapters/python/rvlf_adapter.py) and each case:
//!   runs that one case and passes when its verdict is PASS or SKIP (the
//!   reason is printed). The Python trials are ignored, with the reason, only
//!   when python3 or the adapter file is missing.
//! - `mutants::every-mutant-is-caught`: runs the MUST cases against every
//!   mutant (`rvlf adapter --mutant NAME`), prints which cases caught which
//!   mutant, and fails naming each mutant that no MUST case caught.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use rvlf::conform::case::{Level, Target, Timeouts, Verdict};
use rvlf::conform::cases;
use rvlf::conform::client::Spec;
use rvlf::conform::runner::{self, Config, Expectations, Report, Selection};
use rvlf::variant;

/// The rvlf binary cargo built for this test.
const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");

/// Request deadline of the per-case trials: generous, they prove correctness.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Request deadline against mutants: a mutant that hangs (blocking reads of a
/// FIFO) costs this much per hanging request.
const MUTANT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// An implementation under test, or why it cannot be run here.
#[derive(Clone)]
struct Adapter {
    name: &'static str,
    command: Result<String, String>,
}

fn main() {
    let args = Arguments::from_args();
    let adapters = [reference_adapter(), python_adapter()];
    for a in &adapters {
        if let Err(why) = &a.command {
            eprintln!(
                "conformance: the {} adapter's trials are ignored: {why}",
                a.name
            );
        }
    }
    let ids: Vec<String> = cases::catalogue().into_iter().map(|c| c.id).collect();
    // The mutant trial is by far the longest: first, so that the other
    // trials run beside it rather than after it.
    let mut trials = vec![Trial::test(
        "mutants::every-mutant-is-caught",
        every_mutant_is_caught,
    )];
    trials.extend(
        adapters
            .iter()
            .flat_map(|a| ids.iter().map(move |id| case_trial(a.clone(), id.clone()))),
    );
    libtest_mimic::run(&args, trials).exit();
}

/// A shell word for `sh -c`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn reference_command(mutant: Option<&str>) -> String {
    match mutant {
        None => format!("{} adapter", quote(RVLF)),
        Some(m) => format!("{} adapter --mutant {}", quote(RVLF), quote(m)),
    }
}

fn reference_adapter() -> Adapter {
    Adapter {
        name: "reference",
        command: Ok(reference_command(None)),
    }
}

fn python_adapter() -> Adapter {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/adapters/python/rvlf_adapter.py");
    Adapter {
        name: "python",
        command: python_command(&script),
    }
}

/// `<python3> -S <script>`, or why that cannot run on this machine. The
/// interpreter is named by its absolute path: the system's own where there is
/// one (cases that run the adapter as another user need an interpreter that
/// user may execute, which one under a home directory may not be), else
/// `sys.executable`, so that a version-manager shim standing in for `python3`
/// is not paid for at every adapter start. `-S` skips the `site` module (and
/// with it every installed package), which also proves the adapter needs only
/// the standard library.
fn python_command(script: &Path) -> Result<String, String> {
    if !script.is_file() {
        return Err(format!("{} does not exist", script.display()));
    }
    let script_text = script
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", script.display()))?;
    if Path::new(SYSTEM_PYTHON).is_file() {
        return Ok(format!("{SYSTEM_PYTHON} -S {}", quote(script_text)));
    }
    let found = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("python3 is not available: {e}"))?;
    if !found.status.success() {
        return Err(format!("`python3` does not run ({})", found.status));
    }
    let interpreter = String::from_utf8_lossy(&found.stdout).trim().to_string();
    let interpreter = if interpreter.is_empty() {
        "python3".to_string()
    } else {
        interpreter
    };
    Ok(format!("{} -S {}", quote(&interpreter), quote(script_text)))
}

/// Debian's interpreter, executable by every user.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

fn config(adapter: &str, selection: Selection, jobs: usize, request: Duration) -> Config {
    Config {
        target: Target {
            adapter: Spec::new(adapter),
            reference: Spec::new(reference_command(None)),
        },
        selection,
        jobs,
        timeouts: Timeouts {
            request,
            case: CASE_TIMEOUT,
        },
        global: Duration::from_secs(600),
        expectations: Expectations::default(),
        scratch: std::env::temp_dir(),
    }
}

/// The trial `<adapter>::<id>`.
fn case_trial(adapter: Adapter, id: String) -> Trial {
    let name = format!("{}::{id}", adapter.name);
    Trial::ignorable_test(name, move || match &adapter.command {
        Err(why) => Ok(Completion::ignored_with(why)),
        Ok(command) => run_one(command, &id).map(|()| Completion::Completed),
    })
}

/// Run case `id` alone against `command`; Ok on PASS or SKIP.
fn run_one(command: &str, id: &str) -> Result<(), Failed> {
    let selection = Selection {
        run: vec![id.to_string()],
        ..Selection::default()
    };
    let report = runner::run(
        cases::catalogue(),
        &config(command, selection, 1, REQUEST_TIMEOUT),
    );
    if !report.errors.is_empty() {
        return Err(format!("the run failed: {}", report.errors.join("; ")).into());
    }
    let [result] = report.results.as_slice() else {
        return Err(format!("expected 1 result for {id}, got {}", report.results.len()).into());
    };
    match result.verdict {
        Verdict::Pass => Ok(()),
        Verdict::Skip => {
            eprintln!("{id}: SKIP: {}", result.detail);
            Ok(())
        }
        verdict => Err(format!(
            "{} ({} {}): {}\n  requirement: {}\n  expected: {}",
            verdict.label(),
            result.level,
            result.section,
            result.detail,
            result.requirement,
            result.expected
        )
        .into()),
    }
}

/// What the MUST cases made of one mutant.
struct Catch {
    mutant: &'static str,
    /// `(case id, verdict)` of every MUST case that did not pass.
    caught_by: Vec<(String, Verdict)>,
    /// Harness or start-up errors, shown next to the mutant in the table.
    errors: Vec<String>,
    seconds: f64,
}

fn try_mutant(name: &'static str) -> Catch {
    let selection = Selection {
        level: Some(Level::Must),
        ..Selection::default()
    };
    let report: Report = runner::run(
        cases::catalogue(),
        &config(
            &reference_command(Some(name)),
            selection,
            2,
            MUTANT_REQUEST_TIMEOUT,
        ),
    );
    let mut errors = report.errors.clone();
    errors.extend(
        report
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::Error)
            .map(|r| format!("{}: ERROR: {}", r.id, r.detail)),
    );
    Catch {
        mutant: name,
        caught_by: report
            .results
            .iter()
            .filter(|r| r.verdict.fails(r.level))
            .map(|r| (r.id.clone(), r.verdict))
            .collect(),
        errors,
        seconds: report.seconds,
    }
}

/// The table `mutant → cases that caught it (verdicts)`.
fn table(catches: &[Catch]) -> String {
    let width = catches.iter().map(|c| c.mutant.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in catches {
        let cases = if c.caught_by.is_empty() {
            "NOT CAUGHT".to_string()
        } else {
            c.caught_by
                .iter()
                .map(|(id, v)| format!("{id} ({})", v.label()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "{:<width$} → {cases}  [{:.1} s]\n",
            c.mutant, c.seconds
        ));
        for e in &c.errors {
            out.push_str(&format!("{:<width$}   harness: {e}\n", ""));
        }
    }
    out
}

/// Every mutant fails at least one MUST case.
fn every_mutant_is_caught() -> Result<(), Failed> {
    let started = Instant::now();
    let catches: Vec<Catch> = variant::BROKEN.iter().map(|m| try_mutant(m.name)).collect();
    println!(
        "mutant → MUST cases that caught it (verdicts)\n{}all {} mutants in {:.1} s",
        table(&catches),
        catches.len(),
        started.elapsed().as_secs_f64()
    );
    let uncaught: Vec<String> = catches
        .iter()
        .filter(|c| c.caught_by.is_empty())
        .map(|c| match c.errors.as_slice() {
            [] => c.mutant.to_string(),
            errors => format!("{} (harness errors: {})", c.mutant, errors.join("; ")),
        })
        .collect();
    if uncaught.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no MUST case caught {} of {} mutants: {}",
            uncaught.len(),
            catches.len(),
            uncaught.join(", ")
        )
        .into())
    }
}
