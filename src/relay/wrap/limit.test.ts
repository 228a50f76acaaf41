import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { withFaults } from './faulty.js';
import { Semaphore, withLimit } from './limit.js';

describe('limit wrapper', () => {
  it('never runs more than max calls at once', async () => {
    let running = 0;
    let peak = 0;
    const inner = withFaults(new MemoryBackend(), () => {
      running += 1;
      peak = Math.max(peak, running);
      return { delayMs: 5 };
    });
    const backend = withLimit(inner, 3);
    const originalPut = inner.put.bind(inner);
    inner.put = async (...args) => {
      try {
        return await originalPut(...args);
      } finally {
        running -= 1;
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, i) => backend.put(relPath(`f${i}`), Buffer.from('x'))));
    assert.equal(peak, 3);
    assert.equal(backend.slots.inUse, 0);
    assert.equal(backend.features.maxConnections, 3);
  });

  it('holds a slot while a get stream is open', async () => {
    const memory = new MemoryBackend();
    await memory.put(relPath('a'), Buffer.from('a'));
    const backend = withLimit(memory, 1);
    const stream = await backend.get(relPath('a'));
    assert.equal(backend.slots.inUse, 1);
    for await (const _ of stream) {
      // drain
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(backend.slots.inUse, 0);
  });

  it('lets a waiter give up through its signal', async () => {
    const slots = new Semaphore(1);
    const release = await slots.acquire();
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    controller.abort();
    await assert.rejects(waiting, (e: unknown) => e instanceof EscaleError && e.code === 'Aborted');
    release();
    assert.equal(slots.inUse, 0);
    const again = await slots.acquire();
    assert.equal(slots.inUse, 1);
    again();
  });
});
