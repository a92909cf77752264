//! Checks: [`validate`] refuses a catalogue whose declarations or shapes are
//! wrong, and [`check`] and [`compare`] report the [`Drift`] between a
//! golden directory and the catalogue.

use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::{
    catalogue, files, lock_files, Class, Drift, DriftKind, Expect, Fixture, GoldenError, MANIFEST,
};
use rvlf_lock::record;

/// Refuse a catalogue whose declarations disagree with `record::decode`, whose
/// classes do not fit what the bytes decode to, or that repeats an id, a file
/// name or a byte string.
pub fn validate(fixtures: &[Fixture]) -> Result<(), GoldenError> {
    let mut ids = HashSet::new();
    let mut files = HashSet::new();
    let mut contents = HashSet::new();
    for f in fixtures {
        check_fixture(f)?;
        if !ids.insert(f.id) {
            return Err(duplicate("id", f.id));
        }
        if !files.insert(f.file()) {
            return Err(duplicate("file name", &f.file()));
        }
        if !contents.insert(f.bytes.as_slice()) {
            return Err(duplicate("bytes of", f.id));
        }
    }
    Ok(())
}

fn duplicate(what: &'static str, value: &str) -> GoldenError {
    GoldenError::Duplicate {
        what,
        value: value.to_string(),
    }
}

fn check_fixture(f: &Fixture) -> Result<(), GoldenError> {
    if !is_kebab(f.id) {
        return Err(GoldenError::BadId {
            id: f.id.to_string(),
        });
    }
    if !is_section(f.rule) {
        return Err(GoldenError::BadRule {
            id: f.id.to_string(),
            rule: f.rule.to_string(),
        });
    }
    let decoded = record::decode(&f.bytes);
    let agrees = match (&f.expect, &decoded) {
        (Expect::Record(want), Ok(got)) => want == got,
        (Expect::Error(want), Err(got)) => want == got,
        _ => false,
    };
    if !agrees {
        return Err(GoldenError::Disagrees {
            id: f.id.to_string(),
            declared: format!("{:?}", f.expect),
            decoded: format!("{decoded:?}"),
        });
    }
    check_class(f)
}

/// valid: a record a conforming writer could write; impl: a record only a
/// lenient reader accepts (§4.3); invalid: not a record.
fn check_class(f: &Fixture) -> Result<(), GoldenError> {
    let why = match (&f.expect, f.class) {
        (Expect::Record(r), Class::Valid) if !r.hostname.is_writable() => {
            "its host name is longer than a writer stores (§4.3): class impl"
        }
        (Expect::Record(r), Class::ImplementationDefined) if r.hostname.is_writable() => {
            "a conforming writer can write it: class valid"
        }
        (Expect::Record(_), Class::Invalid) => "it decodes to a record",
        (Expect::Error(_), Class::Valid | Class::ImplementationDefined) => "it does not decode",
        _ => return Ok(()),
    };
    Err(GoldenError::Class {
        id: f.id.to_string(),
        class: f.class.name(),
        why,
    })
}

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// "§N" or "§N.M".
fn is_section(rule: &str) -> bool {
    let Some(number) = rule.strip_prefix('§') else {
        return false;
    };
    let parts: Vec<&str> = number.split('.').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Compare `dir` with what [`regen`](super::regen) would write, byte for byte.
pub fn check(dir: &Path) -> Result<Vec<Drift>, GoldenError> {
    compare(dir, &catalogue()?)
}

/// One [`Drift`] per file of `fixtures` (and the manifest) that is missing from
/// `dir` or differs, and per `*.lock` file in `dir` that `fixtures` lacks.
pub fn compare(dir: &Path, fixtures: &[Fixture]) -> Result<Vec<Drift>, GoldenError> {
    let files = files(fixtures)?;
    let mut drift = Vec::new();
    for (name, expected) in &files {
        let path = dir.join(name);
        let found = match fs::read(&path) {
            Ok(found) => found,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                drift.push(Drift {
                    path,
                    kind: DriftKind::Missing,
                    what: format!("missing ({} bytes expected)", expected.len()),
                });
                continue;
            }
            Err(source) => return Err(GoldenError::Io { path, source }),
        };
        if let Some(what) = difference(&found, expected, name == MANIFEST) {
            drift.push(Drift {
                path,
                kind: DriftKind::Differs,
                what,
            });
        }
    }
    let wanted: HashSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for name in lock_files(dir)? {
        if !wanted.contains(name.as_str()) {
            drift.push(Drift {
                path: dir.join(&name),
                kind: DriftKind::Extra,
                what: "not in the catalogue (regen removes it)".to_string(),
            });
        }
    }
    Ok(drift)
}

/// How `found` differs from `expected`, or `None` if it does not.
fn difference(found: &[u8], expected: &[u8], text: bool) -> Option<String> {
    if found == expected {
        return None;
    }
    let at = found
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(found.len().min(expected.len()));
    let byte = |bytes: &[u8]| {
        bytes
            .get(at)
            .map_or("end of file".to_string(), |b| format!("{b:#04x}"))
    };
    let line = if text {
        let line = expected[..at.min(expected.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        format!(" (line {})", line + 1)
    } else {
        String::new()
    };
    Some(format!(
        "{} bytes, {} expected; first difference at offset {at:#x}{line}: {} found, {} expected",
        found.len(),
        expected.len(),
        byte(found),
        byte(expected)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_names_the_first_differing_offset_and_line() {
        assert_eq!(difference(b"ab", b"ab", false), None);
        let what = difference(b"a\nbX", b"a\nbc", true).expect("they differ");
        assert!(what.contains("offset 0x3 (line 2)"), "{what}");
        let what = difference(b"abc", b"ab", false).expect("they differ");
        assert!(what.contains("0x63 found, end of file expected"), "{what}");
    }

    #[test]
    fn ids_and_rules_are_checked_for_shape() {
        assert!(is_kebab("pid-2147483648"));
        assert!(!is_kebab("Pid") && !is_kebab("a--b") && !is_kebab("-a") && !is_kebab(""));
        assert!(is_section("§4.2") && is_section("§6"));
        assert!(!is_section("4.2") && !is_section("§4.") && !is_section("§4.2.1"));
    }
}
