import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { escaleMain } from '../escale.js';
import { escalectlMain } from '../escalectl.js';
import { runIn } from './command-test-kit.js';
import { relayFiles, workspace } from './relay-test-workspace.js';

describe('escalectl migrate', () => {
  let root: string;
  let count = 0;
  before(() => (root = mkdtempSync(join(tmpdir(), 'escale-migrate-'))));
  after(() => rmSync(root, { recursive: true, force: true }));
  const fresh = (keys = ''): ReturnType<typeof workspace> => workspace(join(root, String((count += 1))), keys);

  for (const [flavour, keys] of [['placeholder', ''], ['index', 'index = 1\n']] as const) {
    test(`${flavour} relay: copied to an empty relay, configuration rewritten, a client syncs from the new relay`, async () => {
      const ws = fresh(keys);
      assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
      const before = relayFiles(ws.relay1);
      assert.ok(before.size >= 2, 'alice pushed');

      const result = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', `file://${ws.relay2}`]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /progress: \d+ of \d+ files/);
      assert.deepEqual(relayFiles(ws.relay2), before, 'identical file sets');
      assert.deepEqual(relayFiles(ws.relay1), before, 'the source relay is left as it was');
      assert.equal(readdirSync(ws.relay1).filter((n) => n.endsWith('.lock')).length, 0, 'no lock left behind');

      const text = readFileSync(ws.config, 'utf8');
      assert.equal(readFileSync(`${ws.config}.bak`, 'utf8'), ws.text, 'the previous configuration is kept');
      assert.equal(text, ws.text.replace(`relay path = ${ws.relay1}`, `relay path = ${ws.relay2}`), 'only the relay path line changed; comments and the other section stay');

      assert.equal((await runIn(escaleMain, ['--once', '-c', ws.bobConfig])).code, 0);
      assert.equal(readFileSync(join(ws.folder('bob'), 'a.txt'), 'utf8'), 'alpha');
      assert.equal(readFileSync(join(ws.folder('bob'), 'd', 'b.txt'), 'utf8'), 'bravo');
    });
  }

  test('--dry-run prints the planned change and copies and changes nothing', async () => {
    const ws = fresh();
    assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
    const result = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', '--dry-run', `ftp://new.example.org:2121/team`]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /would copy file:\/\/.*relay1 to ftp:\/\/new\.example\.org:2121\/team/);
    assert.match(result.stdout, /protocol: 'file' -> 'ftp'/);
    assert.match(result.stdout, /host address: added 'new\.example\.org'/);
    assert.match(result.stdout, /port: added '2121'/);
    assert.match(result.stdout, /relay path: '.*relay1' -> 'team'/);
    assert.equal(readFileSync(ws.config, 'utf8'), ws.text);
    assert.ok(!existsSync(`${ws.config}.bak`));
    assert.equal(relayFiles(ws.relay2).size, 0);
  });

  test('a file another client keeps locked is reported (exit 1), its lock left, and the configuration not changed', async () => {
    const ws = fresh();
    assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
    const lock = join(ws.relay1, '.a.txt.lock');
    writeFileSync(lock, 'lock%1.0\nowner: carol\nmode: r');
    const result = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', '--lock-wait', '0', `file://${ws.relay2}`]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the following files could not be transfered:\n.*a\.txt: locked by another client/);
    assert.equal(readFileSync(lock, 'utf8'), 'lock%1.0\nowner: carol\nmode: r');
    assert.ok(existsSync(join(ws.relay2, 'd', 'b.txt')), 'the other files are copied');
    assert.equal(readFileSync(ws.config, 'utf8'), ws.text);
    assert.ok(!existsSync(`${ws.config}.bak`));
  });

  test('to another section: copy only; to a configuration file: that file\'s relay for the same section', async () => {
    const ws = fresh();
    assert.equal((await runIn(escaleMain, ['--once', '-c', ws.config, '-s', 'alice'])).code, 0);
    const cross = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', 'mirror']);
    assert.equal(cross.code, 0, cross.stderr);
    assert.deepEqual(relayFiles(ws.relay2), relayFiles(ws.relay1));
    assert.equal(readFileSync(ws.config, 'utf8'), ws.text);

    const relay3 = join(dirname(ws.config), 'relay3');
    const other = join(dirname(ws.config), 'new.conf');
    writeFileSync(other, `[alice]\nclient name = someone-else\nlocal path = ${ws.folder('alice')}\nprotocol = file\nrelay path = ${relay3}\n`);
    mkdirSync(relay3);
    const moved = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', other]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stderr, /cannot modify client name at migration time; ignoring the new value/);
    assert.deepEqual(relayFiles(relay3), relayFiles(ws.relay1));
    const text = readFileSync(ws.config, 'utf8');
    assert.ok(text.includes(`relay path = ${relay3}`) && text.includes('client name = alice'));

    writeFileSync(other, `[bob]\nlocal path = /tmp\nprotocol = file\nrelay path = ${relay3}\n`);
    const renamed = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', other]);
    assert.equal(renamed.code, 2);
    assert.match(renamed.stderr, /cannot change repository name/);
  });

  test('usage errors: no protocol, unknown or ambiguous section, a login in the address', async () => {
    const ws = fresh();
    const noProtocol = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'alice', 'server.example.org/relay']);
    assert.equal(noProtocol.code, 2);
    assert.match(noProtocol.stderr, /relay host address should include protocol/);
    assert.match((await runIn(escalectlMain, ['-c', ws.config, 'migrate', '-r', 'nobody', 'file:///x'])).stderr, /cannot find repository: nobody/);
    assert.match((await runIn(escalectlMain, ['-c', ws.config, 'migrate', 'file:///x'])).stderr, /several repositories defined; please specify with '--repository'/);
    const withLogin = await runIn(escalectlMain, ['-c', ws.config, 'migrate', '--dry-run', '-r', 'alice', 'ftp://me:Pw-in-the-address@127.0.0.1:2121/relay']);
    assert.equal(withLogin.code, 2);
    assert.match(withLogin.stderr, /the destination address holds a user name or password/);
    assert.doesNotMatch(withLogin.stderr + withLogin.stdout, /Pw-in-the-address/);
    assert.equal(readFileSync(ws.config, 'utf8').includes('Pw-in-the-address'), false, 'the configuration is not rewritten');
  });
});
