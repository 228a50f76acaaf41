import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { failFirst, withFaults } from './faulty.js';
import { withRetry } from './retry.js';

const A = relPath('a.txt');
const noSleep = { sleep: async () => undefined, random: () => 0.5 };

describe('retry wrapper', () => {
  it('retries retryable failures with growing, bounded, jittered delays', async () => {
    const inner = withFaults(new MemoryBackend(), failFirst('stat', 3));
    await inner.put(A, Buffer.from('a'));
    const delays: number[] = [];
    const backend = withRetry(inner, { baseDelayMs: 100, maxDelayMs: 300, random: () => 1, sleep: async (ms) => void delays.push(ms) });
    assert.equal((await backend.stat(A)).size, 1);
    assert.deepEqual(delays, [100, 200, 300]);
    assert.equal(inner.calls.filter((c) => c.method === 'stat').length, 4);
  });

  it('gives up after the attempts and never retries a non-retryable code', async () => {
    const inner = withFaults(new MemoryBackend(), failFirst('stat', 10));
    await assert.rejects(withRetry(inner, { attempts: 3, ...noSleep }).stat(A), (e: unknown) => e instanceof EscaleError && e.code === 'Unavailable');
    assert.equal(inner.calls.length, 3);
    const plain = withFaults(new MemoryBackend(), () => undefined);
    await assert.rejects(withRetry(plain, noSleep).stat(A), (e: unknown) => e instanceof EscaleError && e.code === 'NotFound');
    assert.equal(plain.calls.length, 1);
  });

  it('stops waiting when aborted', async () => {
    const inner = withFaults(new MemoryBackend(), failFirst('stat', 10));
    const controller = new AbortController();
    const pending = withRetry(inner, { baseDelayMs: 60_000 }).stat(A, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (e: unknown) => e instanceof EscaleError && e.code === 'Aborted');
  });

  it('retries puts of buffers and factories, not of a consumed stream', async () => {
    const inner = withFaults(new MemoryBackend(), (call) => (call.method === 'put' && call.nth === 1 ? { failBodyAfterBytes: 2 } : undefined));
    const backend = withRetry(inner, noSleep);
    await backend.put(A, Buffer.from('buffer body'));
    assert.equal(inner.calls.filter((c) => c.method === 'put').length, 2);

    inner.rule = (call) => (call.method === 'put' && call.nth === 3 ? { failBodyAfterBytes: 2 } : undefined);
    let made = 0;
    await backend.put(A, () => {
      made += 1;
      return Readable.from([Buffer.from('factory body')]);
    });
    assert.equal(made, 2);

    inner.rule = (call) => (call.method === 'put' && call.nth === 5 ? { failBodyAfterBytes: 2 } : undefined);
    await assert.rejects(backend.put(A, Readable.from([Buffer.from('stream'), Buffer.from(' body')])));
    assert.equal(inner.calls.filter((c) => c.method === 'put').length, 5, 'the consumed stream was not sent again');

    inner.rule = (call) => (call.method === 'put' && call.nth === 6 ? { error: 'Unavailable' } : undefined);
    await backend.put(A, Readable.from([Buffer.from('untouched stream')]));
    assert.equal(inner.calls.filter((c) => c.method === 'put').length, 7, 'a stream never read is retried');
  });

  it('retries a list only before its first entry', async () => {
    const memory = new MemoryBackend();
    await memory.put(A, Buffer.from('a'));
    const inner = withFaults(memory, failFirst('list', 1));
    const seen: string[] = [];
    for await (const e of withRetry(inner, noSleep).list(relPath(''))) seen.push(e.path);
    assert.deepEqual(seen, ['a.txt']);
  });
});
