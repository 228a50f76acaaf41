import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rename, rm, stat, utimes, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChecksumCache } from './checksum-cache.js';
import { identityOf, RACY_MS, type FileIdentity } from './file-identity.js';
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

/** Writes a file, sets its mtime and returns it as the scanner sees it (identity included). */
async function scanned(root: string, path: string, content: string, mtimeSec: number): Promise<ScannedFile> {
  await writeFile(join(root, path), content);
  await utimes(join(root, path), mtimeSec, mtimeSec);
  return { path: relPath(path), ...identityOf(await stat(join(root, path), { bigint: true })) };
}

/** A made-up identity for records that are only read back (never compared with a real file). */
const id = (n: number): FileIdentity => ({ size: n, mtimeMs: n * 1000 + 0.5, ctimeMs: n * 1000 + 0.25, ino: String(n) });

const SHA = (text: string): Promise<string> => import('node:crypto').then((c) => c.createHash('sha512').update(text).digest('hex'));

/** A clock well past every ctime of the test, so that no entry is racy. */
const later = { now: () => Date.now() + 60_000 };

test('same size, mtime, ctime and inode: the cached checksum is reused without reading the file', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const f = await scanned(root, 'a', 'content', 1_000_000);
  cache.record(f.path, f as FileIdentity, 'abc123', 'sha512');
  assert.equal(cache.cachedChecksum(f, 'sha512'), 'abc123');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), 'abc123');
});

test('a file hashed once is cached for its identity, and found again without reading', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const f = await scanned(root, 'a', 'content', 2_000_000);
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('content'));
  assert.deepEqual({ ...cache.get(f.path) }, { size: f.size, mtimeMs: f.mtimeMs, ctimeMs: f.ctimeMs, ino: f.ino, checksum: await SHA('content'), algorithm: 'sha512' });
  assert.equal(cache.cachedChecksum(f, 'sha512'), await SHA('content'));
});

test('an edit that moves the mtime back (same size): hashed again (0.7 kept the stale checksum)', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const first = await scanned(root, 'a', 'version 1', 3_000_000);
  assert.equal(await cache.checksumOf(root, first, 'sha512'), await SHA('version 1'));
  const back = await scanned(root, 'a', 'version 2', 2_000_000);
  assert.equal(back.size, first.size);
  assert.equal(cache.cachedChecksum(back, 'sha512'), undefined);
  assert.equal(await cache.checksumOf(root, back, 'sha512'), await SHA('version 2'));
});

test('same size and same mtime, other content (mtime put back by the editor): the ctime tells, hashed again', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const first = await scanned(root, 'a', 'aaaa', 4_000_000);
  assert.equal(await cache.checksumOf(root, first, 'sha512'), await SHA('aaaa'));
  await new Promise((r) => setTimeout(r, 20)); // why: a later ctime tick
  const second = await scanned(root, 'a', 'bbbb', 4_000_000);
  assert.equal(second.mtimeMs, first.mtimeMs);
  assert.notEqual(second.ctimeMs, first.ctimeMs);
  assert.equal(cache.cachedChecksum(second, 'sha512'), undefined);
  assert.equal(await cache.checksumOf(root, second, 'sha512'), await SHA('bbbb'));
});

test('a file replaced by a rename (another inode) with the same size, mtime and ctime is hashed again', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const first = await scanned(root, 'a', 'old!', 5_000_000);
  cache.record(first.path, first as FileIdentity, await SHA('old!'), 'sha512');
  await writeFile(join(root, 'b'), 'new!');
  await rename(join(root, 'b'), join(root, 'a'));
  const replaced = { ...first, ino: `${first.ino}0` };
  assert.equal(cache.cachedChecksum(replaced, 'sha512'), undefined);
  assert.equal(await cache.checksumOf(root, replaced, 'sha512'), await SHA('new!'));
});

test('a scanned file without ctime or inode never uses the cache', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const f = await scanned(root, 'a', 'abc', 6_000_000);
  cache.record(f.path, f as FileIdentity, 'stale', 'sha512');
  const partial: ScannedFile = { path: f.path, size: f.size, mtimeMs: f.mtimeMs };
  assert.equal(cache.cachedChecksum(partial, 'sha512'), undefined);
  assert.equal(await cache.checksumOf(root, partial, 'sha512'), await SHA('abc'));
});

test('a file whose ctime is within RACY_MS of its hashing is returned but not cached', async (t) => {
  const { root } = await setup(t);
  const f = await scanned(root, 'a', 'fresh', 7_000_000);
  const now = await ChecksumCache.open(null);
  assert.equal(await now.checksumOf(root, f, 'sha512'), await SHA('fresh'));
  assert.equal(now.get(f.path), undefined, 'just written: a write in the same tick could follow unseen');
  const settled = await ChecksumCache.open(null, { now: () => (f.ctimeMs ?? 0) + RACY_MS });
  await settled.checksumOf(root, f, 'sha512');
  assert.equal(settled.get(f.path)?.checksum, await SHA('fresh'));
});

test('an entry of another algorithm is not reused; no entry means hashing', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
  const f = await scanned(root, 'a', 'abc', 10);
  cache.record(f.path, f as FileIdentity, 'md5sum', 'md5');
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('abc'));
  cache.forget(f.path);
  assert.equal(cache.get(f.path), undefined);
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('abc'));
});

test('persistence: entries survive close and reopen; forget is persisted; the file is JSON lines', async (t) => {
  const { root, file } = await setup(t);
  const f = await scanned(root, 'dir-a', 'one', 100);
  let cache = await ChecksumCache.open(file, { algorithm: 'sha512', ...later });
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('one'));
  cache.record(relPath('b/c'), id(200), 'ABCDEF');
  cache.record(relPath('gone'), id(300), 'dead');
  cache.forget(relPath('gone'));
  await cache.close();
  const text = await readFile(file, 'utf8');
  assert.match(text.split('\n')[0] ?? '', /escale-checksum-cache/);
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 2);
  assert.deepEqual({ ...cache.get(relPath('b/c')) }, { ...id(200), checksum: 'abcdef', algorithm: 'sha512' });
  assert.equal(cache.get(relPath('gone')), undefined);
  assert.equal(await cache.checksumOf(root, f, 'sha512'), await SHA('one'));
  await cache.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a torn last line is ignored on load, and later appends stay readable', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  cache.record(relPath('a'), id(1), 'aa', 'sha512');
  cache.record(relPath('b'), id(2), 'bb', 'sha512');
  await cache.close();
  await appendFile(file, '{"p":"c","s":3,"m":3,"c":"c'); // a crash in the middle of an append
  cache = await ChecksumCache.open(file);
  assert.equal(cache.size, 2);
  assert.equal(cache.get(relPath('c')), undefined);
  cache.record(relPath('d'), id(4), 'dd', 'sha512');
  await cache.close();
  cache = await ChecksumCache.open(file);
  assert.deepEqual([...['a', 'b', 'd']].map((p) => cache.get(p as RelPath)?.checksum), ['aa', 'bb', 'dd']);
  await cache.close();
  assert.deepEqual((await readdir(join(file, '..'))).sort(), ['cc0123'], 'no temporary left behind');
});

test('malformed lines in the middle are skipped; a foreign file is moved aside, not destroyed', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  cache.record(relPath('a'), id(1), 'aa', 'sha512');
  await cache.close();
  await appendFile(file, 'garbage\n{"p":7,"s":1,"m":1,"t":1,"i":"1","c":"aa"}\n{"p":"x","s":1,"m":"1","t":1,"i":"1","c":"aa"}\n{"p":"b","s":2,"m":2,"t":2,"i":"2","c":"bb"}\n');
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
  memory.record(relPath('x'), id(1), 'aa');
  await memory.close();
  assert.deepEqual(await readdir(dir), ['placeholder', 'root']);
  await cache.close();
});

test('the file is compacted when it grows much larger than the cache', async (t) => {
  const { file } = await setup(t);
  let cache = await ChecksumCache.open(file);
  for (let i = 0; i < 5000; i++) cache.record(relPath('same'), id(i), 'aa', 'sha512');
  await cache.flush();
  await cache.close();
  const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  assert.equal(lines.length, 2, 'header and one record');
  cache = await ChecksumCache.open(file);
  assert.equal(cache.get(relPath('same'))?.mtimeMs, id(4999).mtimeMs);
  await cache.close();
});

test('a file changed while it is hashed is not cached', async (t) => {
  const { root } = await setup(t);
  const cache = await ChecksumCache.open(null, later);
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
  for (let i = 0; i < 100_000; i++) cache.record(relPath(`folder-${i % 300}/sub/file-number-${i}.txt`), id(1_700_000_000 + i), digest, 'sha512');
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
  cache.record(relPath('a'), id(1), 'aa', 'sha512');
  await cache.close();
  cache = await ChecksumCache.open(file);
  assert.equal(cache.get(relPath('a'))?.checksum, 'aa');
  await cache.close();
  assert.equal(await readFile(`${file}.foreign`, 'utf8').catch(() => 'none'), 'none');
});

test('entries of the older format (integer-second mtime only) are dropped and the file rewritten without them', async (t) => {
  const { file } = await setup(t);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(file, '..'), { recursive: true }));
  await writeFile(file, '{"format":"escale-checksum-cache","version":1}\n{"p":"old","m":100,"c":"aa","a":"sha512"}\n');
  const cache = await ChecksumCache.open(file);
  assert.equal(cache.get(relPath('old')), undefined);
  assert.doesNotMatch(await readFile(file, 'utf8'), /"old"/);
  await cache.close();
});
