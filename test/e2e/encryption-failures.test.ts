// End-to-end: a pull that cannot be decrypted (wrong passphrase, tampered token, truncated token)
// leaves the puller's existing file byte-identical, keeps the relay copy (not marked as read), logs
// one error naming the file, and makes `escale --once` exit non-zero (issue 5, relay-format.md
// F-8 fixed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyFile } from '../../src/local/key-file.js';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';
import { put, tree } from './harness.js';
import { allFiles, encryptedSetup, MARKER, type EncryptedSetup } from './encryption-support.js';

const OLD = `bob's own older version ${MARKER}\n`;
const NEW = `alice's newer version ${MARKER}\n`.repeat(50);

/** alice pushes a newer `notes/doc.txt` over the version bob already has; returns the setup. */
async function pushedOverBob(): Promise<{ s: EncryptedSetup; right: string; wrong: string }> {
  const s = await encryptedSetup({});
  const right = join(s.dir, 'right.passphrase');
  const wrong = join(s.dir, 'wrong.passphrase');
  await generateKeyFile(right, 'fernet');
  await generateKeyFile(wrong, 'fernet');
  await s.configure({ alice: { encryption: 'fernet', passphrase: right }, bob: { encryption: 'fernet', passphrase: right } });
  await put(s.folder('bob'), 'notes/doc.txt', OLD, 1_700_000_000);
  await put(s.folder('alice'), 'notes/doc.txt', NEW, 1_700_000_500);
  await s.once('alice');
  return { s, right, wrong };
}

interface Snapshot {
  bob: string;
  relayData: Buffer;
  placeholder: Buffer;
}

/** Bob's folder, hidden files included (the marker of his local root excepted: his first run writes it). */
async function bobState(s: EncryptedSetup): Promise<string> {
  return JSON.stringify([...(await tree(s.folder('bob'), { includeHidden: true }))].filter(([path]) => path !== ROOT_MARKER));
}

async function snapshot(s: EncryptedSetup): Promise<Snapshot> {
  return {
    bob: await bobState(s),
    relayData: await readFile(join(s.relay, 'notes/doc.txt')),
    placeholder: await readFile(join(s.relay, 'notes/.doc.txt.placeholder')),
  };
}

/** Runs bob once and checks everything the issue asks of a failed decryption. */
async function assertRefused(s: EncryptedSetup, before: Snapshot, reason: RegExp): Promise<void> {
  const result = await s.run('bob');
  assert.notEqual(result.code, 0, 'escale --once exits non-zero');
  const errors = result.stderr.split('\n').filter((l) => / (ERROR|CRITICAL) /.test(l));
  assert.equal(errors.filter((l) => l.includes("'notes/doc.txt'")).length, 1, `one error line naming the file:\n${result.stderr}`);
  assert.match(errors.find((l) => l.includes("'notes/doc.txt'")) ?? '', reason);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');

  assert.equal(await readFile(join(s.folder('bob'), 'notes/doc.txt'), 'utf8'), OLD, "bob's file is untouched");
  assert.equal(await bobState(s), before.bob, 'bytes and mtimes unchanged, no temporary file left');
  assert.deepEqual(await readdir(join(s.folder('bob'), 'notes')), ['doc.txt'], 'no temporary file next to it');
  assert.deepEqual(await readFile(join(s.relay, 'notes/doc.txt')), before.relayData, 'the relay copy is still there, unchanged');
  assert.deepEqual(await readFile(join(s.relay, 'notes/.doc.txt.placeholder')), before.placeholder, 'the placeholder is not marked as read');
  assert.doesNotMatch(before.placeholder.toString('utf8'), /\nbob$/);
  assert.deepEqual((await allFiles(s.relay)).filter((p) => p.endsWith('.lock')), [], 'no lock left behind');
}

/** Bob with the right key and an intact token gets alice's version (the relay copy was kept). */
async function assertRecovers(s: EncryptedSetup): Promise<void> {
  await s.once('bob');
  assert.equal(await readFile(join(s.folder('bob'), 'notes/doc.txt'), 'utf8'), NEW);
}

describe('a pull that cannot be decrypted changes nothing', () => {
  test('wrong passphrase', async () => {
    const { s, right, wrong } = await pushedOverBob();
    try {
      await s.configure({ alice: { encryption: 'fernet', passphrase: right }, bob: { encryption: 'fernet', passphrase: wrong } });
      await assertRefused(s, await snapshot(s), /failed to download 'notes\/doc\.txt'.*(key|HMAC|passphrase)/i);
      // the next round with the same wrong key refuses again, and changes nothing either
      await assertRefused(s, await snapshot(s), /failed to download/);
      await s.configure({ alice: { encryption: 'fernet', passphrase: right }, bob: { encryption: 'fernet', passphrase: right } });
      await assertRecovers(s);
    } finally {
      await s.cleanup();
    }
  });

  test('tampered token (one base64 character changed in the ciphertext)', async () => {
    const { s } = await pushedOverBob();
    try {
      const data = join(s.relay, 'notes/doc.txt');
      const token = await readFile(data, 'latin1');
      const at = Math.floor(token.length / 2);
      const tampered = token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1);
      await writeFile(data, tampered, 'latin1');
      await assertRefused(s, await snapshot(s), /failed to download 'notes\/doc\.txt'/);
      await writeFile(data, token, 'latin1');
      await assertRecovers(s);
    } finally {
      await s.cleanup();
    }
  });

  test('truncated token (the last third cut off, and a cut inside a base64 quantum)', async () => {
    const { s } = await pushedOverBob();
    try {
      const data = join(s.relay, 'notes/doc.txt');
      const token = await readFile(data, 'latin1');
      for (const length of [Math.floor((token.length * 2) / 3), token.length - 3]) {
        await writeFile(data, token.slice(0, length), 'latin1');
        await assertRefused(s, await snapshot(s), /failed to download 'notes\/doc\.txt'/);
      }
      await writeFile(data, token, 'latin1');
      await assertRecovers(s);
    } finally {
      await s.cleanup();
    }
  });
});
