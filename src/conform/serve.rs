//! The reference's own adapter (`rvlf adapter [--mutant NAME]`): the adapter
//! protocol served over stdin and stdout with the library, every verb
//! implemented. Malformed requests get an error reply, never a panic.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use nix::errno::Errno;
use serde_json::Value;

use super::wire::{
    unhex, Command, Fields, Hello, HelloLine, JudgeArgs, Outcome, ReplyLine, RequestLine, FEATURES,
    PROTOCOL,
};
use crate::variant::{Lock, Variant};
use rvlf_lock::machine::Rules;
use rvlf_lock::machine::{LockError, Released};
use rvlf_lock::policy::{Contents, Facts, Liveness};
use rvlf_lock::record::{hex, DecodeError};
use rvlf_lock::AcquireError;

/// Serve requests from `input` until it ends, replying on `output`.
pub fn serve(
    implementation: &str,
    variant: &Variant,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    let hello = HelloLine {
        hello: Hello {
            protocol: PROTOCOL.to_string(),
            implementation: implementation.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            features: FEATURES.iter().map(|f| f.to_string()).collect(),
        },
    };
    send(&mut output, &hello)?;
    let mut held: HashMap<String, Lock> = HashMap::new();
    for line in input.lines() {
        let line = line?;
        let reply = answer(&line, variant, &mut held);
        send(&mut output, &reply)?;
    }
    // End of input: give back what we still hold.
    for (_, lock) in held.drain() {
        let _ = lock.release();
    }
    Ok(())
}

fn send(output: &mut impl Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    writeln!(output, "{text}")?;
    output.flush()
}

fn error(kind: &str, message: impl Into<String>) -> Outcome {
    Outcome::Error {
        error: kind.to_string(),
        message: message.into(),
    }
}

/// The reply to one request line.
fn answer(line: &str, variant: &Variant, held: &mut HashMap<String, Lock>) -> ReplyLine {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return ReplyLine {
                id: 0,
                outcome: error("bad-request", format!("not JSON: {e}")),
            }
        }
    };
    let id = value.get("id").and_then(Value::as_u64).unwrap_or(0);
    let known = value
        .get("verb")
        .and_then(Value::as_str)
        .is_some_and(|v| ["try-acquire", "release", "encode", "decode", "judge"].contains(&v));
    if !known {
        return ReplyLine {
            id,
            outcome: Outcome::Unimplemented,
        };
    }
    let outcome = match serde_json::from_value::<RequestLine>(value) {
        Ok(request) => run(request.command, variant, held),
        Err(e) => error("bad-request", e.to_string()),
    };
    ReplyLine { id, outcome }
}

fn run(command: Command, variant: &Variant, held: &mut HashMap<String, Lock>) -> Outcome {
    match command {
        Command::TryAcquire { path } => match variant.try_acquire_file(Path::new(&path)) {
            Ok(lock) => {
                let writer_id = hex(&lock.record().writer_id.0);
                held.insert(path, lock);
                Outcome::Acquired { writer_id }
            }
            Err(AcquireError::Busy { .. } | AcquireError::TimedOut { .. }) => Outcome::Busy,
            Err(AcquireError::Lock { source, .. }) => lock_error(&source),
            Err(e) => error("other", e.to_string()),
        },
        Command::Release { path } => match held.remove(&path) {
            None => error("not-held", format!("this adapter holds no lock at {path}")),
            Some(lock) => match lock.release() {
                Ok(Released::Released) => Outcome::Released,
                Ok(Released::Lost(_)) => Outcome::Lost,
                Err(e) => lock_error(&e.source),
            },
        },
        Command::Encode { record } => match record.to_record() {
            Ok(r) => Outcome::Encoded {
                bytes: hex(&variant.rules().encode(&r)),
            },
            Err(e) => error("bad-request", e),
        },
        Command::Decode { bytes } => match unhex(&bytes) {
            Ok(b) => decoded(variant.rules().decode(&b)),
            Err(e) => error("bad-request", e),
        },
        Command::Judge(args) => judge(&args, variant),
    }
}

fn decoded(result: Result<rvlf_lock::record::Record, DecodeError>) -> Outcome {
    match result {
        Ok(r) => Outcome::Decoded {
            record: Fields::from(&r),
        },
        Err(e) => Outcome::Invalid {
            code: e.code().to_string(),
        },
    }
}

fn lock_error(e: &LockError) -> Outcome {
    match e {
        LockError::NotRegular { .. } => error("not-regular", e.to_string()),
        LockError::Io {
            errno: Errno::EACCES | Errno::EPERM,
            ..
        } => error("permission", e.to_string()),
        LockError::Io { .. } => error("io", e.to_string()),
        _ => error("other", e.to_string()),
    }
}

fn judge(args: &JudgeArgs, variant: &Variant) -> Outcome {
    let parsed = (|| {
        let bytes = unhex(&args.bytes)?;
        let mtime_ns: i128 = args.mtime_ns.parse().map_err(|_| "mtime_ns")?;
        let now_ns: i128 = args.now_ns.parse().map_err(|_| "now_ns")?;
        // The raw, untruncated name: compared after the writer's cut (§5.2).
        let (_, host) = variant.flaws.host_names(&unhex(&args.local_host)?);
        let liveness = match args.liveness.as_str() {
            "alive" => Liveness::Alive,
            "eperm" => Liveness::AliveOtherUser,
            "dead" => Liveness::Dead,
            other => return Err(format!("liveness {other:?}: alive, eperm or dead")),
        };
        Ok::<_, String>((bytes, mtime_ns, now_ns, host, liveness))
    })();
    let (bytes, mtime_ns, now_ns, host, liveness) = match parsed {
        Ok(p) => p,
        Err(e) => return error("bad-request", e),
    };
    let rules = variant.rules();
    let contents = match rules.decode(&bytes) {
        Ok(r) => Contents::Valid(r),
        Err(e) => Contents::Malformed(e),
    };
    let probed = rules.pid_to_probe(&contents, &host).map(|_| liveness);
    let verdict = rules.judge(
        &Facts {
            contents: &contents,
            mtime_ns,
            now_ns,
            local_host: &host,
            liveness: probed,
        },
        &variant.thresholds,
    );
    Outcome::Judged {
        stale: verdict.stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(input: &str) -> Vec<Value> {
        let mut out = Vec::new();
        serve(
            "test",
            &crate::variant::REFERENCE,
            input.as_bytes(),
            &mut out,
        )
        .expect("serve");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn hello_comes_first_and_claims_every_optional_verb() {
        let lines = exchange("");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["hello"]["protocol"], PROTOCOL);
        assert_eq!(
            lines[0]["hello"]["features"].as_array().map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn unknown_verbs_and_garbage_get_replies_not_panics() {
        let lines =
            exchange("{\"id\":5,\"verb\":\"fly\"}\nnot json\n{\"id\":6,\"verb\":\"decode\"}\n");
        assert_eq!(lines[1]["id"], 5);
        assert_eq!(lines[1]["result"], "unimplemented");
        assert_eq!(lines[2]["result"], "error");
        assert_eq!(lines[3]["id"], 6);
        assert_eq!(lines[3]["error"], "bad-request");
    }

    #[test]
    fn decode_names_the_error_code() {
        let lines = exchange("{\"id\":1,\"verb\":\"decode\",\"bytes\":\"00\"}\n");
        assert_eq!(lines[1]["result"], "invalid");
        assert_eq!(lines[1]["code"], "length");
    }
}
