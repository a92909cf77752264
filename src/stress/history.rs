//! The history of a stress run: one [`Event`] per thing that happened — a
//! holder entering or leaving its critical section, a release that found the
//! lock lost, a death, a pause, a fault the harness injected — each stamped
//! with CLOCK_MONOTONIC.
//!
//! Saved as JSON lines in time order: a `run` line first, then the events,
//! then an `end` line with the counter's final value; `rvlf stress --check`
//! reads it back and checks it again.

use std::cmp::Ordering;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use rvlf_lock::record::{hex, Record};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A writer holds the lock and entered its critical section.
    Enter,
    /// It left its critical section; it still holds the lock until it releases.
    Exit,
    /// Its release reported the lock lost (§9.2): someone else's by then.
    Lost,
    /// Its release failed with an error.
    ReleaseError,
    /// The writer process died (seen by the harness when it reaped it).
    Death,
    /// The harness saw the writer stopped (SIGSTOP) inside its critical section.
    Pause,
    /// The harness continued it (SIGCONT).
    Continue,
    /// The harness sent SIGKILL to a writer.
    Kill,
    /// The harness planted a stale lock (a dead holder's) for a storm round.
    Plant,
    /// The harness moved a dead or paused holder's lock into the past.
    Aged,
    /// A try-acquire failed with an error, or the adapter went away (the
    /// first few of each writer process).
    Error,
}

impl Kind {
    /// Order of events with the same timestamp: a holder leaves before the
    /// next one enters, so equal stamps never count as an overlap.
    pub fn rank(self) -> u8 {
        match self {
            Kind::Exit | Kind::Lost | Kind::ReleaseError | Kind::Death => 0,
            Kind::Continue | Kind::Pause | Kind::Kill | Kind::Aged | Kind::Error => 1,
            Kind::Plant => 2,
            Kind::Enter => 3,
        }
    }
}

/// A lock record as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    pub pid: u32,
    /// Printable host name (`\xNN` for other bytes).
    pub hostname: String,
    /// Epoch nanoseconds, as a decimal string.
    pub timestamp_ns: String,
    pub writer_id: String,
}

impl From<&Record> for RecordView {
    fn from(r: &Record) -> Self {
        RecordView {
            pid: r.pid,
            hostname: r.hostname.to_string(),
            timestamp_ns: r.timestamp_ns.to_string(),
            writer_id: hex(&r.writer_id.0),
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One event. Which fields are set depends on `event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub t_ns: u64,
    pub event: Kind,
    /// The writer index (stable across restarts); none for harness-wide events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<u32>,
    /// The PID the writer's lock records carry (or the victim's, for `kill`).
    #[serde(default)]
    pub pid: u32,
    /// The writer's acquisition number; the round for `plant`.
    #[serde(default)]
    pub seq: u64,
    /// `enter`: the writer id of the lock it holds (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_id: Option<String>,
    /// `enter`: the record of the lock it holds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordView>,
    /// `death`: the signal that ended it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `death`, `release-error`, `error`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// `death`: the lock at the path was this writer's own when it died.
    #[serde(default, skip_serializing_if = "is_false")]
    pub held_lock: bool,
}

impl Event {
    pub fn new(t_ns: u64, event: Kind) -> Event {
        Event {
            t_ns,
            event,
            writer: None,
            pid: 0,
            seq: 0,
            writer_id: None,
            record: None,
            signal: None,
            cause: None,
            held_lock: false,
        }
    }

    pub fn by(mut self, writer: usize, pid: u32, seq: u64) -> Event {
        self.writer = u32::try_from(writer).ok();
        self.pid = pid;
        self.seq = seq;
        self
    }

    /// The order a checker reads events in: time, then leaving before entering.
    pub fn order(&self, other: &Event) -> Ordering {
        (self.t_ns, self.event.rank(), self.writer).cmp(&(
            other.t_ns,
            other.event.rank(),
            other.writer,
        ))
    }
}

/// What a run was: the first line of a saved history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLine {
    pub scenario: String,
    pub variant: String,
    pub writers: usize,
    /// Decimal string: seeds are full 64-bit values.
    pub seed: String,
    /// What each writer ran: `reference`, `seed` or an adapter command.
    #[serde(default)]
    pub implementations: Vec<String>,
}

/// The last line: the non-atomic counter's final value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndLine {
    pub counter: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Framing {
    Run(RunLine),
    End(EndLine),
}

/// Writes a history as JSON lines.
pub struct JsonWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(mut out: W, run: &RunLine) -> std::io::Result<JsonWriter<W>> {
        line(&mut out, &Framing::Run(run.clone()))?;
        Ok(JsonWriter { out })
    }

    pub fn event(&mut self, event: &Event) -> std::io::Result<()> {
        line(&mut self.out, event)
    }

    pub fn end(mut self, end: EndLine) -> std::io::Result<()> {
        line(&mut self.out, &Framing::End(end))?;
        self.out.flush()
    }
}

fn line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// A history read back from JSON lines.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub run: Option<RunLine>,
    /// In checking order (see [`Event::order`]).
    pub events: Vec<Event>,
    pub end: Option<EndLine>,
}

/// Read a saved history. Lines may come in any order; events are sorted.
pub fn read_json(input: impl BufRead) -> Result<Saved, String> {
    let mut saved = Saved::default();
    for (n, text) in input.lines().enumerate() {
        let text = text.map_err(|e| format!("line {}: {e}", n + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("line {}: {e}", n + 1))?;
        let is_framing = matches!(
            value.get("event").and_then(|v| v.as_str()),
            Some("run" | "end")
        );
        if is_framing {
            match serde_json::from_value::<Framing>(value) {
                Ok(Framing::Run(r)) => saved.run = Some(r),
                Ok(Framing::End(e)) => saved.end = Some(e),
                Err(e) => return Err(format!("line {}: {e}", n + 1)),
            }
        } else {
            let event: Event =
                serde_json::from_value(value).map_err(|e| format!("line {}: {e}", n + 1))?;
            saved.events.push(event);
        }
    }
    saved.events.sort_by(Event::order);
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_round_trips_through_json_lines() {
        let run = RunLine {
            scenario: "contention".into(),
            variant: "reference".into(),
            writers: 2,
            seed: "18446744073709551615".into(),
            implementations: vec!["reference".into(); 2],
        };
        let mut enter = Event::new(5, Kind::Enter).by(1, 42, 3);
        enter.writer_id = Some("00".repeat(16));
        let exit = Event::new(9, Kind::Exit).by(1, 42, 3);
        let mut out = Vec::new();
        let mut w = JsonWriter::new(&mut out, &run).expect("write");
        // Written out of order: reading sorts.
        w.event(&exit).expect("write");
        w.event(&enter).expect("write");
        w.end(EndLine { counter: 1 }).expect("write");
        let saved = read_json(out.as_slice()).expect("read");
        assert_eq!(saved.run, Some(run));
        assert_eq!(saved.events, vec![enter, exit]);
        assert_eq!(saved.end, Some(EndLine { counter: 1 }));
    }

    #[test]
    fn at_equal_times_leaving_sorts_before_entering() {
        let enter = Event::new(7, Kind::Enter).by(0, 1, 0);
        let exit = Event::new(7, Kind::Exit).by(1, 2, 0);
        assert_eq!(enter.order(&exit), Ordering::Greater);
    }

    #[test]
    fn garbage_lines_are_errors_with_their_number() {
        let err = read_json("{\"event\":\"run\",\"scenario\":\"x\",\"variant\":\"y\",\"writers\":1,\"seed\":\"1\"}\nnot json\n".as_bytes())
            .expect_err("line 2 is not JSON");
        assert!(err.starts_with("line 2:"), "{err}");
    }
}
