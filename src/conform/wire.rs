//! The adapter protocol on the wire (conformance/ADAPTER.md): one JSON object
//! per line. The adapter speaks first with `hello`; then each request line
//! from the harness gets exactly one reply line with the same `id`.

use serde::{Deserialize, Serialize};

use rvlf_lock::record::{hex, Hostname, Record, WriterId};

/// The protocol an adapter must name in its `hello`; the major version must match.
pub const PROTOCOL: &str = "rvlf-adapter/1";

/// The optional verbs an adapter may claim in `hello.features`.
pub const FEATURES: [&str; 3] = ["encode", "decode", "judge"];

/// The adapter's first line: `{"hello": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloLine {
    pub hello: Hello,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: String,
    pub implementation: String,
    pub version: String,
    /// The adapter's own PID: the PID its lock records must carry.
    pub pid: u32,
    #[serde(default)]
    pub features: Vec<String>,
}

/// A request line: `{"id": 7, "verb": "try-acquire", "path": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLine {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// What the harness asks. `try-acquire` and `release` are required; the rest
/// are optional features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case")]
pub enum Command {
    /// Try once to take the lock file at `path`, without waiting.
    TryAcquire { path: String },
    /// Release the lock this adapter holds at `path`.
    Release { path: String },
    /// Encode fields to the 104 bytes.
    Encode { record: Fields },
    /// Decode bytes (hex) to fields, or name what is wrong.
    Decode { bytes: String },
    /// Judge a lock file's staleness in the given context.
    Judge(JudgeArgs),
}

/// The context of a `judge` request: everything §6 looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeArgs {
    /// The file's bytes, hex (its length is the file's length).
    pub bytes: String,
    /// Decimal strings: u64/i128 values do not fit a JSON number everywhere.
    pub mtime_ns: String,
    pub now_ns: String,
    /// This host's name as gethostname(2) gives it, untruncated, as hex;
    /// the implementation applies its own cut before comparing (§5.2).
    pub local_host: String,
    /// `alive`, `eperm` or `dead`: what kill(pid, 0) would say, if asked.
    pub liveness: String,
}

/// A record's fields on the wire. Byte strings are lowercase hex; the
/// timestamp is a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    pub pid: u32,
    pub hostname: String,
    pub timestamp_ns: String,
    pub writer_id: String,
    pub version: u32,
}

impl From<&Record> for Fields {
    fn from(r: &Record) -> Self {
        Fields {
            pid: r.pid,
            hostname: hex(r.hostname.as_bytes()),
            timestamp_ns: r.timestamp_ns.to_string(),
            writer_id: hex(&r.writer_id.0),
            version: r.version,
        }
    }
}

impl Fields {
    /// The record these fields name, or what is wrong with them.
    pub fn to_record(&self) -> Result<Record, String> {
        let hostname = Hostname::new(unhex(&self.hostname)?).map_err(|e| e.to_string())?;
        let id: [u8; 16] = unhex(&self.writer_id)?
            .try_into()
            .map_err(|_| "writer_id must be 16 bytes".to_string())?;
        Ok(Record {
            pid: self.pid,
            hostname,
            timestamp_ns: self
                .timestamp_ns
                .parse()
                .map_err(|_| format!("timestamp_ns {:?} is not a u64", self.timestamp_ns))?,
            writer_id: WriterId(id),
            version: self.version,
        })
    }
}

/// A reply line: `{"id": 7, "result": "acquired", "writer_id": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyLine {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// try-acquire: the lock is ours; the writer id we published (hex).
    Acquired {
        writer_id: String,
    },
    /// try-acquire: someone else holds it (or it is stale but guarded).
    Busy,
    /// release: it was ours and is gone.
    Released,
    /// release: it was no longer ours; nothing was deleted.
    Lost,
    Encoded {
        bytes: String,
    },
    Decoded {
        record: Fields,
    },
    /// decode: not a valid record; `code` is one of PROTOCOL.md §4.2.
    Invalid {
        code: String,
    },
    Judged {
        stale: bool,
    },
    /// An unknown or unclaimed verb. Never a pass.
    Unimplemented,
    /// The request failed. `error` is a kind: `not-regular`, `permission`,
    /// `io`, `not-held`, `bad-request` or `other`.
    Error {
        error: String,
        #[serde(default)]
        message: String,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Acquired { .. } => "acquired",
            Outcome::Busy => "busy",
            Outcome::Released => "released",
            Outcome::Lost => "lost",
            Outcome::Encoded { .. } => "encoded",
            Outcome::Decoded { .. } => "decoded",
            Outcome::Invalid { .. } => "invalid",
            Outcome::Judged { .. } => "judged",
            Outcome::Unimplemented => "unimplemented",
            Outcome::Error { .. } => "error",
        }
    }
}

/// The adapter's first line as a handshake: a `hello` object whose protocol
/// has this harness's major version (ADAPTER.md sections 0 and 4). The error
/// says what is wrong, for a `bad hello` report.
pub fn parse_hello(line: &str) -> Result<Hello, String> {
    let hello: HelloLine = serde_json::from_str(line).map_err(|e| format!("{e}: {line:?}"))?;
    if major(&hello.hello.protocol) != major(PROTOCOL) {
        return Err(format!(
            "protocol {:?}, this harness speaks {PROTOCOL}",
            hello.hello.protocol
        ));
    }
    Ok(hello.hello)
}

/// A line from the adapter as a reply, whatever its `id` (the caller
/// compares it with the request's).
pub fn parse_reply(line: &str) -> Result<ReplyLine, serde_json::Error> {
    serde_json::from_str(line)
}

/// The part of a protocol string before its first `.`: `rvlf-adapter/1`.
fn major(protocol: &str) -> &str {
    protocol.split('.').next().unwrap_or(protocol)
}

/// The `id` of a line that looks like a reply (a JSON object with a numeric
/// `id`), to say what an unexpected line was: a second reply, or one to a
/// request not yet sent.
pub fn reply_id(line: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Id {
        id: u64,
    }
    serde_json::from_str::<Id>(line.trim_end())
        .ok()
        .map(|l| l.id)
}

/// Bytes from lowercase or uppercase hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("hex string of odd length {}", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                // from_str_radix alone would take a sign: "+f" is 15.
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hex at offset {i}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_flat_objects() {
        let line = RequestLine {
            id: 3,
            command: Command::TryAcquire {
                path: "/tmp/x.lock".into(),
            },
        };
        let text = serde_json::to_string(&line).expect("serialize");
        assert_eq!(
            text,
            r#"{"id":3,"verb":"try-acquire","path":"/tmp/x.lock"}"#
        );
        assert_eq!(serde_json::from_str::<RequestLine>(&text).ok(), Some(line));
    }

    #[test]
    fn reply_lines_are_flat_objects() {
        let text = r#"{"id":3,"result":"acquired","writer_id":"00ff"}"#;
        let line: ReplyLine = serde_json::from_str(text).expect("parse");
        assert_eq!(
            line.outcome,
            Outcome::Acquired {
                writer_id: "00ff".into()
            }
        );
        let err: ReplyLine =
            serde_json::from_str(r#"{"id":4,"result":"error","error":"io"}"#).expect("parse");
        assert_eq!(err.outcome.name(), "error");
    }

    #[test]
    fn reply_ids_are_read_from_any_object_with_one() {
        assert_eq!(reply_id(r#"{"id":7,"result":"busy"}"#), Some(7));
        assert_eq!(reply_id(r#"{"id":8,"result":"nonsense","x":[1]}"#), Some(8));
        assert_eq!(reply_id(r#"{"result":"busy"}"#), None);
        assert_eq!(reply_id("not json"), None);
        assert_eq!(reply_id(r#"{"id":-1}"#), None);
    }

    #[test]
    fn unhex_rejects_odd_and_non_hex() {
        assert_eq!(unhex("00fF"), Ok(vec![0, 255]));
        assert!(unhex("0").is_err());
        assert!(unhex("zz").is_err());
        assert!(unhex("é0").is_err());
    }

    #[test]
    fn unhex_rejects_a_sign() {
        // Found by the adapter_reply fuzz target: `u8::from_str_radix`
        // accepts a leading `+`, so a writer id "+4f5..." was taken as hex.
        assert!(unhex("+f").is_err());
        assert!(unhex("+4f543bae7e7e1b09a38aaa7cee5d479").is_err());
        assert!(unhex("-0").is_err());
    }

    #[test]
    fn hello_lines_need_this_major_version() {
        let hello = parse_hello(
            r#"{"hello":{"protocol":"rvlf-adapter/1.2","implementation":"x","version":"0","pid":7}}"#,
        )
        .expect("a minor revision is accepted");
        assert_eq!((hello.pid, hello.features.len()), (7, 0));
        let two =
            r#"{"hello":{"protocol":"rvlf-adapter/2","implementation":"x","version":"0","pid":7}}"#;
        assert!(parse_hello(two).is_err_and(|e| e.contains("this harness speaks")));
        assert!(parse_hello(r#"{"id":1,"result":"busy"}"#).is_err());
        assert!(
            parse_reply(r#"{"id":1,"result":"busy"}"#).is_ok_and(|r| r.outcome == Outcome::Busy)
        );
        assert!(parse_reply("busy").is_err());
    }
}
