//! The harness side of the adapter protocol: start an adapter, read its
//! `hello`, send one request at a time and wait for the reply with a
//! deadline, and tell a hang from a crash from garbage.
//!
//! - **Starting.** The adapter string runs as `sh -c STRING`, or as
//!   `sh -c 'exec STRING'` when it is one simple command naming a program
//!   ([`shell_line`]), so that no shell of the harness's making keeps a copy
//!   of the adapter's stdout: an adapter that closes its stdout is seen to
//!   do so at once, whatever `/bin/sh` is. It gets its own process group and
//!   is contained ([`contain`]): in a cgroup v2 of its own where one can be
//!   made, else under this process as a child subreaper.
//! - **Reading.** Nothing reads an adapter's stdout while no request (or the
//!   `hello`) is waiting for its answer. The thread that sent the request
//!   reads it with poll(2), into one buffer of at most [`MAX_LINE`] + 1
//!   bytes: a longer line is garbage as soon as that many bytes came without
//!   a newline. Memory per adapter is therefore bounded whatever it prints;
//!   an adapter that keeps printing between requests fills its pipe and
//!   blocks, and what it printed is found before the next request goes out
//!   ([`Adapter::check_quiet`]), when the next case takes the adapter, and
//!   when a case ends. stderr is drained by a thread into a 16 KiB tail.
//! - **Faults.** Output while no request waits (a second reply, a reply to a
//!   request not yet sent, anything), a reply with another id, garbage, a
//!   line too long, the end of stdout, the adapter's exit or a broken stdin
//!   are a [`Fault`] at once; no reply by the deadline is [`Fault::Hang`].
//!   The adapter is then stopped: its whole tree is killed, and it is never
//!   used again.
//! - **Stopping.** [`Adapter::finish`] closes stdin and gives the adapter
//!   [`TERM_GRACE`] to exit; [`Adapter::stop`] sends SIGTERM to every process
//!   of the tree, waits [`TERM_GRACE`] for the adapter, then kills the tree
//!   ([`contain::Tree::kill`]), reaps the adapter and removes its cgroup.
//!   [`stop_all`] kills every tree at once, for an interrupted run.

pub mod contain;

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::wire::{self, Command, Hello, Outcome, RequestLine};

/// Longest line an adapter may print, without its newline; a longer one is garbage.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a stopped adapter gets between TERM and KILL.
pub const TERM_GRACE: Duration = Duration::from_millis(300);
/// How much of an adapter's stderr is kept, to explain a crash.
pub const STDERR_TAIL: usize = 16 * 1024;
/// How many request/reply exchanges an adapter keeps for the report (the last ones).
pub const MAX_EXCHANGES: usize = 50;
/// Longest request or reply line kept in an [`Exchange`], in bytes.
pub const MAX_EXCHANGE_LINE: usize = 4 * 1024;
/// How often a wait for a reply looks whether the adapter has exited.
const EXIT_CHECK: Duration = Duration::from_millis(20);

/// How to start one adapter process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// A shell command line, run with `sh -c` (see [`shell_line`]).
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

    /// The argument vector that starts the adapter.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.wrapper.clone();
        argv.extend([
            "sh".to_string(),
            "-c".to_string(),
            shell_line(&self.command),
        ]);
        argv
    }
}

/// What went wrong with the adapter process itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("cannot start the adapter: {0}")]
    Spawn(String),
    #[error("no reply within {0:?}")]
    Hang(Duration),
    /// It exited, closed its stdout or its stdin; `what` says which and when.
    #[error("{what} ({status}){}", stderr_note(stderr))]
    Crash {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("the adapter printed something that is not a reply: {line:?}")]
    Garbage { line: String },
    /// A well-formed line at the wrong time: a reply with another id, or
    /// anything while no request was waiting for a reply.
    #[error("the adapter printed {line:?} {context}")]
    Unexpected { line: String, context: String },
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

/// Kill every adapter tree this process started (cgroups and adopted orphans
/// included), and refuse to start new ones: for an interrupted run. May be
/// called from any thread, e.g. one that runs after a signal was caught;
/// returns within about a second.
pub fn stop_all() {
    contain::stop_all();
}

/// The `sh -c` argument for an adapter command: `exec COMMAND` when COMMAND
/// is one simple command naming a program (no operator, no compound command,
/// no builtin or reserved word first, no assignment, expansion or
/// redirection in its first word), else COMMAND as it is. The shell then
/// becomes the adapter instead of waiting for it with a copy of its stdout
/// (dash does not replace itself by the last command of a `-c` string).
pub fn shell_line(command: &str) -> String {
    if is_simple_program(command) {
        format!("exec {command}")
    } else {
        command.to_string()
    }
}

/// Shell words that are not programs `exec` could run.
const SHELL_WORDS: [&str; 73] = [
    "!", "{", "}", "[[", "]]", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for",
    "function", "if", "in", "select", "then", "time", "until", "while", ".", ":", "[", "alias",
    "bg", "bind", "break", "builtin", "caller", "cd", "command", "compgen", "complete", "continue",
    "declare", "dirs", "disown", "echo", "enable", "eval", "exec", "exit", "export", "false", "fc",
    "fg", "getopts", "hash", "help", "jobs", "kill", "let", "local", "logout", "popd", "printf",
    "pushd", "pwd", "read", "readonly", "return", "set", "shift", "source", "test", "trap", "true",
    "type", "ulimit", "umask", "unset",
];

fn is_simple_program(command: &str) -> bool {
    // Index of the word being read; the first word's unquoted text.
    let (mut word, mut in_word, mut first) = (0usize, false, String::new());
    let mut quote: Option<char> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                } else if word == 0 {
                    first.push(c);
                }
                continue;
            }
            Some(_) => {
                match c {
                    '"' => quote = None,
                    '`' => return false,
                    '$' if word == 0 || chars.peek() == Some(&'(') => return false,
                    '\\' => match chars.next() {
                        Some(n) if word == 0 => first.push(n),
                        Some(_) => {}
                        None => return false,
                    },
                    _ if word == 0 => first.push(c),
                    _ => {}
                }
                continue;
            }
            None => {}
        }
        match c {
            ' ' | '\t' => {
                if in_word {
                    in_word = false;
                    word += 1;
                }
            }
            '\n' | '\r' | ';' | '&' | '|' | '(' | ')' | '{' | '}' | '`' => return false,
            '#' if !in_word => break,
            '\'' | '"' => {
                in_word = true;
                quote = Some(c);
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    None | Some('\n') => return false,
                    Some(n) if word == 0 => first.push(n),
                    Some(_) => {}
                }
            }
            '$' if word == 0 || chars.peek() == Some(&'(') => return false,
            '<' | '>' | '*' | '?' | '[' | '=' if word == 0 => return false,
            _ => {
                in_word = true;
                if word == 0 {
                    first.push(c);
                }
            }
        }
    }
    quote.is_none() && !first.is_empty() && !SHELL_WORDS.contains(&first.as_str())
}

/// One request line sent to an adapter and the reply line it gave (`None`
/// when none came: a hang, a crash), each cut to [`MAX_EXCHANGE_LINE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exchange {
    pub request: String,
    pub reply: Option<String>,
}

/// `line` cut to at most [`MAX_EXCHANGE_LINE`] bytes, on a character boundary.
fn bounded(line: &str) -> String {
    if line.len() <= MAX_EXCHANGE_LINE {
        return line.to_string();
    }
    let mut end = MAX_EXCHANGE_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &line[..end], line.len())
}

/// What reading one line gave.
enum Got {
    Line(String),
    /// [`MAX_LINE`] + 1 bytes without a newline; the start of them.
    TooLong(String),
    /// The end of stdout.
    Eof,
    /// The adapter process exited, and stdout holds no further line.
    Exited,
    Timeout,
}

/// What a crash looked like from here.
#[derive(Clone, Copy)]
enum Event {
    Eof,
    Exited,
    StdinBroken,
}

/// A running adapter.
pub struct Adapter {
    child: Child,
    io: Box<Pipes>,
    tree: Box<contain::Tree>,
    pub hello: Hello,
    next_id: u64,
    /// Set once the adapter misbehaved: it must not be reused.
    pub broken: bool,
    /// Set by the first stop: the exit status, and whether the adapter had
    /// exited before it was signalled.
    stopped: Option<(Option<ExitStatus>, bool)>,
    /// The last [`MAX_EXCHANGES`] requests and replies since [`Adapter::take_exchanges`].
    exchanges: VecDeque<Exchange>,
}

/// The harness's ends of an adapter's pipes.
struct Pipes {
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// Bytes read from stdout and not yet consumed: at most MAX_LINE + 1.
    buf: Vec<u8>,
    eof: bool,
    /// The tail of stderr, kept by `stderr_reader`.
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Adapter {
    /// Start the adapter and wait up to `timeout` for its `hello`.
    pub fn spawn(spec: &Spec, timeout: Duration) -> Result<Adapter, Fault> {
        let deadline = Instant::now() + timeout;
        let argv = spec.argv();
        let build = || {
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
            process
        };
        let (mut child, tree) =
            contain::spawn(build).map_err(|e| Fault::Spawn(format!("{}: {e}", argv.join(" "))))?;
        let (stdin, stdout, stderr_pipe) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = stderr_pipe.map(|err| {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || collect_stderr(err, sink))
        });
        let Some(stdout) = stdout else {
            let mut tree = tree;
            let group = child.id() as i32;
            tree.kill(Some(group), group);
            let _ = child.wait();
            tree.release();
            return Err(Fault::Spawn("the adapter's stdout is not a pipe".into()));
        };
        let _ = set_nonblocking(&stdout);
        if let Some(stdin) = &stdin {
            let _ = set_nonblocking(stdin);
        }
        let mut adapter = Adapter {
            child,
            io: Box::new(Pipes {
                stdin,
                stdout,
                buf: Vec::new(),
                eof: false,
                stderr,
                stderr_reader,
            }),
            tree: Box::new(tree),
            hello: Hello {
                protocol: String::new(),
                implementation: String::new(),
                version: String::new(),
                pid: 0,
                features: Vec::new(),
            },
            next_id: 1,
            broken: false,
            stopped: None,
            exchanges: VecDeque::new(),
        };
        let line = match adapter.read_line(deadline) {
            Got::Line(line) => line,
            Got::TooLong(start) => {
                return Err(adapter.fail(Fault::Handshake(format!(
                    "a line longer than {MAX_LINE} bytes: {start:?}..."
                ))))
            }
            Got::Eof => return Err(adapter.crashed(Event::Eof, "before its hello")),
            Got::Exited => return Err(adapter.crashed(Event::Exited, "before its hello")),
            Got::Timeout => return Err(adapter.fail(Fault::Hang(timeout))),
        };
        adapter.hello = match wire::parse_hello(&line) {
            Ok(hello) => hello,
            Err(why) => return Err(adapter.fail(Fault::Handshake(why))),
        };
        Ok(adapter)
    }

    /// True when `hello` claimed the optional feature.
    pub fn claims(&self, feature: &str) -> bool {
        self.hello.features.iter().any(|f| f == feature)
    }

    /// Send one request and wait up to `timeout` for its reply.
    pub fn call(&mut self, command: Command, timeout: Duration) -> Result<Outcome, Fault> {
        // Anything printed since the last reply came before this request.
        self.check_quiet()?;
        let deadline = Instant::now() + timeout;
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::to_string(&RequestLine { id, command })
            .map_err(|e| Fault::Spawn(format!("cannot encode a request: {e}")))?;
        if self.exchanges.len() == MAX_EXCHANGES {
            self.exchanges.pop_front();
        }
        self.exchanges.push_back(Exchange {
            request: bounded(&text),
            reply: None,
        });
        text.push('\n');
        match self.send(text.as_bytes(), deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(self.fail(Fault::Hang(timeout)))
            }
            Err(_) => {
                return Err(
                    self.crashed(Event::StdinBroken, &format!("before request {id} was sent"))
                )
            }
        }
        let line = match self.read_line(deadline) {
            Got::Line(line) => {
                if let Some(last) = self.exchanges.back_mut() {
                    last.reply = Some(bounded(&line));
                }
                line
            }
            Got::TooLong(start) => {
                if let Some(last) = self.exchanges.back_mut() {
                    last.reply = Some(format!("{start}... (more than {MAX_LINE} bytes)"));
                }
                return Err(self.fail(Fault::Garbage {
                    line: format!("{start}... (more than {MAX_LINE} bytes)"),
                }));
            }
            Got::Eof => {
                return Err(self.crashed(Event::Eof, &format!("before replying to request {id}")))
            }
            Got::Exited => {
                return Err(self.crashed(Event::Exited, &format!("before replying to request {id}")))
            }
            Got::Timeout => return Err(self.fail(Fault::Hang(timeout))),
        };
        match wire::parse_reply(&line) {
            Ok(reply) if reply.id == id => Ok(reply.outcome),
            Ok(_) => {
                let context = format!("while request {id} was waiting for its reply");
                Err(self.fail(Fault::Unexpected { line, context }))
            }
            Err(_) => Err(self.fail(Fault::Garbage { line })),
        }
    }

    /// Check that the adapter printed nothing and is still running, now that
    /// no request waits for a reply: anything on its stdout (a second reply,
    /// a reply to a request not yet sent), the end of it, or its exit is a
    /// fault, and the adapter is stopped. The harness checks before each
    /// request, when a case takes an adapter kept from an earlier one, and
    /// when a case ends.
    pub fn check_quiet(&mut self) -> Result<(), Fault> {
        if self.broken {
            return Err(Fault::Garbage {
                line: "(adapter already failed)".into(),
            });
        }
        if self.io.buf.is_empty() && !self.io.eof {
            self.fill(Duration::ZERO);
        }
        if !self.io.buf.is_empty() {
            let end = self
                .io
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(self.io.buf.len());
            let text = String::from_utf8_lossy(&self.io.buf[..end]);
            let line: String = text.trim_end().chars().take(200).collect();
            let context = match wire::reply_id(&text) {
                Some(n) if n < self.next_id => {
                    format!("after request {n} had its reply, while no request was waiting")
                }
                Some(n) => format!("before request {n} was sent, while no request was waiting"),
                None => "while no request was waiting for a reply".to_string(),
            };
            return Err(self.fail(Fault::Unexpected { line, context }));
        }
        if self.io.eof {
            return Err(self.crashed(Event::Eof, "between requests"));
        }
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return Err(self.crashed(Event::Exited, "between requests"));
        }
        Ok(())
    }

    /// Read the adapter's stderr so far (its last 16 KiB).
    pub fn stderr(&self) -> String {
        let tail = self.io.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let start = tail.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&tail[start..]).into_owned()
    }

    /// The requests sent and replies received since the last call (the
    /// last [`MAX_EXCHANGES`] of them), oldest first; forgets them.
    pub fn take_exchanges(&mut self) -> Vec<Exchange> {
        self.exchanges.drain(..).collect()
    }

    /// The adapter's process id (its process group id too).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Write all of `bytes` to stdin by `deadline`.
    fn send(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        let Some(stdin) = self.io.stdin.as_mut() else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        while !bytes.is_empty() {
            match stdin.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, poll_timeout(left.min(EXIT_CHECK)));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Wait up to `wait` for stdout to be readable, then read what is there
    /// (never more than the buffer's room: MAX_LINE + 1 bytes in all).
    fn fill(&mut self, wait: Duration) {
        let room = (MAX_LINE + 1).saturating_sub(self.io.buf.len());
        if room == 0 || self.io.eof {
            return;
        }
        let mut fds = [PollFd::new(self.io.stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(wait)) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        let mut chunk = [0u8; 16 * 1024];
        let want = room.min(chunk.len());
        match self.io.stdout.read(&mut chunk[..want]) {
            Ok(0) => self.io.eof = true,
            Ok(n) => self.io.buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.io.eof = true,
        }
    }

    /// The next line of stdout, waiting until `deadline` (the newline and a
    /// `\r` before it are taken off).
    fn read_line(&mut self, deadline: Instant) -> Got {
        let mut exited = false;
        loop {
            if let Some(end) = self.io.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.io.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]);
                return Got::Line(text.trim_end_matches('\r').to_string());
            }
            if self.io.buf.len() > MAX_LINE {
                let start =
                    String::from_utf8_lossy(&self.io.buf[..80.min(self.io.buf.len())]).into_owned();
                return Got::TooLong(start);
            }
            if self.io.eof {
                return Got::Eof;
            }
            let before = self.io.buf.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if exited {
                // The adapter is gone: only what it wrote before counts.
                self.fill(Duration::ZERO);
                if self.io.buf.len() == before && !self.io.eof {
                    return Got::Exited;
                }
                continue;
            }
            self.fill(left.min(EXIT_CHECK));
            if self.io.buf.len() > before || self.io.eof {
                continue;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                exited = true;
            } else if Instant::now() >= deadline {
                return Got::Timeout;
            }
        }
    }

    /// Mark the adapter broken, stop it, and return `fault`.
    fn fail(&mut self, fault: Fault) -> Fault {
        self.broken = true;
        self.stop();
        fault
    }

    /// Mark the adapter broken, stop it, and describe what happened.
    fn crashed(&mut self, event: Event, when: &str) -> Fault {
        self.broken = true;
        if matches!(event, Event::Eof | Event::StdinBroken) {
            // Most often the adapter is exiting: let it, rather than kill it.
            let _ = wait_for(&mut self.child, Duration::from_millis(50));
        }
        let (status, by_itself) = self.halt();
        let what = match (event, by_itself) {
            (Event::Exited, _) | (_, true) => "the adapter exited",
            (Event::Eof, false) => "the adapter closed its stdout",
            (Event::StdinBroken, false) => "the adapter closed its stdin",
        };
        Fault::Crash {
            what: format!("{what} {when}"),
            status: status.map_or("status unknown".to_string(), |s| s.to_string()),
            stderr: self.stderr(),
        }
    }

    /// Close stdin, TERM every process of the tree, then kill the tree, and
    /// reap the adapter; returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.halt().0
    }

    /// [`Adapter::stop`], and whether the adapter had exited before it was signalled.
    fn halt(&mut self) -> (Option<ExitStatus>, bool) {
        if let Some(stopped) = self.stopped {
            return stopped;
        }
        drop(self.io.stdin.take());
        let group = self.child.id() as i32;
        let (status, by_itself) = match self.child.try_wait() {
            Ok(Some(status)) => (Some(status), true),
            _ => {
                self.tree.signal(Some(group), group, Signal::SIGTERM);
                (wait_for(&mut self.child, TERM_GRACE), false)
            }
        };
        // Whatever the adapter did, nothing it started may outlive it.
        let leader = match self.child.try_wait() {
            Ok(None) => Some(group),
            _ => None,
        };
        self.tree.kill(leader, group);
        let status = status.or_else(|| self.child.wait().ok());
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
        self.tree.release();
        // Let stderr's reader see the end, so that a crash shows all of it.
        if let Some(reader) = self.io.stderr_reader.take() {
            let until = Instant::now() + Duration::from_millis(200);
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        self.stopped = Some((status, by_itself));
        (status, by_itself)
    }

    /// End the adapter politely: close its stdin and give it a moment to exit.
    pub fn finish(mut self) -> Option<ExitStatus> {
        if self.stopped.is_none() {
            drop(self.io.stdin.take());
            let _ = wait_for(&mut self.child, TERM_GRACE);
        }
        self.stop()
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_nonblocking(fd: &impl AsFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}

fn poll_timeout(wait: Duration) -> PollTimeout {
    // Round up, so that a wait of a few microseconds is not a busy loop.
    let ms = wait.as_micros().div_ceil(1000);
    PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
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

/// Keep the last [`STDERR_TAIL`] bytes of `err` in `sink`, whatever it prints.
fn collect_stderr(mut err: impl Read, sink: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0u8; 8192];
    loop {
        let n = match err.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut tail = sink.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > 2 * STDERR_TAIL {
            let cut = tail.len() - STDERR_TAIL;
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_are_execed() {
        for simple in [
            "python3 adapter.py",
            "sh 'my adapter.sh'",
            "'/opt/my rvlf'/rvlf adapter --mutant x",
            "python3 -c 'import sys; print(1)' 2>/dev/null",
            "./adapter --flag=$HOME",
            "\"$HOME\"x",
        ] {
            let expected = !simple.starts_with('"');
            assert_eq!(is_simple_program(simple), expected, "{simple}");
        }
        assert_eq!(shell_line("python3 a.py"), "exec python3 a.py");
    }

    #[test]
    fn compound_commands_builtins_and_expansions_are_left_alone() {
        for compound in [
            "exit 3",
            "exec python3 a.py",
            "cd dir && python3 a.py",
            "python3 a.py; echo done",
            "python3 a.py | tee log",
            "python3 a.py &",
            "(python3 a.py)",
            "{ python3 a.py; }",
            "FOO=1 python3 a.py",
            "$PYTHON a.py",
            "$(which python3) a.py",
            "`which python3` a.py",
            "2>/dev/null python3 a.py",
            "while read l; do echo x; done",
            "python3 a.py\necho",
            "'unterminated",
            "",
            "   ",
            "# a comment",
            "'exit' 3",
            "python3 \"$(pwd)/a.py\"",
        ] {
            assert!(!is_simple_program(compound), "{compound:?}");
            assert_eq!(shell_line(compound), compound);
        }
    }

    #[test]
    fn argv_runs_the_line_under_sh_after_the_wrapper() {
        let mut spec = Spec::new("python3 a.py");
        spec.wrapper = vec!["unshare".into(), "--uts".into(), "--".into()];
        assert_eq!(
            spec.argv(),
            ["unshare", "--uts", "--", "sh", "-c", "exec python3 a.py"]
        );
    }
}
