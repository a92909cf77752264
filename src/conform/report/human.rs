//! The human report: the table `rvlf conform` prints on the terminal, one
//! line per case grouped by PROTOCOL.md section, then the warnings and the
//! summary.

use std::fmt::Write as _;

use super::{by_section, section_heading, truncate, Summary, MAX_DETAIL};
use crate::conform::case::Verdict;
use crate::conform::runner::{CaseResult, Report};

/// Width a line of the human table aims at.
const WIDTH: usize = 100;

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

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

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
            ..Report::default()
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
}
