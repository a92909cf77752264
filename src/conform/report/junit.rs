//! The JUnit XML report (`--junit`), for CI front ends: one test suite per
//! PROTOCOL.md section, one test case per case.

use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{area, by_section, section_heading, truncate, MAX_DETAIL};
use crate::conform::case::Verdict;
use crate::conform::runner::{CaseResult, Report};

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
///   `known failure: <reason>`.
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

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

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
            ..Report::default()
        };
        let j = parsed(&report);
        assert_eq!((j.tests, j.errors), (1, 1));
        let (kind, _, message) = kind_and_type(status_of(&j, "harness::start-up"));
        assert_eq!(kind, "Error");
        assert_eq!(message.as_deref(), Some("no hello"));
    }
}
