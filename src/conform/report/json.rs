//! The JSON report (`--json`): the whole run and its summary, for machines.

use serde::Serialize;

use super::{Harness, Summary, HARNESS};
use crate::conform::runner::Report;

/// Name and version of the JSON report's shape (`format` field).
pub const JSON_FORMAT: &str = "rvlf-conform-report/1";

/// The JSON report.
#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    harness: Harness,
    #[serde(flatten)]
    report: &'a Report,
    summary: Summary,
}

/// The report as JSON. Its fields, stable within [`JSON_FORMAT`] (fields
/// are only ever added within it; conformance/report.schema.json):
///
/// - `format`: `"rvlf-conform-report/1"`.
/// - `harness`: `{"name": "rvlf", "version": <the harness's version>}`.
/// - `implementation`: the adapter's hello (`protocol`, `implementation`,
///   `version`, `pid`, `features`), or `null` if it never said hello.
/// - `adapter`: the adapter command line that was tested.
/// - `started`: when the run started, UTC, RFC 3339 to the second
///   (`2025-01-31T12:00:00Z`), from the system clock.
/// - `catalogue`: `cases`, the number of cases in the whole catalogue
///   (selected or not), and `hash`, `sha256:<hex>` over every case's id,
///   level, section and requirement in catalogue order (see
///   [`super::catalogue_hash`]): two reports with the same hash ran cases
///   of the same catalogue.
/// - `results`: one object per case, in catalogue order: `id`, `section`
///   (e.g. `"§3.1"`), `level` (`MUST`/`SHOULD`/`MAY`), `requirement`,
///   `expected`, `verdict` (`PASS`, `FAIL`, `NON-STRICT`, `SKIP`,
///   `UNIMPLEMENTED`, `HANG`, `CRASH`, `ERROR`), `detail` (empty on a plain
///   pass), `seconds`, and `known_failure` (the reason from `--expect`; absent
///   when the case is not listed). Only on a result that is not `PASS`:
///   `stderr_tail` (the end of the stderr of the adapters the case used,
///   at most 4 KiB of each) and `exchanges`, the requests the case sent and
///   the replies it got, oldest first, at most the last 50 per adapter and
///   4 KiB per line: `[{"request": "<line>", "reply": "<line>" | null}]`
///   (`null`: no reply came).
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
        harness: HARNESS,
        report,
        summary: Summary::of(report),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn json_has_the_documented_fields() {
        let text = json(&sample()).expect("serialize");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse back");
        assert_eq!(v["format"], JSON_FORMAT);
        assert_eq!(v["harness"]["name"], "rvlf");
        assert_eq!(v["harness"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["started"], "2025-01-31T12:00:00Z");
        assert_eq!(v["adapter"], "acme-adapter --strict");
        assert_eq!(v["catalogue"]["cases"], 140);
        assert!(v["results"][0]["stderr_tail"].is_string());
        assert!(v["results"][0]["exchanges"][0]["reply"].is_null());
        assert!(
            v["results"][1].get("exchanges").is_none(),
            "a PASS has none"
        );
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
}
