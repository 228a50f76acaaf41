import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relPath } from '../core/relpath.js';
import { BaseStore, type BaseVersion } from './base-store.js';
import { RACY_MS } from './file-identity.js';

async function setup(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'escale-bs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { dir, file: join(dir, 'data', 'bs0123') };
}

/** A clock far from every ctime used here, so that identities are never racy. */
const settled = { now: () => 9e15 };
const CONTEXT = 'alice@file:///relay';
const open = (file: string, extra: Partial<Parameters<typeof BaseStore.open>[1]> = {}): Promise<BaseStore> => BaseStore.open(file, { context: CONTEXT, ...settled, ...extra });

const A = relPath('a.txt');
const B = relPath('dir/b.txt');
const C = relPath('dir/sub/ünïcode c.txt');
const v = (n: number, extra: Partial<BaseVersion> = {}): BaseVersion => ({ checksum: `${n}`.padStart(4, 'a'), size: n, mtimeMs: n * 1000 + 0.5, ctimeMs: n * 1000 + 0.25, ino: `${n}`, pusher: 'alice', timestamp: n, ...extra });

test('agreements and forgets survive close and reopen; the file is private', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.agree(B, v(2, { checksum: 'ABCD' }));
  store.agree(C, v(3));
  store.forget(C);
  store.close();
  store = await open(file);
  assert.deepEqual(store.get(A), v(1));
  assert.deepEqual(store.get(B), v(2, { checksum: 'abcd' }), 'checksums are kept in lower case');
  assert.equal(store.get(C), undefined);
  assert.deepEqual([...store.versions.keys()].sort(), [A, B]);
  store.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a base without checksum (checksums off) keeps pusher and timestamp; a record with neither is refused on load', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  const noSum: BaseVersion = { size: 4, mtimeMs: 5000, pusher: 'bob', timestamp: 5 };
  store.agree(A, noSum);
  store.close();
  await appendFile(file, `${JSON.stringify({ p: B, s: 1, m: 1 })}\n`);
  store = await open(file);
  assert.deepEqual(store.get(A), noSum);
  assert.equal(store.get(B), undefined, 'nothing to compare the relay with: no base');
  store.close();
});

test('a racy identity (mtime and ctime within RACY_MS of now) keeps only size and mtime; a downloaded file (old mtime) keeps it', async (t) => {
  const { file } = await setup(t);
  const store = await BaseStore.open(file, { context: CONTEXT, now: () => 1000 + RACY_MS - 1 });
  store.agree(A, v(1));
  const { ctimeMs, ino, ...rest } = v(1);
  assert.deepEqual([ctimeMs, ino], [1000.25, '1']);
  assert.deepEqual(store.get(A), rest);
  const downloaded = v(1, { mtimeMs: -5_000_000 });
  store.agree(B, downloaded);
  assert.deepEqual(store.get(B), downloaded);
  store.close();
});

test('a record cut at any byte by a crash never leaves the older base of its path', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.agree(B, v(2));
  store.close();
  const intact = await readFile(file);
  store = await open(file);
  store.agree(A, v(7));
  store.close();
  const full = await readFile(file);
  const pathEnd = intact.length + Buffer.byteLength(`{"p":${JSON.stringify(A)}`);
  for (let cut = intact.length; cut < full.length; cut++) {
    await writeFile(file, full.subarray(0, cut));
    store = await open(file);
    if (cut === intact.length) {
      assert.deepEqual([store.get(A), store.get(B)], [v(1), v(2)], 'nothing of the append reached the disk: the state before it');
    } else if (cut < pathEnd) {
      assert.equal(store.versions.size, 0, `cut at ${cut}: the torn record names no readable path, every base is dropped`);
    } else {
      assert.equal(store.get(A), undefined, `cut at ${cut}: the torn newer record drops the base of its path`);
      assert.deepEqual(store.get(B), v(2), `cut at ${cut}: the other path keeps its base`);
    }
    store.close();
  }
  await writeFile(file, full);
  store = await open(file);
  assert.deepEqual(store.get(A), v(7));
  store.close();
});

test('a torn line whose path cannot be read drops every base; the file is rewritten and appends stay readable', async (t) => {
  const { dir, file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.agree(B, v(2));
  store.close();
  await appendFile(file, '{"p":"dir/half');
  store = await open(file);
  assert.equal(store.versions.size, 0, 'the torn record may have been about any path');
  store.agree(C, v(3));
  store.close();
  store = await open(file);
  assert.deepEqual([...store.versions.keys()], [C]);
  store.close();
  assert.deepEqual(await readdir(join(dir, 'data')), ['bs0123'], 'no temporary left behind');
});

test('malformed records in the middle drop the base of their path only', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.agree(B, v(2));
  store.agree(C, v(3));
  store.close();
  const lines = [
    JSON.stringify({ p: A, c: 'NOT HEX', s: 1, m: 1, u: 'x' }),
    JSON.stringify({ p: B, s: -1, m: 1, u: 'x' }),
    '{"p":"a.txt", garbage',
    JSON.stringify({ p: 'new.txt', c: 'aa', s: 1, m: 1 }),
  ];
  await appendFile(file, `${lines.join('\n')}\n`);
  store = await open(file);
  assert.equal(store.get(A), undefined);
  assert.equal(store.get(B), undefined);
  assert.deepEqual(store.get(C), v(3));
  assert.deepEqual(store.get(relPath('new.txt')), { checksum: 'aa', size: 1, mtimeMs: 1 });
  store.close();
});

test('a foreign file, or a base file of another version, is moved aside and holds no base', async (t) => {
  const { file } = await setup(t);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, 'GDBM binary stuff');
  let store = await open(file);
  assert.equal(store.versions.size, 0);
  assert.equal(await readFile(`${file}.foreign`, 'utf8'), 'GDBM binary stuff');
  store.close();
  const later = `${JSON.stringify({ format: 'escale-base-state', version: 2 })}\n${JSON.stringify({ context: 'x' })}\n${JSON.stringify({ p: A, c: 'aa', s: 1, m: 1 })}\n`;
  await writeFile(file, later);
  store = await open(file);
  assert.equal(store.get(A), undefined);
  assert.equal(await readFile(`${file}.foreign`, 'utf8'), later);
  store.close();
});

test('a base written for another context (client, relay, algorithm...) is no base: the file starts again', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.close();
  store = await open(file, { context: 'alice@ftp://elsewhere' });
  assert.equal(store.get(A), undefined);
  store.agree(B, v(2));
  store.close();
  store = await open(file, { context: 'alice@ftp://elsewhere' });
  assert.deepEqual([...store.versions.keys()], [B]);
  store.close();
  assert.doesNotMatch(await readFile(file, 'utf8'), /elsewhere|relay/, 'the context is stored as a digest');
});

test('records before the context record, or two context records, are doubts: no base at all', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  store.agree(A, v(1));
  store.close();
  const text = await readFile(file, 'utf8');
  const [header, context, ...rest] = text.trimEnd().split('\n');
  await writeFile(file, `${[header, ...rest, context].join('\n')}\n`);
  store = await open(file);
  assert.equal(store.versions.size, 0);
  store.close();
  await writeFile(file, `${[header, context, ...rest, context].join('\n')}\n`);
  store = await open(file);
  assert.equal(store.versions.size, 0);
  store.close();
});

test('read-only (dry run) and in-memory stores never write', async (t) => {
  const { dir, file } = await setup(t);
  const readOnly = await open(file, { readOnly: true });
  readOnly.agree(A, v(1));
  readOnly.flush();
  readOnly.close();
  const memory = BaseStore.inMemory();
  memory.agree(A, v(1));
  memory.flush();
  assert.deepEqual(memory.get(A)?.checksum, v(1).checksum);
  assert.deepEqual(await readdir(dir), []);
});

test('the file is compacted when it grows much larger than the state', async (t) => {
  const { file } = await setup(t);
  let store = await open(file);
  for (let i = 0; i < 3000; i++) store.agree(A, v(i));
  store.flush();
  store.close();
  assert.equal((await readFile(file, 'utf8')).trimEnd().split('\n').length, 3, 'header, context and one record');
  store = await open(file);
  assert.deepEqual(store.get(A), v(2999));
  store.close();
});

test('a header cut short at creation reads as an empty store', async (t) => {
  const { file } = await setup(t);
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, '{"format":"escale-ba');
  const store = await open(file);
  assert.equal(store.versions.size, 0);
  store.agree(A, v(1));
  store.close();
  await assert.rejects(stat(`${file}.foreign`), { code: 'ENOENT' }, 'nothing was moved aside');
  const reopened = await open(file);
  assert.deepEqual(reopened.get(A), v(1));
  reopened.close();
});
