//! The `--expect` file (`Expectations::parse`, src/conform/runner.rs) on any
//! UTF-8 text: it never panics; what it accepts is one entry per listed
//! case, each an id without white space that is no comment and a trimmed,
//! non-empty reason on one line, and writing the entries back as
//! `<id> <reason>` lines parses to the same expectations. A refusal names
//! its line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvlf::conform::runner::Expectations;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Expectations::parse(text) {
        Ok(e) => {
            assert!(e.known.len() <= text.lines().count());
            let mut written = String::new();
            for (id, reason) in &e.known {
                assert!(!id.is_empty() && !id.starts_with('#'), "id {id:?}");
                assert!(!id.contains(char::is_whitespace), "id {id:?}");
                assert!(
                    !reason.is_empty() && reason.trim() == reason,
                    "reason {reason:?}"
                );
                assert!(!reason.contains('\n'), "reason {reason:?}");
                written.push_str(&format!("{id} {reason}\n"));
            }
            assert_eq!(Expectations::parse(&written).as_ref(), Ok(&e));
        }
        Err(message) => assert!(message.starts_with("line "), "{message}"),
    }
});
