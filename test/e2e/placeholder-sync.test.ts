// End-to-end: real escale processes synchronise real folders through a `file` relay with the
// placeholder protocol.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allPaths, bigFile, fileRelayConfig, put, runEscale, tree, workspace, type FileState } from './harness.js';

interface Setup {
  dir: string;
  relay: string;
  config: string;
  folder(name: string): string;
  once(section: string): Promise<void>;
  cleanup(): Promise<void>;
}

async function setup(sections: Record<string, Record<string, string | number>>, globals: Record<string, string | number> = {}): Promise<Setup> {
  const ws = await workspace();
  const { relay, config } = await fileRelayConfig(ws.dir, sections, globals);
  return {
    dir: ws.dir,
    relay,
    config,
    folder: (name) => join(ws.dir, name),
    async once(section) {
      const result = await runEscale(['--once', '-c', config, '--section', section]);
      assert.equal(result.code, 0, `escale --once [${section}] failed:\n${result.stderr}`);
    },
    cleanup: ws.cleanup,
  };
}

/** Runs rounds of the given sections in order until nothing changes any more (at most `max` passes). */
async function settle(s: Setup, sections: string[], max = 6): Promise<void> {
  let previous = '';
  for (let pass = 0; pass < max; pass += 1) {
    for (const section of sections) await s.once(section);
    const state = JSON.stringify(await Promise.all([s.relay, ...sections.map(s.folder)].map(async (d) => [...(await tree(d, { includeHidden: true }))])));
    if (state === previous) return;
    previous = state;
  }
}

function assertSameTrees(a: Map<string, FileState>, b: Map<string, FileState>, label: string): void {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), `${label}: file lists differ`);
  for (const [path, state] of a) assert.deepEqual(b.get(path), state, `${label}: '${path}' differs`);
}

describe('placeholder protocol, three clients (alice and bob shared, carol download, puller count 2)', () => {
  let s: Setup;
  before(async () => {
    s = await setup({ alice: { mode: 'shared' }, bob: { mode: 'shared' }, carol: { mode: 'download' } }, { 'puller count': 2 });
  });
  after(() => s.cleanup());

  test('new files from alice and bob reach everyone with identical bytes and mtimes', async () => {
    await put(s.folder('alice'), 'top.txt', 'alice top\n', 1_700_000_000);
    await put(s.folder('alice'), 'deep/er/nested/file.bin', randomBytes(10_000), 1_700_000_100);
    await put(s.folder('alice'), 'unicode/\u00e9t\u00e9 \u2603.txt', 'snow\n', 1_700_000_200);
    await put(s.folder('alice'), 'empty.txt', '', 1_700_000_300);
    await bigFile(join(s.folder('alice'), 'big/fifty.bin'), 50);
    await put(s.folder('bob'), 'from-bob/notes.md', '# bob\n', 1_700_000_400);
    await put(s.folder('carol'), 'carol-only.txt', 'carol never pushes\n', 1_700_000_500);
    await settle(s, ['alice', 'bob', 'carol']);

    const alice = await tree(s.folder('alice'));
    const bob = await tree(s.folder('bob'));
    const carol = await tree(s.folder('carol'));
    assert.equal(alice.size, 6);
    assertSameTrees(alice, bob, 'alice vs bob');
    const carolShared = new Map([...carol].filter(([p]) => p !== 'carol-only.txt'));
    assertSameTrees(alice, carolShared, 'alice vs carol');
    assert.equal(alice.get('top.txt')?.mtimeSec, 1_700_000_000);

    // download never pushes: carol's own file is nowhere else; the relay holds no data any more
    // (both pullers have everything) and no lock.
    assert.equal(bob.has('carol-only.txt'), false);
    const relay = await allPaths(s.relay);
    assert.deepEqual(relay.filter((p) => !p.split('/').pop()!.startsWith('.') && !relay.some((q) => q.startsWith(`${p}/`))), [], 'no data left on the relay');
    assert.deepEqual(relay.filter((p) => p.endsWith('.lock')), [], 'no lock left on the relay');
  });

  test('modifications on each side propagate, newer wins', async () => {
    await put(s.folder('alice'), 'top.txt', 'alice top, second version\n', 1_700_001_000);
    await put(s.folder('bob'), 'from-bob/notes.md', '# bob, edited\n', 1_700_001_100);
    await settle(s, ['alice', 'bob', 'carol']);
    for (const name of ['alice', 'bob', 'carol']) {
      assert.equal(await readFile(join(s.folder(name), 'top.txt'), 'utf8'), 'alice top, second version\n', name);
      assert.equal(await readFile(join(s.folder(name), 'from-bob/notes.md'), 'utf8'), '# bob, edited\n', name);
    }
    assertSameTrees(await tree(s.folder('alice')), await tree(s.folder('bob')), 'alice vs bob');
  });
});

describe('modes', () => {
  test('upload never changes local files and download never pushes', async () => {
    const s = await setup({ up: { mode: 'upload' }, down: { mode: 'download' }, other: { mode: 'shared' } });
    try {
      await put(s.folder('up'), 'a.txt', 'from up\n', 1_700_000_000);
      await put(s.folder('down'), 'mine.txt', 'down keeps this\n', 1_700_000_000);
      await put(s.folder('other'), 'b.txt', 'from other\n', 1_700_000_000);
      await settle(s, ['up', 'other', 'down']);
      assert.deepEqual([...(await tree(s.folder('up'))).keys()], ['a.txt'], 'upload received nothing');
      const down = await tree(s.folder('down'));
      assert.equal(down.has('a.txt') || down.has('b.txt'), true, 'download received files');
      assert.equal((await tree(s.folder('other'))).has('mine.txt'), false, 'download pushed nothing');
      assert.equal((await allPaths(s.relay)).some((p) => p.includes('mine.txt')), false, 'nothing of download on the relay');
    } finally {
      await s.cleanup();
    }
  });

  test('conservative never overwrites a file modified locally', async () => {
    const s = await setup({ alice: { mode: 'shared' }, cons: { mode: 'conservative' } });
    try {
      await put(s.folder('alice'), 'doc.txt', 'v1 from alice\n', 1_700_000_000);
      await settle(s, ['alice', 'cons']);
      assert.equal(await readFile(join(s.folder('cons'), 'doc.txt'), 'utf8'), 'v1 from alice\n', 'received from another client');
      // cons edits it locally (and pushes it), then alice sends a newer version
      await put(s.folder('cons'), 'doc.txt', 'edited by cons\n', 1_700_000_100);
      await settle(s, ['cons', 'alice']);
      await put(s.folder('alice'), 'doc.txt', 'v3 from alice\n', 1_700_000_200);
      await settle(s, ['alice', 'cons']);
      assert.equal(await readFile(join(s.folder('cons'), 'doc.txt'), 'utf8'), 'edited by cons\n');
      // a file that existed before escale saw it is protected too
      await put(s.folder('cons'), 'preexisting.txt', 'cons had it first\n', 1_600_000_000);
      await put(s.folder('alice'), 'preexisting.txt', 'alice newer\n', 1_700_000_300);
      await settle(s, ['alice', 'cons']);
      assert.equal(await readFile(join(s.folder('cons'), 'preexisting.txt'), 'utf8'), 'cons had it first\n');
    } finally {
      await s.cleanup();
    }
  });

  test('puller count 2: the relay copy stays until both pullers have it, then disappears', async () => {
    const s = await setup({ alice: { mode: 'upload' }, bob: { mode: 'download' }, carol: { mode: 'download' } }, { 'puller count': 2 });
    try {
      await put(s.folder('alice'), 'shared.txt', 'for two pullers\n', 1_700_000_000);
      await s.once('alice');
      const data = join(s.relay, 'shared.txt');
      assert.equal((await tree(s.relay)).has('shared.txt'), true);
      await s.once('bob');
      assert.equal(await readFile(join(s.folder('bob'), 'shared.txt'), 'utf8'), 'for two pullers\n');
      assert.equal(await readFile(data, 'utf8'), 'for two pullers\n', 'still on the relay after the first puller');
      await s.once('bob');
      assert.equal((await tree(s.relay)).has('shared.txt'), true, 'a second round of the same puller does not count twice');
      await s.once('carol');
      assert.equal(await readFile(join(s.folder('carol'), 'shared.txt'), 'utf8'), 'for two pullers\n');
      assert.equal((await tree(s.relay)).has('shared.txt'), false, 'gone after the second puller');
      const placeholder = await readFile(join(s.relay, '.shared.txt.placeholder'), 'utf8');
      assert.match(placeholder, /---pullers---\nbob\ncarol$/);
    } finally {
      await s.cleanup();
    }
  });

  test('puller count 2: a puller that already had the file registers without downloading, and the relay copy leaves with the second puller', async () => {
    const s = await setup({ alice: { mode: 'upload' }, bob: { mode: 'download' }, carol: { mode: 'download' } }, { 'puller count': 2 });
    try {
      await put(s.folder('alice'), 'shared.txt', 'both will have it\n', 1_700_000_000);
      // carol got the same bytes some other way, with another mtime
      await put(s.folder('carol'), 'shared.txt', 'both will have it\n', 1_600_000_000);
      const carolBefore = (await tree(s.folder('carol'))).get('shared.txt');
      await s.once('alice');
      await s.once('carol');
      assert.deepEqual((await tree(s.folder('carol'))).get('shared.txt'), carolBefore, "carol's file is left as it was");
      assert.equal((await tree(s.relay)).has('shared.txt'), true, 'one puller recorded: the relay copy stays');
      assert.match(await readFile(join(s.relay, '.shared.txt.placeholder'), 'utf8'), /---pullers---\ncarol$/);
      await s.once('carol');
      assert.equal((await tree(s.relay)).has('shared.txt'), true, 'a second round of the same puller does not count twice');
      await s.once('bob');
      assert.equal(await readFile(join(s.folder('bob'), 'shared.txt'), 'utf8'), 'both will have it\n');
      assert.equal((await tree(s.relay)).has('shared.txt'), false, 'gone once two distinct pullers are recorded');
      assert.match(await readFile(join(s.relay, '.shared.txt.placeholder'), 'utf8'), /---pullers---\ncarol\nbob$/);
      assert.deepEqual((await allPaths(s.relay)).filter((path) => path.endsWith('.lock')), [], 'no lock left');
    } finally {
      await s.cleanup();
    }
  });
});
