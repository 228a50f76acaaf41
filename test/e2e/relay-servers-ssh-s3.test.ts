// End-to-end: real `escale --once` processes sync alice → bob and back through OpenSSH sshd (native
// sftp), `rclone serve sftp` (native sftp), s3rver (native s3) and rclone (a named local-folder
// remote, and an sftp remote built from the section's keys on sshd), with the placeholder protocol
// and with the index protocol (`index = 1`).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  RCLONE_LOCAL,
  RCLONE_LOCAL_REMOTE,
  RCLONE_SERVE_SFTP,
  RCLONE_SFTP_SSHD,
  S3RVER_S3,
  SSHD_SFTP,
  startServer,
  syncBothWays,
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

/** What `escale --check` must show for a server kind's configuration. */
function expectedOf(handle: ServerHandle, directory: string): Omit<ExpectedRelay, 'index'> {
  const expected = EXPECTED[handle.kind.name];
  assert.ok(expected !== undefined, handle.kind.name);
  return expected(handle.current(), directory);
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
          t.test('placeholder protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/placeholder', {}, st, expectedOf(handle, 'relay/placeholder'))),
          t.test('index protocol: alice → bob and back', (st) => syncBothWays(handle, 'relay/index', { index: 1 }, st, expectedOf(handle, 'relay/index'))),
        ]);
      } finally {
        await handle.stop();
      }
    });
  }
});
