// End-to-end: a client killed with SIGKILL in the middle of a push or a pull recovers on restart;
// nothing partial is visible, nothing is lost and no lock is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allPaths, bigFile, configText, runEscale, sha256File, startEscale, tree, waitFor, waitForContent, workspace } from './harness.js';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';

const BIG_MIB = 300;

test('SIGKILL during a push and during a pull: restart converges with no partial file and no lock', { timeout: 240_000 }, async () => {
  const ws = await workspace();
  try {
    const relay = join(ws.dir, 'relay');
    const alice = join(ws.dir, 'alice');
    const bob = join(ws.dir, 'bob');
    for (const d of [relay, alice, bob]) await mkdir(d);
    const config = join(ws.dir, 'escale.conf');
    const client = (name: string, mode: string): Record<string, string> => ({ 'client name': name, 'local path': join(ws.dir, name), protocol: 'file', 'relay path': relay, mode });
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: 2 }, { alice: client('alice', 'upload'), bob: client('bob', 'download') }));
    await bigFile(join(alice, 'big.bin'), BIG_MIB);
    await writeFile(join(alice, 'small.txt'), 'small\n');
    const want = await sha256File(join(alice, 'big.bin'));
    const lock = join(relay, '.big.bin.lock');

    // 1. kill alice while she holds the upload lock of big.bin
    const pusher = startEscale(['-c', config, '--section', 'alice']);
    assert.equal(await waitForContent(lock, /mode: w/, 60_000), true, `alice never locked big.bin for upload:\n${pusher.output()}`);
    pusher.child.kill('SIGKILL');
    await pusher.exited;
    assert.equal(existsSync(lock), true, 'the kill happened while the lock was held');

    // 2. restart alice: repair removes the interrupted push and sends the file again
    const again = await runEscale(['--once', '-c', config, '--section', 'alice']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /fixing uncomplete transfer: 'big.bin'/);
    assert.equal(existsSync(lock), false);
    assert.equal(await sha256File(join(relay, 'big.bin')), want, 'the relay holds the whole file');

    // 3. kill bob while he holds the download lock
    const puller = startEscale(['-c', config, '--section', 'bob']);
    assert.equal(await waitForContent(lock, /mode: r/, 60_000), true, `bob never locked big.bin for download:\n${puller.output()}`);
    puller.child.kill('SIGKILL');
    await puller.exited;
    assert.equal(existsSync(join(bob, 'big.bin')) && (await sha256File(join(bob, 'big.bin'))) !== want, false, 'no partial big.bin is visible in bob');

    // 4. restart bob: the pull is repaired and done again
    const settled = await runEscale(['--once', '-c', config, '--section', 'bob']);
    assert.equal(settled.code, 0, settled.stderr);
    if (!existsSync(join(bob, 'big.bin'))) {
      const more = await runEscale(['--once', '-c', config, '--section', 'bob']);
      assert.equal(more.code, 0, more.stderr);
    }
    assert.equal(await waitFor(async () => existsSync(join(bob, 'big.bin')), 1000), true);
    assert.equal(await sha256File(join(bob, 'big.bin')), want, 'bob has the whole file');
    assert.equal((await tree(bob)).get('small.txt')?.size, 6);
    assert.deepEqual((await allPaths(bob)).filter((p) => p.split('/').pop()!.startsWith('.') && p !== ROOT_MARKER), [], 'no temporary file left in bob');
    const left = await allPaths(relay);
    assert.deepEqual(left.filter((p) => p.endsWith('.lock')), [], 'no lock left');
    assert.deepEqual(left.filter((p) => !p.startsWith('.')), [], 'the relay data left once pulled');
  } finally {
    await ws.cleanup();
  }
});
