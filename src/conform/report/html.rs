//! The HTML report (`--html FILE`): one self-contained page (inline CSS, a
//! few lines of JavaScript for a filter by verdict, nothing fetched) that
//! shows the whole run, for people.
//!
//! Everything the adapter supplied (its hello, details, stderr, requests
//! and replies) is HTML-escaped, and control characters are shown as
//! `\xNN`: nothing from the adapter is ever markup.
//!
//! Stable hooks, for tests and for people who style or script the page:
//!
//! - `#implementation`, `#features`, `#adapter`, `#harness`, `#catalogue`,
//!   `#started` (a `<time datetime>`), `#wall-time`, `#exit`
//!   (`data-exit-code`), `#errors` (only when there are start-up errors).
//! - `#summary`: one element per verdict with `data-verdict="PASS"` (the
//!   label) and `data-count="N"`, class `count`; `#total`, `#must-failures`,
//!   `#known-failures`, `#stale-expectations`, each with `data-count`.
//! - `#not-passed`: links (`href="#case-..."`) to every case that did not pass.
//! - One `<section class="group" id="section-s3.1">` per PROTOCOL.md
//!   section; its number links to `<protocol-url>#s3.1`.
//! - One `<tr class="case" id="case-<id>" data-verdict="...">` per case, the
//!   id's `::` written `--` (whitespace `_`); inside it `.requirement`,
//!   `.expected`, `.detail`, and, for a case that did not pass,
//!   `#case-<id>-stderr` (class `stderr`) and `#case-<id>-exchanges` (class
//!   `exchanges`, one `<li>` per exchange with `.request` and `.reply`).

use std::fmt::Write as _;

use super::{by_section, section_key, section_title, Summary, HARNESS, VERDICTS};
use crate::conform::case::Verdict;
use crate::conform::runner::{CaseResult, Report};
use crate::html::escape as esc;

/// The default of `--protocol-url`: PROTOCOL.md next to the page.
pub const DEFAULT_PROTOCOL_URL: &str = "PROTOCOL.md";

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:80rem;padding:1rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
dl#run{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0}
code,pre{font:12px/1.35 ui-monospace,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.4rem;margin:.2rem 0}
ul.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0}
ul.counts li{border:1px solid #ccc;border-radius:4px;padding:.3rem .6rem}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}
td.verdict{font-weight:700;white-space:nowrap}
.v-pass{color:#176b20}.v-fail,.v-crash,.v-hang,.v-error{color:#b00020}
.v-non-strict,.v-unimplemented{color:#9a5b00}.v-skip{color:#666}
tr.case:target{outline:2px solid #36c}
.note{color:#9a5b00}.errors{color:#b00020}
";

const SCRIPT: &str = "
(function(){var f=document.getElementById('filter');f.parentNode.hidden=false;
f.addEventListener('change',function(){var v=f.value;
document.querySelectorAll('tr.case').forEach(function(r){var d=r.getAttribute('data-verdict');
r.hidden=!(v==='all'||(v==='not-pass'?d!=='PASS':d===v));});
document.querySelectorAll('section.group').forEach(function(s){
s.hidden=!s.querySelector('tr.case:not([hidden])');});});})();
";

/// The report as one HTML page; section numbers link to
/// `<protocol_url>#s<number>` (PROTOCOL.md's anchors).
pub fn html(report: &Report, protocol_url: &str) -> String {
    let s = Summary::of(report);
    let mut out = String::from("<!doctype html>\n<html lang=\"en\">\n<head>\n");
    out.push_str("<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let title = match &report.implementation {
        Some(h) => format!("rvlf conform: {} {}", h.implementation, h.version),
        None => "rvlf conform".to_string(),
    };
    let _ = writeln!(out, "<title>{}</title>", esc(&title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>{}</h1>", esc(&title));
    header(&mut out, report, &s);
    summary(&mut out, report, &s);
    not_passed(&mut out, report);
    out.push_str("<main id=\"cases\">\n");
    for (section, results) in by_section(&report.results) {
        group(&mut out, section, &results, protocol_url);
    }
    out.push_str("</main>\n");
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, report: &Report, s: &Summary) {
    out.push_str("<dl id=\"run\">\n");
    match &report.implementation {
        Some(h) => {
            let _ = writeln!(
                out,
                "<dt>Implementation</dt><dd id=\"implementation\">{} {} \
                 <small>(protocol {}, pid {})</small></dd>",
                esc(&h.implementation),
                esc(&h.version),
                esc(&h.protocol),
                h.pid
            );
            let features = if h.features.is_empty() {
                "none".to_string()
            } else {
                h.features.join(", ")
            };
            let _ = writeln!(
                out,
                "<dt>Optional verbs</dt><dd id=\"features\">{}</dd>",
                esc(&features)
            );
        }
        None => out.push_str(
            "<dt>Implementation</dt><dd id=\"implementation\">unknown (no hello from the \
             adapter)</dd>\n",
        ),
    }
    let _ = writeln!(
        out,
        "<dt>Adapter</dt><dd id=\"adapter\"><code>{}</code></dd>",
        esc(&report.adapter)
    );
    let _ = writeln!(
        out,
        "<dt>Harness</dt><dd id=\"harness\">{} {}</dd>",
        HARNESS.name, HARNESS.version
    );
    let _ = writeln!(
        out,
        "<dt>Catalogue</dt><dd id=\"catalogue\" data-hash=\"{hash}\">{} cases, \
         <code>{hash}</code></dd>",
        report.catalogue.cases,
        hash = esc(&report.catalogue.hash)
    );
    let _ = writeln!(
        out,
        "<dt>Started</dt><dd id=\"started\"><time datetime=\"{t}\">{}</time> (UTC)</dd>",
        esc(&report.started.replace('T', " ").replace('Z', "")),
        t = esc(&report.started)
    );
    let _ = writeln!(
        out,
        "<dt>Wall time</dt><dd id=\"wall-time\">{:.1} s</dd>",
        report.seconds
    );
    let _ = writeln!(
        out,
        "<dt>Exit</dt><dd id=\"exit\" data-exit-code=\"{}\">{}: {}</dd>",
        s.exit_code,
        s.exit_code,
        esc(&s.exit_meaning)
    );
    out.push_str("</dl>\n");
    if !report.errors.is_empty() {
        out.push_str(
            "<section id=\"errors\" class=\"errors\"><h2>Errors: the run says nothing about \
             the implementation</h2>\n<ul>\n",
        );
        for e in &report.errors {
            let _ = writeln!(out, "<li><pre>{}</pre></li>", esc(e));
        }
        out.push_str("</ul>\n</section>\n");
    }
}

fn summary(out: &mut String, report: &Report, s: &Summary) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<ul class=\"counts\">\n");
    let _ = writeln!(
        out,
        "<li id=\"total\" data-count=\"{n}\">cases <b>{n}</b></li>",
        n = s.cases
    );
    for v in VERDICTS {
        let n = s.counts.get(v.label()).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "<li class=\"count {}\" data-verdict=\"{}\" data-count=\"{n}\">{} <b>{n}</b></li>",
            class(v),
            v.label(),
            v.label()
        );
    }
    out.push_str("</ul>\n<p>");
    let _ = write!(
        out,
        "<span id=\"must-failures\" data-count=\"{}\">{} MUST failure(s)</span>, \
         <span id=\"known-failures\" data-count=\"{}\">{} known failure(s)</span>, \
         <span id=\"stale-expectations\" data-count=\"{}\">{} stale expectation(s)</span>",
        s.must_failures,
        s.must_failures,
        s.known_failures,
        s.known_failures,
        s.stale_expectations,
        s.stale_expectations
    );
    out.push_str("</p>\n");
    for id in &report.unknown_expectations {
        let _ = writeln!(
            out,
            "<p class=\"note unknown-expectation\">The expectations file lists \
             <code>{}</code>, which no selected case has.</p>",
            esc(id)
        );
    }
    out.push_str(
        "<p hidden><label for=\"filter\">Show</label> <select id=\"filter\">\
         <option value=\"all\">all cases</option>\
         <option value=\"not-pass\">cases that did not pass</option>",
    );
    for v in VERDICTS {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", v.label());
    }
    out.push_str("</select></p>\n</section>\n");
}

fn not_passed(out: &mut String, report: &Report) {
    let failed: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass || r.known_failure.is_some())
        .collect();
    if failed.is_empty() {
        return;
    }
    out.push_str("<nav id=\"not-passed\">\n<h2>Not passed</h2>\n<ul>\n");
    for r in failed {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\"><code>{}</code></a> <span class=\"{}\">{}</span></li>",
            case_anchor(&r.id),
            esc(&r.id),
            class(r.verdict),
            r.verdict.label()
        );
    }
    out.push_str("</ul>\n</nav>\n");
}

fn group(out: &mut String, section: &str, results: &[&CaseResult], protocol_url: &str) {
    let key = section_key(section);
    let number = key.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
    let id = if number.is_empty() {
        format!("section-{}", sanitize(section))
    } else {
        format!("section-s{number}")
    };
    let _ = write!(out, "<section class=\"group\" id=\"{}\">\n<h2>", esc(&id));
    if number.is_empty() {
        out.push_str(&esc(section));
    } else {
        let _ = write!(
            out,
            "<a class=\"spec\" href=\"{}#s{number}\">{}</a>",
            esc(protocol_url),
            esc(section)
        );
    }
    if let Some(title) = section_title(section) {
        let _ = write!(out, " {}", esc(title));
    }
    out.push_str(
        "</h2>\n<table>\n<thead><tr><th>Verdict</th><th>Level</th><th>Case</th>\
         <th>Requirement and outcome</th><th>Time</th></tr></thead>\n<tbody>\n",
    );
    for r in results {
        row(out, r);
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn row(out: &mut String, r: &CaseResult) {
    let anchor = case_anchor(&r.id);
    let _ = writeln!(
        out,
        "<tr class=\"case {c}\" id=\"{anchor}\" data-verdict=\"{v}\">\
         <td class=\"verdict {c}\">{v}</td><td class=\"level\">{}</td>\
         <td class=\"id\"><a href=\"#{anchor}\"><code>{}</code></a></td><td>",
        r.level,
        esc(&r.id),
        c = class(r.verdict),
        v = r.verdict.label()
    );
    let _ = writeln!(
        out,
        "<div class=\"requirement\">{}</div>\n<div class=\"expected\">Expected: {}</div>",
        esc(&r.requirement),
        esc(&r.expected)
    );
    if let Some(reason) = &r.known_failure {
        let what = if r.verdict == Verdict::Pass {
            "Stale expectation, listed as a known failure"
        } else {
            "Known failure"
        };
        let _ = writeln!(
            out,
            "<div class=\"note known-failure\">{what}: {}</div>",
            esc(reason)
        );
    }
    if !r.detail.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"detail\">Observed: <pre>{}</pre></div>",
            esc(&r.detail)
        );
    }
    if let Some(stderr) = &r.stderr_tail {
        let _ = writeln!(
            out,
            "<details class=\"trace\"><summary>Adapter stderr and exchanges</summary>\n\
             <h3>stderr (tail)</h3>\n<pre class=\"stderr\" id=\"{anchor}-stderr\">{}</pre>",
            if stderr.is_empty() {
                "(empty)".to_string()
            } else {
                esc(stderr)
            }
        );
        let exchanges = r.exchanges.as_deref().unwrap_or(&[]);
        let _ = writeln!(
            out,
            "<h3>Requests and replies</h3>\n<ol class=\"exchanges\" id=\"{anchor}-exchanges\">"
        );
        for x in exchanges {
            let reply = match &x.reply {
                Some(reply) => esc(reply),
                None => "(no reply)".to_string(),
            };
            let _ = writeln!(
                out,
                "<li><pre class=\"request\">&rarr; {}</pre><pre class=\"reply\">&larr; {reply}</pre></li>",
                esc(&x.request)
            );
        }
        out.push_str("</ol>\n</details>\n");
    }
    let _ = writeln!(
        out,
        "</td><td class=\"seconds\">{:.2} s</td></tr>",
        r.seconds
    );
}

/// The CSS class of a verdict: `v-pass`, `v-non-strict`, ...
fn class(v: Verdict) -> String {
    format!("v-{}", v.label().to_ascii_lowercase())
}

/// The element id of a case's row: `case-` and the id, `::` as `--`.
pub fn case_anchor(id: &str) -> String {
    format!("case-{}", sanitize(&id.replace("::", "--")))
}

/// No whitespace (ids must have none), and escaped for an attribute.
fn sanitize(text: &str) -> String {
    let plain: String = text
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    esc(&plain)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn html_has_the_hooks_and_escapes_the_adapter() {
        let mut report = sample();
        report.results[0].detail = "<script>alert(1)</script>\u{1b}[31m".into();
        let page = html(&report, "https://example.org/P.md?a=1&b=2");
        assert!(page.starts_with("<!doctype html>\n"), "{page}");
        assert!(page.contains("<meta charset=\"utf-8\">"));
        for r in &report.results {
            assert!(
                page.contains(&format!("id=\"{}\"", case_anchor(&r.id))),
                "{}",
                r.id
            );
        }
        assert!(page.contains("id=\"case-hostile--fifo\""));
        assert!(
            page.contains("data-verdict=\"PASS\" data-count=\"2\""),
            "{page}"
        );
        assert!(page.contains("data-verdict=\"FAIL\" data-count=\"2\""));
        assert!(page.contains("data-verdict=\"ERROR\" data-count=\"1\""));
        assert!(page.contains("href=\"https://example.org/P.md?a=1&amp;b=2#s3.1\">§3.1</a> Layout"));
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m"));
        assert!(page.contains("id=\"case-hostile--fifo-stderr\""));
        assert!(page.contains("adapter says &lt;b&gt;hi&lt;/b&gt;"));
        assert!(page.contains("id=\"case-hostile--fifo-exchanges\""));
        assert!(page.contains("/x&lt;y&gt;"));
        assert!(!page.contains("id=\"case-layout--magic-stderr\""));
        assert!(page.contains("<time datetime=\"2025-01-31T12:00:00Z\">"));
        assert!(page.contains("acme-adapter --strict"));
        assert!(page.contains("href=\"#case-layout--crc\""));
        // Every internal link resolves to an id on the page.
        for link in page.split("href=\"#").skip(1) {
            let target = &link[..link.find('"').expect("closing quote")];
            assert!(page.contains(&format!("id=\"{target}\"")), "#{target}");
        }
    }

    #[test]
    fn case_anchors_have_no_spaces_or_colons() {
        assert_eq!(case_anchor("a::b c"), "case-a--b_c");
    }
}
