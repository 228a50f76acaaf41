import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessStore, formatFlags, parseModifiers } from './access.js';
import { relPath } from '../core/relpath.js';

test('parseModifiers: the grammar of sync-rules.md R7.1', () => {
  assert.deepEqual(parseModifiers('r-w+'), { read: false, write: true });
  assert.deepEqual(parseModifiers('w?'), { write: null });
  assert.deepEqual(parseModifiers('r'), { read: true }, 'a letter without sign means +');
  assert.deepEqual(parseModifiers('rw'), { read: true, write: true });
  assert.deepEqual(parseModifiers(['r+', 'w-']), { read: true, write: false }, 'separate words are joined');
  assert.deepEqual(parseModifiers('r? w?'), { read: null, write: null });
});

for (const bad of ['', 'x', 'r*', 'r+w+x', 'r+r-', '+r', 'R+']) {
  test(`parseModifiers refuses ${JSON.stringify(bad)} with a usage error`, () => {
    assert.throws(() => parseModifiers(bad), (e: unknown) => (e as { code?: string }).code === 'Usage' && /modifier/.test((e as Error).message));
  });
}

test('formatFlags prints r<R>w<W>', () => {
  assert.equal(formatFlags({}), 'r?w?');
  assert.equal(formatFlags({ read: true, write: false }), 'r+w-');
});

test('set, unset and get; letters not given keep their value; unset keeps a record', async () => {
  const store = await AccessStore.open(null);
  const p = relPath('docs/a.txt');
  assert.deepEqual(store.get(p), {});
  assert.equal(store.has(p), false);
  assert.deepEqual(store.set(p, 'r-w+'), { read: false, write: true });
  assert.deepEqual(store.set(p, 'w-'), { read: false, write: false });
  assert.deepEqual(store.set(p, { read: null }), { write: false });
  assert.deepEqual(store.set(p, 'r?w?'), {});
  assert.equal(store.has(p), true, 'records are never deleted');
  assert.throws(() => store.set(p, 'bad'), { code: 'Usage' });
  const read = store.reader();
  store.set(relPath('b'), 'w-');
  assert.deepEqual(read(relPath('b')), { write: false });
  assert.deepEqual([...store.entries()].map(([path, flags]) => [path, formatFlags(flags)]), [['docs/a.txt', 'r?w?'], ['b', 'r?w-']]);
});

test('persistence across reopen, created on first set, torn last line ignored', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-am-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'cache', 'escale', 'am0123');
  let store = await AccessStore.open(file);
  await assert.rejects(stat(file), { code: 'ENOENT' }, 'not created by opening');
  store.set(relPath('a'), 'r-');
  store.set(relPath('b'), 'w-');
  store.set(relPath('b'), 'w+');
  // no close: every set is on disk already
  await appendFile(file, '{"p":"c","r":fal');
  store = await AccessStore.open(file);
  assert.deepEqual(store.get(relPath('a')), { read: false });
  assert.deepEqual(store.get(relPath('b')), { write: true });
  assert.equal(store.has(relPath('c')), false);
  store.set(relPath('c'), 'r+');
  await store.close();
  store = await AccessStore.open(file);
  assert.deepEqual(store.get(relPath('c')), { read: true });
  await store.close();
  assert.ok(!(await readFile(file, 'utf8')).includes('fal\n'), 'the torn fragment was removed');
});

test('a foreign file at the path is an error and is left untouched', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-am-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'am0123');
  await writeFile(file, 'old dbm data\n');
  await assert.rejects(AccessStore.open(file), { code: 'CorruptRecord' });
  assert.equal(await readFile(file, 'utf8'), 'old dbm data\n');
});
