import { describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, utimes, writeFile, readFile, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import { unpackUpdate } from '../local/archive-extract.js';
import { dirname, join } from 'node:path';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import type { RelPath } from '../core/relpath.js';
import { hookedLocal, type HookedLocal } from '../daemon/local-test-kit.js';
import { CHANGE_MARKER } from '../relay/protocol/change-marker.js';
import { MemoryBackend } from '../relay/backends/memory/memory-backend.js';
import { IndexRelay } from '../relay/protocol/index-relay.js';
import { formatLock } from '../relay/protocol/lock.js';
import { IndexEngine, type IndexEngineOptions } from './index-engine.js';
import type { SyncMode } from './model.js';
import { inTempDir } from '../../test/kit/temp-dir.js';

interface Client {
  engine: IndexEngine;
  root: string;
  logs: LogRecord[];
  local: HookedLocal;
}

async function client(dir: string, backend: MemoryBackend, name: string, mode: SyncMode, extra: Partial<IndexEngineOptions> = {}): Promise<Client> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  const logs: LogRecord[] = [];
  const logger = createLogger([memorySink(logs)], name);
  const local = await hookedLocal(root, logger);
  const relay = new IndexRelay(backend, { client: name, lockTimeoutSec: 5, now: Date.now, logger, sleep: async () => undefined });
  const engine = new IndexEngine(relay, local, {
    client: name,
    mode,
    scheme: { kind: 'single' },
    useMtime: true,
    checksumAlgorithm: 'sha512',
    maxPageSizeBytes: 200 * 1024 * 1024,
    pullOverwrite: false,
    allowPageDeletion: false,
    uploadMaxWaitSec: 0,
    lockTimeoutSec: 5,
    cipher: null,
    acceptsRemote: () => true,
    logger,
    scratchDir: root,
    lockPollMs: 10,
    lockWaitMs: 30,
    ...extra,
  });
  return { engine, root, logs, local };
}


async function put(root: string, path: string, content: string, mtimeSec: number): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
  await utimes(join(root, path), mtimeSec, mtimeSec);
}

/** The relay's index-protocol files (the change marker, touched after each round that changed the relay, is left out). */
async function names(backend: MemoryBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const e of backend.list('' as RelPath)) if (e.path !== CHANGE_MARKER) out.push(e.path);
  return out.sort();
}

describe('IndexEngine on a memory relay', () => {
  test('push then pull: one update, consumed by the puller, mtimes from the index', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'a.txt', 'hello\n', 1_700_000_000);
    await put(alice.root, 'dir/b.txt', 'bee\n', 1_700_000_100);
    const pushed = await alice.engine.round();
    assert.equal(pushed.transferred, 2);
    const after = await names(backend);
    assert.equal(after.length, 3);
    assert.ok(after.includes('.0.index'));
    const pulled = await bob.engine.round();
    assert.equal(pulled.transferred, 2);
    assert.equal(await readFile(join(bob.root, 'dir/b.txt'), 'utf8'), 'bee\n');
    assert.equal(Math.trunc((await stat(join(bob.root, 'a.txt'))).mtimeMs / 1000), 1_700_000_000);
    assert.deepEqual(await names(backend), ['.0.index']);
    assert.deepEqual((await readdir(bob.root)).filter((n) => n.startsWith('.')), []);
    // a second round of each changes nothing and takes no lock
    assert.equal((await alice.engine.round()).transferred, 0);
    assert.equal((await bob.engine.round()).transferred, 0);
    assert.deepEqual(await names(backend), ['.0.index']);
    }));

  test('update archives: several bzip2 streams by default, one with single stream archives; both are read', async () => inTempDir('index-engine-', async (dir) => {
    const streamsOf = async (backend: MemoryBackend): Promise<number> => {
      const data = (await names(backend)).find((n) => n.endsWith('.data'));
      assert.ok(data, 'an update was pushed');
      const chunks: Buffer[] = [];
      for await (const chunk of await backend.get(data as RelPath)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('latin1').split('BZh91AY&SY').length - 1;
    };
    for (const single of [false, true]) {
      const backend = new MemoryBackend();
      const alice = await client(join(dir, String(single)), backend, 'alice', 'upload', single ? { singleStreamArchives: true } : {});
      const bob = await client(join(dir, String(single)), backend, 'bob', 'download');
      // why: 6 MiB of text-like data that compresses a little: more than two 2 MiB segments.
      for (let i = 0; i < 6; i++) await put(alice.root, `part-${i}.txt`, `${i}`.repeat(64) + randomBytes(768 * 1024).toString('base64'), 1_700_000_000 + i);
      await alice.engine.round();
      const streams = await streamsOf(backend);
      if (single) assert.equal(streams, 1, 'one stream, as escale 0.7 writes it');
      else assert.ok(streams >= 3, `parallel compression writes several streams (got ${streams})`);
      assert.equal((await bob.engine.round()).transferred, 6);
    }
    }));

  test('shared pusher never consumes its own update (relay-format.md F-4); the peer gets it', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'shared');
    const bob = await client(dir, backend, 'bob', 'shared');
    await put(alice.root, 'a.txt', 'from alice\n', 1_700_000_000);
    await alice.engine.round();
    await alice.engine.round(); // her own download phase sees her update
    assert.equal((await names(backend)).length, 3, 'the update is still there');
    await bob.engine.round();
    assert.equal(await readFile(join(bob.root, 'a.txt'), 'utf8'), 'from alice\n');
    assert.deepEqual(await names(backend), ['.0.index']);
    }));

  test('puller count = 2: the first puller records itself and keeps the entries (relay-format.md F-5); the second deletes', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download', { pullerCount: 2 });
    const carol = await client(dir, backend, 'carol', 'download', { pullerCount: 2 });
    await put(alice.root, 'a.txt', 'x\n', 1_700_000_000);
    await alice.engine.round();
    await bob.engine.round();
    await bob.engine.round();
    const update = (await names(backend)).find((n) => /^\.0\.\d+\.index$/.test(n));
    assert.ok(update);
    const text = (await (await backend.get(update as RelPath)).toArray()).join('');
    assert.match(text, /^a\.txt 205\n[\s\S]*---pullers---\n---pullers---\nbob$/);
    await carol.engine.round();
    assert.equal(await readFile(join(carol.root, 'a.txt'), 'utf8'), 'x\n');
    assert.deepEqual(await names(backend), ['.0.index']);
    }));

  test('puller count = 2: a puller that already has identical content records itself without downloading', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download', { pullerCount: 2 });
    const carol = await client(dir, backend, 'carol', 'download', { pullerCount: 2 });
    await put(alice.root, 'a.txt', 'x\n', 1_700_000_000);
    await put(carol.root, 'a.txt', 'x\n', 1_600_000_000);
    await alice.engine.round();
    const report = await carol.engine.round();
    assert.equal(report.transferred, 0, 'nothing downloaded');
    assert.equal(Math.trunc((await stat(join(carol.root, 'a.txt'))).mtimeMs / 1000), 1_600_000_000, "carol's file is left as it was");
    const update = (await names(backend)).find((n) => /^\.0\.\d+\.index$/.test(n));
    assert.ok(update, 'one puller of two: the update stays');
    assert.match((await (await backend.get(update as RelPath)).toArray()).join(''), /---pullers---\ncarol$/);
    await bob.engine.round();
    assert.equal(await readFile(join(bob.root, 'a.txt'), 'utf8'), 'x\n');
    assert.deepEqual(await names(backend), ['.0.index'], 'two distinct pullers: the update is deleted');
    }));

  test('a foreign lock postpones the page within the round; a stale one is broken', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    await backend.put('.0.lock' as RelPath, Buffer.from(formatLock({ owner: 'zed', mode: 'w' })));
    await put(alice.root, 'a.txt', 'x\n', 1_700_000_000);
    const report = await alice.engine.round();
    assert.equal(report.transferred, 0);
    assert.equal(report.deferred, 1);
    const stale = await client(dir, backend, 'alice', 'upload', { lockTimeoutSec: 0 });
    await new Promise((r) => setTimeout(r, 20));
    // a new relay with lock timeout 0 judges the lock stale by its relay mtime
    const relay = new IndexRelay(backend, { client: 'alice', lockTimeoutSec: 0, now: Date.now, logger: createLogger([memorySink(stale.logs)], 'alice') });
    const held = await relay.lock('0', 'w', { pollMs: 10, maxWaitMs: 0 });
    assert.notEqual(held, 'busy');
    assert.ok(stale.logs.some((r) => /breaking the stale lock of page '0' held by 'zed'/.test(r.message)));
    }));

  test('missing files are reported: removed from the persistent index so that the pusher sends them again', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'a.txt', 'a\n', 1_700_000_000);
    await put(alice.root, 'b.txt', 'b\n', 1_700_000_000);
    await alice.engine.round();
    await bob.engine.round();
    await rm(join(bob.root, 'b.txt'));
    const idle = await client(dir, backend, 'bob', 'download');
    await idle.engine.round(); // lookup pass: b.txt is missing and not on the relay
    assert.ok(idle.logs.some((r) => r.message === "file 'b.txt' reported missing"));
    await alice.engine.round();
    await idle.engine.round();
    assert.equal(await readFile(join(bob.root, 'b.txt'), 'utf8'), 'b\n');
    }));

  test('dry run writes nothing and reports the plan', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const planned: string[] = [];
    const alice = await client(dir, backend, 'alice', 'upload', { dryRun: true, onPlan: (a) => planned.push(`${a.kind} ${a.path}`) });
    await put(alice.root, 'a.txt', 'a\n', 1_700_000_000);
    await alice.engine.round();
    assert.deepEqual(planned, ['upload a.txt']);
    assert.deepEqual(await names(backend), []);
    }));

  test('an edit whose mtime is older than the index entry is sent, and taken by a client whose copy has a newer mtime', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'shared');
    const bob = await client(dir, backend, 'bob', 'shared');
    await put(alice.root, 'a.txt', 'from alice\n', 1_700_007_200);
    await alice.engine.round();
    assert.equal((await bob.engine.round()).transferred, 1);
    // why: bob's clock is 2 h behind alice's: his edit is stamped older than the version he received.
    await put(bob.root, 'a.txt', 'edited by bob\n', 1_700_000_000);
    assert.equal((await bob.engine.round()).transferred, 1, 'sent: it changed since bob last agreed with the relay');
    assert.equal((await alice.engine.round()).transferred, 1, 'taken: alice\'s copy did not change since she pushed it');
    assert.equal(await readFile(join(alice.root, 'a.txt'), 'utf8'), 'edited by bob\n');
    assert.equal((await alice.engine.round()).transferred + (await bob.engine.round()).transferred, 0, 'and then nothing moves');
    }));

  test('files that cannot be read when archived are left out with their cause, never zero-padded; the others go', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'ok.txt', 'fine\n', 1_700_000_000);
    await put(alice.root, 'secret.txt', 'small but unreadable\n', 1_700_000_000);
    await writeFile(join(alice.root, 'big.bin'), randomBytes(300 * 1024));
    const denied = (path: string): NodeJS.ErrnoException => Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES' });
    alice.local.hooks = {
      readSmall: (path) => {
        if (path === 'secret.txt') throw new EscaleError('PermissionDenied', `EACCES: permission denied, open '${path}'`, { path });
      },
      open: (path, stream) => {
        if (path !== 'big.bin') return stream;
        stream.destroy();
        return new Readable({ read() { this.destroy(denied(path)); } });
      },
    };
    const report = await alice.engine.round();
    assert.equal(report.transferred, 1);
    assert.equal(report.failed, 2);
    const errors = alice.logs.filter((r) => r.level === 'error').map((r) => r.message).sort();
    assert.deepEqual(errors.map((m) => m.replace(/:.*/, '')), ["failed to read 'big.bin'", "failed to read 'secret.txt'"]);
    assert.ok(errors.every((m) => /permission denied/.test(m)), errors.join('\n'));
    assert.ok(!alice.logs.some((r) => /changed while it was read/.test(r.message)), 'an unreadable file is not "changed"');
    assert.deepEqual(await members(backend, dir), ['ok.txt'], 'no member for the unreadable files');
    assert.equal((await bob.engine.round()).transferred, 1);
    assert.deepEqual((await readdir(bob.root)).filter((n) => !n.startsWith('.')), ['ok.txt']);
    alice.local.hooks = {};
    assert.equal((await alice.engine.round()).transferred, 2, 'sent once they can be read');
    assert.equal((await bob.engine.round()).transferred, 2);
    assert.deepEqual(await readFile(join(bob.root, 'big.bin')), await readFile(join(alice.root, 'big.bin')));
    }));

  test('a big file that grows while it is archived spoils the update: it is sent again without the file, which follows once stable', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'ok.txt', 'fine\n', 1_700_000_000);
    const big = join(alice.root, 'growing.log');
    await writeFile(big, randomBytes(600 * 1024));
    let appended = 0;
    alice.local.hooks = {
      open: (path, stream) => {
        if (path === 'growing.log' && appended === 0) stream.once('data', () => void (appendFileSync(big, 'one more line\n'), (appended += 1)));
        return stream;
      },
    };
    const first = await alice.engine.round();
    assert.equal(appended, 1);
    assert.equal(first.transferred, 1);
    assert.equal(first.failed, 0, 'a changing file is no failure');
    assert.ok(alice.logs.some((r) => /file 'growing\.log' changed while it was read to upload it \(.*; the update is sent again without it\)/.test(r.message)));
    assert.ok(!alice.logs.some((r) => /successfully uploaded files:[\s\S]*growing/.test(r.message)));
    assert.deepEqual(await members(backend, dir), ['ok.txt'], 'the published update holds only what its records describe');
    assert.equal((await bob.engine.round()).transferred, 1);
    assert.equal((await alice.engine.round()).transferred, 1);
    assert.equal((await bob.engine.round()).transferred, 1);
    assert.deepEqual(await readFile(join(bob.root, 'growing.log')), await readFile(big), 'the final content arrives');
    }));

  test('a file whose upload failed is not cleared by a round whose push never reached its page (postponed by a lock), only by the round that sends it', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'shared');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'f.txt', 'v1\n', 1_700_000_000);
    assert.equal((await alice.engine.round()).transferred, 1);
    assert.equal((await bob.engine.round()).transferred, 1, 'bob takes the update: the page is free again');
    await put(alice.root, 'f.txt', 'v2, unreadable for now\n', 1_700_000_100);
    let readable = false;
    alice.local.hooks = {
      readSmall: (path) => {
        if (path === 'f.txt' && !readable) throw new EscaleError('PermissionDenied', `EACCES: permission denied, open '${path}'`, { path });
      },
    };
    assert.equal((await alice.engine.round()).failed, 1);
    readable = true;
    await backend.put('.0.lock' as RelPath, Buffer.from(formatLock({ owner: 'zed', mode: 'w' })));
    await alice.engine.round();
    assert.deepEqual(alice.engine.failures.list().map((f) => [f.path, f.state]), [['f.txt', 'failing']], 'the pull phase looked at it, the push never tried it: not cleared');
    assert.ok(!alice.logs.some((r) => /no longer failing/.test(r.message)));
    await backend.delete('.0.lock' as RelPath);
    assert.equal((await alice.engine.round()).transferred, 1);
    assert.deepEqual(alice.engine.failures.list(), []);
    assert.ok(alice.logs.some((r) => r.level === 'info' && /file 'f\.txt' is no longer failing/.test(r.message)));
    }));

  test('a small file changed between its scan and its read is left out of the update, and sent with a later one', async () => inTempDir('index-engine-', async (dir) => {
    const backend = new MemoryBackend();
    const alice = await client(dir, backend, 'alice', 'upload');
    const bob = await client(dir, backend, 'bob', 'download');
    await put(alice.root, 'ok.txt', 'fine\n', 1_700_000_000);
    await put(alice.root, 'small.txt', 'before\n', 1_700_000_000);
    let changed = false;
    alice.local.hooks = {
      readSmall: (path) => {
        if (path !== 'small.txt' || changed) return;
        changed = true;
        writeFileSync(join(alice.root, 'small.txt'), 'after, and longer\n');
      },
    };
    assert.equal((await alice.engine.round()).transferred, 1);
    assert.ok(alice.logs.some((r) => /file 'small\.txt' changed while it was read to upload it \(.*; it was left out of the update\)/.test(r.message)));
    assert.deepEqual(await members(backend, dir), ['ok.txt']);
    await bob.engine.round();
    assert.equal((await alice.engine.round()).transferred, 1);
    await bob.engine.round();
    assert.equal(await readFile(join(bob.root, 'small.txt'), 'utf8'), 'after, and longer\n');
    }));
});

/** The member names of the pending update's archive on `backend` (unpacked into a folder of `dir`). */
async function members(backend: MemoryBackend, dir: string): Promise<string[]> {
  const data = (await names(backend)).find((n) => n.endsWith('.data'));
  assert.ok(data, 'an update is pending');
  const target = await mkdtemp(join(dir, 'unpacked-'));
  const files = await unpackUpdate(await backend.get(data as RelPath), target, { maxBytes: 1 << 30, maxEntries: 1000 });
  return files.map((f) => f.path).sort();
}
