import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { FSWatcher } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../test/e2e/harness.js';
import { networkFileSystemOf, TreeWatcher, type WatchFolder } from './tree-watcher.js';
import { inTempDir } from '../../test/kit/temp-dir.js';

const inTemp = (body: (dir: string) => Promise<void>): Promise<void> => inTempDir('tree-watcher-', body);

test('one watch per folder (hidden and filtered folders left out); events name the changed path; a new folder is added', () => inTemp(async (dir) => {
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await mkdir(join(dir, '.hidden'));
  await mkdir(join(dir, 'skipped'));
  const events: string[] = [];
  const watcher = new TreeWatcher({ root: dir, entersDir: (path) => path !== 'skipped', onEvent: (path) => events.push(path), onLost: () => assert.fail('not lost') });
  try {
    assert.equal(watcher.start(), true);
    assert.equal(watcher.folders, 3, 'the root, a, a/b');
    assert.equal(watcher.watches('.hidden'), false);
    await writeFile(join(dir, 'a', 'b', 'f.txt'), 'x');
    assert.equal(await waitFor(async () => events.includes('a/b/f.txt'), 5000, 20), true, events.join(','));
    await mkdir(join(dir, 'a', 'new', 'deep'), { recursive: true });
    assert.equal(await waitFor(async () => events.includes('a/new'), 5000, 20), true);
    assert.equal(watcher.add('a/new'), true);
    assert.equal(watcher.watches('a/new/deep'), true);
    watcher.remove('a');
    assert.equal(watcher.folders, 1);
  } finally {
    watcher.close();
  }
  assert.equal(watcher.healthy, false);
}));

test('the limit of watches (ENOSPC) and a watcher error are reported once, and every watch is released', () => inTemp(async (dir) => {
  for (const name of ['a', 'b', 'c']) await mkdir(join(dir, name));
  const made: EventEmitter[] = [];
  const limited = (limit: number): WatchFolder => () => {
    if (made.length >= limit) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    const fake = Object.assign(new EventEmitter(), { close: () => undefined }) as unknown as FSWatcher & EventEmitter;
    made.push(fake);
    return fake;
  };
  const lost: Array<[string, boolean]> = [];
  const watcher = new TreeWatcher({ root: dir, entersDir: () => true, onEvent: () => undefined, onLost: (reason, limit) => lost.push([reason, limit]), watchFolder: limited(2) });
  assert.equal(watcher.start(), false);
  assert.equal(watcher.folders, 0, 'no partial watch');
  assert.equal(lost.length, 1);
  assert.match(lost[0]?.[0] ?? '', /ENOSPC.*max_user_watches.*watch = no/);
  assert.equal(lost[0]?.[1], true);

  made.length = 0;
  lost.length = 0;
  const other = new TreeWatcher({ root: dir, entersDir: () => true, onEvent: () => undefined, onLost: (reason, limit) => lost.push([reason, limit]), watchFolder: limited(100) });
  assert.equal(other.start(), true);
  made[1]?.emit('error', new Error('EIO'));
  made[2]?.emit('error', new Error('EIO'));
  assert.equal(lost.length, 1, 'once');
  assert.match(lost[0]?.[0] ?? '', /failed: EIO/);
  assert.equal(other.healthy, false);
  other.overflow();
  assert.equal(lost.length, 1, 'a lost watcher reports nothing more');
}));

test('a local file system is not taken for a network one', () => {
  assert.equal(networkFileSystemOf(tmpdir()), undefined);
});
