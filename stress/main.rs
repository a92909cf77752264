//! Multi-process race tests (`cargo test --test stress`): every scenario of
//! `rvlf stress` with a small budget, against the reference (which must show
//! no violation) and against the seed's algorithm (which must be caught), and
//! the history checked again from its saved JSON lines.
//!
//! A `harness = false` target with one trial at a time on the main thread:
//! the engine forks writers, and only a single-threaded process may fork.
//! The fault schedule's seed is printed; `RVLF_STRESS_SEED=N` repeats it.
//!
//! A longer soak of the reference (8 writers, random SIGKILLs and every
//! failpoint, on /dev/shm when it exists):
//! `RVLF_STRESS_SOAK=SECONDS cargo test --release --test stress -- soak`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use rvlf::stress::check::{self, render_first_violation};
use rvlf::stress::faults::{self, Fault};
use rvlf::stress::history;
use rvlf::stress::{report, Config, Outcome, Scenario, Variant};
use rvlf::variant::{self, REFERENCE};
use rvlf_lock::failpoint::Point;

fn main() {
    let mut args = Arguments::from_args();
    // Forking is only safe from a single-threaded process.
    args.test_threads = Some(1);
    let seed = std::env::var("RVLF_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(faults::random_seed);
    println!("stress: seed {seed} (repeat with RVLF_STRESS_SEED={seed})");
    let mut trials = trials(seed);
    if let Some(secs) = std::env::var("RVLF_STRESS_SOAK")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        trials.push(Trial::test(
            "soak::reference_8_writers_random_sigkills",
            move || soak(seed, Duration::from_secs(secs)),
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// A small budget of `scenario`, on tmpfs where there is one: a disk's
/// fsync can stall for seconds when the machine is busy, which says nothing
/// about the lock.
fn config(scenario: Scenario, variant: &'static Variant, seed: u64) -> Config {
    let mut c = Config::new(scenario, variant, seed);
    c.dir = tmpfs().unwrap_or_else(std::env::temp_dir);
    c.stall = Duration::from_secs(20);
    c.timeout = Duration::from_secs(60);
    c
}

/// The original implementation's behaviour, from the catalogue.
fn original() -> &'static Variant {
    variant::find("original").expect("the catalogue has the original")
}

fn tmpfs() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then(|| shm.to_path_buf())
}

/// Run and print the report (shown by `--nocapture` or on failure).
fn run(config: &Config) -> Result<Outcome, Failed> {
    println!();
    let started = Instant::now();
    let outcome = rvlf::stress::run(config).map_err(|e| Failed::from(format!("harness: {e}")))?;
    print!("{}", report::header(config));
    print!("{}", report::run(&outcome));
    println!("({:.1} s)", started.elapsed().as_secs_f64());
    Ok(outcome)
}

/// Fail unless the run finished without any harness problem (a stall
/// included: a dead holder's lock nobody could break stalls the run).
fn completed(outcome: &Outcome) -> Result<(), Failed> {
    if outcome.harness_failed() {
        return Err(format!(
            "the run did not complete: {:?} {:?}",
            outcome.failures, outcome.stalled
        )
        .into());
    }
    Ok(())
}

/// The reference's verdict: mutual exclusion held, the counter agrees, no
/// errors, every acquisition asked for was made.
fn expect_clean(config: &Config, outcome: &Outcome) -> Result<(), Failed> {
    completed(outcome)?;
    let f = &outcome.findings;
    if let Some(why) = &outcome.leftover {
        return Err(format!("the reference left a lock nobody can take: {why}").into());
    }
    if !f.ok() {
        return Err(format!(
            "the reference violated mutual exclusion:\n{}{}",
            report::findings(f),
            render_first_violation(f)
        )
        .into());
    }
    if outcome.totals.errors > 0 || f.release_errors > 0 || f.lost_releases > 0 {
        return Err(format!(
            "the reference reported {} errors, {} failed and {} lost releases: {:?}",
            outcome.totals.errors, f.release_errors, f.lost_releases, f.error_samples
        )
        .into());
    }
    let all_counted = !matches!(config.scenario, Scenario::Storm | Scenario::Pause);
    if let (Some(count), true) = (config.count, all_counted) {
        let asked = count * config.writers as u64;
        // Writers killed after leaving their critical section may repeat none.
        if f.completed + f.died_inside < asked {
            return Err(format!("{} acquisitions of {asked}", f.acquisitions).into());
        }
    }
    Ok(())
}

/// How long the seed's algorithm gets to show a violation, run after run.
/// Its races need two writers inside a window of microseconds at once: with
/// two free cores the first run shows dozens; with one core taken by other
/// work a short run may show none, and one of the next will.
const CATCH_BUDGET: Duration = Duration::from_secs(20);

/// Run `config` until it shows a violation or [`CATCH_BUDGET`] is spent.
fn run_until_caught(config: &Config) -> Result<Outcome, Failed> {
    let started = Instant::now();
    let mut outcome = run(config)?;
    let mut attempt = 1;
    while outcome.findings.violations == 0
        && !outcome.harness_failed()
        && started.elapsed() < CATCH_BUDGET
    {
        attempt += 1;
        println!("no violation yet: attempt {attempt}");
        outcome = run(config)?;
    }
    Ok(outcome)
}

/// The seed's verdict: caught.
fn expect_caught(outcome: &Outcome) -> Result<(), Failed> {
    completed(outcome)?;
    if outcome.findings.violations == 0 {
        return Err(format!(
            "the seed's algorithm was not caught:\n{}",
            report::findings(&outcome.findings)
        )
        .into());
    }
    Ok(())
}

fn trials(seed: u64) -> Vec<Trial> {
    let t = vec![
        Trial::test("contention::reference_excludes", move || {
            let c = config(Scenario::Contention, &REFERENCE, seed);
            expect_clean(&c, &run(&c)?)
        }),
        Trial::test("contention::reference_excludes_on_disk", move || {
            let mut c = config(Scenario::Contention, &REFERENCE, seed);
            c.dir = std::env::temp_dir();
            c.stall = Duration::from_secs(50);
            expect_clean(&c, &run(&c)?)
        }),
        Trial::test("contention::seed_is_caught", move || {
            let mut c = config(Scenario::Contention, original(), seed);
            c.count = Some(300);
            expect_caught(&run_until_caught(&c)?)
        }),
        Trial::test("storm::reference_breaks_each_stale_lock_once", move || {
            let mut c = config(Scenario::Storm, &REFERENCE, seed);
            c.writers = 6;
            let outcome = run(&c)?;
            expect_clean(&c, &outcome)?;
            let f = &outcome.findings;
            if f.planted != 100 || f.recoveries.len() != 100 {
                return Err(format!(
                    "{} stale locks planted, {} recovered: every round must end in an acquisition",
                    f.planted,
                    f.recoveries.len()
                )
                .into());
            }
            Ok(())
        }),
        Trial::test("storm::reference_breakers_killed_mid_break", move || {
            let mut c = config(Scenario::Storm, &REFERENCE, seed);
            c.writers = 6;
            c.faults = vec![
                Fault::Point(Point::AfterRead),
                Fault::Point(Point::BeforeBreakUnlink),
                Fault::Point(Point::AfterBreakUnlink),
            ];
            c.fault_every = 5;
            let outcome = run(&c)?;
            expect_clean(&c, &outcome)?;
            breakers_died(&outcome.findings)
        }),
        Trial::test("storm::seed_is_caught", move || {
            let mut c = config(Scenario::Storm, original(), seed);
            c.writers = 6;
            c.count = Some(300);
            expect_caught(&run_until_caught(&c)?)
        }),
        Trial::test(
            "kill::reference_survivors_recover_and_never_overlap",
            move || {
                let mut c = config(Scenario::Kill, &REFERENCE, seed);
                c.count = Some(150);
                c.fault_every = 5;
                let outcome = run(&c)?;
                expect_clean(&c, &outcome)?;
                holders_died_and_recovered(&outcome.findings)
            },
        ),
        Trial::test("kill::seed_is_caught", move || {
            let mut c = config(Scenario::Kill, original(), seed);
            c.count = Some(150);
            expect_caught(&run_until_caught(&c)?)
        }),
        Trial::ignorable_test("pause::reference_paused_holder_keeps_its_lock", move || {
            let mut c = config(Scenario::Pause, &REFERENCE, seed);
            c.count = Some(20);
            c.pause_every = 5;
            let outcome = run(&c)?;
            if let Some(reason) = outcome.skipped {
                return Ok(Completion::ignored_with(reason));
            }
            expect_clean(&c, &outcome)?;
            let f = &outcome.findings;
            expect_host(f, "rvlf-stress-paused")?;
            // Stale by age (another host, an hour old), yet guarded by the
            // paused holder's flock (§7.2): contenders were told so.
            if f.paused_intervals != 4
                || f.paused_overlapped != 0
                || outcome.totals.busy_guarded == 0
            {
                return Err(format!(
                    "{} pauses, {} overtaken, {} guarded answers",
                    f.paused_intervals, f.paused_overlapped, outcome.totals.busy_guarded
                )
                .into());
            }
            Ok(Completion::Completed)
        }),
        Trial::ignorable_test("pause::seed_paused_holder_is_overtaken", move || {
            let mut c = config(Scenario::Pause, original(), seed);
            c.count = Some(20);
            c.pause_every = 5;
            let outcome = run(&c)?;
            if let Some(reason) = outcome.skipped {
                return Ok(Completion::ignored_with(reason));
            }
            completed(&outcome)?;
            let f = &outcome.findings;
            if f.paused_overlapped != f.paused_intervals || f.paused_intervals == 0 {
                return Err(format!(
                    "{} of {} paused holders overtaken: the seed breaks every one",
                    f.paused_overlapped, f.paused_intervals
                )
                .into());
            }
            // A paused holder read the counter before it stopped and writes
            // it back after: every increment made meanwhile is lost.
            if f.counter_ok() {
                return Err(format!("no lost counter update: {:?}", f.counter).into());
            }
            Ok(Completion::Completed)
        }),
        Trial::ignorable_test("hosts::reference_excludes_across_hosts", move || {
            let mut c = config(Scenario::Hosts, &REFERENCE, seed);
            c.count = Some(150);
            c.fault_every = 5;
            let outcome = run(&c)?;
            if let Some(reason) = outcome.skipped {
                return Ok(Completion::ignored_with(reason));
            }
            expect_clean(&c, &outcome)?;
            holders_died_and_recovered(&outcome.findings)?;
            for i in 0..c.writers {
                expect_host(&outcome.findings, &format!("rvlf-stress-host-{i}"))?;
            }
            Ok(Completion::Completed)
        }),
        Trial::ignorable_test("hosts::seed_is_caught", move || {
            let mut c = config(Scenario::Hosts, original(), seed);
            c.count = Some(150);
            let outcome = run_until_caught(&c)?;
            if let Some(reason) = outcome.skipped {
                return Ok(Completion::ignored_with(reason));
            }
            expect_caught(&outcome)?;
            Ok(Completion::Completed)
        }),
        Trial::test("adapter::reference_adapters_exclude", move || {
            let mut c = config(Scenario::Contention, &REFERENCE, seed);
            c.adapter = Some(adapter(None));
            c.count = Some(150);
            expect_clean(&c, &run(&c)?)
        }),
        Trial::test("adapter::mixed_with_library_writers_and_kills", move || {
            let mut c = config(Scenario::Kill, &REFERENCE, seed);
            c.adapter = Some(adapter(None));
            c.mix = true;
            c.count = Some(100);
            c.fault_every = 5;
            let outcome = run(&c)?;
            expect_clean(&c, &outcome)?;
            holders_died_and_recovered(&outcome.findings)
        }),
        Trial::test("adapter::seed_mutant_is_caught", move || {
            let mut c = config(Scenario::Contention, &REFERENCE, seed);
            c.adapter = Some(adapter(Some("seed")));
            c.count = Some(300);
            expect_caught(&run_until_caught(&c)?)
        }),
        Trial::test(
            "history::saved_history_rechecks_to_the_same_findings",
            move || recheck(seed),
        ),
        Trial::test(
            "cli::progress_lines_when_stderr_is_not_a_terminal",
            move || progress_lines(seed),
        ),
        Trial::test(
            "picture::reference_run_draws_every_acquisition",
            move || picture_of_reference(seed),
        ),
        Trial::test(
            "picture::original_first_overlap_is_highlighted",
            move || picture_of_overlap(seed),
        ),
    ];
    t
}

/// Some holder's record carried this host name: the simulated host is real
/// to the library.
fn expect_host(f: &check::Findings, name: &str) -> Result<(), Failed> {
    if !f.hosts.contains(name) {
        return Err(format!("no record names host {name:?}; hosts seen: {:?}", f.hosts).into());
    }
    Ok(())
}

/// The reference's own adapter, the binary cargo built for this test.
fn adapter(mutant: Option<&str>) -> String {
    let exe = env!("CARGO_BIN_EXE_rvlf");
    match mutant {
        None => format!("'{exe}' adapter"),
        Some(m) => format!("'{exe}' adapter --mutant {m}"),
    }
}

/// Holders died and others acquired after them. (That every dead holder's
/// lock was broken is shown by the run not stalling and by the final acquire.)
fn holders_died_and_recovered(f: &check::Findings) -> Result<(), Failed> {
    if f.holder_deaths == 0 || f.recoveries.is_empty() {
        return Err(format!(
            "{} holders died, {} recoveries: the faults did not strike",
            f.holder_deaths,
            f.recoveries.len()
        )
        .into());
    }
    Ok(())
}

fn breakers_died(f: &check::Findings) -> Result<(), Failed> {
    let breaking = [
        "failpoint before-break-unlink",
        "failpoint after-break-unlink",
    ];
    let n: u64 = breaking.iter().filter_map(|c| f.deaths.get(*c)).sum();
    if n == 0 {
        return Err(format!("no breaker died mid-break: {:?}", f.deaths).into());
    }
    Ok(())
}

/// Save a history with violations, read it back, check it again: the same
/// findings, and the same first violation.
fn recheck(seed: u64) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| Failed::from(e.to_string()))?;
    let path = dir.path().join("history.jsonl");
    let mut c = config(Scenario::Contention, original(), seed);
    c.count = Some(200);
    c.history = Some(path.clone());
    let outcome = run_until_caught(&c)?;
    expect_caught(&outcome)?;
    let file = std::fs::File::open(&path).map_err(|e| Failed::from(e.to_string()))?;
    let saved = history::read_json(std::io::BufReader::new(file))?;
    let again = check::check(&saved.events, saved.end.map(|e| e.counter));
    if again != outcome.findings {
        return Err(format!(
            "re-checked:\n{}\nduring the run:\n{}",
            report::findings(&again),
            report::findings(&outcome.findings)
        )
        .into());
    }
    if saved.run.map(|r| r.seed) != Some(seed.to_string()) {
        return Err("the history does not name its seed".into());
    }
    Ok(())
}

/// `rvlf stress` with stderr a pipe prints progress lines (at a short
/// interval here, and one at the end), plain lines with no `\r`; none with
/// `--progress-every 0`. Their presence and form are checked, not their
/// timing: the last one is printed once every writer is done, so it counts
/// every acquisition.
fn progress_lines(seed: u64) -> Result<(), Failed> {
    let dir = tmpfs().unwrap_or_else(std::env::temp_dir);
    let stress = |every: &str| {
        let seed = seed.to_string();
        let args = [
            "stress",
            "--writers",
            "2",
            "--count",
            "200",
            "--seed",
            &seed,
            "--progress-every",
            every,
        ];
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvlf"))
            .args(args)
            .arg("--dir")
            .arg(&dir)
            .output()
            .map_err(|e| Failed::from(format!("rvlf stress: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        println!("rvlf {}\n{stdout}{stderr}", args.join(" "));
        if !out.status.success() || !stdout.contains(&format!("seed {seed} ")) {
            return Err(Failed::from(format!("rvlf stress: {}", out.status)));
        }
        Ok::<String, Failed>(stderr)
    };
    let stderr = stress("50ms")?;
    if stderr.contains(['\r', '\x1b']) {
        return Err("a terminal's live line in a pipe".into());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    let well_formed = |line: &str| {
        let Some(rest) = line.strip_prefix("progress ") else {
            return false;
        };
        let Some((secs, counts)) = rest.split_once(" s: ") else {
            return false;
        };
        let parts: Vec<&str> = counts.split(", ").collect();
        let number = |s: &str, suffix: &str| {
            s.strip_suffix(suffix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        secs.parse::<f64>().is_ok()
            && parts.len() == 4
            && parts[0]
                .split_once(" acquisitions (")
                .is_some_and(|(n, rate)| number(n, "") && number(rate, "/s)"))
            && number(parts[1], " violations")
            && number(parts[2], " faults injected")
            && number(parts[3], " deaths")
    };
    if lines.is_empty() || !lines.iter().all(|l| well_formed(l)) {
        return Err(format!("not progress lines: {stderr:?}").into());
    }
    if !last.contains(": 400 acquisitions (") || !last.contains(" 0 violations,") {
        return Err(format!("the last line does not count all 400 acquisitions: {last}").into());
    }
    let stderr = stress("0")?;
    if stderr.contains("progress") {
        return Err(format!("progress with --progress-every 0: {stderr:?}").into());
    }
    Ok(())
}

/// Not part of the default run: the reference under random SIGKILLs and
/// every failpoint, 8 writers, for `duration`.
fn soak(seed: u64, duration: Duration) -> Result<(), Failed> {
    let mut c = config(Scenario::Kill, &REFERENCE, seed);
    c.writers = 8;
    c.count = None;
    c.duration = Some(duration);
    c.fault_every = 2000;
    c.timeout = duration + Duration::from_secs(120);
    c.dir = tmpfs().unwrap_or_else(std::env::temp_dir);
    let outcome = run(&c)?;
    completed(&outcome)?;
    if !outcome.findings.ok() {
        return Err(format!(
            "the reference violated mutual exclusion:\n{}",
            render_first_violation(&outcome.findings)
        )
        .into());
    }
    Ok(())
}

/// `rvlf stress ARGS`: its exit code and its output, printed.
fn rvlf_stress(args: &[&str]) -> Result<Option<i32>, Failed> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvlf"))
        .arg("stress")
        .args(args)
        .output()
        .map_err(|e| Failed::from(format!("rvlf stress: {e}")))?;
    println!(
        "rvlf stress {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.status.code())
}

fn read_text(path: &Path) -> Result<String, Failed> {
    std::fs::read_to_string(path).map_err(|e| Failed::from(format!("{}: {e}", path.display())))
}

/// The SVG of a picture file, and the one its page embeds, are well-formed
/// XML, by `xmllint` when it is installed.
fn xml_well_formed(svg: &str, html: &str) -> Result<(), Failed> {
    use std::io::Write as _;
    let embedded = match (html.find("<svg"), html.rfind("</svg>")) {
        (Some(a), Some(b)) => &html[a..b + "</svg>".len()],
        _ => return Err("the page embeds no SVG".into()),
    };
    if embedded != svg.trim_end() {
        return Err("the page does not embed the same SVG".into());
    }
    let child = std::process::Command::new("xmllint")
        .args(["--noout", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            println!("skipping the XML check: xmllint could not be started ({e})");
            return Ok(());
        }
    };
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(svg.as_bytes())
        .map_err(|e| Failed::from(format!("xmllint: {e}")))?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| Failed::from(format!("xmllint: {e}")))?;
    if !out.status.success() {
        return Err(format!(
            "the SVG is not well-formed XML: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// The attribute lists of the first overlap's rectangles.
fn overlap_rects(svg: &str) -> Vec<String> {
    svg.match_indices("<rect class=\"hold overlap\"")
        .map(|(i, _)| {
            let rest = &svg[i..];
            rest[..rest.find('>').unwrap_or(rest.len())].to_string()
        })
        .collect()
}

/// A reference run with `--html` and `--svg`: one lane per writer, a bar per
/// acquisition, no overlap; and the same from its saved history.
fn picture_of_reference(seed: u64) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| Failed::from(e.to_string()))?;
    let scratch = tmpfs().unwrap_or_else(std::env::temp_dir);
    let (html, svg, saved) = (
        dir.path().join("run.html"),
        dir.path().join("run.svg"),
        dir.path().join("run.jsonl"),
    );
    let seed = seed.to_string();
    let p = |path: &Path| path.display().to_string();
    let code = rvlf_stress(&[
        "--writers",
        "3",
        "--count",
        "200",
        "--seed",
        &seed,
        "--progress-every",
        "0",
        "--dir",
        &p(&scratch),
        "--history",
        &p(&saved),
        "--html",
        &p(&html),
        "--svg",
        &p(&svg),
    ])?;
    if code != Some(0) {
        return Err(format!("rvlf stress exited with {code:?}").into());
    }
    let (page, picture) = (read_text(&html)?, read_text(&svg)?);
    if !page.starts_with("<!doctype html>") || !page.contains("<meta charset=\"utf-8\">") {
        return Err("not an HTML5 page".into());
    }
    let lanes = picture.matches("<g class=\"lane\" data-writer=").count();
    let holds = picture.matches("<rect class=\"hold\"").count();
    if lanes != 3 || holds != 600 || !picture.contains("data-drawn=\"600\"") {
        return Err(
            format!("{lanes} lanes, {holds} holding intervals drawn: 3 and 600 expected").into(),
        );
    }
    if picture.contains("overlap\"") {
        return Err("an overlap drawn in a clean run".into());
    }
    for id in ["timeline", "gaps", "holds"] {
        if !picture.contains(&format!("<svg id=\"{id}\"")) {
            return Err(format!("no <svg id=\"{id}\">").into());
        }
    }
    xml_well_formed(&picture, &page)?;
    let again = dir.path().join("again.html");
    let code = rvlf_stress(&["--check", &p(&saved), "--html", &p(&again)])?;
    if code != Some(0) || read_text(&again)? != page {
        return Err(format!("--check --html: exit {code:?}, or another picture").into());
    }
    Ok(())
}

/// The original algorithm overlaps: exactly the checker's first overlapping
/// pair is drawn as such, with its caption; also from the saved history.
fn picture_of_overlap(seed: u64) -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| Failed::from(e.to_string()))?;
    let scratch = tmpfs().unwrap_or_else(std::env::temp_dir);
    let (html, saved) = (dir.path().join("run.html"), dir.path().join("run.jsonl"));
    let seed = seed.to_string();
    let p = |path: &Path| path.display().to_string();
    let started = Instant::now();
    loop {
        let code = rvlf_stress(&[
            "--variant",
            "original",
            "--count",
            "300",
            "--seed",
            &seed,
            "--progress-every",
            "0",
            "--dir",
            &p(&scratch),
            "--history",
            &p(&saved),
            "--html",
            &p(&html),
        ])?;
        match code {
            Some(1) => break,
            Some(0) if started.elapsed() < CATCH_BUDGET => println!("no violation yet"),
            other => return Err(format!("rvlf stress exited with {other:?}").into()),
        }
    }
    let file = std::fs::File::open(&saved).map_err(|e| Failed::from(e.to_string()))?;
    let history = history::read_json(std::io::BufReader::new(file))?;
    let f = check::check(&history.events, history.end.map(|e| e.counter));
    let Some((a, b)) = &f.first else {
        return Err("exit 1 without an overlap".into());
    };
    let page = read_text(&html)?;
    let rects = overlap_rects(&page);
    let expected: Vec<String> = [a, b]
        .iter()
        .map(|i| format!("data-writer=\"{}\" data-seq=\"{}\"", i.writer, i.seq))
        .collect();
    let matches = rects.len() == 2
        && expected
            .iter()
            .all(|e| rects.iter().filter(|r| r.contains(e.as_str())).count() == 1);
    if !matches {
        return Err(format!("overlap rectangles {rects:?}, expected {expected:?}").into());
    }
    let caption = format!("First overlap: writer {} (pid {}", b.writer, b.pid);
    if !page.contains("id=\"overlap-caption\"") || !page.contains(&caption) {
        return Err(format!("no caption {caption:?}").into());
    }
    let holds = page.matches("<rect class=\"hold").count() as u64;
    if holds != f.acquisitions.min(5000) {
        return Err(format!("{holds} drawn of {} acquisitions", f.acquisitions).into());
    }
    let start = page.find("<svg").unwrap_or(0);
    let end = page
        .rfind("</svg>")
        .map_or(page.len(), |e| e + "</svg>".len());
    xml_well_formed(&page[start..end], &page)?;
    let again = dir.path().join("again.html");
    let code = rvlf_stress(&["--check", &p(&saved), "--html", &p(&again)])?;
    let redrawn = read_text(&again)?;
    if code != Some(1) || overlap_rects(&redrawn) != rects {
        return Err(format!("--check --html: exit {code:?}, or another overlap drawn").into());
    }
    Ok(())
}
