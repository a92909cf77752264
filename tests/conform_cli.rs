//! `rvlf conform` end to end, through the built binary: listing and
//! selection, misbehaving adapters (one that hangs, one that prints garbage,
//! one that exits at once, one that speaks another protocol major), the JSON
//! and JUnit reports, the expectations file, and Ctrl-C.
//!
//! Every run of the binary has a deadline ([`run`]): a run that overstays it
//! is killed and fails the test. Misbehaving adapters are small `sh` scripts
//! that append `<their pid> <their child's pid>` to a pid file, so that the
//! tests can check that no process of theirs outlives the run.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");
/// Deadline of a run that should finish quickly.
const QUICK: Duration = Duration::from_secs(60);
/// What a run may take beyond its own request deadlines: process start-up,
/// the TERM grace of stopped adapters, a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

/// How one run of the binary ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    fn say(&self) -> String {
        format!(
            "exit {:?} after {:.1} s\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
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

/// Start `rvlf ARGS` with its output captured.
fn start(args: &[&str]) -> (Child, JoinHandle<String>, JoinHandle<String>) {
    let mut child = Command::new(RVLF)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvlf");
    let out = reader(child.stdout.take().expect("piped stdout"));
    let err = reader(child.stderr.take().expect("piped stderr"));
    (child, out, err)
}

/// Wait for a started run; kill it and fail if it takes longer than `limit`.
fn finish(
    (mut child, out, err): (Child, JoinHandle<String>, JoinHandle<String>),
    started: Instant,
    limit: Duration,
) -> Ran {
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rvlf") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rvlf did not finish within {limit:?}; stdout so far:\n{}",
                out.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code: status.code(),
        elapsed: started.elapsed(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Run `rvlf ARGS` to the end, within `limit`.
fn run(args: &[&str], limit: Duration) -> Ran {
    let started = Instant::now();
    finish(start(args), started, limit)
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
    assert!(!ids.is_empty(), "the catalogue has no {area}:: case");
    ids
}

/// `--run ID` for each id.
fn run_args(ids: &[String]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| ["--run".to_string(), id.clone()])
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------ adapters

const HELLO: &str = r#"{"hello":{"protocol":"%s","implementation":"test-adapter","version":"0","pid":%d,"features":[]}}\n"#;

/// A scratch directory with an adapter script in it.
struct Scene {
    dir: TempDir,
}

impl Scene {
    /// An adapter that says hello with `protocol`, then runs `then` (sh).
    /// Each instance forks `sleep 1000` first and records both pids.
    fn new(protocol: &str, then: &str) -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 1000 &\n\
             echo \"$$ $!\" >> '{pids}'\n\
             printf '{HELLO}' '{protocol}' $$\n\
             {then}\n",
            pids = pids.display()
        );
        fs::write(dir.path().join("adapter.sh"), script).expect("write adapter");
        fs::create_dir(dir.path().join("scratch")).expect("scratch dir");
        Scene { dir }
    }

    /// Says hello, then never answers.
    fn hanging() -> Scene {
        Scene::new("rvlf-adapter/1", "exec sleep 1000")
    }

    fn command(&self) -> String {
        format!("sh '{}'", self.dir.path().join("adapter.sh").display())
    }

    fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every pid the adapter instances recorded: theirs and their children's.
    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.path().join("pids"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| p.parse().expect("a pid"))
            .collect()
    }

    /// Fail unless every recorded process is gone (exited; a zombie waiting
    /// for an init that does not reap counts as gone).
    fn assert_no_process_left(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "the adapter never ran");
        // Killing is asynchronous for orphans: give the kernel a moment.
        let until = Instant::now() + Duration::from_secs(2);
        let alive = loop {
            let alive: Vec<i32> = pids.iter().copied().filter(|&p| running(p)).collect();
            if alive.is_empty() || Instant::now() > until {
                break alive;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            alive.is_empty(),
            "adapter processes left after the run: {alive:?}"
        );
    }

    /// Fail if a scratch directory of a run is left.
    fn assert_scratch_empty(&self) {
        let left: Vec<String> = fs::read_dir(self.scratch())
            .expect("read scratch")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("rvlf-conform-"))
            .collect();
        assert!(left.is_empty(), "scratch directories left: {left:?}");
    }
}

/// True while `pid` is a process that has not exited.
fn running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
    }
}

fn json_of(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).expect("read the JSON report");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// `(id, verdict)` of every result in a JSON report.
fn verdicts(report: &serde_json::Value) -> Vec<(String, String)> {
    report["results"]
        .as_array()
        .expect("results is an array")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["verdict"].as_str().expect("verdict").to_string(),
            )
        })
        .collect()
}

// ------------------------------------------------------------ listing

#[test]
fn list_shows_the_catalogue_and_exits_0() {
    let ran = run(&["conform", "--list"], QUICK);
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    let cases = ran.stdout.lines().filter(|l| l.contains("::")).count();
    assert!(cases >= 1, "no case listed:\n{}", ran.say());
    assert!(
        ran.stdout.starts_with("ID "),
        "a header first:\n{}",
        ran.say()
    );
    assert!(
        ran.stdout.contains(&format!("{cases} of ")),
        "a count line:\n{}",
        ran.say()
    );
}

#[test]
fn a_selection_that_matches_nothing_exits_2() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().to_str().expect("utf-8");
    let ran = run(&["conform", "--run", "nomatch*", "--scratch", dir], QUICK);
    assert_eq!(ran.code, Some(2), "{}", ran.say());
    assert!(ran.stdout.contains("no case matches"), "{}", ran.say());
}

// ------------------------------------------------------------ bad adapters

#[test]
fn a_hanging_adapter_gets_hang_within_the_deadline_and_leaves_no_process() {
    let scene = Scene::hanging();
    let ids = ids_of("layout", 2);
    let json = scene.path("report.json");
    let mut args = vec![
        "conform".to_string(),
        "--adapter".into(),
        scene.command(),
        "--request-timeout".into(),
        "1".into(),
        "--jobs".into(),
        "2".into(),
        "--scratch".into(),
        scene.scratch().display().to_string(),
        "--json".into(),
        json.display().to_string(),
    ];
    args.extend(run_args(&ids));
    // Two cases on two workers: one request deadline, plus the margin.
    let ran = run(&strs(&args), Duration::from_secs(1) + MARGIN);
    assert!(matches!(ran.code, Some(1 | 2)), "{}", ran.say());
    let report = json_of(&json);
    for (id, verdict) in verdicts(&report) {
        assert_eq!(verdict, "HANG", "{id}:\n{}", ran.say());
    }
    assert_eq!(verdicts(&report).len(), ids.len());
    scene.assert_no_process_left();
    scene.assert_scratch_empty();
}

#[test]
fn a_garbage_printing_adapter_gets_crash() {
    let scene = Scene::new(
        "rvlf-adapter/1",
        "read line\necho 'this is not a reply'\nexec sleep 1000",
    );
    let ids = ids_of("layout", 1);
    let json = scene.path("report.json");
    let mut args = vec![
        "conform".to_string(),
        "--adapter".into(),
        scene.command(),
        "--scratch".into(),
        scene.scratch().display().to_string(),
        "--json".into(),
        json.display().to_string(),
    ];
    args.extend(run_args(&ids));
    let ran = run(&strs(&args), MARGIN * 2);
    assert!(matches!(ran.code, Some(1 | 2)), "{}", ran.say());
    assert_eq!(
        verdicts(&json_of(&json)),
        vec![(ids[0].clone(), "CRASH".to_string())],
        "{}",
        ran.say()
    );
    assert!(ran.stdout.contains("this is not a reply"), "{}", ran.say());
    scene.assert_no_process_left();
}

#[test]
fn an_adapter_that_exits_at_once_is_an_error_with_exit_2() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let ran = run(
        &[
            "conform",
            "--adapter",
            "exit 3",
            "--scratch",
            scratch.path().to_str().expect("utf-8"),
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.say());
    assert!(ran.stdout.contains("did not start"), "{}", ran.say());
    assert!(ran.stdout.contains("exit status: 3"), "{}", ran.say());
}

#[test]
fn an_adapter_of_another_protocol_major_is_an_error_with_exit_2() {
    let scene = Scene::new("rvlf-adapter/2", "exec sleep 1000");
    let ran = run(
        &[
            "conform",
            "--adapter",
            &scene.command(),
            "--scratch",
            scene.scratch().to_str().expect("utf-8"),
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.say());
    assert!(ran.stdout.contains("rvlf-adapter/2"), "{}", ran.say());
    scene.assert_no_process_left();
}

// ------------------------------------------------------------ reports

#[test]
fn junit_and_json_reports_parse_and_agree_with_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (xml, json) = (dir.path().join("r.xml"), dir.path().join("r.json"));
    // A mutant, so that the reports carry failures as well as passes.
    let ran = run(
        &[
            "conform",
            "--mutant",
            "big-endian-magic",
            "--run",
            "layout::*",
            "--scratch",
            dir.path().to_str().expect("utf-8"),
            "--junit",
            xml.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ],
        QUICK,
    );
    assert_eq!(
        ran.code,
        Some(1),
        "the mutant fails a layout case:\n{}",
        ran.say()
    );

    let report = json_of(&json);
    assert_eq!(report["format"], "rvlf-conform-report/1");
    assert!(report["implementation"]["pid"].is_u64(), "{report}");
    assert!(report["seconds"].is_f64(), "{report}");
    assert_eq!(report["errors"], serde_json::json!([]));
    let summary = &report["summary"];
    for field in [
        "cases",
        "must_failures",
        "known_failures",
        "stale_expectations",
        "exit_code",
    ] {
        assert!(summary[field].is_u64(), "summary.{field}: {summary}");
    }
    assert_eq!(summary["exit_code"], 1);
    let results = verdicts(&report);
    assert_eq!(summary["cases"], results.len());
    let failed = results.iter().filter(|(_, v)| v == "FAIL").count();
    assert!(failed >= 1, "{}", ran.say());

    let text = fs::read_to_string(&xml).expect("read the JUnit report");
    let junit = quick_junit::Report::deserialize_from_str(&text).expect("JUnit parses back");
    assert_eq!(junit.tests, results.len(), "one testcase per case");
    assert_eq!(
        junit.failures,
        summary["must_failures"].as_u64().expect("u64") as usize
    );
    assert_eq!(junit.failures, failed);
    assert_eq!(junit.errors, 0);
    let names: Vec<&str> = junit
        .test_suites
        .iter()
        .flat_map(|s| &s.test_cases)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names.len(), results.len());
    for (id, _) in &results {
        assert!(names.contains(&id.as_str()), "no testcase {id}");
    }
    xmllint(&xml);
}

/// `xmllint --noout FILE` succeeds, when xmllint is installed.
fn xmllint(file: &Path) {
    match Command::new("xmllint").arg("--noout").arg(file).output() {
        Err(e) => eprintln!("xmllint not run ({e}); the quick-junit parse stands alone"),
        Ok(out) => assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

// ------------------------------------------------------------ expectations

/// The MUST cases `--mutant big-endian-magic` fails among `layout::*`.
fn failures_of_big_endian_magic(dir: &Path) -> Vec<String> {
    let json = dir.join("mutant.json");
    let ran = run(
        &[
            "conform",
            "--mutant",
            "big-endian-magic",
            "--run",
            "layout::*",
            "--scratch",
            dir.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    let failed: Vec<String> = verdicts(&json_of(&json))
        .into_iter()
        .filter(|(_, v)| v == "FAIL")
        .map(|(id, _)| id)
        .collect();
    assert!(!failed.is_empty(), "no layout case catches the mutant");
    failed
}

fn expect_file(dir: &Path, ids: &[String]) -> PathBuf {
    let path = dir.join("expect.txt");
    let text: String = ids
        .iter()
        .map(|id| format!("{id} writes the magic big-endian\n"))
        .collect();
    fs::write(&path, format!("# known failures\n{text}")).expect("write expectations");
    path
}

#[test]
fn known_failures_turn_exit_1_into_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let failed = failures_of_big_endian_magic(dir.path());
    let expect = expect_file(dir.path(), &failed);
    let ran = run(
        &[
            "conform",
            "--mutant",
            "big-endian-magic",
            "--run",
            "layout::*",
            "--scratch",
            dir.path().to_str().expect("utf-8"),
            "--expect",
            expect.to_str().expect("utf-8"),
        ],
        QUICK,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    assert!(
        ran.stdout.contains("(known: writes the magic big-endian)"),
        "{}",
        ran.say()
    );
}

#[test]
fn a_listed_case_that_passes_exits_1_and_says_remove_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let passing = ids_of("layout", 1);
    let expect = expect_file(dir.path(), &passing);
    let mut args = vec![
        "conform".to_string(),
        "--scratch".into(),
        dir.path().display().to_string(),
        "--expect".into(),
        expect.display().to_string(),
    ];
    args.extend(run_args(&passing));
    let ran = run(&strs(&args), QUICK);
    assert_eq!(ran.code, Some(1), "{}", ran.say());
    // The table wraps long notes: compare with the line breaks taken out.
    let flat = ran.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("remove it from the expectations file"),
        "{}",
        ran.say()
    );
    assert!(ran.stdout.contains("STALE"), "{}", ran.say());
}

#[test]
fn a_malformed_expectations_file_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expect = dir.path().join("expect.txt");
    fs::write(&expect, "layout::magic\n").expect("write expectations");
    let ran = run(
        &["conform", "--expect", expect.to_str().expect("utf-8")],
        QUICK,
    );
    assert_eq!(ran.code, Some(2), "{}", ran.say());
    assert!(ran.stderr.contains("needs a reason"), "{}", ran.say());
}

// ------------------------------------------------------------ Ctrl-C

#[test]
fn ctrl_c_stops_the_adapters_and_removes_the_scratch_directory() {
    let scene = Scene::hanging();
    let ids = ids_of("layout", 1);
    let mut args = vec![
        "conform".to_string(),
        "--adapter".into(),
        scene.command(),
        "--request-timeout".into(),
        "60".into(),
        "--scratch".into(),
        scene.scratch().display().to_string(),
    ];
    args.extend(run_args(&ids));
    let started = Instant::now();
    let running = start(&strs(&args));
    let rvlf = Pid::from_raw(running.0.id() as i32);
    // Wait until the adapter (started to read its hello, then reused by the
    // case) and its child run, then a little more, so that the run is in the
    // middle of a request.
    let until = Instant::now() + QUICK;
    while scene.pids().len() < 2 {
        assert!(Instant::now() < until, "the case's adapter never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let scratch_dirs = fs::read_dir(scene.scratch()).expect("read scratch").count();
    assert!(scratch_dirs >= 1, "the run made its scratch directory");
    kill(rvlf, Signal::SIGINT).expect("send SIGINT");
    let interrupted = Instant::now();
    let ran = finish(running, started, started.elapsed() + Duration::from_secs(3));
    assert!(
        interrupted.elapsed() < Duration::from_secs(2),
        "exits within 2 s of SIGINT:\n{}",
        ran.say()
    );
    scene.assert_no_process_left();
    scene.assert_scratch_empty();
    assert_eq!(ran.code, Some(130), "{}", ran.say());
}
