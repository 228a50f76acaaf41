import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscaleError } from '../core/errors.js';
import { createCipher } from '../crypto/cipher.js';
import { generateKeyFile, loadKeyFile } from './key-file.js';

const posix = process.platform !== 'win32';

function withDir(body: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'escale-key-'));
    try {
      await body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('generateKeyFile writes 44 base64url characters, no LF, mode 0600, usable by fernet and blowfish', withDir(async (dir) => {
  const path = join(dir, 'client.passphrase');
  await generateKeyFile(path, 'fernet');
  const text = readFileSync(path, 'latin1');
  assert.match(text, /^[A-Za-z0-9_-]{43}=$/);
  if (posix) assert.equal(statSync(path).mode & 0o777, 0o600);
  const loaded = await loadKeyFile(path);
  assert.equal(loaded.insecurePermissions, false);
  assert.equal(loaded.trailingNewline, false);
  assert.ok(createCipher({ algorithm: 'fernet', key: loaded.material }, { now: () => 0 }));
  assert.ok(createCipher({ algorithm: 'blowfish', key: loaded.material }, { now: () => 0 }));
}));

test('generateKeyFile refuses to overwrite and refuses keyless algorithms', withDir(async (dir) => {
  const path = join(dir, 'k');
  writeFileSync(path, 'precious');
  await assert.rejects(generateKeyFile(path, 'blowfish'), (e: unknown) => e instanceof EscaleError && e.code === 'AlreadyExists');
  assert.equal(readFileSync(path, 'latin1'), 'precious');
  await assert.rejects(generateKeyFile(join(dir, 'p'), 'plain'), (e: unknown) => e instanceof EscaleError && e.code === 'Usage');
}));

test('loadKeyFile returns exact bytes and flags loose permissions and a trailing newline', withDir(async (dir) => {
  const path = join(dir, 'k');
  writeFileSync(path, 'abcd\n');
  if (posix) chmodSync(path, 0o644);
  const loaded = await loadKeyFile(path);
  assert.deepEqual(loaded.material, Buffer.from('abcd\n'));
  assert.equal(loaded.trailingNewline, true);
  assert.equal(loaded.insecurePermissions, posix);
}));

test('loadKeyFile errors: missing file is NotFound, empty file is Crypto', withDir(async (dir) => {
  await assert.rejects(loadKeyFile(join(dir, 'missing')), (e: unknown) => e instanceof EscaleError && e.code === 'NotFound');
  writeFileSync(join(dir, 'empty'), '');
  await assert.rejects(loadKeyFile(join(dir, 'empty')), (e: unknown) => e instanceof EscaleError && e.code === 'Crypto');
}));
