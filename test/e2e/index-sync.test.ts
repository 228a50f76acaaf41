// End-to-end: real escale processes synchronise through a `file` relay with `index = 1` / `topdir:N`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { put, tree } from './harness.js';
import { indexSetup, relayNames } from './index-support.js';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';

const WORDS = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega'.split(' ');

/** Text-like content of `size` bytes (bzip2 works on it at a realistic speed; random bytes are its worst case). */
function textOf(size: number, seed: number): Buffer {
  const r = randomBytes(size);
  let s = `file ${seed}\n`;
  for (let k = 0; s.length < size; k++) s += (WORDS[(r[k % size] ?? 0) % WORDS.length] ?? 'x') + ((r[(k + 1) % size] ?? 0) % 9 ? ' ' : '\n');
  return Buffer.from(s.slice(0, size));
}

test('10,000 files of 1-8 KiB in nested folders: bob converges with identical bytes and mtimes; the relay keeps only the index', { timeout: 240_000 }, async () => {
  const s = await indexSetup({ alice: { mode: 'upload', index: 1 }, bob: { mode: 'download', index: 1 } });
  try {
    const alice = s.folder('alice');
    for (let i = 0; i < 10_000; i++) {
      const path = join(alice, `d${i % 20}`, `s${i % 7}`, `t${i % 3}`, `f${i}.txt`);
      if (i < 420) await mkdir(dirname(path), { recursive: true });
      await writeFile(path, textOf(1024 + ((i * 7919) % 7169), i));
      await utimes(path, 1_700_000_000 + i, 1_700_000_000 + i);
    }
    const started = Date.now();
    await s.once('alice');
    const afterPush = await relayNames(s.relay);
    assert.equal(afterPush.length, 3, `one index and one update: ${afterPush.join(', ')}`);
    assert.ok(afterPush.includes('.0.index'));
    assert.equal(afterPush.filter((n) => /^\.0\.\d+\.(index|data)$/.test(n)).length, 2, 'at most one update per page');
    assert.equal(afterPush.filter((n) => n.endsWith('.lock')).length, 0, 'lock-free');
    await s.once('bob');
    const elapsed = Date.now() - started;
    const want = await tree(alice);
    const got = await tree(s.folder('bob'));
    assert.equal(got.size, 10_000);
    assert.deepEqual(got, want, 'identical bytes and mtimes');
    assert.deepEqual(await relayNames(s.relay), ['.0.index'], 'the update is removed once consumed; the persistent index stays');
    assert.deepEqual((await readdir(s.folder('bob'))).filter((n) => n.startsWith('.') && n !== ROOT_MARKER), [], 'no extraction folder left');
    console.log(`# 10,000 files pushed and pulled in ${elapsed} ms`);
  } finally {
    await s.cleanup();
  }
});

test('two shared clients editing different files in alternating rounds for 20 rounds lose nothing', { timeout: 300_000 }, async () => {
  const s = await indexSetup({ alice: { mode: 'shared', index: 1 }, bob: { mode: 'shared', index: 1 } });
  try {
    const expected = new Map<string, string>();
    for (let round = 0; round < 20; round++) {
      const who = round % 2 === 0 ? 'alice' : 'bob';
      const path = `${who}/notes-${round % 4}.txt`;
      const content = `${who} round ${round}\n`;
      await put(s.folder(who), path, content, 1_700_000_000 + round * 10);
      expected.set(path, content);
      await s.once(who);
    }
    // two more rounds each so the last updates reach the other side
    for (const who of ['alice', 'bob', 'alice', 'bob']) await s.once(who);
    for (const who of ['alice', 'bob']) {
      const files = await tree(s.folder(who));
      assert.equal(files.size, expected.size, `${who} has every file`);
      for (const [path, content] of expected) {
        assert.equal(files.get(path)?.size, Buffer.byteLength(content), `${who}: ${path}`);
      }
    }
    assert.deepEqual(await tree(s.folder('alice')), await tree(s.folder('bob')), 'both sides identical');
    assert.deepEqual((await relayNames(s.relay)).filter((n) => n !== '.0.index'), [], 'every update consumed, no lock left');
  } finally {
    await s.cleanup();
  }
});

test('topdir:2 makes one page per second-level folder; maxpagesize = 1MB splits a 5 MiB batch into several updates', { timeout: 240_000 }, async () => {
  const s = await indexSetup({
    alice: { mode: 'upload', index: 'topdir:2', maxpagesize: '1MB', 'upload max wait': 0 },
    bob: { mode: 'download', index: 'topdir:2' },
  });
  try {
    const alice = s.folder('alice');
    await put(alice, 'root.txt', 'top\n', 1_700_000_000);
    await put(alice, 'A/one.txt', 'one level\n', 1_700_000_000);
    await put(alice, 'A/B/c.txt', 'c\n', 1_700_000_000);
    await put(alice, 'A/C/d.txt', 'd\n', 1_700_000_000);
    await put(alice, 'v1.2/x/y.txt', 'y\n', 1_700_000_000);
    for (let i = 0; i < 20; i++) await put(alice, `big/batch/part-${i}.bin`, randomBytes(256 * 1024), 1_700_000_100 + i);
    await s.once('alice');
    const pages = (await relayNames(s.relay)).filter((n) => /^\.[^.]+\.index$/.test(n)).sort();
    assert.deepEqual(pages, ['.0.index', '.A_B.index', '.A_C.index', '.big_batch.index', '.v1_2_x.index']);
    let updates = 0;
    const seen = new Set<string>();
    for (let pass = 0; pass < 12; pass++) {
      for (const name of await relayNames(s.relay)) {
        if (!/^\.big_batch\.\d+\.data$/.test(name)) continue;
        // why: T has whole-second resolution, so a new alice process can reuse the name of the
        // update it pushed within the same second; the file's inode and mtime tell them apart.
        const info = await stat(join(s.relay, name));
        const key = `${name}:${info.ino}:${info.mtimeMs}`;
        if (!seen.has(key)) {
          seen.add(key);
          updates++;
        }
      }
      const names = await relayNames(s.relay);
      assert.ok(names.filter((n) => /^\.big_batch\.\d+\.data$/.test(n)).length <= 1, 'at most one update per page');
      await s.once('bob');
      if ((await tree(s.folder('bob'))).size === 25) break;
      await s.once('alice');
    }
    // why: an update closes after the file that crosses 1 MiB, so 5 files of 256 KiB each: 4 updates.
    assert.ok(updates >= 4, `5 MiB in updates of just over 1 MiB: ${updates} updates`);
    assert.deepEqual(await tree(s.folder('bob')), await tree(alice));
  } finally {
    await s.cleanup();
  }
});
