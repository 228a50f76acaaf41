// End-to-end encryption (issue 5): real `escale --once` processes on a `file` relay, with keys made
// by `escalectl genkey`. Files converge, and no relay file ever holds a byte of plaintext.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { put, tree, type FileState } from './harness.js';
import { allFiles, dataFiles, encryptedSetup, fernetTokenLength, filesContaining, MARKER, type EncryptedSetup } from './encryption-support.js';
import { runEscalectl } from './harness.js';

/** Files with the marker in each (except the empty one): nested, unicode, empty, block-sized, multi-chunk. */
async function writeMarkedFiles(root: string): Promise<Map<string, number>> {
  const files: Array<[string, string | Buffer]> = [
    ['top.txt', `top ${MARKER}\n`],
    ['deep/er/nested/file.txt', `nested ${MARKER}\n`],
    ['unicode/\u00e9t\u00e9 \u2603.txt', `${MARKER} \u2603 \u00e9t\u00e9\n`],
    ['empty.txt', ''],
    // why: exactly 64 bytes, so Fernet adds a whole padding block.
    ['block.txt', `${MARKER}`.padEnd(64, '.')],
    // why: several MiB, so both transforms see many stream chunks and the marker crosses chunk edges.
    ['big/lines.txt', Buffer.from(`${MARKER} line\n`.repeat(70_000))],
  ];
  const sizes = new Map<string, number>();
  let mtime = 1_700_000_000;
  for (const [path, content] of files) {
    await put(root, path, content, (mtime += 100));
    sizes.set(path, Buffer.byteLength(content));
  }
  return sizes;
}

async function genkey(s: EncryptedSetup, name: string, algorithm: string): Promise<string> {
  const file = join(s.dir, name);
  const result = await runEscalectl(['genkey', file, '--algorithm', algorithm]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`passphrase = ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
  assert.match(result.stdout, /safe channel/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  return file;
}

function assertSameTrees(a: Map<string, FileState>, b: Map<string, FileState>, label: string): void {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), `${label}: file lists differ`);
  for (const [path, state] of a) assert.deepEqual(b.get(path), state, `${label}: '${path}' differs`);
}

const WARNING = /encryption '[a-z.]+' has no integrity check/g;

describe('placeholder protocol', () => {
  test('fernet: alice -> bob converge; the relay holds only Fernet tokens, never the plaintext', async () => {
    const s = await encryptedSetup({});
    try {
      const key = await genkey(s, 'shared.passphrase', 'fernet');
      await s.configure({ alice: { encryption: 'fernet', passphrase: key }, bob: { encryption: 'fernet', passphrase: key } });
      const sizes = await writeMarkedFiles(s.folder('alice'));
      const pushed = await s.once('alice');
      assert.doesNotMatch(pushed.stderr, WARNING, 'fernet has integrity: no warning');
      assert.doesNotMatch(pushed.stderr, /can be read by other users/, 'genkey made a private key file');

      assert.deepEqual(await dataFiles(s.relay), [...sizes.keys()].sort());
      for (const [path, size] of sizes) {
        const token = await readFile(join(s.relay, path), 'latin1');
        assert.match(token, /^gAAAAA[A-Za-z0-9_-]*=*$/, `'${path}' is a Fernet token (base64url, no LF)`);
        assert.equal(token.length, fernetTokenLength(size), `'${path}': token length for ${size} bytes`);
      }
      assert.deepEqual(await filesContaining(s.relay, MARKER), [], 'no relay file contains the plaintext marker');

      await s.once('bob');
      assertSameTrees(await tree(s.folder('alice')), await tree(s.folder('bob')), 'alice vs bob');
      assert.deepEqual(await filesContaining(s.relay, MARKER), []);

      // and back: bob edits a file, alice receives it.
      await put(s.folder('bob'), 'top.txt', `edited by bob ${MARKER}\n`, 1_700_100_000);
      await s.once('bob');
      assert.deepEqual(await filesContaining(s.relay, MARKER), []);
      await s.once('alice');
      assert.equal(await readFile(join(s.folder('alice'), 'top.txt'), 'utf8'), `edited by bob ${MARKER}\n`);
      assertSameTrees(await tree(s.folder('alice')), await tree(s.folder('bob')), 'after the edit');
      assert.deepEqual((await allFiles(s.relay)).filter((p) => p.endsWith('.lock')), [], 'no lock left');
    } finally {
      await s.cleanup();
    }
  });

  test('blowfish: converge, IV + same-length ciphertext on the relay, one no-integrity warning per process', async () => {
    const s = await encryptedSetup({});
    try {
      const key = await genkey(s, 'bf.passphrase', 'blowfish');
      await s.configure({ alice: { encryption: 'blowfish', passphrase: key }, bob: { encryption: 'blowfish.blowfish', passphrase: key } });
      const sizes = await writeMarkedFiles(s.folder('alice'));
      const pushed = await s.once('alice');
      assert.equal(pushed.stderr.match(WARNING)?.length, 1, `exactly one warning on the terminal:\n${pushed.stderr}`);
      assert.match(pushed.stderr, /fernet is recommended/);

      assert.deepEqual(await dataFiles(s.relay), [...sizes.keys()].sort());
      for (const [path, size] of sizes) assert.equal((await stat(join(s.relay, path))).size, size + 8, `'${path}': 8-byte IV + ciphertext`);
      assert.deepEqual(await filesContaining(s.relay, MARKER), [], 'no relay file contains the plaintext marker');

      const pulled = await s.once('bob');
      assert.equal(pulled.stderr.match(WARNING)?.length, 1, 'the puller warns once too');
      assertSameTrees(await tree(s.folder('alice')), await tree(s.folder('bob')), 'alice vs bob');
      const log = await readFile(s.log, 'utf8');
      assert.equal(log.match(WARNING)?.length, 2, 'the log has one warning per process');
    } finally {
      await s.cleanup();
    }
  });

  test('plain: nothing is encrypted and nothing is warned about', async () => {
    const s = await encryptedSetup({ alice: { encryption: 'plain' } });
    try {
      await put(s.folder('alice'), 'a.txt', `${MARKER}\n`, 1_700_000_000);
      const pushed = await s.once('alice');
      assert.doesNotMatch(pushed.stderr, WARNING);
      assert.equal(await readFile(join(s.relay, 'a.txt'), 'utf8'), `${MARKER}\n`);
    } finally {
      await s.cleanup();
    }
  });
});

test('index protocol (index = 1) with fernet: converge; update data are tokens, no plaintext anywhere', async () => {
  const s = await encryptedSetup({});
  try {
    const key = await genkey(s, 'index.passphrase', 'fernet');
    await s.configure({ alice: { encryption: 'fernet', passphrase: key, index: 1 }, bob: { encryption: 'fernet', passphrase: key, index: 1 } });
    await writeMarkedFiles(s.folder('alice'));
    await s.once('alice');
    const data = (await allFiles(s.relay)).filter((p) => p.endsWith('.data'));
    assert.ok(data.length >= 1, `an update archive was pushed: ${(await allFiles(s.relay)).join(', ')}`);
    for (const path of data) assert.match(await readFile(join(s.relay, path), 'latin1'), /^gAAAAA[A-Za-z0-9_-]*=*$/, `'${path}' is a Fernet token`);
    assert.deepEqual(await filesContaining(s.relay, MARKER), [], 'no relay file contains the plaintext marker');
    await s.once('bob');
    assertSameTrees(await tree(s.folder('alice')), await tree(s.folder('bob')), 'alice vs bob');
    assert.deepEqual(await filesContaining(s.relay, MARKER), []);
  } finally {
    await s.cleanup();
  }
});

describe('refusals', () => {
  test("encryption = native fails with a clear message and writes nothing to the relay", async () => {
    const s = await encryptedSetup({});
    try {
      const key = await genkey(s, 'n.passphrase', 'fernet');
      await s.configure({ alice: { encryption: 'native', passphrase: key } });
      await put(s.folder('alice'), 'a.txt', `${MARKER}\n`);
      const result = await s.run('alice');
      assert.ok(result.code === 1 || result.code === 2, `exit code ${result.code}`);
      assert.match(result.stderr, /native/);
      assert.match(result.stderr, /fernet/, 'the message says what to use instead');
      assert.doesNotMatch(result.stderr, /at .*\.js:\d+/, 'no stack trace');
      assert.deepEqual(await allFiles(s.relay), [], 'nothing was written to the relay');
    } finally {
      await s.cleanup();
    }
  });

  test('a passphrase path that does not exist: --check fails with exit 2 naming the file and the line', async () => {
    const s = await encryptedSetup({});
    try {
      const missing = join(s.dir, 'keys', 'typo.passphrase');
      await s.configure({ alice: { encryption: 'fernet', passphrase: missing } });
      const result = await s.run('alice', ['--check']);
      assert.equal(result.code, 2, result.stderr);
      const line = (await readFile(s.config, 'utf8')).split('\n').findIndex((l) => l.startsWith('passphrase =')) + 1;
      assert.ok(result.stderr.includes(`${s.config}:${line}:`), `names the configuration file and line ${line}:\n${result.stderr}`);
      assert.ok(result.stderr.includes(missing), 'names the missing key file');
      assert.match(result.stderr, /does not exist/);
      // the same configuration never syncs
      await put(s.folder('alice'), 'a.txt', `${MARKER}\n`);
      assert.equal((await s.run('alice')).code, 2);
      assert.deepEqual(await allFiles(s.relay), []);
    } finally {
      await s.cleanup();
    }
  });

  test('a key file readable by others is warned about at start-up, naming the file but not its content', async () => {
    const s = await encryptedSetup({});
    try {
      const key = await genkey(s, 'loose.passphrase', 'fernet');
      await s.configure({ alice: { encryption: 'fernet', passphrase: key } });
      await chmod(key, 0o644);
      const loose = await s.once('alice');
      assert.match(loose.stderr, new RegExp(`WARNING.*the key file '${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' can be read by other users`));
      assert.equal(loose.stderr.includes((await readFile(key, 'latin1')).slice(0, 20)), false, 'the key is never printed');
      await chmod(key, 0o600);
      assert.doesNotMatch((await s.once('alice')).stderr, /can be read by other users/);
    } finally {
      await s.cleanup();
    }
  });
});
