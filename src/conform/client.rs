//! The harness side of the adapter protocol: start an adapter in its own
//! process group, read its `hello`, send one request at a time and wait for
//! the reply with a deadline, and tell a hang from a crash from garbage.
//! Stopping an adapter sends TERM to its group, then KILL, and reaps it.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::wire::{Command, Hello, HelloLine, Outcome, ReplyLine, RequestLine, PROTOCOL};

/// Longest line an adapter may print; a longer one is garbage.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a stopped adapter gets between TERM and KILL.
pub const TERM_GRACE: Duration = Duration::from_millis(300);

/// How to start one adapter process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// A shell command line, run with `sh -c`.
    pub command: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Run as this user and group (when the harness is root).
    pub user: Option<(u32, u32)>,
    /// Argument vector placed before `sh -c COMMAND` (e.g. a namespace wrapper).
    pub wrapper: Vec<String>,
}

impl Spec {
    pub fn new(command: impl Into<String>) -> Self {
        Spec {
            command: command.into(),
            env: Vec::new(),
            user: None,
            wrapper: Vec::new(),
        }
    }
}

/// What went wrong with the adapter process itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("cannot start the adapter: {0}")]
    Spawn(String),
    #[error("no reply within {0:?}")]
    Hang(Duration),
    #[error("the adapter exited ({status}){}", stderr_note(stderr))]
    Crash { status: String, stderr: String },
    #[error("the adapter printed something that is not a reply: {line:?}")]
    Garbage { line: String },
    #[error("bad hello: {0}")]
    Handshake(String),
}

fn stderr_note(stderr: &str) -> String {
    let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr: {tail}")
    }
}

/// A line from the adapter's stdout, or the end of it.
enum Line {
    Text(String),
    TooLong(String),
    Eof,
}

/// Process groups of every adapter still running, so that an interrupted run
/// can stop them all (see [`stop_all`]).
fn live_groups() -> &'static Mutex<BTreeSet<i32>> {
    static GROUPS: OnceLock<Mutex<BTreeSet<i32>>> = OnceLock::new();
    GROUPS.get_or_init(|| Mutex::new(BTreeSet::new()))
}

/// Set once [`stop_all`] ran: no adapter may start after it.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Kill every adapter process group this process started, and refuse to
/// start new ones (for Ctrl-C).
pub fn stop_all() {
    let mut groups = match live_groups().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    STOPPING.store(true, Ordering::SeqCst);
    for g in groups.iter() {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    groups.clear();
}

/// A running adapter.
pub struct Adapter {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<String>>,
    pub hello: Hello,
    next_id: u64,
    /// Set once the adapter misbehaved: it must not be reused.
    pub broken: bool,
}

impl Adapter {
    /// Start the adapter and wait up to `timeout` for its `hello`.
    pub fn spawn(spec: &Spec, timeout: Duration) -> Result<Adapter, Fault> {
        let mut argv: Vec<String> = spec.wrapper.clone();
        argv.extend(["sh".to_string(), "-c".to_string(), spec.command.clone()]);
        let mut process = Process::new(&argv[0]);
        process
            .args(&argv[1..])
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some((uid, gid)) = spec.user {
            process.uid(uid).gid(gid);
        }
        let mut child = process
            .spawn()
            .map_err(|e| Fault::Spawn(format!("{}: {e}", argv.join(" "))))?;
        {
            // Registered under the same lock stop_all takes: either stop_all
            // sees this group, or this spawn sees that it is stopping.
            let mut groups = match live_groups().lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if STOPPING.load(Ordering::SeqCst) {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                return Err(Fault::Spawn("interrupted".into()));
            }
            groups.insert(child.id() as i32);
        }
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || read_lines(out, tx));
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(err) = stderr_pipe {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || collect_stderr(err, sink));
        }
        let stdin = child.stdin.take();
        let mut adapter = Adapter {
            child,
            stdin,
            lines,
            stderr,
            hello: Hello {
                protocol: String::new(),
                implementation: String::new(),
                version: String::new(),
                pid: 0,
                features: Vec::new(),
            },
            next_id: 1,
            broken: false,
        };
        let line = adapter.next_line(timeout)?;
        let hello: HelloLine = serde_json::from_str(&line).map_err(|e| {
            adapter.broken = true;
            Fault::Handshake(format!("{e}: {line:?}"))
        })?;
        if major(&hello.hello.protocol) != major(PROTOCOL) {
            adapter.broken = true;
            return Err(Fault::Handshake(format!(
                "protocol {:?}, this harness speaks {PROTOCOL}",
                hello.hello.protocol
            )));
        }
        adapter.hello = hello.hello;
        Ok(adapter)
    }

    /// True when `hello` claimed the optional feature.
    pub fn claims(&self, feature: &str) -> bool {
        self.hello.features.iter().any(|f| f == feature)
    }

    /// Send one request and wait up to `timeout` for its reply.
    pub fn call(&mut self, command: Command, timeout: Duration) -> Result<Outcome, Fault> {
        if self.broken {
            return Err(Fault::Garbage {
                line: "(adapter already failed)".into(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::to_string(&RequestLine { id, command })
            .map_err(|e| Fault::Spawn(format!("cannot encode a request: {e}")))?;
        text.push('\n');
        let sent = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        if sent.is_err() {
            return Err(self.crashed());
        }
        let line = self.next_line(timeout)?;
        match serde_json::from_str::<ReplyLine>(&line) {
            Ok(reply) if reply.id == id => Ok(reply.outcome),
            _ => {
                self.broken = true;
                Err(Fault::Garbage { line })
            }
        }
    }

    /// Read the adapter's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The adapter's process id (its process group id too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn next_line(&mut self, timeout: Duration) -> Result<String, Fault> {
        match self.lines.recv_timeout(timeout) {
            Ok(Line::Text(line)) => Ok(line),
            Ok(Line::TooLong(start)) => {
                self.broken = true;
                Err(Fault::Garbage {
                    line: format!("{start}... (more than {MAX_LINE} bytes)"),
                })
            }
            Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => Err(self.crashed()),
            Err(RecvTimeoutError::Timeout) => {
                self.broken = true;
                self.stop();
                Err(Fault::Hang(timeout))
            }
        }
    }

    fn crashed(&mut self) -> Fault {
        self.broken = true;
        let status = self.stop();
        Fault::Crash {
            status: status.map_or("status unknown".to_string(), |s| s.to_string()),
            stderr: self.stderr(),
        }
    }

    /// Close stdin, then TERM the process group, then KILL it, and reap the child.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        drop(self.stdin.take());
        let group = Pid::from_raw(self.child.id() as i32);
        let status = match self.child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => {
                let _ = killpg(group, Signal::SIGTERM);
                wait_for(&mut self.child, TERM_GRACE).or_else(|| {
                    let _ = killpg(group, Signal::SIGKILL);
                    self.child.wait().ok()
                })
            }
        };
        // Whatever the leader did, nothing of its group may outlive it.
        let _ = killpg(group, Signal::SIGKILL);
        if let Ok(mut groups) = live_groups().lock() {
            groups.remove(&group.as_raw());
        }
        status
    }

    /// End the adapter politely: close its stdin and give it a moment to exit.
    pub fn finish(mut self) -> Option<ExitStatus> {
        drop(self.stdin.take());
        let status = wait_for(&mut self.child, TERM_GRACE);
        let rest = self.stop();
        status.or(rest)
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + grace;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn major(protocol: &str) -> &str {
    protocol.split('.').next().unwrap_or(protocol)
}

fn read_lines(out: impl Read, tx: mpsc::Sender<Line>) {
    let mut reader = BufReader::new(out);
    loop {
        let mut buf = Vec::new();
        let limit = (MAX_LINE + 1) as u64;
        match reader.by_ref().take(limit).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Line::Eof);
                return;
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf).trim_end().to_string();
                let line = if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
                    Line::TooLong(text.chars().take(80).collect())
                } else {
                    Line::Text(text)
                };
                let too_long = matches!(line, Line::TooLong(_));
                if tx.send(line).is_err() || too_long {
                    return;
                }
            }
        }
    }
}

fn collect_stderr(err: impl Read, sink: Arc<Mutex<String>>) {
    let reader = BufReader::new(err);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        if let Ok(mut s) = sink.lock() {
            // Keep the last 16 KiB: enough to explain a crash.
            s.push_str(&line);
            s.push('\n');
            if s.len() > 16 * 1024 {
                let cut = s.len() - 16 * 1024;
                let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(0);
                s.drain(..cut);
            }
        }
    }
}
