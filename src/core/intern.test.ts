import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detached, intern, releaseInterned, sharedList } from './intern.js';

test('detached copies any string exactly: short, long, non-ASCII, lone surrogates', () => {
  const text = `placeholder%1.0\nchecksum: ${'ab'.repeat(64)}\n`;
  for (const sample of ['', 'bob', text.slice(26, 154), 'é'.repeat(40), '\ud800 lone \udfff surrogates', text]) assert.equal(detached(sample), sample);
});

test('intern gives the first equal string until the pool is released', () => {
  const first = ['d00', 'e01'].join('/');
  const second = ['d00', 'e01'].join('/');
  assert.equal(intern(first), first);
  assert.equal(intern(second), first);
  releaseInterned();
  assert.equal(intern(second), second);
  releaseInterned();
});

test('sharedList: equal short lists share one frozen array, exactly as long as the list', () => {
  const built: string[] = [];
  built.push('bob');
  const a = sharedList(built);
  const b = sharedList(['bob']);
  assert.deepEqual(a, ['bob']);
  assert.equal(a, b, 'one array for equal lists');
  assert.ok(Object.isFrozen(a), 'a shared list cannot be changed by one of its holders');
  assert.throws(() => (a as string[]).push('eve'), TypeError);
  assert.notEqual(sharedList(['bob', 'carol']), a);
  assert.deepEqual(sharedList([]), []);
  // why: lists are told apart exactly, whatever characters the names hold.
  assert.deepEqual(sharedList(['a\u0000b']), ['a\u0000b']);
  assert.deepEqual(sharedList(['a', 'b']), ['a', 'b']);
});

test('sharedList keeps long lists unshared and stays correct past its pool bound', () => {
  const long = Array.from({ length: 20 }, (_, i) => `client${i}`);
  const copy = sharedList(long);
  assert.deepEqual(copy, long);
  assert.notEqual(copy, long);
  for (let i = 0; i < 3000; i += 1) assert.deepEqual(sharedList([`c${i}`, 'bob']), [`c${i}`, 'bob']);
});
