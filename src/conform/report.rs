//! Reports of a conformance run: the human table grouped by PROTOCOL.md
//! section, JSON for machines, JUnit XML for CI front ends, and the
//! catalogue table of `--list`.
//!
//! All renderers read the same [`Summary`], so the counts, the number of
//! MUST failures and the exit status agree across formats.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::case::{Case, Verdict};
use super::runner::{CaseResult, Report};

/// Every verdict, in the order summaries list them.
pub const VERDICTS: [Verdict; 8] = [
    Verdict::Pass,
    Verdict::Fail,
    Verdict::NonStrict,
    Verdict::Skip,
    Verdict::Unimplemented,
    Verdict::Hang,
    Verdict::Crash,
    Verdict::Error,
];

/// Name and version of the JSON report's shape (`format` field).
pub const JSON_FORMAT: &str = "rvlf-conform-report/1";

/// Width a line of the human table aims at.
const WIDTH: usize = 100;
/// Longest detail the human table prints for one case.
const MAX_DETAIL: usize = 400;

/// The figures every report format shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Number of results.
    pub cases: usize,
    /// Results per verdict label (`PASS`, `FAIL`, `NON-STRICT`, `SKIP`,
    /// `UNIMPLEMENTED`, `HANG`, `CRASH`, `ERROR`), every label present.
    pub counts: BTreeMap<&'static str, usize>,
    /// MUST cases that failed (FAIL, HANG, CRASH or UNIMPLEMENTED) and are
    /// not listed as known failures.
    pub must_failures: usize,
    /// Cases listed as known failures that did fail.
    pub known_failures: usize,
    /// Cases listed as known failures that passed: the list must shrink.
    pub stale_expectations: usize,
    /// The exit status of `rvlf conform` (0, 1 or 2).
    pub exit_code: u8,
    /// What the exit status means, in words.
    pub exit_meaning: String,
}

impl Summary {
    pub fn of(report: &Report) -> Summary {
        let counts = VERDICTS
            .iter()
            .map(|&v| (v.label(), report.count(v)))
            .collect();
        let results = &report.results;
        let exit_code = report.exit_code();
        Summary {
            cases: results.len(),
            counts,
            must_failures: results
                .iter()
                .filter(|r| r.known_failure.is_none() && r.verdict.fails(r.level))
                .count(),
            known_failures: results.iter().filter(|r| is_known_failure(r)).count(),
            stale_expectations: results.iter().filter(|r| is_stale(r)).count(),
            exit_code,
            exit_meaning: exit_meaning(report, exit_code),
        }
    }
}

/// Listed in the expectations file, and did not pass.
fn is_known_failure(r: &CaseResult) -> bool {
    r.known_failure.is_some() && r.verdict != Verdict::Pass
}

/// Listed in the expectations file, but passed.
fn is_stale(r: &CaseResult) -> bool {
    r.known_failure.is_some() && r.verdict == Verdict::Pass
}

fn exit_meaning(report: &Report, code: u8) -> String {
    match code {
        0 => "no MUST case failed".into(),
        1 if report
            .results
            .iter()
            .any(|r| !is_stale(r) && r.counts_as_failure()) =>
        {
            "a MUST case failed".into()
        }
        1 => "an expected failure passed: the expectations file is stale".into(),
        _ if !report.errors.is_empty() => {
            "the harness or the adapter's start-up failed: nothing is known about the \
             implementation"
                .into()
        }
        _ if report.results.is_empty() => "nothing ran".into(),
        _ => "the harness failed on some case (ERROR): the run is incomplete".into(),
    }
}

// ---------------------------------------------------------------- sections

/// The numbers of a section reference: "§3.1" → [3, 1]; empty if none.
fn section_key(section: &str) -> Vec<u32> {
    let digits = section.trim_start_matches(|c: char| !c.is_ascii_digit());
    let end = digits
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(digits.len());
    digits[..end]
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect()
}

/// Section titles from PROTOCOL.md's headings ("### 3.1 Layout" → "Layout").
fn section_title(section: &str) -> Option<&'static str> {
    const SPEC: &str = include_str!("../../PROTOCOL.md");
    let key = section_key(section);
    if key.is_empty() {
        return None;
    }
    SPEC.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .find_map(|heading| {
            let (number, title) = heading.split_once(' ')?;
            (section_key(number.trim_end_matches('.')) == key).then_some(title.trim())
        })
}

/// "§3.1 Layout", or the section as the case gave it.
fn section_heading(section: &str) -> String {
    match section_title(section) {
        Some(title) => format!("{section} {title}"),
        None => section.to_string(),
    }
}

/// The results grouped by section, sections in numeric order (§3.1 < §4.2
/// < §10), cases in report order within a section.
fn by_section(results: &[CaseResult]) -> Vec<(&str, Vec<&CaseResult>)> {
    let mut groups: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(s, _)| *s == r.section) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.section, vec![r])),
        }
    }
    // Sections without a number go last, by name.
    groups.sort_by(|(a, _), (b, _)| {
        let (ka, kb) = (section_key(a), section_key(b));
        (ka.is_empty(), ka, *a).cmp(&(kb.is_empty(), kb, *b))
    });
    groups
}

/// The part of an id before `::`: the case's area.
fn area(id: &str) -> &str {
    id.split_once("::").map_or(id, |(a, _)| a)
}

// ---------------------------------------------------------------- human

/// The human table: header, results by section, warnings, summary.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    let id_width = report
        .results
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(0)
        .min(44);
    for (section, results) in by_section(&report.results) {
        let _ = writeln!(out, "\n{}", section_heading(section));
        for r in results {
            out.push_str(&case_line(r, id_width));
        }
    }
    if !report.unknown_expectations.is_empty() {
        out.push('\n');
        for id in &report.unknown_expectations {
            let _ = writeln!(
                out,
                "warning: the expectations file lists `{id}`, which no selected case has"
            );
        }
    }
    out.push('\n');
    out.push_str(&summary_lines(report));
    out
}

fn header(out: &mut String, report: &Report) {
    match &report.implementation {
        Some(h) => {
            let features = if h.features.is_empty() {
                "none".to_string()
            } else {
                h.features.join(", ")
            };
            let _ = writeln!(
                out,
                "Implementation: {} {} (pid {}, protocol {}, optional verbs: {features})",
                h.implementation, h.version, h.pid, h.protocol
            );
        }
        None => out.push_str("Implementation: unknown (no hello from the adapter)\n"),
    }
    if !report.errors.is_empty() {
        out.push_str("\nERRORS: the run says nothing about the implementation\n");
        for e in &report.errors {
            out.push_str(&wrap(e, "  ! ", "    ", WIDTH));
        }
    }
}

/// What the table says after the id: the known-failure or stale mark, then
/// the detail.
fn note(r: &CaseResult) -> String {
    let detail = r.detail.split_whitespace().collect::<Vec<_>>().join(" ");
    let detail = truncate(&detail, MAX_DETAIL);
    match &r.known_failure {
        Some(reason) if r.verdict == Verdict::Pass => {
            format!("STALE EXPECTATION (listed as known: {reason}): {detail}")
        }
        Some(reason) if detail.is_empty() => format!("(known: {reason})"),
        Some(reason) => format!("(known: {reason}) {detail}"),
        None => detail,
    }
}

/// One case: `  VERDICT        LEVEL   id   note`, the note wrapped under itself.
fn case_line(r: &CaseResult, id_width: usize) -> String {
    let lead = format!(
        "  {:<13}  {:<6}  {:<id_width$}",
        r.verdict.label(),
        r.level.to_string(),
        r.id
    );
    let note = note(r);
    if note.is_empty() {
        return format!("{}\n", lead.trim_end());
    }
    let indent = " ".repeat(2 + 13 + 2 + 6 + 2 + id_width + 2);
    // A long id pushes the note to its own lines.
    if lead.chars().count() + 2 > indent.len() || indent.len() + 20 > WIDTH {
        let indent = " ".repeat(6);
        return format!(
            "{}\n{}",
            lead.trim_end(),
            wrap(&note, &indent, &indent, WIDTH)
        );
    }
    wrap(&note, &format!("{lead}  "), &indent, WIDTH)
}

/// `text` as lines of at most `width` characters: the first starting with
/// `first`, the rest with `rest`; words too long for a line are cut.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let room = width.saturating_sub(rest.chars().count()).max(20);
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace().flat_map(|w| pieces(w, room)) {
        let fits = line.chars().count() + 1 + word.chars().count() <= width;
        if !empty && !fits {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(&word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// `word` cut into pieces of at most `room` characters.
fn pieces(word: &str, room: usize) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    chars.chunks(room).map(|c| c.iter().collect()).collect()
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn summary_lines(report: &Report) -> String {
    let s = Summary::of(report);
    let counts: Vec<String> = s
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(label, n)| format!("{n} {label}"))
        .collect();
    let counts = if counts.is_empty() {
        "nothing ran".to_string()
    } else {
        counts.join(", ")
    };
    let mut out = format!(
        "{} cases: {counts}\n{} MUST failure{}",
        s.cases,
        s.must_failures,
        if s.must_failures == 1 { "" } else { "s" }
    );
    if s.known_failures > 0 {
        let _ = write!(out, ", {} known", s.known_failures);
    }
    if s.stale_expectations > 0 {
        let _ = write!(out, ", {} stale expectation(s)", s.stale_expectations);
    }
    let _ = writeln!(out, "; {:.1} s", report.seconds);
    let _ = writeln!(out, "exit {}: {}", s.exit_code, s.exit_meaning);
    out
}

// ---------------------------------------------------------------- JSON

/// The JSON report.
#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    #[serde(flatten)]
    report: &'a Report,
    summary: Summary,
}

/// The report as JSON. Its fields, stable within [`JSON_FORMAT`]:
///
/// - `format`: `"rvlf-conform-report/1"`.
/// - `implementation`: the adapter's hello (`protocol`, `implementation`,
///   `version`, `pid`, `features`), or `null` if it never said hello.
/// - `results`: one object per case, in catalogue order: `id`, `section`
///   (e.g. `"§3.1"`), `level` (`MUST`/`SHOULD`/`MAY`), `requirement`,
///   `expected`, `verdict` (`PASS`, `FAIL`, `NON-STRICT`, `SKIP`,
///   `UNIMPLEMENTED`, `HANG`, `CRASH`, `ERROR`), `detail` (empty on a plain
///   pass), `seconds`, and `known_failure` (the reason from `--expect`; absent
///   when the case is not listed).
/// - `seconds`: the wall time of the run.
/// - `errors`: harness or adapter start-up problems (non-empty means exit 2).
/// - `unknown_expectations`: ids in the expectations file that no selected
///   case has.
/// - `summary`: `cases`, `counts` (every verdict label → number),
///   `must_failures`, `known_failures`, `stale_expectations`, `exit_code`,
///   `exit_meaning` (see [`Summary`]).
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&JsonReport {
        format: JSON_FORMAT,
        report,
        summary: Summary::of(report),
    })
}

// ---------------------------------------------------------------- JUnit

/// The report as JUnit XML (quick-junit).
///
/// Shape: one `<testsuite>` per PROTOCOL.md section, named like "§3.1
/// Layout", sections in numeric order; one `<testcase>` per case with
/// `name` = the case id and `classname` = its area (the id's first part, which
/// has no dots, so tools that split class names on dots keep it whole);
/// `time` in seconds. Each testcase's `<system-out>` carries the section,
/// level, requirement and expected outcome; a `<failure>`, `<error>` or
/// `<skipped>` element has the whole message as its text and at most 400
/// characters of it in its `message` attribute (what annotations show).
///
/// - A case that counts against the implementation (a MUST case's FAIL, HANG,
///   CRASH or UNIMPLEMENTED; an expected failure that passed) is a
///   `<failure>` with `type` = the verdict and `message` = the detail.
/// - ERROR (the harness failed) is an `<error>`.
/// - SKIP is `<skipped>` with the reason.
/// - NON-STRICT, and HANG/CRASH/UNIMPLEMENTED of SHOULD or MAY cases, are
///   `<skipped>` with `type` = the verdict and a message naming the missed
///   level: the exit status ignores them, so they must not be failures, but a
///   passed testcase's output is hidden by GitHub and GitLab front ends while a
///   skipped one is listed with its message.
/// - A known failure (listed in `--expect` and did fail) is `<skipped>` with
///   "known failure: <reason>".
/// - Harness or adapter start-up errors, which leave no results, become one
///   `<error>` testcase `harness::start-up` in a suite "harness", so that CI
///   shows the run as broken rather than empty.
pub fn junit(report: &Report) -> Result<String, String> {
    let name = match &report.implementation {
        Some(h) => format!("rvlf conform: {} {}", h.implementation, h.version),
        None => "rvlf conform".to_string(),
    };
    let mut junit = quick_junit::Report::new(name);
    if !report.errors.is_empty() {
        junit.add_test_suite(harness_suite(&report.errors));
    }
    for (section, results) in by_section(&report.results) {
        let mut suite = TestSuite::new(section_heading(section));
        suite.set_time(secs(results.iter().map(|r| r.seconds).sum()));
        suite.add_test_cases(results.into_iter().map(test_case));
        junit.add_test_suite(suite);
    }
    junit.set_time(secs(report.seconds));
    junit.to_string().map_err(|e| e.to_string())
}

fn harness_suite(errors: &[String]) -> TestSuite {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_type("ERROR")
        .set_message(errors.join("; "))
        .set_description(errors.join("\n"));
    let mut case = TestCase::new("harness::start-up", status);
    case.set_classname("harness");
    let mut suite = TestSuite::new("harness");
    suite.add_test_case(case);
    suite
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

fn test_case(r: &CaseResult) -> TestCase {
    let mut case = TestCase::new(&r.id, junit_status(r));
    case.set_classname(area(&r.id))
        .set_time(secs(r.seconds))
        .set_system_out(format!(
            "section: {}\nlevel: {}\nrequirement: {}\nexpected: {}\n",
            r.section, r.level, r.requirement, r.expected
        ));
    case
}

fn junit_status(r: &CaseResult) -> TestCaseStatus {
    let verdict = r.verdict.label();
    let detail = || {
        if r.detail.is_empty() {
            verdict.to_string()
        } else {
            r.detail.clone()
        }
    };
    let mut status = if r.verdict == Verdict::Error {
        TestCaseStatus::non_success(NonSuccessKind::Error)
    } else if r.counts_as_failure() {
        TestCaseStatus::non_success(NonSuccessKind::Failure)
    } else if r.verdict == Verdict::Pass {
        return TestCaseStatus::success();
    } else {
        TestCaseStatus::skipped()
    };
    let message = match &r.known_failure {
        Some(reason) if r.verdict != Verdict::Pass => {
            format!("known failure: {reason} ({verdict}: {})", detail())
        }
        Some(reason) => format!(
            "stale expectation (listed as known: {reason}): {}",
            detail()
        ),
        None if r.verdict == Verdict::Skip => detail(),
        None if !r.counts_as_failure() && r.verdict != Verdict::Error => {
            format!("{} requirement not met: {}", r.level, detail())
        }
        None => detail(),
    };
    status
        .set_type(verdict)
        .set_message(truncate(&message, MAX_DETAIL))
        .set_description(message);
    status
}

// ---------------------------------------------------------------- list

/// The catalogue as a table, for `--list`: id, section, level, requirement.
pub fn list(cases: &[&Case]) -> String {
    let width = cases
        .iter()
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    let sw = cases
        .iter()
        .map(|c| c.section.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!(
        "{:<width$}  {:<sw$}  {:<6}  REQUIREMENT\n",
        "ID", "SECTION", "LEVEL"
    );
    for c in cases {
        let _ = writeln!(
            out,
            "{:<width$}  {:<sw$}  {:<6}  {}",
            c.id,
            c.section,
            c.level.to_string(),
            c.requirement
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::case::Level;
    use crate::conform::wire::Hello;

    fn result(id: &str, section: &str, level: Level, verdict: Verdict, detail: &str) -> CaseResult {
        CaseResult {
            id: id.into(),
            section: section.into(),
            level,
            requirement: format!("requirement of {id}"),
            expected: format!("outcome of {id}"),
            verdict,
            detail: detail.into(),
            seconds: 0.25,
            known_failure: None,
        }
    }

    /// A report with every kind of line: sections out of order, each verdict,
    /// a known failure, a stale expectation and an unknown expectation.
    fn sample() -> Report {
        let mut known = result(
            "release::owner-check",
            "§9.1",
            Level::Must,
            Verdict::Fail,
            "deleted the replacement",
        );
        known.known_failure = Some("fixed in 2.0".into());
        let mut stale = result("layout::pid", "§3.2", Level::Must, Verdict::Pass, "");
        stale.known_failure = Some("pid was wrong".into());
        stale.detail =
            "listed as a known failure, but passed: remove it from the expectations file".into();
        Report {
            implementation: Some(Hello {
                protocol: "rvlf-adapter/1".into(),
                implementation: "acme-lock".into(),
                version: "1.2.3".into(),
                pid: 4242,
                features: vec!["encode".into()],
            }),
            results: vec![
                result(
                    "hostile::fifo",
                    "§10",
                    Level::Must,
                    Verdict::Hang,
                    "no reply within 1s",
                ),
                result("layout::magic", "§3.1", Level::Must, Verdict::Pass, ""),
                result(
                    "layout::crc",
                    "§3.1",
                    Level::Must,
                    Verdict::Fail,
                    &format!(
                        "checksum: expected 0xCBF43926, found 0xE3069283; {}",
                        "x".repeat(700)
                    ),
                ),
                result(
                    "hosts::long",
                    "§4.2",
                    Level::Should,
                    Verdict::NonStrict,
                    "kept 64 bytes",
                ),
                result(
                    "hosts::uts",
                    "§5.1",
                    Level::Must,
                    Verdict::Skip,
                    "no user namespaces",
                ),
                result(
                    "judge::verb",
                    "§6.4",
                    Level::May,
                    Verdict::Unimplemented,
                    "judge",
                ),
                result(
                    "release::garbage",
                    "§9.1",
                    Level::Must,
                    Verdict::Crash,
                    "printed junk",
                ),
                result(
                    "staleness::x",
                    "§6.4",
                    Level::Must,
                    Verdict::Error,
                    "cannot fork",
                ),
                known,
                stale,
            ],
            seconds: 3.5,
            errors: Vec::new(),
            unknown_expectations: vec!["layout::gone".into()],
        }
    }

    #[test]
    fn sections_sort_numerically() {
        assert!(section_key("§3.1") < section_key("§4.2"));
        assert!(section_key("§4.2") < section_key("§10"));
        assert!(section_key("§9.1") < section_key("§10"));
        assert_eq!(section_key("§3.1, §4.2"), vec![3, 1]);
        assert!(section_key("appendix").is_empty());
        let report = sample();
        let sections: Vec<&str> = by_section(&report.results)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            sections,
            ["§3.1", "§3.2", "§4.2", "§5.1", "§6.4", "§9.1", "§10"]
        );
    }

    #[test]
    fn section_titles_come_from_the_spec() {
        assert_eq!(section_heading("§3.1"), "§3.1 Layout");
        assert_eq!(section_heading("§99.9"), "§99.9");
    }

    #[test]
    fn human_table_groups_marks_and_summarizes() {
        let text = human(&sample());
        assert!(
            text.starts_with("Implementation: acme-lock 1.2.3 (pid 4242"),
            "{text}"
        );
        let layout = text.find("§3.1 Layout").expect("section heading");
        let ten = text.find("\n§10").expect("§10 heading");
        assert!(layout < ten, "§3.1 before §10:\n{text}");
        assert!(
            text.contains("HANG           MUST    hostile::fifo"),
            "{text}"
        );
        assert!(
            text.contains("(known: fixed in 2.0) deleted the replacement"),
            "{text}"
        );
        assert!(
            text.contains("STALE EXPECTATION (listed as known: pid was wrong)"),
            "{text}"
        );
        assert!(
            text.contains("warning: the expectations file lists `layout::gone`"),
            "{text}"
        );
        assert!(
            text.contains("10 cases: 1 CRASH, 1 ERROR, 2 FAIL, 1 HANG, 1 NON-STRICT, 2 PASS"),
            "{text}"
        );
        // MUST failures: hostile::fifo, layout::crc, release::garbage (the
        // known failure does not count).
        assert!(
            text.contains("3 MUST failures, 1 known, 1 stale expectation(s); 3.5 s"),
            "{text}"
        );
        assert!(
            text.contains("exit 2: the harness failed on some case"),
            "{text}"
        );
        assert!(
            text.lines().all(|l| l.chars().count() <= WIDTH),
            "lines wrap at {WIDTH}:\n{text}"
        );
        assert!(text.contains('…'), "the long detail is truncated:\n{text}");
    }

    #[test]
    fn human_header_shows_start_up_errors() {
        let report = Report {
            implementation: None,
            results: Vec::new(),
            seconds: 0.1,
            errors: vec!["the adapter `x` did not start: bad hello".into()],
            unknown_expectations: Vec::new(),
        };
        let text = human(&report);
        assert!(text.contains("Implementation: unknown (no hello"), "{text}");
        assert!(text.contains("ERRORS: the run says nothing"), "{text}");
        assert!(
            text.contains("  ! the adapter `x` did not start: bad hello"),
            "{text}"
        );
        assert!(
            text.contains("exit 2: the harness or the adapter's start-up failed"),
            "{text}"
        );
    }

    #[test]
    fn exit_meaning_tells_a_stale_list_from_a_failure() {
        let mut report = sample();
        report
            .results
            .retain(|r| r.id == "layout::pid" || r.id == "layout::magic");
        assert_eq!(report.exit_code(), 1);
        assert!(Summary::of(&report).exit_meaning.contains("stale"));
        report.results.retain(|r| r.id == "layout::magic");
        assert_eq!(Summary::of(&report).exit_meaning, "no MUST case failed");
    }

    #[test]
    fn json_has_the_documented_fields() {
        let text = json(&sample()).expect("serialize");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse back");
        assert_eq!(v["format"], JSON_FORMAT);
        assert_eq!(v["implementation"]["pid"], 4242);
        assert_eq!(v["seconds"], 3.5);
        assert_eq!(v["errors"], serde_json::json!([]));
        assert_eq!(v["unknown_expectations"][0], "layout::gone");
        let first = &v["results"][0];
        for field in [
            "id",
            "section",
            "level",
            "requirement",
            "expected",
            "verdict",
            "detail",
        ] {
            assert!(first[field].is_string(), "results[].{field}: {first}");
        }
        assert_eq!(first["verdict"], "HANG");
        assert_eq!(v["results"][3]["verdict"], "NON-STRICT");
        assert_eq!(v["results"][8]["known_failure"], "fixed in 2.0");
        assert!(v["results"][0].get("known_failure").is_none());
        let s = &v["summary"];
        assert_eq!(s["cases"], 10);
        assert_eq!(s["counts"]["PASS"], 2);
        assert_eq!(s["counts"]["SKIP"], 1);
        assert_eq!(s["must_failures"], 3);
        assert_eq!(s["known_failures"], 1);
        assert_eq!(s["stale_expectations"], 1);
        assert_eq!(s["exit_code"], 2);
        assert!(s["exit_meaning"].is_string());
    }

    fn parsed(report: &Report) -> quick_junit::Report {
        let xml = junit(report).expect("render");
        quick_junit::Report::deserialize_from_str(&xml).expect("parses back")
    }

    fn status_of<'a>(junit: &'a quick_junit::Report, id: &str) -> &'a TestCaseStatus {
        junit
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .find(|c| c.name.as_str() == id)
            .map(|c| &c.status)
            .unwrap_or_else(|| panic!("no testcase {id}"))
    }

    fn kind_and_type(status: &TestCaseStatus) -> (String, Option<String>, Option<String>) {
        match status {
            TestCaseStatus::Success { .. } => ("success".into(), None, None),
            TestCaseStatus::NonSuccess {
                kind, ty, message, ..
            } => (
                format!("{kind:?}"),
                ty.as_ref().map(|t| t.as_str().to_string()),
                message.as_ref().map(|m| m.as_str().to_string()),
            ),
            TestCaseStatus::Skipped { ty, message, .. } => (
                "skipped".into(),
                ty.as_ref().map(|t| t.as_str().to_string()),
                message.as_ref().map(|m| m.as_str().to_string()),
            ),
        }
    }

    #[test]
    fn junit_maps_each_verdict() {
        let j = parsed(&sample());
        let check = |id: &str, kind: &str, ty: Option<&str>, message_has: &str| {
            let (k, t, m) = kind_and_type(status_of(&j, id));
            assert_eq!(k, kind, "{id}");
            assert_eq!(t.as_deref(), ty, "{id}");
            assert!(m.unwrap_or_default().contains(message_has), "{id}");
        };
        check("layout::magic", "success", None, "");
        check(
            "layout::crc",
            "Failure",
            Some("FAIL"),
            "expected 0xCBF43926",
        );
        check("hostile::fifo", "Failure", Some("HANG"), "no reply");
        check("release::garbage", "Failure", Some("CRASH"), "printed junk");
        check("staleness::x", "Error", Some("ERROR"), "cannot fork");
        check("hosts::uts", "skipped", Some("SKIP"), "no user namespaces");
        check(
            "hosts::long",
            "skipped",
            Some("NON-STRICT"),
            "SHOULD requirement not met",
        );
        check(
            "judge::verb",
            "skipped",
            Some("UNIMPLEMENTED"),
            "MAY requirement not met",
        );
        check(
            "release::owner-check",
            "skipped",
            Some("FAIL"),
            "known failure: fixed in 2.0",
        );
        check("layout::pid", "Failure", Some("PASS"), "stale expectation");
    }

    #[test]
    fn junit_suites_are_sections_and_counts_agree() {
        let j = parsed(&sample());
        let names: Vec<&str> = j.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[0], "§3.1 Layout");
        assert!(names[names.len() - 1].starts_with("§10"), "{names:?}");
        assert_eq!(j.tests, 10);
        assert_eq!(j.failures, 4, "crc, fifo, garbage, stale");
        assert_eq!(j.errors, 1);
        assert_eq!(j.skipped, 4, "uts, long, judge, known");
        assert_eq!(j.time, Some(Duration::from_secs_f64(3.5)));
        let crc = j.test_suites[0]
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == "layout::crc")
            .expect("layout::crc in §3.1");
        assert_eq!(crc.classname.as_ref().map(|c| c.as_str()), Some("layout"));
        assert_eq!(crc.time, Some(Duration::from_millis(250)));
        let out = crc.system_out.as_ref().map(|o| o.as_str()).unwrap_or("");
        assert!(
            out.contains("requirement: requirement of layout::crc"),
            "{out}"
        );
    }

    #[test]
    fn junit_shows_start_up_errors_as_an_error_case() {
        let report = Report {
            implementation: None,
            results: Vec::new(),
            seconds: 0.1,
            errors: vec!["no hello".into()],
            unknown_expectations: Vec::new(),
        };
        let j = parsed(&report);
        assert_eq!((j.tests, j.errors), (1, 1));
        let (kind, _, message) = kind_and_type(status_of(&j, "harness::start-up"));
        assert_eq!(kind, "Error");
        assert_eq!(message.as_deref(), Some("no hello"));
    }

    #[test]
    fn list_is_a_table_with_a_header() {
        let case = |id: &str, section: &'static str, level| Case {
            id: id.into(),
            section,
            level,
            requirement: format!("requirement of {id}"),
            expected: String::new(),
            exclusive: false,
            run: Box::new(|_| Ok(())),
        };
        let (a, b) = (
            case("layout::magic", "§3.1", Level::Must),
            case("hosts::long-name", "§4.3", Level::Should),
        );
        let text = list(&[&a, &b]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "ID                SECTION  LEVEL   REQUIREMENT");
        assert_eq!(
            lines[1],
            "layout::magic     §3.1     MUST    requirement of layout::magic"
        );
        assert_eq!(
            lines[2],
            "hosts::long-name  §4.3     SHOULD  requirement of hosts::long-name"
        );
    }
}
