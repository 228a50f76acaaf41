import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { escaleMain } from '../escale.js';
import { escalectlMain } from '../escalectl.js';
import { runIn } from './command-test-kit.js';
import { relayFiles, workspace } from './relay-test-workspace.js';

describe('escalectl rebase', () => {
  let root: string;
  let count = 0;
  before(() => (root = mkdtempSync(join(tmpdir(), 'escale-rebase-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A workspace whose bob.conf points bob at relay1, where alice pushes. */
  const fresh = (keys: string): ReturnType<typeof workspace> => {
    const ws = workspace(join(root, String((count += 1))), keys);
    writeFileSync(ws.bobConfig, readFileSync(ws.bobConfig, 'utf8').replace(ws.relay2, ws.relay1));
    return ws;
  };

  for (const encrypted of [false, true]) {
    test(`index relay${encrypted ? ' with Fernet' : ''}: every path moves under EXTRA_PATH, the pending update is repacked in place, a client gets the files there`, async () => {
      const dir = join(root, `key${count}`);
      let keys = 'index = 1\n';
      if (encrypted) {
        writeFileSync(dir, `${randomBytes(32).toString('base64url')}=`, { mode: 0o600 });
        keys += `encryption = fernet\npassphrase = ${dir}\n`;
      }
      const ws = fresh(keys);
      assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
      const updates = (): string[] => readdirSync(ws.relay1).filter((n) => /^\.0\.\d+\.(index|data)$/.test(n)).sort();
      const pending = updates();
      assert.equal(pending.length, 2, 'alice left a pending update');

      const result = await runIn(escalectlMain, ['-c', ws.config, 'rebase', '-r', 'alice', 'archive/2024']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(updates(), pending, 'the update keeps its T: never two update indices (configuration.md U-12)');
      assert.match(readFileSync(join(ws.relay1, pending[1] as string), 'utf8'), /^archive\/2024\/a\.txt \d+\n/m);
      assert.ok(!readdirSync(ws.relay1).some((n) => n.endsWith('.lock')), 'the page lock was released');

      assert.equal((await runIn(escaleMain, ['--once', '-c', ws.bobConfig])).code, 0);
      assert.equal(readFileSync(join(ws.folder('bob'), 'archive', '2024', 'a.txt'), 'utf8'), 'alpha');
      assert.equal(readFileSync(join(ws.folder('bob'), 'archive', '2024', 'd', 'b.txt'), 'utf8'), 'bravo');
      assert.ok(!existsSync(join(ws.folder('bob'), 'a.txt')), 'nothing is left at the old place');
    });
  }

  test('a page another client keeps locked is left untouched and reported (exit 1)', async () => {
    const ws = fresh('index = 1\n');
    assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
    const lock = 'lock%1.0\nowner: carol\nmode: r';
    writeFileSync(join(ws.relay1, '.0.lock'), lock);
    const before = relayFiles(ws.relay1);
    const result = await runIn(escalectlMain, ['-c', ws.config, 'rebase', '-r', 'alice', '--lock-wait', '0', 'x']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /page '0' not rebased: locked by another client/);
    assert.deepEqual(relayFiles(ws.relay1), before);
    assert.equal(readFileSync(join(ws.relay1, '.0.lock'), 'utf8'), lock);
  });

  test('refusals: topdir pages, placeholder relays, unsafe paths; an empty path does nothing', async () => {
    const topdir = fresh('index = topdir\n');
    const refused = await runIn(escalectlMain, ['-c', topdir.config, 'rebase', '-r', 'alice', 'x']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /not supported for directory-paged indices/);

    const placeholder = fresh('');
    const notIndex = await runIn(escalectlMain, ['-c', placeholder.config, 'rebase', '-r', 'alice', 'x']);
    assert.equal(notIndex.code, 2);
    assert.match(notIndex.stderr, /index-based relays only/);
    assert.match((await runIn(escalectlMain, ['-c', placeholder.config, 'rebase', '-r', 'alice', '../x'])).stderr, /cannot be a folder of the repository/);
    assert.match((await runIn(escalectlMain, ['-c', placeholder.config, 'rebase', '-r', 'alice', '.hidden'])).stderr, /cannot be a folder of the repository/);
    const empty = await runIn(escalectlMain, ['-c', placeholder.config, 'rebase', '-r', 'alice', '']);
    assert.deepEqual([empty.code, empty.stdout], [0, 'nothing to do: EXTRA_PATH is empty\n']);
  });
});
