//! `rvlf conform` against adapters that attack the harness rather than the
//! lock: processes that leave the adapter's process group and session or
//! ignore SIGTERM, output that floods the pipe between requests, a stdout
//! closed by a process that keeps running, replies sent twice or before
//! their request. Each adapter is a small sh or python3 script written into a
//! temporary directory; each run is kept small with `--run`.
//!
//! The tests that start processes run twice where the machine allows it:
//! with cgroups (the default: used when this process may make a cgroup v2,
//! which the adapter's own /proc/self/cgroup then shows) and with the
//! subreaper fallback (`RVLF_NO_CGROUP=1`). Every adapter records the pids of
//! what it starts; after the run none of them may be running (a zombie left
//! to an init that does not reap counts as gone). A test whose scene cannot
//! be set on this machine (no python3, no setsid) says so and passes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tempfile::TempDir;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");
/// Every run of the binary is killed, failing its test, after this long.
const LIMIT: Duration = Duration::from_secs(60);
/// The peak resident set size a run may reach, whatever its adapters print.
const RSS_BOUND_KIB: i64 = 64 * 1024;

// ------------------------------------------------------------ running rvlf

/// How the adapters' processes are held in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// The default: a cgroup per adapter where this machine allows it.
    Cgroup,
    /// `RVLF_NO_CGROUP=1`: the subreaper fallback.
    Subreaper,
}

/// How one run of the binary ended.
struct Ran {
    pid: i32,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident set size of the rvlf process, KiB: the last VmHWM
    /// read from /proc/PID/status while it ran. (wait4's ru_maxrss would
    /// not do: exec records the high-water mark of the address space it
    /// replaces, which for a child spawned with vfork is this test's own.)
    max_rss_kib: i64,
}

impl Ran {
    fn say(&self) -> String {
        format!(
            "exit {:?}, peak RSS {} KiB\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.max_rss_kib, self.stdout, self.stderr
        )
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// A started run: its pid and output readers.
struct Running {
    pid: i32,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
    started: Instant,
}

// Reaped by `wait`, with waitpid(2), which polls without blocking.
#[allow(clippy::zombie_processes)]
fn start(args: &[String], way: Way) -> Running {
    let mut command = Command::new(RVLF);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match way {
        Way::Cgroup => command.env_remove("RVLF_NO_CGROUP"),
        Way::Subreaper => command.env("RVLF_NO_CGROUP", "1"),
    };
    let mut child = command.spawn().expect("start rvlf");
    Running {
        pid: child.id() as i32,
        out: reader(child.stdout.take().expect("piped stdout")),
        err: reader(child.stderr.take().expect("piped stderr")),
        started: Instant::now(),
    }
}

/// The high-water mark of a process's resident set, KiB.
fn vm_hwm_kib(pid: i32) -> Option<i64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Wait for a run, reading its peak RSS as it goes; kill it after [`LIMIT`].
fn wait(running: Running) -> Ran {
    let mut status = 0;
    let mut max_rss_kib = 0;
    loop {
        // The mark only rises: the last one read before the exit is the peak
        // but for the last few milliseconds.
        if let Some(kib) = vm_hwm_kib(running.pid) {
            max_rss_kib = max_rss_kib.max(kib);
        }
        // SAFETY: waitpid on our own child, with a valid pointer.
        let r = unsafe { libc::waitpid(running.pid, &mut status, libc::WNOHANG) };
        if r == running.pid {
            break;
        }
        assert!(r == 0, "waitpid: {}", std::io::Error::last_os_error());
        if running.started.elapsed() > LIMIT {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(running.pid, libc::SIGKILL);
                libc::waitpid(running.pid, &mut status, 0);
            }
            panic!(
                "rvlf did not finish within {LIMIT:?}; stdout:\n{}",
                running.out.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ran {
        pid: running.pid,
        code,
        stdout: running.out.join().expect("stdout reader"),
        stderr: running.err.join().expect("stderr reader"),
        max_rss_kib,
    }
}

fn run(args: &[String], way: Way) -> Ran {
    wait(start(args, way))
}

/// The first `n` case ids of an area, from the catalogue itself.
fn ids_of(area: &str, n: usize) -> Vec<String> {
    let prefix = format!("{area}::");
    let ids: Vec<String> = rvlf::conform::cases::catalogue()
        .into_iter()
        .map(|c| c.id)
        .filter(|id| id.starts_with(&prefix))
        .take(n)
        .collect();
    assert!(
        ids.len() == n,
        "the catalogue has fewer than {n} {area}:: cases"
    );
    ids
}

fn json_of(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).expect("read the JSON report");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// `(id, verdict, detail)` of every result in a JSON report.
fn results(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["results"]
        .as_array()
        .expect("results is an array")
        .iter()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_string();
            (field("id"), field("verdict"), field("detail"))
        })
        .collect()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True when this machine lacks a program a scene needs (the test then passes).
fn missing(programs: &[&str]) -> bool {
    let absent: Vec<&&str> = programs.iter().filter(|p| !have(p)).collect();
    if !absent.is_empty() {
        eprintln!("scene not set: {absent:?} not found; nothing checked");
    }
    !absent.is_empty()
}

// ------------------------------------------------------------ processes

/// True while `pid` is a process that has not exited.
fn running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
    }
}

/// The processes of `pids` still running after a short grace (SIGKILL is
/// delivered asynchronously).
fn survivors(pids: &[i32]) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| running(p)).collect();
        if alive.is_empty() || Instant::now() > until {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kill what a failed test left behind, so that it does not outlive the test.
fn kill_all(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill(2) on a pid an adapter of this test recorded.
        unsafe {
            libc::kill(p, libc::SIGKILL);
        }
    }
}

/// True when `pid` runs one of the programs the scenes start (a pid that
/// was reused by another process is left alone).
fn ours(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    text.starts_with("sleep 1000") || text.contains(&dir.display().to_string())
}

// ------------------------------------------------------------ cgroups

/// The directory of this process's cgroup v2, when cgroup2 is mounted.
fn own_cgroup_dir() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next() != Some("cgroup2") {
            return None;
        }
        let fields: Vec<&str> = left.split(' ').collect();
        (fields.get(3) == Some(&"/"))
            .then(|| Path::new(fields[4]).join(own.trim_start_matches('/')))
            .filter(|d| d.join("cgroup.procs").is_file())
    })
}

/// True when this machine lets this process make a cgroup with
/// `cgroup.kill`: then `rvlf conform` must put each adapter in its own.
fn cgroups_usable() -> bool {
    let Some(base) = own_cgroup_dir() else {
        return false;
    };
    let probe = base.join(format!("rvlf-test-probe-{}", std::process::id()));
    if fs::create_dir(&probe).is_err() {
        return false;
    }
    let usable = probe.join("cgroup.kill").is_file();
    let _ = fs::remove_dir(&probe);
    usable
}

/// Cgroups of run `pid` left in the cgroup tree.
fn cgroups_left(pid: i32) -> Vec<String> {
    let Some(base) = own_cgroup_dir() else {
        return Vec::new();
    };
    let prefix = format!("rvlf-{pid}-");
    fs::read_dir(base)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------ scenes

/// A temporary directory with adapter scripts, the pids they record, and
/// the run's scratch directory and JSON report.
struct Scene {
    dir: TempDir,
}

/// The `hello` line, for `printf` with the pid as its argument.
const HELLO_FORMAT: &str = r#"{"hello":{"protocol":"rvlf-adapter/1","implementation":"hostile","version":"0","pid":%d,"features":[]}}\n"#;

/// Shell functions every sh adapter gets: `hello`, and `escape`, which
/// starts processes that leave the adapter's reach in every way a process
/// can, recording their pids.
const SH_PRELUDE: &str = r#"
hello() { printf '@HELLO@' $$; }
escape() {
    echo $$ >> "$DIR/pids"
    # A new session, holding the adapter's stdout and stderr.
    setsid sleep 1000 &
    echo $! >> "$DIR/pids"
    # A new session, ignoring SIGTERM.
    setsid sh -c "trap '' TERM; exec sleep 1000" &
    echo $! >> "$DIR/pids"
    # Orphaned at once, in a new session, with an empty environment.
    (env -i setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >> "$DIR/pids")
    # The same process group, ignoring SIGTERM.
    (trap '' TERM; exec sleep 1000) &
    echo $! >> "$DIR/pids"
    grep '^0::' /proc/self/cgroup >> "$DIR/cgroups"
}
"#;

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("scratch")).expect("scratch dir");
        Scene { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write an sh adapter: the prelude, then `body`. Returns its command.
    fn sh(&self, name: &str, body: &str) -> String {
        let prelude = SH_PRELUDE.replace("@HELLO@", HELLO_FORMAT);
        let script = format!("DIR='{}'\n{prelude}\n{body}\n", self.dir.path().display());
        fs::write(self.path(name), script).expect("write adapter");
        format!("sh '{}'", self.path(name).display())
    }

    /// Write a python3 adapter; `DIR` and `RVLF` are defined for it.
    fn python(&self, name: &str, body: &str) -> String {
        let script = format!(
            "DIR = {:?}\nRVLF = {RVLF:?}\n{body}\n",
            self.dir.path().display().to_string()
        );
        fs::write(self.path(name), script).expect("write adapter");
        format!("python3 '{}'", self.path(name).display())
    }

    /// `conform --adapter COMMAND --run ID... --scratch S --json R` and `extra`.
    fn args(&self, command: &str, ids: &[String], extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "conform".into(),
            "--adapter".into(),
            command.into(),
            "--scratch".into(),
            self.path("scratch").display().to_string(),
            "--json".into(),
            self.path("report.json").display().to_string(),
        ];
        for id in ids {
            args.extend(["--run".to_string(), id.clone()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn report(&self) -> Vec<(String, String, String)> {
        results(&json_of(&self.path("report.json")))
    }

    fn lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every pid the adapters recorded.
    fn pids(&self) -> Vec<i32> {
        self.lines("pids")
            .iter()
            .flat_map(|l| l.split_whitespace())
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Fail unless every recorded process is gone, and (with cgroups) every
    /// adapter was in a cgroup of the run's own, since removed.
    fn assert_contained(&self, ran: &Ran, way: Way) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "the adapter never ran:\n{}", ran.say());
        let alive = survivors(&pids);
        kill_all(&alive);
        assert!(
            alive.is_empty(),
            "{way:?}: processes left after the run: {alive:?} of {pids:?}\n{}",
            ran.say()
        );
        let cgroups = self.lines("cgroups");
        let in_own = |l: &String| l.contains(&format!("/rvlf-{}-", ran.pid));
        match way {
            Way::Cgroup if cgroups_usable() => {
                assert!(
                    !cgroups.is_empty() && cgroups.iter().all(in_own),
                    "each adapter in a cgroup of its own: {cgroups:?}\n{}",
                    ran.say()
                );
                let left = cgroups_left(ran.pid);
                assert!(left.is_empty(), "cgroups left: {left:?}");
            }
            Way::Cgroup => eprintln!("cgroups cannot be made here: the subreaper way ran"),
            Way::Subreaper => assert!(
                !cgroups.iter().any(in_own),
                "RVLF_NO_CGROUP=1, yet an adapter was in a cgroup: {cgroups:?}"
            ),
        }
    }
}

impl Drop for Scene {
    /// Whatever the test concluded, kill what its adapters left running.
    fn drop(&mut self) {
        let left: Vec<i32> = self
            .pids()
            .into_iter()
            .filter(|&p| running(p) && ours(p, self.dir.path()))
            .collect();
        kill_all(&left);
    }
}

fn verdicts_of(report: &[(String, String, String)]) -> Vec<&str> {
    report.iter().map(|(_, v, _)| v.as_str()).collect()
}

// ------------------------------------------------------------ 1: escaped processes

/// A well-behaved adapter (the reference) behind a script that first starts
/// processes in new sessions, ignoring SIGTERM, orphaned with an empty
/// environment: all pass, and none of those processes outlives the run.
fn escaping_adapters_are_gone_after_the_run(way: Way) {
    if missing(&["setsid", "env", "grep"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.sh("escape.sh", &format!("escape\nexec '{RVLF}' adapter"));
    let ids = ids_of("layout", 4);
    let ran = run(&scene.args(&command, &ids, &["--jobs", "2"]), way);
    let report = scene.report();
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    assert_eq!(
        verdicts_of(&report),
        vec!["PASS"; ids.len()],
        "{}",
        ran.say()
    );
    // The probing start, and one adapter per worker at most.
    assert!(scene.lines("cgroups").len() >= 2, "{}", ran.say());
    scene.assert_contained(&ran, way);
}

#[test]
fn escaping_adapters_are_gone_after_the_run_cgroup() {
    escaping_adapters_are_gone_after_the_run(Way::Cgroup);
}

#[test]
fn escaping_adapters_are_gone_after_the_run_subreaper() {
    escaping_adapters_are_gone_after_the_run(Way::Subreaper);
}

/// Adapters that start escaping processes, then crash (odd starts) or hang
/// (even starts); with one job, each is stopped before the next starts, and
/// the next one's first act is to look for what its predecessors left.
fn a_stopped_adapters_processes_are_gone_before_the_next_starts(way: Way) {
    if missing(&["setsid", "env", "grep"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.sh(
        "crash-or-hang.sh",
        r#"
for p in $(cat "$DIR/pids" 2>/dev/null); do
    if read -r stat 2>/dev/null < "/proc/$p/stat"; then
        set -- $stat
        [ "$3" = Z ] || echo "$p" >> "$DIR/survivors"
    fi
done
echo x >> "$DIR/starts"
n=$(wc -l < "$DIR/starts")
escape
hello
read -r request
if [ $((n % 2)) = 1 ]; then exit 1; fi
exec sleep 1000
"#,
    );
    let ids = ids_of("layout", 4);
    let ran = run(
        &scene.args(&command, &ids, &["--jobs", "1", "--request-timeout", "1"]),
        way,
    );
    let report = scene.report();
    let left = scene.lines("survivors");
    assert!(
        left.is_empty(),
        "{way:?}: processes of a stopped adapter still ran when the next one started: {left:?}\n{}",
        ran.say()
    );
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    let verdicts = verdicts_of(&report);
    assert!(
        verdicts.contains(&"CRASH") && verdicts.contains(&"HANG"),
        "{verdicts:?}\n{}",
        ran.say()
    );
    assert!(
        verdicts.iter().all(|v| *v == "CRASH" || *v == "HANG"),
        "{verdicts:?}\n{}",
        ran.say()
    );
    scene.assert_contained(&ran, way);
}

#[test]
fn a_stopped_adapters_processes_are_gone_before_the_next_starts_cgroup() {
    a_stopped_adapters_processes_are_gone_before_the_next_starts(Way::Cgroup);
}

#[test]
fn a_stopped_adapters_processes_are_gone_before_the_next_starts_subreaper() {
    a_stopped_adapters_processes_are_gone_before_the_next_starts(Way::Subreaper);
}

/// Ctrl-C in the middle of a request: every adapter tree goes, escaped
/// processes included, and the run exits 130.
fn ctrl_c_kills_escaped_processes(way: Way) {
    if missing(&["setsid", "env", "grep"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.sh("escape-then-hang.sh", "escape\nhello\nexec sleep 1000");
    let ids = ids_of("layout", 1);
    let running = start(
        &scene.args(&command, &ids, &["--request-timeout", "60"]),
        way,
    );
    // The probing start is reused by the case: once its processes are
    // recorded (five lines), the case is waiting for a reply.
    let until = Instant::now() + LIMIT;
    while scene.pids().len() < 5 || scene.lines("cgroups").is_empty() {
        assert!(Instant::now() < until, "the adapter never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: SIGINT to the rvlf this test started.
    unsafe {
        libc::kill(running.pid, libc::SIGINT);
    }
    let ran = wait(running);
    assert_eq!(ran.code, Some(130), "{}", ran.say());
    scene.assert_contained(&ran, way);
}

#[test]
fn ctrl_c_kills_escaped_processes_cgroup() {
    ctrl_c_kills_escaped_processes(Way::Cgroup);
}

#[test]
fn ctrl_c_kills_escaped_processes_subreaper() {
    ctrl_c_kills_escaped_processes(Way::Subreaper);
}

// ------------------------------------------------------------ 2: flooding

/// The first start (the probe, which the first case reuses) hangs while
/// flooding stderr with one endless line; every later start floods stdout
/// with well-formed replies, numbered from 1, from its hello on. Each
/// flooding adapter is a CRASH of the case that uses it, and the harness's
/// memory stays bounded.
#[test]
fn flooding_adapters_are_crashes_and_memory_stays_bounded() {
    if missing(&["python3"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.python(
        "flood.py",
        r#"
import os, sys, time
with open(os.path.join(DIR, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
hello = '{"hello":{"protocol":"rvlf-adapter/1","implementation":"flood","version":"0","pid":%d,"features":[]}}\n' % os.getpid()
out = sys.stdout.buffer
try:
    os.close(os.open(os.path.join(DIR, "hanger"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    hanger = True
except FileExistsError:
    hanger = False
if hanger:
    out.write(hello.encode())
    out.flush()
    junk = b"x" * 65536
    while True:
        sys.stderr.buffer.write(junk)
        sys.stderr.buffer.flush()
        time.sleep(0.001)
n = 1
text = hello
while True:
    text += "".join('{"id":%d,"result":"busy"}\n' % i for i in range(n, n + 1000))
    n += 1000
    out.write(text.encode())
    out.flush()
    text = ""
"#,
    );
    let ids = ids_of("layout", 8);
    let ran = run(
        &scene.args(&command, &ids, &["--jobs", "4", "--request-timeout", "1"]),
        Way::Cgroup,
    );
    let report = scene.report();
    let verdicts = verdicts_of(&report);
    eprintln!("peak RSS of the flooded run: {} KiB", ran.max_rss_kib);
    assert!(
        ran.max_rss_kib < RSS_BOUND_KIB,
        "peak RSS {} KiB, bound {RSS_BOUND_KIB} KiB\n{}",
        ran.max_rss_kib,
        ran.say()
    );
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    assert_eq!(
        verdicts.iter().filter(|v| **v == "HANG").count(),
        1,
        "the probe's case hangs: {verdicts:?}\n{}",
        ran.say()
    );
    assert_eq!(
        verdicts.iter().filter(|v| **v == "CRASH").count(),
        ids.len() - 1,
        "every flooding adapter is a CRASH: {verdicts:?}\n{}",
        ran.say()
    );
    for (id, verdict, detail) in &report {
        if verdict == "CRASH" {
            assert!(
                detail.contains("while no request was waiting"),
                "{id}: {detail}"
            );
        }
    }
    let alive = survivors(&scene.pids());
    kill_all(&alive);
    assert!(alive.is_empty(), "flooders left: {alive:?}");
}

/// One line without end: CRASH once 64 KiB came without a newline.
#[test]
fn a_reply_longer_than_64_kib_is_a_crash() {
    let scene = Scene::new();
    let command = scene.sh(
        "long.sh",
        "echo $$ >> \"$DIR/pids\"\nhello\nread -r request\nexec tr '\\0' x < /dev/zero",
    );
    let ids = ids_of("layout", 1);
    let ran = run(&scene.args(&command, &ids, &[]), Way::Cgroup);
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    let report = scene.report();
    assert_eq!(verdicts_of(&report), vec!["CRASH"], "{}", ran.say());
    assert!(
        report[0].2.contains("more than 65536 bytes"),
        "{}",
        ran.say()
    );
    assert!(ran.max_rss_kib < RSS_BOUND_KIB, "{}", ran.say());
    assert!(survivors(&scene.pids()).is_empty());
}

// ------------------------------------------------------------ 3: closed stdout

/// Says hello, reads a request, closes its stdout and keeps running, in sh
/// (started as `sh FILE`, a simple command) and in python3.
#[test]
fn an_adapter_that_closes_stdout_and_keeps_running_is_a_crash() {
    let scene = Scene::new();
    let sh = scene.sh(
        "close.sh",
        "echo $$ >> \"$DIR/pids\"\nhello\nread -r request\nexec >&-\nsleep 1000 &\necho $! >> \"$DIR/pids\"\nwait",
    );
    let mut commands = vec![sh];
    if have("python3") {
        commands.push(scene.python(
            "close.py",
            r#"
import os, sys, time
with open(os.path.join(DIR, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
print('{"hello":{"protocol":"rvlf-adapter/1","implementation":"close","version":"0","pid":%d,"features":[]}}' % os.getpid(), flush=True)
sys.stdin.readline()
sys.stdout.close()
os.close(1)
time.sleep(1000)
"#,
        ));
    }
    let ids = ids_of("layout", 2);
    for command in commands {
        let ran = run(
            &scene.args(&command, &ids, &["--jobs", "1", "--request-timeout", "3"]),
            Way::Cgroup,
        );
        let report = scene.report();
        assert_eq!(ran.code, Some(1), "{command}: {}", ran.say());
        assert_eq!(
            verdicts_of(&report),
            vec!["CRASH"; ids.len()],
            "{command}: {}",
            ran.say()
        );
        for (id, _, detail) in &report {
            assert!(
                detail.contains("closed its stdout"),
                "{command}: {id}: {detail}"
            );
        }
        let alive = survivors(&scene.pids());
        kill_all(&alive);
        assert!(alive.is_empty(), "{command}: left {alive:?}");
    }
}

// ------------------------------------------------------------ 4: replies at the wrong time

/// The reference behind a relay that sends every reply twice (in one write):
/// the second copy arrives during the case, which is its CRASH, never a PASS
/// nor a CRASH of the next case.
#[test]
fn a_duplicate_reply_is_a_crash_of_the_case_it_came_in() {
    if missing(&["python3"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.python(
        "twice.py",
        r#"
import os, subprocess, sys
child = subprocess.Popen([RVLF, "adapter"], stdout=subprocess.PIPE)
with open(os.path.join(DIR, "pids"), "a") as f:
    f.write("%d %d\n" % (os.getpid(), child.pid))
out = sys.stdout.buffer
first = True
for line in child.stdout:
    out.write(line if first else line + line)
    out.flush()
    first = False
"#,
    );
    // Cases of one request each: the second copy comes after the case's
    // last request, and must not be left for the next case to find.
    let mut ids = ids_of("decode", 4);
    ids.extend(ids_of("judge", 2));
    let ran = run(&scene.args(&command, &ids, &["--jobs", "2"]), Way::Cgroup);
    let report = scene.report();
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    assert_eq!(
        verdicts_of(&report),
        vec!["CRASH"; ids.len()],
        "{}",
        ran.say()
    );
    for (id, _, detail) in &report {
        assert!(detail.contains("had its reply"), "{id}: {detail}");
    }
    let alive = survivors(&scene.pids());
    kill_all(&alive);
    assert!(alive.is_empty(), "left {alive:?}");
}

/// An adapter that always answers one request ahead: `{"id":1}` comes with
/// its hello, before request 1 was sent, and so on. Never accepted: CRASH.
#[test]
fn a_reply_before_its_request_is_a_crash() {
    if missing(&["python3"]) {
        return;
    }
    let scene = Scene::new();
    let command = scene.python(
        "ahead.py",
        r#"
import json, os, sys
with open(os.path.join(DIR, "pids"), "a") as f:
    f.write("%d\n" % os.getpid())
out = sys.stdout
hello = '{"hello":{"protocol":"rvlf-adapter/1","implementation":"ahead","version":"0","pid":%d,"features":[]}}\n' % os.getpid()
out.write(hello + '{"id":1,"result":"busy"}\n')
out.flush()
for line in sys.stdin:
    out.write('{"id":%d,"result":"busy"}\n' % (json.loads(line)["id"] + 1))
    out.flush()
"#,
    );
    let ids = ids_of("layout", 6);
    let ran = run(&scene.args(&command, &ids, &["--jobs", "2"]), Way::Cgroup);
    let report = scene.report();
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    assert_eq!(
        verdicts_of(&report),
        vec!["CRASH"; ids.len()],
        "{}",
        ran.say()
    );
    for (id, _, detail) in &report {
        assert!(detail.contains("before request"), "{id}: {detail}");
    }
    let alive = survivors(&scene.pids());
    kill_all(&alive);
    assert!(alive.is_empty(), "left {alive:?}");
}
