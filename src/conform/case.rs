//! What a conformance case is, what it can do while it runs (its [`Ctx`]),
//! and how its result becomes a verdict.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::client::{Adapter, Exchange, Fault, Spec};
use super::wire::{Command, Outcome};

/// How strongly PROTOCOL.md requires what a case checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "MUST" => Ok(Level::Must),
            "SHOULD" => Ok(Level::Should),
            "MAY" => Ok(Level::May),
            _ => Err(format!("level {s:?}: MUST, SHOULD or MAY")),
        }
    }
}

/// The verdict on one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Verdict {
    Pass,
    /// A MUST requirement was not met.
    Fail,
    /// A SHOULD or MAY requirement was not met.
    NonStrict,
    /// Not run: a feature not claimed, or something this machine cannot do.
    Skip,
    /// The adapter answered `unimplemented`.
    Unimplemented,
    /// The adapter did not answer in time.
    Hang,
    /// The adapter exited or printed something that is not a reply.
    Crash,
    /// The harness itself failed; says nothing about the implementation.
    Error,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NonStrict => "NON-STRICT",
            Verdict::Skip => "SKIP",
            Verdict::Unimplemented => "UNIMPLEMENTED",
            Verdict::Hang => "HANG",
            Verdict::Crash => "CRASH",
            Verdict::Error => "ERROR",
        }
    }

    /// True for verdicts that count against the implementation at this level.
    pub fn fails(self, level: Level) -> bool {
        match self {
            Verdict::Fail | Verdict::Hang | Verdict::Crash | Verdict::Unimplemented => {
                level == Level::Must
            }
            _ => false,
        }
    }
}

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The requirement was not met: what was expected and what happened.
    Fail(String),
    Skip(String),
    Unimplemented(String),
    Hang(String),
    Crash(String),
    /// The harness could not do its part (a tempdir, a fork, ...).
    Harness(String),
}

impl Problem {
    pub fn verdict(&self, level: Level) -> Verdict {
        match self {
            Problem::Fail(_) if level == Level::Must => Verdict::Fail,
            Problem::Fail(_) => Verdict::NonStrict,
            Problem::Skip(_) => Verdict::Skip,
            Problem::Unimplemented(_) => Verdict::Unimplemented,
            Problem::Hang(_) => Verdict::Hang,
            Problem::Crash(_) => Verdict::Crash,
            Problem::Harness(_) => Verdict::Error,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Problem::Fail(s)
            | Problem::Skip(s)
            | Problem::Unimplemented(s)
            | Problem::Hang(s)
            | Problem::Crash(s)
            | Problem::Harness(s) => s,
        }
    }

    /// A fault of an adapter process as a case's problem.
    pub fn from_fault(fault: Fault, what: &str) -> Problem {
        match fault {
            Fault::Hang(d) => Problem::Hang(format!("{what}: no reply within {d:?}")),
            Fault::Spawn(e) => Problem::Harness(format!("{what}: {e}")),
            other => Problem::Crash(format!("{what}: {other}")),
        }
    }
}

/// Shorthand for a failed requirement.
pub fn fail<T>(message: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::Fail(message.into()))
}

/// `Err(Problem::Fail)` unless `condition`.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Problem> {
    if condition {
        Ok(())
    } else {
        Err(Problem::Fail(message()))
    }
}

/// Convert a harness-side I/O error into a harness problem.
pub fn harness<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> Problem + '_ {
    move |e| Problem::Harness(format!("{what}: {e}"))
}

pub type CaseFn = dyn Fn(&mut Ctx) -> Result<(), Problem> + Send + Sync;

/// One case of the catalogue.
pub struct Case {
    /// Stable id, `section::name`.
    pub id: String,
    /// The PROTOCOL.md section it tests, e.g. "§3.1".
    pub section: &'static str,
    pub level: Level,
    /// The requirement, in one sentence.
    pub requirement: String,
    /// The outcome the implementation must produce.
    pub expected: String,
    /// Runs alone (no other case at the same time): contention and timing.
    pub exclusive: bool,
    pub run: Box<CaseFn>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("level", &self.level)
            .finish()
    }
}

/// The implementation under test and the reference, as adapter start-up specs.
#[derive(Debug, Clone)]
pub struct Target {
    pub adapter: Spec,
    pub reference: Spec,
}

/// Adapters kept alive between cases, one per worker at most.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Adapter>>,
}

impl Pool {
    fn take(&self) -> Option<Adapter> {
        self.idle.lock().ok()?.pop()
    }

    pub fn put(&self, adapter: Adapter) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(adapter);
        }
    }

    /// Stop every idle adapter.
    pub fn drain(&self) {
        let adapters: Vec<Adapter> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        for a in adapters {
            a.finish();
        }
    }
}

/// How much of each adapter's stderr a case's report keeps (its end).
pub const STDERR_REPORTED: usize = 4 * 1024;

/// Timeouts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub request: Duration,
    pub case: Duration,
}

/// What a running case can use.
pub struct Ctx {
    /// A scratch directory of this case's own; removed afterwards.
    pub dir: PathBuf,
    pub target: Target,
    pub timeouts: Timeouts,
    started: Instant,
    pool: Arc<Pool>,
    main: Option<Adapter>,
    /// Dedicated adapters this case started; stopped when it ends.
    extra: Vec<Adapter>,
}

impl Ctx {
    pub fn new(dir: PathBuf, target: Target, timeouts: Timeouts, pool: Arc<Pool>) -> Ctx {
        Ctx {
            dir,
            target,
            timeouts,
            started: Instant::now(),
            pool,
            main: None,
            extra: Vec::new(),
        }
    }

    /// The lock path cases use by default: `<dir>/data.rvf.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("data.rvf.lock")
    }

    /// A path inside this case's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Time left before this case's deadline.
    pub fn remaining(&self) -> Duration {
        self.timeouts.case.saturating_sub(self.started.elapsed())
    }

    fn request_timeout(&self) -> Result<Duration, Problem> {
        let left = self.remaining();
        if left.is_zero() {
            return Err(Problem::Hang(format!(
                "the case did not finish within {:?}",
                self.timeouts.case
            )));
        }
        Ok(self.timeouts.request.min(left))
    }

    /// The implementation's main adapter for this case (kept between cases
    /// while it behaves).
    pub fn adapter(&mut self) -> Result<&mut Adapter, Problem> {
        if self.main.is_none() {
            let adapter = match self.pool.take() {
                // What it printed while idle is this case's CRASH: it is the
                // case that next uses the adapter.
                Some(mut a) => match a.check_quiet() {
                    Ok(()) => a,
                    Err(f) => return Err(Problem::from_fault(f, "between cases")),
                },
                None => self.start(&self.target.adapter.clone())?,
            };
            self.main = Some(adapter);
        }
        self.main
            .as_mut()
            .ok_or_else(|| Problem::Harness("no adapter".into()))
    }

    /// The main adapter's `hello`.
    pub fn hello(&mut self) -> Result<super::wire::Hello, Problem> {
        Ok(self.adapter()?.hello.clone())
    }

    /// Start a dedicated adapter of the implementation, with `spec` adjusted
    /// (environment, user, namespace wrapper). Returns its index for [`Ctx::call_on`].
    pub fn spawn_with(&mut self, adjust: impl FnOnce(&mut Spec)) -> Result<usize, Problem> {
        let mut spec = self.target.adapter.clone();
        adjust(&mut spec);
        let adapter = self.start(&spec)?;
        self.extra.push(adapter);
        Ok(self.extra.len() - 1)
    }

    /// Start a dedicated adapter of the reference implementation.
    pub fn spawn_reference(&mut self) -> Result<usize, Problem> {
        let spec = self.target.reference.clone();
        let adapter = self.start(&spec)?;
        self.extra.push(adapter);
        Ok(self.extra.len() - 1)
    }

    /// A dedicated adapter started by this case.
    pub fn extra(&mut self, index: usize) -> Result<&mut Adapter, Problem> {
        self.extra
            .get_mut(index)
            .ok_or_else(|| Problem::Harness(format!("no adapter #{index}")))
    }

    fn start(&self, spec: &Spec) -> Result<Adapter, Problem> {
        let timeout = self.request_timeout()?;
        Adapter::spawn(spec, timeout).map_err(|f| match f {
            Fault::Handshake(e) => Problem::Crash(format!("adapter start-up: {e}")),
            other => Problem::from_fault(other, "adapter start-up"),
        })
    }

    /// Send `command` to the main adapter.
    pub fn call(&mut self, command: Command) -> Result<Outcome, Problem> {
        let timeout = self.request_timeout()?;
        let what = verb(&command);
        let adapter = self.adapter()?;
        adapter
            .call(command, timeout)
            .map_err(|f| Problem::from_fault(f, &what))
    }

    /// Send `command` to dedicated adapter `index`.
    pub fn call_on(&mut self, index: usize, command: Command) -> Result<Outcome, Problem> {
        let timeout = self.request_timeout()?;
        let what = verb(&command);
        self.extra(index)?
            .call(command, timeout)
            .map_err(|f| Problem::from_fault(f, &what))
    }

    /// Ask the main adapter to try-acquire `path`.
    pub fn try_acquire(&mut self, path: &Path) -> Result<Outcome, Problem> {
        self.call(Command::TryAcquire {
            path: path_str(path)?,
        })
    }

    /// Ask the main adapter to release `path`.
    pub fn release(&mut self, path: &Path) -> Result<Outcome, Problem> {
        self.call(Command::Release {
            path: path_str(path)?,
        })
    }

    /// What the adapters this case used were sent and replied (main adapter
    /// first, the last [`super::client::MAX_EXCHANGES`] of each), and the
    /// tails of their stderr (the last [`STDERR_REPORTED`] bytes of each,
    /// labelled when there are several): for the report of a case that did
    /// not pass. Forgets the exchanges, so that a pooled adapter starts the
    /// next case with none.
    pub fn trace(&mut self) -> (Vec<Exchange>, String) {
        let mut exchanges = Vec::new();
        let mut tails = Vec::new();
        for a in self.main.iter_mut().chain(self.extra.iter_mut()) {
            exchanges.extend(a.take_exchanges());
            let stderr = a.stderr();
            let mut start = stderr.len().saturating_sub(STDERR_REPORTED);
            while !stderr.is_char_boundary(start) {
                start += 1;
            }
            tails.push((a.pid(), stderr[start..].to_string()));
        }
        tails.retain(|(_, t)| !t.is_empty());
        let stderr = match tails.as_slice() {
            [(_, only)] => only.clone(),
            _ => tails
                .iter()
                .map(|(pid, t)| format!("--- adapter pid {pid} ---\n{t}"))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        (exchanges, stderr)
    }

    /// Stop the case's dedicated adapters; return the main one to the pool
    /// unless it hung, crashed or spoke garbage. An adapter that printed
    /// something after its last reply, or exited, is a CRASH of this case,
    /// returned here, and is not reused.
    pub fn finish(mut self) -> Option<Problem> {
        let mut crash = None;
        let mut quiet = |a: &mut Adapter| {
            if let (false, Err(f)) = (a.broken, a.check_quiet()) {
                crash.get_or_insert(Problem::from_fault(f, "after its last reply"));
            }
        };
        for mut a in self.extra.drain(..) {
            quiet(&mut a);
            a.finish();
        }
        if let Some(mut main) = self.main.take() {
            quiet(&mut main);
            if !main.broken {
                self.pool.put(main);
            } else {
                main.finish();
            }
        }
        crash
    }
}

/// The path as the UTF-8 string the wire carries.
pub fn path_str(path: &Path) -> Result<String, Problem> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| Problem::Harness(format!("{} is not UTF-8", path.display())))
}

fn verb(command: &Command) -> String {
    match command {
        Command::TryAcquire { .. } => "try-acquire",
        Command::Release { .. } => "release",
        Command::Encode { .. } => "encode",
        Command::Decode { .. } => "decode",
        Command::Judge(_) => "judge",
    }
    .to_string()
}
