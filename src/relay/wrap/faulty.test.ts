import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { cutGets, failNth, withFaults } from './faulty.js';

const isCode = (code: string) => (e: unknown) => e instanceof EscaleError && e.code === code;

describe('faulty wrapper', () => {
  it('fails the nth call of a method, before or after it happens', async () => {
    const backend = withFaults(new MemoryBackend(), failNth('put', 3));
    await backend.put(relPath('1'), Buffer.from('1'));
    await backend.put(relPath('2'), Buffer.from('2'));
    await assert.rejects(backend.put(relPath('3'), Buffer.from('3')), isCode('Unavailable'));
    await assert.rejects(backend.stat(relPath('3')), isCode('NotFound'));
    backend.rule = failNth('delete', 1, 'Unavailable', 'after');
    await assert.rejects(backend.delete(relPath('1')), isCode('Unavailable'));
    await assert.rejects(backend.stat(relPath('1')), isCode('NotFound'), 'the delete happened before the lost reply');
    assert.deepEqual(backend.calls.map((c) => `${c.method}#${c.nth}`), ['put#1', 'put#2', 'put#3', 'stat#1', 'delete#1', 'stat#2']);
  });

  it('cuts get streams after N bytes', async () => {
    const backend = withFaults(new MemoryBackend(), cutGets(4));
    await backend.put(relPath('a'), Buffer.from('0123456789'));
    const stream = await backend.get(relPath('a'));
    const got: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const chunk of stream) got.push(chunk as Buffer);
    }, isCode('Unavailable'));
    assert.equal(Buffer.concat(got).toString(), '0123');
  });

  it('breaks a put body after N bytes, and the backend keeps the old content', async () => {
    const backend = withFaults(new MemoryBackend(), (call) => (call.method === 'put' && call.nth === 2 ? { failBodyAfterBytes: 3 } : undefined));
    await backend.put(relPath('a'), Buffer.from('old'));
    await assert.rejects(backend.put(relPath('a'), Buffer.from('new content')), isCode('Unavailable'));
    const stream = await backend.get(relPath('a'));
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'old');
  });

  it('delays calls, abort-aware', async () => {
    const backend = withFaults(new MemoryBackend(), () => ({ delayMs: 60_000 }));
    const controller = new AbortController();
    const pending = backend.mkdir(relPath('d'), { signal: controller.signal });
    controller.abort();
    await assert.rejects(pending, isCode('Aborted'));
  });
});
