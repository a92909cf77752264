//! The HTML pages rvlf writes, rendered by a headless chromium: the DOM it
//! dumps is checked as text, and a screenshot of each page is kept in
//! target/browser/<name>.png for a person to look at.
//!
//! Adding a page kind takes one call: [`render`] the file, then check the
//! [`Dom`] it returns ([`Dom::ids`], [`Dom::hrefs`], [`Dom::tags`]).
//!
//! Without a browser (`chromium`, `chromium-browser` or `google-chrome` on
//! PATH) a test prints `SKIP: <reason>` and returns. libtest captures what a
//! passing test prints, so the reason is ALSO appended to
//! target/browser/SKIPPED, which .ci/run prints after the tests: a skip is
//! never silent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::run;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");
const BROWSER_DEADLINE: Duration = Duration::from_secs(90);
const RVLF_DEADLINE: Duration = Duration::from_secs(120);

/// target/browser, where screenshots and the SKIPPED note go.
fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).expect("create target/browser");
    dir
}

/// The first headless-capable browser on PATH.
fn browser() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err("no chromium, chromium-browser or google-chrome on PATH".to_string())
}

/// Say why a test did not run: on stderr and stdout (captured unless
/// --nocapture) and in target/browser/SKIPPED (which is not).
fn skip(name: &str, reason: &str) {
    let line = format!("SKIP: browser check {name}: {reason}");
    eprintln!("{line}");
    println!("{line}");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_dir().join("SKIPPED"))
        .expect("open target/browser/SKIPPED");
    writeln!(f, "{line}").expect("write target/browser/SKIPPED");
}

/// Render `page` headless: the DOM chromium builds from it, and a screenshot
/// in target/browser/<name>.png. `None` (after saying why) when there is no
/// browser; a browser that fails on the page fails the test.
fn render(page: &Path, name: &str) -> Option<Dom> {
    let chromium = match browser() {
        Ok(b) => b,
        Err(reason) => {
            skip(name, &reason);
            return None;
        }
    };
    let page = std::fs::canonicalize(page).expect("the page exists");
    let url = format!("file://{}", page.display());
    // A profile of its own, so that tests running at once do not share one.
    let profile = tempfile::tempdir().expect("tempdir");
    let headless = |extra: &[String]| {
        let mut c = Command::new(&chromium);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url);
        run(&mut c, BROWSER_DEADLINE)
    };
    let dumped = headless(&["--dump-dom".to_string()]);
    assert_eq!(
        dumped.code,
        Some(0),
        "{} --dump-dom: {}",
        chromium.display(),
        dumped.say()
    );
    assert!(
        dumped.stdout.contains("<body"),
        "no DOM dumped: {}",
        dumped.say()
    );
    let png = out_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let shot = headless(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1280,2000".to_string(),
    ]);
    assert_eq!(
        shot.code,
        Some(0),
        "{} --screenshot: {}",
        chromium.display(),
        shot.say()
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "no screenshot at {}: {}",
        png.display(),
        shot.say()
    );
    Some(Dom(dumped.stdout))
}

/// A start tag of the DOM: its name and attributes, in order.
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }
}

/// The DOM chromium dumped, serialised HTML, checked as plain text.
struct Dom(String);

impl Dom {
    /// Every start tag, in document order (the text of script and style
    /// elements is passed over).
    fn tags(&self) -> Vec<Tag> {
        let s = self.0.as_bytes();
        let mut tags = Vec::new();
        let mut i = 0;
        while i < s.len() {
            if s[i] != b'<' || !s.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
                i += 1;
                continue;
            }
            i += 1;
            let start = i;
            while i < s.len() && !s[i].is_ascii_whitespace() && s[i] != b'>' && s[i] != b'/' {
                i += 1;
            }
            let name = self.0[start..i].to_ascii_lowercase();
            let mut attrs = Vec::new();
            loop {
                while i < s.len() && (s[i].is_ascii_whitespace() || s[i] == b'/') {
                    i += 1;
                }
                if i >= s.len() || s[i] == b'>' {
                    i += 1;
                    break;
                }
                let a = i;
                while i < s.len() && !b" \t\n\r=>/".contains(&s[i]) {
                    i += 1;
                }
                let attr = self.0[a..i].to_ascii_lowercase();
                let mut value = String::new();
                if s.get(i) == Some(&b'=') {
                    i += 1;
                    if let Some(&q @ (b'"' | b'\'')) = s.get(i) {
                        let v = i + 1;
                        i = v;
                        while i < s.len() && s[i] != q {
                            i += 1;
                        }
                        value = unescape(&self.0[v..i.min(s.len())]);
                        i += 1;
                    } else {
                        let v = i;
                        while i < s.len() && !s[i].is_ascii_whitespace() && s[i] != b'>' {
                            i += 1;
                        }
                        value = unescape(&self.0[v..i]);
                    }
                }
                attrs.push((attr, value));
            }
            if name == "script" || name == "style" {
                let close = format!("</{name}");
                i = self.0[i.min(s.len())..]
                    .find(&close)
                    .map_or(s.len(), |at| i + at);
            }
            tags.push(Tag { name, attrs });
        }
        tags
    }

    /// Every `id` in the DOM.
    fn ids(&self) -> BTreeSet<String> {
        self.tags()
            .iter()
            .filter_map(|t| t.attr("id").map(str::to_string))
            .collect()
    }

    /// Every internal link `href="#x"`, as `x`; asserts that an element with
    /// `id="x"` exists for each.
    fn hrefs(&self) -> Vec<String> {
        let ids = self.ids();
        let links: Vec<String> = self
            .tags()
            .iter()
            .filter_map(|t| t.attr("href")?.strip_prefix('#').map(str::to_string))
            .filter(|x| !x.is_empty())
            .collect();
        for x in &links {
            assert!(ids.contains(x), "href=\"#{x}\" names no id in the page");
        }
        links
    }
}

/// The entities a serialised attribute value may hold.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// A page's anchor for a case: its id with `::` as `--` (`layout::length`
/// is `case-layout--length`, `row-layout--length`).
fn anchor(case: &str) -> String {
    case.replace("::", "--")
}

/// Fail, clearly, if `rvlf <cmd> --help` does not offer `--html`.
fn needs_html_flag(cmd: &[&str]) {
    let ran = run(Command::new(RVLF).args(cmd).arg("--help"), RVLF_DEADLINE);
    assert!(
        ran.stdout.contains("--html"),
        "`rvlf {} --help` offers no --html: this build cannot write the page under test",
        cmd.join(" ")
    );
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read the JSON report");
    serde_json::from_str(&text).expect("the JSON report parses")
}

/// The infrastructure itself, on a page written here: links, ids, a table.
#[test]
fn a_small_page_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("small.html");
    std::fs::write(
        &page,
        r##"<!doctype html><html><head><title>small</title>
<style>td > b { color: red }</style>
<script>if (1 < 2) { document.addEventListener("DOMContentLoaded", () =>
  document.getElementById("made").setAttribute("data-count", "3")); }</script>
</head><body>
<nav><a href="#one">one</a> <a href="#two">two</a> <a href="other.html">away</a></nav>
<h1 id="one" title="a &quot;quoted&quot; &amp; <odd> title">One</h1>
<table id="two"><tr id="row-a"><td class="cell v-PASS">PASS</td></tr></table>
<p id="made" data-verdict="PASS">set by the script</p>
</body></html>"##,
    )
    .expect("write the page");
    let Some(dom) = render(&page, "small") else {
        return;
    };
    let ids = dom.ids();
    for id in ["one", "two", "row-a", "made"] {
        assert!(ids.contains(id), "no id {id} in {ids:?}");
    }
    assert_eq!(dom.hrefs(), ["one", "two"]);
    let tags = dom.tags();
    let h1 = tags.iter().find(|t| t.name == "h1").expect("h1");
    assert_eq!(h1.attr("title"), Some("a \"quoted\" & <odd> title"));
    assert_eq!(tags.iter().filter(|t| t.has_class("v-PASS")).count(), 1);
    // The DOM is the one after scripts ran.
    let made = tags
        .iter()
        .find(|t| t.attr("id") == Some("made"))
        .expect("p");
    assert_eq!(made.attr("data-count"), Some("3"));
    // A broken internal link is caught.
    let broken = Dom(r##"<body><a href="#nowhere">x</a></body>"##.to_string());
    assert!(std::panic::catch_unwind(|| broken.hrefs()).is_err());
}

// The three pages rvlf writes: a conformance run, the matrix across runs,
// and a stress history.

/// `rvlf conform --html`: a row per selected case, and the counts of the
/// JSON report of the same run.
#[test]
fn conform_page_in_a_browser() {
    needs_html_flag(&["conform"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (html, report) = (
        dir.path().join("conform.html"),
        dir.path().join("conform.json"),
    );
    let ran = run(
        Command::new(RVLF)
            .args(["conform", "--run", "layout::*", "--json"])
            .arg(&report)
            .arg("--html")
            .arg(&html),
        RVLF_DEADLINE,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    let Some(dom) = render(&html, "conform") else {
        return;
    };
    dom.hrefs();
    let report = json(&report);
    let ids = dom.ids();
    let cases = report["results"].as_array().expect("results");
    assert!(!cases.is_empty());
    for case in cases {
        let id = format!("case-{}", anchor(case["id"].as_str().expect("id")));
        assert!(ids.contains(&id), "no row {id} in the page");
    }
    let counts = report["summary"]["counts"].as_object().expect("counts");
    let mut shown = BTreeMap::new();
    for tag in dom.tags() {
        if let (Some(v), Some(n)) = (tag.attr("data-verdict"), tag.attr("data-count")) {
            let n: u64 = n.parse().expect("data-count is a number");
            assert_eq!(
                Some(n),
                counts.get(v).and_then(|c| c.as_u64()),
                "data-verdict={v} data-count={n} against the JSON's {counts:?}"
            );
            shown.insert(v.to_string(), n);
        }
    }
    for (verdict, n) in counts {
        if n.as_u64() != Some(0) {
            assert!(shown.contains_key(verdict), "no count shown for {verdict}");
        }
    }
}

/// `rvlf report merge a.json b.json --html`: a matrix, a row per case, a
/// cell per report with that report's verdict.
#[test]
fn merged_page_in_a_browser() {
    needs_html_flag(&["report", "merge"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let reports: Vec<PathBuf> = ["reference", "crc32c"]
        .iter()
        .map(|name| {
            let path = dir.path().join(format!("{name}.json"));
            let mut cmd = Command::new(RVLF);
            cmd.args(["conform", "--run", "layout::*", "--json"])
                .arg(&path);
            if *name != "reference" {
                cmd.args(["--mutant", name]);
            }
            let ran = run(&mut cmd, RVLF_DEADLINE);
            assert!(matches!(ran.code, Some(0 | 1)), "{}", ran.say());
            path
        })
        .collect();
    let html = dir.path().join("merged.html");
    let ran = run(
        Command::new(RVLF)
            .args(["report", "merge"])
            .args(&reports)
            .arg("--html")
            .arg(&html),
        RVLF_DEADLINE,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    let Some(dom) = render(&html, "merged") else {
        return;
    };
    dom.hrefs();
    let tags = dom.tags();
    assert!(tags
        .iter()
        .any(|t| t.name == "table" && t.attr("id") == Some("matrix")));
    // The verdicts of each row's cells, in order.
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for tag in &tags {
        if tag.name == "tr" {
            current = tag
                .attr("id")
                .and_then(|id| id.strip_prefix("row-"))
                .map(str::to_string);
            if let Some(row) = &current {
                rows.entry(row.clone()).or_default();
            }
        } else if let (Some(row), true) = (&current, tag.has_class("cell")) {
            let verdict = tag
                .attr("class")
                .unwrap_or_default()
                .split_whitespace()
                .find_map(|c| c.strip_prefix("v-"))
                .unwrap_or_else(|| panic!("a cell of row {row} has no v-<VERDICT> class"));
            rows.get_mut(row).expect("row").push(verdict.to_string());
        }
    }
    let reports: Vec<serde_json::Value> = reports.iter().map(|p| json(p)).collect();
    for case in reports[0]["results"].as_array().expect("results") {
        let id = case["id"].as_str().expect("id");
        let expected: Vec<String> = reports
            .iter()
            .map(|r| {
                r["results"]
                    .as_array()
                    .expect("results")
                    .iter()
                    .find(|c| c["id"] == id)
                    .and_then(|c| c["verdict"].as_str())
                    .expect("the case is in every report")
                    .to_string()
            })
            .collect();
        assert_eq!(rows.get(&anchor(id)), Some(&expected), "row-{}", anchor(id));
    }
}

/// `rvlf stress --html`: a timeline, a lane per writer, a bar per hold.
#[test]
fn stress_page_in_a_browser() {
    needs_html_flag(&["stress"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("stress.html");
    let ran = run(
        Command::new(RVLF)
            .args([
                "stress",
                "--scenario",
                "contention",
                "--writers",
                "2",
                "--count",
                "50",
            ])
            .arg("--html")
            .arg(&html),
        RVLF_DEADLINE,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.say());
    let acquisitions: usize = ran
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("acquisitions"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no acquisitions line: {}", ran.say()));
    let Some(dom) = render(&html, "stress") else {
        return;
    };
    dom.hrefs();
    let tags = dom.tags();
    assert!(tags
        .iter()
        .any(|t| t.name == "svg" && t.attr("id") == Some("timeline")));
    let lanes = tags
        .iter()
        .filter(|t| t.name == "g" && t.has_class("lane"))
        .count();
    assert_eq!(lanes, 2, "one lane per writer");
    let holds = tags
        .iter()
        .filter(|t| t.name == "rect" && t.has_class("hold"))
        .count();
    assert_eq!(holds, acquisitions, "one bar per acquisition");
}
