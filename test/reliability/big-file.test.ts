// Big encrypted files through the engine, whose Fernet work runs on cipher threads (issue 13, W2):
// the relay holds the same token format, and a download cut in the middle, an upload whose body
// fails, a tampered token, an abort and a write that fails on the disk each leave no partial file,
// no data without its record, and no thread running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { relPath, type RelPath } from '../../src/core/relpath.js';
import { cipherThreadsStarted, runningCipherThreads } from '../../src/crypto/cipher-thread.js';
import { createFernetDecryptStream, fernetDecrypt, fernetEncrypt, FernetKey } from '../../src/crypto/fernet.js';
import { writeFileAtomically } from '../../src/local/local-writer.js';
import type { Backend } from '../../src/relay/backend.js';
import { MemoryBackend } from '../../src/relay/backends/memory/memory-backend.js';
import { hiddenPaths, openKit, settle, sha256, snapshot, writeAt, type Kit, type KitClient } from './engine-kit.js';

const MiB = 1024 * 1024;
const T0 = 1_700_000_000;
/** Above the size from which Fernet moves to a thread (8 MiB). */
const BIG = 24 * MiB + 5;

async function readAll(backend: Backend, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await backend.get(path as RelPath)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function relayFiles(relay: Backend): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of relay.list('' as RelPath, { recursive: true })) if (entry.kind === 'file') out.push(entry.path);
  return out.sort();
}

async function noThreadLeft(): Promise<void> {
  for (let i = 0; i < 200 && runningCipherThreads() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.equal(runningCipherThreads(), 0, 'a cipher thread outlived its transfer');
}

/** Runs a round that must fail for the big file while a cipher thread works on it; none may be left after it. */
async function failsOnThread(kit: Kit, client: KitClient, what: string): Promise<void> {
  const started = cipherThreadsStarted();
  const outcome = await client.round();
  assert.equal(cipherThreadsStarted() - started, 1, `${what} ran on a cipher thread`);
  assert.ok(!outcome.ok || outcome.failed > 0, `${what} must not succeed:\n${kit.problems()}`);
  await noThreadLeft();
}

async function twoClients(relay: Backend): Promise<{ kit: Kit; key: FernetKey }> {
  const kit = await openKit({ variant: 'placeholder-fernet', relay, clients: { alice: 'upload', bob: 'download' } });
  return { kit, key: FernetKey.parse(await readFile(join(kit.dir, 'kit.passphrase'))) };
}

test('a big file crosses on cipher threads; the relay holds one Fernet token of the usual length', { timeout: 120_000 }, async () => {
  const relay = new MemoryBackend('big');
  const { kit, key } = await twoClients(relay);
  try {
    const content = randomBytes(BIG);
    await writeAt(kit.clients['alice']!.folder, 'big.bin', content, T0);
    const started = cipherThreadsStarted();
    assert.equal((await kit.clients['alice']!.round()).ok, true, kit.problems());
    assert.equal(cipherThreadsStarted() - started, 1, 'the upload encrypted on a thread');
    const token = await readAll(relay, 'big.bin');
    assert.equal(token.length, 4 * Math.ceil((57 + 16 * (Math.floor(BIG / 16) + 1)) / 3));
    assert.deepEqual(fernetDecrypt(key, token), content, 'the one-shot decoder reads the token');
    assert.equal((await kit.clients['bob']!.round()).ok, true, kit.problems());
    assert.equal(cipherThreadsStarted() - started, 2, 'the download decrypted on a thread');
    assert.equal((await snapshot(kit.clients['bob']!.folder)).get('big.bin'), sha256(content));
    await noThreadLeft();
  } finally {
    await kit.close();
  }
});

test('a download cut in the middle leaves the old file, no temporary and no thread; the next round delivers', { timeout: 120_000 }, async () => {
  const { kit } = await twoClients(new MemoryBackend('cut'));
  const alice = kit.clients['alice']!;
  const bob = kit.clients['bob']!;
  try {
    await writeAt(bob.folder, 'big.bin', 'bob had this\n', T0);
    const content = randomBytes(BIG);
    await writeAt(alice.folder, 'big.bin', content, T0 + 10);
    assert.equal((await alice.round()).ok, true, kit.problems());
    const before = await snapshot(bob.folder);
    // why: well past the first 8 MiB of plaintext (about 10.7 MiB of token), so the thread is running.
    bob.faults.rule = (call) => (call.method === 'get' && call.path === 'big.bin' ? { cutAfterBytes: 28 * MiB } : undefined);
    await failsOnThread(kit, bob, 'the cut download');
    const during = await snapshot(bob.folder);
    assert.equal(during.get('big.bin'), before.get('big.bin'), 'the old local file is byte-identical');
    assert.deepEqual(hiddenPaths(during).filter((p) => !p.startsWith('.escale/') && p !== '.escale'), [], 'no temporary left');
    bob.faults.rule = () => undefined;
    await settle(kit, ['alice', 'bob']);
    assert.equal((await snapshot(bob.folder)).get('big.bin'), sha256(content));
  } finally {
    await kit.close();
  }
});

test('an upload whose body fails in the middle leaves no data, record or lock on the relay, and no thread; the next round sends it', { timeout: 120_000 }, async () => {
  const relay = new MemoryBackend('body');
  const { kit } = await twoClients(relay);
  const alice = kit.clients['alice']!;
  try {
    const content = randomBytes(BIG);
    await writeAt(alice.folder, 'big.bin', content, T0);
    alice.faults.rule = (call) => (call.method === 'put' && call.path === 'big.bin' ? { failBodyAfterBytes: 28 * MiB } : undefined);
    await failsOnThread(kit, alice, 'the broken upload');
    assert.deepEqual(await relayFiles(relay), [], 'the interrupted upload was rolled back');
    alice.faults.rule = () => undefined;
    await settle(kit, ['alice', 'bob']);
    assert.equal((await snapshot(kit.clients['bob']!.folder)).get('big.bin'), sha256(content));
  } finally {
    await kit.close();
  }
});

test('a tampered big token is refused (Integrity): the old file stays, nothing is left behind, the relay copy is kept', { timeout: 120_000 }, async () => {
  const relay = new MemoryBackend('tampered');
  const { kit } = await twoClients(relay);
  const bob = kit.clients['bob']!;
  try {
    await writeAt(bob.folder, 'big.bin', 'bob had this\n', T0);
    await writeAt(kit.clients['alice']!.folder, 'big.bin', randomBytes(BIG), T0 + 10);
    assert.equal((await kit.clients['alice']!.round()).ok, true, kit.problems());
    const token = await readAll(relay, 'big.bin');
    const at = Math.floor(token.length * 0.7);
    token[at] = token[at] === 0x41 ? 0x42 : 0x41;
    await relay.put('big.bin' as RelPath, token);
    const before = await snapshot(bob.folder);
    await failsOnThread(kit, bob, 'the tampered download');
    assert.match(kit.problems(), /HMAC|Integrity|rejected/i, 'the refusal is logged');
    assert.deepEqual(await snapshot(bob.folder), before, 'bob has the same files, no temporary');
    assert.deepEqual(await readAll(relay, 'big.bin'), token, 'the relay copy is kept');
  } finally {
    await kit.close();
  }
});

test('an abort in the middle of a threaded download leaves no file and no temporary, and stops the thread', { timeout: 60_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'escale-bigabort-'));
  try {
    const key = FernetKey.parse(Buffer.alloc(32, 7).toString('base64url') + '=');
    const token = Buffer.from(fernetEncrypt(key, randomBytes(BIG), Date.now()));
    const controller = new AbortController();
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent >= token.length) return void this.push(null);
        if (sent > 12 * MiB) controller.abort();
        const chunk = token.subarray(sent, sent + 349_528);
        sent += chunk.length;
        setImmediate(() => this.push(chunk));
      },
    });
    const decrypt = createFernetDecryptStream(key, { threadFrom: 0 });
    source.pipe(decrypt);
    await assert.rejects(writeFileAtomically({ root, path: relPath('d/big.bin'), source: decrypt, algorithm: 'sha512', expectedPrior: null, signal: controller.signal }), { code: 'Aborted' });
    assert.deepEqual(await readdir(join(root, 'd')), [], 'no file and no temporary');
    await noThreadLeft();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a write that fails on the disk while others are in flight (EFBIG under ulimit -f) fails the download cleanly', { timeout: 60_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'escale-efbig-'));
  try {
    await writeFile(join(root, 'f'), 'old');
    const child = join(dirname(fileURLToPath(import.meta.url)), 'big-file-child.js');
    // why: 8 MiB file-size limit (ulimit counts 1 KiB blocks), a 32 MiB download.
    const run = spawnSync('sh', ['-c', `ulimit -f 8192 && exec "${process.execPath}" "${child}" "${root}" 32`], { encoding: 'utf8', timeout: 50_000 });
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout) as { code?: string; cause?: string; files: string[]; old: string };
    assert.equal(outcome.cause, 'EFBIG', run.stdout);
    assert.ok(outcome.code !== undefined, 'the write failed');
    assert.deepEqual(outcome.files, ['f'], 'the temporary was removed');
    assert.equal(outcome.old, 'old', 'the old file is untouched');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
