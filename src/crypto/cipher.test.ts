import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Transform } from 'node:stream';
import { EscaleError } from '../core/errors.js';
import { createCipher, parseCipherAlgorithm } from './cipher.js';
import type { Cipher } from './cipher.js';
import { generateFernetKey } from './fernet.js';
import { runThrough } from './stream-runs.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/escale-0.7/', import.meta.url));
const context = { now: () => 1_700_000_000_000 };

function run(transform: Transform, data: Buffer): Promise<Buffer> {
  return runThrough(transform, [data]);
}

function hasCode(code: string) {
  return (e: unknown) => e instanceof EscaleError && e.code === code;
}

test('parseCipherAlgorithm maps the 0.7 values', () => {
  assert.equal(parseCipherAlgorithm(null), null);
  assert.equal(parseCipherAlgorithm(false), null);
  assert.equal(parseCipherAlgorithm('Off'), null);
  assert.equal(parseCipherAlgorithm(true), 'fernet');
  assert.equal(parseCipherAlgorithm('YES'), 'fernet');
  assert.equal(parseCipherAlgorithm('Fernet'), 'fernet');
  assert.equal(parseCipherAlgorithm('Blowfish.Cryptography'), 'blowfish.cryptography');
  assert.equal(parseCipherAlgorithm('blowfish.blowfish'), 'blowfish.blowfish');
  assert.equal(parseCipherAlgorithm('plain'), 'plain');
  assert.equal(parseCipherAlgorithm('native-drive'), 'native');
  assert.throws(() => parseCipherAlgorithm('aes'), (e: unknown) => hasCode('Config')(e) && (e as Error).message === "unsupported encryption algorithm 'aes'");
});

test('no algorithm gives no cipher; plain passes data through', async () => {
  assert.equal(createCipher({ algorithm: null, key: null }, context), null);
  const plain = createCipher({ algorithm: 'plain', key: null }, context)!;
  assert.equal(plain.encrypts, false);
  assert.deepEqual(await run(plain.encrypt(), Buffer.from('abc')), Buffer.from('abc'));
  assert.deepEqual(await run(plain.decrypt(), Buffer.from('abc')), Buffer.from('abc'));
});

test('native is refused with Unsupported, never clear text', () => {
  assert.throws(() => createCipher({ algorithm: 'native', key: Buffer.from('x') }, context), hasCode('Unsupported'));
});

test('a missing passphrase is a Config error; an unusable key is a Crypto error', () => {
  assert.throws(() => createCipher({ algorithm: 'fernet', key: null }, context), hasCode('Config'));
  assert.throws(() => createCipher({ algorithm: 'blowfish', key: Buffer.alloc(0) }, context), hasCode('Config'));
  assert.throws(() => createCipher({ algorithm: 'fernet', key: Buffer.from('not a key') }, context), hasCode('Crypto'));
  assert.throws(() => createCipher({ algorithm: 'blowfish', key: Buffer.from('abc') }, context), hasCode('Crypto'));
});

async function roundTrip(cipher: Cipher): Promise<void> {
  const plain = Buffer.from('some file content\n'.repeat(100));
  const data = await run(cipher.encrypt(), plain);
  assert.notDeepEqual(data, plain);
  assert.deepEqual(await run(cipher.decrypt(), data), plain);
}

test('fernet: integrity, round trip, token time from the context clock', async () => {
  const cipher = createCipher({ algorithm: 'fernet', key: Buffer.from(generateFernetKey() + '\n') }, context)!;
  assert.equal(cipher.name, 'fernet');
  assert.equal(cipher.hasIntegrity, true);
  await roundTrip(cipher);
  const token = await run(cipher.encrypt(), Buffer.from('x'));
  assert.equal(Buffer.from(token.toString('latin1'), 'base64url').readBigUInt64BE(1), 1_700_000_000n);
});

for (const name of ['blowfish', 'blowfish.cryptography', 'blowfish.blowfish'] as const) {
  test(`${name}: no integrity, round trip, reads the 0.7 fixture`, async () => {
    const key = readFileSync(join(FIXTURES, 'blowfish.key'));
    const cipher = createCipher({ algorithm: name, key }, context)!;
    assert.equal(cipher.name, name);
    assert.equal(cipher.hasIntegrity, false);
    await roundTrip(cipher);
    const data = readFileSync(join(FIXTURES, 'placeholder-blowfish', 'relay-after-push', 'dir', 'b.bin'));
    assert.deepEqual(await run(cipher.decrypt(), data), readFileSync(join(FIXTURES, 'placeholder-blowfish', 'source', 'dir', 'b.bin')));
  });
}
