//! Runs a selection of the catalogue against one implementation: independent
//! cases in parallel (rayon), exclusive ones alone afterwards, each in its own
//! scratch directory, with per-request, per-case and global deadlines; then
//! applies the expectations file and decides the exit status.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use super::case::{Case, Ctx, Level, Pool, Problem, Target, Timeouts, Verdict};
use super::client::{Adapter, Exchange};
use super::scratch;
use super::wire::Hello;

/// Which cases to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Globs (`*`, `?`) over case ids; empty means all.
    pub run: Vec<String>,
    /// Globs over case ids to leave out.
    pub skip: Vec<String>,
    /// Run only cases at least this strict (MUST < SHOULD < MAY).
    pub level: Option<Level>,
}

impl Selection {
    pub fn includes(&self, case: &Case) -> bool {
        (self.run.is_empty() || self.run.iter().any(|g| glob(g, &case.id)))
            && !self.skip.iter().any(|g| glob(g, &case.id))
            && self.level.is_none_or(|l| case.level <= l)
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Known failures of an implementation: `<case-id> <reason>` per line, `#` comments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub known: BTreeMap<String, String>,
}

impl Expectations {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut known = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(format!("line {}: `{id}` needs a reason after it", n + 1));
            }
            if known.insert(id.to_string(), reason.to_string()).is_some() {
                return Err(format!("line {}: `{id}` is listed twice", n + 1));
            }
        }
        Ok(Expectations { known })
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub selection: Selection,
    pub jobs: usize,
    pub timeouts: Timeouts,
    /// The whole run's deadline; cases not started by then are not run.
    pub global: Duration,
    pub expectations: Expectations,
    /// Where the scratch directories go (a fresh directory is made inside).
    pub scratch: PathBuf,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub section: String,
    pub level: Level,
    pub requirement: String,
    pub expected: String,
    pub verdict: Verdict,
    /// What happened, when it was not a pass.
    pub detail: String,
    pub seconds: f64,
    /// The reason given in the expectations file, when the case is listed there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_failure: Option<String>,
    /// The end of the stderr of the adapters the case used; only when it
    /// did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// The requests the case sent and the replies it got (bounded, see
    /// [`super::client::MAX_EXCHANGES`]); only when it did not pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchanges: Option<Vec<Exchange>>,
}

impl CaseResult {
    /// Counts against the implementation: a failure not expected, or an
    /// expected failure that did not happen (the expectations are stale).
    pub fn counts_as_failure(&self) -> bool {
        match &self.known_failure {
            None => self.verdict.fails(self.level),
            Some(_) => self.verdict == Verdict::Pass,
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub implementation: Option<Hello>,
    pub results: Vec<CaseResult>,
    pub seconds: f64,
    /// Problems of the harness or of the adapter's start-up: the run says
    /// nothing about the implementation when there are any.
    pub errors: Vec<String>,
    /// Ids in the expectations file that no selected case has.
    pub unknown_expectations: Vec<String>,
    /// When the run started, UTC, RFC 3339 (`2025-01-31T12:00:00Z`).
    pub started: String,
    /// The adapter command line that was tested.
    pub adapter: String,
    /// The whole catalogue the selection was taken from.
    pub catalogue: CatalogueId,
}

/// What identifies a catalogue: its size and a hash of its cases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogueId {
    /// Number of cases in the whole catalogue, selected or not.
    pub cases: usize,
    /// `sha256:<hex>`, see [`super::report::catalogue_hash`].
    pub hash: String,
}

impl Report {
    /// 0: no MUST case failed; 1: one did (or an expectation is stale);
    /// 2: the harness or the adapter's start-up failed, or nothing ran.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty()
            || self.results.is_empty()
            || self.results.iter().any(|r| r.verdict == Verdict::Error)
        {
            2
        } else if self.results.iter().any(CaseResult::counts_as_failure) {
            1
        } else {
            0
        }
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.results.iter().filter(|r| r.verdict == verdict).count()
    }
}

/// Run the selected cases of `catalogue`.
pub fn run(catalogue: Vec<Case>, config: &Config) -> Report {
    let started = Instant::now();
    let mut report = Report {
        started: super::report::rfc3339(std::time::SystemTime::now()),
        adapter: config.target.adapter.command.clone(),
        catalogue: CatalogueId {
            cases: catalogue.len(),
            hash: super::report::catalogue_hash(&catalogue),
        },
        ..Report::default()
    };
    let cases: Vec<Case> = catalogue
        .into_iter()
        .filter(|c| config.selection.includes(c))
        .collect();
    report.unknown_expectations = config
        .expectations
        .known
        .keys()
        .filter(|id| !cases.iter().any(|c| &c.id == *id))
        .cloned()
        .collect();
    if cases.is_empty() {
        report.errors.push("no case matches the selection".into());
        return report;
    }
    let root = match scratch::Root::create(&config.scratch) {
        Ok(root) => root,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    // The adapter must start and say hello before anything is judged.
    let pool = Arc::new(Pool::default());
    match Adapter::spawn(&config.target.adapter, config.timeouts.request) {
        Ok(adapter) => {
            report.implementation = Some(adapter.hello.clone());
            pool.put(adapter);
        }
        Err(fault) => {
            report.errors.push(format!(
                "the adapter `{}` did not start: {fault}",
                config.target.adapter.command
            ));
            return report;
        }
    }

    // Cases keep their catalogue index so that results come back in order.
    type Indexed<'a> = Vec<(usize, &'a Case)>;
    let (exclusive, parallel): (Indexed, Indexed) =
        cases.iter().enumerate().partition(|(_, c)| c.exclusive);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(config.jobs.max(1))
        .build();
    let one =
        |(i, case): &(usize, &Case)| (*i, run_case(case, config, root.path(), &pool, started));
    let mut results: Vec<(usize, CaseResult)> = match workers {
        Ok(workers) => workers.install(|| parallel.par_iter().map(one).collect()),
        Err(_) => parallel.iter().map(one).collect(),
    };
    results.extend(exclusive.iter().map(one));
    results.sort_by_key(|(i, _)| *i);
    pool.drain();
    report.results = results.into_iter().map(|(_, r)| r).collect();
    report.seconds = started.elapsed().as_secs_f64();
    report
}

fn run_case(
    case: &Case,
    config: &Config,
    root: &Path,
    pool: &Arc<Pool>,
    run_started: Instant,
) -> CaseResult {
    let started = Instant::now();
    let mut result = CaseResult {
        id: case.id.clone(),
        section: case.section.to_string(),
        level: case.level,
        requirement: case.requirement.clone(),
        expected: case.expected.clone(),
        verdict: Verdict::Pass,
        detail: String::new(),
        seconds: 0.0,
        known_failure: config.expectations.known.get(&case.id).cloned(),
        stderr_tail: None,
        exchanges: None,
    };
    let mut trace = (Vec::new(), String::new());
    let outcome = if run_started.elapsed() >= config.global {
        Err(Problem::Harness(format!(
            "not run: the global timeout of {:?} had passed",
            config.global
        )))
    } else {
        let name = case.id.replace("::", "--").replace(['/', ' '], "_");
        match scratch::case_dir(root, &name) {
            Err(e) => Err(Problem::Harness(format!("scratch directory: {e}"))),
            Ok(dir) => {
                let mut ctx = Ctx::new(
                    dir.clone(),
                    config.target.clone(),
                    config.timeouts,
                    Arc::clone(pool),
                );
                // Start (or take) the adapter before the case sets its scene:
                // a start-up must not eat into the margins of timed cases.
                let outcome = ctx.adapter().map(|_| ()).and_then(|()| {
                    catch_unwind(AssertUnwindSafe(|| (case.run)(&mut ctx)))
                        .unwrap_or_else(|_| Err(Problem::Harness("the case panicked".into())))
                });
                trace = ctx.trace();
                let after = ctx.finish();
                let _ = scratch::remove(&dir);
                with_adapter_faults(outcome, after)
            }
        }
    };
    if let Err(problem) = outcome {
        result.verdict = problem.verdict(case.level);
        result.detail = problem.detail().to_string();
    }
    if result.known_failure.is_some() && result.verdict == Verdict::Pass {
        result.detail =
            "listed as a known failure, but passed: remove it from the expectations file".into();
    }
    if result.verdict != Verdict::Pass {
        result.exchanges = Some(trace.0);
        result.stderr_tail = Some(trace.1);
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// A case's outcome, once its adapters were checked at its end: output or an
/// exit after the last reply (`after`) is a CRASH of the case, whatever it
/// concluded, unless it already hung or crashed.
fn with_adapter_faults(
    outcome: Result<(), Problem>,
    after: Option<Problem>,
) -> Result<(), Problem> {
    match (outcome, after) {
        (Err(p @ (Problem::Hang(_) | Problem::Crash(_))), _) => Err(p),
        (_, Some(crash)) => Err(crash),
        (outcome, None) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_ids() {
        assert!(glob("layout::*", "layout::magic"));
        assert!(glob("*::magic", "layout::magic"));
        assert!(glob("layout::ma?ic", "layout::magic"));
        assert!(!glob("layout", "layout::magic"));
        assert!(!glob("*::pid", "layout::magic"));
        assert!(glob("*", ""));
    }

    #[test]
    fn output_after_the_last_reply_turns_any_verdict_but_hang_into_crash() {
        let crash = || Some(Problem::Crash("printed after its reply".into()));
        assert_eq!(
            with_adapter_faults(Ok(()), crash()),
            Err(Problem::Crash("printed after its reply".into()))
        );
        assert!(matches!(
            with_adapter_faults(Err(Problem::Fail("x".into())), crash()),
            Err(Problem::Crash(_))
        ));
        assert_eq!(
            with_adapter_faults(Err(Problem::Hang("h".into())), crash()),
            Err(Problem::Hang("h".into()))
        );
        assert_eq!(with_adapter_faults(Ok(()), None), Ok(()));
    }

    #[test]
    fn expectations_need_reasons_and_no_duplicates() {
        let e = Expectations::parse("# known\nlayout::magic writes RVLF\n\n").expect("parse");
        assert_eq!(
            e.known.get("layout::magic").map(String::as_str),
            Some("writes RVLF")
        );
        assert!(Expectations::parse("layout::magic\n").is_err());
        assert!(Expectations::parse("a x\na y\n").is_err());
    }
}
