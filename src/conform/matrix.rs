//! `rvlf report merge`: the matrix of several conformance runs, read back from
//! their JSON reports (`rvlf conform --json`), as one self-contained HTML page
//! and, on request, as JSON.
//!
//! The page has the cases down the side (the union of every report's case ids,
//! in catalogue order as first seen, grouped by section) and one column per
//! report (the hello's implementation name and version, else the file name).
//! Each cell is coloured by its verdict and links to a block further down
//! with the verdict, the detail and, when the report has them, the adapter's
//! stderr tail and the request/reply exchanges. A case a report does not have
//! is a "—" cell. Everything taken from a report is HTML-escaped.
//!
//! Stable hooks for tests and style sheets: the table is `id="matrix"`; a case
//! row is `id="row-<case>"` and a cell's block `id="d-<column>-<case>"`, where
//! `<case>` is the id made safe for a fragment ([`anchor`]: `::` becomes `--`)
//! and `<column>` counts from 1; a cell is `class="cell v-<VERDICT>"` with
//! `data-verdict="<VERDICT>"` (`v-none` / `none` for a missing case).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::report::{self, JSON_FORMAT};
use crate::html::escape as esc;

/// Format of the merged JSON (`--json`).
pub const MATRIX_FORMAT: &str = "rvlf-conform-matrix/1";

/// Verdicts in the order the summary lists them; others follow as first seen.
const VERDICTS: [&str; 8] = [
    "PASS",
    "FAIL",
    "NON-STRICT",
    "SKIP",
    "UNIMPLEMENTED",
    "HANG",
    "CRASH",
    "ERROR",
];

/// Why a report could not be merged, or the result not written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a JSON conformance report: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: format is {found}, expected \"{JSON_FORMAT}\" (the report of `rvlf conform --json`)")]
    Format { path: PathBuf, found: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------- input

/// The adapter's hello, as the report gives it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Hello {
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub implementation: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub features: Vec<String>,
}

/// One exchange with the adapter: a request and its reply, as text or JSON.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Exchange {
    #[serde(default)]
    pub request: Value,
    #[serde(default)]
    pub reply: Value,
}

/// One case's result.
#[derive(Debug, Clone, Deserialize)]
pub struct CaseResult {
    pub id: String,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub requirement: String,
    #[serde(default)]
    pub expected: String,
    pub verdict: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub known_failure: Option<String>,
    /// The end of the adapter's stderr (text, or lines).
    #[serde(default)]
    pub stderr_tail: Option<Value>,
    #[serde(default)]
    pub exchanges: Option<Vec<Exchange>>,
}

/// A JSON report of `rvlf conform`: the fields the matrix uses. Unknown
/// fields are ignored; the optional ones may be absent.
#[derive(Debug, Clone, Deserialize)]
pub struct RunReport {
    pub format: String,
    #[serde(default)]
    pub implementation: Option<Hello>,
    pub results: Vec<CaseResult>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub harness: Option<Value>,
    #[serde(default)]
    pub catalogue: Option<Value>,
    #[serde(default)]
    pub started: Option<Value>,
    #[serde(default)]
    pub adapter: Option<Value>,
}

/// Read and check one report.
pub fn read_report(path: &Path) -> Result<RunReport, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |source| MergeError::Parse {
        path: path.to_path_buf(),
        source,
    };
    let value: Value = serde_json::from_str(&text).map_err(parse)?;
    match value.get("format") {
        Some(Value::String(f)) if f == JSON_FORMAT => {}
        Some(other) => {
            return Err(MergeError::Format {
                path: path.to_path_buf(),
                found: other.to_string(),
            })
        }
        None => {
            return Err(MergeError::Format {
                path: path.to_path_buf(),
                found: "missing".into(),
            })
        }
    }
    serde_json::from_value(value).map_err(parse)
}

// ---------------------------------------------------------------- the matrix

/// One column: a report and its header.
#[derive(Debug)]
pub struct Column {
    pub label: String,
    pub file: PathBuf,
    pub report: RunReport,
    by_id: HashMap<String, usize>,
}

impl Column {
    fn result(&self, id: &str) -> Option<&CaseResult> {
        self.by_id.get(id).map(|&i| &self.report.results[i])
    }
}

/// A row: a case, as the first report that has it describes it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub anchor: String,
    pub section: String,
    pub level: String,
    pub requirement: String,
}

/// Per-column figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnSummary {
    pub cases: usize,
    /// Cases of the matrix this report does not have.
    pub missing: usize,
    pub counts: BTreeMap<String, usize>,
    /// MUST cases that failed (FAIL, HANG, CRASH or UNIMPLEMENTED) and are
    /// not listed as known failures.
    pub must_failures: usize,
}

/// Several reports side by side.
#[derive(Debug)]
pub struct Matrix {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl Matrix {
    /// Build the matrix of reports read from `files`, in that order.
    pub fn new(reports: Vec<(PathBuf, RunReport)>) -> Matrix {
        let mut columns: Vec<Column> = reports
            .into_iter()
            .map(|(file, report)| {
                let mut by_id = HashMap::new();
                for (i, r) in report.results.iter().enumerate() {
                    by_id.entry(r.id.clone()).or_insert(i);
                }
                Column {
                    label: base_label(&file, &report),
                    file,
                    report,
                    by_id,
                }
            })
            .collect();
        disambiguate(&mut columns);
        Matrix {
            rows: rows(&columns),
            columns,
        }
    }

    pub fn summary(&self, column: &Column) -> ColumnSummary {
        let mut counts: BTreeMap<String, usize> =
            VERDICTS.iter().map(|v| (v.to_string(), 0)).collect();
        let mut must_failures = 0;
        let mut cases = 0;
        for row in &self.rows {
            if let Some(r) = column.result(&row.id) {
                cases += 1;
                *counts.entry(r.verdict.clone()).or_default() += 1;
                if r.known_failure.is_none() && fails_must(r) {
                    must_failures += 1;
                }
            }
        }
        ColumnSummary {
            cases,
            missing: self.rows.len() - cases,
            counts,
            must_failures,
        }
    }

    /// Every verdict label any column has: the known ones first.
    fn verdicts(&self) -> Vec<String> {
        let mut all: Vec<String> = VERDICTS.iter().map(|v| v.to_string()).collect();
        for c in &self.columns {
            for r in &c.report.results {
                if !all.contains(&r.verdict) {
                    all.push(r.verdict.clone());
                }
            }
        }
        all
    }
}

fn fails_must(r: &CaseResult) -> bool {
    r.level == "MUST"
        && matches!(
            r.verdict.as_str(),
            "FAIL" | "HANG" | "CRASH" | "UNIMPLEMENTED"
        )
}

/// "name version", else the file name.
fn base_label(file: &Path, report: &RunReport) -> String {
    let hello = report.implementation.as_ref();
    match hello.and_then(|h| h.implementation.as_deref()) {
        Some(name) if !name.is_empty() => match hello.and_then(|h| h.version.as_deref()) {
            Some(v) if !v.is_empty() => format!("{name} {v}"),
            _ => name.to_string(),
        },
        _ => file_name(file),
    }
}

fn file_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

/// Equal labels get their file name appended (unless they are it), then a
/// number from the second on.
fn disambiguate(columns: &mut [Column]) {
    let labels: Vec<String> = columns.iter().map(|c| c.label.clone()).collect();
    for c in columns.iter_mut() {
        let name = file_name(&c.file);
        if labels.iter().filter(|l| **l == c.label).count() > 1 && c.label != name {
            c.label = format!("{} ({name})", c.label);
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in columns.iter_mut() {
        let n = seen.entry(c.label.clone()).or_default();
        *n += 1;
        if *n > 1 {
            c.label = format!("{} #{n}", c.label);
        }
    }
}

/// The union of the case ids, each report's order kept (a case only some
/// report has goes after the case that precedes it there), grouped by section
/// in order of first appearance.
fn rows(columns: &[Column]) -> Vec<Row> {
    let mut order: Vec<&CaseResult> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for c in columns {
        let mut at = 0;
        for r in &c.report.results {
            if seen.contains(r.id.as_str()) {
                if let Some(p) = order.iter().position(|o| o.id == r.id) {
                    at = p + 1;
                }
            } else {
                seen.insert(&r.id);
                order.insert(at, r);
                at += 1;
            }
        }
    }
    let mut sections: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for r in order {
        match sections.iter_mut().find(|(s, _)| *s == r.section) {
            Some((_, members)) => members.push(r),
            None => sections.push((&r.section, vec![r])),
        }
    }
    let mut anchors = HashSet::new();
    sections
        .into_iter()
        .flat_map(|(_, members)| members)
        .map(|r| {
            let base = anchor(&r.id);
            let mut a = base.clone();
            let mut n = 1;
            while !anchors.insert(a.clone()) {
                n += 1;
                a = format!("{base}-{n}");
            }
            Row {
                id: r.id.clone(),
                anchor: a,
                section: r.section.clone(),
                level: r.level.clone(),
                requirement: r.requirement.clone(),
            }
        })
        .collect()
}

/// A case id made safe for an HTML id and a URL fragment: `::` becomes `--`,
/// any character but ASCII letters, digits, `-`, `_` and `.` becomes `_`.
pub fn anchor(id: &str) -> String {
    id.replace("::", "--")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

// ---------------------------------------------------------------- HTML

/// A verdict as a class name: letters, digits and `-` only.
fn verdict_class(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A JSON value as text: strings as they are, lists of strings one a line,
/// anything else as compact JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
thead th{background:#eee;position:sticky;top:0}
tr.section th{background:#f6f6f6;font-weight:600}
td.count{text-align:right}
td.cell{text-align:center;white-space:nowrap}
td.cell a{color:inherit;text-decoration:none;display:block}
.v-PASS{background:#cfeccf}
.v-FAIL,.v-CRASH{background:#f4b4b4}
.v-HANG{background:#f7c58f}
.v-NON-STRICT{background:#f8e79a}
.v-SKIP{background:#e4e4e4}
.v-UNIMPLEMENTED{background:#d9c8f0}
.v-ERROR{background:#222;color:#fff}
.v-none{background:#fff;color:#999}
.level{font-size:11px;color:#666}
div.detail{border-top:1px solid #ccc;padding:.5em 0}
pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap;word-break:break-all;max-width:100em}
dt{font-weight:600}
";

/// The page.
pub fn html(m: &Matrix) -> String {
    let mut h = String::new();
    let n = m.columns.len();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>rvlf conformance matrix</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>Conformance matrix</h1>\n<p>{} case(s), {n} run(s). Each cell links to its detail.</p>\n",
        m.rows.len()
    );

    // The runs.
    h.push_str("<h2>Runs</h2>\n<table id=\"runs\">\n<thead><tr><th>column</th><th>file</th><th>hello</th><th>run</th></tr></thead>\n<tbody>\n");
    for (i, c) in m.columns.iter().enumerate() {
        let r = &c.report;
        let hello = match &r.implementation {
            Some(hl) => format!(
                "{} {} ({}); features: {}",
                hl.implementation.as_deref().unwrap_or("?"),
                hl.version.as_deref().unwrap_or("?"),
                hl.protocol.as_deref().unwrap_or("?"),
                if hl.features.is_empty() {
                    "none".to_string()
                } else {
                    hl.features.join(", ")
                }
            ),
            None => "no hello".to_string(),
        };
        let mut run = Vec::new();
        for (name, v) in [("adapter", &r.adapter), ("started", &r.started)] {
            if let Some(v) = v {
                run.push(format!("{name}: {}", text_of(v)));
            }
        }
        if let Some(h) = &r.harness {
            let field = |k: &str| h.get(k).map(text_of).unwrap_or_default();
            run.push(format!("harness: {} {}", field("name"), field("version")));
        }
        if let Some(c) = &r.catalogue {
            let cases = c.get("cases").map(|n| n.to_string()).unwrap_or_default();
            let hash = c.get("hash").map(text_of).unwrap_or_default();
            run.push(format!("catalogue: {cases} cases, {hash}"));
        }
        if let Some(s) = r.seconds {
            run.push(format!("{s:.1} s"));
        }
        for e in &r.errors {
            run.push(format!("error: {e}"));
        }
        let _ = writeln!(
            h,
            "<tr id=\"col-{}\"><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&c.label),
            esc(&c.file.display().to_string()),
            esc(&hello),
            run.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>")
        );
    }
    h.push_str("</tbody>\n</table>\n");

    // The matrix.
    h.push_str("<h2>Matrix</h2>\n<table id=\"matrix\">\n<thead>\n<tr><th>case</th>");
    for (i, c) in m.columns.iter().enumerate() {
        let _ = write!(
            h,
            "<th><a href=\"#col-{}\">{}</a></th>",
            i + 1,
            esc(&c.label)
        );
    }
    h.push_str("</tr>\n</thead>\n<tbody class=\"summary\">\n");
    let summaries: Vec<ColumnSummary> = m.columns.iter().map(|c| m.summary(c)).collect();
    let summary_row =
        |h: &mut String, name: &str, key: &str, f: &dyn Fn(&ColumnSummary) -> usize| {
            let _ = write!(
                h,
                "<tr class=\"sum\" data-sum=\"{}\"><th>{}</th>",
                esc(key),
                esc(name)
            );
            for s in &summaries {
                let _ = write!(h, "<td class=\"count\">{}</td>", f(s));
            }
            h.push_str("</tr>\n");
        };
    summary_row(&mut h, "MUST failures", "must_failures", &|s| {
        s.must_failures
    });
    for v in m.verdicts() {
        if summaries
            .iter()
            .any(|s| s.counts.get(&v).copied().unwrap_or(0) > 0)
        {
            let key = v.clone();
            summary_row(&mut h, &v, &v, &move |s| {
                s.counts.get(&key).copied().unwrap_or(0)
            });
        }
    }
    if summaries.iter().any(|s| s.missing > 0) {
        summary_row(&mut h, "— not in the report", "missing", &|s| s.missing);
    }
    h.push_str("</tbody>\n<tbody>\n");
    let mut section: Option<&str> = None;
    for row in &m.rows {
        if section != Some(row.section.as_str()) {
            section = Some(&row.section);
            let _ = writeln!(
                h,
                "<tr class=\"section\"><th colspan=\"{}\">{}</th></tr>",
                n + 1,
                esc(&report::section_heading(&row.section))
            );
        }
        let _ = write!(
            h,
            "<tr id=\"row-{}\"><th title=\"{}\">{} <span class=\"level\">{}</span></th>",
            row.anchor,
            esc(&row.requirement),
            esc(&row.id),
            esc(&row.level)
        );
        for (i, c) in m.columns.iter().enumerate() {
            match c.result(&row.id) {
                Some(r) => {
                    let title = if r.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" title=\"{}\"", esc(&r.detail))
                    };
                    let _ = write!(
                        h,
                        "<td class=\"cell v-{}\" data-verdict=\"{}\"><a href=\"#d-{}-{}\"{title}>{}</a></td>",
                        verdict_class(&r.verdict),
                        esc(&r.verdict),
                        i + 1,
                        row.anchor,
                        esc(&r.verdict)
                    );
                }
                None => h.push_str(
                    "<td class=\"cell v-none\" data-verdict=\"none\" title=\"not in this report\">—</td>",
                ),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");

    // The details.
    h.push_str("<h2>Details</h2>\n");
    for row in &m.rows {
        for (i, c) in m.columns.iter().enumerate() {
            if let Some(r) = c.result(&row.id) {
                detail(&mut h, i + 1, c, row, r);
            }
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn detail(h: &mut String, col: usize, c: &Column, row: &Row, r: &CaseResult) {
    let _ = writeln!(
        h,
        "<div class=\"detail\" id=\"d-{col}-{}\">\n<h3>{} — {} <span class=\"v-{}\">{}</span></h3>",
        row.anchor,
        esc(&r.id),
        esc(&c.label),
        verdict_class(&r.verdict),
        esc(&r.verdict)
    );
    h.push_str("<dl>\n");
    let mut item = |name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(name), esc(value));
        }
    };
    item("section", &format!("{} {}", r.section, r.level));
    item("requirement", &r.requirement);
    item("expected", &r.expected);
    if let Some(k) = &r.known_failure {
        item("known failure", k);
    }
    if let Some(s) = r.seconds {
        item("seconds", &format!("{s:.3}"));
    }
    h.push_str("</dl>\n");
    if !r.detail.is_empty() {
        let _ = writeln!(h, "<p>detail:</p>\n<pre>{}</pre>", esc(&r.detail));
    }
    if let Some(tail) = r.stderr_tail.as_ref().map(text_of) {
        if !tail.is_empty() {
            let _ = writeln!(
                h,
                "<p>adapter stderr (tail):</p>\n<pre>{}</pre>",
                esc(&tail)
            );
        }
    }
    if let Some(ex) = r.exchanges.as_ref().filter(|e| !e.is_empty()) {
        h.push_str("<p>exchanges:</p>\n<table class=\"exchanges\"><tr><th>request</th><th>reply</th></tr>\n");
        for e in ex {
            let _ = writeln!(
                h,
                "<tr><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                esc(&text_of(&e.request)),
                esc(&text_of(&e.reply))
            );
        }
        h.push_str("</table>\n");
    }
    let _ = writeln!(
        h,
        "<p><a href=\"#row-{}\">back to the matrix</a></p>\n</div>",
        row.anchor
    );
}

// ---------------------------------------------------------------- JSON

#[derive(Serialize)]
struct JsonMatrix<'a> {
    format: &'static str,
    columns: Vec<JsonColumn<'a>>,
    cases: Vec<JsonCase<'a>>,
}

#[derive(Serialize)]
struct JsonColumn<'a> {
    label: &'a str,
    file: String,
    implementation: Option<&'a str>,
    version: Option<&'a str>,
    summary: ColumnSummary,
}

#[derive(Serialize)]
struct JsonCase<'a> {
    id: &'a str,
    section: &'a str,
    level: &'a str,
    /// One verdict per column, `null` where the report lacks the case.
    verdicts: Vec<Option<&'a str>>,
}

/// The matrix as JSON (`rvlf-conform-matrix/1`).
pub fn json(m: &Matrix) -> String {
    let doc = JsonMatrix {
        format: MATRIX_FORMAT,
        columns: m
            .columns
            .iter()
            .map(|c| {
                let hello = c.report.implementation.as_ref();
                JsonColumn {
                    label: &c.label,
                    file: c.file.display().to_string(),
                    implementation: hello.and_then(|h| h.implementation.as_deref()),
                    version: hello.and_then(|h| h.version.as_deref()),
                    summary: m.summary(c),
                }
            })
            .collect(),
        cases: m
            .rows
            .iter()
            .map(|row| JsonCase {
                id: &row.id,
                section: &row.section,
                level: &row.level,
                verdicts: m
                    .columns
                    .iter()
                    .map(|c| c.result(&row.id).map(|r| r.verdict.as_str()))
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

// ---------------------------------------------------------------- command

/// `rvlf report merge`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("output").required(true).multiple(true).args(["html", "json"])))]
pub struct MergeArgs {
    /// JSON reports of `rvlf conform --json`, one column each, in this order.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the matrix as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the matrix as JSON (rvlf-conform-matrix/1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Read the reports and write the matrix: exit 0, or 2 with the reason.
pub fn merge_cmd(args: &MergeArgs) -> ExitCode {
    match merge(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvlf report merge: {e}");
            ExitCode::from(2)
        }
    }
}

fn merge(args: &MergeArgs) -> Result<(), MergeError> {
    let reports = args
        .reports
        .iter()
        .map(|p| read_report(p).map(|r| (p.clone(), r)))
        .collect::<Result<Vec<_>, _>>()?;
    let m = Matrix::new(reports);
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).map_err(|source| MergeError::Write {
            path: path.clone(),
            source,
        })
    };
    if let Some(path) = &args.html {
        write(path, html(&m))?;
    }
    if let Some(path) = &args.json {
        write(path, json(&m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, ids: &[(&str, &str)]) -> RunReport {
        let results: Vec<Value> = ids
            .iter()
            .map(|(id, v)| serde_json::json!({"id": id, "section": "§3.1", "level": "MUST", "verdict": v}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "format": JSON_FORMAT,
            "implementation": {"implementation": name, "version": "1"},
            "results": results,
        }))
        .expect("a report")
    }

    #[test]
    fn a_case_only_one_report_has_keeps_its_place() {
        let a = report("a", &[("x::1", "PASS"), ("x::3", "PASS")]);
        let b = report("b", &[("x::1", "PASS"), ("x::2", "FAIL"), ("x::3", "PASS")]);
        let m = Matrix::new(vec![("a.json".into(), a), ("b.json".into(), b)]);
        let ids: Vec<&str> = m.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["x::1", "x::2", "x::3"]);
        let s = m.summary(&m.columns[0]);
        assert_eq!((s.cases, s.missing, s.must_failures), (2, 1, 0));
        assert_eq!(m.summary(&m.columns[1]).must_failures, 1);
    }

    #[test]
    fn equal_labels_are_told_apart() {
        let m = Matrix::new(vec![
            ("one/a.json".into(), report("r", &[])),
            ("two/b.json".into(), report("r", &[])),
            ("three/b.json".into(), report("r", &[])),
        ]);
        let labels: Vec<&str> = m.columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["r 1 (a.json)", "r 1 (b.json)", "r 1 (b.json) #2"]);
    }

    #[test]
    fn anchors_are_fragment_safe() {
        assert_eq!(anchor("layout::pid-0"), "layout--pid-0");
        assert_eq!(anchor("a b<\"c"), "a_b__c");
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
