import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relPath, type RelPath } from '../core/relpath.js';
import { LocalIndex } from './local-index.js';
import type { ScannedFile } from './scanner.js';

const file = (path: string, size = 1, mtimeMs = 1000, ino = '1', diskPath?: string): ScannedFile => ({ path: relPath(path), size, mtimeMs, ctimeMs: mtimeMs, ino, ...(diskPath === undefined ? {} : { diskPath }) });
const sorted = (set: Set<RelPath>): string[] => [...set].sort();

test('a full scan marks what appeared, vanished or took another identity since the last one', () => {
  const index = new LocalIndex();
  assert.equal(index.ready, false);
  index.replaceAll([file('a'), file('b'), file('c')]);
  assert.equal(index.ready, true);
  assert.deepEqual(sorted(index.takeChanged()), ['a', 'b', 'c']);
  index.replaceAll([file('a'), file('b', 2), file('d')]);
  assert.deepEqual(sorted(index.takeChanged()), ['b', 'c', 'd']);
  index.replaceAll([file('a'), file('b', 2), file('d')]);
  assert.deepEqual(sorted(index.takeChanged()), [], 'an unchanged tree changes nothing');
  index.replaceAll([file('a', 1, 1000, '2'), file('b', 2), file('d', 1, 1000, '1', 'd')]);
  assert.deepEqual(sorted(index.takeChanged()), ['a', 'd'], 'another inode, another spelling');
});

test('refresh of a file or a folder drops what is no longer there and adds what is; own writes are recorded', () => {
  const index = new LocalIndex();
  index.replaceAll([file('x/a'), file('x/b'), file('x/y/c'), file('xz'), file('top')]);
  index.takeChanged();
  index.refresh(relPath('top'), [file('top', 9)], false);
  assert.deepEqual(sorted(index.takeChanged()), ['top']);
  index.refresh(relPath('x'), [file('x/a')], true);
  assert.deepEqual(sorted(index.takeChanged()), ['x/b', 'x/y/c'], "the folder's other files are gone, its neighbour xz stays");
  assert.ok(index.get(relPath('xz')));
  index.refresh(relPath('gone'), [], false);
  assert.deepEqual(sorted(index.takeChanged()), []);
  index.written(relPath('new'), { size: 3, mtimeMs: 5, ctimeMs: 6, ino: '7' });
  assert.deepEqual(sorted(index.takeChanged()), ['new']);
  assert.equal(index.get(relPath('new'))?.size, 3);
});
