import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveClock } from './adaptive-clock.js';

const take = (clock: AdaptiveClock, n: number): number[] => Array.from({ length: n }, () => Number(clock.next().toFixed(3)));

test('refresh 10 gives the sleeps measured on the original', () => {
  assert.deepEqual(take(new AdaptiveClock(10), 10), [5, 5, 5, 5.1, 5.6, 7.5, 9.4, 9.9, 10, 10]);
});

test('refresh 30 gives the sleeps measured on the original', () => {
  assert.deepEqual(take(new AdaptiveClock(30), 9), [15, 15, 15, 15, 17, 22, 28, 30, 30]);
});

test('reset starts again from R/2', () => {
  const clock = new AdaptiveClock(10);
  take(clock, 7);
  clock.reset();
  assert.equal(clock.next(), 5);
});

test('a non-positive refresh is refused', () => {
  assert.throws(() => new AdaptiveClock(0), RangeError);
});
