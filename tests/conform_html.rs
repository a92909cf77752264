//! The HTML page of `rvlf conform --html`, and the JSON report and
//! catalogue checked against their JSON Schemas (conformance/*.schema.json,
//! with the `jsonschema` crate), through the built binary: the reference,
//! a mutant that fails, and a hostile adapter whose hello, replies and
//! stderr carry markup.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

const RVLF: &str = env!("CARGO_BIN_EXE_rvlf");
const HOSTILE: &str = "<script>alert(1)</script>";

fn rvlf(args: &[&str]) -> Output {
    Command::new(RVLF)
        .args(["conform", "--timeout", "60"])
        .args(args)
        .output()
        .expect("rvlf starts")
}

/// One run's JSON report and HTML page.
struct Run {
    code: Option<i32>,
    json: Value,
    html: String,
}

/// `rvlf conform --run 'layout::*' ARGS --json --html` in `dir`.
fn run_layout(dir: &Path, name: &str, args: &[&str]) -> Run {
    let (json, html) = (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}.html")),
    );
    let mut all = vec!["--run", "layout::*"];
    all.extend_from_slice(args);
    all.extend([
        "--json",
        json.to_str().expect("utf-8"),
        "--html",
        html.to_str().expect("utf-8"),
    ]);
    let out = rvlf(&all);
    let text = fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        code: out.status.code(),
        json: serde_json::from_str(&text).expect("the JSON report parses"),
        html: fs::read_to_string(&html).expect("the HTML page is written"),
    }
}

fn anchor(id: &str) -> String {
    format!("case-{}", id.replace("::", "--"))
}

fn results(report: &Value) -> &Vec<Value> {
    report["results"].as_array().expect("results")
}

/// What every page must be: HTML5 that names the run, a row per result,
/// counts equal to the JSON report's, internal links that resolve.
fn check_page(run: &Run) {
    let page = &run.html;
    assert!(page.starts_with("<!doctype html>\n"), "{page}");
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(page.trim_end().ends_with("</html>"));
    assert!(page.contains(&format!(
        "<dd id=\"harness\">rvlf {}</dd>",
        env!("CARGO_PKG_VERSION")
    )));
    let hash = run.json["catalogue"]["hash"].as_str().expect("hash");
    assert!(page.contains(&format!("data-hash=\"{hash}\"")), "{page}");
    let started = run.json["started"].as_str().expect("started");
    assert!(page.contains(&format!("<time datetime=\"{started}\">")));
    assert!(!results(&run.json).is_empty());
    for r in results(&run.json) {
        let id = r["id"].as_str().expect("id");
        let verdict = r["verdict"].as_str().expect("verdict");
        assert!(
            page.contains(&format!("id=\"{}\" data-verdict=\"{verdict}\"", anchor(id))),
            "{id} {verdict}"
        );
    }
    let counts = run.json["summary"]["counts"].as_object().expect("counts");
    assert_eq!(counts.len(), 8);
    for (verdict, n) in counts {
        assert!(
            page.contains(&format!("data-verdict=\"{verdict}\" data-count=\"{n}\"")),
            "{verdict}: {n}"
        );
    }
    let total = &run.json["summary"]["cases"];
    assert!(page.contains(&format!("id=\"total\" data-count=\"{total}\"")));
    // Ids are unique, and every internal link resolves to one.
    let ids: Vec<&str> = page
        .split(" id=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').expect("closing quote")])
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "duplicate ids");
    for link in page.split("href=\"#").skip(1) {
        let target = &link[..link.find('"').expect("closing quote")];
        assert!(unique.contains(target), "#{target} resolves");
    }
    // The only script is the page's own filter.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
}

#[test]
fn the_reference_page_shows_every_case_and_the_json_counts() {
    let dir = TempDir::new().expect("tempdir");
    let run = run_layout(dir.path(), "reference", &[]);
    assert_eq!(run.code, Some(0));
    check_page(&run);
    assert!(run.html.contains("rvlf-reference"));
    assert!(
        run.html
            .contains("<a class=\"spec\" href=\"PROTOCOL.md#s3.1\">§3.1</a> Layout"),
        "section numbers link to PROTOCOL.md"
    );
    assert!(!run.html.contains("class=\"stderr\""), "all passed");
    assert!(!run.html.contains("id=\"not-passed\""));
}

#[test]
fn the_mutant_page_shows_the_failures_with_their_traces() {
    let dir = TempDir::new().expect("tempdir");
    let run = run_layout(
        dir.path(),
        "mutant",
        &[
            "--mutant",
            "crc32c",
            "--protocol-url",
            "https://example.org/P.md",
        ],
    );
    assert_eq!(run.code, Some(1));
    check_page(&run);
    assert!(run
        .html
        .contains("href=\"https://example.org/P.md#s3.1\">§3.1</a>"));
    let failed: Vec<&Value> = results(&run.json)
        .iter()
        .filter(|r| r["verdict"] != "PASS")
        .collect();
    assert!(!failed.is_empty(), "crc32c fails some layout case");
    for r in &failed {
        let a = anchor(r["id"].as_str().expect("id"));
        assert!(run.html.contains(&format!("href=\"#{a}\"")), "{a} listed");
        assert!(run.html.contains(&format!("id=\"{a}-stderr\"")), "{a}");
        assert!(run.html.contains(&format!("id=\"{a}-exchanges\"")), "{a}");
        let exchanges = r["exchanges"].as_array().expect("exchanges");
        assert!(!exchanges.is_empty(), "{a}: the case sent requests");
        assert!(r["stderr_tail"].is_string());
        let detail = r["detail"].as_str().expect("detail");
        assert!(detail.contains("CRC32C"), "{detail}");
    }
    assert!(run
        .html
        .contains("&quot;verb&quot;:&quot;try-acquire&quot;"));
    for r in results(&run.json).iter().filter(|r| r["verdict"] == "PASS") {
        let a = anchor(r["id"].as_str().expect("id"));
        assert!(!run.html.contains(&format!("id=\"{a}-stderr\"")), "{a}");
        assert!(r.get("exchanges").is_none() && r.get("stderr_tail").is_none());
    }
}

/// An adapter that wraps `rvlf adapter`: it writes markup to stderr, and
/// puts it in its hello's name and in place of `acquired` in its replies.
fn hostile_adapter(dir: &Path) -> String {
    let script = dir.join("hostile.sh");
    let tag = HOSTILE.replace('/', "\\/");
    fs::write(
        &script,
        format!(
            "echo '{HOSTILE} & \"quotes\"' >&2\n\
             '{RVLF}' adapter | sed -u -e 's/\"rvlf-reference\"/\"{tag}\"/' \
             -e 's/\"result\":\"acquired\"/\"result\":\"{tag}\"/'\n"
        ),
    )
    .expect("write the script");
    format!("sh '{}'", script.display())
}

#[test]
fn adapter_supplied_markup_is_escaped() {
    let dir = TempDir::new().expect("tempdir");
    let adapter = hostile_adapter(dir.path());
    let run = run_layout(dir.path(), "hostile", &["--adapter", &adapter]);
    assert_eq!(run.code, Some(1));
    check_page(&run);
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
    assert!(
        run.json["implementation"]["implementation"] == HOSTILE,
        "the hello carries the markup: {}",
        run.json["implementation"]
    );
    assert!(run
        .html
        .contains(&format!("<dd id=\"implementation\">{escaped} ")));
    let crashed: Vec<&Value> = results(&run.json)
        .iter()
        .filter(|r| r["verdict"] == "CRASH")
        .collect();
    assert!(!crashed.is_empty(), "replies with markup are garbage");
    let r = crashed[0];
    assert!(r["detail"].as_str().expect("detail").contains(HOSTILE));
    assert!(r["stderr_tail"].as_str().expect("stderr").contains(HOSTILE));
    let last = r["exchanges"]
        .as_array()
        .and_then(|x| x.last())
        .expect("an exchange");
    assert!(last["reply"].as_str().expect("reply").contains(HOSTILE));
    let a = anchor(r["id"].as_str().expect("id"));
    let row = &run.html[run.html.find(&format!("id=\"{a}\"")).expect("row")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(
        row.contains(&format!("{escaped} &amp; &quot;quotes&quot;")),
        "{row}"
    );
    assert!(
        row.contains(&format!("&quot;result&quot;:&quot;{escaped}&quot;")),
        "{row}"
    );
    assert!(!run.html.contains(HOSTILE));
}

fn validator(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join(name);
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("schema")).expect("schema parses");
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn reports_and_the_catalogue_match_their_schemas() {
    let dir = TempDir::new().expect("tempdir");
    let report = validator("report.schema.json");
    let reference = run_layout(dir.path(), "reference", &[]);
    let mutant = run_layout(dir.path(), "mutant", &["--mutant", "crc32c"]);
    let hostile = run_layout(
        dir.path(),
        "hostile",
        &["--adapter", &hostile_adapter(dir.path())],
    );
    for (run, what) in [
        (&reference, "reference"),
        (&mutant, "mutant"),
        (&hostile, "hostile"),
    ] {
        assert_valid(&report, &run.json, what);
    }
    // The schema does reject: a PASS with a trace, a bad hash.
    let mut wrong = reference.json.clone();
    wrong["results"][0]["exchanges"] = serde_json::json!([]);
    assert!(!report.is_valid(&wrong), "a PASS carries no exchanges");
    let mut wrong = mutant.json.clone();
    wrong["catalogue"]["hash"] = "sha256:xyz".into();
    assert!(!report.is_valid(&wrong));

    let out = rvlf(&["--list", "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).expect("--list --json parses");
    assert_valid(&validator("catalogue.schema.json"), &list, "--list --json");
    let cases = list["cases"].as_array().expect("cases");
    assert_eq!(list["catalogue"]["cases"], cases.len());
    assert_eq!(list["catalogue"], reference.json["catalogue"]);
    assert_eq!(list["catalogue"], mutant.json["catalogue"]);
    // A selection lists fewer cases of the same catalogue.
    let out = rvlf(&["--list", "--json", "--run", "layout::*"]);
    let layout: Value = serde_json::from_slice(&out.stdout).expect("parses");
    assert_eq!(layout["catalogue"], list["catalogue"]);
    assert_eq!(
        layout["cases"].as_array().map(Vec::len),
        Some(results(&reference.json).len())
    );
}

#[test]
fn every_cited_section_has_an_anchor_in_protocol_md() {
    let protocol = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("PROTOCOL.md"))
        .expect("PROTOCOL.md");
    let out = rvlf(&["--list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).expect("parses");
    for case in list["cases"].as_array().expect("cases") {
        let section = case["section"].as_str().expect("section");
        let number = section.trim_start_matches('§');
        let anchor = format!("<a id=\"s{number}\"></a>\n#");
        assert!(
            protocol.contains(&anchor),
            "{}: no anchor for {section}",
            case["id"]
        );
    }
}
