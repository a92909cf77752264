//! The catalogue table of `rvlf conform --list`: the selected cases, not
//! their results.

use std::fmt::Write as _;

use crate::conform::case::Case;

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
    }
}
