import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { assertResource, classifyRelayName, lockPathOf, placeholderPathOf } from './layout.js';

test('special names sit beside the resource (relay-format.md P3.1)', () => {
  assert.equal(lockPathOf(relPath('a.txt')), '.a.txt.lock');
  assert.equal(placeholderPathOf(relPath('a.txt')), '.a.txt.placeholder');
  assert.equal(lockPathOf(relPath('dir/sub/unicode-é.txt')), 'dir/sub/.unicode-é.txt.lock');
  assert.equal(placeholderPathOf(relPath('dir/b.bin')), 'dir/.b.bin.placeholder');
  assert.equal(lockPathOf(relPath('x.lock')), '.x.lock.lock');
});

test('names of non-resources are refused', () => {
  for (const bad of ['', '.hidden', 'dir/.x', '.dir/x']) {
    assert.throws(() => lockPathOf(bad as never), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
    assert.throws(() => assertResource(bad as never), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
  }
  // A name that only fits without the prefix and suffix.
  assert.throws(() => placeholderPathOf(relPath('x'.repeat(250))), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
});

test('classifyRelayName sorts relay files by base name', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['a.txt', 'data', 'a.txt'],
    ['dir/sub/unicode-é.txt', 'data', 'dir/sub/unicode-é.txt'],
    ['.a.txt.lock', 'lock', 'a.txt'],
    ['dir/.b.bin.placeholder', 'placeholder', 'dir/b.bin'],
    ['.x.lock.lock', 'lock', 'x.lock'],
    ['.x.lock.placeholder', 'placeholder', 'x.lock'],
    ['.a.txt.message', 'message', undefined],
    ['.a.txt.231114221320.message', 'message', undefined],
    ['.lock', 'other', undefined],
    ['..x.lock', 'other', undefined],
    ['.0.index', 'other', undefined],
    ['.0.1700000000.data', 'other', undefined],
    ['.git/config', 'other', undefined],
    ['dir/.cache/x.txt', 'other', undefined],
    ['dir/.cache/.x.txt.lock', 'other', undefined],
    ['.hidden', 'other', undefined],
  ];
  for (const [name, kind, resource] of cases) {
    const got = classifyRelayName(relPath(name));
    assert.equal(got.kind, kind, name);
    assert.equal(got.resource, resource, name);
  }
});
