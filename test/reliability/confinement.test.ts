// Confinement (issue 12): one file, one relay entry or one index page that fails never stops the
// others; it is tracked, retried with back-off, reported stuck, and cleared once it works. In-process
// clients with the real openClient wiring; local faults through `wrapLocal`, relay faults through
// the kit's FaultyBackend views. Tests run as root, so an unreadable file is injected, not chmod'ed
// (the end-to-end test `test/e2e/unprivileged.test.ts` does it for real as `nobody`).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EscaleError, fromSystemError } from '../../src/core/errors.js';
import { relPath, type RelPath } from '../../src/core/relpath.js';
import { formatLock } from '../../src/relay/protocol/lock.js';
import { MemoryBackend } from '../../src/relay/backends/memory/memory-backend.js';
import type { LocalPort } from '../../src/sync/engine.js';
import { openKit, settle, writeAt, type Kit, type KitClient, type KitVariant } from './engine-kit.js';

const VARIANTS: KitVariant[] = ['placeholder', 'placeholder-fernet', 'index'];

/** The error a local read of `path` gets when the file is mode 000 and escale is not root. */
function accessDenied(path: string): EscaleError {
  const system = Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES', errno: -13 });
  return fromSystemError(system, path);
}

/** A local repository whose files named in `unreadable` cannot be read (as with mode 000 for a normal user). */
function withUnreadable(local: LocalPort, unreadable: Set<string>): LocalPort {
  return new Proxy(local, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(target);
      switch (property) {
        case 'checksum':
          return async (file: { path: RelPath }, signal?: AbortSignal) => (unreadable.has(file.path) ? Promise.reject(accessDenied(file.path)) : bound(file, signal));
        case 'open':
          return (path: RelPath, size?: number) => (unreadable.has(path) ? new Readable({ read() { this.destroy(accessDenied(path)); } }) : bound(path, size));
        case 'readSmall':
          return (path: RelPath, limit: number) => (unreadable.has(path) ? undefined : bound(path, limit));
        default:
          return bound;
      }
    },
  });
}

const client = (kit: Kit, name: string): KitClient => kit.clients[name] as KitClient;
const errorsAbout = (kit: Kit, path: string): string[] => kit.logs.filter((r) => r.level === 'error' && r.message.includes(`'${path}'`)).map((r) => r.message);

for (const variant of VARIANTS) {
  describe(`confinement: ${variant}`, () => {
    test('a modified file that cannot be read fails alone: the others sync in the same round; stuck after 3 failures, one line per state, cleared once readable', async () => {
      const unreadable = new Set<string>();
      const kit = await openKit({
        variant,
        clients: { alice: 'shared', bob: 'download' },
        relay: new MemoryBackend(),
        wrapLocal: (name, local) => (name === 'alice' ? withUnreadable(local, unreadable) : local),
      });
      try {
        const alice = client(kit, 'alice');
        const bob = client(kit, 'bob');
        const t0 = 1_700_000_000;
        for (const name of ['a.txt', 'secret.txt', 'sub/b.txt']) await writeAt(alice.folder, name, `${name} v1\n`, t0);
        await settle(kit, ['alice', 'bob']);
        assert.equal(await readFile(join(bob.folder, 'secret.txt'), 'utf8'), 'secret.txt v1\n');

        await writeAt(alice.folder, 'a.txt', 'a.txt v2\n', t0 + 60);
        await writeAt(alice.folder, 'secret.txt', 'secret.txt v2\n', t0 + 60);
        await writeAt(alice.folder, 'c.txt', 'c.txt new\n', t0 + 60);
        unreadable.add('secret.txt');

        const first = await alice.round();
        assert.equal(first.ok, true, `the round goes on: ${String(first.error)}\n${kit.problems()}`);
        assert.ok(first.failed >= 1, 'the unreadable file counts as failed');
        assert.equal((await bob.round()).ok, true, kit.problems());
        assert.equal(await readFile(join(bob.folder, 'a.txt'), 'utf8'), 'a.txt v2\n', 'the modified file next to it arrived in the same round');
        assert.equal(await readFile(join(bob.folder, 'c.txt'), 'utf8'), 'c.txt new\n', 'the new file arrived in the same round');
        assert.equal(await readFile(join(bob.folder, 'secret.txt'), 'utf8'), 'secret.txt v1\n', 'nothing torn was sent for the unreadable file');

        for (let round = 0; round < 8; round += 1) assert.equal((await alice.round()).ok, true, kit.problems());
        const [tracked] = alice.failures.list();
        assert.equal(alice.failures.list().length, 1, JSON.stringify(alice.failures.list()));
        assert.equal(tracked?.path, 'secret.txt');
        assert.equal(tracked?.state, 'stuck');
        assert.equal(tracked?.code, 'PermissionDenied');
        assert.match(tracked?.message ?? '', /EACCES: permission denied/);
        const lines = errorsAbout(kit, 'secret.txt');
        assert.equal(lines.length, 2, `one ERROR when it starts failing, one when it is stuck:\n${lines.join('\n')}`);
        assert.match(lines[0] as string, /failed to read 'secret\.txt': PermissionDenied: EACCES/);
        assert.match(lines[1] as string, /file 'secret\.txt' is stuck after 3 failed attempts/);

        unreadable.clear();
        for (let round = 0; round < 20 && alice.failures.list().length > 0; round += 1) assert.equal((await alice.round()).ok, true, kit.problems());
        assert.deepEqual(alice.failures.list(), [], 'cleared once it works');
        assert.ok(kit.logs.some((r) => r.level === 'info' && /file 'secret\.txt' is no longer failing/.test(r.message)), 'its recovery is logged');
        await settle(kit, ['alice', 'bob']);
        assert.equal(await readFile(join(bob.folder, 'secret.txt'), 'utf8'), 'secret.txt v2\n');
      } finally {
        await kit.close();
      }
    });
  });
}

describe('confinement: relay entries (placeholder protocol)', () => {
  test('a placeholder that cannot be read and a data file that cannot be fetched fail alone; the other files arrive in the same round', async () => {
    const kit = await openKit({ variant: 'placeholder', clients: { alice: 'upload', bob: 'download' }, relay: new MemoryBackend() });
    try {
      const alice = client(kit, 'alice');
      const bob = client(kit, 'bob');
      for (const name of ['a.txt', 'record.txt', 'data.bin', 'z/last.txt']) await writeAt(alice.folder, name, `${name}\n`, 1_700_000_000);
      assert.equal((await alice.round()).ok, true, kit.problems());
      const denied = (path: string): EscaleError => new EscaleError('PermissionDenied', `403 Forbidden: ${path}`, { path });
      bob.faults.rule = (call) => (call.method === 'get' && (call.path === '.record.txt.placeholder' || call.path === 'data.bin') ? { error: denied(call.path) } : undefined);
      const outcome = await bob.round();
      assert.equal(outcome.ok, true, `${String(outcome.error)}\n${kit.problems()}`);
      assert.equal(outcome.transferred, 2, 'a.txt and z/last.txt');
      assert.equal(await readFile(join(bob.folder, 'z/last.txt'), 'utf8'), 'z/last.txt\n');
      assert.deepEqual(bob.failures.list().map((f) => [f.path, f.action, f.code]).sort(), [
        ['data.bin', 'download', 'PermissionDenied'],
        ['record.txt', 'read the relay record of', 'PermissionDenied'],
      ]);
      bob.faults.rule = () => undefined;
      for (let round = 0; round < 4 && bob.failures.list().length > 0; round += 1) assert.equal((await bob.round()).ok, true, kit.problems());
      assert.deepEqual(bob.failures.list(), []);
      assert.equal(await readFile(join(bob.folder, 'data.bin'), 'utf8'), 'data.bin\n');
      assert.equal(await readFile(join(bob.folder, 'record.txt'), 'utf8'), 'record.txt\n');
    } finally {
      await kit.close();
    }
  });

  test('a name the relay refuses is skipped with one warning: not a failure, not counted as failing (--once exits 0)', async () => {
    const kit = await openKit({ variant: 'placeholder', clients: { alice: 'upload', bob: 'download' }, relay: new MemoryBackend() });
    try {
      const alice = client(kit, 'alice');
      const bob = client(kit, 'bob');
      for (const name of ['a.txt', 'weird.txt']) await writeAt(alice.folder, name, `${name}\n`, 1_700_000_000);
      assert.equal((await alice.round()).ok, true, kit.problems());
      bob.faults.rule = (call) => (call.method === 'get' && call.path === 'weird.txt' ? { error: new EscaleError('InvalidName', 'the server refuses this name') } : undefined);
      for (let round = 0; round < 6; round += 1) {
        const outcome = await bob.round();
        assert.equal(outcome.ok, true, kit.problems());
        assert.equal(outcome.failed, 0, 'a refusal is not a failure');
        assert.equal(outcome.failing, 0);
      }
      assert.equal(await readFile(join(bob.folder, 'a.txt'), 'utf8'), 'a.txt\n');
      assert.deepEqual(bob.failures.list().map((f) => [f.path, f.state]), [['weird.txt', 'refused']]);
      const warnings = kit.logs.filter((r) => r.level === 'warning' && r.message.includes("'weird.txt'"));
      assert.equal(warnings.length, 1, warnings.map((w) => w.message).join('\n'));
      assert.equal(kit.logs.filter((r) => r.level === 'error').length, 0, kit.problems());
    } finally {
      await kit.close();
    }
  });

  test('the relay unreachable in the middle of a round (after the retries) fails the round, not just the file', { timeout: 120_000 }, async () => {
    const kit = await openKit({ variant: 'placeholder', clients: { alice: 'upload' }, relay: new MemoryBackend() });
    try {
      const alice = client(kit, 'alice');
      await writeAt(alice.folder, 'a.txt', 'a\n', 1_700_000_000);
      alice.faults.rule = (call) => (call.method === 'put' ? { error: 'Unavailable' } : undefined);
      const outcome = await alice.round();
      assert.equal(outcome.ok, false, 'the round fails: the client backs off');
      assert.equal((outcome.error as EscaleError).code, 'Unavailable');
      alice.faults.rule = () => undefined;
      assert.equal((await alice.round()).ok, true, kit.problems());
    } finally {
      await kit.close();
    }
  });
});

describe('confinement: index pages', () => {
  test('a page whose index cannot be read fails alone: the files of the other pages arrive', async () => {
    const kit = await openKit({ variant: 'index', keys: { index: 'topdir' }, clients: { alice: 'upload', bob: 'download' }, relay: new MemoryBackend() });
    try {
      const alice = client(kit, 'alice');
      const bob = client(kit, 'bob');
      for (const name of ['p1/a.txt', 'p2/b.txt', 'root.txt']) await writeAt(alice.folder, name, `${name}\n`, 1_700_000_000);
      assert.equal((await alice.round()).ok, true, kit.problems());
      bob.faults.rule = (call) => (call.method === 'get' && call.path.startsWith('.p1.') ? { error: new EscaleError('PermissionDenied', `403 Forbidden: ${call.path}`) } : undefined);
      const outcome = await bob.round();
      assert.equal(outcome.ok, true, `${String(outcome.error)}\n${kit.problems()}`);
      assert.equal(await readFile(join(bob.folder, 'p2/b.txt'), 'utf8'), 'p2/b.txt\n');
      assert.equal(await readFile(join(bob.folder, 'root.txt'), 'utf8'), 'root.txt\n');
      assert.deepEqual(bob.failures.list().map((f) => [f.kind, f.path, f.code]), [['page', 'p1', 'PermissionDenied']]);
      bob.faults.rule = () => undefined;
      for (let round = 0; round < 4 && bob.failures.list().length > 0; round += 1) assert.equal((await bob.round()).ok, true, kit.problems());
      assert.deepEqual(bob.failures.list(), []);
      assert.equal(await readFile(join(bob.folder, 'p1/a.txt'), 'utf8'), 'p1/a.txt\n');
    } finally {
      await kit.close();
    }
  });

  test('a page whose repair fails does not stop the repair, nor the reads, of the other pages', async () => {
    const relay = new MemoryBackend();
    const kit = await openKit({ variant: 'index', keys: { index: 'topdir' }, clients: { alice: 'upload', bob: 'download' }, relay });
    try {
      const alice = client(kit, 'alice');
      const bob = client(kit, 'bob');
      for (const name of ['p1/a.txt', 'p2/b.txt']) await writeAt(alice.folder, name, `${name}\n`, 1_700_000_000);
      assert.equal((await alice.round()).ok, true, kit.problems());
      // why: locks bob left on both pages when killed: his first round repairs them.
      for (const page of ['p1', 'p2']) await relay.put(relPath(`.${page}.lock`), Buffer.from(formatLock({ owner: 'bob', mode: 'r' }), 'utf8'));
      bob.faults.rule = (call) => (call.method === 'delete' && call.path === '.p1.lock' ? { error: new EscaleError('PermissionDenied', '550 not allowed') } : undefined);
      const outcome = await bob.round();
      assert.equal(outcome.ok, true, `${String(outcome.error)}\n${kit.problems()}`);
      assert.equal(await readFile(join(bob.folder, 'p2/b.txt'), 'utf8'), 'p2/b.txt\n');
      assert.deepEqual(bob.failures.list().map((f) => [f.kind, f.path, f.action, f.code]), [['page', 'p1', 'repair', 'PermissionDenied']]);
      bob.faults.rule = () => undefined;
      for (let round = 0; round < 4 && bob.failures.list().length > 0; round += 1) assert.equal((await bob.round()).ok, true, kit.problems());
      assert.equal(await readFile(join(bob.folder, 'p1/a.txt'), 'utf8'), 'p1/a.txt\n');
      assert.deepEqual(bob.failures.list(), []);
    } finally {
      await kit.close();
    }
  });
});
