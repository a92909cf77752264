//! The catalogue table of `rvlf conform --list`: the selected cases, not
//! their results.

use std::fmt::Write as _;

use serde::Serialize;

use super::{catalogue_hash, Harness, HARNESS};
use crate::conform::case::{Case, Level};
use crate::conform::runner::CatalogueId;

/// Name and version of the shape of `--list --json` (`format` field).
pub const CATALOGUE_FORMAT: &str = "rvlf-conform-catalogue/1";

#[derive(Serialize)]
struct JsonCatalogue<'a> {
    format: &'static str,
    harness: Harness,
    catalogue: CatalogueId,
    cases: Vec<JsonCase<'a>>,
}

#[derive(Serialize)]
struct JsonCase<'a> {
    id: &'a str,
    section: &'a str,
    level: Level,
    requirement: &'a str,
    expected: &'a str,
}

/// The selected cases as JSON, for `--list --json`. Its fields, stable
/// within [`CATALOGUE_FORMAT`] (conformance/catalogue.schema.json):
///
/// - `format`: `"rvlf-conform-catalogue/1"`.
/// - `harness`: `{"name": "rvlf", "version": ...}`.
/// - `catalogue`: `cases` (the number of cases in the whole catalogue, not
///   only the selected ones) and `hash` (`sha256:<hex>`, see
///   [`catalogue_hash`]), as in the JSON report.
/// - `cases`: the selected cases in catalogue order: `id`, `section`,
///   `level`, `requirement`, `expected`.
pub fn catalogue_json(all: &[Case], selected: &[&Case]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&JsonCatalogue {
        format: CATALOGUE_FORMAT,
        harness: HARNESS,
        catalogue: CatalogueId {
            cases: all.len(),
            hash: catalogue_hash(all),
        },
        cases: selected
            .iter()
            .map(|c| JsonCase {
                id: &c.id,
                section: c.section,
                level: c.level,
                requirement: &c.requirement,
                expected: &c.expected,
            })
            .collect(),
    })
}

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
        let all = [a, b];
        let text = catalogue_json(&all, &[&all[1]]).expect("json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(v["format"], CATALOGUE_FORMAT);
        assert_eq!(v["catalogue"]["cases"], 2);
        assert_eq!(v["cases"][0]["id"], "hosts::long-name");
        assert_eq!(v["cases"][0]["level"], "SHOULD");
        assert_eq!(v["cases"].as_array().map(Vec::len), Some(1));
    }
}
