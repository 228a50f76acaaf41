import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReportOnce } from './report-once.js';

test('a repeated state is news once; a new state, or the same after clearing, is news again', () => {
  const once = new ReportOnce();
  assert.equal(once.isNew('a.txt', 'unreadable'), true);
  assert.equal(once.isNew('a.txt', 'unreadable'), false);
  assert.equal(once.isNew('b.txt', 'unreadable'), true, 'subjects are independent');
  assert.equal(once.isNew('a.txt', 'name too long'), true);
  assert.equal(once.isNew('a.txt', 'unreadable'), true, 'back to an earlier state is a change');
  assert.equal(once.clear('a.txt'), true);
  assert.equal(once.clear('a.txt'), false);
  assert.equal(once.isNew('a.txt', 'unreadable'), true);
});

test('retain forgets the subjects that are no longer kept', () => {
  const once = new ReportOnce();
  for (const name of ['x', 'y', 'z']) once.isNew(name, 's');
  once.retain((subject) => subject !== 'y');
  assert.equal(once.size, 2);
  assert.equal(once.isNew('y', 's'), true);
  assert.equal(once.isNew('x', 's'), false);
});
