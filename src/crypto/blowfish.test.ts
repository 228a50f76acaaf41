import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EscaleError } from '../core/errors.js';
import {
  BlowfishBlock,
  blowfishDecrypt,
  blowfishEncrypt,
  createBlowfishDecryptStream,
  createBlowfishEncryptStream,
} from './blowfish.js';
import { piHexWords } from './pi-hex-words.js';
import { chunked, runThrough } from './stream-runs.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/escale-0.7/', import.meta.url));

// Eric Young's Blowfish ECB test vectors (key, plaintext, ciphertext), as published with the algorithm.
const ECB_VECTORS: [string, string, string][] = [
  ['0000000000000000', '0000000000000000', '4EF997456198DD78'],
  ['FFFFFFFFFFFFFFFF', 'FFFFFFFFFFFFFFFF', '51866FD5B85ECB8A'],
  ['3000000000000000', '1000000000000001', '7D856F9A613063F2'],
  ['1111111111111111', '1111111111111111', '2466DD878B963C9D'],
  ['0123456789ABCDEF', '1111111111111111', '61F9C3802281B096'],
  ['1111111111111111', '0123456789ABCDEF', '7D0CC630AFDA1EC7'],
  ['FEDCBA9876543210', '0123456789ABCDEF', '0ACEAB0FC6A0A28D'],
  ['7CA110454A1A6E57', '01A1D6D039776742', '59C68245EB05282B'],
  ['0131D9619DC1376E', '5CD54CA83DEF57DA', 'B1B8CC0B250F09A0'],
  ['07A1133E4A0B2686', '0248D43806F67172', '1730E5778BEA1DA4'],
  ['3849674C2602319E', '51454B582DDF440A', 'A25E7856CF2651EB'],
  ['04B915BA43FEB5B6', '42FD443059577FA2', '353882B109CE8F1A'],
  ['0113B970FD34F2CE', '059B5E0851CF143A', '48F4D0884C379918'],
  ['0170F175468FB5E6', '0756D8E0774761D2', '432193B78951FC98'],
  ['43297FAD38E373FE', '762514B829BF486A', '13F04154D69D1AE5'],
  ['07A7137045DA2A16', '3BDD119049372802', '2EEDDA93FFD39C79'],
  ['04689104C2FD3B2F', '26955F6835AF609A', 'D887E0393C2DA6E3'],
  ['37D06BB516CB7546', '164D5E404F275232', '5F99D04F5B163969'],
  ['1F08260D1AC2465E', '6B056E18759F5CCA', '4A057A3B24D3977B'],
  ['584023641ABA6176', '004BD6EF09176062', '452031C1E4FADA8E'],
  ['025816164629B007', '480D39006EE762F2', '7555AE39F59B87BD'],
  ['49793EBC79B3258F', '437540C8698F3CFA', '53C55F9CB49FC019'],
  ['4FB05E1515AB73A7', '072D43A077075292', '7A8E7BFA937E89A3'],
  ['49E95D6D4CA229BF', '02FE55778117F12A', 'CF9C5D7A4986ADB5'],
  ['018310DC409B26D6', '1D9D5C5018F728C2', 'D1ABB290658BC778'],
  ['1C587F1C13924FEF', '305532286D6F295A', '55CB3774D13EF201'],
  ['0101010101010101', '0123456789ABCDEF', 'FA34EC4847B268B2'],
  ['1F1F1F1F0E0E0E0E', '0123456789ABCDEF', 'A790795108EA3CAE'],
  ['E0FEE0FEF1FEF1FE', '0123456789ABCDEF', 'C39E072D9FAC631D'],
  ['0000000000000000', 'FFFFFFFFFFFFFFFF', '014933E0CDAFF6E4'],
  ['FFFFFFFFFFFFFFFF', '0000000000000000', 'F21E9A77B71C49BC'],
  ['0123456789ABCDEF', '0000000000000000', '245946885754369A'],
  ['FEDCBA9876543210', 'FFFFFFFFFFFFFFFF', '6B5C5A9C5D9E0A5A'],
];

// Eric Young's variable-key set: key = the first n bytes of VARIABLE_KEY, plaintext FEDCBA9876543210.
// Lengths 1-3 are left out: escale (like Python's backends) accepts 4 to 56 key bytes.
const VARIABLE_KEY = 'F0E1D2C3B4A5968778695A4B3C2D1E0F0011223344556677';
const VARIABLE_KEY_CIPHERS = [
  'F9AD597C49DB005E', 'E91D21C1D961A6D6', 'E9C2B70A1BC65CF3', 'BE1E639408640F05', 'B39E44481BDB1E6E', '9457AA83B1928C0D',
  '8BB77032F960629D', 'E87A244E2CC85E82', '15750E7A4F4EC577', '122BA70B3AB64AE0', '3A833C9AFFC537F6', '9409DA87A90F6BF2',
  '884F80625060B8B4', '1F85031C19E11968', '79D9373A714CA34F', '93142887EE3BE15C', '03429E838CE2D14B', 'A4299E27469FF67B',
  'AFD5AED1C1BC96A8', '10851C0E3858DA9F', 'E6F51ED79B9DB21F', '64A6E14AFD36B46F', '80C7D7D45A5479AD', '05044B62FA52D080',
];

test('the initial state is the hexadecimal digits of pi', () => {
  const words = piHexWords(18 + 1024);
  assert.equal(words[0], 0x243f6a88);
  assert.equal(words[1], 0x85a308d3);
  assert.equal(words[17], 0x8979fb1b, 'last P-array word');
  assert.equal(words[18], 0xd1310ba6, 'first S-box word');
  assert.equal(words[18 + 1023], 0x3ac372e6, 'last S-box word');
});

test('Blowfish ECB matches Eric Young\'s fixed-key vectors', () => {
  for (const [key, plain, cipher] of ECB_VECTORS) {
    const got = new BlowfishBlock(Buffer.from(key, 'hex')).encryptBlock(Buffer.from(plain, 'hex'));
    assert.equal(got.toString('hex').toUpperCase(), cipher, `key ${key} plaintext ${plain}`);
  }
});

test('Blowfish ECB matches Eric Young\'s variable-key-length vectors (4 to 24 bytes)', () => {
  for (let n = 4; n <= 24; n++) {
    const got = new BlowfishBlock(Buffer.from(VARIABLE_KEY, 'hex').subarray(0, n)).encryptBlock(Buffer.from('FEDCBA9876543210', 'hex'));
    assert.equal(got.toString('hex').toUpperCase(), VARIABLE_KEY_CIPHERS[n - 1], `key length ${n}`);
  }
});

test('keys outside 4..56 bytes are refused with Crypto, naming only the length', () => {
  for (const length of [0, 3, 57]) {
    assert.throws(() => new BlowfishBlock(Buffer.alloc(length, 0x61)), (e: unknown) => e instanceof EscaleError && e.code === 'Crypto' && !e.message.includes('aaa'));
  }
  new BlowfishBlock(Buffer.alloc(56));
});

test('OFB layout: IV || plaintext XOR E(IV), E(E(IV)), ... with the last block cut short', () => {
  const key = Buffer.from('AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=');
  const iv = Buffer.from('0011223344556677', 'hex');
  const plain = Buffer.from('twenty-one bytes long');
  const block = new BlowfishBlock(key);
  const o1 = block.encryptBlock(iv);
  const o2 = block.encryptBlock(o1);
  const o3 = block.encryptBlock(o2);
  const keystream = Buffer.concat([o1, o2, o3]);
  const expected = Buffer.concat([iv, Buffer.from(plain.map((b, i) => b ^ keystream[i]!))]);
  assert.deepEqual(blowfishEncrypt(key, plain, { iv }), expected);
  assert.equal(blowfishEncrypt(key, Buffer.alloc(0)).length, 8);
});

test('fixture placeholder-blowfish: every relay file decrypts to source/ with the raw key bytes', async () => {
  const key = readFileSync(join(FIXTURES, 'blowfish.key'));
  const relay = join(FIXTURES, 'placeholder-blowfish', 'relay-after-push');
  const walk = (dir: string, prefix = ''): string[] => readdirSync(dir).flatMap((name) => {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    return statSync(join(dir, name)).isDirectory() ? walk(join(dir, name), rel) : [rel];
  });
  const files = walk(relay).filter((f) => !f.split('/').pop()!.startsWith('.'));
  assert.equal(files.length, 4);
  for (const file of files) {
    const data = readFileSync(join(relay, file));
    const source = readFileSync(join(FIXTURES, 'placeholder-blowfish', 'source', file));
    assert.equal(data.length, source.length + 8, file);
    assert.deepEqual(blowfishDecrypt(key, data), source, file);
    assert.deepEqual(await runThrough(createBlowfishDecryptStream(key), chunked(data, [3, 1, 5, 11])), source, file);
    // Re-encrypting with the file's IV gives the very same bytes.
    assert.deepEqual(await runThrough(createBlowfishEncryptStream(key, { iv: data.subarray(0, 8) }), chunked(source, [7, 2])), data, file);
  }
});

for (const size of [0, 1, 7, 8, 9, 1024 * 1024 + 3]) {
  test(`Blowfish stream round trip of ${size} B with odd chunk boundaries`, async () => {
    const key = Buffer.from('a passphrase typed by hand');
    const plain = Buffer.alloc(size);
    for (let i = 0; i < size; i++) plain[i] = (i * 31 + 7) & 0xff;
    const data = await runThrough(createBlowfishEncryptStream(key), chunked(plain, [1, 7, 13, 4097]));
    assert.equal(data.length, size + 8);
    assert.deepEqual(await runThrough(createBlowfishDecryptStream(key), chunked(data, [5, 3, 1000])), plain);
    assert.deepEqual(blowfishDecrypt(key, data), plain);
  });
}

test('Blowfish decryption of data shorter than the IV errors with Integrity; a wrong key gives garbage', async () => {
  const key = Buffer.from('0123456789');
  await assert.rejects(runThrough(createBlowfishDecryptStream(key), [Buffer.alloc(7)]), (e: unknown) => e instanceof EscaleError && e.code === 'Integrity');
  await assert.rejects(runThrough(createBlowfishDecryptStream(key), []), (e: unknown) => e instanceof EscaleError && e.code === 'Integrity');
  assert.throws(() => blowfishDecrypt(key, Buffer.alloc(3)), (e: unknown) => e instanceof EscaleError && e.code === 'Integrity');
  const data = blowfishEncrypt(key, Buffer.from('secret text'));
  assert.notDeepEqual(blowfishDecrypt(Buffer.from('0123456788'), data), Buffer.from('secret text'));
});

test('cross-check with OpenSSL\'s legacy bf-ecb/bf-ofb (test-only child process with --openssl-legacy-provider)', (t) => {
  const key = Buffer.from('qWpEZ++anABz3ckAY8tBBw==xyz0123456789abcdef!');
  const iv = Buffer.from('f00dfacecafebeef', 'hex');
  const plain = Buffer.alloc(1001);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 13) & 0xff;
  const script = `
    const c = require('node:crypto');
    const [key, iv, plain] = JSON.parse(require('node:fs').readFileSync(0, 'utf8')).map((h) => Buffer.from(h, 'hex'));
    const e = c.createCipheriv('bf-ofb', key, iv);
    process.stdout.write(Buffer.concat([e.update(plain), e.final()]).toString('hex'));`;
  const result = spawnSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
    input: JSON.stringify([key, iv, plain].map((b) => b.toString('hex'))),
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    console.log(`SKIP: OpenSSL legacy provider not usable here (${result.stderr.split('\n')[0]})`);
    t.skip('OpenSSL legacy provider unavailable');
    return;
  }
  assert.equal(blowfishEncrypt(key, plain, { iv }).subarray(8).toString('hex'), result.stdout);
});
