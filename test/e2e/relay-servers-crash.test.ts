// End-to-end: the relay server dies (SIGKILL to the server and its workers) in the middle of a big
// transfer while the relay lock is held, is restarted on the same port and folder, and the clients
// recover on their next rounds: identical bytes, no lock and no temporary left on the relay, no
// partial file in the receiver's folder.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { allPaths, put, startEscale, waitFor } from './harness.js';
import {
  APACHE_HTTP,
  PROFTPD_FTP,
  RCLONE_HTTP,
  assertSameTrees,
  bigFile,
  leftovers,
  relayWorkspace,
  roundsUntil,
  sameTrees,
  startServer,
  type RelayWorkspace,
  type ServerKind,
} from './relay-servers-support.js';

const BIG_MIB = 128;
const BIG_BYTES = BIG_MIB * 1024 * 1024;

/** Size of the biggest file below `dir` whose base name passes `match` (0 when none). */
async function biggest(dir: string, match: (base: string) => boolean): Promise<number> {
  let max = 0;
  for (const path of await allPaths(dir)) {
    if (!match(path.split('/').pop() ?? '')) continue;
    const info = await stat(join(dir, path)).catch(() => undefined);
    if (info?.isFile() && info.size > max) max = info.size;
  }
  return max;
}

/** Whether the relay folder holds a lock file. */
async function hasLock(ws: RelayWorkspace): Promise<boolean> {
  return (await allPaths(ws.relayDir)).some((p) => p.endsWith('.lock'));
}

/** Paths in a client folder that are not regular synced files: writer temporaries. */
async function partials(folder: string): Promise<string[]> {
  return (await allPaths(folder)).filter((p) => (p.split('/').pop() ?? '').startsWith('.escale-'));
}

for (const kind of [PROFTPD_FTP, RCLONE_HTTP, APACHE_HTTP] satisfies ServerKind[]) {
  describe(`${kind.name} killed in the middle of a transfer`, () => {
    test('upload then download interrupted by a server crash; the clients recover and converge', async (t) => {
      const handle = await startServer(t, kind);
      if (handle === undefined) return;
      const ws = await relayWorkspace(handle, 'relay');
      const running: Array<ReturnType<typeof startEscale>> = [];
      try {
        const alice = ws.folder('alice');
        const bob = ws.folder('bob');
        await bigFile(join(alice, 'big/payload.bin'), BIG_MIB);
        await put(alice, 'small.txt', 'small\n', 1_700_000_000);

        // 1. alice uploads; the server dies once a good part of the bytes arrived.
        const upload = startEscale(['--once', '-c', ws.config, '--section', 'alice']);
        running.push(upload);
        const caught = await waitFor(async () => (await biggest(ws.relayDir, (b) => !b.startsWith('.') || b.startsWith('.escale-put-') || b.startsWith('.davfs.tmp'))) > BIG_BYTES / 8, 60_000, 20);
        assert.ok(caught, `the upload never started:\n${upload.output()}`);
        assert.ok(await hasLock(ws), 'the relay lock is held during the upload');
        await handle.kill();
        const uploadResult = await upload.exited;
        t.diagnostic(`upload round after the crash: exit ${uploadResult.code ?? uploadResult.signal}`);
        await handle.restart();
        const rounds = await roundsUntil(ws, ['alice', 'bob'], async () => (await sameTrees(alice, bob)) && (await leftovers(ws.relayDir)).length === 0);
        await assertSameTrees(alice, bob, 'after the upload crash');
        t.diagnostic(`converged after ${rounds} rounds`);

        // 2. alice pushes a second big file completely; bob's download is cut by a crash.
        await bigFile(join(alice, 'big/second.bin'), BIG_MIB);
        await ws.once('alice');
        const download = startEscale(['--once', '-c', ws.config, '--section', 'bob']);
        running.push(download);
        const flowing = await waitFor(async () => (await biggest(bob, (b) => b.startsWith('.escale-'))) > BIG_BYTES / 8, 60_000, 20);
        assert.ok(flowing, `the download never started:\n${download.output()}`);
        assert.ok(await hasLock(ws), 'the relay lock is held during the download');
        await handle.kill();
        const downloadResult = await download.exited;
        t.diagnostic(`download round after the crash: exit ${downloadResult.code ?? downloadResult.signal}`);
        await handle.restart();
        const again = await roundsUntil(ws, ['bob', 'alice'], async () => (await sameTrees(alice, bob)) && (await leftovers(ws.relayDir)).length === 0);
        t.diagnostic(`converged after ${again} rounds`);

        await assertSameTrees(alice, bob, 'after the download crash');
        assert.deepEqual(await leftovers(ws.relayDir), [], 'no lock and no temporary left on the relay');
        assert.deepEqual(await partials(bob), [], 'no partial file in bob\'s folder');
        assert.deepEqual(await partials(alice), [], 'no partial file in alice\'s folder');
      } finally {
        for (const run of running) run.child.kill('SIGKILL');
        await Promise.all(running.map((run) => run.exited));
        await handle.stop();
        await ws.cleanup();
      }
    });
  });
}
