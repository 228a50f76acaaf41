import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { ROOT, type RelPath } from '../../core/relpath.js';
import { readSmall, type Backend } from '../backend.js';
import { openFileBackend } from '../backends/file/file-backend.js';
import { formatLock } from './lock.js';
import { copyRelay, type RelayCopyOptions } from './relay-copy.js';
import { DESTINATION_LOCKED } from './relay-groups.js';

const p = (s: string): RelPath => s as RelPath;
const BOB_LOCK = formatLock({ owner: 'bob', mode: 'w' });

async function files(backend: Backend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of backend.list(ROOT, { recursive: true })) if (e.kind === 'file') out.set(e.path, (await readSmall(backend, e.path, 1 << 20)).toString());
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const withoutLocks = (map: Map<string, string>): Map<string, string> => new Map([...map].filter(([k]) => !k.endsWith('.lock')));

describe('inter-relay copy (two file relays in temp folders)', () => {
  let dir: string;
  let count = 0;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'escale-relay-copy-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function relays(): Promise<{ source: Backend; destination: Backend }> {
    count += 1;
    for (const name of [`s${count}`, `d${count}`]) mkdirSync(join(dir, name));
    return { source: await openFileBackend({ root: join(dir, `s${count}`) }), destination: await openFileBackend({ root: join(dir, `d${count}`) }) };
  }

  const options = (extra: Partial<RelayCopyOptions> = {}): RelayCopyOptions => ({
    flavour: 'placeholder',
    owner: 'alice-migrate',
    fast: false,
    lockWaitMs: 60_000,
    lockTimeoutSec: null,
    logger: silentLogger,
    clock: { now: Date.now, sleep: async () => undefined },
    ...extra,
  });
  const waiting = (sleep: () => Promise<void>): Pick<RelayCopyOptions, 'clock'> => ({ clock: { now: Date.now, sleep } });

  async function placeholderSource(source: Backend): Promise<void> {
    for (const [path, text] of [
      ['a.txt', 'A'],
      ['.a.txt.placeholder', 'placeholder%1.0\npusher: alice\n---pullers---\n'],
      ['d/b.txt', 'B'],
      ['d/.b.txt.placeholder', 'placeholder%1.0\npusher: alice\n---pullers---\n'],
      ['d/.gone.txt.placeholder', 'placeholder%1.0\npusher: alice\n---pullers---\nbob'],
      ['held.txt', 'H'],
      ['.held.txt.placeholder', 'placeholder%1.0\npusher: bob\n---pullers---\n'],
      ['.held.txt.lock', BOB_LOCK],
    ] as const) await source.put(p(path), Buffer.from(text));
  }

  test('placeholder relay: a resource another client holds is waited for, never unlocked by us, and copied once released', async () => {
    const { source, destination } = await relays();
    await placeholderSource(source);
    let waits = 0;
    const progress: number[] = [];
    const report = await copyRelay(source, destination, options({
      // why: instead of a timer, the "other client" finishes its transfer while the copy waits.
      ...waiting(async () => {
        waits += 1;
        assert.equal((await readSmall(source, p('.held.txt.lock'), 1024)).toString(), BOB_LOCK, 'the foreign lock is still the other client\'s');
        await source.delete(p('.held.txt.lock'));
      }),
      onProgress: (done) => progress.push(done),
    }));
    assert.equal(waits, 1);
    assert.deepEqual(report.failed, []);
    assert.deepEqual(await files(destination), withoutLocks(await files(source)), 'identical file sets, no lock copied');
    assert.ok(![...(await files(source)).keys(), ...(await files(destination)).keys()].some((k) => k.endsWith('.lock')), 'every lock this copy took was released');
    assert.deepEqual(progress, [1, 2, 3, 4, 5, 6, 7]);
  });

  test('placeholder relay: a resource still held after the wait is reported and its lock left in place', async () => {
    const { source, destination } = await relays();
    await placeholderSource(source);
    const report = await copyRelay(source, destination, options({ lockWaitMs: 0 }));
    assert.deepEqual(report.failed.map((f) => f.path), ['held.txt']);
    const left = await files(source);
    assert.equal(left.get('.held.txt.lock'), BOB_LOCK, 'the other client\'s lock is untouched');
    assert.deepEqual([...(await files(destination)).keys()], ['.a.txt.placeholder', 'a.txt', 'd/.b.txt.placeholder', 'd/.gone.txt.placeholder', 'd/b.txt']);
  });

  test('placeholder relay: a destination lock of another client aborts before anything is copied and releases our locks', async () => {
    const { source, destination } = await relays();
    await placeholderSource(source);
    await destination.put(p('d/.b.txt.lock'), Buffer.from(BOB_LOCK));
    await assert.rejects(copyRelay(source, destination, options()), (error) => hasCode(error, 'LockBusy') && error.message.includes(DESTINATION_LOCKED));
    assert.deepEqual([...(await files(destination)).keys()], ['d/.b.txt.lock']);
    assert.deepEqual([...(await files(source)).keys()].filter((k) => k.endsWith('.lock')), ['.held.txt.lock']);
  });

  test('index relay: pages are copied unchanged under page locks; a page another client holds is waited for or reported', async () => {
    const { source, destination } = await relays();
    for (const [path, text] of [['.0.index', 'I0'], ['.0.17.index', 'U'], ['.0.17.data', 'D'], ['.docs.index', 'I1'], ['.docs.lock', BOB_LOCK]] as const) await source.put(p(path), Buffer.from(text));
    const busy = await copyRelay(source, destination, options({ flavour: 'index', lockWaitMs: 0 }));
    assert.deepEqual(busy.failed.map((f) => f.path), ['.docs.index']);
    assert.deepEqual([...(await files(destination)).keys()], ['.0.17.data', '.0.17.index', '.0.index']);
    assert.equal((await files(source)).get('.docs.lock'), BOB_LOCK);

    const report = await copyRelay(source, destination, options({ flavour: 'index', ...waiting(async () => source.delete(p('.docs.lock'))) }));
    assert.deepEqual(report.failed, []);
    assert.ok(report.destinationHadFiles);
    assert.deepEqual(await files(destination), await files(source));
  });

  test('index relay: a destination page another client holds aborts before anything is copied, as for placeholders', async () => {
    const { source, destination } = await relays();
    for (const [path, text] of [['.0.index', 'I0'], ['.docs.index', 'I1']] as const) await source.put(p(path), Buffer.from(text));
    await destination.put(p('.docs.lock'), Buffer.from(BOB_LOCK));
    await assert.rejects(copyRelay(source, destination, options({ flavour: 'index' })), (error) => hasCode(error, 'LockBusy') && error.message.includes(`${DESTINATION_LOCKED}: page 'docs' is locked there`));
    assert.deepEqual([...(await files(destination)).keys()], ['.docs.lock']);
    assert.deepEqual([...(await files(source)).keys()], ['.0.index', '.docs.index']);
  });

  test('placeholder relay: a lock of this copy left by an interrupted run is taken over and released', async () => {
    const { source, destination } = await relays();
    await placeholderSource(source);
    await source.delete(p('.held.txt.lock'));
    await source.put(p('.a.txt.lock'), Buffer.from(formatLock({ owner: 'alice-migrate', mode: 'r' })));
    const report = await copyRelay(source, destination, options({ lockWaitMs: 0 }));
    assert.deepEqual(report.failed, []);
    assert.deepEqual(await files(destination), withoutLocks(await files(source)));
    assert.ok(![...(await files(source)).keys()].some((k) => k.endsWith('.lock')));
  });

  test('fast mode takes no lock and copies what another client holds', async () => {
    const { source, destination } = await relays();
    await placeholderSource(source);
    const report = await copyRelay(source, destination, options({ fast: true, lockWaitMs: 0 }));
    assert.deepEqual(report.failed, []);
    assert.deepEqual(await files(destination), withoutLocks(await files(source)));
    assert.equal((await files(source)).get('.held.txt.lock'), BOB_LOCK);
  });
});
