import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RelPath } from '../core/relpath.js';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { MemoryBackend } from './backends/memory/memory-backend.js';
import { formatDuration, probeRelayClock, RelayClock } from './relay-clock.js';
import { withRetry } from './wrap/retry.js';
import { withLimit } from './wrap/limit.js';

const HOUR = 3600_000;
const T0 = Date.parse('2026-03-01T12:00:00Z');

/** A monotonic clock the test moves by hand. */
function manual(start = 1000): { now(): number; advance(ms: number): void } {
  let mono = start;
  return { now: () => mono, advance: (ms) => void (mono += ms) };
}

describe('RelayClock: the estimate', () => {
  it('knows nothing before a sample, then bounds the relay time by the write interval and the mtime precision', () => {
    const mono = manual();
    const clock = new RelayClock({ monotonic: mono.now });
    assert.equal(clock.known, false);
    assert.equal(clock.now(), undefined);
    assert.equal(clock.offsetOf(T0), undefined);
    // a write that took 400 ms; the relay stamped whole seconds
    clock.observe({ startMono: 1000, endMono: 1400, mtimeMs: T0, precisionMs: 1000 });
    mono.advance(400);
    const now = clock.now();
    assert.ok(now !== undefined);
    // the relay's time of the write is in [T0, T0 + 1 s) and happened between 1000 and 1400
    assert.equal(now.earliest, T0);
    assert.equal(now.latest, T0 + 1000 + 400);
    mono.advance(60_000);
    assert.equal(clock.now()?.earliest, T0 + 60_000 - 60_000 * 2e-4, 'the bounds widen by drift as time passes');
  });

  it('intersects consistent samples; a contradicting one (the relay clock was set) replaces them', () => {
    const mono = manual(0);
    const clock = new RelayClock({ monotonic: mono.now });
    clock.observe({ startMono: 0, endMono: 2000, mtimeMs: T0 + 500, precisionMs: 1 });
    clock.observe({ startMono: 10_000, endMono: 10_050, mtimeMs: T0 + 10_020, precisionMs: 1 });
    const now = clock.now();
    assert.ok(now);
    assert.ok(now.latest - now.earliest <= 60, `tight after the short write: ${now.latest - now.earliest} ms`);
    clock.observe({ startMono: 20_000, endMono: 20_010, mtimeMs: T0 - 3 * HOUR, precisionMs: 1 });
    // at monotonic 0, the relay's new clock read 20 s before its write: T0 − 3 h − 20 s
    assert.equal(clock.now()?.earliest, T0 - 3 * HOUR - 20_010, 'the new clock wins');
  });

  it('ignores impossible samples (end before start, not numbers)', () => {
    const clock = new RelayClock({ monotonic: () => 0 });
    clock.observe({ startMono: 5, endMono: 1, mtimeMs: T0, precisionMs: 1 });
    clock.observe({ startMono: 0, endMono: 1, mtimeMs: Number.NaN, precisionMs: 1 });
    assert.equal(clock.known, false);
  });

  it('timed() learns from a write that answers with an mtime, and only then', async () => {
    const mono = manual();
    const clock = new RelayClock({ monotonic: mono.now });
    await clock.timed(async () => ({ size: 1 }) as { size: number; mtimeMs?: number }, 1000);
    assert.equal(clock.known, false, 'no mtime');
    await clock.timed(async () => ({ mtimeMs: T0 }), undefined);
    assert.equal(clock.known, false, 'a backend without mtime precision');
    await clock.timed(async () => {
      mono.advance(50);
      return { mtimeMs: T0 };
    }, 1);
    assert.deepEqual(clock.now(), { earliest: T0, latest: T0 + 51 });
  });

  it('offsetOf tells how far the local wall clock is from the relay, both ways', () => {
    const clock = new RelayClock({ monotonic: () => 0 });
    clock.observe({ startMono: 0, endMono: 0, mtimeMs: T0, precisionMs: 1 });
    assert.deepEqual(clock.offsetOf(T0 + 2 * HOUR), { min: 2 * HOUR - 1, max: 2 * HOUR });
    assert.deepEqual(clock.offsetOf(T0 - 2 * HOUR), { min: -2 * HOUR - 1, max: -2 * HOUR });
  });
});

describe('RelayClock: judging stale relay files', () => {
  it('by the relay clock: never early, whatever the local clock says; the evidence gives the age', () => {
    const mono = manual(0);
    const clock = new RelayClock({ monotonic: mono.now });
    clock.observe({ startMono: 0, endMono: 100, mtimeMs: T0, precisionMs: 1000 });
    const lock = { size: 29, mtimeMs: T0 - HOUR };
    // the worst case of the uncertainty counts against staleness: the age is at least 1 h − 1.12 s (write interval, precision, stamp lag)
    let verdict = clock.judge('.a.lock', lock, HOUR);
    assert.equal(verdict.stale, false);
    assert.match(verdict.evidence, /^it is 59 min old by the relay's clock$/);
    assert.ok((verdict.staleInMs ?? 0) > 0 && (verdict.staleInMs ?? 0) <= 2000);
    mono.advance(2200);
    verdict = clock.judge('.a.lock', lock, HOUR);
    assert.deepEqual(verdict, { stale: true, evidence: "it is 60 min old by the relay's clock" });
    assert.equal(clock.judge('.b.lock', { size: 0, mtimeMs: T0 + HOUR }, 0).evidence, "it is dated in the future by the relay's clock");
  });

  it('by lack of progress where the relay clock or the mtime is unknown: a change of size, mtime or content restarts the watch', () => {
    const mono = manual(0);
    const clock = new RelayClock({ monotonic: mono.now });
    const judge = (entry: { size: number; mtimeMs?: number }, content = '') => clock.judge('x', entry, 1000, content);
    assert.deepEqual(judge({ size: 1, mtimeMs: T0 }), { stale: false, evidence: "unchanged for 0 s while watched (the relay's clock is not known yet)", staleInMs: 1000 });
    mono.advance(900);
    assert.equal(judge({ size: 2, mtimeMs: T0 }).stale, false);
    mono.advance(900);
    assert.equal(judge({ size: 2, mtimeMs: T0 + 1 }).stale, false, 'mtime moved');
    mono.advance(900);
    assert.equal(judge({ size: 2, mtimeMs: T0 + 1 }, 'other owner').stale, false, 'content changed');
    mono.advance(1000);
    assert.equal(judge({ size: 2, mtimeMs: T0 + 1 }, 'other owner').stale, false, 'exactly the stale age');
    mono.advance(1);
    assert.deepEqual(judge({ size: 2, mtimeMs: T0 + 1 }, 'other owner'), { stale: true, evidence: 'it did not change for 1 s while this client watched it' });
    clock.forget('x');
    assert.equal(judge({ size: 2, mtimeMs: T0 + 1 }, 'other owner').stale, false, 'forgotten: watched from now');
    assert.match(clock.judge('y', { size: 3 }, 1000).evidence, /the relay gives no modification time/);
  });

  it('a relay clock that says young does not hide a lack of progress (mtimes written by a client whose clock is ahead)', () => {
    const mono = manual(0);
    const clock = new RelayClock({ monotonic: mono.now });
    clock.observe({ startMono: 0, endMono: 0, mtimeMs: T0, precisionMs: 1 });
    const entry = { size: 5, mtimeMs: T0 + 5 * HOUR };
    assert.equal(clock.judge('t', entry, HOUR).stale, false);
    mono.advance(HOUR + 1);
    assert.deepEqual(clock.judge('t', entry, HOUR), { stale: true, evidence: 'it did not change for 60 min while this client watched it' });
  });

  it('forgets the least recently watched entries beyond its capacity', () => {
    const mono = manual(0);
    const clock = new RelayClock({ monotonic: mono.now });
    clock.judge('first', { size: 1 }, 1000);
    for (let i = 0; i < 5000; i++) clock.judge(`n${i}`, { size: 1 }, 1000);
    mono.advance(2000);
    assert.equal(clock.judge('first', { size: 1 }, 1000).stale, false, 'forgotten, so watched afresh');
    assert.equal(clock.judge('n4999', { size: 1 }, 1000).stale, true);
  });
});

describe('probeRelayClock', () => {
  it('learns the clock with one put (and a stat when the put gives no mtime), deletes its file, and never runs twice at once', async () => {
    const relay = new MemoryBackend('probe', () => T0);
    const calls: string[] = [];
    const target = {
      clock: new RelayClock({ monotonic: () => 0 }),
      features: relay.features,
      // a put that answers without an mtime, as WebDAV and rclone do
      put: async (path: RelPath, body: Uint8Array) => {
        calls.push(`put ${path}`);
        const entry = await relay.put(path, body);
        return { path: entry.path, kind: entry.kind, size: entry.size };
      },
      stat: async (path: RelPath) => (calls.push(`stat ${path}`), relay.stat(path)),
      delete: async (path: RelPath) => (calls.push(`delete ${path}`), relay.delete(path)),
    };
    await Promise.all([probeRelayClock(target), probeRelayClock(target)]);
    assert.equal(target.clock.known, true);
    assert.deepEqual(target.clock.now(), { earliest: T0, latest: T0 + 1 });
    assert.equal(calls.length, 3, calls.join(', '));
    assert.match(calls[0] ?? '', /^put \.escale-put-[0-9a-f]{16}\.tmp$/);
    await probeRelayClock(target);
    assert.equal(calls.length, 3, 'known: no more requests');
    const left: string[] = [];
    for await (const e of relay.list('' as RelPath)) left.push(e.path);
    assert.deepEqual(left, []);
  });

  it('a failed probe is reported once, leaves the clock unknown, and is tried again only after 10 minutes', async () => {
    const mono = manual(0);
    const logs: LogRecord[] = [];
    let puts = 0;
    const target = {
      clock: new RelayClock({ monotonic: mono.now }),
      features: new MemoryBackend().features,
      put: async () => {
        puts += 1;
        throw new Error('read-only relay');
      },
      stat: async () => assert.fail('no stat'),
      delete: async () => assert.fail('no delete'),
    };
    const logger = createLogger([memorySink(logs)]);
    await probeRelayClock(target, { logger });
    await probeRelayClock(target, { logger });
    assert.equal(puts, 1);
    mono.advance(10 * 60_000);
    await probeRelayClock(target, { logger });
    assert.equal(puts, 2);
    assert.equal(target.clock.known, false);
    assert.deepEqual(logs.map((r) => r.level), ['warning']);
    assert.match(logs[0]?.message ?? '', /cannot learn the relay's clock \(read-only relay\)/);
  });

  it('never probes a connection of a run that promised to write nothing (--dry-run, list-pending)', async () => {
    const relay = new MemoryBackend('read-only', () => T0);
    let writes = 0;
    const target = { clock: new RelayClock({ monotonic: () => 0 }), features: relay.features, put: async () => assert.fail(`write ${++writes}`), stat: relay.stat.bind(relay), delete: relay.delete.bind(relay) };
    target.clock.forbidProbes();
    await probeRelayClock(target);
    assert.equal(target.clock.known, false);
    assert.equal(writes, 0);
  });

  it('wrapped backends share the inner clock, so that puts through the wrappers teach it', async () => {
    const inner = new MemoryBackend('wrapped', () => T0);
    const outer = withRetry(withLimit(inner));
    assert.equal(outer.clock, inner.clock);
    await outer.put('a' as RelPath, Buffer.from('x'));
    assert.equal(inner.clock.known, true);
  });
});

describe('formatDuration', () => {
  it('reads well at every scale', () => {
    assert.deepEqual([0, 59_400, 119_000, 600_000, 2 * HOUR + 5 * 60_000, 50 * HOUR].map(formatDuration), ['0 s', '59 s', '119 s', '10 min', '2 h 5 min', '2 d 2 h']);
  });
});
