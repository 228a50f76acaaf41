// Interoperability with the Python original's libraries: Python `cryptography` (Fernet, and
// Blowfish-OFB as escale 0.7 uses it). Skipped, loudly, when python3-cryptography is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable, type Transform } from 'node:stream';
import { blowfishDecrypt, blowfishEncrypt } from './blowfish.js';
import { createFernetDecryptStream, createFernetEncryptStream, fernetDecrypt, fernetEncrypt, FernetKey, generateFernetKey } from './fernet.js';
import { FERNET_SPEC } from './fernet-spec-vectors.js';

const { SPEC_INVALID } = FERNET_SPEC;

const PYTHON = `
import sys, json, binascii
from cryptography.fernet import Fernet, InvalidToken
try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
except ImportError:
    from cryptography.hazmat.primitives.ciphers.algorithms import Blowfish
from cryptography.hazmat.primitives.ciphers import Cipher, modes
import os
out = []
for op in json.load(sys.stdin):
    kind = op["op"]
    if kind == "fernet_decrypt":
        try:
            f = Fernet(op["key"].encode())
            if "ttl" in op:
                out.append(f.decrypt_at_time(op["token"].encode(), op["ttl"], op["now"]).hex())
            else:
                out.append(f.decrypt(op["token"].encode()).hex())
        except InvalidToken:
            out.append("InvalidToken")
    elif kind == "fernet_encrypt":
        out.append(Fernet(op["key"].encode()).encrypt_at_time(bytes.fromhex(op["plain"]), op["now"]).decode())
    elif kind == "bf_encrypt":
        iv = os.urandom(8)
        e = Cipher(Blowfish(bytes.fromhex(op["key"])), modes.OFB(iv)).encryptor()
        out.append((iv + e.update(bytes.fromhex(op["plain"])) + e.finalize()).hex())
    elif kind == "bf_decrypt":
        data = bytes.fromhex(op["data"])
        d = Cipher(Blowfish(bytes.fromhex(op["key"])), modes.OFB(data[:8])).decryptor()
        out.append((d.update(data[8:]) + d.finalize()).hex())
print(json.dumps(out))
`;

function python(ops: object[]): string[] {
  const result = spawnSync(PYTHON_BIN, ['-W', 'ignore', '-c', PYTHON], { input: JSON.stringify(ops), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

// why: Debian's python3-cryptography lives with /usr/bin/python3; the python3 on PATH may be another one.
const PYTHON_BIN = ['/usr/bin/python3', 'python3'].find((bin) => spawnSync(bin, ['-c', 'import cryptography'], { encoding: 'utf8' }).status === 0) ?? 'python3';
const probe = spawnSync(PYTHON_BIN, ['-c', 'import cryptography'], { encoding: 'utf8' });
const available = probe.status === 0;
if (!available) {
  console.log('SKIP ********************************************************************');
  console.log('SKIP python-interop: python3 with the cryptography package is not available;');
  console.log('SKIP Fernet/Blowfish interoperability with Python was NOT tested (apt-get install python3-cryptography)');
  console.log('SKIP ********************************************************************');
}
const skip = available ? false : 'python3-cryptography unavailable';

function sample(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 151 + 17) & 0xff;
  return b;
}

const SIZES = [0, 1, 15, 16, 17, 256, 100_003];

test('Fernet: Python decrypts tokens made here, and tokens made by Python decrypt here', { skip }, () => {
  const keyText = generateFernetKey();
  const key = FernetKey.parse(keyText);
  const now = 1_700_000_000;
  const ours = SIZES.map((n) => fernetEncrypt(key, sample(n), now * 1000));
  const ops = [
    ...ours.map((token) => ({ op: 'fernet_decrypt', key: keyText, token })),
    ...SIZES.map((n) => ({ op: 'fernet_encrypt', key: keyText, plain: sample(n).toString('hex'), now })),
  ];
  const answers = python(ops);
  SIZES.forEach((n, i) => {
    assert.equal(answers[i], sample(n).toString('hex'), `Python reads our ${n}-byte token`);
    const theirs = answers[SIZES.length + i]!;
    assert.equal(theirs.length, ours[i]!.length, 'same token length');
    assert.equal(theirs.slice(0, 12), ours[i]!.slice(0, 12), 'same version and timestamp prefix');
    assert.deepEqual(fernetDecrypt(key, theirs), sample(n), `we read Python's ${n}-byte token`);
  });
});

test('Fernet: Python reads a big token made on a cipher thread, and its own big token decrypts on one', { skip }, async () => {
  const keyText = generateFernetKey();
  const key = FernetKey.parse(keyText);
  const plain = sample(3 * 1024 * 1024 + 5);
  const pieces = (data: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size));
  const collect = async (transform: Transform, input: Buffer[]): Promise<Buffer> => {
    const out: Buffer[] = [];
    for await (const chunk of Readable.from(input, { objectMode: false }).pipe(transform)) out.push(chunk as Buffer);
    return Buffer.concat(out);
  };
  // why: the first 100,003 bytes held, then everything sent to the thread at once.
  const ours = await collect(createFernetEncryptStream(key, { now: 1_700_000_000_000, threadFrom: 100_003 }), pieces(plain, 65_537));
  const [read, theirs] = python([
    { op: 'fernet_decrypt', key: keyText, token: ours.toString('latin1') },
    { op: 'fernet_encrypt', key: keyText, plain: plain.toString('hex'), now: 1_700_000_000 },
  ]);
  assert.equal(read, plain.toString('hex'), 'Python reads the threaded token');
  assert.deepEqual(await collect(createFernetDecryptStream(key, { threadFrom: 0 }), pieces(Buffer.from(theirs!, 'latin1'), 349_528)), plain, "we read Python's token on a thread");
});

test('Fernet spec invalid.json tokens are rejected by Python too (so the vectors are genuinely invalid)', { skip }, () => {
  const ops = SPEC_INVALID.map(([, token, now, ttl]) => ({
    op: 'fernet_decrypt', key: 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=', token, ttl, now: Math.floor(Date.parse(now) / 1000),
  }));
  const answers = python(ops);
  answers.forEach((answer, i) => assert.equal(answer, 'InvalidToken', SPEC_INVALID[i]![0]));
});

test('Blowfish-OFB: Python cryptography reads ours and we read Python\'s (44-byte and short keys)', { skip }, () => {
  for (const key of [Buffer.from(generateFernetKey()), Buffer.from('qWpEZ++anABz3ckAY8tBBw=='), Buffer.from('pass')]) {
    const ours = SIZES.map((n) => blowfishEncrypt(key, sample(n)));
    const answers = python([
      ...ours.map((data) => ({ op: 'bf_decrypt', key: key.toString('hex'), data: data.toString('hex') })),
      ...SIZES.map((n) => ({ op: 'bf_encrypt', key: key.toString('hex'), plain: sample(n).toString('hex') })),
    ]);
    SIZES.forEach((n, i) => {
      assert.equal(answers[i], sample(n).toString('hex'), `Python reads our ${n}-byte file`);
      const theirs = Buffer.from(answers[SIZES.length + i]!, 'hex');
      assert.equal(theirs.length, n + 8);
      assert.deepEqual(blowfishDecrypt(key, theirs), sample(n), `we read Python's ${n}-byte file`);
    });
  }
});
