//! Counterexamples made readable: [`timeline`] numbers the steps of a path
//! (who did what, what it got, what is at the lock path after), and the
//! `show_*` helpers render requests, replies, records and the simulated file
//! system for it and for the model's traces.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use stateright::{Expectation, Model, Path};

use super::{LockModel, State, Step, S, T0};
use crate::sim::Sim;
use rvlf_lock::machine::{Busy, Lost, Meta, ReadReply, Reply, Request};
use rvlf_lock::policy::Contents;
use rvlf_lock::record::{self, WriterId, RECORD_LEN};

/// The numbered steps of `path`: who did what, what it got, and what is at
/// the lock path afterwards; the step that breaks a property says which.
pub fn timeline(model: &LockModel, path: &Path<State, Step>) -> String {
    let properties = model.properties();
    let steps = path.clone().into_vec();
    let mut out = String::new();
    if let Some((first, _)) = steps.first() {
        let _ = writeln!(out, "  0. start: {}", show_fs(&first.sim));
    }
    for (n, (state, step)) in steps.iter().enumerate() {
        let Some(step) = step else { break };
        let Some((after, trace)) = model.apply(state, *step) else {
            let _ = writeln!(out, "{:3}. {step:?}: not applicable", n + 1);
            continue;
        };
        let _ = writeln!(
            out,
            "{:3}. {}: {} -> {}",
            n + 1,
            trace.actor,
            trace.request,
            trace.reply
        );
        if let Some(outcome) = &trace.outcome {
            let _ = writeln!(out, "     {outcome}");
        }
        let _ = writeln!(out, "     {}", show_fs(&after.sim));
        for p in properties
            .iter()
            .filter(|p| p.expectation == Expectation::Always)
        {
            if (p.condition)(model, state) && !(p.condition)(model, &after) {
                let _ = writeln!(out, "     VIOLATES: {}", p.name);
            }
        }
    }
    out
}

pub(super) fn actor(i: usize, pid: u32) -> String {
    format!("P{i} (pid {pid})")
}

/// A time on the simulated clock, relative to the start.
pub(super) fn show_time(ns: i128) -> String {
    let d = ns - T0;
    let sign = if d < 0 { "-" } else { "+" };
    format!("T0{sign}{}", show_duration(d.abs()))
}

pub(super) fn show_duration(ns: i128) -> String {
    let (s, frac) = (ns / S, ns % S);
    if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{frac:09}s")
    }
}

/// Whose writer id this is: `w<process>.<round>.<attempt>`, or the planted lock's.
fn show_writer(id: &WriterId) -> String {
    match id.0[0] {
        b'w' => format!("w{}.{}.{}", id.0[1], id.0[2], id.0[3]),
        b'p' => "planted".into(),
        _ => id.to_string(),
    }
}

fn show_bytes(bytes: &[u8]) -> String {
    match record::decode(bytes) {
        Ok(r) => format!(
            "record of pid {}, writer {}, timestamp {}",
            r.pid,
            show_writer(&r.writer_id),
            show_time(i128::from(r.timestamp_ns))
        ),
        Err(e) => format!("malformed: {}, {} bytes", e.code(), bytes.len()),
    }
}

pub(super) fn show_request(request: &Request) -> String {
    match request {
        Request::Now => "clock".into(),
        Request::Publish { bytes } => format!("publish [{}]", show_bytes(bytes)),
        Request::Create => "create the lock path empty (O_EXCL)".into(),
        Request::Write { file, bytes } => {
            format!("write into h{} [{}]", file.0, show_bytes(bytes))
        }
        Request::Read { keep_open } => {
            if *keep_open {
                "read the lock path, keep it open".into()
            } else {
                "read the lock path".into()
            }
        }
        Request::ProbePid { pid } => format!("kill({pid}, 0)"),
        Request::Guard { file } => format!("flock(h{}, LOCK_EX|LOCK_NB)", file.0),
        Request::Stat => "lstat the lock path".into(),
        Request::Unlink => "unlink the lock path".into(),
        Request::Close { file } => format!("close h{}", file.0),
    }
}

fn show_meta(meta: &Meta) -> String {
    format!(
        "ino {}, {} bytes, mtime {}",
        meta.id.ino,
        meta.size,
        show_time(meta.mtime_ns)
    )
}

pub(super) fn show_reply(reply: &Reply) -> String {
    match reply {
        Reply::Now(t) => show_time(*t),
        Reply::Published { file, id } => format!("created ino {} as h{}", id.ino, file.0),
        Reply::Exists => "EEXIST".into(),
        Reply::LinksRefused => "links refused".into(),
        Reply::Written => "written".into(),
        Reply::Read(ReadReply::Found { file, meta, head }) => format!(
            "found {}{} [{}]",
            show_meta(meta),
            file.map(|h| format!(", open as h{}", h.0))
                .unwrap_or_default(),
            show_bytes(head)
        ),
        Reply::Read(ReadReply::NotFound) => "ENOENT".into(),
        Reply::Read(ReadReply::NotRegular(kind)) => format!("not a regular file: {kind}"),
        Reply::Liveness(l) => format!("{l:?}"),
        Reply::Guarded => "guard taken".into(),
        Reply::GuardBusy => "EWOULDBLOCK".into(),
        Reply::Stat(Some(meta)) => show_meta(meta),
        Reply::Stat(None) => "ENOENT".into(),
        Reply::Unlinked => "unlinked".into(),
        Reply::UnlinkedNothing => "ENOENT".into(),
        Reply::Closed => "closed".into(),
        Reply::Failed(errno) => format!("failed: {errno}"),
    }
}

fn show_contents(contents: &Contents) -> String {
    match contents {
        Contents::Valid(r) => format!("pid {}, writer {}", r.pid, show_writer(&r.writer_id)),
        Contents::Malformed(e) => format!("malformed: {}", e.code()),
    }
}

pub(super) fn show_busy(busy: &Busy) -> String {
    match busy {
        Busy::Held { contents, .. } => format!("held by {}", show_contents(contents)),
        Busy::Guarded { contents } => format!("guard taken, {}", show_contents(contents)),
        Busy::Contended => "contended in every round".into(),
    }
}

pub(super) fn show_lost(lost: &Lost) -> String {
    match lost {
        Lost::Vanished => "the lock path is empty".into(),
        Lost::Replaced { contents } => format!("replaced by {}", show_contents(contents)),
        Lost::NotRegular { kind } => format!("a {kind} is there"),
    }
}

/// What is at the lock path, and who is alive.
pub fn show_fs(sim: &Sim) -> String {
    let owners: BTreeMap<_, _> = sim.handles.iter().map(|(h, (pid, _))| (*h, *pid)).collect();
    let at_path = match (sim.lock, sim.lock_file()) {
        (Some(ino), Some(inode)) => {
            let guard = match inode.guard {
                Some(h) => match owners.get(&h) {
                    Some(pid) => format!("guard h{} of pid {pid}", h.0),
                    None => format!("guard h{}", h.0),
                },
                None => "no guard".into(),
            };
            let dead = if sim.alive.contains(&inode.creator) {
                ""
            } else {
                " (dead)"
            };
            format!(
                "ino {ino} by pid {}{dead}, {} bytes [{}], {guard}",
                inode.creator,
                inode.data.len(),
                if inode.data.len() == RECORD_LEN {
                    show_bytes(&inode.data)
                } else {
                    format!("partial: {} bytes", inode.data.len())
                }
            )
        }
        _ => "empty".into(),
    };
    let alive: Vec<String> = sim.alive.iter().map(u32::to_string).collect();
    format!(
        "lock path: {at_path}; now {}; alive: {}",
        show_time(sim.now_ns),
        alive.join(", ")
    )
}
