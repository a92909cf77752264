#!/usr/bin/env python3
"""An independent implementation of RVLF v1 (PROTOCOL.md) in Python 3.9+,
standard library only, serving the rvlf-adapter/1 protocol (ADAPTER.md).

    python3 rvlf_adapter.py              serve requests on stdin/stdout
    python3 rvlf_adapter.py --self-test  check the codec, the staleness rule,
                                         the golden files and the lock itself

Section numbers (§N.M) refer to PROTOCOL.md. Written from the specification
alone: it is the evidence that the specification is enough.
"""

import argparse
import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
import struct
import sys
import tempfile
import time
import zlib
from typing import Callable, Dict, NamedTuple, Optional, Union

PROTOCOL = "rvlf-adapter/1"
IMPLEMENTATION = "rvlf-python"
VERSION = "1.0.0"
FEATURES = ["encode", "decode", "judge"]
VERBS = ["try-acquire", "release"] + FEATURES

# ---------------------------------------------------------------- §3 record

RECORD_LEN = 104
MAGIC = bytes([0x46, 0x4C, 0x56, 0x52])  # u32 0x52564C46 little-endian
MAGIC_BIG_ENDIAN = bytes([0x52, 0x56, 0x4C, 0x46])
HOSTNAME_OFFSET = 0x08
HOSTNAME_FIELD = 64
HOSTNAME_MAX = 62
CHECKSUM_OFFSET = 0x64
BODY = struct.Struct("<4sI64sQ16sI")  # everything the checksum covers
U32 = struct.Struct("<I")
U64_LIMIT = 1 << 64
U32_LIMIT = 1 << 32


class Record(NamedTuple):
    pid: int
    hostname: bytes  # the stored name: the bytes before the first NUL
    timestamp_ns: int
    writer_id: bytes
    version: int


class DecodeError(Exception):
    """A file that fails §4.2; `code` is the first check that failed."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def encode(record: Record) -> bytes:
    """The 104 bytes of §3.1 (the hostname field is zero-padded)."""
    body = BODY.pack(
        MAGIC,
        record.pid,
        record.hostname,
        record.timestamp_ns,
        record.writer_id,
        record.version,
    )
    return body + U32.pack(zlib.crc32(body))


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli): only to recognise a record sealed with it (§4.2)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def decode(data: bytes, length: Optional[int] = None) -> Record:
    """§4.2, checks in order. `length` is st_size when read from a file."""
    length = len(data) if length is None else length
    if length != RECORD_LEN or len(data) != RECORD_LEN:
        raise DecodeError("length", f"{length} bytes, not {RECORD_LEN}")
    magic = data[0:4]
    if magic != MAGIC:
        if magic == MAGIC_BIG_ENDIAN:
            raise DecodeError("magic", "52 56 4c 46 is the big-endian spelling of the magic")
        raise DecodeError("magic", f"magic {magic.hex()}, not {MAGIC.hex()}")
    stored = U32.unpack_from(data, CHECKSUM_OFFSET)[0]
    computed = zlib.crc32(data[:CHECKSUM_OFFSET])
    if stored != computed:
        is_c = stored == crc32c(data[:CHECKSUM_OFFSET])
        raise DecodeError(
            "checksum",
            f"stored 0x{stored:08x}, computed 0x{computed:08x}"
            + ("; the stored value is the CRC-32C" if is_c else ""),
        )
    _, pid, field, timestamp_ns, writer_id, version = BODY.unpack_from(data)
    if version != 1:
        raise DecodeError("version", f"version {version}, not 1")
    end = field.find(b"\0")
    end = HOSTNAME_FIELD if end < 0 else end
    for i in range(end, HOSTNAME_FIELD):
        if field[i] != 0:
            raise DecodeError("hostname-padding", f"nonzero byte at offset {HOSTNAME_OFFSET + i}")
    return Record(pid, field[:end], timestamp_ns, writer_id, version)


# ------------------------------------------------------------ §5 host identity


def truncate_host(name: bytes) -> bytes:
    """§3.2 / §5.2: the first 62 bytes, compared as raw bytes."""
    return name[:HOSTNAME_MAX]


def local_host() -> bytes:
    """§5.1: the kernel's name (uname(2) nodename), never $HOSTNAME."""
    return os.fsencode(os.uname().nodename)


# --------------------------------------------------------------- §6 staleness

SECOND = 1_000_000_000
SAME_HOST_NS = 30 * SECOND
OTHER_HOST_NS = 300 * SECOND
MALFORMED_NS = 300 * SECOND

ALIVE, DEAD = "alive", "dead"


def probe_pid(pid: int) -> str:
    """§6.3: kill(pid, 0). Callers never pass 0 or pids >= 2^31."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return DEAD
    except OSError:  # EPERM: another user's live process; anything else: unknown
        return ALIVE
    return ALIVE


def liveness(pid: int, probe: Callable[[int], str]) -> str:
    """§6.3: pid 0 and pids >= 2^31 name no single process: dead, never probed."""
    if pid == 0 or pid >= 1 << 31:
        return DEAD
    return probe(pid)


def is_stale(
    contents: Union[Record, DecodeError],
    mtime_ns: int,
    now_ns: int,
    host: bytes,
    probe: Callable[[int], str],
) -> bool:
    """§6.4. `host` is the local name; it is truncated here (§5.2)."""
    mtime_ns = max(mtime_ns, 0)
    if isinstance(contents, DecodeError):
        return max(now_ns - mtime_ns, 0) > MALFORMED_NS
    age = max(now_ns - min(contents.timestamp_ns, mtime_ns), 0)
    if contents.hostname != truncate_host(host):
        return age > OTHER_HOST_NS
    if liveness(contents.pid, probe) == ALIVE:
        return False
    return age > SAME_HOST_NS


# ------------------------------------------------------------ errors and reads


class LockError(Exception):
    """A failure reported to the caller; `kind` is an ADAPTER.md error kind."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def os_failure(e: OSError, what: str) -> LockError:
    kind = "permission" if e.errno in (errno.EACCES, errno.EPERM) else "io"
    return LockError(kind, f"{what}: {e.strerror or e}")


class Snapshot(NamedTuple):
    """A lock file read per §4.1; `fd` stays open for the guard of §8."""

    fd: int
    data: bytes
    size: int
    meta: tuple  # (st_dev, st_ino, st_size, st_mtime_ns)


READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


FILE_KINDS = (
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    return next((name for test, name in FILE_KINDS if test(mode)), f"not a regular file ({mode:o})")


def read_lock(path: bytes) -> Optional[Snapshot]:
    """§4.1 safe read. None: the lock vanished. Raises LockError when refused."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise os_failure(e, "lstat") from None
    if not stat.S_ISREG(st.st_mode):
        raise LockError("not-regular", f"the lock path is {file_kind(st.st_mode)}")
    try:
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LockError("not-regular", "became a symlink while being read") from None
        raise os_failure(e, "open") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            raise LockError("not-regular", "replaced by a non-regular file while being read")
        data = b""
        while len(data) < RECORD_LEN + 1:
            chunk = os.read(fd, RECORD_LEN + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as e:
        os.close(fd)
        raise os_failure(e, "read") from None
    except LockError:
        os.close(fd)
        raise
    meta = (fst.st_dev, fst.st_ino, fst.st_size, fst.st_mtime_ns)
    return Snapshot(fd, data, fst.st_size, meta)


def contents_of(snap: Snapshot) -> Union[Record, DecodeError]:
    try:
        return decode(snap.data, snap.size)
    except DecodeError as e:
        return e


# ----------------------------------------------------------------- §7 acquire


class Held(NamedTuple):
    """A lock this process holds: the flock'd descriptor and what it published."""

    fd: int
    writer_id: bytes
    dev: int
    ino: int


LINKED, TAKEN = "linked", "taken"
MAX_ROUNDS = 16  # §7.3: the bound is ours to choose


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def prepare(fd: int, data: bytes) -> None:
    """§7.1 steps 2-3: flock, write, fsync."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    write_all(fd, data)
    os.fsync(fd)


def open_tmpfile(directory: bytes) -> Optional[int]:
    """§7.1 step 1, first choice. None where O_TMPFILE is unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(directory, flag | os.O_RDWR | os.O_CLOEXEC, 0o644)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None
        raise os_failure(e, "open O_TMPFILE") from None


LINK_REFUSED = (errno.EPERM, errno.EOPNOTSUPP)


def link_tmpfile(fd: int, path: bytes) -> Optional[str]:
    """§7.1 step 4 for an O_TMPFILE file: LINKED or TAKEN, or None when this
    route is unavailable (no /proc, or the file system refuses links)."""
    # os.link calls link(2), which does not follow /proc/self/fd/N, unless a
    # directory descriptor is given: then it is linkat(..., AT_SYMLINK_FOLLOW).
    try:
        proc = os.open(b"/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # /proc is not mounted
    try:
        os.link(b"%d" % fd, path, src_dir_fd=proc, follow_symlinks=True)
        return LINKED
    except FileExistsError:
        return TAKEN
    except OSError as e:
        if e.errno == errno.ENOENT or e.errno in LINK_REFUSED:
            return None
        raise os_failure(e, "link") from None
    finally:
        os.close(proc)


def create_named(directory: bytes, lockname: bytes):
    """§2.2: a fresh `.<lockname>.<32 hex>.tmp`, created O_EXCL. (fd, name)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        name = b".%s.%s.tmp" % (lockname, secrets.token_hex(16).encode())
        tmp = os.path.join(directory, name)
        try:
            return os.open(tmp, flags, 0o644), tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise os_failure(e, "create temporary file") from None


def publish_named(directory: bytes, path: bytes, data: bytes):
    """§7.1 with a named temporary file: (fd, LINKED), (None, TAKEN), or
    (None, None) where the file system refuses links."""
    fd, tmp = create_named(directory, os.path.basename(path))
    result = None
    try:
        prepare(fd, data)
        try:
            os.link(tmp, path, follow_symlinks=False)
            result = LINKED
        except FileExistsError:
            result = TAKEN
        except OSError as e:
            if e.errno not in LINK_REFUSED:
                raise
    except OSError as e:
        raise os_failure(e, "publish") from None
    finally:
        try:
            os.unlink(tmp)  # §2.2: whatever the result
        except OSError:
            pass
        if result != LINKED:
            os.close(fd)
    return (fd if result == LINKED else None), result


def publish_direct(path: bytes, data: bytes):
    """§7.1 fallback where links are refused: create the lock path itself."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        return None, TAKEN
    except OSError as e:
        raise os_failure(e, "create lock file") from None
    try:
        prepare(fd, data)
    except OSError as e:
        try:
            os.unlink(path)
        finally:
            os.close(fd)
        raise os_failure(e, "write lock file") from None
    return fd, LINKED


def publish(path: bytes, data: bytes):
    """§7.1: make the lock path appear with all 104 bytes at once.

    Returns (fd, LINKED) with the flock held, or (None, TAKEN)."""
    directory = os.path.dirname(path) or b"."
    fd = open_tmpfile(directory)
    if fd is not None:
        result = None
        try:
            prepare(fd, data)
            result = link_tmpfile(fd, path)
        except OSError as e:
            raise os_failure(e, "prepare") from None
        finally:
            if result != LINKED:
                os.close(fd)
        if result is not None:
            return (fd if result == LINKED else None), result
    fd, result = publish_named(directory, path, data)
    if result is not None:
        return fd, result
    return publish_direct(path, data)


def break_lock(path: bytes, snap: Snapshot) -> str:
    """§8: remove the file judged stale, guarded. "broken", "busy" or "changed".

    Consumes snap.fd in every outcome."""
    fd = snap.fd
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # EINTR is retried by Python
        except BlockingIOError:
            return "busy"
        except OSError as e:
            raise os_failure(e, "flock guard") from None
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return "changed"
        except OSError as e:
            raise os_failure(e, "lstat under guard") from None
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != snap.meta:
            return "changed"
        try:
            os.unlink(path)  # §8.3: before the guard is dropped
        except FileNotFoundError:
            return "changed"
        except OSError as e:
            raise os_failure(e, "unlink stale lock") from None
        return "broken"
    finally:
        os.close(fd)


def try_acquire(path: bytes, now: Callable[[], int] = time.time_ns) -> Optional[Held]:
    """§7: take the lock once, without waiting. None means busy."""
    host = truncate_host(local_host())
    for _ in range(MAX_ROUNDS):
        writer_id = secrets.token_bytes(16)
        data = encode(Record(os.getpid(), host, now(), writer_id, 1))
        fd, result = publish(path, data)
        if result != TAKEN:
            st = os.fstat(fd)
            return Held(fd, writer_id, st.st_dev, st.st_ino)
        snap = read_lock(path)
        if snap is None:
            continue  # vanished: publish again
        contents = contents_of(snap)
        if not is_stale(contents, snap.meta[3], now(), host, probe_pid):
            os.close(snap.fd)
            return None
        if break_lock(path, snap) == "busy":
            return None
    return None


# ----------------------------------------------------------------- §9 release


def release(path: bytes, held: Held) -> str:
    """§9: "released" or "lost"; raises LockError on read errors. Consumes `held`."""
    snap = None
    try:
        try:
            snap = read_lock(path)
        except LockError as e:
            if e.kind == "not-regular":
                return "lost"
            raise
        if snap is None:
            return "lost"
        contents = contents_of(snap)
        if isinstance(contents, DecodeError) or contents.writer_id != held.writer_id:
            return "lost"
        if (snap.meta[0], snap.meta[1]) != (held.dev, held.ino):
            return "lost"
        try:
            os.unlink(path)  # §9.1: before the flock is dropped
        except FileNotFoundError:
            return "lost"
        except OSError as e:
            raise os_failure(e, "unlink") from None
        return "released"
    finally:
        if snap is not None:
            os.close(snap.fd)
        os.close(held.fd)


# -------------------------------------------------------- the adapter protocol


class BadRequest(Exception):
    pass


def reply_error(kind: str, message: str) -> dict:
    return {"result": "error", "error": kind, "message": message}


def arg(request: dict, name: str, kind=str):
    value = request.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(f"{name!r} must be a {kind.__name__}")
    return value


HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def unhex(text: str, name: str) -> bytes:
    if len(text) % 2 or not HEX_DIGITS.issuperset(text):
        raise BadRequest(f"{name!r} is not a hex string")
    return bytes.fromhex(text)


def decimal(text: str, name: str, low: int, high: int) -> int:
    digits = text[1:] if text.startswith("-") and low < 0 else text
    if not digits.isascii() or not digits.isdigit():
        raise BadRequest(f"{name!r} must be a decimal string")
    value = int(text)
    if not low <= value < high:
        raise BadRequest(f"{name!r} is out of range")
    return value


def lock_path(request: dict) -> bytes:
    text = arg(request, "path")
    try:
        path = os.fsencode(text)
    except UnicodeError:
        raise BadRequest("'path' cannot be a file name") from None
    if not path or b"\0" in path:
        raise BadRequest("'path' must be a non-empty file name without NUL")
    return path


def fields_of(record: Record) -> dict:
    return {
        "pid": record.pid,
        "hostname": record.hostname.hex(),
        "timestamp_ns": str(record.timestamp_ns),
        "writer_id": record.writer_id.hex(),
        "version": record.version,
    }


def record_of(fields) -> Record:
    if not isinstance(fields, dict):
        raise BadRequest("'record' must be an object")
    pid = arg(fields, "pid", int)
    version = arg(fields, "version", int)
    if not (0 <= pid < U32_LIMIT and 0 <= version < U32_LIMIT):
        raise BadRequest("pid and version must be u32")
    hostname = unhex(arg(fields, "hostname"), "hostname")
    if len(hostname) > HOSTNAME_FIELD or b"\0" in hostname:
        raise BadRequest("hostname must be at most 64 bytes without NUL")
    writer_id = unhex(arg(fields, "writer_id"), "writer_id")
    if len(writer_id) != 16:
        raise BadRequest("writer_id must be 16 bytes")
    timestamp_ns = decimal(arg(fields, "timestamp_ns"), "timestamp_ns", 0, U64_LIMIT)
    return Record(pid, hostname, timestamp_ns, writer_id, version)


class Adapter:
    """One adapter process: the locks it holds, one per path."""

    def __init__(self):
        self.held: Dict[str, Held] = {}

    def verb_try_acquire(self, request: dict) -> dict:
        key = arg(request, "path")
        lock = try_acquire(lock_path(request))
        if lock is None:
            return {"result": "busy"}
        previous = self.held.pop(key, None)
        if previous is not None:  # §9.3: a discarded handle is released best-effort
            self.release_quietly(key, previous)
        self.held[key] = lock
        return {"result": "acquired", "writer_id": lock.writer_id.hex()}

    def verb_release(self, request: dict) -> dict:
        key = arg(request, "path")
        path = lock_path(request)
        lock = self.held.pop(key, None)
        if lock is None:
            return reply_error("not-held", f"this adapter holds no lock at {key}")
        return {"result": release(path, lock)}

    def verb_encode(self, request: dict) -> dict:
        return {"result": "encoded", "bytes": encode(record_of(request.get("record"))).hex()}

    def verb_decode(self, request: dict) -> dict:
        data = unhex(arg(request, "bytes"), "bytes")
        try:
            return {"result": "decoded", "record": fields_of(decode(data))}
        except DecodeError as e:
            return {"result": "invalid", "code": e.code}

    def verb_judge(self, request: dict) -> dict:
        data = unhex(arg(request, "bytes"), "bytes")
        big = 1 << 127
        mtime_ns = decimal(arg(request, "mtime_ns"), "mtime_ns", -big, big)
        now_ns = decimal(arg(request, "now_ns"), "now_ns", -big, big)
        host = unhex(arg(request, "local_host"), "local_host")
        said = arg(request, "liveness")
        if said not in ("alive", "eperm", "dead"):
            raise BadRequest("'liveness' must be alive, eperm or dead")
        answer = DEAD if said == "dead" else ALIVE
        try:
            contents = decode(data)
        except DecodeError as e:
            contents = e
        stale = is_stale(contents, mtime_ns, now_ns, host, lambda _pid: answer)
        return {"result": "judged", "stale": stale}

    def answer(self, line: bytes) -> dict:
        """The reply to one request line (never raises)."""
        try:
            request = json.loads(line)
        except ValueError as e:
            return {"id": 0, **reply_error("bad-request", f"not JSON: {e}")}
        if not isinstance(request, dict):
            return {"id": 0, **reply_error("bad-request", "a request is a JSON object")}
        rid = request.get("id")
        valid_id = isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < U64_LIMIT
        reply_id = rid if valid_id else 0
        verb = request.get("verb")
        if verb not in VERBS:
            return {"id": reply_id, "result": "unimplemented"}
        try:
            if not valid_id:
                raise BadRequest("'id' must be an unsigned integer")
            outcome = getattr(self, "verb_" + verb.replace("-", "_"))(request)
        except BadRequest as e:
            outcome = reply_error("bad-request", str(e))
        except LockError as e:
            outcome = reply_error(e.kind, str(e))
        except Exception as e:  # never crash on a request: say what happened
            log(f"request {line[:200]!r} failed: {e!r}")
            outcome = reply_error("other", repr(e))
        return {"id": reply_id, **outcome}

    def release_quietly(self, key: str, lock: Held) -> None:
        try:
            release(os.fsencode(key), lock)
        except Exception as e:
            log(f"release of {key} at exit: {e!r}")

    def release_all(self) -> None:
        for key, lock in list(self.held.items()):
            self.release_quietly(key, lock)
        self.held.clear()


def log(message: str) -> None:
    print(f"rvlf_adapter: {message}", file=sys.stderr, flush=True)


def send(out, message: dict) -> None:
    out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    out.flush()


def serve(inp, out) -> int:
    """Speak rvlf-adapter/1 until stdin ends; release what is held at the end."""
    adapter = Adapter()
    hello = {
        "protocol": PROTOCOL,
        "implementation": IMPLEMENTATION,
        "version": VERSION,
        "pid": os.getpid(),
        "features": FEATURES,
    }
    try:
        send(out, {"hello": hello})
        for line in inp:
            send(out, adapter.answer(line))
    except BrokenPipeError:
        pass  # the harness went away
    finally:
        adapter.release_all()
    return 0


# ------------------------------------------------------------------ self-test

WORKED_EXAMPLE = bytes.fromhex(  # the hex dump of §3.3
    """
    46 4c 56 52 92 10 00 00 68 6f 73 74 2d 61 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 2a 36 fe 9c 97 17
    00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
    01 00 00 00 c1 6d b6 b2
    """
)


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}")


def test_codec(c: Checks) -> None:
    c.check(zlib.crc32(b"123456789") == 0xCBF43926, "CRC-32 check value")
    c.check(crc32c(b"123456789") == 0xE3069283, "CRC-32C check value")
    example = Record(4242, b"host-a", 1700000000000000000, bytes(range(16)), 1)
    data = encode(example)
    c.check(data == WORKED_EXAMPLE, "§3.3 worked example encodes to the listed bytes")
    c.check(decode(data) == example, "§3.3 worked example decodes to its fields")
    c.check(crc32c(data[:100]) == 0x298F11E7, "§3.3 CRC-32C of the worked example")
    c32c = data[:100] + U32.pack(0x298F11E7)
    try:
        decode(c32c)
        c.check(False, "a CRC-32C record is rejected")
    except DecodeError as e:
        c.check(e.code == "checksum" and "CRC-32C" in e.detail, "a CRC-32C record is named as such")


def expect_matches(data: bytes, expect: dict) -> bool:
    try:
        got = decode(data)
    except DecodeError as e:
        return "error" in expect and expect["error"]["code"] == e.code
    want = expect.get("record")
    return want is not None and {
        "pid": got.pid,
        "hostname_hex": got.hostname.hex(),
        "timestamp_ns": str(got.timestamp_ns),
        "writer_id": got.writer_id.hex(),
        "version": got.version,
    } == {k: want.get(k) for k in ("pid", "hostname_hex", "timestamp_ns", "writer_id", "version")}


def find_golden(start: str) -> Optional[str]:
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, "golden", "manifest.json")
        if os.path.isfile(candidate):
            return os.path.dirname(candidate)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def test_golden(c: Checks, directory: Optional[str]) -> None:
    directory = directory or find_golden(os.path.dirname(__file__))
    if directory is None:
        print("skip golden files: no golden/manifest.json above this script")
        return
    with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    for fixture in manifest["fixtures"]:
        with open(os.path.join(directory, fixture["file"]), "rb") as f:
            data = f.read()
        name = f"golden {fixture['id']}"
        c.check(hashlib.sha256(data).hexdigest() == fixture["sha256"], f"{name}: sha256")
        c.check(expect_matches(data, fixture["expect"]), f"{name}: {fixture['expect']}")
    print(f"golden files: {len(manifest['fixtures'])} fixtures in {directory}")


def test_judge(c: Checks) -> None:
    host = b"h" * 70  # longer than 62: the local name is truncated (§5.2)
    now = 10_000 * SECOND

    def stale(record, age_s, said, mtime_age_s=None, extra_ns=0):
        mtime = now - (age_s if mtime_age_s is None else mtime_age_s) * SECOND - extra_ns
        if isinstance(record, Record):
            record = record._replace(timestamp_ns=now - age_s * SECOND - extra_ns)
        return is_stale(record, mtime, now, host, lambda _p: said)

    mine = Record(4242, host[:62], 0, bytes(16), 1)
    other = mine._replace(hostname=b"other")
    bad = DecodeError("length", "")
    c.check(not stale(mine, 30, DEAD), "same host, dead, exactly 30 s: held")
    c.check(stale(mine, 30, DEAD, extra_ns=1), "same host, dead, 30 s + 1 ns: stale")
    c.check(not stale(mine, 10**6, ALIVE), "same host, alive: held whatever the age")
    c.check(not stale(other, 300, DEAD), "other host, exactly 300 s: held")
    c.check(stale(other, 300, ALIVE, extra_ns=1), "other host, 300 s + 1 ns: stale")
    c.check(not stale(bad, 300, DEAD), "malformed, exactly 300 s: held")
    c.check(stale(bad, 300, ALIVE, extra_ns=1), "malformed, 300 s + 1 ns: stale")
    for pid in (0, 1 << 31, U32_LIMIT - 1):
        c.check(stale(mine._replace(pid=pid), 31, ALIVE), f"pid {pid} is dead without a probe")
    future = mine._replace(timestamp_ns=now + 10**6 * SECOND)
    from_mtime = is_stale(future, now - 31 * SECOND, now, host, lambda _p: DEAD)
    c.check(from_mtime, "a future timestamp: the age comes from the mtime")
    before_epoch = is_stale(bad, -400 * SECOND, 100 * SECOND, host, lambda _p: DEAD)
    c.check(not before_epoch, "an mtime before the epoch counts as 0")


def plant(path: bytes, data: bytes, age_s: int) -> None:
    with open(path, "wb") as f:
        f.write(data)
    t = time.time_ns() - age_s * SECOND
    os.utime(path, ns=(t, t))


def dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def expect_error(c: Checks, fn, kind: str, what: str) -> None:
    try:
        fn()
        c.check(False, f"{what}: no error")
    except LockError as e:
        c.check(e.kind == kind, f"{what}: {e.kind} ({e}), expected {kind}")


def test_files(c: Checks) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = os.fsencode(tmp)
        path = os.path.join(d, b"data.rvf.lock")
        lock = try_acquire(path)
        c.check(lock is not None, "acquire a free lock")
        with open(path, "rb") as f:
            record = decode(f.read())
        c.check(record.pid == os.getpid(), "the record carries our pid")
        c.check(record.writer_id == lock.writer_id, "the record carries our writer id")
        c.check(record.hostname == truncate_host(local_host()), "the record carries uname's name")
        c.check(try_acquire(path) is None, "a held lock is busy")
        c.check(release(path, lock) == "released", "release")
        c.check(not os.path.exists(path), "release removed the lock file")
        c.check(os.listdir(d) == [], "no temporary files are left")

        test_fallbacks(c, d, path)
        test_release_owner_check(c, path)
        test_break_guard(c, path)

        dead = Record(dead_pid(), truncate_host(local_host()), time.time_ns(), bytes(16), 1)
        plant(path, encode(dead), 31)
        lock = try_acquire(path)
        c.check(lock is not None, "a dead writer's 31-s-old lock is broken")
        release(path, lock)
        plant(path, b"partial", 299)
        c.check(try_acquire(path) is None, "a malformed 299-s-old file is held")
        plant(path, b"partial", 301)
        lock = try_acquire(path)
        c.check(lock is not None, "a malformed 301-s-old file is broken")
        release(path, lock)

        os.mkfifo(path)
        expect_error(c, lambda: try_acquire(path), "not-regular", "a FIFO")
        os.unlink(path)
        os.symlink(b"/dev/zero", path)
        expect_error(c, lambda: try_acquire(path), "not-regular", "a symlink to /dev/zero")
        os.unlink(path)
        os.mkdir(path)
        expect_error(c, lambda: try_acquire(path), "not-regular", "a directory")
        os.rmdir(path)
        with open(path, "wb") as f:
            f.truncate(1 << 30)
        c.check(try_acquire(path) is None, "a fresh 1 GiB sparse file is held")
        c.check(os.path.getsize(path) == 1 << 30, "the sparse file is untouched")
        os.unlink(path)


def test_fallbacks(c: Checks, d: bytes, path: bytes) -> None:
    """§7.1 without O_TMPFILE: a named temporary file, or the lock path itself."""
    data = encode(Record(os.getpid(), b"h", 1, bytes(16), 1))
    routes = {
        "named": lambda: publish_named(d, path, data),
        "direct": lambda: publish_direct(path, data),
    }
    for name, route in routes.items():
        fd, result = route()
        c.check(result == LINKED and fd is not None, f"{name} publication")
        with open(path, "rb") as f:
            c.check(f.read() == data, f"{name} publication wrote the record")
        c.check(route() == (None, TAKEN), f"{name} publication onto a taken lock")
        c.check(os.listdir(d) == [os.path.basename(path)], f"{name} publication leaves no file")
        os.unlink(path)
        os.close(fd)


def test_release_owner_check(c: Checks, path: bytes) -> None:
    """§9.1: both the writer id and the file identity must match."""
    lock = try_acquire(path)
    with open(path, "rb") as f:
        ours = f.read()
    os.unlink(path)
    plant(path, ours, 0)  # a copy: same writer id, another file
    c.check(release(path, lock) == "lost", "release: same writer id in another file is lost")
    c.check(os.path.exists(path), "release did not delete the copy")
    os.unlink(path)
    lock = try_acquire(path)
    with open(path, "r+b") as f:  # the same file, another writer id
        f.write(encode(Record(os.getpid(), b"x", 0, bytes(16), 1)))
    c.check(release(path, lock) == "lost", "release: our file with another writer id is lost")
    c.check(os.path.exists(path), "release did not delete the rewritten file")
    os.unlink(path)


def test_break_guard(c: Checks, path: bytes) -> None:
    """§8: the guard flock and the re-check under it."""
    plant(path, b"malformed", 400)
    snap = read_lock(path)
    os.unlink(path)
    plant(path, b"malformed", 400)  # replaced after it was judged
    c.check(break_lock(path, snap) == "changed", "break: a replaced file is 'changed'")
    c.check(os.path.exists(path), "break: the replacement survives")
    snap = read_lock(path)
    guard = os.open(path, os.O_RDONLY)
    fcntl.flock(guard, fcntl.LOCK_EX)  # another breaker, or a live holder (§7.2)
    c.check(break_lock(path, snap) == "busy", "break: a guarded file is 'busy'")
    c.check(try_acquire(path) is None, "acquire: a stale but guarded file is busy")
    os.close(guard)
    c.check(os.path.exists(path), "break: the guarded file survives")
    snap = read_lock(path)
    c.check(break_lock(path, snap) == "broken", "break: an unguarded stale file is broken")
    c.check(not os.path.exists(path), "break: the stale file is gone")


def test_protocol(c: Checks) -> None:
    adapter = Adapter()

    def ask(request: dict) -> dict:
        return adapter.answer(json.dumps(request).encode())

    unknown = ask({"id": 5, "verb": "fly"})
    c.check(unknown == {"id": 5, "result": "unimplemented"}, "an unknown verb is unimplemented")
    bad = ask({"id": 6, "verb": "decode"})
    c.check(bad == {"id": 6, **bad, "error": "bad-request"}, "a missing argument: bad-request")
    c.check(adapter.answer(b"][")["error"] == "bad-request", "garbage is a bad request")
    worked = ask({"id": 7, "verb": "decode", "bytes": WORKED_EXAMPLE.hex()})
    timestamp = worked.get("record", {}).get("timestamp_ns")
    c.check(timestamp == "1700000000000000000", "decode over the wire")
    back = ask({"id": 8, "verb": "encode", "record": worked.get("record")})
    c.check(back.get("bytes") == WORKED_EXAMPLE.hex(), "encode over the wire")
    released = ask({"id": 9, "verb": "release", "path": "/nonexistent.lock"})
    c.check(released.get("error") == "not-held", "release of a lock not held")


def self_test(golden: Optional[str]) -> int:
    c = Checks()
    test_codec(c)
    test_golden(c, golden)
    test_judge(c)
    test_files(c)
    test_protocol(c)
    print(f"self-test: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="run the self-test and exit")
    parser.add_argument("--golden", metavar="DIR", help="golden directory for --self-test")
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.golden)
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
