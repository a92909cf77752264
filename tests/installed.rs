//! The installed `rvlf` needs nothing of the source tree at run time.
//!
//! Rather than `cargo install` (a second release build, minutes), the binary
//! cargo built for the tests is copied to a temporary directory outside the
//! source tree and run from an empty working directory, with an environment
//! that names nothing of the checkout: what it could find through its own
//! path, the working directory or cargo's variables is gone, which is what an
//! installed copy sees. (CI's `action` job installs with `cargo install
//! --locked --path`, through conformance/ci.sh.) Only `golden check --dir`
//! is pointed at the checkout, on purpose.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::run;

const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn installed_binary_runs_from_an_empty_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let bin_dir = root.path().join("bin");
    let work = root.path().join("work");
    let home = root.path().join("home");
    for d in [&bin_dir, &work, &home] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let rvlf = bin_dir.join("rvlf");
    std::fs::copy(env!("CARGO_BIN_EXE_rvlf"), &rvlf).expect("copy the binary");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        !rvlf.starts_with(repo),
        "the copy must be outside the source tree"
    );

    let cmd = |args: &[&str]| {
        let mut c = Command::new(&rvlf);
        c.args(args)
            .current_dir(&work)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("HOME", &home)
            .env("TMPDIR", root.path());
        c
    };
    let ok = |args: &[&str]| {
        let ran = run(&mut cmd(args), DEADLINE);
        assert_eq!(ran.code, Some(0), "rvlf {}: {}", args.join(" "), ran.say());
        ran
    };

    ok(&["conform", "--run", "layout::*"]);
    ok(&[
        "stress",
        "--scenario",
        "contention",
        "--writers",
        "2",
        "--count",
        "50",
    ]);
    ok(&["model-check", "--procs", "2", "--rounds", "1"]);

    // inspect a lock that a running `rvlf acquire --hold` holds.
    let data = work.join("data.rvf");
    let lock = work.join("data.rvf.lock");
    let mut holder = cmd(&["acquire", "--hold", "10", "data.rvf"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start rvlf acquire");
    let start = Instant::now();
    while !lock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "rvlf acquire made no {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let inspected = ok(&["inspect", "data.rvf.lock"]);
    assert!(
        inspected.stdout.contains("writer"),
        "inspect said: {}",
        inspected.say()
    );
    assert!(holder.wait().expect("wait for acquire").success());
    assert!(!lock.exists() && !data.exists());

    // golden check from the empty directory: a clear error naming the
    // directory it looked for, and the option to name it.
    let ran = run(&mut cmd(&["golden", "check"]), DEADLINE);
    assert_eq!(ran.code, Some(2), "{}", ran.say());
    let missing = work.join("golden");
    assert!(
        ran.stderr.contains(&missing.display().to_string()) && ran.stderr.contains("--dir"),
        "the error should name {} and suggest --dir: {}",
        missing.display(),
        ran.say()
    );
    ok(&[
        "golden",
        "check",
        "--dir",
        &repo.join("golden").display().to_string(),
    ]);
    // Nothing was left behind in the working directory.
    assert_eq!(std::fs::read_dir(&work).expect("read work").count(), 0);
}
