//! `rvlf report merge` end to end, through the built binary: the matrix of
//! the reference and a mutant, a hand-made hostile report, and bad inputs.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tempfile::TempDir;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");

fn rvlf(args: &[&str]) -> Output {
    Command::new(RVLF).args(args).output().expect("run rvlf")
}

fn say(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn path(dir: &TempDir, name: &str) -> String {
    dir.path()
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// What the page calls a case in its ids: `::` → `--`.
fn anchor(id: &str) -> String {
    id.replace("::", "--")
}

/// Every value of `attr="..."` in the page.
fn attr_values(html: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        .collect()
}

/// The row of a case: from its `<tr id="row-…">` to its `</tr>`.
fn row<'a>(html: &'a str, id: &str) -> &'a str {
    let start = format!("<tr id=\"row-{}\">", anchor(id));
    let at = html
        .find(&start)
        .unwrap_or_else(|| panic!("no row for {id}"));
    let rest = &html[at..];
    &rest[..rest.find("</tr>").expect("row end")]
}

/// The verdicts of a case's cells, left to right.
fn cells(html: &str, id: &str) -> Vec<String> {
    attr_values(row(html, id), "data-verdict")
}

/// Every in-page link has its target.
fn assert_links_resolve(html: &str) {
    let ids: std::collections::HashSet<String> = attr_values(html, " id").into_iter().collect();
    let hrefs = attr_values(html, "href");
    assert!(!hrefs.is_empty());
    for href in hrefs {
        let target = href
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a link out of the page: {href}"));
        assert!(
            ids.contains(target),
            "href=\"{href}\" has no id=\"{target}\""
        );
    }
}

fn assert_page(html: &str) {
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..50]);
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains("<table id=\"matrix\">"));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert_links_resolve(html);
}

fn report(file: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(file).expect("read report")).expect("JSON report")
}

#[test]
fn reference_and_mutant_side_by_side() {
    let dir = TempDir::new().expect("tempdir");
    let (a, b) = (path(&dir, "a.json"), path(&dir, "b.json"));
    let (page, matrix) = (path(&dir, "matrix.html"), path(&dir, "matrix.json"));
    let out = rvlf(&["conform", "--run", "layout::*", "--json", &a]);
    assert_eq!(out.status.code(), Some(0), "{}", say(&out));
    let out = rvlf(&[
        "conform",
        "--mutant",
        "crc32c",
        "--run",
        "layout::*",
        "--json",
        &b,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", say(&out));
    let out = rvlf(&[
        "report", "merge", &a, &b, "--html", &page, "--json", &matrix,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", say(&out));

    let html = fs::read_to_string(&page).expect("the page");
    assert_page(&html);
    let (ra, rb) = (report(&a), report(&b));
    let results = |r: &Value| r["results"].as_array().expect("results").clone();
    let verdict_of = |r: &Value, id: &str| {
        results(r)
            .iter()
            .find(|x| x["id"] == id)
            .map(|x| x["verdict"].as_str().expect("verdict").to_string())
            .unwrap_or_else(|| "none".into())
    };
    let mut ids: Vec<String> = Vec::new();
    for x in results(&ra).iter().chain(results(&rb).iter()) {
        let id = x["id"].as_str().expect("id").to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    assert!(ids.len() >= 5, "{ids:?}");
    let mut differ = 0;
    for id in &ids {
        let want = vec![verdict_of(&ra, id), verdict_of(&rb, id)];
        assert_eq!(cells(&html, id), want, "{id}");
        for (col, v) in want.iter().enumerate() {
            let class = format!("class=\"cell v-{v}\" data-verdict=\"{v}\"");
            assert!(row(&html, id).contains(&class), "{id}: {class}");
            assert!(html.contains(&format!("id=\"d-{}-{}\"", col + 1, anchor(id))));
        }
        differ += usize::from(want[0] != want[1]);
    }
    assert!(differ > 0, "the mutant fails some layout case");
    // The checksum defect's detail is on the page, and the summary counts it.
    assert!(html.contains("CRC32C"));
    assert!(html.contains("rvlf-reference+mutant:crc32c"));

    let m: Value = serde_json::from_str(&fs::read_to_string(&matrix).expect("matrix.json"))
        .expect("matrix JSON");
    assert_eq!(m["format"], "rvlf-conform-matrix/1");
    assert_eq!(m["cases"].as_array().expect("cases").len(), ids.len());
    assert_eq!(m["columns"][0]["summary"]["must_failures"], 0);
    assert_eq!(
        m["columns"][1]["summary"]["must_failures"],
        rb["summary"]["must_failures"]
    );

    // The same report twice: two columns told apart, and the page still links.
    let out = rvlf(&["report", "merge", &a, &a, "--html", &page]);
    assert_eq!(out.status.code(), Some(0), "{}", say(&out));
    let html = fs::read_to_string(&page).expect("the page");
    assert_page(&html);
    assert!(html.contains("(a.json) #2"), "{html}");
}

#[test]
fn everything_from_a_report_is_escaped() {
    let dir = TempDir::new().expect("tempdir");
    let hostile = "<script>alert(\"x\")</script>";
    let evil = json!({
        "format": "rvlf-conform-report/1",
        "implementation": {"protocol": "rvlf-adapter/1", "implementation": "<b>evil</b>",
                           "version": "1'\"", "pid": 1, "features": ["<i>"]},
        "harness": {"name": "rvlf", "version": "9"},
        "catalogue": {"cases": 2, "hash": "abc"},
        "started": "2030-01-01T00:00:00Z",
        "adapter": "sh -c '<x>'",
        "something_new": [1, 2, 3],
        "results": [
            {"id": "layout::length", "section": "§3.1", "level": "MUST",
             "requirement": "<req>", "expected": "<exp>", "verdict": "FAIL",
             "detail": hostile, "seconds": 0.5,
             "stderr_tail": "</pre><script>tail</script>",
             "exchanges": [{"request": {"id": 1, "verb": "<try-acquire>"},
                            "reply": "{\"ok\":\"</td><script>\"}"}]},
            {"id": "evil::<img src=x onerror=y>", "section": "§99", "level": "MAY",
             "requirement": "", "expected": "", "verdict": "<WEIRD>", "detail": "",
             "seconds": 0.0, "known_failure": "<k>"}
        ],
        "seconds": 1.0,
        "errors": ["<err>"],
        "summary": {}
    });
    let partial = json!({
        "format": "rvlf-conform-report/1",
        "implementation": null,
        "results": [{"id": "layout::length", "section": "§3.1", "level": "MUST",
                     "requirement": "r", "expected": "e", "verdict": "PASS", "detail": "",
                     "seconds": 0.1}],
        "seconds": 1.0,
        "errors": []
    });
    let (e, p, page) = (
        path(&dir, "evil.json"),
        path(&dir, "partial.json"),
        path(&dir, "m.html"),
    );
    fs::write(&e, evil.to_string()).expect("write");
    fs::write(&p, partial.to_string()).expect("write");
    let out = rvlf(&["report", "merge", &e, &p, "--html", &page]);
    assert_eq!(out.status.code(), Some(0), "{}", say(&out));
    let html = fs::read_to_string(&page).expect("the page");
    assert_page(&html);
    for raw in [
        "<script", "<b>", "<i>", "<img", "<req>", "<k>", "<err>", "<WEIRD>", "<x>",
    ] {
        assert!(!html.contains(raw), "{raw} reached the page unescaped");
    }
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(
        html.contains("&lt;/pre&gt;&lt;script&gt;tail&lt;/script&gt;"),
        "stderr tail"
    );
    assert!(html.contains("&lt;try-acquire&gt;"), "exchanges");
    assert!(
        html.contains("&lt;b&gt;evil&lt;/b&gt; 1&#39;&quot;"),
        "header"
    );
    // The file name stands in for a missing hello; a missing case is "—".
    assert!(html.contains("partial.json"));
    let evil_row = html
        .split("<tr id=\"row-evil--")
        .nth(1)
        .expect("the hostile case has a row");
    let evil_row = &evil_row[..evil_row.find("</tr>").expect("row end")];
    assert!(
        evil_row.contains("data-verdict=\"&lt;WEIRD&gt;\""),
        "{evil_row}"
    );
    assert!(
        evil_row.contains("class=\"cell v-none\" data-verdict=\"none\"") && evil_row.contains('—'),
        "{evil_row}"
    );
    assert_eq!(cells(&html, "layout::length"), ["FAIL", "PASS"]);
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let dir = TempDir::new().expect("tempdir");
    let good = path(&dir, "good.json");
    fs::write(
        &good,
        json!({"format": "rvlf-conform-report/1", "results": []}).to_string(),
    )
    .expect("write");
    let page = path(&dir, "m.html");
    let cases: [(&str, Option<String>, &str); 5] = [
        ("absent.json", None, "cannot read"),
        (
            "garbage.json",
            Some("not json {".into()),
            "not a JSON conformance report",
        ),
        (
            "other.json",
            Some(json!({"format": "rvlf-conform-report/2", "results": []}).to_string()),
            "rvlf-conform-report/2",
        ),
        (
            "noformat.json",
            Some(json!({"results": []}).to_string()),
            "format is missing",
        ),
        (
            "noresults.json",
            Some(json!({"format": "rvlf-conform-report/1"}).to_string()),
            "results",
        ),
    ];
    for (name, content, says) in cases {
        let file = path(&dir, name);
        if let Some(text) = content {
            fs::write(&file, text).expect("write");
        }
        let out = rvlf(&["report", "merge", &good, &file, "--html", &page]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", say(&out));
        assert!(
            stderr.contains(&file),
            "{name}: the error names the file: {stderr}"
        );
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(!Path::new(&page).exists(), "{name}: no page on error");
    }
    // No output asked for is a usage error.
    let out = rvlf(&["report", "merge", &good]);
    assert_eq!(out.status.code(), Some(2), "{}", say(&out));
}
