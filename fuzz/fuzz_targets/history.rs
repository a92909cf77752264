//! A saved stress history, as `rvlf stress --check FILE` reads and checks
//! it (src/stress/cli.rs): `history::read_json`, then the checker and the
//! report over whatever parses. Nothing panics, and:
//!
//! - an accepted history written back as JSON lines reads back the same;
//! - the checker's counts are coherent: every interval it closed or left
//!   open was opened by one acquisition, and no more acquisitions
//!   overlapped another holder than there were acquisitions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvlf::stress::check;
use rvlf::stress::history::{read_json, JsonWriter};
use rvlf::stress::report;

fuzz_target!(|data: &[u8]| {
    let Ok(saved) = read_json(data) else {
        return;
    };

    if let Some(run) = &saved.run {
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, run).expect("write to memory");
        for e in &saved.events {
            w.event(e).expect("write to memory");
        }
        if let Some(end) = saved.end {
            w.end(end).expect("write to memory");
        }
        let again = read_json(out.as_slice()).expect("a written history reads back");
        assert_eq!(again.run.as_ref(), Some(run));
        assert_eq!(again.events, saved.events);
        assert_eq!(again.end, saved.end);
    }

    let f = check::check(&saved.events, saved.end.map(|e| e.counter));
    assert!(f.completed + f.died_inside + f.open_at_end <= f.acquisitions);
    assert!(f.violations <= f.acquisitions);
    assert!(f.entered_during_pause <= f.violations);
    assert!(f.acquisitions <= saved.events.len() as u64);
    if f.ok() {
        assert_eq!(f.violations, 0);
    }
    let _ = report::findings(&f);
    let _ = check::render_first_violation(&f);
    let _ = report::verdict(&f, false);
});
