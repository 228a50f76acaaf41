import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger, memorySink, type LogRecord } from '../../core/log.js';
import type { RelPath } from '../../core/relpath.js';
import { MemoryBackend } from './memory/memory-backend.js';
import { isUploadTempName, leftoverTemps, removeLeftoverTemps, STALE_UPLOAD_TEMP_MS, uploadTempName } from './upload-temp.js';
import { RelayClock } from '../relay-clock.js';

const HOUR = 3600_000;

/** A relay clock that learned the relay's time `relayNow` exactly at monotonic 0. */
function knownClock(relayNow: number): { clock: RelayClock; advance(ms: number): void } {
  let mono = 0;
  const clock = new RelayClock({ monotonic: () => mono });
  clock.observe({ startMono: 0, endMono: 0, mtimeMs: relayNow, precisionMs: 1 });
  return { clock, advance: (ms) => void (mono += ms) };
}

describe('upload temporaries', () => {
  it('are hidden names tagged with their target', () => {
    const a = uploadTempName('payload.bin');
    assert.match(a, /^\.escale-put-[0-9a-f]{8}-[0-9a-f]{16}\.tmp$/);
    assert.ok(isUploadTempName(a));
    assert.equal(a.slice(0, 20), uploadTempName('payload.bin').slice(0, 20), 'same tag for the same target');
    assert.notEqual(a.slice(0, 20), uploadTempName('other.bin').slice(0, 20));
    assert.ok(isUploadTempName('.escale-put-0123456789abcdef.tmp'), 'the earlier untagged form');
    assert.equal(isUploadTempName('payload.bin'), false);
  });

  it('a temporary left by a crashed put goes once a later put of its target completed, or after a day by the relay clock', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    const { clock } = knownClock(now);
    const crashed = uploadTempName('payload.bin');
    const inFlight = uploadTempName('payload.bin');
    const other = uploadTempName('other.bin');
    const old = '.escale-put-0123456789abcdef.tmp';
    const items = [
      { name: 'payload.bin', mtimeMs: now - 10_000 },
      { name: crashed, mtimeMs: now - 20_000 },
      // still being written after the target was completed: kept
      { name: inFlight, mtimeMs: now - 1000 },
      // its target was never completed: kept until stale
      { name: other, mtimeMs: now - 60_000 },
      { name: old, mtimeMs: now - 25 * HOUR },
      { name: '.escale-put-fedcba9876543210.tmp', mtimeMs: now - 60_000 },
    ];
    const found = leftoverTemps(items, clock, 'dir');
    assert.deepEqual(found.map((t) => t.name).sort(), [crashed, old].sort());
    assert.match(found.find((t) => t.name === old)?.evidence ?? '', /^it is 25 h 0 min old by the relay's clock$/);
    assert.match(found.find((t) => t.name === crashed)?.evidence ?? '', /^a later put of its target completed 10 s after its last write$/);
  });

  it('a temporary written just before its target completed is kept (a racing put may still rename it)', () => {
    const temp = uploadTempName('.x.lock');
    assert.deepEqual(leftoverTemps([{ name: '.x.lock', mtimeMs: 5000 }, { name: temp, mtimeMs: 3000 }], knownClock(10_000).clock, ''), []);
  });

  it("another client's upload in progress is kept whatever the local clock says; by its lack of progress alone it goes after the stale age", () => {
    // The local wall clock plays no part (it may be hours ahead): the temporary was written a minute ago by the relay's clock.
    const relayNow = Date.parse('2026-01-02T00:00:00Z');
    const { clock, advance } = knownClock(relayNow);
    const temp = '.escale-put-00000000000000aa.tmp';
    let size = 100;
    for (let i = 0; i < 30; i++) {
      assert.deepEqual(leftoverTemps([{ name: temp, size, mtimeMs: relayNow + i * HOUR - 60_000 }], clock, ''), [], `round ${i}`);
      advance(HOUR);
      size += 100;
    }
    // Without mtimes (FTP LIST): only progress counts.
    let mono = 0;
    const blind = new RelayClock({ monotonic: () => mono });
    assert.deepEqual(leftoverTemps([{ name: temp, size: 1 }], blind, ''), []);
    mono += STALE_UPLOAD_TEMP_MS;
    assert.deepEqual(leftoverTemps([{ name: temp, size: 2 }], blind, ''), [], 'it grew: progress');
    mono += STALE_UPLOAD_TEMP_MS;
    assert.deepEqual(leftoverTemps([{ name: temp, size: 2 }], blind, ''), [], 'exactly the stale age: not yet');
    mono += 1;
    assert.deepEqual(leftoverTemps([{ name: temp, size: 2 }], blind, ''), [{ name: temp, evidence: 'it did not change for 24 h 0 min while this client watched it' }]);
  });

  it('removeLeftoverTemps probes the unknown relay clock once, then removes and logs each left-over with its evidence', async () => {
    let relayMs = Date.parse('2026-01-02T00:00:00Z');
    const logs: LogRecord[] = [];
    const logger = createLogger([memorySink(logs)]);
    const old = '.escale-put-0123456789abcdef.tmp';
    const young = '.escale-put-00000000000000aa.tmp';
    const fresh = new MemoryBackend('view', () => relayMs);
    assert.equal(fresh.clock.known, false);
    const removed: string[] = [];
    const puts: string[] = [];
    const spied = { ...pick(fresh), put: (...args: Parameters<MemoryBackend['put']>) => (puts.push(args[0]), fresh.put(...args)) };
    relayMs += 25 * HOUR;
    const items = [{ name: old, size: 1, mtimeMs: relayMs - 25 * HOUR }, { name: young, size: 1, mtimeMs: relayMs - HOUR }, { name: 'data.bin', size: 1, mtimeMs: relayMs - 30 * HOUR }];
    assert.equal(await removeLeftoverTemps(items, 'd', { backend: spied, logger, remove: async (name) => void removed.push(name) }), 1);
    assert.deepEqual(removed, [old]);
    assert.equal(puts.length, 1, 'one probe');
    assert.match(puts[0] ?? '', /^\.escale-put-[0-9a-f]{16}\.tmp$/);
    assert.equal(fresh.clock.known, true);
    assert.deepEqual(logs.map((r) => `${r.level} ${r.message}`), [`info removed the upload temporary 'd/${old}' left by an interrupted put: it is 25 h 0 min old by the relay's clock`]);
    await removeLeftoverTemps(items.slice(1), 'd', { backend: spied, logger, remove: async () => assert.fail('young') });
    assert.equal(puts.length, 1, 'no second probe');
    const listed: string[] = [];
    for await (const e of fresh.list('' as RelPath, { recursive: true })) listed.push(e.path);
    assert.deepEqual(listed, [], 'the probe was deleted');
  });

  it('removeLeftoverTemps costs no request when there is no temporary, or none with an mtime', async () => {
    const backend = new MemoryBackend();
    const spied = { ...pick(backend), put: () => assert.fail('no probe'), stat: () => assert.fail('no probe') };
    assert.equal(await removeLeftoverTemps([{ name: 'a.txt', size: 1, mtimeMs: 1 }], '', { backend: spied, remove: async () => assert.fail('nothing to remove') }), 0);
    assert.equal(await removeLeftoverTemps([{ name: '.escale-put-00000000000000aa.tmp', size: 1 }], '', { backend: spied, remove: async () => assert.fail('young') }), 0);
  });
});

function pick(backend: MemoryBackend) {
  return { clock: backend.clock, features: backend.features, put: backend.put.bind(backend), stat: backend.stat.bind(backend), delete: backend.delete.bind(backend) };
}
