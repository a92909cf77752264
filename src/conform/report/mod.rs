//! Reports of a conformance run: the human table grouped by PROTOCOL.md
//! section, JSON for machines, JUnit XML for CI front ends, one HTML page
//! for people, and the catalogue of `--list` (a table, or JSON).
//!
//! All renderers read the same [`Summary`], so the counts, the number of
//! MUST failures and the exit status agree across formats. This module holds
//! the summary, its exit meaning and what the renderers share (grouping by
//! section, section titles, truncation); each renderer has a file of its
//! own: `human.rs`, `json.rs`, `junit.rs`, `html.rs` and `list.rs`.

use std::collections::BTreeMap;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::case::{Case, Verdict};
use super::runner::{CaseResult, Report};

mod html;
mod human;
mod json;
mod junit;
mod list;

pub use html::{case_anchor, html, DEFAULT_PROTOCOL_URL};
pub use human::human;
pub use json::{json, JSON_FORMAT};
pub use junit::junit;
pub use list::{catalogue_json, list, CATALOGUE_FORMAT};

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

// ---------------------------------------------------------------- identity

/// The harness that produced a report: `{"name": "rvlf", "version": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Harness {
    pub name: &'static str,
    pub version: &'static str,
}

/// This harness.
pub const HARNESS: Harness = Harness {
    name: "rvlf",
    version: env!("CARGO_PKG_VERSION"),
};

/// `sha256:<hex>` over the catalogue: for each case, in catalogue order, the
/// JSON array `[id, level, section, requirement]` and a newline. Any change
/// to one of those four of any case, or to their order, changes it.
pub fn catalogue_hash(cases: &[Case]) -> String {
    let mut hasher = Sha256::new();
    for c in cases {
        let line = serde_json::json!([c.id, c.level.to_string(), c.section, c.requirement]);
        hasher.update(line.to_string().as_bytes());
        hasher.update(b"\n");
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// `time` as an RFC 3339 UTC date-time to the second: `2025-01-31T12:00:00Z`
/// (times before 1970 are shown as 1970-01-01T00:00:00Z).
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
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
    const SPEC: &str = include_str!("../../../PROTOCOL.md");
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
pub(crate) fn section_heading(section: &str) -> String {
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

// ---------------------------------------------------------------- text

/// At most `max` characters, with an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::case::Level;
    use crate::conform::client::Exchange;
    use crate::conform::runner::CatalogueId;
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
            stderr_tail: (verdict != Verdict::Pass).then(|| "adapter says <b>hi</b>\n".into()),
            exchanges: (verdict != Verdict::Pass).then(|| {
                vec![Exchange {
                    request: r#"{"id":1,"verb":"release","path":"/x<y>"}"#.into(),
                    reply: None,
                }]
            }),
        }
    }

    /// A report with every kind of line: sections out of order, each verdict,
    /// a known failure, a stale expectation and an unknown expectation.
    pub(super) fn sample() -> Report {
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
            started: "2025-01-31T12:00:00Z".into(),
            adapter: "acme-adapter --strict".into(),
            catalogue: CatalogueId {
                cases: 140,
                hash: format!("sha256:{}", "ab".repeat(32)),
            },
        }
    }

    #[test]
    fn rfc3339_formats_utc_dates() {
        use std::time::Duration;
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_738_324_800), "2025-01-31T12:00:00Z");
        assert_eq!(at(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    #[test]
    fn the_catalogue_hash_follows_every_listed_field() {
        let case = |id: &str, requirement: &str| Case {
            id: id.into(),
            section: "§3.1",
            level: Level::Must,
            requirement: requirement.into(),
            expected: String::new(),
            exclusive: false,
            run: Box::new(|_| Ok(())),
        };
        let base = catalogue_hash(&[case("a::b", "r")]);
        assert!(
            base.starts_with("sha256:") && base.len() == 7 + 64,
            "{base}"
        );
        assert_eq!(base, catalogue_hash(&[case("a::b", "r")]));
        assert_ne!(base, catalogue_hash(&[case("a::c", "r")]));
        assert_ne!(base, catalogue_hash(&[case("a::b", "r.")]));
        let mut should = case("a::b", "r");
        should.level = Level::Should;
        assert_ne!(base, catalogue_hash(&[should]));
        let mut moved = case("a::b", "r");
        moved.section = "§3.2";
        assert_ne!(base, catalogue_hash(&[moved]));
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
}
