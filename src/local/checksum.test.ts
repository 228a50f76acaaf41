import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile, nodeHashName } from './checksum.js';

test('hashFile gives the check values of relay-format.md P6.1 (SHA-512, lowercase hex)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-hash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'hello'), 'hello\n');
  await writeFile(join(dir, 'bytes'), Buffer.from([...Array(16).keys()]));
  const hello = await hashFile(join(dir, 'hello'), 'sha512');
  assert.equal(hello.length, 128);
  assert.ok(hello.startsWith('e7c22b99') && hello.endsWith('bc019629'));
  const bytes = await hashFile(join(dir, 'bytes'), 'sha512');
  assert.ok(bytes.startsWith('daa295be') && bytes.endsWith('d0762403'));
  assert.equal(await hashFile(join(dir, 'hello'), 'md5'), 'b1946ac92492d2347c6235b4d2611184');
});

test('hashFile translates errors: NotFound, Config for an unknown algorithm, Aborted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-hash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'f'), 'x');
  await assert.rejects(hashFile(join(dir, 'missing'), 'sha512'), { code: 'NotFound' });
  await assert.rejects(hashFile(join(dir, 'f'), 'nosuchhash'), { code: 'Config' });
  await assert.rejects(hashFile(join(dir, 'f'), 'sha512', AbortSignal.abort()), { code: 'Aborted' });
});

test('Python hashlib names map to Node names', () => {
  assert.equal(nodeHashName('sha3_256'), 'sha3-256');
  assert.equal(nodeHashName('SHA256'), 'sha256');
  assert.equal(nodeHashName('blake2b'), 'blake2b512');
  assert.equal(nodeHashName('whirlpool-x'), undefined);
});
