import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SettleQueue, type SettleStat } from './settle-queue.js';

/** A queue over a fake clock and fake files (path → size and mtime). */
function world(settleMs = 300): { queue: SettleQueue; files: Map<string, SettleStat>; advance(ms: number): void; wall(): number } {
  let mono = 0;
  let wall = 1_700_000_000_000;
  const files = new Map<string, SettleStat>();
  const queue = new SettleQueue({ settleMs, monotonic: () => mono, wallClock: () => wall, stat: (path) => files.get(path) ?? 'other' });
  return {
    queue,
    files,
    advance: (ms) => {
      mono += ms;
      wall += ms;
    },
    wall: () => wall,
  };
}

test('a file written and closed settles once it was quiet for the settle time; a burst of events is one settled path', () => {
  const w = world();
  w.files.set('a.txt', { size: 5, mtimeMs: w.wall() });
  for (let i = 0; i < 10; i++) w.queue.add('a.txt');
  assert.deepEqual(w.queue.take(), { settled: [], nextInMs: 300 });
  w.advance(299);
  assert.deepEqual(w.queue.take().settled, []);
  w.advance(1);
  assert.deepEqual(w.queue.take(), { settled: ['a.txt'] });
  assert.equal(w.queue.size, 0);
});

test('a file still being written is waited out: events keep it pending, and a recent mtime needs two equal looks', () => {
  const w = world();
  let size = 0;
  for (let t = 0; t < 5000; t += 100) {
    size += 10;
    w.files.set('log.txt', { size, mtimeMs: w.wall() });
    w.queue.add('log.txt');
    w.advance(100);
    assert.deepEqual(w.queue.take().settled, [], `still written at ${t} ms`);
  }
  // The writer stopped: settled once its last write is the settle time old.
  w.advance(199);
  assert.deepEqual(w.queue.take().settled, []);
  w.advance(1);
  assert.deepEqual(w.queue.take().settled, ['log.txt']);
  // A write that raised no event since (the mtime moved, the size did not) is looked at twice.
  w.files.set('quiet.txt', { size: 1, mtimeMs: w.wall() + 250 });
  w.queue.add('quiet.txt');
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, [], 'mtime too recent at the first look');
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, ['quiet.txt'], 'two equal looks');
});

test('a file dated in the future settles after two equal looks; folders and vanished paths settle at once', () => {
  const w = world();
  w.files.set('future.txt', { size: 1, mtimeMs: w.wall() + 3_600_000 });
  w.queue.add('future.txt');
  w.queue.add('gone.txt');
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, ['gone.txt']);
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, ['future.txt']);
});

test('a look that finds another size starts the wait again; clear forgets everything', () => {
  const w = world();
  w.files.set('a', { size: 1, mtimeMs: w.wall() + 1000 });
  w.queue.add('a');
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, []);
  w.files.set('a', { size: 2, mtimeMs: w.wall() + 1000 });
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, [], 'changed between the looks');
  w.advance(300);
  assert.deepEqual(w.queue.take().settled, ['a']);
  w.queue.add('b');
  w.queue.clear();
  assert.equal(w.queue.size, 0);
});
