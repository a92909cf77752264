//! A deterministic, in-memory file system holding one lock path, on which
//! any number of simulated processes run the lock machine one request at a
//! time. Time, PID liveness and crashes are in the caller's hands, so tests
//! and the model check can drive every interleaving they want.
//!
//! Every request is one atomic step. A crashed process loses its open files
//! (and so its guards) and its PID becomes dead; its files stay.
//!
//! The file system can refuse hard links, as some do: publication then takes
//! the machine's create-then-write fallback (§7.1), two steps that others
//! can interleave with.

use std::collections::{BTreeMap, BTreeSet};

use rvlf_lock::machine::{
    FileId, FileKind, FileSystem, Handle, Meta, ReadReply, Reply, Request, READ_LIMIT,
};

/// How the simulated file system answers a publication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Links {
    /// Hard links work: publication is one atomic step.
    #[default]
    Work,
    /// Hard links are refused: the machine creates the lock (guarded) and
    /// then writes it.
    Refused,
    /// As `Refused`, and the lock is created unguarded: how the original
    /// implementation published, whatever the file system (§10 defect 1).
    RefusedUnguarded,
}
use rvlf_lock::policy::Liveness;

/// The device number every simulated file has.
pub const SIM_DEV: u64 = 1;

/// One file of the simulated file system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inode {
    pub kind: Option<FileKind>,
    pub data: Vec<u8>,
    pub mtime_ns: i128,
    /// The open file holding flock(LOCK_EX) on it, if any.
    pub guard: Option<Handle>,
    /// The process that created it (for assertions, not visible to the machine).
    pub creator: u32,
}

impl Inode {
    fn meta(&self, ino: u64) -> Meta {
        Meta {
            id: FileId { dev: SIM_DEV, ino },
            size: self.data.len() as u64,
            mtime_ns: self.mtime_ns,
        }
    }
}

/// Something the simulated file system did that changed the lock path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// `pid` made inode `ino` appear at the lock path.
    Created { pid: u32, ino: u64 },
    /// `pid` removed inode `ino` (created by `creator`) from the lock path.
    Unlinked { pid: u32, ino: u64, creator: u32 },
}

/// The simulated world: one directory entry (the lock path), the files, the
/// open handles, the processes and the clock.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Sim {
    /// The inode at the lock path.
    pub lock: Option<u64>,
    pub inodes: BTreeMap<u64, Inode>,
    /// Open files: handle -> (process, inode).
    pub handles: BTreeMap<Handle, (u32, u64)>,
    pub alive: BTreeSet<u32>,
    pub now_ns: i128,
    next_ino: u64,
    next_handle: u64,
    /// Changes to the lock path, oldest first.
    pub events: Vec<Event>,
    /// Whether publication by hard link works.
    pub links: Links,
}

impl Sim {
    pub fn new(now_ns: i128) -> Self {
        Sim {
            now_ns,
            next_ino: 1,
            next_handle: 1,
            ..Sim::default()
        }
    }

    /// Start a process: its PID is alive from now on.
    pub fn spawn(&mut self, pid: u32) {
        self.alive.insert(pid);
    }

    /// Kill a process: it loses every open file and guard; its files stay.
    pub fn crash(&mut self, pid: u32) {
        self.alive.remove(&pid);
        let handles: Vec<Handle> = self
            .handles
            .iter()
            .filter(|(_, (owner, _))| *owner == pid)
            .map(|(h, _)| *h)
            .collect();
        for h in handles {
            self.close(h);
        }
    }

    pub fn advance(&mut self, ns: i128) {
        self.now_ns += ns;
    }

    /// Put a file with `data` and `mtime_ns` at the lock path, replacing what is there.
    pub fn plant(&mut self, data: &[u8], mtime_ns: i128, creator: u32) -> u64 {
        self.plant_kind(None, data, mtime_ns, creator)
    }

    /// Put something that is not a regular file at the lock path.
    pub fn plant_special(&mut self, kind: FileKind) -> u64 {
        self.plant_kind(Some(kind), &[], self.now_ns, 0)
    }

    fn plant_kind(&mut self, kind: Option<FileKind>, data: &[u8], mtime: i128, pid: u32) -> u64 {
        if let Some(old) = self.lock.take() {
            self.collect(old);
        }
        let ino = self.new_inode(kind, data.to_vec(), mtime, pid);
        self.lock = Some(ino);
        ino
    }

    /// The file at the lock path, if any.
    pub fn lock_file(&self) -> Option<&Inode> {
        self.lock.and_then(|ino| self.inodes.get(&ino))
    }

    /// Run `request` as process `pid`.
    pub fn perform(&mut self, pid: u32, request: &Request) -> Reply {
        match request {
            Request::Now => Reply::Now(self.now_ns),
            Request::Publish { bytes } => match self.links {
                Links::Work => self.create(pid, bytes.to_vec(), true),
                Links::Refused | Links::RefusedUnguarded => Reply::LinksRefused,
            },
            Request::Create => {
                let guarded = self.links != Links::RefusedUnguarded;
                self.create(pid, Vec::new(), guarded)
            }
            Request::Write { file, bytes } => match self.inode_of(*file) {
                Some(ino) => {
                    let now = self.now_ns;
                    if let Some(inode) = self.inodes.get_mut(&ino) {
                        inode.data = bytes.to_vec();
                        inode.mtime_ns = now;
                    }
                    Reply::Written
                }
                None => Reply::Failed(nix::errno::Errno::EBADF),
            },
            Request::Read { keep_open } => {
                let Some(ino) = self.lock else {
                    return Reply::Read(ReadReply::NotFound);
                };
                let inode = &self.inodes[&ino];
                if let Some(kind) = inode.kind {
                    return Reply::Read(ReadReply::NotRegular(kind));
                }
                let head = inode.data[..inode.data.len().min(READ_LIMIT)].to_vec();
                let meta = inode.meta(ino);
                let file = keep_open.then(|| self.open(pid, ino));
                Reply::Read(ReadReply::Found { file, meta, head })
            }
            Request::ProbePid { pid: target } => Reply::Liveness(if self.alive.contains(target) {
                Liveness::Alive
            } else {
                Liveness::Dead
            }),
            Request::Guard { file } => {
                let Some(ino) = self.inode_of(*file) else {
                    return Reply::Failed(nix::errno::Errno::EBADF);
                };
                let inode = self.inodes.get_mut(&ino).expect("open files have inodes");
                match inode.guard {
                    Some(other) if other != *file => Reply::GuardBusy,
                    _ => {
                        inode.guard = Some(*file);
                        Reply::Guarded
                    }
                }
            }
            Request::Stat => Reply::Stat(self.lock.map(|ino| self.inodes[&ino].meta(ino))),
            Request::Unlink => match self.lock.take() {
                Some(ino) => {
                    let creator = self.inodes[&ino].creator;
                    self.events.push(Event::Unlinked { pid, ino, creator });
                    self.collect(ino);
                    Reply::Unlinked
                }
                None => Reply::UnlinkedNothing,
            },
            Request::Close { file } => {
                if self.handles.get(file).map(|(owner, _)| *owner) != Some(pid) {
                    return Reply::Failed(nix::errno::Errno::EBADF);
                }
                self.close(*file);
                Reply::Closed
            }
        }
    }

    /// A [`FileSystem`] view of this world as process `pid`.
    pub fn process(&mut self, pid: u32) -> As<'_> {
        As { sim: self, pid }
    }

    fn create(&mut self, pid: u32, data: Vec<u8>, guarded: bool) -> Reply {
        if self.lock.is_some() {
            return Reply::Exists;
        }
        let ino = self.new_inode(None, data, self.now_ns, pid);
        let file = self.open(pid, ino);
        if guarded {
            self.inodes.get_mut(&ino).expect("just made").guard = Some(file);
        }
        self.lock = Some(ino);
        self.events.push(Event::Created { pid, ino });
        Reply::Published {
            file,
            id: FileId { dev: SIM_DEV, ino },
        }
    }

    fn new_inode(&mut self, kind: Option<FileKind>, data: Vec<u8>, mtime: i128, pid: u32) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                kind,
                data,
                mtime_ns: mtime,
                guard: None,
                creator: pid,
            },
        );
        ino
    }

    fn open(&mut self, pid: u32, ino: u64) -> Handle {
        let h = Handle(self.next_handle);
        self.next_handle += 1;
        self.handles.insert(h, (pid, ino));
        h
    }

    fn inode_of(&self, file: Handle) -> Option<u64> {
        self.handles.get(&file).map(|(_, ino)| *ino)
    }

    fn close(&mut self, file: Handle) {
        if let Some((_, ino)) = self.handles.remove(&file) {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                if inode.guard == Some(file) {
                    inode.guard = None;
                }
            }
            self.collect(ino);
        }
    }

    /// Forget an inode nothing names or holds open any more.
    fn collect(&mut self, ino: u64) {
        let named = self.lock == Some(ino);
        let open = self.handles.values().any(|(_, i)| *i == ino);
        if !named && !open {
            self.inodes.remove(&ino);
        }
    }
}

/// The simulated file system as seen by one process.
pub struct As<'a> {
    sim: &'a mut Sim,
    pid: u32,
}

impl FileSystem for As<'_> {
    fn perform(&mut self, request: &Request) -> Reply {
        self.sim.perform(self.pid, request)
    }
}
