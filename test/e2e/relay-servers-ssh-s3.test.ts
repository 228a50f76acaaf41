// End-to-end: real `escale --once` processes sync alice → bob and back through OpenSSH sshd (native
// sftp), `rclone serve sftp` (native sftp), s3rver (native s3) and rclone (a named local-folder
// remote, and an sftp remote built from the section's keys on sshd), with the placeholder protocol
// and with the index protocol (`index = 1`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { put } from './harness.js';
import {
  RCLONE_LOCAL,
  RCLONE_LOCAL_REMOTE,
  RCLONE_SERVE_SFTP,
  RCLONE_SFTP_SSHD,
  S3RVER_S3,
  SSHD_SFTP,
  assertSameTrees,
  bigFile,
  checkConfig,
  leftovers,
  relayWorkspace,
  roundsUntil,
  sameTrees,
  startServer,
  type ExpectedRelay,
  type RunningServer,
  type ServerHandle,
  type ServerKind,
} from './relay-servers-support.js';

// why: AWS_CA_BUNDLE (set on this machine kind) breaks rclone 1.60, and escale passes its environment on to rclone.
delete process.env.AWS_CA_BUNDLE;

/** What `--check --json` must show for relay folder `directory` of `server`. */
const EXPECTED: Record<string, (server: RunningServer, directory: string) => Omit<ExpectedRelay, 'index'>> = {
  [SSHD_SFTP.name]: (s, directory) => ({ protocol: 'sftp', port: s.port, directory, password: false }),
  [RCLONE_SERVE_SFTP.name]: (s, directory) => ({ protocol: 'sftp', port: s.port, directory }),
  [S3RVER_S3.name]: (s, directory) => ({ protocol: 's3', port: s.port, directory: `relay/${directory}` }),
  [RCLONE_LOCAL.name]: (_s, directory) => ({ protocol: 'rclone', host: RCLONE_LOCAL_REMOTE, directory, password: false }),
  [RCLONE_SFTP_SSHD.name]: (s, directory) => ({ protocol: 'rclone', port: s.port, directory, password: false }),
};

/** alice's files, then bob's edit and addition; both folders must end identical, the relay clean. */
async function syncBothWays(handle: ServerHandle, directory: string, extra: Record<string, string | number>, t: TestContext): Promise<void> {
  const ws = await relayWorkspace(handle, directory, extra);
  try {
    const expected = EXPECTED[handle.kind.name];
    assert.ok(expected !== undefined, handle.kind.name);
    await checkConfig(ws, { ...expected(handle.current(), directory), index: extra.index !== undefined });
    const alice = ws.folder('alice');
    const bob = ws.folder('bob');
    await put(alice, 'top.txt', 'alice top\n', 1_700_000_000);
    await put(alice, 'deep/er/nested/file.bin', randomBytes(300_000), 1_700_000_100);
    await put(alice, 'unicode/\u00e9t\u00e9 \u2603.txt', 'snow\n', 1_700_000_200);
    await put(alice, 'empty.txt', '', 1_700_000_300);
    await bigFile(join(alice, 'big/three.bin'), 3);
    await put(bob, 'from-bob/notes.md', '# bob\n', 1_700_000_400);

    const started = Date.now();
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
    assert.deepEqual(await leftovers(ws.relayDir, handle.kind), [], 'no lock and no temporary left on the relay');
    t.diagnostic(`${handle.kind.name} ${extra.index === undefined ? 'placeholder' : 'index'}: ${there} rounds there, ${back} back, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await ws.cleanup();
  }
}

// why: the servers are independent; two at a time keep this 2-core machine busy without starving the escale processes.
describe('sync through sftp, s3 and rclone relays', { concurrency: 2 }, () => {
  for (const kind of [SSHD_SFTP, RCLONE_SERVE_SFTP, S3RVER_S3, RCLONE_LOCAL, RCLONE_SFTP_SSHD] satisfies ServerKind[]) {
    // why: the two protocols use separate relay folders of one server and run side by side.
    test(`${kind.name}: placeholder protocol and index protocol (index = 1)`, { concurrency: 2 }, async (t) => {
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
  }
});
