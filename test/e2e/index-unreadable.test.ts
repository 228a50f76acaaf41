// End-to-end: an index-relay update that can never be read (corrupt archive, garbage update index,
// failed Fernet HMAC) is retried a bounded number of rounds by each reader, counted across restarts
// (every `escale --once` is a new process), then given up without harming any local file, and the
// page is free again for every pusher.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyFile } from '../../src/local/key-file.js';
import { put, tree } from './harness.js';
import { indexSetup, type IndexSetup } from './index-support.js';

const OLD_A = 'a, first version\n';
// why: an upload-mode round waits up to `upload max wait` for a postponed page; these rounds must not.
const UP = { mode: 'upload', index: 1, 'upload max wait': 0 };
const DOWN = { mode: 'download', index: 1 };
const NEW_A = 'a, second version\n';

/** The pending update of page 0 on the relay: its `T`, or undefined when none. */
async function pendingUpdate(relay: string): Promise<number | undefined> {
  const names = (await readdir(relay)).filter((n) => /^\.0\.\d+\.index$/.test(n));
  assert.ok(names.length <= 1, `at most one pending update: ${names.join(', ')}`);
  return names[0] === undefined ? undefined : Number(names[0].split('.')[2]);
}

/** A state fingerprint of a folder (bytes, mtimes, hidden files included). */
async function fingerprint(dir: string): Promise<string> {
  return JSON.stringify([...(await tree(dir, { includeHidden: true }))]);
}

/**
 * alice (upload) sends `a.txt` and `keep.txt`, bob (download) reads them; then alice sends a second
 * version of `a.txt`, and `damage` spoils that update on the relay. Returns the update's `T`.
 */
async function spoiledUpdate(s: IndexSetup, damage: (t: number) => Promise<void>): Promise<number> {
  await put(s.folder('alice'), 'a.txt', OLD_A, 1_700_000_000);
  await put(s.folder('alice'), 'keep.txt', 'kept\n', 1_700_000_000);
  await s.once('alice');
  await s.once('bob');
  assert.equal(await readFile(join(s.folder('bob'), 'a.txt'), 'utf8'), OLD_A);
  await put(s.folder('alice'), 'a.txt', NEW_A, 1_700_000_100);
  await s.once('alice');
  const t = await pendingUpdate(s.relay);
  assert.ok(t !== undefined, 'the second update is pending');
  await damage(t);
  return t;
}

/**
 * Runs bob until he gives the update up: two rounds that fail and retry, then the give-up; checks that
 * carol's push to the page waits meanwhile and that no local file changes. Returns bob's last output.
 */
async function bobGivesUp(s: IndexSetup, t: number): Promise<string> {
  const alice = await fingerprint(s.folder('alice'));
  const bob = await fingerprint(s.folder('bob'));
  await put(s.folder('carol'), 'c.txt', 'from carol\n', 1_700_000_200);
  for (const attempt of [1, 2]) {
    const result = await s.once('bob', { allowFailure: true });
    assert.match(result.stderr, new RegExp(`failed to read update ${t} of page '0' .*attempt ${attempt} of 3, retried next round`), result.stderr);
    assert.equal(await pendingUpdate(s.relay), t, 'the update is still pending');
    await s.once('carol');
    assert.equal(await pendingUpdate(s.relay), t, "carol's push waits: one update per page");
  }
  const last = await s.once('bob', { allowFailure: true });
  const giveUps = last.stderr.split('\n').filter((line) => line.includes(`giving up update ${t} of page '0'`));
  assert.equal(giveUps.length, 1, `one error line names the page and the update:\n${last.stderr}`);
  assert.doesNotMatch(last.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(await pendingUpdate(s.relay), undefined, 'the given-up update is consumed (puller count unset): the page is free');
  assert.equal(await fingerprint(s.folder('alice')), alice, "alice's files are untouched");
  assert.equal(await fingerprint(s.folder('bob')), bob, "bob's files are untouched, no extraction folder left");
  // a fourth round does not try again
  const after = await s.once('bob', { allowFailure: true });
  assert.doesNotMatch(after.stderr, new RegExp(`update ${t}`));
  return last.stderr;
}

/** After the give-up: carol's push goes through, alice sends `a.txt` again, bob ends with everything. */
async function pageRecovers(s: IndexSetup): Promise<void> {
  await s.once('carol');
  assert.ok((await pendingUpdate(s.relay)) !== undefined, "carol's update went through");
  await s.once('bob');
  assert.equal(await readFile(join(s.folder('bob'), 'c.txt'), 'utf8'), 'from carol\n');
  await s.once('alice');
  await s.once('bob');
  assert.equal(await readFile(join(s.folder('bob'), 'a.txt'), 'utf8'), NEW_A, 'alice sent the missing file again');
  assert.equal(await readFile(join(s.folder('bob'), 'keep.txt'), 'utf8'), 'kept\n');
  assert.equal(await readFile(join(s.folder('alice'), 'a.txt'), 'utf8'), NEW_A);
}

describe('an unreadable index update is given up after 3 failed reads', () => {
  test('corrupt archive (not bzip2): bob reports its files missing, alice sends them again', { timeout: 120_000 }, async () => {
    const s = await indexSetup({ alice: UP, bob: DOWN, carol: UP });
    try {
      const t = await spoiledUpdate(s, (stamp) => writeFile(join(s.relay, `.0.${stamp}.data`), 'this is not a bzip2 stream\n'));
      const stderr = await bobGivesUp(s, t);
      assert.match(stderr, /reported missing so that their pushers send them again/);
      await pageRecovers(s);
    } finally {
      await s.cleanup();
    }
  });

  test('failed Fernet HMAC (one byte of the token changed)', { timeout: 120_000 }, async () => {
    const s = await indexSetup({});
    try {
      const key = join(s.dir, 'fernet.key');
      await generateKeyFile(key, 'fernet');
      const keys = { encryption: 'fernet', passphrase: key };
      await s.configure({ alice: { ...UP, ...keys }, bob: { ...DOWN, ...keys }, carol: { ...UP, ...keys } });
      const t = await spoiledUpdate(s, async (stamp) => {
        const data = join(s.relay, `.0.${stamp}.data`);
        const token = await readFile(data, 'latin1');
        const at = Math.floor(token.length / 2);
        await writeFile(data, token.slice(0, at) + (token[at] === 'A' ? 'B' : 'A') + token.slice(at + 1), 'latin1');
      });
      await bobGivesUp(s, t);
      await pageRecovers(s);
    } finally {
      await s.cleanup();
    }
  });

  test('garbage update index: once given up, the intact archive is still read before the update goes', { timeout: 120_000 }, async () => {
    const s = await indexSetup({ alice: UP, bob: DOWN, carol: UP });
    try {
      const t = await spoiledUpdate(s, (stamp) => writeFile(join(s.relay, `.0.${stamp}.index`), Buffer.from([0xff, 0xfe, 0x00, 0x41, 0x0a])));
      const bobBefore = await fingerprint(s.folder('bob'));
      await put(s.folder('carol'), 'c.txt', 'from carol\n', 1_700_000_200);
      for (const attempt of [1, 2]) {
        const result = await s.once('bob', { allowFailure: true });
        assert.match(result.stderr, new RegExp(`failed to read update ${t} of page '0' .*attempt ${attempt} of 3`), result.stderr);
        assert.equal(await fingerprint(s.folder('bob')), bobBefore, "bob's files are untouched");
        await s.once('carol');
        assert.equal(await pendingUpdate(s.relay), t, "carol's push waits");
      }
      const last = await s.once('bob', { allowFailure: true });
      assert.equal(last.stderr.split('\n').filter((line) => line.includes(`giving up update ${t} of page '0'`)).length, 1, last.stderr);
      assert.equal(await readFile(join(s.folder('bob'), 'a.txt'), 'utf8'), NEW_A, 'the archive was read through the persistent index');
      assert.equal(await pendingUpdate(s.relay), undefined, 'the page is free');
      await s.once('carol');
      await s.once('bob');
      assert.equal(await readFile(join(s.folder('bob'), 'c.txt'), 'utf8'), 'from carol\n');
    } finally {
      await s.cleanup();
    }
  });
});
