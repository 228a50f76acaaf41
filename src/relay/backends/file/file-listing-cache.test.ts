import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RelayPath } from '../../../core/relpath.js';
import { openFileBackend } from './file-backend.js';
import { inTempDir } from '../../../../test/kit/temp-dir.js';

const inTemp = (body: (dir: string) => Promise<void>): Promise<void> => inTempDir('file-listing-', body);

const OLD = new Date('2020-01-01T00:00:00Z');

/** `path:size` of every file of a recursive listing. */
async function listing(backend: { list(dir: RelayPath, o: { recursive: boolean }): AsyncIterable<{ path: string; kind: string; size: number }> }): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of backend.list('' as RelayPath, { recursive: true })) if (entry.kind === 'file') out.push(`${entry.path}:${entry.size}`);
  return out.sort();
}

test('a folder whose stamp did not change is given again from the cache; a new name is seen at once; a rewrite in place after the maximum age', () => inTemp(async (dir) => {
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'a'), 'aa');
  await writeFile(join(dir, 'top'), 't');
  // why: a folder changed in the last two seconds is never cached (see the next test).
  await sleep(2100);
  let mono = 0;
  const backend = await openFileBackend({ root: dir, monotonic: () => mono, listingCacheMaxAgeMs: 60_000 });
  assert.deepEqual(await listing(backend), ['sub/a:2', 'top:1']);
  // A rewrite in place (no name created or removed) keeps the folder's stamp: the cached listing stands.
  await writeFile(join(dir, 'sub', 'a'), 'aaaa');
  assert.deepEqual(await listing(backend), ['sub/a:2', 'top:1'], 'served from the cache');
  // A new name changes the folder's stamp.
  await writeFile(join(dir, 'sub', 'b'), 'b');
  assert.deepEqual(await listing(backend), ['sub/a:4', 'sub/b:1', 'top:1'], 'read again');
  await writeFile(join(dir, 'top'), 'tttt');
  assert.deepEqual(await listing(backend), ['sub/a:4', 'sub/b:1', 'top:1'], 'the root folder is cached too');
  mono += 60_001;
  assert.deepEqual(await listing(backend), ['sub/a:4', 'sub/b:1', 'top:4'], 'read again after the maximum age');
}));

test('a folder changed within the last seconds is read again every time (a change in the same clock tick would keep its stamp)', () => inTemp(async (dir) => {
  await writeFile(join(dir, 'a'), 'a');
  const backend = await openFileBackend({ root: dir });
  assert.deepEqual(await listing(backend), ['a:1']);
  await writeFile(join(dir, 'a'), 'aaa');
  assert.deepEqual(await listing(backend), ['a:3'], 'not cached: the folder was just modified');
  const off = await openFileBackend({ root: dir, listingCacheMaxAgeMs: 0 });
  await utimes(dir, OLD, OLD);
  assert.deepEqual(await listing(off), ['a:3']);
  await writeFile(join(dir, 'a'), 'a');
  assert.deepEqual(await listing(off), ['a:1'], 'no cache with a maximum age of 0');
}));
