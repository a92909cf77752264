//! `rvlf conform` against adapters that attack the harness, and against
//! signals, through the built binary.
//!
//! - Planted links: an adapter puts symlinks to a victim file outside the
//!   scratch tree where the harness is about to set a scene (the EPERM
//!   case's directory of uid 65534, `replacement.tmp` next to a lock, case
//!   directories made in advance). The victim must come out byte for byte
//!   unchanged, and the cases must still get their verdicts.
//! - Signals: SIGTERM, SIGHUP and SIGINT to a run that is in the middle of a
//!   case whose adapter hangs, ignores TERM and the end of its input: the
//!   run exits 143, 129 or 130, leaves no scratch directory (its own, or
//!   uid 65534's) and no adapter process.
//! - Reports: a link uid 65534 planted where a report goes (a path on the
//!   command line, in a sticky world-writable directory) is not followed.
//! - Another user's scratch: removed even by a root without
//!   CAP_DAC_OVERRIDE, which must take the directories back first.
//!
//! Hostile adapters are small sh and python3 scripts that wrap the
//! reference (`rvlf adapter`) for every request they do not sabotage. Each
//! is started as `RVLF_SAFETY_MARK=<unique> exec ...`, so that every
//! process it starts carries the marker in its environment and can be found
//! in /proc. Tests that need root (uid 65534, capabilities) skip otherwise.
//! Every run of the binary has a deadline; nothing here measures time.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");
/// The longest any run of the binary may take before it fails the test.
const LIMIT: Duration = Duration::from_secs(120);
/// How long killed processes get to disappear.
const REAP: Duration = Duration::from_secs(10);
/// The uid the harness gives the EPERM case's adapter when it is root.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Print why a test does not run, for `--nocapture` readers.
fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test}: {why}");
}

// ------------------------------------------------------------ the lab

/// A directory for one test: adapter scripts, a victim file, the run's
/// scratch parent, a directory of flags any user may write, a report.
struct Lab {
    dir: TempDir,
    marker: String,
}

impl Lab {
    fn new() -> Lab {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = tempfile::Builder::new()
            .prefix("rvlf-safety-lab-")
            .tempdir()
            .expect("tempdir");
        // uid 65534 must reach the scripts, the scratch tree and the flags.
        let open = |p: &Path, mode| {
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        open(dir.path(), 0o755);
        fs::create_dir(dir.path().join("scratch")).expect("mkdir scratch");
        open(&dir.path().join("scratch"), 0o755);
        fs::create_dir(dir.path().join("flags")).expect("mkdir flags");
        open(&dir.path().join("flags"), 0o777);
        let marker = format!(
            "rvlf-safety-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        Lab { dir, marker }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn scratch(&self) -> PathBuf {
        self.path("scratch")
    }

    fn report(&self) -> PathBuf {
        self.path("report.json")
    }

    /// Write an executable script; `@RVLF@`, `@SCRATCH@`, `@FLAGS@` and
    /// `@VICTIM@` in `text` are replaced with their paths.
    fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        let text = text
            .replace("@RVLF@", RVLF)
            .replace("@SCRATCH@", &self.scratch().display().to_string())
            .replace("@FLAGS@", &self.path("flags").display().to_string())
            .replace("@PUBLIC@", &self.path("public").display().to_string())
            .replace("@VICTIM@", &self.path("victim").display().to_string());
        fs::write(&path, text).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path
    }

    /// The `--adapter` command that runs `program` with the lab's marker.
    fn adapter(&self, program: &str) -> String {
        format!("RVLF_SAFETY_MARK={} exec {program}", self.marker)
    }

    /// A file outside the scratch tree, mode 0600, that no run may touch.
    fn victim(&self) -> Victim {
        let path = self.path("victim");
        let bytes = format!("victim of {}: nothing may write here\n", self.marker).into_bytes();
        fs::write(&path, &bytes).expect("write victim");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod victim");
        let m = fs::symlink_metadata(&path).expect("lstat victim");
        Victim {
            path,
            bytes,
            ino: m.ino(),
            mode: m.mode(),
            uid: m.uid(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }

    /// `rvlf conform` with `adapter`, the lab's scratch and report, and `args`.
    fn conform(&self, adapter: &str, args: &[&str]) -> Command {
        self.conform_via(&[], adapter, args)
    }

    /// The same, started through `wrapper` (e.g. setpriv).
    fn conform_via(&self, wrapper: &[&str], adapter: &str, args: &[&str]) -> Command {
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        argv.push(RVLF.into());
        argv.extend(
            [
                "conform",
                "--adapter",
                adapter,
                "--scratch",
                &self.scratch().display().to_string(),
                "--json",
                &self.report().display().to_string(),
            ]
            .map(String::from),
        );
        argv.extend(args.iter().map(|s| s.to_string()));
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Whatever this test process inherited (nohup, a background job),
        // the run starts with the default dispositions of the signals it
        // handles.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::signal(s, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        command
    }

    /// Verdicts of the JSON report, by case id.
    fn verdicts(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(self.report()).expect("read the JSON report");
        let report: serde_json::Value = serde_json::from_str(&text).expect("the report parses");
        report["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().expect("id").to_string(),
                    r["verdict"].as_str().expect("verdict").to_string(),
                )
            })
            .collect()
    }

    /// Fail unless the scratch parent is empty: no `rvlf-conform-*`, no
    /// `rvlf-eperm-*`, nothing.
    fn assert_scratch_empty(&self, ran: &Ran) {
        let left: Vec<String> = fs::read_dir(self.scratch())
            .expect("read scratch")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.is_empty(),
            "left in the scratch directory: {left:?}\n{}",
            ran.say()
        );
    }

    /// Processes carrying the lab's marker (in their environment or command
    /// line) that have not exited.
    fn marked(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me && running(pid))
            .filter(|&pid| {
                ["environ", "cmdline"].iter().any(|f| {
                    fs::read(format!("/proc/{pid}/{f}"))
                        .is_ok_and(|b| contains(&b, self.marker.as_bytes()))
                })
            })
            .collect()
    }

    /// Processes of uid `uid` carrying the marker.
    fn marked_of(&self, uid: u32) -> Vec<i32> {
        self.marked()
            .into_iter()
            .filter(|pid| fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == uid))
            .collect()
    }

    /// Fail if an adapter process outlived the run (they get a moment to
    /// die: SIGKILL of an orphan is asynchronous). Whatever is left is
    /// killed, so that a failing test leaves nothing behind either.
    fn assert_no_adapter_left(&self, ran: &Ran) {
        let until = Instant::now() + REAP;
        let left = loop {
            let left = self.marked();
            if left.is_empty() || Instant::now() > until {
                break left;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for &pid in &left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        assert!(
            left.is_empty(),
            "adapter processes outlived the run: {left:?}\n{}",
            ran.say()
        );
    }

    /// Wait (bounded) until `ready` holds; kill the run and fail if it never does.
    fn wait_for(&self, mut child: Child, what: &str, ready: impl Fn() -> bool) -> Child {
        let until = Instant::now() + LIMIT;
        while !ready() {
            let ended = child.try_wait().expect("try_wait").is_some();
            if ended || Instant::now() > until {
                let _ = child.kill();
                let ran = finish(child);
                for pid in self.marked() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                panic!("{what} never happened\n{}", ran.say());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    /// Flags (`hung-<pid>`) left by adapters that took a request and hang.
    fn hung(&self) -> usize {
        fs::read_dir(self.path("flags"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in self.marked() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// True while `pid` is a process that has not exited (a zombie has).
fn running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
    }
}

/// A file that must come out of a run exactly as it went in.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
    ino: u64,
    mode: u32,
    uid: u32,
    mtime: (i64, i64),
}

impl Victim {
    fn assert_untouched(&self, ran: &Ran) {
        let m = fs::symlink_metadata(&self.path).expect("lstat victim");
        let bytes = fs::read(&self.path).expect("read victim");
        assert!(
            bytes == self.bytes,
            "the victim's bytes changed to {:?}\n{}",
            String::from_utf8_lossy(&bytes),
            ran.say()
        );
        assert_eq!(
            (m.ino(), m.mode(), m.uid(), (m.mtime(), m.mtime_nsec())),
            (self.ino, self.mode, self.uid, self.mtime),
            "the victim's inode, mode, owner or mtime changed\n{}",
            ran.say()
        );
    }
}

// ------------------------------------------------------------ runs

/// How one run ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn say(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run to the end within [`LIMIT`].
fn run(mut command: Command) -> Ran {
    let child = command.spawn().expect("start rvlf");
    finish(child)
}

/// Wait (bounded) for a run, reading its output.
fn finish(mut child: Child) -> Ran {
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let until = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rvlf") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rvlf did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Every case id of the catalogue matching `prefix`, and its directory name.
fn case_dirs(prefix: &str) -> Vec<(String, String)> {
    rvlf::conform::cases::catalogue()
        .into_iter()
        .map(|c| c.id)
        .filter(|id| id.starts_with(prefix))
        .map(|id| {
            let dir = id.replace("::", "--").replace(['/', ' '], "_");
            (id, dir)
        })
        .collect()
}

// ------------------------------------------------------------ adapters

/// As uid 65534, before its hello: a symlink to the victim at
/// `data.rvf.lock` in every directory of the scratch tree it can write.
const PLANT_AS_NOBODY: &str = r#"#!/bin/sh
if [ "$(id -u)" = 65534 ]; then
  for d in @SCRATCH@/* @SCRATCH@/*/* @SCRATCH@/*/*/*; do
    if [ -d "$d" ] && [ -w "$d" ]; then
      ln -s @VICTIM@ "$d/data.rvf.lock" 2>/dev/null
    fi
  done
fi
exec @RVLF@ adapter
"#;

/// As uid 65534, before its hello: a symlink to the victim where the run
/// will write its JUnit report, in a sticky world-writable directory (its
/// path is on the harness's command line, which every user can read).
const PLANT_REPORT_AS_NOBODY: &str = r#"#!/bin/sh
if [ "$(id -u)" = 65534 ]; then
  ln -s @VICTIM@ @PUBLIC@/report.xml 2>/dev/null
fi
exec @RVLF@ adapter
"#;

/// Wraps the reference. `replacement`: before forwarding a request on a
/// path, a symlink to the victim at `replacement.tmp` next to it.
/// `case-dirs`: on the first such request, a directory for every case named
/// after the arguments, next to the current one, holding symlinks to the
/// victim at the names cases plant.
const WRAP_AND_PLANT: &str = r#"import json, os, subprocess, sys

rvlf, mode, victim = sys.argv[1], sys.argv[2], sys.argv[3]
names = sys.argv[4:]

def plant(path):
    try:
        os.symlink(victim, path)
    except OSError:
        pass

real = subprocess.Popen([rvlf, "adapter"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
sys.stdout.buffer.write(real.stdout.readline())
sys.stdout.buffer.flush()
prepared = False
for line in sys.stdin.buffer:
    path = json.loads(line).get("path")
    if path:
        here = os.path.dirname(path)
        if mode == "replacement":
            plant(os.path.join(here, "replacement.tmp"))
        elif mode == "case-dirs" and not prepared:
            prepared = True
            root = os.path.dirname(here)
            for name in names:
                d = os.path.join(root, name)
                try:
                    os.mkdir(d)
                except OSError:
                    pass
                for f in ("data.rvf.lock", "aged.rvf.lock", "replacement.tmp"):
                    plant(os.path.join(d, f))
    real.stdin.write(line)
    real.stdin.flush()
    sys.stdout.buffer.write(real.stdout.readline())
    sys.stdout.buffer.flush()
real.stdin.close()
sys.exit(real.wait())
"#;

/// Wraps the reference, except as uid `$1` (or any uid for `any`): then it
/// says hello, takes one request, leaves a flag, and never answers,
/// ignoring TERM, INT, HUP and the end of its input. With `$2` > 0 it also
/// starts, in a session of its own (out of reach of a kill of its process
/// group), a process that holds its stdout open for `$2` seconds: the case
/// waiting for the reply stays blocked that long after the adapter is
/// killed, so a harness that leaves a directory to that case's own
/// clean-up exits before it is removed.
const HANG: &str = r#"#!/bin/sh
if [ "$1" = any ] || [ "$(id -u)" = "$1" ]; then
  trap '' TERM INT HUP
  printf '{"hello":{"protocol":"rvlf-adapter/1","implementation":"hangs","version":"0","pid":%d,"features":[]}}\n' $$
  read -r request
  if [ "$2" -gt 0 ]; then setsid sleep "$2" & fi
  : > @FLAGS@/hung-$$
  while :; do sleep 1; done
fi
exec @RVLF@ adapter
"#;

/// Wraps the reference, except as uid 65534: then it litters every
/// directory of the scratch tree it can write (at start and next to every
/// path it is asked about) with a closed directory tree, closes the
/// directory itself, and answers `busy` itself.
const LITTER_AS_NOBODY: &str = r#"#!/bin/sh
litter() {
  mkdir -p "$1/litter/deeper" && : > "$1/litter/deeper/file"
  chmod 0500 "$1/litter/deeper" "$1/litter" "$1"
}
if [ "$(id -u)" = 65534 ]; then
  for d in @SCRATCH@/* @SCRATCH@/*/* @SCRATCH@/*/*/*; do
    if [ -d "$d" ] && [ -w "$d" ] && [ -O "$d" ]; then litter "$d"; fi
  done
  printf '{"hello":{"protocol":"rvlf-adapter/1","implementation":"litters","version":"0","pid":%d,"features":[]}}\n' $$
  while read -r request; do
    id=$(printf '%s\n' "$request" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    path=$(printf '%s\n' "$request" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
    if [ -n "$path" ] && [ -w "$(dirname "$path")" ]; then litter "$(dirname "$path")"; fi
    printf '{"id":%s,"result":"busy"}\n' "$id"
  done
  exit 0
fi
exec @RVLF@ adapter
"#;

// ------------------------------------------------------------ planted links

#[test]
fn eperm_case_never_writes_through_a_link_planted_by_the_nobody_adapter() {
    let test = "eperm_case_never_writes_through_a_link_planted_by_the_nobody_adapter";
    if !is_root() {
        return skip(test, "needs root, to run an adapter as uid 65534");
    }
    let lab = Lab::new();
    let victim = lab.victim();
    let script = lab.script("plant.sh", PLANT_AS_NOBODY);
    let adapter = lab.adapter(&format!("sh {}", script.display()));
    let ran = run(lab.conform(&adapter, &["--run", "staleness::eperm-is-alive"]));
    victim.assert_untouched(&ran);
    let verdicts = lab.verdicts();
    if verdicts == [("staleness::eperm-is-alive".into(), "SKIP".into())] {
        return skip(test, &format!("the case was skipped here\n{}", ran.say()));
    }
    assert_eq!(
        verdicts,
        [("staleness::eperm-is-alive".to_string(), "PASS".to_string())],
        "{}",
        ran.say()
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    lab.assert_scratch_empty(&ran);
}

#[test]
fn a_report_is_never_written_through_a_link_the_nobody_adapter_planted() {
    let test = "a_report_is_never_written_through_a_link_the_nobody_adapter_planted";
    if !is_root() {
        return skip(test, "needs root, to run an adapter as uid 65534");
    }
    let lab = Lab::new();
    let victim = lab.victim();
    let public = lab.path("public");
    fs::create_dir(&public).expect("mkdir public");
    fs::set_permissions(&public, fs::Permissions::from_mode(0o1777)).expect("chmod public");
    let script = lab.script("plant-report.sh", PLANT_REPORT_AS_NOBODY);
    let adapter = lab.adapter(&format!("sh {}", script.display()));
    let junit = public.join("report.xml");
    let ran = run(lab.conform(
        &adapter,
        &[
            "--run",
            "staleness::eperm-is-alive",
            "--junit",
            &junit.display().to_string(),
        ],
    ));
    victim.assert_untouched(&ran);
    let verdicts = lab.verdicts();
    if verdicts == [("staleness::eperm-is-alive".into(), "SKIP".into())] {
        return skip(test, &format!("the case was skipped here\n{}", ran.say()));
    }
    assert!(
        fs::symlink_metadata(&junit).is_ok_and(|m| m.file_type().is_symlink()),
        "the adapter planted its link\n{}",
        ran.say()
    );
    assert_eq!(
        verdicts,
        [("staleness::eperm-is-alive".to_string(), "PASS".to_string())],
        "{}",
        ran.say()
    );
    assert_eq!(
        ran.code,
        Some(2),
        "a report not written is exit 2\n{}",
        ran.say()
    );
    assert!(ran.stderr.contains("refusing to follow"), "{}", ran.say());
    lab.assert_scratch_empty(&ran);
}

/// Python 3, or why not.
fn python3() -> Result<(), String> {
    match Command::new("python3").arg("-c").arg("pass").status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("python3 -c pass: {s}")),
        Err(e) => Err(format!("python3: {e}")),
    }
}

#[test]
fn release_cases_never_write_through_a_planted_replacement_tmp() {
    let test = "release_cases_never_write_through_a_planted_replacement_tmp";
    if let Err(why) = python3() {
        return skip(test, &why);
    }
    let lab = Lab::new();
    let victim = lab.victim();
    let script = lab.script("wrap.py", WRAP_AND_PLANT);
    let adapter = lab.adapter(&format!(
        "python3 {} {RVLF} replacement {}",
        script.display(),
        victim.path.display()
    ));
    let ran = run(lab.conform(&adapter, &["--run", "release::*", "--jobs", "2"]));
    victim.assert_untouched(&ran);
    let verdicts = lab.verdicts();
    assert_eq!(
        verdicts.len(),
        case_dirs("release::").len(),
        "{}",
        ran.say()
    );
    for (id, verdict) in &verdicts {
        assert_eq!(verdict, "PASS", "{id}\n{}", ran.say());
    }
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    lab.assert_scratch_empty(&ran);
}

#[test]
fn scenes_are_never_set_in_case_directories_an_adapter_made_in_advance() {
    let test = "scenes_are_never_set_in_case_directories_an_adapter_made_in_advance";
    if let Err(why) = python3() {
        return skip(test, &why);
    }
    let lab = Lab::new();
    let victim = lab.victim();
    let script = lab.script("wrap.py", WRAP_AND_PLANT);
    let cases = case_dirs("golden::");
    assert!(cases.len() >= 2, "too few golden cases: {cases:?}");
    let names: Vec<&str> = cases.iter().map(|(_, dir)| dir.as_str()).collect();
    let adapter = lab.adapter(&format!(
        "python3 {} {RVLF} case-dirs {} {}",
        script.display(),
        victim.path.display(),
        names.join(" ")
    ));
    // One worker: the first case tells the adapter where the scratch root
    // is, and every later case finds its directory already made.
    let ran = run(lab.conform(&adapter, &["--run", "golden::*", "--jobs", "1"]));
    victim.assert_untouched(&ran);
    let verdicts = lab.verdicts();
    assert_eq!(verdicts.len(), cases.len(), "{}", ran.say());
    for (id, verdict) in &verdicts {
        assert_eq!(verdict, "PASS", "{id}\n{}", ran.say());
    }
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    lab.assert_scratch_empty(&ran);
}

// ------------------------------------------------------------ signals

/// Which case a signal interrupts.
#[derive(Clone, Copy)]
enum Scene {
    /// The layout cases on eight workers, so that adapters are starting
    /// when the signal comes; every adapter hangs at its first request.
    Layout,
    /// The EPERM case; only its adapter, running as uid 65534, hangs, and
    /// keeps the case blocked for 5 s after it is killed.
    Eperm,
}

/// Start a run, wait until an adapter hangs in the middle of a case, send
/// `signal`; the run must exit `code` and leave nothing behind.
fn interrupt(signal: Signal, code: i32, scene: Scene) {
    let lab = Lab::new();
    let script = lab.script("hang.sh", HANG);
    let (who, run_args): (&str, &[&str]) = match scene {
        Scene::Layout => ("any 0", &["--run", "layout::*", "--jobs", "8"]),
        Scene::Eperm => ("65534 5", &["--run", "staleness::eperm-is-alive"]),
    };
    let adapter = lab.adapter(&format!("sh {} {who}", script.display()));
    let mut args = vec!["--request-timeout", "100", "--case-timeout", "100"];
    args.extend_from_slice(run_args);
    let child = lab.conform(&adapter, &args).spawn().expect("start rvlf");
    let child = lab.wait_for(child, "an adapter hanging in a case", || lab.hung() > 0);
    if let Scene::Eperm = scene {
        assert!(
            !lab.marked_of(NOBODY).is_empty(),
            "the hanging adapter runs as uid {NOBODY}"
        );
    }
    kill(Pid::from_raw(child.id() as i32), signal).expect("send the signal");
    let ran = finish(child);
    assert_eq!(ran.code, Some(code), "{signal}\n{}", ran.say());
    lab.assert_no_adapter_left(&ran);
    lab.assert_scratch_empty(&ran);
}

#[test]
fn sigterm_stops_the_adapters_removes_the_scratch_and_exits_143() {
    interrupt(Signal::SIGTERM, 143, Scene::Layout);
}

#[test]
fn sighup_stops_the_adapters_removes_the_scratch_and_exits_129() {
    interrupt(Signal::SIGHUP, 129, Scene::Layout);
}

#[test]
fn sigint_stops_the_adapters_removes_the_scratch_and_exits_130() {
    interrupt(Signal::SIGINT, 130, Scene::Layout);
}

#[test]
fn sigint_during_the_eperm_case_removes_uid_65534s_directory_and_exits_130() {
    if !is_root() {
        return skip(
            "sigint_during_the_eperm_case_removes_uid_65534s_directory_and_exits_130",
            "needs root, to run an adapter as uid 65534",
        );
    }
    interrupt(Signal::SIGINT, 130, Scene::Eperm);
}

#[test]
fn sigterm_during_the_eperm_case_removes_uid_65534s_directory_and_exits_143() {
    if !is_root() {
        return skip(
            "sigterm_during_the_eperm_case_removes_uid_65534s_directory_and_exits_143",
            "needs root, to run an adapter as uid 65534",
        );
    }
    interrupt(Signal::SIGTERM, 143, Scene::Eperm);
}

// ------------------------------------------------------------ another user's scratch

/// `setpriv` arguments that take CAP_DAC_OVERRIDE away, or why not.
fn without_dac_override() -> Result<[&'static str; 3], String> {
    let wrapper = [
        "setpriv",
        "--inh-caps=-dac_override",
        "--bounding-set=-dac_override",
    ];
    let out = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .args(["grep", "^CapEff", "/proc/self/status"])
        .output()
        .map_err(|e| format!("setpriv: {e}"))?;
    let eff = String::from_utf8_lossy(&out.stdout);
    let caps = eff
        .split_whitespace()
        .nth(1)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| {
            format!(
                "setpriv did not run: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let (dac_override, chown, setuid) = (1 << 1, 1 << 0, 1 << 7);
    if caps & dac_override != 0 || caps & (chown | setuid) != chown | setuid {
        return Err(format!("setpriv left capabilities {caps:#x}"));
    }
    Ok(wrapper)
}

#[test]
fn uid_65534s_closed_directories_are_removed_by_a_root_without_dac_override() {
    let test = "uid_65534s_closed_directories_are_removed_by_a_root_without_dac_override";
    if !is_root() {
        return skip(test, "needs root, to run an adapter as uid 65534");
    }
    let wrapper = match without_dac_override() {
        Ok(w) => w,
        Err(why) => return skip(test, &why),
    };
    let lab = Lab::new();
    let script = lab.script("litter.sh", LITTER_AS_NOBODY);
    let adapter = lab.adapter(&format!("sh {}", script.display()));
    let ran = run(lab.conform_via(&wrapper, &adapter, &["--run", "staleness::eperm-is-alive"]));
    let verdicts = lab.verdicts();
    // Whatever else happens, nothing of uid 65534's may be left.
    lab.assert_scratch_empty(&ran);
    assert_eq!(
        verdicts,
        [("staleness::eperm-is-alive".to_string(), "PASS".to_string())],
        "{}",
        ran.say()
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    lab.assert_no_adapter_left(&ran);
}
