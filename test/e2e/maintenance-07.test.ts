// End-to-end: `escalectl fix` and `escalectl rebase` rewrite the indexes of an index relay that a 0.7
// client ("zoe", her pushes written as 0.7 writes them: escale07-writer.ts) shares. Entries whose
// names escale refuses (a backslash, a tab) and names spelled in NFD are what zoe's client matches
// byte for byte: both commands keep them, as a daemon's rewrite does, so that zoe still finds her
// files. A pending update whose archive holds a member escale cannot extract is never repacked
// (that member would be lost): rebase leaves its page untouched and says why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bzip2CompressBytes, bzip2DecompressBytes } from '../../src/system/bzip2.js';
import { formatPersistentIndex, formatUpdateIndex, parsePersistentIndexContent, parseUpdateIndex, type ParsedIndex } from '../../src/relay/protocol/page-index.js';
import { record07, tar07, writeIndexPush07, type Pushed07 } from './escale07-writer.js';
import { allPaths, put, runEscalectl } from './harness.js';
import { indexSetup } from './index-support.js';

const T1 = 1_700_000_100;
const T2 = 1_700_000_200;
const file07 = (name: string, content: string): Pushed07 => ({ name: Buffer.from(name), content: Buffer.from(content), mtimeSec: T1 });
const NFD_1 = 'Crème brûlée.txt'.normalize('NFD');
const NFD_2 = 'Łódź/Zürich.txt'.normalize('NFD');
const ZOE_T1 = [file07(NFD_1, 'dessert'), file07('plain.txt', 'plain'), file07('a\\b.txt', 'backslash'), file07('tab\tx.txt', 'tab')];
const REFUSED = ['a\\b.txt', 'tab\tx.txt'];

async function persistentIndex(relay: string): Promise<ParsedIndex> {
  const bytes = await bzip2DecompressBytes(await readFile(join(relay, '.0.index')), { maxOutputBytes: 1 << 24 });
  return parsePersistentIndexContent(bytes, { onSkip: () => undefined });
}

/** The relay's files and their bytes (locks left out), to show that a refused command changed nothing. */
async function relayBytes(relay: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of await allPaths(relay)) {
    if (path.endsWith('.lock')) continue;
    out.set(path, (await readFile(join(relay, path)).catch(() => Buffer.alloc(0))).toString('base64'));
  }
  return out;
}

test("escalectl fix keeps a 0.7 client's refused entries and NFD spellings in the index it rebuilds", { timeout: 180_000 }, async () => {
  const s = await indexSetup({ alice: { index: 1 } });
  try {
    await writeIndexPush07(s.relay, 'zoe', '0', T1, ZOE_T1);
    await s.once('alice');
    assert.deepEqual((await readdir(s.folder('alice'))).filter((n) => !n.startsWith('.')).sort(), [NFD_1, 'plain.txt'].sort(), 'alice received what she can sync, in zoe\'s spelling');
    await put(s.folder('alice'), 'mine.txt', 'alice wrote this', T2);
    const fixed = await runEscalectl(['-c', s.config, 'fix', '-r', 'alice']);
    assert.equal(fixed.code, 0, fixed.stderr);
    const index = await persistentIndex(s.relay);
    assert.deepEqual([...index.entries.keys()].sort(), [NFD_1.normalize('NFC'), 'mine.txt', 'plain.txt'].sort());
    for (const record of index.entries.values()) assert.equal(record.pusher, 'alice', 'fix describes the local files as its own pushes');
    assert.equal(index.spellings.get(NFD_1.normalize('NFC') as never), NFD_1, "zoe's spelling of her file stays");
    assert.deepEqual(
      index.kept.map((entry) => [entry.name, entry.record]),
      REFUSED.map((name) => [name, record07('zoe', ZOE_T1.find((f) => f.name.toString() === name) as Pushed07)]),
      "zoe's entries that escale refuses stay, with her records",
    );
  } finally {
    await s.cleanup();
  }
});

test("escalectl rebase moves a 0.7 client's refused entries and NFD spellings with the others; a pending update it cannot repack is left untouched", { timeout: 180_000 }, async () => {
  const s = await indexSetup({ alice: { index: 1 }, bob: { index: 1, mode: 'download' } });
  try {
    await writeIndexPush07(s.relay, 'zoe', '0', T1, ZOE_T1);
    const before = await relayBytes(s.relay);
    const refused = await runEscalectl(['-c', s.config, 'rebase', '-r', 'alice', 'moved']);
    assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
    assert.match(refused.stderr, new RegExp(`page '0' not rebased: its pending update ${T1} holds files whose names escale does not sync \\("a\\\\\\\\b.txt", "tab\\\\tx.txt"\\); left untouched`));
    assert.deepEqual(await relayBytes(s.relay), before, 'nothing of the page changed');

    // alice reads the update (the last puller: it leaves the relay); zoe pushes a second one.
    await s.once('alice');
    const nfd2 = { ...file07(NFD_2, 'a city'), mtimeSec: T2 };
    await writeFile(join(s.relay, `.0.${T2}.data`), await bzip2CompressBytes(tar07([nfd2])));
    await writeFile(join(s.relay, `.0.${T2}.index`), formatUpdateIndex([], [], { kept: [{ name: NFD_2, record: record07('zoe', nfd2) }] }));
    const all = [...ZOE_T1, nfd2].map((f) => ({ name: f.name.toString(), record: record07('zoe', f) }));
    await writeFile(join(s.relay, '.0.index'), await bzip2CompressBytes(Buffer.from(formatPersistentIndex([], { kept: all }), 'utf8')));

    const rebased = await runEscalectl(['-c', s.config, 'rebase', '-r', 'alice', 'moved']);
    assert.equal(rebased.code, 0, rebased.stderr);
    const index = await persistentIndex(s.relay);
    assert.deepEqual([...index.entries.keys()].sort(), ['moved/plain.txt', `moved/${NFD_1}`.normalize('NFC'), `moved/${NFD_2}`.normalize('NFC')].sort());
    assert.equal(index.spellings.get(`moved/${NFD_1}`.normalize('NFC') as never), `moved/${NFD_1}`);
    assert.equal(index.spellings.get(`moved/${NFD_2}`.normalize('NFC') as never), `moved/${NFD_2}`);
    assert.deepEqual(index.kept.map((entry) => entry.name), REFUSED.map((name) => `moved/${name}`));
    const update = parseUpdateIndex(await readFile(join(s.relay, `.0.${T2}.index`)), { onSkip: () => undefined });
    assert.equal(update.spellings.get(`moved/${NFD_2}`.normalize('NFC') as never), `moved/${NFD_2}`, 'the update index keeps the spelling');
    const tar = await bzip2DecompressBytes(await readFile(join(s.relay, `.0.${T2}.data`)), { maxOutputBytes: 1 << 24 });
    assert.ok(tar.includes(Buffer.from(`moved/${NFD_2}`)), 'the repacked archive names its member as the update index spells it');

    await s.once('bob');
    assert.deepEqual(await readdir(join(s.folder('bob'), 'moved', NFD_2.split('/')[0] as string)), [NFD_2.split('/')[1]], "a new client gets zoe's file in her spelling, under the new folder");
    assert.equal(await readFile(join(s.folder('bob'), 'moved', NFD_2), 'utf8'), 'a city');
  } finally {
    await s.cleanup();
  }
});
