import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EscaleError } from '../core/errors.js';
import { FERNET_SPEC } from './fernet-spec-vectors.js';
import { chunked, runThrough } from './stream-runs.js';
import { createFernetDecryptStream, createFernetEncryptStream, fernetDecrypt, fernetEncrypt, FernetKey, generateFernetKey } from './fernet.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/escale-0.7/', import.meta.url));

const { SPEC_SECRET, SPEC_TOKEN, SPEC_NOW, SPEC_IV, SPEC_INVALID } = FERNET_SPEC;

function isIntegrity(error: unknown): boolean {
  return error instanceof EscaleError && error.code === 'Integrity';
}

/** Expected token length for n plaintext bytes (relay-format.md P5.3). */
function tokenLength(n: number): number {
  return 4 * Math.ceil((57 + 16 * (Math.floor(n / 16) + 1)) / 3);
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    return statSync(join(dir, name)).isDirectory() ? listFiles(join(dir, name), rel) : [rel];
  });
}

test('Fernet spec generate.json vector is reproduced byte for byte (one-shot and stream)', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  assert.equal(fernetEncrypt(key, Buffer.from('hello'), SPEC_NOW, SPEC_IV), SPEC_TOKEN);
  const streamed = await runThrough(createFernetEncryptStream(key, { now: SPEC_NOW, iv: SPEC_IV }), [Buffer.from('hel'), Buffer.from('lo')]);
  assert.equal(streamed.toString('latin1'), SPEC_TOKEN);
});

test('Fernet spec verify.json vector decrypts, with and without TTL', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  const now = Date.parse('1985-10-26T01:20:01-07:00');
  assert.equal(fernetDecrypt(key, SPEC_TOKEN, { ttl: 60, now }).toString(), 'hello');
  assert.equal(fernetDecrypt(key, Buffer.from(SPEC_TOKEN)).toString(), 'hello');
  assert.equal((await runThrough(createFernetDecryptStream(key), chunked(Buffer.from(SPEC_TOKEN), [1, 2, 3]))).toString(), 'hello');
});

for (const [description, token, now, ttl] of SPEC_INVALID) {
  test(`Fernet spec invalid.json: ${description} is rejected with Integrity`, async () => {
    const key = FernetKey.parse(SPEC_SECRET);
    assert.throws(() => fernetDecrypt(key, token, { ttl, now: Date.parse(now) }), isIntegrity);
    // The stream ignores TTLs, as escale does: only the two time-based cases may pass there.
    if (!description.includes('TTL') && !description.includes('clock skew')) {
      await assert.rejects(runThrough(createFernetDecryptStream(key), [Buffer.from(token)]), isIntegrity);
    }
  });
}

test('key parsing follows Python: trailing LF and other non-alphabet bytes skipped, standard alphabet accepted', () => {
  const material = readFileSync(join(FIXTURES, 'fernet.key'));
  assert.equal(material.length, 45, 'the fixture key file ends with LF');
  FernetKey.parse(material);
  FernetKey.parse(' \r\n' + SPEC_SECRET + '\r\n');
  const standard = SPEC_SECRET.replace(/-/g, '+').replace(/_/g, '/');
  assert.equal(fernetDecrypt(FernetKey.parse(standard), SPEC_TOKEN).toString(), 'hello');
  const fresh = generateFernetKey();
  assert.match(fresh, /^[A-Za-z0-9_-]{43}=$/);
  assert.equal(FernetKey.fromBytes(Buffer.from(fresh, 'base64url')).toJSON(), '[redacted]');
});

for (const bad of ['', 'correct horse battery staple', SPEC_SECRET.slice(0, -1), SPEC_SECRET.slice(0, -2), SPEC_SECRET + 'AAAA', 'A=' + SPEC_SECRET]) {
  test(`key parsing rejects ${JSON.stringify(bad.slice(0, 12))}… (${bad.length} chars) with Crypto and no key in the message`, () => {
    assert.throws(
      () => FernetKey.parse(bad),
      (e: unknown) => e instanceof EscaleError && e.code === 'Crypto' && (bad.length < 8 || !e.message.includes(bad.slice(0, 8))),
    );
  });
}

test('a FernetKey never shows its bytes through inspect or JSON', async () => {
  const { inspect } = await import('node:util');
  const key = FernetKey.parse(SPEC_SECRET);
  assert.equal(inspect(key), 'FernetKey [redacted]');
  assert.equal(JSON.stringify({ key }), '{"key":"[redacted]"}');
});

test('fixture placeholder-fernet: every relay file decrypts to source/ (one-shot and stream), lengths as in relay-format.md P5.3', async () => {
  const key = FernetKey.parse(readFileSync(join(FIXTURES, 'fernet.key')));
  const relay = join(FIXTURES, 'placeholder-fernet', 'relay-after-push');
  const files = listFiles(relay).filter((f) => !f.split('/').pop()!.startsWith('.'));
  assert.deepEqual(files.sort(), ['a.txt', 'dir/b.bin', 'dir/sub/unicode-é.txt', 'empty.txt']);
  for (const file of files) {
    const token = readFileSync(join(relay, file));
    const source = readFileSync(join(FIXTURES, 'placeholder-fernet', 'source', file));
    assert.ok(token.toString('latin1').startsWith('gAAAAA'), file);
    assert.equal(token.length, tokenLength(source.length), file);
    assert.deepEqual(fernetDecrypt(key, token), source, file);
    assert.deepEqual(await runThrough(createFernetDecryptStream(key), chunked(token, [7, 1, 64])), source, file);
  }
});

test('fixture index-fernet: the update .data decrypts to a bzip2 stream (BZh9)', async () => {
  const key = FernetKey.parse(readFileSync(join(FIXTURES, 'fernet.key')));
  const relay = join(FIXTURES, 'index-fernet', 'relay-after-push');
  const data = readdirSync(relay).filter((f) => f.endsWith('.data'));
  assert.equal(data.length, 1);
  const token = readFileSync(join(relay, data[0]!));
  const plain = await runThrough(createFernetDecryptStream(key), chunked(token, [1000]));
  assert.equal(plain.subarray(0, 4).toString('latin1'), 'BZh9');
  assert.equal(token.length, tokenLength(plain.length));
  assert.deepEqual(fernetDecrypt(key, token), plain);
});

for (const size of [0, 1, 15, 16, 17, 1024 * 1024]) {
  test(`stream round trip of ${size} B with odd chunk boundaries matches the one-shot token`, async () => {
    const key = FernetKey.parse(generateFernetKey());
    const plain = Buffer.alloc(size);
    for (let i = 0; i < size; i++) plain[i] = (i * 7 + (i >> 8)) & 0xff;
    const now = 1_700_000_000_123;
    const iv = Buffer.alloc(16, 0xa5);
    const token = await runThrough(createFernetEncryptStream(key, { now, iv }), chunked(plain, [1, 7, 13, 4097, 3]));
    assert.equal(token.toString('latin1'), fernetEncrypt(key, plain, now, iv));
    assert.equal(token.length, tokenLength(size));
    assert.ok(!token.includes(0x0a), 'no LF');
    assert.deepEqual(await runThrough(createFernetDecryptStream(key), chunked(token, [5, 1, 3, 1000, 2])), plain);
    assert.deepEqual(fernetDecrypt(key, token), plain);
  });
}

test('the encrypt stream uses a random IV by default and records the time in seconds', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  const a = await runThrough(createFernetEncryptStream(key, { now: 1_700_000_000_999 }), [Buffer.from('x')]);
  const b = await runThrough(createFernetEncryptStream(key, { now: 1_700_000_000_999 }), [Buffer.from('x')]);
  assert.notDeepEqual(a, b);
  const raw = Buffer.from(a.toString('latin1'), 'base64url');
  assert.equal(raw.readBigUInt64BE(1), 1_700_000_000n);
});

test('tampered, truncated, foreign-key and malformed tokens make the decrypt stream error with Integrity, naming no key', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  const other = FernetKey.parse(generateFernetKey());
  const plain = Buffer.alloc(5000, 0x42);
  const token = Buffer.from(fernetEncrypt(key, plain, 1_700_000_000_000));
  const flipped = Buffer.from(token);
  const mid = flipped.length >> 1;
  flipped[mid] = flipped[mid] === 0x41 ? 0x42 : 0x41;
  const cases: [string, Buffer, FernetKey][] = [
    ['one byte flipped in the middle', flipped, key],
    ['last 4 characters cut', token.subarray(0, token.length - 4), key],
    ['last character cut', token.subarray(0, token.length - 1), key],
    ['cut to the header', token.subarray(0, 40), key],
    ['HMAC removed', Buffer.from(Buffer.from(token.toString(), 'base64url').subarray(0, -32).toString('base64')), key],
    ['wrong key', token, other],
    ['bad version', Buffer.from('AAAA' + token.toString('latin1').slice(4)), key],
    ['empty', Buffer.alloc(0), key],
    ['invalid character', Buffer.from(token.toString('latin1').replace(/^(.{50})./, '$1%')), key],
    ['data after padding', Buffer.concat([token, Buffer.from('QUJD')]), key],
    ['missing padding', Buffer.from(token.toString('latin1').replace(/=+$/, '')), key],
  ];
  for (const [what, input, useKey] of cases) {
    await assert.rejects(runThrough(createFernetDecryptStream(useKey), chunked(input, [333])), (e: unknown) => {
      assert.ok(isIntegrity(e), `${what}: ${String(e)}`);
      const message = (e as Error).message;
      assert.ok(!message.includes(SPEC_SECRET.slice(0, 10)), `${what}: message names the key`);
      assert.ok(!/[A-Za-z0-9_-]{20,}/.test(message), `${what}: message contains key-like text: ${message}`);
      return true;
    }, what);
    assert.throws(() => fernetDecrypt(useKey, input), isIntegrity, what);
  }
});

test('whitespace inside a token is ignored (as Python does), including a trailing LF', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  const wrapped = SPEC_TOKEN.replace(/(.{20})/g, '$1\r\n') + '\n';
  assert.equal((await runThrough(createFernetDecryptStream(key), chunked(Buffer.from(wrapped), [9]))).toString(), 'hello');
});

test('large chunks (the native decoding path) still reject bad bytes and accept both alphabets and whitespace', async () => {
  const key = FernetKey.parse(SPEC_SECRET);
  const plain = Buffer.alloc(200_000, 0x5a);
  for (let i = 0; i < plain.length; i += 7) plain[i] = i & 0xff;
  const text = fernetEncrypt(key, plain, 1_700_000_000_000);
  const sizes = [65_536, 4_099, 1_027];
  const good = [
    text.replace(/-/g, '+').replace(/_/g, '/'),
    text.replace(/(.{5000})/g, '$1\n'),
    text.slice(0, 70_001) + ' \t' + text.slice(70_001),
  ];
  for (const input of good) {
    assert.deepEqual(await runThrough(createFernetDecryptStream(key), chunked(Buffer.from(input), sizes)), plain);
    assert.deepEqual(fernetDecrypt(key, input), plain);
  }
  const bad = [
    text.slice(0, 70_001) + '%' + text.slice(70_002),
    text.slice(0, 70_000) + '=' + text.slice(70_001),
    text.slice(0, 2_000) + '\u00ff' + text.slice(2_001),
    text.slice(0, 40_000) + '.' + text.slice(40_001),
  ];
  for (const input of bad) {
    await assert.rejects(runThrough(createFernetDecryptStream(key), chunked(Buffer.from(input, 'latin1'), sizes)), isIntegrity);
    assert.throws(() => fernetDecrypt(key, Buffer.from(input, 'latin1')), isIntegrity);
  }
});
