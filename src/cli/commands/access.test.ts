import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { relPath } from '../../core/relpath.js';
import { persistentFile } from '../../daemon/client.js';
import { AccessStore } from '../../local/access.js';
import { escalectlMain } from '../escalectl.js';
import { runAccess } from './access.js';
import { capture, runIn, type RunResult } from './command-test-kit.js';

describe('escalectl access', () => {
  let dir: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'escale-access-'));
    for (const name of ['alice', 'bob']) mkdirSync(join(dir, name, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'alice', 'a.txt'), 'a');
    writeFileSync(join(dir, 'alice', 'sub', 'both.txt'), 'x');
    writeFileSync(join(dir, 'bob', 'sub', 'both.txt'), 'y');
    config = join(dir, 'escale.conf');
    const section = (name: string): string => `[${name}]\nclient name = ${name}\nlocal path = ${join(dir, name)}\nprotocol = file\nrelay path = ${join(dir, 'relay')}\n`;
    writeFileSync(config, `cache dir = ${join(dir, 'cache')}\nlog file = ${join(dir, 'log')}\n\n${section('alice')}\n${section('bob')}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[]): Promise<RunResult> => runIn(escalectlMain, ['-c', config, ...args]);

  test('a file without record shows r?w?; set, show, unset', async () => {
    assert.deepEqual(await run(['access', join(dir, 'alice', 'a.txt')]), { code: 0, stdout: 'r?w?\n', stderr: '' });
    assert.equal((await run(['access', join(dir, 'alice', 'a.txt'), 'r-', 'w+'])).code, 0);
    assert.equal((await run(['access', 'a.txt'])).stdout, 'r-w+\n', 'a relative path not found from the cwd is relative to the local root');
    assert.equal((await run(['access', 'a.txt', 'w?'])).code, 0);
    assert.equal((await run(['access', 'a.txt'])).stdout, 'r-w?\n', 'letters not given keep their value');
    assert.equal((await run(['access', 'a.txt', 'r'])).code, 0);
    assert.equal((await run(['access', 'a.txt'])).stdout, 'r+w?\n', 'a letter alone means +');
  });

  test('writes the store the daemon reads (am<sha224(section)> in the data folder)', async () => {
    assert.equal((await run(['access', '-r', 'alice', 'sub/both.txt', 'w-'])).code, 0);
    const client = (await loadConfig(config)).clients.find((c) => c.section === 'alice')!;
    const store = await AccessStore.open(persistentFile(client, 'am'));
    try {
      assert.deepEqual(store.get(relPath('sub/both.txt')), { write: false });
    } finally {
      await store.close();
    }
  });

  test('a path from the current folder is made relative to the section that contains it', async () => {
    const output = capture();
    assert.equal(await runAccess('sub/both.txt', ['r-'], {}, { configFile: config, output }, join(dir, 'bob')), 0);
    assert.equal((await run(['access', '-r', 'bob', 'sub/both.txt'])).stdout, 'r-w?\n');
  });

  test('a file in two sections needs -r; unknown files and sections are errors', async () => {
    const both = await run(['access', 'sub/both.txt']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /'sub\/both.txt' found in multiple repositories \(\[alice\], \[bob\]\)/);
    const missing = await run(['access', 'nowhere.txt']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot find file 'nowhere.txt'/);
    assert.match((await run(['access', 'nowhere.txt', 'r-'])).stderr, /cannot find file/, 'set needs the file or a record');
    const section = await run(['access', '-r', 'carol', 'a.txt']);
    assert.equal(section.code, 2);
    assert.match(section.stderr, /no section \[carol\].*sections: \[alice\], \[bob\]/);
  });

  test('bad modifiers are usage errors and change nothing', async () => {
    for (const bad of ['x+', 'r+r-', 'r*', 'w+-']) {
      const result = await run(['access', '-r', 'alice', 'a.txt', bad]);
      assert.equal(result.code, 2, bad);
      assert.match(result.stderr, /access modifier/, bad);
    }
    assert.equal((await run(['access', 'a.txt'])).stdout, 'r+w?\n');
  });

  test('--list and --json', async () => {
    const list = await run(['access', '--list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^\[alice\] r\+w\? {2}a\.txt$/m);
    assert.match(list.stdout, /^\[bob\] r-w\? {2}sub\/both\.txt$/m);
    const json = JSON.parse((await run(['access', '-r', 'alice', '--list', '--json'])).stdout) as unknown[];
    assert.deepEqual(json, [
      { section: 'alice', path: 'a.txt', read: true, write: null, modifiers: 'r+w?' },
      { section: 'alice', path: 'sub/both.txt', read: null, write: false, modifiers: 'r?w-' },
    ]);
    assert.deepEqual(JSON.parse((await run(['access', '--json', 'a.txt'])).stdout), { section: 'alice', path: 'a.txt', read: true, write: null, modifiers: 'r+w?' });
    assert.equal((await run(['access', '--list', 'a.txt'])).code, 2, '--list takes no file');
    assert.equal((await run(['access'])).code, 2, 'a file or --list is needed');
  });
});
