// End-to-end interoperability with escale 0.7 (issue 5): a relay written by our client with the
// fixture keys decrypts with Python `cryptography`, and relays written by the Python client (the
// 0.7 fixtures) are pulled by a real `escale --once` with the same keys.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { put, tree } from './harness.js';
import { dataFiles, encryptedSetup, FIXTURES, filesContaining, loudSkip, MARKER, pythonWithCryptography } from './encryption-support.js';

const PYTHON = pythonWithCryptography();
if (PYTHON === undefined) {
  loudSkip('encryption-interop', 'no python3 with the cryptography package (apt-get install python3-cryptography); decryption of our relay by Python was NOT tested');
}

// Decrypts relay files as escale 0.7 does: Fernet(key file bytes).decrypt(token), or Blowfish-OFB
// with the first 8 bytes as IV and the raw key file bytes as key (relay-format.md P5.3, P5.4).
const DECRYPT = `
import sys, warnings
warnings.simplefilter("ignore")
algorithm, key_file, data_file = sys.argv[1:4]
key = open(key_file, "rb").read()
data = open(data_file, "rb").read()
if algorithm == "fernet":
    from cryptography.fernet import Fernet
    plain = Fernet(key).decrypt(data)
else:
    try:
        from cryptography.hazmat.decrepit.ciphers.algorithms import Blowfish
    except ImportError:
        from cryptography.hazmat.primitives.ciphers.algorithms import Blowfish
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    d = Cipher(Blowfish(key), modes.OFB(data[:8])).decryptor()
    plain = d.update(data[8:]) + d.finalize()
sys.stdout.buffer.write(plain)
`;

function pythonDecrypt(python: string, algorithm: string, keyFile: string, dataFile: string): Buffer {
  const result = spawnSync(python, ['-c', DECRYPT, algorithm, keyFile, dataFile], { maxBuffer: 64 << 20 });
  if (result.status !== 0) throw new Error(`${python} could not decrypt ${dataFile}: ${result.stderr.toString()}`);
  return result.stdout;
}

const CASES = [
  { algorithm: 'fernet', key: join(FIXTURES, 'fernet.key') },
  { algorithm: 'blowfish', key: join(FIXTURES, 'blowfish.key') },
] as const;

describe('our relay, read by Python cryptography with the 0.7 fixture keys', () => {
  for (const { algorithm, key } of CASES) {
    test(`${algorithm}: every data file decrypts to the pushed bytes`, { skip: PYTHON === undefined ? 'python3-cryptography unavailable' : false }, async () => {
      const s = await encryptedSetup({ alice: { encryption: algorithm, passphrase: key } });
      try {
        const files: Record<string, string | Buffer> = {
          'a.txt': `${MARKER}\n`,
          'dir/sub/unicode-\u00e9.txt': `${MARKER} \u00e9\n`,
          'empty.txt': '',
          'dir/big.txt': `${MARKER}\n`.repeat(20_000),
        };
        for (const [path, content] of Object.entries(files)) await put(s.folder('alice'), path, content, 1_700_000_000);
        await s.once('alice');
        assert.deepEqual(await dataFiles(s.relay), Object.keys(files).sort());
        assert.deepEqual(await filesContaining(s.relay, MARKER), []);
        for (const [path, content] of Object.entries(files)) {
          assert.deepEqual(pythonDecrypt(PYTHON!, algorithm, key, join(s.relay, path)), Buffer.from(content), `'${path}' read by Python`);
        }
      } finally {
        await s.cleanup();
      }
    });
  }
});

describe('relays written by the Python escale 0.7, pulled by escale --once', () => {
  for (const { algorithm, key } of CASES) {
    test(`${algorithm}: the fixture relay gives the fixture source, with the pusher's mtime`, async () => {
      const fixture = join(FIXTURES, `placeholder-${algorithm}`);
      const s = await encryptedSetup({ bob: { encryption: algorithm, passphrase: key, mode: 'download' } });
      try {
        await cp(join(fixture, 'relay-after-push'), s.relay, { recursive: true });
        await s.once('bob');
        const want = await tree(join(fixture, 'source'));
        const got = await tree(s.folder('bob'));
        assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
        for (const [path, state] of want) assert.equal(got.get(path)?.sha256, state.sha256, `'${path}' has the 0.7 plaintext`);
        const placeholder = await readFile(join(s.relay, '.a.txt.placeholder'), 'utf8');
        assert.equal(got.get('a.txt')?.mtimeSec, Number(/^timestamp: (\d+)$/m.exec(placeholder)?.[1]), 'mtime from the 0.7 placeholder');
        assert.match(placeholder, /---pullers---\nbob$/, 'bob is recorded as a puller in the 0.7 record');
      } finally {
        await s.cleanup();
      }
    });
  }
});
