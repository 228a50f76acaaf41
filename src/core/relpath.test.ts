import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath, isRelPath, joinRel, dirnameRel, basenameRel } from './relpath.js';
import { EscaleError } from './errors.js';

test('relPath accepts ordinary nested names and normalises to NFC', () => {
  assert.equal(relPath('a/b c/d.txt'), 'a/b c/d.txt');
  assert.equal(relPath('unicode-e\u0301.txt'), 'unicode-\u00e9.txt');
  assert.equal(relPath(''), '');
});

for (const [bad, why] of [
  ['../x', "'..' segment"],
  ['a/../b', "'..' segment"],
  ['/etc/passwd', 'absolute'],
  ['a\\b', 'backslash'],
  ['a\0b', 'NUL'],
  ['a//b', 'empty segment'],
  ['a/', 'empty segment'],
  ['./a', "'.' segment"],
  ['C:/x', 'drive letter'],
  ['a\nb', 'control character'],
  ['x'.repeat(256), 'longer than 255'],
] as const) {
  test(`relPath refuses ${JSON.stringify(bad).slice(0, 30)} (${why})`, () => {
    assert.throws(() => relPath(bad), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName' && e.message.includes(why));
    assert.equal(isRelPath(bad), false);
  });
}

test('join, dirname and basename', () => {
  const p = joinRel(relPath('a/b'), 'c.txt');
  assert.equal(p, 'a/b/c.txt');
  assert.equal(dirnameRel(p), 'a/b');
  assert.equal(dirnameRel(relPath('top')), '');
  assert.equal(basenameRel(p), 'c.txt');
  assert.throws(() => joinRel(relPath('a'), '..'));
});
