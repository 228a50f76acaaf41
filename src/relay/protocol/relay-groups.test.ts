import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../core/log.js';
import { ROOT, type RelPath } from '../../core/relpath.js';
import { readSmall, type Backend } from '../backend.js';
import { openFileBackend } from '../backends/file/file-backend.js';
import { formatLock } from './lock.js';
import { groupListing, groupsInTurn, openGroupLocker, type LockerClock } from './relay-groups.js';

const p = (s: string): RelPath => s as RelPath;
const BOB_LOCK = formatLock({ owner: 'bob', mode: 'w' });

describe('group locks of maintenance jobs (file relays in temp folders)', () => {
  let dir: string;
  let count = 0;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'escale-relay-groups-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function relay(files: Record<string, string>): Promise<Backend> {
    count += 1;
    mkdirSync(join(dir, String(count)));
    const backend = await openFileBackend({ root: join(dir, String(count)) });
    for (const [path, text] of Object.entries(files)) await backend.put(p(path), Buffer.from(text));
    return backend;
  }

  async function locks(backend: Backend): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for await (const e of backend.list(ROOT, { recursive: true })) if (e.path.endsWith('.lock')) out.set(e.path, (await readSmall(backend, e.path, 1024)).toString());
    return out;
  }

  const settings = { owner: 'alice-backup', lockTimeoutSec: null, logger: silentLogger, now: Date.now };

  test('a placeholder lock is read back after writing: a lost race is busy and the winner\'s lock stays', async () => {
    const backend = await relay({ 'a.txt': 'A' });
    // why: the other client's write lands right after ours, as in a race the check before writing cannot see.
    const racing = new Proxy(backend, {
      get(target, key) {
        if (key === 'put') {
          return async (...args: Parameters<Backend['put']>) => {
            const entry = await target.put(...args);
            if (args[0] === '.a.txt.lock') await target.put(p('.a.txt.lock'), Buffer.from(BOB_LOCK));
            return entry;
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const locker = openGroupLocker(racing, 'placeholder', 'r', settings);
    assert.equal(await locker.lock({ name: 'a.txt', lockPath: p('.a.txt.lock') }), 'busy');
    assert.deepEqual(await locks(backend), new Map([['.a.txt.lock', BOB_LOCK]]));
  });

  test('turns: free groups first, held ones in rounds until freed or the deadline; every lock released', async () => {
    const backend = await relay({ 'a.txt': 'A', 'b.txt': 'B', '.b.txt.lock': BOB_LOCK, 'c.txt': 'C', '.c.txt.lock': BOB_LOCK });
    let now = 0;
    let sleeps = 0;
    const clock: LockerClock = {
      now: () => now,
      sleep: async (ms) => {
        sleeps += 1;
        now += ms;
        // why: the other client lets go of b during the first wait; c stays held to the end.
        if (sleeps === 1) await backend.delete(p('.b.txt.lock'));
      },
    };
    const { groups } = groupListing(await (async () => {
      const out = [];
      for await (const e of backend.list(ROOT, { recursive: true })) out.push(e);
      return out;
    })(), 'placeholder');
    const locker = openGroupLocker(backend, 'placeholder', 'r', settings);
    const seen: string[] = [];
    for await (const { slot, lock } of groupsInTurn(groups, locker, { maxWaitMs: 5000, clock, logger: silentLogger, waiting: () => 'waiting' })) {
      seen.push(`${slot.group.name}:${lock === 'busy' ? 'busy' : 'locked'}`);
      if (lock !== 'busy') assert.equal((await locks(backend)).get(`.${slot.group.name}.lock`), formatLock({ owner: 'alice-backup', mode: 'r' }), 'held during its turn');
    }
    assert.deepEqual(seen, ['a.txt:locked', 'b.txt:locked', 'c.txt:busy']);
    assert.equal(now, 5000, 'waited the whole time for c, no longer');
    assert.deepEqual(await locks(backend), new Map([['.c.txt.lock', BOB_LOCK]]), 'only the other client\'s lock remains');
  });

  test('turns stopped halfway release the locks already taken', async () => {
    const backend = await relay({ 'a.txt': 'A', 'b.txt': 'B' });
    const { groups } = groupListing([{ path: p('a.txt'), kind: 'file', size: 1 }, { path: p('b.txt'), kind: 'file', size: 1 }], 'placeholder');
    const locker = openGroupLocker(backend, 'placeholder', 'w', settings);
    for await (const turn of groupsInTurn(groups, locker, { maxWaitMs: 0, clock: { now: Date.now }, logger: silentLogger, waiting: () => 'waiting' })) {
      assert.equal(turn.slot.group.name, 'a.txt');
      assert.equal((await locks(backend)).size, 2, 'every free group is locked at once');
      break;
    }
    assert.equal((await locks(backend)).size, 0);
  });
});
