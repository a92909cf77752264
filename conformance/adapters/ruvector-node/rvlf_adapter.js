#!/usr/bin/env node
// rvlf-adapter/1 for the published npm package @ruvector/rvf-node (RuVector's
// rvf_runtime writer lock, through its N-API bindings). Required verbs only:
// hello, try-acquire, release. See README.md for what this adapter cannot know.
//
// The package locks a *data* file: RvfDatabase.create/open(data) writes
// `<data>.lock`, close() removes it. The harness names the lock path, so the
// data path is the lock path without its `.lock` (PROTOCOL.md §2.1).
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const PKG = '@ruvector/rvf-node';
const { RvfDatabase } = require(PKG);
const VERSION = require(path.join(path.dirname(require.resolve(PKG)), 'package.json')).version;

const held = new Map(); // lock path -> { db, ino, dev }
const extra = []; // [lock path, db] of second acquisitions, closed at exit

function log(message) {
  process.stderr.write(`rvlf_adapter(ruvector-node): ${message}\n`);
}

function error(kind, message) {
  return { result: 'error', error: kind, message: String(message) };
}

function lstatOrNull(p) {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  }
}

// The package's errors are strings "RVF error 0x0300: LockHeld"; there is no
// errno, so busy and a failed read can look alike (README.md).
function rvfCode(e) {
  const m = /RVF error 0x([0-9a-fA-F]{4}): (\w+)/.exec((e && e.message) || '');
  return m ? { code: parseInt(m[1], 16), name: m[2] } : null;
}

function mapError(e) {
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    // an OS error of the adapter's own file work
    return error(e.code === 'EACCES' || e.code === 'EPERM' ? 'permission' : 'io', e.message);
  }
  const rvf = rvfCode(e);
  if (rvf && rvf.name === 'FsyncFailed') return error('io', e.message);
  return error('other', (e && e.message) || String(e));
}

// The record's writer id (bytes 0x50..0x60), read from the lock file right
// after the package acquired it: the package does not expose it.
function readWriterId(lockPath) {
  let fd;
  try {
    const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
    fd = fs.openSync(lockPath, flags);
    const st = fs.fstatSync(fd);
    const buf = Buffer.alloc(105);
    let n = 0;
    for (;;) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) break;
    }
    if (n < 0x60) log(`the lock file at ${lockPath} has ${n} bytes, no writer id`);
    return { writerId: n >= 0x60 ? buf.subarray(0x50, 0x60).toString('hex') : '0'.repeat(32), ino: st.ino, dev: st.dev };
  } catch (e) {
    log(`cannot read the lock file just acquired at ${lockPath}: ${e.message}`);
    return { writerId: '0'.repeat(32), ino: null, dev: null };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// create() makes the data file before it takes the lock and leaves a 0-byte
// data file behind when the lock is held; open() of a 0-byte file reports
// ManifestNotFound and create() of an existing one FsyncFailed. So a 0-byte
// data file is such a leftover: remove it and create the store again.
function openOrCreate(dataPath) {
  const st = lstatOrNull(dataPath);
  if (st && st.isFile() && st.size === 0) {
    try {
      fs.unlinkSync(dataPath);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
  } else if (st) {
    return RvfDatabase.open(dataPath);
  }
  try {
    return RvfDatabase.create(dataPath, { dimension: 1 });
  } catch (e) {
    const after = lstatOrNull(dataPath);
    if (after && after.isFile() && after.size === 0) {
      // our own leftover (or a concurrent creator's, which loses only its data)
      try {
        fs.unlinkSync(dataPath);
      } catch (_) {
        /* gone already */
      }
    }
    throw e;
  }
}

function tryAcquire(lockPath) {
  if (!lockPath.endsWith('.lock') || lockPath.length <= 5) {
    return error('other', `the package locks <data>.lock; ${lockPath} does not end in .lock`);
  }
  const dataPath = lockPath.slice(0, -5);
  let db;
  try {
    db = openOrCreate(dataPath);
  } catch (e) {
    const rvf = rvfCode(e);
    if (rvf && rvf.name === 'LockHeld') return { result: 'busy' };
    return mapError(e);
  }
  const mine = readWriterId(lockPath);
  if (held.has(lockPath)) {
    // the package let this process take a path it already holds: report it,
    // but keep the first handle (ADAPTER.md: at most one lock per path)
    // (closing it now would remove the lock file under the first handle)
    log(`acquired ${lockPath} a second time in one process`);
    extra.push([lockPath, db]);
    return { result: 'acquired', writer_id: mine.writerId };
  }
  held.set(lockPath, { db, ino: mine.ino, dev: mine.dev });
  return { result: 'acquired', writer_id: mine.writerId };
}

// close() returns nothing whatever it did: the outcome is read from the file
// system. `released` when a file was at the path before close() and is gone
// (or another) after it; `lost` when close() left the file there, or there
// was none.
function release(lockPath) {
  const h = held.get(lockPath);
  if (!h) return error('not-held', `no lock held at ${lockPath}`);
  held.delete(lockPath);
  let before;
  try {
    before = lstatOrNull(lockPath);
  } catch (e) {
    before = null;
  }
  try {
    h.db.close();
  } catch (e) {
    return mapError(e);
  }
  let after;
  try {
    after = lstatOrNull(lockPath);
  } catch (e) {
    return mapError(e);
  }
  const removed = before !== null && (after === null || after.ino !== before.ino || after.dev !== before.dev);
  return { result: removed ? 'released' : 'lost' };
}

function answer(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (e) {
    return { id: 0, ...error('bad-request', `not JSON: ${e.message}`) };
  }
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return { id: 0, ...error('bad-request', 'a request is a JSON object') };
  }
  const rid = request.id;
  const validId = Number.isSafeInteger(rid) && rid >= 0;
  const id = validId ? rid : 0;
  const verb = request.verb;
  if (verb !== 'try-acquire' && verb !== 'release') return { id, result: 'unimplemented' };
  if (!validId) return { id, ...error('bad-request', "'id' must be an unsigned integer") };
  if (typeof request.path !== 'string') return { id, ...error('bad-request', "'path' must be a string") };
  try {
    return { id, ...(verb === 'try-acquire' ? tryAcquire(request.path) : release(request.path)) };
  } catch (e) {
    log(`request ${String(line).slice(0, 200)} failed: ${e && e.stack}`);
    return { id, ...error('other', (e && e.message) || String(e)) };
  }
}

function send(message) {
  // synchronous write: a reply must never wait in a buffer
  fs.writeSync(1, JSON.stringify(message) + '\n');
}

function releaseAll() {
  for (const [p, h] of held) {
    try {
      h.db.close();
    } catch (e) {
      log(`release of ${p} at exit: ${e.message}`);
    }
  }
  held.clear();
  for (const [p, db] of extra.splice(0)) {
    try {
      db.close();
    } catch (e) {
      log(`close of a second handle of ${p} at exit: ${e.message}`);
    }
  }
}

send({
  hello: {
    protocol: 'rvlf-adapter/1',
    implementation: PKG,
    version: VERSION,
    pid: process.pid,
    features: [],
  },
});

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  try {
    send(answer(line));
  } catch (e) {
    if (e && e.code === 'EPIPE') {
      releaseAll();
      process.exit(0);
    }
    throw e;
  }
});
rl.on('close', () => {
  releaseAll();
  process.exit(0);
});
