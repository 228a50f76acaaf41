import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { relPath } from '../../core/relpath.js';
import { silentLogger } from '../../core/log.js';
import { indexRelayFor, openRelayBackend, persistentFile } from '../../daemon/client.js';
import { AccessStore } from '../../local/access.js';
import type { MetadataRecord } from '../../relay/protocol/records.js';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { escalectlMain } from '../escalectl.js';
import { runIn, workspace, type Workspace } from './command-test-kit.js';

describe('escalectl list-pending', () => {
  let ws: Workspace;
  const record: MetadataRecord = { version: '1.0', pusher: 'bob', timestamp: 1_700_000_000, checksum: 'ab', pullers: [] };

  /** Writes the persistent index of `page` on a section's relay, listing `paths`. */
  const writeIndex = async (section: string, page: string, paths: string[]): Promise<void> => {
    const client = await ws.client(section);
    const backend = await openRelayBackend(client, { logger: silentLogger });
    try {
      await indexRelayFor(client, backend, silentLogger).writePersistentIndex(page, paths.map((p) => [relPath(p), record] as const));
    } finally {
      await backend.close();
    }
  };
  const touch = (...parts: string[]): void => {
    mkdirSync(join(ws.dir, ...parts.slice(0, -1)), { recursive: true });
    writeFileSync(join(ws.dir, ...parts), parts.join('/'));
  };

  before(async () => {
    ws = workspace('pending', {
      alice: { index: '1', exclude: '*.tmp' },
      topics: { index: 'topdir', 'relay path': 'topics-relay' },
      reader: { index: '1', mode: 'download', 'local path': 'alice' },
      fresh: { index: '1', 'relay path': 'empty-relay', 'local path': 'alice' },
    });
    for (const name of ['known.txt', 'new.txt', 'draft.tmp', '.hidden', 'private.txt']) touch('alice', name);
    touch('alice', 'sub', 'known.txt');
    touch('alice', 'sub', 'one.txt');
    touch('alice', 'sub', 'deeper', 'two.txt');
    const access = await AccessStore.open(persistentFile(await ws.client('alice'), 'am'));
    access.set(relPath('private.txt'), { read: false });
    await access.close();
    await writeIndex('alice', '0', ['known.txt', 'sub/known.txt', 'gone-elsewhere.txt']);

    touch('topics', 'music', 'a.mp3');
    touch('topics', 'music', 'b.mp3');
    touch('topics', 'photos', 'c.jpg');
    touch('topics', 'top.txt');
    await writeIndex('topics', 'music', ['music/a.mp3']);
  });
  after(() => ws.remove());

  test('lists exactly the local files absent from the page index (filters, r- and dot files left out)', async () => {
    const listed = await ws.run(['list-pending', '-r', 'alice']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, "in page '0':\n  new.txt\n  sub/deeper/two.txt\n  sub/one.txt\n");
  });

  test('-d prints the folders; pages with an empty or missing index are left out; -p picks pages', async () => {
    assert.equal((await ws.run(['list-pending', '-r', 'alice', '-d'])).stdout, "in page '0':\n  .\n  sub\n  sub/deeper\n");
    assert.equal((await ws.run(['list-pending', '-r', 'topics'])).stdout, "in page 'music':\n  music/b.mp3\n", "pages 'photos' and '0' have no index yet");
    assert.equal((await ws.run(['list-pending', '-r', 'topics', '-p', 'photos'])).stdout, '');
    assert.equal((await ws.run(['list-pending', '-r', 'fresh'])).stdout, '', 'nothing was ever pushed to this relay');
  });

  test('every section: download-mode sections are skipped with the message; --json', async () => {
    const all = await ws.run(['list-pending']);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(
      all.stdout,
      "skipping repository: reader (download mode: nothing is uploaded)\n[alice]\nin page '0':\n  new.txt\n  sub/deeper/two.txt\n  sub/one.txt\n[topics]\nin page 'music':\n  music/b.mp3\n[fresh]\n",
    );
    const json = JSON.parse((await ws.run(['list-pending', '--json', '-d'])).stdout) as unknown;
    assert.deepEqual(json, [
      { section: 'alice', pages: [{ page: '0', pending: ['.', 'sub', 'sub/deeper'] }] },
      { section: 'topics', pages: [{ page: 'music', pending: ['music'] }] },
      { section: 'fresh', pages: [] },
      { section: 'reader', skipped: 'download mode: nothing is uploaded' },
    ]);
  });

  test("escale's own files inside the local folder (stores, log, PID file) are never pending, as the daemon never sends them", async () => {
    const local = join(ws.dir, 'keeper');
    mkdirSync(local, { recursive: true });
    const config = join(local, 'keeper.conf');
    // why: the configuration, its data folder (`cache dir`), log and PID file all live in the synced folder.
    writeFileSync(config, `cache dir = ${join(local, 'state')}\nlog file = ${join(local, 'escale.log')}\n\n[keeper]\nclient name = keeper\nprotocol = file\nindex = 1\nlocal path = ${local}\nrelay path = ${join(ws.dir, 'keeper-relay')}\n`);
    mkdirSync(join(ws.dir, 'keeper-relay'));
    const client = (await loadConfig(config)).clients[0] as ClientConfig;
    mkdirSync(client.dataDir, { recursive: true });
    writeFileSync(persistentFile(client, 'bs'), 'base state');
    writeFileSync(join(local, 'escale.log'), 'a log line');
    writeFileSync(join(local, 'keeper.pid'), '4242');
    writeFileSync(join(local, 'mine.txt'), 'a file of the user');
    writeFileSync(join(local, 'known.txt'), 'in the index');
    const backend = await openRelayBackend(client, { logger: silentLogger });
    try {
      await indexRelayFor(client, backend, silentLogger).writePersistentIndex('0', [[relPath('known.txt'), record] as const]);
    } finally {
      await backend.close();
    }
    const listed = await runIn(escalectlMain, ['-c', config, 'list-pending']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, "in page '0':\n  keeper.conf\n  mine.txt\n", 'the configuration is the user\'s file; the stores, log and PID file are escale\'s');
  });

  test('usage errors and --help', async () => {
    const reader = await ws.run(['list-pending', '-r', 'reader']);
    assert.equal(reader.code, 2);
    assert.match(reader.stderr, /list-pending: no section .* \(\[reader\] download mode/);
    assert.equal((await ws.run(['list-pending', '-p', ''])).code, 2);
    const help = await ws.run(['list-pending', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /-d, --directories/);
    assert.match(help.stdout, /--json/);
  });
});
