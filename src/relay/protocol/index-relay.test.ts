import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, memorySink, type LogRecord } from '../../core/log.js';
import type { RelPath } from '../../core/relpath.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { bzip2CompressBytes } from '../../system/bzip2.js';
import { IndexRelay } from './index-relay.js';
import { formatLock } from './lock.js';

const p = (s: string) => s as RelPath;

function setup(client = 'alice', lockTimeoutSec: number | null = 60) {
  const backend = new MemoryBackend();
  const logs: LogRecord[] = [];
  const relay = new IndexRelay(backend, { client, lockTimeoutSec, now: Date.now, logger: createLogger([memorySink(logs)], client), sleep: async () => undefined });
  return { backend, relay, logs };
}

async function names(backend: MemoryBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const e of backend.list(p(''))) out.push(e.path);
  return out.sort();
}

describe('IndexRelay', () => {
  test('snapshot groups page files and ignores other names', async () => {
    const { backend, relay } = setup();
    for (const name of ['.0.index', '.0.12.index', '.0.12.data', '.dir.lock', '.a.txt.placeholder', 'a.txt', '.x.y.z.index']) await backend.put(p(name), Buffer.from('x'));
    const snap = await relay.snapshot();
    assert.deepEqual([...snap.pages.keys()].sort(), ['0', 'dir']);
    assert.deepEqual([...(snap.pages.get('0')?.updates.keys() ?? [])], [12]);
    assert.ok(snap.pages.get('dir')?.lock);
  });

  test('repair: own and unclaimed w locks remove incomplete updates, keep complete ones; foreign and unreadable locks stay', async () => {
    const { backend, relay, logs } = setup();
    await backend.put(p('.0.lock'), Buffer.from(formatLock({ owner: 'alice', mode: 'w' })));
    await backend.put(p('.0.5.data'), Buffer.from('partial'));
    await backend.put(p('.A.lock'), Buffer.alloc(0));
    await backend.put(p('.A.7.index'), Buffer.from(''));
    await backend.put(p('.A.7.data'), Buffer.from('complete'));
    await backend.put(p('.B.lock'), Buffer.from(formatLock({ owner: 'bob', mode: 'w' })));
    await backend.put(p('.B.9.data'), Buffer.from('in progress'));
    await backend.put(p('.C.lock'), Buffer.from([0xff, 0xfe]));
    const repaired = await relay.repair(await relay.snapshot());
    assert.deepEqual(repaired.map((r) => [r.page, r.lock, r.removed]).sort(), [['0', 'own', ['.0.5.data']], ['A', 'unclaimed', []]]);
    assert.deepEqual(await names(backend), ['.A.7.data', '.A.7.index', '.B.9.data', '.B.lock', '.C.lock']);
    assert.ok(logs.some((r) => r.message === "releasing remnant update file '.0.5.data'"));
  });

  test('lock: free, own, foreign (busy), stale foreign broken', async () => {
    const { backend, relay } = setup('alice', 60);
    const held = await relay.lock('0', 'w', { pollMs: 1, maxWaitMs: 0 });
    assert.notEqual(held, 'busy');
    assert.equal((await (await backend.get(p('.0.lock'))).toArray()).join(''), 'lock%1.0\nowner: alice\nmode: w');
    if (held !== 'busy') await held.release();
    assert.deepEqual(await names(backend), []);
    await backend.put(p('.0.lock'), Buffer.from(formatLock({ owner: 'bob', mode: 'r' })));
    assert.equal(await relay.lock('0', 'r', { pollMs: 1, maxWaitMs: 5 }), 'busy');
  });

  test("a foreign lock expires by the relay's clock: never early when the local clock is ahead, and on time when it is behind", async () => {
    let relayMs = Date.parse('2026-05-01T00:00:00Z');
    const backend = new MemoryBackend('skew', () => relayMs);
    const logs: LogRecord[] = [];
    const logger = createLogger([memorySink(logs)], 'alice');
    await backend.put(p('.0.lock'), Buffer.from(formatLock({ owner: 'bob', mode: 'w' })));
    await backend.put(p('.0.9.data'), Buffer.from('half an update'));
    const ahead = new IndexRelay(backend, { client: 'alice', lockTimeoutSec: 10, now: () => relayMs + 2 * 3600_000, logger });
    assert.equal(await ahead.lock('0', 'r', { pollMs: 1, maxWaitMs: 0 }), 'busy', 'two hours ahead: the 10 s lock is still young');
    relayMs += 9_000;
    assert.equal(await ahead.lock('0', 'r', { pollMs: 1, maxWaitMs: 0 }), 'busy');
    relayMs += 2_000;
    const behind = new IndexRelay(backend, { client: 'alice', lockTimeoutSec: 10, now: () => relayMs - 2 * 3600_000, logger });
    const held = await behind.lock('0', 'r', { pollMs: 1, maxWaitMs: 0 });
    assert.notEqual(held, 'busy', 'two hours behind: broken once 10 s passed on the relay');
    assert.ok(logs.some((r) => r.level === 'warning' && /^breaking the stale lock of page '0' held by 'bob': it is 1[01] s old by the relay's clock \(lock timeout 10 s\)$/.test(r.message)), logs.map((r) => r.message).join('\n'));
    assert.deepEqual(await names(backend), ['.0.lock'], 'the incomplete update went with the stale lock');
  });

  test('orphan update data of another client goes only once left for the lock timeout by the relay clock, with the evidence', async () => {
    let relayMs = Date.parse('2026-05-01T00:00:00Z');
    const backend = new MemoryBackend('orphans', () => relayMs);
    const logs: LogRecord[] = [];
    const relay = new IndexRelay(backend, { client: 'alice', lockTimeoutSec: 60, now: () => relayMs + 3600_000, logger: createLogger([memorySink(logs)], 'alice') });
    await backend.put(p('.0.5.data'), Buffer.from('orphan'));
    let files = (await relay.snapshot()).pages.get('0');
    assert.ok(files);
    assert.deepEqual(await relay.removeOrphans('0', files, () => false), { removed: [], kept: 1 });
    relayMs += 61_000;
    files = (await relay.snapshot()).pages.get('0');
    assert.ok(files);
    assert.deepEqual(await relay.removeOrphans('0', files, () => false), { removed: ['.0.5.data'], kept: 0 });
    assert.ok(logs.some((r) => /^releasing orphan update data '\.0\.5\.data': it is 6\d s old by the relay's clock \(lock timeout 60 s\)$/.test(r.message)), logs.map((r) => r.message).join('\n'));
  });

  for (const [label, bytes] of [
    ['not UTF-8', Buffer.from([0xff, 0xfe])],
    ['an unknown mode', Buffer.from('lock%1.0\nowner: bob\nmode: x')],
    ['larger than the lock limit', Buffer.alloc(70 * 1024, 0x61)],
  ] as const) {
    test(`a page lock that cannot be read (${label}) waits like one without owner and expires after the lock timeout; one warning each way`, async () => {
      const clock = { ms: 1_800_000_000_000 };
      const backend = new MemoryBackend('test', () => clock.ms);
      const logs: LogRecord[] = [];
      const relay = new IndexRelay(backend, { client: 'alice', lockTimeoutSec: 60, now: () => clock.ms, logger: createLogger([memorySink(logs)], 'alice'), sleep: async (ms) => void (clock.ms += ms) });
      await backend.put(p('.0.lock'), bytes);
      await backend.put(p('.0.5.data'), Buffer.from('partial'));
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await relay.repair(await relay.snapshot()), []);
        assert.equal(await relay.lock('0', 'r', { pollMs: 10_000, maxWaitMs: 20_000 }), 'busy');
      }
      const seen = () => logs.filter((r) => r.level === 'warning' && r.message.startsWith("the lock of page '0' cannot be read"));
      assert.equal(seen().length, 1);
      clock.ms += 61_000;
      const repaired = await relay.repair(await relay.snapshot());
      assert.deepEqual(repaired.map((r) => [r.page, r.lock, r.removed]), [['0', 'stale', ['.0.5.data']]]);
      assert.equal(logs.filter((r) => r.level === 'warning' && r.message.startsWith("breaking the lock of page '0', which cannot be read")).length, 1);
      assert.deepEqual(await names(backend), []);
      // a blocking wait breaks it too, once it turns stale while waited for
      await backend.put(p('.0.lock'), bytes);
      const held = await relay.lock('0', 'w', { pollMs: 10_000, maxWaitMs: 120_000 });
      assert.notEqual(held, 'busy');
      assert.equal(seen().length, 2);
    });
  }

  test('persistent index: entries with refused names are warned about once each, kept, and written back unchanged', async () => {
    const { backend, relay, logs } = setup();
    const body = 'timestamp: 1\nchecksum: ab\n---pullers---\n';
    const names = ['ok.txt', '../evil', '/etc/passwd', 'back\\slash.txt', 'tab\tname.txt', 'cafe\u0301.txt'];
    const text = `---group---\nplaceholder%1.0\npusher: bob\n-----------\n${names.map((n) => `${n} ${body.length}\n${body}`).join('')}`;
    await backend.put(p('.0.index'), await bzip2CompressBytes(Buffer.from(text)));
    for (let round = 0; round < 3; round += 1) {
      const loaded = await relay.readPersistentIndex('0');
      assert.deepEqual([...loaded.entries.keys()], ['ok.txt', 'caf\u00e9.txt']);
      assert.deepEqual([...loaded.spellings], [['caf\u00e9.txt', 'cafe\u0301.txt']]);
      assert.deepEqual(loaded.kept.map((k) => k.name), ['../evil', '/etc/passwd', 'back\\slash.txt', 'tab\tname.txt']);
      await relay.writePersistentIndex('0', loaded.entries, undefined, loaded);
    }
    const warnings = logs.filter((r) => r.level === 'warning').map((r) => r.message);
    assert.equal(warnings.length, 4, warnings.join('\n'));
    for (const name of ['../evil', '/etc/passwd', 'back\\slash.txt', 'tab\tname.txt']) {
      assert.equal(warnings.filter((w) => w.startsWith(`not syncing relay file ${JSON.stringify(name)}: the name `)).length, 1, name);
    }
    const again = await relay.readPersistentIndex('0');
    assert.deepEqual([...again.spellings.values()], ['cafe\u0301.txt'], 'the NFD spelling survives the rewrites');
    assert.equal(again.kept.length, 4);
  });

  test('page files are matched in NFC and addressed in the spelling the relay lists', async () => {
    const { backend, relay } = setup();
    await backend.put(p('.cafe\u0301.index'), await bzip2CompressBytes(Buffer.from('')));
    await backend.put(p('.cafe\u0301.12.index'), Buffer.from(''));
    const snap = await relay.snapshot();
    assert.deepEqual([...snap.pages.keys()], ['caf\u00e9']);
    const held = await relay.lock('caf\u00e9', 'w', { pollMs: 1, maxWaitMs: 0 });
    assert.notEqual(held, 'busy');
    assert.deepEqual(await names(backend), ['.cafe\u0301.12.index', '.cafe\u0301.index', '.cafe\u0301.lock']);
    if (held !== 'busy') await held.release();
    await relay.deleteUpdate('caf\u00e9', 12);
    assert.deepEqual(await names(backend), ['.cafe\u0301.index']);
  });
});
