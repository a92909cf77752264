//! A line an adapter prints, as the harness reads it (src/conform/client.rs:
//! the bytes up to the newline, lossily UTF-8, trailing white space cut),
//! parsed as a handshake and as a reply (`rvlf::conform::wire`). Nothing
//! panics, and:
//!
//! - an accepted `hello` names this harness's major protocol version and
//!   survives a trip through JSON unchanged;
//! - an accepted reply survives a trip through JSON unchanged, and its
//!   `result` member is the outcome's name;
//! - the hex and record fields of a reply, decoded as the cases decode
//!   them, either fail or give bytes whose lowercase hex is the field, and
//!   a record that encodes and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvlf::conform::wire::{
    parse_hello, parse_reply, unhex, Fields, HelloLine, Outcome, ReplyLine, PROTOCOL,
};
use rvlf_lock::record::hex;
use rvlf_lock::{decode, encode};

fn hex_field(s: &str) {
    if let Ok(bytes) = unhex(s) {
        assert_eq!(hex(&bytes), s.to_ascii_lowercase(), "unhex accepted {s:?}");
    }
}

fn record_field(fields: &Fields) {
    hex_field(&fields.hostname);
    hex_field(&fields.writer_id);
    let Ok(record) = fields.to_record() else {
        return;
    };
    let back = Fields::from(&record);
    assert_eq!(
        (back.pid, back.version, &back.hostname, &back.writer_id),
        (
            fields.pid,
            fields.version,
            &fields.hostname.to_ascii_lowercase(),
            &fields.writer_id.to_ascii_lowercase()
        )
    );
    let bytes = encode(&record);
    if record.version == 1 {
        assert_eq!(decode(&bytes).as_ref(), Ok(&record));
    } else {
        assert!(decode(&bytes).is_err());
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let line = text.trim_end();

    if let Ok(hello) = parse_hello(line) {
        let major = |p: &str| p.split('.').next().unwrap_or(p).to_string();
        assert_eq!(major(&hello.protocol), PROTOCOL);
        let again = serde_json::to_string(&HelloLine {
            hello: hello.clone(),
        })
        .expect("a hello serializes");
        assert_eq!(parse_hello(&again), Ok(hello));
    }

    if let Ok(reply) = parse_reply(line) {
        let again = serde_json::to_string(&reply).expect("a reply serializes");
        let value: serde_json::Value = serde_json::from_str(&again).expect("valid JSON");
        assert_eq!(value["result"].as_str(), Some(reply.outcome.name()));
        let back: ReplyLine = parse_reply(&again).expect("a serialized reply parses");
        assert_eq!(back, reply);
        match &reply.outcome {
            Outcome::Acquired { writer_id } => hex_field(writer_id),
            Outcome::Encoded { bytes } => {
                hex_field(bytes);
                if let Ok(b) = unhex(bytes) {
                    let _ = decode(&b);
                }
            }
            Outcome::Decoded { record } => record_field(record),
            _ => {}
        }
    }
});
