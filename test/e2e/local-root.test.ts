// End-to-end: the local root guard. A client's local folder that vanishes while the daemon runs (an
// unmounted disk) pauses that client: nothing is written, nothing is recreated, one ERROR per
// change, `escalectl status` says `paused`; an empty folder in its place (a mount point without its
// disk) is refused too; when the real folder returns the client resumes and catches up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';
import type { StatusJson } from '../../src/daemon/status-model.js';
import { configText, put, runEscalectl, startEscale, waitFor, workspace } from './harness.js';

test('a local folder that vanishes pauses its client (nothing written, not recreated) and resumes when it returns', { timeout: 180_000 }, async () => {
  const ws = await workspace();
  const relay = join(ws.dir, 'relay');
  const alice = join(ws.dir, 'alice');
  const bob = join(ws.dir, 'disk', 'bob');
  const away = join(ws.dir, 'bob-unmounted');
  let daemon: ReturnType<typeof startEscale> | undefined;
  try {
    await mkdir(relay);
    await mkdir(alice);
    const client = (name: string, path: string, mode: string) => ({ 'client name': name, 'local path': path, protocol: 'file', 'relay path': relay, mode });
    const config = join(ws.dir, 'escale.conf');
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: '1.0' }, { alice: client('alice', alice, 'upload'), bob: client('bob', bob, 'download') }));
    await put(alice, 'a.txt', 'a\n');
    daemon = startEscale(['-c', config]);
    const output = (): string => daemon?.output() ?? '';
    assert.equal(await waitFor(async () => existsSync(join(bob, 'a.txt')), 60_000), true, `a new client creates its folder and syncs:\n${output()}`);
    assert.equal(existsSync(join(bob, ROOT_MARKER)), true, 'the folder is marked');
    const status = async (): Promise<StatusJson['clients'][number] | undefined> => {
      const result = await runEscalectl(['-c', config, 'status', '--json']);
      return (JSON.parse(result.stdout) as StatusJson).clients.find((c) => c.section === 'bob');
    };

    // the disk is unmounted: bob's folder is gone; alice goes on pushing
    await rename(join(ws.dir, 'disk'), away);
    await put(alice, 'b.txt', 'b\n');
    assert.equal(await waitFor(async () => /ERROR escale\.bob: pausing this client: the local folder '.*bob' is missing/.test(output()), 30_000), true, output());
    assert.equal(await waitFor(async () => existsSync(join(relay, 'b.txt')), 30_000), true, 'the other client goes on');
    const paused = await status();
    assert.equal(paused?.state, 'paused');
    assert.match(paused?.reason ?? '', /is missing/);
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(existsSync(join(ws.dir, 'disk')), false, 'the folder is not created again');
    assert.equal(output().split('\n').filter((l) => l.includes('pausing this client')).length, 1, 'one ERROR per change');

    // an empty mount point appears where the folder was: it lost its marker, still paused
    await mkdir(bob, { recursive: true });
    assert.equal(await waitFor(async () => /pausing this client: the local folder '.*bob' lost its marker/.test(output()), 30_000), true, output());
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await readdir(bob), [], 'nothing is written into the empty folder');
    assert.equal(existsSync(join(relay, 'b.txt')), true, 'the relay copy waits for bob');

    // the disk returns: bob resumes and catches up
    await rmdir(bob);
    await rmdir(join(ws.dir, 'disk'));
    await rename(away, join(ws.dir, 'disk'));
    assert.equal(await waitFor(async () => existsSync(join(bob, 'b.txt')), 30_000), true, `resumed:\n${output()}`);
    assert.equal(await readFile(join(bob, 'b.txt'), 'utf8'), 'b\n');
    assert.match(output(), /INFO escale\.bob: the local folder is back; resuming/);
    assert.equal(await waitFor(async () => (await status())?.state !== 'paused', 10_000), true);
    daemon.child.kill('SIGTERM');
    assert.equal((await daemon.exited).code, 0);
  } finally {
    daemon?.child.kill('SIGKILL');
    await ws.cleanup();
  }
});
