// End-to-end: real `escale --once` processes sync alice → bob and back through real relay servers
// (proftpd plain and explicit TLS, Apache mod_dav over HTTP and HTTPS, rclone serve webdav over
// HTTPS), with the placeholder protocol and with the index protocol (`index = 1`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { put } from './harness.js';
import {
  APACHE_HTTP,
  APACHE_HTTPS,
  PROFTPD_FTP,
  PROFTPD_FTPS,
  RCLONE_WEBDAV,
  assertSameTrees,
  bigFile,
  checkConfig,
  leftovers,
  relayWorkspace,
  roundsUntil,
  sameTrees,
  startServer,
  type ServerHandle,
  type ServerKind,
} from './relay-servers-support.js';

const PROTOCOL_OF: Record<string, string> = {
  [PROFTPD_FTP.name]: 'ftp',
  [PROFTPD_FTPS.name]: 'ftps',
  [APACHE_HTTP.name]: 'http',
  [APACHE_HTTPS.name]: 'https',
  [RCLONE_WEBDAV.name]: 'webdav',
};

/** alice's files, then bob's edit and addition; both folders must end identical, the relay clean. */
async function syncBothWays(handle: ServerHandle, directory: string, extra: Record<string, string | number>, t: TestContext): Promise<void> {
  const ws = await relayWorkspace(handle, directory, extra);
  try {
    await checkConfig(ws, { protocol: PROTOCOL_OF[handle.kind.name] as string, port: handle.current().port, directory, index: extra.index !== undefined });
    const alice = ws.folder('alice');
    const bob = ws.folder('bob');
    await put(alice, 'top.txt', 'alice top\n', 1_700_000_000);
    await put(alice, 'deep/er/nested/file.bin', randomBytes(300_000), 1_700_000_100);
    await put(alice, 'unicode/\u00e9t\u00e9 \u2603.txt', 'snow\n', 1_700_000_200);
    await put(alice, 'empty.txt', '', 1_700_000_300);
    await bigFile(join(alice, 'big/three.bin'), 3);
    await put(bob, 'from-bob/notes.md', '# bob\n', 1_700_000_400);

    const there = await roundsUntil(ws, ['alice', 'bob'], () => sameTrees(alice, bob));
    const files = await assertSameTrees(alice, bob, 'after alice → bob');
    assert.equal(files.size, 6);
    assert.equal(files.get('top.txt')?.mtimeSec, 1_700_000_000);

    // and back: bob edits one of alice's files and adds one; alice receives both.
    await put(bob, 'top.txt', 'bob rewrote the top\n', 1_700_001_000);
    await put(bob, 'from-bob/second.txt', 'second\n', 1_700_001_100);
    const back = await roundsUntil(ws, ['bob', 'alice'], () => sameTrees(alice, bob));
    await assertSameTrees(alice, bob, 'after bob → alice');
    assert.equal(await readFile(join(alice, 'top.txt'), 'utf8'), 'bob rewrote the top\n');
    assert.deepEqual(await leftovers(ws.relayDir), [], 'no lock and no temporary left on the relay');
    t.diagnostic(`${handle.kind.name} ${extra.index === undefined ? 'placeholder' : 'index'}: ${there} rounds there, ${back} back`);
  } finally {
    await ws.cleanup();
  }
}

for (const kind of [PROFTPD_FTP, PROFTPD_FTPS, APACHE_HTTP, APACHE_HTTPS, RCLONE_WEBDAV] satisfies ServerKind[]) {
  describe(`sync through ${kind.name}`, () => {
    // why: the two protocols use separate relay folders of one server and run side by side.
    test('placeholder protocol and index protocol (index = 1)', { concurrency: 2 }, async (t) => {
      const handle = await startServer(t, kind);
      if (handle === undefined) return;
      try {
        await Promise.all([
          t.test('placeholder protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/placeholder', {}, st)),
          t.test('index protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/index', { index: 1 }, st)),
        ]);
      } finally {
        await handle.stop();
      }
    });
  });
}
