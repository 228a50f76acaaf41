import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { relPath } from '../../core/relpath.js';
import { silentLogger } from '../../core/log.js';
import { checksumCacheFile, openClient } from '../../daemon/client.js';
import { ChecksumCache } from '../../local/checksum-cache.js';
import { RACY_MS } from '../../local/file-identity.js';
import { hashFile } from '../../local/checksum.js';
import { parseMetadata } from '../../relay/protocol/placeholder.js';
import { workspace, type Workspace } from './command-test-kit.js';

describe('escalectl make-cache / clear-cache', () => {
  let ws: Workspace;
  before(() => {
    ws = workspace('cache', {
      alice: {},
      memory: { 'local path': 'alice', 'relay path': 'other', 'checksum cache': 'no' },
    });
    mkdirSync(join(ws.dir, 'alice', 'sub'));
    writeFileSync(join(ws.dir, 'alice', 'a.txt'), 'original');
    writeFileSync(join(ws.dir, 'alice', 'sub', 'b.txt'), 'bravo');
    writeFileSync(join(ws.dir, 'alice', '.hidden'), 'never synchronised');
  });
  // why: a file changed less than RACY_MS ago is hashed but not cached (a write in the same
  // timestamp tick could follow unseen); these files must be older for make-cache to keep them.
  before(() => new Promise((resolve) => setTimeout(resolve, RACY_MS + 100)));
  after(() => ws.remove());

  test('make-cache hashes every file the daemon sees, with progress, into the cache the daemon then uses', async () => {
    const alice = await ws.client('alice');
    const algorithm = alice.checksumAlgorithm;
    assert.ok(algorithm !== null);
    const aPath = join(ws.dir, 'alice', 'a.txt');
    const before = await hashFile(aPath, algorithm);

    const made = await ws.run(['make-cache', '-r', 'alice']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /^progress: 2 of 2 files$/m);
    assert.match(made.stdout, /^\[alice\] checksum cache ready: 2 file\(s\), 2 hashed, 0 already cached/m);
    const file = checksumCacheFile(alice);
    assert.ok(file !== null && existsSync(file));
    const cache = await ChecksumCache.open(file);
    try {
      assert.equal(cache.size, 2, 'the dot file is not cached, as the scanner never shows it');
      assert.equal(cache.get(relPath('a.txt'))?.checksum, before);
      assert.equal(cache.get(relPath('sub/b.txt'))?.checksum, await hashFile(join(ws.dir, 'alice', 'sub', 'b.txt'), algorithm));
    } finally {
      await cache.close();
    }
    assert.match((await ws.run(['make-cache', '-r', 'alice'])).stdout, /2 file\(s\), 0 hashed, 2 already cached/, 'a second run reads nothing again');

    // why: change a.txt's content but not its size nor its mtime (an editor that puts the mtime
    // back): its ctime still moves, so the daemon hashes it again instead of trusting the cache; b.txt
    // is taken from the cache (the daemon writes no new entry for it).
    const { atime, mtime } = statSync(aPath);
    writeFileSync(aPath, 'ORIGINAL');
    utimesSync(aPath, atime, mtime);
    const opened = await openClient(alice, { logger: silentLogger, once: true });
    try {
      assert.equal((await opened.runner.round()).transferred, 2);
    } finally {
      await opened.close();
    }
    const record = parseMetadata(readFileSync(join(ws.dir, 'relay', '.a.txt.placeholder')));
    assert.notEqual(before, await hashFile(aPath, algorithm));
    assert.equal(record.checksum, await hashFile(aPath, algorithm), 'the edit that kept size and mtime is announced with its own checksum');
    const bRecord = parseMetadata(readFileSync(join(ws.dir, 'relay', 'sub', '.b.txt.placeholder')));
    assert.equal(bRecord.checksum, await hashFile(join(ws.dir, 'alice', 'sub', 'b.txt'), algorithm));
    assert.equal(readFileSync(file, 'utf8').split('"p":"sub/b.txt"').length - 1, 1, 'b.txt came from the cache built by make-cache');
  });

  test('clear-cache removes the cache file; sections without a persistent cache are skipped', async () => {
    const file = checksumCacheFile(await ws.client('alice'));
    assert.ok(file !== null && existsSync(file));
    const cleared = await ws.run(['clear-cache']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /^skipping repository: memory \(checksum cache = no/m);
    assert.match(cleared.stdout, /^\[alice\] checksum cache removed \(/m);
    assert.equal(existsSync(file), false);
    assert.match((await ws.run(['clear-cache', '-r', 'alice'])).stdout, /^\[alice\] no checksum cache to remove/);
    assert.match(readFileSync(join(ws.dir, 'escale.log'), 'utf8'), /INFO escalectl\.clear-cache\.alice: removed the checksum cache/, 'the action is in the main log');
  });

  test('usage errors and --help', async () => {
    const memoryOnly = await ws.run(['make-cache', '-r', 'memory']);
    assert.equal(memoryOnly.code, 2);
    assert.match(memoryOnly.stderr, /make-cache: no section .* \(\[memory\] checksum cache = no/);
    assert.equal((await ws.run(['clear-cache', '-r', 'nobody'])).code, 2);
    const help = await ws.run(['make-cache', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /progress: n of N files/);
  });
});
