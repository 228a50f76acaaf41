import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import type { RelPath } from '../core/relpath.js';
import { identityOf } from '../local/file-identity.js';
import { ConsistentRead, readProblem, type ReadState } from './consistent-read.js';

const PATH = 'a.bin' as RelPath;
const sha512 = (data: string | Buffer): string => createHash('sha512').update(data).digest('hex');

async function withFile(content: string, body: (file: string, before: ReadState) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'consistent-read-'));
  try {
    const file = join(dir, 'a.bin');
    await writeFile(file, content);
    await body(file, identityOf(await stat(file, { bigint: true })));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const statOf = (file: string) => async (): Promise<ReadState | undefined> => identityOf(await stat(file, { bigint: true }));

test('readProblem: byte count, identity (or size and mtime when ctime and inode are unknown), vanished', () => {
  const before = { size: 3, mtimeMs: 10, ctimeMs: 11, ino: '5' };
  assert.equal(readProblem(before, before, 3), undefined);
  assert.match(readProblem(before, before, 4) ?? '', /size changed while it was read \(4 bytes read, 3 expected\)/);
  assert.match(readProblem(before, { ...before, ctimeMs: 12 }, 3) ?? '', /modified while it was read/);
  assert.match(readProblem(before, { ...before, ino: '6' }, 3) ?? '', /modified/);
  assert.match(readProblem(before, undefined, 3) ?? '', /vanished/);
  assert.equal(readProblem({ size: 3, mtimeMs: 10 }, { ...before, ctimeMs: 99 }, 3), undefined, 'nothing known to compare but size and mtime');
});

test('a file read whole and unchanged passes; its checksum is the digest of the bytes read', async () => {
  await withFile('hello\n', async (file, before) => {
    const read = new ConsistentRead(PATH, before, { algorithm: 'sha512', announced: sha512('hello\n').toUpperCase(), stat: statOf(file) });
    await pipeline(createReadStream(file), read.transform(), new Writable({ write: (_c, _e, cb) => cb() }));
    await read.confirm();
    assert.equal(read.problem, undefined);
    assert.equal(read.checksum, sha512('hello\n'));
  });
});

test('bytes that do not have the announced checksum fail the stream, and confirm says why', async () => {
  await withFile('hello\n', async (file, before) => {
    const read = new ConsistentRead(PATH, before, { algorithm: 'sha512', announced: sha512('other'), stat: statOf(file) });
    await assert.rejects(pipeline(createReadStream(file), read.transform(), new Writable({ write: (_c, _e, cb) => cb() })), (e: unknown) => e instanceof EscaleError && e.code === 'Conflict');
    assert.match(read.problem ?? '', /does not match the checksum computed before it was read/);
    assert.equal(read.checksum, undefined);
    await assert.rejects(read.confirm(), /changed while it was sent/);
  });
});

test('a consumer that stops once it has `size` bytes (Content-Length) gets its verdict from confirm', async () => {
  for (const appendAfter of [false, true]) {
    await withFile('0123456789', async (file, before) => {
      const read = new ConsistentRead(PATH, before, { algorithm: 'sha512', announced: sha512('0123456789'), stat: statOf(file) });
      const transform = read.transform();
      // why: the verdict may also fail the stream once the put is over; its owner (pipeline) handles that.
      transform.on('error', () => undefined);
      createReadStream(file).pipe(transform);
      let got = 0;
      // why: reads exactly the announced size, then stops without waiting for the end.
      await new Promise<void>((resolve) => {
        transform.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got >= before.size) {
            transform.pause();
            resolve();
          }
        });
      });
      if (appendAfter) appendFileSync(file, 'more');
      if (appendAfter) await assert.rejects(read.confirm(), /changed while it was sent: it(s size changed| was modified)/);
      else await read.confirm();
      transform.destroy();
    });
  }
});

test('a file that grows past its size fails at once; confirm of a read that did not finish throws', async () => {
  await withFile('abc', async (file, before) => {
    appendFileSync(file, 'def');
    const read = new ConsistentRead(PATH, before, { algorithm: null, stat: statOf(file) });
    await assert.rejects(pipeline(createReadStream(file), read.transform(), new Writable({ write: (_c, _e, cb) => cb() })), /it grew while it was read \(more than 3 bytes\)/);
    const unread = new ConsistentRead(PATH, before, { algorithm: null, stat: statOf(file) });
    await assert.rejects(unread.confirm(), /its read did not finish/);
  });
});
