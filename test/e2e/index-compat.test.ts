// End-to-end compatibility with escale 0.7.13 (test/fixtures/escale-0.7): our client pulls the index
// relays 0.7 wrote, and the relay our client writes for the fixture source equals 0.7's.
//
// What is compared for our push (index-plain): the relay names modulo T; `.0.index` decompressed and
// parsed, as a map (0.7's entry order is its folder-listing order, ours is ours) and, re-encoded in
// 0.7's order by our writer, byte for byte with 0.7's bzip2 file; `.0.T.index` as the multiset of its
// byte-identical entry blocks; `.0.T.data` as the names and bytes of its regular-file members (tar and
// bzip2 framing carry the staging time and folder members in 0.7's output, so they are not compared).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bzip2CompressBytes, bzip2DecompressBytes } from '../../src/system/bzip2.js';
import { formatPersistentIndex, parsePersistentIndex } from '../../src/relay/protocol/page-index.js';
import { unpackUpdate } from '../../src/local/archive-extract.js';
import { createReadStream } from 'node:fs';
import { tree } from './harness.js';
import { indexSetup, relayNames } from './index-support.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/escale-0.7/', import.meta.url));
const MTIMES: Record<string, number> = { 'a.txt': 1700000000, 'dir/b.bin': 1700000100, 'dir/sub/unicode-é.txt': 1700000200, 'empty.txt': 1700000300 };

async function sourceWithMtimes(target: string): Promise<void> {
  await cp(join(FIXTURES, 'index-plain', 'source'), target, { recursive: true });
  for (const [path, mtime] of Object.entries(MTIMES)) await utimes(join(target, path), mtime, mtime);
}

function entryBlocks(text: string): string[] {
  // every block is `<name> <count>\n` followed by a 205-character record ending with `---pullers---\n`
  return text.split(/(?<=---pullers---\n)/).filter((b) => b !== '');
}

describe('pulling relays written by 0.7', () => {
  for (const scenario of ['index-plain', 'index-topdir', 'index-pullers2', 'index-fernet']) {
    test(scenario, { timeout: 60_000 }, async () => {
      const keys: Record<string, string | number> = { mode: 'download', index: scenario === 'index-topdir' ? 'topdir:1' : 1, 'checksum cache': 'no' };
      if (scenario === 'index-fernet') Object.assign(keys, { encryption: 'fernet', passphrase: join(FIXTURES, 'fernet.key') });
      if (scenario === 'index-pullers2') keys['puller count'] = 2;
      const s = await indexSetup({ bob: keys });
      try {
        await cp(join(FIXTURES, scenario, 'relay-after-push'), s.relay, { recursive: true });
        await s.once('bob');
        const got = await tree(s.folder('bob'));
        const want = await tree(join(FIXTURES, scenario, 'source'));
        assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
        for (const [path, state] of want) {
          assert.equal(got.get(path)?.sha256, state.sha256, path);
          assert.equal(got.get(path)?.mtimeSec, MTIMES[path], `${path} gets the index timestamp`);
        }
        const left = await relayNames(s.relay);
        if (scenario === 'index-pullers2') {
          // puller count = 2: the update stays, with bob recorded and its entries kept (relay-format.md F-5 fixed)
          const update = left.find((n) => /^\.0\.\d+\.index$/.test(n));
          assert.ok(update !== undefined);
          const text = await readFile(join(s.relay, update), 'utf8');
          assert.match(text, /^empty\.txt 205\n[\s\S]*---pullers---\n---pullers---\nbob$/);
        } else {
          assert.deepEqual(left, (await readdir(join(FIXTURES, scenario, 'relay-after-pull'))).sort(), 'the same files as 0.7 left');
        }
      } finally {
        await s.cleanup();
      }
    });
  }
});

test('our push of the fixture source equals what 0.7 wrote (index-plain)', { timeout: 60_000 }, async () => {
  const s = await indexSetup({ alice: { mode: 'upload', index: 1, 'checksum cache': 'no' } });
  try {
    await sourceWithMtimes(s.folder('alice'));
    await s.once('alice');
    const ours = await relayNames(s.relay);
    const theirsDir = join(FIXTURES, 'index-plain', 'relay-after-push');
    const theirs = (await readdir(theirsDir)).sort();
    const modT = (names: string[]) => names.map((n) => n.replace(/^\.0\.\d+\./, '.0.T.'));
    assert.deepEqual(modT(ours), modT(theirs));

    const ourIndex = parsePersistentIndex(await bzip2DecompressBytes(await readFile(join(s.relay, '.0.index')), { maxOutputBytes: 1 << 20 }));
    const theirBytes = await readFile(join(theirsDir, '.0.index'));
    const theirIndex = parsePersistentIndex(await bzip2DecompressBytes(theirBytes, { maxOutputBytes: 1 << 20 }));
    assert.deepEqual(ourIndex, new Map([...theirIndex]));
    const reordered = [...theirIndex.keys()].map((k) => [k, ourIndex.get(k)!] as const);
    assert.deepEqual(await bzip2CompressBytes(Buffer.from(formatPersistentIndex(reordered), 'utf8')), theirBytes, 'byte-identical .0.index in the same order');

    const ourUpdate = await readFile(join(s.relay, ours.find((n) => n.endsWith('.index') && n !== '.0.index')!), 'utf8');
    const theirUpdate = await readFile(join(theirsDir, theirs.find((n) => n.endsWith('.index') && n !== '.0.index')!), 'utf8');
    assert.deepEqual(entryBlocks(ourUpdate).sort(), entryBlocks(theirUpdate).sort(), 'the same update entries, byte for byte');

    const members = async (file: string, dir: string) => {
      const files = await unpackUpdate(createReadStream(file), dir, { maxBytes: 1 << 20, maxEntries: 100 });
      return new Map(await Promise.all(files.map(async (f) => [f.path, (await readFile(join(dir, f.path))).toString('hex')] as const)));
    };
    const ourData = await members(join(s.relay, ours.find((n) => n.endsWith('.data'))!), join(s.dir, 'x-ours'));
    const theirData = await members(join(theirsDir, theirs.find((n) => n.endsWith('.data'))!), join(s.dir, 'x-theirs'));
    assert.deepEqual(ourData, theirData, 'the same archive members with the same bytes');
    assert.equal((await readFile(join(s.relay, ours.find((n) => n.endsWith('.data'))!))).subarray(0, 4).toString('latin1'), 'BZh9');
  } finally {
    await s.cleanup();
  }
});

test('--dry-run on an index relay prints the plan and changes nothing', { timeout: 60_000 }, async () => {
  const s = await indexSetup({ bob: { mode: 'download', index: 1 } });
  try {
    await cp(join(FIXTURES, 'index-plain', 'relay-after-push'), s.relay, { recursive: true });
    const before = (await readdir(s.relay)).sort();
    const result = await s.once('bob', { extra: ['--dry-run'] });
    for (const path of Object.keys(MTIMES)) assert.ok((result.stdout + result.stderr).includes(path), `the plan names ${path}:\n${result.stdout}`);
    assert.deepEqual((await readdir(s.relay)).sort(), before, 'the relay is unchanged');
    assert.equal((await tree(s.folder('bob'))).size, 0, 'nothing was written locally');
  } finally {
    await s.cleanup();
  }
});
