import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat, utimes, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChecksumCache } from './checksum-cache.js';
import { hashFile } from './checksum.js';
import type { ScannedFile } from './scanner.js';
import { relPath, type RelPath } from '../core/relpath.js';

async function setup(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; root: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'escale-cc-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  await writeFile(join(dir, 'placeholder'), '');
  await import('node:fs/promises').then((fs) => fs.mkdir(root));
  return { dir, root, file: join(dir, 'cache', 'escale', 'cc0123') };
}

async function scanned(root: string, path: string, content: string, mtimeSec: number): Promise<ScannedFile> {
  await writeFile(join(root, path), content);
  await utimes(join(root, path), mtimeSec, mtimeSec);
  const info = await stat(join(root, path));
  return { path: relPath(path), size: info.size, mtimeMs: info.mtimeMs };
}

const SHA = (text: string): Promise<string> => import('node:crypto').then((c) => c.createHash('sha512').update(text).digest('hex'));

test('equal mtime: the cached checksum is reused without reading the file', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = await scanned(root, 'a', 'content', 1_000_000);
  cache.record(f.path, 1_000_000, 'abc123', 'sha512');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), 'abc123');
});

test('cached mtime older than the file: the checksum is computed again and stored', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = await scanned(root, 'a', 'new content', 2_000_000);
  cache.record(f.path, 1_999_999, 'stale', 'sha512');
  const sum = await cache.checksumOf(root, f, 'sha512');
  assert.equal(sum, await SHA('new content'));
  assert.deepEqual({ ...cache.get(f.path) }, { mtimeSec: 2_000_000, checksum: sum, algorithm: 'sha512' });
});

test('cached mtime newer than the file: the checksum is kept and the older mtime stored', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = await scanned(root, 'a', 'whatever', 3_000_000);
  cache.record(f.path, 3_000_500, 'kept', 'sha512');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), 'kept');
  assert.deepEqual({ ...cache.get(f.path) }, { mtimeSec: 3_000_000, checksum: 'kept', algorithm: 'sha512' });
});

test('mtimes compare as truncated integer seconds', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = { ...(await scanned(root, 'a', 'x', 5)), mtimeMs: 5_999.9 };
  cache.record(f.path, 5, 'same-second', 'sha512');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), 'same-second');
});

test('an entry of another algorithm is not reused; no entry means hashing', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = await scanned(root, 'a', 'abc', 10);
  cache.record(f.path, 10, 'md5sum', 'md5');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('abc'));
  cache.forget(f.path);
  assert.equal(cache.get(f.path), undefined);
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('abc'));
});

test('persistence: entries survive close and reopen; forget is persisted; the file is JSON lines', async (t) => {
  const { root, file } = await setup(t);
  const f = await scanned(root, 'dir-a', 'one', 100);
  let cache = await ChecksumCache.open(file, { algorithm: 'sha512' });
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('one'));
  cache.record(relPath('b/c'), 200, 'ABCDEF');
  cache.record(relPath('gone'), 300, 'dead');
  cache.forget(relPath('gone'));
  await cache.close();
  const text = await readFile(file, 'utf8');
  assert.match(text.split('\n')[0] ?? '', /escale-checksum-cache/);
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 2);
  assert.deepEqual({ ...cache.get(relPath('b/c')) }, { mtimeSec: 200, checksum: 'abcdef', algorithm: 'sha512' });
  assert.equal(cache.get(relPath('gone')), undefined);
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('one'));
  await cache.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a torn last line is ignored on load, and later appends stay readable', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  cache.record(relPath('a'), 1, 'aa', 'sha512');
  cache.record(relPath('b'), 2, 'bb', 'sha512');
  await cache.close();
  await appendFile(file, '{"p":"c","m":3,"c":"c'); // a crash in the middle of an append
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 2);
  assert.equal(cache.get(relPath('c')), undefined);
  cache.record(relPath('d'), 4, 'dd', 'sha512');
  await cache.close();
  cache = await ChecksumCache.open(file);
  assert.deepEqual([...['a', 'b', 'd']].map((p) => cache.get(p as RelPath)?.checksum), ['aa', 'bb', 'dd']);
  await cache.close();
  assert.deepEqual((await readdir(join(file, '..'))).sort(), ['cc0123'], 'no temporary left behind');
});

test('malformed lines in the middle are skipped; a foreign file is moved aside, not destroyed', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  cache.record(relPath('a'), 1, 'aa', 'sha512');
  await cache.close();
  await appendFile(file, 'garbage\n{"p":7,"m":1,"c":"aa"}\n{"p":"x","m":"1","c":"aa"}\n{"p":"b","m":2,"c":"bb"}\n');
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 2);
  assert.equal(cache.get(relPath('b'))?.checksum, 'bb');
  await cache.close();

  await writeFile(file, 'GDBM binary stuff');
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 0);
  assert.equal(await readFile(`${file}.foreign`, 'utf8'), 'GDBM binary stuff');
  await cache.close();
});

test('a missing file stays missing until something is recorded; an in-memory cache writes nothing', async (t) => {
  const { file, dir } = await setup(t);
  const cache = await ChecksumCache.open(file);
  await cache.flush();
  await assert.rejects(stat(file), { code: 'ENOENT' });
  const memory = await ChecksumCache.open(null);
  memory.record(relPath('x'), 1, 'aa');
  await memory.close();
  assert.deepEqual(await readdir(dir), ['placeholder', 'root']);
  await cache.close();
});

test('the file is compacted when it grows much larger than the cache', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  for (let i = 0; i < 5000; i++) cache.record(relPath('same'), i, 'aa', 'sha512');
  await cache.flush();
  await cache.close();
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  assert.equal(lines.length, 2, 'header and one record');
  cache = await ChecksumCache.open(file);
  assert.equal(cache.get(relPath('same'))?.mtimeSec, 4999);
  await cache.close();
});

test('a file changed while it is hashed is not cached', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null);
  const f = await scanned(root, 'a', 'before', 50);
  await writeFile(join(root, 'a'), 'after, longer'); // changed after the scan
  const sum = await cache.checksumOf(root, f, 'sha512');
  assert.equal(sum, await hashFile(join(root, 'a'), 'sha512'));
  assert.equal(cache.get(f.path), undefined);
});

test('100,000 entries: load time and memory (printed, not asserted)', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  const digest = 'ab'.repeat(64);
  for (let i = 0; i < 100_000; i++) cache.record(relPath(`folder-${i % 300}/sub/file-number-${i}.txt`), 1_700_000_000 + i, digest, 'sha512');
  let started = performance.now();
  await cache.close();
  const writeMs = performance.now() - started;
  const fileBytes = (await stat(file)).size;
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  started = performance.now();
  cache = await ChecksumCache.open(file);
  const loadMs = performance.now() - started;
  global.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  assert.equal(cache.size, 100_000);
  t.diagnostic(`100k entries: file ${(fileBytes / 1048576).toFixed(1)} MiB, flush ${writeMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms, heap +${((heapAfter - heapBefore) / 1048576).toFixed(1)} MiB${global.gc ? '' : ' (approximate: run node with --expose-gc for exact figures)'}`);
  await cache.close();
});

test('a header cut short by a crash at creation reads as an empty cache and is rewritten', async (t) => {
  const { file } = await setup(t);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(file, '..'), { recursive: true }));
  await writeFile(file, '{"format":"escale-chec');
  let cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 0);
  cache.record(relPath('a'), 1, 'aa', 'sha512');
  await cache.close();
  cache = await ChecksumCache.open(file);
  assert.equal(cache.get(relPath('a'))?.checksum, 'aa');
  await cache.close();
  assert.equal(await readFile(`${file}.foreign`, 'utf8').catch(() => 'none'), 'none');
});
