import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, MAX_BACKOFF_SEC } from './backoff.js';

test('the pause doubles from its base, stays at its cap, and starts again after reset', () => {
  const backoff = new Backoff(3, 20);
  assert.deepEqual(Array.from({ length: 7 }, () => backoff.next()), [3, 6, 12, 20, 20, 20, 20]);
  assert.equal(backoff.failures, 7);
  backoff.reset();
  assert.equal(backoff.failures, 0);
  assert.equal(backoff.next(), 3);
});

test('a thousand failures never overflow the cap', () => {
  const backoff = new Backoff(1, 50);
  for (let i = 0; i < 999; i += 1) backoff.next();
  assert.equal(backoff.next(), 50);
});

test('the back-off of a section: from its refresh to 16 refreshes, never above an hour', () => {
  const of = (refresh: number): [number, number] => {
    const b = Backoff.forRefresh(refresh);
    return [b.baseSec, b.maxSec];
  };
  assert.deepEqual(of(1), [1, 16]);
  assert.deepEqual(of(30), [30, 480]);
  assert.deepEqual(of(600), [600, MAX_BACKOFF_SEC]);
  assert.deepEqual(of(7200), [7200, 7200], 'a refresh above an hour is its own cap');
  assert.throws(() => new Backoff(0, 1), RangeError);
});
