//! The binary form of the history while a run is going: one append-only file
//! per writer (and one for the harness), each entry written with a single
//! `write(2)`. Per-writer files keep writers from sharing any file lock
//! inside their critical sections, which would order them and could hide a
//! mutual-exclusion failure. A writer killed mid-write can leave a torn last
//! entry; [`repair`] cuts it off before the harness appends the death.
//!
//! Entry: a 32-byte header — kind, flags, payload length (u16), writer (u32),
//! pid (u32), signal (i32), seq (u64), t_ns (u64), little-endian — then the
//! payload: the writer id (16 bytes) and the record (104) when flagged, then
//! the cause as UTF-8.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::files::{self, Access, Owned};
use super::history::{Event, Kind, RecordView};
use rvlf_lock::record::{self, hex, RECORD_LEN};

const HEADER: usize = 32;
const ID_LEN: usize = 16;

const HELD_LOCK: u8 = 1;
const HAS_ID: u8 = 2;
const HAS_RECORD: u8 = 4;
const HAS_SIGNAL: u8 = 8;
const HAS_WRITER: u8 = 16;

const KINDS: [Kind; 11] = [
    Kind::Enter,
    Kind::Exit,
    Kind::Lost,
    Kind::ReleaseError,
    Kind::Death,
    Kind::Pause,
    Kind::Continue,
    Kind::Kill,
    Kind::Plant,
    Kind::Aged,
    Kind::Error,
];

/// What an `enter` entry carries about the lock held.
pub struct Held<'a> {
    pub writer_id: &'a [u8; 16],
    /// The record's bytes, when the holder knows them.
    pub record: Option<&'a [u8; RECORD_LEN]>,
}

/// Build one entry.
pub fn encode(event: &Event, held: Option<&Held<'_>>) -> Vec<u8> {
    let cause = event.cause.as_deref().unwrap_or("").as_bytes();
    let cause = &cause[..cause.len().min(1024)];
    let mut flags = 0u8;
    let mut payload = Vec::new();
    if let Some(h) = held {
        flags |= HAS_ID;
        payload.extend_from_slice(h.writer_id);
        if let Some(r) = h.record {
            flags |= HAS_RECORD;
            payload.extend_from_slice(r);
        }
    }
    payload.extend_from_slice(cause);
    if event.held_lock {
        flags |= HELD_LOCK;
    }
    if event.signal.is_some() {
        flags |= HAS_SIGNAL;
    }
    if event.writer.is_some() {
        flags |= HAS_WRITER;
    }
    let kind = KINDS.iter().position(|k| *k == event.event).unwrap_or(0) as u8;
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.push(kind);
    buf.push(flags);
    buf.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    buf.extend_from_slice(&event.writer.unwrap_or(0).to_le_bytes());
    buf.extend_from_slice(&event.pid.to_le_bytes());
    buf.extend_from_slice(&event.signal.unwrap_or(0).to_le_bytes());
    buf.extend_from_slice(&event.seq.to_le_bytes());
    buf.extend_from_slice(&event.t_ns.to_le_bytes());
    buf.extend_from_slice(&payload);
    buf
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Decode one entry from its header and payload.
fn decode(header: &[u8; HEADER], payload: &[u8]) -> Result<Event, String> {
    let kind = *KINDS
        .get(usize::from(header[0]))
        .ok_or_else(|| format!("unknown entry kind {}", header[0]))?;
    let flags = header[1];
    let mut event = Event::new(u64_at(header, 24), kind);
    event.writer = (flags & HAS_WRITER != 0).then(|| u32_at(header, 4));
    event.pid = u32_at(header, 8);
    event.signal = (flags & HAS_SIGNAL != 0).then(|| u32_at(header, 12) as i32);
    event.seq = u64_at(header, 16);
    event.held_lock = flags & HELD_LOCK != 0;
    let mut rest = payload;
    if flags & HAS_ID != 0 {
        let (id, tail) = rest.split_at_checked(ID_LEN).ok_or("short writer id")?;
        event.writer_id = Some(hex(id));
        rest = tail;
    }
    if flags & HAS_RECORD != 0 {
        let (bytes, tail) = rest.split_at_checked(RECORD_LEN).ok_or("short record")?;
        event.record = record::decode(bytes).ok().map(|r| RecordView::from(&r));
        rest = tail;
    }
    if !rest.is_empty() {
        event.cause = Some(String::from_utf8_lossy(rest).into_owned());
    }
    Ok(event)
}

/// An append-only ledger file open for writing.
pub struct Ledger {
    file: File,
}

impl Ledger {
    /// Create the ledger at `path`, where nothing may be yet.
    pub fn create(path: &Path) -> std::io::Result<(Ledger, Owned)> {
        let (owned, file) = Owned::create(path, Access::Append, 0o600)?;
        Ok((Ledger { file }, owned))
    }

    /// Open an existing ledger: a regular file, not through a symbolic link.
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        let file = files::open_regular(path, Access::Append)?;
        Ok(Ledger { file })
    }

    /// Open the ledger the harness created, if it is still that file.
    pub fn open_owned(owned: &Owned) -> std::io::Result<Ledger> {
        let file = owned.open(Access::Append)?;
        Ok(Ledger { file })
    }

    /// Append one entry with one write.
    pub fn append(&mut self, event: &Event, held: Option<&Held<'_>>) -> std::io::Result<()> {
        self.file.write_all(&encode(event, held))
    }
}

/// Reads a ledger's entries in order.
pub struct Reader {
    input: BufReader<File>,
    path: PathBuf,
    /// Bytes of whole entries read so far.
    pub offset: u64,
}

impl Reader {
    /// Read the ledger the harness created from `offset` on, if it is still
    /// that file.
    pub fn open(owned: &Owned, offset: u64) -> std::io::Result<Reader> {
        Reader::new(owned.open(Access::Read)?, &owned.path, offset)
    }

    /// Read `file` (the ledger at `path`) from `offset` on.
    pub fn new(mut file: File, path: &Path, offset: u64) -> std::io::Result<Reader> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reader {
            input: BufReader::with_capacity(1 << 16, file),
            path: path.to_path_buf(),
            offset,
        })
    }

    /// The next entry; `Ok(None)` at the end or at a torn last entry.
    pub fn next_event(&mut self) -> Result<Option<Event>, String> {
        let mut header = [0u8; HEADER];
        if !read_full(&mut self.input, &mut header)
            .map_err(|e| format!("{}: {e}", self.path.display()))?
        {
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let mut payload = vec![0u8; len];
        if !read_full(&mut self.input, &mut payload)
            .map_err(|e| format!("{}: {e}", self.path.display()))?
        {
            return Ok(None);
        }
        let event = decode(&header, &payload)
            .map_err(|e| format!("{} at byte {}: {e}", self.path.display(), self.offset))?;
        self.offset += (HEADER + len) as u64;
        Ok(Some(event))
    }
}

/// Fill `buf`; false if the input ended first (a torn or absent entry).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// After its writer died: check the entries from `from` on and cut off a
/// torn last one. Returns the end of the last whole entry. Reads and cuts
/// through one descriptor, of the file the harness created.
pub fn repair(ledger: &Owned, from: u64) -> Result<u64, String> {
    let path = &ledger.path;
    let file = ledger
        .open(Access::ReadWrite)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = file
        .try_clone()
        .and_then(|f| Reader::new(f, path, from))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    while reader.next_event()?.is_some() {}
    let good = reader.offset;
    let len = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > good {
        file.set_len(good)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(good)
}

/// Every event of several ledgers, merged into checking order
/// ([`Event::order`]). Each ledger is in time order by itself: its writer's
/// entries, then (after its death) the harness's.
pub struct Merge {
    readers: Vec<Reader>,
    heads: BinaryHeap<Reverse<Head>>,
}

struct Head {
    event: Event,
    source: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.event
            .order(&other.event)
            .then(self.source.cmp(&other.source))
    }
}

impl Merge {
    pub fn open(ledgers: &[Owned]) -> Result<Merge, String> {
        let mut merge = Merge {
            readers: Vec::new(),
            heads: BinaryHeap::new(),
        };
        for ledger in ledgers {
            let reader =
                Reader::open(ledger, 0).map_err(|e| format!("{}: {e}", ledger.path.display()))?;
            merge.readers.push(reader);
            let source = merge.readers.len() - 1;
            merge.refill(source)?;
        }
        Ok(merge)
    }

    fn refill(&mut self, source: usize) -> Result<(), String> {
        if let Some(event) = self.readers[source].next_event()? {
            self.heads.push(Reverse(Head { event, source }));
        }
        Ok(())
    }

    pub fn next_event(&mut self) -> Result<Option<Event>, String> {
        let Some(Reverse(head)) = self.heads.pop() else {
            return Ok(None);
        };
        self.refill(head.source)?;
        Ok(Some(head.event))
    }
}

/// The events of ledgers still being written, in checking order, as far as
/// they are known: [`Follow::read`] takes the whole entries each ledger
/// gained since the last call (a torn or half-written last entry is read
/// again next time), and [`Follow::next_before`] gives the events older
/// than a time before which every event has been written. For progress
/// during a run; the verdict comes from [`Merge`] at the end.
pub struct Follow {
    /// Each ledger, with the end of the whole entries read from it.
    ledgers: Vec<(Owned, u64)>,
    /// Read, not yet given: ordered as [`Merge`] orders them.
    pending: BinaryHeap<Reverse<Head>>,
}

impl Follow {
    /// Follow `ledgers`, numbered as [`Merge::open`] numbers them.
    pub fn new(ledgers: Vec<Owned>) -> Follow {
        Follow {
            ledgers: ledgers.into_iter().map(|l| (l, 0)).collect(),
            pending: BinaryHeap::new(),
        }
    }

    /// Read what the ledgers gained.
    pub fn read(&mut self) -> Result<(), String> {
        for (source, (ledger, offset)) in self.ledgers.iter_mut().enumerate() {
            let mut reader = Reader::open(ledger, *offset)
                .map_err(|e| format!("{}: {e}", ledger.path.display()))?;
            while let Some(event) = reader.next_event()? {
                self.pending.push(Reverse(Head { event, source }));
            }
            *offset = reader.offset;
        }
        Ok(())
    }

    /// The next event, in order, if it happened before `t_ns`.
    pub fn next_before(&mut self, t_ns: u64) -> Option<Event> {
        let Reverse(head) = self.pending.peek()?;
        if head.event.t_ns >= t_ns {
            return None;
        }
        self.pending.pop().map(|Reverse(head)| head.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvlf_lock::record::{Record, WriterId};

    #[test]
    fn entries_round_trip_with_record_and_cause() {
        let record = Record::new(42, b"host", 7, WriterId([9; 16]));
        let bytes = record::encode(&record);
        let mut enter = Event::new(100, Kind::Enter).by(3, 42, 5);
        let held = Held {
            writer_id: &[9; 16],
            record: Some(&bytes),
        };
        let entry = encode(&enter, Some(&held));
        let header: [u8; HEADER] = entry[..HEADER].try_into().expect("header");
        let back = decode(&header, &entry[HEADER..]).expect("decode");
        enter.writer_id = Some(hex(&[9; 16]));
        enter.record = Some(RecordView::from(&record));
        assert_eq!(back, enter);

        let mut death = Event::new(200, Kind::Death).by(3, 42, 6);
        death.signal = Some(9);
        death.cause = Some("failpoint after-publish".into());
        death.held_lock = true;
        let entry = encode(&death, None);
        let header: [u8; HEADER] = entry[..HEADER].try_into().expect("header");
        assert_eq!(decode(&header, &entry[HEADER..]), Ok(death));
    }

    #[test]
    fn repair_cuts_a_torn_last_entry_and_keeps_whole_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w0");
        let (mut ledger, owned) = Ledger::create(&path).expect("create");
        let e = Event::new(1, Kind::Exit).by(0, 1, 0);
        ledger.append(&e, None).expect("append");
        let whole = std::fs::metadata(&path).expect("stat").len();
        // A writer killed halfway through its next write.
        let torn = encode(&Event::new(2, Kind::Enter).by(0, 1, 1), None);
        let mut f = Ledger::open(&path).expect("open").file;
        f.write_all(&torn[..HEADER / 2]).expect("write");
        assert_eq!(repair(&owned, 0), Ok(whole));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), whole);
    }

    #[test]
    fn a_ledger_is_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("elsewhere");
        std::fs::write(&victim, b"not a ledger").expect("write");
        let link = dir.path().join("w0.ledger");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        assert!(
            Ledger::open(&link).is_err(),
            "a ledger opened through a symlink"
        );
        assert_eq!(std::fs::read(&victim).expect("read"), b"not a ledger");
    }

    #[test]
    fn repair_cuts_only_the_file_the_harness_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w0");
        let (_, owned) = Ledger::create(&path).expect("create");
        // Swapped for another file ending in what looks like a torn entry.
        let victim = dir.path().join("elsewhere");
        std::fs::write(&victim, [1u8; HEADER / 2]).expect("write");
        std::fs::remove_file(&path).expect("unlink");
        std::fs::hard_link(&victim, &path).expect("link");
        assert!(repair(&owned, 0).is_err());
        assert_eq!(std::fs::read(&victim).expect("read"), [1u8; HEADER / 2]);
    }

    #[test]
    fn follow_gives_whole_entries_up_to_the_time_given_in_merge_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledgers = Vec::new();
        let mut owned = Vec::new();
        for i in 0..2 {
            let (l, o) = Ledger::create(&dir.path().join(format!("w{i}"))).expect("create");
            ledgers.push(l);
            owned.push(o);
        }
        let exit = |t: u64, w: usize| Event::new(t, Kind::Exit).by(w, 1, t);
        let mut follow = Follow::new(owned);
        ledgers[0].append(&exit(1, 0), None).expect("append");
        ledgers[1].append(&exit(2, 1), None).expect("append");
        // Part of the next entry of writer 0 is written.
        let mut fourth = exit(4, 0);
        fourth.cause = Some("a cause".into());
        let next = encode(&fourth, None);
        ledgers[0]
            .file
            .write_all(&next[..HEADER + 2])
            .expect("write");
        follow.read().expect("read");
        let mut seen = Vec::new();
        while let Some(e) = follow.next_before(3) {
            seen.push(e.t_ns);
        }
        assert_eq!(seen, [1, 2]);
        ledgers[0]
            .file
            .write_all(&next[HEADER + 2..])
            .expect("write");
        ledgers[1].append(&exit(3, 1), None).expect("append");
        assert_eq!(follow.next_before(u64::MAX), None, "not read yet");
        follow.read().expect("read");
        while let Some(e) = follow.next_before(u64::MAX) {
            seen.push(e.t_ns);
        }
        assert_eq!(seen, [1, 2, 3, 4]);
    }

    #[test]
    fn merge_orders_events_of_several_ledgers_by_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut owned = Vec::new();
        for (i, times) in [[1u64, 4], [2, 3]].iter().enumerate() {
            let (mut l, o) = Ledger::create(&dir.path().join(format!("w{i}"))).expect("create");
            for &t in times {
                l.append(&Event::new(t, Kind::Exit).by(i, 1, t), None)
                    .expect("append");
            }
            owned.push(o);
        }
        let mut merge = Merge::open(&owned).expect("merge");
        let mut seen = Vec::new();
        while let Some(e) = merge.next_event().expect("read") {
            seen.push(e.t_ns);
        }
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }
}
